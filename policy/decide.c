/*
 * decide.c - pol_decide(): the routing decision for one request under a compiled policy, in
 * the documented order ProxyDomain -> ProxyBlock (names, then addresses) -> NoProxy (only when
 * a parent would be used) -> ProxyRemote -> direct. The client ACL comes before, in the daemon.
 *
 * Address rules need the target's addresses. A literal host is its own address; otherwise the
 * caller says whether it resolved the host. While it has not, every rule that does not need
 * addresses is applied, and need_addrs tells the caller that an address rule could still
 * change the provisional outcome: it resolves and decides again. A DIRECT outcome is resolved
 * anyway to connect; a PARENTS outcome is not, unless need_addrs says so (this is how the
 * ProxyBlock address check reaches requests that go through a parent, unlike Apache).
 *
 * Until the daemon has the first answers for every ProxyBlock name (pol_block_ready), the
 * blocked set is incomplete: a request that no rule blocks by name needs its addresses, and
 * when they match no entry yet the answer is WAIT, never a route (fail closed).
 *
 * Reads only immutable data and the caller's buffers: any number of threads at once.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "policy/pol_rules.h"

#define POL_WHY_BUILTIN(name, s) static const struct pol_why name = { s, "", s, NULL }
POL_WHY_BUILTIN(pol_rule_nopolicy, "no compiled policy");
POL_WHY_BUILTIN(pol_rule_nohost, "the request has no host");
POL_WHY_BUILTIN(pol_rule_badhost, "host name too long");
POL_WHY_BUILTIN(pol_rule_redirect_long, "URL too long for the ProxyDomain redirect");
POL_WHY_BUILTIN(pol_rule_noremote, "no ProxyRemote applies");
POL_WHY_BUILTIN(pol_rule_block_pending,
                "the addresses of the ProxyBlock names are not resolved yet");

int
pol_host_prepare(const char *host, struct pol_host *hv)
{
	size_t len = strlen(host);
	int digits_dots = 1;

	if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
		host++;
		len -= 2;
	}
	if (len > 1 && host[len - 1] == '.')
		len--;
	if (len == 0 || len >= sizeof(hv->name))
		return -1;
	hv->nlabels = 0;
	hv->lab[hv->nlabels++] = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)host[i];

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c + ('a' - 'A'));
		hv->name[i] = (char)c;
		if (c == '.') {
			/* len < POL_HOST_BUF, so at most POL_HOST_BUF labels: lab[] holds them. */
			hv->lab[hv->nlabels++] = (uint16_t)(i + 1);
		} else if (c < '0' || c > '9') {
			digits_dots = 0;
		}
	}
	hv->name[len] = '\0';
	hv->len = len;
	hv->lab[hv->nlabels] = (uint16_t)(len + 1);
	hv->literal = 0;
	if (memchr(hv->name, ':', len)) {
		struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };

		if (inet_pton(AF_INET6, hv->name, &s6.sin6_addr) == 1) {
			hv->literal = AF_INET6;
			pol_key_from_sa((const struct sockaddr *)&s6, &hv->key);
		}
	} else if (digits_dots) {
		struct sockaddr_in s4 = { .sin_family = AF_INET };

		if (inet_pton(AF_INET, hv->name, &s4.sin_addr) == 1) {
			hv->literal = AF_INET;
			pol_key_from_sa((const struct sockaddr *)&s4, &hv->key);
		}
	}
	return 0;
}

/* ProxyDomain applies to: no dot, not an IPv6 literal, not localhost. */
static int
pol_decide_unqualified(const char *host)
{
	return *host && !strchr(host, '.') && !strchr(host, ':') && host[0] != '[' &&
	       strcasecmp(host, "localhost") != 0;
}

/* Write url with domain inserted after its host into buf. Returns 1 done, 0 when the URL has
 * no authority to rewrite, -1 when buf is too small. */
