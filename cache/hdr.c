/*
 * hdr.c - the cache's field-level parsing: methods, case-insensitive names, comma lists with
 * quoted strings, delta-seconds, HTTP dates (all three RFC 9110 forms), Cache-Control for
 * responses and requests, entity-tag comparison, stored header blocks.
 *
 * Pure functions over caller memory; nothing here allocates except cache_block_fields().
 * Input never reaches an assert: malformed values are skipped or count as absent/invalid as
 * RFC 9111 prescribes.
 */
#include "cache/cache_priv.h"

#include <stdlib.h>
#include <string.h>

const char *
cache_strerror(int err)
{
	switch (err) {
	case CACHE_OK: return "ok";
	case CACHE_ENOENT: return "no such entry";
	case CACHE_ENOMEM: return "out of memory";
	case CACHE_EIO: return "cache storage error";
	case CACHE_EFULL: return "cache full";
	case CACHE_ETOOBIG: return "object too large for the cache";
	case CACHE_ECORRUPT: return "corrupt cache record";
	case CACHE_EINVAL: return "invalid argument";
	case CACHE_EMISMATCH: return "validators do not match";
	case CACHE_EBUSY: return "cache directory in use";
	default: return "unknown cache error";
	}
}

enum cache_method
cache_method_parse(const char *p, size_t n)
{
	static const struct { const char *s; enum cache_method m; } tab[] = {
		{"GET", CACHE_M_GET}, {"HEAD", CACHE_M_HEAD}, {"POST", CACHE_M_POST},
		{"PUT", CACHE_M_PUT}, {"DELETE", CACHE_M_DELETE}, {"PATCH", CACHE_M_PATCH},
		{"OPTIONS", CACHE_M_OPTIONS}, {"TRACE", CACHE_M_TRACE},
		{"CONNECT", CACHE_M_CONNECT},
	};

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strlen(tab[i].s) == n && memcmp(tab[i].s, p, n) == 0)
			return tab[i].m;
	return CACHE_M_OTHER;
}

static int
cache_lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

int
cache_nieq(const char *a, size_t an, const char *b, size_t bn)
{
	if (an != bn)
		return 0;
	for (size_t i = 0; i < an; i++)
		if (cache_lower((unsigned char)a[i]) != cache_lower((unsigned char)b[i]))
			return 0;
	return 1;
}

int
cache_sieq(struct cache_str s, const char *lit)
{
	return cache_nieq(s.p, s.n, lit, strlen(lit));
}

struct cache_str
cache_trim(struct cache_str s)
{
	while (s.n && (s.p[0] == ' ' || s.p[0] == '\t')) {
		s.p++;
		s.n--;
	}
	while (s.n && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t'))
		s.n--;
	return s;
}

int
cache_list_next(struct cache_str v, size_t *pos, struct cache_str *elem)
{
	size_t i = *pos;

	while (i < v.n) {
		size_t start = i;
		int inq = 0;

		for (; i < v.n; i++) {
			char c = v.p[i];

			if (inq) {
				if (c == '\\' && i + 1 < v.n)
					i++;
				else if (c == '"')
					inq = 0;
			} else if (c == '"') {
				inq = 1;
			} else if (c == ',') {
				break;
			}
		}
		struct cache_str e = cache_trim((struct cache_str){v.p + start, i - start});

		if (i < v.n)
			i++; /* the comma */
		if (e.n) {
			*elem = e;
			*pos = i;
			return 1;
		}
	}
	*pos = i;
	return 0;
}

int64_t
cache_delta_parse(struct cache_str s)
{
	int64_t v = 0;

	s = cache_trim(s);
	if (s.n >= 2 && s.p[0] == '"' && s.p[s.n - 1] == '"') {
		s.p++;
		s.n -= 2;
	}
	if (s.n == 0)
		return -1;
	for (size_t i = 0; i < s.n; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return -1;
		if (v < CACHE_DELTA_MAX)
			v = v * 10 + (s.p[i] - '0');
	}
	return v > CACHE_DELTA_MAX ? CACHE_DELTA_MAX : v;
}

const struct cache_hdr *
cache_hdr_find(const struct cache_hdrs *h, const char *name)
{
	if (!h)
		return NULL;
	for (size_t i = 0; i < h->n; i++)
		if (cache_sieq(h->v[i].name, name))
			return &h->v[i];
	return NULL;
}

int
cache_block_next(struct cache_str block, size_t *pos, struct cache_hdr *out)
{
	size_t i = *pos;

	while (i < block.n) {
		size_t start = i, colon = 0;
		int have_colon = 0;

		while (i < block.n && block.p[i] != '\n') {
			if (!have_colon && block.p[i] == ':') {
				colon = i;
				have_colon = 1;
			}
			i++;
		}
		size_t end = i;

		if (i < block.n)
			i++;
		if (end > start && block.p[end - 1] == '\r')
			end--;
		if (!have_colon || colon == start || colon >= end)
			continue;
		out->name = (struct cache_str){block.p + start, colon - start};
		out->value = cache_trim((struct cache_str){block.p + colon + 1, end - colon - 1});
		*pos = i;
		return 1;
	}
	*pos = i;
	return 0;
}

long
cache_block_fields(struct cache_str block, struct cache_hdr **out)
{
	size_t pos = 0, n = 0, cap = 0;
	struct cache_hdr h, *v = NULL;

	*out = NULL;
	while (cache_block_next(block, &pos, &h)) {
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct cache_hdr *nv;

			if (nc > CACHE_MAX_FIELDS * 2) {
				free(v);
				return -1;
			}
			nv = realloc(v, nc * sizeof(*v));
			if (!nv) {
				free(v);
				return -1;
			}
			v = nv;
			cap = nc;
		}
		v[n++] = h;
	}
	*out = v;
	return (long)n;
}

