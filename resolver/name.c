/*
 * name.c - the resolver's text handling: host name validation and cache keys, address
 * literals, DNS server addresses ("ADDR", "ADDR:PORT", "[V6]:PORT", bare "V6"), status texts
 * and the default configuration.
 *
 * Called by res.c for every lookup and by the config loader (res_server_parse,
 * res_conf_default). Pure functions: no state, no allocation. Input is bounded by the
 * 253-character name limit before any loop over it.
 */
#include "resolver/res_priv.h"

#include <arpa/inet.h>
#include <string.h>

const char *
res_strerror(int status)
{
	switch (status) {
	case RES_OK:
		return "OK";
	case RES_NXDOMAIN:
		return "NXDOMAIN";
	case RES_NODATA:
		return "no address records";
	case RES_SERVFAIL:
		return "SERVFAIL";
	case RES_REFUSED:
		return "REFUSED";
	case RES_TIMEOUT:
		return "timed out";
	case RES_BADNAME:
		return "bad name";
	case RES_UNREACHABLE:
		return "DNS server unreachable";
	case RES_CANCELLED:
		return "cancelled";
	default:
		return "resolver error";
	}
}

void
res_conf_default(struct res_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->nservers = 0;
	c->timeout_ms = 1500;
	c->tries = 2;
	c->ttl_min = 5;
	c->ttl_max = 3600;
	c->neg_ttl = 30;
	c->cache_max = 10000;
}

void
res_ip_to_sockaddr(const struct res_ip *ip, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (ip->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, ip->b, 4);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, ip->b, 16);
	}
}

int
res_name_literal(const char *text, struct res_ip *ip)
{
	char buf[INET6_ADDRSTRLEN + 1];
	size_t len = strnlen(text, sizeof(buf) + 2);

	memset(ip, 0, sizeof(*ip));
	if (len > 0 && text[0] == '[') {
		if (len < 3 || text[len - 1] != ']' || len - 2 >= sizeof(buf))
			return -1;
		memcpy(buf, text + 1, len - 2);
		buf[len - 2] = '\0';
		if (inet_pton(AF_INET6, buf, ip->b) != 1)
			return -1;
		ip->family = AF_INET6;
		return 1;
	}
	if (len < sizeof(buf) && inet_pton(AF_INET6, text, ip->b) == 1) {
		ip->family = AF_INET6;
		return 1;
	}
	if (len < sizeof(buf) && inet_pton(AF_INET, text, ip->b) == 1) {
		ip->family = AF_INET;
		return 1;
	}
	if (memchr(text, ':', len) != NULL || memchr(text, ']', len) != NULL)
		return -1;
	return 0;
}

static int
res_name_char_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int
res_name_key(const char *text, char *out)
{
	size_t len = strnlen(text, RES_NAME_MAX + 2);

	if (len > 0 && text[len - 1] == '.')
		len--; /* one trailing dot: absolute name, same key */
	if (len == 0 || len > RES_NAME_MAX)
		return -1;
	size_t label = 0;
	int numeric = 1; /* the current label is all digits */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
			numeric = 1;
			out[i] = '.';
			continue;
		}
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (!res_name_char_ok(c))
			return -1;
		if (c < '0' || c > '9')
			numeric = 0;
		if (++label > 63)
			return -1;
		out[i] = (char)c;
	}
	/* An all-numeric last label is never a host name (RFC 3696 2): it would be a partial
	 * or inet_aton-style address such as "127.1", which other resolvers read as an IP. */
	if (label == 0 || numeric)
		return -1;
	out[len] = '\0';
	return (int)len;
}

int
res_name_is_localhost(const char *key, size_t len)
{
	static const char lh[] = "localhost";
	size_t n = sizeof(lh) - 1;

	if (len == n)
		return memcmp(key, lh, n) == 0;
	return len > n && key[len - n - 1] == '.' && memcmp(key + len - n, lh, n) == 0;
}

/* Parse a decimal port 1..65535 spanning exactly [p, end). */
static int
res_server_port(const char *p, const char *end, unsigned *port)
{
	unsigned v = 0;

	if (p == end || end - p > 5)
		return -1;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (unsigned)(*p - '0');
	}
	if (v == 0 || v > 65535)
		return -1;
	*port = v;
	return 0;
}

int
res_server_parse(const char *text, struct sockaddr_storage *out, const char **err)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *hend;
	unsigned port = 53;
	size_t len = text ? strnlen(text, 128) : 0;

	if (len == 0) {
		*err = "empty DNS server address";
		return -1;
	}
	if (len >= 128) {
		*err = "DNS server address too long";
		return -1;
	}
	memset(out, 0, sizeof(*out));
	if (text[0] == '[') {
		const char *rb = memchr(text, ']', len);
		if (rb == NULL) {
			*err = "missing ']' in DNS server address";
			return -1;
		}
		if (rb[1] != '\0') {
			if (rb[1] != ':' || res_server_port(rb + 2, text + len, &port) < 0) {
				*err = "bad DNS server port";
				return -1;
			}
		}
		size_t hl = (size_t)(rb - text - 1);
		if (hl == 0 || hl >= sizeof(host))
			goto notip;
		memcpy(host, text + 1, hl);
		host[hl] = '\0';
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
			*err = "DNS server in brackets must be an IPv6 address";
			return -1;
		}
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		return 0;
	}
	const char *colon = memchr(text, ':', len);
	if (colon != NULL && memchr(colon + 1, ':', (size_t)(text + len - colon - 1)) != NULL) {
		/* Two colons or more: a bare IPv6 address, no port. */
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
		if (len >= sizeof(host) || inet_pton(AF_INET6, text, &sin6->sin6_addr) != 1)
			goto notip;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(53);
		return 0;
	}
	hend = colon ? colon : text + len;
	if (colon != NULL && res_server_port(colon + 1, text + len, &port) < 0) {
		*err = "bad DNS server port";
		return -1;
	}
	if ((size_t)(hend - text) >= sizeof(host))
		goto notip;
	memcpy(host, text, (size_t)(hend - text));
	host[hend - text] = '\0';
	struct sockaddr_in *sin = (struct sockaddr_in *)out;
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		goto notip;
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	return 0;
notip:
	*err = "DNS server must be an IP address";
	return -1;
}
