/*
 * test_auth.c - webui/auth.c: htpasswd files (hashes made by Debian's htpasswd from
 * apache2-utils, and by libxcrypt's crypt_gensalt_rn) verified and refused with FILE:LINE,
 * Basic credentials, the failed-login limiter, the verified-credentials cache, sessions and
 * CSRF tokens, and the status page's ui_csrf_* on them (webui/ui_csrf.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "webui/auth.h"
#include "webui/ui_priv.h"

/* Made with apache2-utils 2.4 (Debian 12): htpasswd -nbB -C 5, -nb -5, -nb -2, -2 -r 6000. */
#define H_ALICE "alice:$2y$05$2RoqHU7dunI3bx9UK4yM3.hJuY1bR7NIv6WqxYG02t.Ke.fhQeybG\n"
#define P_ALICE "open sesame"
#define H_CAROL "carol:$6$mTLOSnfgKJUFBROU$tk78AKxCgzxgEnUnCY3eFRxAG7RUjbNgFr3SCCgl.e2suAO7S" \
                "OnwukreoPV5TqI03i5OEKuTfRnYZ5XXFVeNw/\n"
#define P_CAROL "s3cret:x"
#define H_BOB   "bob:$5$gqxxApfMNI2ogypy$1rT4zwyvk9s8WOuAVwtIlcfEbH7k9ExYpVEiL59apu/\n"
#define P_BOB   "p\xc3\xa4ssword"
#define H_RITA  "rita:$5$rounds=6000$rjV5TLSVS9Su96ms$uPpHPfMdOJo4YlJIMkjZ5/aWeRqhj02yUZ3ujRNDM49\n"
#define P_RITA  "r"

#include "tests/unit/tmpdir.h"

static int
setup(void **state)
{
	(void)state;
	return tmpdir_make("/tmp/gh-test-auth-XXXXXX");
}

static int
teardown(void **state)
{
	(void)state;
	return tmpdir_remove();
}

static struct auth_htpasswd *
load_ok(const char *text)
{
	char err[512] = "";
	struct auth_htpasswd *h = NULL;
	int r = auth_htpasswd_load(write_file("ok.htpasswd", text), &h, err, sizeof(err));
	if (r != 0)
		print_error("unexpected error: %s\n", err);
	assert_int_equal(r, 0);
	assert_non_null(h);
	return h;
}

/* Loading must fail, and the message must contain every fragment given (NULL-ended). */
static void
load_fails(const char *text, ...)
{
	char err[512] = "";
	struct auth_htpasswd *h = (struct auth_htpasswd *)1;
	const char *path = write_file("bad.htpasswd", text);
	assert_int_equal(auth_htpasswd_load(path, &h, err, sizeof(err)), -1);
	assert_null(h);
	assert_non_null(strstr(err, path));
	va_list ap;
	va_start(ap, text);
	for (const char *frag; (frag = va_arg(ap, const char *)) != NULL;) {
		if (strstr(err, frag) == NULL)
			print_error("'%s' not in: %s\n", frag, err);
		assert_non_null(strstr(err, frag));
	}
	va_end(ap);
}

static void
htpasswd_accepts_bcrypt_and_sha_crypt_from_debian_htpasswd(void **state)
{
	(void)state;
	struct auth_htpasswd *h = load_ok("# admins\n\n" H_ALICE "  # indented comment\n" H_CAROL
	                                  H_BOB H_RITA);
	assert_int_equal(auth_htpasswd_count(h), 4);
	assert_true(auth_htpasswd_has(h, "alice"));
	assert_false(auth_htpasswd_has(h, "mallory"));
	assert_int_equal(auth_htpasswd_check(h, "alice", P_ALICE), 1);
	assert_int_equal(auth_htpasswd_check(h, "carol", P_CAROL), 1);
	assert_int_equal(auth_htpasswd_check(h, "bob", P_BOB), 1);
	assert_int_equal(auth_htpasswd_check(h, "rita", P_RITA), 1);
	auth_htpasswd_free(&h);
	assert_null(h);
}

