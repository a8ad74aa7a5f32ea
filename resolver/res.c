/*
 * res.c - asynchronous name resolution on an ev loop (see res.h for the contract).
 *
 * One c-ares channel per struct res. c-ares tells us which sockets to watch through
 * ARES_OPT_SOCK_STATE_CB: each socket gets a struct res_sock with an ev_io; readiness calls
 * ares_process_fd(); ares_timeout() is folded into one ev_timer, re-armed whenever we leave
 * the resolver. A socket c-ares closes (state 0/0, reported before close) has its io stopped at
 * once and its memory freed through ev_defer, because its event may still be in the batch.
 *
 * Lookups: literals, "localhost" and bad names are answered synchronously; other names go to
 * the name table (cache.c): a fresh cached answer is a synchronous hit, a pending query gets
 * another waiter (coalescing), otherwise ares_getaddrinfo(AF_UNSPEC) starts one. Answers
 * found inside ares_getaddrinfo() (hosts file, immediate errors) are parked on the entry and
 * handled once the call has returned. Waiters are answered from a batch list on the stack, so
 * callbacks may start lookups, cancel other waiters or even res_free() the resolver: res_free
 * while inside the resolver (busy) drops every query at once and the outermost entry point
 * destroys the channel on the way out (ares_destroy must not run inside a c-ares callback).
 *
 * Reverse lookups: ares_gethostbyaddr for the PTR name, then the ordinary forward path; the
 * name is given only if one of its addresses is the client address.
 */
#include "resolver/res_priv.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

struct res_rev {
	unsigned magic;
	struct res *r;
	struct res_query *q;     /* NULL once cancelled */
	int starting, parked;
	int status;              /* ares status */
	int name_ok;
	char name[RES_NAME_MAX + 2];
};

static pthread_once_t res_lib_once = PTHREAD_ONCE_INIT;
static int res_lib_rc;

static void
res_lib_init(void)
{
	res_lib_rc = ares_library_init(ARES_LIB_INIT_ALL);
}

static void res_destroy(struct res *r);

/* ---- entering and leaving the resolver ---- */

static void
res_enter(struct res *r)
{
	r->busy++;
}

static void
res_timer_update(struct res *r)
{
	struct timeval tv, *tvp = ares_timeout(r->ch, NULL, &tv);
	if (tvp == NULL) {
		ev_timer_stop(&r->timer);
		return;
	}
	/* Round up: waking before c-ares' deadline would only re-arm for the remainder. */
	uint64_t ms = (uint64_t)tvp->tv_sec * 1000u + ((uint64_t)tvp->tv_usec + 999u) / 1000u;
	ev_timer_start(r->loop, &r->timer, ms);
}

/* Outermost exit: destroy if res_free came while we were busy, else re-arm the timer.
 * r must not be used after this call. */
static void
res_leave(struct res *r)
{
	if (--r->busy > 0)
		return;
	if (r->dying) {
		res_destroy(r);
		return;
	}
	res_timer_update(r);
}

/* ---- queries (handles given to callers) ---- */

static struct res_query *
res_query_new(struct res *r, enum res_qkind kind, void *arg)
{
	struct res_query *q = calloc(1, sizeof(*q));
	if (q == NULL)
		return NULL;
	q->magic = RES_QUERY_MAGIC;
	q->kind = kind;
	q->r = r;
	q->arg = arg;
	q->all_next = r->all;
	if (r->all != NULL)
		r->all->all_prev = q;
	r->all = q;
	return q;
}

static void
res_query_attach(struct res_query *q, struct res_wlist *l)
{
	q->owner = l;
	q->prev = NULL;
	q->next = l->head;
	if (l->head != NULL)
		l->head->prev = q;
	l->head = q;
}

/* Take q off every list (waiters, PTR stage, res->all); q stays allocated. */
static void
res_query_unlink(struct res_query *q)
{
	struct res *r = q->r;

	if (q->owner != NULL) {
		if (q->prev != NULL)
			q->prev->next = q->next;
		else
			q->owner->head = q->next;
		if (q->next != NULL)
			q->next->prev = q->prev;
		q->owner = NULL;
		q->prev = q->next = NULL;
	}
	if (q->rev != NULL) {
		q->rev->q = NULL;
		q->rev = NULL;
	}
	if (q->all_prev != NULL)
		q->all_prev->all_next = q->all_next;
	else
		r->all = q->all_next;
	if (q->all_next != NULL)
		q->all_next->all_prev = q->all_prev;
	q->all_prev = q->all_next = NULL;
}

