/*
 * route.c - builders and name matching for routing: NoProxy (Domain, SubNet, IpAddr, Hostname),
 * ProxyRemote/ProxyRemoteMatch with their parent proxies and credentials, ProxyDomain and
 * ProxyRemoteFallback. Semantics are documented in pol.h.
 *
 * NoProxy names share one name set: a Domain (".corp.example") is the key "corp.example" with
 * flags SELF|SUB (the domain itself and every name below it), a Hostname is SELF|RESOLVE
 * (exact, and resolved by the daemon). A host is tested by looking up each of its label
 * suffixes: O(labels). Subnets and addresses are ranges (sets.c).
 *
 * Parents are deduplicated by (host, port, credentials) so that every line naming the same
 * proxy yields the same struct pol_parent, whose id indexes the daemon's health table.
 *
 * Callers: the config loader (builders), decide.c and compile.c (matching).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/url.h"
#include "policy/pol_rules.h"

static const char pol_err_nomem[] = "out of memory";
static const char pol_err_state[] = "the policy is already compiled";
static const char pol_err_empty[] = "empty argument";
static const char pol_err_np_star[] =
	"'*' is not a NoProxy form (Domain .example.com, SubNet, IP address or host name)";
static const char pol_err_np_addr[] = "not a valid IP address or subnet";
static const char pol_err_np_name[] =
	"not a .domain, subnet, IP address or host name (letters, digits, '-', '_' and dots "
	"between labels of at most 63 characters)";
static const char pol_err_remote[] = "the remote server must be http://host[:port] or "
	"https://host[:port]";
static const char pol_err_remote_path[] =
	"the remote server must be http://host[:port] or https://host[:port] with no path";
static const char pol_err_remote_host[] = "bad host name in the remote server";
static const char pol_err_remote_port[] = "bad port in the remote server (1-65535)";
static const char pol_err_creds[] = "credentials must be user:password";
static const char pol_err_creds_twice[] =
	"credentials given twice (in the remote server URL and as a third argument)";
static const char pol_err_creds_pct[] = "bad %-escape in the remote server's credentials";
static const char pol_err_scheme[] =
	"the match must be *, a scheme (http, ftp, https) or a URL prefix (http://example.com/)";
static const char pol_err_regex[] = "bad regular expression";
static const char pol_err_regex_long[] = "regular expression too long";
static const char pol_err_domain[] =
	"the domain must start with a dot and be a valid name (.corp.example)";

#define POL_CREDS_MAX 512

static int
pol_route_check(struct pol *p, const char *arg, const char **err)
{
	if (!p || p->magic != POL_MAGIC || p->compiled) {
		*err = pol_err_state;
		return -1;
	}
	if (!arg || !*arg) {
		*err = pol_err_empty;
		return -1;
	}
	return 0;
}

/* Only digits and dots? */
static int
pol_route_numeric(const char *s)
{
	for (; *s; s++) {
		if (*s != '.' && (*s < '0' || *s > '9'))
			return 0;
	}
	return 1;
}

