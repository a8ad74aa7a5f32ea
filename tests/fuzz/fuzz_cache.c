/*
 * fuzz_cache.c - libFuzzer harness for the cache rules (cache/: everything but the store).
 *
 * Input: a URL line, then request field lines, an empty line, a status line ("200"), then
 * response field lines. The harness runs storable/build/decide/conditional/range/merge/
 * invalidation/Vary/key/date functions on it and abort()s on inconsistencies: ranges outside
 * the body or overlapping, ttl != lifetime - age, a key that does not normalise to itself,
 * a formatted date that does not parse back, slices outside their entry.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_MAX 64

static void
fz_check_at(int ok, int line)
{
	if (!ok) {
		fprintf(stderr, "fuzz_cache.c:%d: check failed\n", line);
		abort();
	}
}
#define fz_check(ok) fz_check_at((ok), __LINE__)

/* Split lines [p, end) into fields; stops at an empty line (returns its end in *rest). */
static size_t
fz_fields(const char *p, const char *end, struct cache_hdr *h, const char **rest)
{
	size_t n = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;

		if (le == p) {
			*rest = nl ? nl + 1 : end;
			return n;
		}
		const char *colon = memchr(p, ':', (size_t)(le - p));

		if (colon && n < FZ_MAX) {
			const char *v = colon + 1;

			while (v < le && *v == ' ')
				v++;
			h[n].name = (struct cache_str){p, (size_t)(colon - p)};
			h[n].value = (struct cache_str){v, (size_t)(le - v)};
			n++;
		}
		p = nl ? nl + 1 : end;
	}
	*rest = end;
	return n;
}

static int
fz_inside(struct cache_str s, const void *lo, size_t n)
{
	return s.n == 0 || (s.p >= (const char *)lo && s.p + s.n <= (const char *)lo + n);
}

static void
fz_entry_ok(const struct cache_entry *e)
{
	/* every slice lies in the entry's own block */
	const char *base = (const char *)(e + 1);
	size_t span = e->meta.url.n + e->meta.headers.n + e->meta.etag.n + e->meta.vary.n + 4;

	fz_check(fz_inside(e->meta.url, base, span) && fz_inside(e->meta.headers, base, span) &&
	         fz_inside(e->meta.etag, base, span) && fz_inside(e->meta.vary, base, span));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *rest;
	struct cache_hdr rq[FZ_MAX], rs[FZ_MAX];
	struct cache_conf conf;
	const char *nl = memchr(p, '\n', size);

	if (!nl)
		return 0;
	struct cache_str url = {p, (size_t)(nl - p)};
	size_t nrq = fz_fields(nl + 1, end, rq, &rest);
	if (rest >= end)
		return 0;
	const char *sl = memchr(rest, '\n', (size_t)(end - rest));
	int status = 0;

	if (!sl)
		return 0;
	for (const char *q = rest; q < sl && q < rest + 4 && *q >= '0' && *q <= '9'; q++)
		status = status * 10 + (*q - '0');
	size_t nrs = fz_fields(sl + 1, end, rs, &rest);
	struct cache_request req = {size & 1 ? CACHE_M_GET : (enum cache_method)(size % 10), url,
	                            {rq, nrq}};
	struct cache_hdrs resp = {rs, nrs};
	const char *reason;

	cache_conf_default(&conf);
	conf.ignore_no_lastmod = (size >> 1) & 1;
	conf.stale_on_error = (size >> 2) & 1;
	(void)cache_storable(&conf, &req, status, &resp, &reason);

	struct cache_entry *e = NULL, *m = NULL;

	if (cache_entry_build(&conf, &req, status, &resp, 1000, 1002, &e) == CACHE_OK) {
		fz_entry_ok(e);
		e->meta.body_size = size * 37;
		for (int64_t now = 900; now < 200000; now = now * 3 + 7) {
			struct cache_decision d;

			cache_decide(&conf, &e->meta, &req, now, &d);
			fz_check(d.ttl == d.lifetime - d.age || req.method > CACHE_M_HEAD);
			fz_check(d.age >= 0 && d.lifetime >= 0 && d.lifetime <= conf.max_expire);
			fz_check(d.reason != NULL);
		}
		(void)cache_cond_check(&e->meta, &req);
		struct cache_range r[CACHE_MAX_RANGES];
		size_t n = 0;
		enum cache_range_result rr;

		rr = cache_range_decide(&e->meta, &req, r, CACHE_MAX_RANGES, &n);

		fz_check(rr == CACHE_RANGE_PARTIAL ? n > 0 : n == 0);
		for (size_t i = 0; i < n; i++) {
			fz_check(r[i].first <= r[i].last && r[i].last < e->meta.body_size);
			for (size_t k = 0; k < i; k++)
				fz_check(r[k].last + 1 < r[i].first || r[i].last + 1 < r[k].first);
		}
		char vbuf[512];

		(void)cache_validators(e, vbuf, sizeof(vbuf));
		if (cache_entry_merge_304(&conf, e, &req.hdrs, 2000, 2001, &m) == CACHE_OK) {
			fz_entry_ok(m);
			fz_check(m->meta.body_size == e->meta.body_size);
			cache_entry_free(m);
		}
		cache_entry_free(e);
	}

	struct cache_uri_list l;

	if (cache_invalidations(&req, status, &resp, &l) == CACHE_OK) {
		fz_check(l.n <= 3);
		for (size_t i = 0; i < l.n; i++) {
			char k[4096];
			size_t kl;

			/* what we return is already a normalised key */
			if (!cache_key_normalise(l.uri[i], strlen(l.uri[i]), 0, k, sizeof(k), &kl))
				fz_check(strcmp(k, l.uri[i]) == 0);
		}
		cache_uri_list_free(&l);
	}

	char key[4096], key2[4096];
	size_t kl, kl2;

	if (cache_key_normalise(url.p, url.n, (int)(size & 2), key, sizeof(key), &kl) == CACHE_OK) {
		fz_check(kl == strlen(key));
		fz_check(!cache_key_normalise(key, kl, (int)(size & 2), key2, sizeof(key2), &kl2));
		fz_check(kl == kl2 && memcmp(key, key2, kl) == 0);
	}

	char spec[CACHE_VARY_MAX + 1];
	int sl2 = cache_vary_spec(&resp, spec, sizeof(spec));
	unsigned char h[32];

	if (sl2 >= 0)
		fz_check(!cache_vary_hash((struct cache_str){spec, (size_t)sl2}, &req.hdrs, h));
	for (size_t i = 0; i < nrs; i++) {
		int64_t t = cache_http_date_parse(rs[i].value.p, rs[i].value.n);
		char out[30];

		if (t >= 0 && t < 253402300800ll) {
			cache_http_date_format(t, out);
			fz_check(cache_http_date_parse(out, 29) == t);
		}
	}
	struct cache_status st;
	char buf[256];

	cache_outcome_status((enum cache_outcome)(size % (CACHE_OUT__COUNT + 1)), &st);
	st.detail = nrs ? "x y" : NULL;
	fz_check(cache_status_format(url.n < 64 ? "Gatehouse" : "1.2", &st, buf, sizeof(buf)) <
	         sizeof(buf));
	return 0;
}
