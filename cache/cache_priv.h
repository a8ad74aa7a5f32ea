/*
 * cache_priv.h - internals shared by the cache/ sources: string and list helpers, SHA-256,
 * the entry record format, the store's structures and its write-transaction runner.
 * Nothing outside cache/ includes this file (tests do, to reach internals).
 */
#ifndef GH_CACHE_PRIV_H
#define GH_CACHE_PRIV_H

#include "cache/cache.h"

#include <lmdb.h>
#include <stddef.h>
#include <pthread.h>

#define CACHE_ENTRY_MAGIC  0x63456e74u /* "cEnt" */
#define CACHE_STORE_MAGIC  0x63537472u /* "cStr" */
#define CACHE_READER_MAGIC 0x63526472u /* "cRdr" */
#define CACHE_FILL_MAGIC   0x6346696cu /* "cFil" */

#define CACHE_MAX_FIELDS 1000          /* fields in a stored header block */
#define CACHE_DELTA_MAX 2147483648ll   /* RFC 9111 1.2.2 */

/* ---- strings and lists (hdr.c) ---- */

/* Case-insensitive equality of a slice and a NUL-terminated literal / of two buffers. */
int cache_sieq(struct cache_str s, const char *lit);
int cache_nieq(const char *a, size_t an, const char *b, size_t bn);

/* Trim spaces and tabs from both ends. */
struct cache_str cache_trim(struct cache_str s);

/* Next element of a comma-separated list value (commas inside quoted strings do not split;
 * empty elements are skipped; elements are trimmed). Start with *pos = 0. Returns 1 or 0 at
 * the end. */
int cache_list_next(struct cache_str v, size_t *pos, struct cache_str *elem);

/* delta-seconds: digits only (a quoted form allowed), clamped at 2^31; -1 when invalid. */
int64_t cache_delta_parse(struct cache_str s);

/* Parse a header block into an array (malloc'd; free it). Returns the count or -1. */
long cache_block_fields(struct cache_str block, struct cache_hdr **out);

/* Fill meta's parsed fields (cc, date, expires, last_modified, etag, vary) from the fields
 * of h; slices point into h's values. Returns 0, or -1 when the Vary spec is "*" or too long
 * (meta->vary is then "*"). vbuf receives the normalised Vary spec (cap CACHE_VARY_MAX + 1). */
int cache_meta_parse_fields(const struct cache_hdrs *h, struct cache_meta *m, char *vbuf);

/* ---- hashing (key.c) ---- */

int cache_sha256(const void *a, size_t an, const void *b, size_t bn, unsigned char out[32]);

/* ---- the entry record (store.c) ----
 * Native byte order (the store lives and dies on one machine); a fixed header then the
 * strings url, headers, etag, vary. */
struct cache_rec {
	uint8_t version;        /* CACHE_REC_VERSION */
	uint8_t spare;
	uint16_t status;
	uint32_t mflags;        /* CACHE_MF_* */
	uint32_t ccflags;
	uint32_t nchunks;
	uint64_t seq, body_id, body_size, body_acct;
	int64_t request_time, response_time, date, age_value, expires, last_modified;
	int64_t max_age, s_maxage, swr, sie;
	uint32_t url_len, hdr_len, etag_len, vary_len;
	/* version 2: hits and last access, from the LRU touches (version 1 records decode with
	 * 0 and -1 and are rewritten as version 2 by the next touch or update) */
	uint64_t hits;
	int64_t last_access;
};
#define CACHE_REC_VERSION 2
#define CACHE_REC_V1_SIZE offsetof(struct cache_rec, hits)

size_t cache_rec_size(const struct cache_meta *m);
void cache_rec_encode(const struct cache_meta *m, unsigned char *out);
/* Slices of m point into p. Returns 0, or -1 for a malformed record. */
int cache_rec_decode(const void *p, size_t n, struct cache_meta *m);

/* A deep copy of m (and key) into a new entry with room for an inline body of body_room. */
struct cache_entry *cache_entry_copy(const struct cache_meta *m, const unsigned char *key,
                                     size_t keylen, size_t body_room);

/* ---- the store ---- */

#define CACHE_TOUCH_MAX 2048   /* queued LRU touches; more are dropped until the next write */
#define CACHE_GC_PER_TXN 64     /* chunks deleted per write transaction */
#define CACHE_EVICT_PER_TXN 32  /* entries evicted per write transaction */
#define CACHE_URLKEY_MAX 480    /* url db keys longer than this are truncated + hashed */

struct cache_touch {
	unsigned char key[CACHE_KEY_MAX];
	uint8_t klen;
	uint64_t seq;
};

/* A body whose chunks are to be deleted, from chunk `next` on. */
struct cache_gc {
	uint64_t id;
	uint32_t next;
	uint32_t fresh;            /* queued by the transaction in progress: not deleted by it
	                            * (a reader's pin check needs one commit in between) */
	uint64_t acct;             /* accounting still to go (an estimate; 0 when unknown) */
};

