/*
 * test_pauth.c - daemon/pauth.c: the group file parser, the 407 challenge text, pauth_identify
 * with the file provider (a bcrypt line made by Debian's htpasswd -B), the per-connection fast
 * path and the result cache (TTL, bounded, never the password), the failed-login limiter, and
 * the Auth* directives of cfg.c. pauth.c is included: the cache table is inspected directly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/pauth.c"
#include "daemon/cfg.h"

/* htpasswd -nbB -C 5 alice "open sesame" (apache2-utils 2.4, Debian 12) */
#define H_ALICE "alice:$2y$05$2RoqHU7dunI3bx9UK4yM3.hJuY1bR7NIv6WqxYG02t.Ke.fhQeybG\n"
#define P_ALICE "open sesame"

#include "tests/unit/tmpdir.h"

static int
setup(void **state)
{
	(void)state;
	return tmpdir_make("/tmp/gh-test-pauth-XXXXXX");
}

static int
teardown(void **state)
{
	(void)state;
	return tmpdir_remove();
}

/* "Basic " + base64(user:pass) */
static const char *
basic(const char *user, const char *pass)
{
	static char out[512];
	char plain[256];
	int n = snprintf(plain, sizeof(plain), "%s:%s", user, pass);
	strcpy(out, "Basic ");
	EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)plain, n);
	return out;
}

/* ---- the group file ---- */

static void
groups_file_parsed_merged_and_errors_name_the_line(void **state)
{
	(void)state;
	struct pauth_groups *g = NULL;
	char err[512];
	const char *out[8];

	const char *p = write_file("groups", "# staff\n\nhr: alice bob\r\nit:carol\n"
	                           "  hr : dave alice\nempty:\n");
	assert_int_equal(pauth_groups_load(p, &g, err, sizeof(err)), 0);
	assert_int_equal(pauth_groups_of(g, "alice", out, 8), 1);
	assert_string_equal(out[0], "hr");
	assert_int_equal(pauth_groups_of(g, "dave", out, 8), 1); /* hr listed twice merges */
	assert_int_equal(pauth_groups_of(g, "carol", out, 8), 1);
	assert_string_equal(out[0], "it");
	assert_int_equal(pauth_groups_of(g, "mallory", out, 8), 0);
	assert_int_equal(pauth_groups_of(g, "ali", out, 8), 0); /* whole names only */
	pauth_groups_free(&g);
	assert_null(g);

	p = write_file("groups2", "a: x y\nb: x\nc: y x\n");
	assert_int_equal(pauth_groups_load(p, &g, err, sizeof(err)), 0);
	assert_int_equal(pauth_groups_of(g, "x", out, 8), 3);
	assert_string_equal(out[0], "a"); /* file order */
	assert_string_equal(out[2], "c");
	assert_int_equal(pauth_groups_of(g, "x", out, 2), 2); /* cap respected */
	pauth_groups_free(&g);

	p = write_file("bad", "hr: alice\nno colon here\n");
	assert_int_equal(pauth_groups_load(p, &g, err, sizeof(err)), -1);
	assert_null(g);
	assert_non_null(strstr(err, "bad:2:"));
	p = write_file("bad2", ": alice\n");
	assert_int_equal(pauth_groups_load(p, &g, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "bad2:1: empty group name"));
	char missing[160];
	snprintf(missing, sizeof(missing), "%s/nope", tmpdir);
	assert_int_equal(pauth_groups_load(missing, &g, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "nope: cannot open"));
}

/* ---- the challenge ---- */

