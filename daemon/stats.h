/*
 * stats.h - the status page's counters (issue 11): per worker, written only by the worker
 * that owns them, summed when read.
 *
 * Every request is counted once, from its access-log entry (stats_req, called by conn_log in
 * proxy.c): its outcome (hit, miss, refresh, denied, blocked, error), the bytes sent to the
 * client and how many of them came from the store, its duration in a histogram, the parent it
 * went through, and a per-second ring for the request rates of the last 1 and 5 minutes.
 *
 * Cost on the request path: no lock and no read-modify-write shared with another thread. A
 * worker adds to its own counters with a relaxed atomic load and store (two plain moves on
 * x86-64), so that a page rendered on another worker reads whole values without a data race.
 * Readers (stats_sum) run on any thread and see each counter as of some recent moment; the
 * figures of one snapshot are not taken at one instant. Built with GH_NO_STATS (SCons
 * stats=0) the request-path counting compiles to nothing: the benchmark's baseline
 * (tests/bench/statscost.sh).
 *
 * Proxy authentication (issue 14): its outcomes and result cache are counted by daemon/pauth.c
 * in the process-wide struct pauth (read under its mutex by stats_sum); the helper pools are
 * loop-local to each worker, so each worker copies their figures into its struct stats once
 * a second (stats_dns_publish) and readers never touch a pool.
 *
 * Process-wide facts (start time, the last reload) are written by main's thread under a
 * mutex that only main and page renders take.
 */
#ifndef GH_STATS_H
#define GH_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "resolver/res.h"

struct worker;
struct alog_entry;

/* Outcomes of gatehouse_requests_total, in this order (stats_outcome_name). */
enum stats_outcome {
	STATS_HIT = 0,     /* served from the store (TCP_HIT, TCP_IMS_HIT, TCP_INM_HIT) */
	STATS_MISS,        /* fetched (TCP_MISS, TCP_CLIENT_REFRESH_MISS), tunnels (TCP_TUNNEL) */
	STATS_REFRESH,     /* a stored entry was revalidated (TCP_REFRESH_*) */
	STATS_DENIED,      /* 403 by the <Proxy> rules, ProxyRequests Off, AllowCONNECT */
	STATS_BLOCKED,     /* 403 by ProxyBlock */
	STATS_ERROR,       /* a 5xx, or a request refused before it had an action (4xx NONE) */
	STATS_LOCAL,       /* answered by the proxy itself, not an error: the status page, PAC,
	                    * a ProxyDomain redirect */
	STATS_OUT__COUNT
};

/* Request duration histogram: upper bounds in microseconds (le="0.001" ... le="10"); one
 * more bin past the last for +Inf. */
#define STATS_NBUCKETS 13
extern const uint64_t stats_bucket_us[STATS_NBUCKETS];

#define STATS_RING_SECS 300   /* per-second request counts: rates over 1 and 5 minutes */
#define STATS_BLOCK_MINS 60   /* per-minute blocked requests: blocks in the last hour */
#define STATS_PARENTS_MAX 256 /* = the health table's size (health.c) */

/* One worker's counters (embedded in struct worker). Zeroed at start. */
struct stats {
	uint64_t req[STATS_OUT__COUNT];
	uint64_t bytes_client_out;    /* every byte sent to clients, heads included */
	uint64_t bytes_store_out;     /* ... of them, of responses served from the store */
	uint64_t bytes_upstream_in;   /* read from origins and parents (tunnels included) */
	uint64_t dur_bin[STATS_NBUCKETS + 1]; /* not cumulative; the last bin is +Inf */
	uint64_t dur_sum_us;
	/* (second << 32) | count: a slot whose tag is not a second of the window counts 0, so
	 * an idle worker's old slots never need clearing */
	uint64_t sec_ring[STATS_RING_SECS];
	uint64_t min_blocked[STATS_BLOCK_MINS]; /* (minute << 32) | count, as sec_ring */
	uint64_t parent_req[STATS_PARENTS_MAX]; /* by health_index() of the parent's key */
	/* The worker's resolver counters, copied by the worker itself once a second
	 * (stats_dns_publish): another thread never touches a resolver. */
	uint64_t dns_lookups, dns_hits, dns_failures, dns_queries, dns_entries;
	/* The worker's authentication helper pools (pauth_wk_helper_stats), copied the same way:
	 * the pools live on the worker's loop. */
	struct stats_helpers {
		uint64_t requests, replies, timeouts, deaths, restarts, overloads;
		uint64_t children_up, busy, queued;   /* gauges */
	} helpers;
	const char *memo_action;      /* the last action seen and its flags (stats.c) */
	unsigned memo_flags;
};