static void
res_query_release(struct res_query *q)
{
	res_query_unlink(q);
	q->magic = RES_DEAD_MAGIC;
	free(q->name);
	free(q);
}

static int
res_addrs_has(const struct res_addrs *a, const struct res_ip *ip)
{
	for (unsigned i = 0; i < a->n && i < RES_MAX_ADDRS; i++) {
		const struct sockaddr_storage *ss = &a->a[i];
		if (ss->ss_family != ip->family)
			continue;
		if (ip->family == AF_INET &&
		    memcmp(&((const struct sockaddr_in *)ss)->sin_addr, ip->b, 4) == 0)
			return 1;
		if (ip->family == AF_INET6 &&
		    memcmp(&((const struct sockaddr_in6 *)ss)->sin6_addr, ip->b, 16) == 0)
			return 1;
	}
	return 0;
}

/* Answer q (its callback runs) and free it. a may be NULL unless status is RES_OK. */
static void
res_query_fire(struct res_query *q, int status, const struct res_addrs *a)
{
	static const struct res_addrs none;

	res_query_unlink(q);
	q->magic = RES_DEAD_MAGIC; /* a res_cancel from inside the callback is ignored */
	if (status != RES_OK || a == NULL)
		a = &none;
	if (q->kind == RES_Q_FWD) {
		q->cb(q->arg, status, a);
	} else {
		int ok = status == RES_OK && res_addrs_has(a, &q->client);
		q->name_cb(q->arg, ok ? q->name : NULL);
	}
	free(q->name);
	free(q);
}

/* Answer every waiter of a batch. Bounded: each turn takes one query off the list (a
 * callback may also cancel others, or res_free drops them all). */
static void
res_batch_fire(struct res_wlist *batch, int status, const struct res_addrs *a)
{
	struct res_query *q;
	while ((q = batch->head) != NULL)
		res_query_fire(q, status, a);
}

void
res_cancel(struct res_query **qp)
{
	if (qp == NULL || *qp == NULL)
		return;
	struct res_query *q = *qp;
	*qp = NULL;
	if (q->magic != RES_QUERY_MAGIC)
		return;
	/* A pending entry keeps its c-ares query: the answer still fills the cache. A PTR
	 * stage in flight is orphaned (rev->q = NULL) and freed when c-ares calls back. */
	res_query_release(q);
}

/* ---- answers ---- */

static int
res_status_from_ares(int s)
{
	switch (s) {
	case ARES_SUCCESS:
		return RES_OK;
	case ARES_ENOTFOUND:
		return RES_NXDOMAIN;
	case ARES_ENODATA:
		return RES_NODATA;
	case ARES_ESERVFAIL:
		return RES_SERVFAIL;
	case ARES_EREFUSED:
		return RES_REFUSED;
	case ARES_ETIMEOUT:
		return RES_TIMEOUT;
	case ARES_ECONNREFUSED:
		return RES_UNREACHABLE;
	case ARES_EBADNAME:
		return RES_BADNAME;
	default:
		return RES_ERROR;
	}
}

static void
res_addrs_fill(struct res_addrs *a, const struct res_ip *ip, unsigned n, unsigned ttl)
{
	a->n = n;
	a->ttl = ttl;
	for (unsigned i = 0; i < n && i < RES_MAX_ADDRS; i++)
		res_ip_to_sockaddr(&ip[i], &a->a[i]);
}

static unsigned
res_ttl_clamp(const struct res *r, unsigned ttl)
{
	if (ttl < r->conf.ttl_min)
		ttl = r->conf.ttl_min;
	if (ttl > r->conf.ttl_max)
		ttl = r->conf.ttl_max; /* the ceiling wins if the two cross */
	return ttl;
}

