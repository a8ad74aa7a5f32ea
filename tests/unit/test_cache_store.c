/*
 * test_cache_store.c - cache/ on a real LMDB environment in a mkdtemp directory: round trips,
 * chunking of a 20 MB object, fills invisible until commit, aborts leaving nothing, replaced
 * versions, Vary variants, transparent compression, eviction under a small CacheSize while
 * twice that passes through, LRU order, MDB_MAP_FULL recovery, purge/list/clear, 304
 * updates, persistence across reopen, orphan sweeping, concurrent readers and writers, and
 * kill -9 of a writing child process followed by reopen and verification.
 *
 * Bodies are generated from (seed, offset), so every read is compared byte for byte; the
 * accounting is compared with a full recount (cache_store_check) after each scenario.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"
#include "cache/cache_priv.h" /* cache_sha256, cache_be64: to damage a store on purpose */

#define T0 1700000000ll
#define MiB (1ull << 20)

/* ---- header fixtures ("Name: value" lines separated by '\n') ---- */

struct th {
	char buf[2048];
	struct cache_hdr h[32];
	struct cache_hdrs hs;
};

static struct cache_hdrs *
th_parse(struct th *t, const char *spec)
{
	char *save = NULL;

	t->hs.v = t->h;
	t->hs.n = 0;
	if (!spec)
		return &t->hs;
	snprintf(t->buf, sizeof(t->buf), "%s", spec);
	for (char *line = strtok_r(t->buf, "\n", &save); line && t->hs.n < 32;
	     line = strtok_r(NULL, "\n", &save)) {
		char *colon = strchr(line, ':');

		if (!colon)
			continue;
		char *v = colon + 1;

		while (*v == ' ')
			v++;
		t->h[t->hs.n].name = (struct cache_str){line, (size_t)(colon - line)};
		t->h[t->hs.n].value = (struct cache_str){v, strlen(v)};
		t->hs.n++;
	}
	return &t->hs;
}

/* ---- bodies ---- */

static uint64_t
ts_mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Random-looking bytes (kind 0) or compressible text lines (kind 1) at offset off. */
static void
ts_gen(uint64_t seed, int kind, uint64_t off, unsigned char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t o = off + i;

		if (kind == 0) {
			uint64_t x = ts_mix(seed * 0x9e3779b97f4a7c15ull + o / 8);

			buf[i] = (unsigned char)(x >> (8 * (o % 8)));
		} else {
			static const char line[] =
				"the quick brown fox jumps over the lazy dog 0123456789\n";
			uint64_t l = o / (sizeof(line) - 1);

			buf[i] = (unsigned char)line[o % (sizeof(line) - 1)];
			if (o % (sizeof(line) - 1) == 0)
				buf[i] = (unsigned char)('a' + (l + seed) % 26);
		}
	}
}

/* ---- store fixture ---- */

struct ts {
	char dir[64];
	struct cache_store_conf sc;
	struct cache_conf conf;
	struct cache_store *s;
	struct cache_reader *r;
};

static void
ts_open_conf(struct ts *t)
{
	char err[256];
	int rc = cache_store_open(&t->sc, &t->s, err, sizeof(err));

	if (rc != CACHE_OK)
		fail_msg("open %s: %s (%s)", t->dir, err, cache_strerror(rc));
	t->r = cache_reader_new(t->s);
	assert_non_null(t->r);
}

static void
ts_open(struct ts *t, uint64_t size)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/gh-cache-test-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	cache_store_conf_default(&t->sc);
	t->sc.root = t->dir;
	t->sc.size = size;
	cache_conf_default(&t->conf);
	ts_open_conf(t);
}

static void
ts_close(struct ts *t)
{
	cache_reader_free(t->r);
	t->r = NULL;
	cache_store_close(t->s);
	t->s = NULL;
}

static void
ts_reopen(struct ts *t)
{
	ts_close(t);
	ts_open_conf(t);
}

static void
ts_cleanup(struct ts *t)
{
	static const char *const files[] = {"data.mdb", "lock.mdb", "gatehouse.lock"};
	char p[128];

	if (t->s)
		ts_close(t);
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", t->dir, files[i]);
		unlink(p);
	}
	assert_int_equal(rmdir(t->dir), 0);
}

/* The meta for a 200 response with hdrs. */
static struct cache_entry *
ts_meta(struct ts *t, const char *url, int status, const char *hdrs)
{
	struct th h;
	struct cache_request req = {CACHE_M_GET, {url, strlen(url)}, {NULL, 0}};
	struct cache_entry *e = NULL;

	if (cache_entry_build(&t->conf, &req, status, th_parse(&h, hdrs), T0, T0, &e) != CACHE_OK)
		return NULL;
	return e;
}

#define TS_PIECE 65521u

/* Store a generated body; returns the commit's result (no cmocka calls: usable in children). */
static int
ts_store_kind(struct ts *t, const char *url, const char *hdrs, const char *req_hdrs,
              uint64_t size, uint64_t seed, int kind)
{
	struct th rq;
	struct cache_fill *f = NULL;
	struct cache_entry *e = ts_meta(t, url, 200, hdrs);
	unsigned char *piece = malloc(TS_PIECE);
	int rc;

	if (!e || !piece) {
		cache_entry_free(e);
		free(piece);
		return CACHE_ENOMEM;
	}
	rc = cache_fill_begin(t->s, url, strlen(url), &e->meta, th_parse(&rq, req_hdrs),
	                      (int64_t)size, &f);
	cache_entry_free(e);
	if (rc) {
		free(piece);
		return rc;
	}
	for (uint64_t off = 0; off < size && !rc; off += TS_PIECE) {
		size_t n = size - off < TS_PIECE ? (size_t)(size - off) : TS_PIECE;

		ts_gen(seed, kind, off, piece, n);
		rc = cache_fill_append(f, piece, n);
	}
	free(piece);
	if (rc) {
		cache_fill_abort(f);
		return rc;
	}
	return cache_fill_commit(f, (int64_t)size);
}

static int
ts_store(struct ts *t, const char *url, uint64_t size, uint64_t seed)
{
	return ts_store_kind(t, url,
	                     "Cache-Control: max-age=600\nContent-Type: application/octet-stream",
	                     NULL, size, seed, 0);
}

/* 1: present and intact, 0: absent, -1: present but wrong. No cmocka calls. */
static int
ts_verify_kind(struct cache_reader *r, const char *url, const char *req_hdrs, uint64_t size,
               uint64_t seed, int kind)
{
	struct th rq;
	struct cache_entry *e = NULL;
	unsigned char *got, *want;
	int rc = cache_lookup(r, url, strlen(url), th_parse(&rq, req_hdrs), 0, &e), ok = 1;

	if (rc == CACHE_MISS || rc == CACHE_VARY_MISS)
		return 0;
	if (rc != CACHE_HIT)
		return -1;
	got = malloc(CACHE_CHUNK_SIZE);
	want = malloc(CACHE_CHUNK_SIZE);
	if (!got || !want) {
		free(got);
		free(want);
		cache_entry_free(e);
		return -1;
	}
	if (e->meta.body_size != size ||
	    e->meta.nchunks != (size + CACHE_CHUNK_SIZE - 1) / CACHE_CHUNK_SIZE)
		ok = -1;
	if (ok == 1 && e->body) {
		ts_gen(seed, kind, 0, want, size);
		if (e->body_len != size || memcmp(e->body, want, size))
			ok = -1;
	}
	for (uint32_t i = 0; ok == 1 && !e->body && i < e->meta.nchunks; i++) {
		size_t len = 0;
		uint64_t off = (uint64_t)i * CACHE_CHUNK_SIZE;
		size_t wl = size - off < CACHE_CHUNK_SIZE ? (size_t)(size - off) : CACHE_CHUNK_SIZE;

		rc = cache_read_chunk_copy(r, e->meta.body_id, i, got, CACHE_CHUNK_SIZE, &len);
		if (rc == CACHE_ENOENT) {
			ok = 0; /* replaced or evicted while we read */
			break;
		}
		ts_gen(seed, kind, off, want, wl);
		if (rc || len != wl || memcmp(got, want, wl))
			ok = -1;
	}
	free(got);
	free(want);
	cache_entry_free(e);
	return ok;
}

static int
ts_verify(struct ts *t, const char *url, uint64_t size, uint64_t seed)
{
	return ts_verify_kind(t->r, url, NULL, size, seed, 0);
}

/* Let the GC finish, then compare the accounting with a recount; no orphans, nothing missing. */
static void
ts_consistent(struct ts *t)
{
	struct cache_check c;
	struct cache_stats st;

	for (int i = 0; i < 1000; i++) {
		assert_int_equal(cache_store_maintain(t->s), CACHE_OK);
		assert_int_equal(cache_store_check(t->s, &c), CACHE_OK);
		if (!c.orphan_chunks)
			break;
	}
	cache_store_stats(t->s, &st);
	assert_int_equal(c.orphan_chunks, 0);
	assert_int_equal(c.missing_chunks, 0);
	assert_int_equal(c.orphan_lru, 0);
	assert_int_equal(c.orphan_url, 0);
	assert_int_equal(c.missing_lru, 0);
	assert_int_equal(c.entries, st.entries);
	assert_int_equal(c.bytes, st.bytes_used);
}

/* ---- tests ---- */

static void
store_round_trip_small(void **state)
{
	struct ts t;
	struct cache_entry *e = NULL;
	struct cache_stats st;

	(void)state;
	ts_open(&t, 16 * MiB);
	assert_int_equal(ts_store(&t, "http://t/a", 1000, 1), CACHE_OK);
	assert_int_equal(ts_verify(&t, "http://t/a", 1000, 1), 1);
	assert_int_equal(ts_verify(&t, "http://t/b", 1000, 1), 0);
	assert_int_equal(cache_lookup(t.r, "http://t/a", 10, NULL, 0, &e), CACHE_HIT);
	assert_non_null(e->body);
	assert_int_equal(e->meta.status, 200);
	assert_int_equal(e->meta.cc.max_age, 600);
	assert_string_equal(e->meta.url.p, "http://t/a");
	assert_int_equal(e->keylen, 32);
	assert_memory_equal(cache_entry_header(e, "Content-Type").p, "application/octet-stream",
	                    24);
	cache_entry_free(e);
	/* HEAD: no body copied */
	assert_int_equal(cache_lookup(t.r, "http://t/a", 10, NULL, CACHE_LOOKUP_NO_BODY, &e),
	                 CACHE_HIT);
	assert_null(e->body);
	cache_entry_free(e);
	/* an empty body (a 204, or a synthesized object) */
	struct cache_entry *m = ts_meta(&t, "ftp://f/pub/empty", 204,
	                                "Content-Type: text/plain\n"
	                                "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT");
	struct cache_fill *f = NULL;

	assert_int_equal(cache_fill_begin(t.s, "ftp://f/pub/empty", 17, &m->meta, NULL, 0, &f),
	                 CACHE_OK);
	cache_entry_free(m);
	assert_int_equal(cache_fill_commit(f, 0), CACHE_OK);
	assert_int_equal(cache_lookup(t.r, "ftp://f/pub/empty", 17, NULL, 0, &e), CACHE_HIT);
	assert_non_null(e->body);
	assert_int_equal(e->body_len, 0);
	assert_int_equal(e->meta.nchunks, 0);
	assert_int_equal(e->meta.status, 204);
	assert_int_equal(e->meta.last_modified, 784111777);
	cache_entry_free(e);
	cache_store_stats(t.s, &st);
	assert_int_equal(st.entries, 2);
	assert_int_equal(st.fills_committed, 2);
	assert_true(st.bytes_used > 1000 && st.bytes_used < 20000);
	ts_consistent(&t);
	ts_cleanup(&t);
}

