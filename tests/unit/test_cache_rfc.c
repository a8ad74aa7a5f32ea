/*
 * test_cache_rfc.c - cache/: the RFC 9111 rules as tables: storable decisions, freshness
 * lifetimes, current age (RFC 9111 4.2.3 formulas, hand-computed), request directives and the
 * use-of-stored-entry decision, client conditionals, 304 merging, Vary normalisation, Range
 * parsing and If-Range, invalidation lists, Debian archive paths, dates, keys, Cache-Status.
 *
 * Header fixtures are written as "Name: value" lines separated by '\n'; "@N" in a value is
 * replaced by the HTTP-date of T0 + N seconds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"

#define T0 1700000000ll /* Tue, 14 Nov 2023 22:13:20 GMT */

/* ---- fixtures ---- */

struct th {
	char buf[4096];
	struct cache_hdr h[64];
	struct cache_hdrs hs;
};

/* Parse a fixture into t (see the file comment). */
static struct cache_hdrs *
th_parse(struct th *t, const char *spec)
{
	size_t o = 0;

	t->hs.v = t->h;
	t->hs.n = 0;
	if (!spec)
		return &t->hs;
	for (const char *p = spec; *p && o + 40 < sizeof(t->buf); p++) {
		if (*p == '@' && (p[1] == '-' || (p[1] >= '0' && p[1] <= '9'))) {
			char *end;
			long long off = strtoll(p + 1, &end, 10);

			o += cache_http_date_format(T0 + off, t->buf + o);
			p = end - 1;
		} else {
			t->buf[o++] = *p;
		}
	}
	t->buf[o] = '\0';
	char *save = NULL;

	for (char *line = strtok_r(t->buf, "\n", &save); line && t->hs.n < 64;
	     line = strtok_r(NULL, "\n", &save)) {
		char *colon = strchr(line, ':');

		assert_non_null(colon);
		char *v = colon + 1;

		while (*v == ' ')
			v++;
		t->h[t->hs.n].name = (struct cache_str){line, (size_t)(colon - line)};
		t->h[t->hs.n].value = (struct cache_str){v, strlen(v)};
		t->hs.n++;
	}
	return &t->hs;
}

static struct cache_str
S(const char *s)
{
	return (struct cache_str){s, strlen(s)};
}

static struct cache_request
th_req(enum cache_method m, const char *url, const struct cache_hdrs *h)
{
	struct cache_request r = {m, S(url), {NULL, 0}};

	if (h)
		r.hdrs = *h;
	return r;
}

/* Build an entry for a GET of url answered at T0 with resp (request sent at T0 too). */
static struct cache_entry *
th_entry(const struct cache_conf *conf, const char *url, int status, const char *resp,
         int64_t req_time, int64_t resp_time)
{
	struct th r;
	struct cache_request req = th_req(CACHE_M_GET, url, NULL);
	struct cache_entry *e = NULL;

	assert_int_equal(cache_entry_build(conf, &req, status, th_parse(&r, resp), req_time,
	                                   resp_time, &e), CACHE_OK);
	assert_non_null(e);
	return e;
}

/* ---- storable ---- */

enum { F_IGNORE_NOLM = 1, F_STORE_NOSTORE = 2, F_STORE_PRIVATE = 4, F_IGNORE_QS = 8,
       F_MIN100 = 16, F_NO_DEBIAN = 32, F_NO_SOE = 64, F_MAXEXP600 = 128, F_LMF05 = 256 };

static void
th_conf(struct cache_conf *c, unsigned f)
{
	cache_conf_default(c);
	c->ignore_no_lastmod = !!(f & F_IGNORE_NOLM);
	c->store_nostore = !!(f & F_STORE_NOSTORE);
	c->store_private = !!(f & F_STORE_PRIVATE);
	c->ignore_query_string = !!(f & F_IGNORE_QS);
	if (f & F_MIN100)
		c->min_file_size = 100;
	if (f & F_NO_DEBIAN)
		c->debian = 0;
	if (f & F_NO_SOE)
		c->stale_on_error = 0;
	if (f & F_MAXEXP600)
		c->max_expire = 600;
	if (f & F_LMF05)
		c->lm_factor = 0.5;
}

static const struct {
	enum cache_method method;
	const char *url, *req;
	int status;
	const char *resp;
	unsigned flags;
	int want;
	const char *reason;
} storable_rows[] = {
	{CACHE_M_GET, "http://h/a", NULL, 200, "Cache-Control: max-age=60", 0, 1, NULL},
	{CACHE_M_GET, "http://h/a", NULL, 200, "Last-Modified: @-1000", 0, 1, NULL},
	{CACHE_M_GET, "http://h/a", NULL, 200, "ETag: \"v1\"", 0, 1, NULL},
	{CACHE_M_GET, "http://h/a", NULL, 200, "Content-Type: text/html", 0, 0, "no validator or expiry"},
	{CACHE_M_GET, "http://h/a", NULL, 200, "Content-Type: text/html", F_IGNORE_NOLM, 1, NULL},
	{CACHE_M_POST, "http://h/a", NULL, 200, "Cache-Control: max-age=60", 0, 0, "method"},
	{CACHE_M_HEAD, "http://h/a", NULL, 200, "Cache-Control: max-age=60", 0, 0, "method"},
	{CACHE_M_GET, "http://h/a", NULL, 200, "Cache-Control: no-store, max-age=60", 0, 0, "no-store"},
	{CACHE_M_GET, "http://h/a", NULL, 200, "Cache-Control: no-store, max-age=60", F_STORE_NOSTORE, 1, NULL},
	{CACHE_M_GET, "http://h/a", NULL, 200, "Cache-Control: private, max-age=60", 0, 0, "private"},
	{CACHE_M_GET, "http://h/a", NULL, 200, "Cache-Control: private=\"Set-Cookie\", max-age=60", 0, 0, "private"},
	{CACHE_M_GET, "http://h/a", NULL, 200, "Cache-Control: private, max-age=60", F_STORE_PRIVATE, 1, NULL},
	{CACHE_M_GET, "http://h/a", "Authorization: Basic eDp5", 200, "Cache-Control: max-age=60", 0, 0, "authorization"},
	{CACHE_M_GET, "http://h/a", "Authorization: Basic eDp5", 200, "Cache-Control: public, max-age=60", 0, 1, NULL},
	{CACHE_M_GET, "http://h/a", "Authorization: Basic eDp5", 200, "Cache-Control: s-maxage=10", 0, 1, NULL},
	{CACHE_M_GET, "http://h/a", "Authorization: Basic eDp5", 200, "Cache-Control: must-revalidate, max-age=5", 0, 1, NULL},
	{CACHE_M_GET, "http://h/a", NULL, 206, "Cache-Control: max-age=60", 0, 0, "partial content"},
	{CACHE_M_GET, "http://h/a", NULL, 304, "Cache-Control: max-age=60", 0, 0, "status"},
	{CACHE_M_GET, "http://h/a", NULL, 100, "Cache-Control: max-age=60", 0, 0, "status"},
	{CACHE_M_GET, "http://h/a", NULL, 302, "Last-Modified: @-1000", 0, 0, "status"},
	{CACHE_M_GET, "http://h/a", NULL, 302, "Cache-Control: max-age=60", 0, 1, NULL},
	{CACHE_M_GET, "http://h/a", NULL, 302, "Cache-Control: public\nLast-Modified: @-1000", 0, 1, NULL},
	{CACHE_M_GET, "http://h/a", NULL, 301, "Last-Modified: @-1000", 0, 1, NULL},
	{CACHE_M_GET, "http://h/a", NULL, 404, "Last-Modified: @-1000", 0, 1, NULL},
	{CACHE_M_GET, "http://h/a", NULL, 410, "ETag: \"gone\"", 0, 1, NULL},
	{CACHE_M_GET, "http://h/a", NULL, 500, "Last-Modified: @-1000", 0, 0, "status"},
	{CACHE_M_GET, "http://h/a", NULL, 500, "Expires: @60", 0, 1, NULL},
	{CACHE_M_GET, "http://h/a", NULL, 200, "Expires: 0", 0, 0, "no validator or expiry"},
	{CACHE_M_GET, "http://h/a", NULL, 200, "Cache-Control: max-age=60\nVary: *", 0, 0, "vary *"},
	{CACHE_M_GET, "http://h/a", NULL, 200, "Cache-Control: max-age=60\nVary: Accept-Encoding, *", 0, 0, "vary *"},
	{CACHE_M_GET, "http://h/a", NULL, 200, "Cache-Control: max-age=60\nVary: Accept-Encoding", 0, 1, NULL},
	{CACHE_M_GET, "http://h/a", "Cache-Control: no-store", 200, "Cache-Control: max-age=60", 0, 0, "request no-store"},
	{CACHE_M_GET, "http://h/a?q=1", NULL, 200, "Last-Modified: @-1000", 0, 0, "query without expiry"},
	{CACHE_M_GET, "http://h/a?q=1", NULL, 200, "Cache-Control: max-age=60", 0, 1, NULL},
	{CACHE_M_GET, "http://h/a?q=1", NULL, 200, "Last-Modified: @-1000", F_IGNORE_QS, 1, NULL},
	{CACHE_M_GET, "http://h/a", NULL, 200, "Cache-Control: max-age=60\nContent-Length: 600000000", 0, 0, "too large"},
	{CACHE_M_GET, "http://h/a", NULL, 200, "Cache-Control: max-age=60\nContent-Length: 10", F_MIN100, 0, "too small"},
	{CACHE_M_GET, "http://h/a", NULL, 200, "Cache-Control: max-age=60\nContent-Length: 100", F_MIN100, 1, NULL},
	{CACHE_M_GET, "http://h/a", NULL, 200, "Cache-Control: must-understand, no-store, max-age=60", 0, 1, NULL},
	{CACHE_M_GET, "http://h/a", NULL, 299, "Cache-Control: must-understand, no-store, max-age=60", 0, 0, "status"},
	{CACHE_M_GET, "http://h/a", NULL, 200, "Cache-Control: no-cache, max-age=60", 0, 1, NULL},
	{CACHE_M_GET, "http://h/a", NULL, 200, "Cache-Control: no-cache=\"Set-Cookie\"\nETag: \"a\"", 0, 1, NULL},
	{CACHE_M_GET, "http://deb.debian.org/debian/pool/main/h/hello/hello_2.10-3_amd64.deb", NULL, 200, "Content-Type: application/octet-stream", 0, 1, NULL},
	{CACHE_M_GET, "http://deb.debian.org/debian/pool/main/h/hello/hello_2.10-3_amd64.deb", NULL, 200, "Content-Type: application/octet-stream", F_NO_DEBIAN, 0, "no validator or expiry"},
};