static int
pol_decide_redirect(const char *url, const char *domain, size_t dlen, char *buf, size_t len,
                    size_t *outlen)
{
	const char *css = strstr(url, "://"), *auth, *aend, *hs, *he;

	if (!css)
		return 0;
	auth = css + 3;
	aend = auth + strcspn(auth, "/?#");
	hs = auth;
	for (const char *s = auth; s < aend; s++) {
		if (*s == '@')
			hs = s + 1;
	}
	he = memchr(hs, ':', (size_t)(aend - hs));
	if (!he)
		he = aend;
	if (he == hs)
		return 0;
	size_t ulen = strlen(url), head = (size_t)(he - url);
	if (ulen + dlen + 1 > len)
		return -1;
	memcpy(buf, url, head);
	memcpy(buf + head, domain, dlen);
	memcpy(buf + head + dlen, he, ulen - head + 1);
	*outlen = ulen + dlen;
	return 1;
}

static int
pol_decide_remote_match(const struct pol_remote *r, const char *scheme, const char *url)
{
	switch (r->kind) {
	case POL_RK_ALL:
		return 1;
	case POL_RK_SCHEME:
		return scheme && strcasecmp(scheme, r->pat) == 0;
	case POL_RK_PREFIX:
		if (r->host_dot) /* the host, then a path, a port, a dot or the end */
			return url && strncasecmp(url, r->pat, r->pat_len - 1) == 0 &&
			       strchr("/:.", url[r->pat_len - 1]) != NULL;
		/* strncasecmp/strncmp stop at the URL's NUL: a shorter URL does not match. */
		return url && strncasecmp(url, r->pat, r->icase_len) == 0 &&
		       strncmp(url + r->icase_len, r->pat + r->icase_len,
		               r->pat_len - r->icase_len) == 0;
	case POL_RK_REGEX:
		return url && regexec(&r->re, url, 0, NULL, 0) == 0;
	}
	return 0;
}

static enum pol_action
pol_decide_set(struct pol_decision *out, enum pol_action a, const struct pol_why *why)
{
	out->action = a;
	out->why = why;
	out->rule = why->full;
	return a;
}

/* The description of the rule in nets, or of the listed name in names whose resolved
 * addresses (set) hold one of the target's addresses, or NULL. */
static const struct pol_why *
pol_decide_addrs(const struct pol_ranges *nets, const struct pol_addrset *set,
                 const struct pol_nameset *names, const struct pol_host *hv,
                 const struct pol_req *req)
{
	size_t n = hv->literal ? 1 : req->naddrs;
	int have_set = pol_addrset_count(set) > 0;

	for (size_t i = 0; i < n; i++) {
		struct pol_key k;

		if (hv->literal)
			k = hv->key;
		else if (pol_key_from_sa((const struct sockaddr *)&req->addrs[i], &k) != 0)
			continue;
		const struct pol_range *r = nets->n ? pol_ranges_find(nets, &k) : NULL;
		if (r)
			return r->desc;
		const char *name = have_set ? pol_addrset_lookup_key(set, &k) : NULL;
		if (!name)
			continue;
		size_t len = strlen(name);
		uint64_t h = pol_hash_bytes(POL_HASH_INIT, name, len);
		const struct pol_name *e = pol_nameset_find(names, h, name, len);
		/* A name no longer listed (a set built for an older policy) is ignored. */
		if (e && (e->flags & POL_NF_RESOLVE))
			return e->desc;
	}
	return NULL;
}

enum pol_action
pol_decide(const struct pol *p, const struct pol_req *req, const struct pol_addrset *blocked,
           const struct pol_addrset *noproxy, char *locbuf, size_t loclen,
           struct pol_decision *out)
{
	struct pol_host hv;
	const struct pol_why *d;
	int connect, known, addr_block, addr_np, pending;

	out->action = POL_INVALID;
	out->need_addrs = 0;
	out->why = &pol_rule_nopolicy;
	out->rule = pol_rule_nopolicy.full;
	out->location = NULL;
	out->location_len = 0;
	out->nparents = 0;
	out->fallback_direct = 0;
	if (!p || p->magic != POL_MAGIC || !p->compiled)
		return pol_decide_set(out, POL_INVALID, &pol_rule_nopolicy);
	if (!req || !req->host || !*req->host)
		return pol_decide_set(out, POL_INVALID, &pol_rule_nohost);
	if (pol_host_prepare(req->host, &hv) != 0)
		return pol_decide_set(out, POL_INVALID, &pol_rule_badhost);
	connect = req->method && strcmp(req->method, "CONNECT") == 0;

