/*
 * cachereq.c - the cache inside the proxy: the shared store and its maintenance thread, and
 * the per-request decisions proxy.c hooks in (see cachereq.h for the flow).
 *
 * Invariants: a struct creq belongs to one request on one worker thread; no LMDB transaction
 * is held between calls (lookups copy the entry, chunks are read one short transaction
 * each); a fill is committed only when the relayed body ended completely and within
 * CacheMaxFileSize, and aborted otherwise (cachereq_free).
 *
 * Collapsed forwarding, process-wide: a plain GET miss (no If-*, Range, Authorization or
 * no-cache) registers a struct cq_fill under its key and leads it; later plain misses for the
 * key, on any worker, find it and follow (they hold a reference and wait). When the leader's
 * response head arrives and is being stored, the fill publishes a copy of the head (status,
 * fields, times, Content-Length or -1, the Vary spec and the leader's Vary hash) and its body
 * id; each follower, on its own thread, builds its own entry from that head (a follower whose
 * Vary-nominated fields differ forwards on its own) and streams the body from the store as
 * the leader's chunks commit, with Content-Length or, when the origin gave none, chunked (or
 * close-delimited to HTTP/1.0). The last partial chunk becomes readable at commit. A fill
 * that is not stored (not storable, an error, the leader gone before its head) releases the
 * followers still waiting to forward on their own; one that fails in the middle of its body
 * (the origin truncated, the store refused) ends the streaming followers' responses without
 * their final framing (short of the Content-Length, or no last chunk), never as complete.
 *
 * Threads: the registry and every cq_fill field are under cq_g.reg_lock (one lock: fills
 * change once per 256 KiB chunk). A cq_fill lives while referenced (its leader and each
 * follower); it leaves the registry when it ends (committed, failed, not stored). Followers
 * are listed per worker (cq_w[wid].followers, touched by that worker's thread only) and
 * counted per worker in the fill (nwait); a change bumps the fill's version and kicks each
 * worker with followers (its ev_async, registered by worker.c; the leader's own worker is
 * polled directly), whose poll wakes the followers whose fill changed. A worker's kick is
 * only used while it has followers, all of which are freed before its loop is.
 */
#include "daemon/cachereq.h"

#include "cache/cache.h"
#include "daemon/cachecfg.h"
#include "daemon/log.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define CREQ_MAGIC 0xcac4e5e9u
#define CREQ_MAX_READERS 256
#define CREQ_MAX_FIELDS 256
#define CREQ_KEY_MAX 8192
#define CREQ_CLAIMS 1024
/* A client that goes away in the middle of a stored response: the fill goes on without it
 * when others follow it, or when the rest (Content-Length known) is at most this or under a
 * quarter of the whole. */
#define CREQ_OUTLIVE_REST (1024 * 1024)

enum creq_follow {
	CF_NONE = 0, CF_WAIT, CF_STREAM
};

#define CREQ_FILL_BUCKETS 256

enum cq_fstate {
	FS_WAIT = 0,  /* the leader waits for its response head */
	FS_STREAM,    /* the head is published, the body is being stored */
	FS_DONE,      /* committed: nchunks and size are final */
	FS_GONE,      /* not stored (before or at the head): followers forward on their own */
	FS_FAILED     /* the fill died after its head */
};

/* A fill that others may follow (see the top comment). Every field is under cq_g.reg_lock,
 * except ver (atomic); the head fields (status .. body_id) do not change once has_head is
 * set, so a follower holding a reference reads them without the lock. */
struct cq_fill {
	struct cq_fill *next;        /* registry chain */
	int registered;
	unsigned refs;
	unsigned bucket;
	char *key;
	size_t keylen;
	enum cq_fstate state;
	uint64_t ver;                /* bumped on every change */
	int has_head;
	int status;
	char *resp;                  /* the response fields, "Name: value\r\n" lines */
	size_t resp_len;
	int64_t t_req, t_resp;
	int64_t length;              /* Content-Length, -1: none (chunked, close-delimited) */
	char *vary;                  /* normalised Vary spec, "" none */
	size_t vary_len;
	unsigned char vhash[32];     /* the leader's values of the Vary-nominated fields */
	uint64_t body_id;
	uint32_t nchunks;            /* readable chunks (final at FS_DONE, the tail included) */
	uint64_t size;               /* FS_DONE: the body size */
	uint16_t nwait[CREQ_MAX_READERS]; /* followers per worker */
};

static struct {
	struct cache_store *store;
	struct cache_reader *readers[CREQ_MAX_READERS];
	pthread_t maint;
	int maint_running;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;
	/* URLs being filled, process-wide (FNV-1a 64 of the key; 0 = free slot), so that two
	 * workers never fill the same URL at once (the second commit would replace the first
	 * entry under its readers). A full table or a hash collision only skips storing. */
	pthread_mutex_t claims_lock;
	uint64_t claims[CREQ_CLAIMS];
	/* fills that can be followed, by key */
	pthread_mutex_t reg_lock;
	struct cq_fill *fills[CREQ_FILL_BUCKETS];
	unsigned nworkers;           /* highest attached worker id + 1 */
} cq_g = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER,
           .claims_lock = PTHREAD_MUTEX_INITIALIZER, .reg_lock = PTHREAD_MUTEX_INITIALIZER };

struct creq {
	unsigned magic;
	const struct cachecfg *cc;
	struct cache_reader *rd;
	char *key;
	size_t keylen;
	int enabled;                 /* CacheEnable matches: lookups, storing, Cache-Status */
	int background;              /* a background refresh: not counted (cachereq_count) */
	enum cache_method method;
	char *hblock;                /* copy of the request fields */
	struct cache_hdr *hv;
	struct cache_request req;
	int64_t t_req;
	struct cache_entry *e;       /* the stored entry looked up (revalidation or serving) */
	struct cache_entry *ebody;   /* after a 304 merge: the looked-up entry, for its body */
	struct cache_entry *stale;   /* a stale entry fetched anew (it has no validator): kept
	                              * until the origin answers, served if it fails and
	                              * stale-if-error / CacheStaleOnError allow (then it
	                              * becomes q->e) */
	struct cache_decision dec;
	enum cache_outcome outcome;
	struct cache_status st;
	int revalidating;
	char *uphead;
	size_t uphead_len;
	struct cache_fill *fill;
	int64_t fill_expect;
	uint64_t fill_bytes;
	int committed;               /* the response is in the store: our fill committed, or
	                              * (a follower) the fill we streamed did */
	int head_only;               /* HEAD request */
	/* serving */
	int serve_304;
	int body_done;
	struct cache_range rg[CACHE_MAX_RANGES]; /* byte ranges to send (the whole body: one) */
	size_t nrg, ri;              /* ... their number, the one being sent */
	uint64_t off;                /* next body offset to send */
	int multipart, part_open;    /* multipart/byteranges; the current part's head is sent */
	char boundary[CACHE_BOUNDARY_LEN + 1];
	struct cache_str ctype;      /* stored Content-Type, for the part heads */
	char line[256];
	/* collapsed forwarding */
	unsigned wid;
	struct cq_fill *cf;          /* the fill led or followed, NULL: none */
	int is_leader;               /* q->cf is ours */
	uint32_t seen_chunks;        /* leader: committed chunks last published */
	enum creq_follow follow;
	struct creq *wnext, *wprev;  /* follower: in cq_w[wid].followers */
	uint64_t seen_ver;           /* follower: the fill's version at the last wake-up */
	uint32_t next_idx;           /* follower: the next chunk to send */
	int64_t length;              /* follower: Content-Length, -1: none */
	int minor;                   /* follower: the client's HTTP minor version */
	int chunked;                 /* follower: chunk framing to the client */
	int close_delim;             /* follower: the body ends with the connection */
	uint64_t claim;              /* the fill's claim in cq_g.claims, 0: none */
	void (*wake)(void *);
	void *wake_arg;
};

/* Per worker: how to wake its loop from another thread, and its followers; and its hit
 * counters (written by the worker, summed by the maintenance thread for the report). Each
 * worker's entry has a cache line of its own, so that one worker's counting on every request
 * does not make the other workers' lines bounce between cores. */
static struct {
	_Alignas(64) void (*kick)(void *);
	void *kick_arg;
	struct creq *followers;      /* that worker's thread only */
	_Atomic uint64_t lookups;    /* GET/HEAD requests to URLs the cache is enabled for */
	_Atomic uint64_t hits;       /* ... answered from the store (see cachereq_count) */
} cq_w[CREQ_MAX_READERS];

/* The figures of the last report (maintenance thread, then cachereq_close). */
static struct {
	uint64_t lookups, hits, fills;
	int64_t when;                /* CLOCK_MONOTONIC seconds */
	int64_t start;
	unsigned interval;           /* CacheReportInterval at start-up, 0: no periodic report */
} cq_rep;

/* A full store (the LMDB map at CacheSize, or the file system out of space) is worth a
 * warning, but it is met by every write while it lasts: the maintenance thread logs it at
 * most once a minute, with the counts since its last line (cachereq_full_warn). */
#define CREQ_FULL_WARN_EVERY 60
static struct {
	char *root;                  /* CacheRoot, CacheSize: named in the line */
	uint64_t size;
	uint64_t map_full, disk_full, failed; /* the store's counts at the last line */
	int64_t last;                /* CLOCK_MONOTONIC seconds of the last line */
	int warned;
	uint64_t failed_tick;        /* full_failed at the last maintenance pass */
	int64_t failed_when;         /* when it last grew (valid when failed_seen) */
	int failed_seen;
} cq_full;

