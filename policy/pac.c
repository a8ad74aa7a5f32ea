/*
 * pac.c - pol_pac_generate(): a proxy auto-config file (FindProxyForURL) from the policy, for
 * GET /proxy.pac and /wpad.dat. Plain ES3 JavaScript using only the standard PAC functions
 * isPlainHostName, dnsDomainIs and isInNet (the latter only on IPv4 literals, so browsers
 * never resolve a host to evaluate the file).
 *
 * Shape of the function, in order:
 *   1. normalise the host (lower case, no brackets, no trailing dot);
 *   2. hosts the DIRECT rules below would let past a ProxyBlock rule go to the proxy, which
 *      refuses them with its 403 page: ProxyBlock words (substring), `*`, blocked names inside
 *      NoProxy/ProxyDomain domains or equal to NoProxy host names, blocked subnets overlapping
 *      NoProxy subnets; no other ProxyBlock rule is copied (blocking is the proxy's job);
 *   3. DIRECT for plain host names, the ProxyDomain domain, NoProxy domains and host names:
 *      up to POL_PAC_INLINE of them as inline string tests, more as an object walked by label
 *      suffix (O(labels) whatever the count);
 *   4. DIRECT for IPv4 literals in NoProxy subnets (isInNet) and IPv6 literals in IPv6 NoProxy
 *      subnets (gh_v6/gh_in6 helpers);
 *   5. otherwise the PacProxy list rotated by a stable hash of the host, then DIRECT when
 *      PacFallback direct.
 * The output depends only on the policy and the arguments (stable ETag). Config file names and
 * line numbers are not written (the file is served to every client).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/pol_rules.h"

#define POL_PAC_INLINE 16
#define POL_PAC_PROXY_MAX 300

static const char pol_pac_err_nomem[] = "out of memory";
static const char pol_pac_err_policy[] = "no compiled policy";
static const char pol_pac_err_none[] = "no PAC proxy given (PacProxy host:port)";
static const char pol_pac_err_proxy[] =
	"bad PAC proxy: expected host:port (letters, digits, '-', '_', '.', IPv6 in brackets)";

struct pol_pac_buf {
	char *p;
	size_t len, cap;
	int oom;
};

__attribute__((format(printf, 2, 3)))
static void
pol_pac_printf(struct pol_pac_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (int tries = 0; tries < 2; tries++) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if (b->p && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
}

static int
pol_pac_proxy_ok(const char *s)
{
	size_t len;

	if (strncasecmp(s, "https://", 8) == 0) /* an HTTPS proxy (issue 13): "HTTPS host:port" */
		s += 8;
	len = strlen(s);
	const char *colon = strrchr(s, ':');

	if (len == 0 || len > POL_PAC_PROXY_MAX || !colon || colon == s || !colon[1])
		return 0;
	for (const char *c = colon + 1; *c; c++) {
		if (*c < '0' || *c > '9')
			return 0;
	}
	for (const char *c = s; c < colon; c++) {
		if (!isalnum((unsigned char)*c) && !strchr("-_.:[]", *c))
			return 0;
	}
	return 1;
}

/* Is some suffix of name (name itself included) a DIRECT domain of the PAC: a NoProxy Domain
 * or the ProxyDomain? Or is name itself a NoProxy entry? */
static int
pol_pac_in_direct(const struct pol *p, const char *name, size_t len)
{
	for (size_t off = 0; off < len;) {
		uint64_t h = pol_hash_bytes(POL_HASH_INIT, name + off, len - off);
		const struct pol_name *e = pol_nameset_find(&p->np_names, h, name + off, len - off);
		if (e && ((e->flags & POL_NF_SUB) || (off == 0 && (e->flags & POL_NF_SELF))))
			return 1;
		if (p->domain && p->domain_len - 1 == len - off &&
		    memcmp(p->domain + 1, name + off, len - off) == 0)
			return 1;
		const char *dot = memchr(name + off, '.', len - off);
		if (!dot)
			break;
		off = (size_t)(dot - name) + 1;
	}
	return 0;
}

