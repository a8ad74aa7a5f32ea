/*
 * stats.c - per-worker request counters and their summing reader (see stats.h).
 *
 * Writers: each worker, on its own struct stats, from conn_log (stats_req). Readers: any
 * thread, through stats_sum, which walks the workers main registered (stats_set_workers);
 * the worker array lives until the process ends.
 */
#include "daemon/stats.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "daemon/health.h"
#include "daemon/log.h"
#include "daemon/pauth.h"
#include "daemon/worker.h"

const uint64_t stats_bucket_us[STATS_NBUCKETS] = {
	1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000,
};

static const char *const stats_outcome_names[STATS_OUT__COUNT] = {
	[STATS_HIT] = "hit", [STATS_MISS] = "miss", [STATS_REFRESH] = "refresh",
	[STATS_DENIED] = "denied", [STATS_BLOCKED] = "blocked", [STATS_ERROR] = "error",
	[STATS_LOCAL] = "local",
};

const char *
stats_outcome_name(enum stats_outcome o)
{
	return (unsigned)o < STATS_OUT__COUNT ? stats_outcome_names[o] : "?";
}

/* What an action string says, as flags: Squid codes end in _HIT for every answer the store
 * gave without asking upstream. */
#define STATS_F_HIT 1u
#define STATS_F_DENIED 2u
#define STATS_F_REFRESH 4u
#define STATS_F_NONE 8u
#define STATS_F_STORE 16u   /* served from the store (a refresh that kept the entry too) */

static unsigned
stats_action_flags(const char *a)
{
	if (a == NULL)
		return STATS_F_NONE;
	size_t n = strlen(a);
	if (n > 4 && memcmp(a + n - 4, "_HIT", 4) == 0)
		return STATS_F_HIT | STATS_F_STORE;
	if (strcmp(a, "TCP_DENIED") == 0)
		return STATS_F_DENIED;
	if (strncmp(a, "TCP_REFRESH_", 12) == 0)
		return STATS_F_REFRESH | (strcmp(a + 12, "UNMODIFIED") == 0 ||
		                          strcmp(a + 12, "FAIL_OLD") == 0 ? STATS_F_STORE : 0);
	if (strcmp(a, "NONE") == 0)
		return STATS_F_NONE;
	return 0;
}

static enum stats_outcome
stats_outcome_flags(unsigned f, int status, int blocked)
{
	if (blocked && status == 403)
		return STATS_BLOCKED;
	if (f & STATS_F_DENIED)
		return STATS_DENIED;
	if (f & STATS_F_HIT)
		return STATS_HIT;
	if (status >= 500)
		return STATS_ERROR;
	if (f & STATS_F_REFRESH)
		return STATS_REFRESH;
	if (f & STATS_F_NONE)
		return status >= 400 || status == 0 ? STATS_ERROR : STATS_LOCAL;
	return STATS_MISS;
}

enum stats_outcome
stats_outcome_of(const char *action, int status, int blocked)
{
	return stats_outcome_flags(stats_action_flags(action), status, blocked);
}

int
stats_from_store(const char *action)
{
	return (stats_action_flags(action) & STATS_F_STORE) != 0;
}

/* Add one to the slot of tag t in a tagged ring ((tag << 32) | count). */
static inline void
stats_ring_add(uint64_t *slot, uint64_t t)
{
	uint64_t v = __atomic_load_n(slot, __ATOMIC_RELAXED);
	if (v >> 32 != (t & 0xffffffffu))
		v = (t & 0xffffffffu) << 32;
	__atomic_store_n(slot, v + 1, __ATOMIC_RELAXED);
}

static uint64_t
stats_ring_count(const uint64_t *ring, size_t len, uint64_t from, uint64_t to)
{
	uint64_t sum = 0;
	for (uint64_t t = from; t <= to; t++) {
		uint64_t v = __atomic_load_n(&ring[t % len], __ATOMIC_RELAXED);
		if (v >> 32 == (t & 0xffffffffu))
			sum += v & 0xffffffffu;
	}
	return sum;
}