static int
ts_sum_cb(void *arg, const unsigned char *data, size_t len)
{
	uint64_t *sum = arg;

	for (size_t i = 0; i < len; i++)
		*sum = *sum * 31 + data[i];
	return 7;
}

static void
store_chunking_20mb(void **state)
{
	struct ts t;
	struct cache_entry *e = NULL;
	uint64_t size = 20 * MiB + 12345, sum = 0, want = 0;
	unsigned char *buf = malloc(CACHE_CHUNK_SIZE);
	size_t len;

	(void)state;
	assert_non_null(buf);
	ts_open(&t, 64 * MiB);
	assert_int_equal(ts_store(&t, "http://t/big", size, 9), CACHE_OK);
	assert_int_equal(ts_verify(&t, "http://t/big", size, 9), 1);
	assert_int_equal(cache_lookup(t.r, "http://t/big", 12, NULL, 0, &e), CACHE_HIT);
	assert_null(e->body);
	assert_int_equal(e->meta.nchunks, (size + CACHE_CHUNK_SIZE - 1) / CACHE_CHUNK_SIZE);
	/* a Range seek: the chunk holding byte 10 MiB, through the zero-copy callback */
	uint32_t idx = (uint32_t)(10 * MiB / CACHE_CHUNK_SIZE);

	assert_int_equal(cache_read_chunk(t.r, e->meta.body_id, idx, ts_sum_cb, &sum), 7);
	ts_gen(9, 0, (uint64_t)idx * CACHE_CHUNK_SIZE, buf, CACHE_CHUNK_SIZE);
	for (size_t i = 0; i < CACHE_CHUNK_SIZE; i++)
		want = want * 31 + buf[i];
	assert_true(sum == want);
	/* the last chunk is short; past it there is nothing */
	assert_int_equal(cache_read_chunk_copy(t.r, e->meta.body_id, e->meta.nchunks - 1, buf,
	                                       CACHE_CHUNK_SIZE, &len), CACHE_OK);
	assert_int_equal(len, size % CACHE_CHUNK_SIZE);
	assert_int_equal(cache_read_chunk_copy(t.r, e->meta.body_id, e->meta.nchunks, buf,
	                                       CACHE_CHUNK_SIZE, &len), CACHE_ENOENT);
	/* a buffer too small for a chunk */
	assert_int_equal(cache_read_chunk_copy(t.r, e->meta.body_id, 0, buf, 100, &len),
	                 CACHE_EINVAL);
	cache_entry_free(e);
	ts_consistent(&t);
	free(buf);
	ts_cleanup(&t);
}

static void
store_fill_invisible_until_commit(void **state)
{
	struct ts t;
	struct cache_entry *m, *e = NULL;
	struct cache_fill *f = NULL;
	unsigned char *buf = malloc(CACHE_CHUNK_SIZE);
	size_t len;

	(void)state;
	ts_open(&t, 16 * MiB);
	m = ts_meta(&t, "http://t/slow", 200, "Cache-Control: max-age=60");
	assert_int_equal(cache_fill_begin(t.s, "http://t/slow", 13, &m->meta, NULL, -1, &f),
	                 CACHE_OK);
	cache_entry_free(m);
	ts_gen(3, 0, 0, buf, CACHE_CHUNK_SIZE);
	assert_int_equal(cache_fill_append(f, buf, CACHE_CHUNK_SIZE), CACHE_OK);
	assert_int_equal(cache_fill_append(f, buf, 100), CACHE_OK);
	/* one chunk committed and readable by a collapsed follower; no entry yet */
	assert_int_equal(cache_fill_chunks(f), 1);
	assert_int_equal(cache_lookup(t.r, "http://t/slow", 13, NULL, 0, &e), CACHE_MISS);
	assert_int_equal(cache_read_chunk_copy(t.r, cache_fill_body_id(f), 0, buf, CACHE_CHUNK_SIZE,
	                                       &len), CACHE_OK);
	assert_int_equal(len, CACHE_CHUNK_SIZE);
	assert_int_equal(cache_read_chunk_copy(t.r, cache_fill_body_id(f), 1, buf, CACHE_CHUNK_SIZE,
	                                       &len), CACHE_ENOENT);
	assert_int_equal(cache_fill_commit(f, CACHE_CHUNK_SIZE + 100), CACHE_OK);
	assert_int_equal(cache_lookup(t.r, "http://t/slow", 13, NULL, 0, &e), CACHE_HIT);
	assert_int_equal(e->meta.body_size, CACHE_CHUNK_SIZE + 100);
	cache_entry_free(e);
	ts_consistent(&t);
	free(buf);
	ts_cleanup(&t);
}

static void
store_abort_leaves_nothing(void **state)
{
	struct ts t;
	struct cache_entry *m, *e = NULL;
	struct cache_fill *f = NULL;
	struct cache_stats st;
	struct cache_check c;
	unsigned char buf[4096];

	(void)state;
	ts_open(&t, 16 * MiB);
	m = ts_meta(&t, "http://t/ab", 200, "Cache-Control: max-age=60");
	assert_int_equal(cache_fill_begin(t.s, "http://t/ab", 11, &m->meta, NULL, -1, &f),
	                 CACHE_OK);
	memset(buf, 'x', sizeof(buf));
	for (int i = 0; i < 250; i++) /* ~1 MB: 3 chunks written, one partial */
		assert_int_equal(cache_fill_append(f, buf, sizeof(buf)), CACHE_OK);
	assert_int_equal(cache_fill_chunks(f), 3);
	cache_store_check(t.s, &c);
	assert_int_equal(c.chunks, 3);
	cache_fill_abort(f);
	assert_int_equal(cache_lookup(t.r, "http://t/ab", 11, NULL, 0, &e), CACHE_MISS);
	ts_consistent(&t);
	cache_store_check(t.s, &c);
	assert_int_equal(c.chunks, 0);
	cache_store_stats(t.s, &st);
	assert_int_equal(st.bytes_used, 0);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.fills_aborted, 1);
	/* a commit whose size does not match what the origin promised stores nothing */
	assert_int_equal(cache_fill_begin(t.s, "http://t/ab", 11, &m->meta, NULL, -1, &f),
	                 CACHE_OK);
	assert_int_equal(cache_fill_append(f, buf, sizeof(buf)), CACHE_OK);
	assert_int_equal(cache_fill_commit(f, 5000), CACHE_EINVAL);
	assert_int_equal(cache_lookup(t.r, "http://t/ab", 11, NULL, 0, &e), CACHE_MISS);
	/* too big for the store: refused at begin, or at the append that passes the limit */
	assert_int_equal(cache_fill_begin(t.s, "http://t/ab", 11, &m->meta, NULL, 64 * MiB, &f),
	                 CACHE_ETOOBIG);
	assert_int_equal(cache_fill_begin(t.s, "http://t/ab", 11, &m->meta, NULL, -1, &f),
	                 CACHE_OK);
	int rc = CACHE_OK;

	for (int i = 0; i < 4000 && rc == CACHE_OK; i++)
		rc = cache_fill_append(f, buf, sizeof(buf));
	assert_int_equal(rc, CACHE_ETOOBIG);
	assert_int_equal(cache_fill_append(f, buf, 1), CACHE_ETOOBIG);
	cache_fill_abort(f);
	cache_entry_free(m);
	ts_consistent(&t);
	cache_store_stats(t.s, &st);
	assert_int_equal(st.bytes_used, 0);
	ts_cleanup(&t);
}

static void
store_replace_new_version(void **state)
{
	struct ts t;
	struct cache_entry *e1 = NULL, *e2 = NULL;
	struct cache_check c;
	unsigned char *buf = malloc(CACHE_CHUNK_SIZE);
	size_t len;

	(void)state;
	ts_open(&t, 16 * MiB);
	assert_int_equal(ts_store(&t, "http://t/v", 600000, 1), CACHE_OK);
	assert_int_equal(cache_lookup(t.r, "http://t/v", 10, NULL, 0, &e1), CACHE_HIT);
	assert_int_equal(ts_store(&t, "http://t/v", 300000, 2), CACHE_OK);
	assert_int_equal(ts_verify(&t, "http://t/v", 300000, 2), 1);
	assert_int_equal(cache_lookup(t.r, "http://t/v", 10, NULL, 0, &e2), CACHE_HIT);
	assert_true(e2->meta.body_id != e1->meta.body_id);
	/* a reader still streaming the old version keeps reading it: its lookup pinned it */
	for (int k = 0; k < 3; k++)
		assert_int_equal(cache_store_maintain(t.s), CACHE_OK);
	for (uint32_t i = 0; i < e1->meta.nchunks; i++) {
		unsigned char *want = malloc(CACHE_CHUNK_SIZE);
		uint64_t off = (uint64_t)i * CACHE_CHUNK_SIZE;
		size_t wl = 600000 - off < CACHE_CHUNK_SIZE ? (size_t)(600000 - off)
		                                            : CACHE_CHUNK_SIZE;

		assert_int_equal(cache_read_chunk_copy(t.r, e1->meta.body_id, i, buf,
		                                       CACHE_CHUNK_SIZE, &len), CACHE_OK);
		ts_gen(1, 0, off, want, wl);
		assert_int_equal(len, wl);
		assert_memory_equal(buf, want, wl);
		free(want);
	}
	cache_store_check(t.s, &c);
	assert_int_equal(c.orphan_chunks, e1->meta.nchunks); /* held for the reader */
	uint64_t old_id = e1->meta.body_id;

	cache_entry_free(e1); /* the last reader ends: the next write deletes the chunks */
	ts_consistent(&t);
	assert_int_equal(cache_read_chunk_copy(t.r, old_id, 0, buf, CACHE_CHUNK_SIZE, &len),
	                 CACHE_ENOENT);
	cache_store_check(t.s, &c);
	assert_int_equal(c.entries, 1);
	assert_int_equal(c.chunks, e2->meta.nchunks);
	cache_entry_free(e2);
	free(buf);
	ts_cleanup(&t);
}