static void
challenge_names_the_realm_and_negotiate_first(void **state)
{
	(void)state;
	struct pauth_cfg cfg;
	struct pauth_conn pc;
	char out[256];

	memset(&cfg, 0, sizeof(cfg));
	pauth_conn_init(&pc);
	cfg.basic = 1;
	size_t n = pauth_challenge(&cfg, &pc, out, sizeof(out));
	assert_string_equal(out, "Proxy-Authenticate: Basic realm=\"Gatehouse proxy\", "
	                    "charset=\"UTF-8\"\r\n");
	assert_int_equal(n, strlen(out));
	cfg.realm = "Office proxy";
	cfg.negotiate = 1;
	pauth_challenge(&cfg, &pc, out, sizeof(out));
	assert_string_equal(out, "Proxy-Authenticate: Negotiate\r\nProxy-Authenticate: Basic "
	                    "realm=\"Office proxy\", charset=\"UTF-8\"\r\n");
	pc.neg_token = "YII=";
	cfg.basic = 0;
	pauth_challenge(&cfg, &pc, out, sizeof(out));
	assert_string_equal(out, "Proxy-Authenticate: Negotiate YII=\r\n");
	assert_int_equal(pauth_challenge(&cfg, &pc, out, 10), 0); /* too small: nothing */
	assert_string_equal(out, "");
}

/* ---- identify with the file provider ---- */

struct fx {
	struct pauth *pa;
	struct pauth_cfg cfg;
	struct sockaddr_in sin;
};

static void
fx_init(struct fx *f, unsigned burst, unsigned refill)
{
	char err[512];
	memset(f, 0, sizeof(*f));
	assert_int_equal(pauth_new(&f->pa, burst, refill), 0);
	f->cfg.basic = 1;
	f->cfg.provider = PAUTH_PROV_FILE;
	f->cfg.cache_ttl_s = 300;
	f->cfg.negative_ttl_s = 10;
	memset(f->cfg.id, 7, sizeof(f->cfg.id));
	assert_int_equal(auth_htpasswd_load(write_file("users", H_ALICE "# x\n"), &f->cfg.users, err,
	                                    sizeof(err)), 0);
	assert_int_equal(pauth_groups_load(write_file("grp", "hr: alice\nit: bob alice\n"),
	                                   &f->cfg.groups, err, sizeof(err)), 0);
	f->sin.sin_family = AF_INET;
	f->sin.sin_addr.s_addr = htonl(0x0a000005);
}

static void
fx_fini(struct fx *f)
{
	auth_htpasswd_free(&f->cfg.users);
	pauth_groups_free(&f->cfg.groups);
	pauth_free(&f->pa);
}

static enum pauth_res
ident(struct fx *f, struct pauth_conn *pc, const char *field, const char *addr, int64_t now,
      struct who *who, struct pauth_req *r)
{
	memset(r, 0, sizeof(*r));
	memset(who, 0, sizeof(*who));
	who->addr = (const struct sockaddr *)&f->sin;
	r->cfg = &f->cfg;
	r->field = field;
	r->field_len = field ? strlen(field) : 0;
	r->addr = (const struct sockaddr *)&f->sin;
	r->addr_text = addr;
	r->now_ms = now;
	return pauth_identify(f->pa, NULL, pc, r, who);
}

#define T0 1700000000000LL

