/*
 * test_res.c - the resolver against a real (fake) DNS server: a UDP socket on 127.0.0.1 on the
 * same ev loop, answering A/AAAA/PTR queries from a table, with NXDOMAIN, NODATA, SERVFAIL,
 * REFUSED and a name that never answers, and counting queries per name and type.
 *
 * Every loop run is bounded by a guard timer (5 s) that fails the test if it fires.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon/ev.h"
#include "resolver/res.h"

#define T_A    1
#define T_PTR  12
#define T_TXT  16
#define T_AAAA 28

#define PTR6_HOST "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"

/* ---- the fake DNS server ---- */

struct fk_rr {
	const char *name;
	int type;
	const char *data;
	unsigned ttl;
};

static const struct fk_rr fk_rrs[] = {
	{"both.example.test", T_A, "192.0.2.1", 300},
	{"both.example.test", T_AAAA, "2001:db8::1", 300},
	{"both.example.test", T_A, "192.0.2.2", 300},
	{"v4only.example.test", T_A, "192.0.2.3", 300},
	{"short.example.test", T_A, "192.0.2.4", 0},
	{"long.example.test", T_A, "192.0.2.5", 86400},
	{"mixed.example.test", T_AAAA, "2001:db8::7", 120},
	{"mixed.example.test", T_A, "192.0.2.7", 30},
	{"nodata.example.test", T_TXT, "", 300},
	{"co.example.test", T_A, "192.0.2.20", 300},
	{"co.example.test", T_AAAA, "2001:db8::20", 300},
	{"a.example.test", T_A, "192.0.2.31", 300},
	{"b.example.test", T_A, "192.0.2.32", 300},
	{"c.example.test", T_A, "192.0.2.33", 300},
	{"host.example.test", T_A, "192.0.2.10", 300},
	{"10.2.0.192.in-addr.arpa", T_PTR, "Host.Example.Test", 300},
	{"liar.example.test", T_A, "192.0.2.99", 300},
	{"11.2.0.192.in-addr.arpa", T_PTR, "liar.example.test", 300},
	{"13.2.0.192.in-addr.arpa", T_PTR, "never.example.test", 300},
	{"14.2.0.192.in-addr.arpa", T_PTR, "1.2.3.4", 300},
	{"host6.example.test", T_AAAA, "2001:db8::10", 300},
	{PTR6_HOST, T_PTR, "host6.example.test", 300},
};

struct fk_special {
	const char *name;
	int rcode; /* -1: never answer */
};

static const struct fk_special fk_specials[] = {
	{"fail.example.test", 2},
	{"refused.example.test", 5},
	{"never.example.test", -1},
};

struct fk_seen {
	char name[256];
	int type;
	unsigned n;
};

struct fk {
	int fd;
	uint16_t port;
	struct ev_io io;
	struct fk_seen seen[128];
	unsigned nseen;
	unsigned total;
	int rcode_all; /* answer everything with this rcode (a broken server) */
};

static void
fk_note(struct fk *f, const char *name, int type)
{
	f->total++;
	for (unsigned i = 0; i < f->nseen; i++) {
		if (f->seen[i].type == type && strcmp(f->seen[i].name, name) == 0) {
			f->seen[i].n++;
			return;
		}
	}
	if (f->nseen < sizeof(f->seen) / sizeof(f->seen[0])) {
		snprintf(f->seen[f->nseen].name, sizeof(f->seen[0].name), "%s", name);
		f->seen[f->nseen].type = type;
		f->seen[f->nseen].n = 1;
		f->nseen++;
	}
}

static unsigned
fk_count(const struct fk *f, const char *name, int type)
{
	for (unsigned i = 0; i < f->nseen; i++)
		if (f->seen[i].type == type && strcmp(f->seen[i].name, name) == 0)
			return f->seen[i].n;
	return 0;
}

/* Encode a dotted name as DNS labels; returns bytes written or 0. */
static size_t
fk_put_name(unsigned char *out, size_t cap, const char *name)
{
	size_t o = 0;
	const char *p = name;
	while (*p != '\0') {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		if (l == 0 || l > 63 || o + l + 2 > cap)
			return 0;
		out[o++] = (unsigned char)l;
		memcpy(out + o, p, l);
		o += l;
		p += l;
		if (*p == '.')
			p++;
	}
	if (o + 1 > cap)
		return 0;
	out[o++] = 0;
	return o;
}

static size_t
fk_put_rr(unsigned char *out, size_t cap, int type, unsigned ttl, const char *data)
{
	unsigned char rdata[300];
	size_t rdlen;
	if (type == T_A) {
		if (inet_pton(AF_INET, data, rdata) != 1)
			return 0;
		rdlen = 4;
	} else if (type == T_AAAA) {
		if (inet_pton(AF_INET6, data, rdata) != 1)
			return 0;
		rdlen = 16;
	} else if (type == T_PTR) {
		rdlen = fk_put_name(rdata, sizeof(rdata), data);
		if (rdlen == 0)
			return 0;
	} else {
		rdata[0] = 0;
		rdlen = 1;
	}
	if (12 + rdlen > cap)
		return 0;
	out[0] = 0xc0; /* pointer to the question name */
	out[1] = 12;
	out[2] = (unsigned char)(type >> 8);
	out[3] = (unsigned char)type;
	out[4] = 0;
	out[5] = 1;
	out[6] = (unsigned char)(ttl >> 24);
	out[7] = (unsigned char)(ttl >> 16);
	out[8] = (unsigned char)(ttl >> 8);
	out[9] = (unsigned char)ttl;
	out[10] = (unsigned char)(rdlen >> 8);
	out[11] = (unsigned char)rdlen;
	memcpy(out + 12, rdata, rdlen);
	return 12 + rdlen;
}

