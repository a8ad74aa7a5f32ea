/*
 * fuzz_url.c - libFuzzer harness for the request-target parsers (h1_url_parse,
 * h1_authority_parse in daemon/h1.c) and the list helpers.
 *
 * Besides crashes, the harness abort()s when a parse result is inconsistent: slices outside
 * the input, a port of 0, a path not starting with '/', or a URL that, rebuilt from its parts,
 * does not parse back to the same parts (the round trip is the differential check).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/h1.h"

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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct h1_str t = { (const char *)data, size };
	struct h1_url u, v;
	const char *why = NULL;
	size_t n;

	if (size > 60000)
		return 0;
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
