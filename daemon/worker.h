/*
 * worker.h - one worker thread: its loop, listeners, resolver, client connections, upstream
 * pool and counters. Connections never move between workers.
 *
 * main.c creates the workers (worker_start), publishes new config snapshots (worker_set_cfg)
 * and asks them to stop (worker_stop). Everything else in this header is used by the daemon's
 * own files: proxy.c (client connections and the request state machine), up.c (upstream
 * connections and the keep-alive pool), tun.c (CONNECT tunnels).
 */
#ifndef GH_WORKER_H
#define GH_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "daemon/buf.h"
#include "daemon/cfg.h"
#include "daemon/ev.h"
#include "daemon/h1.h"
#include "daemon/log.h"
#include "daemon/stats.h"
#include "daemon/stream.h"
#include "resolver/res.h"

struct conn;
struct up;
struct worker_lop;
struct pauth;
struct pauth_wk;

/* Counters, per worker, summed when read (status page later). */
struct worker_stats {
	uint64_t accepted, requests, responses_local, errors_4xx, errors_5xx, tunnels;
	uint64_t up_connects, up_reused, up_retries, bytes_in, bytes_out;
	uint64_t conns_open;
	uint64_t ups_open, tunnels_open; /* upstream connections and tunnels now */
};

struct listener {
	int fd;
	struct ev_io io;
	struct sockaddr_storage addr; /* bound address, every client's local one (worker.c) */
	socklen_t addrlen;            /* 0: a wildcard, getsockname per client */
	int https;                    /* "Listen ... https": clients get the snapshot's TLS set */
	struct worker *w;
};

#define UP_POOL_BUCKETS 256

struct worker {
	unsigned magic;
	unsigned id;
	pthread_t thread;
	struct ev_loop *loop;
	struct res *res;              /* the resolver of the current snapshot's DNS* directives */
	struct res **res_old;         /* replaced by a reload, freed once idle (res_retire) */
	size_t nres_old;
	struct ev_timer res_retire;
	struct ev_timer trim;         /* hands freed connection memory back (worker_trim_cb) */
	size_t trim_freed, trim_peak; /* bytes freed and most connections since the last trim */
	struct cfg *cfg;              /* current snapshot (ref held) */
	_Atomic(struct cfg *) next_cfg; /* published by main, picked up on wake-up */
	atomic_int stop_req;
	int stopping;
	struct ev_timer grace;

	struct listener *listeners;   /* CFG_MAX_LISTEN slots; fd -1 = free */
	size_t nlisteners;            /* slots ever used (a prefix of the array) */
	int accept_paused;            /* out of descriptors: listeners unwatched for a moment */
	struct ev_timer accept_pause;
	pthread_mutex_t lops_lock;    /* guards lops: main posts listener changes, worker takes */
	struct worker_lop *lops, *lops_tail;

	struct conn *conns;           /* doubly linked list of live client connections */
	size_t nconns;
	struct conn *polwait;         /* waiting for the ProxyBlock addresses (proxy.c) */

	/* Idle upstream connections: hash buckets by pool key, plus a global LRU list. */
	struct up *pool[UP_POOL_BUCKETS];
	struct up *idle_head, *idle_tail;
	size_t nidle;

	struct h1_head scratch;       /* parse scratch: heads are serialized as soon as parsed */
	char *locbuf;                 /* ProxyDomain redirect locations (pol_decide) */
	size_t loclen;
	struct alog_buf alog;
	struct worker_stats st;
	struct stats stats;           /* the status page's counters (stats.h) */
	struct pauth *pauth;          /* proxy authentication, process-wide (pauth.h; main.c) */
	struct pauth_wk *pauth_wk;    /* this worker's helper pools (pauth.h) */
	char date[40];                /* IMF-fixdate of date_sec, for Date fields */
	int64_t date_sec;

	/* Watchdog (issue 9): main stores a number in wd_ping and wakes the loop; the loop copies
	 * it to wd_pong when it handles the wake-up, which proves it is turning. */
	atomic_uint wd_ping, wd_pong;
};

/* Shared process state set by main before workers start. */
struct polres;
struct gh_shared {
	struct alog *alog;
	struct polres *polres;        /* background resolution of policy names */
	struct pauth *pauth;          /* proxy authentication (pauth.h, issue 14): w->pauth */
	unsigned nworkers;
	/* Loop detection (issue 10): this process's pseudonym, sent in a CDN-Loop field (RFC 8586)
	 * on every request to a parent proxy and looked for in every request received, whatever
	 * ProxyVia says. "gatehouse-" and 16 hex digits, random per process. */
	char hop_token[32];
};
extern struct gh_shared gh;

