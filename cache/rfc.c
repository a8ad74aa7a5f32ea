/*
 * rfc.c - RFC 9111 for a shared cache: may a response be stored, what is stored of it, how
 * long it stays fresh, how old it is, what a request may be answered with, how a 304
 * freshens it, and the client's own conditionals.
 *
 * Pure functions: no I/O, no globals but constant tables. The only allocations are the
 * entries built by cache_entry_build() / cache_entry_merge_304() / cache_entry_copy().
 * Invariant: every slice of an entry's meta points into that entry's own memory.
 */
#include "cache/cache_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const cache_default_ignore[] = {"Set-Cookie"};

void
cache_conf_default(struct cache_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->lm_factor = 0.1;
	c->max_expire = 86400;
	c->default_expire = 3600;
	c->stale_on_error = 1;
	c->debian = 1;
	c->max_file_size = 512ull << 20;
	c->min_file_size = 0;
	c->ignore_headers = cache_default_ignore;
	c->nignore_headers = 1;
}

/* RFC 9110 15.1: heuristically cacheable status codes. */
static int
cache_status_heuristic(int s)
{
	switch (s) {
	case 200: case 203: case 204: case 206: case 300: case 301: case 308:
	case 404: case 405: case 410: case 414: case 501:
		return 1;
	default:
		return 0;
	}
}

/* Final status codes whose caching semantics we implement (for must-understand). */
static int
cache_status_understood(int s)
{
	return (s >= 200 && s <= 205) || (s >= 300 && s <= 305) || s == 307 || s == 308 ||
	       (s >= 400 && s <= 417) || s == 421 || s == 422 || s == 426 || (s >= 500 && s <= 505);
}

/* ---- which fields are stored ---- */

static int
cache_hop_by_hop(struct cache_str name)
{
	static const char *const hop[] = {
		"connection", "keep-alive", "proxy-connection", "te", "transfer-encoding",
		"upgrade", "trailer", "proxy-authenticate", "proxy-authorization",
	};

	for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		if (cache_sieq(name, hop[i]))
			return 1;
	return 0;
}

/* Is name listed in a Connection field of h? */
static int
cache_conn_listed(const struct cache_hdrs *h, struct cache_str name)
{
	for (size_t i = 0; i < h->n; i++) {
		if (!cache_sieq(h->v[i].name, "connection"))
			continue;
		size_t pos = 0;
		struct cache_str e;

		while (cache_list_next(h->v[i].value, &pos, &e))
			if (cache_nieq(e.p, e.n, name.p, name.n))
				return 1;
	}
	return 0;
}

static int
cache_ignored(const struct cache_conf *conf, struct cache_str name)
{
	for (size_t i = 0; i < conf->nignore_headers; i++)
		if (conf->ignore_headers[i] && cache_sieq(name, conf->ignore_headers[i]))
			return 1;
	return 0;
}

/* Fields of a response (h) that are never stored. */
static int
cache_not_stored(const struct cache_conf *conf, const struct cache_hdrs *h, struct cache_str name)
{
	return cache_hop_by_hop(name) || cache_sieq(name, "content-length") ||
	       cache_sieq(name, "age") || cache_ignored(conf, name) || cache_conn_listed(h, name);
}

/* ---- parsed fields ---- */

static int
cache_compressible(const struct cache_hdrs *h)
{
	const struct cache_hdr *ce = cache_hdr_find(h, "content-encoding");
	const struct cache_hdr *ct = cache_hdr_find(h, "content-type");

	if (ce && !cache_sieq(cache_trim(ce->value), "identity") && ce->value.n)
		return 0;
	if (!ct)
		return 0;
	struct cache_str t = ct->value;
	size_t semi = 0;

	while (semi < t.n && t.p[semi] != ';')
		semi++;
	t = cache_trim((struct cache_str){t.p, semi});
	if (t.n > 5 && cache_nieq(t.p, 5, "text/", 5))
		return 1;
	if (cache_sieq(t, "application/json") || cache_sieq(t, "application/javascript") ||
	    cache_sieq(t, "application/x-javascript") || cache_sieq(t, "application/ecmascript") ||
	    cache_sieq(t, "application/xml") || cache_sieq(t, "image/svg+xml"))
		return 1;
	if (t.n > 5 && cache_nieq(t.p + t.n - 5, 5, "+json", 5))
		return 1;
	if (t.n > 4 && cache_nieq(t.p + t.n - 4, 4, "+xml", 4))
		return 1;
	return 0;
}

