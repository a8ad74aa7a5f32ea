/*
 * test_acl.c - policy/: address and subnet forms, port lists, and access decisions of
 * <Proxy>/<ProxyMatch> sections under Apache 2.4 (Require) and 2.2 (Order/Allow/Deny)
 * semantics, including section order, URL pattern kinds and POL_NEED_NAME.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/pol.h"

/* ---- helpers ---- */

/* A client address from text: IPv6 when it has a colon. */
static const struct sockaddr *
acl_addr(const char *text, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(text, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
	}
	return (const struct sockaddr *)ss;
}

/* Split a copy of line into words (space-separated); returns the count. */
static size_t
acl_words(char *line, char **w, size_t max)
{
	size_t n = 0;
	char *save = NULL;

	for (char *t = strtok_r(line, " ", &save); t && n < max; t = strtok_r(NULL, " ", &save))
		w[n++] = t;
	return n;
}

/* Stand-ins for daemon/pauth.h's settings: the acl only hands the pointers back. */
static const int acl_authn[4] = { 0, 1, 2, 3 };

/* Build an acl from a small script, one directive per line:
 *   "Proxy PATTERN" / "ProxyMatch REGEX" open a section (named "t:LINE" in descriptions),
 *   "Require ...", "Order X", "Allow from ...", "Deny from ..." add to the current section;
 *   "Limit M...", "LimitExcept M..." open a method block in it, "EndLimit" closes it;
 *   "<RequireAll>", "<RequireAny>", "<RequireNone>" open a container, "</Require...>" closes
 *   the innermost; "Authn N" attaches acl_authn[N] ("AuthnOff N": as AuthType None's); "Line F:L" is pol_acl_rule_line.
 * Every directive must succeed. */
static struct pol_acl *
acl_build(const char *script)
{
	struct pol_acl *acl = NULL;
	struct pol_acl_section *sec = NULL, *top = NULL;
	char *copy = strdup(script), *save = NULL;
	unsigned lineno = 0;

	assert_non_null(copy);
	assert_int_equal(pol_acl_new(&acl), 0);
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *w[32], where[128];
		size_t n = acl_words(line, w, 32);
		const char *err = NULL;
		int rc = 0;

		lineno++;
		assert_true(n >= 1);
		if (strcmp(w[0], "Proxy") == 0 || strcmp(w[0], "ProxyMatch") == 0) {
			int re = strcmp(w[0], "ProxyMatch") == 0;

			assert_int_equal(n, 2);
			snprintf(where, sizeof(where), "<%s %s> at t:%u", w[0], w[1], lineno);
			sec = top = pol_acl_section_add(acl, re ? POL_SEC_REGEX : POL_SEC_PREFIX, w[1],
			                                where, &err);
			if (!sec)
				fail_msg("section %s: %s", w[1], err);
			continue;
		}
		if (strcmp(w[0], "Limit") == 0 || strcmp(w[0], "LimitExcept") == 0) {
			assert_non_null(top);
			snprintf(where, sizeof(where), "<%s %s> at t:%u", w[0], w[1], lineno);
			sec = pol_acl_limit_add(top, w[0][5] == 'E', w + 1, n - 1, where, &err);
			if (!sec)
				fail_msg("limit %s: %s", w[1], err);
			continue;
		}
		if (strcmp(w[0], "EndLimit") == 0) {
			sec = top;
			continue;
		}
		assert_non_null(sec);
		if (strncmp(w[0], "<Require", 8) == 0) {
			w[0][strlen(w[0]) - 1] = '\0';
			rc = pol_acl_container_open(sec, w[0] + 1, &err);
		} else if (strncmp(w[0], "</Require", 9) == 0) {
			rc = pol_acl_container_close(sec, &err);
		} else if (strcmp(w[0], "Authn") == 0 || strcmp(w[0], "AuthnOff") == 0) {
			assert_int_equal(n, 2);
			rc = pol_acl_set_authn(sec, &acl_authn[atoi(w[1])], w[0][5] == 'O');
		} else if (strcmp(w[0], "Line") == 0) {
			rc = pol_acl_rule_line(sec, w[1]);
		} else if (strcmp(w[0], "Require") == 0)
			rc = pol_acl_require(sec, w + 1, n - 1, &err);
		else if (strcmp(w[0], "Order") == 0)
			rc = pol_acl_order(sec, w[1], &err);
		else if (strcmp(w[0], "Allow") == 0 || strcmp(w[0], "Deny") == 0)
			rc = pol_acl_allow(sec, w[0][0] == 'D', w + 2, n - 2, &err);
		else
			fail_msg("bad script line %s", w[0]);
		if (rc != 0)
			fail_msg("line %u: %s", lineno, err);
	}
	free(copy);
	return acl;
}

/* ---- nets ---- */

struct net_case {
	const char *text;
	const char *formatted;   /* NULL: must fail */
	const char *err;         /* expected message when failing, or NULL for any */
};

static const struct net_case net_cases[] = {
	{ "10.1.2.3", "10.1.2.3/32", NULL },
	{ "0.0.0.0", "0.0.0.0/32", NULL },
	{ "192.168", "192.168.0.0/16", NULL },
	{ "10.", "10.0.0.0/8", NULL },
	{ "10", "10.0.0.0/8", NULL },
	{ "172.16.5", "172.16.5.0/24", NULL },
	{ "172.16.5.", "172.16.5.0/24", NULL },
	{ "10.0.0.0/255.0.0.0", "10.0.0.0/8", NULL },
	{ "192.168.1.0/255.255.255.128", "192.168.1.0/25", NULL },
	{ "10.0.0.0/0.0.0.0", "0.0.0.0/0", NULL },
	{ "10.0.0.0/8", "10.0.0.0/8", NULL },
	{ "10.1.2.3/8", "10.0.0.0/8", NULL },           /* host bits masked off */
	{ "192.168.77.200/27", "192.168.77.192/27", NULL },
	{ "0.0.0.0/0", "0.0.0.0/0", NULL },
	{ "1.2.3.4/32", "1.2.3.4/32", NULL },
	{ "::1", "::1/128", NULL },
	{ "::", "::/128", NULL },
	{ "::/0", "::/0", NULL },
	{ "fe80::/10", "fe80::/10", NULL },
	{ "2001:db8:1:2::5/32", "2001:db8::/32", NULL },
	{ "2001:DB8::/48", "2001:db8::/48", NULL },
	{ "::ffff:10.0.0.0/104", "::ffff:10.0.0.0/104", NULL },
	{ "2001:db8::1/127", "2001:db8::/127", NULL },
	/* bad forms */
	{ "", NULL, "not an IP address or subnet" },
	{ "example.org", NULL, "not an IP address or subnet" },
	{ "10.1.2.3.", NULL, "not an IP address or subnet" },
	{ "10..1", NULL, "not an IP address or subnet" },
	{ ".10.1", NULL, "not an IP address or subnet" },
	{ "256.1.2.3", NULL, "not an IP address or subnet" },
	{ "1.2.3.4.5", NULL, "not an IP address or subnet" },
	{ "010.1.2.3", NULL, "not an IP address or subnet" },
	{ "1.2.3.-4", NULL, "not an IP address or subnet" },
	{ "10.0.0.0/33", NULL, "bad prefix length" },
	{ "10.0.0.0/", NULL, "bad prefix length" },
	{ "10.0.0.0/08", NULL, "bad prefix length" },
	{ "10.0.0.0/-1", NULL, "bad prefix length" },
	{ "10.0.0.0/255.0.255.0", NULL, "netmask is not contiguous" },
	{ "10.0.0.0/0.255.255.255", NULL, "netmask is not contiguous" },
	{ "10.0.0.0/255.255.255", NULL, "bad netmask" },
	{ "10.0.0.0/255.255.256.0", NULL, "bad netmask" },
	{ "::1/129", NULL, "bad prefix length" },
	{ "::1/64/2", NULL, "bad prefix length" },
	{ "::1/ffff::", NULL, "bad prefix length" },
	{ "fe80::1%eth0", NULL, "not an IP address or subnet" },
	{ "[::1]", NULL, "not an IP address or subnet" },
	{ "1:2:3:4:5:6:7:8:9", NULL, "not an IP address or subnet" },
	{ "/8", NULL, "not an IP address or subnet" },
};

static void
net_forms_parse_and_format(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(net_cases) / sizeof(net_cases[0]); i++) {
		const struct net_case *c = &net_cases[i];
		struct pol_net net;
		const char *err = NULL;
		char buf[64];
		int rc = pol_net_parse(c->text, &net, &err);

		if (c->formatted) {
			if (rc != 0)
				fail_msg("\"%s\" refused: %s", c->text, err);
			assert_string_equal(pol_net_format(&net, buf, sizeof(buf)), c->formatted);
		} else {
			if (rc == 0)
				fail_msg("\"%s\" accepted as %s", c->text,
				         pol_net_format(&net, buf, 64));
			assert_non_null(err);
			if (c->err)
				assert_string_equal(err, c->err);
		}
	}
}

static void
net_format_truncates_safely(void **state)
{
	struct pol_net net;
	const char *err;
	char buf[6];

	(void)state;
	assert_int_equal(pol_net_parse("192.168.0.0/16", &net, &err), 0);
	assert_string_equal(pol_net_format(&net, buf, sizeof(buf)), "192.1");
	assert_int_equal(net.family, AF_INET);
	assert_int_equal(net.prefix, 16);
}

struct match_case {
	const char *net;
	const char *client;
	int match;
};