/* The store gave up a write for want of room in the last minute: a new fill is not promised
 * ("stored" left out of Cache-Status) while it lasts. Set by the maintenance thread, read by
 * the workers on each fill that begins. */
static _Atomic int cq_short_of_room;

/* Background refreshes started lately, per worker: key hash and start time. */
#define CREQ_SWR_RECENT 16
static struct {
	uint64_t hash;
	int64_t when;
} cq_swr_recent[CREQ_MAX_READERS][CREQ_SWR_RECENT];

/* ---- the store ---- */

static int64_t
cachereq_mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

/* The hit counters summed over the workers. */
static void
cachereq_hit_sum(uint64_t *lookups, uint64_t *hits)
{
	*lookups = *hits = 0;
	for (size_t i = 0; i < CREQ_MAX_READERS; i++) {
		*lookups += atomic_load_explicit(&cq_w[i].lookups, memory_order_relaxed);
		*hits += atomic_load_explicit(&cq_w[i].hits, memory_order_relaxed);
	}
}

/* "66.7% (2 hits / 3 requests)", or "- (0 hits / 0 requests)". */
static void
cachereq_ratio_text(uint64_t hits, uint64_t lookups, char *buf, size_t len)
{
	if (lookups == 0)
		snprintf(buf, len, "- (0 hits / 0 requests)");
	else
		snprintf(buf, len, "%.1f%% (%" PRIu64 " hits / %" PRIu64 " requests)",
		         100.0 * (double)hits / (double)lookups, hits, lookups);
}

/* One log line with the hit ratio (since start-up, and since the last report when periodic)
 * and the store's figures since start-up, the zlib saving on text bodies included (the
 * status page will show the same counters). */
static void
cachereq_log_stats(const char *when, int periodic)
{
	struct cache_stats st;
	uint64_t lookups, hits;
	char all[96], recent[160] = "";
	int64_t now = cachereq_mono_s();

	cachereq_hit_sum(&lookups, &hits);
	cachereq_ratio_text(hits, lookups, all, sizeof(all));
	if (periodic) {
		char r[96];
		cachereq_ratio_text(hits - cq_rep.hits, lookups - cq_rep.lookups, r, sizeof(r));
		snprintf(recent, sizeof(recent), ", %s in the last %" PRId64 " s", r,
		         now - cq_rep.when);
	}
	cache_store_stats(cq_g.store, &st);
	cq_rep.lookups = lookups;
	cq_rep.hits = hits;
	cq_rep.fills = st.fills_committed;
	cq_rep.when = now;
	uint64_t saved = st.compress_in > st.compress_out ? st.compress_in - st.compress_out : 0;
	log_notice("cache %s: hit ratio %s since start-up (%" PRId64 " s)%s; "
	           "%" PRIu64 " entries, %" PRIu64 " of %" PRIu64 " bytes used; "
	           "%" PRIu64 " stored, %" PRIu64 " aborted, %" PRIu64 " evicted, %" PRIu64
	           " purged; compression: %" PRIu64 " bytes of text stored in %" PRIu64
	           " (%" PRIu64 " saved, %.0f%%); %" PRIu64 " old bodies (%" PRIu64
	           " bytes) awaiting deletion, %" PRIu64 " of them still being read",
	           when, all, now - cq_rep.start, recent, st.entries, st.bytes_used,
	           st.bytes_budget, st.fills_committed,
	           st.fills_aborted, st.evicted_entries, st.purged_entries, st.compress_in,
	           st.compress_out, saved,
	           st.compress_in ? 100.0 * (double)saved / (double)st.compress_in : 0.0,
	           st.gc_bodies, st.gc_bytes, st.gc_pinned);
}

int
cachereq_store_stats(struct cache_stats *st)
{
	struct cache_store *s = cq_g.store;
	if (s == NULL)
		return -1;
	cache_store_stats(s, st);
	return 0;
}

/* Warn when writes met a full store since the last warning, unless that was less than a
 * minute ago (force: at close, whatever the time). Maintenance thread, then cachereq_close. */
static void
cachereq_full_warn(int force)
{
	uint64_t full, disk, failed;
	cache_store_full_counts(cq_g.store, &full, &disk, &failed);
	int64_t now = cachereq_mono_s();
	if (failed != cq_full.failed_tick) {
		cq_full.failed_tick = failed;
		cq_full.failed_when = now;
		cq_full.failed_seen = 1;
	}
	atomic_store_explicit(&cq_short_of_room, cq_full.failed_seen &&
	                      now - cq_full.failed_when < CREQ_FULL_WARN_EVERY,
	                      memory_order_relaxed);
	if (full == cq_full.map_full && failed == cq_full.failed)
		return;
	if (!force && cq_full.warned && now - cq_full.last < CREQ_FULL_WARN_EVERY)
		return;
	uint64_t n = full - cq_full.map_full, nd = disk - cq_full.disk_full;
	char when[48];
	if (cq_full.warned)
		snprintf(when, sizeof(when), "in the last %" PRId64 " s", now - cq_full.last);
	else
		snprintf(when, sizeof(when), "since start-up");
	log_warn("cache %s is full: %" PRIu64 " writes found no room %s (file system out of "
	         "space: %" PRIu64 ", CacheSize %" PRIu64 " bytes reached: %" PRIu64 "); %" PRIu64
	         " were given up even after evicting (their responses were served but not stored)",
	         cq_full.root, n, when, nd, cq_full.size, n - nd, failed - cq_full.failed);
	cq_full.map_full = full;
	cq_full.disk_full = disk;
	cq_full.failed = failed;
	cq_full.last = now;
	cq_full.warned = 1;
}

static void *
cachereq_maint_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&cq_g.lock);
	/* bounded by stop: one maintenance pass a second until cachereq_close; a report every
	 * CacheReportInterval seconds when there were requests or fills since the last one */
	while (!cq_g.stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&cq_g.cond, &cq_g.lock, &ts);
		if (cq_g.stop)
			break;
		pthread_mutex_unlock(&cq_g.lock);
		int rc = cache_store_maintain(cq_g.store);
		if (rc < 0 && rc != CACHE_EFULL)
			log_warn("cache maintenance: %s", cache_strerror(rc));
		cachereq_full_warn(0);
		if (cq_rep.interval > 0 && cachereq_mono_s() - cq_rep.when >= cq_rep.interval) {
			struct cache_stats st;
			uint64_t lookups, hits;
			cache_store_stats(cq_g.store, &st);
			cachereq_hit_sum(&lookups, &hits);
			if (st.fills_committed != cq_rep.fills || lookups != cq_rep.lookups)
				cachereq_log_stats("report", 1);
			else
				cq_rep.when = cachereq_mono_s();
		}
		pthread_mutex_lock(&cq_g.lock);
	}
	pthread_mutex_unlock(&cq_g.lock);
	return NULL;
}

int
cachereq_open(const struct cfg *cfg, char *err, size_t errlen)
{
	const struct cachecfg *cc = cfg->cache;
	if (cc == NULL || cc->root == NULL)
		return 0;
	struct cache_store_conf sc;
	cache_store_conf_default(&sc);
	sc.root = cc->root;
	sc.size = cc->size;
	char why[512];
	int rc = cache_store_open(&sc, &cq_g.store, why, sizeof(why));
	if (rc != CACHE_OK) {
		snprintf(err, errlen, "cannot open CacheRoot %s: %s", cc->root, why);
		cq_g.store = NULL;
		return -1;
	}
	free(cq_full.root);
	memset(&cq_full, 0, sizeof(cq_full));
	atomic_store_explicit(&cq_short_of_room, 0, memory_order_relaxed);
	cq_full.root = strdup(cc->root);
	cq_full.size = cc->size;
	if (cq_full.root == NULL) {
		snprintf(err, errlen, "out of memory opening CacheRoot %s", cc->root);
		cache_store_close(cq_g.store);
		cq_g.store = NULL;
		return -1;
	}
	cq_g.stop = 0;
	cq_rep.start = cq_rep.when = cachereq_mono_s();
	cq_rep.interval = cc->report_interval;
	if (pthread_create(&cq_g.maint, NULL, cachereq_maint_main, NULL) != 0) {
		snprintf(err, errlen, "cannot start the cache maintenance thread");
		cache_store_close(cq_g.store);
		cq_g.store = NULL;
		return -1;
	}
	cq_g.maint_running = 1;
	struct cache_stats st;
	cache_store_stats(cq_g.store, &st);
	log_notice("cache %s opened: %" PRIu64 " entries, %" PRIu64 " of %" PRIu64 " bytes used, "
	           "%" PRIu64 " orphan chunks swept",
	           cc->root, st.entries, st.bytes_used, st.bytes_budget, st.swept_chunks);
	return 0;
}

void
cachereq_close(void)
{
	if (cq_g.store == NULL)
		return;
	if (cq_g.maint_running) {
		pthread_mutex_lock(&cq_g.lock);
		cq_g.stop = 1;
		pthread_cond_signal(&cq_g.cond);
		pthread_mutex_unlock(&cq_g.lock);
		pthread_join(cq_g.maint, NULL);
		cq_g.maint_running = 0;
	}
	cachereq_full_warn(1);
	cachereq_log_stats("closing", 0);
	for (size_t i = 0; i < CREQ_MAX_READERS; i++) {
		cache_reader_free(cq_g.readers[i]);
		cq_g.readers[i] = NULL;
	}
	cache_store_close(cq_g.store);
	cq_g.store = NULL;
	free(cq_full.root);
	cq_full.root = NULL;
}

