/*
 * fuzz_url.c - libFuzzer harness for the request-target parsers (h1_url_parse,
 * h1_authority_parse in daemon/h1.c) and the list helpers.
 *
 * Besides crashes, the harness abort()s when a parse result is inconsistent: slices outside
 * the input, a port of 0, a path not starting with '/', or a URL that, rebuilt from its parts,
 * does not parse back to the same parts (the round trip is the differential check).
 *
 * URL normalization (url_normalize, url_host_normalize in daemon/url.c) must be a fixed point:
 * normalizing its own output gives the same bytes and parts, as a URL and as a config prefix;
 * its output has no dot segment, no "//" in the path and no lower-case escape, and when the
 * strict parser accepts the input, it accepts the output too (the daemon parses it again).
 *
 * The password masker (url_password_mask) only ever shortens, keeps its output terminated,
 * and masking the first URL's password again changes nothing.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/h1.h"
#include "daemon/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fz_check(int ok)
{
	if (!ok)
		abort();
}

static int
fz_inside(struct h1_str s, const char *p, size_t n)
{
	return s.p >= p && s.p + s.n <= p + n;
}

static int
fz_slice_eq(struct h1_str a, struct h1_str b)
{
	return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static void
fz_same(const struct h1_url *a, const struct h1_url *b)
{
	fz_check(a->scheme == b->scheme && fz_slice_eq(a->scheme_str, b->scheme_str));
	fz_check(fz_slice_eq(a->userinfo, b->userinfo) && fz_slice_eq(a->host, b->host));
	fz_check(a->host_is_ip6 == b->host_is_ip6 && a->port == b->port);
	fz_check(a->port_explicit == b->port_explicit && fz_slice_eq(a->path, b->path));
	fz_check(a->path_is_default == b->path_is_default);
}

/* host part as it was written: [v6] or reg-name, with ":port" when explicit */
static size_t
fz_hostport(char *out, size_t cap, const struct h1_url *u)
{
	int n;

	if (u->port_explicit)
		n = snprintf(out, cap, u->host_is_ip6 ? "[%.*s]:%u" : "%.*s:%u", (int)u->host.n,
		             u->host.p, (unsigned)u->port);
	else
		n = snprintf(out, cap, u->host_is_ip6 ? "[%.*s]" : "%.*s", (int)u->host.n,
		             u->host.p);
	fz_check(n >= 0 && (size_t)n < cap);
	return (size_t)n;
}

static char fz_buf[1 << 17];
static char fz_norm[1 << 17], fz_norm2[1 << 17];

/* No ".", ".." or empty segment (but a final one) in the path, no lower-case hex in escapes. */
static void
fz_check_clean(const char *s, const struct url_norm *r)
{
	size_t i, e = r->query_off;

	for (i = r->path_off; i < e; i++) {
		if (s[i] == '/' && i + 1 < e) {
			fz_check(s[i + 1] != '/');
			fz_check(!(s[i + 1] == '.' && (i + 2 == e || s[i + 2] == '/')));
			fz_check(!(s[i + 1] == '.' && i + 2 < e && s[i + 2] == '.' &&
			           (i + 3 == e || s[i + 3] == '/')));
		}
		if (s[i] == '%') {
			fz_check(i + 2 < e);
			fz_check(!(s[i + 1] >= 'a' && s[i + 1] <= 'f') &&
			         !(s[i + 2] >= 'a' && s[i + 2] <= 'f'));
		}
	}
}

static void
fz_normalize(const char *p, size_t n, unsigned flags, int parsed)
{
	struct url_norm r, r2;
	const char *why = NULL;
	struct h1_url u;

	if (url_normalize(p, n, flags, fz_norm, sizeof(fz_norm), &r, &why) != 0) {
		fz_check(why != NULL);
		return;
	}
	fz_check(r.len < sizeof(fz_norm) && fz_norm[r.len] == '\0' && r.len <= n + 64);
	fz_check(r.host_off + r.host_len <= r.path_off && r.path_off <= r.query_off);
	fz_check(r.query_off <= r.len);
	fz_check_clean(fz_norm, &r);
	fz_check(url_normalize(fz_norm, r.len, flags, fz_norm2, sizeof(fz_norm2), &r2, &why) == 0);
	fz_check(r2.len == r.len && memcmp(fz_norm, fz_norm2, r.len) == 0);
	fz_check(r2.host_off == r.host_off && r2.host_len == r.host_len && r2.port == r.port);
	fz_check(r2.path_off == r.path_off && r2.query_off == r.query_off);
	if (parsed && flags == 0) {
		struct h1_str t = { fz_norm, r.len };
		/* a decoded host may now look numeric ("%30x7f.1"): the daemon refuses that */
		if (h1_url_parse(t, &u, &why) == H1_OK)
			fz_check(u.port == r.port && u.host.n == r.host_len);
	}
}