/* Copy c-ares' addresses, in its order, without duplicates, at most RES_MAX_ADDRS. When the
 * list is longer, the first address of a family missing so far takes the last slot, so both
 * families survive truncation. *ttl gets the smallest TTL seen. Returns the count. */
static unsigned
res_collect(const struct ares_addrinfo *ai, struct res_ip *ip, unsigned *ttl)
{
	unsigned n = 0, n4 = 0, n6 = 0, guard = 0;
	long minttl = -1;

	for (const struct ares_addrinfo_node *nd = ai ? ai->nodes : NULL;
	     nd != NULL && guard < 65536; nd = nd->ai_next, guard++) {
		struct res_ip x;
		memset(&x, 0, sizeof(x));
		if (nd->ai_addr == NULL)
			continue;
		if (nd->ai_family == AF_INET && nd->ai_addrlen >= sizeof(struct sockaddr_in)) {
			x.family = AF_INET;
			memcpy(x.b, &((const struct sockaddr_in *)nd->ai_addr)->sin_addr, 4);
		} else if (nd->ai_family == AF_INET6 &&
			   nd->ai_addrlen >= sizeof(struct sockaddr_in6)) {
			x.family = AF_INET6;
			memcpy(x.b, &((const struct sockaddr_in6 *)nd->ai_addr)->sin6_addr, 16);
		} else {
			continue;
		}
		long t = nd->ai_ttl < 0 ? 0 : nd->ai_ttl;
		if (minttl < 0 || t < minttl)
			minttl = t;
		int dup = 0;
		for (unsigned i = 0; i < n && !dup; i++)
			dup = memcmp(&ip[i], &x, sizeof(x)) == 0;
		if (dup)
			continue;
		unsigned *cnt = x.family == AF_INET ? &n4 : &n6;
		if (n < RES_MAX_ADDRS) {
			ip[n++] = x;
			(*cnt)++;
		} else if (*cnt == 0) {
			/* Full and this family absent: the last slot holds the other family,
			 * which has RES_MAX_ADDRS members, so it stays present. */
			if (ip[n - 1].family == AF_INET)
				n4--;
			else
				n6--;
			ip[n - 1] = x;
			(*cnt)++;
		}
	}
	*ttl = minttl < 0 ? 0 : (minttl > (long)UINT_MAX ? UINT_MAX : (unsigned)minttl);
	return n;
}

/* A pending entry's query has finished: update the table, then answer its waiters. */
static void
res_ent_complete(struct res_ent *e, int ares_status, struct ares_addrinfo *ai)
{
	struct res *r = e->r;
	struct res_ip ip[RES_MAX_ADDRS];
	struct res_addrs a;
	struct res_wlist batch;
	unsigned nip = 0, ttl = 0;
	int st = res_status_from_ares(ares_status);

	if (ares_status == ARES_ECONNREFUSED && e->bad_status != 0)
		st = e->bad_status;
	if (st == RES_OK) {
		nip = res_collect(ai, ip, &ttl);
		if (nip == 0)
			st = RES_NODATA;
	}
	if (ai != NULL)
		ares_freeaddrinfo(ai);
	ttl = st == RES_OK ? res_ttl_clamp(r, ttl) : r->conf.neg_ttl;

	/* Move the waiters to a batch on our stack: the entry may go away below. */
	batch.head = e->waiters.head;
	e->waiters.head = NULL;
	for (struct res_query *q = batch.head; q != NULL; q = q->next)
		q->owner = &batch;

	if (st == RES_OK || st == RES_NXDOMAIN || st == RES_NODATA) {
		res_cache_store(r, e, st, ip, nip, ttl); /* on no memory e is just dropped */
	} else {
		r->st.failures++;
		res_cache_remove(r, e);
	}
	res_addrs_fill(&a, ip, nip, ttl);
	res_batch_fire(&batch, st, &a);
}

static void
res_ares_done(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
	struct res_ent *e = arg;

	(void)timeouts;
	if (e == NULL || e->magic != RES_ENT_MAGIC) {
		if (ai != NULL)
			ares_freeaddrinfo(ai);
		return;
	}
	if (status == ARES_EDESTRUCTION || e->r->destroying) {
		/* res_destroy frees the table after ares_destroy returns. */
		if (ai != NULL)
			ares_freeaddrinfo(ai);
		return;
	}
	if (e->starting) {
		e->parked = 1;
		e->parked_status = status;
		e->parked_ai = ai;
		return;
	}
	res_ent_complete(e, status, ai);
}