/* The current time as an HTTP date ("Sun, 06 Nov 1994 08:49:37 GMT"), formatted once a second. */
const char *worker_http_date(struct worker *w);

/* ---- main.c <-> worker ---- */
/* listen_fds[i] is the socket for cfg->listen[i] (its https flag comes from there). */
int worker_start(struct worker *w, unsigned id, struct cfg *cfg, int *listen_fds, size_t nfds);
void worker_set_cfg(struct worker *w, struct cfg *cfg);
void worker_stop(struct worker *w);
void worker_join(struct worker *w);

/* Watchdog (main thread): post ping number seq to the worker's loop (any thread may call it);
 * worker_wd_answered says whether the loop has handled it since. The thread is named
 * "gh-worker-ID" (pthread_setname_np), as /proc/PID/task/TID/comm shows. */
void worker_wd_ping(struct worker *w, unsigned seq);
int worker_wd_answered(struct worker *w, unsigned seq);

/* Open a listening socket (SO_REUSEPORT) for l; returns fd or -1 with *err. */
int worker_listen_open(const struct cfg_listen *l, const char **err);

/* Listener changes on reload (main thread). The worker applies posted changes in order, on its
 * own thread, at its next wake-up: add starts accepting on fd (the worker owns it from this
 * call on, and closes it if it is stopping); remove accepts what is already queued on fd, then
 * stops and closes it (fd must be one of the worker's listeners, given at start or added).
 * Return 0, or -1 when out of memory (add then closes fd; remove leaves the listener open). */
int worker_listen_add(struct worker *w, int fd, int https);
int worker_listen_remove(struct worker *w, int fd);

/* ---- proxy.c ---- */
/* tls: the TLS set of an https listener (the connection is then a TLS server stream), or
 * NULL for a plain one. */
struct tls_set;
struct conn *conn_accept(struct worker *w, int fd, const struct sockaddr_storage *peer, socklen_t plen,
                 const struct sockaddr_storage *local, struct tls_set *tls);
/* Begin graceful stop: close idle connections, mark the rest to close after their request. */
void conn_drain_all(struct worker *w);
/* Wake-up: requests waiting for their policy's blocked-address set decide again if it is
 * ready (cheap when none waits). */
void conn_polwait_wake(struct worker *w);
void conn_close_all(struct worker *w);
/* Events on a busy upstream connection are handed to its owner (whose own timer times the
 * exchange: a busy upstream's timer is not armed). */
void proxy_up_io(struct up *u, unsigned revents);

/* ---- up.c: upstream connections ---- */

enum up_state { UP_CONNECTING = 1, UP_BUSY, UP_IDLE, UP_DEAD };

/* The stream seam (ARCHITECTURE.md, "Seams for what comes next"): what an upstream
 * connection is made of once connected. proxy.c and the pool talk to a struct up through
 * these operations and never to its descriptor, so a stream can be plain TCP (up_tcp), the
 * FTP gateway (daemon/ftp.c: an HTTP/1.1 exchange in, FTP on the wire) or, later, TLS.
 *
 * read and write have buf_read_fd's and buf_write_fd's contract (bytes moved; 0 from read is
 * the end of the stream; -1 with errno, EAGAIN when nothing can move now). want states the
 * owner's interest while the connection is BUSY (EV_READ | EV_WRITE, 0 for none): a stream
 * without a descriptor of its own reports readiness by calling proxy_up_io(u, revents) from
 * the loop (never from inside one of these calls). idle_usable and idle serve the pool: is a
 * pooled connection still good, and watch it while it waits (the server closing retires it
 * through up_close). close releases what the stream holds (descriptors, timers, memory);
 * up.c frees the struct up itself. */
struct up;
struct up_stream {
	const char *name;                         /* "tcp", "ftp" */
	ssize_t (*read)(struct up *u, struct buf *b);
	ssize_t (*write)(struct up *u, struct buf *b);
	void (*shutdown_wr)(struct up *u);        /* no more request bytes (CONNECT tunnels) */
	int (*want)(struct up *u, unsigned events);
	int (*pending)(struct up *u);             /* bytes buffered that the loop will not announce
	                                           * (stream_pending): read them without waiting */
	int (*idle_usable)(struct up *u);
	int (*idle)(struct up *u);                /* entering the pool; -1: cannot be pooled */
	void (*close)(struct up *u);
};
extern const struct up_stream up_tcp;

#define UP_MAGIC 0x0b57e4a1u

