/*
 * test_policy.c - policy/: the intranet policy (ProxyBlock, NoProxy, ProxyRemote(Match),
 * ProxyDomain), its decision order and need_addrs, address sets, credentials and base64,
 * conflict warnings, and PAC generation evaluated in node (tests/pac/pac_eval.js).
 *
 * The PAC tests need node (Debian nodejs, in scripts/test-deps.sh) and fail when it is missing.
 * pac_eval.js is found next to this file through __FILE__ (relative to the top directory, from
 * which tests run) or under $GH_SRCDIR when set.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/pol.h"

/* ---- helpers ---- */

#define TP_MAX_WORDS 16

/* Split line into words (spaces); returns the count. */
static size_t
tp_words(char *line, char **w, size_t max)
{
	size_t n = 0;
	char *save = NULL;

	for (char *t = strtok_r(line, " ", &save); t && n < max; t = strtok_r(NULL, " ", &save))
		w[n++] = t;
	return n;
}

/* Apply one directive line to p (where "t:LINE"). Returns 0, or -1 with *err. */
static int
tp_directive(struct pol *p, const char *line, unsigned lineno, const char **err)
{
	char copy[1024], where[32];
	char *w[TP_MAX_WORDS];
	size_t n;

	snprintf(copy, sizeof(copy), "%s", line);
	snprintf(where, sizeof(where), "t:%u", lineno);
	n = tp_words(copy, w, TP_MAX_WORDS);
	if (n == 0)
		return 0;
	if (strcmp(w[0], "ProxyBlock") == 0 || strcmp(w[0], "NoProxy") == 0) {
		for (size_t i = 1; i < n; i++) {
			int r = w[0][0] == 'P' ? pol_block_add(p, w[i], where, err) :
			                         pol_noproxy_add(p, w[i], where, err);
			if (r != 0)
				return -1;
		}
		return 0;
	}
	if (strcmp(w[0], "ProxyRemote") == 0 && n >= 3)
		return pol_remote_add(p, w[1], w[2], n > 3 ? w[3] : NULL, where, err);
	if (strcmp(w[0], "ProxyRemoteMatch") == 0 && n >= 3)
		return pol_remote_match_add(p, w[1], w[2], n > 3 ? w[3] : NULL, where, err);
	if (strcmp(w[0], "ProxyDomain") == 0 && n == 2)
		return pol_domain_set(p, w[1], where, err);
	if (strcmp(w[0], "ProxyRemoteFallback") == 0 && n == 2) {
		pol_remote_fallback_direct(p, strcmp(w[1], "direct") == 0);
		return 0;
	}
	fail_msg("test script: bad line %s", line);
	return -1;
}

/* Build and compile a policy from a script (one directive per line, all must succeed), and
 * leave it as the daemon finds it before the first answers for its ProxyBlock names. */
static struct pol *
tp_build_pending_w(const char *script, char *warn, size_t wlen, int *nwarn)
{
	struct pol *p = NULL;
	char *copy = strdup(script), *save = NULL;
	unsigned lineno = 0;
	char wbuf[4096];

	assert_non_null(copy);
	assert_int_equal(pol_new(&p), 0);
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *err = NULL;

		lineno++;
		if (tp_directive(p, line, lineno, &err) != 0)
			fail_msg("line %u \"%s\": %s", lineno, line, err ? err : "?");
	}
	free(copy);
	if (!warn) {
		warn = wbuf;
		wlen = sizeof(wbuf);
	}
	int n = pol_compile(p, warn, wlen);
	assert_true(n >= 0);
	if (nwarn)
		*nwarn = n;
	return p;
}

/* The same, marked ready (the blocked set the tests pass is complete): most tests. */
static struct pol *
tp_build_w(const char *script, char *warn, size_t wlen, int *nwarn)
{
	struct pol *p = tp_build_pending_w(script, warn, wlen, nwarn);
	pol_block_ready_mark(p);
	return p;
}

static struct pol *
tp_build(const char *script)
{
	return tp_build_w(script, NULL, 0, NULL);
}

/* The error of the first failing line of script, or NULL when every line succeeds. */
static const char *
tp_error(const char *script)
{
	static char msg[512];
	struct pol *p = NULL;
	char *copy = strdup(script), *save = NULL;
	const char *res = NULL;
	unsigned lineno = 0;

	assert_int_equal(pol_new(&p), 0);
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *err = NULL;

		if (tp_directive(p, line, ++lineno, &err) != 0) {
			assert_non_null(err);
			snprintf(msg, sizeof(msg), "%s", err);
			res = msg;
			break;
		}
	}
	free(copy);
	pol_free(&p);
	assert_null(p);
	return res;
}

/* Fill addresses from "10.1.2.3 ::1 ..." (space separated). */
static size_t
tp_addrs(const char *text, struct sockaddr_storage *ss, size_t max)
{
	char copy[512];
	char *w[TP_MAX_WORDS];
	size_t n;

	snprintf(copy, sizeof(copy), "%s", text);
	n = tp_words(copy, w, TP_MAX_WORDS);
	assert_true(n <= max);
	for (size_t i = 0; i < n; i++) {
		memset(&ss[i], 0, sizeof(ss[i]));
		if (strchr(w[i], ':')) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss[i];

			s6->sin6_family = AF_INET6;
			assert_int_equal(inet_pton(AF_INET6, w[i], &s6->sin6_addr), 1);
		} else {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss[i];

			s4->sin_family = AF_INET;
			assert_int_equal(inet_pton(AF_INET, w[i], &s4->sin_addr), 1);
		}
	}
	return n;
}

/* An address set from "name=addr addr;name2=addr". */
static struct pol_addrset *
tp_addrset(const char *spec)
{
	struct pol_addrset_builder *b = NULL;
	char copy[1024], *save = NULL;

	assert_int_equal(pol_addrset_builder_new(&b), 0);
	snprintf(copy, sizeof(copy), "%s", spec);
	for (char *e = strtok_r(copy, ";", &save); e; e = strtok_r(NULL, ";", &save)) {
		struct sockaddr_storage ss[TP_MAX_WORDS];
		char *eq = strchr(e, '=');

		assert_non_null(eq);
		*eq = '\0';
		size_t n = tp_addrs(eq + 1, ss, TP_MAX_WORDS);
		assert_int_equal(pol_addrset_builder_set(b, e, ss, n), 0);
	}
	struct pol_addrset *s = pol_addrset_build(b);
	assert_non_null(s);
	pol_addrset_builder_free(&b);
	assert_null(b);
	return s;
}

struct tp_row {
	const char *method;
	const char *url;     /* absolute URL, or host:port for CONNECT */
	const char *addrs;   /* NULL: not resolved; "": resolved, no address; else addresses */
	enum pol_action action;
	const char *rule;    /* expected description (NULL: not checked) */
	int need;            /* expected need_addrs */
	const char *parents; /* PARENTS: keys separated by spaces; REDIRECT: the location */
};