/* ---- per request ---- */

static uint64_t
cachereq_key_hash(const char *key, size_t n)
{
	uint64_t h = 14695981039346656037ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)key[i]) * 1099511628211ull;
	return h ? h : 1;
}

/* Claim the right to fill key; returns the claim (nonzero) or 0 when another fill has it. */
static uint64_t
cachereq_claim(const char *key, size_t n)
{
	uint64_t h = cachereq_key_hash(key, n), got = 0;
	size_t start = (size_t)(h % CREQ_CLAIMS), free_slot = CREQ_CLAIMS;
	pthread_mutex_lock(&cq_g.claims_lock);
	for (size_t i = 0; i < CREQ_CLAIMS; i++) {
		size_t k = (start + i) % CREQ_CLAIMS;
		if (cq_g.claims[k] == h) {
			free_slot = CREQ_CLAIMS;
			break;
		}
		if (cq_g.claims[k] == 0 && free_slot == CREQ_CLAIMS)
			free_slot = k;
	}
	if (free_slot < CREQ_CLAIMS) {
		cq_g.claims[free_slot] = h;
		got = h;
	}
	pthread_mutex_unlock(&cq_g.claims_lock);
	return got;
}

static void
cachereq_unclaim(struct creq *q)
{
	if (q->claim == 0)
		return;
	pthread_mutex_lock(&cq_g.claims_lock);
	for (size_t i = 0; i < CREQ_CLAIMS; i++) {
		if (cq_g.claims[i] == q->claim) {
			cq_g.claims[i] = 0;
			break;
		}
	}
	pthread_mutex_unlock(&cq_g.claims_lock);
	q->claim = 0;
}

struct cache_store *
cachereq_store(void)
{
	return cq_g.store;
}

static int64_t
cachereq_now(void)
{
	return (int64_t)time(NULL);
}

static void
cachereq_wake(struct creq *q)
{
	if (q->wake)
		q->wake(q->wake_arg);
}

/* ---- collapsed forwarding: the registry of fills ---- */

void
cachereq_worker_attach(unsigned wid, void (*kick)(void *), void *arg)
{
	if (wid >= CREQ_MAX_READERS)
		return;
	pthread_mutex_lock(&cq_g.reg_lock);
	cq_w[wid].kick = kick;
	cq_w[wid].kick_arg = arg;
	if (wid + 1 > cq_g.nworkers)
		cq_g.nworkers = wid + 1;
	pthread_mutex_unlock(&cq_g.reg_lock);
}

void
cachereq_worker_detach(unsigned wid)
{
	if (wid >= CREQ_MAX_READERS)
		return;
	pthread_mutex_lock(&cq_g.reg_lock);
	cq_w[wid].kick = NULL;
	cq_w[wid].kick_arg = NULL;
	pthread_mutex_unlock(&cq_g.reg_lock);
}

void
cachereq_worker_poll(unsigned wid)
{
	if (wid >= CREQ_MAX_READERS)
		return;
	/* bounded by the worker's followers; a wake-up only schedules work, so the list does
	 * not change under the walk */
	for (struct creq *f = cq_w[wid].followers; f != NULL; f = f->wnext) {
		uint64_t v = __atomic_load_n(&f->cf->ver, __ATOMIC_ACQUIRE);
		if (v != f->seen_ver) {
			f->seen_ver = v;
			cachereq_wake(f);
		}
	}
}

/* The fill changed: bump its version and kick the workers with followers. Returns 1 when
 * the caller's own worker (self) has followers: poll it after unlocking. Lock held. */
static int
cq_fill_notify_locked(struct cq_fill *cf, unsigned self)
{
	int local = 0;
	__atomic_store_n(&cf->ver, cf->ver + 1, __ATOMIC_RELEASE);
	for (unsigned w = 0; w < cq_g.nworkers; w++) {
		if (cf->nwait[w] == 0)
			continue;
		if (w == self)
			local = 1;
		else if (cq_w[w].kick != NULL)
			cq_w[w].kick(cq_w[w].kick_arg);
	}
	return local;
}

static void
cq_fill_unregister_locked(struct cq_fill *cf)
{
	if (!cf->registered)
		return;
	struct cq_fill **pp = &cq_g.fills[cf->bucket];
	/* bounded by the fills in progress in the bucket */
	while (*pp != NULL && *pp != cf)
		pp = &(*pp)->next;
	if (*pp == cf)
		*pp = cf->next;
	cf->next = NULL;
	cf->registered = 0;
}

static void
cq_fill_unref_locked(struct cq_fill *cf)
{
	if (--cf->refs > 0)
		return;
	cq_fill_unregister_locked(cf);
	free(cf->key);
	free(cf->resp);
	free(cf->vary);
	free(cf);
}

static struct cq_fill *
cq_fill_find_locked(unsigned bucket, const char *key, size_t keylen)
{
	/* bounded by the fills in progress in the bucket */
	for (struct cq_fill *cf = cq_g.fills[bucket]; cf != NULL; cf = cf->next)
		if (cf->keylen == keylen && memcmp(cf->key, key, keylen) == 0)
			return cf;
	return NULL;
}

/* The leader's fill ends: state FS_DONE (nchunks, size final), FS_GONE or FS_FAILED. It leaves
 * the registry, its followers are woken, the leader's reference goes. */
static void
cq_lead_end(struct creq *q, enum cq_fstate state, uint32_t nchunks, uint64_t size)
{
	struct cq_fill *cf = q->cf;
	if (cf == NULL || !q->is_leader)
		return;
	q->cf = NULL;
	q->is_leader = 0;
	log_debug("collapsed forwarding: the fill of %s ends (%s)", q->key,
	          state == FS_DONE ? "stored" : state == FS_GONE ? "not stored" : "failed");
	pthread_mutex_lock(&cq_g.reg_lock);
	cf->state = state;
	if (state == FS_DONE) {
		cf->nchunks = nchunks;
		cf->size = size;
	}
	cq_fill_unregister_locked(cf);
	int local = cq_fill_notify_locked(cf, q->wid);
	cq_fill_unref_locked(cf);
	pthread_mutex_unlock(&cq_g.reg_lock);
	if (local)
		cachereq_worker_poll(q->wid);
}

/* The leader's fill has n readable chunks. */
static void
cq_lead_progress(struct creq *q, uint32_t n)
{
	pthread_mutex_lock(&cq_g.reg_lock);
	q->cf->nchunks = n;
	int local = cq_fill_notify_locked(q->cf, q->wid);
	pthread_mutex_unlock(&cq_g.reg_lock);
	if (local)
		cachereq_worker_poll(q->wid);
}

/* Does anybody follow the leader's fill? */
static int
cq_lead_followed(const struct creq *q)
{
	int n = 0;
	if (q->cf == NULL)
		return 0;
	pthread_mutex_lock(&cq_g.reg_lock);
	for (unsigned w = 0; w < cq_g.nworkers && !n; w++)
		n = q->cf->nwait[w] != 0;
	pthread_mutex_unlock(&cq_g.reg_lock);
	return n;
}

/* A follower stops following (forwards on its own, or goes away). */
static void
cq_unfollow(struct creq *q)
{
	struct cq_fill *cf = q->cf;
	if (cf == NULL || q->is_leader)
		return;
	if (q->wprev)
		q->wprev->wnext = q->wnext;
	else
		cq_w[q->wid].followers = q->wnext;
	if (q->wnext)
		q->wnext->wprev = q->wprev;
	q->wnext = q->wprev = NULL;
	q->cf = NULL;
	pthread_mutex_lock(&cq_g.reg_lock);
	cf->nwait[q->wid]--;
	cq_fill_unref_locked(cf);
	pthread_mutex_unlock(&cq_g.reg_lock);
}

/* A plain GET miss: follow the fill in progress for its key, or lead a new one. Returns 1
 * when q follows (it waits), 0 otherwise. */
static int
cq_join(struct creq *q)
{
	unsigned wid = q->wid;
	if (wid >= CREQ_MAX_READERS || cq_w[wid].kick == NULL)
		return 0; /* not a worker thread (tests): no collapsing */
	unsigned bucket = (unsigned)(cachereq_key_hash(q->key, q->keylen) % CREQ_FILL_BUCKETS);
	/* prepared outside the lock, used when nobody fills the key yet */
	struct cq_fill *nf = calloc(1, sizeof(*nf));
	if (nf != NULL && (nf->key = malloc(q->keylen)) == NULL) {
		free(nf);
		nf = NULL;
	}
	if (nf != NULL) {
		memcpy(nf->key, q->key, q->keylen);
		nf->keylen = q->keylen;
		nf->bucket = bucket;
		nf->refs = 1;
		nf->state = FS_WAIT;
		nf->length = -1;
	}
	pthread_mutex_lock(&cq_g.reg_lock);
	struct cq_fill *cf = cq_fill_find_locked(bucket, q->key, q->keylen);
	if (cf != NULL) {
		int ok = cf->nwait[wid] < UINT16_MAX;
		if (ok) {
			cf->refs++;
			cf->nwait[wid]++;
		}
		pthread_mutex_unlock(&cq_g.reg_lock);
		if (nf != NULL)
			free(nf->key);
		free(nf);
		if (!ok)
			return 0;
		q->cf = cf;
		q->follow = CF_WAIT;
		q->seen_ver = 0;
		q->wnext = cq_w[wid].followers;
		if (q->wnext)
			q->wnext->wprev = q;
		cq_w[wid].followers = q;
		q->st.collapsed = 1;
		log_debug("collapsed forwarding: worker %u follows the fill of %s", wid, q->key);
		return 1;
	}
	if (nf != NULL) {
		nf->next = cq_g.fills[bucket];
		cq_g.fills[bucket] = nf;
		nf->registered = 1;
	}
	pthread_mutex_unlock(&cq_g.reg_lock);
	if (nf == NULL)
		return 0;
	q->cf = nf;
	q->is_leader = 1;
	log_debug("collapsed forwarding: worker %u leads the fill of %s", wid, q->key);
	return 0;
}