static void
identify_file_provider_ok_wrong_and_groups(void **state)
{
	(void)state;
	struct fx f;
	struct pauth_conn pc;
	struct pauth_req r;
	struct who who;
	struct pauth_stats st;

	fx_init(&f, 10, 6);
	pauth_conn_init(&pc);
	/* no credentials: challenge, no failure counted */
	assert_int_equal(ident(&f, &pc, NULL, "10.0.0.5", T0, &who, &r), PAUTH_CHALLENGE);
	assert_string_equal(r.msg, "proxy authentication required");
	assert_null(who.user);
	/* another scheme: challenge */
	assert_int_equal(ident(&f, &pc, "Bearer abc", "10.0.0.5", T0, &who, &r), PAUTH_CHALLENGE);
	/* wrong password, unknown user: the same words (the page does not tell which) */
	assert_int_equal(ident(&f, &pc, basic("alice", "wrong"), "10.0.0.5", T0, &who, &r),
	                 PAUTH_CHALLENGE);
	assert_string_equal(r.msg, "wrong user name or password");
	assert_null(who.user);
	assert_int_equal(ident(&f, &pc, basic("nobody", P_ALICE), "10.0.0.5", T0, &who, &r),
	                 PAUTH_CHALLENGE);
	assert_string_equal(r.msg, "wrong user name or password");
	/* malformed base64 */
	assert_int_equal(ident(&f, &pc, "Basic !!!!", "10.0.0.5", T0, &who, &r), PAUTH_CHALLENGE);
	/* the right one */
	assert_int_equal(ident(&f, &pc, basic("alice", P_ALICE), "10.0.0.5", T0, &who, &r),
	                 PAUTH_OK);
	assert_string_equal(who.user, "alice");
	assert_int_equal(who.ngroups, 2);
	assert_string_equal(who.groups[0], "hr");
	assert_string_equal(who.groups[1], "it");
	pauth_get_stats(f.pa, &st);
	assert_int_equal(st.ok, 1);
	assert_int_equal(st.failed, 3);
	assert_int_equal(st.challenged, 5);
	assert_int_equal(st.verifications, 3);
	/* the same credential on the same connection: no hashing, no cache probe */
	assert_int_equal(ident(&f, &pc, basic("alice", P_ALICE), "10.0.0.5", T0 + 1000, &who, &r),
	                 PAUTH_OK);
	assert_string_equal(who.user, "alice");
	pauth_get_stats(f.pa, &st);
	assert_int_equal(st.conn_hits, 1);
	assert_int_equal(st.verifications, 3);
	/* another connection: the result cache answers, without hashing */
	struct pauth_conn pc2;
	pauth_conn_init(&pc2);
	assert_int_equal(ident(&f, &pc2, basic("alice", P_ALICE), "10.0.0.6", T0 + 2000, &who, &r),
	                 PAUTH_OK);
	assert_string_equal(who.user, "alice");
	assert_int_equal(who.ngroups, 2);
	pauth_get_stats(f.pa, &st);
	assert_int_equal(st.cache_hits, 1);
	assert_int_equal(st.verifications, 3);
	/* a wrong password on a connection that had proved alice: refused, not alice */
	assert_int_equal(ident(&f, &pc2, basic("alice", "nope"), "10.0.0.6", T0 + 3000, &who, &r),
	                 PAUTH_CHALLENGE);
	assert_null(who.user);
	pauth_conn_fini(&pc);
	pauth_conn_fini(&pc2);
	fx_fini(&f);
}

/* pauth_conn_repeat: the connection's accepted credential, repeated byte for byte, gives its
 * user before the decision; another value, an expired one, or settings a reload made at the
 * freed settings' address (same pointer, new id) do not. */
static void
repeat_is_the_same_value_under_the_same_settings(void **state)
{
	(void)state;
	struct fx f;
	struct pauth_conn pc;
	struct pauth_req r;
	struct who who;
	struct pauth_stats st;
	char good[256];

	fx_init(&f, 10, 6);
	pauth_conn_init(&pc);
	snprintf(good, sizeof(good), "%s", basic("alice", P_ALICE));
	memset(&who, 0, sizeof(who));
	assert_int_equal(pauth_conn_repeat(f.pa, &pc, good, strlen(good), T0, &who), 0);
	assert_int_equal(ident(&f, &pc, good, "10.0.0.5", T0, &who, &r), PAUTH_OK);
	assert_true(pauth_conn_under(&pc, &f.cfg));
	memset(&who, 0, sizeof(who));
	assert_int_equal(pauth_conn_repeat(f.pa, &pc, good, strlen(good), T0 + 1000, &who), 1);
	assert_string_equal(who.user, "alice");
	assert_int_equal(who.ngroups, 2);
	pauth_get_stats(f.pa, &st);
	assert_int_equal(st.ok, 2);         /* counted as an authenticated request */
	assert_int_equal(st.conn_hits, 1);
	/* one byte off, or a prefix: not the same credential */
	char other[256];
	snprintf(other, sizeof(other), "%s", good);
	other[strlen(other) - 2] ^= 1;
	memset(&who, 0, sizeof(who));
	assert_int_equal(pauth_conn_repeat(f.pa, &pc, other, strlen(other), T0 + 1000, &who), 0);
	assert_int_equal(pauth_conn_repeat(f.pa, &pc, good, strlen(good) - 1, T0 + 1000, &who), 0);
	assert_null(who.user);
	/* past AuthCacheTTL: asked again */
	assert_int_equal(pauth_conn_repeat(f.pa, &pc, good, strlen(good), T0 + 301000, &who), 0);
	/* a reload's new settings at the same address: not the settings alice proved under */
	f.cfg.id[0] ^= 0xff;
	assert_false(pauth_conn_under(&pc, &f.cfg));
	assert_int_equal(ident(&f, &pc, good, "10.0.0.5", T0 + 2000, &who, &r), PAUTH_OK);
	pauth_get_stats(f.pa, &st);
	assert_int_equal(st.conn_hits, 1);  /* not the connection's shortcut: the result cache's
	                                     * key has the new id too, so the password was checked */
	assert_int_equal(st.verifications, 2);
	assert_true(pauth_conn_under(&pc, &f.cfg));
	pauth_conn_fini(&pc);
	fx_fini(&f);
}

