/*
 * history.c - the status page's history (issue 11): for each worker, the chart rings
 * (series.c), the top-list sketches (sketch.c) and a ring of its last UI_RECENT_MAX requests,
 * written by history_note() from proxy.c's access-log hook and read through the
 * webui/ui_series.h table.
 *
 * Concurrency: each worker has its own struct hist_worker, written only by that worker.
 * A per-worker lock guards it: the writer takes it once per request, for well under a
 * microsecond, and nobody else touches it except a status page being rendered (which takes
 * each worker's lock in turn, never two at once, for at most tens of microseconds). So the
 * request path sees an uncontended lock of its own, and no lock, cache line or
 * read-modify-write is shared across workers. The lock is a test-and-set spinlock that
 * yields the CPU after a few spins, not a pthread mutex: uncontended it costs one atomic
 * exchange and a store (tests/bench/hitcost.sh: 42 instructions per cache hit fewer than the
 * mutex), and contention only happens while a page copies out this worker's data.
 * (A seqlock would spare the writer the exchange but makes readers copy ~0.9 MB and retry.)
 *
 * What a request adds is gathered first (struct hist_worker's pt/pv, host, client, user):
 * the counts of the current second, and the current run of requests for one host, for one
 * client and for one user; they go into the rings and sketches when the second, the key or
 * the hour changes, or when a reader takes the lock (hist_flush). The sums are the same as
 * adding each request on its own, and a reader always sees every request noted before it; but
 * a run of hits from one client for one host (keep-alive, a page's resources) costs two key
 * comparisons instead of two hashes and four sketch updates (tests/bench/hitcost.sh: 1,160
 * -> about 650 instructions per 1 KiB hit for the page's counting; with a new host and
 * client on every request, build/bench/history_bench's worst case, about 4 % more than
 * adding directly: the key is copied once more).
 *
 * Users (issue 14): the name in the log entry's user field, which proxy.c fills only with a
 * name proxy authentication verified ("-" otherwise): a name a client merely sent never
 * reaches a list, so nobody can fill the top list or the page with invented names. A request
 * without a user adds nothing to the users' sketches (their total is the authenticated
 * traffic, the base of the shares shown).
 *
 * A worker's structure is allocated on its first request and published with a release store
 * into hist_workers[id]; readers load it with acquire. It lives until the process ends.
 *
 * Top lists cover "the last hour" with two sketches per list: the current clock hour and
 * the previous one. A read adds the current one whole and the previous one scaled by the
 * part of it that is still inside the last 60 minutes (the sliding-window estimate of
 * rate limiters): at 10:15 the list is 10:00-10:15 plus 3/4 of 09:00-10:00. This keeps the
 * memory fixed and the swap cheap (a reset of the older pair each hour, on the next write),
 * while never counting anything older than two hours and never over-weighting an old burst
 * as much as a plain "current + previous" would. Decaying counters would need a
 * multiplication of every counter on every tick, or floating-point timestamps per counter.
 */
#include "daemon/history.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/log.h"
#include "daemon/series.h"
#include "daemon/sketch.h"
#include "webui/ui_series.h"

#define HIST_MAX_WORKERS 256u   /* Workers takes 1..256 */
#define HIST_WINDOW 3600        /* top lists: one clock hour per sketch */

_Static_assert((int)SERIES_NMETRIC == (int)UI_SERIES_NMETRIC, "series metrics differ");
_Static_assert(SERIES_MAX_SLOTS == UI_SERIES_MAX, "series sizes differ");
_Static_assert(SKETCH_KEY_MAX == sizeof(((struct ui_top_item *)0)->key), "key sizes differ");
_Static_assert(SKETCH_NOTE_MAX == sizeof(((struct ui_top_item *)0)->note), "note sizes differ");

/* A run of requests for one key, to be added to a req and a bytes sketch. */
struct hist_run {
	size_t len;                   /* 0: none */
	uint64_t req, bytes;
	char key[SKETCH_KEY_MAX];
};

struct hist_worker {
	atomic_flag lock;             /* hist_lock / hist_unlock */
	struct series_ring fine;      /* 10 s x 360 */
	struct series_ring coarse;    /* 5 min x 288 */
	int64_t win;                  /* clock hour (t / HIST_WINDOW) of sk[cur] */
	unsigned cur;                 /* 0 or 1 */
	struct sketch sk[2][UI_TOP_NKIND];
	char notes[2][SKETCH_CAP][SKETCH_NOTE_MAX];  /* UI_TOP_BLOCKED's rules */
	/* Not yet in the rings and sketches (hist_flush): this second's series counts, and the
	 * run of requests for the last host and for the last client, which a worker's requests
	 * repeat often (keep-alive connections, page resources). Equal to adding each request
	 * on its own: space-saving adds w1 then w2 to a key as it adds w1 + w2. */
	int64_t pt;                   /* second of pv, -1 none */
	uint64_t pv[SERIES_NMETRIC];
	struct hist_run host, client, user;
	unsigned rhead;               /* next slot of recent */
	unsigned rn;                  /* slots filled */
	struct ui_recent recent[UI_RECENT_MAX];
};