/* The leader's fill began: publish its head so that followers can build their entries. */
static void
cq_lead_publish(struct creq *q, int status, const struct cache_hdrs *resp, int64_t t_resp,
                int64_t length, struct cache_str vary)
{
	size_t n = 0;
	for (size_t i = 0; i < resp->n; i++)
		n += resp->v[i].name.n + resp->v[i].value.n + 4;
	char *blk = malloc(n + 1), *vs = malloc(vary.n + 1);
	unsigned char vh[32];
	memset(vh, 0, sizeof(vh));
	if (blk == NULL || vs == NULL ||
	    (vary.n && cache_vary_hash(vary, &q->req.hdrs, vh) != CACHE_OK)) {
		free(blk);
		free(vs);
		cq_lead_end(q, FS_GONE, 0, 0);
		return;
	}
	char *o = blk;
	for (size_t i = 0; i < resp->n; i++)
		cache_put_line(&o, resp->v[i].name, resp->v[i].value);
	*o = '\0';
	memcpy(vs, vary.p, vary.n);
	vs[vary.n] = '\0';
	struct cq_fill *cf = q->cf;
	pthread_mutex_lock(&cq_g.reg_lock);
	cf->status = status;
	cf->resp = blk;
	cf->resp_len = (size_t)(o - blk);
	cf->t_req = q->t_req;
	cf->t_resp = t_resp;
	cf->length = length;
	cf->vary = vs;
	cf->vary_len = vary.n;
	memcpy(cf->vhash, vh, sizeof(vh));
	cf->body_id = cache_fill_body_id(q->fill);
	cf->nchunks = 0;
	cf->has_head = 1;
	cf->state = FS_STREAM;
	int local = cq_fill_notify_locked(cf, q->wid);
	pthread_mutex_unlock(&cq_g.reg_lock);
	if (local)
		cachereq_worker_poll(q->wid);
}

/* A plain request: nothing that would make the origin's answer unusable for others. */
static int
cachereq_plain(const struct creq *q)
{
	for (size_t i = 0; i < q->req.hdrs.n; i++) {
		const struct cache_hdr *f = &q->hv[i];
		if ((f->name.n >= 3 && strncasecmp(f->name.p, "if-", 3) == 0) ||
		    (f->name.n == 5 && strncasecmp(f->name.p, "range", 5) == 0) ||
		    (f->name.n == 13 && strncasecmp(f->name.p, "authorization", 13) == 0))
			return 0;
	}
	return !q->dec.client_refresh;
}

void
cachereq_set_minor(struct creq *q, int minor)
{
	if (q != NULL)
		q->minor = minor;
}

int
cachereq_close_delimited(const struct creq *q)
{
	return q != NULL && q->close_delim;
}

int
cachereq_outlive_client(const struct creq *q, int64_t rest, uint64_t got)
{
	if (q == NULL || q->fill == NULL)
		return 0;
	if (cq_lead_followed(q))
		return 1;
	return rest >= 0 && ((uint64_t)rest <= CREQ_OUTLIVE_REST || (uint64_t)rest < got / 3);
}

void
cachereq_set_wake(struct creq *q, void (*fn)(void *), void *arg)
{
	if (q != NULL) {
		q->wake = fn;
		q->wake_arg = arg;
	}
}

void
cachereq_set_background(struct creq *q)
{
	q->background = 1;
}

/* Count a finished request for the hit ratio: GET and HEAD to URLs the cache is enabled
 * for; a hit is an answer from the store (fresh, stale within its allowance, a 304 from the
 * cache, a stored body after the origin's 304 or after a failed revalidation), as Squid
 * counts TCP_HIT, TCP_IMS_HIT, TCP_REFRESH_UNMODIFIED and TCP_REFRESH_FAIL_OLD. */
static void
cachereq_count(const struct creq *q)
{
	if (!q->enabled || q->background || (q->method != CACHE_M_GET && q->method != CACHE_M_HEAD) ||
	    q->wid >= CREQ_MAX_READERS)
		return;
	atomic_fetch_add_explicit(&cq_w[q->wid].lookups, 1, memory_order_relaxed);
	switch (q->outcome) {
	case CACHE_OUT_HIT:
	case CACHE_OUT_HIT_STALE:
	case CACHE_OUT_HIT_INM:
	case CACHE_OUT_HIT_IMS:
	case CACHE_OUT_REFRESH_UNMODIFIED:
	case CACHE_OUT_REFRESH_FAIL_OLD:
		atomic_fetch_add_explicit(&cq_w[q->wid].hits, 1, memory_order_relaxed);
		break;
	default:
		break;
	}
}

void
cachereq_free(struct creq **qp)
{
	struct creq *q = *qp;
	if (q == NULL)
		return;
	*qp = NULL;
	cachereq_count(q);
	if (q->fill) {
		cache_fill_abort(q->fill);
		q->fill = NULL;
	}
	cachereq_unclaim(q);
	if (q->is_leader)
		cq_lead_end(q, q->cf->has_head ? FS_FAILED : FS_GONE, 0, 0);
	else
		cq_unfollow(q);
	cache_entry_free(q->e);
	cache_entry_free(q->ebody);
	cache_entry_free(q->stale);
	free(q->key);
	free(q->hblock);
	free(q->hv);
	free(q->uphead);
	q->magic = 0;
	free(q);
}

/* Parse "Name: value\r\n" lines of block into q->hv. */
static int
cachereq_parse_fields(struct creq *q, const char *head, size_t len)
{
	q->hblock = malloc(len + 1);
	q->hv = calloc(CREQ_MAX_FIELDS, sizeof(*q->hv));
	if (q->hblock == NULL || q->hv == NULL)
		return -1;
	memcpy(q->hblock, head, len);
	q->hblock[len] = '\0';
	struct cache_str blk = { q->hblock, len };
	size_t pos = 0, n = 0;
	while (n < CREQ_MAX_FIELDS && cache_block_next(blk, &pos, &q->hv[n]))
		n++;
	q->req.hdrs.v = q->hv;
	q->req.hdrs.n = n;
	return 0;
}

/* The upstream head for revalidating q->e: the request fields minus If-* and Range, plus the
 * stored validators. */
static int
cachereq_build_reval(struct creq *q)
{
	char val[4096];
	size_t vlen = cache_validators(q->e, val, sizeof(val));
	if (vlen == 0 || vlen >= sizeof(val))
		return -1;
	size_t cap = strlen(q->hblock) + vlen + 3;
	char *out = malloc(cap);
	if (out == NULL)
		return -1;
	size_t o = 0;
	for (size_t i = 0; i < q->req.hdrs.n; i++) {
		const struct cache_hdr *f = &q->hv[i];
		if ((f->name.n >= 3 && strncasecmp(f->name.p, "if-", 3) == 0) ||
		    (f->name.n == 5 && strncasecmp(f->name.p, "range", 5) == 0))
			continue;
		size_t need = f->name.n + f->value.n + 4;
		if (o + need > cap)
			break;
		char *at = out + o;
		cache_put_line(&at, f->name, f->value);
		o += need;
	}
	if (o + vlen + 2 > cap) {
		free(out);
		return -1;
	}
	memcpy(out + o, val, vlen);
	o += vlen;
	memcpy(out + o, "\r\n", 2);
	o += 2;
	q->uphead = out;
	q->uphead_len = o;
	return 0;
}

static struct cache_reader *
cachereq_reader(unsigned wid)
{
	if (wid >= CREQ_MAX_READERS)
		return NULL;
	if (cq_g.readers[wid] == NULL)
		cq_g.readers[wid] = cache_reader_new(cq_g.store);
	return cq_g.readers[wid];
}

static void
cachereq_set_outcome(struct creq *q, enum cache_outcome o)
{
	q->outcome = o;
	int fs = q->st.fwd_status, stored = q->st.stored;
	cache_outcome_status(o, &q->st);
	q->st.fwd_status = fs;
	q->st.stored = stored;
}

static void
cachereq_purge_key(const struct cachecfg *cc, const char *url, size_t n)
{
	char key[CREQ_KEY_MAX];
	size_t klen;
	if (cache_key_normalise(url, n, cc->rules.ignore_query_string, key, sizeof(key), &klen) ==
	    CACHE_OK)
		cache_purge(cq_g.store, key, klen);
}