static void
rfc_storable_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(storable_rows) / sizeof(storable_rows[0]); i++) {
		struct th rq, rs;
		struct cache_conf c;
		const char *reason = NULL;
		struct cache_request req = th_req(storable_rows[i].method, storable_rows[i].url,
		                                  th_parse(&rq, storable_rows[i].req));
		int got;

		th_conf(&c, storable_rows[i].flags);
		got = cache_storable(&c, &req, storable_rows[i].status,
		                     th_parse(&rs, storable_rows[i].resp), &reason);
		if (got != storable_rows[i].want ||
		    (storable_rows[i].reason && (!reason || strcmp(reason,
		                                                   storable_rows[i].reason))))
			fail_msg("storable row %zu: got %d (%s), want %d (%s)", i, got,
			         reason ? reason : "-", storable_rows[i].want,
			         storable_rows[i].reason ? storable_rows[i].reason : "-");
	}
}

/* ---- freshness lifetime ---- */

static const struct {
	const char *url;
	int status;
	const char *resp;
	unsigned flags;
	int64_t want;
} lifetime_rows[] = {
	{"http://h/a", 200, "Date: @0\nCache-Control: max-age=100", 0, 100},
	{"http://h/a", 200, "Date: @0\nCache-Control: max-age=100, s-maxage=50", 0, 50},
	{"http://h/a", 200, "Date: @0\nExpires: @3600", 0, 3600},
	{"http://h/a", 200, "Date: @0\nExpires: @-10", 0, 0},
	{"http://h/a", 200, "Date: @0\nExpires: 0\nLast-Modified: @-100000", 0, 0},
	{"http://h/a", 200, "Date: @0\nExpires: @3600\nCache-Control: max-age=100", 0, 100},
	{"http://h/a", 200, "Date: @0\nCache-Control: max-age=200000", 0, 86400},
	{"http://h/a", 200, "Date: @0\nLast-Modified: @-1000", 0, 100},
	{"http://h/a", 200, "Date: @0\nLast-Modified: @-1000", F_LMF05, 500},
	{"http://h/a", 200, "Date: @0\nLast-Modified: @-100000000", 0, 86400},
	{"http://h/a", 200, "Date: @0\nLast-Modified: @-100000000", F_MAXEXP600, 600},
	{"http://h/a", 200, "Date: @0\nLast-Modified: @50", 0, 0},
	{"http://h/a", 200, "Date: @0\nETag: \"x\"", F_IGNORE_NOLM, 3600},
	{"http://h/a", 200, "Date: @0\nETag: \"x\"", 0, 0},
	{"http://h/a", 302, "Date: @0\nLast-Modified: @-1000", 0, 0},
	{"http://h/a", 302, "Date: @0\nLast-Modified: @-1000\nCache-Control: public", 0, 100},
	{"http://h/a", 200, "Date: @0\nCache-Control: max-age=100, max-age=200", 0, 0},
	{"http://h/a", 200, "Date: @0\nCache-Control: max-age=100\nCache-Control: max-age=100", 0, 100},
	{"http://h/a", 200, "Date: @0\nCache-Control: max-age=abc\nExpires: @3600", 0, 0},
	{"http://h/a", 200, "Date: @0\nCache-Control: max-age=\"60\"", 0, 60},
	{"http://h/a", 200, "Expires: @100", 0, 100}, /* no Date: response time (T0) */
	{"http://h/a", 200, "Date: @0\nExpires: @100\nExpires: @200", 0, 0},
	{"http://deb.debian.org/debian/pool/main/h/hello/hello_2.10-3_amd64.deb", 200,
	 "Date: @0\nCache-Control: max-age=0", 0, 86400},
	{"http://deb.debian.org/debian/pool/main/h/hello/hello_2.10-3_amd64.deb", 200,
	 "Date: @0\nLast-Modified: @-1000", F_NO_DEBIAN, 100},
	{"http://deb.debian.org/debian/dists/bookworm/main/binary-amd64/by-hash/SHA256/0123abcd", 200,
	 "Date: @0", 0, 86400},
	{"http://deb.debian.org/debian/dists/bookworm/InRelease", 200,
	 "Date: @0\nCache-Control: max-age=30", 0, 30},
	{"http://deb.debian.org/debian/pool/main/h/hello/hello_2.10-3_amd64.deb", 404,
	 "Date: @0\nCache-Control: max-age=5", 0, 5},
};

static void
rfc_lifetime_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(lifetime_rows) / sizeof(lifetime_rows[0]); i++) {
		struct cache_conf c;

		th_conf(&c, lifetime_rows[i].flags);
		struct cache_entry *e = th_entry(&c, lifetime_rows[i].url, lifetime_rows[i].status,
		                                 lifetime_rows[i].resp, T0, T0);
		int64_t got = cache_freshness_lifetime(&c, &e->meta);

		cache_entry_free(e);
		if (got != lifetime_rows[i].want)
			fail_msg("lifetime row %zu: got %" PRId64 ", want %" PRId64, i, got,
			         lifetime_rows[i].want);
	}
}

/* ---- age (RFC 9111 4.2.3) ---- */

static const struct {
	int64_t date, age_value, request_time, response_time, now, want;
} age_rows[] = {
	/* everything at once: age 0 */
	{1000, 0, 1000, 1000, 1000, 0},
	/* apparent_age 2 = response_delay 2; resident 8 */
	{1000, 0, 1000, 1002, 1010, 10},
	/* from an upstream cache, Age: 30; apparent 12 < corrected_age_value 30 + 2 */
	{1000, 30, 1010, 1012, 1100, 120},
	/* origin clock ahead: apparent_age clamps to 0; corrected_age_value 0 + 1 */
	{2000, 0, 999, 1000, 1060, 61},
	/* no Date: apparent 0; Age 5 + delay 1; resident 99 */
	{-1, 5, 100, 101, 200, 105},
	/* origin clock behind by 300 s: apparent_age 300 dominates */
	{700, 10, 999, 1000, 1000, 300},
	/* response before request (clock step): the delay counts as 0 */
	{1000, 0, 1005, 1000, 1000, 0},
	/* now before response_time (clock step): resident 0 */
	{1000, 7, 1000, 1000, 990, 7},
	/* Age clamped at 2^31 by the parser still adds up */
	{1000, 2147483648ll, 1000, 1000, 1001, 2147483649ll},
};

