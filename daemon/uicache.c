/*
 * uicache.c - the cache browser's ops (webui/ui_cache.h) over the shared store (cache/).
 *
 * The store is the process-wide one of cachereq.c; the cache rules (freshness heuristics,
 * CacheIgnoreQueryString) come from the config snapshot of the status page's request
 * (struct status_ctx), as they would for a proxied request under the same snapshot. URLs
 * typed by the admin go through the same normalisation as request targets (url_normalize,
 * then cache_key_normalise's query rule), so a purge hits the key a request would use.
 * Listing callbacks run inside the store's read transaction: they only copy figures out.
 */
#include "daemon/uicache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/cache.h"
#include "daemon/cachecfg.h"
#include "daemon/cachereq.h"
#include "daemon/cfg.h"
#include "daemon/ev.h"
#include "daemon/log.h"
#include "daemon/status.h"
#include "daemon/url.h"
#include "daemon/worker.h"
#include "webui/ui_cache.h"

static const struct cachecfg *
uicache_cfg(void *wctx)
{
	const struct status_ctx *sc = wctx;

	return sc && sc->cfg ? sc->cfg->cache : NULL;
}

static struct cache_store *
uicache_store(void *wctx)
{
	const struct cachecfg *cc = uicache_cfg(wctx);

	return cc && cc->root ? cachereq_store() : NULL;
}

static int
uicache_available(void *wctx)
{
	return uicache_store(wctx) != NULL;
}

static long
uicache_key(void *wctx, const char *url, char *out, size_t cap, const char **why)
{
	const struct cachecfg *cc = uicache_cfg(wctx);
	size_t n = strlen(url), len = 0;

	*why = "not an absolute URL (scheme://host/path)";
	if (!cc)
		return -1;
	if (n + URL_NORM_SLACK > cap) {
		*why = "URL too long";
		return -1;
	}
	if (cache_key_normalise(url, n, cc->rules.ignore_query_string, out, cap, &len) != CACHE_OK)
		return -1;
	return (long)len;
}

/* A prefix as the admin typed it, normalised like a CacheEnable prefix when it parses as the
 * start of an absolute URL ("http://Example.COM:80/a" -> "http://example.com/a"), else kept
 * as typed ("http://deb." is not a URL, and still a useful prefix of keys). */
static void
uicache_prefix(const char *in, char *out, size_t cap)
{
	size_t n = strlen(in);
	const char *why = NULL;

	if (n == 0 || n + URL_NORM_SLACK > cap ||
	    url_normalize(in, n, URL_N_PREFIX, out, cap, NULL, &why) != 0)
		snprintf(out, cap, "%s", in);
}

struct uicache_list_arg {
	const struct cachecfg *cc;
	int64_t now;
	ui_cache_item_f *cb;
	void *arg;
};

static int
uicache_list_cb(void *arg, const struct cache_item *it)
{
	struct uicache_list_arg *a = arg;
	struct ui_cache_item ui;

	memset(&ui, 0, sizeof(ui));
	ui.url = it->url.p;
	ui.url_len = it->url.n;
	ui.status = it->status;
	ui.vary = it->vary;
	ui.size = it->body_size;
	ui.stored = it->bytes;
	ui.age = cache_current_age(it->meta, a->now);
	ui.ttl = cache_freshness_lifetime(&a->cc->rules, it->meta) - ui.age;
	ui.hits = it->hits;
	ui.last_access = it->last_access;
	return a->cb(a->arg, &ui);
}

