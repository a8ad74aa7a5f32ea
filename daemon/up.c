/*
 * up.c - upstream connections: non-blocking connect across every resolved address within one
 * overall deadline, and the per-worker pool of idle keep-alive connections.
 *
 * States: CONNECTING (this file drives it, then calls the owner back), BUSY (events go to
 * proxy.c through proxy_up_io; the owner's timer times them), IDLE (pooled: read interest kept so a close
 * or stray bytes from the server retire it), DEAD (closed, freed after the dispatch batch).
 * A pooled connection is peeked at before reuse (up_pool_take), so a close whose event is
 * still queued does not cost a request; one that crosses our request on the wire still can:
 * proxy.c replays idempotent requests once on a fresh connection (conn_up_gone).
 *
 * TLS (an https parent or origin, issue 13): once TCP is connected the handshake runs in the
 * CONNECTING state, on the loop (interest from stream_interest), within the same deadline; the
 * owner is called back only when it is done, so a certificate that does not verify is a failed
 * connect like a refusal: the next address is tried, and the owner fails over. A pooled TLS
 * connection is read through the stream while idle, so a record the server sends after the
 * handshake (TLS 1.3 session tickets) is consumed instead of being taken for a close.
 */
#include "daemon/worker.h"
#include "daemon/ftp.h"
#include "daemon/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define UP_BUF_CAP (256 * 1024)
#define UP_MAX_IDLE 512
#define UP_MAX_IDLE_PER_KEY 64

static void up_io_cb(struct ev_io *io, unsigned revents);
static void up_tmo_cb(struct ev_timer *t);
static void up_connect_next(struct up *u);

/* ---- the byte stream: the transport (u->s: TCP, or TLS to an https parent or origin) ---- */

static ssize_t
tcp_read(struct up *u, struct buf *b)
{
	return stream_read(&u->s, b);
}

static ssize_t
tcp_write(struct up *u, struct buf *b)
{
	return stream_write(&u->s, b, 0);
}

static void
tcp_shutdown_wr(struct up *u)
{
	(void)stream_shutdown_wr(&u->s);
}

static int
tcp_want(struct up *u, unsigned events)
{
	if (events == 0) {
		ev_io_stop(&u->io);
		return 0;
	}
	return ev_io_set(u->w->loop, &u->io, stream_interest(&u->s, events));
}

static int
tcp_pending(struct up *u)
{
	return stream_pending(&u->s);
}

/* Read what an idle connection received through the stream: a TLS stream consumes records
 * that carry no data (session tickets, key updates) and says EAGAIN. 1 still usable, 0 the
 * server closed it or sent bytes nobody asked for. */
static int
tcp_idle_read(struct up *u)
{
	if (stream_pending(&u->s))
		return 0;
	ssize_t n = stream_read(&u->s, &u->in);
	int ok = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
	buf_release(&u->in);
	return ok && !stream_pending(&u->s);
}

/* Is an idle connection still usable? The server may have closed it (or sent something
 * unsolicited) after the loop last looked, and the event is still queued: a request sent on
 * it would meet the close. One recv per reuse, on misses only: "nothing to read" is usable;
 * on TLS, bytes waiting may be a record without data, read through the stream. */