static void
fk_handle(struct fk *f, const unsigned char *q, size_t n, const struct sockaddr *from,
	  socklen_t fromlen)
{
	unsigned char resp[1500];
	char name[256];
	size_t pos = 12, nl = 0;

	if (n < 12 || q[4] != 0 || q[5] != 1)
		return;
	for (int guard = 0; guard < 128; guard++) {
		if (pos >= n)
			return;
		unsigned l = q[pos++];
		if (l == 0)
			break;
		if (l > 63 || pos + l > n || nl + l + 2 > sizeof(name))
			return;
		if (nl > 0)
			name[nl++] = '.';
		for (unsigned i = 0; i < l; i++) {
			char c = (char)q[pos + i];
			name[nl++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
		}
		pos += l;
	}
	name[nl] = '\0';
	if (pos + 4 > n)
		return;
	int type = q[pos] << 8 | q[pos + 1];
	size_t qend = pos + 4;
	fk_note(f, name, type);

	int rcode = 0, known = 0;
	unsigned nans = 0;
	size_t o = qend;
	memcpy(resp, q, qend);
	if (f->rcode_all) {
		rcode = f->rcode_all;
		known = 1;
	}
	for (size_t i = 0; i < sizeof(fk_specials) / sizeof(fk_specials[0]); i++) {
		if (strcmp(fk_specials[i].name, name) == 0) {
			if (fk_specials[i].rcode < 0)
				return;
			rcode = fk_specials[i].rcode;
			known = 1;
		}
	}
	if (!known && rcode == 0 && strcmp(name, "many.example.test") == 0) {
		known = 1;
		for (int i = 1; i <= 20 && type == T_A; i++) {
			char a[32];
			snprintf(a, sizeof(a), "198.51.100.%d", i);
			o += fk_put_rr(resp + o, sizeof(resp) - o, T_A, 60, a);
			nans++;
		}
		if (type == T_AAAA) {
			o += fk_put_rr(resp + o, sizeof(resp) - o, T_AAAA, 60, "2001:db8:1::1");
			nans++;
		}
	}
	for (size_t i = 0; rcode == 0 && i < sizeof(fk_rrs) / sizeof(fk_rrs[0]); i++) {
		if (strcmp(fk_rrs[i].name, name) != 0)
			continue;
		known = 1;
		if (fk_rrs[i].type != type)
			continue;
		const struct fk_rr *rr = &fk_rrs[i];
		size_t w = fk_put_rr(resp + o, sizeof(resp) - o, type, rr->ttl, rr->data);
		if (w > 0) {
			o += w;
			nans++;
		}
	}
	if (!known)
		rcode = 3; /* NXDOMAIN */
	resp[2] = (unsigned char)(0x80 | (q[2] & 0x79) | 0x04); /* QR, opcode, AA, RD */
	resp[3] = (unsigned char)(0x80 | rcode);                 /* RA, rcode */
	resp[6] = (unsigned char)(nans >> 8);
	resp[7] = (unsigned char)nans;
	resp[8] = resp[9] = resp[10] = resp[11] = 0;
	(void)sendto(f->fd, resp, o, 0, from, fromlen);
}

static void
fk_ready(struct ev_io *io, unsigned revents)
{
	struct fk *f = io->arg;
	(void)revents;
	for (int i = 0; i < 64; i++) {
		unsigned char q[1500];
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(f->fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
		if (n < 0)
			break;
		fk_handle(f, q, (size_t)n, (struct sockaddr *)&from, fl);
	}
}

static void
fk_start(struct fk *f, struct ev_loop *loop)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);

	memset(f, 0, sizeof(*f));
	f->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(f->fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(f->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(f->fd, (struct sockaddr *)&sin, &sl), 0);
	f->port = ntohs(sin.sin_port);
	ev_io_init(&f->io, f->fd, fk_ready, f);
	assert_int_equal(ev_io_set(loop, &f->io, EV_READ), 0);
}

static void
fk_stop(struct fk *f)
{
	ev_io_stop(&f->io);
	close(f->fd);
}

/* ---- test harness ---- */

struct t {
	struct ev_loop *loop;
	struct fk fk;
	struct res *r;
	struct res_conf conf;
	struct ev_timer guard, nap, poll;
	int guard_fired;
	int done, want;
	int (*cond)(struct t *);
};

struct rec {
	struct t *t;
	int calls;
	int status;
	struct res_addrs a;
	int named;          /* reverse: name given */
	char name[256];
	/* optional actions from inside the callback */
	struct res **free_me;
	struct res_query **cancel_me;
	const char *relookup;
	struct rec *relookup_rec;
	struct res_query *relookup_q;
};

static void
t_guard_cb(struct ev_timer *tm)
{
	struct t *t = tm->arg;
	t->guard_fired = 1;
	ev_loop_break(t->loop);
}

static void
t_nap_cb(struct ev_timer *tm)
{
	struct t *t = tm->arg;
	ev_loop_break(t->loop);
}

static void
t_poll_cb(struct ev_timer *tm)
{
	struct t *t = tm->arg;
	if (t->cond != NULL && t->cond(t))
		ev_loop_break(t->loop);
	else
		ev_timer_start(t->loop, tm, 2);
}

static void
t_done(struct t *t)
{
	t->done++;
	if (t->want > 0 && t->done >= t->want)
		ev_loop_break(t->loop);
}

/* Run the loop until `total` callbacks have run in this test; fail if the guard fires. */
static void
t_run(struct t *t, int total)
{
	if (t->done >= total)
		return;
	t->want = total;
	t->guard_fired = 0;
	ev_timer_start(t->loop, &t->guard, 5000);
	assert_int_equal(ev_loop_run(t->loop), 0);
	ev_timer_stop(&t->guard);
	t->want = 0;
	assert_false(t->guard_fired);
	assert_int_equal(t->done, total);
}

/* Run the loop until cond(t) holds (polled every 2 ms); fail if the guard fires. */
static void
t_until(struct t *t, int (*cond)(struct t *))
{
	if (cond(t))
		return;
	t->cond = cond;
	t->guard_fired = 0;
	ev_timer_start(t->loop, &t->guard, 5000);
	ev_timer_start(t->loop, &t->poll, 2);
	assert_int_equal(ev_loop_run(t->loop), 0);
	ev_timer_stop(&t->guard);
	ev_timer_stop(&t->poll);
	t->cond = NULL;
	assert_false(t->guard_fired);
}

/* Run the loop for ms milliseconds. */
static void
t_sleep(struct t *t, unsigned ms)
{
	ev_timer_start(t->loop, &t->nap, ms);
	assert_int_equal(ev_loop_run(t->loop), 0);
}

static void
rec_cb(void *arg, int status, const struct res_addrs *a)
{
	struct rec *rc = arg;
	rc->calls++;
	rc->status = status;
	assert_non_null(a);
	rc->a = *a;
	if (rc->cancel_me != NULL)
		res_cancel(rc->cancel_me);
	if (rc->relookup != NULL)
		rc->relookup_q = res_lookup(rc->t->r, rc->relookup, rec_cb, rc->relookup_rec);
	if (rc->free_me != NULL)
		res_free(rc->free_me);
	t_done(rc->t);
}

static void
rec_name_cb(void *arg, const char *name)
{
	struct rec *rc = arg;
	rc->calls++;
	rc->named = name != NULL;
	snprintf(rc->name, sizeof(rc->name), "%s", name ? name : "");
	t_done(rc->t);
}

static void
t_break_hook(struct ev_loop *loop, void *arg)
{
	(void)arg;
	ev_loop_break(loop);
}

static int
t_setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	assert_int_equal(ev_loop_new(&t->loop), 0);
	fk_start(&t->fk, t->loop);
	ev_timer_init(&t->guard, t_guard_cb, t);
	ev_timer_init(&t->nap, t_nap_cb, t);
	ev_timer_init(&t->poll, t_poll_cb, t);
	res_conf_default(&t->conf);
	struct sockaddr_in *sin = (struct sockaddr_in *)&t->conf.servers[0];
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin->sin_port = htons(t->fk.port);
	t->conf.nservers = 1;
	*state = t;
	return 0;
}