static void
fz_mask(const uint8_t *data, size_t size)
{
	static char a[1 << 16], b[1 << 16];
	size_t n = size < sizeof(a) - 1 ? size : sizeof(a) - 1;

	memcpy(a, data, n);
	a[n] = '\0';
	size_t m = url_password_mask(a, n, 0);
	fz_check(m <= n && (m == n || a[m] == '\0'));
	memcpy(b, a, m + 1);
	fz_check(url_password_mask(b, m, 0) == m && memcmp(a, b, m) == 0);
	memcpy(a, data, n);
	a[n] = '\0';
	m = url_password_mask(a, n, URL_MASK_EVERY);
	fz_check(m <= n && (m == n || a[m] == '\0'));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_mask(data, size);
	struct h1_str t = { (const char *)data, size };
	struct h1_url u, v;
	const char *why = NULL;
	size_t n;

	if (size > 60000)
		return 0;
	fz_normalize(t.p, t.n, 0, h1_url_parse(t, &u, &why) == H1_OK);
	fz_normalize(t.p, t.n, URL_N_PREFIX, 0);
	if (size < 300) {
		char host[300 + URL_NORM_SLACK];
		long hl = url_host_normalize(t.p, t.n, 0, host, sizeof(host), &why);

		if (hl >= 0) {
			char again[sizeof(host) + URL_NORM_SLACK];

			fz_check(url_host_normalize(host, (size_t)hl, 0, again, sizeof(again), &why) ==
			         hl && memcmp(host, again, (size_t)hl) == 0);
		}
	}
	why = NULL;
	if (h1_url_parse(t, &u, &why) == H1_OK) {
		fz_check(fz_inside(u.scheme_str, t.p, t.n) && u.scheme_str.n > 0);
		fz_check(fz_inside(u.host, t.p, t.n) && u.host.n > 0);
		fz_check(u.userinfo.n == 0 || fz_inside(u.userinfo, t.p, t.n));
		fz_check(u.path.n > 0 && u.path.p[0] == '/');
		fz_check(u.path_is_default ? u.path.n == 1 : fz_inside(u.path, t.p, t.n));
		fz_check(u.port != 0 || (u.scheme == H1_SCHEME_OTHER && !u.port_explicit));
		fz_check(memchr(t.p, '#', t.n) == NULL);
		/* rebuild and parse again */
		n = (size_t)snprintf(fz_buf, sizeof(fz_buf), "%.*s://", (int)u.scheme_str.n,
		                     u.scheme_str.p);
		if (u.userinfo.n > 0) /* an empty userinfo ("http://@h/") reads as none */
			n += (size_t)snprintf(fz_buf + n, sizeof(fz_buf) - n, "%.*s@",
			                      (int)u.userinfo.n, u.userinfo.p);
		n += fz_hostport(fz_buf + n, sizeof(fz_buf) - n, &u);
		if (!u.path_is_default) {
			fz_check(n + u.path.n < sizeof(fz_buf));
			memcpy(fz_buf + n, u.path.p, u.path.n);
			n += u.path.n;
		}
		t.p = fz_buf;
		t.n = n;
		fz_check(h1_url_parse(t, &v, &why) == H1_OK);
		fz_same(&u, &v);
		t.p = (const char *)data;
		t.n = size;
	} else {
		fz_check(why != NULL);
	}
	why = NULL;
	if (h1_authority_parse(t, &u, &why) == H1_OK) {
		fz_check(fz_inside(u.host, t.p, t.n) && u.host.n > 0);
		fz_check(u.port_explicit && u.port != 0 && u.userinfo.n == 0);
		n = fz_hostport(fz_buf, sizeof(fz_buf), &u);
		/* the same bytes, or shorter by leading zeros of the port */
		fz_check((n == size && memcmp(fz_buf, data, size) == 0) || n < size);
		t.p = fz_buf;
		t.n = n;
		fz_check(h1_authority_parse(t, &v, &why) == H1_OK);
		fz_same(&u, &v);
		t.p = (const char *)data;
		t.n = size;
	} else {
		fz_check(why != NULL);
	}
	/* list helpers must not read outside the value */
	if (size > 0) {
		char tok[16];
		size_t k = size < sizeof(tok) - 1 ? size : sizeof(tok) - 1;

		memcpy(tok, data, k);
		tok[k] = '\0';
		(void)h1_list_has(t, tok);
		(void)h1_str_ieq(t, tok);
	}
	return 0;
}