int
cache_meta_parse_fields(const struct cache_hdrs *h, struct cache_meta *m, char *vbuf)
{
	int have_date = 0, have_lm = 0, have_exp = 0, have_etag = 0;
	int vr;

	cache_cc_parse(h, &m->cc);
	m->date = m->expires = m->last_modified = -1;
	m->etag = (struct cache_str){"", 0};
	m->flags &= ~CACHE_MF_COMPRESSIBLE;
	for (size_t i = 0; i < h->n; i++) {
		const struct cache_hdr *f = &h->v[i];

		if (!have_date && cache_sieq(f->name, "date")) {
			have_date = 1;
			m->date = cache_http_date_parse(f->value.p, f->value.n);
		} else if (!have_lm && cache_sieq(f->name, "last-modified")) {
			have_lm = 1;
			m->last_modified = cache_http_date_parse(f->value.p, f->value.n);
		} else if (cache_sieq(f->name, "expires")) {
			int64_t t = cache_http_date_parse(f->value.p, f->value.n);

			if (t < 0)
				t = 0; /* invalid: already expired (RFC 9111 5.3) */
			if (have_exp && t != m->expires)
				t = 0; /* conflicting: stale */
			m->expires = t;
			have_exp = 1;
		} else if (!have_etag && cache_sieq(f->name, "etag")) {
			have_etag = 1;
			if (cache_etag_match(f->value, f->value, 0))
				m->etag = cache_trim(f->value);
		}
	}
	if (cache_compressible(h))
		m->flags |= CACHE_MF_COMPRESSIBLE;
	vr = cache_vary_spec(h, vbuf, CACHE_VARY_MAX + 1);
	if (vr < 0) {
		memcpy(vbuf, "*", 2);
		m->vary = (struct cache_str){vbuf, 1};
		return -1;
	}
	m->vary = (struct cache_str){vbuf, (size_t)vr};
	return 0;
}

/* Content-Length as a number, -1 when absent or not plain digits. */
static int64_t
cache_content_length(const struct cache_hdrs *h)
{
	const struct cache_hdr *f = cache_hdr_find(h, "content-length");
	int64_t v = 0;

	if (!f || f->value.n == 0 || f->value.n > 18)
		return -1;
	for (size_t i = 0; i < f->value.n; i++) {
		if (f->value.p[i] < '0' || f->value.p[i] > '9')
			return -1;
		v = v * 10 + (f->value.p[i] - '0');
	}
	return v;
}

/* ---- Debian archives ---- */

static int
cache_ends_with(struct cache_str s, const char *suffix)
{
	size_t l = strlen(suffix);

	return s.n >= l && cache_nieq(s.p + s.n - l, l, suffix, l);
}

static int
cache_contains(struct cache_str s, const char *needle)
{
	size_t l = strlen(needle);

	for (size_t i = 0; i + l <= s.n; i++)
		if (memcmp(s.p + i, needle, l) == 0)
			return 1;
	return 0;
}

enum cache_debian
cache_debian_class(struct cache_str url)
{
	struct cache_str path = url;
	size_t i;

	for (i = 0; i + 2 < url.n; i++) {
		if (url.p[i] == ':' && url.p[i + 1] == '/' && url.p[i + 2] == '/') {
			size_t j = i + 3;

			while (j < url.n && url.p[j] != '/' && url.p[j] != '?')
				j++;
			path = (struct cache_str){url.p + j, url.n - j};
			break;
		}
		if (url.p[i] == '/' || url.p[i] == '?')
			break;
	}
	for (i = 0; i < path.n && path.p[i] != '?' && path.p[i] != '#'; i++)
		;
	path.n = i;
	if (cache_contains(path, "/by-hash/"))
		return CACHE_DEB_IMMUTABLE;
	size_t slash = path.n;

	while (slash > 0 && path.p[slash - 1] != '/')
		slash--;
	struct cache_str last = {path.p + slash, path.n - slash};

	if (last.n == 0)
		return CACHE_DEB_NONE;
	if (cache_contains(path, "/pool/")) {
		if (cache_ends_with(last, ".deb") || cache_ends_with(last, ".udeb") ||
		    cache_ends_with(last, ".dsc") || cache_ends_with(last, ".diff.gz"))
			return CACHE_DEB_IMMUTABLE;
		/* source tarballs: NAME.tar.EXT with a short extension */
		for (size_t k = 0; k + 5 <= last.n; k++) {
			if (memcmp(last.p + k, ".tar.", 5) == 0) {
				size_t ext = last.n - k - 5;

				if (ext >= 1 && ext <= 4 && !memchr(last.p + k + 5, '.', ext))
					return CACHE_DEB_IMMUTABLE;
			}
		}
	}
	if (cache_sieq(last, "Release") || cache_sieq(last, "InRelease") ||
	    cache_sieq(last, "Release.gpg") ||
	    (last.n >= 8 && memcmp(last.p, "Packages", 8) == 0) ||
	    (last.n >= 7 && memcmp(last.p, "Sources", 7) == 0))
		return CACHE_DEB_INDEX;
	return CACHE_DEB_NONE;
}

