/*
 * worker.c - worker threads: each owns an event loop, SO_REUSEPORT listeners on every Listen
 * address, a resolver and its connections. main.c talks to a worker only through
 * worker_set_cfg / worker_stop / worker_listen_add / worker_listen_remove, which post to the
 * loop with ev_async_send.
 *
 * Listeners live in a fixed array of CFG_MAX_LISTEN slots (their ev_io is registered with the
 * loop by address, so the array never moves); a reload frees and reuses slots. main never
 * posts more live listeners than CFG_MAX_LISTEN, as it removes before it adds.
 *
 * Out of descriptors (or kernel memory) at accept, the connection stays in the kernel's queue
 * and the listener stays readable: a level-triggered loop would call accept again at once,
 * forever. So the worker stops watching its listeners for WORKER_ACCEPT_PAUSE_MS and tries
 * again; connections already open are served meanwhile. The error line is said at most once
 * a second per process, with the count of failures it did not repeat.
 *
 * A listener from a "Listen ... https" line (issue 13) hands the worker's current snapshot's
 * TLS set to conn_accept: the connection keeps that set (its SSL holds the context) after a
 * reload, while the next clients get the reloaded certificate.
 */
#include "daemon/worker.h"

#include "daemon/cachereq.h"
#include "daemon/pauth.h"
#include "daemon/polres.h"
#include "daemon/status.h"
#include "daemon/tls.h"
#include "daemon/uicache.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WORKER_MAGIC 0x3017e700u
#define WORKER_ACCEPT_BATCH 64
#define WORKER_TRIM_MS 1000           /* how often a worker looks at the memory it freed */
#define WORKER_TRIM_BYTES (4u << 20)  /* freed since the last trim that makes a trim worth it */
#define WORKER_ACCEPT_PAUSE_MS 250  /* listeners unwatched after EMFILE and friends */
#define WORKER_ACCEPT_LOG_MS 1000   /* one "accept: ..." line per second at most */
/* Unsent bytes a client socket may hold in the kernel (TCP_NOTSENT_LOWAT): one drive's share
 * (CONN_SLICE in proxy.c). Without it the kernel takes a whole 4 MiB hit into
 * an autotuned send buffer in one go, and the rate each client gets is set by its receive
 * window and the kernel instead of the loop's round-robin over connections. */
#define WORKER_NOTSENT_LOWAT (128 * 1024)

/* A client nearer than WORKER_NEAR_RTT_US (the handshake's round trip: loopback, a LAN) gets a
 * fixed send buffer of WORKER_NEAR_SNDBUF instead of the kernel's autotuned one. Autotuning
 * lets a client that reads fast queue megabytes in its socket (the send buffer and its
 * receive window grow together), while one that was slow at first keeps a window of 64 KiB:
 * when the clients are CPU-bound, each reads whatever is queued per wakeup, so their shares
 * diverge (issue 10, item 10: 64 wrk clients of 4 MiB hits, the slowest got 2 answers in
 * 8 s, the fastest 19, with megabytes queued for both). A fixed buffer keeps what each socket
 * holds equal, so the loop's round robin sets the shares. At that distance 64 KiB (128 KiB
 * as the kernel counts) in flight still carries over 200 MB/s per connection; farther
 * clients need the bandwidth-delay product and keep autotuning. */
#define WORKER_NEAR_RTT_US 500
#define WORKER_NEAR_SNDBUF (64 * 1024)

/* The last "accept: ..." line (ev_now ms, CLOCK_MONOTONIC: the same in every worker) and the
 * failures since that were not logged, shared by the workers. */
static _Atomic uint64_t worker_accept_logged_at;
static atomic_uint worker_accept_quiet;

struct gh_shared gh;

/* A listener change posted by main (worker_listen_add/_remove), applied by the worker. */
struct worker_lop {
	int fd;
	int add;                      /* 1 add, 0 remove */
	int https;                    /* add: a TLS listener */
	struct worker_lop *next;
};

