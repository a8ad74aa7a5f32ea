/*
 * test_series.c - the charts' time-series rings (daemon/series.c): counts land in the slot of
 * their period, slots rotate lazily (a slot left over from an older lap reads as zero and is
 * zeroed when written again), a clock that goes back cannot spoil newer counts, and rings of
 * several workers sum.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "daemon/series.h"

static struct series_ring *
ring_new(unsigned res, unsigned n)
{
	struct series_ring *r = malloc(sizeof(*r));
	assert_non_null(r);
	series_init(r, res, n);
	return r;
}

static void
one(uint64_t v[SERIES_NMETRIC], uint64_t req, uint64_t bytes)
{
	memset(v, 0, sizeof(uint64_t) * SERIES_NMETRIC);
	v[SERIES_REQUESTS] = req;
	v[SERIES_BYTES_CLIENT] = bytes;
}

static void
series_counts_land_in_their_period(void **state)
{
	(void)state;
	struct series_ring *r = ring_new(10, 360);
	uint64_t v[SERIES_NMETRIC];
	int64_t t0 = 1700000000;              /* a multiple of 10 */
	one(v, 1, 100);
	series_add(r, t0, v);
	series_add(r, t0 + 9, v);             /* same 10 s slot */
	series_add(r, t0 + 10, v);            /* next slot */
	uint64_t (*out)[SERIES_NMETRIC] = calloc(360, sizeof(*out));
	assert_non_null(out);
	series_sum(r, t0 + 10, out);
	assert_int_equal(out[359][SERIES_REQUESTS], 1);
	assert_int_equal(out[358][SERIES_REQUESTS], 2);
	assert_int_equal(out[358][SERIES_BYTES_CLIENT], 200);
	uint64_t sum = 0;
	for (int i = 0; i < 360; i++)
		sum += out[i][SERIES_REQUESTS];
	assert_int_equal(sum, 3);
	/* read later: the same counts, shifted left by the periods that passed */
	memset(out, 0, 360 * sizeof(*out));
	series_sum(r, t0 + 10 + 50, out);
	assert_int_equal(out[354][SERIES_REQUESTS], 1);
	assert_int_equal(out[353][SERIES_REQUESTS], 2);
	free(out);
	free(r);
}

static void
series_stale_slots_read_as_zero_and_are_reused(void **state)
{
	(void)state;
	struct series_ring *r = ring_new(10, 6);   /* one minute */
	uint64_t v[SERIES_NMETRIC];
	one(v, 5, 0);
	series_add(r, 1000, v);
	uint64_t out[6][SERIES_NMETRIC];
	memset(out, 0, sizeof(out));
	series_sum(r, 1000 + 60, out);             /* one lap later: same slot index, old period */
	for (int i = 0; i < 6; i++)
		assert_int_equal(out[i][SERIES_REQUESTS], 0);
	memset(out, 0, sizeof(out));
	series_sum(r, 1000 + 50, out);             /* still inside the window: oldest slot */
	assert_int_equal(out[0][SERIES_REQUESTS], 5);
	one(v, 2, 0);
	series_add(r, 1060, v);                    /* reuses the slot: old count gone */
	memset(out, 0, sizeof(out));
	series_sum(r, 1060, out);
	assert_int_equal(out[5][SERIES_REQUESTS], 2);
	uint64_t sum = 0;
	for (int i = 0; i < 6; i++)
		sum += out[i][SERIES_REQUESTS];
	assert_int_equal(sum, 2);
	/* the clock went back a lap: the write is dropped, the newer count stays */
	one(v, 7, 0);
	series_add(r, 1000, v);
	memset(out, 0, sizeof(out));
	series_sum(r, 1060, out);
	assert_int_equal(out[5][SERIES_REQUESTS], 2);
	free(r);
}

static void
series_rings_of_workers_sum(void **state)
{
	(void)state;
	struct series_ring *a = ring_new(300, 288), *b = ring_new(300, 288);
	uint64_t v[SERIES_NMETRIC];
	int64_t now = 1700000123;
	uint64_t want_req = 0, want_bytes = 0;
	for (int i = 0; i < 1000; i++) {
		int64_t t = now - (int64_t)(i * 83) % 86000;
		one(v, 1, (uint64_t)i);
		series_add(i % 2 ? a : b, t, v);
		want_req++;
		want_bytes += (uint64_t)i;
	}
	uint64_t (*out)[SERIES_NMETRIC] = calloc(288, sizeof(*out));
	assert_non_null(out);
	series_sum(a, now, out);
	series_sum(b, now, out);
	uint64_t req = 0, bytes = 0;
	for (int i = 0; i < 288; i++) {
		req += out[i][SERIES_REQUESTS];
		bytes += out[i][SERIES_BYTES_CLIENT];
	}
	assert_int_equal(req, want_req);
	assert_int_equal(bytes, want_bytes);
	free(out);
	free(a);
	free(b);
}

static void
series_period_rounds_down(void **state)
{
	(void)state;
	assert_int_equal(series_period(19, 10), 1);
	assert_int_equal(series_period(20, 10), 2);
	assert_int_equal(series_period(-1, 10), -1);
	assert_int_equal(series_period(-10, 10), -1);
	assert_int_equal(series_period(-11, 10), -2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(series_counts_land_in_their_period),
		cmocka_unit_test(series_stale_slots_read_as_zero_and_are_reused),
		cmocka_unit_test(series_rings_of_workers_sum),
		cmocka_unit_test(series_period_rounds_down),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