static _Atomic(struct hist_worker *) hist_workers[HIST_MAX_WORKERS];

static void
hist_lock(struct hist_worker *h)
{
	unsigned spins = 0;
	while (atomic_flag_test_and_set_explicit(&h->lock, memory_order_acquire)) {
		/* held by a page copying this worker's data out: a few microseconds; if the
		 * holder was preempted, let it run */
		if (++spins >= 64) {
			sched_yield();
			spins = 0;
		}
	}
}

static void
hist_unlock(struct hist_worker *h)
{
	atomic_flag_clear_explicit(&h->lock, memory_order_release);
}

static struct hist_worker *
hist_worker_new(void)
{
	struct hist_worker *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return NULL;
	atomic_flag_clear(&h->lock);
	series_init(&h->fine, 10, 360);
	series_init(&h->coarse, 300, 288);
	h->win = -1;
	h->pt = -1;
	for (unsigned i = 0; i < 2; i++)
		for (unsigned k = 0; k < UI_TOP_NKIND; k++)
			sketch_init(&h->sk[i][k], k == UI_TOP_BLOCKED ? h->notes[i] : NULL);
	return h;
}

/* src of known length n, cut to fit */
static void
hist_copy_n(char *dst, size_t cap, const char *src, size_t n)
{
	if (n > cap - 1)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void
hist_copy(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strnlen(src, cap - 1) : 0;
	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
}

/* An upstream error: the proxy's own 502/504 (an origin or parent failed or timed out), or
 * the same status relayed from a parent. */
static int
hist_up_error(int status)
{
	return status == 502 || status == 504;
}

/* Served from the store: TCP_HIT, TCP_IMS_HIT, TCP_INM_HIT (Squid's codes end in HIT). */
static int
hist_hit(const char *action, size_t alen)
{
	return alen >= 3 && memcmp(action + alen - 3, "HIT", 3) == 0;
}

/* Add a run to its sketches of the current hour and forget it. */
static void
hist_run_flush(struct hist_worker *h, struct hist_run *r, enum ui_top_kind kreq,
               enum ui_top_kind kbytes)
{
	if (r->len == 0)
		return;
	uint32_t hash = sketch_hash(r->key, r->len);
	sketch_add_hashed(&h->sk[h->cur][kreq], r->key, r->len, hash, r->req, NULL);
	sketch_add_hashed(&h->sk[h->cur][kbytes], r->key, r->len, hash, r->bytes, NULL);
	r->len = 0;
	r->req = 0;
	r->bytes = 0;
}

/* Count one request for key into run r: the same key as the run's adds to it, another
 * one flushes the run and starts a new one. */
static void
hist_run_note(struct hist_worker *h, struct hist_run *r, const char *key, size_t len,
              uint64_t bytes, enum ui_top_kind kreq, enum ui_top_kind kbytes)
{
	if (len >= SKETCH_KEY_MAX)
		len = SKETCH_KEY_MAX - 1; /* as the sketch cuts it */
	if (len != r->len || memcmp(key, r->key, len) != 0) {
		hist_run_flush(h, r, kreq, kbytes);
		memcpy(r->key, key, len);
		r->len = len;
	}
	r->req++;
	r->bytes += bytes;
}

static void
hist_flush_runs(struct hist_worker *h)
{
	hist_run_flush(h, &h->host, UI_TOP_HOSTS_REQ, UI_TOP_HOSTS_BYTES);
	hist_run_flush(h, &h->client, UI_TOP_CLIENTS_REQ, UI_TOP_CLIENTS_BYTES);
	hist_run_flush(h, &h->user, UI_TOP_USERS_REQ, UI_TOP_USERS_BYTES);
}

static void
hist_flush_series(struct hist_worker *h)
{
	if (h->pt < 0)
		return;
	series_add(&h->fine, h->pt, h->pv);
	series_add(&h->coarse, h->pt, h->pv);
	memset(h->pv, 0, sizeof(h->pv));
	h->pt = -1;
}

/* Everything noted into the rings and sketches: before a reader looks (under the lock). */
static void
hist_flush(struct hist_worker *h)
{
	hist_flush_series(h);
	hist_flush_runs(h);
}

/* Move the sketches to the hour of win: the next hour keeps the current pair as previous,
 * a later one starts both afresh. */
static void
hist_window(struct hist_worker *h, int64_t win)
{
	if (win <= h->win)
		return;
	unsigned old = h->cur ^ 1u;
	if (win == h->win + 1) {
		for (unsigned k = 0; k < UI_TOP_NKIND; k++)
			sketch_reset(&h->sk[old][k]);
		h->cur = old;
	} else {
		for (unsigned i = 0; i < 2; i++)
			for (unsigned k = 0; k < UI_TOP_NKIND; k++)
				sketch_reset(&h->sk[i][k]);
	}
	h->win = win;
}

void
history_note(unsigned id, const struct alog_entry *e, const char *host, uint64_t up_bytes,
             const char *rule)
{
	if (id >= HIST_MAX_WORKERS)
		return;
	/* only this worker stores into its slot: a relaxed load of its own pointer suffices */
	struct hist_worker *h = atomic_load_explicit(&hist_workers[id], memory_order_relaxed);
	if (h == NULL) {
		h = hist_worker_new();
		if (h == NULL)
			return;                /* no memory: the page shows less, the proxy goes on */
		atomic_store_explicit(&hist_workers[id], h, memory_order_release);
	}
	uint64_t end_us = e->start_us + e->elapsed_ms * 1000;
	int64_t t = (int64_t)(end_us / 1000000);
	const char *action = e->action ? e->action : "NONE";
	size_t alen = strlen(action);
	int tunnel = alen == 10 && memcmp(action, "TCP_TUNNEL", 10) == 0;
	uint64_t v[SERIES_NMETRIC] = {
		[SERIES_REQUESTS] = 1,
		[SERIES_HITS] = hist_hit(action, alen),
		[SERIES_BYTES_CLIENT] = e->bytes,
		/* a tunnel relays what the origin sends: that is what reached the client */
		[SERIES_BYTES_UPSTREAM] = tunnel ? e->bytes : up_bytes,
		[SERIES_UP_ERRORS] = hist_up_error(e->status),
	};
	const char *client = e->client ? e->client : "-";
	size_t clen = strlen(client);
	size_t hlen = host ? strlen(host) : 0;
	/* "-": not authenticated (the access log's placeholder) */
	const char *user = e->user != NULL && e->user[0] != '\0' && strcmp(e->user, "-") != 0
	                   ? e->user : "";
	size_t ulen = strlen(user);
	int blocked = rule != NULL && e->status == 403 && hlen > 0 &&
	              alen == 10 && memcmp(action, "TCP_DENIED", 10) == 0;

	hist_lock(h);
	if (t != h->pt) {
		hist_flush_series(h);
		h->pt = t;
	}
	for (int m = 0; m < SERIES_NMETRIC; m++)
		h->pv[m] += v[m];
	int64_t win = t / HIST_WINDOW;
	if (win > h->win) {
		hist_flush_runs(h);     /* they belong to the hour that ends */
		hist_window(h, win);
	}
	if (win == h->win) {
		if (hlen > 0)
			hist_run_note(h, &h->host, host, hlen, e->bytes, UI_TOP_HOSTS_REQ,
			              UI_TOP_HOSTS_BYTES);
		hist_run_note(h, &h->client, client, clen, e->bytes, UI_TOP_CLIENTS_REQ,
		              UI_TOP_CLIENTS_BYTES);
		if (ulen > 0)
			hist_run_note(h, &h->user, user, ulen, e->bytes, UI_TOP_USERS_REQ,
			              UI_TOP_USERS_BYTES);
		if (blocked)
			sketch_add(&h->sk[h->cur][UI_TOP_BLOCKED], host, hlen, 1, rule);
	}
	struct ui_recent *r = &h->recent[h->rhead];
	r->t_ms = (int64_t)(end_us / 1000);
	r->dur_ms = e->elapsed_ms;
	r->bytes = e->bytes;
	r->status = e->status;
	hist_copy_n(r->client, sizeof(r->client), client, clen);
	hist_copy_n(r->user, sizeof(r->user), user, ulen);
	hist_copy(r->method, sizeof(r->method), e->method);
	hist_copy_n(r->action, sizeof(r->action), action, alen);
	hist_copy_n(r->host, sizeof(r->host), host ? host : "", hlen);
	hist_copy(r->url, sizeof(r->url), e->url);
	h->rhead = (h->rhead + 1) % UI_RECENT_MAX;
	if (h->rn < UI_RECENT_MAX)
		h->rn++;
	hist_unlock(h);
}

/* ---- reading (any thread) ---- */

static struct hist_worker *
hist_get(unsigned id)
{
	return atomic_load_explicit(&hist_workers[id], memory_order_acquire);
}

static int
hist_series(void *wctx, enum ui_series_span span, int64_t now, struct ui_series *out)
{
	(void)wctx;
	memset(out, 0, sizeof(*out));
	out->res = span == UI_SPAN_DAY ? 300 : 10;
	out->n = span == UI_SPAN_DAY ? 288 : 360;
	out->start = (series_period(now, out->res) - (int64_t)out->n + 1) * (int64_t)out->res;
	for (unsigned id = 0; id < HIST_MAX_WORKERS; id++) {
		struct hist_worker *h = hist_get(id);
		if (h == NULL)
			continue;
		hist_lock(h);
		hist_flush(h);
		series_sum(span == UI_SPAN_DAY ? &h->coarse : &h->fine, now, out->v);
		hist_unlock(h);
	}
	return 0;
}

static int
hist_top(void *wctx, enum ui_top_kind kind, int64_t now, struct ui_top *out)
{
	(void)wctx;
	memset(out, 0, sizeof(*out));
	if ((unsigned)kind >= UI_TOP_NKIND)
		return -1;
	unsigned nw = 0;
	for (unsigned id = 0; id < HIST_MAX_WORKERS; id++)
		nw += hist_get(id) != NULL;
	struct sketch_top t;
	if (sketch_top_init(&t, 2 * (nw ? nw : 1)) < 0)
		return -1;
	int64_t win = now / HIST_WINDOW;
	uint64_t left = (uint64_t)(HIST_WINDOW - now % HIST_WINDOW); /* of the previous hour */
	for (unsigned id = 0; id < HIST_MAX_WORKERS; id++) {
		struct hist_worker *h = hist_get(id);
		if (h == NULL)
			continue;
		hist_lock(h);
		hist_flush(h);
		/* previous hour first, so the current hour's notes win */
		if (h->win == win) {
			sketch_top_add(&t, &h->sk[h->cur ^ 1u][kind], left, HIST_WINDOW);
			sketch_top_add(&t, &h->sk[h->cur][kind], 1, 1);
		} else if (h->win == win - 1) {
			sketch_top_add(&t, &h->sk[h->cur][kind], left, HIST_WINDOW);
		}
		hist_unlock(h);
	}
	sketch_top_finish(&t);
	out->total = t.total;
	for (size_t i = 0; i < t.n && out->n < UI_TOP_MAX; i++) {
		if (t.it[i].count == 0)
			continue;               /* scaled down to nothing */
		struct ui_top_item *o = &out->item[out->n++];
		memcpy(o->key, t.it[i].key, sizeof(o->key));
		memcpy(o->note, t.it[i].note, sizeof(o->note));
		o->count = t.it[i].count;
		o->err = t.it[i].err;
	}
	sketch_top_fini(&t);
	return 0;
}

static int
hist_recent_cmp(const void *a, const void *b)
{
	const struct ui_recent *x = a, *y = b;
	return x->t_ms != y->t_ms ? (x->t_ms > y->t_ms ? -1 : 1) : 0;
}

static size_t
hist_recent(void *wctx, struct ui_recent *out, size_t cap)
{
	(void)wctx;
	/* Each worker's ring is already in time order; gather all (newest UI_RECENT_MAX per
	 * worker), sort by end time and keep the newest cap. */
	size_t n = 0, room = 0;
	struct ui_recent *all = NULL;
	for (unsigned id = 0; id < HIST_MAX_WORKERS; id++) {
		struct hist_worker *h = hist_get(id);
		if (h == NULL)
			continue;
		if (n + UI_RECENT_MAX > room) {
			size_t nroom = room ? 2 * room : 4 * UI_RECENT_MAX;
			struct ui_recent *na = realloc(all, nroom * sizeof(*all));
			if (na == NULL)
				break;
			all = na;
			room = nroom;
		}
		hist_lock(h);
		for (unsigned i = 0; i < h->rn; i++)
			all[n++] = h->recent[(h->rhead + UI_RECENT_MAX - 1 - i) % UI_RECENT_MAX];
		hist_unlock(h);
	}
	if (n > 0)
		qsort(all, n, sizeof(*all), hist_recent_cmp);
	if (n > cap)
		n = cap;
	if (n > 0)
		memcpy(out, all, n * sizeof(*out));
	free(all);
	return n;
}

static const struct ui_series_ops hist_ops = {
	.series = hist_series,
	.top = hist_top,
	.recent = hist_recent,
};

const struct ui_series_ops *
history_ui_ops(void)
{
	return &hist_ops;
}