static void
rfc_age_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(age_rows) / sizeof(age_rows[0]); i++) {
		struct cache_meta m;

		memset(&m, 0, sizeof(m));
		m.date = age_rows[i].date;
		m.age_value = age_rows[i].age_value;
		m.request_time = age_rows[i].request_time;
		m.response_time = age_rows[i].response_time;
		int64_t got = cache_current_age(&m, age_rows[i].now);

		if (got != age_rows[i].want)
			fail_msg("age row %zu: got %" PRId64 ", want %" PRId64, i, got,
			         age_rows[i].want);
	}
}

/* The Age field parsed from a stored response feeds the formula (clamped). RFC 9111 5.1: a
 * list, on one line or over several lines (which make one list), counts by its first member,
 * and a first member that is not delta-seconds makes the field ignored (0). */
static const struct {
	const char *fields;
	int64_t want;
} age_field_rows[] = {
	{"Age: 99999999999", 2147483648ll},
	{"Age: 7200, 0", 7200},           /* a list: the first member, not "invalid, so 0" */
	{"Age: 7200,0", 7200},
	{"Age:  , 7200, 0", 7200},       /* empty list elements are no members */
	{"Age: 7200\nAge: 0", 7200},      /* two lines: one list, "7200, 0" */
	{"Age: 0\nAge: 7200", 0},
	{"Age: bogus\nAge: 99", 0},       /* first member invalid: the field is ignored */
	{"Age: 7200x, 5", 0},
	{"Age: -5", 0},
	{"Age: \"300\"", 0},
	{"X-Age: 5", 0},
};

static void
rfc_age_field_parsed(void **state)
{
	struct cache_conf c;

	(void)state;
	cache_conf_default(&c);
	for (size_t i = 0; i < sizeof(age_field_rows) / sizeof(age_field_rows[0]); i++) {
		char spec[256];

		snprintf(spec, sizeof(spec), "Date: @-10\n%s\nCache-Control: max-age=3600",
		         age_field_rows[i].fields);
		struct cache_entry *e = th_entry(&c, "http://h/a", 200, spec, T0 - 2, T0);

		if (e->meta.age_value != age_field_rows[i].want)
			fail_msg("age field row %zu (%s): got %" PRId64 ", want %" PRId64, i,
			         age_field_rows[i].fields, e->meta.age_value,
			         age_field_rows[i].want);
		cache_entry_free(e);
	}
	struct cache_entry *e = th_entry(&c, "http://h/a", 200,
	                                 "Date: @-10\nAge: 99999999999\nCache-Control: max-age=5",
	                                 T0 - 2, T0);

	assert_int_equal(cache_current_age(&e->meta, T0 + 1), 2147483648ll + 2 + 1);
	cache_entry_free(e);
	/* "Age: 7200, 0" with max-age=3600 is stale: it is revalidated, never served as fresh */
	struct cache_request req = {CACHE_M_GET, {"http://h/a", 10}, {NULL, 0}};
	struct cache_decision d;

	e = th_entry(&c, "http://h/a", 200,
	             "Date: @0\nAge: 7200, 0\nETag: \"v\"\nCache-Control: max-age=3600", T0, T0);
	cache_decide(&c, &e->meta, &req, T0 + 1, &d);
	assert_true(d.stale);
	assert_int_equal(d.action, CACHE_ACT_REVALIDATE);
	cache_entry_free(e);
}

/* ---- decisions ---- */

#define A_FRESH CACHE_ACT_FRESH
#define A_REVAL CACHE_ACT_REVALIDATE
#define A_SWR CACHE_ACT_STALE_REVALIDATE
#define A_FETCH CACHE_ACT_FETCH
#define A_504 CACHE_ACT_ONLY_IF_CACHED_MISS

static const struct {
	const char *url;
	const char *resp;           /* NULL: nothing stored */
	enum cache_method method;
	const char *req;
	int64_t elapsed;            /* now - T0; stored at T0 */
	unsigned flags;
	enum cache_action want;
	int sie;                    /* expected stale_if_error, -1: don't care */
	int nm;                     /* expected not_modified, -1: don't care */
} decide_rows[] = {
	{"http://h/a", "Date: @0\nCache-Control: max-age=100\nETag: \"1\"", CACHE_M_GET, NULL, 50, 0, A_FRESH, -1, 0},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100\nETag: \"1\"", CACHE_M_GET, NULL, 150, 0, A_REVAL, 1, -1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100", CACHE_M_GET, NULL, 150, 0, A_FETCH, -1, -1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100\nETag: \"1\"", CACHE_M_GET, "Cache-Control: max-stale", 150, 0, A_FRESH, -1, -1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100\nETag: \"1\"", CACHE_M_GET, "Cache-Control: max-stale=100", 150, 0, A_FRESH, -1, -1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100\nETag: \"1\"", CACHE_M_GET, "Cache-Control: max-stale=100", 300, 0, A_REVAL, -1, -1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100, must-revalidate\nETag: \"1\"", CACHE_M_GET, "Cache-Control: max-stale", 150, 0, A_REVAL, 0, -1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100, proxy-revalidate\nETag: \"1\"", CACHE_M_GET, "Cache-Control: max-stale", 150, 0, A_REVAL, 0, -1},
	{"http://h/a", "Date: @0\nCache-Control: s-maxage=100\nETag: \"1\"", CACHE_M_GET, "Cache-Control: max-stale", 150, 0, A_REVAL, 0, -1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100\nETag: \"1\"", CACHE_M_GET, "Cache-Control: max-age=10", 50, 0, A_REVAL, -1, -1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100\nETag: \"1\"", CACHE_M_GET, "Cache-Control: max-age=60", 50, 0, A_FRESH, -1, -1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100\nETag: \"1\"", CACHE_M_GET, "Cache-Control: min-fresh=60", 50, 0, A_REVAL, -1, -1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100\nETag: \"1\"", CACHE_M_GET, "Cache-Control: min-fresh=40", 50, 0, A_FRESH, -1, -1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100\nETag: \"1\"", CACHE_M_GET, "Cache-Control: no-cache", 10, 0, A_REVAL, 0, -1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100", CACHE_M_GET, "Cache-Control: no-cache", 10, 0, A_FETCH, 0, -1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100\nETag: \"1\"", CACHE_M_GET, "Pragma: no-cache", 10, 0, A_REVAL, -1, -1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100\nETag: \"1\"", CACHE_M_GET, "Pragma: no-cache\nCache-Control: max-age=1000", 10, 0, A_FRESH, -1, -1},
	{"http://h/a", "Date: @0\nCache-Control: no-cache, max-age=100\nETag: \"1\"", CACHE_M_GET, NULL, 0, 0, A_REVAL, 0, -1},
	{"http://h/a", "Date: @0\nCache-Control: no-cache=\"Set-Cookie\", max-age=100\nETag: \"1\"", CACHE_M_GET, NULL, 0, 0, A_REVAL, -1, -1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100\nETag: \"1\"", CACHE_M_GET, "Cache-Control: only-if-cached", 50, 0, A_FRESH, -1, -1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100\nETag: \"1\"", CACHE_M_GET, "Cache-Control: only-if-cached", 150, 0, A_504, -1, -1},
	{"http://h/a", NULL, CACHE_M_GET, "Cache-Control: only-if-cached", 0, 0, A_504, -1, -1},
	{"http://h/a", NULL, CACHE_M_GET, NULL, 0, 0, A_FETCH, -1, -1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100, stale-while-revalidate=60\nETag: \"1\"", CACHE_M_GET, NULL, 130, 0, A_SWR, -1, -1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100, stale-while-revalidate=60\nETag: \"1\"", CACHE_M_GET, NULL, 200, 0, A_REVAL, -1, -1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100, stale-while-revalidate=60, must-revalidate\nETag: \"1\"", CACHE_M_GET, NULL, 130, 0, A_REVAL, 0, -1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100, stale-if-error=60\nETag: \"1\"", CACHE_M_GET, NULL, 130, F_NO_SOE, A_REVAL, 1, -1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100, stale-if-error=60\nETag: \"1\"", CACHE_M_GET, NULL, 200, F_NO_SOE, A_REVAL, 0, -1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100\nETag: \"1\"", CACHE_M_GET, "Cache-Control: stale-if-error=500", 200, F_NO_SOE, A_REVAL, 1, -1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100\nETag: \"1\"", CACHE_M_GET, NULL, 5000, 0, A_REVAL, 1, -1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100\nETag: \"1\"", CACHE_M_HEAD, NULL, 50, 0, A_FRESH, -1, -1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100\nETag: \"1\"", CACHE_M_POST, NULL, 50, 0, A_FETCH, -1, -1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100\nETag: \"1\"", CACHE_M_GET, "If-Match: \"1\"", 50, 0, A_FETCH, -1, -1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100\nETag: \"1\"", CACHE_M_GET, "If-None-Match: \"1\"", 50, 0, A_FRESH, -1, 1},
	{"http://h/a", "Date: @0\nCache-Control: max-age=100\nETag: \"1\"", CACHE_M_GET, "If-None-Match: \"2\"", 50, 0, A_FRESH, -1, 0},
	{"http://h/pool/main/x/x_1_all.deb", "Date: @0\nCache-Control: no-cache\nETag: \"1\"", CACHE_M_GET, NULL, 50, 0, A_FRESH, -1, -1},
	{"http://h/pool/main/x/x_1_all.deb", "Date: @0\nLast-Modified: @-10", CACHE_M_GET, NULL, 86401, 0, A_REVAL, -1, -1},
	{"http://h/dists/stable/Release", "Date: @0\nCache-Control: max-age=3600\nLast-Modified: @-10", CACHE_M_GET, "Cache-Control: max-age=0", 1, 0, A_REVAL, -1, -1},
	{"http://h/a", "Date: @0\nLast-Modified: @-10000", CACHE_M_GET, NULL, 999, 0, A_FRESH, -1, -1},
	{"http://h/a", "Date: @0\nLast-Modified: @-10000", CACHE_M_GET, NULL, 1001, 0, A_REVAL, -1, -1},
};