static const struct match_case match_cases[] = {
	{ "10.0.0.0/8", "10.255.1.2", 1 },
	{ "10.0.0.0/8", "11.0.0.1", 0 },
	{ "10.0.0.0/8", "9.255.255.255", 0 },
	{ "10.0.0.0/8", "::ffff:10.1.2.3", 1 },     /* v4-mapped client */
	{ "10.0.0.0/8", "::ffff:11.1.2.3", 0 },
	{ "10.0.0.0/8", "::1", 0 },
	{ "10.0.0.0/8", "::a01:203", 0 },           /* v4-compatible is not v4-mapped */
	{ "192.168.1.0/25", "192.168.1.127", 1 },
	{ "192.168.1.0/25", "192.168.1.128", 0 },
	{ "192.168", "192.168.200.1", 1 },
	{ "192.168", "192.169.0.1", 0 },
	{ "10.1.2.3", "10.1.2.3", 1 },
	{ "10.1.2.3", "10.1.2.4", 0 },
	{ "0.0.0.0/0", "1.2.3.4", 1 },
	{ "0.0.0.0/0", "::1", 0 },
	{ "0.0.0.0/0", "::ffff:1.2.3.4", 1 },
	{ "::1", "::1", 1 },
	{ "::1", "127.0.0.1", 0 },
	{ "::1", "::2", 0 },
	{ "fe80::/10", "fe80::1", 1 },
	{ "fe80::/10", "febf:ffff::1", 1 },
	{ "fe80::/10", "fec0::1", 0 },
	{ "2001:db8::/32", "2001:db8:ffff::1", 1 },
	{ "2001:db8::/32", "2001:db9::1", 0 },
	{ "::ffff:10.0.0.0/104", "10.9.9.9", 1 },   /* v4 client, v6 net of mapped space */
	{ "::ffff:10.0.0.0/104", "11.9.9.9", 0 },
	{ "::/0", "2001:db8::1", 1 },
};

static void
net_match_v4_v6_and_mapped(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
		const struct match_case *c = &match_cases[i];
		struct pol_net net;
		struct sockaddr_storage ss;
		const char *err;

		assert_int_equal(pol_net_parse(c->net, &net, &err), 0);
		if (pol_net_match(&net, acl_addr(c->client, &ss)) != c->match)
			fail_msg("%s in %s: expected %d", c->client, c->net, c->match);
	}
}

static void
net_match_rejects_other_families(void **state)
{
	struct pol_net net;
	struct sockaddr_storage ss;
	const char *err;

	(void)state;
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	assert_int_equal(pol_net_parse("0.0.0.0/0", &net, &err), 0);
	assert_int_equal(pol_net_match(&net, (struct sockaddr *)&ss), 0);
	assert_int_equal(pol_net_match(&net, NULL), 0);
}

/* ---- ports ---- */

struct ports_case {
	const char *args;        /* space-separated */
	const char *bad;         /* expected bad argument, or NULL for success */
	const unsigned in[6];    /* ports that must be in the list (0 ends) */
	const unsigned out[6];   /* ports that must not (0 ends) */
};

static const struct ports_case ports_cases[] = {
	{ "443 563", NULL, { 443, 563 }, { 80, 442, 444, 562, 564, 65535 } },
	{ "8000-8100", NULL, { 8000, 8050, 8100 }, { 7999, 8101 } },
	{ "9000-9010 443 9005-9020 1", NULL, { 1, 443, 9000, 9015, 9020 }, { 2, 8999, 9021 } },
	{ "1-65535", NULL, { 1, 80, 65535 }, { 0 } },
	{ "65535", NULL, { 65535 }, { 65534, 1 } },
	{ "5 4 3 2 1", NULL, { 1, 2, 3, 4, 5 }, { 6 } },
	{ "10-20 21-30", NULL, { 20, 21, 30 }, { 9, 31 } },
	{ "443 0", "0", { 0 }, { 0 } },
	{ "65536", "65536", { 0 }, { 0 } },
	{ "443 *", "*", { 0 }, { 0 } },
	{ "10-5", "10-5", { 0 }, { 0 } },
	{ "-5", "-5", { 0 }, { 0 } },
	{ "5-", "5-", { 0 }, { 0 } },
	{ "1-2-3", "1-2-3", { 0 }, { 0 } },
	{ "+443", "+443", { 0 }, { 0 } },
	{ "443x", "443x", { 0 }, { 0 } },
	{ "000443", "000443", { 0 }, { 0 } },
	{ "", NULL, { 0 }, { 443, 1 } },
};

static void
ports_lists_parse_and_lookup(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(ports_cases) / sizeof(ports_cases[0]); i++) {
		const struct ports_case *c = &ports_cases[i];
		char buf[128], *w[16];
		size_t n;
		struct pol_ports *p = NULL;
		const char *bad = NULL;

		snprintf(buf, sizeof(buf), "%s", c->args);
		n = acl_words(buf, w, 16);
		if (c->bad) {
			if (pol_ports_new(&p, w, n, &bad) == 0)
				fail_msg("\"%s\" accepted", c->args);
			assert_null(p);
			assert_non_null(bad);
			assert_string_equal(bad, c->bad);
			continue;
		}
		if (pol_ports_new(&p, w, n, &bad) != 0)
			fail_msg("\"%s\" refused at %s", c->args, bad);
		for (size_t k = 0; k < 6 && c->in[k]; k++)
			if (!pol_ports_has(p, c->in[k]))
				fail_msg("\"%s\" lacks %u", c->args, c->in[k]);
		for (size_t k = 0; k < 6 && c->out[k]; k++)
			if (pol_ports_has(p, c->out[k]))
				fail_msg("\"%s\" has %u", c->args, c->out[k]);
		assert_false(pol_ports_has(p, 0));
		assert_false(pol_ports_has(p, 70000));
		pol_ports_free(&p);
		assert_null(p);
	}
	assert_false(pol_ports_has(NULL, 443));
}

/* ---- access decisions ---- */

struct acl_case {
	const char *script;
	const char *url;
	const char *client;
	const char *name;          /* client_name: NULL unknown, "" none */
	enum pol_verdict expect;
	const char *rule;          /* expected *rule exactly, or NULL to skip */
};

#define ANY "http://example.com/"
static const char loopback_rule[] = "no <Proxy> section applies: loopback clients only";