static int
t_teardown(void **state)
{
	struct t *t = *state;
	res_free(&t->r);
	/* Run one turn so the resolver's deferred frees happen before the loop goes. */
	assert_int_equal(ev_defer(t->loop, t_break_hook, NULL), 0);
	assert_int_equal(ev_loop_run(t->loop), 0);
	fk_stop(&t->fk);
	ev_loop_free(&t->loop);
	free(t);
	return 0;
}

static void
t_open(struct t *t)
{
	const char *err = NULL;
	int rc = res_new(&t->r, t->loop, &t->conf, &err);
	if (rc != 0)
		fail_msg("res_new: %s", err ? err : "?");
	assert_non_null(t->r);
}

static struct rec *
t_rec(struct t *t, struct rec *rc)
{
	memset(rc, 0, sizeof(*rc));
	rc->t = t;
	return rc;
}

static int
has_addr(const struct res_addrs *a, const char *text)
{
	unsigned char b[16];
	int fam = strchr(text, ':') ? AF_INET6 : AF_INET;
	assert_int_equal(inet_pton(fam, text, b), 1);
	for (unsigned i = 0; i < a->n; i++) {
		const struct sockaddr_storage *ss = &a->a[i];
		if (ss->ss_family != fam)
			continue;
		if (fam == AF_INET) {
			const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
			if (memcmp(&s4->sin_addr, b, 4) == 0 && s4->sin_port == 0)
				return 1;
		} else {
			const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
			if (memcmp(&s6->sin6_addr, b, 16) == 0 && s6->sin6_port == 0)
				return 1;
		}
	}
	return 0;
}

static unsigned
count_family(const struct res_addrs *a, int fam)
{
	unsigned n = 0;
	for (unsigned i = 0; i < a->n; i++)
		n += a->a[i].ss_family == fam;
	return n;
}

static struct res_stats
t_stats(const struct t *t)
{
	struct res_stats st;
	res_stats_get(t->r, &st);
	return st;
}

/* ---- tests ---- */

static void
test_lookup_returns_both_families(void **state)
{
	struct t *t = *state;
	struct rec rc;
	t_open(t);
	struct res_query *q = res_lookup(t->r, "both.example.test", rec_cb, t_rec(t, &rc));
	assert_non_null(q);
	assert_int_equal(rc.calls, 0); /* not answered inside res_lookup */
	t_run(t, 1);
	assert_int_equal(rc.calls, 1);
	assert_int_equal(rc.status, RES_OK);
	assert_int_equal(rc.a.n, 3);
	assert_true(has_addr(&rc.a, "192.0.2.1"));
	assert_true(has_addr(&rc.a, "192.0.2.2"));
	assert_true(has_addr(&rc.a, "2001:db8::1"));
	assert_int_equal(rc.a.ttl, 300);
	assert_int_equal(fk_count(&t->fk, "both.example.test", T_A), 1);
	assert_int_equal(fk_count(&t->fk, "both.example.test", T_AAAA), 1);
	struct res_stats st = t_stats(t);
	assert_int_equal(st.lookups, 1);
	assert_int_equal(st.queries, 1);
	assert_int_equal(st.cache_entries, 1);
}

static void
test_ttl_is_minimum_over_records(void **state)
{
	struct t *t = *state;
	struct rec rc;
	t_open(t);
	assert_non_null(res_lookup(t->r, "mixed.example.test", rec_cb, t_rec(t, &rc)));
	t_run(t, 1);
	assert_int_equal(rc.status, RES_OK);
	assert_int_equal(rc.a.n, 2);
	assert_int_equal(rc.a.ttl, 30);
}

static void
test_ttl_floor_and_ceiling(void **state)
{
	struct t *t = *state;
	struct rec r1, r2;
	t->conf.ttl_min = 1;
	t->conf.ttl_max = 60;
	t_open(t);
	assert_non_null(res_lookup(t->r, "short.example.test", rec_cb, t_rec(t, &r1)));
	assert_non_null(res_lookup(t->r, "long.example.test", rec_cb, t_rec(t, &r2)));
	t_run(t, 2);
	assert_int_equal(r1.status, RES_OK);
	assert_int_equal(r1.a.ttl, 1);  /* 0 raised to the floor */
	assert_int_equal(r2.status, RES_OK);
	assert_int_equal(r2.a.ttl, 60); /* 86400 lowered to the ceiling */
}

static void
test_answer_is_cached_until_ttl_expires(void **state)
{
	struct t *t = *state;
	struct rec rc;
	t->conf.ttl_min = 1;
	t_open(t);
	assert_non_null(res_lookup(t->r, "short.example.test", rec_cb, t_rec(t, &rc)));
	t_run(t, 1);
	assert_int_equal(fk_count(&t->fk, "short.example.test", T_A), 1);

	/* Fresh: answered synchronously from the cache. */
	assert_null(res_lookup(t->r, "short.example.test", rec_cb, &rc));
	assert_int_equal(rc.calls, 2);
	assert_int_equal(rc.status, RES_OK);
	assert_true(has_addr(&rc.a, "192.0.2.4"));
	assert_int_equal(fk_count(&t->fk, "short.example.test", T_A), 1);
	assert_int_equal(t_stats(t).cache_hits, 1);

	/* Expired after the 1 s floor: asked again. */
	t_sleep(t, 1200);
	assert_non_null(res_lookup(t->r, "short.example.test", rec_cb, &rc));
	t_run(t, 3);
	assert_int_equal(rc.status, RES_OK);
	assert_int_equal(fk_count(&t->fk, "short.example.test", T_A), 2);
	assert_int_equal(t_stats(t).cache_entries, 1);
}