/* Collects listed URLs (" vary" appended for Vary'd ones) into a 16-slot array. */
struct ts_urls {
	char u[16][256];
	size_t n;
};

static int
ts_list_cb(void *arg, const struct cache_item *it)
{
	struct ts_urls *l = arg;

	if (l->n < 16)
		snprintf(l->u[l->n++], 256, "%.*s%s", (int)it->url.n, it->url.p,
		         it->vary ? " vary" : "");
	return 0;
}

static void
store_vary_variants(void **state)
{
	static const char *hdrs =
		"Cache-Control: max-age=60\nVary: Accept-Encoding\nContent-Type: text/css";
	struct ts t;
	struct cache_check c;
	struct ts_urls urls;

	(void)state;
	ts_open(&t, 16 * MiB);
	assert_int_equal(ts_store_kind(&t, "http://t/css", hdrs, "Accept-Encoding: gzip, br", 5000,
	                               1, 0), CACHE_OK);
	assert_int_equal(ts_store_kind(&t, "http://t/css", hdrs, "Accept-Encoding: identity", 7000,
	                               2, 0), CACHE_OK);
	assert_int_equal(ts_verify_kind(t.r, "http://t/css", "accept-encoding:  gzip,br", 5000, 1,
	                                0), 1);
	assert_int_equal(ts_verify_kind(t.r, "http://t/css", "Accept-Encoding: identity", 7000, 2,
	                                0), 1);
	assert_int_equal(ts_verify_kind(t.r, "http://t/css", "Accept-Encoding: deflate", 7000, 2,
	                                0), 0);
	struct cache_entry *e = NULL;

	assert_int_equal(cache_lookup(t.r, "http://t/css", 12, NULL, 0, &e), CACHE_VARY_MISS);
	assert_null(e);
	cache_store_check(t.s, &c);
	assert_int_equal(c.entries, 2);
	assert_int_equal(c.stubs, 1);
	memset(&urls, 0, sizeof(urls));
	assert_int_equal(cache_list(t.s, "http://t/", 9, NULL, 0, 10, ts_list_cb, &urls), 1);
	assert_string_equal(urls.u[0], "http://t/css vary");
	ts_consistent(&t);
	/* purging the URL removes the stub and every variant */
	assert_int_equal(cache_purge(t.s, "http://t/css", 12), 3);
	assert_int_equal(ts_verify_kind(t.r, "http://t/css", "Accept-Encoding: identity", 7000, 2,
	                                0), 0);
	ts_consistent(&t);
	/* a response without Vary replaces the variants */
	assert_int_equal(ts_store_kind(&t, "http://t/css", hdrs, "Accept-Encoding: gzip", 5000, 1,
	                               0), CACHE_OK);
	assert_int_equal(ts_store(&t, "http://t/css", 4000, 3), CACHE_OK);
	assert_int_equal(ts_verify_kind(t.r, "http://t/css", "Accept-Encoding: gzip", 4000, 3, 0),
	                 1);
	cache_store_check(t.s, &c);
	assert_int_equal(c.entries, 1);
	assert_int_equal(c.stubs, 0);
	/* and a Vary response replaces the plain entry with a stub */
	assert_int_equal(ts_store_kind(&t, "http://t/css", hdrs, "Accept-Encoding: gzip", 5000, 4,
	                               0), CACHE_OK);
	assert_int_equal(ts_verify_kind(t.r, "http://t/css", "Accept-Encoding: gzip", 5000, 4, 0),
	                 1);
	assert_int_equal(ts_verify_kind(t.r, "http://t/css", NULL, 5000, 4, 0), 0);
	ts_consistent(&t);
	cache_store_check(t.s, &c);
	assert_int_equal(c.entries, 1);
	assert_int_equal(c.stubs, 1);
	ts_cleanup(&t);
}

static void
store_compression_transparent(void **state)
{
	static const char *text =
		"Cache-Control: max-age=60\nContent-Type: text/plain; charset=utf-8";
	struct ts t;
	struct cache_stats st, st2;
	struct cache_entry *e = NULL;

	(void)state;
	ts_open(&t, 32 * MiB);
	assert_int_equal(ts_store_kind(&t, "http://t/log.txt", text, NULL, 1 * MiB + 77, 5, 1),
	                 CACHE_OK);
	cache_store_stats(t.s, &st);
	assert_int_equal(st.compress_in, 4 * CACHE_CHUNK_SIZE); /* the 205-byte tail is too short */
	assert_true(st.compress_out * 4 < st.compress_in);
	assert_true(st.bytes_used < 512 * 1024);
	assert_int_equal(ts_verify_kind(t.r, "http://t/log.txt", NULL, 1 * MiB + 77, 5, 1), 1);
	/* a small text body comes inflated with the lookup */
	assert_int_equal(ts_store_kind(&t, "http://t/small.txt", text, NULL, 20000, 6, 1),
	                 CACHE_OK);
	assert_int_equal(cache_lookup(t.r, "http://t/small.txt", 18, NULL, 0, &e), CACHE_HIT);
	assert_non_null(e->body);
	cache_entry_free(e);
	assert_int_equal(ts_verify_kind(t.r, "http://t/small.txt", NULL, 20000, 6, 1), 1);
	cache_store_stats(t.s, &st);
	/* random bytes labelled text do not shrink: stored raw */
	assert_int_equal(ts_store_kind(&t, "http://t/noise.txt", text, NULL, 600000, 7, 0),
	                 CACHE_OK);
	cache_store_stats(t.s, &st2);
	assert_int_equal(st2.compress_in, st.compress_in);
	assert_int_equal(ts_verify_kind(t.r, "http://t/noise.txt", NULL, 600000, 7, 0), 1);
	/* binary types are never tried */
	assert_int_equal(ts_store_kind(&t, "http://t/zeros.bin",
	                               "Cache-Control: max-age=60\n"
	                               "Content-Type: application/octet-stream",
	                               NULL, 300000, 8, 1), CACHE_OK);
	cache_store_stats(t.s, &st);
	assert_int_equal(st2.compress_in, st.compress_in);
	ts_consistent(&t);
	/* with compression off nothing is deflated */
	ts_close(&t);
	t.sc.compress = 0;
	ts_open_conf(&t);
	assert_int_equal(ts_store_kind(&t, "http://t/log2.txt", text, NULL, 300000, 5, 1),
	                 CACHE_OK);
	cache_store_stats(t.s, &st);
	assert_int_equal(st.compress_in, 0);
	assert_int_equal(ts_verify_kind(t.r, "http://t/log.txt", NULL, 1 * MiB + 77, 5, 1), 1);
	ts_cleanup(&t);
}

static void
store_eviction_keeps_under_budget(void **state)
{
	struct ts t;
	struct cache_stats st;
	char url[64];
	uint64_t written = 0;
	int n = 0;

	(void)state;
	ts_open(&t, 8 * MiB);
	while (written < 2 * 8 * MiB) {
		uint64_t size = 150000 + (uint64_t)(n % 7) * 10000;

		snprintf(url, sizeof(url), "http://t/e/%d", n);
		assert_int_equal(ts_store(&t, url, size, (uint64_t)n), CACHE_OK);
		written += size;
		cache_store_stats(t.s, &st);
		if (st.bytes_used > st.bytes_budget)
			fail_msg("after %d entries: %" PRIu64 " used > budget %" PRIu64, n,
			         st.bytes_used,
			         st.bytes_budget);
		assert_true(st.file_bytes <= st.map_size);
		n++;
	}
	cache_store_stats(t.s, &st);
	assert_true(st.evicted_entries > 0);
	assert_int_equal(st.map_full, 0); /* evicted early enough */
	/* the newest are there, the oldest went */
	for (int i = n - 5; i < n; i++) {
		snprintf(url, sizeof(url), "http://t/e/%d", i);
		assert_int_equal(ts_verify(&t, url, 150000 + (uint64_t)(i % 7) * 10000,
		                           (uint64_t)i), 1);
	}
	assert_int_equal(ts_verify(&t, "http://t/e/0", 150000, 0), 0);
	ts_consistent(&t);
	ts_cleanup(&t);
}

/* A reader's pin keeps a body whole through a purge and eviction pressure; its bytes stay
 * accounted (eviction makes room for them), and go when the reader ends. */