static const struct acl_case acl_cases[] = {
	/* no sections: loopback only */
	{ "", ANY, "127.0.0.1", NULL, POL_ALLOW, loopback_rule },
	{ "", ANY, "127.9.9.9", NULL, POL_ALLOW, loopback_rule },
	{ "", ANY, "::1", NULL, POL_ALLOW, loopback_rule },
	{ "", ANY, "::ffff:127.0.0.1", NULL, POL_ALLOW, loopback_rule },
	{ "", ANY, "10.0.0.1", NULL, POL_DENY, loopback_rule },
	{ "", ANY, "::2", NULL, POL_DENY, loopback_rule },

	/* a prefix pattern is normalized as requests are (daemon/url.h): any spelling of it
	 * catches the normalized URL; the description keeps the pattern as written */
#define NORM_SCRIPT "Proxy *\nRequire all granted\nProxy HTTP://Example.COM.:080//a/./b/../%73ecret\n" \
	"Require all denied"
	{ NORM_SCRIPT, "http://example.com/a/secret", "10.0.0.1", NULL, POL_DENY,
	  "Require all denied (<Proxy HTTP://Example.COM.:080//a/./b/../%73ecret> at t:3)" },
	{ NORM_SCRIPT, "http://example.com/a/secret/x", "10.0.0.1", NULL, POL_DENY, NULL },
	{ NORM_SCRIPT, "http://example.com/a/public", "10.0.0.1", NULL, POL_ALLOW, NULL },
	{ NORM_SCRIPT, "http://example.com:8080/a/secret", "10.0.0.1", NULL, POL_ALLOW, NULL },
	{ "Proxy *\nRequire all granted\nProxy http://example.com:80\nRequire all denied",
	  "http://example.com/x", "10.0.0.1", NULL, POL_DENY, NULL },
	{ "Proxy *\nRequire all granted\nProxy http://example.com:80\nRequire all denied",
	  "http://example.com:8080/x", "10.0.0.1", NULL, POL_ALLOW, NULL },
	/* a host ending in a dot with nothing after it names that host (requests have the dot
	 * dropped), as well as the longer names it is a prefix of; it denied nothing at all */
#define DOT_SCRIPT "Proxy *\nRequire all granted\nProxy http://Example.COM.\nRequire all denied"
	{ DOT_SCRIPT, "http://example.com/x", "10.0.0.1", NULL, POL_DENY, NULL },
	{ DOT_SCRIPT, "http://example.com:8080/x", "10.0.0.1", NULL, POL_DENY, NULL },
	{ DOT_SCRIPT, "http://example.com", "10.0.0.1", NULL, POL_DENY, NULL },
	{ DOT_SCRIPT, "http://example.com.evil.test/x", "10.0.0.1", NULL, POL_DENY, NULL },
	{ DOT_SCRIPT, "http://example.community/x", "10.0.0.1", NULL, POL_ALLOW, NULL },
	{ DOT_SCRIPT, "http://example.co/x", "10.0.0.1", NULL, POL_ALLOW, NULL },
	/* wildcards stay as written */
	{ "Proxy *\nRequire all granted\nProxy http://*.example.com//x\nRequire all denied",
	  "http://www.example.com//x", "10.0.0.1", NULL, POL_DENY, NULL },

	/* 2.4: Require ip */
	{ "Proxy *\nRequire ip 10.0.0.0/8", ANY, "10.1.1.1", NULL, POL_ALLOW,
	  "Require ip 10.0.0.0/8 (<Proxy *> at t:1)" },
	{ "Proxy *\nRequire ip 10.0.0.0/8", ANY, "11.1.1.1", NULL, POL_DENY,
	  "no Require matched (<Proxy *> at t:1)" },
	{ "Proxy *\nRequire ip 10.0.0.0/8", ANY, "127.0.0.1", NULL, POL_DENY, NULL },
	{ "Proxy *\nRequire ip 10.0.0.0/8 192.168", ANY, "192.168.3.4", NULL, POL_ALLOW,
	  "Require ip 192.168 (<Proxy *> at t:1)" },
	{ "Proxy *\nRequire ip 10.0.0.0/8\nRequire ip ::1", ANY, "::1", NULL, POL_ALLOW,
	  "Require ip ::1 (<Proxy *> at t:1)" },
	{ "Proxy *\nRequire ip 10.0.0.0/8", ANY, "::ffff:10.2.3.4", NULL, POL_ALLOW, NULL },
	/* all, local */
	{ "Proxy *\nRequire all granted", ANY, "8.8.8.8", NULL, POL_ALLOW,
	  "Require all granted (<Proxy *> at t:1)" },
	{ "Proxy *\nRequire all denied", ANY, "127.0.0.1", NULL, POL_DENY,
	  "Require all denied (<Proxy *> at t:1)" },
	{ "Proxy *\nRequire all denied\nRequire ip 10.0.0.0/8", ANY, "10.0.0.1", NULL, POL_ALLOW,
	  NULL },
	{ "Proxy *\nRequire local", ANY, "::1", NULL, POL_ALLOW,
	  "Require local (<Proxy *> at t:1)" },
	{ "Proxy *\nRequire local", ANY, "127.0.0.2", NULL, POL_ALLOW, NULL },
	{ "Proxy *\nRequire local", ANY, "10.0.0.1", NULL, POL_DENY, NULL },
	/* not: vetoes */
	{ "Proxy *\nRequire ip 10.0.0.0/8\nRequire not ip 10.1.0.0/16", ANY, "10.2.0.1", NULL,
	  POL_ALLOW, "Require ip 10.0.0.0/8 (<Proxy *> at t:1)" },
	{ "Proxy *\nRequire ip 10.0.0.0/8\nRequire not ip 10.1.0.0/16", ANY, "10.1.0.1", NULL,
	  POL_DENY, "Require not ip 10.1.0.0/16 (<Proxy *> at t:1)" },
	{ "Proxy *\nRequire not ip 10.0.0.0/8", ANY, "11.0.0.1", NULL, POL_DENY,
	  "no Require matched (<Proxy *> at t:1)" },
	{ "Proxy *\nRequire all granted\nRequire not local", ANY, "127.0.0.1", NULL, POL_DENY,
	  "Require not local (<Proxy *> at t:1)" },
	/* host: suffix match on the verified name */
	{ "Proxy *\nRequire host example.org", ANY, "10.0.0.1", NULL, POL_NEED_NAME,
	  "Require host example.org (<Proxy *> at t:1)" },
	{ "Proxy *\nRequire host example.org", ANY, "10.0.0.1", "example.org", POL_ALLOW, NULL },
	{ "Proxy *\nRequire host example.org", ANY, "10.0.0.1", "www.example.org", POL_ALLOW,
	  NULL },
	{ "Proxy *\nRequire host example.org", ANY, "10.0.0.1", "WWW.Example.ORG.", POL_ALLOW,
	  NULL },
	{ "Proxy *\nRequire host example.org", ANY, "10.0.0.1", "badexample.org", POL_DENY, NULL },
	{ "Proxy *\nRequire host example.org", ANY, "10.0.0.1", "example.org.evil", POL_DENY,
	  NULL },
	{ "Proxy *\nRequire host example.org", ANY, "10.0.0.1", "", POL_DENY,
	  "no Require matched (<Proxy *> at t:1)" },
	{ "Proxy *\nRequire host .example.org", ANY, "10.0.0.1", "example.org", POL_DENY, NULL },
	{ "Proxy *\nRequire host .example.org", ANY, "10.0.0.1", "a.example.org", POL_ALLOW, NULL },
	/* host answers only when it can change the outcome */
	{ "Proxy *\nRequire ip 10.0.0.0/8\nRequire host example.org", ANY, "10.0.0.1", NULL,
	  POL_ALLOW, NULL },
	{ "Proxy *\nRequire ip 10.0.0.0/8\nRequire host example.org", ANY, "11.0.0.1", NULL,
	  POL_NEED_NAME, NULL },
	{ "Proxy *\nRequire all granted\nRequire not host evil.com", ANY, "8.8.8.8", NULL,
	  POL_NEED_NAME, "Require not host evil.com (<Proxy *> at t:1)" },
	{ "Proxy *\nRequire all granted\nRequire not host evil.com", ANY, "8.8.8.8", "x.evil.com",
	  POL_DENY, "Require not host evil.com (<Proxy *> at t:1)" },
	{ "Proxy *\nRequire all granted\nRequire not host evil.com", ANY, "8.8.8.8", "", POL_ALLOW,
	  "Require all granted (<Proxy *> at t:1)" },
	{ "Proxy *\nRequire ip 10.0.0.0/8\nRequire not host evil.com", ANY, "8.8.8.8", NULL,
	  POL_DENY, NULL },
	{ "Proxy *\nRequire host example.org\nRequire not ip 8.8.8.8", ANY, "8.8.8.8", NULL,
	  POL_DENY, "Require not ip 8.8.8.8 (<Proxy *> at t:1)" },

	/* 2.2: Order deny,allow */
	{ "Proxy *\nOrder deny,allow\nDeny from all\nAllow from 10.0.0.0/8", ANY, "10.1.1.1", NULL,
	  POL_ALLOW, "Allow from 10.0.0.0/8 (<Proxy *> at t:1)" },
	{ "Proxy *\nOrder deny,allow\nDeny from all\nAllow from 10.0.0.0/8", ANY, "8.8.8.8", NULL,
	  POL_DENY, "Deny from all (<Proxy *> at t:1)" },
	{ "Proxy *\nOrder deny,allow", ANY, "8.8.8.8", NULL, POL_ALLOW,
	  "Order deny,allow: no Deny matched (<Proxy *> at t:1)" },
	{ "Proxy *\nDeny from 8.8.8.8", ANY, "8.8.8.8", NULL, POL_DENY, NULL },   /* no Order */
	{ "Proxy *\nDeny from 8.8.8.8", ANY, "1.1.1.1", NULL, POL_ALLOW, NULL },
	{ "Proxy *\nOrder deny,allow\nDeny from all\nAllow from example.org", ANY, "10.0.0.1", NULL,
	  POL_NEED_NAME, "Allow from example.org (<Proxy *> at t:1)" },
	{ "Proxy *\nOrder deny,allow\nDeny from all\nAllow from example.org", ANY, "10.0.0.1",
	  "a.example.org", POL_ALLOW, NULL },
	{ "Proxy *\nOrder deny,allow\nDeny from all\nAllow from example.org", ANY, "10.0.0.1", "",
	  POL_DENY, NULL },
	{ "Proxy *\nOrder deny,allow\nDeny from 10.0.0.0/8\nAllow from example.org", ANY, "8.8.8.8",
	  NULL, POL_ALLOW, NULL },
	{ "Proxy *\nOrder Deny,Allow\nDeny from evil.com", ANY, "8.8.8.8", NULL, POL_NEED_NAME,
	  NULL },
	/* Order allow,deny */
	{ "Proxy *\nOrder allow,deny\nAllow from all\nDeny from 10.1.0.0/16", ANY, "10.1.2.3", NULL,
	  POL_DENY, "Deny from 10.1.0.0/16 (<Proxy *> at t:1)" },
	{ "Proxy *\nOrder allow,deny\nAllow from all\nDeny from 10.1.0.0/16", ANY, "8.8.8.8", NULL,
	  POL_ALLOW, "Allow from all (<Proxy *> at t:1)" },
	{ "Proxy *\nOrder allow,deny", ANY, "127.0.0.1", NULL, POL_DENY,
	  "Order allow,deny: no Allow matched (<Proxy *> at t:1)" },
	{ "Proxy *\nOrder allow,deny\nAllow from 192.168", ANY, "192.168.5.5", NULL, POL_ALLOW,
	  NULL },
	{ "Proxy *\nOrder allow,deny\nAllow from all\nDeny from evil.com", ANY, "8.8.8.8", NULL,
	  POL_NEED_NAME, "Deny from evil.com (<Proxy *> at t:1)" },
	{ "Proxy *\nOrder allow,deny\nAllow from all\nDeny from evil.com", ANY, "8.8.8.8", "",
	  POL_ALLOW, NULL },
	{ "Proxy *\nOrder allow,deny\nAllow from 10.0.0.0/8\nDeny from evil.com", ANY, "8.8.8.8",
	  NULL, POL_DENY, NULL },
	{ "Proxy *\nOrder allow,deny\nAllow from example.org", ANY, "8.8.8.8", NULL, POL_NEED_NAME,
	  NULL },
	/* the Order line position does not matter */
	{ "Proxy *\nAllow from all\nDeny from 8.8.8.8\nOrder allow,deny", ANY, "8.8.8.8", NULL,
	  POL_DENY, NULL },
	/* mutual-failure */
	{ "Proxy *\nOrder mutual-failure\nAllow from 10.0.0.0/8\nDeny from 10.1.0.0/16", ANY,
	  "10.2.0.1", NULL, POL_ALLOW, NULL },
	{ "Proxy *\nOrder mutual-failure\nAllow from 10.0.0.0/8\nDeny from 10.1.0.0/16", ANY,
	  "10.1.0.1", NULL, POL_DENY, NULL },
	{ "Proxy *\nOrder mutual-failure\nAllow from 10.0.0.0/8\nDeny from 10.1.0.0/16", ANY,
	  "8.8.8.8", NULL, POL_DENY, "Order mutual-failure: no Allow matched (<Proxy *> at t:1)" },

	/* sections: prefix, order, last match decides */
	{ "Proxy *\nRequire all granted\nProxy http://intranet/\nRequire ip 10.0.0.0/8",
	  "http://intranet/x", "8.8.8.8", NULL, POL_DENY, NULL },
	{ "Proxy *\nRequire all granted\nProxy http://intranet/\nRequire ip 10.0.0.0/8",
	  "HTTP://INTRANET/x", "8.8.8.8", NULL, POL_DENY, NULL },
	{ "Proxy *\nRequire all granted\nProxy http://intranet/\nRequire ip 10.0.0.0/8",
	  "http://other/", "8.8.8.8", NULL, POL_ALLOW, NULL },
	{ "Proxy *\nRequire all granted\nProxy http://intranet/\nRequire ip 10.0.0.0/8",
	  "http://intranet", "8.8.8.8", NULL, POL_ALLOW, NULL },
	{ "Proxy http://intranet/\nRequire ip 10.0.0.0/8\nProxy *\nRequire all granted",
	  "http://intranet/x", "8.8.8.8", NULL, POL_ALLOW,
	  "Require all granted (<Proxy *> at t:3)" },
	/* a matching section without rules does not decide */
	{ "Proxy *\nRequire ip 10.0.0.0/8\nProxy http://x/", "http://x/", "8.8.8.8", NULL, POL_DENY,
	  "no Require matched (<Proxy *> at t:1)" },
	{ "Proxy http://x/", "http://x/", "8.8.8.8", NULL, POL_DENY, loopback_rule },
	/* sections that do not match leave the default */
	{ "Proxy http://intranet/\nRequire all granted", "http://example.com/", "8.8.8.8", NULL,
	  POL_DENY, loopback_rule },
	{ "Proxy http://intranet/\nRequire all denied", "http://example.com/", "127.0.0.1", NULL,
	  POL_ALLOW, loopback_rule },
	/* CONNECT targets match only "*" or suitable patterns */
	{ "Proxy http://\nRequire all granted", "example.com:443", "8.8.8.8", NULL, POL_DENY,
	  NULL },
	{ "Proxy *\nRequire all granted", "example.com:443", "8.8.8.8", NULL, POL_ALLOW, NULL },
	{ "Proxy example.com:443\nRequire all granted", "example.com:443", "8.8.8.8", NULL,
	  POL_ALLOW, NULL },
	/* wildcard patterns match the whole URL */
	{ "Proxy *\nRequire all granted\nProxy http://*.example.com/*\nRequire all denied",
	  "http://www.example.com/a/b", "8.8.8.8", NULL, POL_DENY,
	  "Require all denied (<Proxy http://*.example.com/*> at t:3)" },
	{ "Proxy *\nRequire all granted\nProxy http://*.example.com/*\nRequire all denied",
	  "http://example.com/a", "8.8.8.8", NULL, POL_ALLOW, NULL },
	{ "Proxy *\nRequire all granted\nProxy http://*.example.com/*\nRequire all denied",
	  "http://www.example.com", "8.8.8.8", NULL, POL_ALLOW, NULL },
	{ "Proxy *\nRequire all granted\nProxy http://*.example.com/*\nRequire all denied",
	  "HTTP://A.B.EXAMPLE.COM/", "8.8.8.8", NULL, POL_DENY, NULL },
	{ "Proxy *\nRequire all granted\nProxy http://*.example.com/\nRequire all denied",
	  "http://www.example.com/x", "8.8.8.8", NULL, POL_ALLOW, NULL },
	{ "Proxy *\nRequire all granted\nProxy http://host?/*\nRequire all denied",
	  "http://host1/", "8.8.8.8", NULL, POL_DENY, NULL },
	{ "Proxy *\nRequire all granted\nProxy http://host?/*\nRequire all denied",
	  "http://host12/", "8.8.8.8", NULL, POL_ALLOW, NULL },
	{ "Proxy *\nRequire all granted\nProxy *a*a*a*a*b\nRequire all denied",
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac",
	  "8.8.8.8", NULL, POL_ALLOW, NULL },
	/* regex sections */
	{ "ProxyMatch ^https?://[^/]*\\.example\\.com/\nRequire all denied",
	  "http://a.example.com/", "127.0.0.1", NULL, POL_DENY, NULL },
	{ "ProxyMatch ^https?://[^/]*\\.example\\.com/\nRequire all denied",
	  "HTTPS://A.EXAMPLE.COM/x", "127.0.0.1", NULL, POL_DENY, NULL },
	{ "ProxyMatch ^https?://[^/]*\\.example\\.com/\nRequire all denied",
	  "http://example.org/", "127.0.0.1", NULL, POL_ALLOW, loopback_rule },
	{ "ProxyMatch ^https?://[^/]*\\.example\\.com/\nRequire all denied",
	  "http://example.org/", "8.8.8.8", NULL, POL_DENY, loopback_rule },
	{ "ProxyMatch \\.exe$\nRequire all denied\nProxy *\nRequire all granted",
	  "http://x/a.exe", "8.8.8.8", NULL, POL_ALLOW, NULL },
	{ "Proxy *\nRequire all granted\nProxyMatch \\.exe$\nRequire all denied",
	  "http://x/a.exe", "8.8.8.8", NULL, POL_DENY, NULL },
	{ "Proxy *\nRequire all granted\nProxyMatch \\.exe$\nRequire all denied",
	  "http://x/a.exe?y", "8.8.8.8", NULL, POL_ALLOW, NULL },
};

