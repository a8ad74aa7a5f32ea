/*
 * test_authz.c - policy/authz.c: Apache 2.4's authorization containers as the status page's
 * <Location> uses them (RequireAny at the top, RequireAll, RequireNone, "not", ip, local,
 * all, valid-user, user), the "no user yet" answer that makes a 401, and the builder's
 * refusals.
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

/* Build from lines: "Require ...", "<RequireAll>", "</RequireAll>" ...; NULL on error. */
static struct pol_authz *
build(const char *text, const char **err)
{
	struct pol_authz *a;
	char buf[1024], *save = NULL;
	assert_int_equal(pol_authz_new(&a), 0);
	snprintf(buf, sizeof(buf), "%s", text);
	*err = NULL;
	for (char *ln = strtok_r(buf, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
		char *argv[16];
		size_t argc = 0;
		char *s2 = NULL;
		if (ln[0] == '<' && ln[1] == '/') {
			if (pol_authz_close(a, err) != 0)
				goto bad;
			continue;
		}
		if (ln[0] == '<') {
			ln[strlen(ln) - 1] = '\0';
			if (pol_authz_open(a, ln + 1, err) != 0)
				goto bad;
			continue;
		}
		for (char *w = strtok_r(ln, " ", &s2); w && argc < 16; w = strtok_r(NULL, " ", &s2))
			argv[argc++] = w;
		if (pol_authz_require(a, argv + 1, argc - 1, "t.conf:1", err) != 0)
			goto bad;
	}
	if (pol_authz_finish(a, err) != 0)
		goto bad;
	return a;
bad:
	{
		static char keep[512]; /* *err may live in a, which goes now */
		snprintf(keep, sizeof(keep), "%s", *err ? *err : "(null)");
		*err = keep;
	}
	pol_authz_free(&a);
	return NULL;
}

static struct sockaddr_storage
addr(const char *text)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (strchr(text, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
	}
	return ss;
}

enum { D = POL_AUTHZ_DENIED, G = POL_AUTHZ_GRANTED, N = POL_AUTHZ_NEUTRAL, U = POL_AUTHZ_NO_USER };

static void
decisions(void **state)
{
	(void)state;
	static const struct {
		const char *rules, *client, *user;
		int want;
	} cases[] = {
		{ "Require ip 10.1.0.0/24 127.0.0.1 ::1", "10.1.0.7", NULL, G },
		{ "Require ip 10.1.0.0/24 127.0.0.1 ::1", "10.2.0.7", NULL, D },
		{ "Require ip 10.1.0.0/24 127.0.0.1 ::1", "::1", NULL, G },
		{ "Require ip 10.1.0.0/24", "::ffff:10.1.0.9", NULL, G },
		{ "Require local", "127.0.0.9", NULL, G },
		{ "Require local", "192.0.2.1", NULL, D },
		{ "Require all granted", "192.0.2.1", NULL, G },
		{ "Require all denied", "127.0.0.1", NULL, D },
		/* any of the lines: the address grants without a user; else a user is asked for */
		{ "Require ip 10.1.0.0/24\nRequire valid-user", "10.1.0.1", NULL, G },
		{ "Require ip 10.1.0.0/24\nRequire valid-user", "10.9.0.1", NULL, U },
		{ "Require ip 10.1.0.0/24\nRequire valid-user", "10.9.0.1", "alice", G },
		/* all of them: outside the subnet no password helps, inside one is needed */
		{ "<RequireAll>\nRequire ip 10.1.0.0/24\nRequire valid-user\n</RequireAll>",
		  "10.9.0.1", NULL, D },
		{ "<RequireAll>\nRequire ip 10.1.0.0/24\nRequire valid-user\n</RequireAll>",
		  "10.1.0.1", NULL, U },
		{ "<RequireAll>\nRequire ip 10.1.0.0/24\nRequire valid-user\n</RequireAll>",
		  "10.1.0.1", "bob", G },
		{ "Require user alice carol", "127.0.0.1", NULL, U },
		{ "Require user alice carol", "127.0.0.1", "carol", G },
		{ "Require user alice carol", "127.0.0.1", "bob", D },
		{ "<RequireAll>\nRequire ip 10.0.0.0/8\nRequire not ip 10.6.0.0/16\n</RequireAll>",
		  "10.6.1.1", NULL, D },
		{ "<RequireAll>\nRequire ip 10.0.0.0/8\nRequire not ip 10.6.0.0/16\n</RequireAll>",
		  "10.7.1.1", NULL, G },
		{ "<RequireAll>\nRequire valid-user\nRequire not user mallory\n</RequireAll>",
		  "10.7.1.1", "mallory", D },
		{ "<RequireAll>\nRequire valid-user\nRequire not user mallory\n</RequireAll>",
		  "10.7.1.1", "alice", G },
		/* RequireNone inside RequireAll: a veto list */
		{ "<RequireAll>\nRequire all granted\n<RequireNone>\nRequire ip 192.0.2.0/24\n"
		  "Require ip 198.51.100.0/24\n</RequireNone>\n</RequireAll>", "198.51.100.3", NULL, D },
		{ "<RequireAll>\nRequire all granted\n<RequireNone>\nRequire ip 192.0.2.0/24\n"
		  "</RequireNone>\n</RequireAll>", "203.0.113.3", NULL, G },
		/* nested any-of inside all-of */
		{ "<RequireAll>\nRequire valid-user\n<RequireAny>\nRequire ip 10.1.0.0/24\n"
		  "Require ip 10.2.0.0/24\n</RequireAny>\n</RequireAll>", "10.2.0.5", "a", G },
		{ "<RequireAll>\nRequire valid-user\n<RequireAny>\nRequire ip 10.1.0.0/24\n"
		  "Require ip 10.2.0.0/24\n</RequireAny>\n</RequireAll>", "10.3.0.5", "a", D },
		/* a RequireNone alone never grants: neutral, which the caller refuses */
		{ "<RequireNone>\nRequire ip 192.0.2.0/24\n</RequireNone>", "203.0.113.3", NULL, N },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *err, *rule = NULL;
		struct pol_authz *a = build(cases[i].rules, &err);
		if (a == NULL)
			fail_msg("case %zu: %s", i, err);
		struct sockaddr_storage ss = addr(cases[i].client);
		int got = pol_authz_check(a, (const struct sockaddr *)&ss, cases[i].user, &rule);
		if (got != cases[i].want)
			fail_msg("case %zu (%s / %s / %s): got %d, want %d", i, cases[i].rules,
			         cases[i].client, cases[i].user ? cases[i].user : "-", got,
			         cases[i].want);
		assert_non_null(rule);
		pol_authz_free(&a);
		assert_null(a);
	}
}

static void
deciding_rule_is_named_with_its_place(void **state)
{
	(void)state;
	const char *err, *rule;
	struct pol_authz *a = build("Require ip 10.0.0.0/8\nRequire valid-user", &err);
	struct sockaddr_storage ss = addr("192.0.2.1");
	assert_int_equal(pol_authz_check(a, (const struct sockaddr *)&ss, NULL, &rule), U);
	assert_string_equal(rule, "Require valid-user (t.conf:1)");
	ss = addr("10.0.0.1");
	assert_int_equal(pol_authz_check(a, (const struct sockaddr *)&ss, NULL, &rule), G);
	assert_string_equal(rule, "Require ip 10.0.0.0/8 (t.conf:1)");
	assert_true(pol_authz_uses_user(a));
	assert_false(pol_authz_empty(a));
	pol_authz_free(&a);
	a = build("Require local", &err);
	assert_false(pol_authz_uses_user(a));
	pol_authz_free(&a);
}

static void
builder_refusals(void **state)
{
	(void)state;
	static const struct {
		const char *rules, *err;
	} cases[] = {
		{ "Require not ip 10.0.0.1", "a negative Require has no effect in <RequireAny> (or "
		  "outside any container): put it in <RequireAll> or <RequireNone>" },
		{ "Require host example.org", "\"Require host\" is not supported here (use Require "
		  "ip)" },
		{ "Require ip", "\"ip\" needs at least one address or subnet" },
		{ "Require ip 10.0.0.300", "bad address \"10.0.0.300\": not an IP address or subnet" },
		{ "Require user", "\"user\" needs at least one user name" },
		{ "Require valid-user x", "this provider takes no arguments" },
		{ "Require all maybe", "expected \"all granted\" or \"all denied\", got \"all maybe\"" },
		{ "Require group staff", "unsupported provider \"group\" (supported: ip, local, all, "
		  "valid-user, user)" },
		{ "<RequireNone>\nRequire not ip 10.0.0.1", "a negative Require has no effect in "
		  "<RequireNone>: it could never grant (write the positive rule there)" },
		{ "Require env X", "unsupported provider \"env\" (supported: ip, local, all, "
		  "valid-user, user)" },
		{ "<RequireAll>\n</RequireAll>", "the container holds no Require directive" },
		{ "<RequireAll>\nRequire not ip 10.0.0.1\n</RequireAll>", "<RequireAll> holds only "
		  "negative rules: it can never grant" },
		{ "<RequireAll>\nRequire local", "authorization container not closed" },
		{ "</RequireAll>", "no open authorization container" },
		{ "<RequireSome>", "unknown authorization container (RequireAny, RequireAll, "
		  "RequireNone)" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *err;
		struct pol_authz *a = build(cases[i].rules, &err);
		if (a != NULL)
			fail_msg("case %zu accepted: %s", i, cases[i].rules);
		if (err == NULL || strcmp(err, cases[i].err) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err ? err : "(null)",
			         cases[i].err);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(decisions),
		cmocka_unit_test(deciding_rule_is_named_with_its_place),
		cmocka_unit_test(builder_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