static void
htpasswd_refuses_wrong_passwords_and_unknown_users(void **state)
{
	(void)state;
	struct auth_htpasswd *h = load_ok(H_ALICE H_CAROL H_BOB);
	assert_int_equal(auth_htpasswd_check(h, "alice", "open sesamE"), 0);
	assert_int_equal(auth_htpasswd_check(h, "alice", ""), 0);
	assert_int_equal(auth_htpasswd_check(h, "carol", "s3cret"), 0);
	assert_int_equal(auth_htpasswd_check(h, "bob", "passwd"), 0);
	/* another user's password is not this user's */
	assert_int_equal(auth_htpasswd_check(h, "bob", P_ALICE), 0);
	/* unknown user, even with a password that is valid for the entry it is timed against */
	assert_int_equal(auth_htpasswd_check(h, "zed", P_ALICE), 0);
	assert_int_equal(auth_htpasswd_check(h, "zed", P_BOB), 0);
	assert_int_equal(auth_htpasswd_check(h, "Alice", P_ALICE), 0);
	assert_int_equal(auth_htpasswd_check(h, "", ""), 0);
	auth_htpasswd_free(&h);
}

/* Hashes made here by libxcrypt: $2b$ (its bcrypt prefix) and SHA-512 with rounds=. */
static void
htpasswd_accepts_hashes_made_by_crypt_gensalt(void **state)
{
	(void)state;
	static const struct { const char *prefix; unsigned long count; } kinds[] = {
		{ "$2b$", 4 }, { "$5$", 1000 }, { "$6$", 5000 }, { "$6$", 2000 },
	};
	char text[2048] = "";
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		char setting[CRYPT_GENSALT_OUTPUT_SIZE];
		assert_non_null(crypt_gensalt_rn(kinds[i].prefix, kinds[i].count, NULL, 0, setting,
		                                 sizeof(setting)));
		struct crypt_data *cd = calloc(1, sizeof(*cd));
		assert_non_null(cd);
		const char *hash = crypt_rn("pw-generated", setting, cd, sizeof(*cd));
		assert_non_null(hash);
		char line[256];
		snprintf(line, sizeof(line), "gen%zu:%s\n", i, hash);
		strcat(text, line);
		free(cd);
	}
	struct auth_htpasswd *h = load_ok(text);
	assert_int_equal(auth_htpasswd_count(h), 4);
	for (int i = 0; i < 4; i++) {
		char user[16];
		snprintf(user, sizeof(user), "gen%d", i);
		assert_int_equal(auth_htpasswd_check(h, user, "pw-generated"), 1);
		assert_int_equal(auth_htpasswd_check(h, user, "pw-generatex"), 0);
	}
	auth_htpasswd_free(&h);
}

static void
htpasswd_weak_hashes_are_errors_naming_file_line_and_fix(void **state)
{
	(void)state;
	/* made with htpasswd -nbm, -nbs, -nbp, -nbd */
	load_fails(H_ALICE "mallory:$apr1$NkC9IfBt$jAs7LH0y/QwruGGAa4XnC.\n",
	           ":2: user mallory:", "$apr1$", "htpasswd -B", NULL);
	load_fails("# c\n" H_ALICE "\nsam:{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM=\n",
	           ":4: user sam:", "{SHA}", "htpasswd -B", NULL);
	load_fails("pat:pw\n", ":1: user pat:", "plain-text", "htpasswd -B", NULL);
	load_fails(H_BOB "dora:LIHwn7pTLUvrc\n", ":2: user dora:", "crypt(DES)", "htpasswd -B",
	           NULL);
	load_fails("old:$1$abcdefgh$0123456789abcdefghijkl\n", ":1: user old:", "$1$",
	           "htpasswd -B", NULL);
	/* truncated bcrypt, empty hash, no colon */
	load_fails("cut:$2y$05$2RoqHU7dunI3bx9UK4yM3.hJuY1bR7NIv6WqxYG02t.Ke.fhQey\n",
	           ":1: user cut:", "malformed bcrypt", NULL);
	load_fails("empty:\n", ":1: user empty:", "empty hash", NULL);
	load_fails(H_ALICE "justaname\n", ":2:", "':'", NULL);
	/* control bytes in a user name are not copied into the message (it goes to the log) */
	load_fails("ev\x1b[1mil:plain\n", ":1: user ev?[1mil:", NULL);
}