int
worker_listen_open(const struct cfg_listen *l, const char **err)
{
	int fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*err = strerror(errno);
		return -1;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
		*err = strerror(errno);
		close(fd);
		return -1;
	}
	if (l->addr.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	/* Set once here rather than per client: Linux gives an accepted socket a copy of its
	 * listener's TCP options (tests/integration/test_keepalive.py checks both). Best effort:
	 * TCP_NOTSENT_LOWAT is unknown before Linux 3.12. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int lowat = WORKER_NOTSENT_LOWAT;
	setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof(lowat));
	if (bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) < 0 || listen(fd, 1024) < 0) {
		*err = strerror(errno);
		close(fd);
		return -1;
	}
	return fd;
}

const char *
worker_http_date(struct worker *w)
{
	time_t now = (time_t)(ev_wall_us(w->loop) / 1000000);
	if ((int64_t)now != w->date_sec || w->date[0] == '\0') {
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(w->date, sizeof(w->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		w->date_sec = (int64_t)now;
	}
	return w->date;
}

/* Watch every listener of w, or unregister them all (not merely no interest: epoll would
 * still report an error condition on them). */
static void
worker_listeners_watch(struct worker *w, int on)
{
	for (size_t i = 0; i < w->nlisteners; i++) {
		struct listener *ls = &w->listeners[i];
		int rc;

		if (ls->fd < 0)
			continue;
		if (!on) {
			ev_io_stop(&ls->io);
			continue;
		}
		rc = ev_io_set(w->loop, &ls->io, EV_READ);
		if (rc < 0)
			log_error("worker %u: cannot watch a listening socket: %s", w->id,
			          strerror(-rc));
	}
}

static void
worker_accept_resume_cb(struct ev_timer *t)
{
	struct worker *w = t->arg;

	w->accept_paused = 0;
	if (!w->stopping)
		worker_listeners_watch(w, 1);
}

/* accept failed for want of descriptors or memory (err): pause, and say so now and then. */
static void
worker_accept_starved(struct worker *w, int err)
{
	uint64_t now = ev_now(w->loop);
	uint64_t last = atomic_load(&worker_accept_logged_at);

	if ((last == 0 || now - last >= WORKER_ACCEPT_LOG_MS) &&
	    atomic_compare_exchange_strong(&worker_accept_logged_at, &last, now)) {
		unsigned quiet = atomic_exchange(&worker_accept_quiet, 0);
		const char *hint = err == EMFILE || err == ENFILE ?
		                   "raise the file limit or lower MaxConnections" :
		                   "the kernel is short of memory";
		char more[64] = "";

		if (quiet > 0)
			snprintf(more, sizeof(more), "%u more like this since the last line; ",
			         quiet);
		log_error("accept: %s: new connections wait %u ms (%s%s)", strerror(err),
		          WORKER_ACCEPT_PAUSE_MS, more, hint);
	} else {
		atomic_fetch_add(&worker_accept_quiet, 1);
	}
	if (w->accept_paused)
		return;
	w->accept_paused = 1;
	worker_listeners_watch(w, 0);
	ev_timer_start(w->loop, &w->accept_pause, WORKER_ACCEPT_PAUSE_MS);
}

/* A client's send buffer: SendBufferSize bytes when it is given (0: the kernel's autotuning,
 * as Apache's 0), else WORKER_NEAR_SNDBUF for a near client. Best effort: a failed TCP_INFO
 * leaves autotuning on. */
static void
worker_sndbuf_set(int fd, unsigned configured)
{
	int sndbuf = (int)configured;

	if (configured == 0)
		return;
	if (configured == CFG_SNDBUF_NEAR) {
		struct tcp_info ti;
		socklen_t len = sizeof(ti);

		memset(&ti, 0, sizeof(ti));
		if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 || ti.tcpi_rtt == 0 ||
		    ti.tcpi_rtt >= WORKER_NEAR_RTT_US)
			return;
		sndbuf = WORKER_NEAR_SNDBUF;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
}

static void
worker_accept_cb(struct ev_io *io, unsigned revents)
{
	(void)revents;
	struct listener *ls = io->arg;
	struct worker *w = ls->w;
	for (int i = 0; i < WORKER_ACCEPT_BATCH; i++) {
		struct sockaddr_storage peer, local;
		socklen_t plen = sizeof(peer), llen = sizeof(local);
		int fd = accept4(ls->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			int e = errno;

			if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM)
				worker_accept_starved(w, e);
			else if (e == ECONNABORTED || e == EINTR)
				continue; /* that one is gone; the next may be there */
			break;
		}
		/* MaxConnections is per process; SO_REUSEPORT spreads clients evenly. */
		unsigned share = w->cfg->max_connections / (gh.nworkers ? gh.nworkers : 1);
		if (w->nconns >= (share ? share : 1)) {
			close(fd);
			continue;
		}
		/* TCP_NODELAY and TCP_NOTSENT_LOWAT come from the listener (worker_listen_open). */
		worker_sndbuf_set(fd, w->cfg->send_buffer_size);
		if (ls->addrlen != 0)
			memcpy(&local, &ls->addr, sizeof(local));
		else if (getsockname(fd, (struct sockaddr *)&local, &llen) < 0)
			memset(&local, 0, sizeof(local));
		struct tls_set *tls = NULL;
		if (ls->https) {
			/* The snapshot's set: a renewed certificate serves new clients at once. A
			 * snapshot without a server side cannot happen (cfg.c wants
			 * SSLCertificateFile, main.c a built set); refuse rather than speak plain. */
			tls = w->cfg->tls;
			if (!tls_set_has_server(tls)) {
				close(fd);
				continue;
			}
		}
		conn_accept(w, fd, &peer, plen, &local, tls);
	}
}