/* ---- HTTP dates ---- */

static int64_t
cache_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + (int64_t)doe - 719468;
}

static int
cache_month(const char *p)
{
	static const char *const names = "JanFebMarAprMayJunJulAugSepOctNovDec";

	for (int i = 0; i < 12; i++)
		if (cache_nieq(p, 3, names + 3 * i, 3))
			return i + 1;
	return 0;
}

/* Reads exactly `digits` decimal digits at *i. */
static int
cache_num(const char *p, size_t n, size_t *i, unsigned digits, int *v)
{
	int x = 0;

	if (*i + digits > n)
		return -1;
	for (unsigned k = 0; k < digits; k++) {
		char c = p[*i + k];

		if (c < '0' || c > '9')
			return -1;
		x = x * 10 + (c - '0');
	}
	*i += digits;
	*v = x;
	return 0;
}

static int
cache_lit(const char *p, size_t n, size_t *i, const char *lit)
{
	size_t l = strlen(lit);

	if (*i + l > n || !cache_nieq(p + *i, l, lit, l))
		return -1;
	*i += l;
	return 0;
}

static int
cache_time_of_day(const char *p, size_t n, size_t *i, int *hh, int *mm, int *ss)
{
	if (cache_num(p, n, i, 2, hh) || cache_lit(p, n, i, ":") || cache_num(p, n, i, 2, mm) ||
	    cache_lit(p, n, i, ":") || cache_num(p, n, i, 2, ss))
		return -1;
	return (*hh > 23 || *mm > 59 || *ss > 60) ? -1 : 0;
}