/* Split url into scheme, host (brackets kept for IPv6) and port. */
static void
tp_split(const char *method, const char *url, char *scheme, char *host, unsigned *port)
{
	const char *h, *e, *colon;

	if (strcmp(method, "CONNECT") == 0) {
		scheme[0] = '\0';
		h = url;
	} else {
		const char *css = strstr(url, "://");

		assert_non_null(css);
		memcpy(scheme, url, (size_t)(css - url));
		scheme[css - url] = '\0';
		for (char *c = scheme; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		h = css + 3;
		const char *at = NULL;
		for (const char *s = h; *s && !strchr("/?#", *s); s++) {
			if (*s == '@')
				at = s;
		}
		if (at)
			h = at + 1;
	}
	e = h + strcspn(h, "/?#");
	if (*h == '[') {
		const char *rb = strchr(h, ']');

		assert_non_null(rb);
		colon = rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = memchr(h, ':', (size_t)(e - h));
	}
	size_t hl = (size_t)((colon ? colon : e) - h);
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = colon ? (unsigned)atoi(colon + 1) :
	        strcmp(scheme, "ftp") == 0 ? 21u : strcmp(scheme, "https") == 0 ? 443u : 80u;
}

static enum pol_action
tp_decide(const struct pol *p, const char *method, const char *url, const char *addrs,
          const struct pol_addrset *blocked, const struct pol_addrset *noproxy,
          struct pol_decision *d, char *loc, size_t loclen)
{
	char scheme[32], host[300];
	struct sockaddr_storage ss[TP_MAX_WORDS];
	struct pol_req req = { 0 };

	tp_split(method, url, scheme, host, &req.port);
	req.method = method;
	req.scheme = scheme[0] ? scheme : NULL;
	req.host = host;
	req.url = url;
	if (addrs) {
		req.resolved = 1;
		req.naddrs = tp_addrs(addrs, ss, TP_MAX_WORDS);
		req.addrs = ss;
	}
	return pol_decide(p, &req, blocked, noproxy, loc, loclen, d);
}

static const char *const tp_action_names[] = { "DIRECT", "PARENTS", "BLOCK", "REDIRECT",
                                               "INVALID", "WAIT" };

static void
tp_run(const struct pol *p, const struct pol_addrset *blocked, const struct pol_addrset *noproxy,
       const struct tp_row *rows, size_t n)
{
	int bad = 0;

	for (size_t i = 0; i < n; i++) {
		const struct tp_row *r = &rows[i];
		struct pol_decision d;
		char loc[1024], keys[512] = "";

		tp_decide(p, r->method, r->url, r->addrs, blocked, noproxy, &d, loc, sizeof(loc));
		for (size_t j = 0; j < d.nparents; j++) {
			size_t l = strlen(keys);
			snprintf(keys + l, sizeof(keys) - l, "%s%s", j ? " " : "",
			         d.parents[j]->key);
		}
		const char *got_extra = d.action == POL_REDIRECT ? (d.location ? d.location : "") :
		                        keys;
		int ok = d.action == r->action && d.need_addrs == r->need &&
		         (!r->rule || (d.rule && strcmp(d.rule, r->rule) == 0)) &&
		         (r->action == POL_PARENTS || r->action == POL_REDIRECT ?
		          r->parents && strcmp(got_extra, r->parents) == 0 : d.nparents == 0);
		if (d.action == POL_REDIRECT && ok)
			ok = d.location_len == strlen(d.location);
		if (!ok) {
			print_error("row %zu: %s %s [%s]: got %s need=%d rule=\"%s\" extra=\"%s\"; "
			            "expected %s need=%d rule=\"%s\" extra=\"%s\"\n", i, r->method,
			            r->url, r->addrs ? r->addrs : "unresolved",
			            tp_action_names[d.action], d.need_addrs,
			            d.rule ? d.rule : "(null)", got_extra,
			            tp_action_names[r->action], r->need, r->rule ? r->rule : "*",
			            r->parents ? r->parents : "");
			bad++;
		}
	}
	if (bad)
		fail_msg("%d of %zu rows failed", bad, n);
}

/* ---- ProxyBlock ---- */

static void
test_block_every_form(void **state)
{
	(void)state;
	struct pol *p = tp_build("ProxyBlock casino\n"
	                         "ProxyBlock example.com\n"
	                         "ProxyBlock .sub.org\n"
	                         "ProxyBlock 10.1.2.3\n"
	                         "ProxyBlock 192.168.0.0/16\n"
	                         "ProxyBlock 2001:db8::/32\n"
	                         "ProxyBlock Bad.Example\n"
	                         "ProxyBlock 172.16\n"
	                         "ProxyBlock 10.200.0.0/255.255.0.0\n");
	static const struct tp_row rows[] = {
		{ "GET", "http://www.casino-royale.net/", NULL, POL_BLOCK,
		  "ProxyBlock casino (t:1)", 0, NULL },
		{ "GET", "http://CASINO.com/", NULL, POL_BLOCK, "ProxyBlock casino (t:1)", 0,
		  NULL },
		{ "GET", "http://thecasinos/", NULL, POL_BLOCK, "ProxyBlock casino (t:1)", 0,
		  NULL },
		{ "GET", "http://example.com/", NULL, POL_BLOCK, "ProxyBlock example.com (t:2)", 0,
		  NULL },
		{ "GET", "http://www.example.com/a?b", NULL, POL_BLOCK,
		  "ProxyBlock example.com (t:2)", 0, NULL },
		{ "GET", "http://WWW.EXAMPLE.COM/", NULL, POL_BLOCK, "ProxyBlock example.com (t:2)",
		  0, NULL },
		{ "GET", "http://example.com.evil.net/", NULL, POL_BLOCK,
		  "ProxyBlock example.com (t:2)", 0, NULL },
		{ "GET", "http://a.example.com.b/", NULL, POL_BLOCK, "ProxyBlock example.com (t:2)",
		  0, NULL },
		{ "GET", "http://www.example.com./", NULL, POL_BLOCK,
		  "ProxyBlock example.com (t:2)", 0, NULL },
		/* Label-aligned, unlike Apache's strstr: */
		{ "GET", "http://myexample.com/", "", POL_DIRECT, "no ProxyRemote applies", 0,
		  NULL },
		{ "GET", "http://example.community/", "", POL_DIRECT, NULL, 0, NULL },
		{ "GET", "http://example.org/", "", POL_DIRECT, NULL, 0, NULL },
		/* A leading dot needs a label before it. */
		{ "GET", "http://sub.org/", "", POL_DIRECT, NULL, 0, NULL },
		{ "GET", "http://a.sub.org/", NULL, POL_BLOCK, "ProxyBlock .sub.org (t:3)", 0,
		  NULL },
		{ "GET", "http://a.b.sub.org.x/", NULL, POL_BLOCK, "ProxyBlock .sub.org (t:3)", 0,
		  NULL },
		{ "GET", "http://bad.example/", NULL, POL_BLOCK, "ProxyBlock Bad.Example (t:7)", 0,
		  NULL },
		{ "GET", "http://x.BAD.example./", NULL, POL_BLOCK, "ProxyBlock Bad.Example (t:7)",
		  0, NULL },
		/* Addresses: literals need no resolution. */
		{ "GET", "http://10.1.2.3/", NULL, POL_BLOCK, "ProxyBlock 10.1.2.3 (t:4)", 0,
		  NULL },
		{ "GET", "http://10.1.2.4/", NULL, POL_DIRECT, NULL, 0, NULL },
		{ "GET", "http://192.168.77.1:8080/", NULL, POL_BLOCK,
		  "ProxyBlock 192.168.0.0/16 (t:5)", 0, NULL },
		{ "GET", "http://172.16.9.9/", NULL, POL_BLOCK, "ProxyBlock 172.16 (t:8)", 0,
		  NULL },
		{ "GET", "http://172.17.9.9/", NULL, POL_DIRECT, NULL, 0, NULL },
		{ "GET", "http://10.200.3.4/", NULL, POL_BLOCK,
		  "ProxyBlock 10.200.0.0/255.255.0.0 (t:9)", 0, NULL },
		{ "GET", "http://[2001:db8::1]/", NULL, POL_BLOCK, "ProxyBlock 2001:db8::/32 (t:6)",
		  0, NULL },
		{ "GET", "http://[2001:DB8:ffff::1]:81/", NULL, POL_BLOCK,
		  "ProxyBlock 2001:db8::/32 (t:6)", 0, NULL },
		{ "GET", "http://[2001:db9::1]/", NULL, POL_DIRECT, NULL, 0, NULL },
		{ "GET", "http://[::ffff:10.1.2.3]/", NULL, POL_BLOCK, "ProxyBlock 10.1.2.3 (t:4)",
		  0, NULL },
		/* By the target's resolved addresses. */
		{ "GET", "http://innocent.net/", "8.8.8.8 10.1.2.3", POL_BLOCK,
		  "ProxyBlock 10.1.2.3 (t:4)", 0, NULL },
		{ "GET", "http://innocent.net/", "::ffff:192.168.1.1", POL_BLOCK,
		  "ProxyBlock 192.168.0.0/16 (t:5)", 0, NULL },
		{ "GET", "http://innocent.net/", "2001:db8:1::5", POL_BLOCK,
		  "ProxyBlock 2001:db8::/32 (t:6)", 0, NULL },
		{ "GET", "http://innocent.net/", "8.8.8.8 2001:4860::8888", POL_DIRECT,
		  "no ProxyRemote applies", 0, NULL },
		{ "GET", "http://innocent.net/", NULL, POL_DIRECT, "no ProxyRemote applies", 1,
		  NULL },
		{ "GET", "http://innocent.net/", "", POL_DIRECT, NULL, 0, NULL },
		/* Every scheme and CONNECT. */
		{ "CONNECT", "www.example.com:443", NULL, POL_BLOCK, "ProxyBlock example.com (t:2)",
		  0, NULL },
		{ "CONNECT", "10.1.2.3:443", NULL, POL_BLOCK, "ProxyBlock 10.1.2.3 (t:4)", 0,
		  NULL },
		{ "GET", "ftp://ftp.example.com/pub/", NULL, POL_BLOCK,
		  "ProxyBlock example.com (t:2)", 0, NULL },
		{ "POST", "http://casino.org/", NULL, POL_BLOCK, "ProxyBlock casino (t:1)", 0,
		  NULL },
	};
	tp_run(p, NULL, NULL, rows, sizeof(rows) / sizeof(rows[0]));

	/* Hosts of 255 bytes with the most labels possible walk every label run safely. */
	char host[256];
	struct pol_decision d;
	struct pol_req req = { .method = "GET", .scheme = "http", .port = 80, .url = "http://x/",
	                       .resolved = 1, .host = host };
	memset(host, '.', 255);
	host[255] = '\0';
	assert_int_equal(pol_decide(p, &req, NULL, NULL, NULL, 0, &d), POL_DIRECT);
	for (int i = 0; i < 255; i++)
		host[i] = i % 2 ? '.' : 'e';
	assert_int_equal(pol_decide(p, &req, NULL, NULL, NULL, 0, &d), POL_DIRECT);
	memcpy(host + 244, "example.com", 11);   /* "e.e. ... .e.example.com" */
	host[243] = '.';
	assert_int_equal(pol_decide(p, &req, NULL, NULL, NULL, 0, &d), POL_BLOCK);
	assert_string_equal(d.rule, "ProxyBlock example.com (t:2)");
	/* The same rule in two parts: the words for users' pages, the place for admins. */
	assert_string_equal(d.why->text, "ProxyBlock example.com");
	assert_string_equal(d.why->where, "t:2");
	assert_ptr_equal(d.why->full, d.rule);

	/* Names to resolve: dotted names without a leading dot only. */
	assert_string_equal(pol_block_name(p, 0), "example.com");
	assert_string_equal(pol_block_name(p, 1), "bad.example");
	assert_null(pol_block_name(p, 2));
	assert_null(pol_noproxy_name(p, 0));
	pol_free(&p);
	assert_null(p);
}

static void
test_block_star_blocks_everything_but_proxydomain_comes_first(void **state)
{
	(void)state;
	struct pol *p = tp_build("ProxyBlock *\nProxyDomain .corp.example\n");
	static const struct tp_row rows[] = {
		{ "GET", "http://anything.org/", NULL, POL_BLOCK, "ProxyBlock * (t:1)", 0, NULL },
		{ "GET", "http://127.0.0.1/", NULL, POL_BLOCK, "ProxyBlock * (t:1)", 0, NULL },
		{ "CONNECT", "[::1]:443", NULL, POL_BLOCK, "ProxyBlock * (t:1)", 0, NULL },
		{ "POST", "http://intranet/", NULL, POL_BLOCK, "ProxyBlock * (t:1)", 0, NULL },
		{ "GET", "http://intranet/", NULL, POL_REDIRECT,
		  "ProxyDomain .corp.example (t:2)", 0, "http://intranet.corp.example/" },
	};
	tp_run(p, NULL, NULL, rows, sizeof(rows) / sizeof(rows[0]));
	pol_free(&p);
}

/* Before the first answers for its ProxyBlock names, a policy is not ready: what no rule
 * decides without the blocked set waits (POL_WAIT), literals at once, names once resolved;
 * what the rules decide without it (names, words, subnets, `*`-free ProxyDomain) is decided,
 * and a partial set already blocks what it holds. Marking it ready is one-way. */
static void
test_block_pending_until_first_answers(void **state)
{
	(void)state;
	static const char pending[] = "the addresses of the ProxyBlock names are not resolved yet";
	struct pol *p = tp_build_pending_w("ProxyBlock blocked.example casino 10.9.0.0/16\n"
	                                   "ProxyDomain .corp.example\n"
	                                   "ProxyRemote * http://parent.example:3128\n"
	                                   "NoProxy .corp.example\n", NULL, 0, NULL);
	struct pol_addrset *partial = tp_addrset("blocked.example=192.0.2.7");
	assert_false(pol_block_ready(p));
	static const struct tp_row rows[] = {
		/* Decided by name, by word, by subnet, by ProxyDomain: no wait. */
		{ "GET", "http://www.blocked.example/", NULL, POL_BLOCK,
		  "ProxyBlock blocked.example (t:1)", 0, NULL },
		{ "GET", "http://mycasino.net/", NULL, POL_BLOCK, "ProxyBlock casino (t:1)", 0, NULL },
		{ "GET", "http://10.9.1.1/", NULL, POL_BLOCK, "ProxyBlock 10.9.0.0/16 (t:1)", 0, NULL },
		{ "GET", "http://intranet/", NULL, POL_REDIRECT, "ProxyDomain .corp.example (t:2)", 0,
		  "http://intranet.corp.example/" },
		/* A literal, or a resolved name, that the set does not hold (yet): wait. */
		{ "GET", "http://192.0.2.8/", NULL, POL_WAIT, pending, 0, NULL },
		{ "CONNECT", "[2001:db8::8]:443", NULL, POL_WAIT, pending, 0, NULL },
		{ "GET", "http://alias.net/", "192.0.2.8", POL_WAIT, pending, 0, NULL },
		/* Resolved to nothing: nothing the set could match, no wait. */
		{ "GET", "http://alias.net/", "", POL_PARENTS, NULL, 0, "parent.example:3128" },
		/* Through a parent or NoProxy-direct too: the address check applies there. */
		{ "GET", "http://wiki.corp.example/", "192.0.2.8", POL_WAIT, pending, 0, NULL },
		/* A name not resolved yet: resolve first (need_addrs), whatever the route. */
		{ "GET", "http://alias.net/", NULL, POL_PARENTS, NULL, 1,
		  "parent.example:3128" },
		{ "GET", "http://wiki.corp.example/", NULL, POL_DIRECT, NULL, 1, NULL },
	};
	tp_run(p, NULL, NULL, rows, sizeof(rows) / sizeof(rows[0]));
	tp_run(p, partial, NULL, rows, sizeof(rows) / sizeof(rows[0]));
	/* What the partial set holds is blocked already. */
	static const struct tp_row held[] = {
		{ "GET", "http://192.0.2.7/", NULL, POL_BLOCK, "ProxyBlock blocked.example (t:1)", 0,
		  NULL },
		{ "GET", "http://alias.net/", "192.0.2.8 192.0.2.7", POL_BLOCK,
		  "ProxyBlock blocked.example (t:1)", 0, NULL },
	};
	tp_run(p, partial, NULL, held, sizeof(held) / sizeof(held[0]));

	pol_block_ready_mark(p);
	assert_true(pol_block_ready(p));
	static const struct tp_row ready[] = {
		{ "GET", "http://192.0.2.8/", NULL, POL_PARENTS, NULL, 0, "parent.example:3128" },
		{ "GET", "http://alias.net/", "192.0.2.8", POL_PARENTS, NULL, 0,
		  "parent.example:3128" },
		{ "GET", "http://192.0.2.7/", NULL, POL_BLOCK, "ProxyBlock blocked.example (t:1)", 0,
		  NULL },
		{ "GET", "http://wiki.corp.example/", "192.0.2.8", POL_DIRECT, NULL, 0, NULL },
	};
	tp_run(p, partial, NULL, ready, sizeof(ready) / sizeof(ready[0]));
	pol_block_ready_mark(p); /* again: stays ready */
	assert_true(pol_block_ready(p));
	pol_addrset_free(&partial);
	pol_free(&p);

	/* Nothing to resolve (subnets, words, leading-dot domains only): ready from the start. */
	p = tp_build_pending_w("ProxyBlock 10.9.0.0/16 casino .ads.example\n", NULL, 0, NULL);
	assert_true(pol_block_ready(p));
	static const struct tp_row none[] = {
		{ "GET", "http://192.0.2.8/", NULL, POL_DIRECT, NULL, 0, NULL },
		{ "GET", "http://alias.net/", NULL, POL_DIRECT, NULL, 1, NULL },
	};
	tp_run(p, NULL, NULL, none, sizeof(none) / sizeof(none[0]));
	pol_free(&p);
	/* Not compiled, or NULL: never ready, and marking does nothing. */
	assert_int_equal(pol_new(&p), 0);
	pol_block_ready_mark(p);
	assert_false(pol_block_ready(p));
	pol_free(&p);
	assert_false(pol_block_ready(NULL));
	pol_block_ready_mark(NULL);
}

static void
test_block_by_resolved_addresses_of_listed_names(void **state)
{
	(void)state;
	struct pol *p = tp_build("ProxyBlock blocked.example ads.tracker.net\n");
	struct pol_addrset *set = tp_addrset("blocked.example=192.0.2.7 2001:db8::7;"
	                                     "stale.example=192.0.2.9;"
	                                     "ads.tracker.net=198.51.100.1");
	static const struct tp_row rows[] = {
		{ "GET", "http://alias.net/", "192.0.2.7", POL_BLOCK,
		  "ProxyBlock blocked.example (t:1)", 0, NULL },
		{ "GET", "http://alias.net/", "2001:db8::7", POL_BLOCK,
		  "ProxyBlock blocked.example (t:1)", 0, NULL },
		{ "GET", "http://alias.net/", "::ffff:192.0.2.7", POL_BLOCK,
		  "ProxyBlock blocked.example (t:1)", 0, NULL },
		{ "GET", "http://192.0.2.7/", NULL, POL_BLOCK, "ProxyBlock blocked.example (t:1)",
		  0, NULL },
		{ "GET", "http://[2001:db8::7]/", NULL, POL_BLOCK,
		  "ProxyBlock blocked.example (t:1)", 0, NULL },
		{ "CONNECT", "198.51.100.1:443", NULL, POL_BLOCK,
		  "ProxyBlock ads.tracker.net (t:1)", 0, NULL },
		{ "GET", "http://alias.net/", "192.0.2.8", POL_DIRECT, NULL, 0, NULL },
		/* A name the policy no longer lists (set built for an older policy) is ignored. */
		{ "GET", "http://alias.net/", "192.0.2.9", POL_DIRECT, NULL, 0, NULL },
		{ "GET", "http://alias.net/", NULL, POL_DIRECT, NULL, 1, NULL },
	};
	tp_run(p, set, NULL, rows, sizeof(rows) / sizeof(rows[0]));

	/* Without a set (or an empty one) there is no address rule: no resolution needed. */
	static const struct tp_row none[] = {
		{ "GET", "http://alias.net/", NULL, POL_DIRECT, NULL, 0, NULL },
		{ "GET", "http://192.0.2.7/", NULL, POL_DIRECT, NULL, 0, NULL },
	};
	tp_run(p, NULL, NULL, none, sizeof(none) / sizeof(none[0]));
	pol_addrset_free(&set);
	assert_null(set);
	pol_free(&p);
}

static void
test_block_many_words_and_long_hosts(void **state)
{
	(void)state;
	struct pol *p = NULL;
	const char *err = NULL;
	char word[16], host[300];

	/* 300 words (bigram buckets collide) and a one-letter word. */
	assert_int_equal(pol_new(&p), 0);
	for (int i = 0; i < 300; i++) {
		snprintf(word, sizeof(word), "w%03dq", i);
		assert_int_equal(pol_block_add(p, word, "t:1", &err), 0);
	}
	assert_int_equal(pol_block_add(p, "z", "t:2", &err), 0);
	assert_int_equal(pol_compile(p, NULL, 0), 0);
	static const struct tp_row rows[] = {
		{ "GET", "http://xxw299q.org/", NULL, POL_BLOCK, "ProxyBlock w299q (t:1)", 0,
		  NULL },
		{ "GET", "http://w000q/", NULL, POL_BLOCK, "ProxyBlock w000q (t:1)", 0, NULL },
		{ "GET", "http://w300q.org/", NULL, POL_DIRECT, NULL, 0, NULL },
		{ "GET", "http://amazon.org/", NULL, POL_BLOCK, "ProxyBlock z (t:2)", 0, NULL },
	};
	tp_run(p, NULL, NULL, rows, sizeof(rows) / sizeof(rows[0]));

	/* A 255-byte host of 128 labels is decided; 256 bytes is invalid. */
	struct pol_decision d;
	struct pol_req req = { .method = "GET", .scheme = "http", .port = 80, .url = "http://x/" };
	memset(host, 0, sizeof(host));
	for (int i = 0; i < 255; i++)
		host[i] = i % 2 ? '.' : 'a';
	req.host = host;
	assert_int_equal(pol_decide(p, &req, NULL, NULL, NULL, 0, &d), POL_DIRECT);
	/* 255 bytes of empty labels: 256 labels. */
	memset(host, '.', 255);
	assert_int_equal(pol_decide(p, &req, NULL, NULL, NULL, 0, &d), POL_DIRECT);
	host[255] = 'a';
	assert_int_equal(pol_decide(p, &req, NULL, NULL, NULL, 0, &d), POL_INVALID);
	assert_string_equal(d.rule, "host name too long");
	req.host = "";
	assert_int_equal(pol_decide(p, &req, NULL, NULL, NULL, 0, &d), POL_INVALID);
	pol_free(&p);
}

/* ---- NoProxy ---- */

static void
test_noproxy_four_forms(void **state)
{
	(void)state;
	struct pol *p = tp_build("ProxyRemote * http://fw.example:3128\n"
	                         "NoProxy .corp.example\n"
	                         "NoProxy 192.168\n"
	                         "NoProxy 10.0.0.0/255.0.0.0 172.16.0.0/12\n"
	                         "NoProxy fd00::/8\n"
	                         "NoProxy 203.0.113.5 2001:db8::5\n"
	                         "NoProxy wiki.intranet\n");
	struct pol_addrset *np = tp_addrset("wiki.intranet=198.51.100.20");
	static const struct tp_row rows[] = {
		{ "GET", "http://www.corp.example/", NULL, POL_DIRECT,
		  "NoProxy .corp.example (t:2)", 0, NULL },
		{ "GET", "http://a.b.corp.example:8080/", NULL, POL_DIRECT,
		  "NoProxy .corp.example (t:2)", 0, NULL },
		/* The domain itself matches too (documented choice). */
		{ "GET", "http://corp.example/", NULL, POL_DIRECT, "NoProxy .corp.example (t:2)", 0,
		  NULL },
		{ "GET", "http://WWW.Corp.Example./", NULL, POL_DIRECT,
		  "NoProxy .corp.example (t:2)", 0, NULL },
		{ "GET", "http://notcorp.example/", NULL, POL_PARENTS,
		  "ProxyRemote * http://fw.example:3128 (t:1)", 1, "fw.example:3128" },
		{ "GET", "http://corp.example.com/", "8.8.8.8", POL_PARENTS, NULL, 0,
		  "fw.example:3128" },
		/* SubNet forms and IpAddr, for literals without resolution. */
		{ "GET", "http://192.168.3.4/", NULL, POL_DIRECT, "NoProxy 192.168 (t:3)", 0,
		  NULL },
		{ "GET", "http://192.169.3.4/", NULL, POL_PARENTS, NULL, 0, "fw.example:3128" },
		{ "GET", "http://10.9.9.9/", NULL, POL_DIRECT, "NoProxy 10.0.0.0/255.0.0.0 (t:4)",
		  0, NULL },
		{ "GET", "http://172.31.0.1/", NULL, POL_DIRECT, "NoProxy 172.16.0.0/12 (t:4)", 0,
		  NULL },
		{ "GET", "http://172.32.0.1/", NULL, POL_PARENTS, NULL, 0, "fw.example:3128" },
		{ "GET", "http://[fd12::1]/", NULL, POL_DIRECT, "NoProxy fd00::/8 (t:5)", 0, NULL },
		{ "GET", "http://[fe80::1]/", NULL, POL_PARENTS, NULL, 0, "fw.example:3128" },
		{ "GET", "http://203.0.113.5/", NULL, POL_DIRECT, "NoProxy 203.0.113.5 (t:6)", 0,
		  NULL },
		{ "GET", "http://203.0.113.6/", NULL, POL_PARENTS, NULL, 0, "fw.example:3128" },
		{ "GET", "http://[2001:db8::5]/", NULL, POL_DIRECT, "NoProxy 2001:db8::5 (t:6)", 0,
		  NULL },
		{ "GET", "http://[2001:db8::6]/", NULL, POL_PARENTS, NULL, 0, "fw.example:3128" },
		/* Hostname: exact, never a substring or a domain. */
		{ "GET", "http://wiki.intranet/", NULL, POL_DIRECT, "NoProxy wiki.intranet (t:7)",
		  0, NULL },
		{ "GET", "http://x.wiki.intranet/", "8.8.8.8", POL_PARENTS, NULL, 0,
		  "fw.example:3128" },
		{ "GET", "http://wiki.intranet.evil/", "8.8.8.8", POL_PARENTS, NULL, 0,
		  "fw.example:3128" },
		/* By resolved address: subnets, and a listed host name's addresses. */
		{ "GET", "http://www.example.org/", "10.1.1.1", POL_DIRECT,
		  "NoProxy 10.0.0.0/255.0.0.0 (t:4)", 0, NULL },
		{ "GET", "http://www.example.org/", "8.8.8.8 fd00::9", POL_DIRECT,
		  "NoProxy fd00::/8 (t:5)", 0, NULL },
		{ "GET", "http://alias.example/", "198.51.100.20", POL_DIRECT,
		  "NoProxy wiki.intranet (t:7)", 0, NULL },
		{ "GET", "http://www.example.org/", "8.8.8.8", POL_PARENTS, NULL, 0,
		  "fw.example:3128" },
		{ "GET", "http://www.example.org/", "", POL_PARENTS, NULL, 0, "fw.example:3128" },
		{ "GET", "http://www.example.org/", NULL, POL_PARENTS, NULL, 1, "fw.example:3128" },
		{ "CONNECT", "www.corp.example:443", NULL, POL_DIRECT,
		  "NoProxy .corp.example (t:2)", 0, NULL },
	};
	tp_run(p, NULL, np, rows, sizeof(rows) / sizeof(rows[0]));
	assert_string_equal(pol_noproxy_name(p, 0), "wiki.intranet");
	assert_null(pol_noproxy_name(p, 1));
	assert_null(pol_block_name(p, 0));
	pol_addrset_free(&np);
	pol_free(&p);
}

static void
test_noproxy_hostname_by_address_needs_the_set(void **state)
{
	(void)state;
	struct pol *p = tp_build("ProxyRemote * http://fw:3128\nNoProxy wiki.intranet\n");
	struct pol_addrset *np = tp_addrset("wiki.intranet=198.51.100.20");
	static const struct tp_row no_set[] = {
		/* No subnet and no resolved host name: nothing could send it direct by address. */
		{ "GET", "http://other.example/", NULL, POL_PARENTS, NULL, 0, "fw:3128" },
		{ "GET", "http://wiki.intranet/", NULL, POL_DIRECT, NULL, 0, NULL },
	};
	static const struct tp_row with_set[] = {
		{ "GET", "http://other.example/", NULL, POL_PARENTS, NULL, 1, "fw:3128" },
		{ "GET", "http://other.example/", "198.51.100.20", POL_DIRECT,
		  "NoProxy wiki.intranet (t:2)", 0, NULL },
		{ "GET", "http://198.51.100.20/", NULL, POL_DIRECT, "NoProxy wiki.intranet (t:2)",
		  0, NULL },
	};
	tp_run(p, NULL, NULL, no_set, sizeof(no_set) / sizeof(no_set[0]));
	tp_run(p, NULL, np, with_set, sizeof(with_set) / sizeof(with_set[0]));
	pol_addrset_free(&np);
	pol_free(&p);
}

/* ---- ProxyRemote ---- */

static void
test_remote_match_kinds_and_failover_order(void **state)
{
	(void)state;
	struct pol *p = tp_build("ProxyRemote ftp http://ftpgw:3128\n"
	                         "ProxyRemote http://www.example.com/docs/ http://docs-proxy:8080\n"
	                         "ProxyRemoteMatch ^http://[^/]*\\.video\\. http://video:3128\n"
	                         "ProxyRemote * http://fw1:3128\n"
	                         "ProxyRemote * http://fw2:3128/\n"
	                         "ProxyRemote HTTPS http://tls-proxy:3129\n"
	                         "ProxyRemote * http://fw1:3128\n");
	static const struct tp_row rows[] = {
		{ "GET", "ftp://ftp.gnu.org/gnu/", NULL, POL_PARENTS,
		  "ProxyRemote ftp http://ftpgw:3128 (t:1)", 0, "ftpgw:3128 fw1:3128 fw2:3128" },
		{ "GET", "http://www.example.com/docs/x", NULL, POL_PARENTS,
		  "ProxyRemote http://www.example.com/docs/ http://docs-proxy:8080 (t:2)", 0,
		  "docs-proxy:8080 fw1:3128 fw2:3128" },
		{ "GET", "HTTP://WWW.Example.COM/docs/y", NULL, POL_PARENTS, NULL, 0,
		  "docs-proxy:8080 fw1:3128 fw2:3128" },
		{ "GET", "http://www.example.com/DOCS/x", NULL, POL_PARENTS,
		  "ProxyRemote * http://fw1:3128 (t:4)", 0, "fw1:3128 fw2:3128" },
		{ "GET", "http://www.example.com/doc", NULL, POL_PARENTS, NULL, 0,
		  "fw1:3128 fw2:3128" },
		{ "GET", "http://cdn.VIDEO.example/a.mp4", NULL, POL_PARENTS,
		  "ProxyRemoteMatch ^http://[^/]*\\.video\\. http://video:3128 (t:3)", 0,
		  "video:3128 fw1:3128 fw2:3128" },
		{ "GET", "http://example.org/x.video.y", NULL, POL_PARENTS, NULL, 0,
		  "fw1:3128 fw2:3128" },
		{ "CONNECT", "secure.example:443", NULL, POL_PARENTS, NULL, 0,
		  "fw1:3128 fw2:3128 tls-proxy:3129" },
		{ "GET", "https://secure.example/", NULL, POL_PARENTS, NULL, 0,
		  "fw1:3128 fw2:3128 tls-proxy:3129" },
	};
	tp_run(p, NULL, NULL, rows, sizeof(rows) / sizeof(rows[0]));

	/* Distinct parents, ids in order, the same pointer for the repeated fw1. */
	assert_int_equal(pol_parent_count(p), 6);
	for (size_t i = 0; i < pol_parent_count(p); i++)
		assert_int_equal(pol_parent_get(p, i)->id, i);
	const struct pol_parent *fw1 = pol_parent_get(p, 3);
	assert_string_equal(fw1->host, "fw1");
	assert_int_equal(fw1->port, 3128);
	assert_string_equal(fw1->key, "fw1:3128");
	assert_null(fw1->auth);
	assert_string_equal(fw1->where, "t:4");
	assert_null(pol_parent_get(p, 6));
	pol_free(&p);
}

/* A ProxyRemote URL prefix is normalized as requests are (daemon/url.h), so the normalized
 * URL the daemon passes matches whatever spelling the config used. */
static void
test_remote_prefix_is_normalized(void **state)
{
	(void)state;
	struct pol *p = tp_build("ProxyRemote HTTP://Docs.Example.COM.:080//a/./%62 http://docs:1\n"
	                         "ProxyRemote * http://fw:1\n");
	static const struct tp_row rows[] = {
		{ "GET", "http://docs.example.com/a/b/x", NULL, POL_PARENTS,
		  "ProxyRemote HTTP://Docs.Example.COM.:080//a/./%62 http://docs:1 (t:1)", 0,
		  "docs:1 fw:1" },
		{ "GET", "http://docs.example.com/a/c", NULL, POL_PARENTS, NULL, 0, "fw:1" },
		{ "GET", "http://docs.example.com:8080/a/b", NULL, POL_PARENTS, NULL, 0, "fw:1" },
	};
	tp_run(p, NULL, NULL, rows, sizeof(rows) / sizeof(rows[0]));
	pol_free(&p);

	/* a host with a trailing dot and nothing after it names that host (requests have the
	 * dot dropped) and the longer names it is a prefix of; it matched none of them */
	p = tp_build("ProxyRemote http://Docs.Example.COM. http://docs:1\n"
	             "ProxyRemote * http://fw:1\n");
	static const struct tp_row dot_rows[] = {
		{ "GET", "http://docs.example.com/x", NULL, POL_PARENTS, NULL, 0, "docs:1 fw:1" },
		{ "GET", "http://docs.example.com:8080/x", NULL, POL_PARENTS, NULL, 0, "docs:1 fw:1" },
		{ "GET", "http://docs.example.com.cdn.test/x", NULL, POL_PARENTS, NULL, 0,
		  "docs:1 fw:1" },
		{ "GET", "http://docs.example.community/x", NULL, POL_PARENTS, NULL, 0, "fw:1" },
	};
	tp_run(p, NULL, NULL, dot_rows, sizeof(dot_rows) / sizeof(dot_rows[0]));
	pol_free(&p);

	const char *err = NULL;
	assert_int_equal(pol_new(&p), 0);
	assert_int_equal(pol_remote_add(p, "http://h:99999/", "http://fw:1", NULL, "t:1", &err), -1);
	assert_string_equal(err, "bad port");
	pol_free(&p);
}

static void
test_remote_prefix_and_regex_match_connect_as_https_url(void **state)
{
	(void)state;
	struct pol *p = tp_build("ProxyRemote https://bank.example/ http://a:1\n"
	                         "ProxyRemoteMatch ^https://[^/]*:8443/ http://b:2\n"
	                         "ProxyRemote http http://c:3\n");
	static const struct tp_row rows[] = {
		{ "CONNECT", "bank.example:443", NULL, POL_PARENTS, NULL, 0, "a:1" },
		{ "CONNECT", "Bank.Example:443", NULL, POL_PARENTS, NULL, 0, "a:1" },
		{ "CONNECT", "bank.example:8443", NULL, POL_PARENTS, NULL, 0, "b:2" },
		{ "CONNECT", "other.example:443", NULL, POL_DIRECT, "no ProxyRemote applies", 0,
		  NULL },
		{ "GET", "http://bank.example/", NULL, POL_PARENTS, NULL, 0, "c:3" },
	};
	tp_run(p, NULL, NULL, rows, sizeof(rows) / sizeof(rows[0]));
	pol_free(&p);
}

static void
test_remote_server_forms_and_credentials(void **state)
{
	(void)state;
	struct pol *p = tp_build("ProxyRemote * http://Aladdin:open%20sesame@fw:3128\n"
	                         "ProxyRemote * http://fw:3128 Aladdin:open+sesame\n"
	                         "ProxyRemote * http://FW2\n"
	                         "ProxyRemote * http://[2001:DB8::1]:8080\n"
	                         "ProxyRemote * http://192.0.2.1:81/\n"
	                         "ProxyRemote ftp http://fw:3128 Aladdin:open%20sesame\n");
	const struct pol_parent *a;

	assert_int_equal(pol_parent_count(p), 6);
	a = pol_parent_get(p, 0);
	assert_string_equal(a->auth, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
	assert_string_equal(a->key, "fw:3128");
	/* Same host and port, other credentials: another parent, same health key. */
	a = pol_parent_get(p, 1);
	assert_string_equal(a->auth, "Basic QWxhZGRpbjpvcGVuK3Nlc2FtZQ==");
	assert_string_equal(a->key, "fw:3128");
	/* Port 80 by default, host in lower case. */
	a = pol_parent_get(p, 2);
	assert_string_equal(a->host, "fw2");
	assert_int_equal(a->port, 80);
	assert_string_equal(a->key, "fw2:80");
	assert_null(a->auth);
	a = pol_parent_get(p, 3);
	assert_string_equal(a->host, "2001:db8::1");
	assert_string_equal(a->key, "[2001:db8::1]:8080");
	a = pol_parent_get(p, 4);
	assert_string_equal(a->key, "192.0.2.1:81");
	/* The third argument is taken literally (no %-decoding). */
	a = pol_parent_get(p, 5);
	assert_string_equal(a->auth, "Basic QWxhZGRpbjpvcGVuJTIwc2VzYW1l");

	/* The same credentials from either place give the same parent. */
	struct pol *q = tp_build("ProxyRemote * http://Aladdin:opensesame@fw:3128\n"
	                         "ProxyRemote http http://fw:3128 Aladdin:opensesame\n"
	                         "ProxyRemote ftp http://fw:3128\n");
	assert_int_equal(pol_parent_count(q), 2);
	assert_string_equal(pol_parent_get(q, 0)->auth, "Basic QWxhZGRpbjpvcGVuc2VzYW1l");
	assert_null(pol_parent_get(q, 1)->auth);
	pol_free(&q);

	/* Descriptions never show credentials. */
	struct pol_decision d;
	char loc[64];
	tp_decide(p, "GET", "http://x.org/", NULL, NULL, NULL, &d, loc, sizeof(loc));
	assert_int_equal(d.action, POL_PARENTS);
	assert_string_equal(d.rule, "ProxyRemote * http://fw:3128 (t:1)");
	assert_null(strstr(d.rule, "Aladdin"));
	assert_int_equal(d.nparents, 5);
	pol_free(&p);
}

/* https:// parents: TLS, port 443 by default, distinct from http:// to the same host and port
 * (each with its own health key), routed for https:// URLs by the scheme "https". */
static void
test_remote_https_parents(void **state)
{
	(void)state;
	struct pol *p = tp_build("ProxyRemote * https://FW.corp.example:3129\n"
	                         "ProxyRemote * HTTPS://fw2\n"
	                         "ProxyRemote * http://fw.corp.example:3129\n"
	                         "ProxyRemote * https://u:p@fw.corp.example:3129/\n"
	                         "ProxyRemote * https://fw.corp.example:3129\n"
	                         "ProxyRemoteMatch ^https://bank\\. https://[2001:db8::1]\n"
	                         "ProxyRemote https http://plain:3128\n");
	const struct pol_parent *a;

	assert_int_equal(pol_parent_count(p), 6);
	a = pol_parent_get(p, 0);
	assert_int_equal(a->tls, 1);
	assert_string_equal(a->host, "fw.corp.example");
	assert_int_equal(a->port, 3129);
	assert_string_equal(a->key, "https://fw.corp.example:3129");
	a = pol_parent_get(p, 1);
	assert_int_equal(a->tls, 1);
	assert_int_equal(a->port, 443);
	assert_string_equal(a->key, "https://fw2:443");
	a = pol_parent_get(p, 2);
	assert_int_equal(a->tls, 0);
	assert_string_equal(a->key, "fw.corp.example:3129");
	a = pol_parent_get(p, 3);
	assert_int_equal(a->tls, 1);
	assert_string_equal(a->auth, "Basic dTpw");
	a = pol_parent_get(p, 4);
	assert_int_equal(a->tls, 1);
	assert_string_equal(a->key, "https://[2001:db8::1]:443");
	a = pol_parent_get(p, 5);
	assert_int_equal(a->tls, 0);

	struct pol_decision d;
	char loc[64];
	tp_decide(p, "GET", "https://bank.example/", NULL, NULL, NULL, &d, loc, sizeof(loc));
	assert_int_equal(d.action, POL_PARENTS);
	assert_string_equal(d.rule, "ProxyRemote * https://fw.corp.example:3129 (t:1)");
	assert_int_equal(d.nparents, 6);
	assert_ptr_equal(d.parents[4], pol_parent_get(p, 4));
	pol_free(&p);

	/* The scheme "https" sends https:// URLs (and CONNECT) to its parent, not http:// ones. */
	p = tp_build("ProxyRemote https http://plain:3128\n");
	tp_decide(p, "GET", "https://secure.example/a", NULL, NULL, NULL, &d, loc, sizeof(loc));
	assert_int_equal(d.action, POL_PARENTS);
	assert_string_equal(d.parents[0]->key, "plain:3128");
	tp_decide(p, "GET", "http://secure.example/a", NULL, NULL, NULL, &d, loc, sizeof(loc));
	assert_int_equal(d.action, POL_DIRECT);
	pol_free(&p);
}

static void
test_remote_errors(void **state)
{
	(void)state;
	static const struct {
		const char *line, *err;
	} rows[] = {
		{ "ProxyRemote * ftp://fw:3128",
		  "the remote server must be http://host[:port] or https://host[:port]" },
		{ "ProxyRemote * fw:3128",
		  "the remote server must be http://host[:port] or https://host[:port]" },
		{ "ProxyRemote * http://fw:3128/path",
		  "the remote server must be http://host[:port] or https://host[:port] with no path" },
		{ "ProxyRemote * https://fw:3128/path",
		  "the remote server must be http://host[:port] or https://host[:port] with no path" },
		{ "ProxyRemote * https://fw:0", "bad port in the remote server (1-65535)" },
		{ "ProxyRemote * https://", "bad host name in the remote server" },
		{ "ProxyRemote * http://fw:0", "bad port in the remote server (1-65535)" },
		{ "ProxyRemote * http://fw:65536", "bad port in the remote server (1-65535)" },
		{ "ProxyRemote * http://fw:", "bad port in the remote server (1-65535)" },
		{ "ProxyRemote * http://fw:31x", "bad port in the remote server (1-65535)" },
		{ "ProxyRemote * http://", "bad host name in the remote server" },
		{ "ProxyRemote * http://:3128", "bad host name in the remote server" },
		{ "ProxyRemote * http://f!w:3128", "bad host name in the remote server" },
		{ "ProxyRemote * http://[zz::1]:3128", "bad host name in the remote server" },
		{ "ProxyRemote * http://u:p@fw:3128 u:p",
		  "credentials given twice (in the remote server URL and as a third argument)" },
		{ "ProxyRemote * http://fw:3128 nocolon", "credentials must be user:password" },
		{ "ProxyRemote * http://nocolon@fw:3128", "credentials must be user:password" },
		{ "ProxyRemote * http://u:%zz@fw:3128",
		  "bad %-escape in the remote server's credentials" },
		{ "ProxyRemote * http://u:%2@fw:3128",
		  "bad %-escape in the remote server's credentials" },
		{ "ProxyRemote h_ttp http://fw:3128",
		  "the match must be *, a scheme (http, ftp, https) or a URL prefix "
		  "(http://example.com/)" },
		{ "ProxyRemoteMatch ([a http://fw:3128", "bad regular expression" },
		{ "ProxyDomain corp.example",
		  "the domain must start with a dot and be a valid name (.corp.example)" },
		{ "ProxyDomain .",
		  "the domain must start with a dot and be a valid name (.corp.example)" },
		{ "ProxyDomain .a..b",
		  "the domain must start with a dot and be a valid name (.corp.example)" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const char *e = tp_error(rows[i].line);

		if (!e || strcmp(e, rows[i].err) != 0)
			fail_msg("\"%s\": got \"%s\", expected \"%s\"", rows[i].line,
			         e ? e : "(ok)", rows[i].err);
	}
	assert_null(tp_error("ProxyRemote * http://fw:65535\nProxyRemote * http://u:@fw:1\n"
	                     "ProxyDomain .corp.example.\n"));
}

static void
test_base64_rfc4648_vectors(void **state)
{
	(void)state;
	static const char *const v[][2] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
		{ "Aladdin:open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ==" },
	};
	char out[64];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		size_t n = pol_base64(v[i][0], strlen(v[i][0]), out, sizeof(out));

		assert_string_equal(out, v[i][1]);
		assert_int_equal(n, strlen(v[i][1]));
	}
	static const unsigned char bin[] = { 0xfb, 0xff, 0x00 };
	pol_base64(bin, 3, out, sizeof(out));
	assert_string_equal(out, "+/8A");
	/* Exactly enough room, and one byte short. */
	assert_int_equal(pol_base64("foo", 3, out, 5), 4);
	assert_int_equal(pol_base64("foo", 3, out, 4), 0);
	assert_string_equal(out, "");
}

/* ---- ProxyDomain ---- */

static void
test_proxydomain_redirects_unqualified_gets_only(void **state)
{
	(void)state;
	struct pol *p = tp_build("ProxyDomain .corp.example\n");
	static const struct tp_row rows[] = {
		{ "GET", "http://intranet/path?q=1#f", NULL, POL_REDIRECT,
		  "ProxyDomain .corp.example (t:1)", 0, "http://intranet.corp.example/path?q=1#f" },
		{ "GET", "http://intranet:8080/x", NULL, POL_REDIRECT, NULL, 0,
		  "http://intranet.corp.example:8080/x" },
		{ "GET", "http://user:pw@intranet/", NULL, POL_REDIRECT, NULL, 0,
		  "http://user:pw@intranet.corp.example/" },
		{ "GET", "http://Intranet", NULL, POL_REDIRECT, NULL, 0,
		  "http://Intranet.corp.example" },
		{ "GET", "http://intranet?x", NULL, POL_REDIRECT, NULL, 0,
		  "http://intranet.corp.example?x" },
		{ "GET", "ftp://files/pub/", NULL, POL_REDIRECT, NULL, 0,
		  "ftp://files.corp.example/pub/" },
		/* Not unqualified, or not a GET. */
		{ "GET", "http://www.example.com/", NULL, POL_DIRECT, NULL, 0, NULL },
		{ "GET", "http://intranet./", NULL, POL_DIRECT, NULL, 0, NULL },
		{ "GET", "http://localhost/", NULL, POL_DIRECT, NULL, 0, NULL },
		{ "GET", "http://LocalHost:8080/", NULL, POL_DIRECT, NULL, 0, NULL },
		{ "GET", "http://[::1]/", NULL, POL_DIRECT, NULL, 0, NULL },
		{ "GET", "http://10.0.0.1/", NULL, POL_DIRECT, NULL, 0, NULL },
		{ "POST", "http://intranet/", NULL, POL_DIRECT, NULL, 0, NULL },
		{ "HEAD", "http://intranet/", NULL, POL_DIRECT, NULL, 0, NULL },
		{ "get", "http://intranet/", NULL, POL_DIRECT, NULL, 0, NULL },
		{ "CONNECT", "intranet:443", NULL, POL_DIRECT, NULL, 0, NULL },
	};
	tp_run(p, NULL, NULL, rows, sizeof(rows) / sizeof(rows[0]));

	/* The caller's buffer: strlen(url) + domain + NUL exactly fits; one less does not. */
	struct pol_decision d;
	char loc[64];
	const char *url = "http://intranet/";
	size_t need = strlen(url) + strlen(".corp.example") + 1;
	assert_int_equal(tp_decide(p, "GET", url, NULL, NULL, NULL, &d, loc, need), POL_REDIRECT);
	assert_string_equal(d.location, "http://intranet.corp.example/");
	assert_int_equal(tp_decide(p, "GET", url, NULL, NULL, NULL, &d, loc, need - 1),
	                 POL_INVALID);
	assert_string_equal(d.rule, "URL too long for the ProxyDomain redirect");
	assert_int_equal(tp_decide(p, "GET", url, NULL, NULL, NULL, &d, NULL, 0), POL_INVALID);
	pol_free(&p);
}

/* ---- decision order and need_addrs ---- */

static void
test_decision_order(void **state)
{
	(void)state;
	struct pol *p = tp_build("ProxyDomain .corp.example\n"
	                         "ProxyBlock intranet secret.corp.example 10.66.0.0/16\n"
	                         "NoProxy .corp.example 10.0.0.0/8\n"
	                         "ProxyRemote * http://fw:3128\n"
	                         "ProxyRemoteFallback direct\n");
	static const struct tp_row rows[] = {
		/* ProxyDomain before ProxyBlock: the redirect wins, the new name is checked. */
		{ "GET", "http://intranet/", NULL, POL_REDIRECT,
		  "ProxyDomain .corp.example (t:1)", 0, "http://intranet.corp.example/" },
		{ "POST", "http://intranet/", NULL, POL_BLOCK, "ProxyBlock intranet (t:2)", 0,
		  NULL },
		{ "GET", "http://intranet.corp.example/", NULL, POL_BLOCK,
		  "ProxyBlock intranet (t:2)", 0, NULL },
		/* ProxyBlock before NoProxy, by name and by address. */
		{ "GET", "http://secret.corp.example/", NULL, POL_BLOCK,
		  "ProxyBlock secret.corp.example (t:2)", 0, NULL },
		{ "GET", "http://10.66.1.1/", NULL, POL_BLOCK, "ProxyBlock 10.66.0.0/16 (t:2)", 0,
		  NULL },
		{ "GET", "http://wiki.corp.example/", NULL, POL_DIRECT,
		  "NoProxy .corp.example (t:3)", 1, NULL },
		{ "GET", "http://wiki.corp.example/", "10.66.0.9", POL_BLOCK,
		  "ProxyBlock 10.66.0.0/16 (t:2)", 0, NULL },
		{ "GET", "http://wiki.corp.example/", "10.1.0.9", POL_DIRECT,
		  "NoProxy .corp.example (t:3)", 0, NULL },
		/* NoProxy before ProxyRemote. */
		{ "GET", "http://10.1.1.1/", NULL, POL_DIRECT, "NoProxy 10.0.0.0/8 (t:3)", 0,
		  NULL },
		{ "GET", "http://www.example.com/", "10.1.1.1", POL_DIRECT,
		  "NoProxy 10.0.0.0/8 (t:3)", 0, NULL },
		/* ProxyRemote; the address check applies through the parent too (need_addrs). */
		{ "GET", "http://www.example.com/", NULL, POL_PARENTS,
		  "ProxyRemote * http://fw:3128 (t:4)", 1, "fw:3128" },
		{ "GET", "http://www.example.com/", "10.66.2.2", POL_BLOCK,
		  "ProxyBlock 10.66.0.0/16 (t:2)", 0, NULL },
		{ "GET", "http://www.example.com/", "93.184.216.34", POL_PARENTS, NULL, 0,
		  "fw:3128" },
	};
	tp_run(p, NULL, NULL, rows, sizeof(rows) / sizeof(rows[0]));

	struct pol_decision d;
	char loc[256];
	tp_decide(p, "GET", "http://www.example.com/", "93.184.216.34", NULL, NULL, &d, loc,
	          sizeof(loc));
	assert_int_equal(d.fallback_direct, 1);
	pol_free(&p);

	p = tp_build("ProxyRemote * http://fw:3128\n");
	tp_decide(p, "GET", "http://www.example.com/", NULL, NULL, NULL, &d, loc, sizeof(loc));
	assert_int_equal(d.action, POL_PARENTS);
	assert_int_equal(d.fallback_direct, 0);
	assert_int_equal(d.need_addrs, 0);  /* no address rule at all */
	pol_free(&p);
}

static void
test_need_addrs_only_when_an_address_rule_could_change_it(void **state)
{
	(void)state;
	struct pol_addrset *blocked = tp_addrset("bad.example=192.0.2.1");
	struct pol_addrset *empty = tp_addrset("");
	static const struct {
		const char *script;
		int use_set;
		const char *url;
		enum pol_action action;
		int need;
	} rows[] = {
		{ "ProxyBlock bad.example\n", 0, "http://x.org/", POL_DIRECT, 0 },
		{ "ProxyBlock bad.example\n", 1, "http://x.org/", POL_DIRECT, 1 },
		{ "ProxyBlock bad.example\n", 2, "http://x.org/", POL_DIRECT, 0 },
		{ "ProxyBlock 10.0.0.0/8\n", 0, "http://x.org/", POL_DIRECT, 1 },
		{ "ProxyBlock 10.0.0.0/8\n", 0, "http://10.0.0.1/", POL_BLOCK, 0 },
		{ "ProxyBlock 10.0.0.0/8\n", 0, "http://11.0.0.1/", POL_DIRECT, 0 },
		{ "ProxyRemote * http://fw:1\n", 1, "http://x.org/", POL_PARENTS, 1 },
		{ "ProxyRemote * http://fw:1\nNoProxy 10.0.0.0/8\n", 0, "http://x.org/",
		  POL_PARENTS, 1 },
		{ "ProxyRemote * http://fw:1\nNoProxy .lan\n", 0, "http://x.org/", POL_PARENTS, 0 },
		{ "ProxyRemote * http://fw:1\nNoProxy .lan\n", 1, "http://a.lan/", POL_DIRECT, 1 },
		{ "ProxyRemote ftp http://fw:1\nNoProxy 10.0.0.0/8\n", 0, "http://x.org/",
		  POL_DIRECT, 0 },
		{ "ProxyBlock casino\n", 1, "http://casino.org/", POL_BLOCK, 0 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct pol *p = tp_build(rows[i].script);
		struct pol_decision d;
		char loc[64];
		const struct pol_addrset *s = rows[i].use_set == 1 ? blocked :
		                              rows[i].use_set == 2 ? empty : NULL;

		tp_decide(p, "GET", rows[i].url, NULL, s, NULL, &d, loc, sizeof(loc));
		if (d.action != rows[i].action || d.need_addrs != rows[i].need)
			fail_msg("row %zu (%s): got %s need=%d", i, rows[i].url,
			         tp_action_names[d.action], d.need_addrs);
		pol_free(&p);
	}
	assert_int_equal(pol_addrset_count(empty), 0);
	pol_addrset_free(&blocked);
	pol_addrset_free(&empty);
}

/* ---- builder errors and state ---- */

static void
test_builder_errors(void **state)
{
	(void)state;
	static const struct {
		const char *line, *err;
	} rows[] = {
		{ "ProxyBlock *.example.com",
		  "'*' must stand alone (it blocks everything); for a domain write .example.com" },
		{ "ProxyBlock http://example.com/",
		  "a URL is not a host name: list the host (example.com)" },
		{ "ProxyBlock 10.0.0.0/33", "not a valid IP address or subnet" },
		{ "ProxyBlock 1.2.3.4.5", "not a valid IP address or subnet" },
		{ "ProxyBlock 2001:db8::/129", "not a valid IP address or subnet" },
		{ "ProxyBlock a..b", NULL },
		{ "ProxyBlock bad!name", NULL },
		{ "ProxyBlock ..", NULL },
		{ "NoProxy *",
		  "'*' is not a NoProxy form (Domain .example.com, SubNet, IP address or host "
		  "name)" },
		{ "NoProxy 10.0.0.0/40", "not a valid IP address or subnet" },
		{ "NoProxy 300.1", "not a valid IP address or subnet" },
		{ "NoProxy fe80::/200", "not a valid IP address or subnet" },
		{ "NoProxy a..b", NULL },
		{ "NoProxy -", NULL },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const char *e = tp_error(rows[i].line);

		if (!e || (rows[i].err && strcmp(e, rows[i].err) != 0))
			fail_msg("\"%s\": got \"%s\", expected \"%s\"", rows[i].line,
			         e ? e : "(ok)", rows[i].err ? rows[i].err : "an error");
	}
	/* A label of 64 letters is refused, 63 accepted. */
	char line[128];
	char label[65];
	memset(label, 'a', 64);
	label[64] = '\0';
	snprintf(line, sizeof(line), "ProxyBlock %.63s.com", label);
	assert_null(tp_error(line));
	snprintf(line, sizeof(line), "ProxyBlock %.64s.com", label);
	assert_non_null(tp_error(line));

	/* After pol_compile every builder fails; empty arguments fail. */
	struct pol *p = NULL;
	const char *err = NULL;
	assert_int_equal(pol_new(&p), 0);
	assert_int_equal(pol_block_add(p, "", "t:1", &err), -1);
	assert_string_equal(err, "empty argument");
	assert_int_equal(pol_compile(p, NULL, 0), 0);
	assert_int_equal(pol_compile(p, NULL, 0), -1);
	assert_int_equal(pol_block_add(p, "x.org", "t:1", &err), -1);
	assert_string_equal(err, "the policy is already compiled");
	assert_int_equal(pol_noproxy_add(p, ".x.org", "t:1", &err), -1);
	assert_int_equal(pol_remote_add(p, "*", "http://fw:1", NULL, "t:1", &err), -1);
	assert_int_equal(pol_remote_match_add(p, "x", "http://fw:1", NULL, "t:1", &err), -1);
	assert_int_equal(pol_domain_set(p, ".x.org", "t:1", &err), -1);
	pol_free(&p);
	pol_free(&p);   /* NULL is fine */

	/* Deciding with an uncompiled policy is refused. */
	struct pol_decision d;
	struct pol_req req = { .method = "GET", .scheme = "http", .host = "x", .port = 80,
	                       .url = "http://x/" };
	assert_int_equal(pol_new(&p), 0);
	assert_int_equal(pol_decide(p, &req, NULL, NULL, NULL, 0, &d), POL_INVALID);
	assert_null(pol_block_name(p, 0));
	pol_free(&p);
	assert_int_equal(pol_decide(NULL, &req, NULL, NULL, NULL, 0, &d), POL_INVALID);
}

/* ---- conflicts ---- */

static void
test_conflict_warnings(void **state)
{
	(void)state;
	char warn[4096];
	int n;
	struct pol *p = tp_build_w("ProxyBlock corp\n"                   /* 1 */
	                           "NoProxy .corp.example\n"             /* 2 */
	                           "ProxyBlock 10.0.0.0/8\n"             /* 3 */
	                           "NoProxy 10.1.0.0/16\n"               /* 4 */
	                           "ProxyBlock example.com example.com\n" /* 5 */
	                           "ProxyBlock 10.2.0.0/16\n"            /* 6 */
	                           "ProxyRemote * http://fw:3128\n"      /* 7 */
	                           "ProxyDomain .office.example\n"       /* 8 */
	                           "NoProxy wiki.office.example\n"       /* 9 */
	                           "ProxyBlock .lan\n"                   /* 10 */
	                           "NoProxy .lan\n"                      /* 11 */
	                           "ProxyBlock casino casino\n",         /* 12 */
	                           warn, sizeof(warn), &n);
	static const char *const expect[] = {
		"t:5: ProxyBlock example.com adds nothing to ProxyBlock example.com (t:5)\n",
		"t:12: ProxyBlock casino adds nothing to ProxyBlock casino (t:12)\n",
		"t:6: ProxyBlock 10.2.0.0/16 adds nothing to ProxyBlock 10.0.0.0/8 (t:3)\n",
		"t:2: NoProxy .corp.example is shadowed by ProxyBlock corp (t:1): its hosts are "
		"refused\n",
		"t:11: NoProxy .lan is shadowed by ProxyBlock .lan (t:10): the hosts below lan are "
		"refused\n",
		"t:4: NoProxy 10.1.0.0/16 is shadowed by ProxyBlock 10.0.0.0/8 (t:3): its "
		"addresses are refused\n",
		"ProxyDomain .office.example (t:8) is not covered by NoProxy: the proxy may send "
		"its hosts to a parent while the PAC file sends browsers to them directly (add "
		"NoProxy .office.example)\n",
	};
	size_t total = 0;
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		if (!strstr(warn, expect[i]))
			fail_msg("missing warning: %s-- got:\n%s", expect[i], warn);
		total += strlen(expect[i]);
	}
	assert_int_equal(n, (int)(sizeof(expect) / sizeof(expect[0])));
	assert_int_equal(strlen(warn), total);
	pol_free(&p);

	/* A small buffer keeps whole lines only, the count is complete. */
	char small[100];
	p = tp_build_w("ProxyBlock *\nNoProxy .a.example\nProxyRemoteFallback direct\n", small,
	               sizeof(small), &n);
	assert_int_equal(n, 3);
	assert_true(strlen(small) < sizeof(small));
	assert_true(strlen(small) == 0 || small[strlen(small) - 1] == '\n');
	pol_free(&p);
	p = tp_build_w("ProxyBlock *\nNoProxy .a.example\nProxyRemoteFallback direct\n", warn,
	               sizeof(warn), &n);
	assert_non_null(strstr(warn, "ProxyBlock * (t:1) refuses every request"));
	assert_non_null(strstr(warn, "NoProxy has no effect without ProxyRemote"));
	assert_non_null(strstr(warn, "ProxyRemoteFallback direct has no effect without "
	                             "ProxyRemote"));
	pol_free(&p);

	/* ProxyDomain into blocked names; covered ProxyDomain; a clean config. */
	p = tp_build_w("ProxyDomain .corp.example\nProxyBlock .corp.example\n", warn, sizeof(warn),
	               &n);
	assert_int_equal(n, 1);
	assert_string_equal(warn, "ProxyDomain .corp.example (t:1) redirects to host names that "
	                    "ProxyBlock .corp.example (t:2) refuses\n");
	pol_free(&p);
	p = tp_build_w("ProxyDomain .corp.example\nNoProxy .example 10.0.0.0/8\n"
	               "ProxyRemote * http://fw:1\nProxyBlock ads.example.com 192.168.0.0/16\n",
	               warn, sizeof(warn), &n);
	assert_int_equal(n, 0);
	assert_string_equal(warn, "");
	pol_free(&p);
}

/* ---- address sets ---- */

static void
test_addrset_build_replace_forget(void **state)
{
	(void)state;
	struct pol_addrset_builder *b = NULL;
	struct sockaddr_storage ss[8];
	struct pol_addrset *s;
	size_t n;

	assert_int_equal(pol_addrset_builder_new(&b), 0);
	n = tp_addrs("192.0.2.1 2001:db8::1 192.0.2.1", ss, 8);
	assert_int_equal(pol_addrset_builder_set(b, "a.example", ss, n), 0);
	n = tp_addrs("198.51.100.7", ss, 8);
	assert_int_equal(pol_addrset_builder_set(b, "b.example", ss, n), 0);
	s = pol_addrset_build(b);
	assert_int_equal(pol_addrset_count(s), 3);   /* duplicates merged */
	tp_addrs("192.0.2.1 ::ffff:192.0.2.1 2001:db8::1 198.51.100.7 192.0.2.2", ss, 8);
	assert_string_equal(pol_addrset_lookup(s, (struct sockaddr *)&ss[0]), "a.example");
	assert_string_equal(pol_addrset_lookup(s, (struct sockaddr *)&ss[1]), "a.example");
	assert_string_equal(pol_addrset_lookup(s, (struct sockaddr *)&ss[2]), "a.example");
	assert_string_equal(pol_addrset_lookup(s, (struct sockaddr *)&ss[3]), "b.example");
	assert_null(pol_addrset_lookup(s, (struct sockaddr *)&ss[4]));
	pol_addrset_free(&s);

	/* Replace a name's addresses, then forget it; the built set is independent. */
	n = tp_addrs("192.0.2.2", ss, 8);
	assert_int_equal(pol_addrset_builder_set(b, "a.example", ss, n), 0);
	struct pol_addrset *s2 = pol_addrset_build(b);
	assert_int_equal(pol_addrset_builder_set(b, "b.example", NULL, 0), 0);
	struct pol_addrset *s3 = pol_addrset_build(b);
	assert_int_equal(pol_addrset_count(s2), 2);
	assert_int_equal(pol_addrset_count(s3), 1);
	tp_addrs("192.0.2.1 192.0.2.2 198.51.100.7", ss, 3);
	assert_null(pol_addrset_lookup(s2, (struct sockaddr *)&ss[0]));
	assert_string_equal(pol_addrset_lookup(s2, (struct sockaddr *)&ss[1]), "a.example");
	assert_string_equal(pol_addrset_lookup(s2, (struct sockaddr *)&ss[2]), "b.example");
	assert_null(pol_addrset_lookup(s3, (struct sockaddr *)&ss[2]));
	pol_addrset_free(&s2);
	pol_addrset_free(&s3);

	/* Many names: the builder grows; non-IP families are skipped. */
	for (unsigned i = 0; i < 5000; i++) {
		char name[32];
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss[0];

		memset(ss, 0, sizeof(ss));
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(0x0a000000u + i);
		ss[1].ss_family = AF_UNIX;
		snprintf(name, sizeof(name), "h%u.example", i);
		assert_int_equal(pol_addrset_builder_set(b, name, ss, 2), 0);
	}
	s = pol_addrset_build(b);
	assert_int_equal(pol_addrset_count(s), 5001);
	struct sockaddr_in q = { .sin_family = AF_INET };
	q.sin_addr.s_addr = htonl(0x0a000000u + 4321);
	assert_string_equal(pol_addrset_lookup(s, (struct sockaddr *)&q), "h4321.example");
	pol_addrset_free(&s);
	pol_addrset_builder_free(&b);
	assert_null(pol_addrset_lookup(NULL, (struct sockaddr *)&q));
	assert_int_equal(pol_addrset_count(NULL), 0);
}

/* ---- PAC ---- */

/* The index of the first proxy the PAC picks for host h (normalised), as its JS does. */
static size_t
tp_pac_pick(const char *h, size_t n)
{
	unsigned long x = 0;

	for (const char *c = h; *c; c++)
		x = (x * 31 + (unsigned char)*c) % 1000003;
	return x % n;
}

/* "PROXY a; PROXY b[; DIRECT]" rotated for host h. */
static void
tp_pac_expect(char *out, size_t len, const char *h, const char *const *proxies, size_t n,
              int direct)
{
	size_t k = tp_pac_pick(h, n), o = 0;

	out[0] = '\0';
	for (size_t j = 0; j < n; j++)
		o += (size_t)snprintf(out + o, len - o, "%sPROXY %s", j ? "; " : "",
		                      proxies[(k + j) % n]);
	if (direct)
		snprintf(out + o, len - o, "; DIRECT");
}

static const char *
tp_pac_eval_script(void)
{
	static char path[1024];
	const char *src = getenv("GH_SRCDIR");

	if (src) {
		snprintf(path, sizeof(path), "%s/tests/pac/pac_eval.js", src);
		return path;
	}
	/* __FILE__ is tests/unit/test_policy.c, relative to the top directory or absolute. */
	snprintf(path, sizeof(path), "%s", __FILE__);
	char *slash = strrchr(path, '/');
	if (!slash)
		return "tests/pac/pac_eval.js";
	snprintf(slash, sizeof(path) - (size_t)(slash - path), "/../pac/pac_eval.js");
	return path;
}

struct tp_pac_row {
	const char *url, *host;
	const char *expect;  /* "DIRECT", or NULL: the proxies rotated for the host */
};

/* Generate the PAC for p and evaluate it in node over rows; fails the test on any mismatch. */
static void
tp_pac_check(const struct pol *p, const char *const *proxies, size_t n, int direct,
             const struct tp_pac_row *rows, size_t nrows, char **pac_out)
{
	char *pac = NULL, dir[] = "/tmp/gh-pac-XXXXXX", pacpath[64], tabpath[64], cmd[1400];
	size_t len = 0;
	const char *err = NULL;
	FILE *f;

	if (system("command -v node >/dev/null 2>&1") != 0)
		fail_msg("node is not installed: the PAC tests need it (scripts/test-deps.sh "
		         "installs nodejs)");
	assert_int_equal(pol_pac_generate(p, proxies, n, direct, &pac, &len, &err), 0);
	assert_non_null(pac);
	assert_int_equal(strlen(pac), len);
	assert_non_null(mkdtemp(dir));
	snprintf(pacpath, sizeof(pacpath), "%s/proxy.pac", dir);
	snprintf(tabpath, sizeof(tabpath), "%s/table.json", dir);
	f = fopen(pacpath, "w");
	assert_non_null(f);
	fputs(pac, f);
	fclose(f);
	f = fopen(tabpath, "w");
	assert_non_null(f);
	fputs("[\n", f);
	for (size_t i = 0; i < nrows; i++) {
		char exp[512], h[300];
		size_t hl = strlen(rows[i].host);

		/* The host as the PAC normalises it, for the rotation. */
		snprintf(h, sizeof(h), "%s", rows[i].host);
		for (char *c = h; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		if (h[0] == '[' && hl > 1 && h[hl - 1] == ']') {
			memmove(h, h + 1, hl - 2);
			h[hl - 2] = '\0';
		}
		if (strlen(h) > 1 && h[strlen(h) - 1] == '.')
			h[strlen(h) - 1] = '\0';
		if (rows[i].expect)
			snprintf(exp, sizeof(exp), "%s", rows[i].expect);
		else
			tp_pac_expect(exp, sizeof(exp), h, proxies, n, direct);
		fprintf(f, "  {\"url\": \"%s\", \"host\": \"%s\", \"expect\": \"%s\"}%s\n",
		        rows[i].url, rows[i].host, exp, i + 1 < nrows ? "," : "");
	}
	fputs("]\n", f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "node %s %s %s", tp_pac_eval_script(), pacpath, tabpath);
	int rc = system(cmd);
	if (rc != 0) {
		print_error("PAC under test (%s):\n%s\n", pacpath, pac);
		fail_msg("pac_eval failed (%d) on %s", rc, pacpath);
	}
	unlink(pacpath);
	unlink(tabpath);
	rmdir(dir);
	if (pac_out)
		*pac_out = pac;
	else
		free(pac);
}

static void
test_pac_office_policy_in_node(void **state)
{
	(void)state;
	struct pol *p = tp_build("ProxyDomain .corp.example\n"
	                         "NoProxy .lan wiki.intranet 10.0.0.0/8 192.168.1.0/24 fd00::/8\n"
	                         "ProxyBlock secret.lan casino 10.9.0.0/16 ads.example.net\n"
	                         "ProxyBlock hr.corp.example fd00:bad::/32\n"
	                         "ProxyRemote * http://fw:3128\n");
	static const char *const proxies[] = { "gw1.corp.example:3128", "gw2.corp.example:3128",
	                                       "[2001:db8::3]:3128" };
	static const struct tp_pac_row rows[] = {
		{ "http://intranet/", "intranet", "DIRECT" },
		{ "http://www.corp.example/", "www.corp.example", "DIRECT" },
		{ "http://corp.example/", "corp.example", "DIRECT" },
		{ "http://Mixed.Corp.Example./", "Mixed.Corp.Example.", "DIRECT" },
		{ "http://nas.lan/", "nas.lan", "DIRECT" },
		{ "http://wiki.intranet/", "wiki.intranet", "DIRECT" },
		{ "http://10.1.2.3/", "10.1.2.3", "DIRECT" },
		{ "http://192.168.1.7/", "192.168.1.7", "DIRECT" },
		{ "http://[fd00::1]/", "fd00::1", "DIRECT" },
		{ "http://[fd12:3::1]/", "[fd12:3::1]", "DIRECT" },
		/* Blocked inside DIRECT space, or by word: to the proxy, which refuses them. */
		{ "http://secret.lan/", "secret.lan", NULL },
		{ "http://a.secret.lan/", "a.secret.lan", NULL },
		{ "http://casino/", "casino", NULL },
		{ "http://casino.lan/", "casino.lan", NULL },
		{ "http://10.9.1.1/", "10.9.1.1", NULL },
		{ "http://hr.corp.example/", "hr.corp.example", NULL },
		{ "http://[fd00:bad::1]/", "[fd00:bad::1]", NULL },
		{ "http://[fd00:bad0::1]/", "fd00:bad0::1", "DIRECT" },
		/* Everything else: the rotated proxies. */
		{ "http://x.wiki.intranet/", "x.wiki.intranet", NULL },
		{ "http://notcorp.example/", "notcorp.example", NULL },
		{ "http://192.168.2.7/", "192.168.2.7", NULL },
		{ "http://11.0.0.1/", "11.0.0.1", NULL },
		{ "http://[fe80::1]/", "fe80::1", NULL },
		{ "http://[::1]/", "::1", NULL },
		{ "http://www.example.com/", "www.example.com", NULL },
		{ "https://www.example.org/", "www.example.org", NULL },
		{ "http://a.b/", "a.b", NULL },
		{ "http://ads.example.net/", "ads.example.net", NULL },
	};
	char *pac = NULL;
	tp_pac_check(p, proxies, 3, 1, rows, sizeof(rows) / sizeof(rows[0]), &pac);

	/* The spread really spreads over this table, ProxyBlock names outside DIRECT space are not
	 * in the file, and nothing names the config file. */
	int seen[3] = { 0 };
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		seen[tp_pac_pick(rows[i].host, 3)] = 1;
	assert_true(seen[0] && seen[1] && seen[2]);
	assert_null(strstr(pac, "ads.example.net"));
	assert_null(strstr(pac, "t:1"));
	assert_non_null(strstr(pac, "isInNet(h, \"10.0.0.0\", \"255.0.0.0\")"));
	assert_non_null(strstr(pac, "dnsDomainIs(h, \".lan\")"));

	/* Deterministic output (ETag). */
	char *again = NULL;
	size_t len;
	const char *err;
	assert_int_equal(pol_pac_generate(p, proxies, 3, 1, &again, &len, &err), 0);
	assert_string_equal(pac, again);
	free(again);
	free(pac);
	pol_free(&p);
}

static void
test_pac_large_lists_use_suffix_maps(void **state)
{
	(void)state;
	char script[8192];
	size_t o = 0;

	o += (size_t)snprintf(script + o, sizeof(script) - o, "ProxyRemote * http://fw:1\n");
	for (int i = 0; i < 40; i++)
		o += (size_t)snprintf(script + o, sizeof(script) - o,
		                      "NoProxy .d%d.example h%d.host\n", i, i);
	for (int i = 0; i < 30; i++)
		o += (size_t)snprintf(script + o, sizeof(script) - o,
		                      "ProxyBlock bad%d.d%d.example .sub%d.d%d.example\n",
		                      i, i, i, i);
	struct pol *p = tp_build(script);
	static const char *const proxies[] = { "p:8080" };
	static const struct tp_pac_row rows[] = {
		{ "http://d0.example/", "d0.example", "DIRECT" },
		{ "http://x.y.d39.example/", "x.y.d39.example", "DIRECT" },
		{ "http://h7.host/", "h7.host", "DIRECT" },
		{ "http://x.h7.host/", "x.h7.host", "PROXY p:8080" },
		{ "http://d40.example/", "d40.example", "PROXY p:8080" },
		{ "http://bad3.d3.example/", "bad3.d3.example", "PROXY p:8080" },
		{ "http://w.bad3.d3.example/", "w.bad3.d3.example", "PROXY p:8080" },
		{ "http://sub4.d4.example/", "sub4.d4.example", "DIRECT" },
		{ "http://w.sub4.d4.example/", "w.sub4.d4.example", "PROXY p:8080" },
		{ "http://constructor/", "constructor", "DIRECT" },
		{ "http://hasownproperty.example/", "hasownproperty.example", "PROXY p:8080" },
	};
	char *pac = NULL;
	tp_pac_check(p, proxies, 1, 0, rows, sizeof(rows) / sizeof(rows[0]), &pac);
	assert_non_null(strstr(pac, "var GH_DIRECT"));
	assert_non_null(strstr(pac, "var GH_BLOCKED"));
	assert_null(strstr(pac, "; DIRECT"));   /* no DIRECT fallback in the proxy list */
	free(pac);
	pol_free(&p);
}

static void
test_pac_block_star_and_minimal_policies(void **state)
{
	(void)state;
	static const char *const proxies[] = { "a:1", "b:2" };
	struct pol *p = tp_build("ProxyBlock *\nNoProxy .lan\nProxyDomain .corp.example\n");
	static const struct tp_pac_row star[] = {
		{ "http://intranet/", "intranet", NULL },
		{ "http://x.lan/", "x.lan", NULL },
		{ "http://10.0.0.1/", "10.0.0.1", NULL },
	};
	tp_pac_check(p, proxies, 2, 0, star, sizeof(star) / sizeof(star[0]), NULL);
	pol_free(&p);

	p = tp_build("");
	static const struct tp_pac_row empty[] = {
		{ "http://intranet/", "intranet", "DIRECT" },
		{ "http://www.example.com/", "www.example.com", NULL },
		{ "http://[::1]:8080/", "[::1]", NULL },
		{ "http://10.0.0.1/", "10.0.0.1", NULL },
	};
	tp_pac_check(p, proxies, 2, 1, empty, sizeof(empty) / sizeof(empty[0]), NULL);

	/* Bad arguments. */
	char *out = (char *)1;
	const char *err = NULL;
	static const char *const bad[] = { "a;b:1" };
	static const char *const noport[] = { "host" };
	assert_int_equal(pol_pac_generate(p, proxies, 0, 0, &out, NULL, &err), -1);
	assert_null(out);
	assert_string_equal(err, "no PAC proxy given (PacProxy host:port)");
	assert_int_equal(pol_pac_generate(p, bad, 1, 0, &out, NULL, &err), -1);
	assert_int_equal(pol_pac_generate(p, noport, 1, 0, &out, NULL, &err), -1);
	pol_free(&p);
	assert_int_equal(pol_pac_generate(NULL, proxies, 2, 0, &out, NULL, &err), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_block_every_form),
		cmocka_unit_test(test_block_star_blocks_everything_but_proxydomain_comes_first),
		cmocka_unit_test(test_block_by_resolved_addresses_of_listed_names),
		cmocka_unit_test(test_block_many_words_and_long_hosts),
		cmocka_unit_test(test_noproxy_four_forms),
		cmocka_unit_test(test_noproxy_hostname_by_address_needs_the_set),
		cmocka_unit_test(test_remote_match_kinds_and_failover_order),
		cmocka_unit_test(test_remote_prefix_is_normalized),
		cmocka_unit_test(test_remote_prefix_and_regex_match_connect_as_https_url),
		cmocka_unit_test(test_remote_server_forms_and_credentials),
		cmocka_unit_test(test_remote_https_parents),
		cmocka_unit_test(test_remote_errors),
		cmocka_unit_test(test_base64_rfc4648_vectors),
		cmocka_unit_test(test_proxydomain_redirects_unqualified_gets_only),
		cmocka_unit_test(test_decision_order),
		cmocka_unit_test(test_need_addrs_only_when_an_address_rule_could_change_it),
		cmocka_unit_test(test_builder_errors),
		cmocka_unit_test(test_conflict_warnings),
		cmocka_unit_test(test_addrset_build_replace_forget),
		cmocka_unit_test(test_block_pending_until_first_answers),
		cmocka_unit_test(test_pac_office_policy_in_node),
		cmocka_unit_test(test_pac_large_lists_use_suffix_maps),
		cmocka_unit_test(test_pac_block_star_and_minimal_policies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