static long
uicache_list(void *wctx, struct ui_cache_query *q, ui_cache_item_f *cb, void *arg)
{
	struct cache_store *s = uicache_store(wctx);
	struct uicache_list_arg a = {uicache_cfg(wctx), (int64_t)time(NULL), cb, arg};
	const char *sub = q->substr ? q->substr : "", *after = q->after ? q->after : "";
	long n;

	q->next[0] = 0;
	q->scanned = 0;
	uicache_prefix(q->prefix ? q->prefix : "", q->prefix_used, sizeof(q->prefix_used));
	if (!s)
		return -1;
	struct cache_find f = {
		.prefix = q->prefix_used, .plen = strlen(q->prefix_used),
		.substr = sub, .slen = strlen(sub), .after = after, .alen = strlen(after),
		.max = q->max ? q->max : 50, .scan_max = UI_CACHE_SCAN_MAX,
		.next = q->next, .next_cap = UI_CACHE_CURSOR_CAP,
	};

	if (f.slen >= 256)
		return -1;
	n = cache_find(s, &f, uicache_list_cb, &a);
	q->scanned = f.scanned;
	return n < 0 ? -1 : n;
}

struct uicache_entry_arg {
	const struct cachecfg *cc;
	int64_t now;
	ui_cache_record_f *cb;
	void *arg;
};

static int
uicache_entry_cb(void *arg, const struct cache_item *it)
{
	static const char hex[] = "0123456789abcdef";
	struct uicache_entry_arg *a = arg;
	const struct cache_meta *m = it->meta;
	struct ui_cache_record r;

	memset(&r, 0, sizeof(r));
	r.url = m->url.p;
	r.url_len = m->url.n;
	r.stub = (m->flags & CACHE_MF_VARY_STUB) != 0;
	r.variant = it->variant;
	if (it->variant && it->mkeylen >= 40) {
		for (int i = 0; i < 8; i++) {
			r.variant_id[2 * i] = hex[it->mkey[32 + i] >> 4];
			r.variant_id[2 * i + 1] = hex[it->mkey[32 + i] & 15];
		}
	}
	r.vary = m->vary.p;
	r.vary_len = m->vary.n;
	r.status = m->status;
	r.headers = m->headers.p;
	r.headers_len = m->headers.n;
	r.size = m->body_size;
	r.stored = it->bytes;
	r.compressible = (m->flags & CACHE_MF_COMPRESSIBLE) != 0;
	r.response_time = m->response_time;
	r.date = m->date;
	r.expires = m->expires;
	r.last_modified = m->last_modified;
	r.age = cache_current_age(m, a->now);
	r.lifetime = cache_freshness_lifetime(&a->cc->rules, m);
	r.ttl = r.lifetime - r.age;
	r.hits = m->hits;
	r.last_access = m->last_access;
	return a->cb(a->arg, &r);
}

static long
uicache_entry(void *wctx, const char *key, ui_cache_record_f *cb, void *arg)
{
	struct cache_store *s = uicache_store(wctx);
	struct uicache_entry_arg a = {uicache_cfg(wctx), (int64_t)time(NULL), cb, arg};
	long n;

	if (!s)
		return -1;
	n = cache_entry_records(s, key, strlen(key), uicache_entry_cb, &a);
	return n < 0 ? -1 : n;
}

static long
uicache_count_prefix(void *wctx, const char *prefix, int *more, char *used, size_t cap)
{
	struct cache_store *s = uicache_store(wctx);
	long n;

	uicache_prefix(prefix, used, cap);
	if (!s)
		return -1;
	n = cache_count_prefix(s, used, strlen(used), UI_CACHE_COUNT_MAX, more);
	return n < 0 ? -1 : n;
}

static long
uicache_purge(void *wctx, const char *key)
{
	struct cache_store *s = uicache_store(wctx);
	long n;

	if (!s)
		return -1;
	n = cache_purge(s, key, strlen(key));
	return n < 0 ? -1 : n;
}