static int
mem_has(const void *hay, size_t n, const char *needle)
{
	return memmem(hay, n, needle, strlen(needle)) != NULL;
}

static void
cache_keeps_no_password_and_expires(void **state)
{
	(void)state;
	struct fx f;
	struct pauth_conn pc;
	struct pauth_req r;
	struct who who;
	struct pauth_stats st;
	char field[512];

	fx_init(&f, 10, 6);
	f.cfg.cache_ttl_s = 2;
	pauth_conn_init(&pc);
	snprintf(field, sizeof(field), "%s", basic("alice", P_ALICE));
	assert_int_equal(ident(&f, &pc, field, "10.0.0.5", T0, &who, &r), PAUTH_OK);
	assert_int_equal(ident(&f, &pc, basic("alice", "guess"), "10.0.0.5", T0, &who, &r),
	                 PAUTH_CHALLENGE);
	size_t tsize = PAUTH_CACHE_SLOTS * sizeof(struct pauth_cent);
	/* the user is there (it is the result), the secrets are not */
	assert_true(mem_has(f.pa->t, tsize, "alice"));
	assert_false(mem_has(f.pa->t, tsize, P_ALICE));
	assert_false(mem_has(f.pa->t, tsize, "guess"));
	assert_false(mem_has(f.pa->t, tsize, field + 6));
	assert_false(mem_has(&pc, sizeof(pc), field + 6));
	pauth_conn_fini(&pc);

	/* within the TTL: a cache hit on a new connection; after it: verified again */
	pauth_conn_init(&pc);
	assert_int_equal(ident(&f, &pc, field, "10.0.0.5", T0 + 1500, &who, &r), PAUTH_OK);
	pauth_get_stats(f.pa, &st);
	uint64_t v = st.verifications;
	assert_int_equal(st.cache_hits, 1);
	pauth_conn_fini(&pc);
	pauth_conn_init(&pc);
	assert_int_equal(ident(&f, &pc, field, "10.0.0.5", T0 + 2500, &who, &r), PAUTH_OK);
	pauth_get_stats(f.pa, &st);
	assert_int_equal(st.cache_hits, 1);
	assert_int_equal(st.verifications, v + 1);
	/* the connection's memory expires too */
	assert_int_equal(ident(&f, &pc, field, "10.0.0.5", T0 + 6000, &who, &r), PAUTH_OK);
	pauth_get_stats(f.pa, &st);
	assert_int_equal(st.verifications, v + 2);
	pauth_conn_fini(&pc);
	fx_fini(&f);
}