static void
store_pinned_body_survives_purge_and_eviction(void **state)
{
	struct ts t;
	struct cache_stats st;
	struct cache_check c;
	struct cache_entry *e = NULL, *e2 = NULL;
	const uint64_t big = 1500000;
	char url[64];
	uint64_t written = 0;
	int n = 0;

	(void)state;
	ts_open(&t, 8 * MiB);
	assert_int_equal(ts_store(&t, "http://t/pin", big, 77), CACHE_OK);
	assert_int_equal(cache_lookup(t.r, "http://t/pin", 12, NULL, 0, &e), CACHE_HIT);
	assert_non_null(e->pin);
	/* two readers of one body: one pin each */
	assert_int_equal(cache_lookup(t.r, "http://t/pin", 12, NULL, 0, &e2), CACHE_HIT);
	assert_int_equal(e2->meta.body_id, e->meta.body_id);
	assert_int_equal(cache_purge(t.s, "http://t/pin", 12), 1);
	assert_int_equal(ts_verify(&t, "http://t/pin", big, 77), 0); /* gone for lookups */
	cache_entry_free(e2);
	/* eviction pressure: twice the store passes through */
	while (written < 2 * 8 * MiB) {
		uint64_t size = 150000 + (uint64_t)(n % 7) * 10000;

		snprintf(url, sizeof(url), "http://t/p/%d", n);
		assert_int_equal(ts_store(&t, url, size, (uint64_t)n), CACHE_OK);
		assert_int_equal(cache_store_maintain(t.s), CACHE_OK);
		written += size;
		cache_store_stats(t.s, &st);
		assert_true(st.bytes_used <= st.bytes_budget);
		assert_true(st.file_bytes <= st.map_size);
		n++;
	}
	cache_store_stats(t.s, &st);
	assert_true(st.evicted_entries > 0);
	assert_int_equal(st.map_full, 0);
	assert_int_equal(st.gc_pinned, 1);
	assert_int_equal(st.pinned_bodies, 1);
	assert_true(st.gc_bytes >= big);
	/* the pinned body is intact, chunk by chunk */
	unsigned char *got = malloc(CACHE_CHUNK_SIZE), *want = malloc(CACHE_CHUNK_SIZE);

	for (uint32_t i = 0; i < e->meta.nchunks; i++) {
		uint64_t off = (uint64_t)i * CACHE_CHUNK_SIZE;
		size_t wl = big - off < CACHE_CHUNK_SIZE ? (size_t)(big - off) : CACHE_CHUNK_SIZE;
		size_t len = 0;

		assert_int_equal(cache_read_chunk_copy(t.r, e->meta.body_id, i, got,
		                                       CACHE_CHUNK_SIZE, &len), CACHE_OK);
		ts_gen(77, 0, off, want, wl);
		assert_int_equal(len, wl);
		assert_memory_equal(got, want, wl);
	}
	free(got);
	free(want);
	uint64_t used_before = st.bytes_used;

	cache_entry_free(e);
	ts_consistent(&t);
	cache_store_stats(t.s, &st);
	assert_int_equal(st.pinned_bodies, 0);
	assert_int_equal(st.gc_bodies, 0);
	assert_true(st.bytes_used + big <= used_before + CACHE_CHUNK_SIZE);
	cache_store_check(t.s, &c);
	assert_int_equal(c.orphan_chunks, 0);
	ts_cleanup(&t);
}

static void
store_lru_keeps_recently_used(void **state)
{
	struct ts t;
	struct cache_stats st;
	char url[64];

	(void)state;
	ts_open(&t, 4 * MiB);
	assert_int_equal(ts_store(&t, "http://t/A", 60000, 1000), CACHE_OK);
	assert_int_equal(ts_store(&t, "http://t/B", 60000, 1001), CACHE_OK);
	for (int i = 0; i < 200; i++) {
		snprintf(url, sizeof(url), "http://t/x/%d", i);
		assert_int_equal(ts_store(&t, url, 60000, (uint64_t)i), CACHE_OK);
		if (i % 8 == 0) { /* A is popular */
			assert_int_equal(ts_verify(&t, "http://t/A", 60000, 1000), 1);
			assert_int_equal(cache_store_maintain(t.s), CACHE_OK);
		}
	}
	cache_store_stats(t.s, &st);
	assert_true(st.evicted_entries > 100);
	assert_true(st.touches_applied > 0);
	assert_int_equal(ts_verify(&t, "http://t/A", 60000, 1000), 1);
	assert_int_equal(ts_verify(&t, "http://t/B", 60000, 1001), 0);
	ts_consistent(&t);
	ts_cleanup(&t);
}

static void
store_map_full_is_handled(void **state)
{
	struct ts t;
	struct cache_stats st;
	char url[64];

	(void)state;
	memset(&t, 0, sizeof(t));
	snprintf(t.dir, sizeof(t.dir), "/tmp/gh-cache-test-XXXXXX");
	assert_non_null(mkdtemp(t.dir));
	cache_store_conf_default(&t.sc);
	t.sc.root = t.dir;
	t.sc.size = 4 * MiB;
	t.sc.budget_pct = 400; /* our accounting never evicts: only MDB_MAP_FULL does */
	cache_conf_default(&t.conf);
	ts_open_conf(&t);
	for (int i = 0; i < 48; i++) {
		snprintf(url, sizeof(url), "http://t/m/%d", i);
		int rc = ts_store(&t, url, 300000, (uint64_t)i);

		if (rc != CACHE_OK)
			fail_msg("entry %d: %s", i, cache_strerror(rc));
		assert_int_equal(ts_verify(&t, url, 300000, (uint64_t)i), 1);
	}
	cache_store_stats(t.s, &st);
	assert_true(st.map_full > 0);
	assert_true(st.evicted_entries > 0);
	assert_true(st.file_bytes <= 4 * MiB);
	assert_int_equal(st.disk_full, 0);   /* the map, not the file system */
	assert_int_equal(st.full_failed, 0); /* evicting made room every time */
	/* an object the whole map cannot hold: evicting everything does not help, and the
	 * write that gives up is counted, for the daemon's warning */
	int rc = ts_store(&t, "http://t/m/huge", 6 * MiB, 7);

	assert_int_equal(rc, CACHE_EFULL);
	assert_int_equal(ts_verify(&t, "http://t/m/huge", 6 * MiB, 7), 0);
	uint64_t full, disk, failed;

	cache_store_full_counts(t.s, &full, &disk, &failed);
	cache_store_stats(t.s, &st);
	assert_true(failed > 0);
	assert_true(full > failed - 1);
	assert_int_equal(full, st.map_full);
	assert_int_equal(disk, 0);
	assert_int_equal(failed, st.full_failed);
	ts_consistent(&t);
	ts_cleanup(&t);
}

static void
store_purge_list_clear(void **state)
{
	struct ts t;
	struct cache_stats st;
	struct cache_entry *m;
	struct cache_fill *f = NULL;
	char url[64];
	struct ts_urls urls;

	(void)state;
	ts_open(&t, 16 * MiB);
	for (int i = 1; i <= 5; i++) {
		snprintf(url, sizeof(url), "http://a.test/x/%d", i);
		assert_int_equal(ts_store(&t, url, 1000, (uint64_t)i), CACHE_OK);
		snprintf(url, sizeof(url), "http://b.test/y/%d", i);
		assert_int_equal(ts_store(&t, url, 1000, (uint64_t)i), CACHE_OK);
	}
	memset(&urls, 0, sizeof(urls));
	assert_int_equal(cache_list(t.s, "http://a.test/", 14, NULL, 0, 100, ts_list_cb, &urls), 5);
	assert_string_equal(urls.u[0], "http://a.test/x/1");
	assert_string_equal(urls.u[4], "http://a.test/x/5");
	memset(&urls, 0, sizeof(urls));
	assert_int_equal(cache_list(t.s, "http://a.test/", 14, "http://a.test/x/2", 17, 2,
	                            ts_list_cb, &urls), 2);
	assert_string_equal(urls.u[0], "http://a.test/x/3");
	assert_string_equal(urls.u[1], "http://a.test/x/4");
	memset(&urls, 0, sizeof(urls));
	assert_int_equal(cache_list(t.s, "http://b.test/", 14, "http://a.test/x/9", 17, 2,
	                            ts_list_cb, &urls), 2);
	assert_string_equal(urls.u[0], "http://b.test/y/1");
	memset(&urls, 0, sizeof(urls));
	assert_int_equal(cache_list(t.s, "", 0, NULL, 0, 100, ts_list_cb, &urls), 10);
	assert_int_equal(cache_purge(t.s, "http://a.test/x/3", 17), 1);
	assert_int_equal(cache_purge(t.s, "http://a.test/x/3", 17), 0);
	assert_int_equal(ts_verify(&t, "http://a.test/x/3", 1000, 3), 0);
	assert_int_equal(cache_purge_prefix(t.s, "http://a.test/", 14), 4);
	memset(&urls, 0, sizeof(urls));
	assert_int_equal(cache_list(t.s, "http://a.test/", 14, NULL, 0, 100, ts_list_cb, &urls), 0);
	assert_int_equal(cache_list(t.s, "http://b.test/", 14, NULL, 0, 100, ts_list_cb, &urls), 5);
	assert_int_equal(ts_verify(&t, "http://b.test/y/2", 1000, 2), 1);
	ts_consistent(&t);
	/* clear: everything goes, and a fill that started before fails at commit */
	m = ts_meta(&t, "http://b.test/late", 200, "Cache-Control: max-age=60");
	assert_int_equal(cache_fill_begin(t.s, "http://b.test/late", 18, &m->meta, NULL, -1, &f),
	                 CACHE_OK);
	cache_entry_free(m);
	assert_int_equal(cache_fill_append(f, "hello", 5), CACHE_OK);
	assert_int_equal(cache_clear(t.s), CACHE_OK);
	assert_int_equal(cache_fill_commit(f, 5), CACHE_ENOENT);
	cache_store_stats(t.s, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.bytes_used, 0);
	assert_int_equal(ts_verify(&t, "http://b.test/y/2", 1000, 2), 0);
	assert_int_equal(cache_list(t.s, "", 0, NULL, 0, 100, ts_list_cb, &urls), 0);
	ts_consistent(&t);
	ts_cleanup(&t);
}

static void
store_long_urls(void **state)
{
	struct ts t;
	char *u1 = malloc(2100), *u2 = malloc(2100);
	struct ts_urls urls;

	(void)state;
	ts_open(&t, 16 * MiB);
	memset(u1, 'p', 2099);
	memcpy(u1, "http://t/", 9);
	u1[2099] = '\0';
	memcpy(u2, u1, 2100);
	u2[2000] = 'q';
	assert_int_equal(ts_store(&t, u1, 3000, 1), CACHE_OK);
	assert_int_equal(ts_store(&t, u2, 3000, 2), CACHE_OK);
	assert_int_equal(ts_verify(&t, u1, 3000, 1), 1);
	assert_int_equal(ts_verify(&t, u2, 3000, 2), 1);
	memset(&urls, 0, sizeof(urls));
	assert_int_equal(cache_list(t.s, "http://t/", 9, NULL, 0, 10, ts_list_cb, &urls), 2);
	/* a prefix longer than the stored url key: decided on the entry's full URL */
	assert_int_equal(cache_list(t.s, u2, 1990, NULL, 0, 10, ts_list_cb, &urls), 2);
	assert_int_equal(cache_list(t.s, u2, 2001, NULL, 0, 10, ts_list_cb, &urls), 1);
	assert_int_equal(cache_purge_prefix(t.s, u2, 2001), 1);
	assert_int_equal(ts_verify(&t, u2, 3000, 2), 0);
	assert_int_equal(ts_verify(&t, u1, 3000, 1), 1);
	ts_consistent(&t);
	free(u1);
	free(u2);
	ts_cleanup(&t);
}

