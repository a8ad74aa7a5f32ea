/*
 * fuzz_policy.c - libFuzzer harness for the intranet policy (policy/: builders, pol_compile,
 * pol_decide, address sets, PAC generation).
 *
 * The input is lines:
 *   B ARG            ProxyBlock ARG          N ARG        NoProxy ARG
 *   R MATCH URL [UP] ProxyRemote             D ARG        ProxyDomain ARG
 *   F                ProxyRemoteFallback direct
 *   A NAME ADDR...   resolved addresses of NAME (ProxyBlock and NoProxy sets)
 *   Q METHOD URL [ADDR...]  a request (with ADDRs: resolved; "Q METHOD URL -": resolved, none)
 * ProxyRemoteMatch is left out: glibc's regcomp on hostile patterns is slow by design, and the
 * admin writes that regex, not the network. Builder errors are fine; afterwards the harness
 * abort()s when a decision breaks its contract (action out of range, rule missing, need_addrs
 * on BLOCK/REDIRECT, a redirect whose length is wrong or that does not contain the domain,
 * parents out of range or repeated) or when the same request decided twice differs.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/pol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_WORDS 8
#define FZ_REQS 32

static void
fz_check(int ok)
{
	if (!ok)
		abort();
}

static size_t
fz_words(char *line, char **w)
{
	size_t n = 0;
	char *save = NULL;

	for (char *t = strtok_r(line, " \t", &save); t && n < FZ_WORDS;
	     t = strtok_r(NULL, " \t", &save))
		w[n++] = t;
	return n;
}

static size_t
fz_addrs(char **w, size_t n, struct sockaddr_storage *ss)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		memset(&ss[k], 0, sizeof(ss[k]));
		if (strchr(w[i], ':')) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss[k];

			s6->sin6_family = AF_INET6;
			if (inet_pton(AF_INET6, w[i], &s6->sin6_addr) == 1)
				k++;
		} else {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss[k];

			s4->sin_family = AF_INET;
			if (inet_pton(AF_INET, w[i], &s4->sin_addr) == 1)
				k++;
		}
	}
	return k;
}

/* Host and port of url ("scheme://[ui@]host[:port]/..." or CONNECT's "host:port"). */
static void
fz_host(const char *url, int connect, char *host, size_t len, unsigned *port)
{
	const char *h = url, *css = strstr(url, "://");

	if (!connect && css)
		h = css + 3;
	size_t n = strcspn(h, "/?#");
	const char *at = memchr(h, '@', n);
	if (at) {
		n -= (size_t)(at + 1 - h);
		h = at + 1;
	}
	const char *colon = NULL;
	if (n && h[0] == '[') {
		const char *rb = memchr(h, ']', n);
		colon = rb && rb + 1 < h + n && rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = memchr(h, ':', n);
	}
	size_t hl = colon ? (size_t)(colon - h) : n;
	if (hl >= len)
		hl = len - 1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = colon ? (unsigned)strtoul(colon + 1, NULL, 10) % 65536 : 80;
}