static void
acl_decisions(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(acl_cases) / sizeof(acl_cases[0]); i++) {
		const struct acl_case *c = &acl_cases[i];
		struct pol_acl *acl = acl_build(c->script);
		struct sockaddr_storage ss;
		const char *rule = NULL;
		enum pol_verdict v = pol_acl_check(acl, "GET", c->url, strlen(c->url),
		                                   acl_addr(c->client, &ss), c->name, &rule);

		if (v != c->expect)
			fail_msg("case %zu (%s, %s, name %s): verdict %d, expected %d (rule %s)", i,
			         c->url, c->client, c->name ? c->name : "NULL", v, c->expect,
			         rule ? rule : "NULL");
		assert_non_null(rule);
		if (c->rule && strcmp(rule, c->rule) != 0)
			fail_msg("case %zu: rule \"%s\", expected \"%s\"", i, rule, c->rule);
		pol_acl_free(&acl);
		assert_null(acl);
	}
}

/* <Limit>/<LimitExcept>: (script, method, client, expected verdict, expected rule or NULL) */
struct method_case {
	const char *script;
	const char *method;
	const char *client;
	enum pol_verdict expect;
	const char *rule;
};

#define OFFICE "Proxy *\nRequire ip 10.0.0.0/8\n"
static const struct method_case method_cases[] = {
	/* PURGE is never granted by a section's own rules... */
	{ OFFICE, "PURGE", "10.0.0.5", POL_DENY,
	  "PURGE needs a <Limit PURGE> grant in a <Proxy> section" },
	{ "Proxy *\nRequire all granted", "PURGE", "127.0.0.1", POL_DENY, NULL },
	{ "", "PURGE", "127.0.0.1", POL_DENY, NULL },   /* nor by the no-section default */
	{ OFFICE, "GET", "10.0.0.5", POL_ALLOW, NULL },
	/* ...only by a <Limit> naming it, which replaces the section's rules for it */
	{ OFFICE "Limit PURGE\nRequire ip 10.0.0.9\nEndLimit", "PURGE", "10.0.0.9", POL_ALLOW,
	  "Require ip 10.0.0.9 (<Limit PURGE> at t:3)" },
	{ OFFICE "Limit PURGE\nRequire ip 10.0.0.9\nEndLimit", "PURGE", "10.0.0.5", POL_DENY,
	  "no Require matched (<Limit PURGE> at t:3)" },
	{ OFFICE "Limit PURGE\nRequire ip 10.0.0.9\nEndLimit", "GET", "10.0.0.5", POL_ALLOW,
	  "Require ip 10.0.0.0/8 (<Proxy *> at t:1)" },
	{ OFFICE "Limit PURGE\nRequire ip 10.0.0.9\nEndLimit", "GET", "8.8.8.8", POL_DENY, NULL },
	/* method names compare with case */
	{ OFFICE "Limit PURGE\nRequire ip 10.0.0.9\nEndLimit", "purge", "10.0.0.5", POL_ALLOW,
	  NULL },
	/* a <Limit> naming several methods; 2.2 rules inside */
	{ OFFICE "Limit CONNECT POST\nOrder allow,deny\nAllow from 10.1.0.0/16\nEndLimit",
	  "CONNECT", "10.0.0.5", POL_DENY, NULL },
	{ OFFICE "Limit CONNECT POST\nOrder allow,deny\nAllow from 10.1.0.0/16\nEndLimit",
	  "POST", "10.1.2.3", POL_ALLOW, NULL },
	{ OFFICE "Limit CONNECT POST\nOrder allow,deny\nAllow from 10.1.0.0/16\nEndLimit",
	  "GET", "10.0.0.5", POL_ALLOW, NULL },
	/* <LimitExcept>: everything but the named methods, PURGE included */
	{ OFFICE "LimitExcept GET HEAD\nRequire ip 10.0.0.9\nEndLimit", "HEAD", "10.0.0.5",
	  POL_ALLOW, NULL },
	{ OFFICE "LimitExcept GET HEAD\nRequire ip 10.0.0.9\nEndLimit", "POST", "10.0.0.5",
	  POL_DENY, NULL },
	{ OFFICE "LimitExcept GET HEAD\nRequire ip 10.0.0.9\nEndLimit", "PURGE", "10.0.0.9",
	  POL_ALLOW, NULL },
	/* a section with only a <Limit> has no rules for other methods: an earlier one decides */
	{ OFFICE "Proxy http://example.com/\nLimit PURGE\nRequire local\nEndLimit", "GET",
	  "10.0.0.5", POL_ALLOW, "Require ip 10.0.0.0/8 (<Proxy *> at t:1)" },
	{ OFFICE "Proxy http://example.com/\nLimit PURGE\nRequire local\nEndLimit", "PURGE",
	  "127.0.0.1", POL_ALLOW, NULL },
	/* the last applicable block of a section wins; a later section overrides it */
	{ OFFICE "Limit PURGE\nRequire all denied\nEndLimit\nLimit PURGE\nRequire all granted\n"
	  "EndLimit", "PURGE", "8.8.8.8", POL_ALLOW, NULL },
	{ OFFICE "Limit PURGE\nRequire all granted\nEndLimit\nProxy *\nLimit PURGE\n"
	  "Require all denied\nEndLimit", "PURGE", "10.0.0.5", POL_DENY, NULL },
	/* an empty block has no rules: it does not decide */
	{ OFFICE "Limit POST\nEndLimit", "POST", "10.0.0.5", POL_ALLOW, NULL },
};

static void
acl_method_limits(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(method_cases) / sizeof(method_cases[0]); i++) {
		const struct method_case *c = &method_cases[i];
		struct pol_acl *acl;
		struct sockaddr_storage ss;
		const char *rule = NULL;
		enum pol_verdict v;

		if (*c->script) {
			acl = acl_build(c->script);
		} else {
			assert_int_equal(pol_acl_new(&acl), 0);
		}
		v = pol_acl_check(acl, c->method, ANY, strlen(ANY), acl_addr(c->client, &ss), NULL,
		                  &rule);
		if (v != c->expect)
			fail_msg("method case %zu (%s from %s): verdict %d, expected %d (rule %s)", i,
			         c->method, c->client, v, c->expect, rule ? rule : "NULL");
		assert_non_null(rule);
		if (c->rule && strcmp(rule, c->rule) != 0)
			fail_msg("method case %zu: rule \"%s\", expected \"%s\"", i, rule, c->rule);
		pol_acl_free(&acl);
	}
}