static void
rfc_decide_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(decide_rows) / sizeof(decide_rows[0]); i++) {
		struct cache_conf c;
		struct cache_entry *e = NULL;
		struct cache_decision d;
		struct th rq;

		th_conf(&c, decide_rows[i].flags);
		if (decide_rows[i].resp)
			e = th_entry(&c, decide_rows[i].url, 200, decide_rows[i].resp, T0, T0);
		struct cache_request req = th_req(decide_rows[i].method, decide_rows[i].url,
		                                  th_parse(&rq, decide_rows[i].req));

		cache_decide(&c, e ? &e->meta : NULL, &req, T0 + decide_rows[i].elapsed, &d);
		if (d.action != decide_rows[i].want ||
		    (decide_rows[i].sie >= 0 && d.stale_if_error != decide_rows[i].sie) ||
		    (decide_rows[i].nm >= 0 && d.not_modified != decide_rows[i].nm))
			fail_msg("decide row %zu: action %d sie %d nm %d (%s), want %d %d %d", i,
			         d.action, d.stale_if_error, d.not_modified, d.reason ? d.reason : "-",
			         decide_rows[i].want, decide_rows[i].sie, decide_rows[i].nm);
		if (e && decide_rows[i].method == CACHE_M_GET)
			assert_int_equal(d.ttl, d.lifetime - d.age);
		cache_entry_free(e);
	}
}

/* ---- client conditionals ---- */

static const struct {
	const char *resp, *req;
	enum cache_method method;
	int want;
} cond_rows[] = {
	{"Date: @0\nETag: \"x\"", "If-None-Match: \"x\"", CACHE_M_GET, 1},
	{"Date: @0\nETag: \"x\"", "If-None-Match: W/\"x\"", CACHE_M_GET, 1},
	{"Date: @0\nETag: W/\"x\"", "If-None-Match: \"x\"", CACHE_M_HEAD, 1},
	{"Date: @0\nETag: \"x\"", "If-None-Match: \"y\", \"x\"", CACHE_M_GET, 1},
	{"Date: @0\nETag: \"x\"", "If-None-Match: \"y\"\nIf-None-Match: \"x\"", CACHE_M_GET, 1},
	{"Date: @0\nETag: \"x\"", "If-None-Match: \"y\"", CACHE_M_GET, 0},
	{"Date: @0\nETag: \"x\"", "If-None-Match: *", CACHE_M_GET, 1},
	{"Date: @0\nLast-Modified: @-100", "If-None-Match: *", CACHE_M_GET, 1},
	{"Date: @0\nETag: \"x\"\nLast-Modified: @-100", "If-None-Match: \"y\"\nIf-Modified-Since: @0", CACHE_M_GET, 0},
	{"Date: @0\nLast-Modified: @-100", "If-Modified-Since: @-100", CACHE_M_GET, 1},
	{"Date: @0\nLast-Modified: @-100", "If-Modified-Since: @-50", CACHE_M_GET, 1},
	{"Date: @0\nLast-Modified: @-100", "If-Modified-Since: @-101", CACHE_M_GET, 0},
	{"Date: @0\nLast-Modified: @-100", "If-Modified-Since: yesterday", CACHE_M_GET, 0},
	{"Date: @0\nETag: \"x\"", "If-Modified-Since: @0", CACHE_M_GET, 1}, /* Date stands in */
	{"Date: @0\nETag: \"x\"", "If-Modified-Since: @-1", CACHE_M_GET, 0},
	{"Date: @0\nETag: \"x\"", NULL, CACHE_M_GET, 0},
	{"Date: @0\nETag: \"x\"", "If-None-Match: \"x\"", CACHE_M_POST, 0},
	{"Date: @0", "If-None-Match: \"x\"", CACHE_M_GET, 0},
};

static void
rfc_conditional_table(void **state)
{
	struct cache_conf c;

	(void)state;
	cache_conf_default(&c);
	for (size_t i = 0; i < sizeof(cond_rows) / sizeof(cond_rows[0]); i++) {
		struct th rq;
		struct cache_entry *e = th_entry(&c, "http://h/a", 200, cond_rows[i].resp, T0, T0);
		struct cache_request req = th_req(cond_rows[i].method, "http://h/a",
		                                  th_parse(&rq, cond_rows[i].req));
		int got = cache_cond_check(&e->meta, &req);

		cache_entry_free(e);
		if (got != cond_rows[i].want)
			fail_msg("conditional row %zu: got %d want %d", i, got, cond_rows[i].want);
	}
}

static void
rfc_etag_comparison(void **state)
{
	(void)state;
	assert_true(cache_etag_match(S("\"a\""), S("\"a\""), 1));
	assert_false(cache_etag_match(S("W/\"a\""), S("\"a\""), 1));
	assert_true(cache_etag_match(S("W/\"a\""), S("\"a\""), 0));
	assert_true(cache_etag_match(S("W/\"a\""), S("W/\"a\""), 0));
	assert_false(cache_etag_match(S("\"a\""), S("\"b\""), 0));
	assert_false(cache_etag_match(S("a"), S("a"), 0)); /* unquoted: not an entity-tag */
	assert_false(cache_etag_match(S("\"a\"b\""), S("\"a\"b\""), 0));
}

/* ---- stored fields, validators, 304 merge ---- */

static void
rfc_entry_strips_unstored_fields(void **state)
{
	struct cache_conf c;

	(void)state;
	cache_conf_default(&c);
	struct cache_entry *e = th_entry(&c, "http://h/a", 200,
	                                 "Date: @0\nConnection: close, X-Hop\nX-Hop: 1\nKeep-Alive: t=5\n"
	                                 "Transfer-Encoding: chunked\nContent-Length: 5\nAge: 3\n"
	                                 "Set-Cookie: s=1\nContent-Type: text/plain; charset=utf-8\n"
	                                 "ETag: W/\"v\"\nX-Kept: yes", T0, T0);
	const char *want = "Date: Tue, 14 Nov 2023 22:13:20 GMT\r\n"
	                   "Content-Type: text/plain; charset=utf-8\r\nETag: W/\"v\"\r\nX-Kept: yes\r\n";

	assert_int_equal(e->meta.headers.n, strlen(want));
	assert_memory_equal(e->meta.headers.p, want, strlen(want));
	assert_int_equal(e->meta.age_value, 3);
	assert_int_equal(e->meta.date, T0);
	assert_string_equal(e->meta.etag.p, "W/\"v\"");
	assert_true(e->meta.flags & CACHE_MF_COMPRESSIBLE);
	assert_int_equal(cache_entry_header(e, "x-kept").n, 3);
	assert_null(cache_entry_header(e, "set-cookie").p);
	cache_entry_free(e);

	/* with no ignore list, Set-Cookie is kept; gzip bodies are not compressible */
	c.ignore_headers = NULL;
	c.nignore_headers = 0;
	e = th_entry(&c, "http://h/a", 200, "Set-Cookie: s=1\nContent-Type: text/css\n"
	             "Content-Encoding: gzip", T0, T0);
	assert_non_null(cache_entry_header(e, "Set-Cookie").p);
	assert_false(e->meta.flags & CACHE_MF_COMPRESSIBLE);
	cache_entry_free(e);
}

