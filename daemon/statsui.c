/*
 * statsui.c - the daemon's side of webui/ui_stats.h: fills struct ui_overview from the
 * workers' counters (stats.c; proxy authentication's too), the store (cachereq_store_stats),
 * the policy and its resolved addresses (polres), and the parents' health (health.c). Called
 * by webui/ on the worker that serves the status page, through struct ui_ops' stats table
 * (stats_ui_ops()).
 *
 * Reading takes the store's write mutex briefly (cache_store_stats) and this file's own
 * sampler mutex, which only page renders take: nothing on the request path waits for it.
 */
#include "daemon/stats.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cache/cache.h"
#include "daemon/cachereq.h"
#include "daemon/health.h"
#include "daemon/polres.h"
#include "daemon/status.h"
#include "daemon/tls.h"
#include "daemon/worker.h"
#include "webui/ui_stats.h"

_Static_assert(UI_OUTCOMES == STATS_OUT__COUNT, "ui_stats.h and stats.h list the outcomes");
_Static_assert(UI_DUR_BUCKETS == STATS_NBUCKETS, "ui_stats.h and stats.h: histogram bounds");
_Static_assert(STATS_HIT == 0 && STATS_MISS == 1 && STATS_REFRESH == 2 && STATS_DENIED == 3 &&
               STATS_BLOCKED == 4 && STATS_ERROR == 5 && STATS_LOCAL == 6,
               "the order of ui_outcome_names");

/* Evictions/s: the store counts evictions since start; the rate is taken between the
 * newest sample at least 60 s old and now. Samples are taken by page renders, at most one
 * every 10 s (so the rate covers 60-70 s once pages are read regularly; since start before). */
#define STATSUI_SAMPLES 8
static struct {
	pthread_mutex_t lock;
	uint64_t t_ms[STATSUI_SAMPLES], n[STATSUI_SAMPLES];
	unsigned next, count;
} statsui_ev = { .lock = PTHREAD_MUTEX_INITIALIZER };

static double
statsui_evict_rate(uint64_t evictions, uint64_t now_ms, uint64_t started_ms)
{
	double rate;
	pthread_mutex_lock(&statsui_ev.lock);
	uint64_t t0 = started_ms, n0 = 0;
	for (unsigned i = 0; i < statsui_ev.count; i++) {
		unsigned k = (statsui_ev.next + STATSUI_SAMPLES - 1 - i) % STATSUI_SAMPLES;
		if (now_ms - statsui_ev.t_ms[k] >= 60000) {
			t0 = statsui_ev.t_ms[k];
			n0 = statsui_ev.n[k];
			break;
		}
	}
	rate = now_ms > t0 && evictions >= n0 ? (double)(evictions - n0) * 1000.0 / (now_ms - t0)
	                                      : 0.0;
	unsigned last = (statsui_ev.next + STATSUI_SAMPLES - 1) % STATSUI_SAMPLES;
	if (statsui_ev.count == 0 || now_ms - statsui_ev.t_ms[last] >= 10000) {
		statsui_ev.t_ms[statsui_ev.next] = now_ms;
		statsui_ev.n[statsui_ev.next] = evictions;
		statsui_ev.next = (statsui_ev.next + 1) % STATSUI_SAMPLES;
		if (statsui_ev.count < STATSUI_SAMPLES)
			statsui_ev.count++;
	}
	pthread_mutex_unlock(&statsui_ev.lock);
	return rate;
}

static void
statsui_dns_servers(const struct res_conf *rc, char *out, size_t n)
{
	size_t o = 0;
	out[0] = '\0';
	if (rc->nservers == 0) {
		snprintf(out, n, "/etc/resolv.conf");
		return;
	}
	for (unsigned i = 0; i < rc->nservers && o < n; i++) {
		char a[80];
		const struct sockaddr_storage *ss = &rc->servers[i];
		unsigned port = ss->ss_family == AF_INET6
		                ? ntohs(((const struct sockaddr_in6 *)ss)->sin6_port)
		                : ntohs(((const struct sockaddr_in *)ss)->sin_port);
		gh_addr_text(ss, a, sizeof(a), port != 0 && port != 53);
		o += (size_t)snprintf(out + o, n - o, "%s%s", i ? ", " : "", a);
	}
}