/* A request's cache state before any action: its key, fields and whether the cache is
 * enabled for it (nothing looked up yet). NULL when the key cannot be made or out of memory
 * (the request is then forwarded untouched). */
static struct creq *
cachereq_new(unsigned wid, const struct cachecfg *cc, const char *method, const char *url,
             const char *head, size_t head_len)
{
	struct creq *q = calloc(1, sizeof(*q));
	char key[CREQ_KEY_MAX];
	size_t klen = 0;
	if (q == NULL)
		return NULL;
	q->magic = CREQ_MAGIC;
	q->cc = cc;
	q->wid = wid;
	q->t_req = cachereq_now();
	q->method = cache_method_parse(method, strlen(method));
	q->head_only = q->method == CACHE_M_HEAD;
	/* url is c->url, normalized once when the request was parsed (daemon/url.h). */
	if (cache_key_from_normalised(url, strlen(url), cc->rules.ignore_query_string, key,
	                              sizeof(key), &klen) != CACHE_OK) {
		free(q);
		return NULL;
	}
	q->key = malloc(klen + 1);
	if (q->key == NULL || cachereq_parse_fields(q, head, head_len) < 0) {
		cachereq_free(&q);
		return NULL;
	}
	memcpy(q->key, key, klen + 1);
	q->keylen = klen;
	q->req.method = q->method;
	q->req.url.p = q->key;
	q->req.url.n = klen;
	q->enabled = cachecfg_enabled_for(cc, key, klen);
	return q;
}

/* The outcome of a fetch (nothing usable stored, or a stale entry fetched anew) after lookup
 * result rc: what Cache-Status says of it. */
static void
cachereq_judge_fetch(struct creq *q, int rc)
{
	if (rc == CACHE_VARY_MISS)
		cachereq_set_outcome(q, CACHE_OUT_VARY_MISS);
	else if (rc == CACHE_HIT && q->dec.client_refresh)
		cachereq_set_outcome(q, CACHE_OUT_CLIENT_REFRESH);
	else
		cachereq_set_outcome(q, CACHE_OUT_MISS);
	if (rc == CACHE_HIT && q->dec.stale)
		q->st.fwd = CACHE_FWD_STALE;
}

/* Look q up (a GET or HEAD the cache is enabled for) and decide: q->e (a hit), q->dec, the
 * outcome and q->st as the answer's Cache-Status will say, assuming a revalidation can be
 * built. Nothing else: no fill joined, no entry claimed, nothing counted. Both
 * cachereq_begin and cachereq_probe (the status page's explain) decide through here. Returns
 * the lookup result (CACHE_HIT, CACHE_MISS, CACHE_VARY_MISS), or -1 without a reader. */
static int
cachereq_judge(struct creq *q)
{
	q->rd = cachereq_reader(q->wid);
	if (q->rd == NULL)
		return -1;
	int rc = cache_lookup(q->rd, q->key, q->keylen, &q->req.hdrs,
	                      q->head_only ? CACHE_LOOKUP_NO_BODY : 0, &q->e);
	if (rc < 0) {
		log_warn("cache lookup of %s: %s", q->key, cache_strerror(rc));
		rc = CACHE_MISS;
	}
	int64_t now = cachereq_now();
	cache_decide(&q->cc->rules, rc == CACHE_HIT ? &q->e->meta : NULL, &q->req, now, &q->dec);
	switch (q->dec.action) {
	case CACHE_ACT_FRESH:
	case CACHE_ACT_STALE_REVALIDATE:
		q->serve_304 = q->dec.not_modified;
		if (q->serve_304)
			cachereq_set_outcome(q, cache_hdr_find(&q->req.hdrs, "if-none-match")
			                            ? CACHE_OUT_HIT_INM : CACHE_OUT_HIT_IMS);
		else
			cachereq_set_outcome(q, q->dec.stale ? CACHE_OUT_HIT_STALE : CACHE_OUT_HIT);
		q->st.has_ttl = 1;
		q->st.ttl = q->dec.ttl;
		break;
	case CACHE_ACT_ONLY_IF_CACHED_MISS:
		cachereq_set_outcome(q, CACHE_OUT_ONLY_IF_CACHED);
		break;
	case CACHE_ACT_REVALIDATE:
		cachereq_set_outcome(q, q->dec.client_refresh ? CACHE_OUT_CLIENT_REFRESH
		                                              : CACHE_OUT_REFRESH_MODIFIED);
		q->st.fwd = q->dec.client_refresh ? CACHE_FWD_REQUEST : CACHE_FWD_STALE;
		q->st.hit = 0;
		break;
	default:
		cachereq_judge_fetch(q, rc);
		break;
	}
	return rc;
}

enum cachereq_verdict
cachereq_begin(struct creq **out, unsigned wid, const struct cfg *cfg, const char *method,
               const char *url, const char *head, size_t head_len, int *status)
{
	*out = NULL;
	const struct cachecfg *cc = cfg->cache;
	if (cq_g.store == NULL || cc == NULL || cc->root == NULL)
		return CQ_FORWARD;
	struct creq *q = cachereq_new(wid, cc, method, url, head, head_len);
	if (q == NULL)
		return CQ_FORWARD;
	*out = q;

	if (strcmp(method, "PURGE") == 0) {
		/* The <Proxy> ACL has already admitted it (PURGE needs a <Limit PURGE> grant). */
		long n = cache_purge(cq_g.store, q->key, q->keylen);
		*status = n > 0 ? 200 : 404;
		log_info("PURGE %s: %ld records removed", q->key, n);
		q->enabled = 0; /* no Cache-Status on the answer */
		return CQ_LOCAL;
	}
	if (!q->enabled)
		return CQ_FORWARD;
	cachereq_set_outcome(q, CACHE_OUT_BYPASS);
	if (q->method != CACHE_M_GET && q->method != CACHE_M_HEAD)
		return CQ_FORWARD;  /* unsafe methods: invalidation after the response */
	int rc = cachereq_judge(q);
	if (rc < 0)
		return CQ_FORWARD;
	switch (q->dec.action) {
	case CACHE_ACT_FRESH:
	case CACHE_ACT_STALE_REVALIDATE:
		return CQ_SERVE;
	case CACHE_ACT_ONLY_IF_CACHED_MISS:
		*status = 504;
		return CQ_LOCAL;
	case CACHE_ACT_REVALIDATE:
		if (cachereq_build_reval(q) == 0) {
			q->revalidating = 1;
			return CQ_FORWARD;
		}
		cachereq_judge_fetch(q, rc); /* no revalidation after all: fetched anew */
		break;
	default:
		break;
	}
	/* fetch */
	/* A stale entry that cannot be revalidated (no ETag, no Last-Modified) is fetched
	 * unconditionally, but stale-if-error needs no validator: keep it in case the origin
	 * fails (cachereq_response, cachereq_stale_on_error). */
	if (rc == CACHE_HIT && q->dec.stale && q->dec.stale_if_error)
		q->stale = q->e;
	else
		cache_entry_free(q->e);
	q->e = NULL;
	if (q->method == CACHE_M_GET && q->dec.action == CACHE_ACT_FETCH && cachereq_plain(q) &&
	    cq_join(q))
		return CQ_WAIT;
	return CQ_FORWARD;
}

int
cachereq_refresh_request(struct creq *q, const char *url, char **out, size_t *len)
{
	if (q == NULL || q->e == NULL || q->dec.action != CACHE_ACT_STALE_REVALIDATE ||
	    q->wid >= CREQ_MAX_READERS)
		return -1;
	int64_t now = cachereq_now();
	uint64_t h = cachereq_key_hash(q->key, q->keylen);
	size_t slot = 0;
	for (size_t i = 0; i < CREQ_SWR_RECENT; i++) {
		if (cq_swr_recent[q->wid][i].hash == h && now - cq_swr_recent[q->wid][i].when < 10)
			return -1;
		if (cq_swr_recent[q->wid][i].when < cq_swr_recent[q->wid][slot].when)
			slot = i;
	}
	size_t cap = strlen(url) + strlen(q->hblock) + 128, o = 0;
	char *p = malloc(cap);
	if (p == NULL)
		return -1;
	o += (size_t)snprintf(p, cap, "GET %s HTTP/1.1\r\n", url);
	for (size_t i = 0; i < q->req.hdrs.n && o < cap; i++) {
		const struct cache_hdr *f = &q->hv[i];
		static const char *const skip[] = { "range", "cache-control", "pragma", "via",
		                                    "max-forwards", "connection", NULL };
		int drop = f->name.n >= 3 && strncasecmp(f->name.p, "if-", 3) == 0;
		for (size_t k = 0; skip[k] && !drop; k++)
			drop = f->name.n == strlen(skip[k]) && strncasecmp(f->name.p, skip[k],
			                                                    f->name.n) == 0;
		if (!drop)
			o += (size_t)snprintf(p + o, cap - o, "%.*s: %.*s\r\n", (int)f->name.n,
			                      f->name.p, (int)f->value.n, f->value.p);
	}
	if (o < cap)
		o += (size_t)snprintf(p + o, cap - o,
		                      "Cache-Control: max-age=0\r\nConnection: close\r\n\r\n");
	if (o >= cap) {
		free(p);
		return -1;
	}
	cq_swr_recent[q->wid][slot].hash = h;
	cq_swr_recent[q->wid][slot].when = now;
	*out = p;
	*len = o;
	return 0;
}