static void
rfc_compressible_types(void **state)
{
	static const struct { const char *ct; int want; } rows[] = {
		{"text/html", 1}, {"TEXT/CSS; charset=x", 1}, {"application/json", 1},
		{"application/javascript", 1}, {"application/xml", 1}, {"image/svg+xml", 1},
		{"application/ld+json", 1}, {"application/atom+xml", 1}, {"image/png", 0},
		{"application/octet-stream", 0}, {"application/x-debian-package", 0},
	};
	struct cache_conf c;

	(void)state;
	cache_conf_default(&c);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char spec[128];

		snprintf(spec, sizeof(spec), "Content-Type: %s", rows[i].ct);
		struct cache_entry *e = th_entry(&c, "http://h/a", 200, spec, T0, T0);

		if (!!(e->meta.flags & CACHE_MF_COMPRESSIBLE) != rows[i].want)
			fail_msg("compressible %s: want %d", rows[i].ct, rows[i].want);
		cache_entry_free(e);
	}
}

static void
rfc_validators_built_from_stored_fields(void **state)
{
	struct cache_conf c;
	char buf[256];

	(void)state;
	cache_conf_default(&c);
	struct cache_entry *e = th_entry(&c, "http://h/a", 200,
	                                 "ETag: \"abc\"\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT", T0, T0);
	size_t n = cache_validators(e, buf, sizeof(buf));

	assert_string_equal(buf, "If-None-Match: \"abc\"\r\n"
	                         "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n");
	assert_int_equal(n, strlen(buf));
	assert_int_equal(cache_validators(e, buf, 10), n); /* too small: the length needed */
	cache_entry_free(e);
	e = th_entry(&c, "http://h/a", 200, "Cache-Control: max-age=5", T0, T0);
	assert_int_equal(cache_validators(e, buf, sizeof(buf)), 0);
	cache_entry_free(e);
}

static void
rfc_merge_304_updates_fields(void **state)
{
	struct cache_conf c;
	struct th r;
	struct cache_entry *old, *nw = NULL;

	(void)state;
	cache_conf_default(&c);
	old = th_entry(&c, "http://h/a", 200,
	               "Date: @0\nCache-Control: max-age=10\nETag: \"v1\"\nContent-Encoding: gzip\n"
	               "Content-Type: text/plain\nX-Old: 1", T0, T0);
	old->meta.body_id = 77;
	old->meta.body_size = 1234;
	old->meta.nchunks = 1;
	/* validators that disagree: refetch */
	assert_int_equal(cache_entry_merge_304(&c, old, th_parse(&r, "ETag: \"v2\""), T0 + 100,
	                                       T0 + 101, &nw), CACHE_EMISMATCH);
	assert_null(nw);
	assert_int_equal(cache_entry_merge_304(&c, old,
	                                       th_parse(&r, "Date: @100\nETag: \"v1\"\n"
	                                                "Cache-Control: max-age=3600\n"
	                                                "Content-Encoding: identity\nContent-Length: 0\n"
	                                                "Age: 4\nX-New: 2\nConnection: close"),
	                                       T0 + 99, T0 + 101, &nw), CACHE_OK);
	assert_non_null(nw);
	assert_int_equal(nw->meta.cc.max_age, 3600);
	assert_int_equal(nw->meta.date, T0 + 100);
	assert_int_equal(nw->meta.age_value, 4);
	assert_int_equal(nw->meta.response_time, T0 + 101);
	assert_int_equal(nw->meta.body_id, 77);
	assert_int_equal(nw->meta.body_size, 1234);
	/* stored fields the 304 did not name stay (Content-Encoding always), then the 304's */
	assert_string_equal(nw->meta.headers.p,
	                    "Content-Encoding: gzip\r\nContent-Type: text/plain\r\n"
	                    "X-Old: 1\r\nDate: Tue, 14 Nov 2023 22:15:00 GMT\r\nETag: \"v1\"\r\n"
	                    "Cache-Control: max-age=3600\r\nX-New: 2\r\n");
	assert_null(cache_entry_header(nw, "Content-Length").p);
	assert_null(cache_entry_header(nw, "Age").p);
	/* and it is fresh again: age = (101 - 100 = 1, vs 4 + 2) + 0 */
	assert_int_equal(cache_current_age(&nw->meta, T0 + 101), 6);
	cache_entry_free(nw);
	nw = NULL;
	/* Last-Modified mismatch without ETag */
	cache_entry_free(old);
	old = th_entry(&c, "http://h/a", 200, "Date: @0\nLast-Modified: @-500", T0, T0);
	assert_int_equal(cache_entry_merge_304(&c, old, th_parse(&r, "Last-Modified: @-400"), T0,
	                                       T0, &nw), CACHE_EMISMATCH);
	assert_int_equal(cache_entry_merge_304(&c, old, th_parse(&r, "Last-Modified: @-500"), T0,
	                                       T0, &nw), CACHE_OK);
	cache_entry_free(nw);
	cache_entry_free(old);
}

/* ---- Vary ---- */

static const struct {
	const char *resp;
	int want;        /* length, or -1 / -2 */
	const char *spec;
} vary_spec_rows[] = {
	{"Vary: Accept-Encoding", 15, "accept-encoding"},
	{"Vary: User-Agent, Accept-Encoding", 26, "accept-encoding,user-agent"},
	{"Vary: user-agent\nVary: ACCEPT-ENCODING, User-Agent", 26, "accept-encoding,user-agent"},
	{"Vary: *", -1, NULL},
	{"Vary: Accept, *", -1, NULL},
	{"Content-Type: text/html", 0, ""},
	{"Vary: ,, Accept ,", 6, "accept"},
};

static void
rfc_vary_spec_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(vary_spec_rows) / sizeof(vary_spec_rows[0]); i++) {
		struct th r;
		char out[CACHE_VARY_MAX + 1];
		int got = cache_vary_spec(th_parse(&r, vary_spec_rows[i].resp), out, sizeof(out));

		if (got != vary_spec_rows[i].want)
			fail_msg("vary spec row %zu: got %d", i, got);
		if (got >= 0)
			assert_string_equal(out, vary_spec_rows[i].spec);
	}
}

static const struct {
	const char *req, *name;
	long want;
	const char *value;
} vary_value_rows[] = {
	{"Accept-Encoding: gzip,  deflate", "accept-encoding", 12, "gzip,deflate"},
	{"Accept-Encoding: gzip , deflate", "Accept-Encoding", 12, "gzip,deflate"},
	{"Accept-Language:   en   US  ", "accept-language", 5, "en US"},
	{"Accept-Encoding: gzip\nAccept-Encoding: br", "accept-encoding", 7, "gzip,br"},
	{"Accept-Encoding: gzip", "user-agent", -1, NULL},
	{"User-Agent: ", "user-agent", 0, ""},
	{"X-A: a\tb", "x-a", 3, "a b"},
};

static void
rfc_vary_value_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(vary_value_rows) / sizeof(vary_value_rows[0]); i++) {
		struct th r;
		char out[256];
		long got = cache_vary_value(th_parse(&r, vary_value_rows[i].req),
		                            vary_value_rows[i].name,
		                            strlen(vary_value_rows[i].name), out, sizeof(out));

		if (got != vary_value_rows[i].want)
			fail_msg("vary value row %zu: got %ld", i, got);
		if (got >= 0)
			assert_string_equal(out, vary_value_rows[i].value);
	}
}

static void
rfc_vary_hash_normalises(void **state)
{
	struct th a, b;
	unsigned char ha[32], hb[32];
	struct cache_str spec = S("accept-encoding,accept-language");

	(void)state;
	assert_int_equal(cache_vary_hash(spec, th_parse(&a, "Accept-Encoding: gzip, deflate\n"
	                                                  "Accept-Language: en"), ha), CACHE_OK);
	assert_int_equal(cache_vary_hash(spec, th_parse(&b, "accept-language: en\n"
	                                                  "ACCEPT-ENCODING: gzip,deflate"), hb), CACHE_OK);
	assert_memory_equal(ha, hb, 32);
	cache_vary_hash(spec, th_parse(&b, "Accept-Encoding: gzip\nAccept-Language: en"), hb);
	assert_memory_not_equal(ha, hb, 32);
	/* absent differs from empty */
	cache_vary_hash(spec, th_parse(&a, "Accept-Encoding: gzip"), ha);
	cache_vary_hash(spec, th_parse(&b, "Accept-Encoding: gzip\nAccept-Language: "), hb);
	assert_memory_not_equal(ha, hb, 32);
	/* a different spec with the same values differs */
	cache_vary_hash(S("accept-encoding"), th_parse(&a, "Accept-Encoding: gzip"), ha);
	cache_vary_hash(S("accept-encoding,user-agent"), th_parse(&b, "Accept-Encoding: gzip"), hb);
	assert_memory_not_equal(ha, hb, 32);
}

/* ---- Range ---- */