static void
store_update_after_304(void **state)
{
	struct ts t;
	struct th r;
	struct cache_entry *e = NULL, *nw = NULL, *again = NULL;

	(void)state;
	ts_open(&t, 16 * MiB);
	assert_int_equal(ts_store_kind(&t, "http://t/u",
	                               "Cache-Control: max-age=1\nETag: \"e1\"\n"
	                               "Content-Type: text/plain",
	                               NULL, 2000, 4, 1), CACHE_OK);
	assert_int_equal(cache_lookup(t.r, "http://t/u", 10, NULL, 0, &e), CACHE_HIT);
	assert_int_equal(cache_entry_merge_304(&t.conf, e,
	                                       th_parse(&r, "ETag: \"e1\"\n"
	                                                "Cache-Control: max-age=900\nX-Fresh: yes"),
	                                       T0 + 50, T0 + 51, &nw), CACHE_OK);
	assert_int_equal(cache_store_update(t.s, nw), CACHE_OK);
	assert_int_equal(cache_lookup(t.r, "http://t/u", 10, NULL, 0, &again), CACHE_HIT);
	assert_int_equal(again->meta.cc.max_age, 900);
	assert_int_equal(again->meta.response_time, T0 + 51);
	assert_int_equal(again->meta.body_id, e->meta.body_id);
	assert_int_equal(cache_entry_header(again, "X-Fresh").n, 3);
	assert_int_equal(cache_entry_header(again, "Content-Type").n, 10);
	assert_int_equal(again->body_len, 2000);
	cache_entry_free(again);
	assert_int_equal(ts_verify_kind(t.r, "http://t/u", NULL, 2000, 4, 1), 1);
	/* replaced meanwhile: the update is refused */
	assert_int_equal(ts_store(&t, "http://t/u", 100, 5), CACHE_OK);
	assert_int_equal(cache_store_update(t.s, nw), CACHE_ENOENT);
	assert_int_equal(ts_verify(&t, "http://t/u", 100, 5), 1);
	cache_entry_free(nw);
	cache_entry_free(e);
	ts_consistent(&t);
	ts_cleanup(&t);
}

static void
store_persists_across_reopen(void **state)
{
	struct ts t;
	struct cache_stats st1, st2;
	char url[64];

	(void)state;
	ts_open(&t, 16 * MiB);
	for (int i = 0; i < 5; i++) {
		snprintf(url, sizeof(url), "http://t/p/%d", i);
		assert_int_equal(ts_store(&t, url, 100000 * (uint64_t)i + 1, (uint64_t)i),
		                 CACHE_OK);
	}
	cache_store_stats(t.s, &st1);
	ts_reopen(&t);
	cache_store_stats(t.s, &st2);
	assert_int_equal(st2.entries, 5);
	assert_int_equal(st2.bytes_used, st1.bytes_used);
	assert_int_equal(st2.swept_chunks, 0);
	for (int i = 0; i < 5; i++) {
		snprintf(url, sizeof(url), "http://t/p/%d", i);
		assert_int_equal(ts_verify(&t, url, 100000 * (uint64_t)i + 1, (uint64_t)i), 1);
	}
	/* new writes after the reopen get new body ids and sequences */
	assert_int_equal(ts_store(&t, "http://t/p/new", 1000, 99), CACHE_OK);
	assert_int_equal(ts_verify(&t, "http://t/p/0", 1, 0), 1);
	ts_consistent(&t);
	ts_cleanup(&t);
}

static void
store_open_errors(void **state)
{
	struct ts t;
	struct cache_store *s2 = NULL;
	struct cache_store_conf c;
	char err[256], file[128];

	(void)state;
	ts_open(&t, 4 * MiB);
	c = t.sc;
	assert_int_equal(cache_store_open(&c, &s2, err, sizeof(err)), CACHE_EBUSY);
	assert_null(s2);
	assert_non_null(strstr(err, "in use"));
	c.size = 1000;
	assert_int_equal(cache_store_open(&c, &s2, err, sizeof(err)), CACHE_EINVAL);
	assert_non_null(strstr(err, "CacheSize"));
	snprintf(file, sizeof(file), "%s/gatehouse.lock", t.dir);
	c.root = file;
	c.size = 4 * MiB;
	assert_int_equal(cache_store_open(&c, &s2, err, sizeof(err)), CACHE_EINVAL);
	assert_non_null(strstr(err, "not a directory"));
	c.root = "/proc/gh-no-such/dir";
	assert_int_equal(cache_store_open(&c, &s2, err, sizeof(err)), CACHE_EIO);
	assert_non_null(strstr(err, "cannot create"));
	ts_cleanup(&t);
}

/* A child that dies without committing or aborting leaves chunks the next open sweeps. */
static void
store_orphans_swept_at_open(void **state)
{
	struct ts t;
	struct cache_stats st;
	pid_t pid;
	int status;

	(void)state;
	ts_open(&t, 16 * MiB);
	assert_int_equal(ts_store(&t, "http://t/keep", 300000, 1), CACHE_OK);
	ts_close(&t);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct cache_store *s = NULL;
		struct cache_fill *f = NULL;
		struct cache_meta m;
		static unsigned char buf[CACHE_CHUNK_SIZE];

		if (cache_store_open(&t.sc, &s, NULL, 0))
			_exit(2);
		memset(&m, 0, sizeof(m));
		m.status = 200;
		m.date = m.expires = m.last_modified = -1;
		m.cc.max_age = m.cc.s_maxage = m.cc.swr = m.cc.sie = -1;
		if (cache_fill_begin(s, "http://t/lost", 13, &m, NULL, -1, &f))
			_exit(3);
		for (int i = 0; i < 3; i++)
			if (cache_fill_append(f, buf, sizeof(buf)))
				_exit(4);
		_exit(0); /* as if killed: no commit, no abort, no close */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ts_open_conf(&t);
	cache_store_stats(t.s, &st);
	assert_int_equal(st.swept_chunks, 3);
	assert_int_equal(ts_verify(&t, "http://t/lost", 3 * CACHE_CHUNK_SIZE, 0), 0);
	assert_int_equal(ts_verify(&t, "http://t/keep", 300000, 1), 1);
	ts_consistent(&t);
	ts_cleanup(&t);
}

/* Damage the environment behind the store's back (a lost chunk, a lost LRU record, dangling
 * LRU and URL records): the open repairs it, and never serves the damaged entry. */
static void
store_sweep_repairs_damage(void **state)
{
	struct ts t;
	struct cache_entry *e = NULL;
	struct cache_stats st;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi body, lru, url;
	unsigned char k[12], h[32], lk[40];
	uint64_t body_id, seq_b;

	(void)state;
	ts_open(&t, 16 * MiB);
	assert_int_equal(ts_store(&t, "http://t/A", 3 * CACHE_CHUNK_SIZE - 10, 1), CACHE_OK);
	assert_int_equal(ts_store(&t, "http://t/B", 1000, 2), CACHE_OK);
	assert_int_equal(cache_lookup(t.r, "http://t/A", 10, NULL, 0, &e), CACHE_HIT);
	body_id = e->meta.body_id;
	cache_entry_free(e);
	assert_int_equal(cache_lookup(t.r, "http://t/B", 10, NULL, 0, &e), CACHE_HIT);
	seq_b = e->meta.seq;
	cache_entry_free(e);
	ts_close(&t);

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
	assert_int_equal(mdb_env_set_mapsize(env, 16 * MiB), 0);
	assert_int_equal(mdb_env_open(env, t.dir, 0, 0640), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "body", 0, &body), 0);
	assert_int_equal(mdb_dbi_open(txn, "lru", 0, &lru), 0);
	assert_int_equal(mdb_dbi_open(txn, "url", 0, &url), 0);
	cache_be64(k, body_id);
	memset(k + 8, 0, 4);
	k[11] = 1;
	MDB_val kv = {12, k}, vv = {32, h};

	assert_int_equal(mdb_del(txn, body, &kv, NULL), 0);            /* A loses chunk 1 */
	assert_int_equal(cache_sha256("http://t/B", 10, NULL, 0, h), 0);
	cache_be64(lk, seq_b);
	memcpy(lk + 8, h, 32);
	kv = (MDB_val){40, lk};
	assert_int_equal(mdb_del(txn, lru, &kv, NULL), 0);             /* B loses its LRU record */
	memset(lk, 0xee, sizeof(lk));
	kv = (MDB_val){40, lk};
	vv = (MDB_val){0, ""};
	assert_int_equal(mdb_put(txn, lru, &kv, &vv, 0), 0);           /* a dangling LRU record */
	kv = (MDB_val){14, "http://t/ghost"};
	vv = (MDB_val){32, lk};
	assert_int_equal(mdb_put(txn, url, &kv, &vv, 0), 0);           /* a dangling URL record */
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	ts_open_conf(&t);
	cache_store_stats(t.s, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(ts_verify(&t, "http://t/A", 3 * CACHE_CHUNK_SIZE - 10, 1), 0);
	assert_int_equal(ts_verify(&t, "http://t/B", 1000, 2), 1);
	ts_consistent(&t);
	ts_cleanup(&t);
}

/* ---- kill -9 under load ---- */

static uint64_t
ts_crash_size(uint32_t i)
{
	return 1000 + (uint64_t)i * 7919 % 700000;
}

static void
ts_crash_url(char *buf, size_t n, uint32_t i)
{
	snprintf(buf, n, "http://crash.test/obj/%u", i);
}

/* The child: store objects as fast as it can, telling the parent each commit. */
static void
ts_crash_child(struct ts *t, int fd, uint32_t base)
{
	struct ts c = *t;
	char err[256], url[64];

	if (cache_store_open(&c.sc, &c.s, err, sizeof(err)))
		_exit(2);
	for (uint32_t i = base; i < base + 100000; i++) {
		ts_crash_url(url, sizeof(url), i);
		int rc = ts_store_kind(&c, url,
		                       i % 3 ? "Cache-Control: max-age=60\n"
		                               "Content-Type: application/octet-stream"
		                             : "Cache-Control: max-age=60\n"
		                               "Content-Type: text/plain",
		                       NULL, ts_crash_size(i), i, i % 3 ? 0 : 1);

		if (rc != CACHE_OK)
			_exit(3);
		if (write(fd, &i, sizeof(i)) != sizeof(i))
			_exit(4);
		if (i % 16 == 0)
			cache_store_maintain(c.s);
	}
	_exit(0);
}

struct ts_crash_list {
	char (*urls)[64];
	size_t n;
};

static int
ts_crash_list_cb(void *arg, const struct cache_item *it)
{
	struct ts_crash_list *l = arg;

	if (l->n < 4096)
		snprintf(l->urls[l->n++], 64, "%.*s", (int)it->url.n, it->url.p);
	return 0;
}