static void
acl_limit_builder_errors(void **state)
{
	struct pol_acl *acl;
	struct pol_acl_section *sec;
	const char *err = NULL;
	char *bad[] = { "GET", "PU RGE" }, *none[] = { NULL }, *ok[] = { "PURGE", "X-CUSTOM_1" };

	(void)state;
	assert_int_equal(pol_acl_new(&acl), 0);
	sec = pol_acl_section_add(acl, POL_SEC_PREFIX, "*", NULL, &err);
	assert_non_null(sec);
	assert_null(pol_acl_limit_add(sec, 0, bad, 2, NULL, &err));
	assert_string_equal(err, "bad method name \"PU RGE\"");
	assert_null(pol_acl_limit_add(sec, 1, none, 0, NULL, &err));
	assert_string_equal(err, "expected one or more method names");
	assert_non_null(pol_acl_limit_add(sec, 0, ok, 2, NULL, &err));
	pol_acl_free(&acl);
}

/* The status page's explain names the rule's own line (pol_acl_rule_line); where and full
 * stay the section's, as the 403 page and the error log show them. */
static void
acl_rule_line_names_the_rule(void **state)
{
	struct pol_acl *acl;
	struct pol_acl_section *sec;
	const char *err = NULL;
	char *r1[] = { "ip", "10.0.0.0/8" }, *r2[] = { "ip", "192.168.0.0/16" };
	struct sockaddr_storage ss;
	const struct pol_why *why = NULL;

	(void)state;
	assert_int_equal(pol_acl_new(&acl), 0);
	sec = pol_acl_section_add(acl, POL_SEC_PREFIX, "*", "<Proxy *> at f:3", &err);
	assert_non_null(sec);
	assert_int_equal(pol_acl_rule_line(sec, "f:4"), 0);
	assert_int_equal(pol_acl_require(sec, r1, 2, &err), 0);
	assert_int_equal(pol_acl_rule_line(sec, "f:5"), 0);
	assert_int_equal(pol_acl_require(sec, r2, 2, &err), 0);
	assert_int_equal(pol_acl_check_why(acl, "GET", "http://a/", 9, acl_addr("192.168.1.1", &ss),
	                                   NULL, &why), POL_ALLOW);
	assert_string_equal(why->text, "Require ip 192.168.0.0/16");
	assert_string_equal(why->line, "f:5");
	assert_string_equal(why->where, "<Proxy *> at f:3");
	assert_string_equal(why->full, "Require ip 192.168.0.0/16 (<Proxy *> at f:3)");
	assert_int_equal(pol_acl_check_why(acl, "GET", "http://a/", 9, acl_addr("10.1.1.1", &ss),
	                                   NULL, &why), POL_ALLOW);
	assert_string_equal(why->line, "f:4");
	/* nothing granted: the section decided, no rule line */
	assert_int_equal(pol_acl_check_why(acl, "GET", "http://a/", 9, acl_addr("8.8.8.8", &ss),
	                                   NULL, &why), POL_DENY);
	assert_null(why->line);
	assert_string_equal(why->where, "<Proxy *> at f:3");
	pol_acl_free(&acl);
}

static void
acl_check_honours_url_length(void **state)
{
	struct pol_acl *acl = acl_build("Proxy *\nRequire all denied\n"
	                                "Proxy http://intranet/\nRequire all granted\n"
	                                "ProxyMatch ^http://$\nRequire ip 10.0.0.0/8");
	struct sockaddr_storage ss;
	const struct sockaddr *client = acl_addr("8.8.8.8", &ss);
	const char *url = "http://intranet/x", *rule;

	(void)state;
	assert_int_equal(pol_acl_check(acl, "GET", url, strlen(url), client, NULL, &rule), POL_ALLOW);
	/* Only "http://" is the URL: the prefix section cannot match, the anchored regex does. */
	assert_int_equal(pol_acl_check(acl, "GET", url, 7, client, NULL, &rule), POL_DENY);
	assert_string_equal(rule, "no Require matched (<ProxyMatch ^http://$> at t:5)");
	assert_int_equal(pol_acl_check(acl, "GET", url, 12, client, NULL, &rule), POL_DENY);
	assert_string_equal(rule, "Require all denied (<Proxy *> at t:1)");
	/* The same rule in two parts: the words for users' pages, the place for admins. */
	const struct pol_why *why = NULL;
	assert_int_equal(pol_acl_check_why(acl, "GET", url, 12, client, NULL, &why), POL_DENY);
	assert_string_equal(why->text, "Require all denied");
	assert_string_equal(why->where, "<Proxy *> at t:1");
	assert_string_equal(why->full, rule);
	/* A built-in rule has no place. */
	assert_int_equal(pol_acl_check_why(NULL, "GET", url, strlen(url), client, NULL, &why),
	                 POL_DENY);
	assert_string_equal(why->where, "");
	assert_string_equal(why->text, why->full);
	pol_acl_free(&acl);
}

/* ---- issue 14: the request identity (struct who), containers, user terms ---- */

struct who_case {
	const char *script;
	const char *method;        /* NULL: GET */
	const char *url;
	const char *client;
	const char *name;          /* NULL: not looked up yet */
	const char *user;          /* NULL: not authenticated (yet) */
	const char *groups;        /* space-separated, or NULL */
	int exempt;
	enum pol_verdict expect;
	const char *rule;          /* (*why)->full exactly, or NULL to skip */
	int authn;                 /* index into acl_authn, -1: NULL */
};

/* The issue's example: an office subnet that must log in, and a payroll site for hr. */
#define ISSUE_SCRIPT "Proxy *\nAuthn 1\n<RequireAll>\nRequire ip 10.0.0.0/8\nRequire valid-user\n" \
	"</RequireAll>\nProxy http://payroll.corp.example/\nRequire group hr"
#define PAYROLL "http://payroll.corp.example/pay"
#define PAYROLL_WHERE "(<Proxy http://payroll.corp.example/> at t:7)"
/* Any of: the subnet without a password, or anybody who logs in. */
#define ANYOF_SCRIPT "Proxy *\nAuthn 2\nRequire ip 10.0.0.0/8\nRequire valid-user"
/* Both a host and a user term undecided. */
#define BOTH_SCRIPT "Proxy *\nAuthn 0\n<RequireAll>\nRequire host corp.example\n" \
	"Require valid-user\n</RequireAll>"
/* A host term that cannot matter here: only the user is asked for. */
#define HOST_MOOT_SCRIPT "Proxy *\nAuthn 0\n<RequireAll>\nRequire ip 10.0.0.0/8\n" \
	"Require host corp.example\n</RequireAll>\nRequire valid-user"
/* A flat list with a user veto, as before issue 14 with "Require not ip". */
#define VETO_SCRIPT "Proxy *\nAuthn 0\nRequire ip 10.0.0.0/8\nRequire not user mallory"
/* A deny list of users and groups. */
#define NONE_SCRIPT "Proxy *\nAuthn 0\n<RequireAll>\nRequire valid-user\n<RequireNone>\n" \
	"Require user mallory eve\nRequire group banned\n</RequireNone>\n</RequireAll>"
/* Authentication settings chosen per URL and method, independent of the deciding section. */
#define AUTHN_SCRIPT "Proxy *\nAuthn 1\nRequire valid-user\nProxy http://a.example/\n" \
	"Require all granted\nProxy http://b.example/\nAuthn 2\nRequire user bob\nLimit POST\n" \
	"Authn 3\nRequire user alice\nEndLimit"
/* A <Limit> block with users. */
#define LIMIT_SCRIPT "Proxy *\nAuthn 0\nRequire ip 10.0.0.0/8\nLimit PURGE\nRequire user admin\n" \
	"EndLimit"
/* Nested containers, Apache's example shape. */
#define NEST_SCRIPT "Proxy *\nAuthn 0\n<RequireAll>\n<RequireAny>\nRequire ip 10.0.0.0/8\n" \
	"Require group remote\n</RequireAny>\n<RequireNone>\nRequire ip 10.6.0.0/16\n" \
	"</RequireNone>\nRequire valid-user\n</RequireAll>"

