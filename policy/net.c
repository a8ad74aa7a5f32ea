/*
 * net.c - IP addresses and subnets in Apache's notations (mod_authz_host "Require ip",
 * mod_access_compat "Allow from"), and matching client addresses against them.
 *
 * Accepted forms: a full address ("10.1.2.3", "::1"), a partial IPv4 address of one to three
 * octets with an optional trailing dot ("192.168" = 192.168.0.0/16, "10." = 10.0.0.0/8),
 * address/netmask with a contiguous dotted-quad mask ("10.0.0.0/255.0.0.0"), and CIDR
 * ("10.0.0.0/8", "fe80::/10"). IPv4 octets are decimal without leading zeros (inet_aton would
 * read "010" as octal; we refuse the ambiguity). Host bits below the prefix are cleared, so
 * "10.1.2.3/8" is 10.0.0.0/8, as Apache does.
 *
 * Invariant of a parsed struct pol_net: host bits are zero and prefix <= 32 (IPv4) or <= 128.
 * Callers: the ACL builder (acl.c) and the config loader. Pure; no allocation.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "policy/pol.h"

#define POL_NET_TEXT_MAX 64

static const char pol_net_err_form[] = "not an IP address or subnet";
static const char pol_net_err_prefix[] = "bad prefix length";
static const char pol_net_err_mask[] = "bad netmask";
static const char pol_net_err_contig[] = "netmask is not contiguous";

/* Parse a decimal number of at most maxdigits digits, no sign, no leading zero (except "0"),
 * from s up to end. Returns the value or -1. */
static long
pol_net_decimal(const char *s, const char *end, int maxdigits)
{
	long v = 0;
	int nd = 0;

	if (s >= end)
		return -1;
	if (*s == '0' && end - s > 1)
		return -1;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9' || ++nd > maxdigits)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v;
}

/* Parse dotted IPv4 from s to end into a[4]. Returns the number of octets given (1..4), or
 * -1. A trailing dot is allowed only after fewer than four octets; *trailing_dot reports it. */
static int
pol_net_v4_octets(const char *s, const char *end, uint8_t a[4], int *trailing_dot)
{
	int n = 0;

	*trailing_dot = 0;
	memset(a, 0, 4);
	while (s < end) {
		const char *dot = memchr(s, '.', end - s);
		const char *oe = dot ? dot : end;
		long v;

		if (n == 4)
			return -1;
		v = pol_net_decimal(s, oe, 3);
		if (v < 0 || v > 255)
			return -1;
		a[n++] = (uint8_t)v;
		if (!dot)
			break;
		s = dot + 1;
		if (s == end) {
			if (n == 4)
				return -1;
			*trailing_dot = 1;
		}
	}
	return n == 0 ? -1 : n;
}

/* Clear the bits below prefix in addr (len bytes). */
static void
pol_net_clear_host(uint8_t *addr, size_t len, unsigned prefix)
{
	for (size_t i = 0; i < len; i++) {
		unsigned bit = (unsigned)i * 8;

		if (bit >= prefix)
			addr[i] = 0;
		else if (prefix - bit < 8)
			addr[i] &= (uint8_t)(0xffu << (8 - (prefix - bit)));
	}
}

/* A contiguous dotted-quad netmask to a prefix length, or -1. */
static int
pol_net_mask_prefix(const char *s, const char *end, const char **err)
{
	uint8_t m[4];
	int td, n;
	uint32_t v;
	unsigned prefix = 0;

	n = pol_net_v4_octets(s, end, m, &td);
	if (n != 4 || td) {
		*err = pol_net_err_mask;
		return -1;
	}
	v = (uint32_t)m[0] << 24 | (uint32_t)m[1] << 16 | (uint32_t)m[2] << 8 | m[3];
	while (prefix < 32 && (v & (0x80000000u >> prefix)))
		prefix++;
	if (prefix < 32 && (v << prefix) != 0) {
		*err = pol_net_err_contig;
		return -1;
	}
	return (int)prefix;
}

int
pol_net_parse(const char *text, struct pol_net *out, const char **err)
{
	const char *slash, *end;
	char abuf[POL_NET_TEXT_MAX];
	size_t alen;
	long prefix = -1;

	*err = pol_net_err_form;
	if (!text || !*text)
		return -1;
	end = text + strlen(text);
	slash = strchr(text, '/');
	alen = slash ? (size_t)(slash - text) : (size_t)(end - text);
	if (alen == 0 || alen >= sizeof(abuf))
		return -1;
	memcpy(abuf, text, alen);
	abuf[alen] = '\0';
	memset(out, 0, sizeof(*out));

	if (memchr(abuf, ':', alen)) {
		struct in6_addr a6;

		if (inet_pton(AF_INET6, abuf, &a6) != 1)
			return -1;
		out->family = AF_INET6;
		memcpy(out->addr, &a6, 16);
		out->prefix = 128;
		if (slash) {
			prefix = pol_net_decimal(slash + 1, end, 3);
			if (prefix < 0 || prefix > 128) {
				*err = pol_net_err_prefix;
				return -1;
			}
			out->prefix = (unsigned)prefix;
		}
		pol_net_clear_host(out->addr, 16, out->prefix);
		return 0;
	}

	int td, n = pol_net_v4_octets(abuf, abuf + alen, out->addr, &td);

	if (n < 0)
		return -1;
	out->family = AF_INET;
	out->prefix = (unsigned)n * 8;
	if (slash) {
		if (memchr(slash + 1, '.', end - slash - 1)) {
			int p = pol_net_mask_prefix(slash + 1, end, err);

			if (p < 0)
				return -1;
			out->prefix = (unsigned)p;
		} else {
			prefix = pol_net_decimal(slash + 1, end, 2);
			if (prefix < 0 || prefix > 32) {
				*err = pol_net_err_prefix;
				return -1;
			}
			out->prefix = (unsigned)prefix;
		}
	}
	pol_net_clear_host(out->addr, 4, out->prefix);
	return 0;
}

/* Are the first prefix bits of a and b equal? */
static int
pol_net_bits_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned full = prefix / 8, rest = prefix % 8;

	if (memcmp(a, b, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	uint8_t mask = (uint8_t)(0xffu << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

int
pol_net_match(const struct pol_net *net, const struct sockaddr *addr)
{
	static const uint8_t mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (!net || !addr)
		return 0;
	if (addr->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)addr;
		uint8_t a[16];

		if (net->family == AF_INET)
			return pol_net_bits_equal(net->addr, (const uint8_t *)&sin->sin_addr,
			                          net->prefix);
		/* An IPv6 net may name v4-mapped space (::ffff:10.0.0.0/104). */
		memcpy(a, mapped_prefix, 12);
		memcpy(a + 12, &sin->sin_addr, 4);
		return pol_net_bits_equal(net->addr, a, net->prefix);
	}
	if (addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)addr;
		const uint8_t *a = (const uint8_t *)&sin6->sin6_addr;

		if (net->family == AF_INET6)
			return pol_net_bits_equal(net->addr, a, net->prefix);
		if (memcmp(a, mapped_prefix, 12) == 0)
			return pol_net_bits_equal(net->addr, a + 12, net->prefix);
	}
	return 0;
}

char *
pol_net_format(const struct pol_net *net, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (len == 0)
		return buf;
	if (!inet_ntop(net->family == AF_INET6 ? AF_INET6 : AF_INET, net->addr, a, sizeof(a)))
		snprintf(a, sizeof(a), "?");
	snprintf(buf, len, "%s/%u", a, net->prefix);
	return buf;
}