static void
store_kill9_during_writes(void **state)
{
	struct ts t;
	uint32_t *done = malloc(100000 * sizeof(*done));
	size_t ndone = 0;
	char url[64];

	(void)state;
	srand((unsigned)time(NULL));
	ts_open(&t, 48 * MiB);
	ts_close(&t);
	for (uint32_t round = 0; round < 4; round++) {
		int p[2];
		pid_t pid;
		size_t before = ndone, got_this_round = 0;
		int status;

		assert_int_equal(pipe(p), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			ts_crash_child(&t, p[1], round * 100000);
		}
		close(p[1]);
		/* wait for some commits, then kill at a random moment */
		struct pollfd pf = {p[0], POLLIN, 0};
		uint32_t want = 20 + (uint32_t)(rand() % 30);

		while (got_this_round < want && poll(&pf, 1, 20000) == 1) {
			uint32_t i;

			if (read(p[0], &i, sizeof(i)) != sizeof(i))
				break;
			done[ndone++] = i;
			got_this_round++;
		}
		assert_true(got_this_round >= want);
		usleep((useconds_t)(rand() % 40000));
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		for (;;) { /* commits reported before the kill */
			uint32_t i;

			if (read(p[0], &i, sizeof(i)) != sizeof(i))
				break;
			done[ndone++] = i;
		}
		close(p[0]);

		/* reopen: everything reported is intact (or evicted, never the newest), nothing
		 * half-written is visible, no orphans remain */
		ts_open_conf(&t);
		struct cache_check c;

		assert_int_equal(cache_store_check(t.s, &c), CACHE_OK);
		struct cache_stats st;

		cache_store_stats(t.s, &st);
		print_message("round %u: %zu commits reported, %" PRIu64 " orphan chunks swept, "
		              "%" PRIu64 " entries\n", round, ndone - before, st.swept_chunks,
		              st.entries);
		assert_int_equal(c.orphan_chunks, 0);
		assert_int_equal(c.missing_chunks, 0);
		assert_int_equal(c.orphan_lru, 0);
		assert_int_equal(c.missing_lru, 0);
		for (size_t k = 0; k < ndone; k++) {
			uint32_t i = done[k];

			ts_crash_url(url, sizeof(url), i);
			int v = ts_verify_kind(t.r, url, NULL, ts_crash_size(i), i, i % 3 ? 0 : 1);

			if (v < 0 || (v == 0 && k + 5 >= ndone && k >= before))
				fail_msg("round %u: object %u: %d", round, i, v);
		}
		/* whatever else is listed (committed after the last report) is intact too */
		struct ts_crash_list l = {malloc(4096 * 64), 0};

		cache_list(t.s, "http://crash.test/", 18, NULL, 0, 4096, ts_crash_list_cb, &l);
		assert_true(l.n > 0);
		for (size_t k = 0; k < l.n; k++) {
			uint32_t i = (uint32_t)strtoul(l.urls[k] + strlen("http://crash.test/obj/"),
			              NULL, 10);

			if (ts_verify_kind(t.r, l.urls[k], NULL, ts_crash_size(i), i,
			                   i % 3 ? 0 : 1) != 1)
				fail_msg("round %u: listed %s is not intact", round, l.urls[k]);
		}
		free(l.urls);
		ts_consistent(&t);
		ts_close(&t);
	}
	free(done);
	ts_open_conf(&t);
	ts_cleanup(&t);
}

/* ---- threads ---- */

struct ts_thr {
	struct ts *t;
	int id, writer;
	int errors, hits;
	int *writers_left;         /* readers run until the writers are done */
};

static void *
ts_thread(void *arg)
{
	struct ts_thr *a = arg;
	struct cache_reader *r = cache_reader_new(a->t->s);
	char url[64], hdrs[128];

	if (!r) {
		a->errors++;
		if (a->writer)
			__atomic_sub_fetch(a->writers_left, 1, __ATOMIC_RELEASE);
		return NULL;
	}
	for (int i = 0; a->writer ? i < 150 : i < 1000000; i++) {
		int k = i % 12;

		if (!a->writer && __atomic_load_n(a->writers_left, __ATOMIC_ACQUIRE) == 0)
			break;
		snprintf(url, sizeof(url), "http://t/c/%d", k);
		if (a->writer) {
			/* the version is in a field, so readers know which body to expect */
			int v = a->id * 1000 + i;

			snprintf(hdrs, sizeof(hdrs),
			         "Cache-Control: max-age=60\nX-V: %d\nContent-Type: text/plain", v);
			if (ts_store_kind(a->t, url, hdrs, NULL, 20000 + (uint64_t)v % 5 * 100000,
			                  (uint64_t)v, v % 2) != CACHE_OK)
				a->errors++;
			if (i % 10 == 0)
				cache_store_maintain(a->t->s);
		} else {
			struct cache_entry *e = NULL;

			if (cache_lookup(r, url, strlen(url), NULL, CACHE_LOOKUP_NO_BODY,
			                 &e) != CACHE_HIT)
				continue;
			struct cache_str xv = cache_entry_header(e, "X-V");
			int v = atoi(xv.p ? xv.p : "0");

			cache_entry_free(e);
			if (ts_verify_kind(r, url, NULL, 20000 + (uint64_t)v % 5 * 100000,
			                   (uint64_t)v, v % 2) < 0) {
				/* replaced between the two lookups: only wrong if this
				 * version still stands */
				struct cache_entry *e2 = NULL;

				if (cache_lookup(r, url, strlen(url), NULL, CACHE_LOOKUP_NO_BODY,
				                 &e2) == CACHE_HIT) {
					struct cache_str xv2 = cache_entry_header(e2, "X-V");

					if (xv2.p && atoi(xv2.p) == v)
						a->errors++;
					cache_entry_free(e2);
				}
			} else {
				a->hits++;
			}
		}
	}
	if (a->writer)
		__atomic_sub_fetch(a->writers_left, 1, __ATOMIC_RELEASE);
	cache_reader_free(r);
	return NULL;
}

