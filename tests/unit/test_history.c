/*
 * test_history.c - the status page's history (daemon/history.c) through its webui table:
 * requests noted by two workers sum in the chart series (hits, bytes both ways, upstream
 * errors), the top lists name hosts, clients and a blocked host with its rule, the previous
 * hour counts only for its part inside the last 60 minutes, and the recent requests come
 * newest first across workers, capped at UI_RECENT_MAX. Two writer threads and a reader at
 * once lose nothing and read only whole entries (run under ASan in the sanitizer build).
 * A run of requests for one host and client, gathered before it reaches the sketches,
 * counts in the hour it was noted in, and interleaved keys read between writes lose nothing.
 * Users (issue 14): only a name in the log entry's user field counts ("-" and NULL are no
 * user), by requests and bytes, their total is the authenticated traffic, runs of one user
 * interleaved with others lose nothing, recent requests carry the user, and thousands of
 * names keep the list bounded with the heavy user on top.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/history.h"
#include "daemon/log.h"
#include "webui/ui_series.h"

#define T0 1800000000LL   /* a multiple of 3600 */

static void
note(unsigned id, int64_t t, const char *client, const char *host, const char *action,
     int status, uint64_t bytes, uint64_t up, const char *rule)
{
	char url[300];
	snprintf(url, sizeof(url), "http://%s/x", host);
	struct alog_entry e = {
		.start_us = (uint64_t)t * 1000000, .elapsed_ms = 0, .client = client,
		.action = action, .status = status, .bytes = bytes, .method = "GET", .url = url,
	};
	history_note(id, &e, host, up, rule);
}

static void
history_series_top_and_recent(void **state)
{
	(void)state;
	const struct ui_series_ops *ops = history_ui_ops();
	for (int i = 0; i < 30; i++)
		note(i % 2, T0 + 100 + i, "10.0.0.1", "big.example", "TCP_MISS", 200, 1000, 900, NULL);
	for (int i = 0; i < 10; i++)
		note(1, T0 + 100 + i, "10.0.0.2", "big.example", "TCP_HIT", 200, 500, 0, NULL);
	note(0, T0 + 200, "10.0.0.2", "small.example", "TCP_MISS", 502, 300, 0, NULL);
	note(1, T0 + 201, "10.0.0.3", "ads.example", "TCP_DENIED", 403, 200, 0,
	     "ProxyBlock ads.example (gh.conf:7)");

	struct ui_series *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	assert_int_equal(ops->series(NULL, UI_SPAN_HOUR, T0 + 205, s), 0);
	assert_int_equal(s->res, 10);
	assert_int_equal(s->n, 360);
	assert_int_equal(s->start + 360 * 10, T0 + 210);
	uint64_t sum[UI_SERIES_NMETRIC] = {0};
	for (unsigned i = 0; i < s->n; i++)
		for (int m = 0; m < UI_SERIES_NMETRIC; m++)
			sum[m] += s->v[i][m];
	assert_int_equal(sum[UI_SERIES_REQUESTS], 42);
	assert_int_equal(sum[UI_SERIES_HITS], 10);
	assert_int_equal(sum[UI_SERIES_BYTES_CLIENT], 30 * 1000 + 10 * 500 + 300 + 200);
	assert_int_equal(sum[UI_SERIES_BYTES_UPSTREAM], 30 * 900);
	assert_int_equal(sum[UI_SERIES_UP_ERRORS], 1);
	/* the day view holds the same requests in 5-minute points */
	assert_int_equal(ops->series(NULL, UI_SPAN_DAY, T0 + 205, s), 0);
	assert_int_equal(s->res, 300);
	assert_int_equal(s->v[287][UI_SERIES_REQUESTS], 42);

	struct ui_top *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	assert_int_equal(ops->top(NULL, UI_TOP_HOSTS_REQ, T0 + 300, t), 0);
	assert_int_equal(t->n, 3);
	assert_string_equal(t->item[0].key, "big.example");
	assert_int_equal(t->item[0].count, 40);
	assert_int_equal(t->total, 42);
	assert_int_equal(ops->top(NULL, UI_TOP_CLIENTS_BYTES, T0 + 300, t), 0);
	assert_string_equal(t->item[0].key, "10.0.0.1");
	assert_int_equal(t->item[0].count, 30000);
	assert_string_equal(t->item[1].key, "10.0.0.2");
	assert_int_equal(t->item[1].count, 5300);
	assert_int_equal(ops->top(NULL, UI_TOP_BLOCKED, T0 + 300, t), 0);
	assert_int_equal(t->n, 1);
	assert_string_equal(t->item[0].key, "ads.example");
	assert_string_equal(t->item[0].note, "ProxyBlock ads.example (gh.conf:7)");
	/* 45 minutes into the next hour: a quarter of the previous one still counts */
	assert_int_equal(ops->top(NULL, UI_TOP_HOSTS_REQ, T0 + 3600 + 2700, t), 0);
	assert_string_equal(t->item[0].key, "big.example");
	assert_in_range(t->item[0].count, 10 - 2, 10);  /* 40 / 4, rounded down per worker */
	/* two hours later: nothing */
	assert_int_equal(ops->top(NULL, UI_TOP_HOSTS_REQ, T0 + 7200, t), 0);
	assert_int_equal(t->n, 0);

	struct ui_recent *r = calloc(UI_RECENT_MAX, sizeof(*r));
	assert_non_null(r);
	size_t n = ops->recent(NULL, r, UI_RECENT_MAX);
	assert_int_equal(n, 42);
	assert_string_equal(r[0].host, "ads.example");        /* newest first, worker 1 */
	assert_string_equal(r[0].action, "TCP_DENIED");
	assert_int_equal(r[0].status, 403);
	assert_string_equal(r[1].host, "small.example");      /* worker 0 */
	assert_int_equal(r[1].status, 502);
	assert_string_equal(r[1].url, "http://small.example/x");
	for (size_t i = 1; i < n; i++)
		assert_true(r[i - 1].t_ms >= r[i].t_ms);
	/* the ring keeps the last UI_RECENT_MAX per worker, the merge the newest overall */
	for (int i = 0; i < 300; i++)
		note(0, T0 + 1000 + i, "10.0.0.9", "many.example", "TCP_MISS", 200, 1, 1, NULL);
	n = ops->recent(NULL, r, UI_RECENT_MAX);
	assert_int_equal(n, UI_RECENT_MAX);
	assert_int_equal(r[0].t_ms, (T0 + 1299) * 1000);
	assert_int_equal(r[UI_RECENT_MAX - 1].t_ms, (T0 + 1100) * 1000);
	free(r);
	free(t);
	free(s);
}