static const struct who_case who_cases[] = {
	/* the issue's example */
	{ ISSUE_SCRIPT, NULL, ANY, "10.1.1.1", NULL, NULL, NULL, 0, POL_NEED_USER,
	  "Require valid-user (<Proxy *> at t:1)", 1 },
	{ ISSUE_SCRIPT, NULL, ANY, "192.168.1.1", NULL, NULL, NULL, 0, POL_DENY,
	  "Require ip 10.0.0.0/8 (<Proxy *> at t:1)", 1 },
	{ ISSUE_SCRIPT, NULL, ANY, "10.1.1.1", NULL, "alice", NULL, 0, POL_ALLOW, NULL, 1 },
	{ ISSUE_SCRIPT, NULL, ANY, "192.168.1.1", NULL, "alice", NULL, 0, POL_DENY, NULL, 1 },
	{ ISSUE_SCRIPT, NULL, PAYROLL, "10.1.1.1", NULL, NULL, NULL, 0, POL_NEED_USER,
	  "Require group hr " PAYROLL_WHERE, 1 },
	{ ISSUE_SCRIPT, NULL, PAYROLL, "10.1.1.1", NULL, "alice", "staff it", 0, POL_DENY,
	  "Require group hr " PAYROLL_WHERE, 1 },
	{ ISSUE_SCRIPT, NULL, PAYROLL, "10.1.1.1", NULL, "alice", NULL, 0, POL_DENY,
	  "Require group hr " PAYROLL_WHERE, 1 },
	{ ISSUE_SCRIPT, NULL, PAYROLL, "192.168.1.1", NULL, "bob", "staff hr", 0, POL_ALLOW,
	  "Require group hr " PAYROLL_WHERE, 1 },
	/* group names compare with case, as Apache's */
	{ ISSUE_SCRIPT, NULL, PAYROLL, "10.1.1.1", NULL, "bob", "HR", 0, POL_DENY, NULL, 1 },
	/* exempt (the PAC file): user terms count as granted, the address still decides */
	{ ISSUE_SCRIPT, NULL, ANY, "10.1.1.1", NULL, NULL, NULL, 1, POL_ALLOW, NULL, 1 },
	{ ISSUE_SCRIPT, NULL, ANY, "192.168.1.1", NULL, NULL, NULL, 1, POL_DENY, NULL, 1 },
	{ ISSUE_SCRIPT, NULL, PAYROLL, "192.168.1.1", NULL, NULL, NULL, 1, POL_ALLOW, NULL, 1 },

	/* RequireAny at the top: the subnet grants without asking, others must log in */
	{ ANYOF_SCRIPT, NULL, ANY, "10.1.1.1", NULL, NULL, NULL, 0, POL_ALLOW,
	  "Require ip 10.0.0.0/8 (<Proxy *> at t:1)", 2 },
	{ ANYOF_SCRIPT, NULL, ANY, "192.168.1.1", NULL, NULL, NULL, 0, POL_NEED_USER,
	  "Require valid-user (<Proxy *> at t:1)", 2 },
	{ ANYOF_SCRIPT, NULL, ANY, "192.168.1.1", NULL, "carol", NULL, 0, POL_ALLOW,
	  "Require valid-user (<Proxy *> at t:1)", 2 },

	/* both undecided: the name first, then the user */
	{ BOTH_SCRIPT, NULL, ANY, "10.1.1.1", NULL, NULL, NULL, 0, POL_NEED_NAME,
	  "Require host corp.example (<Proxy *> at t:1)", 0 },
	{ BOTH_SCRIPT, NULL, ANY, "10.1.1.1", "pc.corp.example", NULL, NULL, 0, POL_NEED_USER,
	  "Require valid-user (<Proxy *> at t:1)", 0 },
	{ BOTH_SCRIPT, NULL, ANY, "10.1.1.1", "", NULL, NULL, 0, POL_DENY,
	  "Require host corp.example (<Proxy *> at t:1)", 0 },
	{ BOTH_SCRIPT, NULL, ANY, "10.1.1.1", "pc.corp.example", "u", NULL, 0, POL_ALLOW, NULL, 0 },
	/* a user known and the name not: only the name is asked for */
	{ BOTH_SCRIPT, NULL, ANY, "10.1.1.1", NULL, "u", NULL, 0, POL_NEED_NAME, NULL, 0 },
	/* a host term the address already settles is not looked up */
	{ HOST_MOOT_SCRIPT, NULL, ANY, "192.168.1.1", NULL, NULL, NULL, 0, POL_NEED_USER,
	  "Require valid-user (<Proxy *> at t:1)", 0 },
	{ HOST_MOOT_SCRIPT, NULL, ANY, "10.1.1.1", NULL, NULL, NULL, 0, POL_NEED_NAME,
	  "Require host corp.example (<Proxy *> at t:1)", 0 },

	/* a flat "Require not user" vetoes, so the user must be known where it could */
	{ VETO_SCRIPT, NULL, ANY, "10.1.1.1", NULL, NULL, NULL, 0, POL_NEED_USER,
	  "Require not user mallory (<Proxy *> at t:1)", 0 },
	{ VETO_SCRIPT, NULL, ANY, "10.1.1.1", NULL, "mallory", NULL, 0, POL_DENY,
	  "Require not user mallory (<Proxy *> at t:1)", 0 },
	{ VETO_SCRIPT, NULL, ANY, "10.1.1.1", NULL, "alice", NULL, 0, POL_ALLOW,
	  "Require ip 10.0.0.0/8 (<Proxy *> at t:1)", 0 },
	{ VETO_SCRIPT, NULL, ANY, "11.0.0.1", NULL, NULL, NULL, 0, POL_DENY,
	  "no Require matched (<Proxy *> at t:1)", 0 },
	/* exempt: a negated user term does not veto the PAC file */
	{ VETO_SCRIPT, NULL, ANY, "10.1.1.1", NULL, NULL, NULL, 1, POL_ALLOW, NULL, 0 },

	/* RequireNone of users and groups */
	{ NONE_SCRIPT, NULL, ANY, "10.1.1.1", NULL, NULL, NULL, 0, POL_NEED_USER, NULL, 0 },
	{ NONE_SCRIPT, NULL, ANY, "10.1.1.1", NULL, "eve", NULL, 0, POL_DENY,
	  "Require user mallory eve (<Proxy *> at t:1)", 0 },
	{ NONE_SCRIPT, NULL, ANY, "10.1.1.1", NULL, "x", "ok banned", 0, POL_DENY,
	  "Require group banned (<Proxy *> at t:1)", 0 },
	{ NONE_SCRIPT, NULL, ANY, "10.1.1.1", NULL, "x", "ok", 0, POL_ALLOW,
	  "Require valid-user (<Proxy *> at t:1)", 0 },
	{ NONE_SCRIPT, NULL, ANY, "10.1.1.1", NULL, "x", NULL, 1, POL_ALLOW, NULL, 0 },

	/* nested: (10/8 or group remote) and not 10.6/16 and valid-user */
	{ NEST_SCRIPT, NULL, ANY, "10.6.1.1", NULL, NULL, NULL, 0, POL_DENY,
	  "Require ip 10.6.0.0/16 (<Proxy *> at t:1)", 0 },
	{ NEST_SCRIPT, NULL, ANY, "10.7.1.1", NULL, NULL, NULL, 0, POL_NEED_USER, NULL, 0 },
	{ NEST_SCRIPT, NULL, ANY, "10.7.1.1", NULL, "a", NULL, 0, POL_ALLOW, NULL, 0 },
	{ NEST_SCRIPT, NULL, ANY, "192.0.2.1", NULL, NULL, NULL, 0, POL_NEED_USER,
	  "Require group remote (<Proxy *> at t:1)", 0 },
	{ NEST_SCRIPT, NULL, ANY, "192.0.2.1", NULL, "a", "staff", 0, POL_DENY,
	  "Require group remote (<Proxy *> at t:1)", 0 },
	{ NEST_SCRIPT, NULL, ANY, "192.0.2.1", NULL, "a", "remote", 0, POL_ALLOW, NULL, 0 },

	/* the authentication settings: the last matching section with some */
	{ AUTHN_SCRIPT, NULL, "http://a.example/x", "192.0.2.1", NULL, NULL, NULL, 0, POL_ALLOW,
	  "Require all granted (<Proxy http://a.example/> at t:4)", 1 },
	{ AUTHN_SCRIPT, NULL, "http://b.example/x", "192.0.2.1", NULL, NULL, NULL, 0,
	  POL_NEED_USER, "Require user bob (<Proxy http://b.example/> at t:6)", 2 },
	{ AUTHN_SCRIPT, "POST", "http://b.example/x", "192.0.2.1", NULL, NULL, NULL, 0,
	  POL_NEED_USER, "Require user alice (<Limit POST> at t:9)", 3 },
	{ AUTHN_SCRIPT, "POST", "http://b.example/x", "192.0.2.1", NULL, "bob", NULL, 0,
	  POL_DENY, "Require user alice (<Limit POST> at t:9)", 3 },
	{ AUTHN_SCRIPT, NULL, "http://c.example/x", "192.0.2.1", NULL, NULL, NULL, 0,
	  POL_NEED_USER, "Require valid-user (<Proxy *> at t:1)", 1 },
	/* AuthType None in a later section is the setting in force there (it asks nobody) */
	{ "Proxy *\nAuthn 1\nRequire valid-user\nProxy http://i/\nAuthnOff 2", NULL,
	  "http://i/x", "192.0.2.1", NULL, NULL, NULL, 0, POL_NEED_USER,
	  "Require valid-user (<Proxy *> at t:1)", 2 },
	{ "Proxy http://z/\nRequire all granted", NULL, ANY, "192.0.2.1", NULL, NULL, NULL, 0,
	  POL_DENY, NULL, -1 },
	{ "", NULL, ANY, "127.0.0.1", NULL, NULL, NULL, 0, POL_ALLOW, loopback_rule, -1 },

	/* <Limit> blocks with users; PURGE still needs its own grant */
	{ LIMIT_SCRIPT, "GET", ANY, "10.1.1.1", NULL, NULL, NULL, 0, POL_ALLOW, NULL, 0 },
	{ LIMIT_SCRIPT, "PURGE", ANY, "10.1.1.1", NULL, NULL, NULL, 0, POL_NEED_USER,
	  "Require user admin (<Limit PURGE> at t:4)", 0 },
	{ LIMIT_SCRIPT, "PURGE", ANY, "10.1.1.1", NULL, "admin", NULL, 0, POL_ALLOW, NULL, 0 },
	{ LIMIT_SCRIPT, "PURGE", ANY, "10.1.1.1", NULL, "bob", NULL, 0, POL_DENY, NULL, 0 },
	/* exempt counts user terms as granted, PURGE included: the daemon exempts GETs only */
	{ LIMIT_SCRIPT, "PURGE", ANY, "10.1.1.1", NULL, NULL, NULL, 1, POL_ALLOW, NULL, 0 },

	/* 2.2 sections and existing 2.4 lists are unchanged by a user */
	{ "Proxy *\nOrder deny,allow\nDeny from all\nAllow from 10.0.0.0/8", NULL, ANY,
	  "10.1.1.1", NULL, "alice", NULL, 0, POL_ALLOW, NULL, -1 },
	{ "Proxy *\nRequire ip 10.0.0.0/8", NULL, ANY, "11.1.1.1", NULL, "alice", NULL, 0,
	  POL_DENY, "no Require matched (<Proxy *> at t:1)", -1 },
};

