/*
 * test_pauth_neg.c - daemon/pauth_neg.c without a helper process: token syntax, the helper's
 * name in messages, the mapping of Squid's Negotiate replies (TT, AF, OK with keys, NA, ERR,
 * BH, garbage, a dead or hung helper) to results, and the connection-oriented identity (kept
 * for requests without a token, dropped by a new token). The exchange with a real
 * negotiate_kerberos_auth and a KDC is tests/integration/test_auth_negotiate.py.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/pauth_neg.c"

static void
token_syntax(void **state)
{
	(void)state;
	assert_true(neg_token_valid("YIIB", 4));
	assert_true(neg_token_valid("YII=", 4));
	assert_true(neg_token_valid("YI==", 4));
	assert_true(neg_token_valid("oYG3MIG0+/==", 12));
	assert_false(neg_token_valid("", 0));
	assert_false(neg_token_valid("YII", 3));          /* not a multiple of 4 */
	assert_false(neg_token_valid("Y===", 4));         /* three pad characters */
	assert_false(neg_token_valid("YI=I", 4));         /* data after padding */
	assert_false(neg_token_valid("YI I", 4));         /* a blank would split the line */
	assert_false(neg_token_valid("YI\nI", 4));        /* a newline would end it */
	assert_false(neg_token_valid("YI-_", 4));         /* base64url is not what clients send */
	size_t big = NEG_TOKEN_MAX + 4;
	char *t = malloc(big);
	assert_non_null(t);
	memset(t, 'A', big);
	assert_false(neg_token_valid(t, big));
	assert_true(neg_token_valid(t, NEG_TOKEN_MAX));
	free(t);
}

static void
helper_name(void **state)
{
	(void)state;
	struct pauth_cfg cfg;
	char out[64];
	memset(&cfg, 0, sizeof cfg);
	cfg.negotiate_helper.cmd = "/usr/lib/squid/negotiate_kerberos_auth -s GSS_C_NO_NAME";
	neg_helper_name(&cfg, out, sizeof out);
	assert_string_equal(out, "negotiate_kerberos_auth");
	cfg.negotiate_helper.cmd = "\"/opt/my helper/neg\" -d";
	neg_helper_name(&cfg, out, sizeof out);
	assert_string_equal(out, "my");  /* quoted words: the name is only for messages */
	cfg.negotiate_helper.cmd = NULL;
	neg_helper_name(&cfg, out, sizeof out);
	assert_string_equal(out, "the Negotiate helper");
}

struct fixture {
	struct pauth *pa;
	struct pauth_cfg cfg;
	struct pauth_conn pc;
	struct pauth_req r;
	struct who who;
	struct sockaddr_in sin;
};

static int
fx_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	assert_int_equal(pauth_new(&f->pa, 3, 60), 0);
	f->cfg.negotiate = 1;
	f->cfg.negotiate_helper.cmd = "/usr/lib/squid/negotiate_kerberos_auth";
	pauth_conn_init(&f->pc);
	f->sin.sin_family = AF_INET;
	f->sin.sin_addr.s_addr = htonl(0x0a000005);
	f->r.cfg = &f->cfg;
	f->r.addr = (const struct sockaddr *)&f->sin;
	f->r.addr_text = "10.0.0.5";
	f->r.now_ms = 1000;
	f->who.addr = f->r.addr;
	*state = f;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fixture *f = *state;
	pauth_conn_fini(&f->pc);
	pauth_free(&f->pa);
	free(f);
	return 0;
}

/* Deliver a helper answer as the pool would, then let pauth_negotiate read it. */
static enum pauth_res
answer(struct fixture *f, enum hp_status st, const char *line, uint32_t child)
{
	struct hpool_reply rep = { .status = st, .line = line, .len = line ? strlen(line) : 0,
	                           .child = child };
	neg_reply_cb(&f->pc, &rep);
	assert_true(f->pc.pending_done);
	return pauth_negotiate(f->pa, NULL, &f->pc, &f->r, "YIIB", 4, &f->who);
}

static void
tt_continues_on_the_same_child(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(answer(f, HP_OK, "TT oYG3MIG0", 7), PAUTH_CHALLENGE);
	assert_string_equal(f->pc.neg_token, "oYG3MIG0");
	assert_int_equal(f->pc.neg_child, 7);
	assert_null(f->pc.user);
	assert_null(f->who.user);
	assert_false(f->pc.pending_done);
	/* The client gives up (no token on its next request): a plain challenge again. */
	assert_int_equal(pauth_negotiate(f->pa, NULL, &f->pc, &f->r, NULL, 0, &f->who),
	                 PAUTH_CHALLENGE);
	assert_null(f->pc.neg_token);
	assert_int_equal(f->pc.neg_child, HPOOL_ANY);
}