#define T1 1900000800LL     /* another hour, far from the first test's */
#define NPER 20000

static atomic_int writers_done;

static void *
writer(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	char host[32];
	for (int i = 0; i < NPER; i++) {
		snprintf(host, sizeof(host), "w%u-h%d.example", id, i % 300);
		note(id, T1 + i % 600, "10.2.0.1", host, i % 4 ? "TCP_MISS" : "TCP_HIT", 200, 100, 50,
		     NULL);
	}
	atomic_fetch_add(&writers_done, 1);
	return NULL;
}

static void *
reader(void *arg)
{
	(void)arg;
	const struct ui_series_ops *ops = history_ui_ops();
	struct ui_recent *r = calloc(UI_RECENT_MAX, sizeof(*r));
	struct ui_series *s = calloc(1, sizeof(*s));
	struct ui_top *t = calloc(1, sizeof(*t));
	long reads = 0;
	while (atomic_load(&writers_done) < 2 || reads < 10) {
		size_t n = ops->recent(NULL, r, UI_RECENT_MAX);
		for (size_t i = 0; i < n; i++)   /* whole entries: host and URL agree */
			if (strncmp(r[i].host, "w3", 2) == 0 || strncmp(r[i].host, "w4", 2) == 0)
				assert_non_null(strstr(r[i].url, r[i].host));
		ops->series(NULL, UI_SPAN_HOUR, T1 + 600, s);
		ops->top(NULL, UI_TOP_HOSTS_REQ, T1 + 600, t);
		reads++;
	}
	free(r);
	free(s);
	free(t);
	return NULL;
}