static const struct {
	const char *value;
	uint64_t size;
	int want;
	struct cache_range r[3];
} range_rows[] = {
	{"bytes=0-99", 1000, 1, {{0, 99}}},
	{"bytes=500-", 1000, 1, {{500, 999}}},
	{"bytes=-100", 1000, 1, {{900, 999}}},
	{"bytes=-2000", 1000, 1, {{0, 999}}},
	{"bytes=0-99999", 1000, 1, {{0, 999}}},
	{"bytes=0-0,-1", 1000, 2, {{0, 0}, {999, 999}}},
	{"bytes=200-299, 0-99", 1000, 2, {{200, 299}, {0, 99}}},
	{"bytes=0-50,40-100", 1000, 1, {{0, 100}}},
	{"bytes=0-9,10-19", 1000, 1, {{0, 19}}},
	{"bytes=500-600,0-9,550-", 1000, 2, {{0, 9}, {500, 999}}},
	{"BYTES=1-2", 1000, 1, {{1, 2}}},
	{"bytes=1000-", 1000, 0, {{0, 0}}},
	{"bytes=1000-2000, 5-6", 1000, 1, {{5, 6}}},
	{"bytes=-0", 1000, 0, {{0, 0}}},
	{"bytes=0-", 0, 0, {{0, 0}}},
	{"bytes=5-2", 1000, -1, {{0, 0}}},
	{"items=0-5", 1000, -1, {{0, 0}}},
	{"bytes=", 1000, -1, {{0, 0}}},
	{"bytes=abc", 1000, -1, {{0, 0}}},
	{"bytes=1-2-3", 1000, -1, {{0, 0}}},
	{"bytes=0-1,2-3,4-5,6-7,8-9,10-11,12-13,14-15,16-17,18-19,20-21,22-23,24-25,26-27,28-29,30-31,32-33",
	 1000, -1, {{0, 0}}},
	{"bytes=99999999999999999999999-", 1000, 0, {{0, 0}}},
};

static void
rfc_range_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(range_rows) / sizeof(range_rows[0]); i++) {
		struct cache_range r[CACHE_MAX_RANGES];
		int got = cache_range_parse(S(range_rows[i].value), range_rows[i].size, r,
		                            CACHE_MAX_RANGES);

		if (got != range_rows[i].want)
			fail_msg("range row %zu (%s): got %d want %d", i, range_rows[i].value, got,
			         range_rows[i].want);
		for (int k = 0; k < got && k < 3; k++)
			if (r[k].first != range_rows[i].r[k].first || r[k].last != range_rows[i].r[k].last)
				fail_msg("range row %zu part %d: %" PRIu64 "-%" PRIu64, i, k,
				         r[k].first,
				         r[k].last);
	}
}

static const struct {
	const char *resp;
	enum cache_method method;
	const char *req;
	enum cache_range_result want;
} range_decide_rows[] = {
	{"Date: @0\nETag: \"s\"", CACHE_M_GET, "Range: bytes=0-9", CACHE_RANGE_PARTIAL},
	{"Date: @0\nETag: \"s\"", CACHE_M_HEAD, "Range: bytes=0-9", CACHE_RANGE_FULL},
	{"Date: @0\nETag: \"s\"", CACHE_M_GET, NULL, CACHE_RANGE_FULL},
	{"Date: @0\nETag: \"s\"", CACHE_M_GET, "Range: bytes=0-9\nRange: bytes=1-2", CACHE_RANGE_FULL},
	{"Date: @0\nETag: \"s\"", CACHE_M_GET, "Range: bytes=5000-", CACHE_RANGE_UNSATISFIABLE},
	{"Date: @0\nETag: \"s\"", CACHE_M_GET, "Range: bytes=0-9\nIf-Range: \"s\"", CACHE_RANGE_PARTIAL},
	{"Date: @0\nETag: \"s\"", CACHE_M_GET, "Range: bytes=0-9\nIf-Range: \"t\"", CACHE_RANGE_FULL},
	{"Date: @0\nETag: W/\"s\"", CACHE_M_GET, "Range: bytes=0-9\nIf-Range: W/\"s\"", CACHE_RANGE_FULL},
	{"Date: @0\nLast-Modified: @-100", CACHE_M_GET, "Range: bytes=0-9\nIf-Range: @-100", CACHE_RANGE_PARTIAL},
	{"Date: @0\nLast-Modified: @-100", CACHE_M_GET, "Range: bytes=0-9\nIf-Range: @-99", CACHE_RANGE_FULL},
	{"Date: @0\nLast-Modified: @0", CACHE_M_GET, "Range: bytes=0-9\nIf-Range: @0", CACHE_RANGE_FULL},
	{"Date: @0\nETag: \"s\"", CACHE_M_GET, "Range: bytes=0-1,5-6", CACHE_RANGE_PARTIAL},
};

static void
rfc_range_decide_table(void **state)
{
	struct cache_conf c;

	(void)state;
	cache_conf_default(&c);
	for (size_t i = 0; i < sizeof(range_decide_rows) / sizeof(range_decide_rows[0]); i++) {
		struct th rq;
		struct cache_range r[CACHE_MAX_RANGES];
		size_t n;
		struct cache_entry *e = th_entry(&c, "http://h/a", 200, range_decide_rows[i].resp,
		                                 T0, T0);
		struct cache_request req = th_req(range_decide_rows[i].method, "http://h/a",
		                                  th_parse(&rq, range_decide_rows[i].req));

		e->meta.body_size = 1000;
		enum cache_range_result got = cache_range_decide(&e->meta, &req, r,
		                                                 CACHE_MAX_RANGES, &n);

		cache_entry_free(e);
		if (got != range_decide_rows[i].want)
			fail_msg("range decide row %zu: got %d want %d", i, got,
			         range_decide_rows[i].want);
		assert_true(got == CACHE_RANGE_PARTIAL ? n > 0 : n == 0);
	}
}

static void
rfc_multipart_pieces_add_up(void **state)
{
	struct cache_range r[2] = {{0, 9}, {990, 999}};
	char b[CACHE_BOUNDARY_LEN + 1], b2[CACHE_BOUNDARY_LEN + 1], buf[512];
	size_t total = 0;

	(void)state;
	cache_multipart_boundary(42, b);
	cache_multipart_boundary(43, b2);
	assert_int_equal(strlen(b), CACHE_BOUNDARY_LEN);
	assert_string_not_equal(b, b2);
	size_t n = cache_multipart_head(b, S("text/plain"), &r[0], 1000, buf, sizeof(buf));

	assert_int_equal(n, strlen(buf));
	assert_true(strncmp(buf, "\r\n--", 4) == 0);
	assert_non_null(strstr(buf,
	                       "\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-9/1000\r\n\r\n"));
	total += n + 10;
	total += cache_multipart_head(b, S("text/plain"), &r[1], 1000, buf, sizeof(buf)) + 10;
	n = cache_multipart_tail(b, buf, sizeof(buf));
	assert_int_equal(n, strlen(buf));
	assert_int_equal(n, 4 + CACHE_BOUNDARY_LEN + 4);
	total += n;
	assert_int_equal(cache_multipart_length(b, S("text/plain"), r, 2, 1000), total);
	/* too small a buffer: nothing written, length returned */
	buf[0] = 'X';
	assert_int_equal(cache_multipart_tail(b, buf, 5), 4 + CACHE_BOUNDARY_LEN + 4);
	assert_int_equal(buf[0], 'X');
}

/* ---- invalidation ---- */

static const struct {
	enum cache_method method;
	int status;
	const char *url, *resp;
	const char *want[3];
} inval_rows[] = {
	{CACHE_M_POST, 200, "http://h/a", NULL, {"http://h/a"}},
	{CACHE_M_POST, 500, "http://h/a", NULL, {NULL}},
	{CACHE_M_POST, 404, "http://h/a", NULL, {NULL}},
	{CACHE_M_GET, 200, "http://h/a", NULL, {NULL}},
	{CACHE_M_OPTIONS, 200, "http://h/a", NULL, {NULL}},
	{CACHE_M_PUT, 201, "http://h/a", "Location: /b", {"http://h/a", "http://h/b"}},
	{CACHE_M_DELETE, 204, "http://h/a", "Content-Location: http://h/c", {"http://h/a", "http://h/c"}},
	{CACHE_M_POST, 303, "http://h/a", "Location: http://other/x", {"http://h/a"}},
	{CACHE_M_POST, 303, "http://h/a", "Location: https://h/a", {"http://h/a"}},
	{CACHE_M_PATCH, 200, "http://h/dir/a", "Location: b?x=1", {"http://h/dir/a", "http://h/dir/b?x=1"}},
	{CACHE_M_POST, 200, "http://h/d1/d2/a", "Location: ../x", {"http://h/d1/d2/a", "http://h/d1/x"}},
	{CACHE_M_POST, 200, "http://h/a", "Location: //h/z#frag", {"http://h/a", "http://h/z"}},
	{CACHE_M_POST, 200, "http://h/a", "Location: http://H:80/a", {"http://h/a"}},
	{CACHE_M_OTHER, 200, "http://h/a", "Location: /b\nContent-Location: /c", {"http://h/a", "http://h/b", "http://h/c"}},
	{CACHE_M_POST, 200, "http://h:8080/a", "Location: /b", {"http://h:8080/a", "http://h:8080/b"}},
	{CACHE_M_POST, 200, "http://h/a", "Location: mailto:x@y", {"http://h/a"}},
};