/* ---- storable? ---- */

static int
cache_has_query(struct cache_str url)
{
	for (size_t i = 0; i < url.n; i++) {
		if (url.p[i] == '?')
			return 1;
		if (url.p[i] == '#')
			return 0;
	}
	return 0;
}

int
cache_storable(const struct cache_conf *conf, const struct cache_request *req, int status,
               const struct cache_hdrs *resp, const char **reason)
{
	struct cache_cc rcc, cc;
	char vbuf[CACHE_VARY_MAX + 1];
	int vr;

	*reason = NULL;
	if (req->method != CACHE_M_GET) {
		*reason = "method";
		return 0;
	}
	cache_cc_parse_request(&req->hdrs, &rcc);
	if ((rcc.flags & CACHE_CC_NO_STORE) && !conf->store_nostore) {
		*reason = "request no-store";
		return 0;
	}
	if (status == 206) {
		*reason = "partial content";
		return 0;
	}
	if (status < 200 || status > 999 || status == 304) {
		*reason = "status";
		return 0;
	}
	cache_cc_parse(resp, &cc);
	if (cc.flags & CACHE_CC_MUST_UNDERSTAND) {
		/* must-understand overrides no-store for status codes we understand */
		if (!cache_status_understood(status)) {
			*reason = "status";
			return 0;
		}
	} else if ((cc.flags & CACHE_CC_NO_STORE) && !conf->store_nostore) {
		*reason = "no-store";
		return 0;
	}
	if ((cc.flags & CACHE_CC_PRIVATE) && !conf->store_private) {
		*reason = "private";
		return 0;
	}
	if (cache_hdr_find(&req->hdrs, "authorization") &&
	    !(cc.flags & (CACHE_CC_PUBLIC | CACHE_CC_MUST_REVALIDATE)) && cc.s_maxage < 0) {
		*reason = "authorization";
		return 0;
	}
	vr = cache_vary_spec(resp, vbuf, sizeof(vbuf));
	if (vr == -1) {
		*reason = "vary *";
		return 0;
	}
	if (vr < 0) {
		*reason = "vary too long";
		return 0;
	}

	const struct cache_hdr *exp = cache_hdr_find(resp, "expires");
	int deb = conf->debian && status == 200 &&
	          cache_debian_class(req->url) == CACHE_DEB_IMMUTABLE;
	int explicit_fresh = cc.max_age >= 0 || cc.s_maxage >= 0 || deb ||
	                     (exp && cache_http_date_parse(exp->value.p, exp->value.n) >= 0);

	if (!explicit_fresh) {
		if (!cache_status_heuristic(status) && !(cc.flags & CACHE_CC_PUBLIC)) {
			*reason = "status";
			return 0;
		}
		if (cache_has_query(req->url) && !conf->ignore_query_string) {
			*reason = "query without expiry";
			return 0;
		}
		if (!cache_hdr_find(resp, "last-modified") && !cache_hdr_find(resp, "etag") &&
		    !conf->ignore_no_lastmod) {
			*reason = "no validator or expiry";
			return 0;
		}
	}

	int64_t cl = cache_content_length(resp);

	if (cl >= 0 && (uint64_t)cl > conf->max_file_size) {
		*reason = "too large";
		return 0;
	}
	if (cl >= 0 && (uint64_t)cl < conf->min_file_size) {
		*reason = "too small";
		return 0;
	}
	return 1;
}