static void
cache_is_bounded(void **state)
{
	(void)state;
	struct fx f;
	struct pauth_cent e;
	uint8_t mac[32];
	unsigned found = 0;

	fx_init(&f, 10, 6);
	/* Three times the table's entries: the early ones are evicted, the table does not grow
	 * (a fixed array) and the newest is found. */
	for (unsigned i = 0; i < 3 * PAUTH_CACHE_SLOTS; i++) {
		char fld[32];
		snprintf(fld, sizeof(fld), "Basic %u", i);
		pauth_mac(f.pa, &f.cfg, fld, strlen(fld), mac);
		pauth_cache_store(f.pa, &f.cfg, mac, T0 + i, 1, "u", NULL, 0, NULL);
	}
	for (unsigned i = 0; i < 1000; i++) {
		char fld[32];
		snprintf(fld, sizeof(fld), "Basic %u", i);
		pauth_mac(f.pa, &f.cfg, fld, strlen(fld), mac);
		found += pauth_cache_get(f.pa, mac, T0 + 3 * PAUTH_CACHE_SLOTS, &e);
	}
	assert_true(found < 100);
	{
		char fld[32];
		snprintf(fld, sizeof(fld), "Basic %u", 3 * PAUTH_CACHE_SLOTS - 1);
		pauth_mac(f.pa, &f.cfg, fld, strlen(fld), mac);
		assert_int_equal(pauth_cache_get(f.pa, mac, T0 + 3 * PAUTH_CACHE_SLOTS, &e), 1);
		assert_string_equal(e.user, "u");
	}
	/* the MAC is HMAC-SHA256(key, id || field), as OpenSSL computes it */
	{
		unsigned char msg[16 + 7], ref[32];
		unsigned rlen = 32;
		memcpy(msg, f.cfg.id, 16);
		memcpy(msg + 16, "Basic y", 7);
		assert_non_null(HMAC(EVP_sha256(), f.pa->key, sizeof(f.pa->key), msg, sizeof(msg), ref,
		                     &rlen));
		pauth_mac(f.pa, &f.cfg, "Basic y", 7, mac);
		assert_memory_equal(mac, ref, 32);
	}
	/* another section's settings (another id) never share a result */
	struct pauth_cfg other = f.cfg;
	uint8_t mac2[32];
	memset(other.id, 9, sizeof(other.id));
	pauth_mac(f.pa, &f.cfg, "Basic x", 7, mac);
	pauth_mac(f.pa, &other, "Basic x", 7, mac2);
	assert_memory_not_equal(mac, mac2, 32);
	fx_fini(&f);
}

static void
limiter_blocks_guessing_without_hashing_but_not_known_users(void **state)
{
	(void)state;
	struct fx f;
	struct pauth_conn pc, good;
	struct pauth_req r;
	struct who who;
	struct pauth_stats st;

	fx_init(&f, 3, 60);
	pauth_conn_init(&pc);
	pauth_conn_init(&good);
	/* alice logs in first (her result is cached) */
	assert_int_equal(ident(&f, &good, basic("alice", P_ALICE), "10.0.0.9", T0, &who, &r),
	                 PAUTH_OK);
	assert_int_equal(ident(&f, &pc, basic("alice", "g1"), "10.0.0.9", T0, &who, &r),
	                 PAUTH_CHALLENGE);
	assert_int_equal(ident(&f, &pc, basic("alice", "g2"), "10.0.0.9", T0, &who, &r),
	                 PAUTH_CHALLENGE);
	/* the third failure reaches the burst */
	assert_int_equal(ident(&f, &pc, basic("alice", "g3"), "10.0.0.9", T0, &who, &r),
	                 PAUTH_LIMITED);
	assert_true(r.retry_s > 0);
	pauth_get_stats(f.pa, &st);
	uint64_t v = st.verifications;
	/* blocked: further guesses cost no hashing, whatever they are */
	for (int i = 0; i < 20; i++) {
		char pw[16];
		snprintf(pw, sizeof(pw), "g%d", 10 + i);
		assert_int_equal(ident(&f, &pc, basic("alice", pw), "10.0.0.9", T0 + 1000, &who, &r),
		                 PAUTH_LIMITED);
		assert_true(r.retry_s > 0 && r.retry_s <= 3 * 60);
		assert_non_null(strstr(r.msg, "too many failed logins"));
	}
	/* the right password, never verified before on a new connection: blocked too */
	struct pauth_conn pc3;
	pauth_conn_init(&pc3);
	f.cfg.id[0] ^= 1; /* as if another section: no cached result */
	assert_int_equal(ident(&f, &pc3, basic("alice", P_ALICE), "10.0.0.9", T0 + 1000, &who, &r),
	                 PAUTH_LIMITED);
	f.cfg.id[0] ^= 1;
	pauth_get_stats(f.pa, &st);
	assert_int_equal(st.verifications, v);
	assert_true(st.limited >= 21);
	/* a known credential still passes (it proves nothing new to a guesser) */
	assert_int_equal(ident(&f, &good, basic("alice", P_ALICE), "10.0.0.9", T0 + 1000, &who,
	                       &r), PAUTH_OK);
	/* another address is not blocked */
	assert_int_equal(ident(&f, &pc, basic("alice", "g99"), "10.0.1.9", T0 + 1000, &who, &r),
	                 PAUTH_CHALLENGE);
	/* time gives tries back */
	assert_int_equal(ident(&f, &pc, basic("alice", P_ALICE), "10.0.0.9", T0 + 400000, &who,
	                       &r), PAUTH_OK);
	pauth_conn_fini(&pc);
	pauth_conn_fini(&pc3);
	pauth_conn_fini(&good);
	fx_fini(&f);
}

