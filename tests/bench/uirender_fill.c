/*
 * uirender_fill.c - fill a cache store directly through cache/ (no HTTP) with N small entries
 * for the status page's rendering benchmark (tests/bench/uirender.sh): URLs
 * http://hostNNN.bench/dir/NNNNNNN/file (1000 hosts), each a 200 with a small body, one
 * commit per entry with CacheSync none (the daemon later opens the directory).
 *
 * usage: uirender_fill DIR N [SIZE_BYTES]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/cache.h"

static double
uirender_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	struct cache_store_conf sc;
	struct cache_conf conf;
	struct cache_store *s = NULL;
	char err[256], url[128];
	long n;
	double t0;
	static const char body[64] = "bench body bench body bench body bench body bench body ...\n";

	if (argc < 3) {
		fprintf(stderr, "usage: %s DIR N [SIZE_BYTES]\n", argv[0]);
		return 2;
	}
	n = atol(argv[2]);
	cache_store_conf_default(&sc);
	sc.root = argv[1];
	sc.size = argc > 3 ? strtoull(argv[3], NULL, 10) : (8ull << 30);
	sc.sync = CACHE_SYNC_NONE;
	cache_conf_default(&conf);
	if (cache_store_open(&sc, &s, err, sizeof(err)) != CACHE_OK) {
		fprintf(stderr, "open: %s\n", err);
		return 1;
	}
	static const struct cache_hdr h[] = {
		{{"Cache-Control", 13}, {"max-age=86400", 13}},
		{{"Content-Type", 12}, {"application/octet-stream", 24}},
		{{"Date", 4}, {"Fri, 04 Dec 2026 20:00:00 GMT", 29}},
	};
	struct cache_hdrs hs = {h, 3};
	int64_t now = (int64_t)time(NULL);

	t0 = uirender_now();
	for (long i = 0; i < n; i++) {
		struct cache_entry *e = NULL;
		struct cache_fill *f = NULL;
		int ul = snprintf(url, sizeof(url), "http://host%03ld.bench/dir/%07ld/file", i % 1000,
		                  i);
		struct cache_request req = {CACHE_M_GET, {url, (size_t)ul}, {NULL, 0}};

		if (cache_entry_build(&conf, &req, 200, &hs, now, now, &e) != CACHE_OK ||
		    cache_fill_begin(s, url, (size_t)ul, &e->meta, NULL, sizeof(body), &f) != CACHE_OK ||
		    cache_fill_append(f, body, sizeof(body)) != CACHE_OK ||
		    cache_fill_commit(f, sizeof(body)) != CACHE_OK) {
			fprintf(stderr, "fill %ld failed\n", i);
			cache_entry_free(e);
			cache_store_close(s);
			return 1;
		}
		cache_entry_free(e);
		if (i && i % 100000 == 0)
			fprintf(stderr, "%ld entries, %.1f s\n", i, uirender_now() - t0);
	}
	struct cache_stats st;

	cache_store_stats(s, &st);
	printf("filled %ld entries in %.1f s; store: %" PRIu64 " entries, %" PRIu64 " bytes\n", n,
	       uirender_now() - t0, st.entries, st.bytes_used);
	cache_store_close(s);
	return 0;
}