static int
statsui_overview(void *wctx, struct ui_overview *ov)
{
	struct status_ctx *sc = wctx;
	struct cfg *cfg = sc != NULL && sc->cfg != NULL ? sc->cfg
	                  : sc != NULL && sc->w != NULL ? sc->w->cfg : NULL;
	uint64_t now_ms = stats_mono_ms();
	struct stats_sum s;
	struct stats_proc proc;
	struct timespec ts;

	stats_sum(&s, now_ms);
	stats_proc_get(&proc);
	clock_gettime(CLOCK_REALTIME, &ts);
	ov->now = ts.tv_sec;
	ov->started = proc.started;
	snprintf(ov->config, sizeof(ov->config), "%s", cfg && cfg->path ? cfg->path : "-");
	ov->reload_at = proc.reload_at;
	ov->reload_ok = proc.reload_ok;
	ov->reload_applied = proc.reload_applied;
	snprintf(ov->reload_err, sizeof(ov->reload_err), "%s", proc.reload_err);

	ov->workers = s.workers;
	ov->conns_clients = s.conns_clients;
	ov->conns_upstreams = s.conns_upstreams;
	ov->conns_tunnels = s.conns_tunnels;
	ov->accepted = s.accepted;
	memcpy(ov->req, s.req, sizeof(ov->req));
	ov->requests = s.requests;
	ov->req_1m = s.req_1m;
	ov->req_5m = s.req_5m;
	ov->win_1m = s.win_1m;
	ov->win_5m = s.win_5m;
	ov->bytes_client_out = s.bytes_client_out;
	ov->bytes_client_in = s.bytes_client_in;
	ov->bytes_upstream_in = s.bytes_upstream_in;
	ov->bytes_store_out = s.bytes_store_out;
	memcpy(ov->dur_le_us, stats_bucket_us, sizeof(ov->dur_le_us));
	memcpy(ov->dur_bin, s.dur_bin, sizeof(ov->dur_bin));
	ov->dur_sum_us = s.dur_sum_us;

	struct tls_counters tc;
	tls_counters_get(&tc);
	ov->tls_srv_handshakes = tc.srv_handshakes;
	ov->tls_srv_resumed = tc.srv_resumed;
	ov->tls_srv_failed = tc.srv_failed;
	ov->tls_cli_handshakes = tc.cli_handshakes;
	ov->tls_cli_resumed = tc.cli_resumed;
	ov->tls_cli_failed = tc.cli_failed;
	ov->tls_ktls = tc.ktls_send;

	struct cache_stats cs;
	if (cachereq_store_stats(&cs) == 0) {
		ov->cache_on = 1;
		ov->cache_entries = cs.entries;
		ov->cache_bytes = cs.bytes_used;
		ov->cache_size = cs.map_size;
		ov->cache_evictions = cs.evicted_entries;
		ov->cache_evictions_per_s = statsui_evict_rate(cs.evicted_entries, now_ms,
		                                               proc.started_ms);
		ov->cache_pinned = cs.pinned_bodies;
		ov->cache_gc_bodies = cs.gc_bodies;
		ov->cache_compress_in = cs.compress_in;
		ov->cache_compress_out = cs.compress_out;
	}

	ov->dns_entries = s.dns_entries;
	ov->dns_lookups = s.dns_lookups;
	ov->dns_hits = s.dns_hits;
	ov->dns_failures = s.dns_failures;
	ov->dns_queries = s.dns_queries;
	if (cfg != NULL)
		statsui_dns_servers(&cfg->dns, ov->dns_servers, sizeof(ov->dns_servers));

	ov->auth_sections = cfg ? (unsigned)cfg->nauths : 0;
	ov->auth_ok = s.auth_ok;
	ov->auth_failed = s.auth_failed;
	ov->auth_challenged = s.auth_challenged;
	ov->auth_limited = s.auth_limited;
	ov->auth_unavailable = s.auth_unavailable;
	ov->auth_cache_hits = s.auth_cache_hits;
	ov->auth_cache_misses = s.auth_cache_misses;
	ov->auth_conn_hits = s.auth_conn_hits;
	ov->auth_verifications = s.auth_verifications;
	ov->helper_up = s.helpers.children_up;
	ov->helper_busy = s.helpers.busy;
	ov->helper_queued = s.helpers.queued;
	ov->helper_requests = s.helpers.requests;
	ov->helper_replies = s.helpers.replies;
	ov->helper_timeouts = s.helpers.timeouts;
	ov->helper_deaths = s.helpers.deaths;
	ov->helper_restarts = s.helpers.restarts;
	ov->helper_overloads = s.helpers.overloads;

	const struct pol_addrset *bl = polres_blocked(gh.polres);
	ov->block_entries = cfg ? pol_block_count(cfg->pol) : 0;
	ov->blocked_addrs = bl ? pol_addrset_count(bl) : 0;
	ov->blocked_1h = s.blocked_1h;

	size_t np = cfg && cfg->pol ? pol_parent_count(cfg->pol) : 0;
	ov->nparents = np;
	for (size_t i = 0; i < np && i < UI_PARENTS_MAX; i++) {
		const struct pol_parent *pp = pol_parent_get(cfg->pol, i);
		struct ui_parent *up = &ov->parents[i];
		struct health *h = health_get(pp->key);
		struct health_info hi;
		health_info_get(h, now_ms, &hi);
		snprintf(up->name, sizeof(up->name), "%s", pp->key);
		up->up = !hi.down;
		up->backoff_left_ms = hi.backoff_left_ms;
		up->fails = hi.fails;
		memcpy(up->last_err, hi.last_err, sizeof(up->last_err));
		up->last_err_at = hi.last_err_at;
		int k = health_index(h);
		up->requests = k >= 0 && k < STATS_PARENTS_MAX ? s.parent_req[k] : 0;
	}
	return 0;
}

static const struct ui_stats_ops statsui_ops = {
	.overview = statsui_overview,
};

const struct ui_stats_ops *
stats_ui_ops(void)
{
	return &statsui_ops;
}