/* Whether a bound address is a wildcard (or of a family this file does not know). */
static int
worker_addr_wildcard(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	return 1;
}

/* A listener bound to one address: every client's local address is the listener's, so
 * accepting saves a getsockname per connection. A wildcard (0.0.0.0, ::) leaves addrlen 0:
 * there the address a client reached is only known per connection. */
static void
worker_listener_local(struct listener *ls)
{
	socklen_t alen = sizeof(ls->addr);

	ls->addrlen = 0;
	if (getsockname(ls->fd, (struct sockaddr *)&ls->addr, &alen) == 0 &&
	    !worker_addr_wildcard(&ls->addr))
		ls->addrlen = alen;
}

/* Start accepting on fd in a free slot (worker thread). */
static void
worker_listener_add(struct worker *w, int fd, int https)
{
	struct listener *ls = NULL;
	size_t i;

	if (w->stopping) {
		close(fd);
		return;
	}
	for (i = 0; i < w->nlisteners; i++)
		if (w->listeners[i].fd < 0)
			break;
	if (i == CFG_MAX_LISTEN) {
		log_error("worker %u: no free listener slot, closing a new listening socket", w->id);
		close(fd);
		return;
	}
	ls = &w->listeners[i];
	memset(ls, 0, sizeof(*ls));
	ls->fd = fd;
	ls->https = https;
	ls->w = w;
	worker_listener_local(ls);
	ev_io_init(&ls->io, fd, worker_accept_cb, ls);
	/* While accepting is paused a new listener waits too: the resume watches it. */
	if (!w->accept_paused && ev_io_set(w->loop, &ls->io, EV_READ) < 0) {
		log_error("worker %u: cannot watch a new listening socket", w->id);
		close(fd);
		ls->fd = -1;
		return;
	}
	if (i == w->nlisteners)
		w->nlisteners++;
}

/* Stop accepting on fd and close it (worker thread). Connections the kernel already queued on
 * this socket are accepted first: closing a listener resets its backlog. */
static void
worker_listener_remove(struct worker *w, int fd)
{
	for (size_t i = 0; i < w->nlisteners; i++) {
		struct listener *ls = &w->listeners[i];

		if (ls->fd != fd)
			continue;
		if (!w->stopping)
			worker_accept_cb(&ls->io, EV_READ);
		ev_io_stop(&ls->io);
		close(ls->fd);
		ls->fd = -1;
		return;
	}
	/* Not found: the worker is stopping and closed it already. */
}

/* Apply the listener changes main posted, in order (worker thread). */
static void
worker_lops_apply(struct worker *w)
{
	struct worker_lop *op;

	pthread_mutex_lock(&w->lops_lock);
	op = w->lops;
	w->lops = w->lops_tail = NULL;
	pthread_mutex_unlock(&w->lops_lock);
	while (op != NULL) {
		struct worker_lop *next = op->next;

		if (op->add)
			worker_listener_add(w, op->fd, op->https);
		else
			worker_listener_remove(w, op->fd);
		free(op);
		op = next;
	}
}