static void
test_name_key_ignores_case_and_trailing_dot(void **state)
{
	struct t *t = *state;
	struct rec rc;
	t_open(t);
	assert_non_null(res_lookup(t->r, "Both.EXAMPLE.test.", rec_cb, t_rec(t, &rc)));
	t_run(t, 1);
	assert_int_equal(rc.status, RES_OK);
	assert_null(res_lookup(t->r, "both.example.test", rec_cb, &rc));
	assert_int_equal(rc.calls, 2);
	assert_int_equal(rc.a.n, 3);
	assert_int_equal(fk_count(&t->fk, "both.example.test", T_A), 1);
}

static void
test_nxdomain_is_cached_negatively(void **state)
{
	struct t *t = *state;
	struct rec rc;
	t_open(t);
	assert_non_null(res_lookup(t->r, "nx.example.test", rec_cb, t_rec(t, &rc)));
	t_run(t, 1);
	assert_int_equal(rc.status, RES_NXDOMAIN);
	assert_int_equal(rc.a.n, 0);
	assert_string_equal(res_strerror(rc.status), "NXDOMAIN");
	unsigned before = t->fk.total;

	assert_null(res_lookup(t->r, "nx.example.test", rec_cb, &rc));
	assert_int_equal(rc.calls, 2);
	assert_int_equal(rc.status, RES_NXDOMAIN);
	assert_int_equal(t->fk.total, before);
	struct res_stats st = t_stats(t);
	assert_int_equal(st.cache_neg_hits, 1);
	assert_int_equal(st.cache_hits, 0);
	assert_int_equal(st.failures, 0);
}

static void
test_nodata_is_distinct_and_cached(void **state)
{
	struct t *t = *state;
	struct rec rc;
	t_open(t);
	assert_non_null(res_lookup(t->r, "nodata.example.test", rec_cb, t_rec(t, &rc)));
	t_run(t, 1);
	assert_int_equal(rc.status, RES_NODATA);
	assert_string_equal(res_strerror(rc.status), "no address records");
	unsigned before = t->fk.total;
	assert_null(res_lookup(t->r, "nodata.example.test", rec_cb, &rc));
	assert_int_equal(rc.calls, 2);
	assert_int_equal(rc.status, RES_NODATA);
	assert_int_equal(t->fk.total, before);
}

static void
test_negative_entry_expires_after_neg_ttl(void **state)
{
	struct t *t = *state;
	struct rec rc;
	t->conf.neg_ttl = 1;
	t_open(t);
	assert_non_null(res_lookup(t->r, "nx.example.test", rec_cb, t_rec(t, &rc)));
	t_run(t, 1);
	assert_int_equal(fk_count(&t->fk, "nx.example.test", T_A), 1);
	t_sleep(t, 1100);
	assert_non_null(res_lookup(t->r, "nx.example.test", rec_cb, &rc));
	t_run(t, 2);
	assert_int_equal(rc.status, RES_NXDOMAIN);
	assert_int_equal(fk_count(&t->fk, "nx.example.test", T_A), 2);
}

static void
test_servfail_is_not_cached(void **state)
{
	struct t *t = *state;
	struct rec rc;
	t_open(t);
	assert_non_null(res_lookup(t->r, "fail.example.test", rec_cb, t_rec(t, &rc)));
	t_run(t, 1);
	assert_int_equal(rc.status, RES_SERVFAIL);
	assert_string_equal(res_strerror(rc.status), "SERVFAIL");
	unsigned first = fk_count(&t->fk, "fail.example.test", T_A);
	assert_true(first >= 1);
	assert_int_equal(t_stats(t).cache_entries, 0);

	assert_non_null(res_lookup(t->r, "fail.example.test", rec_cb, &rc));
	t_run(t, 2);
	assert_int_equal(rc.status, RES_SERVFAIL);
	assert_true(fk_count(&t->fk, "fail.example.test", T_A) > first);
	assert_int_equal(t_stats(t).failures, 2);
}

static void
test_refused_status(void **state)
{
	struct t *t = *state;
	struct rec rc;
	t_open(t);
	assert_non_null(res_lookup(t->r, "refused.example.test", rec_cb, t_rec(t, &rc)));
	t_run(t, 1);
	assert_int_equal(rc.status, RES_REFUSED);
	assert_string_equal(res_strerror(rc.status), "REFUSED");
	assert_int_equal(t_stats(t).cache_entries, 0);
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
test_silent_server_times_out(void **state)
{
	struct t *t = *state;
	struct rec rc;
	t->conf.timeout_ms = 150;
	t->conf.tries = 1;
	t_open(t);
	uint64_t t0 = mono_ms();
	assert_non_null(res_lookup(t->r, "never.example.test", rec_cb, t_rec(t, &rc)));
	t_run(t, 1);
	uint64_t el = mono_ms() - t0;
	assert_int_equal(rc.status, RES_TIMEOUT);
	assert_string_equal(res_strerror(rc.status), "timed out");
	assert_true(el >= 100 && el < 2000);
	assert_int_equal(fk_count(&t->fk, "never.example.test", T_A), 1);
	assert_int_equal(t_stats(t).cache_entries, 0);
}

static void
test_unreachable_server_is_reported(void **state)
{
	struct t *t = *state;
	struct rec rc;
	/* A port with nothing bound: the kernel answers ICMP port unreachable. */
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sin, &sl), 0);
	close(s);
	memcpy(&t->conf.servers[0], &sin, sizeof(sin));
	t_open(t);
	assert_non_null(res_lookup(t->r, "both.example.test", rec_cb, t_rec(t, &rc)));
	t_run(t, 1);
	assert_int_equal(rc.status, RES_UNREACHABLE);
	assert_string_equal(res_strerror(rc.status), "DNS server unreachable");
	assert_int_equal(t_stats(t).cache_entries, 0);
}

static void
test_concurrent_lookups_share_one_query(void **state)
{
	struct t *t = *state;
	struct rec rc[5];
	struct res_query *q[5];
	t_open(t);
	for (int i = 0; i < 5; i++) {
		q[i] = res_lookup(t->r, "co.example.test", rec_cb, t_rec(t, &rc[i]));
		assert_non_null(q[i]);
	}
	t_run(t, 5);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(rc[i].calls, 1);
		assert_int_equal(rc[i].status, RES_OK);
		assert_true(has_addr(&rc[i].a, "192.0.2.20"));
		assert_true(has_addr(&rc[i].a, "2001:db8::20"));
	}
	assert_int_equal(fk_count(&t->fk, "co.example.test", T_A), 1);
	assert_int_equal(fk_count(&t->fk, "co.example.test", T_AAAA), 1);
	struct res_stats st = t_stats(t);
	assert_int_equal(st.lookups, 5);
	assert_int_equal(st.queries, 1);
	assert_int_equal(st.coalesced, 4);
}