int64_t
cache_http_date_parse(const char *p, size_t n)
{
	static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	struct cache_str s = cache_trim((struct cache_str){p, n});
	size_t i = 0;
	int day, mon, year, hh, mm, ss;

	p = s.p;
	n = s.n;
	while (i < n && ((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= 'a' && p[i] <= 'z')))
		i++;
	if (i < 3 || i >= n)
		return -1;
	if (p[i] == ',') {
		i++;
		if (cache_lit(p, n, &i, " ") || cache_num(p, n, &i, 2, &day) || i >= n)
			return -1;
		if (p[i] == ' ') { /* IMF-fixdate */
			i++;
			if (i + 3 > n || !(mon = cache_month(p + i)))
				return -1;
			i += 3;
			if (cache_lit(p, n, &i, " ") || cache_num(p, n, &i, 4, &year))
				return -1;
		} else if (p[i] == '-') { /* RFC 850 */
			i++;
			if (i + 3 > n || !(mon = cache_month(p + i)))
				return -1;
			i += 3;
			if (cache_lit(p, n, &i, "-") || cache_num(p, n, &i, 2, &year))
				return -1;
			year += year < 70 ? 2000 : 1900;
		} else {
			return -1;
		}
		if (cache_lit(p, n, &i, " ") || cache_time_of_day(p, n, &i, &hh, &mm, &ss) ||
		    cache_lit(p, n, &i, " GMT") || i != n)
			return -1;
	} else if (p[i] == ' ') { /* asctime: "Sun Nov  6 08:49:37 1994" */
		i++;
		if (i + 3 > n || !(mon = cache_month(p + i)))
			return -1;
		i += 3;
		if (cache_lit(p, n, &i, " ") || i >= n)
			return -1;
		if (p[i] == ' ') {
			i++;
			if (cache_num(p, n, &i, 1, &day))
				return -1;
		} else if (cache_num(p, n, &i, 2, &day)) {
			return -1;
		}
		if (cache_lit(p, n, &i, " ") || cache_time_of_day(p, n, &i, &hh, &mm, &ss) ||
		    cache_lit(p, n, &i, " ") || cache_num(p, n, &i, 4, &year) || i != n)
			return -1;
	} else {
		return -1;
	}
	if (day < 1 || (unsigned)day > mdays[mon - 1] || year < 1970)
		return -1;
	if (mon == 2 && day == 29 && !((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
		return -1;
	if (ss == 60)
		ss = 59;
	return cache_days_from_civil(year, (unsigned)mon, (unsigned)day) * 86400 + hh * 3600 +
	       mm * 60 + ss;
}

size_t
cache_http_date_format(int64_t t, char out[30])
{
	static const char *const wd = "ThuFriSatSunMonTueWed"; /* day 0 was a Thursday */
	static const char *const mn = "JanFebMarAprMayJunJulAugSepOctNovDec";
	int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
	int64_t secs = t - days * 86400;
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t y = (int64_t)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	unsigned d = doy - (153 * mp + 2) / 5 + 1;
	unsigned m = mp < 10 ? mp + 3 : mp - 9;
	unsigned w = (unsigned)(((days % 7) + 7) % 7);
	char *o = out;

	y += m <= 2;
	if (y < 0 || y > 9999) { /* not representable: clamp to the epoch */
		memcpy(out, "Thu, 01 Jan 1970 00:00:00 GMT", 30);
		return 29;
	}
	memcpy(o, wd + 3 * w, 3);
	o += 3;
	*o++ = ',';
	*o++ = ' ';
	*o++ = (char)('0' + d / 10);
	*o++ = (char)('0' + d % 10);
	*o++ = ' ';
	memcpy(o, mn + 3 * (m - 1), 3);
	o += 3;
	*o++ = ' ';
	*o++ = (char)('0' + y / 1000);
	*o++ = (char)('0' + y / 100 % 10);
	*o++ = (char)('0' + y / 10 % 10);
	*o++ = (char)('0' + y % 10);
	*o++ = ' ';
	*o++ = (char)('0' + secs / 36000);
	*o++ = (char)('0' + secs / 3600 % 10);
	*o++ = ':';
	*o++ = (char)('0' + secs % 3600 / 600);
	*o++ = (char)('0' + secs % 3600 / 60 % 10);
	*o++ = ':';
	*o++ = (char)('0' + secs % 60 / 10);
	*o++ = (char)('0' + secs % 60 % 10);
	memcpy(o, " GMT", 5);
	return 29;
}

/* ---- Cache-Control ---- */

/* A seconds-valued directive: conflicting repeats and invalid values count as 0 when
 * zero_on_bad (max-age, s-maxage: "consider stale"), otherwise the first valid one wins. */
static void
cache_cc_secs(int64_t *slot, struct cache_str val, int has_val, int zero_on_bad)
{
	int64_t v = has_val ? cache_delta_parse(val) : -1;

	if (v < 0) {
		if (zero_on_bad)
			*slot = 0;
		return;
	}
	if (*slot < 0)
		*slot = v;
	else if (*slot != v && zero_on_bad)
		*slot = 0;
}

static void
cache_cc_value(struct cache_str v, struct cache_cc *cc)
{
	size_t pos = 0;
	struct cache_str e;

	while (cache_list_next(v, &pos, &e)) {
		size_t eq = 0;

		while (eq < e.n && e.p[eq] != '=')
			eq++;
		struct cache_str name = cache_trim((struct cache_str){e.p, eq});
		int has_val = eq < e.n;
		struct cache_str val = {"", 0};

		if (has_val)
			val = cache_trim((struct cache_str){e.p + eq + 1, e.n - eq - 1});

		if (cache_sieq(name, "no-store"))
			cc->flags |= CACHE_CC_NO_STORE;
		else if (cache_sieq(name, "no-cache"))
			cc->flags |= CACHE_CC_NO_CACHE;
		else if (cache_sieq(name, "private"))
			cc->flags |= CACHE_CC_PRIVATE;
		else if (cache_sieq(name, "public"))
			cc->flags |= CACHE_CC_PUBLIC;
		else if (cache_sieq(name, "must-revalidate"))
			cc->flags |= CACHE_CC_MUST_REVALIDATE;
		else if (cache_sieq(name, "proxy-revalidate"))
			cc->flags |= CACHE_CC_PROXY_REVALIDATE;
		else if (cache_sieq(name, "no-transform"))
			cc->flags |= CACHE_CC_NO_TRANSFORM;
		else if (cache_sieq(name, "only-if-cached"))
			cc->flags |= CACHE_CC_ONLY_IF_CACHED;
		else if (cache_sieq(name, "immutable"))
			cc->flags |= CACHE_CC_IMMUTABLE;
		else if (cache_sieq(name, "must-understand"))
			cc->flags |= CACHE_CC_MUST_UNDERSTAND;
		else if (cache_sieq(name, "max-age"))
			cache_cc_secs(&cc->max_age, val, has_val, 1);
		else if (cache_sieq(name, "s-maxage"))
			cache_cc_secs(&cc->s_maxage, val, has_val, 1);
		else if (cache_sieq(name, "max-stale")) {
			if (!has_val)
				cc->flags |= CACHE_CC_MAX_STALE_ANY;
			else
				cache_cc_secs(&cc->max_stale, val, 1, 0);
		} else if (cache_sieq(name, "min-fresh"))
			cache_cc_secs(&cc->min_fresh, val, has_val, 0);
		else if (cache_sieq(name, "stale-while-revalidate"))
			cache_cc_secs(&cc->swr, val, has_val, 0);
		else if (cache_sieq(name, "stale-if-error"))
			cache_cc_secs(&cc->sie, val, has_val, 0);
	}
}

static void
cache_cc_init(struct cache_cc *cc)
{
	cc->flags = 0;
	cc->max_age = cc->s_maxage = cc->max_stale = cc->min_fresh = cc->swr = cc->sie = -1;
}

void
cache_cc_parse(const struct cache_hdrs *h, struct cache_cc *cc)
{
	cache_cc_init(cc);
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++)
		if (cache_sieq(h->v[i].name, "cache-control"))
			cache_cc_value(h->v[i].value, cc);
}

void
cache_cc_parse_request(const struct cache_hdrs *h, struct cache_cc *cc)
{
	cache_cc_parse(h, cc);
	if (!h || cache_hdr_find(h, "cache-control"))
		return;
	for (size_t i = 0; i < h->n; i++) {
		if (!cache_sieq(h->v[i].name, "pragma"))
			continue;
		size_t pos = 0;
		struct cache_str e;

		while (cache_list_next(h->v[i].value, &pos, &e))
			if (cache_sieq(e, "no-cache"))
				cc->flags |= CACHE_CC_NO_CACHE | CACHE_CC_PRAGMA_NO_CACHE;
	}
}

/* ---- entity tags ---- */

/* Split an entity-tag into weakness and opaque-tag (with quotes). Returns -1 if malformed. */
static int
cache_etag_split(struct cache_str t, int *weak, struct cache_str *opaque)
{
	t = cache_trim(t);
	*weak = 0;
	if (t.n >= 2 && t.p[0] == 'W' && t.p[1] == '/') {
		*weak = 1;
		t.p += 2;
		t.n -= 2;
	}
	if (t.n < 2 || t.p[0] != '"' || t.p[t.n - 1] != '"')
		return -1;
	for (size_t i = 1; i + 1 < t.n; i++)
		if (t.p[i] == '"')
			return -1;
	*opaque = t;
	return 0;
}

int
cache_etag_match(struct cache_str a, struct cache_str b, int strong)
{
	int wa, wb;
	struct cache_str oa, ob;

	if (cache_etag_split(a, &wa, &oa) || cache_etag_split(b, &wb, &ob))
		return 0;
	if (strong && (wa || wb))
		return 0;
	return oa.n == ob.n && memcmp(oa.p, ob.p, oa.n) == 0;
}