/* ---- entries ---- */

struct cache_entry *
cache_entry_copy(const struct cache_meta *m, const unsigned char *key, size_t keylen,
                 size_t body_room)
{
	size_t strs = m->url.n + m->headers.n + m->etag.n + m->vary.n + 4;
	struct cache_entry *e = malloc(sizeof(*e) + strs + body_room);
	char *p;

	if (!e)
		return NULL;
	memset(e, 0, sizeof(*e));
	e->magic = CACHE_ENTRY_MAGIC;
	e->meta = *m;
	p = (char *)(e + 1);
#define CACHE_COPY_STR(field) do { \
		if (m->field.n) memcpy(p, m->field.p, m->field.n); \
		p[m->field.n] = '\0'; \
		e->meta.field = (struct cache_str){p, m->field.n}; \
		p += m->field.n + 1; \
	} while (0)
	CACHE_COPY_STR(url);
	CACHE_COPY_STR(headers);
	CACHE_COPY_STR(etag);
	CACHE_COPY_STR(vary);
#undef CACHE_COPY_STR
	if (key && keylen <= CACHE_KEY_MAX) {
		memcpy(e->key, key, keylen);
		e->keylen = keylen;
	}
	if (body_room)
		e->body = (const unsigned char *)p;
	return e;
}

void
cache_entry_free(struct cache_entry *e)
{
	if (!e)
		return;
	if (e->magic != CACHE_ENTRY_MAGIC)
		abort(); /* invariant: only entries made here are freed here */
	if (e->pin && e->unpin)
		e->unpin(e->pin, e->meta.body_id);
	e->magic = 0;
	free(e);
}

struct cache_str
cache_entry_header(const struct cache_entry *e, const char *name)
{
	size_t pos = 0;
	struct cache_hdr h;

	while (cache_block_next(e->meta.headers, &pos, &h))
		if (cache_sieq(h.name, name))
			return h.value;
	return (struct cache_str){NULL, 0};
}

void
cache_put_line(char **o, struct cache_str name, struct cache_str value)
{
	memcpy(*o, name.p, name.n);
	*o += name.n;
	memcpy(*o, ": ", 2);
	*o += 2;
	if (value.n)
		memcpy(*o, value.p, value.n);
	*o += value.n;
	memcpy(*o, "\r\n", 2);
	*o += 2;
}

/* Parse the fields of block into meta and copy everything into a new entry. */
static int
cache_entry_finish(struct cache_meta *m, struct cache_str block, const unsigned char *key,
                   size_t keylen, const struct cache_str *keep_vary, struct cache_entry **out)
{
	struct cache_hdr *fields = NULL;
	long nf = cache_block_fields(block, &fields);
	char vbuf[CACHE_VARY_MAX + 2];

	if (nf < 0)
		return CACHE_ENOMEM;
	if (nf > CACHE_MAX_FIELDS) {
		free(fields);
		return CACHE_EINVAL;
	}
	struct cache_hdrs h = {fields, (size_t)nf};

	m->headers = block;
	cache_meta_parse_fields(&h, m, vbuf);
	if (keep_vary)
		m->vary = *keep_vary;
	*out = cache_entry_copy(m, key, keylen, 0);
	free(fields);
	return *out ? CACHE_OK : CACHE_ENOMEM;
}

/* The Age field (RFC 9111 5.1). It is a singleton, but a cache that meets a list ("7200, 0",
 * or two Age lines, which make one list) uses the first member and drops the rest; when that
 * member is not delta-seconds the whole field is ignored (0). Skipping to a later valid
 * member instead, or calling the list invalid, would let "Age: 7200, 0" pass as fresh. */
static int64_t
cache_age_field(const struct cache_hdrs *h)
{
	for (size_t i = 0; i < h->n; i++) {
		size_t pos = 0;
		struct cache_str first;

		if (!cache_sieq(h->v[i].name, "age"))
			continue;
		if (!cache_list_next(h->v[i].value, &pos, &first))
			continue; /* an empty line adds no member to the list */
		if (first.p[0] == '"')
			return 0; /* delta-seconds is bare digits */
		int64_t a = cache_delta_parse(first);

		return a >= 0 ? a : 0;
	}
	return 0;
}

