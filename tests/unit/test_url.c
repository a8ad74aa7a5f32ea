/*
 * test_url.c - unit tests of URL normalization (daemon/url.c): every spelling of one URL
 * gives one output, what cannot be normalized safely is refused with a reason, and the
 * output is a fixed point (normalizing it again changes nothing).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "daemon/url.h"

struct url_case {
	const char *in;
	unsigned flags;
	const char *out;      /* NULL: refused with reason */
	const char *reason;
};

static const struct url_case url_cases[] = {
	/* host */
	{ "http://origin.test/secret", 0, "http://origin.test/secret", NULL },
	{ "http://origin.test./secret", 0, "http://origin.test/secret", NULL },
	{ "http://ORIGIN.Test/secret", 0, "http://origin.test/secret", NULL },
	{ "HTTP://origin.test/secret", 0, "http://origin.test/secret", NULL },
	{ "http://%6Frigin.%74est/secret", 0, "http://origin.test/secret", NULL },
	{ "http://%4Frigin.test/secret", 0, "http://origin.test/secret", NULL },
	{ "http://origin%2Etest/secret", 0, "http://origin.test/secret", NULL },
	{ "http://origin.test%2F.evil/", 0, NULL, "encoded '/' or NUL in host" },
	{ "http://origin.test%00.evil/", 0, NULL, "encoded '/' or NUL in host" },
	{ "http://origin%25test/", 0, NULL, "encoded character not valid in a host name" },
	{ "http://origin%20test/", 0, NULL, "encoded character not valid in a host name" },
	{ "http://origin%zztest/", 0, NULL, "bad percent-encoding in host" },
	{ "http://origin%4/", 0, NULL, "bad percent-encoding in host" },
	{ "http://origin..test/", 0, NULL, "empty label in host" },
	{ "http://.origin.test/", 0, NULL, "empty label in host" },
	{ "http://origin.test../", 0, NULL, "empty label in host" },
	{ "http://origin.test.%2E/", 0, NULL, "empty label in host" },
	{ "http://./", 0, NULL, "missing host" },
	{ "http://:80/", 0, NULL, "missing host" },
	{ "http://[::1]/", 0, "http://[::1]/", NULL },
	{ "http://[0:0::0:1]:80/", 0, "http://[::1]/", NULL },
	{ "http://[2001:DB8::A]:8080/x", 0, "http://[2001:db8::a]:8080/x", NULL },
	{ "http://[::1/", 0, NULL, "unbalanced brackets in host" },
	{ "http://[zz]/", 0, NULL, "bad IPv6 literal" },
	/* port */
	{ "http://origin.test:80/secret", 0, "http://origin.test/secret", NULL },
	{ "http://origin.test:0080/secret", 0, "http://origin.test/secret", NULL },
	{ "http://origin.test:021081/secret", 0, "http://origin.test:21081/secret", NULL },
	{ "http://origin.test:21081/secret", 0, "http://origin.test:21081/secret", NULL },
	{ "https://origin.test:443/", 0, "https://origin.test/", NULL },
	{ "ftp://origin.test:21/", 0, "ftp://origin.test/", NULL },
	{ "ftp://origin.test:80/", 0, "ftp://origin.test:80/", NULL },
	{ "http://origin.test:443/", 0, "http://origin.test:443/", NULL },
	{ "http://origin.test:65535/", 0, "http://origin.test:65535/", NULL },
	{ "http://origin.test:65536/", 0, NULL, "bad port" },
	{ "http://origin.test:99999/", 0, NULL, "bad port" },
	{ "http://origin.test:99999999999999999999/", 0, NULL, "bad port" },
	{ "http://origin.test:0/", 0, NULL, "bad port" },
	{ "http://origin.test:000/", 0, NULL, "bad port" },
	{ "http://origin.test:/", 0, "http://origin.test/", NULL },
	{ "http://origin.test:8080:80/", 0, NULL, "bad port" },
	{ "http://origin.test:8a/", 0, NULL, "bad port" },
	/* path */
	{ "http://origin.test", 0, "http://origin.test/", NULL },
	{ "http://origin.test//secret", 0, "http://origin.test/secret", NULL },
	{ "http://origin.test/./secret", 0, "http://origin.test/secret", NULL },
	{ "http://origin.test/a/../secret", 0, "http://origin.test/secret", NULL },
	{ "http://origin.test/%73ecret", 0, "http://origin.test/secret", NULL },
	{ "http://origin.test/%2E%2E/secret", 0, "http://origin.test/secret", NULL },
	{ "http://origin.test/a/%2e/b", 0, "http://origin.test/a/b", NULL },
	{ "http://origin.test/../../secret", 0, "http://origin.test/secret", NULL },
	{ "http://origin.test/a//b///c", 0, "http://origin.test/a/b/c", NULL },
	{ "http://origin.test/a/b/..", 0, "http://origin.test/a/", NULL },
	{ "http://origin.test/a/b/.", 0, "http://origin.test/a/b/", NULL },
	{ "http://origin.test/a/", 0, "http://origin.test/a/", NULL },
	{ "http://origin.test/a//", 0, "http://origin.test/a/", NULL },
	{ "http://origin.test/..", 0, "http://origin.test/", NULL },
	{ "http://origin.test/a..b/.c", 0, "http://origin.test/a..b/.c", NULL },
	{ "http://origin.test/a%2Fb", 0, "http://origin.test/a%2Fb", NULL },
	{ "http://origin.test/a%2fb", 0, "http://origin.test/a%2Fb", NULL },
	{ "http://origin.test/a%2F..%2Fb", 0, "http://origin.test/a%2F..%2Fb", NULL },
	{ "http://origin.test/%7e%41%5f%2d", 0, "http://origin.test/~A_-", NULL },
	{ "http://origin.test/%e2%82%ac", 0, "http://origin.test/%E2%82%AC", NULL },
	{ "http://origin.test/Secret", 0, "http://origin.test/Secret", NULL },
	{ "http://origin.test/100%", 0, NULL, "bad percent-encoding in path" },
	{ "http://origin.test/%%341", 0, NULL, "bad percent-encoding in path" },
	{ "http://origin.test/%zz", 0, NULL, "bad percent-encoding in path" },
	/* query and fragment */
	{ "http://origin.test/a?x=%2f&y=//./..", 0, "http://origin.test/a?x=%2F&y=//./..", NULL },
	{ "http://origin.test/a?q=100%&r=%7e", 0, "http://origin.test/a?q=100%&r=%7E", NULL },
	{ "http://origin.test/a#frag", 0, "http://origin.test/a", NULL },
	{ "http://origin.test/a?q#frag", 0, "http://origin.test/a?q", NULL },
	/* userinfo is kept as written */
	{ "ftp://User:P%41ss@FTP.Test/", 0, "ftp://User:P%41ss@ftp.test/", NULL },
	/* schemes */
	{ "Gopher://H.test:70/", 0, "gopher://h.test:70/", NULL },
	{ "origin.test/a", 0, NULL, "missing scheme" },
	{ "", 0, NULL, "missing scheme" },
	{ "http:/origin.test/", 0, NULL, "missing scheme" },
	/* config prefixes */
	{ "http://Origin.TEST./Secret", URL_N_PREFIX, "http://origin.test/Secret", NULL },
	{ "http://origin.test:80", URL_N_PREFIX, "http://origin.test/", NULL },
	{ "http://origin.test:021081", URL_N_PREFIX, "http://origin.test:21081/", NULL },
	{ "http://origin.test", URL_N_PREFIX, "http://origin.test", NULL },
	{ "http://www.", URL_N_PREFIX, "http://www.", NULL },
	{ "http://", URL_N_PREFIX, "http://", NULL },
	{ "http://origin.test//a/./b/", URL_N_PREFIX, "http://origin.test/a/b/", NULL },
	{ "http://origin.test/%73ec", URL_N_PREFIX, "http://origin.test/sec", NULL },
	{ "http://origin.test/%7", URL_N_PREFIX, NULL, "bad percent-encoding in path" },
};