#ifndef GH_NO_STATS
void
stats_req(struct worker *w, const struct alog_entry *e, int blocked, const char *parent_key)
{
	struct stats *s = &w->stats;
	/* Actions are static strings (cache_outcome_squid's table, literals): the flags of the
	 * last one are kept, so a run of hits compares one pointer instead of strings. */
	if (e->action != s->memo_action) {
		s->memo_action = e->action;
		s->memo_flags = stats_action_flags(e->action);
	}
	enum stats_outcome o = stats_outcome_flags(s->memo_flags, e->status, blocked);
	STATS_ADD(s->req[o], 1);
	STATS_ADD(s->bytes_client_out, e->bytes);
	if ((s->memo_flags & STATS_F_STORE) && (o == STATS_HIT || o == STATS_REFRESH))
		STATS_ADD(s->bytes_store_out, e->bytes);

	/* The loop's wall clock has microseconds, its monotonic clock milliseconds: take the
	 * finer one unless the wall clock was stepped during the request. */
	uint64_t us = e->elapsed_ms * 1000;
	uint64_t wall = ev_wall_us(w->loop) - e->start_us;
	if (wall + 1000 > us && wall < us + 1000)
		us = wall;
	unsigned b = 0;
	while (b < STATS_NBUCKETS && us > stats_bucket_us[b])
		b++;
	STATS_ADD(s->dur_bin[b], 1);
	STATS_ADD(s->dur_sum_us, us);

	uint64_t sec = ev_now(w->loop) / 1000;
	stats_ring_add(&s->sec_ring[sec % STATS_RING_SECS], sec);
	if (o == STATS_BLOCKED)
		stats_ring_add(&s->min_blocked[(sec / 60) % STATS_BLOCK_MINS], sec / 60);
	if (parent_key != NULL && e->hier != NULL && strcmp(e->hier, "FIRSTUP_PARENT") == 0) {
		int i = health_index(health_get(parent_key));
		if (i >= 0 && i < STATS_PARENTS_MAX)
			STATS_ADD(s->parent_req[i], 1);
	}
}
#endif

void
stats_dns_publish(struct worker *w)
{
	struct stats *s = &w->stats;
	struct res_stats rs;
	res_stats_get(w->res, &rs);
	__atomic_store_n(&s->dns_lookups, rs.lookups, __ATOMIC_RELAXED);
	__atomic_store_n(&s->dns_hits, rs.cache_hits + rs.cache_neg_hits, __ATOMIC_RELAXED);
	__atomic_store_n(&s->dns_failures, rs.failures, __ATOMIC_RELAXED);
	__atomic_store_n(&s->dns_queries, rs.queries, __ATOMIC_RELAXED);
	__atomic_store_n(&s->dns_entries, rs.cache_entries, __ATOMIC_RELAXED);

	struct hpool_stats hs;
	memset(&hs, 0, sizeof(hs));
	if (w->pauth_wk != NULL)
		pauth_wk_helper_stats(w->pauth_wk, &hs);
	struct stats_helpers *h = &s->helpers;
	__atomic_store_n(&h->requests, hs.requests, __ATOMIC_RELAXED);
	__atomic_store_n(&h->replies, hs.replies, __ATOMIC_RELAXED);
	__atomic_store_n(&h->timeouts, hs.timeouts, __ATOMIC_RELAXED);
	__atomic_store_n(&h->deaths, hs.deaths, __ATOMIC_RELAXED);
	__atomic_store_n(&h->restarts, hs.restarts, __ATOMIC_RELAXED);
	__atomic_store_n(&h->overloads, hs.overloads, __ATOMIC_RELAXED);
	__atomic_store_n(&h->children_up, (uint64_t)hs.children_up, __ATOMIC_RELAXED);
	__atomic_store_n(&h->busy, (uint64_t)hs.busy, __ATOMIC_RELAXED);
	__atomic_store_n(&h->queued, (uint64_t)hs.queued, __ATOMIC_RELAXED);
}

/* ---- reading ---- */

static struct {
	pthread_mutex_t lock;
	struct worker *workers;
	unsigned n;
	struct stats_proc proc;
} stats_g = { .lock = PTHREAD_MUTEX_INITIALIZER };

uint64_t
stats_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#define LD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

