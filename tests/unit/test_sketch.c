/*
 * test_sketch.c - the top lists' space-saving sketch (daemon/sketch.c) against exact counts of
 * a skewed stream: memory stays at SKETCH_CAP counters with thousands of distinct keys, the
 * true top keys are found in order, every kept key's bounds hold (count - err <= true <=
 * count), every key heavier than total / SKETCH_CAP is kept, and the merge of per-worker
 * sketches keeps |true - count| <= err.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/sketch.h"

#define NKEYS 5000
#define NEVENTS 200000

static uint64_t rng_state = 88172645463325252ull;

static uint64_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Zipf-like: key k drawn with weight 1 / (k + 1), by inverting a cumulative table. */
static double cum[NKEYS];

static void
zipf_init(void)
{
	double s = 0;
	for (int k = 0; k < NKEYS; k++) {
		s += 1.0 / (k + 1);
		cum[k] = s;
	}
	for (int k = 0; k < NKEYS; k++)
		cum[k] /= s;
}

static int
zipf_draw(void)
{
	double u = (double)(rng() >> 11) / (double)(1ull << 53);
	int lo = 0, hi = NKEYS - 1;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (cum[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void
key_of(int k, char *buf, size_t n)
{
	/* the hot keys are not the first inserted: a permutation of the numbering */
	snprintf(buf, n, "host-%d.example", (k * 7919) % NKEYS);
}

static uint64_t exact[NKEYS];

static int
key_index(const char *key)
{
	int x;
	if (sscanf(key, "host-%d.example", &x) != 1)
		return -1;
	for (int k = 0; k < NKEYS; k++)
		if ((k * 7919) % NKEYS == x)
			return k;
	return -1;
}

static void
sketch_finds_the_true_top_keys_with_bounds(void **state)
{
	(void)state;
	zipf_init();
	memset(exact, 0, sizeof(exact));
	struct sketch *s = malloc(sizeof(*s));
	assert_non_null(s);
	sketch_init(s, NULL);
	char key[64];
	uint64_t total = 0;
	int distinct = 0;
	for (int i = 0; i < NEVENTS; i++) {
		int k = zipf_draw();
		uint64_t w = 1 + rng() % 3;        /* weighted, like bytes */
		if (exact[k] == 0)
			distinct++;
		exact[k] += w;
		total += w;
		key_of(k, key, sizeof(key));
		sketch_add(s, key, strlen(key), w, NULL);
	}
	assert_true(distinct > 4 * (int)SKETCH_CAP); /* the stream does overflow the sketch */
	/* a new key with no weight takes no counter over */
	uint64_t min_before = sketch_min(s);
	sketch_add(s, "never-seen.example", 18, 0, NULL);
	assert_int_equal(sketch_min(s), min_before);
	for (unsigned i = 0; i < s->n; i++)
		assert_string_not_equal(s->ctr[i].key, "never-seen.example");
	assert_int_equal(s->n, SKETCH_CAP);
	assert_int_equal(s->total, total);
	/* bounds of every kept key */
	int kept[NKEYS] = {0};
	for (unsigned i = 0; i < s->n; i++) {
		int k = key_index(s->ctr[i].key);
		assert_true(k >= 0);
		kept[k] = 1;
		assert_true(s->ctr[i].count >= exact[k]);
		assert_true(s->ctr[i].count - s->ctr[i].err <= exact[k]);
	}
	/* every key heavier than total / cap is kept, and min <= total / cap */
	assert_true(sketch_min(s) <= total / SKETCH_CAP);
	for (int k = 0; k < NKEYS; k++)
		if (exact[k] > total / SKETCH_CAP)
			assert_true(kept[k]);
	/* the top 10 in order, through the reading side */
	struct sketch_top t;
	assert_int_equal(sketch_top_init(&t, 1), 0);
	sketch_top_add(&t, s, 1, 1);
	sketch_top_finish(&t);
	for (int r = 0; r < 10; r++) {
		/* keys are ranked by their index: exact counts fall with k for the top ones */
		int k = key_index(t.it[r].key);
		assert_int_equal(k, r);
		assert_true(t.it[r].count - t.it[r].err <= exact[k]);
		assert_true(exact[k] <= t.it[r].count);
	}
	sketch_top_fini(&t);
	free(s);
}

static void
sketch_merge_of_workers_keeps_bounds_and_top(void **state)
{
	(void)state;
	zipf_init();
	memset(exact, 0, sizeof(exact));
	enum { NW = 4 };
	struct sketch *s = malloc(NW * sizeof(*s));
	assert_non_null(s);
	for (int i = 0; i < NW; i++)
		sketch_init(&s[i], NULL);
	char key[64];
	for (int i = 0; i < NEVENTS; i++) {
		int k = zipf_draw();
		exact[k]++;
		key_of(k, key, sizeof(key));
		sketch_add(&s[rng() % NW], key, strlen(key), 1, NULL);
	}
	struct sketch_top t;
	assert_int_equal(sketch_top_init(&t, NW), 0);
	for (int i = 0; i < NW; i++)
		sketch_top_add(&t, &s[i], 1, 1);
	sketch_top_finish(&t);
	assert_int_equal(t.total, NEVENTS);
	assert_true(t.n <= NW * SKETCH_CAP);
	for (size_t i = 0; i < t.n; i++) {
		int k = key_index(t.it[i].key);
		assert_true(k >= 0);
		uint64_t c = t.it[i].count, e = t.it[i].err;
		assert_true(c <= exact[k] + e);
		assert_true(exact[k] <= c + e);
	}
	for (int r = 0; r < 5; r++)
		assert_int_equal(key_index(t.it[r].key), r);
	sketch_top_fini(&t);
	free(s);
}

static void
sketch_keeps_the_note_and_scales_the_previous_window(void **state)
{
	(void)state;
	struct sketch *s = malloc(2 * sizeof(*s));
	assert_non_null(s);
	static char notes[2][SKETCH_CAP][SKETCH_NOTE_MAX];
	sketch_init(&s[0], notes[0]);
	sketch_init(&s[1], notes[1]);
	sketch_add(&s[0], "ads.example", 11, 1, "ProxyBlock ads.example (a.conf:3)");
	sketch_add(&s[0], "ads.example", 11, 1, "ProxyBlock ads.example (a.conf:3)");
	sketch_add(&s[1], "ads.example", 11, 10, "ProxyBlock ads (a.conf:2)");
	sketch_add(&s[1], "old.example", 11, 4, NULL);
	struct sketch_top t;
	assert_int_equal(sketch_top_init(&t, 2), 0);
	sketch_top_add(&t, &s[1], 1, 2);   /* half of the previous window still counts */
	sketch_top_add(&t, &s[0], 1, 1);
	sketch_top_finish(&t);
	assert_int_equal(t.n, 2);
	assert_string_equal(t.it[0].key, "ads.example");
	assert_int_equal(t.it[0].count, 2 + 5);
	assert_int_equal(t.it[0].err, 0);  /* neither sketch was full */
	assert_string_equal(t.it[1].key, "old.example");
	assert_int_equal(t.it[1].count, 2);
	/* the note of the sketch added last (the current window) wins */
	assert_string_equal(t.it[0].note, "ProxyBlock ads.example (a.conf:3)");
	assert_string_equal(t.it[1].note, "");
	sketch_top_fini(&t);
	/* a key longer than SKETCH_KEY_MAX is cut, not overflowing */
	char longkey[400];
	memset(longkey, 'a', sizeof(longkey));
	sketch_reset(&s[0]);
	sketch_add(&s[0], longkey, sizeof(longkey), 1, NULL);
	sketch_add(&s[0], longkey, sizeof(longkey) - 1, 1, NULL);
	assert_int_equal(s[0].n, 1);
	assert_int_equal(strlen(s[0].ctr[0].key), SKETCH_KEY_MAX - 1);
	assert_int_equal(s[0].ctr[0].count, 2);
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sketch_finds_the_true_top_keys_with_bounds),
		cmocka_unit_test(sketch_merge_of_workers_keeps_bounds_and_top),
		cmocka_unit_test(sketch_keeps_the_note_and_scales_the_previous_window),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