int
pol_noproxy_add(struct pol *p, const char *entry, const char *where, const char **err)
{
	char canon[POL_NAME_MAX + 1];
	struct pol_net net;
	const char *why;
	int lead, len;

	if (pol_route_check(p, entry, err) != 0)
		return -1;
	if (strchr(entry, '*')) {
		*err = pol_err_np_star;
		return -1;
	}
	const char *w = where ? pol_arena_strndup(&p->arena, where, strlen(where)) : "";
	if (!p->np_where && w && *w)
		p->np_where = w;
	const char *shown = pol_arena_strndup(&p->arena, entry, strlen(entry));
	const struct pol_why *desc = pol_desc(p, "NoProxy", entry, where);
	if (!w || !shown || !desc)
		goto nomem;
	if (pol_net_parse(entry, &net, &why) == 0) {
		if (pol_ranges_add(&p->np_nets, &net, desc, w, shown) != 0)
			goto nomem;
		return 0;
	}
	if (strchr(entry, ':') || strchr(entry, '/') || pol_route_numeric(entry)) {
		*err = pol_err_np_addr;
		return -1;
	}
	len = pol_name_canon(entry, 1, canon, &lead);
	if (len < 0) {
		*err = pol_err_np_name;
		return -1;
	}
	unsigned flags = lead ? (POL_NF_SELF | POL_NF_SUB) : (POL_NF_SELF | POL_NF_RESOLVE);
	char *key = pol_arena_strndup(&p->arena, canon, (size_t)len);
	if (!key)
		goto nomem;
	const struct pol_name *old = pol_nameset_find(&p->np_names,
	                                              pol_hash_bytes(POL_HASH_INIT, key,
	                                                             (size_t)len),
	                                              key, (size_t)len);
	unsigned before = old ? old->flags : 0;
	struct pol_name *e;
	int r = pol_nameset_add(&p->np_names, key, (size_t)len, flags, &e);
	if (r < 0)
		goto nomem;
	if (r == 0) {
		e->where = w;
		e->shown = shown;
	}
	if (!e->desc)
		e->desc = desc;
	if (!e->desc_sub && lead)
		e->desc_sub = desc;
	if (r == 1 && (before & flags & (POL_NF_SELF | POL_NF_SUB)) ==
	              (flags & (POL_NF_SELF | POL_NF_SUB))) {
		if (pol_warn_add(p, "%s: NoProxy %s adds nothing to %s", where ? where : "-", entry,
		                 ((before & POL_NF_SUB) ? e->desc_sub : e->desc)->full) != 0)
			goto nomem;
	}
	return 0;
nomem:
	*err = pol_err_nomem;
	return -1;
}

const char *
pol_noproxy_name(const struct pol *p, size_t i)
{
	if (!p || p->magic != POL_MAGIC || !p->compiled || i >= p->nnp_resolve)
		return NULL;
	return p->np_resolve[i];
}

const struct pol_why *
pol_noproxy_match_name(const struct pol *p, const struct pol_host *hv)
{
	const struct pol_nameset *s = &p->np_names;

	if (s->n == 0)
		return NULL;
	for (unsigned a = 0; a < hv->nlabels; a++) {
		unsigned k = hv->nlabels - a;

		if (k > s->max_labels || !(s->label_bits & (1ull << (k < 63 ? k : 63))))
			continue;
		size_t off = hv->lab[a], len = hv->len - off;
		uint64_t h = pol_hash_bytes(POL_HASH_INIT, hv->name + off, len);
		const struct pol_name *e = pol_nameset_find(s, h, hv->name + off, len);
		if (!e)
			continue;
		if (a == 0 && (e->flags & POL_NF_SELF))
			return e->desc;
		if (a > 0 && (e->flags & POL_NF_SUB))
			return e->desc_sub;
	}
	return NULL;
}

/* ---- parents ---- */