void
stats_sum_of(struct stats_sum *out, const struct stats *const *v, size_t n, uint64_t mono_ms,
             uint64_t started_ms)
{
	memset(out, 0, sizeof(*out));
	uint64_t now = mono_ms / 1000, up = mono_ms > started_ms ? (mono_ms - started_ms) / 1000 : 0;
	/* The windows end with the current second (partly elapsed), so that a page read just
	 * after a burst shows it; right after start they are as long as the process has run. */
	out->win_1m = up < 60 ? (unsigned)up + 1 : 60;
	out->win_5m = up < 300 ? (unsigned)up + 1 : 300;
	for (size_t i = 0; i < n; i++) {
		const struct stats *s = v[i];
		for (int k = 0; k < STATS_OUT__COUNT; k++) {
			out->req[k] += LD(s->req[k]);
			out->requests += LD(s->req[k]);
		}
		out->bytes_client_out += LD(s->bytes_client_out);
		out->bytes_store_out += LD(s->bytes_store_out);
		out->bytes_upstream_in += LD(s->bytes_upstream_in);
		for (int k = 0; k <= STATS_NBUCKETS; k++)
			out->dur_bin[k] += LD(s->dur_bin[k]);
		out->dur_sum_us += LD(s->dur_sum_us);
		out->req_1m += stats_ring_count(s->sec_ring, STATS_RING_SECS,
		                                now >= 59 ? now - 59 : 0, now);
		out->req_5m += stats_ring_count(s->sec_ring, STATS_RING_SECS,
		                                now >= 299 ? now - 299 : 0, now);
		uint64_t min = now / 60;
		out->blocked_1h += stats_ring_count(s->min_blocked, STATS_BLOCK_MINS,
		                                    min >= 59 ? min - 59 : 0, min);
		for (int k = 0; k < STATS_PARENTS_MAX; k++)
			out->parent_req[k] += LD(s->parent_req[k]);
		out->dns_lookups += LD(s->dns_lookups);
		out->dns_hits += LD(s->dns_hits);
		out->dns_failures += LD(s->dns_failures);
		out->dns_queries += LD(s->dns_queries);
		out->dns_entries += LD(s->dns_entries);
		const struct stats_helpers *h = &s->helpers;
		out->helpers.requests += LD(h->requests);
		out->helpers.replies += LD(h->replies);
		out->helpers.timeouts += LD(h->timeouts);
		out->helpers.deaths += LD(h->deaths);
		out->helpers.restarts += LD(h->restarts);
		out->helpers.overloads += LD(h->overloads);
		out->helpers.children_up += LD(h->children_up);
		out->helpers.busy += LD(h->busy);
		out->helpers.queued += LD(h->queued);
	}
}

void
stats_sum(struct stats_sum *out, uint64_t mono_ms)
{
	pthread_mutex_lock(&stats_g.lock);
	struct worker *ws = stats_g.workers;
	unsigned n = stats_g.n;
	uint64_t started_ms = stats_g.proc.started_ms;
	pthread_mutex_unlock(&stats_g.lock);

	const struct stats *v[256] = { NULL };
	size_t k = 0;
	for (unsigned i = 0; i < n && k < sizeof(v) / sizeof(v[0]); i++)
		v[k++] = &ws[i].stats;
	stats_sum_of(out, v, k, mono_ms, started_ms);
	out->workers = n;
	uint64_t bytes_in = 0;
	for (unsigned i = 0; i < n; i++) {
		struct worker_stats *st = &ws[i].st;
		out->conns_clients += LD(st->conns_open);
		out->conns_upstreams += LD(st->ups_open);
		out->conns_tunnels += LD(st->tunnels_open);
		out->accepted += LD(st->accepted);
		out->tunnels_total += LD(st->tunnels);
		out->up_connects += LD(st->up_connects);
		out->up_reused += LD(st->up_reused);
		bytes_in += LD(st->bytes_in);
	}
	/* struct pauth is process-wide: every worker points at the same one (main.c) */
	if (n > 0 && ws[0].pauth != NULL) {
		struct pauth_stats ps;
		pauth_get_stats(ws[0].pauth, &ps);
		out->auth_ok = ps.ok;
		out->auth_failed = ps.failed;
		out->auth_challenged = ps.challenged;
		out->auth_limited = ps.limited;
		out->auth_unavailable = ps.unavailable;
		out->auth_cache_hits = ps.cache_hits;
		out->auth_cache_misses = ps.cache_misses;
		out->auth_conn_hits = ps.conn_hits;
		out->auth_verifications = ps.verifications;
	}
	/* bytes_in counts what the worker read from clients and upstreams alike */
	out->bytes_client_in = bytes_in > out->bytes_upstream_in ? bytes_in - out->bytes_upstream_in
	                                                         : 0;
}

void
stats_set_workers(struct worker *w, unsigned n)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	pthread_mutex_lock(&stats_g.lock);
	stats_g.workers = w;
	stats_g.n = n;
	stats_g.proc.started = ts.tv_sec;
	stats_g.proc.started_ms = stats_mono_ms();
	pthread_mutex_unlock(&stats_g.lock);
}

void
stats_reload_note(const char *err, int applied)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	pthread_mutex_lock(&stats_g.lock);
	stats_g.proc.reload_at = ts.tv_sec;
	stats_g.proc.reload_ok = err == NULL;
	stats_g.proc.reload_applied = err == NULL || applied;
	snprintf(stats_g.proc.reload_err, sizeof(stats_g.proc.reload_err), "%s", err ? err : "");
	pthread_mutex_unlock(&stats_g.lock);
}

void
stats_proc_get(struct stats_proc *out)
{
	pthread_mutex_lock(&stats_g.lock);
	*out = stats_g.proc;
	pthread_mutex_unlock(&stats_g.lock);
}
