/*
 * range.c - Range requests answered from complete stored entries (RFC 9110 14): parsing
 * byte-range sets against a known size, If-Range, and the pieces of a multipart/byteranges
 * body (boundary, part heads, tail, total length) so the daemon can stream parts from chunks.
 *
 * Pure functions; invalid Range values are ignored (whole body), never errors.
 */
#include "cache/cache_priv.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_RANGE_SPECS_MAX 100 /* more range-specs than this: ignore the Range */

/* Saturating decimal; -1 when not all digits or empty. */
static int
cache_u64(struct cache_str s, uint64_t *v)
{
	uint64_t x = 0;

	if (!s.n)
		return -1;
	for (size_t i = 0; i < s.n; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return -1;
		unsigned d = (unsigned)(s.p[i] - '0');

		x = x > (UINT64_MAX - d) / 10 ? UINT64_MAX : x * 10 + d;
	}
	*v = x;
	return 0;
}

static int
cache_range_cmp(const void *a, const void *b)
{
	const struct cache_range *x = a, *y = b;

	return (x->first > y->first) - (x->first < y->first);
}

int
cache_range_parse(struct cache_str value, uint64_t size, struct cache_range *r, size_t max)
{
	struct cache_str v = cache_trim(value), e;
	size_t pos = 0, n = 0, specs = 0;
	int overlap = 0;

	if (v.n < 6 || !cache_nieq(v.p, 6, "bytes=", 6))
		return -1;
	v.p += 6;
	v.n -= 6;
	while (cache_list_next(v, &pos, &e)) {
		const char *dash = memchr(e.p, '-', e.n);
		struct cache_range x;

		if (!dash || ++specs > CACHE_RANGE_SPECS_MAX)
			return -1;
		struct cache_str a = {e.p, (size_t)(dash - e.p)};
		struct cache_str b = {dash + 1, e.n - a.n - 1};
		uint64_t first, last;

		if (a.n == 0) { /* suffix */
			if (cache_u64(b, &last))
				return -1;
			if (last == 0 || size == 0)
				continue;
			x.first = size > last ? size - last : 0;
			x.last = size - 1;
		} else {
			if (cache_u64(a, &first))
				return -1;
			if (b.n) {
				if (cache_u64(b, &last) || last < first)
					return -1;
			} else {
				last = UINT64_MAX;
			}
			if (first >= size)
				continue;
			x.first = first;
			x.last = last < size - 1 ? last : size - 1;
		}
		if (n == max)
			return -1;
		for (size_t k = 0; k < n; k++)
			if (x.first <= r[k].last + 1 && r[k].first <= x.last + 1)
				overlap = 1;
		r[n++] = x;
	}
	if (specs == 0)
		return -1;
	if (overlap && n > 1) {
		size_t m = 0;

		qsort(r, n, sizeof(*r), cache_range_cmp);
		for (size_t k = 1; k < n; k++) {
			if (r[k].first <= r[m].last + 1) {
				if (r[k].last > r[m].last)
					r[m].last = r[k].last;
			} else {
				r[++m] = r[k];
			}
		}
		n = m + 1;
	}
	return (int)n;
}

enum cache_range_result
cache_range_decide(const struct cache_meta *m, const struct cache_request *req,
                   struct cache_range *r, size_t max, size_t *n)
{
	const struct cache_hdr *range = NULL, *ifr;
	int k;

	*n = 0;
	if (req->method != CACHE_M_GET || m->status != 200)
		return CACHE_RANGE_FULL;
	for (size_t i = 0; i < req->hdrs.n; i++) {
		if (!cache_sieq(req->hdrs.v[i].name, "range"))
			continue;
		if (range)
			return CACHE_RANGE_FULL; /* two Range fields: ignore both */
		range = &req->hdrs.v[i];
	}
	if (!range)
		return CACHE_RANGE_FULL;
	ifr = cache_hdr_find(&req->hdrs, "if-range");
	if (ifr) {
		struct cache_str v = cache_trim(ifr->value);

		if (v.n && (v.p[0] == '"' || (v.n > 1 && v.p[0] == 'W' && v.p[1] == '/'))) {
			if (!m->etag.n || !cache_etag_match(v, m->etag, 1))
				return CACHE_RANGE_FULL;
		} else {
			int64_t t = cache_http_date_parse(v.p, v.n);
			int64_t date = m->date >= 0 ? m->date : m->response_time;

			if (t < 0 || m->last_modified < 0 || t != m->last_modified ||
			    date < m->last_modified + 1)
				return CACHE_RANGE_FULL;
		}
	}
	k = cache_range_parse(range->value, m->body_size, r, max);
	if (k < 0)
		return CACHE_RANGE_FULL;
	if (k == 0)
		return CACHE_RANGE_UNSATISFIABLE;
	*n = (size_t)k;
	return CACHE_RANGE_PARTIAL;
}

/* ---- multipart/byteranges ---- */

static uint64_t
cache_splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void
cache_multipart_boundary(uint64_t seed, char out[CACHE_BOUNDARY_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint64_t s = seed, a = cache_splitmix(&s), b = cache_splitmix(&s);

	for (int i = 0; i < 16; i++)
		out[i] = hex[(a >> (4 * i)) & 15];
	for (int i = 0; i < CACHE_BOUNDARY_LEN - 16; i++)
		out[16 + i] = hex[(b >> (4 * i)) & 15];
	out[CACHE_BOUNDARY_LEN] = '\0';
}

size_t
cache_multipart_head(const char *boundary, struct cache_str ctype, const struct cache_range *r,
                     uint64_t size, char *out, size_t cap)
{
	char range[80];
	int rl = snprintf(range, sizeof(range), "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%"
	                  PRIu64 "\r\n\r\n", r->first, r->last, size);
	size_t bl = strlen(boundary);
	size_t need = 4 + bl + 2 + (ctype.n ? 14 + ctype.n + 2 : 0) + (size_t)rl;

	if (need >= cap)
		return need;
	char *o = out;

	memcpy(o, "\r\n--", 4);
	o += 4;
	memcpy(o, boundary, bl);
	o += bl;
	memcpy(o, "\r\n", 2);
	o += 2;
	if (ctype.n) {
		memcpy(o, "Content-Type: ", 14);
		o += 14;
		memcpy(o, ctype.p, ctype.n);
		o += ctype.n;
		memcpy(o, "\r\n", 2);
		o += 2;
	}
	memcpy(o, range, (size_t)rl + 1);
	return need;
}

size_t
cache_multipart_tail(const char *boundary, char *out, size_t cap)
{
	size_t bl = strlen(boundary), need = 4 + bl + 4;

	if (need >= cap)
		return need;
	memcpy(out, "\r\n--", 4);
	memcpy(out + 4, boundary, bl);
	memcpy(out + 4 + bl, "--\r\n", 5);
	return need;
}

uint64_t
cache_multipart_length(const char *boundary, struct cache_str ctype, const struct cache_range *r,
                       size_t n, uint64_t size)
{
	uint64_t total = cache_multipart_tail(boundary, NULL, 0);

	for (size_t i = 0; i < n; i++)
		total += cache_multipart_head(boundary, ctype, &r[i], size, NULL, 0) +
		         (r[i].last - r[i].first + 1);
	return total;
}