static int
pol_route_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Percent-decode s[0..n) into out (POL_CREDS_MAX bytes). Returns the length or -1. */
static int
pol_route_pct_decode(const char *s, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (o + 1 >= POL_CREDS_MAX)
			return -1;
		if (s[i] == '%') {
			if (i + 2 >= n)
				return -1;
			int hi = pol_route_hex((unsigned char)s[i + 1]);
			int lo = pol_route_hex((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return (int)o;
}

/* Parse "http[s]://[user:pass@]host[:port][/]" and find or make its parent. An https parent
 * is reached over TLS (port 443 unless given); the same host and port over http is another
 * parent with its own health key ("https://host:port" beside "host:port"): a TLS failure says
 * nothing of the plain service, and a reload that turns one into the other starts afresh. */
static int
pol_parent_parse(struct pol *p, const char *remote, const char *userpass, const char *where,
                 struct pol_parent **out, const char **err)
{
	char host[POL_NAME_MAX + 1], creds[POL_CREDS_MAX];
	const char *a, *aend, *at, *hs, *he, *ps = NULL;
	const char *auth = NULL;
	int credlen = -1;
	unsigned long port = 80;
	int tls = 0;

	if (strncasecmp(remote, "https://", 8) == 0) {
		tls = 1;
		port = 443;
		a = remote + 8;
	} else if (strncasecmp(remote, "http://", 7) == 0) {
		a = remote + 7;
	} else {
		*err = pol_err_remote;
		return -1;
	}
	aend = a + strcspn(a, "/?#");
	if (*aend && strcmp(aend, "/") != 0) {
		*err = pol_err_remote_path;
		return -1;
	}
	at = NULL;
	for (const char *s = a; s < aend; s++) {
		if (*s == '@')
			at = s;
	}
	hs = at ? at + 1 : a;
	if (hs < aend && *hs == '[') {
		const char *rb = memchr(hs, ']', (size_t)(aend - hs));
		struct in6_addr a6;

		if (!rb || (size_t)(rb - hs - 1) >= sizeof(host) || rb == hs + 1) {
			*err = pol_err_remote_host;
			return -1;
		}
		memcpy(host, hs + 1, (size_t)(rb - hs - 1));
		host[rb - hs - 1] = '\0';
		if (inet_pton(AF_INET6, host, &a6) != 1) {
			*err = pol_err_remote_host;
			return -1;
		}
		he = rb + 1;
		if (he < aend && *he != ':') {
			*err = pol_err_remote_host;
			return -1;
		}
		for (char *c = host; *c; c++)
			*c = (char)tolower((unsigned char)*c);
	} else {
		char tmp[POL_NAME_MAX + 2];
		int lead;

		he = memchr(hs, ':', (size_t)(aend - hs));
		if (!he)
			he = aend;
		if (he == hs || (size_t)(he - hs) >= sizeof(tmp)) {
			*err = pol_err_remote_host;
			return -1;
		}
		memcpy(tmp, hs, (size_t)(he - hs));
		tmp[he - hs] = '\0';
		if (pol_name_canon(tmp, 0, host, &lead) < 0) {
			*err = pol_err_remote_host;
			return -1;
		}
	}
	if (he < aend) {   /* *he == ':' */
		char *end;

		ps = he + 1;
		if (ps == aend || aend - ps > 5 || !isdigit((unsigned char)*ps)) {
			*err = pol_err_remote_port;
			return -1;
		}
		port = strtoul(ps, &end, 10);
		if (end != aend || port == 0 || port > 65535) {
			*err = pol_err_remote_port;
			return -1;
		}
	}
	if (at) {
		if (userpass) {
			*err = pol_err_creds_twice;
			return -1;
		}
		credlen = pol_route_pct_decode(a, (size_t)(at - a), creds);
		if (credlen < 0) {
			*err = pol_err_creds_pct;
			return -1;
		}
	} else if (userpass) {
		size_t n = strlen(userpass);

		if (n >= sizeof(creds)) {
			*err = pol_err_creds;
			return -1;
		}
		memcpy(creds, userpass, n + 1);
		credlen = (int)n;
	}
	if (credlen >= 0) {
		char b64[4 * ((POL_CREDS_MAX + 2) / 3) + 1];

		if (!memchr(creds, ':', (size_t)credlen)) {
			*err = pol_err_creds;
			return -1;
		}
		pol_base64(creds, (size_t)credlen, b64, sizeof(b64));
		auth = pol_arena_printf(&p->arena, "Basic %s", b64);
		if (!auth)
			goto nomem;
	}
	for (size_t i = 0; i < p->nparents; i++) {
		struct pol_parent *q = p->parents[i];

		if (q->port == port && q->tls == tls && strcmp(q->host, host) == 0 &&
		    ((!q->auth && !auth) || (q->auth && auth && strcmp(q->auth, auth) == 0))) {
			*out = q;
			return 0;
		}
	}
	if (p->nparents == p->capparents) {
		size_t cap = p->capparents ? p->capparents * 2 : 4;
		struct pol_parent **v = realloc(p->parents, cap * sizeof(*v));

		if (!v)
			goto nomem;
		p->parents = v;
		p->capparents = cap;
	}
	struct pol_parent *q = pol_arena_alloc(&p->arena, sizeof(*q));
	if (!q)
		goto nomem;
	q->id = (unsigned)p->nparents;
	q->host = pol_arena_strndup(&p->arena, host, strlen(host));
	q->port = (unsigned)port;
	q->key = pol_arena_printf(&p->arena, strchr(host, ':') ? "%s[%s]:%lu" : "%s%s:%lu",
	                          tls ? "https://" : "", host, port);
	q->tls = tls;
	q->auth = auth;
	q->where = where ? pol_arena_strndup(&p->arena, where, strlen(where)) : "";
	if (!q->host || !q->key || !q->where)
		goto nomem;
	p->parents[p->nparents++] = q;
	*out = q;
	return 0;
nomem:
	*err = pol_err_nomem;
	return -1;
}

static struct pol_remote *
pol_remote_slot(struct pol *p)
{
	if (p->nremotes == p->capremotes) {
		size_t cap = p->capremotes ? p->capremotes * 2 : 4;
		struct pol_remote *v = realloc(p->remotes, cap * sizeof(*v));

		if (!v)
			return NULL;
		p->remotes = v;
		p->capremotes = cap;
	}
	struct pol_remote *r = &p->remotes[p->nremotes];
	memset(r, 0, sizeof(*r));
	return r;
}

/* Validate a scheme name: a letter, then letters, digits, '+', '-', '.'. */
static int
pol_route_scheme_ok(const char *s)
{
	if (!isalpha((unsigned char)*s))
		return 0;
	for (; *s; s++) {
		if (!isalnum((unsigned char)*s) && *s != '+' && *s != '-' && *s != '.')
			return 0;
	}
	return 1;
}

int
pol_remote_add(struct pol *p, const char *match, const char *remote, const char *userpass,
               const char *where, const char **err)
{
	struct pol_parent *parent;
	struct pol_remote *r;
	enum pol_rkind kind;
	size_t icase = 0, mlen;

	if (pol_route_check(p, match, err) != 0 || pol_route_check(p, remote, err) != 0)
		return -1;
	mlen = strlen(match);
	if (strcmp(match, "*") == 0) {
		kind = POL_RK_ALL;
	} else if (strchr(match, ':')) {
		const char *css = strstr(match, "://");

		kind = POL_RK_PREFIX;
		if (css) {
			const char *ae = css + 3 + strcspn(css + 3, "/?#");
			icase = (size_t)(ae - match);
		} else {
			icase = (size_t)(strchr(match, ':') - match) + 1;
		}
	} else if (pol_route_scheme_ok(match)) {
		kind = POL_RK_SCHEME;
	} else {
		*err = pol_err_scheme;
		return -1;
	}
	if (pol_parent_parse(p, remote, userpass, where, &parent, err) != 0)
		return -1;
	r = pol_remote_slot(p);
	if (!r)
		goto nomem;
	char *pat;
	if (kind == POL_RK_PREFIX && strstr(match, "://")) {
		/* normalized as requests are (daemon/url.h): ":80", "Host.", "//" and "%73" are
		 * the same prefix as without them */
		char *norm = malloc(mlen + URL_NORM_SLACK);
		const char *why = NULL;
		struct url_norm un;

		if (!norm)
			goto nomem;
		if (url_normalize(match, mlen, URL_N_PREFIX, norm, mlen + URL_NORM_SLACK, &un,
		                  &why) != 0) {
			free(norm);
			*err = why;
			return -1;
		}
		pat = pol_arena_strndup(&p->arena, norm, un.len);
		mlen = un.len;
		icase = un.path_off;
		/* "http://origin.test." stays a prefix of longer names (a partial host is kept as
		 * written), but requests have their trailing dot dropped: it must also name the
		 * host origin.test itself, or it matches none of its requests */
		r->host_dot = un.len == un.path_off && un.host_len > 1 && !un.host_is_ip6 &&
		              norm[un.len - 1] == '.' && un.host_off + un.host_len == un.len &&
		              memchr(norm, '@', un.len) == NULL;
		free(norm);
	} else {
		pat = pol_arena_strndup(&p->arena, match, mlen);
	}
	if (!pat)
		goto nomem;
	if (kind == POL_RK_SCHEME) {
		for (char *c = pat; *c; c++)
			*c = (char)tolower((unsigned char)*c);
	}
	r->kind = kind;
	r->pat = pat;
	r->pat_len = mlen;
	r->icase_len = icase;
	r->parent = parent;
	r->desc = pol_why_new(p, where, "ProxyRemote %s %s%s", match,
	                      parent->tls ? "" : "http://", parent->key);
	if (!r->desc)
		goto nomem;
	r->where = where ? pol_arena_strndup(&p->arena, where, strlen(where)) : "";
	if (!r->where)
		goto nomem;
	p->nremotes++;
	return 0;
nomem:
	*err = pol_err_nomem;
	return -1;
}

int
pol_remote_match_add(struct pol *p, const char *regex, const char *remote,
                     const char *userpass, const char *where, const char **err)
{
	struct pol_parent *parent;
	struct pol_remote *r;
	regex_t re;

	if (pol_route_check(p, regex, err) != 0 || pol_route_check(p, remote, err) != 0)
		return -1;
	if (strlen(regex) > POL_REGEX_MAX) {
		*err = pol_err_regex_long;
		return -1;
	}
	if (regcomp(&re, regex, REG_EXTENDED | REG_ICASE | REG_NOSUB) != 0) {
		*err = pol_err_regex;
		return -1;
	}
	if (pol_parent_parse(p, remote, userpass, where, &parent, err) != 0) {
		regfree(&re);
		return -1;
	}
	r = pol_remote_slot(p);
	if (!r) {
		regfree(&re);
		goto nomem;
	}
	r->kind = POL_RK_REGEX;
	r->re = re;
	r->have_re = 1;
	r->parent = parent;
	r->pat = pol_arena_strndup(&p->arena, regex, strlen(regex));
	r->pat_len = strlen(regex);
	r->desc = pol_why_new(p, where, "ProxyRemoteMatch %s %s%s", regex,
	                      parent->tls ? "" : "http://", parent->key);
	r->where = where ? pol_arena_strndup(&p->arena, where, strlen(where)) : "";
	p->nremotes++;   /* counted now so that pol_free releases the regex */
	if (!r->pat || !r->desc || !r->where)
		goto nomem;
	return 0;
nomem:
	*err = pol_err_nomem;
	return -1;
}

int
pol_domain_set(struct pol *p, const char *domain, const char *where, const char **err)
{
	char canon[POL_NAME_MAX + 1];
	int lead, len;

	if (pol_route_check(p, domain, err) != 0)
		return -1;
	len = pol_name_canon(domain, 1, canon, &lead);
	if (len < 0 || !lead || pol_route_numeric(canon)) {
		*err = pol_err_domain;
		return -1;
	}
	char *d = pol_arena_printf(&p->arena, ".%s", canon);
	const struct pol_why *desc = pol_desc(p, "ProxyDomain", domain, where);
	if (!d || !desc) {
		*err = pol_err_nomem;
		return -1;
	}
	if (p->domain && pol_warn_add(p, "%s: ProxyDomain %s replaces %s", where ? where : "-",
	                              domain, p->domain_desc->full) != 0) {
		*err = pol_err_nomem;
		return -1;
	}
	p->domain = d;
	p->domain_len = (size_t)len + 1;
	p->domain_desc = desc;
	return 0;
}

void
pol_remote_fallback_where(struct pol *p, const char *where)
{
	if (p && where && *where)
		p->fallback_where = pol_arena_strndup(&p->arena, where, strlen(where));
}

void
pol_remote_fallback_direct(struct pol *p, int on)
{
	if (p && p->magic == POL_MAGIC && !p->compiled)
		p->fallback_direct = on ? 1 : 0;
}

size_t
pol_parent_count(const struct pol *p)
{
	return p && p->magic == POL_MAGIC ? p->nparents : 0;
}

const struct pol_parent *
pol_parent_get(const struct pol *p, size_t i)
{
	if (!p || p->magic != POL_MAGIC || i >= p->nparents)
		return NULL;
	return p->parents[i];
}