static void
history_writers_and_a_reader_at_once(void **state)
{
	(void)state;
	pthread_t w1, w2, rd;
	assert_int_equal(pthread_create(&rd, NULL, reader, NULL), 0);
	assert_int_equal(pthread_create(&w1, NULL, writer, (void *)(uintptr_t)3), 0);
	assert_int_equal(pthread_create(&w2, NULL, writer, (void *)(uintptr_t)4), 0);
	pthread_join(w1, NULL);
	pthread_join(w2, NULL);
	pthread_join(rd, NULL);
	const struct ui_series_ops *ops = history_ui_ops();
	struct ui_series *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	assert_int_equal(ops->series(NULL, UI_SPAN_HOUR, T1 + 600, s), 0);
	uint64_t req = 0, hits = 0, up = 0;
	for (unsigned i = 0; i < s->n; i++) {
		req += s->v[i][UI_SERIES_REQUESTS];
		hits += s->v[i][UI_SERIES_HITS];
		up += s->v[i][UI_SERIES_BYTES_UPSTREAM];
	}
	assert_int_equal(req, 2 * NPER);
	assert_int_equal(hits, 2 * NPER / 4);
	assert_int_equal(up, 2 * NPER * 50);
	struct ui_top *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	assert_int_equal(ops->top(NULL, UI_TOP_CLIENTS_REQ, T1 + 600, t), 0);
	assert_string_equal(t->item[0].key, "10.2.0.1");
	assert_int_equal(t->item[0].count, 2 * NPER);
	free(t);
	free(s);
}

#define T2 2000001600LL     /* a third hour (a multiple of 3600), far from the others */

/* A run of requests for one host and client is gathered and put into the sketches later
 * (history.c): the part noted in one hour must count for that hour, not for the next one
 * in which the run goes on, and runs interleaved with other keys lose nothing. */
static void
history_runs_keep_their_hour(void **state)
{
	(void)state;
	const struct ui_series_ops *ops = history_ui_ops();
	for (int i = 0; i < 8; i++)
		note(6, T2 + 100 + i, "10.6.0.1", "run.example", "TCP_HIT", 200, 10, 0, NULL);
	note(6, T2 + 3600 + 10, "10.6.0.1", "run.example", "TCP_HIT", 200, 10, 0, NULL);
	struct ui_top *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	/* half-way through the next hour: 8 / 2 of the previous hour, 1 of this one */
	assert_int_equal(ops->top(NULL, UI_TOP_HOSTS_REQ, T2 + 3600 + 1800, t), 0);
	assert_int_equal(t->n, 1);
	assert_string_equal(t->item[0].key, "run.example");
	assert_int_equal(t->item[0].count, 5);
	assert_int_equal(ops->top(NULL, UI_TOP_CLIENTS_BYTES, T2 + 3600 + 1800, t), 0);
	assert_int_equal(t->item[0].count, 50);
	/* interleaved keys, read between the writes: every request counted once */
	for (int i = 0; i < 30; i++) {
		note(6, T2 + 3700 + i, i % 3 ? "10.6.0.2" : "10.6.0.3", i % 2 ? "a.example" : "b.example",
		     "TCP_MISS", 200, 100, 100, NULL);
		if (i % 7 == 0)
			assert_int_equal(ops->top(NULL, UI_TOP_HOSTS_REQ, T2 + 3700 + i, t), 0);
	}
	assert_int_equal(ops->top(NULL, UI_TOP_HOSTS_REQ, T2 + 3800, t), 0);
	/* this hour 30 + 1; of the previous one, 3400 s of 3600 are still inside the hour */
	assert_int_equal(t->total, 30 + 1 + 8 * 3400 / 3600);
	uint64_t a = 0, b = 0;
	for (size_t i = 0; i < t->n; i++) {
		if (strcmp(t->item[i].key, "a.example") == 0)
			a = t->item[i].count;
		if (strcmp(t->item[i].key, "b.example") == 0)
			b = t->item[i].count;
	}
	assert_int_equal(a, 15);
	assert_int_equal(b, 15);
	assert_int_equal(ops->top(NULL, UI_TOP_CLIENTS_REQ, T2 + 3800, t), 0);
	uint64_t c3 = 0;
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->item[i].key, "10.6.0.3") == 0)
			c3 = t->item[i].count;
	assert_int_equal(c3, 10);
	free(t);
}

#define T3 2099998800LL     /* a fourth hour (a multiple of 3600), after every other one */