/* A body some reader is streaming: its chunks outlive its entry until the last unpin. */
struct cache_pin {
	uint64_t id;
	uint32_t n;                /* readers */
};

/* Is body id pinned? The caller holds s->pmu. */
int cache_pinned_locked(const struct cache_store *s, uint64_t id);

struct cache_store {
	uint32_t magic;
	MDB_env *env;
	MDB_dbi db_meta, db_body, db_lru, db_url;
	MDB_dbi db_purge;          /* purges by prefix in progress (cache_purge_pending_add) */
	int lock_fd;
	unsigned psize;            /* LMDB page size */
	const unsigned char *map;  /* the LMDB map (cache_map_learn; atomic; it never moves) */
	int data_fd;               /* LMDB's data file, for pread() of overflow values (read.c) */
	uint64_t map_size, budget, high, low, max_object;
	int compress, level;
	enum cache_sync sync;
	int64_t last_sync;

	pthread_mutex_t wmu;       /* one write transaction at a time; guards what follows */
	uint64_t used;             /* accounted bytes of every record */
	uint64_t entries;
	uint64_t next_id;          /* atomic: body ids are taken without the lock */
	uint64_t next_seq;
	uint64_t gen;              /* atomic; bumped by cache_clear(): fills from before fail */
	struct cache_gc *gc;
	size_t ngc, gccap;
	unsigned char *zbuf;       /* deflate output for fills (under wmu) */
	size_t zcap;
	struct cache_stats st;     /* written under wmu, read with relaxed atomics */

	pthread_mutex_t tmu;       /* the touch queue */
	struct cache_touch *touch;
	size_t ntouch;             /* written under tmu with atomic stores, peeked without it */
	uint64_t touches_dropped;  /* atomic */

	pthread_mutex_t pmu;       /* the pin registry (readers take it, never wmu) */
	struct cache_pin *pins;
	size_t npins, pincap;
	uint64_t pins_blocked;     /* atomic: GC passes that skipped a pinned body */
};

/* One write transaction in progress: the changes to the store's counters and GC list are made
 * on copies and published only when the commit succeeds. */
struct cache_wtx {
	struct cache_store *s;
	MDB_txn *txn;
	int64_t d_used, d_entries;
	uint64_t next_seq;
	struct cache_gc *gc;
	size_t ngc, gccap;
	struct cache_stats d;      /* deltas of the counters */
	int gc_budget;             /* chunks this transaction may still delete */
};

/* An operation run inside a write transaction: return 0 or an LMDB error (MDB_MAP_FULL makes
 * the runner evict and retry). */
typedef int cache_wop_f(struct cache_wtx *w, void *arg);

#define CACHE_W_NOEVICT 0x1u    /* do not evict and retry on MDB_MAP_FULL */
#define CACHE_W_NOTOUCH 0x2u    /* do not apply queued touches */

/* Run op in a write transaction; the caller holds s->wmu. Applies queued touches, runs a
 * GC step after op, commits, publishes. On MDB_MAP_FULL or ENOSPC evicts a batch and retries
 * (bounded). Returns 0 or a CACHE_E* code. */
int cache_wrun(struct cache_store *s, cache_wop_f *op, void *arg, unsigned flags);

/* Helpers for operations. */
int cache_w_put(struct cache_wtx *w, MDB_dbi db, const void *k, size_t kl, const void *v,
                size_t vl);
int cache_w_gc_push(struct cache_wtx *w, uint64_t id, uint32_t from, uint64_t acct);
/* Delete the entry under meta key k (record value v/vl already fetched), with its LRU record,
 * its URL record (primary keys) and its chunks (queued for GC). */
int cache_w_delete_entry(struct cache_wtx *w, const unsigned char *k, size_t kl, const void *v,
                         size_t vl, int evicted);
/* Evict (least recently used first) and delete queued chunks until the accounting is at most
 * target, in at most max_txns transactions. Returns 0, or CACHE_EFULL when nothing more can
 * be evicted, or another CACHE_E* code. */
int cache_evict_to(struct cache_store *s, uint64_t target, int max_txns);

/* Accounting of one record of key length kl and value length vl. */
uint64_t cache_acct(const struct cache_store *s, size_t kl, size_t vl);

/* The url db key for a cache key (truncated and hashed when long); returns its length. */
size_t cache_urlkey(const char *key, size_t keylen, unsigned char *out);

void cache_be64(unsigned char *p, uint64_t v);
uint64_t cache_get_be64(const unsigned char *p);
void cache_be32(unsigned char *p, uint32_t v);
uint32_t cache_get_be32(const unsigned char *p);

/* Queue an LRU touch (lookups). */
void cache_touch_queue(struct cache_store *s, const unsigned char *key, size_t kl, uint64_t seq);
const unsigned char *cache_map_learn(struct cache_store *s, const void *p);
void cache_map_release(struct cache_store *s);

#endif