int
cache_entry_build(const struct cache_conf *conf, const struct cache_request *req, int status,
                  const struct cache_hdrs *resp, int64_t request_time, int64_t response_time,
                  struct cache_entry **out)
{
	struct cache_meta m;
	size_t need = 0, kept = 0;
	char *block, *o;
	int rc;

	*out = NULL;
	for (size_t i = 0; i < resp->n; i++) {
		if (cache_not_stored(conf, resp, resp->v[i].name))
			continue;
		need += resp->v[i].name.n + resp->v[i].value.n + 4;
		kept++;
	}
	if (kept > CACHE_MAX_FIELDS)
		return CACHE_EINVAL;
	block = malloc(need + 1);
	if (!block)
		return CACHE_ENOMEM;
	o = block;
	for (size_t i = 0; i < resp->n; i++)
		if (!cache_not_stored(conf, resp, resp->v[i].name))
			cache_put_line(&o, resp->v[i].name, resp->v[i].value);
	memset(&m, 0, sizeof(m));
	m.status = status;
	m.request_time = request_time;
	m.response_time = response_time;
	m.age_value = cache_age_field(resp);
	m.url = req->url;
	rc = cache_entry_finish(&m, (struct cache_str){block, (size_t)(o - block)}, NULL, 0, NULL,
	                        out);
	free(block);
	return rc;
}

int
cache_entry_merge_304(const struct cache_conf *conf, const struct cache_entry *old,
                      const struct cache_hdrs *r, int64_t request_time, int64_t response_time,
                      struct cache_entry **out)
{
	const struct cache_hdr *et = cache_hdr_find(r, "etag");
	const struct cache_hdr *lm = cache_hdr_find(r, "last-modified");
	struct cache_meta m = old->meta;
	size_t need = 0, pos = 0;
	struct cache_hdr h;
	char *block, *o;
	int rc;

	*out = NULL;
	if (et) {
		if (!old->meta.etag.n || !cache_etag_match(et->value, old->meta.etag, 0))
			return CACHE_EMISMATCH;
	} else if (lm && old->meta.last_modified >= 0 &&
	           cache_http_date_parse(lm->value.p, lm->value.n) != old->meta.last_modified) {
		return CACHE_EMISMATCH;
	}
#define CACHE_UPDATABLE(name) \
	(!cache_not_stored(conf, r, (name)) && !cache_sieq((name), "content-encoding"))
	while (cache_block_next(old->meta.headers, &pos, &h)) {
		int replaced = 0;

		for (size_t i = 0; i < r->n && !replaced; i++)
			if (cache_nieq(r->v[i].name.p, r->v[i].name.n, h.name.p, h.name.n) &&
			    CACHE_UPDATABLE(r->v[i].name))
				replaced = 1;
		if (!replaced)
			need += h.name.n + h.value.n + 4;
	}
	for (size_t i = 0; i < r->n; i++)
		if (CACHE_UPDATABLE(r->v[i].name))
			need += r->v[i].name.n + r->v[i].value.n + 4;
	block = malloc(need + 1);
	if (!block)
		return CACHE_ENOMEM;
	o = block;
	pos = 0;
	while (cache_block_next(old->meta.headers, &pos, &h)) {
		int replaced = 0;

		for (size_t i = 0; i < r->n && !replaced; i++)
			if (cache_nieq(r->v[i].name.p, r->v[i].name.n, h.name.p, h.name.n) &&
			    CACHE_UPDATABLE(r->v[i].name))
				replaced = 1;
		if (!replaced)
			cache_put_line(&o, h.name, h.value);
	}
	for (size_t i = 0; i < r->n; i++)
		if (CACHE_UPDATABLE(r->v[i].name))
			cache_put_line(&o, r->v[i].name, r->v[i].value);
#undef CACHE_UPDATABLE
	m.request_time = request_time;
	m.response_time = response_time;
	m.age_value = cache_age_field(r);
	rc = cache_entry_finish(&m, (struct cache_str){block, (size_t)(o - block)}, old->key,
	                        old->keylen, &old->meta.vary, out);
	if (*out) /* the stored bytes did not change: keep how they were stored */
		(*out)->meta.flags = old->meta.flags;
	free(block);
	return rc;
}

/* ---- freshness and age ---- */