static void
rfc_invalidation_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(inval_rows) / sizeof(inval_rows[0]); i++) {
		struct th r;
		struct cache_uri_list l;
		struct cache_request req = th_req(inval_rows[i].method, inval_rows[i].url, NULL);
		size_t want = 0;

		assert_int_equal(cache_invalidations(&req, inval_rows[i].status,
		                                     th_parse(&r,
		                                              inval_rows[i].resp), &l), CACHE_OK);
		while (want < 3 && inval_rows[i].want[want])
			want++;
		if (l.n != want)
			fail_msg("invalidation row %zu: %zu URIs, want %zu", i, l.n, want);
		for (size_t k = 0; k < want; k++)
			if (strcmp(l.uri[k], inval_rows[i].want[k]))
				fail_msg("invalidation row %zu: uri %zu is %s, want %s", i, k,
				         l.uri[k],
				         inval_rows[i].want[k]);
		cache_uri_list_free(&l);
	}
}

/* ---- Debian archives ---- */

static const struct {
	const char *url;
	enum cache_debian want;
} debian_rows[] = {
	{"http://deb.debian.org/debian/pool/main/h/hello/hello_2.10-3_amd64.deb", CACHE_DEB_IMMUTABLE},
	{"http://deb.debian.org/debian/pool/main/d/d-i/foo_1_amd64.udeb", CACHE_DEB_IMMUTABLE},
	{"http://deb.debian.org/debian/pool/main/h/hello/hello_2.10-3.dsc", CACHE_DEB_IMMUTABLE},
	{"http://deb.debian.org/debian/pool/main/h/hello/hello_2.10.orig.tar.gz", CACHE_DEB_IMMUTABLE},
	{"http://deb.debian.org/debian/pool/main/h/hello/hello_2.10-3.debian.tar.xz", CACHE_DEB_IMMUTABLE},
	{"http://deb.debian.org/debian/pool/main/h/hello/hello_2.10-3.diff.gz", CACHE_DEB_IMMUTABLE},
	{"http://deb.debian.org/debian/pool/main/h/hello/hello_2.10-3.tar.zst", CACHE_DEB_IMMUTABLE},
	{"http://deb.debian.org/debian/dists/bookworm/main/binary-amd64/by-hash/SHA256/ab12", CACHE_DEB_IMMUTABLE},
	{"http://deb.debian.org/debian/dists/bookworm/InRelease", CACHE_DEB_INDEX},
	{"http://deb.debian.org/debian/dists/bookworm/Release", CACHE_DEB_INDEX},
	{"http://deb.debian.org/debian/dists/bookworm/Release.gpg", CACHE_DEB_INDEX},
	{"http://deb.debian.org/debian/dists/bookworm/main/binary-amd64/Packages.xz", CACHE_DEB_INDEX},
	{"http://deb.debian.org/debian/dists/bookworm/main/source/Sources.gz", CACHE_DEB_INDEX},
	{"http://deb.debian.org/debian/README", CACHE_DEB_NONE},
	{"http://example.com/files/app.deb", CACHE_DEB_NONE},
	{"http://example.com/pool/", CACHE_DEB_NONE},
	{"http://example.com/pool/x.deb?download=1", CACHE_DEB_IMMUTABLE},
	{"http://example.com/pool/x.tar.gz.asc", CACHE_DEB_NONE},
	{"http://pool/x.deb", CACHE_DEB_NONE},
};

static void
rfc_debian_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(debian_rows) / sizeof(debian_rows[0]); i++) {
		enum cache_debian got = cache_debian_class(S(debian_rows[i].url));

		if (got != debian_rows[i].want)
			fail_msg("debian row %zu (%s): got %d want %d", i, debian_rows[i].url, got,
			         debian_rows[i].want);
	}
}

/* ---- dates ---- */

static void
rfc_http_dates(void **state)
{
	static const struct { const char *s; int64_t want; } rows[] = {
		{"Sun, 06 Nov 1994 08:49:37 GMT", 784111777},
		{"Sunday, 06-Nov-94 08:49:37 GMT", 784111777},
		{"Sun Nov  6 08:49:37 1994", 784111777},
		{"  Sun, 06 Nov 1994 08:49:37 GMT ", 784111777},
		{"Thu, 01 Jan 1970 00:00:00 GMT", 0},
		{"Thursday, 01-Jan-70 00:00:00 GMT", 0},
		{"Wed, 29 Feb 2024 12:00:00 GMT", 1709208000},
		{"Wed, 29 Feb 2023 12:00:00 GMT", -1},
		{"Sun, 06 Nov 1994 08:49:37 UTC", -1},
		{"Sun, 06 Nov 1994 24:00:00 GMT", -1},
		{"Sun, 6 Nov 1994 08:49:37 GMT", -1},
		{"0", -1},
		{"-1", -1},
		{"", -1},
		{"Sun, 06 Foo 1994 08:49:37 GMT", -1},
		{"Sun, 06 Nov 1994 08:49:37 GMT junk", -1},
	};
	char out[30];

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int64_t got = cache_http_date_parse(rows[i].s, strlen(rows[i].s));

		if (got != rows[i].want)
			fail_msg("date row %zu (%s): got %" PRId64, i, rows[i].s, got);
	}
	assert_int_equal(cache_http_date_format(784111777, out), 29);
	assert_string_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT");
	cache_http_date_format(T0, out);
	assert_string_equal(out, "Tue, 14 Nov 2023 22:13:20 GMT");
	for (int64_t t = 0; t < 4102444800ll; t += 86400 * 37 + 3671) {
		cache_http_date_format(t, out);
		assert_int_equal(cache_http_date_parse(out, 29), t);
	}
}

/* ---- Cache-Control parsing ---- */

static void
rfc_cache_control_parsing(void **state)
{
	struct th r;
	struct cache_cc cc;

	(void)state;
	cache_cc_parse(th_parse(&r, "Cache-Control: public, max-age=60\n"
	                            "cache-control: no-cache=\"Set-Cookie, X-A\", s-maxage=\"30\", "
	                            "stale-while-revalidate=5, stale-if-error=7, foo=\"a,b\", bar"),
	               &cc);
	assert_true(cc.flags & CACHE_CC_PUBLIC);
	assert_true(cc.flags & CACHE_CC_NO_CACHE);
	assert_false(cc.flags & CACHE_CC_PRIVATE);
	assert_int_equal(cc.max_age, 60);
	assert_int_equal(cc.s_maxage, 30);
	assert_int_equal(cc.swr, 5);
	assert_int_equal(cc.sie, 7);
	cache_cc_parse_request(th_parse(&r,
	                                "Cache-Control: max-stale, min-fresh=5, only-if-cached"), &cc);
	assert_true(cc.flags & CACHE_CC_MAX_STALE_ANY);
	assert_true(cc.flags & CACHE_CC_ONLY_IF_CACHED);
	assert_int_equal(cc.min_fresh, 5);
	assert_int_equal(cc.max_stale, -1);
	cache_cc_parse_request(th_parse(&r, "Cache-Control: max-stale=99999999999999"), &cc);
	assert_int_equal(cc.max_stale, 2147483648ll);
	cache_cc_parse_request(th_parse(&r, "Pragma: no-cache"), &cc);
	assert_true(cc.flags & CACHE_CC_PRAGMA_NO_CACHE);
	cache_cc_parse_request(th_parse(&r, "Pragma: no-cache\nCache-Control: max-age=5"), &cc);
	assert_false(cc.flags & CACHE_CC_NO_CACHE);
	cache_cc_parse(th_parse(&r, "Cache-Control: ,,, =x, max-age, max-age=-1"), &cc);
	assert_int_equal(cc.max_age, 0);
}

/* ---- keys ---- */