/* q (already on res->all) wants the addresses of key: answer from the cache, join a
 * pending query, or start one. Returns 1 if q is waiting, 0 if it has been answered. */
static int
res_fwd_submit(struct res *r, struct res_query *q, const char *key, size_t len)
{
	uint64_t h = res_cache_hash(r, key, len);
	struct res_ent *e = res_cache_find(r, key, len, h);

	if (e != NULL && e->pending) {
		res_query_attach(q, &e->waiters);
		r->st.coalesced++;
		return 1;
	}
	if (e != NULL && ev_now(r->loop) < e->expires) {
		struct res_addrs a;
		res_cache_touch(r, e);
		if (e->status == RES_OK)
			r->st.cache_hits++;
		else
			r->st.cache_neg_hits++;
		res_addrs_fill(&a, e->ip, e->nip, e->ttl);
		res_query_fire(q, e->status, &a);
		return 0;
	}
	if (e != NULL) {
		res_cache_reuse(r, e);
	} else {
		e = res_cache_add(r, key, len, h);
		if (e == NULL) {
			r->st.failures++;
			res_query_fire(q, RES_ERROR, NULL);
			return 0;
		}
	}
	res_query_attach(q, &e->waiters);
	r->st.queries++;

	struct ares_addrinfo_hints hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;     /* one A and one AAAA query, in parallel */
	hints.ai_socktype = SOCK_STREAM; /* one node per address */
	/* ai_flags 0: keep c-ares' RFC 6724 sort (it only reorders, never drops a family). */
	e->starting = 1;
	ares_getaddrinfo(r->ch, e->name, NULL, &hints, res_ares_done, e);
	e->starting = 0;
	if (e->parked) {
		struct ares_addrinfo *ai = e->parked_ai;
		e->parked = 0;
		e->parked_ai = NULL;
		res_ent_complete(e, e->parked_status, ai);
		return 0;
	}
	return 1;
}

static void
res_answer_localhost(struct res *r, struct res_addrs *a)
{
	struct res_ip ip[2];
	memset(ip, 0, sizeof(ip));
	ip[0].family = AF_INET6;
	ip[0].b[15] = 1;
	ip[1].family = AF_INET;
	ip[1].b[0] = 127;
	ip[1].b[3] = 1;
	res_addrs_fill(a, ip, 2, r->conf.ttl_max);
}

/* Forward path for a validated key: localhost at once (RFC 6761), else the cache/DNS. */
static int
res_fwd_resolve(struct res *r, struct res_query *q, const char *key, size_t len)
{
	if (res_name_is_localhost(key, len)) {
		struct res_addrs a;
		res_answer_localhost(r, &a);
		res_query_fire(q, RES_OK, &a);
		return 0;
	}
	return res_fwd_submit(r, q, key, len);
}

struct res_query *
res_lookup(struct res *r, const char *name, res_done_f *cb, void *arg)
{
	struct res_addrs a;
	struct res_ip lit;
	char key[RES_NAME_MAX + 1];

	if (r == NULL || r->magic != RES_MAGIC || r->dying || cb == NULL)
		return NULL;
	res_enter(r);
	r->st.lookups++;
	int lr = name ? res_name_literal(name, &lit) : -1;
	if (lr > 0) {
		res_addrs_fill(&a, &lit, 1, r->conf.ttl_max);
		cb(arg, RES_OK, &a);
		res_leave(r);
		return NULL;
	}
	int len = lr == 0 ? res_name_key(name, key) : -1;
	if (len < 0) {
		memset(&a, 0, sizeof(a));
		cb(arg, RES_BADNAME, &a);
		res_leave(r);
		return NULL;
	}
	struct res_query *q = res_query_new(r, RES_Q_FWD, arg);
	if (q == NULL) {
		memset(&a, 0, sizeof(a));
		r->st.failures++;
		cb(arg, RES_ERROR, &a);
		res_leave(r);
		return NULL;
	}
	q->cb = cb;
	int waiting = res_fwd_resolve(r, q, key, (size_t)len);
	/* If a callback freed the resolver meanwhile, q was dropped with everything else. */
	if (r->dying)
		waiting = 0;
	res_leave(r);
	return waiting ? q : NULL;
}