static int
worker_lop_post(struct worker *w, int fd, int add, int https)
{
	struct worker_lop *op = calloc(1, sizeof(*op));

	if (op == NULL)
		return -1;
	op->fd = fd;
	op->add = add;
	op->https = https;
	pthread_mutex_lock(&w->lops_lock);
	if (w->lops_tail)
		w->lops_tail->next = op;
	else
		w->lops = op;
	w->lops_tail = op;
	pthread_mutex_unlock(&w->lops_lock);
	ev_async_send(w->loop);
	return 0;
}

int
worker_listen_add(struct worker *w, int fd, int https)
{
	if (worker_lop_post(w, fd, 1, https) < 0) {
		close(fd);
		return -1;
	}
	return 0;
}

int
worker_listen_remove(struct worker *w, int fd)
{
	return worker_lop_post(w, fd, 0, 0);
}

static void
worker_flush_hook(struct ev_loop *loop, void *arg)
{
	(void)loop;
	struct worker *w = arg;
	alog_flush(&w->alog);
}

static void
worker_grace_cb(struct ev_timer *t)
{
	struct worker *w = t->arg;
	log_notice("worker %u: grace period over, closing %zu connections", w->id, w->nconns);
	conn_close_all(w);
	up_pool_clear(w);
	ev_loop_break(w->loop);
}

static void
worker_check_done(struct ev_loop *loop, void *arg)
{
	struct worker *w = arg;
	if (w->stopping && w->nconns == 0) {
		up_pool_clear(w);
		ev_loop_break(loop);
	}
}

/* Collapsed forwarding: another worker's fill changed (cachereq.c). Any thread. */
static void
worker_kick(void *arg)
{
	struct worker *w = arg;
	ev_async_send(w->loop);
}

/* Free the replaced resolvers whose queries have all finished; check again in a second
 * while some are still answering. */
static void
worker_res_retire_cb(struct ev_timer *t)
{
	struct worker *w = t->arg;
	w->nres_old = res_free_idle(w->res_old, w->nres_old);
	if (w->nres_old > 0)
		ev_timer_start(w->loop, &w->res_retire, 1000);
}

/* The other half of it: free() itself gives nothing back on the request path. By default
 * glibc's malloc serves blocks over 128 KiB (the buffer of a 256 KiB stored body) with mmap and
 * munmap, and hands a freed chunk at the top of a thread's heap back at once (MADV_DONTNEED):
 * every hit on a large object then faulted its buffer's pages in again, which cost more than
 * copying the body (tests/bench/tls.sh, 256 KiB hits: 2.8k/s before, 7.8k/s after, CPU per hit
 * 484 -> 101 us). Memory goes back through worker_trim_cb instead, when connections go.
 * Process-wide, set once before the first worker runs. */
static void
worker_malloc_tune(void)
{
#ifdef __GLIBC__
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	mallopt(M_TRIM_THRESHOLD, 16 << 20);
#endif
}

/* Memory return (issue 10, item 11). Freed connection memory stays in malloc's arena of this
 * thread, and the pieces a burst leaves between long-lived allocations are never given back to
 * the system by free(): RssAnon grew with every burst of connections while malloc had only a
 * few MB in use. Once a second, when the worker freed WORKER_TRIM_BYTES or more since the last
 * trim and now has at most half the connections it had since then (the burst is over, or
 * ending), malloc_trim(0) returns the free pages. Rate-limited and off the request path: it
 * walks the free lists of every arena, a few milliseconds after a large burst. */
static void
worker_trim_cb(struct ev_timer *t)
{
	struct worker *w = t->arg;
	stats_dns_publish(w); /* the status page's DNS figures (stats.h) */
	w->trim_freed += buf_freed_take();
	if (w->nconns > w->trim_peak)
		w->trim_peak = w->nconns;
	if (w->trim_freed >= WORKER_TRIM_BYTES && w->nconns <= w->trim_peak / 2) {
		log_debug("worker %u: %zu bytes of connection memory freed, %zu connections (of %zu): "
		          "returning free memory to the system", w->id, w->trim_freed, w->nconns,
		          w->trim_peak);
#ifdef __GLIBC__
		malloc_trim(0);
#endif
		w->trim_freed = 0;
		w->trim_peak = w->nconns;
	}
	ev_timer_start(w->loop, t, WORKER_TRIM_MS);
}