struct up {
	unsigned magic;
	enum up_state state;
	struct worker *w;
	struct stream s;              /* the transport (stream.h): TCP, or TLS to an https parent
	                               * or origin; s.fd is the descriptor */
	struct ev_io io;
	struct ev_timer tmo;
	struct buf in, out;
	char key[300];                /* pool key: "host:port" lower-case */
	struct sockaddr_storage addr; /* peer actually connected */
	char addr_text[64];           /* "127.0.0.1:80", "[::1]:80" */
	unsigned nreq;                /* requests sent on this connection */
	uint64_t idle_since;

	/* connecting */
	struct res_addrs addrs;
	unsigned ai;                  /* next address to try */
	uint64_t deadline;            /* overall connect deadline (ms) */
	char err[256];                /* accumulated connect errors */
	int timed_out;
	int local_fail;               /* a local resource ran out: enum up_fail UP_FAIL_LOCAL */

	struct conn *owner;           /* while connecting or busy */
	void (*cb)(struct conn *, struct up *, const char *, int); /* up_connected_f */
	struct up *hnext, *hprev;     /* pool bucket */
	struct up *lnext, *lprev;     /* idle LRU */

	const struct up_stream *st;   /* &up_tcp unless a gateway took the connection over */
	int (*attach)(struct up *u);  /* once connected: the stream that takes it over, or NULL */
	void *sdata;                  /* the stream's own state */
	int absolute_form;            /* the stream wants absolute-form request targets (as a
	                               * parent does): the FTP gateway reads the URL's login */

	/* TLS (an https parent or origin): the handshake is part of CONNECTING */
	struct tls_set *tls;          /* held (tls_set_ref) from up_connect to up_close */
	char tls_host[256];           /* SNI and certificate name; "" for plain TCP */
	int handshaking;              /* TCP connected, TLS handshake in progress */
	int tls_fail;                 /* the last address failed its handshake: UP_FAIL_TLS */
};

static inline ssize_t
up_read(struct up *u, struct buf *b)
{
	return u->st->read(u, b);
}

static inline ssize_t
up_write(struct up *u, struct buf *b)
{
	return u->st->write(u, b);
}

/* Callback to the owner: connection established (err NULL) or failed (err says why, how says
 * whose fault: an enum up_fail). A local failure (this process out of descriptors or ports)
 * is never held against the peer: a parent is not marked down for it (issue 10). UP_FAIL_TLS:
 * the last address failed its TLS handshake (a certificate that does not verify, no common
 * protocol); err then says why ("TLS handshake with 127.0.0.1:8443 failed: certificate has
 * expired"). */
enum up_fail { UP_FAIL_PEER = 0, UP_FAIL_TIMEOUT = 1, UP_FAIL_LOCAL = 2, UP_FAIL_TLS = 3 };
typedef void up_connected_f(struct conn *c, struct up *u, const char *err, int how);

/* Take an idle pooled connection for key, or NULL. */
struct up *up_pool_take(struct worker *w, const char *key);
/* Start connecting to the addresses in addrs (port filled in by the caller), trying each in
 * turn within timeout_ms overall. cb runs later (never synchronously). scheme says what the
 * connection speaks once connected: "http" (plain TCP, also to every parent) or "ftp" (the
 * FTP gateway, daemon/ftp.h, takes the connected control connection over). tls_host not NULL:
 * TLS to that name (an https parent or origin) with tls's client side, the handshake inside
 * the same deadline; cb runs when it is done, so a certificate that does not verify is a
 * failed connect (the next address is tried). Returns the up or NULL on out-of-memory. */
struct up *up_connect(struct worker *w, struct conn *owner, const char *key,
                      const struct res_addrs *addrs, unsigned timeout_ms, const char *scheme,
                      struct tls_set *tls, const char *tls_host, up_connected_f *cb);
/* No more bytes from us on this connection (a CONNECT tunnel's half-close): 0 done, -1 with
 * EAGAIN when a TLS close_notify must wait for the socket (call again when writable). */
int up_shutdown_wr(struct up *u);
/* Return a connection to the pool (it must be at a message boundary), or close it. */
void up_release(struct up *u, int reusable);
/* Close now and free after the batch. */
void up_close(struct up *u);
/* Expire idle pooled connections older than the configured idle time. */
void up_pool_expire(struct worker *w);
void up_pool_clear(struct worker *w);

/* Format a sockaddr as "1.2.3.4:80" or "[::1]:80" (port omitted when with_port is 0). */
const char *gh_addr_text(const struct sockaddr_storage *ss, char *buf, size_t len, int with_port);

#endif