static void
test_url_normalize_table(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(url_cases) / sizeof(url_cases[0]); k++) {
		const struct url_case *t = &url_cases[k];
		char out[512], again[512 + URL_NORM_SLACK];
		const char *why = NULL;
		struct url_norm r;
		int rc = url_normalize(t->in, strlen(t->in), t->flags, out, sizeof(out), &r, &why);

		if (t->out == NULL) {
			if (rc != -1 || why == NULL || strcmp(why, t->reason) != 0)
				fail_msg("%s: want refusal \"%s\", got rc %d \"%s\" (%s)", t->in,
				         t->reason, rc, why ? why : "", rc == 0 ? out : "");
			continue;
		}
		if (rc != 0)
			fail_msg("%s: refused: %s", t->in, why);
		if (strcmp(out, t->out) != 0)
			fail_msg("%s: got %s, want %s", t->in, out, t->out);
		assert_int_equal(r.len, strlen(out));
		/* a fixed point */
		assert_int_equal(url_normalize(out, r.len, t->flags, again, sizeof(again), NULL,
		                               &why), 0);
		if (strcmp(again, out) != 0)
			fail_msg("%s: not idempotent: %s then %s", t->in, out, again);
	}
}

static void
test_url_normalize_reports_parts(void **state)
{
	char out[256];
	const char *why = NULL;
	struct url_norm r;
	const char *in = "HTTP://User@Origin.Test.:021081//a/../b?Q=%7e";

	(void)state;
	assert_int_equal(url_normalize(in, strlen(in), 0, out, sizeof(out), &r, &why), 0);
	assert_string_equal(out, "http://User@origin.test:21081/b?Q=%7E");
	assert_int_equal(r.port, 21081);
	assert_int_equal(r.host_is_ip6, 0);
	assert_int_equal(r.host_len, strlen("origin.test"));
	assert_memory_equal(out + r.host_off, "origin.test", r.host_len);
	assert_memory_equal(out + r.path_off, "/b", 2);
	assert_string_equal(out + r.query_off, "?Q=%7E");

	in = "http://[::1]/";
	assert_int_equal(url_normalize(in, strlen(in), 0, out, sizeof(out), &r, &why), 0);
	assert_int_equal(r.port, 80);
	assert_int_equal(r.host_is_ip6, 1);
	assert_memory_equal(out + r.host_off, "::1", 3);
	assert_int_equal(r.query_off, r.len);
}