/* Does range r overlap one of the (compiled, disjoint, sorted) ranges of set? */
static int
pol_pac_overlaps(const struct pol_ranges *set, const struct pol_range *r)
{
	size_t lo = 0, hi = set->n;

	if (pol_ranges_find(set, &r->lo))
		return 1;
	/* First range starting after r->lo: does it start before r ends? */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (pol_key_cmp(&set->v[mid].lo, &r->lo) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < set->n && pol_key_cmp(&set->v[lo].lo, &r->hi) <= 0;
}

/* A JS test of h against net: isInNet for IPv4 literals, gh_in6 for IPv6 ones (gh_v6 gives
 * null for dotted forms such as ::ffff:10.1.2.3, which then match no IPv6 net). */
static void
pol_pac_net_test(struct pol_pac_buf *b, const struct pol_net *net, const char *ret)
{
	if (net->family == AF_INET) {
		char a[INET_ADDRSTRLEN];
		uint32_t m = net->prefix ? 0xffffffffu << (32 - net->prefix) : 0;

		inet_ntop(AF_INET, net->addr, a, sizeof(a));
		pol_pac_printf(b, "\tif (v4 && isInNet(h, \"%s\", \"%u.%u.%u.%u\")) return %s;\n",
		               a, m >> 24, (m >> 16) & 255, (m >> 8) & 255, m & 255, ret);
		return;
	}
	pol_pac_printf(b, "\tif (a6 && gh_in6(a6, [");
	for (int i = 0; i < 8; i++)
		pol_pac_printf(b, "%s%u", i ? ", " : "",
		               (unsigned)net->addr[2 * i] << 8 | net->addr[2 * i + 1]);
	pol_pac_printf(b, "], %u)) return %s;\n", net->prefix, ret);
}

/* One name test (inline) or a map entry. flags: POL_NF_SELF, POL_NF_SUB. */
static void
pol_pac_name_test(struct pol_pac_buf *b, const char *key, unsigned flags, const char *ret)
{
	if ((flags & POL_NF_SELF) && (flags & POL_NF_SUB))
		pol_pac_printf(b, "\tif (h == \"%s\" || dnsDomainIs(h, \".%s\")) return %s;\n", key,
		               key, ret);
	else if (flags & POL_NF_SUB)
		pol_pac_printf(b, "\tif (dnsDomainIs(h, \".%s\")) return %s;\n", key, ret);
	else
		pol_pac_printf(b, "\tif (h == \"%s\") return %s;\n", key, ret);
}

static const char pol_pac_helpers[] =
	"// Stable spread over the proxies by a hash of the host; the others follow as failover.\n"
	"function gh_proxy(h) {\n"
	"\tvar x = 0;\n"
	"\tfor (var i = 0; i < h.length; i++)\n"
	"\t\tx = (x * 31 + h.charCodeAt(i)) % 1000003;\n"
	"\treturn GH_PROXIES[x % GH_PROXIES.length];\n"
	"}\n"
	"// Is h, or a domain above it, in m? m[name]: 1 the name, 2 the names below it, 3 both.\n"
	"function gh_in(m, h) {\n"
	"\tvar s = h, below = 0;\n"
	"\tfor (var i = 0; i < 128; i++) {\n"
	"\t\tif (m.hasOwnProperty(s) && (m[s] & (below ? 2 : 1)))\n"
	"\t\t\treturn true;\n"
	"\t\tvar d = s.indexOf(\".\");\n"
	"\t\tif (d < 0)\n"
	"\t\t\treturn false;\n"
	"\t\ts = s.substring(d + 1);\n"
	"\t\tbelow = 1;\n"
	"\t}\n"
	"\treturn false;\n"
	"}\n";

static const char pol_pac_v6_helpers[] =
	"// An IPv6 literal as eight numbers, or null.\n"
	"function gh_v6(h) {\n"
	"\tvar z = h.indexOf(\"%\");\n"
	"\tif (z >= 0)\n"
	"\t\th = h.substring(0, z);\n"
	"\tvar parts = h.split(\"::\");\n"
	"\tif (parts.length > 2)\n"
	"\t\treturn null;\n"
	"\tvar head = parts[0] == \"\" ? [] : parts[0].split(\":\");\n"
	"\tvar tail = parts.length == 2 && parts[1] != \"\" ? parts[1].split(\":\") : [];\n"
	"\tvar n = head.length + tail.length, a = [], i;\n"
	"\tif (parts.length == 1 ? n != 8 : n > 7)\n"
	"\t\treturn null;\n"
	"\tfor (i = 0; i < head.length; i++)\n"
	"\t\ta.push(head[i]);\n"
	"\tfor (i = n; i < 8; i++)\n"
	"\t\ta.push(\"0\");\n"
	"\tfor (i = 0; i < tail.length; i++)\n"
	"\t\ta.push(tail[i]);\n"
	"\tfor (i = 0; i < 8; i++) {\n"
	"\t\tif (!/^[0-9a-f]{1,4}$/.test(a[i]))\n"
	"\t\t\treturn null;\n"
	"\t\ta[i] = parseInt(a[i], 16);\n"
	"\t}\n"
	"\treturn a;\n"
	"}\n"
	"// Do the first bits of address a equal those of net n?\n"
	"function gh_in6(a, n, bits) {\n"
	"\tfor (var i = 0; i < 8 && bits > 0; i++, bits -= 16) {\n"
	"\t\tvar m = bits >= 16 ? 65535 : (65535 << (16 - bits)) & 65535;\n"
	"\t\tif ((a[i] & m) != n[i])\n"
	"\t\t\treturn false;\n"
	"\t}\n"
	"\treturn true;\n"
	"}\n";

/* Emit the ProxyBlock exceptions (step 2). */
static void
pol_pac_blocked(struct pol_pac_buf *b, const struct pol *p, int direct_names)
{
	size_t nex = 0;

	if (p->nwords) {
		pol_pac_printf(b, "\t// ProxyBlock words: to the proxy, which refuses them\n");
		pol_pac_printf(b, "\tfor (var w = 0; w < GH_WORDS.length; w++)\n"
		               "\t\tif (h.indexOf(GH_WORDS[w]) >= 0) return gh_proxy(h);\n");
	}
	if (direct_names) {
		for (size_t i = 0; i < p->block_names.n; i++) {
			const struct pol_name *e = &p->block_names.v[i];

			nex += pol_pac_in_direct(p, e->key, e->len);
		}
	}
	if (nex > 0) {
		pol_pac_printf(b, "\t// ProxyBlock names inside the DIRECT domains below\n");
		if (nex > POL_PAC_INLINE) {
			pol_pac_printf(b, "\tif (gh_in(GH_BLOCKED, h)) return gh_proxy(h);\n");
		} else {
			for (size_t i = 0; i < p->block_names.n; i++) {
				const struct pol_name *e = &p->block_names.v[i];

				if (pol_pac_in_direct(p, e->key, e->len))
					pol_pac_name_test(b, e->key, e->flags, "gh_proxy(h)");
			}
		}
	}
	int header = 0;
	for (size_t i = 0; i < p->block_nets.nall; i++) {
		const struct pol_range *r = &p->block_nets.all[i];

		if (!pol_pac_overlaps(&p->np_nets, r))
			continue;
		if (!header++)
			pol_pac_printf(b, "\t// ProxyBlock subnets overlapping DIRECT subnets\n");
		pol_pac_net_test(b, &r->net, "gh_proxy(h)");
	}
}

/* Emit a JS object literal of names: value 1 (itself), 2 (below), 3 (both). */
static void
pol_pac_map_entry(struct pol_pac_buf *b, int *first, const char *key, unsigned flags)
{
	unsigned v = ((flags & POL_NF_SELF) ? 1u : 0u) | ((flags & POL_NF_SUB) ? 2u : 0u);

	pol_pac_printf(b, "%s\n\t\"%s\": %u", *first ? "" : ",", key, v);
	*first = 0;
}

int
pol_pac_generate(const struct pol *p, const char *const *proxies, size_t nproxies,
                 int fallback_direct, char **out, size_t *outlen, const char **err)
{
	struct pol_pac_buf b = { 0 };
	size_t ndirect;
	int first;

	*out = NULL;
	if (outlen)
		*outlen = 0;
	if (!p || p->magic != POL_MAGIC || !p->compiled) {
		*err = pol_pac_err_policy;
		return -1;
	}
	if (nproxies == 0 || !proxies) {
		*err = pol_pac_err_none;
		return -1;
	}
	for (size_t i = 0; i < nproxies; i++) {
		if (!proxies[i] || !pol_pac_proxy_ok(proxies[i])) {
			*err = pol_pac_err_proxy;
			return -1;
		}
	}
	ndirect = p->np_names.n + (p->domain ? 1 : 0);

	pol_pac_printf(&b, "// Proxy auto-config generated by Gatehouse from its policy.\n"
	               "// Plain host names, the intranet domains and NoProxy hosts go DIRECT;\n"
	               "// IP-literal hosts are tested against the NoProxy subnets; everything\n"
	               "// else goes to the proxies.\n");
	pol_pac_printf(&b, "var GH_PROXIES = [");
	/* HTTPS proxies come first, PROXY ones after as the fallback (issue 13); within each
	 * kind, entry k starts at the kind's k-th proxy. */
	size_t nhttps = 0;

	for (size_t i = 0; i < nproxies; i++)
		nhttps += strncasecmp(proxies[i], "https://", 8) == 0;
	for (size_t k = 0; k < nproxies; k++) {
		int sep = 0;

		pol_pac_printf(&b, "%s\n\t\"", k ? "," : "");
		for (int tls = 1; tls >= 0; tls--) {
			size_t nkind = tls ? nhttps : nproxies - nhttps;

			for (size_t j = 0; j < nkind; j++) {
				size_t want = (k + j) % nkind, seen = 0;

				for (size_t i = 0; i < nproxies; i++) {
					const char *px = proxies[i];

					if ((strncasecmp(px, "https://", 8) == 0) != tls)
						continue;
					if (seen++ != want)
						continue;
					pol_pac_printf(&b, "%s%s %s", sep++ ? "; " : "",
					               tls ? "HTTPS" : "PROXY", px + (tls ? 8 : 0));
					break;
				}
			}
		}
		pol_pac_printf(&b, "%s\"", fallback_direct ? "; DIRECT" : "");
	}
	pol_pac_printf(&b, "\n];\n");
	if (p->nwords && !p->block_all) {
		pol_pac_printf(&b, "var GH_WORDS = [");
		for (size_t i = 0; i < p->nwords; i++)
			pol_pac_printf(&b, "%s\"%s\"", i ? ", " : "", p->words[i].w);
		pol_pac_printf(&b, "];\n");
	}
	if (!p->block_all && ndirect > 0) {
		size_t nex = 0;

		for (size_t i = 0; i < p->block_names.n; i++) {
			const struct pol_name *e = &p->block_names.v[i];

			nex += pol_pac_in_direct(p, e->key, e->len);
		}
		if (nex > POL_PAC_INLINE) {
			first = 1;
			pol_pac_printf(&b, "var GH_BLOCKED = {");
			for (size_t i = 0; i < p->block_names.n; i++) {
				const struct pol_name *e = &p->block_names.v[i];

				if (pol_pac_in_direct(p, e->key, e->len))
					pol_pac_map_entry(&b, &first, e->key, e->flags);
			}
			pol_pac_printf(&b, "\n};\n");
		}
	}
	if (!p->block_all && ndirect > POL_PAC_INLINE) {
		first = 1;
		pol_pac_printf(&b, "var GH_DIRECT = {");
		if (p->domain)
			pol_pac_map_entry(&b, &first, p->domain + 1, POL_NF_SELF | POL_NF_SUB);
		for (size_t i = 0; i < p->np_names.n; i++)
			pol_pac_map_entry(&b, &first, p->np_names.v[i].key, p->np_names.v[i].flags);
		pol_pac_printf(&b, "\n};\n");
	}
	pol_pac_printf(&b, "%s", pol_pac_helpers);
	if (!p->block_all && p->np_nets.nall)
		pol_pac_printf(&b, "%s", pol_pac_v6_helpers);

	pol_pac_printf(&b, "function FindProxyForURL(url, host) {\n"
	               "\tvar h = host.toLowerCase();\n"
	               "\tif (h.charAt(0) == \"[\" && h.charAt(h.length - 1) == \"]\")\n"
	               "\t\th = h.substring(1, h.length - 1);\n"
	               "\tif (h.length > 1 && h.charAt(h.length - 1) == \".\")\n"
	               "\t\th = h.substring(0, h.length - 1);\n");
	if (p->block_all) {
		pol_pac_printf(&b, "\t// ProxyBlock *: the proxy refuses everything\n"
		               "\treturn gh_proxy(h);\n}\n");
		goto done;
	}
	pol_pac_printf(&b, "\tvar v4 = /^[0-9]{1,3}(\\.[0-9]{1,3}){3}$/.test(h);\n"
	               "\tvar a6 = h.indexOf(\":\") >= 0 ? %s : null;\n",
	               p->np_nets.nall ? "gh_v6(h)" : "null");
	pol_pac_blocked(&b, p, ndirect > 0);
	pol_pac_printf(&b, "\t// Plain host names\n"
	               "\tif (h.indexOf(\":\") < 0 && isPlainHostName(h)) return \"DIRECT\";\n");
	if (ndirect > POL_PAC_INLINE) {
		pol_pac_printf(&b, "\t// ProxyDomain and NoProxy names\n"
		               "\tif (gh_in(GH_DIRECT, h)) return \"DIRECT\";\n");
	} else {
		if (p->domain) {
			pol_pac_printf(&b, "\t// ProxyDomain\n");
			pol_pac_name_test(&b, p->domain + 1, POL_NF_SELF | POL_NF_SUB,
			                  "\"DIRECT\"");
		}
		if (p->np_names.n)
			pol_pac_printf(&b, "\t// NoProxy domains and host names\n");
		for (size_t i = 0; i < p->np_names.n; i++)
			pol_pac_name_test(&b, p->np_names.v[i].key, p->np_names.v[i].flags,
			                  "\"DIRECT\"");
	}
	if (p->np_nets.nall) {
		pol_pac_printf(&b, "\t// NoProxy subnets and addresses, IP-literal hosts only\n");
		for (size_t i = 0; i < p->np_nets.nall; i++)
			pol_pac_net_test(&b, &p->np_nets.all[i].net, "\"DIRECT\"");
	}
	pol_pac_printf(&b, "\treturn gh_proxy(h);\n}\n");
done:
	if (b.oom) {
		free(b.p);
		*err = pol_pac_err_nomem;
		return -1;
	}
	*out = b.p;
	if (outlen)
		*outlen = b.len;
	return 0;
}