/* ---- reverse lookups ---- */

static int
res_ip_from_sockaddr(const struct sockaddr *sa, struct res_ip *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		ip->family = AF_INET;
		memcpy(ip->b, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			/* A dual-stack listener's IPv4 client: its PTR is in in-addr.arpa. */
			ip->family = AF_INET;
			memcpy(ip->b, &a6->s6_addr[12], 4);
		} else {
			ip->family = AF_INET6;
			memcpy(ip->b, a6, 16);
		}
		return 0;
	}
	return -1;
}

/* The PTR answer is in: confirm its name forward. Returns 1 if the reverse query is still
 * waiting (forward lookup pending), 0 if it has been answered or was cancelled. */
static int
res_rev_finish(struct res_rev *rv)
{
	struct res_query *q = rv->q;
	struct res *r = rv->r;
	char key[RES_NAME_MAX + 1];
	int len = -1;

	if (rv->status == ARES_SUCCESS && rv->name_ok)
		len = res_name_key(rv->name, key);
	rv->magic = RES_DEAD_MAGIC;
	free(rv);
	if (q == NULL)
		return 0;
	q->rev = NULL;
	if (len < 0) {
		res_query_fire(q, RES_NXDOMAIN, NULL);
		return 0;
	}
	q->name = malloc((size_t)len + 1);
	if (q->name == NULL) {
		res_query_fire(q, RES_ERROR, NULL);
		return 0;
	}
	memcpy(q->name, key, (size_t)len + 1);
	return res_fwd_resolve(r, q, key, (size_t)len);
}

static void
res_ptr_done(void *arg, int status, int timeouts, struct hostent *he)
{
	struct res_rev *rv = arg;

	(void)timeouts;
	if (rv == NULL || rv->magic != RES_REV_MAGIC)
		return;
	if (status == ARES_EDESTRUCTION || rv->r->destroying) {
		if (rv->q != NULL)
			rv->q->rev = NULL;
		rv->magic = RES_DEAD_MAGIC;
		free(rv);
		return;
	}
	rv->status = status;
	rv->name_ok = 0;
	if (status == ARES_SUCCESS && he != NULL && he->h_name != NULL) {
		size_t n = strnlen(he->h_name, sizeof(rv->name));
		if (n < sizeof(rv->name)) {
			memcpy(rv->name, he->h_name, n + 1);
			rv->name_ok = 1;
		}
	}
	if (rv->starting) {
		rv->parked = 1;
		return;
	}
	res_rev_finish(rv);
}

struct res_query *
res_reverse(struct res *r, const struct sockaddr *addr, res_name_f *cb, void *arg)
{
	struct res_ip ip;

	if (r == NULL || r->magic != RES_MAGIC || r->dying || cb == NULL)
		return NULL;
	res_enter(r);
	struct res_query *q = NULL;
	struct res_rev *rv = NULL;
	if (res_ip_from_sockaddr(addr, &ip) < 0 || (q = res_query_new(r, RES_Q_REV, arg)) == NULL) {
		cb(arg, NULL);
		res_leave(r);
		return NULL;
	}
	q->name_cb = cb;
	q->client = ip;
	rv = calloc(1, sizeof(*rv));
	if (rv == NULL) {
		res_query_fire(q, RES_ERROR, NULL);
		res_leave(r);
		return NULL;
	}
	rv->magic = RES_REV_MAGIC;
	rv->r = r;
	rv->q = q;
	q->rev = rv;
	r->st.queries++;
	rv->starting = 1;
	ares_gethostbyaddr(r->ch, ip.b, ip.family == AF_INET ? 4 : 16, ip.family, res_ptr_done, rv);
	rv->starting = 0;
	int waiting = 1;
	if (rv->parked)
		waiting = res_rev_finish(rv);
	if (r->dying)
		waiting = 0;
	res_leave(r);
	return waiting ? q : NULL;
}

