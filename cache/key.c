/*
 * key.c - cache keys: SHA-256 of key texts (OpenSSL EVP), URL normalisation, Vary specs and
 * secondary keys, and the URIs an unsafe request invalidates (RFC 9111 4.4), with RFC 3986
 * reference resolution for Location and Content-Location.
 *
 * A key is the URL in the one normalized form of daemon/url.h (a pure, dependency-free
 * lower-layer header, as daemon/ev.h is for the resolver), the form the daemon's ACL and
 * policy see too: every spelling of a URL is one entry, and a Location naming it in another
 * spelling invalidates that entry.
 *
 * Pure functions; allocations only for long Vary values and the returned URI list.
 */
#include "cache/cache_priv.h"
#include "daemon/url.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* SHA-256, fetched from OpenSSL's default provider once for the process: passing EVP_sha256()
 * to every EVP_DigestInit_ex makes OpenSSL 3 look the implementation up again on every call,
 * about 2,300 instructions of a cache hit's 53,000 (tests/bench/hitcost.sh). Kept until exit. */
static const EVP_MD *cache_md;
static pthread_once_t cache_md_once = PTHREAD_ONCE_INIT;

static void
cache_md_fetch(void)
{
	EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL);

	cache_md = md ? md : EVP_sha256();
}

static const EVP_MD *
cache_sha256_md(void)
{
	pthread_once(&cache_md_once, cache_md_fetch);
	return cache_md;
}

int
cache_sha256(const void *a, size_t an, const void *b, size_t bn, unsigned char out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int len = 0;
	int ok;

	if (!ctx)
		return CACHE_ENOMEM;
	ok = EVP_DigestInit_ex(ctx, cache_sha256_md(), NULL) && EVP_DigestUpdate(ctx, a, an) &&
	     (!bn || EVP_DigestUpdate(ctx, b, bn)) && EVP_DigestFinal_ex(ctx, out, &len);
	EVP_MD_CTX_free(ctx);
	return ok && len == 32 ? CACHE_OK : CACHE_ENOMEM;
}

/* ---- Vary ---- */

