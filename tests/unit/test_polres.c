/*
 * test_polres.c - the policy resolver thread (daemon/polres.c) and the readiness of the
 * policies it serves (pol_block_ready, issue 10 item 2): a policy with ProxyBlock names is not
 * ready until the blocked set holds every name's first answer; reloads handed over before that
 * (also several in a row, which the thread may take at once) all become ready with the newest
 * table, after the set is published, and the workers' wakers run.
 *
 * The test thread plays the DNS server on a loopback UDP socket (blocking, with a receive
 * timeout), so it decides when each answer goes out: a real resolver on the other side.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "daemon/cfg.h"
#include "daemon/polres.h"
#include "policy/pol.h"

struct tq {
	unsigned char pkt[512];
	size_t len;
	struct sockaddr_storage from;
	socklen_t fromlen;
	char name[256];
	unsigned type;
	size_t qend;
};

static int
tq_open(unsigned *port)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	struct timeval tv = { .tv_sec = 5 };

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Receive one query (5 s at most). Returns 0, or -1 on timeout. */
static int
tq_recv(int fd, struct tq *q)
{
	q->fromlen = sizeof(q->from);
	ssize_t n = recvfrom(fd, q->pkt, sizeof(q->pkt), 0, (struct sockaddr *)&q->from,
	                     &q->fromlen);
	if (n < 12)
		return -1;
	q->len = (size_t)n;
	size_t i = 12, o = 0;
	while (i < q->len && q->pkt[i] != 0) {
		size_t l = q->pkt[i];
		assert_true(i + 1 + l < q->len && o + l + 1 < sizeof(q->name));
		if (o)
			q->name[o++] = '.';
		memcpy(q->name + o, q->pkt + i + 1, l);
		o += l;
		i += 1 + l;
	}
	q->name[o] = '\0';
	assert_true(i + 5 <= q->len);
	q->type = (unsigned)q->pkt[i + 1] << 8 | q->pkt[i + 2];
	q->qend = i + 5;
	return 0;
}

/* Answer q: addr (IPv4 text) for an A query of a name that has one, NODATA for its other
 * types, NXDOMAIN when addr is NULL. */
static void
tq_answer(int fd, const struct tq *q, const char *addr)
{
	unsigned char r[600];
	size_t n = q->qend;

	memcpy(r, q->pkt, n);
	r[2] = 0x84 | (q->pkt[2] & 0x01); /* QR, AA, RD copied */
	r[3] = 0x80 | (addr ? 0 : 3);      /* RA, NOERROR or NXDOMAIN */
	r[6] = r[7] = r[8] = r[9] = r[10] = r[11] = 0;
	if (addr && q->type == 1) {
		static const unsigned char rr[] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4 };
		memcpy(r + n, rr, sizeof(rr));
		n += sizeof(rr);
		assert_int_equal(inet_pton(AF_INET, addr, r + n), 1);
		n += 4;
		r[7] = 1;
	}
	assert_true(sendto(fd, r, n, 0, (const struct sockaddr *)&q->from, q->fromlen) ==
	            (ssize_t)n);
}

static struct cfg *
t_cfg(unsigned port, const char *block)
{
	char text[512], err[512] = "";
	struct cfg *c = NULL;

	snprintf(text, sizeof(text), "Listen 127.0.0.1:3128\nDNSServer 127.0.0.1:%u\n"
	         "DNSTimeout 5000\n%s\n", port, block);
	if (cfg_load_string("t.conf", text, &c, err, sizeof(err)) != 0)
		fail_msg("config: %s", err);
	return c;
}

static atomic_int t_wakes;

static void
t_wake(void *arg)
{
	(void)arg;
	atomic_fetch_add(&t_wakes, 1);
}

static int
t_ready_within(const struct pol *p, unsigned ms)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };

	for (unsigned i = 0; i < ms / 10; i++) {
		if (pol_block_ready(p))
			return 1;
		nanosleep(&ts, NULL);
	}
	return pol_block_ready(p);
}

static void
test_ready_only_after_every_first_answer(void **state)
{
	(void)state;
	unsigned port;
	int fd = tq_open(&port);
	struct cfg *a = t_cfg(port, "ProxyBlock blk.test 10.9.0.0/16");
	struct cfg *b = t_cfg(port, "ProxyBlock blk.test other.test");
	struct cfg *c = t_cfg(port, "ProxyBlock other.test blk.test casino");
	struct cfg *none = t_cfg(port, "ProxyBlock 10.9.0.0/16 casino");
	struct polres *p = NULL;
	struct tq q;

	/* Nothing to resolve: ready at once, nothing asked. */
	assert_true(pol_block_ready(none->pol));
	assert_false(pol_block_ready(a->pol));
	atomic_store(&t_wakes, 0);
	assert_int_equal(polres_start(&p, a), 0);
	assert_int_equal(polres_waker_add(p, t_wake, &t_wakes), 0);

	/* The first query for blk.test arrives; before it is answered, two reloads in a row
	 * (the second adds nothing new to the first). */
	assert_int_equal(tq_recv(fd, &q), 0);
	assert_string_equal(q.name, "blk.test");
	polres_set_cfg(p, b);
	polres_set_cfg(p, c);
	/* other.test: NXDOMAIN at once. blk.test still unanswered: nobody is ready. */
	struct tq held[4];
	size_t nheld = 0;
	held[nheld++] = q;
	for (int i = 0; i < 8 && !(pol_block_ready(c->pol)); i++) {
		if (tq_recv(fd, &q) != 0)
			break;
		if (strcmp(q.name, "other.test") == 0) {
			tq_answer(fd, &q, NULL);
		} else if (strcmp(q.name, "blk.test") == 0 && nheld < 4) {
			held[nheld++] = q;
		}
		if (nheld >= 2)
			break; /* A and AAAA of blk.test held */
	}
	assert_false(t_ready_within(a->pol, 300));
	assert_false(pol_block_ready(b->pol));
	assert_false(pol_block_ready(c->pol));
	assert_int_equal(atomic_load(&t_wakes), 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	assert_int_equal(inet_pton(AF_INET, "192.0.2.7", &sa.sin_addr), 1);
	assert_true(polres_blocked(p) == NULL ||
	            pol_addrset_lookup(polres_blocked(p), (struct sockaddr *)&sa) == NULL);

	/* Now blk.test answers: every policy handed over is ready, after the set holding it. */
	for (size_t i = 0; i < nheld; i++)
		tq_answer(fd, &held[i], "192.0.2.7");
	/* Answer whatever else comes (other.test's AAAA, retries) until ready. */
	for (int i = 0; i < 8 && !t_ready_within(c->pol, 200); i++) {
		if (tq_recv(fd, &q) != 0)
			break;
		tq_answer(fd, &q, strcmp(q.name, "blk.test") == 0 ? "192.0.2.7" : NULL);
	}
	assert_true(t_ready_within(c->pol, 5000));
	assert_true(pol_block_ready(a->pol));
	assert_true(pol_block_ready(b->pol));
	assert_true(atomic_load(&t_wakes) >= 1);
	const struct pol_addrset *set = polres_blocked(p);
	assert_non_null(set);
	assert_string_equal(pol_addrset_lookup(set, (struct sockaddr *)&sa), "blk.test");

	polres_waker_remove(p, &t_wakes);
	polres_stop(&p);
	assert_null(p);
	cfg_unref(&a);
	cfg_unref(&b);
	cfg_unref(&c);
	cfg_unref(&none);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ready_only_after_every_first_answer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