/* ---- c-ares socket I/O: plain system calls, plus a look at error answers ---- */

/* c-ares 1.18 treats SERVFAIL and REFUSED answers as a failed server: it tries the next one
 * and, when none is left, ends the query with ARES_ECONNREFUSED, as if the servers were
 * unreachable. ARES_FLAG_NOCHECKRESP would pass the rcode through but also turns off the
 * question check on answers, so instead the UDP receive path notes such an answer on the
 * pending entry it belongs to (its question name is the entry's name, possibly with a search
 * domain appended). An unmatched or spoofed datagram can at worst change an error's text. */
static void
res_note_rcode(struct res *r, const unsigned char *p, size_t n)
{
	char key[RES_NAME_MAX + 1];
	size_t pos = 12, kl = 0;
	int rcode = p[3] & 0x0f;

	if (!(p[2] & 0x80) || (rcode != 2 && rcode != 5) || p[4] != 0 || p[5] != 1)
		return;
	for (int labels = 0; labels < 128; labels++) {
		if (pos >= n)
			return;
		size_t l = p[pos++];
		if (l == 0)
			break;
		if (l > 63 || pos + l > n || kl + l + 1 > RES_NAME_MAX)
			return;
		if (kl > 0)
			key[kl++] = '.';
		for (size_t i = 0; i < l; i++) {
			unsigned char c = p[pos + i];
			key[kl++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
		}
		pos += l;
	}
	/* The whole name, then shorter and shorter prefixes ending at a label boundary. */
	for (size_t len = kl; len > 0; len--) {
		if (len < kl && key[len] != '.')
			continue;
		struct res_ent *e = res_cache_find(r, key, len, res_cache_hash(r, key, len));
		if (e != NULL && e->pending) {
			e->bad_status = rcode == 2 ? RES_SERVFAIL : RES_REFUSED;
			return;
		}
	}
}

static ares_socket_t
res_io_socket(int domain, int type, int protocol, void *ud)
{
	(void)ud;
	return socket(domain, type | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol);
}

static int
res_io_close(ares_socket_t fd, void *ud)
{
	(void)ud;
	return close(fd);
}

static int
res_io_connect(ares_socket_t fd, const struct sockaddr *sa, ares_socklen_t len, void *ud)
{
	(void)ud;
	return connect(fd, sa, len);
}

static ares_ssize_t
res_io_recvfrom(ares_socket_t fd, void *buf, size_t len, int flags, struct sockaddr *from,
		ares_socklen_t *fromlen, void *ud)
{
	struct res *r = ud;
	ssize_t n = recvfrom(fd, buf, len, flags, from, fromlen);
	/* c-ares passes an address only for UDP, where one datagram is one whole answer. */
	if (n >= 12 && from != NULL && r != NULL && r->magic == RES_MAGIC && !r->destroying)
		res_note_rcode(r, buf, (size_t)n);
	return n;
}

static ares_ssize_t
res_io_sendv(ares_socket_t fd, const struct iovec *iov, int iovcnt, void *ud)
{
	(void)ud;
	return writev(fd, iov, iovcnt);
}

static const struct ares_socket_functions res_io_funcs = {
	.asocket = res_io_socket,
	.aclose = res_io_close,
	.aconnect = res_io_connect,
	.arecvfrom = res_io_recvfrom,
	.asendv = res_io_sendv,
};

/* ---- c-ares sockets on the loop ---- */

static void
res_sock_free_hook(struct ev_loop *loop, void *arg)
{
	(void)loop;
	free(arg);
}

/* Stop watching a socket c-ares is about to close; free it after the dispatch batch. */
static void
res_sock_retire(struct res *r, struct res_sock *s)
{
	ev_io_stop(&s->io);
	s->magic = RES_DEAD_MAGIC;
	s->r = NULL;
	if (ev_defer(r->loop, res_sock_free_hook, s) < 0) {
		s->next = r->grave;
		r->grave = s;
	}
}

static void
res_sock_ready(struct ev_io *io, unsigned revents)
{
	struct res_sock *s = io->arg;
	if (s == NULL || s->magic != RES_SOCK_MAGIC)
		return;
	struct res *r = s->r;
	ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;

	if (revents & (EV_READ | EV_ERROR))
		rfd = io->fd; /* a pending error (ICMP unreachable) is reported by the read */
	if (revents & EV_WRITE)
		wfd = io->fd;
	res_enter(r);
	ares_process_fd(r->ch, rfd, wfd); /* may retire s and other sockets */
	res_leave(r);
}

static void
res_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct res *r = data;
	struct res_sock *s, **pp;

	for (pp = &r->socks; (s = *pp) != NULL; pp = &s->next)
		if (s->io.fd == fd)
			break;
	if (!readable && !writable) {
		if (s != NULL) {
			*pp = s->next;
			res_sock_retire(r, s);
		}
		return;
	}
	if (s == NULL) {
		if (r->destroying)
			return;
		s = calloc(1, sizeof(*s));
		if (s == NULL)
			return; /* the query will time out */
		s->magic = RES_SOCK_MAGIC;
		s->r = r;
		ev_io_init(&s->io, fd, res_sock_ready, s);
		s->next = r->socks;
		r->socks = s;
	}
	unsigned ev = (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);
	if (ev_io_set(r->loop, &s->io, ev) < 0) {
		/* e.g. the fd number was closed behind our back and reused: register afresh. */
		ev_io_stop(&s->io);
		(void)ev_io_set(r->loop, &s->io, ev);
	}
}