int64_t
cache_freshness_lifetime(const struct cache_conf *conf, const struct cache_meta *m)
{
	int64_t life, base = m->date >= 0 ? m->date : m->response_time;

	if (conf->debian && m->status == 200 &&
	    cache_debian_class(m->url) == CACHE_DEB_IMMUTABLE)
		return conf->max_expire;
	if (m->cc.s_maxage >= 0)
		life = m->cc.s_maxage;
	else if (m->cc.max_age >= 0)
		life = m->cc.max_age;
	else if (m->expires >= 0)
		life = m->expires > base ? m->expires - base : 0;
	else if (!cache_status_heuristic(m->status) && !(m->cc.flags & CACHE_CC_PUBLIC))
		life = 0;
	else if (m->last_modified >= 0)
		life = m->last_modified < base ? (int64_t)((double)(base - m->last_modified) *
		                                           conf->lm_factor) : 0;
	else if (conf->ignore_no_lastmod)
		life = conf->default_expire;
	else
		life = 0;
	if (life > conf->max_expire)
		life = conf->max_expire;
	return life < 0 ? 0 : life;
}

int64_t
cache_current_age(const struct cache_meta *m, int64_t now)
{
	int64_t date = m->date >= 0 ? m->date : m->response_time;
	int64_t apparent = m->response_time - date;
	int64_t delay = m->response_time - m->request_time;
	int64_t resident = now - m->response_time;
	int64_t corrected_age, initial;

	if (apparent < 0)
		apparent = 0;
	if (delay < 0)
		delay = 0;
	if (resident < 0)
		resident = 0;
	corrected_age = m->age_value + delay;
	initial = apparent > corrected_age ? apparent : corrected_age;
	return initial + resident;
}

/* ---- using an entry ---- */

static int
cache_has_field(const struct cache_request *req, const char *name)
{
	return cache_hdr_find(&req->hdrs, name) != NULL;
}

void
cache_decide(const struct cache_conf *conf, const struct cache_meta *m,
             const struct cache_request *req, int64_t now, struct cache_decision *d)
{
	struct cache_cc rcc;
	int must_validate = 0, immutable, stale_ok;

	memset(d, 0, sizeof(*d));
	cache_cc_parse_request(&req->hdrs, &rcc);
	if (!m || (m->flags & CACHE_MF_VARY_STUB)) {
		d->action = (rcc.flags & CACHE_CC_ONLY_IF_CACHED) ? CACHE_ACT_ONLY_IF_CACHED_MISS
		                                                  : CACHE_ACT_FETCH;
		d->reason = "not stored";
		return;
	}
	d->age = cache_current_age(m, now);
	d->lifetime = cache_freshness_lifetime(conf, m);
	d->ttl = d->lifetime - d->age;
	d->stale = d->ttl <= 0;
	if (req->method != CACHE_M_GET && req->method != CACHE_M_HEAD) {
		d->action = CACHE_ACT_FETCH;
		d->reason = "method";
		return;
	}
	if (cache_has_field(req, "if-match") || cache_has_field(req, "if-unmodified-since")) {
		d->action = CACHE_ACT_FETCH;
		d->reason = "precondition";
		return;
	}
	immutable = conf->debian && m->status == 200 &&
	            cache_debian_class(m->url) == CACHE_DEB_IMMUTABLE;
	if ((m->cc.flags & CACHE_CC_NO_CACHE) && !immutable) {
		must_validate = 1;
		d->reason = "no-cache response";
	}
	if (rcc.flags & CACHE_CC_NO_CACHE) {
		must_validate = 1;
		d->client_refresh = 1;
		d->reason = (rcc.flags & CACHE_CC_PRAGMA_NO_CACHE) ? "pragma no-cache"
		                                                   : "no-cache request";
	}
	if (rcc.max_age >= 0 && d->age > rcc.max_age) {
		must_validate = 1;
		d->client_refresh = 1;
		d->stale = 1;
		d->reason = "request max-age";
	}
	if (rcc.min_fresh >= 0 && d->ttl < rcc.min_fresh) {
		must_validate = 1;
		d->client_refresh = 1;
		d->stale = 1;
		d->reason = "request min-fresh";
	}
	stale_ok = !(m->cc.flags & (CACHE_CC_MUST_REVALIDATE | CACHE_CC_PROXY_REVALIDATE)) &&
	           m->cc.s_maxage < 0;
	if (!must_validate && d->ttl > 0) {
		d->action = CACHE_ACT_FRESH;
		d->reason = immutable ? "fresh (debian immutable)" : "fresh";
	} else if (!must_validate && stale_ok &&
	           ((rcc.flags & CACHE_CC_MAX_STALE_ANY) ||
	            (rcc.max_stale >= 0 && -d->ttl <= rcc.max_stale))) {
		d->action = CACHE_ACT_FRESH;
		d->reason = "max-stale";
	} else if (!must_validate && stale_ok && m->cc.swr >= 0 && -d->ttl <= m->cc.swr) {
		d->action = CACHE_ACT_STALE_REVALIDATE;
		d->reason = "stale-while-revalidate";
	} else {
		d->action = (m->etag.n || m->last_modified >= 0) ? CACHE_ACT_REVALIDATE
		                                                  : CACHE_ACT_FETCH;
		if (!must_validate)
			d->reason = stale_ok ? "stale" : "stale, must-revalidate";
		else if (d->action == CACHE_ACT_FETCH)
			d->reason = d->client_refresh ? "client refresh, no validator"
			                              : "no validator";
	}
	/* stale-if-error: never with must-revalidate / proxy-revalidate / s-maxage, nor when the
	 * client or a no-cache response demands validation */
	if (stale_ok && !(rcc.flags & CACHE_CC_NO_CACHE) &&
	    !((m->cc.flags & CACHE_CC_NO_CACHE) && !immutable)) {
		int64_t over = d->ttl < 0 ? -d->ttl : 0;

		d->stale_if_error = conf->stale_on_error || (m->cc.sie >= 0 && over <= m->cc.sie) ||
		                    (rcc.sie >= 0 && over <= rcc.sie);
	}
	if ((rcc.flags & CACHE_CC_ONLY_IF_CACHED) &&
	    (d->action == CACHE_ACT_REVALIDATE || d->action == CACHE_ACT_FETCH)) {
		d->action = CACHE_ACT_ONLY_IF_CACHED_MISS;
		d->reason = "only-if-cached";
	}
	if (d->action == CACHE_ACT_FRESH || d->action == CACHE_ACT_STALE_REVALIDATE)
		d->not_modified = cache_cond_check(m, req);
}