static void
test_url_normalize_refuses_small_buffer(void **state)
{
	char out[16];
	const char *why = NULL;
	const char *in = "http://a/";

	(void)state;
	assert_int_equal(url_normalize(in, strlen(in), 0, out, sizeof(out), NULL, &why), -1);
	assert_string_equal(why, "URL too long");
}

static void
test_url_host_normalize(void **state)
{
	char out[128];
	const char *why = NULL;

	(void)state;
	assert_int_equal(url_host_normalize("Origin.Test.", 12, 0, out, sizeof(out), &why), 11);
	assert_string_equal(out, "origin.test");
	assert_int_equal(url_host_normalize("%6frigin.test", 13, 0, out, sizeof(out), &why), 11);
	assert_string_equal(out, "origin.test");
	assert_int_equal(url_host_normalize("0:0::1", 6, 1, out, sizeof(out), &why), 3);
	assert_string_equal(out, "::1");
	assert_int_equal(url_host_normalize("a%2Fb", 5, 0, out, sizeof(out), &why), -1);
	assert_string_equal(why, "encoded '/' or NUL in host");
	assert_int_equal(url_host_normalize("a%00b", 5, 0, out, sizeof(out), &why), -1);
	assert_int_equal(url_host_normalize("a/b", 3, 0, out, sizeof(out), &why), -1);
	assert_string_equal(why, "invalid character in host");
}