static void
fz_decide(const struct pol *p, char **w, size_t n, const struct pol_addrset *bs,
          const struct pol_addrset *ns, const char *domain)
{
	struct sockaddr_storage ss[FZ_WORDS];
	struct pol_req req = { 0 };
	struct pol_decision d, d2;
	char host[300], loc[1500], loc2[1500];

	if (n < 3)
		return;
	req.method = w[1];
	req.url = w[2];
	fz_host(w[2], strcmp(w[1], "CONNECT") == 0, host, sizeof(host), &req.port);
	req.host = host;
	req.scheme = "http";
	if (n > 3) {
		req.resolved = 1;
		req.naddrs = fz_addrs(w + 3, n - 3, ss);
		req.addrs = ss;
	}
	enum pol_action a = pol_decide(p, &req, bs, ns, loc, sizeof(loc), &d);
	fz_check(a == d.action && a >= POL_DIRECT && a <= POL_WAIT);
	fz_check(d.rule != NULL);
	fz_check(d.need_addrs == 0 || d.need_addrs == 1);
	if (a == POL_BLOCK || a == POL_REDIRECT || a == POL_INVALID || a == POL_WAIT)
		fz_check(d.need_addrs == 0 && d.nparents == 0);
	/* Only a policy still waiting for its names' first answers waits. */
	if (a == POL_WAIT)
		fz_check(!pol_block_ready(p));
	if (req.resolved)
		fz_check(d.need_addrs == 0);
	if (a == POL_REDIRECT) {
		fz_check(d.location == loc && strlen(loc) == d.location_len);
		fz_check(domain && strstr(loc, domain) != NULL);
		fz_check(d.location_len == strlen(req.url) + strlen(domain));
	}
	if (a == POL_PARENTS) {
		fz_check(d.nparents >= 1 && d.nparents <= POL_PARENTS_MAX);
		for (size_t i = 0; i < d.nparents; i++) {
			fz_check(d.parents[i] == pol_parent_get(p, d.parents[i]->id));
			for (size_t j = 0; j < i; j++)
				fz_check(d.parents[i] != d.parents[j]);
		}
	} else {
		fz_check(d.nparents == 0);
	}
	/* Deterministic. */
	pol_decide(p, &req, bs, ns, loc2, sizeof(loc2), &d2);
	fz_check(d2.action == d.action && d2.rule == d.rule && d2.need_addrs == d.need_addrs &&
	         d2.nparents == d.nparents);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pol *p = NULL;
	struct pol_addrset_builder *b = NULL;
	struct pol_addrset *set = NULL;
	char *text, *save = NULL, *reqs[FZ_REQS], warn[2048];
	char domain[300] = "";
	size_t nreqs = 0;
	const char *err;
	int pending = 0;

	if (size > 8192)
		return 0;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (pol_new(&p) != 0 || pol_addrset_builder_new(&b) != 0)
		goto out;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *w[FZ_WORDS];
		size_t n;

		if (line[0] == 'Q') {
			if (nreqs < FZ_REQS)
				reqs[nreqs++] = line;
			continue;
		}
		n = fz_words(line, w);
		if (n == 0)
			continue;
		if (strcmp(w[0], "B") == 0 && n > 1) {
			pol_block_add(p, w[1], "fz:1", &err);
		} else if (strcmp(w[0], "N") == 0 && n > 1) {
			pol_noproxy_add(p, w[1], "fz:2", &err);
		} else if (strcmp(w[0], "R") == 0 && n > 2) {
			pol_remote_add(p, w[1], w[2], n > 3 ? w[3] : NULL, "fz:3", &err);
		} else if (strcmp(w[0], "D") == 0 && n > 1) {
			if (pol_domain_set(p, w[1], "fz:4", &err) == 0) {
				snprintf(domain, sizeof(domain), "%s", w[1]);
				/* The policy keeps it in lower case without a trailing dot. */
				for (char *c = domain; *c; c++)
					*c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
				size_t dl = strlen(domain);
				if (dl > 1 && domain[dl - 1] == '.')
					domain[dl - 1] = '\0';
			}
		} else if (strcmp(w[0], "W") == 0) {
			pending = 1; /* leave the policy waiting for its names' first answers */
		} else if (strcmp(w[0], "F") == 0) {
			pol_remote_fallback_direct(p, 1);
		} else if (strcmp(w[0], "A") == 0 && n > 2) {
			struct sockaddr_storage ss[FZ_WORDS];
			size_t k = fz_addrs(w + 2, n - 2, ss);

			pol_addrset_builder_set(b, w[1], ss, k);
		}
	}
	int nw = pol_compile(p, warn, sizeof(warn));
	fz_check(nw >= 0);
	if (!pending)
		pol_block_ready_mark(p);
	fz_check(strlen(warn) < sizeof(warn));
	set = pol_addrset_build(b);
	fz_check(set != NULL);
	for (size_t i = 0; pol_block_name(p, i); i++)
		fz_check(i < 100000);
	for (size_t i = 0; i < nreqs; i++) {
		char *w[FZ_WORDS];
		size_t n = fz_words(reqs[i], w);

		if (n == 4 && strcmp(w[3], "-") == 0) {
			/* Resolved, no address. */
			struct pol_req req = { 0 };
			struct pol_decision d;
			char host[300];

			fz_host(w[2], 0, host, sizeof(host), &req.port);
			req.method = w[1];
			req.url = w[2];
			req.host = host;
			req.resolved = 1;
			pol_decide(p, &req, set, set, NULL, 0, &d);
			fz_check(d.need_addrs == 0);
			continue;
		}
		fz_decide(p, w, n, set, set, domain[0] ? domain : NULL);
	}
	const char *proxies[] = { "a:1", "b:2" };
	char *pac = NULL;
	size_t pl = 0;
	if (pol_pac_generate(p, proxies, 2, 1, &pac, &pl, &err) == 0) {
		fz_check(pac && strlen(pac) == pl && strstr(pac, "function FindProxyForURL"));
		free(pac);
	}
out:
	pol_addrset_free(&set);
	pol_addrset_builder_free(&b);
	pol_free(&p);
	free(text);
	return 0;
}