static int
cache_tchar(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int
cache_name_cmp(const void *a, const void *b)
{
	const struct cache_str *x = a, *y = b;
	size_t n = x->n < y->n ? x->n : y->n;

	for (size_t i = 0; i < n; i++) {
		int cx = x->p[i] >= 'A' && x->p[i] <= 'Z' ? x->p[i] + 32 : x->p[i];
		int cy = y->p[i] >= 'A' && y->p[i] <= 'Z' ? y->p[i] + 32 : y->p[i];

		if (cx != cy)
			return cx - cy;
	}
	return (x->n > y->n) - (x->n < y->n);
}

#define CACHE_VARY_NAMES 64

int
cache_vary_spec(const struct cache_hdrs *resp, char *out, size_t cap)
{
	struct cache_str names[CACHE_VARY_NAMES];
	size_t nn = 0, len = 0;

	for (size_t i = 0; resp && i < resp->n; i++) {
		if (!cache_sieq(resp->v[i].name, "vary"))
			continue;
		size_t pos = 0;
		struct cache_str e;

		while (cache_list_next(resp->v[i].value, &pos, &e)) {
			int dup = 0, ok = 1;

			if (e.n == 1 && e.p[0] == '*')
				return -1;
			for (size_t k = 0; k < e.n; k++)
				ok &= cache_tchar((unsigned char)e.p[k]);
			if (!ok)
				continue; /* not a field name: ignore */
			for (size_t k = 0; k < nn && !dup; k++)
				dup = cache_nieq(names[k].p, names[k].n, e.p, e.n);
			if (dup)
				continue;
			if (nn == CACHE_VARY_NAMES)
				return -2;
			names[nn++] = e;
		}
	}
	qsort(names, nn, sizeof(names[0]), cache_name_cmp);
	for (size_t k = 0; k < nn; k++)
		len += names[k].n + (k > 0);
	if (len > CACHE_VARY_MAX || len + 1 > cap)
		return -2;
	char *o = out;

	for (size_t k = 0; k < nn; k++) {
		if (k)
			*o++ = ',';
		for (size_t j = 0; j < names[k].n; j++) {
			char c = names[k].p[j];

			*o++ = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
		}
	}
	*o = '\0';
	return (int)len;
}

long
cache_vary_value(const struct cache_hdrs *req, const char *name, size_t name_len, char *out,
                 size_t cap)
{
	size_t len = 0;
	int found = 0;

#define CACHE_EMIT(c) do { if (len + 1 < cap) out[len] = (c); len++; } while (0)
	for (size_t i = 0; req && i < req->n; i++) {
		if (!cache_nieq(req->v[i].name.p, req->v[i].name.n, name, name_len))
			continue;
		struct cache_str v = cache_trim(req->v[i].value);
		int at_sep = 1, space = 0;

		if (found) {
			CACHE_EMIT(',');
		}
		found = 1;
		for (size_t k = 0; k < v.n; k++) {
			char c = v.p[k];

			if (c == ' ' || c == '\t') {
				space = 1;
				continue;
			}
			if (c == ',') {
				CACHE_EMIT(',');
				at_sep = 1;
				space = 0;
				continue;
			}
			if (space && !at_sep)
				CACHE_EMIT(' ');
			space = 0;
			at_sep = 0;
			CACHE_EMIT(c);
		}
	}
#undef CACHE_EMIT
	if (cap)
		out[len < cap ? len : cap - 1] = '\0';
	return found ? (long)len : -1;
}

int
cache_vary_hash(struct cache_str spec, const struct cache_hdrs *req, unsigned char out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	char small[1024], *big = NULL;
	size_t pos = 0;
	struct cache_str name;
	unsigned int olen = 0;
	int ok;

	if (!ctx)
		return CACHE_ENOMEM;
	ok = EVP_DigestInit_ex(ctx, cache_sha256_md(), NULL) &&
	     EVP_DigestUpdate(ctx, spec.p, spec.n) && EVP_DigestUpdate(ctx, "", 1);
	while (ok && cache_list_next(spec, &pos, &name)) {
		long vl = cache_vary_value(req, name.p, name.n, small, sizeof(small));
		const char *v = small;

		if (vl < 0) {
			ok = EVP_DigestUpdate(ctx, "\x01", 1);
			continue;
		}
		if ((size_t)vl >= sizeof(small)) {
			free(big);
			big = malloc((size_t)vl + 1);
			if (!big) {
				ok = 0;
				break;
			}
			cache_vary_value(req, name.p, name.n, big, (size_t)vl + 1);
			v = big;
		}
		ok = EVP_DigestUpdate(ctx, "\x02", 1) && EVP_DigestUpdate(ctx, v, (size_t)vl) &&
		     EVP_DigestUpdate(ctx, "", 1);
	}
	ok = ok && EVP_DigestFinal_ex(ctx, out, &olen) && olen == 32;
	free(big);
	EVP_MD_CTX_free(ctx);
	return ok ? CACHE_OK : CACHE_ENOMEM;
}

/* ---- URL normalisation ---- */

/* Length of a scheme followed by "://" at the start of u, or 0. */
static size_t
cache_scheme_len(const char *u, size_t n)
{
	size_t i = 0;

	if (!n || !((u[0] >= 'a' && u[0] <= 'z') || (u[0] >= 'A' && u[0] <= 'Z')))
		return 0;
	while (i < n && ((u[i] >= 'a' && u[i] <= 'z') || (u[i] >= 'A' && u[i] <= 'Z') ||
	                 (u[i] >= '0' && u[i] <= '9') || u[i] == '+' || u[i] == '-' || u[i] == '.'))
		i++;
	if (i + 3 > n || u[i] != ':' || u[i + 1] != '/' || u[i + 2] != '/')
		return 0;
	return i;
}

int
cache_key_normalise(const char *url, size_t n, int ignore_query, char *out, size_t cap,
                    size_t *outlen)
{
	struct url_norm un;
	const char *why;

	*outlen = 0;
	for (size_t k = 0; k < n; k++)
		if ((unsigned char)url[k] <= ' ' || url[k] == 0x7f)
			return CACHE_EINVAL; /* CTLs and spaces never reach a key */
	if (url_normalize(url, n, 0, out, cap, &un, &why) != 0)
		return CACHE_EINVAL;
	if (ignore_query)
		un.len = un.query_off;
	out[un.len] = '\0';
	*outlen = un.len;
	return CACHE_OK;
}

int
cache_key_from_normalised(const char *url, size_t n, int ignore_query, char *out, size_t cap,
                          size_t *outlen)
{
	/* In a normalized URL the first '?' starts the query: neither the authority nor the path
	 * holds one unescaped. */
	const char *q = ignore_query ? memchr(url, '?', n) : NULL;

	if (q)
		n = (size_t)(q - url);
	*outlen = 0;
	if (n + 1 > cap)
		return CACHE_EINVAL;
	memcpy(out, url, n);
	out[n] = '\0';
	*outlen = n;
	return CACHE_OK;
}

/* ---- invalidation ---- */

/* RFC 3986 5.2.4 on a path starting with '/'; out has room for n + 1 bytes. */
static size_t
cache_remove_dots(const char *in, size_t n, char *out)
{
	size_t o = 0, i = 0;

	while (i < n) {
		size_t j = i + 1;

		while (j < n && in[j] != '/')
			j++;
		const char *seg = in + i + 1;
		size_t sn = j - i - 1;

		if (sn == 1 && seg[0] == '.') {
			if (j == n)
				out[o++] = '/';
		} else if (sn == 2 && seg[0] == '.' && seg[1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
			if (j == n)
				out[o++] = '/';
		} else {
			out[o++] = '/';
			memcpy(out + o, seg, sn);
			o += sn;
		}
		i = j;
	}
	if (o == 0)
		out[o++] = '/';
	return o;
}

/* Does a reference start with "scheme:" (RFC 3986 3.1)? */
static int
cache_has_scheme(struct cache_str r)
{
	size_t i = 0;

	if (!r.n || !((r.p[0] >= 'a' && r.p[0] <= 'z') || (r.p[0] >= 'A' && r.p[0] <= 'Z')))
		return 0;
	while (i < r.n && ((r.p[i] >= 'a' && r.p[i] <= 'z') || (r.p[i] >= 'A' && r.p[i] <= 'Z') ||
	                   (r.p[i] >= '0' && r.p[i] <= '9') || r.p[i] == '+' || r.p[i] == '-' ||
	                   r.p[i] == '.'))
		i++;
	return i < r.n && r.p[i] == ':';
}

/* Resolve ref against the normalised absolute base; returns a malloc'd normalised URL or
 * NULL (no memory, or a reference that cannot be resolved). */
static char *
cache_resolve(const char *base, size_t bn, struct cache_str ref)
{
	size_t sl = cache_scheme_len(base, bn), auth_end = sl + 3, cap = bn + ref.n + 8, len = 0;
	char *tmp = malloc(cap), *out = NULL;

	if (!tmp || !sl)
		goto done;
	const char *frag = ref.n ? memchr(ref.p, '#', ref.n) : NULL;

	if (frag)
		ref.n = (size_t)(frag - ref.p);
	while (auth_end < bn && base[auth_end] != '/' && base[auth_end] != '?')
		auth_end++;
	if (cache_has_scheme(ref)) {
		/* absolute; another kind (mailto:, urn:) cannot be ours */
		if (!cache_scheme_len(ref.p, ref.n))
			goto done;
		memcpy(tmp, ref.p, ref.n);
		len = ref.n;
	} else if (ref.n >= 2 && ref.p[0] == '/' && ref.p[1] == '/') {
		memcpy(tmp, base, sl + 1);
		memcpy(tmp + sl + 1, ref.p, ref.n);
		len = sl + 1 + ref.n;
	} else {
		const char *rq = memchr(ref.p, '?', ref.n);
		size_t rpath = rq ? (size_t)(rq - ref.p) : ref.n;
		char *path = malloc(bn + ref.n + 2), *clean = NULL;
		size_t pl = 0;

		if (!path)
			goto done;
		if (rpath && ref.p[0] == '/') {
			memcpy(path, ref.p, rpath);
			pl = rpath;
		} else {
			size_t bp_end = auth_end;

			while (bp_end < bn && base[bp_end] != '?')
				bp_end++;
			if (rpath == 0) { /* "" or "?q": the base path */
				memcpy(path, base + auth_end, bp_end - auth_end);
				pl = bp_end - auth_end;
			} else {
				size_t last = bp_end;

				while (last > auth_end && base[last - 1] != '/')
					last--;
				memcpy(path, base + auth_end, last - auth_end);
				pl = last - auth_end;
				if (pl == 0)
					path[pl++] = '/';
				memcpy(path + pl, ref.p, rpath);
				pl += rpath;
			}
		}
		clean = malloc(pl + 2);
		if (!clean) {
			free(path);
			goto done;
		}
		pl = pl && path[0] == '/' ? cache_remove_dots(path, pl, clean) : 0;
		if (!pl)
			clean[pl++] = '/';
		memcpy(tmp, base, auth_end);
		len = auth_end;
		memcpy(tmp + len, clean, pl);
		len += pl;
		if (rq) {
			memcpy(tmp + len, rq, ref.n - rpath);
			len += ref.n - rpath;
		} else if (rpath == 0) {
			const char *bq = memchr(base + auth_end, '?', bn - auth_end);

			if (bq) {
				memcpy(tmp + len, bq, (size_t)(base + bn - bq));
				len += (size_t)(base + bn - bq);
			}
		}
		free(path);
		free(clean);
	}
	out = malloc(len + URL_NORM_SLACK);
	size_t ol;

	if (out && cache_key_normalise(tmp, len, 0, out, len + URL_NORM_SLACK, &ol) != CACHE_OK) {
		free(out);
		out = NULL;
	}
done:
	free(tmp);
	return out;
}

/* Length of "scheme://authority" of a normalised URL. */
static size_t
cache_origin_len(const char *u, size_t n)
{
	size_t i = cache_scheme_len(u, n);

	if (!i)
		return 0;
	i += 3;
	while (i < n && u[i] != '/' && u[i] != '?')
		i++;
	return i;
}

int
cache_invalidations(const struct cache_request *req, int status, const struct cache_hdrs *resp,
                    struct cache_uri_list *out)
{
	static const char *const fields[] = {"location", "content-location"};
	char *self;
	size_t sl;

	memset(out, 0, sizeof(*out));
	switch (req->method) {
	case CACHE_M_GET: case CACHE_M_HEAD: case CACHE_M_OPTIONS: case CACHE_M_TRACE:
	case CACHE_M_CONNECT:
		return CACHE_OK;
	default:
		break;
	}
	if (status < 200 || status > 399)
		return CACHE_OK;
	self = malloc(req->url.n + URL_NORM_SLACK);
	if (!self)
		return CACHE_ENOMEM;
	if (cache_key_normalise(req->url.p, req->url.n, 0, self, req->url.n + URL_NORM_SLACK,
	                        &sl)) {
		free(self);
		return CACHE_OK; /* not an absolute URL: nothing we could have stored */
	}
	out->uri[out->n++] = self;
	size_t origin = cache_origin_len(self, sl);

	for (size_t f = 0; f < 2; f++) {
		const struct cache_hdr *h = cache_hdr_find(resp, fields[f]);

		if (!h || !h->value.n)
			continue;
		char *u = cache_resolve(self, sl, cache_trim(h->value));

		if (!u)
			continue;
		size_t ul = strlen(u);
		int keep = cache_origin_len(u, ul) == origin && memcmp(u, self, origin) == 0;

		for (size_t k = 0; k < out->n && keep; k++)
			keep = strcmp(out->uri[k], u) != 0;
		if (keep)
			out->uri[out->n++] = u;
		else
			free(u);
	}
	return CACHE_OK;
}

void
cache_uri_list_free(struct cache_uri_list *l)
{
	for (size_t i = 0; i < l->n && i < 3; i++)
		free(l->uri[i]);
	memset(l, 0, sizeof(*l));
}