char *
cachereq_take_uphead(struct creq *q, size_t *len)
{
	char *p = q ? q->uphead : NULL;
	if (p) {
		*len = q->uphead_len;
		q->uphead = NULL;
	}
	return p;
}

const char *
cachereq_action(const struct creq *q)
{
	if (q == NULL || !q->enabled)
		return "TCP_MISS";
	return cache_outcome_squid(q->outcome);
}

const char *
cachereq_status_line(struct creq *q)
{
	char v[200];
	if (q == NULL)
		return "";
	if (!q->enabled) {
		q->line[0] = '\0';
		return q->line;
	}
	size_t n = cache_status_format("Gatehouse", &q->st, v, sizeof(v));
	if (n >= sizeof(v))
		snprintf(v, sizeof(v), "Gatehouse");
	snprintf(q->line, sizeof(q->line), "Cache-Status: %s\r\n", v);
	return q->line;
}

char *
cachereq_log_resphead(struct creq *q, const char *head, size_t len, size_t *outlen)
{
	if (q == NULL || !q->enabled || head == NULL || q->st.stored == q->committed)
		return NULL;
	static const char field[] = "\r\nCache-Status: ";
	const char *at = memmem(head, len, field, sizeof(field) - 1);
	if (at == NULL)
		return NULL;
	at += 2;
	const char *eol = memmem(at, len - (size_t)(at - head), "\r\n", 2);
	if (eol == NULL)
		return NULL;
	eol += 2;
	struct cache_status st = q->st;
	st.stored = q->committed;
	char v[200], line[256];
	size_t n = cache_status_format("Gatehouse", &st, v, sizeof(v));
	if (n >= sizeof(v))
		return NULL;
	int ln = snprintf(line, sizeof(line), "Cache-Status: %s\r\n", v);
	if (ln < 0 || (size_t)ln >= sizeof(line))
		return NULL;
	size_t pre = (size_t)(at - head), post = len - (size_t)(eol - head);
	char *out = malloc(pre + (size_t)ln + post + 1);
	if (out == NULL)
		return NULL;
	memcpy(out, head, pre);
	memcpy(out + pre, line, (size_t)ln);
	memcpy(out + pre + (size_t)ln, eol, post);
	out[pre + (size_t)ln + post] = '\0';
	*outlen = pre + (size_t)ln + post;
	return out;
}

/* h's fields as cache_hdrs into v[CREQ_MAX_FIELDS] (slices into the upstream buffer). */
static size_t
cachereq_resp_fields(const struct h1_head *h, struct cache_hdr *v)
{
	size_t n = 0;
	for (size_t i = 0; i < h->nfields && n < CREQ_MAX_FIELDS; i++, n++) {
		v[n].name.p = h->fields[i].name.p;
		v[n].name.n = h->fields[i].name.n;
		v[n].value.p = h->fields[i].value.p;
		v[n].value.n = h->fields[i].value.n;
	}
	return n;
}

static void
cachereq_invalidate(struct creq *q, int status, const struct cache_hdrs *resp)
{
	struct cache_uri_list l;
	memset(&l, 0, sizeof(l));
	if (cache_invalidations(&q->req, status, resp, &l) != CACHE_OK)
		return;
	for (size_t i = 0; i < l.n; i++)
		cachereq_purge_key(q->cc, l.uri[i], strlen(l.uri[i]));
	cache_uri_list_free(&l);
}

enum cachereq_verdict
cachereq_response(struct creq *q, const struct h1_head *h)
{
	struct cache_hdr *v = calloc(CREQ_MAX_FIELDS, sizeof(*v));
	if (v == NULL)
		return CQ_FORWARD;
	struct cache_hdrs resp = { v, cachereq_resp_fields(h, v) };
	int64_t now = cachereq_now();
	enum cachereq_verdict verdict = CQ_FORWARD;
	q->st.fwd_status = h->status;

	if (q->method != CACHE_M_GET && q->method != CACHE_M_HEAD) {
		cachereq_invalidate(q, h->status, &resp);
		goto out;
	}
	if (!q->enabled)
		goto out;
	if (q->revalidating && q->e != NULL) {
		if (h->status == 304) {
			struct cache_entry *ne = NULL;
			int rc = cache_entry_merge_304(&q->cc->rules, q->e, &resp, q->t_req, now,
			                               &ne);
			if (rc == CACHE_OK) {
				int urc = cache_store_update(cq_g.store, ne);
				if (urc != CACHE_OK && urc != CACHE_ENOENT && urc != CACHE_EFULL)
					log_warn("cache update of %s: %s", q->key,
					         cache_strerror(urc));
				/* the merged fields go out; the body is the looked-up entry's */
				q->ebody = q->e;
				q->e = ne;
				cachereq_set_outcome(q, CACHE_OUT_REFRESH_UNMODIFIED);
				q->st.fwd = CACHE_FWD_STALE;
				q->serve_304 = cache_cond_check(&q->e->meta, &q->req);
				verdict = CQ_SERVE;
				goto out;
			}
			if (rc == CACHE_EMISMATCH) {
				/* the origin's current validators are not the stored ones: this 304
				 * is about something we do not have; ask again, unconditionally */
				log_info("revalidating %s: the 304 does not match the stored "
				         "validators; fetching it again", q->key);
				q->revalidating = 0;
				cache_entry_free(q->e);
				q->e = NULL;
				cachereq_set_outcome(q, CACHE_OUT_REFRESH_MODIFIED);
				q->st.fwd = CACHE_FWD_STALE;
				q->st.fwd_status = 0;
				verdict = CQ_REFETCH;
				goto out;
			}
		} else if (h->status >= 500 && q->dec.stale_if_error) {
			cachereq_set_outcome(q, CACHE_OUT_REFRESH_FAIL_OLD);
			q->serve_304 = 0;
			verdict = CQ_SERVE;
			goto out;
		}
		cachereq_set_outcome(q, CACHE_OUT_REFRESH_MODIFIED);
		q->st.fwd = CACHE_FWD_STALE;
	}
	if (q->stale != NULL) {
		if (h->status >= 500 && q->dec.stale_if_error) {
			q->e = q->stale;
			q->stale = NULL;
			cachereq_set_outcome(q, CACHE_OUT_REFRESH_FAIL_OLD);
			q->serve_304 = 0;
			verdict = CQ_SERVE;
			goto out;
		}
		/* the origin answered: the stale entry is not needed (nor its body pin) */
		cache_entry_free(q->stale);
		q->stale = NULL;
	}
	if (q->method != CACHE_M_GET || h->status == 304)
		goto out;
	const char *why = NULL;
	if (!cache_storable(&q->cc->rules, &q->req, h->status, &resp, &why)) {
		q->st.detail = NULL;
		log_debug("not storing %s: %s", q->key, why);
		goto out;
	}
	struct cache_entry *ne = NULL;
	if (cache_entry_build(&q->cc->rules, &q->req, h->status, &resp, q->t_req, now, &ne) !=
	    CACHE_OK)
		goto out;
	int64_t hint = h->framing == H1_BODY_LENGTH ? (int64_t)h->content_length
	             : h->framing == H1_BODY_NONE ? 0 : -1;
	q->claim = cachereq_claim(q->key, q->keylen);
	if (q->claim == 0) {
		cache_entry_free(ne);
		log_debug("not storing %s: another request is storing it", q->key);
		goto out;
	}
	int rc = cache_fill_begin(cq_g.store, q->key, q->keylen, &ne->meta, &q->req.hdrs, hint,
	                          &q->fill);
	if (rc != CACHE_OK) {
		cache_entry_free(ne);
		cachereq_unclaim(q);
		q->fill = NULL;
		log_debug("not storing %s: %s", q->key, cache_strerror(rc));
		goto out;
	}
	q->fill_expect = hint;
	q->fill_bytes = 0;
	/* Cache-Status goes out before the body: say "stored" only when the whole object is
	 * known to fit (its Content-Length passed CacheMax/MinFileSize and the store's object
	 * limit) and the store has room (it gave up no write for want of room lately). A body
	 * without length may still outgrow them: the head does not promise it, and the access
	 * log tells what happened (cachereq_log_resphead). */
	q->st.stored = hint >= 0 && !atomic_load_explicit(&cq_short_of_room, memory_order_relaxed);
	if (q->is_leader)
		cq_lead_publish(q, h->status, &resp, now, hint, ne->meta.vary);
	cache_entry_free(ne);
out:
	free(v);
	/* not being stored: whoever waits on this request forwards on its own */
	if (q->is_leader && q->fill == NULL)
		cq_lead_end(q, FS_GONE, 0, 0);
	return verdict;
}

int
cachereq_stale_on_error(struct creq *q)
{
	if (q == NULL || !q->dec.stale_if_error || q->follow != CF_NONE)
		return 0;
	if (q->stale != NULL && q->e == NULL) {
		/* a stale entry without a validator, fetched anew */
		q->e = q->stale;
		q->stale = NULL;
	} else if (!q->revalidating || q->e == NULL) {
		return 0;
	}
	/* requests waiting on this one's fill forward on their own (and fall back likewise) */
	if (q->is_leader)
		cq_lead_end(q, FS_GONE, 0, 0);
	cachereq_set_outcome(q, CACHE_OUT_REFRESH_FAIL_OLD);
	q->st.fwd = CACHE_FWD_STALE;
	q->serve_304 = 0;
	return 1;
}