static void
acl_who_decisions(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(who_cases) / sizeof(who_cases[0]); i++) {
		const struct who_case *c = &who_cases[i];
		struct pol_acl *acl = acl_build(c->script);
		struct sockaddr_storage ss;
		char gbuf[256], *gv[16], *save = NULL;
		size_t ng = 0;
		const struct pol_why *why = NULL;
		const void *authn = &why; /* must be overwritten */

		if (c->groups) {
			snprintf(gbuf, sizeof(gbuf), "%s", c->groups);
			for (char *t = strtok_r(gbuf, " ", &save); t && ng < 16;
			     t = strtok_r(NULL, " ", &save))
				gv[ng++] = t;
		}
		struct who who = { .addr = acl_addr(c->client, &ss), .name = c->name,
		                   .user = c->user, .groups = ng ? (const char *const *)gv : NULL,
		                   .ngroups = ng, .exempt = c->exempt };
		enum pol_verdict v = pol_acl_decide(acl, c->method, c->url, strlen(c->url), &who,
		                                    &why, &authn);
		const void *want = c->authn < 0 ? NULL : &acl_authn[c->authn];

		assert_non_null(why);
		if (v != c->expect || (c->rule && strcmp(why->full, c->rule) != 0) || authn != want)
			fail_msg("case %zu (%s %s from %s name %s user %s%s): got %d \"%s\" authn %d, "
			         "want %d \"%s\" authn %d", i, c->method ? c->method : "GET", c->url,
			         c->client, c->name ? c->name : "(unknown)",
			         c->user ? c->user : "(none)", c->exempt ? " exempt" : "", v, why->full,
			         authn ? *(const int *)authn : -1, c->expect,
			         c->rule ? c->rule : "(any)", c->authn);
		pol_acl_free(&acl);
	}
}

/* pol_acl_check/_why are pol_acl_decide without a user: NEED_USER comes back as it is. */
static void
acl_check_reports_need_user(void **state)
{
	struct pol_acl *acl = acl_build(ANYOF_SCRIPT);
	struct sockaddr_storage ss;
	const char *rule = NULL;

	(void)state;
	assert_int_equal(pol_acl_check(acl, "GET", ANY, strlen(ANY), acl_addr("192.0.2.1", &ss),
	                               NULL, &rule), POL_NEED_USER);
	assert_string_equal(rule, "Require valid-user (<Proxy *> at t:1)");
	assert_int_equal(pol_acl_check(acl, "GET", ANY, strlen(ANY), acl_addr("10.0.0.1", &ss),
	                               NULL, &rule), POL_ALLOW);
	assert_true(pol_acl_uses_user(acl));
	pol_acl_free(&acl);
	acl = acl_build("Proxy *\nRequire ip 10.0.0.0/8\nLimit POST\nRequire group g\nEndLimit");
	assert_true(pol_acl_uses_user(acl));
	pol_acl_free(&acl);
	acl = acl_build("Proxy *\nRequire ip 10.0.0.0/8\nProxy http://x/\nRequire host a.example");
	assert_false(pol_acl_uses_user(acl));
	assert_null(pol_acl_authn_missing(acl));
	pol_acl_free(&acl);
}

/* Which user terms no authentication can reach (the loader refuses those configs). */
static void
acl_authn_missing_names_the_rule(void **state)
{
	static const struct {
		const char *script;
		const char *text;     /* NULL: every user term covered */
		const char *line;
	} cases[] = {
		{ "Proxy http://a/\nLine f:2\nRequire valid-user", "Require valid-user", "f:2" },
		{ "Proxy *\nAuthn 1\nRequire ip 10.0.0.0/8\nProxy http://a/\nRequire valid-user",
		  NULL, NULL },
		/* a later <Proxy *> holds the settings for an earlier section */
		{ "Proxy http://a/\nRequire valid-user\nProxy *\nAuthn 1\nRequire ip 10.0.0.0/8",
		  NULL, NULL },
		{ "Proxy http://b/\nAuthn 1\nRequire ip 10.0.0.0/8\nProxy http://a/\nLine f:5\n"
		  "Require user x", "Require user x", "f:5" },
		{ "Proxy http://a/\nAuthn 1\nRequire ip 10.0.0.0/8\nProxy http://a/x/\n"
		  "Require group g", NULL, NULL },
		{ "ProxyMatch ^http://a\nAuthn 1\nRequire ip 10.0.0.0/8\nProxy http://z/\n"
		  "Require valid-user", NULL, NULL },
		{ "Proxy http://a/\nLimit POST\nAuthn 1\nRequire valid-user\nEndLimit", NULL, NULL },
		{ "Proxy http://a/\nRequire ip 10.0.0.0/8\nLimit POST\nLine f:3\n<RequireAll>\n"
		  "Require ip 10.0.0.0/8\nRequire group g\n</RequireAll>\nEndLimit",
		  "Require group g", "f:3" },
		/* AuthType None's settings ask nobody: they cover no user term */
		{ "Proxy *\nAuthnOff 1\nRequire ip 10.0.0.0/8\nProxy http://a/\nLine f:4\n"
		  "Require valid-user", "Require valid-user", "f:4" },
		{ "Proxy *\nAuthn 1\nRequire ip 10.0.0.0/8\nProxy http://a/\nAuthnOff 2\n"
		  "Require all granted\nProxy http://a/x/\nRequire valid-user", NULL, NULL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pol_acl *acl = acl_build(cases[i].script);
		const struct pol_why *u = pol_acl_authn_missing(acl);

		if (cases[i].text == NULL) {
			if (u != NULL)
				fail_msg("case %zu: refused %s", i, u->full);
		} else if (u == NULL || strcmp(u->text, cases[i].text) != 0 ||
		           strcmp(u->line, cases[i].line) != 0) {
			fail_msg("case %zu: got %s at %s", i, u ? u->text : "(none)",
			         u && u->line ? u->line : "-");
		}
		pol_acl_free(&acl);
	}
}

/* Containers: builder refusals through the acl (cfg adds FILE:LINE). */
static void
acl_container_errors(void **state)
{
	struct pol_acl *acl;
	struct pol_acl_section *s;
	const char *err = NULL;
	char *notip[] = { "not", "ip", "10.0.0.1" }, *ip[] = { "ip", "10.0.0.1" };

	(void)state;
	assert_int_equal(pol_acl_new(&acl), 0);
	s = pol_acl_section_add(acl, POL_SEC_PREFIX, "*", NULL, &err);
	assert_non_null(s);
	/* at a section's top a negative line vetoes, as before */
	assert_int_equal(pol_acl_require(s, notip, 3, &err), 0);
	assert_int_equal(pol_acl_container_open(s, "RequireAny", &err), 0);
	assert_int_equal(pol_acl_require(s, notip, 3, &err), -1);
	assert_string_equal(err, "a negative Require has no effect in <RequireAny> (or outside "
	                    "any container): put it in <RequireAll> or <RequireNone>");
	assert_int_equal(pol_acl_container_close(s, &err), -1);
	assert_string_equal(err, "the container holds no Require directive");
	assert_int_equal(pol_acl_require(s, ip, 2, &err), 0);
	assert_int_equal(pol_acl_container_close(s, &err), 0);
	assert_int_equal(pol_acl_container_close(s, &err), -1);
	assert_string_equal(err, "no open authorization container");
	assert_int_equal(pol_acl_container_open(s, "RequireSome", &err), -1);
	for (int i = 0; i < 16; i++)
		assert_int_equal(pol_acl_container_open(s, "RequireAll", &err), 0);
	assert_int_equal(pol_acl_container_open(s, "RequireAll", &err), -1);
	assert_string_equal(err, "authorization containers nested too deep");
	/* 2.2 lines cannot join */
	char *all[] = { "all" };
	assert_int_equal(pol_acl_allow(s, 0, all, 1, &err), -1);
	pol_acl_free(&acl);
	assert_null(acl);
}

static void
acl_null_acl_means_loopback_only(void **state)
{
	struct sockaddr_storage ss;
	const char *rule = NULL;

	(void)state;
	assert_int_equal(pol_acl_check(NULL, "GET", ANY, strlen(ANY), acl_addr("::1", &ss), NULL, &rule),
	                 POL_ALLOW);
	assert_string_equal(rule, loopback_rule);
	assert_int_equal(pol_acl_check(NULL, "GET", ANY, strlen(ANY), acl_addr("10.0.0.1", &ss), NULL,
	                               &rule), POL_DENY);
}

/* ---- builder errors ---- */

enum bld_op { BLD_REQUIRE, BLD_ORDER, BLD_ALLOW, BLD_DENY };

struct bld_case {
	const char *before;      /* one directive applied first to a "*" section (may be "") */
	enum bld_op op;
	const char *args;        /* words */
	const char *err;         /* expected message */
};

static const struct bld_case bld_cases[] = {
	{ "", BLD_REQUIRE, "", "missing provider (ip, host, all, local, valid-user, user, group)" },
	{ "", BLD_REQUIRE, "not", "missing provider (ip, host, all, local, valid-user, user, group)" },
	{ "", BLD_REQUIRE, "ip", "\"ip\" needs at least one address or subnet" },
	{ "", BLD_REQUIRE, "host", "\"host\" needs at least one host name or domain" },
	{ "", BLD_REQUIRE, "ip 10.0.0.300",
	  "bad address \"10.0.0.300\": not an IP address or subnet" },
	{ "", BLD_REQUIRE, "ip 10.0.0.0/255.0.255.0",
	  "bad address \"10.0.0.0/255.0.255.0\": netmask is not contiguous" },
	{ "", BLD_REQUIRE, "ip example.org",
	  "bad address \"example.org\": not an IP address or subnet" },
	{ "", BLD_REQUIRE, "host 10.1.2.3", "\"10.1.2.3\" is an address: use Require ip" },
	{ "", BLD_REQUIRE, "host bad!name", "bad host name \"bad!name\"" },
	{ "", BLD_REQUIRE, "host a..b", "bad host name \"a..b\"" },
	{ "", BLD_REQUIRE, "host example.org.", "bad host name \"example.org.\"" },
	{ "", BLD_REQUIRE, "all", "expected \"all granted\" or \"all denied\"" },
	{ "", BLD_REQUIRE, "all maybe",
	  "expected \"all granted\" or \"all denied\", got \"all maybe\"" },
	{ "", BLD_REQUIRE, "not all granted", "\"Require not all\" is not supported" },
	{ "", BLD_REQUIRE, "local x", "\"local\" takes no arguments" },
	{ "", BLD_REQUIRE, "env X",
	  "unsupported provider \"env\" (supported: ip, host, all, local, valid-user, user, "
	  "group)" },
	{ "", BLD_REQUIRE, "user", "\"user\" needs at least one user name" },
	{ "", BLD_REQUIRE, "group", "\"group\" needs at least one group name" },
	{ "", BLD_REQUIRE, "valid-user x", "\"valid-user\" takes no arguments" },
	{ "", BLD_REQUIRE, "not all denied", "\"Require not all\" is not supported" },
	{ "Order deny,allow", BLD_REQUIRE, "all granted",
	  "cannot mix Require with Order/Allow/Deny in one section" },
	{ "Allow from all", BLD_REQUIRE, "all granted",
	  "cannot mix Require with Order/Allow/Deny in one section" },
	{ "Require all granted", BLD_ORDER, "deny,allow",
	  "cannot mix Order/Allow/Deny with Require in one section" },
	{ "Require all granted", BLD_DENY, "all",
	  "cannot mix Order/Allow/Deny with Require in one section" },
	{ "", BLD_ORDER, "deny",
	  "expected deny,allow, allow,deny or mutual-failure, got \"deny\"" },
	{ "", BLD_ORDER, "deny,allow,", "expected deny,allow, allow,deny or mutual-failure, got "
	  "\"deny,allow,\"" },
	{ "", BLD_ALLOW, "", "expected \"all\", addresses or host names after \"from\"" },
	{ "", BLD_ALLOW, "env=internal", "\"env=internal\": env= is not supported" },
	{ "", BLD_DENY, "10.0.0.300", "bad address \"10.0.0.300\": not an IP address or subnet" },
	{ "", BLD_DENY, "10.0.0.0/40", "bad address \"10.0.0.0/40\": bad prefix length" },
	{ "", BLD_ALLOW, "fe80::zz", "bad address \"fe80::zz\": not an IP address or subnet" },
	{ "", BLD_ALLOW, "host/name", "bad address or host name \"host/name\"" },
	{ "", BLD_ALLOW, "10.1.2.3/8/8", "bad address \"10.1.2.3/8/8\": bad prefix length" },
	{ "", BLD_ALLOW, "example.org:80", "bad address \"example.org:80\": not an IP address or "
	  "subnet" },
};

static void
acl_builder_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bld_cases) / sizeof(bld_cases[0]); i++) {
		const struct bld_case *c = &bld_cases[i];
		char args[256], *w[16];
		struct pol_acl *acl;
		struct pol_acl_section *sec;
		const char *err = NULL;
		size_t n;
		int rc = 0;

		assert_int_equal(pol_acl_new(&acl), 0);
		sec = pol_acl_section_add(acl, POL_SEC_PREFIX, "*", NULL, &err);
		assert_non_null(sec);
		if (*c->before) {
			snprintf(args, sizeof(args), "%s", c->before);
			n = acl_words(args, w, 16);
			if (strcmp(w[0], "Require") == 0)
				rc = pol_acl_require(sec, w + 1, n - 1, &err);
			else if (strcmp(w[0], "Order") == 0)
				rc = pol_acl_order(sec, w[1], &err);
			else
				rc = pol_acl_allow(sec, 0, w + 2, n - 2, &err);
			assert_int_equal(rc, 0);
		}
		snprintf(args, sizeof(args), "%s", c->args);
		n = acl_words(args, w, 16);
		switch (c->op) {
		case BLD_REQUIRE:
			rc = pol_acl_require(sec, w, n, &err);
			break;
		case BLD_ORDER:
			rc = pol_acl_order(sec, n ? w[0] : "", &err);
			break;
		case BLD_ALLOW:
		case BLD_DENY:
			rc = pol_acl_allow(sec, c->op == BLD_DENY, w, n, &err);
			break;
		}
		if (rc == 0)
			fail_msg("case %zu (%s) accepted", i, c->args);
		assert_non_null(err);
		if (strcmp(err, c->err) != 0)
			fail_msg("case %zu: \"%s\", expected \"%s\"", i, err, c->err);
		pol_acl_free(&acl);
	}
}