/* ---- purge by prefix, in batches on the worker's loop ----
 *
 * A purge of 100,000 URLs takes seconds: run in one call it would hold the worker serving the
 * page, and every other connection of that worker would wait. So a purge is a job of the
 * worker that started it: one batch (one write transaction, cache_purge_prefix_step) per turn
 * of the loop, posted (ev_post) so that the turn's I/O and timers run between batches. The
 * batch size adapts so that a batch takes about UICACHE_PURGE_TARGET_MS more than its commit
 * (a batch holds the worker, and the store's write lock that fills on other workers wait for,
 * about that long plus one commit). The job reports to the page
 * once (finished, or still running at UI_CACHE_PURGE_ANSWER_MS), then runs to the end on its
 * own; its progress is kept in a small process-wide table, under a mutex taken once per batch
 * and by the pages that show it (never on the request path). It is durable: recorded in the
 * store when it starts (cache_purge_pending_add), its cursor saved by every batch, so that a
 * stop or a crash leaves it to uicache_purge_resume at the next start.
 *
 * GATEHOUSE_TEST_PURGE_PACE=URLS:MS (tests only) fixes the batch size and pauses MS between
 * batches, so that a test can watch a purge of a few thousand entries in progress. */
#define UICACHE_PURGE_FIRST 64       /* URLs in the first batch */
#define UICACHE_PURGE_MIN 16
#define UICACHE_PURGE_MAX 4096
#define UICACHE_PURGE_TARGET_MS 4     /* per batch, on top of its commit */
#define UICACHE_PURGE_RUNNING 8      /* purges running at once, process-wide */
#define UICACHE_PURGE_SLOTS 16       /* running + recently finished, for the pages */

struct uicache_job;

struct uicache_slot {
	int used;
	struct ui_cache_purge_info info;
	char prefix[2048];
	struct uicache_job *job;      /* while running: a job cut short by the exit is no leak */
};

static pthread_mutex_t uicache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct uicache_slot uicache_slots[UICACHE_PURGE_SLOTS];
static unsigned uicache_next_id;
static unsigned uicache_running;

struct uicache_job {
	struct ev_loop *loop;
	struct ev_post post;
	struct ev_timer pause;
	struct cache_purge_cursor cur;
	char prefix[2048];
	size_t plen;
	size_t batch;                 /* URLs per batch */
	uint64_t floor_us;            /* the fastest batch so far: about a commit's fixed cost */
	int fixed;                    /* the test pace: batch fixed, pause_ms between batches */
	unsigned pause_ms;
	uint64_t answer_at;           /* ev_now() when the page gets "in progress" */
	struct uicache_slot *slot;
	unsigned id;
	long removed;
	ui_cache_purge_done_f *done;  /* NULL once reported or detached */
	void *arg;
};

static uint64_t
uicache_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The slot of a new purge: a free one, else the oldest finished one (with at most
 * UICACHE_PURGE_RUNNING running, one is always there). Under uicache_mu. */
static struct uicache_slot *
uicache_slot_take(void)
{
	struct uicache_slot *old = NULL;

	for (size_t i = 0; i < UICACHE_PURGE_SLOTS; i++) {
		struct uicache_slot *sl = &uicache_slots[i];

		if (!sl->used)
			return sl;
		if (sl->info.finished && (!old || sl->info.id < old->info.id))
			old = sl;
	}
	return old;
}

static void uicache_job_run(struct uicache_job *j);

static void
uicache_job_post_cb(struct ev_post *p)
{
	uicache_job_run(p->arg);
}

static void
uicache_job_timer_cb(struct ev_timer *t)
{
	uicache_job_run(t->arg);
}

static void
uicache_job_report(struct uicache_job *j, const struct ui_cache_purge_info *info)
{
	ui_cache_purge_done_f *done = j->done;

	j->done = NULL;
	if (done)
		done(j->arg, info);
}