static void
af_and_ok_give_the_user_and_groups(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(answer(f, HP_OK, "AF oYG3MIG0 alice@GATEHOUSE.TEST", 3), PAUTH_OK);
	assert_string_equal(f->pc.user, "alice@GATEHOUSE.TEST");
	assert_string_equal(f->who.user, "alice@GATEHOUSE.TEST");
	assert_int_equal(f->who.ngroups, 0);
	assert_int_equal(f->pc.neg_child, HPOOL_ANY);
	assert_true(f->pc.neg_user_ok);

	/* The newer form; an empty group= (negotiate_kerberos_auth without a PAC) is no group,
	 * a repeated one counts once. */
	assert_int_equal(answer(f, HP_OK, "OK token=oYG3 user=bob@R group=staff group= "
	                        "group=staff group=hr", 1), PAUTH_OK);
	assert_string_equal(f->who.user, "bob@R");
	assert_int_equal(f->who.ngroups, 2);
	assert_string_equal(f->who.groups[0], "staff");
	assert_string_equal(f->who.groups[1], "hr");
}

static void
identity_kept_on_the_connection_new_token_drops_it(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(answer(f, HP_OK, "AF oYG3MIG0 alice@GATEHOUSE.TEST", 3), PAUTH_OK);

	/* The next request on the connection carries no Proxy-Authorization. */
	struct who w2 = { .addr = f->r.addr };
	assert_int_equal(pauth_negotiate(f->pa, NULL, &f->pc, &f->r, NULL, 0, &w2), PAUTH_OK);
	assert_string_equal(w2.user, "alice@GATEHOUSE.TEST");

	/* Under other settings (a reload, another section) the identity does not carry over. */
	struct pauth_cfg other = f->cfg;
	struct pauth_req r2 = f->r;
	r2.cfg = &other;
	struct who w3 = { .addr = f->r.addr };
	assert_int_equal(pauth_negotiate(f->pa, NULL, &f->pc, &r2, NULL, 0, &w3), PAUTH_CHALLENGE);
	assert_null(w3.user);

	/* A new token starts over: a bad one leaves nobody (no helper is asked for it). */
	struct who w4 = { .addr = f->r.addr };
	assert_int_equal(pauth_negotiate(f->pa, NULL, &f->pc, &f->r, "bad token", 9, &w4),
	                 PAUTH_CHALLENGE);
	assert_string_equal(f->r.msg, "malformed Negotiate token");
	assert_null(f->pc.user);
	assert_false(f->pc.neg_user_ok);
	assert_null(w4.user);
	struct who w5 = { .addr = f->r.addr };
	assert_int_equal(pauth_negotiate(f->pa, NULL, &f->pc, &f->r, NULL, 0, &w5),
	                 PAUTH_CHALLENGE);
}

static void
refusals_are_failures_for_the_limiter(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(answer(f, HP_OK, "NA oYG3 wrong ticket", 2), PAUTH_CHALLENGE);
	assert_non_null(strstr(f->r.msg, "Negotiate refused by negotiate_kerberos_auth"));
	assert_int_equal(f->pc.neg_child, HPOOL_ANY);
	assert_int_equal(answer(f, HP_OK, "BH gss_accept_sec_context() failed: Cannot decrypt", 2),
	                 PAUTH_CHALLENGE);
	assert_non_null(strstr(f->r.msg, "Cannot decrypt"));
	/* The third failure spends the burst of 3: blocked, and the next token is refused
	 * before any helper is asked. */
	assert_int_equal(answer(f, HP_OK, "ERR message=\"no\"", 2), PAUTH_LIMITED);
	enum pauth_res res = pauth_negotiate(f->pa, NULL, &f->pc, &f->r, "YIIB", 4, &f->who);
	assert_int_equal(res, PAUTH_LIMITED);
	assert_true(f->r.retry_s > 0);
	assert_null(f->pc.pending);
}

static void
dead_hung_or_garbled_helper_is_unavailable(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(answer(f, HP_TIMEOUT, NULL, 0), PAUTH_UNAVAILABLE);
	assert_non_null(strstr(f->r.msg, "negotiate_kerberos_auth timed out"));
	assert_int_equal(answer(f, HP_DIED, NULL, 0), PAUTH_UNAVAILABLE);
	assert_non_null(strstr(f->r.msg, "died"));
	assert_int_equal(answer(f, HP_OVERLOAD, NULL, 0), PAUTH_UNAVAILABLE);
	assert_int_equal(answer(f, HP_OK, "XX what", 0), PAUTH_UNAVAILABLE);
	assert_non_null(strstr(f->r.msg, "does not understand"));
	assert_int_equal(answer(f, HP_OK, "AF", 0), PAUTH_UNAVAILABLE);  /* no user */
	assert_int_equal(answer(f, HP_OK, "OK token=oYG3", 0), PAUTH_UNAVAILABLE);
	assert_int_equal(answer(f, HP_OK, "TT not base64!", 0), PAUTH_UNAVAILABLE);
	assert_int_equal(answer(f, HP_OK, "", 0), PAUTH_UNAVAILABLE);
	assert_null(f->pc.user);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(token_syntax),
		cmocka_unit_test(helper_name),
		cmocka_unit_test_setup_teardown(tt_continues_on_the_same_child, fx_setup,
		                                fx_teardown),
		cmocka_unit_test_setup_teardown(af_and_ok_give_the_user_and_groups, fx_setup,
		                                fx_teardown),
		cmocka_unit_test_setup_teardown(identity_kept_on_the_connection_new_token_drops_it,
		                                fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(refusals_are_failures_for_the_limiter, fx_setup,
		                                fx_teardown),
		cmocka_unit_test_setup_teardown(dead_hung_or_garbled_helper_is_unavailable,
		                                fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