static void
acl_failed_line_adds_nothing(void **state)
{
	struct pol_acl *acl;
	struct pol_acl_section *sec;
	const char *err, *rule;
	char *bad[] = { "ip", "10.0.0.0/8", "bogus!" };
	char *bad2[] = { "10.0.0.0/8", "env=x" };
	struct sockaddr_storage ss;
	const struct sockaddr *client = acl_addr("10.1.1.1", &ss);

	(void)state;
	assert_int_equal(pol_acl_new(&acl), 0);
	sec = pol_acl_section_add(acl, POL_SEC_PREFIX, "*", NULL, &err);
	assert_non_null(sec);
	assert_int_equal(pol_acl_require(sec, bad, 3, &err), -1);
	/* The section still has no rules, so the default decides. */
	assert_int_equal(pol_acl_check(acl, "GET", ANY, strlen(ANY), client, NULL, &rule), POL_DENY);
	assert_string_equal(rule, loopback_rule);
	/* ... and may still take either style. */
	assert_int_equal(pol_acl_allow(sec, 0, bad2, 2, &err), -1);
	assert_int_equal(pol_acl_check(acl, "GET", ANY, strlen(ANY), client, NULL, &rule), POL_DENY);
	assert_string_equal(rule, loopback_rule);
	assert_int_equal(pol_acl_require(sec, bad, 2, &err), 0);
	assert_int_equal(pol_acl_check(acl, "GET", ANY, strlen(ANY), client, NULL, &rule), POL_ALLOW);
	assert_string_equal(rule, "Require ip 10.0.0.0/8 (<Proxy *>)");
	pol_acl_free(&acl);
}

struct section_err_case {
	enum pol_section_kind kind;
	const char *pattern;
	const char *err_prefix;
};

#define DEEP33 "(((((((((((((((((((((((((((((((((a)))))))))))))))))))))))))))))))))"
static const struct section_err_case section_err_cases[] = {
	{ POL_SEC_PREFIX, "", "empty pattern" },
	{ POL_SEC_REGEX, "", "empty pattern" },
	{ POL_SEC_PREFIX, "http://example.com:99999/", "cannot normalize URL "
	  "\"http://example.com:99999/\": bad port" },
	{ POL_SEC_PREFIX, "http://example.com%2F.evil/", "cannot normalize URL "
	  "\"http://example.com%2F.evil/\": encoded '/' or NUL in host" },
	{ POL_SEC_REGEX, "(", "bad regular expression \"(\": " },
	{ POL_SEC_REGEX, "a[", "bad regular expression \"a[\": " },
	{ POL_SEC_REGEX, "(a)\\1", "bad regular expression \"(a)\\1\": back-references are not "
	  "supported" },
	{ POL_SEC_REGEX, "(a{200}){100}", "bad regular expression \"(a{200}){100}\": repetitions "
	  "too large or too deeply nested" },
	{ POL_SEC_REGEX, "a{99999}", "bad regular expression \"a{99999}\": repetitions too large "
	  "or too deeply nested" },
	{ POL_SEC_REGEX, "((((((((((((((a+)+)+)+)+)+)+)+)+)+)+)+)+)+)+",
	  "bad regular expression \"((((((((((((((a+)+)+)+)+)+)+)+)+)+)+)+)+)+)+\": repetitions "
	  "too large or too deeply nested" },
	{ POL_SEC_REGEX, "^https://[^/]*++++\\.example\\.org/", "bad regular expression "
	  "\"^https://[^/]*++++\\.example\\.org/\": a repetition operator follows another" },
	{ POL_SEC_REGEX, "a{2}*", "bad regular expression \"a{2}*\": a repetition operator "
	  "follows another" },
	{ POL_SEC_REGEX, DEEP33,
	  "bad regular expression \"" DEEP33 "\": groups nested too deeply" },
};

static void
acl_section_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(section_err_cases) / sizeof(section_err_cases[0]); i++) {
		const struct section_err_case *c = &section_err_cases[i];
		struct pol_acl *acl;
		const char *err = NULL;

		assert_int_equal(pol_acl_new(&acl), 0);
		assert_null(pol_acl_section_add(acl, c->kind, c->pattern, NULL, &err));
		assert_non_null(err);
		if (strncmp(err, c->err_prefix, strlen(c->err_prefix)) != 0)
			fail_msg("pattern \"%s\": \"%s\"", c->pattern, err);
		pol_acl_free(&acl);
	}
}

static void
acl_reasonable_regex_bounds_accepted(void **state)
{
	struct pol_acl *acl;
	const char *err = NULL;
	struct pol_acl_section *s;

	(void)state;
	assert_int_equal(pol_acl_new(&acl), 0);
	static const char *const ok[] = {
		"^http://[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}/",
		"a+b+c+d+e+f+g+h+i+j+k+l+m+n+o+p+q+r+s+t+",      /* sequential, not nested */
		"[]*+]x[*+]+",                                   /* operators in brackets */
		"[[:alpha:]*]+\\.exe$",
		"\\*+",                                          /* an escaped star repeated */
		"(((((((((a+)+)+)+)+)+)+)+)+)",                  /* 2^8 copies */
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		s = pol_acl_section_add(acl, POL_SEC_REGEX, ok[i], NULL, &err);
		if (!s)
			fail_msg("\"%s\" refused: %s", ok[i], err);
	}
	pol_acl_free(&acl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(net_forms_parse_and_format),
		cmocka_unit_test(net_format_truncates_safely),
		cmocka_unit_test(net_match_v4_v6_and_mapped),
		cmocka_unit_test(net_match_rejects_other_families),
		cmocka_unit_test(ports_lists_parse_and_lookup),
		cmocka_unit_test(acl_decisions),
		cmocka_unit_test(acl_method_limits),
		cmocka_unit_test(acl_limit_builder_errors),
		cmocka_unit_test(acl_check_honours_url_length),
		cmocka_unit_test(acl_null_acl_means_loopback_only),
		cmocka_unit_test(acl_who_decisions),
		cmocka_unit_test(acl_check_reports_need_user),
		cmocka_unit_test(acl_authn_missing_names_the_rule),
		cmocka_unit_test(acl_container_errors),
		cmocka_unit_test(acl_builder_errors),
		cmocka_unit_test(acl_failed_line_adds_nothing),
		cmocka_unit_test(acl_section_errors),
		cmocka_unit_test(acl_rule_line_names_the_rule),
		cmocka_unit_test(acl_reasonable_regex_bounds_accepted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