static void
test_cancel_detaches_one_waiter(void **state)
{
	struct t *t = *state;
	struct rec rc[3];
	struct res_query *q[3];
	t_open(t);
	for (int i = 0; i < 3; i++) {
		q[i] = res_lookup(t->r, "co.example.test", rec_cb, t_rec(t, &rc[i]));
		assert_non_null(q[i]);
	}
	res_cancel(&q[1]);
	assert_null(q[1]);
	res_cancel(&q[1]); /* NULL handle: no-op */
	t_run(t, 2);
	t_sleep(t, 20);
	assert_int_equal(rc[0].calls, 1);
	assert_int_equal(rc[1].calls, 0);
	assert_int_equal(rc[2].calls, 1);
	assert_int_equal(rc[2].status, RES_OK);
	assert_int_equal(fk_count(&t->fk, "co.example.test", T_A), 1);
}

static int
cond_one_cached(struct t *t)
{
	return t_stats(t).cache_entries >= 1;
}

static void
test_cancelled_query_still_fills_cache(void **state)
{
	struct t *t = *state;
	struct rec rc[2];
	t_open(t);
	struct res_query *q0 = res_lookup(t->r, "v4only.example.test", rec_cb, t_rec(t, &rc[0]));
	struct res_query *q1 = res_lookup(t->r, "v4only.example.test", rec_cb, t_rec(t, &rc[1]));
	assert_non_null(q0);
	assert_non_null(q1);
	res_cancel(&q0);
	res_cancel(&q1);
	t_until(t, cond_one_cached);
	assert_int_equal(rc[0].calls, 0);
	assert_int_equal(rc[1].calls, 0);
	assert_int_equal(fk_count(&t->fk, "v4only.example.test", T_A), 1);

	struct rec r3;
	assert_null(res_lookup(t->r, "v4only.example.test", rec_cb, t_rec(t, &r3)));
	assert_int_equal(r3.calls, 1);
	assert_int_equal(r3.status, RES_OK);
	assert_true(has_addr(&r3.a, "192.0.2.3"));
	assert_int_equal(fk_count(&t->fk, "v4only.example.test", T_A), 1);
}

static void
test_callback_may_cancel_another_waiter(void **state)
{
	struct t *t = *state;
	struct rec rc[3];
	struct res_query *q[3];
	t_open(t);
	for (int i = 0; i < 3; i++)
		q[i] = res_lookup(t->r, "co.example.test", rec_cb, t_rec(t, &rc[i]));
	/* Whichever of 0 and 2 is answered first cancels the other; 1 is always answered. */
	rc[0].cancel_me = &q[2];
	rc[2].cancel_me = &q[0];
	t_run(t, 2);
	t_sleep(t, 20);
	assert_int_equal(rc[0].calls + rc[2].calls, 1);
	assert_int_equal(rc[1].calls, 1);
}

static void
test_callback_may_look_up_again(void **state)
{
	struct t *t = *state;
	struct rec rc, inner;
	t_open(t);
	t_rec(t, &rc);
	rc.relookup = "co.example.test";
	rc.relookup_rec = t_rec(t, &inner);
	assert_non_null(res_lookup(t->r, "co.example.test", rec_cb, &rc));
	t_run(t, 2);
	/* The inner lookup is a cache hit inside the callback. */
	assert_null(rc.relookup_q);
	assert_int_equal(inner.calls, 1);
	assert_int_equal(inner.status, RES_OK);
	assert_int_equal(fk_count(&t->fk, "co.example.test", T_A), 1);
}

static void
test_free_inside_callback_drops_other_waiters(void **state)
{
	struct t *t = *state;
	struct rec rc[3];
	t_open(t);
	for (int i = 0; i < 3; i++) {
		assert_non_null(res_lookup(t->r, "co.example.test", rec_cb, t_rec(t, &rc[i])));
		rc[i].free_me = &t->r;
	}
	struct rec rv;
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.10", &sin.sin_addr);
	assert_non_null(res_reverse(t->r, (struct sockaddr *)&sin, rec_name_cb, t_rec(t, &rv)));
	t_run(t, 1);
	t_sleep(t, 50);
	assert_null(t->r);
	assert_int_equal(rc[0].calls + rc[1].calls + rc[2].calls, 1);
	assert_int_equal(rv.calls, 0);
}

static void
test_free_with_pending_queries_calls_nothing(void **state)
{
	struct t *t = *state;
	struct rec rc[2], rv;
	struct sockaddr_in sin;
	t_open(t);
	assert_non_null(res_lookup(t->r, "both.example.test", rec_cb, t_rec(t, &rc[0])));
	assert_non_null(res_lookup(t->r, "never.example.test", rec_cb, t_rec(t, &rc[1])));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.10", &sin.sin_addr);
	assert_non_null(res_reverse(t->r, (struct sockaddr *)&sin, rec_name_cb, t_rec(t, &rv)));
	res_free(&t->r);
	assert_null(t->r);
	t_sleep(t, 50);
	assert_int_equal(rc[0].calls + rc[1].calls + rv.calls, 0);
}

static void
test_literals_answer_synchronously_without_dns(void **state)
{
	struct t *t = *state;
	struct rec rc;
	t_open(t);
	t_rec(t, &rc);

	assert_null(res_lookup(t->r, "192.0.2.55", rec_cb, &rc));
	assert_int_equal(rc.calls, 1);
	assert_int_equal(rc.status, RES_OK);
	assert_int_equal(rc.a.n, 1);
	assert_true(has_addr(&rc.a, "192.0.2.55"));

	assert_null(res_lookup(t->r, "2001:db8::5", rec_cb, &rc));
	assert_int_equal(rc.calls, 2);
	assert_int_equal(rc.status, RES_OK);
	assert_int_equal(rc.a.n, 1);
	assert_true(has_addr(&rc.a, "2001:db8::5"));

	assert_null(res_lookup(t->r, "[2001:db8::6]", rec_cb, &rc));
	assert_int_equal(rc.calls, 3);
	assert_int_equal(rc.status, RES_OK);
	assert_true(has_addr(&rc.a, "2001:db8::6"));

	static const char *bad[] = {"[192.0.2.1]", "[2001:db8::1", "2001:db8::zz", "[]",
				    "fe80::1%eth0"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int before = rc.calls;
		assert_null(res_lookup(t->r, bad[i], rec_cb, &rc));
		assert_int_equal(rc.calls, before + 1);
		assert_int_equal(rc.status, RES_BADNAME);
	}
	t_sleep(t, 20);
	assert_int_equal(t->fk.total, 0);
	assert_int_equal(t_stats(t).queries, 0);
}