static int
tcp_idle_usable(struct up *u)
{
	char b;
	ssize_t n = recv(u->s.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return !stream_is_tls(&u->s) || !stream_pending(&u->s);
	return n > 0 && stream_is_tls(&u->s) && tcp_idle_read(u);
}

static int
tcp_idle(struct up *u)
{
	return ev_io_set(u->w->loop, &u->io, stream_interest(&u->s, EV_READ));
}

static void
tcp_close(struct up *u)
{
	stream_release(&u->s);
	if (u->s.fd >= 0) {
		ev_io_stop(&u->io);
		close(u->s.fd);
		u->s.fd = -1;
	}
}

const struct up_stream up_tcp = {
	.name = "tcp",
	.read = tcp_read,
	.write = tcp_write,
	.shutdown_wr = tcp_shutdown_wr,
	.want = tcp_want,
	.pending = tcp_pending,
	.idle_usable = tcp_idle_usable,
	.idle = tcp_idle,
	.close = tcp_close,
};

const char *
gh_addr_text(const struct sockaddr_storage *ss, char *buf, size_t len, int with_port)
{
	char a[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		port = ntohs(s4->sin_port);
		if (with_port)
			snprintf(buf, len, "%s:%u", a, port);
		else
			snprintf(buf, len, "%s", a);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		port = ntohs(s6->sin6_port);
		/* v4-mapped clients on a dual-stack listener are shown as IPv4 */
		if (strncmp(a, "::ffff:", 7) == 0 && strchr(a + 7, '.') != NULL) {
			if (with_port)
				snprintf(buf, len, "%s:%u", a + 7, port);
			else
				snprintf(buf, len, "%s", a + 7);
		} else if (with_port) {
			snprintf(buf, len, "[%s]:%u", a, port);
		} else {
			snprintf(buf, len, "%s", a);
		}
	} else {
		snprintf(buf, len, "?");
	}
	return buf;
}

static unsigned
up_hash(const char *key)
{
	unsigned h = 2166136261u;
	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 16777619u;
	return h % UP_POOL_BUCKETS;
}

static struct up *
up_alloc(struct worker *w, const char *key)
{
	struct up *u = calloc(1, sizeof(*u));
	if (u == NULL)
		return NULL;
	u->magic = UP_MAGIC;
	u->w = w;
	w->st.ups_open++;
	stream_tcp_init(&u->s, -1);
	u->st = &up_tcp;
	buf_init(&u->in, UP_BUF_CAP);
	buf_init(&u->out, UP_BUF_CAP);
	snprintf(u->key, sizeof(u->key), "%s", key);
	ev_timer_init(&u->tmo, up_tmo_cb, u);
	return u;
}

static void
up_free_deferred(struct ev_loop *loop, void *arg)
{
	(void)loop;
	struct up *u = arg;
	u->w->st.ups_open--;
	buf_fini(&u->in);
	buf_fini(&u->out);
	u->magic = 0;
	free(u);
	buf_freed_add(sizeof(*u));
}

static void
up_pool_unlink(struct up *u)
{
	struct worker *w = u->w;
	if (u->hprev)
		u->hprev->hnext = u->hnext;
	else
		w->pool[up_hash(u->key)] = u->hnext;
	if (u->hnext)
		u->hnext->hprev = u->hprev;
	if (u->lprev)
		u->lprev->lnext = u->lnext;
	else
		w->idle_head = u->lnext;
	if (u->lnext)
		u->lnext->lprev = u->lprev;
	else
		w->idle_tail = u->lprev;
	u->hnext = u->hprev = u->lnext = u->lprev = NULL;
	w->nidle--;
}

void
up_close(struct up *u)
{
	if (u->magic != UP_MAGIC || u->state == UP_DEAD)
		return;
	if (u->state == UP_IDLE)
		up_pool_unlink(u);
	u->st->close(u);
	ev_timer_stop(&u->tmo);
	u->state = UP_DEAD;
	u->owner = NULL;
	tls_set_release(u->tls);
	u->tls = NULL;
	if (ev_defer(u->w->loop, up_free_deferred, u) < 0)
		log_error("out of memory deferring an upstream free; leaking it");
}

struct up *
up_pool_take(struct worker *w, const char *key)
{
	struct up *next;
	for (struct up *u = w->pool[up_hash(key)]; u != NULL; u = next) {
		next = u->hnext;
		if (strcmp(u->key, key) != 0)
			continue;
		if (!u->st->idle_usable(u)) {
			up_close(u); /* unlinks it; next is still in the bucket */
			continue;
		}
		up_pool_unlink(u);
		ev_timer_stop(&u->tmo);
		u->state = UP_BUSY;
		w->st.up_reused++;
		return u;
	}
	return NULL;
}

void
up_release(struct up *u, int reusable)
{
	struct worker *w = u->w;
	u->owner = NULL;
	ev_timer_stop(&u->tmo);
	if (!reusable || w->stopping || buf_len(&u->in) != 0 || buf_len(&u->out) != 0) {
		up_close(u);
		return;
	}
	/* Bound the pool: per key and overall, oldest out first. */
	size_t same = 0;
	for (struct up *p = w->pool[up_hash(u->key)]; p != NULL; p = p->hnext)
		if (strcmp(p->key, u->key) == 0)
			same++;
	if (same >= UP_MAX_IDLE_PER_KEY) {
		up_close(u);
		return;
	}
	if (w->nidle >= UP_MAX_IDLE && w->idle_head)
		up_close(w->idle_head);
	buf_release(&u->in);
	buf_release(&u->out);
	u->state = UP_IDLE;
	u->idle_since = ev_now(w->loop);
	unsigned h = up_hash(u->key);
	u->hnext = w->pool[h];
	if (u->hnext)
		u->hnext->hprev = u;
	u->hprev = NULL;
	w->pool[h] = u;
	u->lprev = w->idle_tail;
	u->lnext = NULL;
	if (w->idle_tail)
		w->idle_tail->lnext = u;
	else
		w->idle_head = u;
	w->idle_tail = u;
	w->nidle++;
	if (u->st->idle(u) < 0)
		up_close(u);
	else
		ev_timer_start(w->loop, &u->tmo, w->cfg->upstream_idle_ms);
}

void
up_pool_expire(struct worker *w)
{
	uint64_t now = ev_now(w->loop);
	while (w->idle_head && now - w->idle_head->idle_since >= w->cfg->upstream_idle_ms)
		up_close(w->idle_head);
}

void
up_pool_clear(struct worker *w)
{
	while (w->idle_head)
		up_close(w->idle_head);
}

static void
up_connect_fail(struct up *u, int how)
{
	struct conn *c = u->owner;
	up_connected_f *cb = u->cb;
	char err[sizeof(u->err)];
	snprintf(err, sizeof(err), "%s", u->err);
	up_close(u);
	cb(c, NULL, err, how);
}

/* Errors that say this process, not the peer, ran out of something: descriptors, memory, or
 * local ports (EADDRNOTAVAIL from connect() on TCP). Trying the next address cannot help. */
static int
up_errno_is_local(int e)
{
	return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM || e == EADDRNOTAVAIL;
}

static void
up_note_err(struct up *u, const char *what)
{
	size_t n = strlen(u->err);
	snprintf(u->err + n, sizeof(u->err) - n, "%sconnect to %s %s", n ? "; " : "", u->addr_text,
	         what);
}

static const char *
up_errno_text(int e)
{
	switch (e) {
	case ECONNREFUSED: return "refused";
	case ETIMEDOUT: return "timed out";
	case ENETUNREACH: return "failed: network unreachable";
	case EHOSTUNREACH: return "failed: host unreachable";
	case EADDRNOTAVAIL: return "failed: this proxy has no local port left";
	case EMFILE: return "failed: this proxy is out of file descriptors";
	case ENFILE: return "failed: the system is out of file descriptors";
	case EAFNOSUPPORT: return "failed: address family not supported";
	default: return strerror(e);
	}
}

static void
up_connect_next(struct up *u)
{
	struct worker *w = u->w;
	u->handshaking = 0;
	for (;;) {
		if (u->s.fd >= 0) {
			ev_io_stop(&u->io);
			stream_release(&u->s);
			close(u->s.fd);
			u->s.fd = -1;
		}
		uint64_t now = ev_now(w->loop);
		if (u->ai >= u->addrs.n || now >= u->deadline) {
			if (u->ai < u->addrs.n && u->err[0] == '\0') {
				gh_addr_text(&u->addrs.a[u->ai], u->addr_text, sizeof(u->addr_text), 1);
				up_note_err(u, "timed out");
			}
			up_connect_fail(u, u->local_fail                           ? UP_FAIL_LOCAL
			                   : u->tls_fail                           ? UP_FAIL_TLS
			                   : u->timed_out || now >= u->deadline ? UP_FAIL_TIMEOUT
			                                                        : UP_FAIL_PEER);
			return;
		}
		const struct sockaddr_storage *sa = &u->addrs.a[u->ai++];
		u->tls_fail = 0; /* UP_FAIL_TLS says what the last address did */
		u->addr = *sa;
		gh_addr_text(sa, u->addr_text, sizeof(u->addr_text), 1);
		socklen_t len = sa->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
		                                          : sizeof(struct sockaddr_in);
		int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			int e = errno;
			up_note_err(u, up_errno_text(e));
			if (up_errno_is_local(e)) {
				u->local_fail = 1;
				u->ai = u->addrs.n;
			}
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		stream_tcp_init(&u->s, fd);
		ev_io_init(&u->io, fd, up_io_cb, u);
		w->st.up_connects++;
		if (connect(fd, (const struct sockaddr *)sa, len) == 0 || errno == EINPROGRESS) {
			if (ev_io_set(w->loop, &u->io, EV_WRITE) < 0) {
				up_note_err(u, "failed: epoll");
				continue;
			}
			/* Each address gets an equal share of what is left, at least 1 s, so one
			 * black-holed address does not eat the whole ProxyTimeout. */
			uint64_t left = u->deadline - now;
			unsigned remaining = u->addrs.n - u->ai + 1;
			uint64_t slice = left / remaining;
			if (slice < 1000)
				slice = left < 1000 ? left : 1000;
			ev_timer_start(w->loop, &u->tmo, slice);
			return;
		}
		int e = errno;
		up_note_err(u, up_errno_text(e));
		if (up_errno_is_local(e)) {
			u->local_fail = 1;
			u->ai = u->addrs.n;
		}
	}
}

/* Connected (and through TLS when asked): the owner's turn. */
static void
up_connect_done(struct up *u)
{
	ev_timer_stop(&u->tmo);
	u->handshaking = 0;
	u->tls_fail = 0;
	u->state = UP_BUSY;
	if (u->attach != NULL && u->attach(u) < 0) {
		/* The stream could not take the connection over (out of memory here). */
		u->local_fail = 1;
		up_note_err(u, "failed: out of memory");
		u->ai = u->addrs.n;
		up_connect_next(u);
		return;
	}
	u->cb(u->owner, u, NULL, 0);
}

static void
up_note_tls(struct up *u, const char *what)
{
	size_t n = strlen(u->err);
	snprintf(u->err + n, sizeof(u->err) - n, "%sTLS handshake with %s %s", n ? "; " : "",
	         u->addr_text, what);
}

/* Drive the TLS handshake: done, wait for the loop, or fail over to the next address. */
static void
up_tls_step(struct up *u)
{
	int r = tls_handshake(&u->s);
	if (r > 0) {
		up_connect_done(u);
		return;
	}
	if (r == 0) {
		if (ev_io_set(u->w->loop, &u->io, stream_interest(&u->s, 0)) == 0)
			return;
		up_note_tls(u, "failed: epoll");
	} else {
		char why[200];
		const char *e = stream_error(&u->s);
		snprintf(why, sizeof(why), "failed: %s", *e ? e : strerror(errno ? errno : EPROTO));
		up_note_tls(u, why);
		u->tls_fail = 1;
	}
	ev_timer_stop(&u->tmo);
	up_connect_next(u);
}

/* TCP is connected: start TLS on it. The handshake gets what is left of the deadline (at
 * least 1 s, as a connect does), not just this address's connect slice. */
static void
up_tls_start(struct up *u)
{
	struct worker *w = u->w;
	char sess[300];
	char port[8];
	const char *colon = strrchr(u->addr_text, ':');
	snprintf(port, sizeof(port), "%s", colon ? colon + 1 : "0");
	snprintf(sess, sizeof(sess), strchr(u->tls_host, ':') ? "[%s]:%s" : "%s:%s", u->tls_host,
	         port);
	ev_timer_stop(&u->tmo);
	if (u->tls == NULL || tls_connect(&u->s, u->tls, u->tls_host, sess, NULL) < 0) {
		up_note_tls(u, u->tls == NULL ? "failed: TLS is not set up in this process"
		                              : "failed: out of memory");
		u->local_fail = 1;
		u->ai = u->addrs.n;
		up_connect_next(u);
		return;
	}
	u->handshaking = 1;
	uint64_t now = ev_now(w->loop);
	uint64_t left = u->deadline > now ? u->deadline - now : 0;
	ev_timer_start(w->loop, &u->tmo, left < 1000 ? 1000 : left);
	up_tls_step(u);
}

static void
up_connect_ready(struct up *u)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(u->s.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0) {
		ev_timer_stop(&u->tmo);
		up_note_err(u, up_errno_text(err));
		up_connect_next(u);
		return;
	}
	if (u->tls_host[0] != '\0') {
		up_tls_start(u);
		return;
	}
	up_connect_done(u);
}