static void
store_concurrent_readers_and_writers(void **state)
{
	struct ts t;
	pthread_t th[4];
	struct ts_thr a[4];
	int hits = 0, writers_left = 2;

	(void)state;
	ts_open(&t, 32 * MiB);
	for (int i = 0; i < 4; i++) {
		a[i] = (struct ts_thr){&t, i + 1, i < 2, 0, 0, &writers_left};
		assert_int_equal(pthread_create(&th[i], NULL, ts_thread, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(a[i].errors, 0);
		hits += a[i].hits;
	}
	assert_true(hits > 0);
	ts_consistent(&t);
	ts_cleanup(&t);
}

/* Resident kB of this process's mapping of path (from /proc/self/smaps), -1 if not mapped. */
static long
ts_map_rss_kb(const char *path)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	long kb = -1;
	int in = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);

		if (n && line[n - 1] == '\n')
			line[--n] = '\0';
		if ((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f'))
			/* a mapping's first line (lower-case hex address); fields start upper-case */
			in = n >= strlen(path) && strcmp(line + n - strlen(path), path) == 0;
		else if (strncmp(line, "Rss:", 4) == 0 && in)
			kb = (kb < 0 ? 0 : kb) + strtol(line + 4, NULL, 10);
	}
	fclose(f);
	return kb;
}

/* The process does not keep the store's pages mapped: opening releases what the sweep read,
 * maintenance releases what lookups and the kernel's fault-around mapped, and bodies on
 * overflow pages are read with pread() (intact, raw and deflated). */
static void
store_map_pages_released(void **state)
{
	struct ts t;
	char url[64], path[128];
	long kb;

	(void)state;
	ts_open(&t, 64 * MiB);
	for (int i = 0; i < 200; i++) { /* 200 x 4 KiB and 20 x 64 KiB: 2.1 MB of bodies */
		snprintf(url, sizeof(url), "http://t/small/%d", i);
		assert_int_equal(ts_store(&t, url, 4096, (uint64_t)i), CACHE_OK);
		if (i < 20) {
			snprintf(url, sizeof(url), "http://t/big/%d", i);
			assert_int_equal(ts_store(&t, url, 65536, (uint64_t)i + 1000), CACHE_OK);
		}
	}
	assert_int_equal(ts_store_kind(&t, "http://t/text",
	                               "Cache-Control: max-age=600\nContent-Type: text/plain", NULL,
	                               65536, 7, 1),
	                 CACHE_OK);
	ts_reopen(&t); /* the sweep reads every record */
	snprintf(path, sizeof(path), "%s/data.mdb", t.dir);
	kb = ts_map_rss_kb(path);
	if (kb < 0 || kb > 128)
		fail_msg("%ld kB of the map resident after opening", kb);
	for (int i = 0; i < 200; i++) {
		snprintf(url, sizeof(url), "http://t/small/%d", i);
		assert_int_equal(ts_verify(&t, url, 4096, (uint64_t)i), 1);
		if (i < 20) {
			snprintf(url, sizeof(url), "http://t/big/%d", i);
			assert_int_equal(ts_verify(&t, url, 65536, (uint64_t)i + 1000), 1);
		}
	}
	assert_int_equal(ts_verify_kind(t.r, "http://t/text", NULL, 65536, 7, 1), 1);
	assert_true(ts_map_rss_kb(path) > 0);
	assert_true(cache_store_maintain(t.s) >= 0);
	kb = ts_map_rss_kb(path);
	if (kb < 0 || kb > 64)
		fail_msg("%ld kB of the map resident after maintenance", kb);
	assert_int_equal(ts_verify(&t, "http://t/small/7", 4096, 7), 1); /* mapped again */
	ts_cleanup(&t);
}

/* ---- the status page's cache browser (issue 11) ---- */

struct ts_found {
	long n;
	char u[64][64];
	uint64_t hits[64];
	int64_t last[64];
	int variant[64];
};

static int
ts_found_cb(void *arg, const struct cache_item *it)
{
	struct ts_found *l = arg;

	if (l->n < 64) {
		snprintf(l->u[l->n], 64, "%.*s", (int)it->url.n, it->url.p);
		l->hits[l->n] = it->hits;
		l->last[l->n] = it->last_access;
		l->variant[l->n] = it->variant;
	}
	l->n++;
	return 0;
}

/* A substring search never examines more than scan_max URL records per page; following the
 * cursor finds every match exactly once, in key order, and the last page says "no more". */
static void
store_find_substring_is_bounded_per_page(void **state)
{
	struct ts t;
	struct ts_found all;
	char url[64], next[CACHE_FIND_NEXT_CAP];
	int want = 0, pages = 0;

	(void)state;
	ts_open(&t, 64 * MiB);
	for (int i = 0; i < 60; i++) {
		snprintf(url, sizeof(url), "http://a.test/%02d%s", i, i % 7 == 0 ? "/NeeDle" : "/hay");
		assert_int_equal(ts_store(&t, url, 100, (uint64_t)i), CACHE_OK);
		want += i % 7 == 0;
		snprintf(url, sizeof(url), "http://b.test/%02d/needle", i);
		assert_int_equal(ts_store(&t, url, 100, (uint64_t)i), CACHE_OK);
	}
	memset(&all, 0, sizeof(all));
	struct cache_find q = {.prefix = "http://a.test/", .plen = 14, .substr = "needle", .slen = 6,
	                       .max = 3, .scan_max = 10, .next = next, .next_cap = sizeof(next)};

	for (;;) {
		long before = all.n, n = cache_find(t.s, &q, ts_found_cb, &all);

		assert_true(n >= 0);
		assert_int_equal(all.n - before, n);
		assert_true(q.scanned <= 10);
		assert_true(n <= 3);
		pages++;
		assert_true(pages < 100);
		if (!q.next_len)
			break;
		assert_int_equal(strlen(next), q.next_len);
		q.after = next;
		q.alen = q.next_len;
	}
	assert_int_equal(all.n, want);
	assert_true(pages >= 6); /* 60 URLs, 10 a page */
	for (long i = 0; i < all.n; i++) {
		assert_non_null(strstr(all.u[i], "/NeeDle"));
		assert_memory_equal(all.u[i], "http://a.test/", 14);
		if (i)
			assert_true(strcmp(all.u[i - 1], all.u[i]) < 0);
	}
	/* without a substring: pages of max, the last one exactly at the end says no more */
	memset(&all, 0, sizeof(all));
	struct cache_find p = {.prefix = "http://b.test/", .plen = 14, .max = 20, .scan_max = 100,
	                       .next = next, .next_cap = sizeof(next)};

	pages = 0;
	do {
		assert_true(cache_find(t.s, &p, ts_found_cb, &all) >= 0);
		p.after = next;
		p.alen = p.next_len;
		pages++;
	} while (p.next_len && pages < 10);
	assert_int_equal(all.n, 60);
	assert_int_equal(pages, 3);
	/* long URLs (url records truncated and hashed): matched on the whole URL, and the
	 * cursor of a page ending on one resumes after it */
	char *u1 = malloc(2100), *u2 = malloc(2100);

	assert_non_null(u1);
	assert_non_null(u2);
	memset(u1, 'a', 2000);
	memcpy(u1, "http://c.test/", 14);
	memcpy(u2, u1, 2000);
	strcpy(u1 + 2000, "/tail-one-NEEDLE");
	strcpy(u2 + 2000, "/tail-two-needle");
	assert_int_equal(ts_store(&t, u1, 10, 1), CACHE_OK);
	assert_int_equal(ts_store(&t, u2, 10, 2), CACHE_OK);
	struct cache_find l = {.prefix = "http://c.test/", .plen = 14, .substr = "needle",
	                       .slen = 6, .max = 1, .scan_max = 100, .next = next,
	                       .next_cap = sizeof(next)};

	memset(&all, 0, sizeof(all));
	assert_int_equal(cache_find(t.s, &l, ts_found_cb, &all), 1);
	assert_true(l.next_len > 2000);
	l.after = next;
	l.alen = l.next_len;
	assert_int_equal(cache_find(t.s, &l, ts_found_cb, &all), 1);
	assert_int_equal(l.next_len, 0);
	assert_int_equal(all.n, 2);
	l.substr = "tail-two";
	l.slen = 8;
	l.after = NULL;
	l.alen = 0;
	l.max = 10;
	memset(&all, 0, sizeof(all));
	assert_int_equal(cache_find(t.s, &l, ts_found_cb, &all), 1);
	free(u1);
	free(u2);
	ts_consistent(&t);
	ts_cleanup(&t);
}

/* Hits are counted from the LRU touches when a write applies them: no write per hit. The
 * variants of a Vary'd URL are listed after its stub, and the stub keeps the URL's hits when
 * a new variant is stored. */
static void
store_hits_and_variants_recorded(void **state)
{
	static const char *hdrs =
		"Cache-Control: max-age=60\nVary: Accept-Encoding\nContent-Type: text/css";
	struct ts t;
	struct ts_found f;
	int64_t now = (int64_t)time(NULL);

	(void)state;
	ts_open(&t, 16 * MiB);
	assert_int_equal(ts_store(&t, "http://t/a", 1000, 1), CACHE_OK);
	memset(&f, 0, sizeof(f));
	assert_int_equal(cache_entry_records(t.s, "http://t/a", 10, ts_found_cb, &f), 1);
	assert_int_equal(f.hits[0], 0);
	assert_int_equal(f.last[0], -1);
	for (int i = 0; i < 3; i++)
		assert_int_equal(ts_verify(&t, "http://t/a", 1000, 1), 1);
	/* not applied yet: the hit path wrote nothing */
	memset(&f, 0, sizeof(f));
	assert_int_equal(cache_entry_records(t.s, "http://t/a", 10, ts_found_cb, &f), 1);
	assert_int_equal(f.hits[0], 0);
	assert_int_equal(cache_store_maintain(t.s), CACHE_OK);
	memset(&f, 0, sizeof(f));
	assert_int_equal(cache_entry_records(t.s, "http://t/a", 10, ts_found_cb, &f), 1);
	assert_int_equal(f.hits[0], 3);
	assert_true(f.last[0] >= now - 5 && f.last[0] <= now + 60);
	assert_int_equal(f.variant[0], 0);
	assert_int_equal(ts_verify(&t, "http://t/a", 1000, 1), 1);
	assert_int_equal(cache_store_maintain(t.s), CACHE_OK);
	memset(&f, 0, sizeof(f));
	assert_int_equal(cache_entry_records(t.s, "http://t/a", 10, ts_found_cb, &f), 1);
	assert_int_equal(f.hits[0], 4);
	assert_int_equal(cache_entry_records(t.s, "http://t/none", 13, ts_found_cb, &f), 0);
	/* Vary: stub then two variants */
	assert_int_equal(ts_store_kind(&t, "http://t/css", hdrs, "Accept-Encoding: gzip", 500, 1,
	                               0), CACHE_OK);
	assert_int_equal(ts_verify_kind(t.r, "http://t/css", "Accept-Encoding: gzip", 500, 1, 0), 1);
	assert_int_equal(cache_store_maintain(t.s), CACHE_OK);
	assert_int_equal(ts_store_kind(&t, "http://t/css", hdrs, "Accept-Encoding: br", 700, 2, 0),
	                 CACHE_OK);
	memset(&f, 0, sizeof(f));
	assert_int_equal(cache_entry_records(t.s, "http://t/css", 12, ts_found_cb, &f), 3);
	assert_int_equal(f.variant[0], 0);
	assert_int_equal(f.hits[0], 1); /* kept when the second variant was stored */
	assert_int_equal(f.variant[1] + f.variant[2], 2);
	assert_int_equal(f.hits[1] + f.hits[2], 1);
	ts_consistent(&t);
	/* the hits survive a reopen (they are in the record) */
	ts_reopen(&t);
	memset(&f, 0, sizeof(f));
	assert_int_equal(cache_entry_records(t.s, "http://t/a", 10, ts_found_cb, &f), 1);
	assert_int_equal(f.hits[0], 4);
	ts_consistent(&t);
	ts_cleanup(&t);
}

/* The confirmation count of a purge by prefix is what the purge then removes; past the limit
 * it says it is a lower bound. */
static void
store_count_prefix_matches_purge(void **state)
{
	static const char *hdrs = "Cache-Control: max-age=60\nVary: Accept-Encoding";
	struct ts t;
	char url[64];
	int more = -1;

	(void)state;
	ts_open(&t, 16 * MiB);
	for (int i = 0; i < 5; i++) {
		snprintf(url, sizeof(url), "http://p.test/d/%d", i);
		assert_int_equal(ts_store(&t, url, 100, (uint64_t)i), CACHE_OK);
	}
	assert_int_equal(ts_store(&t, "http://p.test/e", 100, 9), CACHE_OK);
	assert_int_equal(ts_store_kind(&t, "http://p.test/d/v", hdrs, "Accept-Encoding: a", 10, 1,
	                               0), CACHE_OK);
	assert_int_equal(ts_store_kind(&t, "http://p.test/d/v", hdrs, "Accept-Encoding: b", 10, 1,
	                               0), CACHE_OK);
	assert_int_equal(cache_count_prefix(t.s, "http://p.test/d/", 16, 1000, &more), 8);
	assert_int_equal(more, 0);
	assert_int_equal(cache_count_prefix(t.s, "http://p.test/d/", 16, 2, &more), 2);
	assert_int_equal(more, 1);
	assert_int_equal(cache_count_prefix(t.s, "http://q.test/", 14, 1000, &more), 0);
	assert_int_equal(more, 0);
	assert_int_equal(cache_count_prefix(t.s, "", 0, 1000, &more), 9);
	assert_int_equal(cache_purge_prefix(t.s, "http://p.test/d/", 16), 8);
	assert_int_equal(cache_count_prefix(t.s, "http://p.test/d/", 16, 1000, &more), 0);
	assert_int_equal(ts_verify(&t, "http://p.test/e", 100, 9), 1);
	ts_consistent(&t);
	ts_cleanup(&t);
}

/* The batched purge by prefix: a resumable cursor that only moves forward, bounded batches,
 * everything under the prefix gone at the end and nothing else; fills during the walk are
 * purged when they sort after the cursor and kept when before (or when refilled after their
 * own purge); keys truncated in the url db are told apart by their full URL. */
static void
store_purge_prefix_steps(void **state)
{
	static const char *hdrs = "Cache-Control: max-age=60\nVary: Accept-Encoding";
	struct cache_purge_cursor cur;
	struct ts t;
	char url[64];
	long total = 0, n;
	int more = -1, steps = 0;
	uint64_t last_urls = 0;

	(void)state;
	ts_open(&t, 32 * MiB);
	for (int i = 0; i < 300; i++) {
		snprintf(url, sizeof(url), "http://b.test/x/%04d", i);
		assert_int_equal(ts_store(&t, url, 50, (uint64_t)i), CACHE_OK);
	}
	for (int i = 0; i < 20; i++) {
		snprintf(url, sizeof(url), "http://b.test/y/%04d", i);
		assert_int_equal(ts_store(&t, url, 50, (uint64_t)i), CACHE_OK);
	}
	assert_int_equal(ts_store_kind(&t, "http://b.test/x/v", hdrs, "Accept-Encoding: a", 10, 1,
	                               0), CACHE_OK);
	assert_int_equal(ts_store_kind(&t, "http://b.test/x/v", hdrs, "Accept-Encoding: b", 10, 1,
	                               0), CACHE_OK);
	assert_int_equal(cache_count_prefix(t.s, "http://b.test/x/", 16, 100000, &more), 303);
	memset(&cur, 0, sizeof(cur));
	while (!cur.done) {
		assert_true(++steps < 1000);
		n = cache_purge_prefix_step(t.s, "http://b.test/x/", 16, &cur, 7);
		assert_true(n >= 0);
		assert_true(n <= 7 * 3);          /* a batch is bounded: 7 URLs, variants included */
		assert_true(cur.urls >= last_urls && cur.urls <= last_urls + 7);
		last_urls = cur.urls;
		total += n;
		if (steps == 5) {
			/* the cursor is past 0000..0027 now: a refill and a new key behind it stay,
			 * a new key ahead of it goes */
			assert_true(cur.started);
			assert_int_equal(ts_verify(&t, "http://b.test/x/0001", 50, 1), 0);
			assert_int_equal(ts_store(&t, "http://b.test/x/0001", 50, 77), CACHE_OK);
			assert_int_equal(ts_store(&t, "http://b.test/x/0002a", 50, 78), CACHE_OK);
			assert_int_equal(ts_store(&t, "http://b.test/x/~late", 50, 79), CACHE_OK);
			ts_consistent(&t);
		}
	}
	assert_true(steps >= 300 / 7);
	assert_int_equal(total, 300 + 3 + 1);
	/* resuming a finished walk does nothing */
	assert_int_equal(cache_purge_prefix_step(t.s, "http://b.test/x/", 16, &cur, 7), 0);
	assert_int_equal(cache_count_prefix(t.s, "http://b.test/x/", 16, 100000, &more), 2);
	assert_int_equal(ts_verify(&t, "http://b.test/x/0001", 50, 77), 1);
	assert_int_equal(ts_verify(&t, "http://b.test/x/0002a", 50, 78), 1);
	assert_int_equal(ts_verify(&t, "http://b.test/x/~late", 50, 79), 0);
	assert_int_equal(ts_verify(&t, "http://b.test/x/0299", 50, 299), 0);
	for (int i = 0; i < 20; i++) {
		snprintf(url, sizeof(url), "http://b.test/y/%04d", i);
		assert_int_equal(ts_verify(&t, url, 50, (uint64_t)i), 1);
	}
	ts_consistent(&t);

	/* URLs longer than a url db key: the prefix reaches past the truncation point, so the
	 * stored URL decides */
	char *a = malloc(1600), *b = malloc(1600);

	assert_non_null(a);
	assert_non_null(b);
	memset(a, 'a', 1599);
	memcpy(a, "http://l.test/", 14);
	a[1599] = 0;
	memcpy(b, a, 1600);
	b[1300] = 'b';
	assert_int_equal(ts_store(&t, a, 50, 1), CACHE_OK);
	assert_int_equal(ts_store(&t, b, 50, 2), CACHE_OK);
	memset(&cur, 0, sizeof(cur));
	total = 0;
	for (int i = 0; i < 10 && !cur.done; i++) {
		n = cache_purge_prefix_step(t.s, b, 1301, &cur, 1);
		assert_true(n >= 0);
		total += n;
	}
	assert_true(cur.done);
	assert_int_equal(total, 1);
	assert_int_equal(ts_verify(&t, a, 50, 1), 1);
	assert_int_equal(ts_verify(&t, b, 50, 2), 0);
	free(a);
	free(b);
	/* bad arguments */
	assert_true(cache_purge_prefix_step(t.s, "x", 1, NULL, 1) < 0);
	assert_true(cache_purge_prefix_step(NULL, "x", 1, &cur, 1) < 0);
	ts_consistent(&t);
	ts_cleanup(&t);
}

/* A version 1 record (before hits were kept) still decodes, with no hits. */
static void
store_record_v1_decodes(void **state)
{
	struct cache_meta m, d;
	unsigned char buf[512], v1[512];

	(void)state;
	memset(&m, 0, sizeof(m));
	m.status = 203;
	m.seq = 77;
	m.hits = 5;
	m.last_access = 1234;
	m.url = (struct cache_str){"http://x/", 9};
	m.headers = (struct cache_str){"A: b\r\n", 6};
	size_t n = cache_rec_size(&m);

	assert_true(n < sizeof(buf));
	cache_rec_encode(&m, buf);
	assert_int_equal(cache_rec_decode(buf, n, &d), 0);
	assert_int_equal(d.hits, 5);
	assert_int_equal(d.last_access, 1234);
	/* the same as version 1: the fixed part without hits, then the strings */
	memcpy(v1, buf, CACHE_REC_V1_SIZE);
	v1[0] = 1;
	memcpy(v1 + CACHE_REC_V1_SIZE, buf + sizeof(struct cache_rec), n - sizeof(struct cache_rec));
	assert_int_equal(cache_rec_decode(v1, n - 16, &d), 0);
	assert_int_equal(d.status, 203);
	assert_int_equal(d.seq, 77);
	assert_int_equal(d.hits, 0);
	assert_int_equal(d.last_access, -1);
	assert_memory_equal(d.url.p, "http://x/", 9);
	assert_memory_equal(d.headers.p, "A: b\r\n", 6);
	assert_int_equal(cache_rec_decode(v1, n - 17, &d), -1);
}

struct pending_seen {
	int n;
	struct cache_purge_pending p;
	char prefix[64];
};

static int
pending_cb(void *arg, const struct cache_purge_pending *p)
{
	struct pending_seen *s = arg;

	s->n++;
	s->p = *p;
	snprintf(s->prefix, sizeof(s->prefix), "%.*s", (int)p->plen, p->prefix);
	return 0;
}

/* A durable purge: recorded, its cursor saved by each batch, found again after a reopen
 * with its cursor and count, resumed to the end from there, then gone. */
static void
store_purge_pending_resumes(void **state)
{
	struct cache_purge_cursor cur;
	struct pending_seen seen;
	struct ts t;
	char url[64];
	long total = 0, n;

	(void)state;
	ts_open(&t, 32 * MiB);
	for (int i = 0; i < 100; i++) {
		snprintf(url, sizeof(url), "http://p.test/x/%04d", i);
		assert_int_equal(ts_store(&t, url, 50, (uint64_t)i), CACHE_OK);
	}
	assert_int_equal(ts_store(&t, "http://p.test/y", 50, 1), CACHE_OK);
	memset(&cur, 0, sizeof(cur));
	assert_int_equal(cache_purge_pending_add(t.s, "http://p.test/x/", 16, 1234, 100,
	                                         &cur.pending), CACHE_OK);
	assert_true(cur.pending > 0);
	for (int i = 0; i < 4; i++) {
		n = cache_purge_prefix_step(t.s, "http://p.test/x/", 16, &cur, 10);
		assert_int_equal(n, 10);
		total += n;
	}
	ts_reopen(&t);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(cache_purge_pending_list(t.s, pending_cb, &seen), 1);
	assert_int_equal(seen.n, 1);
	assert_string_equal(seen.prefix, "http://p.test/x/");
	assert_int_equal(seen.p.started, 1234);
	assert_int_equal(seen.p.estimate, 100);
	assert_int_equal(seen.p.removed, 40);
	assert_int_equal(seen.p.cur.urls, 40);
	assert_int_equal(seen.p.cur.pending, cur.pending);
	assert_int_equal(seen.p.cur.keylen, cur.keylen);
	assert_memory_equal(seen.p.cur.key, cur.key, cur.keylen);
	cur = seen.p.cur;
	for (int i = 0; i < 100 && !cur.done; i++) {
		n = cache_purge_prefix_step(t.s, "http://p.test/x/", 16, &cur, 7);
		assert_true(n >= 0);
		total += n;
	}
	assert_true(cur.done);
	assert_int_equal(total, 100);
	assert_int_equal(ts_verify(&t, "http://p.test/x/0099", 50, 99), 0);
	assert_int_equal(ts_verify(&t, "http://p.test/y", 50, 1), 1);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(cache_purge_pending_list(t.s, pending_cb, &seen), 0);
	ts_reopen(&t);
	assert_int_equal(cache_purge_pending_list(t.s, pending_cb, &seen), 0);
	/* ids go on from the last one recorded */
	uint64_t id2 = 0;
	assert_int_equal(cache_purge_pending_add(t.s, "http://p.test/", 14, 1, 1, &id2), CACHE_OK);
	assert_true(id2 > 0);
	assert_int_equal(cache_purge_pending_list(t.s, pending_cb, &seen), 1);
	ts_consistent(&t);
	ts_cleanup(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(store_round_trip_small),
		cmocka_unit_test(store_chunking_20mb),
		cmocka_unit_test(store_fill_invisible_until_commit),
		cmocka_unit_test(store_abort_leaves_nothing),
		cmocka_unit_test(store_replace_new_version),
		cmocka_unit_test(store_vary_variants),
		cmocka_unit_test(store_compression_transparent),
		cmocka_unit_test(store_eviction_keeps_under_budget),
		cmocka_unit_test(store_pinned_body_survives_purge_and_eviction),
		cmocka_unit_test(store_lru_keeps_recently_used),
		cmocka_unit_test(store_map_full_is_handled),
		cmocka_unit_test(store_purge_list_clear),
		cmocka_unit_test(store_long_urls),
		cmocka_unit_test(store_update_after_304),
		cmocka_unit_test(store_persists_across_reopen),
		cmocka_unit_test(store_open_errors),
		cmocka_unit_test(store_orphans_swept_at_open),
		cmocka_unit_test(store_sweep_repairs_damage),
		cmocka_unit_test(store_kill9_during_writes),
		cmocka_unit_test(store_concurrent_readers_and_writers),
		cmocka_unit_test(store_map_pages_released),
		cmocka_unit_test(store_find_substring_is_bounded_per_page),
		cmocka_unit_test(store_hits_and_variants_recorded),
		cmocka_unit_test(store_count_prefix_matches_purge),
		cmocka_unit_test(store_purge_prefix_steps),
		cmocka_unit_test(store_purge_pending_resumes),
		cmocka_unit_test(store_record_v1_decodes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