/* ---- the verifier thread: bcrypt off the worker's loop ---- */

struct vt {
	struct ev_loop *loop;
	struct pauth_wk *wk;
	int woken;
	struct ev_timer guard;
};

static void
vt_async(struct ev_loop *loop, void *arg)
{
	(void)loop;
	struct vt *v = arg;
	pauth_wk_poll(v->wk);
}

static void
vt_wake(void *arg)
{
	struct vt *v = arg;
	v->woken++;
	ev_loop_break(v->loop);
}

static void
vt_guard(struct ev_timer *t)
{
	struct vt *v = t->arg;
	ev_loop_break(v->loop);
}

static void
verifier_thread_answers_through_the_loop_and_cancels(void **state)
{
	(void)state;
	struct fx f;
	struct vt v;
	struct pauth_conn pc;
	struct pauth_req r;
	struct who who;
	struct pauth_stats st;

	fx_init(&f, 10, 6);
	memset(&v, 0, sizeof(v));
	assert_int_equal(ev_loop_new(&v.loop), 0);
	assert_int_equal(pauth_wk_new(v.loop, 1, &v.wk), 0);
	assert_int_equal(ev_async_start(v.loop, vt_async, &v), 0);
	ev_timer_init(&v.guard, vt_guard, &v);
	assert_true(f.pa->verifier_up);

	pauth_conn_init(&pc);
	const char *field = basic("alice", P_ALICE);
	char fcopy[256];
	snprintf(fcopy, sizeof(fcopy), "%s", field);
	memset(&r, 0, sizeof(r));
	memset(&who, 0, sizeof(who));
	r.cfg = &f.cfg;
	r.field = fcopy;
	r.field_len = strlen(fcopy);
	r.addr_text = "10.0.0.5";
	r.now_ms = T0;
	r.wake = vt_wake;
	r.wake_arg = &v;
	/* the first call queues the check and returns at once */
	assert_int_equal(pauth_identify(f.pa, v.wk, &pc, &r, &who), PAUTH_WAIT);
	assert_null(who.user);
	/* asked again before the answer: still waiting, nothing queued twice */
	assert_int_equal(pauth_identify(f.pa, v.wk, &pc, &r, &who), PAUTH_WAIT);
	ev_timer_start(v.loop, &v.guard, 20000);
	ev_loop_run(v.loop);
	assert_int_equal(v.woken, 1);
	assert_int_equal(pauth_identify(f.pa, v.wk, &pc, &r, &who), PAUTH_OK);
	assert_string_equal(who.user, "alice");
	pauth_get_stats(f.pa, &st);
	assert_int_equal(st.verifications, 1);
	/* a wrong password: the answer comes the same way, a failure */
	snprintf(fcopy, sizeof(fcopy), "%s", basic("alice", "bad"));
	r.field_len = strlen(fcopy);
	assert_int_equal(pauth_identify(f.pa, v.wk, &pc, &r, &who), PAUTH_WAIT);
	ev_loop_run(v.loop);
	assert_int_equal(v.woken, 2);
	assert_int_equal(pauth_identify(f.pa, v.wk, &pc, &r, &who), PAUTH_CHALLENGE);
	assert_null(who.user);
	/* the connection closes while its check is queued or running: no wake afterwards */
	snprintf(fcopy, sizeof(fcopy), "%s", basic("alice", "bad2"));
	r.field_len = strlen(fcopy);
	assert_int_equal(pauth_identify(f.pa, v.wk, &pc, &r, &who), PAUTH_WAIT);
	pauth_conn_fini(&pc);
	ev_timer_stop(&v.guard);
	ev_timer_start(v.loop, &v.guard, 300);
	ev_loop_run(v.loop); /* only the guard ends it */
	assert_int_equal(v.woken, 2);
	ev_timer_stop(&v.guard);
	pauth_wk_free(&v.wk);
	ev_loop_free(&v.loop);
	fx_fini(&f);
}