static void
note_user(unsigned id, int64_t t, const char *client, const char *user, uint64_t bytes)
{
	struct alog_entry e = {
		.start_us = (uint64_t)t * 1000000, .elapsed_ms = 0, .client = client,
		.action = "TCP_MISS", .status = 200, .bytes = bytes, .method = "GET",
		.url = "http://users.example/", .user = user,
	};
	history_note(id, &e, "users.example", bytes, NULL);
}

static void
history_users_top_and_recent(void **state)
{
	(void)state;
	const struct ui_series_ops *ops = history_ui_ops();
	/* alice on two workers, bob on one, interleaved with unauthenticated requests */
	for (int i = 0; i < 12; i++) {
		note_user(7 + i % 2, T3 + 10 + i, "10.7.0.1", "alice", 100);
		if (i % 3 == 0)
			note_user(7, T3 + 10 + i, "10.7.0.2", "bob", 1000);
		note_user(8, T3 + 10 + i, "10.7.0.3", "-", 5);
		note_user(8, T3 + 10 + i, "10.7.0.3", NULL, 5);
	}
	note_user(7, T3 + 30, "10.7.0.2", "<b>carol</b>", 1);

	struct ui_top *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	assert_int_equal(ops->top(NULL, UI_TOP_USERS_REQ, T3 + 60, t), 0);
	assert_int_equal(t->n, 3);
	assert_string_equal(t->item[0].key, "alice");
	assert_int_equal(t->item[0].count, 12);
	assert_int_equal(t->item[0].err, 0);
	assert_string_equal(t->item[1].key, "bob");
	assert_int_equal(t->item[1].count, 4);
	assert_string_equal(t->item[2].key, "<b>carol</b>");  /* raw here: the page escapes */
	assert_int_equal(t->total, 17);                        /* authenticated requests only */
	for (size_t i = 0; i < t->n; i++)
		assert_string_not_equal(t->item[i].key, "-");
	assert_int_equal(ops->top(NULL, UI_TOP_USERS_BYTES, T3 + 60, t), 0);
	assert_string_equal(t->item[0].key, "bob");
	assert_int_equal(t->item[0].count, 4000);
	assert_string_equal(t->item[1].key, "alice");
	assert_int_equal(t->item[1].count, 1200);
	/* the clients' lists still count every request */
	assert_int_equal(ops->top(NULL, UI_TOP_CLIENTS_REQ, T3 + 60, t), 0);
	assert_int_equal(t->total, 12 + 4 + 24 + 1);

	struct ui_recent *r = calloc(UI_RECENT_MAX, sizeof(*r));
	assert_non_null(r);
	size_t n = ops->recent(NULL, r, UI_RECENT_MAX);
	assert_true(n >= 41);
	assert_string_equal(r[0].user, "<b>carol</b>");       /* the newest */
	int alice = 0, nouser = 0;
	for (size_t i = 0; i < 41; i++) {
		if (strcmp(r[i].client, "10.7.0.1") == 0) {
			assert_string_equal(r[i].user, "alice");
			alice++;
		}
		if (strcmp(r[i].client, "10.7.0.3") == 0) {
			assert_string_equal(r[i].user, "");
			nouser++;
		}
	}
	assert_int_equal(alice, 12);
	assert_int_equal(nouser, 24);

	/* bounded like the other lists: 3,000 distinct names (an office's worth and more) keep
	 * at most SKETCH_CAP counters per worker and hour; the heavy user stays on top, exact
	 * within its error bound */
	char name[32];
	for (int i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "user%04d", i);
		note_user(9, T3 + 100 + i / 100, "10.7.0.9", name, 1);
		if (i % 10 == 0)
			note_user(9, T3 + 100 + i / 100, "10.7.0.9", "heavy", 1);
	}
	assert_int_equal(ops->top(NULL, UI_TOP_USERS_REQ, T3 + 200, t), 0);
	assert_int_equal(t->n, UI_TOP_MAX);
	assert_string_equal(t->item[0].key, "heavy");
	assert_true(t->item[0].count - t->item[0].err <= 300 && 300 <= t->item[0].count);
	assert_int_equal(t->total, 17 + 3000 + 300);
	free(r);
	free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(history_series_top_and_recent),
		cmocka_unit_test(history_writers_and_a_reader_at_once),
		cmocka_unit_test(history_runs_keep_their_hour),
		cmocka_unit_test(history_users_top_and_recent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