static void
res_timer_cb(struct ev_timer *t)
{
	struct res *r = t->arg;
	if (r == NULL || r->magic != RES_MAGIC)
		return;
	res_enter(r);
	ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	res_leave(r);
}

/* ---- lifetime ---- */

static const char *
res_conf_check(const struct res_conf *c)
{
	if (c->nservers > RES_MAX_SERVERS)
		return "too many DNS servers";
	for (unsigned i = 0; i < c->nservers; i++) {
		sa_family_t f = c->servers[i].ss_family;
		if (f != AF_INET && f != AF_INET6)
			return "DNS server must be an IPv4 or IPv6 address";
	}
	if (c->timeout_ms < 1 || c->timeout_ms > 60000)
		return "DNS timeout must be between 1 and 60000 ms";
	if (c->tries < 1 || c->tries > 10)
		return "DNS tries must be between 1 and 10";
	if (c->ttl_min > c->ttl_max)
		return "DNS TTL floor is above the ceiling";
	if (c->ttl_max > 7 * 86400 || c->neg_ttl > 7 * 86400)
		return "DNS TTL above one week";
	return NULL;
}

static const char *
res_ares_init_err(int rc)
{
	switch (rc) {
	case ARES_ENOMEM:
		return "out of memory creating the DNS resolver";
	case ARES_EFILE:
		return "cannot read the resolver configuration (/etc/resolv.conf)";
	default:
		return "cannot initialise the DNS resolver (c-ares)";
	}
}