/* ---- the Auth* directives ---- */

static int
load(const char *text, char *err, size_t errlen)
{
	struct cfg *c = NULL;
	int rc = cfg_load_string("t.conf", text, &c, err, errlen);
	if (rc == 0) {
		assert_true(c->nauths >= 1);
		cfg_unref(&c);
	}
	return rc;
}

static void
cfg_auth_directives_and_their_errors(void **state)
{
	(void)state;
	char text[2048], err[1024];
	char u[160], g[160];
	snprintf(u, sizeof(u), "%s", write_file("users", H_ALICE)); /* a static buffer: copied */
	snprintf(g, sizeof(g), "%s", write_file("grp", "hr: alice\n"));

	snprintf(text, sizeof(text), "Listen 127.0.0.1:3128\n<Proxy *>\n  AuthType Basic\n"
	         "  AuthName \"Office\"\n  AuthUserFile %s\n  AuthGroupFile %s\n  AuthCacheTTL 60\n"
	         "  Require all granted\n</Proxy>\nAuthFailureLimit 5 30\n", u, g);
	{
		struct cfg *c = NULL;
		if (cfg_load_string("t.conf", text, &c, err, sizeof(err)) != 0)
			fail_msg("%s", err);
		assert_int_equal(c->nauths, 1);
		assert_int_equal(c->auths[0]->basic, 1);
		assert_int_equal(c->auths[0]->provider, PAUTH_PROV_FILE);
		assert_string_equal(c->auths[0]->realm, "Office");
		assert_non_null(c->auths[0]->users);
		assert_non_null(c->auths[0]->groups);
		assert_int_equal(c->auths[0]->cache_ttl_s, 60);
		assert_int_equal(c->auth_fail_burst, 5);
		assert_int_equal(c->auth_fail_refill_s, 30);
		cfg_unref(&c);
	}
	/* external with children shared out among the workers */
	{
		struct cfg *c = NULL;
		assert_int_equal(cfg_load_string("t.conf", "Workers 2\n<Proxy *>\nAuthType Basic\n"
		                                 "AuthBasicProvider external\nAuthExternal \"/bin/cat -u\"\n"
		                                 "AuthExternalChildren 5 concurrency=3\n"
		                                 "AuthExternalTimeout 4\n</Proxy>\n", &c, err,
		                                 sizeof(err)), 0);
		assert_int_equal(c->auths[0]->provider, PAUTH_PROV_EXTERNAL);
		assert_int_equal(c->auths[0]->external.children, 3); /* ceil(5 / 2) */
		assert_int_equal(c->auths[0]->external.concurrency, 3);
		assert_int_equal(c->auths[0]->external.timeout_ms, 4000);
		assert_string_equal(c->auths[0]->external.cmd, "/bin/cat -u");
		cfg_unref(&c);
	}
	struct {
		const char *text, *want;
	} bad[] = {
		{ "<Proxy *>\nAuthType Basic\n</Proxy>\n", "t.conf:2: AuthType Basic needs a provider" },
		{ "<Proxy *>\nAuthType Digest\n</Proxy>\n", "t.conf:2: AuthType Digest: expected Basic" },
		{ "<Proxy *>\nAuthType Basic\nAuthBasicProvider ldap\n</Proxy>\n",
		  "t.conf:3: AuthBasicProvider ldap: unknown provider" },
		{ "<Proxy *>\nAuthType Basic\nAuthBasicProvider external\n</Proxy>\n",
		  "t.conf:3: AuthBasicProvider external needs AuthExternal" },
		{ "<Proxy *>\nAuthType Negotiate\n</Proxy>\n",
		  "t.conf:2: AuthType Negotiate needs AuthNegotiateExternal" },
		{ "<Proxy *>\nAuthType Basic\nAuthUserFile /nonexistent/users\n</Proxy>\n",
		  "t.conf:3: AuthUserFile: /nonexistent/users" },
		{ "<Proxy *>\nAuthType Basic\nAuthExternal /nonexistent/helper\n</Proxy>\n",
		  "t.conf:3: AuthExternal: /nonexistent/helper: no such file" },
		{ "<Proxy *>\nAuthType Basic\nAuthExternal \"/etc x\"\n</Proxy>\n",
		  "t.conf:3: AuthExternal: /etc: not an executable file" },
		{ "<Proxy *>\nAuthType Basic\nAuthExternal bin/helper\n</Proxy>\n",
		  "not an absolute path" },
		{ "<Proxy *>\nAuthType Basic\nAuthExternalChildren 0\n</Proxy>\n",
		  "t.conf:3: AuthExternalChildren: expected a number" },
		{ "<Proxy *>\nAuthType Basic\nAuthExternalChildren 2 foo=1\n</Proxy>\n",
		  "unknown option \"foo=1\"" },
		{ "AuthType Basic\n", "only allowed inside <Proxy>" },
		{ "<Proxy *>\nAuthFailureLimit 3 3\n</Proxy>\n", "AuthFailureLimit not allowed in <Proxy>" },
		{ "AuthFailureLimit 0 6\n", "t.conf:1: AuthFailureLimit: expected a number" },
		{ "<Proxy *>\nAuthName \"a\\\"b\"\nAuthType None\n</Proxy>\n", "t.conf:2: AuthName" },
		{ "<Proxy *>\nAuthCacheTTL 5\n</Proxy>\n", "t.conf:1: <Proxy>: Auth* directives without "
		  "AuthType" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (load(bad[i].text, err, sizeof(err)) != -1)
			fail_msg("case %zu: accepted", i);
		if (strstr(err, bad[i].want) == NULL)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, bad[i].want);
	}
	/* a file without execute permission */
	{
		char path[160];
		snprintf(path, sizeof(path), "%s", write_file("noexec", "#!/bin/sh\n"));
		chmod(path, 0644);
		snprintf(text, sizeof(text), "<Proxy *>\nAuthType Basic\nAuthExternal \"%s -x\"\n"
		         "</Proxy>\n", path);
		assert_int_equal(load(text, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "t.conf:3: AuthExternal: "));
		assert_non_null(strstr(err, "noexec: not an executable file"));
	}
	/* a user file with the external provider */
	snprintf(text, sizeof(text), "<Proxy *>\nAuthType Basic\nAuthBasicProvider external\n"
	         "AuthExternal /bin/cat\nAuthUserFile %s\n</Proxy>\n", u);
	assert_int_equal(load(text, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "t.conf:5: AuthUserFile is for AuthBasicProvider file"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(groups_file_parsed_merged_and_errors_name_the_line),
		cmocka_unit_test(challenge_names_the_realm_and_negotiate_first),
		cmocka_unit_test(identify_file_provider_ok_wrong_and_groups),
		cmocka_unit_test(repeat_is_the_same_value_under_the_same_settings),
		cmocka_unit_test(cache_keeps_no_password_and_expires),
		cmocka_unit_test(cache_is_bounded),
		cmocka_unit_test(limiter_blocks_guessing_without_hashing_but_not_known_users),
		cmocka_unit_test(verifier_thread_answers_through_the_loop_and_cancels),
		cmocka_unit_test(cfg_auth_directives_and_their_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