void
cachereq_fill_data(struct creq *q, const char *p, size_t n)
{
	if (q == NULL || q->fill == NULL || n == 0)
		return;
	q->fill_bytes += n;
	int rc = CACHE_ETOOBIG;
	if (q->fill_bytes <= q->cc->rules.max_file_size)
		rc = cache_fill_append(q->fill, p, n);
	if (rc != CACHE_OK) {
		log_debug("storing %s stopped: %s", q->key, cache_strerror(rc));
		cache_fill_abort(q->fill);
		q->fill = NULL;
		cachereq_unclaim(q);
		cq_lead_end(q, FS_FAILED, 0, 0);
		return;
	}
	if (q->is_leader) {
		uint32_t k = cache_fill_chunks(q->fill);
		if (k != q->seen_chunks) {
			q->seen_chunks = k;
			cq_lead_progress(q, k);
		}
	}
}

void
cachereq_response_done(struct creq *q)
{
	if (q == NULL || q->fill == NULL)
		return;
	struct cache_fill *f = q->fill;
	q->fill = NULL;
	/* under CacheMinFileSize (a body without Content-Length): not stored, unless others
	 * are streaming it from the store */
	if (q->fill_bytes < q->cc->rules.min_file_size && !cq_lead_followed(q)) {
		cache_fill_abort(f);
		cachereq_unclaim(q);
		cq_lead_end(q, FS_FAILED, 0, 0);
		return;
	}
	int rc = cache_fill_commit(f, q->fill_expect);
	cachereq_unclaim(q);
	if (rc == CACHE_EFULL) /* one line a minute says so for every request (cachereq_full_warn) */
		log_debug("storing %s: %s", q->key, cache_strerror(rc));
	else if (rc != CACHE_OK)
		log_warn("storing %s: %s", q->key, cache_strerror(rc));
	q->committed = rc == CACHE_OK;
	uint64_t size = q->fill_bytes;
	cq_lead_end(q, rc == CACHE_OK ? FS_DONE : FS_FAILED,
	            (uint32_t)((size + CACHE_CHUNK_SIZE - 1) / CACHE_CHUNK_SIZE), size);
}

static const char *
cachereq_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 203: return "Non-Authoritative Information";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 300: return "Multiple Choices";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 410: return "Gone";
	case 414: return "URI Too Long";
	case 501: return "Not Implemented";
	default: return "Unknown";
	}
}