static void
test_localhost_is_answered_without_dns(void **state)
{
	struct t *t = *state;
	struct rec rc;
	static const char *names[] = {"localhost", "LOCALHOST.", "app.localhost"};
	t_open(t);
	t_rec(t, &rc);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_null(res_lookup(t->r, names[i], rec_cb, &rc));
		assert_int_equal(rc.calls, (int)i + 1);
		assert_int_equal(rc.status, RES_OK);
		assert_int_equal(rc.a.n, 2);
		assert_true(has_addr(&rc.a, "127.0.0.1"));
		assert_true(has_addr(&rc.a, "::1"));
	}
	t_sleep(t, 20);
	assert_int_equal(t->fk.total, 0);
}

static void
test_bad_names_are_rejected_synchronously(void **state)
{
	struct t *t = *state;
	struct rec rc;
	char l64[80], n254[300];
	memset(l64, 'a', 64);
	strcpy(l64 + 64, ".example.test");
	for (int i = 0; i < 254; i++)
		n254[i] = (i % 2) ? '.' : 'a';
	n254[253] = 'b';
	n254[254] = '\0'; /* 254 characters: one too many */
	const char *bad[] = {"", ".", "a..example.test", ".example.test", "exa mple.test",
			     "host.example.test..", "caf\xc3\xa9.example.test", "a/b.test",
			     "1.2.3", "127.1", "10", l64, n254, "host:80"};
	t_open(t);
	t_rec(t, &rc);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_null(res_lookup(t->r, bad[i], rec_cb, &rc));
		assert_int_equal(rc.calls, (int)i + 1);
		assert_int_equal(rc.status, RES_BADNAME);
	}
	assert_null(res_lookup(t->r, NULL, rec_cb, &rc));
	assert_int_equal(rc.status, RES_BADNAME);
	assert_string_equal(res_strerror(RES_BADNAME), "bad name");
	t_sleep(t, 20);
	assert_int_equal(t->fk.total, 0);

	/* The limits themselves are fine: a 63-byte label, a 253-byte name, underscores. */
	struct rec ok[3];
	char l63[80], n253[300];
	memset(l63, 'a', 63);
	strcpy(l63 + 63, ".example.test");
	memcpy(n253, n254, 252);
	n253[252] = 'b';
	n253[253] = '\0';
	assert_non_null(res_lookup(t->r, l63, rec_cb, t_rec(t, &ok[0])));
	assert_non_null(res_lookup(t->r, n253, rec_cb, t_rec(t, &ok[1])));
	assert_non_null(res_lookup(t->r, "_srv-x.example.test", rec_cb, t_rec(t, &ok[2])));
	t_run(t, (int)(sizeof(bad) / sizeof(bad[0])) + 1 + 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(ok[i].status, RES_NXDOMAIN);
}

static void
test_cache_bound_evicts_least_recently_used(void **state)
{
	struct t *t = *state;
	struct rec rc;
	t->conf.cache_max = 2;
	t_open(t);
	t_rec(t, &rc);
	assert_non_null(res_lookup(t->r, "a.example.test", rec_cb, &rc));
	assert_non_null(res_lookup(t->r, "b.example.test", rec_cb, &rc));
	t_run(t, 2);
	/* Touch a: b becomes the least recently used. */
	assert_null(res_lookup(t->r, "a.example.test", rec_cb, &rc));
	assert_non_null(res_lookup(t->r, "c.example.test", rec_cb, &rc));
	t_run(t, 4);
	assert_int_equal(t_stats(t).cache_entries, 2);
	assert_null(res_lookup(t->r, "a.example.test", rec_cb, &rc));   /* kept */
	assert_null(res_lookup(t->r, "c.example.test", rec_cb, &rc));   /* kept */
	assert_non_null(res_lookup(t->r, "b.example.test", rec_cb, &rc)); /* evicted */
	t_run(t, 7);
	assert_int_equal(rc.status, RES_OK);
	assert_true(has_addr(&rc.a, "192.0.2.32"));
	assert_int_equal(fk_count(&t->fk, "a.example.test", T_A), 1);
	assert_int_equal(fk_count(&t->fk, "b.example.test", T_A), 2);
	assert_int_equal(fk_count(&t->fk, "c.example.test", T_A), 1);
	assert_int_equal(t_stats(t).cache_entries, 2);
}

static void
test_truncation_keeps_both_families(void **state)
{
	struct t *t = *state;
	struct rec rc;
	t_open(t);
	assert_non_null(res_lookup(t->r, "many.example.test", rec_cb, t_rec(t, &rc)));
	t_run(t, 1);
	assert_int_equal(rc.status, RES_OK);
	assert_int_equal(rc.a.n, RES_MAX_ADDRS);
	assert_int_equal(count_family(&rc.a, AF_INET6), 1);
	assert_int_equal(count_family(&rc.a, AF_INET), RES_MAX_ADDRS - 1);
	assert_true(has_addr(&rc.a, "2001:db8:1::1"));
}

static void
test_reverse_confirmed_by_forward_lookup(void **state)
{
	struct t *t = *state;
	struct rec rv;
	struct sockaddr_in sin;
	t_open(t);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(40000);
	inet_pton(AF_INET, "192.0.2.10", &sin.sin_addr);
	assert_non_null(res_reverse(t->r, (struct sockaddr *)&sin, rec_name_cb, t_rec(t, &rv)));
	t_run(t, 1);
	assert_int_equal(rv.calls, 1);
	assert_true(rv.named);
	assert_string_equal(rv.name, "host.example.test");
	assert_int_equal(fk_count(&t->fk, "10.2.0.192.in-addr.arpa", T_PTR), 1);
	assert_int_equal(fk_count(&t->fk, "host.example.test", T_A), 1);
}

static void
test_reverse_ipv6_and_v4_mapped(void **state)
{
	struct t *t = *state;
	struct rec r6, rm;
	struct sockaddr_in6 s6, m6;
	t_open(t);
	memset(&s6, 0, sizeof(s6));
	s6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::10", &s6.sin6_addr);
	memset(&m6, 0, sizeof(m6));
	m6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:192.0.2.10", &m6.sin6_addr);
	assert_non_null(res_reverse(t->r, (struct sockaddr *)&s6, rec_name_cb, t_rec(t, &r6)));
	assert_non_null(res_reverse(t->r, (struct sockaddr *)&m6, rec_name_cb, t_rec(t, &rm)));
	t_run(t, 2);
	assert_true(r6.named);
	assert_string_equal(r6.name, "host6.example.test");
	assert_true(rm.named);
	assert_string_equal(rm.name, "host.example.test");
	assert_int_equal(fk_count(&t->fk, PTR6_HOST, T_PTR), 1);
}

