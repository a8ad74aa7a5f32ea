/*
 * history_bench.c - what the status page's history costs a request (issue 11): the time of
 * one history_note() call (daemon/history.c: chart rings, five top-list sketches, the recent
 * ring, under the worker's own uncontended mutex) over a skewed stream of 5,000 hosts and 500
 * clients (or uniform hosts: "history_bench N flat"), and the time to read the merged series,
 * top lists and recent requests the pages render. Not a test: its figures depend on the
 * machine. Run build/bench/history_bench [N [flat]].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/history.h"
#include "daemon/log.h"
#include "webui/ui_series.h"

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_state = 88172645463325252ull;

static uint64_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

int
main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 2000000;
	enum { NHOSTS = 5000, NCLIENTS = 500 };
	static char hosts[NHOSTS][40], clients[NCLIENTS][24], urls[NHOSTS][80];
	for (int i = 0; i < NHOSTS; i++) {
		snprintf(hosts[i], sizeof(hosts[i]), "host%d.example.org", i);
		snprintf(urls[i], sizeof(urls[i]), "http://host%d.example.org/some/path?x=1", i);
	}
	for (int i = 0; i < NCLIENTS; i++)
		snprintf(clients[i], sizeof(clients[i]), "10.1.%d.%d", i / 250, i % 250);
	/* hosts: Zipf (weight 1 / rank), as an office's traffic is; "flat" in argv[2]: uniform
	 * over all 5,000, the worst case (nearly every request replaces a counter) */
	int flat = argc > 2 && strcmp(argv[2], "flat") == 0;
	static double cum[NHOSTS];
	double sum = 0;
	for (int k = 0; k < NHOSTS; k++)
		cum[k] = (sum += 1.0 / (k + 1));
	int *hi = malloc((size_t)n * sizeof(int)), *ci = malloc((size_t)n * sizeof(int));
	if (hi == NULL || ci == NULL)
		return 1;
	for (long i = 0; i < n; i++) {
		if (flat) {
			hi[i] = (int)(rng() % NHOSTS);
		} else {
			double u = (double)(rng() >> 11) / (double)(1ull << 53) * sum;
			int lo = 0, up = NHOSTS - 1;
			while (lo < up) {
				int mid = (lo + up) / 2;
				if (cum[mid] < u)
					lo = mid + 1;
				else
					up = mid;
			}
			hi[i] = lo;
		}
		ci[i] = (int)(rng() % NCLIENTS);
	}
	printf("hosts: %s over %d, clients: uniform over %d\n", flat ? "uniform" : "Zipf", NHOSTS,
	       NCLIENTS);
	uint64_t t0_us = (uint64_t)time(NULL) * 1000000;
	struct alog_entry e = {
		.elapsed_ms = 3, .action = "TCP_HIT", .status = 200, .bytes = 4096, .method = "GET",
		.user = "-", .hier = "HIER_NONE", .peer = "-", .ctype = "text/html",
	};
	double t = now_s();
	for (long i = 0; i < n; i++) {
		e.start_us = t0_us + (uint64_t)i * 100;    /* 10,000 requests/s of wall time */
		e.client = clients[ci[i]];
		e.url = urls[hi[i]];
		history_note(0, &e, hosts[hi[i]], 0, NULL);
	}
	double dt = now_s() - t;
	printf("history_note: %ld calls, %.1f ns/call\n", n, dt * 1e9 / (double)n);

	const struct ui_series_ops *ops = history_ui_ops();
	int64_t at = (int64_t)((t0_us + (uint64_t)n * 100) / 1000000);
	struct ui_series *s = malloc(sizeof(*s));
	struct ui_top *top = malloc(sizeof(*top));
	struct ui_recent *r = malloc(UI_RECENT_MAX * sizeof(*r));
	if (s == NULL || top == NULL || r == NULL)
		return 1;
	int reps = 200;
	t = now_s();
	for (int i = 0; i < reps; i++)
		ops->series(NULL, UI_SPAN_HOUR, at, s);
	printf("series (hour): %.1f us/read\n", (now_s() - t) * 1e6 / reps);
	t = now_s();
	for (int i = 0; i < reps; i++)
		for (int k = 0; k < UI_TOP_NKIND; k++)
			ops->top(NULL, (enum ui_top_kind)k, at, top);
	printf("top (all five lists): %.1f us/read\n", (now_s() - t) * 1e6 / reps);
	t = now_s();
	for (int i = 0; i < reps; i++)
		ops->recent(NULL, r, UI_RECENT_MAX);
	printf("recent: %.1f us/read\n", (now_s() - t) * 1e6 / reps);
	ops->top(NULL, UI_TOP_HOSTS_REQ, at, top);
	printf("top host: %s %llu +- %llu\n", top->item[0].key,
	       (unsigned long long)top->item[0].count, (unsigned long long)top->item[0].err);
	free(s);
	free(top);
	free(r);
	free(hi);
	free(ci);
	return 0;
}