static void
uicache_job_run(struct uicache_job *j)
{
	struct cache_store *s = cachereq_store();
	struct ui_cache_purge_info info;
	char prefix[sizeof(j->prefix)];
	uint64_t t0 = uicache_mono_us(), took;
	long n = s ? cache_purge_prefix_step(s, j->prefix, j->plen, &j->cur, j->batch)
	           : CACHE_EINVAL;
	int over = n < 0 || j->cur.done;

	took = uicache_mono_us() - t0;
	if (n > 0)
		j->removed += n;
	if (!j->fixed) {
		/* a batch costs a commit (fdatasync with the default CacheSync: milliseconds,
		 * whatever its size) plus its URLs: the fastest batch seen approximates the first,
		 * and the size is tuned on what comes on top of it */
		if (took < j->floor_us || j->floor_us == 0)
			j->floor_us = took;
		took -= j->floor_us;
		if (took > UICACHE_PURGE_TARGET_MS * 2000u && j->batch > UICACHE_PURGE_MIN)
			j->batch /= 2;
		else if (took < UICACHE_PURGE_TARGET_MS * 1000u && j->batch < UICACHE_PURGE_MAX)
			j->batch *= 2;
	}
	pthread_mutex_lock(&uicache_mu);
	j->slot->info.removed = j->removed;
	j->slot->info.urls = j->cur.urls;
	if (over) {
		j->slot->info.finished = (int64_t)time(NULL);
		j->slot->info.failed = n < 0;
		j->slot->job = NULL;
		uicache_running--;
	}
	info = j->slot->info;
	memcpy(prefix, j->slot->prefix, sizeof(prefix));
	pthread_mutex_unlock(&uicache_mu);
	info.prefix = prefix;
	if (over) {
		if (n < 0)
			log_warn("status page: purge of %s stopped after %ld records: %s", prefix,
			         j->removed, cache_strerror((int)n));
		else
			log_notice("status page: purged %ld records under %s", j->removed, prefix);
		uicache_job_report(j, &info);
		ev_post_stop(&j->post);
		ev_timer_stop(&j->pause);
		free(j);
		return;
	}
	if (j->done && ev_now_update(j->loop) >= j->answer_at)
		uicache_job_report(j, &info);  /* still running: the page says so, the job goes on */
	if (j->pause_ms)
		ev_timer_start(j->loop, &j->pause, j->pause_ms);
	else
		ev_post_start(j->loop, &j->post);
}

/* A job for prefix on loop, registered in the table; resumed (a purge recorded in the store
 * before a stop) when from is not NULL. Returns NULL with *why. */
static struct uicache_job *
uicache_job_new(struct ev_loop *loop, const char *prefix, long estimate, int64_t started,
                const struct cache_purge_pending *from, const char **why)
{
	const char *pace = getenv("GATEHOUSE_TEST_PURGE_PACE");
	struct uicache_job *j;

	*why = "the prefix is too long";
	if (strlen(prefix) >= sizeof(j->prefix))
		return NULL;
	*why = "out of memory";
	j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->loop = loop;
	snprintf(j->prefix, sizeof(j->prefix), "%s", prefix);
	j->plen = strlen(j->prefix);
	j->batch = UICACHE_PURGE_FIRST;
	if (from) {
		j->cur = from->cur;
		j->removed = (long)from->removed;
	}
	if (pace) {
		unsigned b = 0, ms = 0;

		if (sscanf(pace, "%u:%u", &b, &ms) == 2 && b > 0) {
			j->batch = b;
			j->pause_ms = ms;
			j->fixed = 1;
		}
	}
	j->answer_at = ev_now_update(j->loop) + UI_CACHE_PURGE_ANSWER_MS;
	ev_post_init(&j->post, uicache_job_post_cb, j);
	ev_timer_init(&j->pause, uicache_job_timer_cb, j);
	pthread_mutex_lock(&uicache_mu);
	if (uicache_running >= UICACHE_PURGE_RUNNING) {
		pthread_mutex_unlock(&uicache_mu);
		free(j);
		*why = "too many purges running: wait for one to finish";
		return NULL;
	}
	uicache_running++;
	j->slot = uicache_slot_take();
	memset(j->slot, 0, sizeof(*j->slot));
	j->slot->used = 1;
	j->slot->job = j;
	j->id = j->slot->info.id = ++uicache_next_id;
	j->slot->info.estimate = estimate;
	j->slot->info.started = started;
	j->slot->info.removed = j->removed;
	j->slot->info.urls = j->cur.urls;
	memcpy(j->slot->prefix, j->prefix, j->plen + 1);
	pthread_mutex_unlock(&uicache_mu);
	return j;
}