static void
test_reverse_forward_mismatch_gives_null(void **state)
{
	struct t *t = *state;
	struct rec rv;
	struct sockaddr_in sin;
	t_open(t);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.11", &sin.sin_addr);
	assert_non_null(res_reverse(t->r, (struct sockaddr *)&sin, rec_name_cb, t_rec(t, &rv)));
	t_run(t, 1);
	assert_int_equal(rv.calls, 1);
	assert_false(rv.named);
	/* The forward lookup did happen: the PTR name was checked, not trusted. */
	assert_int_equal(fk_count(&t->fk, "liar.example.test", T_A), 1);
}

static void
test_reverse_without_ptr_or_with_literal_ptr_gives_null(void **state)
{
	struct t *t = *state;
	struct rec r1, r2, r3;
	struct sockaddr_in sin;
	struct sockaddr_un_like {
		sa_family_t family;
		char path[20];
	} bogus = {AF_UNIX, "x"};
	t_open(t);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.12", &sin.sin_addr); /* no PTR: NXDOMAIN */
	assert_non_null(res_reverse(t->r, (struct sockaddr *)&sin, rec_name_cb, t_rec(t, &r1)));
	inet_pton(AF_INET, "192.0.2.14", &sin.sin_addr); /* PTR "1.2.3.4": not a host name */
	assert_non_null(res_reverse(t->r, (struct sockaddr *)&sin, rec_name_cb, t_rec(t, &r2)));
	t_run(t, 2);
	assert_false(r1.named);
	assert_false(r2.named);
	assert_int_equal(fk_count(&t->fk, "1.2.3.4", T_A), 0);
	/* Not an IP address at all: answered at once. */
	assert_null(res_reverse(t->r, (struct sockaddr *)&bogus, rec_name_cb, t_rec(t, &r3)));
	assert_int_equal(r3.calls, 1);
	assert_false(r3.named);
}

static int
cond_saw_never(struct t *t)
{
	return fk_count(&t->fk, "never.example.test", T_A) >= 1;
}

static int
cond_saw_ptr10(struct t *t)
{
	return fk_count(&t->fk, "10.2.0.192.in-addr.arpa", T_PTR) >= 1;
}

static int
cond_one_failure(struct t *t)
{
	return t_stats(t).failures >= 1;
}

static void
test_reverse_cancel_in_either_stage(void **state)
{
	struct t *t = *state;
	struct rec r1, r2;
	struct sockaddr_in sin;
	t->conf.timeout_ms = 150;
	t->conf.tries = 1;
	t_open(t);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;

	/* PTR stage: cancelled before the server has even seen the query. */
	inet_pton(AF_INET, "192.0.2.10", &sin.sin_addr);
	struct sockaddr *sa = (struct sockaddr *)&sin;
	struct res_query *q1 = res_reverse(t->r, sa, rec_name_cb, t_rec(t, &r1));
	assert_non_null(q1);
	res_cancel(&q1);
	assert_null(q1);
	t_until(t, cond_saw_ptr10);

	/* Forward stage: the PTR names a host that never answers; cancel while it waits. */
	inet_pton(AF_INET, "192.0.2.13", &sin.sin_addr);
	struct res_query *q2 = res_reverse(t->r, sa, rec_name_cb, t_rec(t, &r2));
	assert_non_null(q2);
	t_until(t, cond_saw_never);
	res_cancel(&q2);
	t_until(t, cond_one_failure); /* the forward query timed out, to nobody */
	t_sleep(t, 20);
	assert_int_equal(r1.calls, 0);
	assert_int_equal(r2.calls, 0);
}

/* A name from /etc/hosts: c-ares answers inside ares_getaddrinfo, so the callback runs
 * before res_lookup returns, without DNS. Skipped when the hosts file has no usable name. */
static void
test_hosts_file_answer_is_synchronous(void **state)
{
	struct t *t = *state;
	char line[512], name[256] = "", addr[64] = "";
	FILE *fp = fopen("/etc/hosts", "r");
	if (fp == NULL)
		skip();
	for (int i = 0; i < 1000 && name[0] == '\0' && fgets(line, sizeof(line), fp); i++) {
		char a[64], n[256];
		unsigned char b[4];
		if (sscanf(line, "%63s %255s", a, n) != 2 || a[0] == '#' ||
		    inet_pton(AF_INET, a, b) != 1 || strstr(n, "localhost") != NULL ||
		    strchr(n, '#') != NULL)
			continue;
		snprintf(name, sizeof(name), "%s", n);
		snprintf(addr, sizeof(addr), "%s", a);
	}
	fclose(fp);
	if (name[0] == '\0')
		skip();
	struct rec rc;
	t_open(t);
	assert_null(res_lookup(t->r, name, rec_cb, t_rec(t, &rc)));
	assert_int_equal(rc.calls, 1);
	assert_int_equal(rc.status, RES_OK);
	assert_true(has_addr(&rc.a, addr));
	assert_int_equal(t->fk.total, 0);
}