struct mask_case {
	const char *in;
	unsigned flags;
	const char *out;
};

static const struct mask_case mask_cases[] = {
	/* the first raw URL only: a proxied ftp:// login */
	{ "ftp://user:secret@host/a", 0, "ftp://user@host/a" },
	{ "ftp://user@host:21/a", 0, "ftp://user@host:21/a" },
	{ "ftp://host:21/a:b@c", 0, "ftp://host:21/a:b@c" },
	{ "ftp://us:er:pw@x@host/", 0, "ftp://us@host/" },
	{ "ftp://user:p%2Fw@host/", 0, "ftp://user@host/" },
	{ "ftp://a:b@h/ ftp://c:d@h/", 0, "ftp://a@h/ ftp://c:d@h/" },
	{ "/x?u=ftp%3A%2F%2Fa%3Ab%40h", 0, "/x?u=ftp%3A%2F%2Fa%3Ab%40h" },
	/* every URL, raw or escaped: the status page's explain query, a Referer */
	{ "GET /gatehouse/explain?url=ftp://user:secret@host/&client= HTTP/1.1", URL_MASK_EVERY,
	  "GET /gatehouse/explain?url=ftp://user@host/&client= HTTP/1.1" },
	{ "/gatehouse/explain?url=ftp%3A%2F%2Fuser%3Asecret%40host%2F&method=GET",
	  URL_MASK_EVERY, "/gatehouse/explain?url=ftp%3A%2F%2Fuser%40host%2F&method=GET" },
	{ "/e?url=http%3a%2f%2fu%3as%40h&x=ftp%3A%2F%2Fv%3At%40g%2F", URL_MASK_EVERY,
	  "/e?url=http%3a%2f%2fu%40h&x=ftp%3A%2F%2Fv%40g%2F" },
	{ "/e?url=ftp%3A%2F%2Fhost%2Fa%3Ab%40c", URL_MASK_EVERY,
	  "/e?url=ftp%3A%2F%2Fhost%2Fa%3Ab%40c" },
	{ "/e?url=ftp%3A%2F%2Fu%3Apw&n=1@2", URL_MASK_EVERY, "/e?url=ftp%3A%2F%2Fu%3Apw&n=1@2" },
	{ "ftp://a:b@h/?r=http://c:d@i/", URL_MASK_EVERY, "ftp://a@h/?r=http://c@i/" },
	{ "Referer: http://p/e?url=ftp%3A%2F%2Fu%3Ap%40h\r\nHost: p\r\n", URL_MASK_EVERY,
	  "Referer: http://p/e?url=ftp%3A%2F%2Fu%40h\r\nHost: p\r\n" },
	{ "no url here: a:b@c", URL_MASK_EVERY, "no url here: a:b@c" },
	{ "://", URL_MASK_EVERY, "://" },
	{ "x%3A%2F%2", URL_MASK_EVERY, "x%3A%2F%2" },
	{ "", URL_MASK_EVERY, "" },
};

static void
test_url_password_mask(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(mask_cases) / sizeof(mask_cases[0]); i++) {
		char buf[256];
		snprintf(buf, sizeof(buf), "%s", mask_cases[i].in);
		size_t n = url_password_mask(buf, strlen(buf), mask_cases[i].flags);
		if (strcmp(buf, mask_cases[i].out) != 0 || n != strlen(mask_cases[i].out))
			fail_msg("case %zu: %s -> %s (%zu), want %s", i, mask_cases[i].in, buf, n,
			         mask_cases[i].out);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_normalize_table),
		cmocka_unit_test(test_url_normalize_reports_parts),
		cmocka_unit_test(test_url_normalize_refuses_small_buffer),
		cmocka_unit_test(test_url_host_normalize),
		cmocka_unit_test(test_url_password_mask),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