int
cache_cond_check(const struct cache_meta *m, const struct cache_request *req)
{
	int have_inm = 0;

	if (req->method != CACHE_M_GET && req->method != CACHE_M_HEAD)
		return 0;
	for (size_t i = 0; i < req->hdrs.n; i++) {
		if (!cache_sieq(req->hdrs.v[i].name, "if-none-match"))
			continue;
		size_t pos = 0;
		struct cache_str e;

		have_inm = 1;
		while (cache_list_next(req->hdrs.v[i].value, &pos, &e)) {
			if (e.n == 1 && e.p[0] == '*')
				return 1;
			if (m->etag.n && cache_etag_match(e, m->etag, 0))
				return 1;
		}
	}
	if (have_inm)
		return 0;
	const struct cache_hdr *ims = cache_hdr_find(&req->hdrs, "if-modified-since");

	if (!ims)
		return 0;
	int64_t t = cache_http_date_parse(ims->value.p, ims->value.n);

	if (t < 0)
		return 0;
	int64_t lm = m->last_modified >= 0 ? m->last_modified
	                                   : (m->date >= 0 ? m->date : m->response_time);

	return lm <= t;
}

size_t
cache_validators(const struct cache_entry *e, char *out, size_t cap)
{
	struct cache_str lm = cache_entry_header(e, "Last-Modified");
	size_t need = 0;

	if (e->meta.etag.n)
		need += 15 + e->meta.etag.n + 2;
	if (lm.p && cache_http_date_parse(lm.p, lm.n) >= 0)
		need += 19 + lm.n + 2;
	else
		lm.p = NULL;
	if (need >= cap)
		return need;
	char *o = out;

	if (e->meta.etag.n) {
		memcpy(o, "If-None-Match: ", 15);
		o += 15;
		memcpy(o, e->meta.etag.p, e->meta.etag.n);
		o += e->meta.etag.n;
		memcpy(o, "\r\n", 2);
		o += 2;
	}
	if (lm.p) {
		memcpy(o, "If-Modified-Since: ", 19);
		o += 19;
		memcpy(o, lm.p, lm.n);
		o += lm.n;
		memcpy(o, "\r\n", 2);
		o += 2;
	}
	*o = '\0';
	return need;
}