static void
up_io_cb(struct ev_io *io, unsigned revents)
{
	struct up *u = io->arg;
	if (u->magic != UP_MAGIC)
		return;
	switch (u->state) {
	case UP_CONNECTING:
		if (u->handshaking)
			up_tls_step(u);
		else
			up_connect_ready(u);
		break;
	case UP_BUSY:
		proxy_up_io(u, stream_ready(&u->s, revents) | (revents & EV_ERROR));
		break;
	case UP_IDLE:
		/* The server closed or sent something unsolicited: either way it is done. A TLS
		 * record without data (a session ticket) is read and the connection stays. */
		if (!tcp_idle_read(u) || (stream_is_tls(&u->s) && tcp_idle(u) < 0))
			up_close(u);
		break;
	default:
		break;
	}
}

static void
up_tmo_cb(struct ev_timer *t)
{
	struct up *u = t->arg;
	if (u->magic != UP_MAGIC)
		return;
	switch (u->state) {
	case UP_CONNECTING:
		if (u->s.fd >= 0) { /* else: the first attempt, started on this turn */
			u->timed_out = 1;
			if (u->handshaking)
				up_note_tls(u, "timed out");
			else
				up_note_err(u, "timed out");
		}
		up_connect_next(u);
		break;
	case UP_IDLE:
		up_close(u);
		break;
	default:
		break;
	}
}

struct up *
up_connect(struct worker *w, struct conn *owner, const char *key, const struct res_addrs *addrs,
           unsigned timeout_ms, const char *scheme, struct tls_set *tls, const char *tls_host,
           up_connected_f *cb)
{
	struct up *u = up_alloc(w, key);
	if (u == NULL)
		return NULL;
	if (tls_host != NULL) {
		snprintf(u->tls_host, sizeof(u->tls_host), "%s", tls_host);
		u->tls = tls;
		if (tls != NULL)
			tls_set_ref(tls);
	}
	/* What the connection becomes once connected: the streams by scheme. */
	if (scheme != NULL && strcmp(scheme, "ftp") == 0)
		u->attach = ftp_attach;
	u->state = UP_CONNECTING;
	u->owner = owner;
	u->cb = cb;
	u->addrs = *addrs;
	u->deadline = ev_now(w->loop) + timeout_ms;
	/* Never call the owner back synchronously: start on the next turn. */
	ev_timer_start(w->loop, &u->tmo, 0);
	return u;
}

int
up_shutdown_wr(struct up *u)
{
	if (u->st == &up_tcp)
		return stream_shutdown_wr(&u->s);
	u->st->shutdown_wr(u);
	return 0;
}