	/* ProxyDomain */
	if (p->domain && req->method && strcmp(req->method, "GET") == 0 && req->url &&
	    pol_decide_unqualified(req->host)) {
		size_t olen = 0;
		int r = locbuf ? pol_decide_redirect(req->url, p->domain, p->domain_len, locbuf,
		                                     loclen, &olen) : -1;

		if (r < 0)
			return pol_decide_set(out, POL_INVALID, &pol_rule_redirect_long);
		if (r > 0) {
			out->location = locbuf;
			out->location_len = olen;
			return pol_decide_set(out, POL_REDIRECT, p->domain_desc);
		}
	}

	/* ProxyBlock: everything, names and words, then addresses. */
	if (p->block_all)
		return pol_decide_set(out, POL_BLOCK, p->block_all);
	d = pol_block_match_name(p, &hv);
	if (d)
		return pol_decide_set(out, POL_BLOCK, d);
	known = hv.literal || req->resolved;
	/* Once ready, this is one load per decision (acquire: a plain load on x86). */
	pending = p->nblock_resolve > 0 && !pol_block_ready(p);
	addr_block = p->block_nets.n > 0 || pending || pol_addrset_count(blocked) > 0;
	if (known && addr_block) {
		/* A partial set still blocks what it holds; what it does not hold may come. */
		d = pol_decide_addrs(&p->block_nets, blocked, &p->block_names, &hv, req);
		if (d)
			return pol_decide_set(out, POL_BLOCK, d);
		/* A name without addresses has nothing the set could match: no wait. */
		if (pending && (hv.literal || req->naddrs > 0))
			return pol_decide_set(out, POL_WAIT, &pol_rule_block_pending);
	}

	/* The parents this request would use, in config order, each once. */
	if (p->nremotes) {
		char curl[POL_HOST_BUF + 32];
		const char *scheme = req->scheme, *url = req->url;

		if (connect) {
			int v6 = hv.literal == AF_INET6 || memchr(hv.name, ':', hv.len) != NULL;

			snprintf(curl, sizeof(curl),
			         req->port == 443 ? "https://%s%s%s/" : "https://%s%s%s:%u/",
			         v6 ? "[" : "", hv.name, v6 ? "]" : "", req->port);
			scheme = "https";
			url = curl;
		}
		for (size_t i = 0; i < p->nremotes && out->nparents < POL_PARENTS_MAX; i++) {
			const struct pol_remote *r = &p->remotes[i];
			size_t j;

			if (!pol_decide_remote_match(r, scheme, url))
				continue;
			for (j = 0; j < out->nparents && out->parents[j] != r->parent; j++)
				;
			if (j < out->nparents)
				continue;
			if (out->nparents == 0) {
				out->why = r->desc;
				out->rule = r->desc->full;
			}
			out->parents[out->nparents++] = r->parent;
		}
	}
	if (out->nparents == 0) {
		out->need_addrs = !known && addr_block;
		return pol_decide_set(out, POL_DIRECT, &pol_rule_noremote);
	}

	/* NoProxy, by name, then by address. */
	d = pol_noproxy_match_name(p, &hv);
	addr_np = p->np_nets.n > 0 || pol_addrset_count(noproxy) > 0;
	if (!d && known && addr_np)
		d = pol_decide_addrs(&p->np_nets, noproxy, &p->np_names, &hv, req);
	if (d) {
		out->nparents = 0;
		out->need_addrs = !known && addr_block;
		return pol_decide_set(out, POL_DIRECT, d);
	}
	out->fallback_direct = p->fallback_direct;
	out->need_addrs = !known && (addr_block || addr_np);
	out->action = POL_PARENTS;
	return POL_PARENTS;
}
