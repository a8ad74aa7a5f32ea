/*
 * test_stats.c - the status page's counters (daemon/stats.c): how an access-log entry maps to
 * an outcome and to hit bytes, the duration histogram's bins, the per-second ring behind the
 * 1- and 5-minute rates (old slots of an idle worker do not count), blocks in the last hour,
 * requests per parent, and the sum over several workers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "daemon/health.h"
#include "daemon/log.h"
#include "daemon/stats.h"
#include "daemon/worker.h"

static void
stats_outcomes_follow_squid_codes(void **state)
{
	(void)state;
	assert_int_equal(stats_outcome_of("TCP_HIT", 200, 0), STATS_HIT);
	assert_int_equal(stats_outcome_of("TCP_IMS_HIT", 304, 0), STATS_HIT);
	assert_int_equal(stats_outcome_of("TCP_INM_HIT", 304, 0), STATS_HIT);
	assert_int_equal(stats_outcome_of("TCP_MISS", 200, 0), STATS_MISS);
	assert_int_equal(stats_outcome_of("TCP_CLIENT_REFRESH_MISS", 200, 0), STATS_MISS);
	assert_int_equal(stats_outcome_of("TCP_TUNNEL", 200, 0), STATS_MISS);
	assert_int_equal(stats_outcome_of("TCP_MISS", 499, 0), STATS_MISS);
	assert_int_equal(stats_outcome_of("TCP_REFRESH_UNMODIFIED", 200, 0), STATS_REFRESH);
	assert_int_equal(stats_outcome_of("TCP_REFRESH_MODIFIED", 200, 0), STATS_REFRESH);
	assert_int_equal(stats_outcome_of("TCP_REFRESH_FAIL_OLD", 200, 0), STATS_REFRESH);
	assert_int_equal(stats_outcome_of("TCP_REFRESH_FAIL_ERR", 502, 0), STATS_ERROR);
	assert_int_equal(stats_outcome_of("TCP_DENIED", 403, 0), STATS_DENIED);
	assert_int_equal(stats_outcome_of("TCP_DENIED", 403, 1), STATS_BLOCKED);
	assert_int_equal(stats_outcome_of("TCP_MISS", 502, 0), STATS_ERROR);
	assert_int_equal(stats_outcome_of("TCP_MISS", 504, 0), STATS_ERROR);
	assert_int_equal(stats_outcome_of("NONE", 400, 0), STATS_ERROR);
	assert_int_equal(stats_outcome_of("NONE", 0, 0), STATS_ERROR);
	assert_int_equal(stats_outcome_of("NONE", 200, 0), STATS_LOCAL);
	assert_int_equal(stats_outcome_of("NONE", 301, 0), STATS_LOCAL);
	assert_int_equal(stats_outcome_of(NULL, 200, 0), STATS_LOCAL);
	assert_true(stats_from_store("TCP_HIT"));
	assert_true(stats_from_store("TCP_REFRESH_UNMODIFIED"));
	assert_true(stats_from_store("TCP_REFRESH_FAIL_OLD"));
	assert_false(stats_from_store("TCP_REFRESH_MODIFIED"));
	assert_false(stats_from_store("TCP_MISS"));
	assert_string_equal(stats_outcome_name(STATS_BLOCKED), "blocked");
	assert_string_equal(stats_outcome_name(STATS_LOCAL), "local");
}

struct fixture {
	struct worker w[2];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(ev_loop_new(&f->w[i].loop), 0);
		f->w[i].id = (unsigned)i;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	for (int i = 0; i < 2; i++)
		ev_loop_free(&f->w[i].loop);
	free(f);
	return 0;
}

/* One finished request on w: elapsed ms, as conn_log would log it (start = now - elapsed). */
static void
req(struct worker *w, const char *action, int status, uint64_t bytes, uint64_t elapsed_ms,
    int blocked, const char *parent)
{
	struct alog_entry e = {
		.start_us = ev_wall_us(w->loop) - elapsed_ms * 1000,
		.elapsed_ms = elapsed_ms,
		.action = action,
		.status = status,
		.bytes = bytes,
		.hier = parent ? "FIRSTUP_PARENT" : "HIER_DIRECT",
	};
	stats_req(w, &e, blocked, parent);
}

