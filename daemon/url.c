/*
 * url.c - URL normalization (see url.h for the rules and who relies on them).
 *
 * One left-to-right pass writes the output; the path is then cleaned in place (merged
 * slashes, dot segments), which never lengthens it. The order is RFC 3986 6.2.2's: escapes
 * first, so that "%2E%2E" is a ".." segment, then segments. The result is a fixed point:
 * every escape left is valid, upper case and not of an unreserved character, and no empty,
 * "." or ".." segment is left, so a second pass changes nothing (the fuzz harness
 * tests/fuzz/fuzz_url.c checks that).
 *
 * Called per request by the connection code (daemon/proxy.c), per cache key by cache/key.c,
 * and per pattern by the config side (policy/acl.c, policy/route.c, daemon/cachecfg.c).
 */
#include "daemon/url.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#define URL_PORT_MAX 65535u

#define URL_IS_ALPHA(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))
#define URL_IS_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define URL_IS_UNRESERVED(c) (URL_IS_ALPHA(c) || URL_IS_DIGIT(c) || (c) == '-' || (c) == '.' || \
                              (c) == '_' || (c) == '~')
#define URL_IS_SUBDELIM(c) ((c) == '!' || (c) == '$' || (c) == '&' || (c) == '\'' || \
                            (c) == '(' || (c) == ')' || (c) == '*' || (c) == '+' || \
                            (c) == ',' || (c) == ';' || (c) == '=')
#define URL_LOWER(c) ((c) >= 'A' && (c) <= 'Z' ? (char)((c) + 32) : (char)(c))

static const char url_hexdig[] = "0123456789ABCDEF";

/* Character classes, one table lookup per byte on the per-request path. */
#define URL_C_UNRES 0x1u /* ALPHA DIGIT - . _ ~ */
#define URL_C_SUB   0x2u /* sub-delims */
#define URL_CC(c) ((unsigned char)((URL_IS_UNRESERVED(c) ? URL_C_UNRES : 0) | \
                                   (URL_IS_SUBDELIM(c) ? URL_C_SUB : 0)))
#define URL_CC4(b) URL_CC(b), URL_CC((b) + 1), URL_CC((b) + 2), URL_CC((b) + 3)
#define URL_CC16(b) URL_CC4(b), URL_CC4((b) + 4), URL_CC4((b) + 8), URL_CC4((b) + 12)
#define URL_CC64(b) URL_CC16(b), URL_CC16((b) + 16), URL_CC16((b) + 32), URL_CC16((b) + 48)
static const unsigned char url_cc[256] = { URL_CC64(0), URL_CC64(64), URL_CC64(128),
                                           URL_CC64(192) };
#define URL_CLS(c, bits) (url_cc[(unsigned char)(c)] & (bits))