/* A reload changed the DNS* directives: new lookups go to a new resolver; the old one
 * keeps answering the queries it has, then goes. */
static void
worker_res_replace(struct worker *w, const struct res_conf *conf)
{
	const char *err = NULL;
	struct res *n = NULL;
	struct res **v = realloc(w->res_old, (w->nres_old + 1) * sizeof(*v));
	if (v == NULL) {
		log_error("worker %u: out of memory: the DNS* directives stay as they were", w->id);
		return;
	}
	w->res_old = v;
	if (res_new(&n, w->loop, conf, &err) < 0) {
		log_error("worker %u: resolver: %s: the DNS* directives stay as they were", w->id,
		          err ? err : "failed");
		return;
	}
	w->res_old[w->nres_old++] = w->res;
	w->res = n;
	worker_res_retire_cb(&w->res_retire);
}

static void
worker_async_cb(struct ev_loop *loop, void *arg)
{
	struct worker *w = arg;
	atomic_store(&w->wd_pong, atomic_load(&w->wd_ping)); /* the loop turns: answer main */
	cachereq_worker_poll(w->id);
	status_worker_poll(w);
	pauth_wk_poll(w->pauth_wk); /* finished password checks: their connections go on */
	conn_polwait_wake(w);
	/* The snapshot first, then the listeners: main publishes a reload's snapshot before it
	 * posts the new listeners, so an https listener added here finds the TLS set it needs. */
	struct cfg *n = atomic_exchange(&w->next_cfg, NULL);
	if (n != NULL) {
		struct cfg *old = w->cfg;
		w->cfg = n; /* new requests take this snapshot; running ones keep theirs */
		if (res_conf_differs(&old->dns, &n->dns))
			worker_res_replace(w, &n->dns);
		pauth_wk_start(w->pauth_wk, n->auths, n->nauths);
		cfg_unref(&old);
	}
	worker_lops_apply(w);
	if (atomic_load(&w->stop_req) && !w->stopping) {
		w->stopping = 1;
		for (size_t i = 0; i < w->nlisteners; i++) {
			if (w->listeners[i].fd < 0)
				continue;
			ev_io_stop(&w->listeners[i].io);
			close(w->listeners[i].fd);
			w->listeners[i].fd = -1;
		}
		conn_drain_all(w);
		up_pool_clear(w);
		ev_timer_start(loop, &w->grace, w->cfg->graceful_timeout_ms);
	}
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	sigset_t all;
	char name[16];
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	/* A name for ps -L, top -H, gdb and the watchdog test (15 characters at most). Set by the
	 * thread itself: prctl, no /proc access, which a hardened unit may restrict. */
	snprintf(name, sizeof(name), "gh-worker-%u", w->id);
	(void)pthread_setname_np(pthread_self(), name);
	/* The helpers of proxy authentication start now, not at the first login. */
	pauth_wk_start(w->pauth_wk, w->cfg->auths, w->cfg->nauths);
	if (w->id == 0)
		uicache_purge_resume(w->loop); /* purges by prefix the last exit stopped */
	ev_loop_run(w->loop);
	/* Every connection is gone (worker_check_done): no helper request is in flight. The
	 * helper children are ended on the loop's thread, as helper.h wants. */
	pauth_wk_free(&w->pauth_wk);
	alog_buf_fini(&w->alog);
	buf_pool_drain();
	return NULL;
}