static void *
uicache_purge_prefix_start(void *wctx, const char *prefix, long estimate, char *used,
                           size_t cap, ui_cache_purge_done_f *done, void *arg,
                           const char **why)
{
	const struct status_ctx *sc = wctx;
	struct cache_store *s = uicache_store(wctx);
	struct uicache_job *j;

	uicache_prefix(prefix, used, cap);
	*why = "no cache store";
	if (!s || !sc || !sc->w)
		return NULL;
	j = uicache_job_new(sc->w->loop, used, estimate, (int64_t)time(NULL), NULL, why);
	if (!j)
		return NULL;
	j->done = done;
	j->arg = arg;
	/* recorded in the store before the first batch: a stop or a crash from here on leaves
	 * it to be resumed at the next start (uicache_purge_resume) */
	int rc = cache_purge_pending_add(s, j->prefix, j->plen, j->slot->info.started, estimate,
	                                 &j->cur.pending);
	if (rc != CACHE_OK)
		log_warn("status page: purge %u of %s cannot be recorded in the store (%s): a stop "
		         "before it ends leaves it partial", j->id, j->prefix, cache_strerror(rc));
	log_notice("status page: purge %u of everything under %s started", j->id, j->prefix);
	/* the first batch runs on the next turn: done is never called from here */
	ev_post_start(j->loop, &j->post);
	return j;
}

static int
uicache_resume_cb(void *arg, const struct cache_purge_pending *p)
{
	struct ev_loop *loop = arg;
	const char *why = NULL;
	struct uicache_job *j = uicache_job_new(loop, p->prefix, p->estimate, p->started, p, &why);

	if (!j) {
		log_warn("status page: the purge of %s stopped by the last exit cannot be resumed "
		         "now (%s); it is tried again at the next start", p->prefix, why);
		return 0;
	}
	log_notice("status page: purge %u of everything under %s resumed (stopped by the last "
	           "exit after %llu records)", j->id, j->prefix,
	           (unsigned long long)p->removed);
	ev_post_start(j->loop, &j->post);
	return 0;
}

void
uicache_purge_resume(struct ev_loop *loop)
{
	struct cache_store *s = cachereq_store();
	long n;

	if (!s)
		return;
	n = cache_purge_pending_list(s, uicache_resume_cb, loop);
	if (n < 0)
		log_warn("status page: cannot read the purges to resume: %s",
		         cache_strerror((int)n));
}

static void
uicache_purge_detach(void *handle)
{
	struct uicache_job *j = handle;

	if (j)
		j->done = NULL;
}

static size_t
uicache_purges(void *wctx, ui_cache_purge_f *cb, void *arg)
{
	struct uicache_slot *copy;
	size_t n = 0;

	(void)wctx;
	copy = malloc(sizeof(uicache_slots));
	if (!copy)
		return 0;
	pthread_mutex_lock(&uicache_mu);
	for (size_t i = 0; i < UICACHE_PURGE_SLOTS; i++)
		if (uicache_slots[i].used)
			copy[n++] = uicache_slots[i];
	pthread_mutex_unlock(&uicache_mu);
	/* newest first */
	for (size_t i = 1; i < n; i++)
		for (size_t k = i; k > 0 && copy[k].info.id > copy[k - 1].info.id; k--) {
			struct uicache_slot t = copy[k];

			copy[k] = copy[k - 1];
			copy[k - 1] = t;
		}
	for (size_t i = 0; cb && i < n; i++) {
		copy[i].info.prefix = copy[i].prefix;
		cb(arg, &copy[i].info);
	}
	free(copy);
	return n;
}

static const struct ui_cache_ops uicache_table = {
	.available = uicache_available,
	.key = uicache_key,
	.list = uicache_list,
	.entry = uicache_entry,
	.count_prefix = uicache_count_prefix,
	.purge = uicache_purge,
	.purge_prefix_start = uicache_purge_prefix_start,
	.purge_detach = uicache_purge_detach,
	.purges = uicache_purges,
};

const struct ui_cache_ops *
uicache_ops(void)
{
	return &uicache_table;
}
