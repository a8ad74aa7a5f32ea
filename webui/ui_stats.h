/*
 * ui_stats.h - the counters behind the overview page, api/overview, ?auto and /metrics
 * (issue 11). The daemon fills the table (daemon/statsui.c: stats_ui_ops()); webui/ only reads
 * plain numbers and strings through it, so it needs no cache/, policy/ or daemon/ header.
 *
 * The time series, top lists and the recent-requests ring have their own table
 * (webui/ui_series.h).
 */
#ifndef GH_WEBUI_UI_STATS_H
#define GH_WEBUI_UI_STATS_H

#include <stddef.h>
#include <stdint.h>

/* Request outcomes, in this order in struct ui_overview's req[] (gatehouse_requests_total's
 * label values). */
#define UI_OUTCOMES 7
extern const char *const ui_outcome_names[UI_OUTCOMES]; /* "hit", "miss", "refresh", "denied",
                                                         * "blocked", "error", "local" */

#define UI_DUR_BUCKETS 13   /* histogram bounds; one more bin for +Inf */
#define UI_PARENTS_MAX 32   /* parents listed (nparents counts them all) */

struct ui_parent {
	char name[300];          /* "host:port", "https://host:port" (pol_parent.key) */
	int up;
	unsigned backoff_left_ms;   /* while down */
	unsigned fails;             /* consecutive failures */
	char last_err[160];         /* "" when none */
	int64_t last_err_at;        /* wall clock seconds, 0 when none */
	uint64_t requests;          /* requests routed through it since start */
};

/* Everything the overview shows, as of one call. Counters are since the process started. */
struct ui_overview {
	int64_t now, started;       /* wall clock, seconds */
	char config[512];           /* the configuration file ("(built-in)") */
	int64_t reload_at;          /* the last reload, 0: none since start */
	int reload_ok;
	int reload_applied;         /* reload_ok 0, yet the new configuration runs but for what
	                             * reload_err says was kept (the TLS certificates) */
	char reload_err[512];       /* the error line of a failed reload */

	unsigned workers;
	uint64_t conns_clients, conns_upstreams, conns_tunnels; /* now */
	uint64_t accepted;          /* client connections since start */

	uint64_t req[UI_OUTCOMES];
	uint64_t requests;
	uint64_t req_1m, req_5m;    /* requests in the last 60 / 300 s ... */
	unsigned win_1m, win_5m;    /* ... which cover this many seconds (less after start) */

	uint64_t bytes_client_out, bytes_client_in, bytes_upstream_in;
	uint64_t bytes_store_out;   /* of bytes_client_out, served from the store */

	uint64_t dur_le_us[UI_DUR_BUCKETS]; /* upper bounds, microseconds */
	uint64_t dur_bin[UI_DUR_BUCKETS + 1]; /* per bin, not cumulative; last: +Inf */
	uint64_t dur_sum_us;

	int cache_on;               /* a store is open (CacheRoot) */
	uint64_t cache_entries, cache_bytes, cache_size; /* entries, bytes used, CacheSize */
	uint64_t cache_evictions;   /* entries evicted since start */
	double cache_evictions_per_s; /* over the last minute or so (since start at first) */
	uint64_t cache_pinned, cache_gc_bodies; /* bodies read now, bodies awaiting deletion */
	uint64_t cache_compress_in, cache_compress_out; /* zlib: raw and stored bytes */

	uint64_t dns_entries, dns_lookups, dns_hits, dns_failures, dns_queries;
	char dns_servers[256];      /* "10.0.0.1, 10.0.0.2:5353" or "/etc/resolv.conf" */

	uint64_t block_entries;     /* ProxyBlock entries of the running configuration */
	uint64_t blocked_addrs;     /* addresses their names resolved to */
	uint64_t blocked_1h;        /* requests blocked in the last hour */

	/* TLS (daemon/tls.h): handshakes since start as a server (the https listeners) and as a
	 * client (https parents, https:// origins, FTPS); handshakes counts the resumed ones. */
	uint64_t tls_srv_handshakes, tls_srv_resumed, tls_srv_failed;
	uint64_t tls_cli_handshakes, tls_cli_resumed, tls_cli_failed;
	uint64_t tls_ktls;          /* connections whose sending side the kernel encrypts */

	/* Proxy authentication (issue 14; daemon/pauth.h), since start. auth_sections: <Proxy>
	 * sections of the running configuration with authentication settings (0: none). */
	unsigned auth_sections;
	uint64_t auth_ok;           /* requests that proved a user */
	uint64_t auth_failed;       /* wrong or unknown credentials */
	uint64_t auth_challenged;   /* 407 answers (no, malformed or wrong credentials) */
	uint64_t auth_limited;      /* 429: the client address failed too often */
	uint64_t auth_unavailable;  /* 503: a helper could not answer */
	uint64_t auth_cache_hits, auth_cache_misses; /* the result cache */
	uint64_t auth_conn_hits;    /* the connection's last accepted credential again */
	uint64_t auth_verifications; /* password hashes computed and helper requests made */
	/* the helper pools of every worker (AuthExternal, AuthNegotiateExternal), as of the
	 * workers' last once-a-second copy */
	uint64_t helper_up, helper_busy, helper_queued;  /* children running, answering, waiting
	                                                  * requests: now */
	uint64_t helper_requests, helper_replies, helper_timeouts, helper_deaths;
	uint64_t helper_restarts, helper_overloads;

	size_t nparents;            /* all parents of the running configuration */
	struct ui_parent parents[UI_PARENTS_MAX]; /* the first UI_PARENTS_MAX of them */
};

struct ui_stats_ops {
	/* Fill out (the caller zeroed it). wctx: struct ui_call's. Returns 0, -1 on failure. */
	int (*overview)(void *wctx, struct ui_overview *out);
};

/* The pure renderers of webui/p_metrics.c and p_overview.c (unit-tested). */
struct ui_out;
void ui_metrics_render(struct ui_out *o, const struct ui_overview *ov, const char *version);
void ui_metrics_label(struct ui_out *o, const char *s); /* a label value, escaped, no quotes */
void ui_overview_auto(struct ui_out *o, const struct ui_overview *ov, const char *version);

#endif