int
worker_start(struct worker *w, unsigned id, struct cfg *cfg, int *listen_fds, size_t nfds)
{
	static pthread_once_t malloc_tuned = PTHREAD_ONCE_INIT;
	pthread_once(&malloc_tuned, worker_malloc_tune);
	memset(w, 0, sizeof(*w));
	w->magic = WORKER_MAGIC;
	pthread_mutex_init(&w->lops_lock, NULL);
	w->id = id;
	w->cfg = cfg_ref(cfg);
	int rc = ev_loop_new(&w->loop);
	if (rc < 0) {
		log_error("worker %u: event loop: %s", id, strerror(-rc));
		return -1;
	}
	const char *err = NULL;
	if (res_new(&w->res, w->loop, &cfg->dns, &err) < 0) {
		log_error("worker %u: resolver: %s", id, err ? err : "failed");
		return -1;
	}
	w->pauth = gh.pauth;
	if (pauth_wk_new(w->loop, gh.nworkers, &w->pauth_wk) < 0) {
		log_error("worker %u: proxy authentication: out of memory", id);
		return -1;
	}
	alog_buf_init(&w->alog, gh.alog);
	ev_hook_add(w->loop, worker_flush_hook, w);
	ev_hook_add(w->loop, worker_check_done, w);
	ev_timer_init(&w->grace, worker_grace_cb, w);
	ev_timer_init(&w->res_retire, worker_res_retire_cb, w);
	ev_timer_init(&w->trim, worker_trim_cb, w);
	ev_timer_start(w->loop, &w->trim, WORKER_TRIM_MS);
	ev_timer_init(&w->accept_pause, worker_accept_resume_cb, w);
	if (ev_async_start(w->loop, worker_async_cb, w) < 0)
		return -1;
	cachereq_worker_attach(id, worker_kick, w);
	if (polres_waker_add(gh.polres, worker_kick, w) < 0)
		return -1;
	if (nfds > CFG_MAX_LISTEN)
		return -1;
	w->loclen = 128 * 1024 + 256; /* longer than any request line we accept, plus the domain */
	w->locbuf = malloc(w->loclen);
	if (w->locbuf == NULL)
		return -1;
	w->listeners = calloc(CFG_MAX_LISTEN, sizeof(*w->listeners));
	if (w->listeners == NULL)
		return -1;
	for (size_t i = 0; i < CFG_MAX_LISTEN; i++)
		w->listeners[i].fd = -1;
	for (size_t i = 0; i < nfds; i++) {
		struct listener *ls = &w->listeners[i];
		ls->fd = listen_fds[i];
		ls->https = cfg->listen[i].https;
		ls->w = w;
		worker_listener_local(ls);
		ev_io_init(&ls->io, ls->fd, worker_accept_cb, ls);
		if (ev_io_set(w->loop, &ls->io, EV_READ) < 0)
			return -1;
	}
	w->nlisteners = nfds;
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
		log_error("worker %u: cannot start thread", id);
		return -1;
	}
	return 0;
}

void
worker_set_cfg(struct worker *w, struct cfg *cfg)
{
	struct cfg *old = atomic_exchange(&w->next_cfg, cfg_ref(cfg));
	if (old)
		cfg_unref(&old);
	ev_async_send(w->loop);
}

void
worker_stop(struct worker *w)
{
	atomic_store(&w->stop_req, 1);
	ev_async_send(w->loop);
}

void
worker_wd_ping(struct worker *w, unsigned seq)
{
	atomic_store(&w->wd_ping, seq);
	ev_async_send(w->loop);
}

int
worker_wd_answered(struct worker *w, unsigned seq)
{
	return atomic_load(&w->wd_pong) == seq;
}

void
worker_join(struct worker *w)
{
	pthread_join(w->thread, NULL);
	pauth_wk_free(&w->pauth_wk); /* a worker that never ran its loop */
	cachereq_worker_detach(w->id);
	polres_waker_remove(gh.polres, w);
	res_free(&w->res);
	for (size_t i = 0; i < w->nres_old; i++)
		res_free(&w->res_old[i]);
	free(w->res_old);
	w->res_old = NULL;
	w->nres_old = 0;
	struct cfg *n = atomic_exchange(&w->next_cfg, NULL);
	if (n)
		cfg_unref(&n);
	cfg_unref(&w->cfg);
	/* Changes posted after the worker stopped: new sockets are closed, removals are moot. */
	while (w->lops != NULL) {
		struct worker_lop *op = w->lops;

		w->lops = op->next;
		if (op->add)
			close(op->fd);
		free(op);
	}
	w->lops_tail = NULL;
	pthread_mutex_destroy(&w->lops_lock);
	free(w->listeners);
	free(w->locbuf);
	ev_loop_free(&w->loop);
}