static void
rfc_key_normalise(void **state)
{
	static const struct { const char *in; int ignore_q; const char *want; } rows[] = {
		{"HTTP://Example.COM/Path?Q", 0, "http://example.com/Path?Q"},
		{"http://example.com:80/a", 0, "http://example.com/a"},
		{"http://example.com:8080/a", 0, "http://example.com:8080/a"},
		{"https://example.com:443/a", 0, "https://example.com/a"},
		{"ftp://ftp.example.com:21/pub/x", 0, "ftp://ftp.example.com/pub/x"},
		{"http://example.com", 0, "http://example.com/"},
		{"http://example.com?q", 0, "http://example.com/?q"},
		{"http://example.com/a?b=1#frag", 0, "http://example.com/a?b=1"},
		{"http://example.com/a?b=1", 1, "http://example.com/a"},
		{"http://[2001:DB8::1]:80/x", 0, "http://[2001:db8::1]/x"},
		{"http://User@Host/x", 0, "http://User@host/x"},
		{"http://example.com:/a", 0, "http://example.com/a"},
		/* every spelling of one URL is one key (daemon/url.h) */
		{"http://Example.COM.:0080//a/./b/../%63?Q=%7e", 0, "http://example.com/a/c?Q=%7E"},
		{"http://%65xample.com/a/c?Q=%7E", 0, "http://example.com/a/c?Q=%7E"},
		{"http://example.com/a%2Fc", 0, "http://example.com/a%2Fc"},
		{"http://example.com:08080/a//c?x", 1, "http://example.com:8080/a/c"},
	};
	char out[256];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		assert_int_equal(cache_key_normalise(rows[i].in, strlen(rows[i].in),
		                                     rows[i].ignore_q,
		                                     out, sizeof(out), &n), CACHE_OK);
		if (strcmp(out, rows[i].want) || n != strlen(out))
			fail_msg("key row %zu: %s", i, out);
		/* a normalized URL keyed again without normalizing gives the same key */
		char out2[256], norm[256];
		size_t n2, nn;
		assert_int_equal(cache_key_normalise(rows[i].in, strlen(rows[i].in), 0, norm,
		                                     sizeof(norm), &nn), CACHE_OK);
		assert_int_equal(cache_key_from_normalised(norm, nn, rows[i].ignore_q, out2,
		                                           sizeof(out2), &n2), CACHE_OK);
		if (strcmp(out2, rows[i].want) || n2 != n)
			fail_msg("key row %zu from the normalized form: %s", i, out2);
	}
	assert_int_equal(cache_key_from_normalised("http://h/x", 10, 0, out, 10, &n), CACHE_EINVAL);
	assert_int_equal(cache_key_normalise("/relative", 9, 0, out, sizeof(out), &n),
	                 CACHE_EINVAL);
	assert_int_equal(cache_key_normalise("http:///x", 9, 0, out, sizeof(out), &n),
	                 CACHE_EINVAL);
	assert_int_equal(cache_key_normalise("http://h/x", 10, 0, out, 5, &n), CACHE_EINVAL);
	assert_int_equal(cache_key_normalise("http://h%2F/x", 13, 0, out, sizeof(out), &n),
	                 CACHE_EINVAL);
	assert_int_equal(cache_key_normalise("http://h:65536/x", 16, 0, out, sizeof(out), &n),
	                 CACHE_EINVAL);
}

/* ---- Cache-Status and Squid codes ---- */

static void
rfc_outcomes(void **state)
{
	static const struct {
		enum cache_outcome o;
		const char *squid, *status;
	} rows[] = {
		{CACHE_OUT_HIT, "TCP_HIT", "Gatehouse; hit"},
		{CACHE_OUT_MISS, "TCP_MISS", "Gatehouse; fwd=uri-miss"},
		{CACHE_OUT_VARY_MISS, "TCP_MISS", "Gatehouse; fwd=vary-miss"},
		{CACHE_OUT_BYPASS, "TCP_MISS", "Gatehouse; fwd=bypass"},
		{CACHE_OUT_CLIENT_REFRESH, "TCP_CLIENT_REFRESH_MISS", "Gatehouse; fwd=request"},
		{CACHE_OUT_HIT_INM, "TCP_INM_HIT", "Gatehouse; hit"},
		{CACHE_OUT_HIT_IMS, "TCP_IMS_HIT", "Gatehouse; hit"},
		{CACHE_OUT_HIT_STALE, "TCP_HIT", "Gatehouse; hit; detail=stale"},
		{CACHE_OUT_REFRESH_UNMODIFIED, "TCP_REFRESH_UNMODIFIED", "Gatehouse; fwd=stale"},
		{CACHE_OUT_REFRESH_MODIFIED, "TCP_REFRESH_MODIFIED", "Gatehouse; fwd=stale"},
		{CACHE_OUT_REFRESH_FAIL_OLD, "TCP_REFRESH_FAIL_OLD", "Gatehouse; fwd=stale; detail=stale-if-error"},
		{CACHE_OUT_REFRESH_FAIL_ERR, "TCP_REFRESH_FAIL_ERR", "Gatehouse; fwd=stale"},
		{CACHE_OUT_ONLY_IF_CACHED, "TCP_MISS", "Gatehouse; detail=only-if-cached"},
		{CACHE_OUT_DENIED, "TCP_DENIED", "Gatehouse; detail=denied"},
	};
	struct cache_status st;
	char buf[128];

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		assert_string_equal(cache_outcome_squid(rows[i].o), rows[i].squid);
		cache_outcome_status(rows[i].o, &st);
		cache_status_format("Gatehouse", &st, buf, sizeof(buf));
		assert_string_equal(buf, rows[i].status);
	}
	cache_outcome_status(CACHE_OUT_REFRESH_UNMODIFIED, &st);
	st.fwd_status = 304;
	st.has_ttl = 1;
	st.ttl = 3600;
	assert_int_equal(cache_status_format("Gatehouse", &st, buf, sizeof(buf)),
	                 strlen("Gatehouse; fwd=stale; fwd-status=304; ttl=3600"));
	assert_string_equal(buf, "Gatehouse; fwd=stale; fwd-status=304; ttl=3600");
	cache_outcome_status(CACHE_OUT_MISS, &st);
	st.fwd_status = 200;
	st.stored = 1;
	st.collapsed = 1;
	cache_status_format("proxy.example", &st, buf, sizeof(buf));
	assert_string_equal(buf, "proxy.example; fwd=uri-miss; fwd-status=200; stored; collapsed");
	cache_outcome_status(CACHE_OUT_HIT, &st);
	st.has_ttl = 1;
	st.ttl = -5;
	cache_status_format("10.0.0.1", &st, buf, sizeof(buf));
	assert_string_equal(buf, "\"10.0.0.1\"; hit; ttl=-5");
	assert_int_equal(cache_status_format("Gatehouse", &st, buf, 4),
	                 strlen("Gatehouse; hit; ttl=-5"));
	assert_string_equal(cache_outcome_squid(CACHE_OUT__COUNT), "NONE");
}

static void
rfc_method_parse(void **state)
{
	(void)state;
	assert_int_equal(cache_method_parse("GET", 3), CACHE_M_GET);
	assert_int_equal(cache_method_parse("PATCH", 5), CACHE_M_PATCH);
	assert_int_equal(cache_method_parse("get", 3), CACHE_M_OTHER);
	assert_int_equal(cache_method_parse("PURGE", 5), CACHE_M_OTHER);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rfc_storable_table),
		cmocka_unit_test(rfc_lifetime_table),
		cmocka_unit_test(rfc_age_table),
		cmocka_unit_test(rfc_age_field_parsed),
		cmocka_unit_test(rfc_decide_table),
		cmocka_unit_test(rfc_conditional_table),
		cmocka_unit_test(rfc_etag_comparison),
		cmocka_unit_test(rfc_entry_strips_unstored_fields),
		cmocka_unit_test(rfc_compressible_types),
		cmocka_unit_test(rfc_validators_built_from_stored_fields),
		cmocka_unit_test(rfc_merge_304_updates_fields),
		cmocka_unit_test(rfc_vary_spec_table),
		cmocka_unit_test(rfc_vary_value_table),
		cmocka_unit_test(rfc_vary_hash_normalises),
		cmocka_unit_test(rfc_range_table),
		cmocka_unit_test(rfc_range_decide_table),
		cmocka_unit_test(rfc_multipart_pieces_add_up),
		cmocka_unit_test(rfc_invalidation_table),
		cmocka_unit_test(rfc_debian_table),
		cmocka_unit_test(rfc_http_dates),
		cmocka_unit_test(rfc_cache_control_parsing),
		cmocka_unit_test(rfc_key_normalise),
		cmocka_unit_test(rfc_outcomes),
		cmocka_unit_test(rfc_method_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