/* v in decimal into out (at least 21 bytes); returns the length. */
static size_t
cachereq_u64(char *out, uint64_t v)
{
	char t[21];
	size_t n = 0;
	do {
		t[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v && n < sizeof(t));
	for (size_t i = 0; i < n; i++)
		out[i] = t[n - 1 - i];
	return n;
}

int
cachereq_serve_head(struct creq *q, struct buf *out, int is_head, int *status, char *ctype,
                    size_t ctype_len)
{
	const struct cache_meta *m = &q->e->meta;
	uint64_t size = m->body_size;
	int64_t now = cachereq_now();
	int st = q->serve_304 ? 304 : m->status;
	int rc = 0;
	q->nrg = q->ri = 0;
	q->multipart = 0;
	q->part_open = 0;
	q->ctype = cache_entry_header(q->e, "content-type");
	if (!q->serve_304 && !is_head && q->method == CACHE_M_GET && m->status == 200 &&
	    q->follow == CF_NONE) {
		size_t n = 0;
		enum cache_range_result rr = cache_range_decide(m, &q->req, q->rg, CACHE_MAX_RANGES,
		                                                &n);
		if (rr == CACHE_RANGE_PARTIAL && n > 0) {
			st = 206;
			q->nrg = n;
			q->multipart = n > 1;
		} else if (rr == CACHE_RANGE_UNSATISFIABLE) {
			st = 416;
		}
	}
	if (q->nrg == 0 && size > 0 && st != 416) {
		q->rg[0].first = 0;
		q->rg[0].last = size - 1;
		q->nrg = 1;
	}
	q->off = q->nrg ? q->rg[0].first : 0;
	if (q->multipart)
		cache_multipart_boundary((uint64_t)now ^ (uint64_t)(uintptr_t)q ^ size,
		                         q->boundary);
	*status = st;
	/* the common lines by appends: printf dominated the user time of small hits */
	const char *reason = cachereq_reason(st);
	char num[24];
	rc |= buf_append(out, "HTTP/1.1 ", 9);
	rc |= buf_append(out, num, cachereq_u64(num, (uint64_t)st));
	rc |= buf_append(out, " ", 1);
	rc |= buf_append(out, reason, strlen(reason));
	rc |= buf_append(out, "\r\n", 2);
	size_t pos = 0;
	struct cache_hdr f;
	int has_date = 0;
	/* bounded: each call consumes at least one line of the stored block */
	while (cache_block_next(m->headers, &pos, &f)) {
		if (f.name.n == 4 && strncasecmp(f.name.p, "date", 4) == 0)
			has_date = 1;
		if (f.name.n == 12 && strncasecmp(f.name.p, "content-type", 12) == 0) {
			size_t k = 0;
			while (k < f.value.n && k + 1 < ctype_len && f.value.p[k] != ';' &&
			       f.value.p[k] != ' ' && f.value.p[k] != '\t')
				k++;
			if (ctype_len) {
				memcpy(ctype, f.value.p, k);
				ctype[k] = '\0';
			}
			if (q->multipart)
				continue;
		}
		rc |= buf_append(out, f.name.p, f.name.n);
		rc |= buf_append(out, ": ", 2);
		rc |= buf_append(out, f.value.p, f.value.n);
		rc |= buf_append(out, "\r\n", 2);
	}
	if (!has_date) {
		char d[30];
		cache_http_date_format(now, d);
		rc |= buf_append(out, "Date: ", 6);
		rc |= buf_append(out, d, strlen(d));
		rc |= buf_append(out, "\r\n", 2);
	}
	int64_t age = cache_current_age(m, now);
	rc |= buf_append(out, "Age: ", 5);
	rc |= buf_append(out, num, cachereq_u64(num, age > 0 ? (uint64_t)age : 0));
	rc |= buf_append(out, "\r\n", 2);
	const char *line = cachereq_status_line(q);
	rc |= buf_append(out, line, strlen(line));
	if (st == 206 && q->multipart) {
		rc |= buf_printf(out, "Content-Type: multipart/byteranges; boundary=%s\r\n",
		                 q->boundary);
		rc |= buf_printf(out, "Content-Length: %" PRIu64 "\r\n",
		                 cache_multipart_length(q->boundary, q->ctype, q->rg, q->nrg,
		                                        size));
	} else if (st == 206) {
		rc |= buf_printf(out,
		                 "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n",
		                 q->rg[0].first, q->rg[0].last, size);
		rc |= buf_printf(out, "Content-Length: %" PRIu64 "\r\n",
		                 q->rg[0].last - q->rg[0].first + 1);
	} else if (st == 416) {
		rc |= buf_printf(out, "Content-Range: bytes */%" PRIu64 "\r\nContent-Length: 0\r\n",
		                 size);
	} else if (q->follow != CF_NONE && q->length < 0 && st != 304 && st != 204) {
		/* following a fill without Content-Length: chunked, or to the end of the
		 * connection for HTTP/1.0 */
		if (q->minor >= 1) {
			rc |= buf_printf(out, "Transfer-Encoding: chunked\r\n");
			q->chunked = 1;
		} else {
			q->close_delim = 1;
		}
	} else if (st != 304 && st != 204) {
		rc |= buf_append(out, "Content-Length: ", 16);
		rc |= buf_append(out, num, cachereq_u64(num, size));
		rc |= buf_append(out, "\r\n", 2);
	}
	if (st == 304 || st == 204 || st == 416 || is_head || q->nrg == 0)
		q->body_done = 1;
	if (q->follow != CF_NONE)
		q->body_done = st == 304 || st == 204 || is_head;
	return rc ? -1 : 0;
}

/* A follower whose fill has its head: build q->e from the published head. Returns 0, or -1
 * when the follower is to forward on its own (another variant, an error). */
static int
cachereq_follow_head(struct creq *q)
{
	const struct cq_fill *cf = q->cf; /* head fields: immutable, we hold a reference */
	if (cf->vary_len) {
		unsigned char vh[32];
		struct cache_str spec = { cf->vary, cf->vary_len };
		if (cache_vary_hash(spec, &q->req.hdrs, vh) != CACHE_OK ||
		    memcmp(vh, cf->vhash, sizeof(vh)) != 0)
			return -1;
	}
	struct cache_hdr *v = calloc(CREQ_MAX_FIELDS, sizeof(*v));
	if (v == NULL)
		return -1;
	struct cache_str blk = { cf->resp, cf->resp_len };
	size_t pos = 0, n = 0;
	while (n < CREQ_MAX_FIELDS && cache_block_next(blk, &pos, &v[n]))
		n++;
	struct cache_hdrs resp = { v, n };
	int rc = cache_entry_build(&q->cc->rules, &q->req, cf->status, &resp, cf->t_req,
	                           cf->t_resp, &q->e);
	free(v);
	if (rc != CACHE_OK) {
		q->e = NULL;
		return -1;
	}
	uint64_t size = cf->length >= 0 ? (uint64_t)cf->length : 0;
	q->e->meta.body_id = cf->body_id;
	q->e->meta.body_size = size;
	q->e->meta.nchunks = (uint32_t)((size + CACHE_CHUNK_SIZE - 1) / CACHE_CHUNK_SIZE);
	/* Pin the fill's body as a lookup pins a stored one (cache_entry_free unpins): a PURGE
	 * during the fill deletes the entry and, unpinned, the chunks the follower has still to
	 * read, which cut its response short. */
	if (cache_body_pin(cq_g.store, cf->body_id) == CACHE_OK) {
		q->e->pin = cq_g.store;
		q->e->unpin = cache_body_unpin;
	}
	q->length = cf->length;
	q->next_idx = 0;
	q->off = 0;
	q->st.fwd_status = cf->status;
	q->st.stored = cf->length >= 0; /* as the leader's own head says (cachereq_response) */
	/* the body comes from the fill: a stale fallback is not needed */
	cache_entry_free(q->stale);
	q->stale = NULL;
	return 0;
}

/* serve_body for a follower: wait for the head, then stream the fill's chunks as they are
 * committed (chunk-framed when q->chunked), and end as the fill ends. */
static int
cachereq_follow_body(struct creq *q, struct buf *out, size_t *moved)
{
	struct cq_fill *cf = q->cf;
	if (cf == NULL)
		return -1;
	pthread_mutex_lock(&cq_g.reg_lock);
	enum cq_fstate st = cf->state;
	uint32_t avail = cf->nchunks;
	uint64_t size = cf->size;
	int has_head = cf->has_head;
	pthread_mutex_unlock(&cq_g.reg_lock);
	if (q->follow == CF_WAIT) {
		if (st == FS_WAIT)
			return 0;
		if ((st == FS_STREAM || st == FS_DONE) && has_head && cachereq_follow_head(q) == 0) {
			q->follow = CF_STREAM;
			return 3;
		}
		/* not stored, failed before we sent anything, another variant: forward */
		log_debug("collapsed forwarding: %s: forwarding on its own (%s)", q->key,
		          st == FS_GONE ? "not stored" : st == FS_FAILED ? "the fill failed"
		                                       : "another variant");
		cq_unfollow(q);
		q->follow = CF_NONE;
		q->st.collapsed = 0;
		q->st.stored = 0;
		q->st.fwd_status = 0;
		cache_entry_free(q->e);
		q->e = NULL;
		return 4;
	}
	if (q->body_done)
		return 2;
	if (st != FS_STREAM && st != FS_DONE)
		return -1; /* the fill failed: the response ends without its final framing */
	if (q->next_idx < avail) {
		size_t need = CACHE_CHUNK_SIZE + 32, room = 0, len = 0;
		if (out->cap - buf_len(out) < need)
			return 0;
		char *dst = buf_reserve(out, need, &room);
		if (dst == NULL || room < need)
			return 0;
		int rc = cache_read_chunk_copy(q->rd, cf->body_id, q->next_idx, dst + 16,
		                               room - 16 - 8, &len);
		if (rc < 0) {
			log_info("cache: %s chunk %u of a fill: %s", q->key, q->next_idx,
			         cache_strerror(rc));
			return -1;
		}
		size_t o = 0;
		if (q->chunked) {
			if (len == 0)
				return -1;
			char h[16];
			int k = snprintf(h, sizeof(h), "%zx\r\n", len);
			memcpy(dst, h, (size_t)k);
			memmove(dst + k, dst + 16, len);
			memcpy(dst + k + len, "\r\n", 2);
			o = (size_t)k + len + 2;
		} else {
			memmove(dst, dst + 16, len);
			o = len;
		}
		buf_commit(out, o);
		q->next_idx++;
		q->off += len;
		*moved = len;
		return 1;
	}
	if (st != FS_DONE)
		return 0;
	if ((q->length >= 0 && q->off != (uint64_t)q->length) || q->off != size)
		return -1;
	if (q->chunked && buf_append(out, "0\r\n\r\n", 5) < 0)
		return 0;
	q->body_done = 1;
	q->committed = 1;
	return 2;
}

int
cachereq_serve_body(struct creq *q, struct buf *out, size_t *moved)
{
	*moved = 0;
	if (q->follow != CF_NONE)
		return cachereq_follow_body(q, out, moved);
	if (q->body_done)
		return 2;
	const struct cache_entry *be = q->ebody ? q->ebody : q->e;
	const struct cache_meta *m = &q->e->meta;
	if (q->ri >= q->nrg) {
		q->body_done = 1;
		if (!q->multipart)
			return 2;
		char tail[64];
		size_t n = cache_multipart_tail(q->boundary, tail, sizeof(tail));
		if (n >= sizeof(tail) || buf_append(out, tail, n) < 0) {
			q->body_done = 0;
			return n >= sizeof(tail) ? -1 : 0;
		}
		*moved = n;
		return 1;
	}
	const struct cache_range *r = &q->rg[q->ri];
	if (q->multipart && !q->part_open) {
		char ph[512];
		size_t n = cache_multipart_head(q->boundary, q->ctype, r, m->body_size, ph,
		                                sizeof(ph));
		if (n >= sizeof(ph))
			return -1;
		if (buf_append(out, ph, n) < 0)
			return 0;
		q->part_open = 1;
		q->off = r->first;
		*moved = n;
		return 1;
	}
	uint64_t end = r->last + 1;
	size_t take;
	if (be->body != NULL) {
		if (end > be->body_len)
			return -1;
		take = (size_t)(end - q->off);
		if (buf_append(out, be->body + q->off, take) < 0)
			return 0;
	} else {
		uint32_t idx = (uint32_t)(q->off / CACHE_CHUNK_SIZE);
		if (out->cap - buf_len(out) < CACHE_CHUNK_SIZE)
			return 0;
		size_t avail = 0, len = 0;
		char *dst = buf_reserve(out, CACHE_CHUNK_SIZE, &avail);
		if (dst == NULL || avail < CACHE_CHUNK_SIZE)
			return 0;
		int rc = cache_read_chunk_copy(q->rd, m->body_id, idx, dst, avail, &len);
		if (rc < 0) {
			log_info("cache: %s chunk %u: %s", q->key, idx, cache_strerror(rc));
			return -1;
		}
		size_t skip = (size_t)(q->off - (uint64_t)idx * CACHE_CHUNK_SIZE);
		if (skip >= len)
			return -1;
		take = len - skip;
		if (take > end - q->off)
			take = (size_t)(end - q->off);
		if (skip)
			memmove(dst, dst + skip, take);
		buf_commit(out, take);
	}
	q->off += take;
	*moved = take;
	if (q->off >= end) {
		q->ri++;
		q->part_open = 0;
		if (q->ri < q->nrg)
			q->off = q->rg[q->ri].first;
		else if (!q->multipart)
			q->body_done = 1;
	}
	return 1;
}

/* ---- the status page's explain ---- */

int
cachereq_probe(unsigned wid, const struct cfg *cfg, const char *method, const char *url,
               const char *head, size_t head_len, struct cachereq_probe *out)
{
	memset(out, 0, sizeof(*out));
	out->lookup = -1;
	const struct cachecfg *cc = cfg->cache;
	if (cq_g.store == NULL || cc == NULL || cc->root == NULL)
		return 0;
	out->configured = 1;
	struct creq *q = cachereq_new(wid, cc, method, url, head, head_len);
	if (q == NULL)
		return -1;
	q->background = 1; /* an explain is not a request: not counted */
	snprintf(out->key, sizeof(out->key), "%s", q->key);
	out->key_truncated = q->keylen >= sizeof(out->key);
	out->enabled = cachecfg_enabled_why(cc, q->key, q->keylen, &out->prefix,
	                                    &out->by_disable, &out->rule_where);
	out->method_ok = q->method == CACHE_M_GET || q->method == CACHE_M_HEAD;
	if (!out->enabled || !out->method_ok || strcmp(method, "PURGE") == 0) {
		cachereq_free(&q);
		return 0;
	}
	cachereq_set_outcome(q, CACHE_OUT_BYPASS);
	int rc = cachereq_judge(q);
	if (rc < 0) {
		cachereq_free(&q);
		return -1;
	}
	/* As cachereq_begin: a revalidation that cannot be built (no validator) is a fetch. */
	if (q->dec.action == CACHE_ACT_REVALIDATE && cachereq_build_reval(q) != 0)
		cachereq_judge_fetch(q, rc);
	out->lookup = rc;
	out->dec = q->dec;
	out->outcome = q->outcome;
	out->action = cache_outcome_squid(q->outcome);
	if (q->e != NULL) {
		const struct cache_meta *m = &q->e->meta;
		out->status = m->status;
		out->response_time = m->response_time;
		out->body_size = m->body_size;
		snprintf(out->vary, sizeof(out->vary), "%.*s", (int)m->vary.n, m->vary.p);
		snprintf(out->etag, sizeof(out->etag), "%.*s", (int)m->etag.n, m->etag.p);
		out->mkeylen = q->e->keylen <= sizeof(out->mkey) ? q->e->keylen : 0;
		memcpy(out->mkey, q->e->key, out->mkeylen);
	}
	snprintf(out->cache_status, sizeof(out->cache_status), "%s", cachereq_status_line(q));
	size_t n = strlen(out->cache_status);
	while (n > 0 && (out->cache_status[n - 1] == '\n' || out->cache_status[n - 1] == '\r'))
		out->cache_status[--n] = '\0';
	cachereq_free(&q);
	return 0;
}