int
res_new(struct res **resp, struct ev_loop *loop, const struct res_conf *conf, const char **err)
{
	struct res_conf defc;
	struct ares_options opts;
	struct ares_addr_port_node nodes[RES_MAX_SERVERS];
	struct res *r = NULL;
	const char *msg;
	int rc;

	*resp = NULL;
	if (loop == NULL) {
		*err = "no event loop for the resolver";
		return -1;
	}
	if (conf == NULL) {
		res_conf_default(&defc);
		conf = &defc;
	}
	if ((msg = res_conf_check(conf)) != NULL) {
		*err = msg;
		return -1;
	}
	pthread_once(&res_lib_once, res_lib_init);
	if (res_lib_rc != ARES_SUCCESS) {
		*err = "cannot initialise the c-ares library";
		return -1;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		*err = "out of memory creating the DNS resolver";
		return -1;
	}
	r->magic = RES_MAGIC;
	r->loop = loop;
	r->conf = *conf;
	ev_timer_init(&r->timer, res_timer_cb, r);
	if (res_cache_init(r) < 0) {
		*err = "out of memory creating the DNS resolver";
		goto fail;
	}

	memset(&opts, 0, sizeof(opts));
	opts.timeout = (int)conf->timeout_ms;
	opts.tries = (int)conf->tries;
	opts.sock_state_cb = res_sock_state;
	opts.sock_state_cb_data = r;
	rc = ares_init_options(&r->ch, &opts, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
			       ARES_OPT_SOCK_STATE_CB | ARES_OPT_NOROTATE);
	if (rc != ARES_SUCCESS) {
		*err = res_ares_init_err(rc);
		goto fail;
	}
	r->have_ch = 1;
	ares_set_socket_functions(r->ch, &res_io_funcs, r);

	if (conf->nservers > 0) {
		memset(nodes, 0, sizeof(nodes));
		for (unsigned i = 0; i < conf->nservers; i++) {
			const struct sockaddr_storage *ss = &conf->servers[i];
			unsigned port;
			nodes[i].family = ss->ss_family;
			if (ss->ss_family == AF_INET) {
				const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
				nodes[i].addr.addr4 = sin->sin_addr;
				port = ntohs(sin->sin_port);
			} else {
				const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
				memcpy(&nodes[i].addr.addr6, &sin6->sin6_addr, 16);
				port = ntohs(sin6->sin6_port);
			}
			nodes[i].udp_port = nodes[i].tcp_port = (int)(port ? port : 53);
			nodes[i].next = i + 1 < conf->nservers ? &nodes[i + 1] : NULL;
		}
		rc = ares_set_servers_ports(r->ch, &nodes[0]);
		if (rc != ARES_SUCCESS) {
			*err = rc == ARES_ENOMEM ? "out of memory setting the DNS servers"
						 : "cannot set the DNS servers";
			goto fail;
		}
	}
	*resp = r;
	return 0;
fail:
	res_destroy(r);
	return -1;
}

static void
res_destroy(struct res *r)
{
	r->destroying = 1;
	ev_timer_stop(&r->timer);
	if (r->have_ch)
		ares_destroy(r->ch); /* EDESTRUCTION callbacks, then socket states 0/0 */
	r->have_ch = 0;
	/* Bounded by the list lengths: each turn removes one. */
	while (r->socks != NULL) {
		struct res_sock *s = r->socks;
		r->socks = s->next;
		res_sock_retire(r, s);
	}
	while (r->grave != NULL) {
		struct res_sock *s = r->grave;
		r->grave = s->next;
		free(s);
	}
	res_cache_destroy(r);
	r->magic = RES_DEAD_MAGIC;
	free(r);
}

void
res_free(struct res **resp)
{
	if (resp == NULL || *resp == NULL)
		return;
	struct res *r = *resp;
	*resp = NULL;
	if (r->magic != RES_MAGIC)
		return;
	/* Bounded: each turn frees the head query. No callbacks run. */
	while (r->all != NULL)
		res_query_release(r->all);
	if (r->busy > 0) {
		r->dying = 1; /* the outermost entry point destroys on its way out */
		return;
	}
	res_destroy(r);
}

int
res_conf_differs(const struct res_conf *a, const struct res_conf *b)
{
	if (a->nservers != b->nservers || a->timeout_ms != b->timeout_ms || a->tries != b->tries ||
	    a->ttl_min != b->ttl_min || a->ttl_max != b->ttl_max || a->neg_ttl != b->neg_ttl ||
	    a->cache_max != b->cache_max)
		return 1;
	for (unsigned i = 0; i < a->nservers && i < RES_MAX_SERVERS; i++)
		if (memcmp(&a->servers[i], &b->servers[i], sizeof(a->servers[i])) != 0)
			return 1;
	return 0;
}

int
res_idle(const struct res *r)
{
	return r == NULL || (r->all == NULL && !r->busy);
}

size_t
res_free_idle(struct res **v, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (res_idle(v[i]))
			res_free(&v[i]);
		else
			v[k++] = v[i];
	}
	return k;
}

void
res_stats_get(const struct res *r, struct res_stats *out)
{
	if (r == NULL || r->magic != RES_MAGIC) {
		memset(out, 0, sizeof(*out));
		return;
	}
	*out = r->st;
	out->cache_entries = r->ncached;
}
