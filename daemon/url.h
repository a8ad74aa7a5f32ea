/*
 * url.h - the one normalized spelling of a URL, so that every check sees the same thing.
 *
 * The <Proxy> ACL, ProxyBlock/NoProxy, ProxyRemote prefixes, CacheEnable/CacheDisable
 * prefixes, the cache key and the request forwarded upstream all read the URL that
 * url_normalize() writes; the config patterns they compare with are normalized by the same
 * function when the config is compiled. Two spellings of one URL ("HTTP://Origin.TEST.:080//a/
 * ./%73ecret") can then neither escape a rule nor make two cache entries.
 *
 * Pure, allocation-free and dependency-free (libc only): like daemon/ev.h for the resolver,
 * this is a lower-layer header that policy/ and cache/ may include.
 */
#ifndef GH_URL_H
#define GH_URL_H

#include <stddef.h>

/* Room to add to the input length for the output buffer: an IPv6 literal may grow when
 * written canonically ("[::ffff:0:0]" -> "[::ffff:0.0.0.0]") and an empty path becomes "/". */
#define URL_NORM_SLACK 64

/* url_normalize() flags */
#define URL_N_PREFIX 0x1u /* a config prefix: the path may be absent (nothing is added) and a
                           * host with nothing after it may be partial ("http://www.exa") */

struct url_norm {
	size_t len;         /* output length (out is NUL-terminated) */
	size_t host_off;    /* host in out: lower case, no brackets for IPv6 */
	size_t host_len;
	int host_is_ip6;
	unsigned port;      /* explicit port, or the scheme's default (0 for unknown schemes) */
	size_t path_off;    /* where the path starts in out (== len when a prefix has none) */
	size_t query_off;   /* where "?query" starts in out (== len when there is none) */
};

/* Normalize the absolute URL in[0..n) ("scheme://[userinfo@]host[:port][/path][?query]
 * [#fragment]") into out (cap bytes; cap >= n + URL_NORM_SLACK always suffices):
 *  - scheme lower-cased; userinfo kept as written;
 *  - host: percent-escapes decoded (an escape giving '/', NUL, '%' or anything else not valid
 *    in a reg-name is an error), lower-cased, one trailing dot dropped; empty labels ("a..b")
 *    are an error; an IPv6 literal is written as inet_ntop() writes it, in brackets;
 *  - port: digits with any leading zeros, 1..65535 else an error; the scheme's default (http
 *    80, https 443, ftp 21) is dropped, so ":80", ":" and no port are the same URL;
 *  - path: escapes of unreserved characters (ALPHA DIGIT - . _ ~) decoded, the others
 *    upper-cased, '%' not followed by two hex digits an error ("%2F" stays: it is not '/');
 *    then runs of '/' merged (Apache's MergeSlashes On) and "." and ".." segments resolved
 *    (RFC 3986 5.2.4); an empty path becomes "/" (not for a prefix);
 *  - query: kept, with valid escapes upper-cased; the fragment is dropped.
 * Normalizing the output again gives the same output. Returns 0 and fills *res (may be NULL),
 * or -1 with a static *reason ("bad port", "encoded '/' or NUL in host", ...). Numeric hosts
 * are not checked here (h1_url_parse() does that for requests). */
int url_normalize(const char *in, size_t n, unsigned flags, char *out, size_t cap,
                  struct url_norm *res, const char **reason);

/* Normalize a host alone (reg-name, or an IPv6 literal without brackets when is_ip6) by the
 * host rules above, into out (cap bytes, NUL-terminated; cap >= n + URL_NORM_SLACK suffices).
 * Returns the length, or -1 with *reason. */
long url_host_normalize(const char *in, size_t n, int is_ip6, char *out, size_t cap,
                        const char **reason);

/* url_password_mask() flags */
#define URL_MASK_EVERY 0x1u /* every URL inside s (a query, a Referer, a request line), also
                             * percent-encoded ones ("ftp%3A%2F%2Fu%3Apw%40h") as a form sends
                             * them; without it only the first, raw one */

/* Remove the ":password" of "scheme://user:password@host" from s[0..n) in place, so that it
 * reaches no log, page or key: "ftp://user@host/". s must have a NUL at s[n] (conn_strndup's
 * copies do); the result is NUL-terminated. Returns the new length (n when nothing was
 * removed). Every place that keeps a request's text uses this one function. */
size_t url_password_mask(char *s, size_t n, unsigned flags);

#endif