static int
url_hex(int c)
{
	if (URL_IS_DIGIT(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The byte of a valid escape at in[i] ('%' and two hex digits inside n), or -1. */
static int
url_escape_at(const char *in, size_t n, size_t i)
{
	int hi, lo;

	if (i + 2 >= n)
		return -1;
	hi = url_hex((unsigned char)in[i + 1]);
	lo = url_hex((unsigned char)in[i + 2]);
	return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* Host rules of url.h into out at *o (room checked by the callers). complete: the host is
 * whole (not the end of a prefix), so its trailing dot goes and empty labels are errors. */
static int
url_host_put(const char *in, size_t n, int is_ip6, int complete, char *out, size_t *o,
             const char **reason)
{
	size_t s = *o, i;

	if (is_ip6) {
		char tmp[INET6_ADDRSTRLEN];
		struct in6_addr a;

		if (n == 0 || n >= sizeof(tmp)) {
			*reason = "bad IPv6 literal";
			return -1;
		}
		memcpy(tmp, in, n);
		tmp[n] = '\0';
		if (inet_pton(AF_INET6, tmp, &a) != 1 || !inet_ntop(AF_INET6, &a, out + s,
		                                                     INET6_ADDRSTRLEN)) {
			*reason = "bad IPv6 literal";
			return -1;
		}
		*o = s + strlen(out + s);
		return 0;
	}
	size_t k = s;
	int empty_label = 0, prev = '.'; /* a leading dot is an empty label too */

	for (i = 0; i < n; i++) {
		int c = (unsigned char)in[i];

		if (c == '%') {
			c = url_escape_at(in, n, i);
			if (c < 0) {
				*reason = "bad percent-encoding in host";
				return -1;
			}
			if (c == '/' || c == 0) {
				*reason = "encoded '/' or NUL in host";
				return -1;
			}
			if (!URL_CLS(c, URL_C_UNRES | URL_C_SUB)) {
				*reason = "encoded character not valid in a host name";
				return -1;
			}
			i += 2;
		} else if (!URL_CLS(c, URL_C_UNRES | URL_C_SUB)) {
			*reason = "invalid character in host";
			return -1;
		}
		empty_label |= c == '.' && prev == '.';
		prev = c;
		out[k++] = URL_LOWER(c);
	}
	*o = k;
	if (!complete)
		return 0;
	if (k > s && out[k - 1] == '.')
		k--;
	/* "a..b", ".a", and "a.." (one dot dropped, one left) */
	if (k > s && (empty_label || out[k - 1] == '.')) {
		*reason = "empty label in host";
		return -1;
	}
	if (k == s) {
		*reason = "missing host";
		return -1;
	}
	*o = k;
	return 0;
}

long
url_host_normalize(const char *in, size_t n, int is_ip6, char *out, size_t cap,
                   const char **reason)
{
	size_t o = 0;

	if (cap < n + URL_NORM_SLACK) {
		*reason = "host name too long";
		return -1;
	}
	if (url_host_put(in, n, is_ip6, 1, out, &o, reason) != 0)
		return -1;
	out[o] = '\0';
	return (long)o;
}

/* Copy in[0..n) to out at *o with escapes upper-cased; decode_unreserved also decodes escapes
 * of unreserved characters and makes an invalid '%' an error (paths); otherwise an invalid
 * '%' is kept as it is (queries: "?q=100%" is common and means nothing else). */
static int
url_escapes_put(const char *in, size_t n, int decode_unreserved, char *out, size_t *o,
                const char **reason)
{
	for (size_t i = 0; i < n; i++) {
		const char *pct = memchr(in + i, '%', n - i);
		size_t run = pct ? (size_t)(pct - in) - i : n - i;
		int c;

		memcpy(out + *o, in + i, run); /* most URLs have no escape at all */
		*o += run;
		i += run;
		if (i == n)
			break;
		c = url_escape_at(in, n, i);
		if (c < 0) {
			if (decode_unreserved) {
				*reason = "bad percent-encoding in path";
				return -1;
			}
			out[(*o)++] = '%';
			continue;
		}
		i += 2;
		if (decode_unreserved && URL_CLS(c, URL_C_UNRES)) {
			out[(*o)++] = (char)c;
		} else {
			out[(*o)++] = '%';
			out[(*o)++] = url_hexdig[c >> 4];
			out[(*o)++] = url_hexdig[c & 15];
		}
	}
	return 0;
}

/* Merge runs of '/' and resolve "." and ".." segments (RFC 3986 5.2.4) of p[0..n), p[0] ==
 * '/', in place: the write position never passes the read position. A trailing empty, "." or
 * ".." segment leaves the path ending in '/'. Returns the new length (>= 1). */
static size_t
url_path_clean(char *p, size_t n)
{
	size_t i = 0, o = 0;

	while (i < n) {
		const char *slash = memchr(p + i + 1, '/', n - i - 1);
		size_t j = slash ? (size_t)(slash - p) : n, sn;

		sn = j - i - 1;
		if (sn == 0 || (sn == 1 && p[i + 1] == '.')) {
			/* empty (merged) or "." segment: nothing, but keep a final '/' */
		} else if (sn == 2 && p[i + 1] == '.' && p[i + 2] == '.') {
			while (o > 0 && p[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
		} else {
			if (o != i) /* nothing removed yet: the segment is already in place */
				memmove(p + o, p + i, sn + 1);
			o += sn + 1;
			i = j;
			continue;
		}
		if (j == n)
			p[o++] = '/';
		i = j;
	}
	if (o == 0)
		p[o++] = '/';
	return o;
}

int
url_normalize(const char *in, size_t n, unsigned flags, char *out, size_t cap,
              struct url_norm *res, const char **reason)
{
	struct url_norm r;
	size_t i, o = 0, a, ae, hs, he, pe, port_at = 0;
	unsigned defport = 0, port = 0;
	int prefix = (flags & URL_N_PREFIX) != 0, ip6 = 0, complete;
	const char *at;

	memset(&r, 0, sizeof(r));
	if (cap < n + URL_NORM_SLACK) {
		*reason = "URL too long";
		return -1;
	}
	if (n == 0 || !URL_IS_ALPHA(in[0])) {
		*reason = "missing scheme";
		return -1;
	}
	for (i = 1; i < n && (URL_IS_ALPHA(in[i]) || URL_IS_DIGIT(in[i]) || in[i] == '+' ||
	                      in[i] == '-' || in[i] == '.'); i++)
		;
	if (n - i < 3 || memcmp(in + i, "://", 3) != 0) {
		*reason = "missing scheme";
		return -1;
	}
	for (size_t k = 0; k < i; k++)
		out[o++] = URL_LOWER(in[k]);
	if (i == 4 && memcmp(out, "http", 4) == 0)
		defport = 80;
	else if (i == 5 && memcmp(out, "https", 5) == 0)
		defport = 443;
	else if (i == 3 && memcmp(out, "ftp", 3) == 0)
		defport = 21;
	memcpy(out + o, "://", 3);
	o += 3;

	/* authority: [userinfo@]host[:port] */
	a = i + 3;
	for (ae = a; ae < n && in[ae] != '/' && in[ae] != '?' && in[ae] != '#'; ae++)
		;
	{
		const char *q = memchr(in + ae, '?', n - ae), *h;

		pe = q ? (size_t)(q - in) : n; /* the path ends at '?' or '#' */
		h = memchr(in + ae, '#', pe - ae);
		if (h != NULL)
			pe = (size_t)(h - in);
	}
	hs = a;
	for (at = in + a; (at = memchr(at, '@', (size_t)(in + ae - at))) != NULL; at++)
		hs = (size_t)(at - in) + 1;
	memcpy(out + o, in + a, hs - a); /* userinfo as written */
	o += hs - a;
	if (hs < ae && in[hs] == '[') {
		const char *close = memchr(in + hs, ']', ae - hs);

		if (close == NULL) {
			*reason = "unbalanced brackets in host";
			return -1;
		}
		ip6 = 1;
		he = (size_t)(close - in) + 1;
		if (he < ae && in[he] != ':') {
			*reason = "invalid character in host";
			return -1;
		}
	} else {
		const char *colon = memchr(in + hs, ':', ae - hs);

		he = colon ? (size_t)(colon - in) : ae;
	}
	if (he < ae) {
		size_t k = he + 1;

		port_at = he;
		if (k == ae) /* "host:" is the default port (RFC 3986 6.2.3) */
			port = defport;
		while (k < ae && in[k] == '0')
			k++;
		for (; k < ae; k++) {
			if (!URL_IS_DIGIT(in[k]) || port > URL_PORT_MAX) {
				*reason = "bad port";
				return -1;
			}
			port = port * 10 + (unsigned)(in[k] - '0');
		}
		if ((port == 0 && k > he + 1) || port > URL_PORT_MAX) {
			*reason = "bad port";
			return -1;
		}
	}
	complete = !prefix || port_at || ae < n;
	if (hs == he && !complete) {
		/* a prefix of a scheme only ("http://"): nothing more to do */
	} else if (ip6) {
		out[o++] = '[';
		r.host_off = o;
		if (url_host_put(in + hs + 1, he - hs - 2, 1, 1, out, &o, reason) != 0)
			return -1;
		r.host_len = o - r.host_off;
		out[o++] = ']';
	} else {
		r.host_off = o;
		if (url_host_put(in + hs, he - hs, 0, complete, out, &o, reason) != 0)
			return -1;
		r.host_len = o - r.host_off;
	}
	r.host_is_ip6 = ip6;
	r.port = port_at ? port : defport;
	if (port_at && port != defport) {
		char d[8];
		size_t k = sizeof(d);

		for (unsigned v = port; v > 0; v /= 10)
			d[--k] = (char)('0' + v % 10);
		out[o++] = ':';
		memcpy(out + o, d + k, sizeof(d) - k);
		o += sizeof(d) - k;
	}

	/* path */
	r.path_off = o;
	if (pe == ae) {
		/* no path: "/" for a URL; for a prefix only when the authority is whole (a port
		 * was written: "http://h:80" means the host h on port 80, not "http://h:8080") */
		if (!prefix || port_at)
			out[o++] = '/';
	} else {
		if (url_escapes_put(in + ae, pe - ae, 1, out, &o, reason) != 0)
			return -1;
		o = r.path_off + url_path_clean(out + r.path_off, o - r.path_off);
	}

	/* query as written but for the case of its escapes; the fragment goes */
	r.query_off = o;
	if (pe < n && in[pe] == '?') {
		const char *hash = memchr(in + pe, '#', n - pe);
		size_t qe = hash ? (size_t)(hash - in) : n;

		url_escapes_put(in + pe, qe - pe, 0, out, &o, reason);
	}
	out[o] = '\0';
	r.len = o;
	if (res)
		*res = r;
	return 0;
}

/* The character at s[i] for url_password_mask: a byte, or with decode the byte of a valid
 * escape ("%40" is '@'); *len gets how many bytes it takes. */
static int
url_mask_at(const char *s, size_t n, size_t i, int decode, size_t *len)
{
	int e = decode && s[i] == '%' ? url_escape_at(s, n, i) : -1;
	*len = e < 0 ? 1 : 3;
	return e < 0 ? (unsigned char)s[i] : e;
}

/* Is there a "://" at s[i], raw or (with URL_MASK_EVERY) with any of its three characters
 * escaped? Sets *end past it and *encoded when one was escaped. */
static int
url_mask_sep(const char *s, size_t n, size_t i, unsigned flags, size_t *end, int *encoded)
{
	static const char sep[] = "://";
	*encoded = 0;
	for (size_t k = 0; k < 3; k++) {
		size_t l;
		if (i >= n || url_mask_at(s, n, i, (flags & URL_MASK_EVERY) != 0, &l) != sep[k])
			return 0;
		*encoded |= l > 1;
		i += l;
	}
	*end = i;
	return 1;
}

size_t
url_password_mask(char *s, size_t n, unsigned flags)
{
	size_t i = 0;
	while (i < n) {
		size_t a;
		int enc;
		if (!url_mask_sep(s, n, i, flags, &a, &enc)) {
			i++;
			continue;
		}
		/* The authority: up to the first delimiter written as the separator was (an escaped
		 * URL inside a query ends at its own escaped '/', or at the next raw '&'). */
		size_t j = a, colon = n, at = n, l;
		while (j < n) {
			int ch = url_mask_at(s, n, j, enc, &l);
			if (ch == '/' || ch == '?' || ch == '#' || ch == ' ' || ch == '\t' ||
			    ch == '\r' || ch == '\n' || ch == '\0' || (enc && l == 1 && ch == '&'))
				break;
			if (ch == ':' && colon == n)
				colon = j;
			else if (ch == '@')
				at = j;
			j += l;
		}
		if (at < n && colon < at) {
			/* keep "user", drop ":password", keep "@host" */
			memmove(s + colon, s + at, n - at);
			n -= at - colon;
			j -= at - colon;
			s[n] = '\0';
		}
		if (!(flags & URL_MASK_EVERY))
			break;
		i = j;
	}
	return n;
}