/* Relaxed add for a counter only its worker writes. */
#define STATS_ADD(field, n) \
	__atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) + (n), \
	                 __ATOMIC_RELAXED)

/* The outcome of one access-log entry; blocked: the request was refused by ProxyBlock (the
 * log shows TCP_DENIED for both kinds of refusal). Pure. */
enum stats_outcome stats_outcome_of(const char *action, int status, int blocked);
/* Was the response served from the store (hit bytes: also a refresh that kept the entry)? */
int stats_from_store(const char *action);
const char *stats_outcome_name(enum stats_outcome o);

/* Count one finished request of w from its log entry e (conn_log). blocked: see above;
 * parent_key: the parent proxy it was sent to ("host:port"), or NULL. */
#ifndef GH_NO_STATS
void stats_req(struct worker *w, const struct alog_entry *e, int blocked, const char *parent_key);
static inline void
stats_upstream_in(struct stats *s, uint64_t n)
{
	STATS_ADD(s->bytes_upstream_in, n);
}
#else
#define stats_req(w, e, blocked, parent_key) ((void)0)
#define stats_upstream_in(s, n) ((void)0)
#endif

/* Copy w's resolver counters and its helper pools' figures where readers find them: the
 * worker's once-a-second timer (worker.c), off the request path, in every build. */
void stats_dns_publish(struct worker *w);

/* ---- reading (any thread) ---- */

/* Every worker's counters summed, and the gauges of the moment. */
struct stats_sum {
	uint64_t req[STATS_OUT__COUNT];
	uint64_t requests;            /* sum of req[] */
	uint64_t bytes_client_out, bytes_store_out, bytes_upstream_in, bytes_client_in;
	uint64_t dur_bin[STATS_NBUCKETS + 1];
	uint64_t dur_sum_us;
	uint64_t req_1m, req_5m;      /* requests finished in the last 60 / 300 s (the current
	                               * second included) */
	unsigned win_1m, win_5m;      /* seconds those windows cover (less just after start) */
	uint64_t blocked_1h;
	uint64_t parent_req[STATS_PARENTS_MAX];
	uint64_t dns_lookups, dns_hits, dns_failures, dns_queries, dns_entries;
	struct stats_helpers helpers; /* summed over the workers' pools */
	/* proxy authentication (pauth_get_stats) */
	uint64_t auth_ok, auth_failed, auth_challenged, auth_limited, auth_unavailable;
	uint64_t auth_cache_hits, auth_cache_misses, auth_conn_hits, auth_verifications;
	/* gauges from the workers' own counters */
	unsigned workers;
	uint64_t conns_clients, conns_upstreams, conns_tunnels;
	uint64_t accepted, tunnels_total, up_connects, up_reused;
};

/* Sum the counters of the workers registered with stats_set_workers. mono_ms: now on the
 * monotonic clock (ev_now's), the end of the rate windows. */
void stats_sum(struct stats_sum *out, uint64_t mono_ms);
/* Sum n counter sets (the pure part of stats_sum, for tests). */
void stats_sum_of(struct stats_sum *out, const struct stats *const *v, size_t n, uint64_t mono_ms,
                  uint64_t started_ms);

/* ---- process facts (main thread) ---- */

/* The workers (main.c, before they start) and the start time. */
void stats_set_workers(struct worker *w, unsigned n);
/* Record a reload's outcome: err NULL when it succeeded, else the error line. applied: the
 * new configuration runs all the same, but for what err says was kept (a broken certificate
 * keeps the TLS settings in use); 0: the previous configuration keeps running. */
void stats_reload_note(const char *err, int applied);

struct stats_proc {
	int64_t started;              /* wall clock, seconds */
	uint64_t started_ms;          /* monotonic ms */
	int64_t reload_at;            /* wall clock of the last reload, 0: none */
	int reload_ok;
	int reload_applied;           /* reload_ok 0, and yet the new configuration runs */
	char reload_err[512];
};
void stats_proc_get(struct stats_proc *out);

/* The table webui/ reads the counters through (daemon/statsui.c; webui/ui_stats.h). */
struct ui_stats_ops;
const struct ui_stats_ops *stats_ui_ops(void);

/* Monotonic clock in ms, the clock of ev_now. */
uint64_t stats_mono_ms(void);

#endif