static void
stats_counts_outcomes_bytes_durations_and_parents(void **state)
{
	struct fixture *f = *state;
	struct worker *a = &f->w[0], *b = &f->w[1];
	req(a, "TCP_HIT", 200, 1000, 0, 0, NULL);
	req(a, "TCP_HIT", 200, 1000, 3, 0, NULL);
	req(b, "TCP_MISS", 200, 5000, 40, 0, "parent.test:3128");
	req(b, "TCP_MISS", 200, 5000, 20000, 0, "parent.test:3128");
	req(b, "TCP_REFRESH_UNMODIFIED", 200, 700, 7, 0, NULL);
	req(b, "TCP_DENIED", 403, 300, 0, 1, NULL);
	req(a, "TCP_DENIED", 403, 300, 0, 0, NULL);
	req(a, "TCP_MISS", 502, 300, 1, 0, NULL);

	const struct stats *v[2] = {&a->stats, &b->stats};
	uint64_t now = ev_now(a->loop);
	struct stats_sum s;
	stats_sum_of(&s, v, 2, now + 1000, now - 3600 * 1000);
	assert_int_equal(s.requests, 8);
	assert_int_equal(s.req[STATS_HIT], 2);
	assert_int_equal(s.req[STATS_MISS], 2);
	assert_int_equal(s.req[STATS_REFRESH], 1);
	assert_int_equal(s.req[STATS_BLOCKED], 1);
	assert_int_equal(s.req[STATS_DENIED], 1);
	assert_int_equal(s.req[STATS_ERROR], 1);
	assert_int_equal(s.bytes_client_out, 2000 + 10000 + 700 + 900);
	assert_int_equal(s.bytes_store_out, 2000 + 700);
	assert_int_equal(s.blocked_1h, 1);
	/* bins: le 1 ms: the 0, 0, 0 and 1 ms ones; 2.5 ms: none; 5 ms: 3; 10 ms: 7;
	 * 50 ms: 40; +Inf: 20 s. Wall and monotonic clocks agree here, so these are exact
	 * to the loop's microseconds. */
	uint64_t total = 0;
	for (int i = 0; i <= STATS_NBUCKETS; i++)
		total += s.dur_bin[i];
	assert_int_equal(total, 8);
	assert_int_equal(s.dur_bin[0], 4);
	assert_int_equal(s.dur_bin[2], 1);
	assert_int_equal(s.dur_bin[3], 1);
	assert_int_equal(s.dur_bin[5], 1);
	assert_int_equal(s.dur_bin[STATS_NBUCKETS], 1);
	assert_true(s.dur_sum_us >= 20051000 && s.dur_sum_us < 20052000);
	int k = health_index(health_get("parent.test:3128"));
	assert_true(k >= 0);
	assert_int_equal(s.parent_req[k], 2);
	/* every request finished a second before mono_ms: both windows hold all 8 */
	assert_int_equal(s.req_1m, 8);
	assert_int_equal(s.req_5m, 8);
	assert_int_equal(s.win_1m, 60);
	assert_int_equal(s.win_5m, 300);
}

static void
stats_rate_windows_forget_old_seconds(void **state)
{
	struct fixture *f = *state;
	struct worker *a = &f->w[0];
	req(a, "TCP_HIT", 200, 10, 0, 0, NULL);
	req(a, "TCP_HIT", 200, 10, 0, 0, NULL);
	const struct stats *v[1] = {&a->stats};
	uint64_t now = ev_now(a->loop);
	struct stats_sum s;
	/* 2 minutes later: out of the 1-minute window, in the 5-minute one */
	stats_sum_of(&s, v, 1, now + 120 * 1000, now - 3600 * 1000);
	assert_int_equal(s.req_1m, 0);
	assert_int_equal(s.req_5m, 2);
	/* 300 s later: out of the window; 600 s later the ring slot of the current second is
	 * that second's (same index): its tag is not the current second's, so it counts 0 */
	stats_sum_of(&s, v, 1, now + 300 * 1000, now - 3600 * 1000);
	assert_int_equal(s.req_5m, 0);
	stats_sum_of(&s, v, 1, now + 600 * 1000, now - 3600 * 1000);
	assert_int_equal(s.req_5m, 0);
	assert_int_equal(s.req_1m, 0);
	assert_int_equal(s.requests, 2);
	/* 299 s later it is the oldest second of the 5-minute window */
	stats_sum_of(&s, v, 1, now + 299 * 1000, now - 3600 * 1000);
	assert_int_equal(s.req_5m, 2);
	/* in the current second, both windows count them */
	stats_sum_of(&s, v, 1, now, now - 3600 * 1000);
	assert_int_equal(s.req_1m, 2);
	/* 10 s after start, the windows are 11 s long (10 whole seconds and the current one) */
	stats_sum_of(&s, v, 1, now + 1000, now - 9000);
	assert_int_equal(s.win_1m, 11);
	assert_int_equal(s.win_5m, 11);
	assert_int_equal(s.req_1m, 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stats_outcomes_follow_squid_codes),
#ifndef GH_NO_STATS /* stats=0 builds count nothing */
		cmocka_unit_test_setup_teardown(stats_counts_outcomes_bytes_durations_and_parents,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(stats_rate_windows_forget_old_seconds, setup,
		                                teardown),
#endif
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