static void
htpasswd_duplicate_users_are_an_error(void **state)
{
	(void)state;
	load_fails(H_ALICE H_BOB "\n" H_ALICE, ":4: user alice is listed again (first on line 1)",
	           NULL);
}

static void
htpasswd_bounds_and_missing_file(void **state)
{
	(void)state;
	char *big = malloc(AUTH_HTPASSWD_MAX_LINE + 64);
	assert_non_null(big);
	memset(big, 'a', AUTH_HTPASSWD_MAX_LINE + 10);
	strcpy(big + AUTH_HTPASSWD_MAX_LINE + 10, ":x\n");
	load_fails(big, ":1: line longer than", NULL);
	free(big);
	char err[256];
	struct auth_htpasswd *h = NULL;
	assert_int_equal(auth_htpasswd_load("/nonexistent/gh.htpasswd", &h, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/gh.htpasswd"));
	/* CRLF line ends (a file edited on Windows) */
	h = load_ok("bob:$5$gqxxApfMNI2ogypy$1rT4zwyvk9s8WOuAVwtIlcfEbH7k9ExYpVEiL59apu/\r\n");
	assert_int_equal(auth_htpasswd_check(h, "bob", P_BOB), 1);
	auth_htpasswd_free(&h);
	/* an empty file loads and lets nobody in */
	h = load_ok("# nobody yet\n");
	assert_int_equal(auth_htpasswd_count(h), 0);
	assert_int_equal(auth_htpasswd_check(h, "alice", P_ALICE), 0);
	auth_htpasswd_free(&h);
}

static void
basic_decodes_and_refuses_malformed(void **state)
{
	(void)state;
	char u[64], p[64];
	/* "alice:open sesame" */
	assert_int_equal(auth_basic_decode("Basic YWxpY2U6b3BlbiBzZXNhbWU=", u, sizeof(u), p,
	                                   sizeof(p)), 0);
	assert_string_equal(u, "alice");
	assert_string_equal(p, "open sesame");
	/* scheme case-insensitive; the password keeps its colons: "carol:s3cret:x" */
	assert_int_equal(auth_basic_decode("  basic  Y2Fyb2w6czNjcmV0Ong=  ", u, sizeof(u), p,
	                                   sizeof(p)), 0);
	assert_string_equal(u, "carol");
	assert_string_equal(p, "s3cret:x");
	/* an empty password is legal syntax: "u:" */
	assert_int_equal(auth_basic_decode("Basic dTo=", u, sizeof(u), p, sizeof(p)), 0);
	assert_string_equal(u, "u");
	assert_string_equal(p, "");
	/* not Basic, no colon ("alice"), bad alphabet, missing padding, data after padding,
	 * empty user (":pw"), too long for the buffer */
	assert_int_equal(auth_basic_decode("Bearer YWxpY2U6eA==", u, sizeof(u), p, sizeof(p)), -1);
	assert_int_equal(auth_basic_decode("BasicYWxpY2U6eA==", u, sizeof(u), p, sizeof(p)), -1);
	assert_int_equal(auth_basic_decode("Basic YWxpY2U=", u, sizeof(u), p, sizeof(p)), -1);
	assert_int_equal(auth_basic_decode("Basic YWxp*2U6eA==", u, sizeof(u), p, sizeof(p)), -1);
	assert_int_equal(auth_basic_decode("Basic YWxpY2U6eA", u, sizeof(u), p, sizeof(p)), -1);
	assert_int_equal(auth_basic_decode("Basic YW=pY2U6eA==", u, sizeof(u), p, sizeof(p)), -1);
	assert_int_equal(auth_basic_decode("Basic OnB3", u, sizeof(u), p, sizeof(p)), -1);
	assert_int_equal(auth_basic_decode("Basic ", u, sizeof(u), p, sizeof(p)), -1);
	assert_int_equal(auth_basic_decode("Basic YWxpY2U6b3BlbiBzZXNhbWU=", u, 5, p, sizeof(p)),
	                 -1);
	assert_int_equal(auth_basic_decode("Basic YWxpY2U6b3BlbiBzZXNhbWU=", u, sizeof(u), p, 11),
	                 -1);
	/* a NUL inside the password ("a:b\0c") */
	assert_int_equal(auth_basic_decode("Basic YTpiAGM=", u, sizeof(u), p, sizeof(p)), -1);
}

static void
limit_blocks_after_burst_and_recovers(void **state)
{
	(void)state;
	struct auth_limit *l = NULL;
	assert_int_equal(auth_limit_new(&l, 64, 5, 10), 0);
	int64_t t = 1000000;
	for (int i = 0; i < 5; i++) {
		assert_false(auth_limit_blocked(l, "192.0.2.7", t));
		auth_limit_fail(l, "192.0.2.7", t);
	}
	assert_true(auth_limit_blocked(l, "192.0.2.7", t));
	assert_true(auth_limit_blocked(l, "192.0.2.7", t + 9));
	assert_int_equal(auth_limit_wait(l, "192.0.2.7", t), 10);
	assert_int_equal(auth_limit_wait(l, "192.0.2.7", t + 9), 1);
	assert_int_equal(auth_limit_wait(l, "192.0.2.8", t), 0);
	/* another client is not affected; the same IPv6 /64 is one client */
	assert_false(auth_limit_blocked(l, "192.0.2.8", t));
	for (int i = 0; i < 5; i++)
		auth_limit_fail(l, "2001:db8:1:2::1", t);
	assert_true(auth_limit_blocked(l, "2001:db8:1:2:aaaa::99", t));
	assert_false(auth_limit_blocked(l, "2001:db8:1:3::1", t));
	/* one token back after refill_s: one more try, and blocked again by its failure */
	assert_false(auth_limit_blocked(l, "192.0.2.7", t + 10));
	auth_limit_fail(l, "192.0.2.7", t + 10);
	assert_true(auth_limit_blocked(l, "192.0.2.7", t + 10));
	/* hammering while blocked does not push the block beyond one bucket */
	for (int i = 0; i < 1000; i++)
		auth_limit_fail(l, "192.0.2.7", t + 10);
	assert_true(auth_limit_blocked(l, "192.0.2.7", t + 15));
	assert_false(auth_limit_blocked(l, "192.0.2.7", t + 10 + 10));
	/* a success forgets the failures */
	auth_limit_reset(l, "2001:db8:1:2::5");
	assert_false(auth_limit_blocked(l, "2001:db8:1:2::1", t));
	auth_limit_free(&l);
	assert_null(l);
}

static void
limit_table_is_bounded_and_keeps_blocked_clients(void **state)
{
	(void)state;
	struct auth_limit *l = NULL;
	assert_int_equal(auth_limit_new(&l, 16, 3, 60), 0);
	int64_t t = 5000;
	for (int i = 0; i < 3; i++)
		auth_limit_fail(l, "198.51.100.1", t);
	assert_true(auth_limit_blocked(l, "198.51.100.1", t));
	/* 10,000 other clients with one failure each, long ago enough to be refilled: the
	 * table stays at 16 slots and the blocked client, nearest to nothing refilled, stays */
	for (int i = 0; i < 10000; i++) {
		char a[32];
		snprintf(a, sizeof(a), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		auth_limit_fail(l, a, t - 1000);
	}
	assert_true(auth_limit_blocked(l, "198.51.100.1", t));
	auth_limit_free(&l);
}

static void
vcache_remembers_results_without_the_password(void **state)
{
	(void)state;
	struct auth_htpasswd *h = load_ok(H_ALICE H_BOB);
	struct auth_vcache *vc = NULL;
	assert_int_equal(auth_vcache_new(&vc, 16, 300, 10), 0);
	int64_t t = 1000;
	assert_int_equal(auth_htpasswd_verify(h, vc, "alice", P_ALICE, t), 1);
	assert_int_equal(auth_htpasswd_verify(h, vc, "alice", P_ALICE, t + 1), 1);
	assert_int_equal(auth_htpasswd_verify(h, vc, "alice", "nope", t), 0);
	assert_int_equal(auth_htpasswd_verify(h, vc, "alice", "nope", t + 1), 0);
	assert_int_equal(auth_htpasswd_verify(h, vc, "zed", P_ALICE, t), 0);
	assert_int_equal(auth_htpasswd_verify(h, vc, "zed", P_ALICE, t + 1), 0);
	/* the user/password split is part of the key */
	assert_int_equal(auth_htpasswd_verify(h, vc, "alice:open", "sesame", t + 2), 0);
	/* a reloaded file where alice has another hash: the cached "ok" does not apply */
	struct auth_htpasswd *h2 = load_ok("alice:$5$gqxxApfMNI2ogypy$1rT4zwyvk9s8WOuAVwtIlcfEbH7k"
	                                   "9ExYpVEiL59apu/\n");
	assert_int_equal(auth_htpasswd_verify(h2, vc, "alice", P_ALICE, t + 3), 0);
	assert_int_equal(auth_htpasswd_verify(h2, vc, "alice", P_BOB, t + 3), 1);
	/* after the TTL the entry is verified again (still right) */
	assert_int_equal(auth_htpasswd_verify(h, vc, "alice", P_ALICE, t + 400), 1);
	auth_vcache_free(&vc);
	assert_null(vc);
	auth_htpasswd_free(&h2);
	auth_htpasswd_free(&h);
}

static void
session_and_cookie_parsing(void **state)
{
	(void)state;
	char s1[AUTH_SESSION_LEN + 1], s2[AUTH_SESSION_LEN + 1];
	assert_int_equal(auth_session_new(s1), 0);
	assert_int_equal(auth_session_new(s2), 0);
	assert_int_equal(strlen(s1), AUTH_SESSION_LEN);
	assert_true(auth_session_valid(s1, strlen(s1)));
	assert_string_not_equal(s1, s2);
	assert_false(auth_session_valid("0123456789ABCDEF0123456789abcdef", 32));
	assert_false(auth_session_valid("0123456789abcdef", 16));
	char v[64];
	assert_int_equal(auth_cookie_get("a=1; gh_session=abc; b=2", "gh_session", v, sizeof(v)),
	                 3);
	assert_string_equal(v, "abc");
	assert_int_equal(auth_cookie_get("xgh_session=1;gh_session=\"q\"", "gh_session", v,
	                                 sizeof(v)), 1);
	assert_string_equal(v, "q");
	assert_int_equal(auth_cookie_get("gh_sessionx=1; other=2", "gh_session", v, sizeof(v)),
	                 -1);
	assert_int_equal(auth_cookie_get("gh_session=0123456789", "gh_session", v, 5), -1);
	assert_int_equal(auth_cookie_get(NULL, "gh_session", v, sizeof(v)), -1);
}

static void
csrf_token_roundtrip_and_rejections(void **state)
{
	(void)state;
	const char *secret = "5f1c0e6a9b1d4e7f8a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081";
	char s[AUTH_SESSION_LEN + 1], tok[AUTH_CSRF_LEN + 1], tok2[AUTH_CSRF_LEN + 1];
	assert_int_equal(auth_session_new(s), 0);
	assert_int_equal(auth_csrf_token(secret, s, tok), 0);
	assert_int_equal(strlen(tok), AUTH_CSRF_LEN);
	assert_int_equal(auth_csrf_token(secret, s, tok2), 0);
	assert_string_equal(tok, tok2);   /* stable for the session */
	assert_true(auth_csrf_check(secret, s, tok, strlen(tok)));
	/* a known HMAC-SHA256 value: key "key", message the session id below (openssl dgst) */
	assert_int_equal(auth_csrf_token("key", "00112233445566778899aabbccddeeff", tok2), 0);
	assert_string_equal(tok2,
	                    "a426cf345df87f5cbfe4fb4492bb51cf0880e10ddc42e7ec17df609e8a10c92a");
	/* wrong token, truncated, another session's, another secret's, none */
	char bad[AUTH_CSRF_LEN + 1];
	strcpy(bad, tok);
	bad[10] = bad[10] == '0' ? '1' : '0';
	assert_false(auth_csrf_check(secret, s, bad, strlen(bad)));
	assert_false(auth_csrf_check(secret, s, tok, AUTH_CSRF_LEN - 1));
	char other[AUTH_SESSION_LEN + 1];
	assert_int_equal(auth_session_new(other), 0);
	assert_false(auth_csrf_check(secret, other, tok, strlen(tok)));
	assert_false(auth_csrf_check("another secret", s, tok, strlen(tok)));
	assert_false(auth_csrf_check(secret, s, "", 0));
	assert_false(auth_csrf_check(secret, s, NULL, 0));
	/* no secret or a malformed session: no token at all */
	assert_int_equal(auth_csrf_token(NULL, s, tok2), -1);
	assert_int_equal(auth_csrf_token("", s, tok2), -1);
	assert_int_equal(auth_csrf_token(secret, "not-a-session", tok2), -1);
	assert_false(auth_csrf_check(secret, "not-a-session", tok, strlen(tok)));
}

static const char SECRET[] = "9b1d4e7f8a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70815f1c0e6a";

static void
call_init(struct ui_call *c, const struct ui_ops *ops, const char *cookie, const char *body)
{
	memset(c, 0, sizeof(*c));
	c->ops = ops;
	c->req.method = body != NULL ? UI_POST : UI_GET;
	c->req.path = "";
	c->req.query = "";
	c->req.body = body != NULL ? body : "";
	c->req.body_len = strlen(c->req.body);
	c->req.cookie = cookie;
	c->req.prefix = "/gatehouse/";
	c->req.client = "127.0.0.1";
	ui_out_init(&c->resp.body);
}

static void
ui_csrf_session_cookie_token_and_check(void **state)
{
	(void)state;
	struct ui_ops ops = { .csrf_secret = SECRET };
	struct ui_call c;
	char tok[AUTH_CSRF_LEN + 1], tok2[AUTH_CSRF_LEN + 1];

	/* a first page without a cookie: a session is made and set, once per response */
	call_init(&c, &ops, NULL, NULL);
	assert_int_equal(ui_csrf_token(&c, tok, sizeof(tok)), 0);
	assert_int_equal(ui_csrf_token(&c, tok2, sizeof(tok2)), 0);
	assert_string_equal(tok, tok2);
	ui_csrf_field(&c);
	const char *h = c.resp.headers;
	assert_non_null(strstr(h, "Set-Cookie: gh_session="));
	assert_null(strstr(strstr(h, "Set-Cookie") + 1, "Set-Cookie"));
	assert_non_null(strstr(h, "; Path=/gatehouse/; HttpOnly; SameSite=Strict\r\n"));
	char sid[AUTH_SESSION_LEN + 1];
	memcpy(sid, h + strlen("Set-Cookie: gh_session="), AUTH_SESSION_LEN);
	sid[AUTH_SESSION_LEN] = '\0';
	assert_true(auth_session_valid(sid, strlen(sid)));
	char field[160];
	snprintf(field, sizeof(field), "<input type=\"hidden\" name=\"csrf\" value=\"%s\">", tok);
	assert_non_null(c.resp.body.p);
	assert_non_null(strstr(c.resp.body.p, field));
	ui_out_free(&c.resp.body);

	/* the browser comes back with the cookie: same token, no new cookie */
	char cookie[96], body[160];
	snprintf(cookie, sizeof(cookie), "theme=dark; gh_session=%s", sid);
	call_init(&c, &ops, cookie, NULL);
	assert_int_equal(ui_csrf_token(&c, tok2, sizeof(tok2)), 0);
	assert_string_equal(tok, tok2);
	assert_string_equal(c.resp.headers, "");
	ui_out_free(&c.resp.body);

	/* POST with the cookie and the token: ok */
	snprintf(body, sizeof(body), "url=http%%3A%%2F%%2Fa%%2F&csrf=%s", tok);
	call_init(&c, &ops, cookie, body);
	assert_true(ui_csrf_ok(&c));
	ui_out_free(&c.resp.body);
	/* no cookie (the session a response would set does not count), another session, no
	 * token, a wrong one, one in the query only, another secret */
	call_init(&c, &ops, NULL, body);
	assert_false(ui_csrf_ok(&c));
	ui_out_free(&c.resp.body);
	call_init(&c, &ops, "gh_session=0123456789abcdef0123456789abcdef", body);
	assert_false(ui_csrf_ok(&c));
	ui_out_free(&c.resp.body);
	call_init(&c, &ops, cookie, "url=x");
	assert_false(ui_csrf_ok(&c));
	ui_out_free(&c.resp.body);
	snprintf(body, sizeof(body), "csrf=%.63s0", tok);
	if (tok[63] == '0')
		body[strlen(body) - 1] = '1';
	call_init(&c, &ops, cookie, body);
	assert_false(ui_csrf_ok(&c));
	ui_out_free(&c.resp.body);
	snprintf(body, sizeof(body), "csrf=%s", tok);
	call_init(&c, &ops, cookie, "");
	c.req.query = body;
	assert_false(ui_csrf_ok(&c));
	ui_out_free(&c.resp.body);
	struct ui_ops other = { .csrf_secret = "another secret" };
	call_init(&c, &other, cookie, body);
	assert_false(ui_csrf_ok(&c));
	ui_out_free(&c.resp.body);
	struct ui_ops none = { .csrf_secret = NULL };
	call_init(&c, &none, cookie, body);
	assert_false(ui_csrf_ok(&c));
	assert_int_equal(ui_csrf_token(&c, tok2, sizeof(tok2)), -1);
	ui_out_free(&c.resp.body);
}

static void
ui_csrf_cookie_path_is_never_a_header_injection(void **state)
{
	(void)state;
	struct ui_ops ops = { .csrf_secret = SECRET };
	struct ui_call c;
	char tok[AUTH_CSRF_LEN + 1];
	call_init(&c, &ops, NULL, NULL);
	c.req.prefix = "/a;b\r\nX-Evil: 1/";
	assert_int_equal(ui_csrf_token(&c, tok, sizeof(tok)), 0);
	assert_non_null(strstr(c.resp.headers, "; Path=/; HttpOnly"));
	assert_null(strstr(c.resp.headers, "X-Evil"));
	/* a malformed cookie value is ignored: a new session is made */
	ui_out_free(&c.resp.body);
	call_init(&c, &ops, "gh_session=<script>", NULL);
	assert_int_equal(ui_csrf_token(&c, tok, sizeof(tok)), 0);
	assert_non_null(strstr(c.resp.headers, "Set-Cookie: gh_session="));
	assert_null(strstr(c.resp.headers, "<script>"));
	ui_out_free(&c.resp.body);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(htpasswd_accepts_bcrypt_and_sha_crypt_from_debian_htpasswd),
		cmocka_unit_test(htpasswd_refuses_wrong_passwords_and_unknown_users),
		cmocka_unit_test(htpasswd_accepts_hashes_made_by_crypt_gensalt),
		cmocka_unit_test(htpasswd_weak_hashes_are_errors_naming_file_line_and_fix),
		cmocka_unit_test(htpasswd_duplicate_users_are_an_error),
		cmocka_unit_test(htpasswd_bounds_and_missing_file),
		cmocka_unit_test(basic_decodes_and_refuses_malformed),
		cmocka_unit_test(limit_blocks_after_burst_and_recovers),
		cmocka_unit_test(limit_table_is_bounded_and_keeps_blocked_clients),
		cmocka_unit_test(vcache_remembers_results_without_the_password),
		cmocka_unit_test(session_and_cookie_parsing),
		cmocka_unit_test(csrf_token_roundtrip_and_rejections),
		cmocka_unit_test(ui_csrf_session_cookie_token_and_check),
		cmocka_unit_test(ui_csrf_cookie_path_is_never_a_header_injection),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