static void
test_server_parse_forms(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	const char *err;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	unsigned char b[16];

	assert_int_equal(res_server_parse("192.0.2.53", &ss, &err), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(s4->sin_port), 53);
	inet_pton(AF_INET, "192.0.2.53", b);
	assert_memory_equal(&s4->sin_addr, b, 4);

	assert_int_equal(res_server_parse("192.0.2.53:5353", &ss, &err), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(s4->sin_port), 5353);

	assert_int_equal(res_server_parse("[2001:db8::53]:5300", &ss, &err), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(ntohs(s6->sin6_port), 5300);
	inet_pton(AF_INET6, "2001:db8::53", b);
	assert_memory_equal(&s6->sin6_addr, b, 16);

	assert_int_equal(res_server_parse("2001:db8::53", &ss, &err), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(ntohs(s6->sin6_port), 53);
	assert_memory_equal(&s6->sin6_addr, b, 16);

	assert_int_equal(res_server_parse("[::1]", &ss, &err), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(ntohs(s6->sin6_port), 53);

	static const char *bad[] = {"", "dns.example.test", "192.0.2.1:0", "192.0.2.1:65536",
				    "192.0.2.1:", "[2001:db8::1", "[2001:db8::1]x",
				    "[2001:db8::1]:", "192.0.2.1:53x", "1.2.3.4.5",
				    "[192.0.2.1]:53",
				    "192.0.2.1:-1", " 192.0.2.1", "[]:53", "::1:"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		if (res_server_parse(bad[i], &ss, &err) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_non_null(err);
	}
	err = NULL;
	assert_int_equal(res_server_parse(NULL, &ss, &err), -1);
	assert_non_null(err);
}

static void
test_conf_defaults_and_checks(void **state)
{
	struct t *t = *state;
	struct res_conf c;
	struct res *r = NULL;
	const char *err = NULL;

	memset(&c, 0xff, sizeof(c));
	res_conf_default(&c);
	assert_int_equal(c.nservers, 0);
	assert_int_equal(c.timeout_ms, 1500);
	assert_int_equal(c.tries, 2);
	assert_int_equal(c.ttl_min, 5);
	assert_int_equal(c.ttl_max, 3600);
	assert_int_equal(c.neg_ttl, 30);
	assert_int_equal(c.cache_max, 10000);

	/* Default configuration (/etc/resolv.conf) opens and frees cleanly. */
	assert_int_equal(res_new(&r, t->loop, &c, &err), 0);
	assert_non_null(r);
	res_free(&r);
	assert_null(r);
	assert_int_equal(res_new(&r, t->loop, NULL, &err), 0);
	res_free(&r);

	c.ttl_min = 100;
	c.ttl_max = 10;
	err = NULL;
	assert_int_equal(res_new(&r, t->loop, &c, &err), -1);
	assert_null(r);
	assert_non_null(err);
	res_conf_default(&c);
	c.tries = 0;
	err = NULL;
	assert_int_equal(res_new(&r, t->loop, &c, &err), -1);
	assert_non_null(err);
	res_conf_default(&c);
	c.nservers = RES_MAX_SERVERS + 1;
	err = NULL;
	assert_int_equal(res_new(&r, t->loop, &c, &err), -1);
	assert_non_null(err);
	res_conf_default(&c);
	c.nservers = 1; /* family 0 */
	err = NULL;
	assert_int_equal(res_new(&r, t->loop, &c, &err), -1);
	assert_non_null(err);
	assert_string_equal(res_strerror(RES_ERROR), "resolver error");
	assert_string_equal(res_strerror(12345), "resolver error");
}

static void
test_two_servers_second_answers(void **state)
{
	struct t *t = *state;
	struct rec rc;
	/* First server silent (a bound socket nobody reads), second is the fake server. */
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sin, &sl), 0);
	t->conf.servers[1] = t->conf.servers[0];
	memcpy(&t->conf.servers[0], &sin, sizeof(sin));
	t->conf.nservers = 2;
	t->conf.timeout_ms = 100;
	t->conf.tries = 1;
	t_open(t);
	assert_non_null(res_lookup(t->r, "v4only.example.test", rec_cb, t_rec(t, &rc)));
	t_run(t, 1);
	close(s);
	assert_int_equal(rc.status, RES_OK);
	assert_true(has_addr(&rc.a, "192.0.2.3"));
}

/* Server 0 is broken (answers every query with rcode), server 1 is the fake server. */
static void
t_broken_first(struct t *t, struct fk *bad, int rcode)
{
	fk_start(bad, t->loop);
	bad->rcode_all = rcode;
	t->conf.servers[1] = t->conf.servers[0];
	struct sockaddr_in *sin = (struct sockaddr_in *)&t->conf.servers[0];
	sin->sin_port = htons(bad->port);
	t->conf.nservers = 2;
	t_open(t);
}

static void
test_refusing_server_fails_over_to_next(void **state)
{
	struct t *t = *state;
	struct fk bad;
	struct rec rc;
	t_broken_first(t, &bad, 5);
	assert_non_null(res_lookup(t->r, "v4only.example.test", rec_cb, t_rec(t, &rc)));
	t_run(t, 1);
	fk_stop(&bad);
	assert_int_equal(rc.status, RES_OK);
	assert_true(has_addr(&rc.a, "192.0.2.3"));
	assert_true(fk_count(&bad, "v4only.example.test", T_A) >= 1);
}

static void
test_servfail_from_every_server_is_servfail(void **state)
{
	struct t *t = *state;
	struct fk bad;
	struct rec rc;
	t_broken_first(t, &bad, 2);
	/* The second server answers SERVFAIL for this name too. */
	assert_non_null(res_lookup(t->r, "fail.example.test", rec_cb, t_rec(t, &rc)));
	t_run(t, 1);
	fk_stop(&bad);
	assert_int_equal(rc.status, RES_SERVFAIL);
	assert_true(fk_count(&bad, "fail.example.test", T_A) >= 1);
	assert_true(fk_count(&t->fk, "fail.example.test", T_A) >= 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, t_setup, t_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_lookup_returns_both_families),
		T(test_ttl_is_minimum_over_records),
		T(test_ttl_floor_and_ceiling),
		T(test_answer_is_cached_until_ttl_expires),
		T(test_name_key_ignores_case_and_trailing_dot),
		T(test_nxdomain_is_cached_negatively),
		T(test_nodata_is_distinct_and_cached),
		T(test_negative_entry_expires_after_neg_ttl),
		T(test_servfail_is_not_cached),
		T(test_refused_status),
		T(test_silent_server_times_out),
		T(test_unreachable_server_is_reported),
		T(test_concurrent_lookups_share_one_query),
		T(test_cancel_detaches_one_waiter),
		T(test_cancelled_query_still_fills_cache),
		T(test_callback_may_cancel_another_waiter),
		T(test_callback_may_look_up_again),
		T(test_free_inside_callback_drops_other_waiters),
		T(test_free_with_pending_queries_calls_nothing),
		T(test_literals_answer_synchronously_without_dns),
		T(test_localhost_is_answered_without_dns),
		T(test_bad_names_are_rejected_synchronously),
		T(test_cache_bound_evicts_least_recently_used),
		T(test_truncation_keeps_both_families),
		T(test_reverse_confirmed_by_forward_lookup),
		T(test_reverse_ipv6_and_v4_mapped),
		T(test_reverse_forward_mismatch_gives_null),
		T(test_reverse_without_ptr_or_with_literal_ptr_gives_null),
		T(test_reverse_cancel_in_either_stage),
		T(test_hosts_file_answer_is_synchronous),
		T(test_server_parse_forms),
		T(test_conf_defaults_and_checks),
		T(test_two_servers_second_answers),
		T(test_refusing_server_fails_over_to_next),
		T(test_servfail_from_every_server_is_servfail),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
