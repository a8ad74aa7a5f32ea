/*
 * store.c - the LMDB store: opening (lock, reader check, sweep), the write-transaction
 * runner with MDB_MAP_FULL recovery, accounting, deferred chunk deletion (GC), LRU eviction,
 * touches, purge, listing, clearing, consistency checks, stats.
 *
 * Invariants (hold at every commit):
 *  - a meta record exists only for a complete entry; its chunks body_id||0..nchunks-1 exist
 *    (until the entry is deleted: then its chunks are queued for GC in the same transaction);
 *  - every meta record has exactly one lru record, seq||key with the seq stored in the meta;
 *  - every primary (32-byte) meta key has a url record pointing at it;
 *  - s->used is the accounting of every record in the environment (cache_acct per record);
 *    chunks queued for GC still count until deleted.
 * Chunks of a fill in progress have no meta: invisible to lookups, swept at open after a crash.
 * All writes happen under s->wmu, one transaction at a time.
 */
#include "cache/cache_priv.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define CACHE_SIZE_MIN (1ull << 20)
#define CACHE_WRUN_TRIES 4
#define CACHE_EVICT_LOOP_MAX 100000
/* A write that failed while the file system had less than this left was cut short by a full
 * disk (cache_short_write_enospc): more than one transaction writes (a chunk and a few
 * B-tree pages) */
#define CACHE_DISK_SLACK (1ull << 20)

/* ---- small helpers ---- */

void
cache_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

uint64_t
cache_get_be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

void
cache_be32(unsigned char *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

uint32_t
cache_get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint64_t
cache_acct(const struct cache_store *s, size_t kl, size_t vl)
{
	size_t nodemax = (((s->psize - 16) / 2) & ~(size_t)1) - 2;

	if (8 + kl + vl > nodemax) { /* an overflow value: whole pages */
		uint64_t pages = (16 - 1 + vl) / s->psize + 1;

		return pages * s->psize + (8 + kl + 8 + 2) * 3 / 2;
	}
	return (8 + kl + vl + 2) * 3 / 2; /* a node in a leaf page about 2/3 full */
}

#define CACHE_URL_TRUNC (CACHE_URLKEY_MAX - 33)

size_t
cache_urlkey(const char *key, size_t keylen, unsigned char *out)
{
	if (keylen <= CACHE_URLKEY_MAX) {
		memcpy(out, key, keylen);
		return keylen;
	}
	memcpy(out, key, CACHE_URL_TRUNC);
	out[CACHE_URL_TRUNC] = 0;
	cache_sha256(key, keylen, NULL, 0, out + CACHE_URL_TRUNC + 1);
	return CACHE_URLKEY_MAX;
}

static int
cache_mdb_err(int rc)
{
	if (rc >= CACHE_EBUSY && rc < 0)
		return rc; /* already ours */
	switch (rc) {
	case 0: return CACHE_OK;
	case MDB_NOTFOUND: return CACHE_ENOENT;
	case MDB_MAP_FULL: case ENOSPC: return CACHE_EFULL;
	case ENOMEM: return CACHE_ENOMEM;
	case MDB_CORRUPTED: case MDB_PAGE_NOTFOUND: return CACHE_ECORRUPT;
	default: return CACHE_EIO;
	}
}

/* ---- the map ---- */

/* Learn where LMDB mapped the data file from p, a pointer into the map that LMDB returned (a
 * key or value): the page holding p starts with its page number (the file format), and page 0
 * is a meta page whose magic confirms the base. Returns the base or NULL. */
const unsigned char *
cache_map_learn(struct cache_store *s, const void *p)
{
	const unsigned char *m = __atomic_load_n(&s->map, __ATOMIC_ACQUIRE);
	uintptr_t page, base;
	uint64_t pgno;
	uint32_t magic;

	if (m || !p || !s->psize)
		return m;
	page = (uintptr_t)p & ~((uintptr_t)s->psize - 1);
	memcpy(&pgno, (const void *)page, sizeof(pgno));
	if (pgno < 2 || pgno > page / s->psize || pgno > s->map_size / s->psize)
		return NULL;
	base = page - (uintptr_t)pgno * s->psize;
	memcpy(&magic, (const void *)(base + 16), sizeof(magic));
	if (magic != 0xBEEFC0DEu)
		return NULL;
	__atomic_store_n(&s->map, (const unsigned char *)base, __ATOMIC_RELEASE);
	return (const unsigned char *)base;
}

/* Drop this process's mappings of the store's pages (MADV_DONTNEED: the pages stay in the
 * page cache, the next access maps them again). Without it every page a lookup, a scan or
 * the kernel's fault-around touched would stay resident in the process for good, up to the
 * whole store. Safe with readers running: the map is a shared read-only file mapping (no
 * MDB_WRITEMAP), so a dropped page is mapped again with the same bytes. */
void
cache_map_release(struct cache_store *s)
{
	const unsigned char *m = __atomic_load_n(&s->map, __ATOMIC_ACQUIRE);

	if (m && s->map_size)
		madvise((void *)m, (size_t)s->map_size, MADV_DONTNEED);
}

/* ---- records ---- */

size_t
cache_rec_size(const struct cache_meta *m)
{
	return sizeof(struct cache_rec) + m->url.n + m->headers.n + m->etag.n + m->vary.n;
}

void
cache_rec_encode(const struct cache_meta *m, unsigned char *out)
{
	struct cache_rec r;
	unsigned char *p = out + sizeof(r);

	memset(&r, 0, sizeof(r));
	r.version = CACHE_REC_VERSION;
	r.status = (uint16_t)m->status;
	r.mflags = m->flags;
	r.ccflags = m->cc.flags;
	r.nchunks = m->nchunks;
	r.seq = m->seq;
	r.body_id = m->body_id;
	r.body_size = m->body_size;
	r.body_acct = m->body_acct;
	r.request_time = m->request_time;
	r.response_time = m->response_time;
	r.date = m->date;
	r.age_value = m->age_value;
	r.expires = m->expires;
	r.last_modified = m->last_modified;
	r.max_age = m->cc.max_age;
	r.s_maxage = m->cc.s_maxage;
	r.swr = m->cc.swr;
	r.sie = m->cc.sie;
	r.url_len = (uint32_t)m->url.n;
	r.hdr_len = (uint32_t)m->headers.n;
	r.etag_len = (uint32_t)m->etag.n;
	r.vary_len = (uint32_t)m->vary.n;
	r.hits = m->hits;
	r.last_access = m->last_access;
	memcpy(out, &r, sizeof(r));
#define CACHE_PUT_STR(f) do { if (m->f.n) memcpy(p, m->f.p, m->f.n); p += m->f.n; } while (0)
	CACHE_PUT_STR(url);
	CACHE_PUT_STR(headers);
	CACHE_PUT_STR(etag);
	CACHE_PUT_STR(vary);
#undef CACHE_PUT_STR
}

int
cache_rec_decode(const void *data, size_t n, struct cache_meta *m)
{
	const char *p;
	struct cache_rec r;
	size_t fixed;

	if (n < CACHE_REC_V1_SIZE)
		return -1;
	memset(&r, 0, sizeof(r));
	r.last_access = -1;
	memcpy(&r, data, CACHE_REC_V1_SIZE);
	if (r.version == 1) {
		fixed = CACHE_REC_V1_SIZE; /* before hits were kept */
	} else if (r.version == CACHE_REC_VERSION && n >= sizeof(r)) {
		fixed = sizeof(r);
		memcpy(&r, data, sizeof(r));
	} else {
		return -1;
	}
	if ((uint64_t)r.url_len + r.hdr_len + r.etag_len + r.vary_len != n - fixed)
		return -1;
	p = (const char *)data + fixed;
	memset(m, 0, sizeof(*m));
	m->status = r.status;
	m->flags = r.mflags;
	m->cc.flags = r.ccflags;
	m->cc.max_age = r.max_age;
	m->cc.s_maxage = r.s_maxage;
	m->cc.swr = r.swr;
	m->cc.sie = r.sie;
	m->cc.max_stale = m->cc.min_fresh = -1;
	m->nchunks = r.nchunks;
	m->seq = r.seq;
	m->body_id = r.body_id;
	m->body_size = r.body_size;
	m->body_acct = r.body_acct;
	m->request_time = r.request_time;
	m->response_time = r.response_time;
	m->date = r.date;
	m->age_value = r.age_value;
	m->expires = r.expires;
	m->last_modified = r.last_modified;
	m->hits = r.hits;
	m->last_access = r.last_access;
	m->url = (struct cache_str){p, r.url_len};
	p += r.url_len;
	m->headers = (struct cache_str){p, r.hdr_len};
	p += r.hdr_len;
	m->etag = (struct cache_str){p, r.etag_len};
	p += r.etag_len;
	m->vary = (struct cache_str){p, r.vary_len};
	return 0;
}

static uint64_t
cache_rec_seq(const void *data, size_t n)
{
	uint64_t seq = 0;

	if (n >= sizeof(struct cache_rec))
		memcpy(&seq, (const char *)data + offsetof(struct cache_rec, seq), sizeof(seq));
	return seq;
}

/* ---- write transactions ---- */

int
cache_w_put(struct cache_wtx *w, MDB_dbi db, const void *k, size_t kl, const void *v, size_t vl)
{
	MDB_val key = {kl, (void *)k}, val = {vl, (void *)v};

	return mdb_put(w->txn, db, &key, &val, 0);
}

int
cache_w_gc_push(struct cache_wtx *w, uint64_t id, uint32_t from, uint64_t acct)
{
	if (w->ngc == w->gccap) {
		size_t nc = w->gccap ? w->gccap * 2 : 16;
		struct cache_gc *n = realloc(w->gc, nc * sizeof(*n));

		if (!n)
			return ENOMEM;
		w->gc = n;
		w->gccap = nc;
	}
	w->gc[w->ngc++] = (struct cache_gc){id, from, 1, acct};
	return 0;
}

/* ---- pins: bodies being read ---- */

int
cache_pinned_locked(const struct cache_store *s, uint64_t id)
{
	for (size_t i = 0; i < s->npins; i++)
		if (s->pins[i].id == id)
			return 1;
	return 0;
}

int
cache_body_pin(struct cache_store *s, uint64_t body_id)
{
	int rc = CACHE_OK;

	pthread_mutex_lock(&s->pmu);
	size_t i = 0;

	while (i < s->npins && s->pins[i].id != body_id)
		i++;
	if (i < s->npins) {
		s->pins[i].n++;
	} else if (s->npins == s->pincap) {
		size_t nc = s->pincap ? s->pincap * 2 : 16;
		struct cache_pin *n = realloc(s->pins, nc * sizeof(*n));

		if (n) {
			s->pins = n;
			s->pincap = nc;
			s->pins[s->npins++] = (struct cache_pin){body_id, 1};
		} else {
			rc = CACHE_ENOMEM;
		}
	} else {
		s->pins[s->npins++] = (struct cache_pin){body_id, 1};
	}
	pthread_mutex_unlock(&s->pmu);
	return rc;
}

void
cache_body_unpin(struct cache_store *s, uint64_t body_id)
{
	pthread_mutex_lock(&s->pmu);
	for (size_t i = 0; i < s->npins; i++) {
		if (s->pins[i].id != body_id)
			continue;
		if (--s->pins[i].n == 0)
			s->pins[i] = s->pins[--s->npins];
		break;
	}
	pthread_mutex_unlock(&s->pmu);
}

/* Queued bodies that the next write transaction may delete: not pinned. The caller holds
 * wmu. */
static size_t
cache_gc_ready(struct cache_store *s)
{
	size_t n = 0;

	pthread_mutex_lock(&s->pmu);
	for (size_t i = 0; i < s->ngc; i++)
		n += !cache_pinned_locked(s, s->gc[i].id);
	pthread_mutex_unlock(&s->pmu);
	return n;
}

/* Delete up to w->gc_budget chunks of queued bodies: not those queued by this transaction,
 * nor pinned ones (a reader is streaming them; the pin check is made under pmu after the
 * commit that queued the body, so a reader that pinned and then still saw the entry is
 * always seen here). */
static int
cache_gc_step(struct cache_wtx *w)
{
	struct cache_store *s = w->s;
	MDB_cursor *c;
	size_t i = 0;
	int rc;

	if (!w->ngc)
		return 0;
	rc = mdb_cursor_open(w->txn, s->db_body, &c);
	if (rc)
		return rc;
	pthread_mutex_lock(&s->pmu);
	while (i < w->ngc && w->gc_budget > 0) {
		unsigned char kb[12];
		MDB_val k = {12, kb}, v;

		if (w->gc[i].fresh || cache_pinned_locked(s, w->gc[i].id)) {
			if (!w->gc[i].fresh)
				__atomic_add_fetch(&s->pins_blocked, 1, __ATOMIC_RELAXED);
			i++;
			continue;
		}
		cache_be64(kb, w->gc[i].id);
		cache_be32(kb + 8, w->gc[i].next);
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		if (rc == MDB_NOTFOUND || (rc == 0 && (k.mv_size != 12 ||
		                                      cache_get_be64(k.mv_data) != w->gc[i].id))) {
			w->gc[i] = w->gc[--w->ngc]; /* this body is gone */
			continue;
		}
		if (rc)
			break;
		uint64_t a = cache_acct(s, 12, v.mv_size);

		w->gc[i].next = cache_get_be32((const unsigned char *)k.mv_data + 8) + 1;
		w->gc[i].acct = w->gc[i].acct > a ? w->gc[i].acct - a : 0;
		w->d_used -= (int64_t)a;
		rc = mdb_cursor_del(c, 0);
		if (rc)
			break;
		w->gc_budget--;
	}
	pthread_mutex_unlock(&s->pmu);
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Order touches by meta key, so the touches of one entry are applied together. */
static int
cache_touch_cmp(const void *a, const void *b)
{
	const struct cache_touch *x = a, *y = b;
	size_t n = x->klen < y->klen ? x->klen : y->klen;
	int c = memcmp(x->key, y->key, n);

	return c ? c : (int)x->klen - (int)y->klen;
}

/* Apply queued LRU touches. Each touched entry's record is rewritten once per batch with its
 * hits added and last_access set to now; entries not among the most recent few also get a
 * new sequence (move to the young end). Touches whose sequence no longer matches the record
 * (the entry was replaced or moved since the lookup) count no hit. The order of the touches
 * in the queue is not kept: all of one batch are "now" anyway. */
static int
cache_apply_touches(struct cache_wtx *w, struct cache_touch *t, size_t n)
{
	struct cache_store *s = w->s;
	uint64_t gap = s->entries / 16 > 16 ? s->entries / 16 : 16;
	int64_t now = (int64_t)time(NULL);
	unsigned char *buf = NULL;
	size_t bufcap = 0;
	int rc = 0;

	qsort(t, n, sizeof(*t), cache_touch_cmp);
	for (size_t i = 0, j; i < n && !rc; i = j) {
		MDB_val k = {t[i].klen, (void *)t[i].key}, v;
		unsigned char lk[8 + CACHE_KEY_MAX];
		struct cache_meta m;
		uint64_t seq, hits = 0;
		size_t rl;

		for (j = i; j < n && cache_touch_cmp(&t[i], &t[j]) == 0; j++)
			;
		if (mdb_get(w->txn, s->db_meta, &k, &v) ||
		    cache_rec_decode(v.mv_data, v.mv_size, &m))
			continue;
		seq = m.seq;
		for (size_t x = i; x < j; x++)
			hits += t[x].seq == seq;
		if (!hits)
			continue;
		m.hits += hits;
		m.last_access = now;
		if (w->next_seq - seq > gap) {
			cache_be64(lk, seq);
			memcpy(lk + 8, t[i].key, t[i].klen);
			MDB_val lkey = {8 + (size_t)t[i].klen, lk};

			rc = mdb_del(w->txn, s->db_lru, &lkey, NULL);
			if (rc == MDB_NOTFOUND)
				rc = 0;
			m.seq = w->next_seq++;
			cache_be64(lk, m.seq);
			if (!rc)
				rc = cache_w_put(w, s->db_lru, lk, 8 + (size_t)t[i].klen, "", 0);
			if (!rc)
				w->d.touches_applied++;
		}
		rl = cache_rec_size(&m);
		if (rl > bufcap) {
			unsigned char *nb = realloc(buf, rl);

			if (!nb)
				break;
			buf = nb;
			bufcap = rl;
		}
		/* m's slices point into the map (v), which the put below may change: encode first */
		cache_rec_encode(&m, buf);
		if (!rc)
			rc = cache_w_put(w, s->db_meta, t[i].key, t[i].klen, buf, rl);
		if (!rc)
			w->d_used += (int64_t)cache_acct(s, t[i].klen, rl) -
			             (int64_t)cache_acct(s, t[i].klen, v.mv_size);
	}
	free(buf);
	return rc;
}

static void
cache_stats_add(struct cache_stats *a, const struct cache_stats *d)
{
	a->body_bytes_written += d->body_bytes_written;
	a->fills_committed += d->fills_committed;
	a->fills_aborted += d->fills_aborted;
	a->evicted_entries += d->evicted_entries;
	a->evicted_bytes += d->evicted_bytes;
	a->purged_entries += d->purged_entries;
	a->compress_in += d->compress_in;
	a->compress_out += d->compress_out;
	a->touches_applied += d->touches_applied;
}

/* Accounting that will stay once the queued chunks are deleted: pinned bodies stay (a
 * reader holds them), so eviction makes room for them too. */
static int64_t
cache_w_projected(const struct cache_wtx *w)
{
	int64_t p = (int64_t)w->s->used + w->d_used;

	pthread_mutex_lock(&w->s->pmu);
	for (size_t i = 0; i < w->ngc; i++)
		if (!cache_pinned_locked(w->s, w->gc[i].id))
			p -= (int64_t)w->gc[i].acct;
	pthread_mutex_unlock(&w->s->pmu);
	return p;
}

/* LMDB turns a short write into EIO (mdb_page_flush), and that is how a full file system
 * shows when the pages of a commit only partly fit: call it ENOSPC when the file system
 * holding the store has (next to) no room left. */
static int
cache_short_write_enospc(struct cache_store *s)
{
	mdb_filehandle_t fd;
	struct statvfs v;

	if (mdb_env_get_fd(s->env, &fd) != 0 || fstatvfs(fd, &v) != 0)
		return 0;
	return (uint64_t)v.f_bavail * (uint64_t)v.f_frsize < CACHE_DISK_SLACK;
}

int
cache_wrun(struct cache_store *s, cache_wop_f *op, void *arg, unsigned flags)
{
	struct cache_touch *touches = NULL;
	size_t nt = 0;
	int rc = 0;

	if (!(flags & CACHE_W_NOTOUCH)) {
		pthread_mutex_lock(&s->tmu);
		if (s->ntouch) {
			touches = malloc(s->ntouch * sizeof(*touches));
			if (touches) {
				memcpy(touches, s->touch, s->ntouch * sizeof(*touches));
				nt = s->ntouch;
			}
			__atomic_store_n(&s->ntouch, 0, __ATOMIC_RELAXED);
		}
		pthread_mutex_unlock(&s->tmu);
	}
	for (int attempt = 0; attempt < CACHE_WRUN_TRIES; attempt++) {
		struct cache_wtx w;

		memset(&w, 0, sizeof(w));
		w.s = s;
		w.next_seq = s->next_seq;
		w.gc_budget = CACHE_GC_PER_TXN;
		if (s->ngc) {
			w.gc = malloc(s->ngc * sizeof(*w.gc));
			if (!w.gc) {
				rc = ENOMEM;
				break;
			}
			memcpy(w.gc, s->gc, s->ngc * sizeof(*w.gc));
			w.ngc = w.gccap = s->ngc;
		}
		rc = mdb_txn_begin(s->env, NULL, 0, &w.txn);
		if (rc) {
			free(w.gc);
			break;
		}
		if (attempt == 0 && nt)
			rc = cache_apply_touches(&w, touches, nt);
		if (!rc)
			rc = op(&w, arg);
		if (!rc)
			rc = cache_gc_step(&w);
		if (!rc) {
			rc = mdb_txn_commit(w.txn);
			if (rc == EIO && cache_short_write_enospc(s))
				rc = ENOSPC;
		} else {
			mdb_txn_abort(w.txn);
		}
		if (!rc) {
			s->used = (uint64_t)((int64_t)s->used + w.d_used);
			s->entries = (uint64_t)((int64_t)s->entries + w.d_entries);
			s->next_seq = w.next_seq;
			for (size_t i = 0; i < w.ngc; i++)
				w.gc[i].fresh = 0;
			free(s->gc);
			s->gc = w.gc;
			s->ngc = w.ngc;
			s->gccap = w.gccap;
			cache_stats_add(&s->st, &w.d);
			free(touches);
			return CACHE_OK;
		}
		free(w.gc);
		if (rc != MDB_MAP_FULL && rc != ENOSPC)
			break;
		/* counted for the daemon's warning (cache_store_full_counts): read without the
		 * lock, so written atomically */
		__atomic_fetch_add(&s->st.map_full, 1, __ATOMIC_RELAXED);
		if (rc == ENOSPC)
			__atomic_fetch_add(&s->st.disk_full, 1, __ATOMIC_RELAXED);
		if (flags & CACHE_W_NOEVICT)
			break;
		/* the map (or the disk) is full: evict a quarter and try again */
		uint64_t before = s->used;

		cache_evict_to(s, s->used - s->used / 4, 64);
		if (s->used >= before)
			break; /* nothing could be freed */
	}
	free(touches);
	if (rc == MDB_MAP_FULL || rc == ENOSPC)
		__atomic_fetch_add(&s->st.full_failed, 1, __ATOMIC_RELAXED);
	return cache_mdb_err(rc);
}

/* ---- deleting entries ---- */

int
cache_w_delete_entry(struct cache_wtx *w, const unsigned char *k, size_t kl, const void *v,
                     size_t vl, int evicted)
{
	struct cache_store *s = w->s;
	struct cache_meta m;
	unsigned char lk[8 + CACHE_KEY_MAX], uk[CACHE_URLKEY_MAX + 1];
	size_t ukl = 0;
	MDB_val key = {kl, (void *)k};
	int rc, decoded = cache_rec_decode(v, vl, &m) == 0;

	if (kl > CACHE_KEY_MAX)
		return MDB_BAD_VALSIZE;
	if (decoded && kl == 32)
		ukl = cache_urlkey(m.url.p, m.url.n, uk); /* copy before the page changes */
	rc = mdb_del(w->txn, s->db_meta, &key, NULL);
	if (rc)
		return rc;
	w->d_used -= (int64_t)cache_acct(s, kl, vl);
	if (!decoded)
		return 0; /* its LRU record is found as an orphan by eviction */
	cache_be64(lk, m.seq);
	memcpy(lk + 8, k, kl);
	MDB_val lkey = {8 + kl, lk};

	rc = mdb_del(w->txn, s->db_lru, &lkey, NULL);
	if (rc == 0)
		w->d_used -= (int64_t)cache_acct(s, 8 + kl, 0);
	else if (rc != MDB_NOTFOUND)
		return rc;
	if (ukl) {
		MDB_val ukey = {ukl, uk}, uv;

		rc = mdb_get(w->txn, s->db_url, &ukey, &uv);
		if (rc == 0 && uv.mv_size == 32 && memcmp(uv.mv_data, k, 32) == 0) {
			rc = mdb_del(w->txn, s->db_url, &ukey, NULL);
			if (rc)
				return rc;
			w->d_used -= (int64_t)cache_acct(s, ukl, 32);
		} else if (rc && rc != MDB_NOTFOUND) {
			return rc;
		}
	}
	if (!(m.flags & CACHE_MF_VARY_STUB)) {
		w->d_entries--;
		if (m.nchunks && (rc = cache_w_gc_push(w, m.body_id, 0, m.body_acct)) != 0)
			return rc;
		if (evicted) {
			w->d.evicted_entries++;
			w->d.evicted_bytes += m.body_acct + cache_acct(s, kl, vl);
		}
	}
	return 0;
}

/* ---- eviction ---- */

struct cache_evict_arg {
	uint64_t target;
	int evicted;     /* entries removed by this transaction */
	int empty;       /* the LRU is empty */
};

static int
cache_op_evict(struct cache_wtx *w, void *arg)
{
	struct cache_evict_arg *a = arg;
	struct cache_store *s = w->s;
	MDB_cursor *c;
	int rc;

	a->evicted = 0;
	a->empty = 0;
	rc = mdb_cursor_open(w->txn, s->db_lru, &c);
	if (rc)
		return rc;
	int64_t projected = cache_w_projected(w);

	while (a->evicted < CACHE_EVICT_PER_TXN && projected > (int64_t)a->target) {
		MDB_val lk, lv, mk, mv;
		unsigned char kb[CACHE_KEY_MAX];

		rc = mdb_cursor_get(c, &lk, &lv, MDB_FIRST);
		if (rc == MDB_NOTFOUND) {
			a->empty = 1;
			rc = 0;
			break;
		}
		if (rc)
			break;
		size_t kl = lk.mv_size - 8;
		uint64_t seq = cache_get_be64(lk.mv_data);

		if (lk.mv_size <= 8 || kl > CACHE_KEY_MAX) {
			if ((rc = mdb_cursor_del(c, 0)) != 0)
				break;
			continue;
		}
		memcpy(kb, (const unsigned char *)lk.mv_data + 8, kl);
		mk = (MDB_val){kl, kb};
		rc = mdb_get(w->txn, s->db_meta, &mk, &mv);
		if (rc == 0 && cache_rec_seq(mv.mv_data, mv.mv_size) == seq) {
			rc = cache_w_delete_entry(w, kb, kl, mv.mv_data, mv.mv_size, 1);
			if (rc)
				break;
			projected = cache_w_projected(w);
			a->evicted++;
		} else if (rc == 0 || rc == MDB_NOTFOUND) {
			/* an LRU record without its entry (or with a stale seq) */
			rc = mdb_cursor_del(c, 0);
			if (rc)
				break;
			w->d_used -= (int64_t)cache_acct(s, lk.mv_size, 0);
			projected -= (int64_t)cache_acct(s, lk.mv_size, 0);
		} else {
			break;
		}
	}
	mdb_cursor_close(c);
	return rc;
}

int
cache_evict_to(struct cache_store *s, uint64_t target, int max_txns)
{
	struct cache_evict_arg a = {target, 0, 0};

	for (int i = 0; i < max_txns && i < CACHE_EVICT_LOOP_MAX; i++) {
		size_t ngc = s->ngc;
		uint64_t used = s->used;

		if (s->used <= target)
			return CACHE_OK;
		int rc = cache_wrun(s, cache_op_evict, &a, CACHE_W_NOEVICT | CACHE_W_NOTOUCH);

		if (rc)
			return rc;
		if (a.evicted == 0 && s->ngc == ngc && s->used == used)
			break; /* no progress: nothing left to evict */
	}
	return s->used <= target ? CACHE_OK : CACHE_EFULL;
}

static int
cache_op_noop(struct cache_wtx *w, void *arg)
{
	(void)w;
	(void)arg;
	return 0;
}

/* ---- open, sweep, check ---- */

static void
cache_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void
cache_store_conf_default(struct cache_store_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->size = 1ull << 30;
	c->budget_pct = 75;
	c->evict_start_pct = 90;
	c->evict_target_pct = 80;
	c->sync = CACHE_SYNC_DATA;
	c->compress = 1;
	c->compress_level = 1;
	c->max_readers = 256;
}

struct cache_idref {
	uint64_t id;
	uint32_t nchunks;
	uint32_t seen;
};

static int
cache_idref_cmp(const void *a, const void *b)
{
	const struct cache_idref *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

/* Keys to delete from one database, gathered by a scan. */
struct cache_keylist {
	unsigned char (*k)[CACHE_URLKEY_MAX + 1];
	uint16_t *kl;
	size_t n, cap;
};

static int
cache_keylist_add(struct cache_keylist *l, const void *k, size_t kl)
{
	if (kl > CACHE_URLKEY_MAX)
		return 0;
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		void *nk = realloc(l->k, nc * sizeof(*l->k));

		if (!nk)
			return -1;
		l->k = nk;
		void *nl = realloc(l->kl, nc * sizeof(*l->kl));

		if (!nl)
			return -1;
		l->kl = nl;
		l->cap = nc;
	}
	memcpy(l->k[l->n], k, kl);
	l->kl[l->n++] = (uint16_t)kl;
	return 0;
}

static void
cache_keylist_free(struct cache_keylist *l)
{
	free(l->k);
	free(l->kl);
	memset(l, 0, sizeof(*l));
}

struct cache_scan {
	struct cache_check c;
	uint64_t max_id, max_seq;
	struct cache_idref *ids;
	size_t nids, idcap;
	struct cache_keylist del_body_ids; /* 8-byte ids whose chunks are orphans */
	struct cache_keylist del_lru, del_url, add_lru;
	struct cache_keylist del_meta;     /* damaged entries: undecodable, or chunks missing */
};

static void
cache_scan_free(struct cache_scan *sc)
{
	free(sc->ids);
	cache_keylist_free(&sc->del_body_ids);
	cache_keylist_free(&sc->del_lru);
	cache_keylist_free(&sc->del_url);
	cache_keylist_free(&sc->add_lru);
	cache_keylist_free(&sc->del_meta);
}

/* Read everything once in a read transaction and note what is inconsistent. */
static int
cache_scan_read(struct cache_store *s, struct cache_scan *sc)
{
	MDB_txn *txn;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	int rc;

	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return rc;
	/* meta */
	rc = mdb_cursor_open(txn, s->db_meta, &c);
	if (rc)
		c = NULL;
	for (int op = MDB_FIRST; !rc && !(rc = mdb_cursor_get(c, &k, &v, op)); op = MDB_NEXT) {
		struct cache_meta m;

		cache_map_learn(s, k.mv_data);

		if ((k.mv_size != 32 && k.mv_size != 64) ||
		    cache_rec_decode(v.mv_data, v.mv_size, &m)) {
			sc->c.missing_chunks++; /* undecodable: counted as damaged */
			sc->c.bytes += cache_acct(s, k.mv_size, v.mv_size);
			if (cache_keylist_add(&sc->del_meta, k.mv_data, k.mv_size)) {
				rc = ENOMEM;
				break;
			}
			continue;
		}
		sc->c.bytes += cache_acct(s, k.mv_size, v.mv_size) +
		               cache_acct(s, 8 + k.mv_size, 0) + m.body_acct;
		if (k.mv_size == 32) {
			unsigned char uk[CACHE_URLKEY_MAX + 1];

			sc->c.bytes += cache_acct(s, cache_urlkey(m.url.p, m.url.n, uk), 32);
		}
		if (m.seq > sc->max_seq)
			sc->max_seq = m.seq;
		/* its LRU record */
		unsigned char lk[8 + CACHE_KEY_MAX];
		MDB_val lkey = {8 + k.mv_size, lk}, lv;

		cache_be64(lk, m.seq);
		memcpy(lk + 8, k.mv_data, k.mv_size);
		if (mdb_get(txn, s->db_lru, &lkey, &lv) == MDB_NOTFOUND) {
			sc->c.missing_lru++;
			if (cache_keylist_add(&sc->add_lru, lk, lkey.mv_size)) {
				rc = ENOMEM;
				break;
			}
		}
		if (m.flags & CACHE_MF_VARY_STUB) {
			sc->c.stubs++;
			continue;
		}
		sc->c.entries++;
		if (m.body_id > sc->max_id)
			sc->max_id = m.body_id;
		if (!m.nchunks)
			continue;
		if (sc->nids == sc->idcap) {
			size_t nc = sc->idcap ? sc->idcap * 2 : 256;
			struct cache_idref *ni = realloc(sc->ids, nc * sizeof(*ni));

			if (!ni) {
				rc = ENOMEM;
				break;
			}
			sc->ids = ni;
			sc->idcap = nc;
		}
		sc->ids[sc->nids++] = (struct cache_idref){m.body_id, m.nchunks, 0};
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (c)
		mdb_cursor_close(c);
	c = NULL;
	if (sc->nids)
		qsort(sc->ids, sc->nids, sizeof(*sc->ids), cache_idref_cmp);
	/* body */
	if (!rc)
		rc = mdb_cursor_open(txn, s->db_body, &c);
	uint64_t last_orphan = 0;
	int have_orphan = 0;

	for (int op = MDB_FIRST; !rc && !(rc = mdb_cursor_get(c, &k, &v, op)); op = MDB_NEXT) {
		if (k.mv_size != 12)
			continue;
		uint64_t id = cache_get_be64(k.mv_data);
		uint32_t idx = cache_get_be32((const unsigned char *)k.mv_data + 8);
		struct cache_idref key = {id, 0, 0}, *ref;

		sc->c.chunks++;
		if (id > sc->max_id)
			sc->max_id = id;
		ref = sc->nids ? bsearch(&key, sc->ids, sc->nids, sizeof(*sc->ids), cache_idref_cmp)
		               : NULL;
		if (ref && idx < ref->nchunks) {
			ref->seen++; /* counted through the entry's body_acct */
			continue;
		}
		sc->c.orphan_chunks++;
		if (!have_orphan || last_orphan != id) {
			unsigned char ib[8];

			cache_be64(ib, id);
			if (cache_keylist_add(&sc->del_body_ids, ib, 8)) {
				rc = ENOMEM;
				break;
			}
			last_orphan = id;
			have_orphan = 1;
		}
		sc->c.bytes += cache_acct(s, 12, v.mv_size);
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	size_t damaged = 0;

	for (size_t i = 0; i < sc->nids; i++)
		if (sc->ids[i].seen != sc->ids[i].nchunks)
			damaged++;
	sc->c.missing_chunks += damaged;
	if (c)
		mdb_cursor_close(c);
	c = NULL;
	/* entries whose chunks are not all there (never by design): find their keys */
	if (!rc && damaged)
		rc = mdb_cursor_open(txn, s->db_meta, &c);
	for (int op = MDB_FIRST; !rc && damaged && !(rc = mdb_cursor_get(c, &k, &v, op));
	     op = MDB_NEXT) {
		struct cache_meta m;
		struct cache_idref key, *ref;

		if (cache_rec_decode(v.mv_data, v.mv_size, &m) || !m.nchunks ||
		    (m.flags & CACHE_MF_VARY_STUB))
			continue;
		key.id = m.body_id;
		ref = bsearch(&key, sc->ids, sc->nids, sizeof(*sc->ids), cache_idref_cmp);
		if (ref && ref->seen != ref->nchunks &&
		    cache_keylist_add(&sc->del_meta, k.mv_data, k.mv_size)) {
			rc = ENOMEM;
			break;
		}
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (c)
		mdb_cursor_close(c);
	c = NULL;
	/* lru */
	if (!rc)
		rc = mdb_cursor_open(txn, s->db_lru, &c);
	for (int op = MDB_FIRST; !rc && !(rc = mdb_cursor_get(c, &k, &v, op)); op = MDB_NEXT) {
		MDB_val mk = {k.mv_size - 8, (unsigned char *)k.mv_data + 8}, mv;
		uint64_t seq = k.mv_size > 8 ? cache_get_be64(k.mv_data) : 0;

		if (seq > sc->max_seq)
			sc->max_seq = seq;
		if (k.mv_size > 8 && mdb_get(txn, s->db_meta, &mk, &mv) == 0 &&
		    cache_rec_seq(mv.mv_data, mv.mv_size) == seq)
			continue;
		sc->c.orphan_lru++;
		sc->c.bytes += cache_acct(s, k.mv_size, 0);
		if (cache_keylist_add(&sc->del_lru, k.mv_data, k.mv_size)) {
			rc = ENOMEM;
			break;
		}
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (c)
		mdb_cursor_close(c);
	c = NULL;
	/* url */
	if (!rc)
		rc = mdb_cursor_open(txn, s->db_url, &c);
	for (int op = MDB_FIRST; !rc && !(rc = mdb_cursor_get(c, &k, &v, op)); op = MDB_NEXT) {
		MDB_val mk = v, mv;

		if (v.mv_size == 32 && mdb_get(txn, s->db_meta, &mk, &mv) == 0)
			continue;
		sc->c.orphan_url++;
		sc->c.bytes += cache_acct(s, k.mv_size, v.mv_size);
		if (cache_keylist_add(&sc->del_url, k.mv_data, k.mv_size)) {
			rc = ENOMEM;
			break;
		}
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (c)
		mdb_cursor_close(c);
	mdb_txn_abort(txn);
	return rc;
}

struct cache_repair_arg {
	struct cache_scan *sc;
	size_t lru_i, url_i, add_i, meta_i;
};

/* Fix what the scan found, a bounded number of records per transaction. */
static int
cache_op_repair(struct cache_wtx *w, void *arg)
{
	struct cache_repair_arg *a = arg;
	struct cache_scan *sc = a->sc;
	struct cache_store *s = w->s;
	int budget = 512, rc = 0;

	while (!rc && budget > 0 && a->lru_i < sc->del_lru.n) {
		MDB_val k = {sc->del_lru.kl[a->lru_i], sc->del_lru.k[a->lru_i]};

		rc = mdb_del(w->txn, s->db_lru, &k, NULL);
		if (rc == 0)
			w->d_used -= (int64_t)cache_acct(s, k.mv_size, 0);
		else if (rc == MDB_NOTFOUND)
			rc = 0;
		a->lru_i++;
		budget--;
	}
	while (!rc && budget > 0 && a->url_i < sc->del_url.n) {
		MDB_val k = {sc->del_url.kl[a->url_i], sc->del_url.k[a->url_i]};

		rc = mdb_del(w->txn, s->db_url, &k, NULL);
		if (rc == 0)
			w->d_used -= (int64_t)cache_acct(s, k.mv_size, 32);
		else if (rc == MDB_NOTFOUND)
			rc = 0;
		a->url_i++;
		budget--;
	}
	while (!rc && budget > 0 && a->meta_i < sc->del_meta.n) {
		MDB_val k = {sc->del_meta.kl[a->meta_i], sc->del_meta.k[a->meta_i]}, v;

		rc = mdb_get(w->txn, s->db_meta, &k, &v);
		if (rc == 0)
			rc = cache_w_delete_entry(w, k.mv_data, k.mv_size, v.mv_data, v.mv_size, 0);
		else if (rc == MDB_NOTFOUND)
			rc = 0;
		a->meta_i++;
		budget--;
	}
	while (!rc && budget > 0 && a->add_i < sc->add_lru.n) {
		rc = cache_w_put(w, s->db_lru, sc->add_lru.k[a->add_i], sc->add_lru.kl[a->add_i],
		                 "", 0);
		a->add_i++;
		budget--;
	}
	return rc;
}

static int
cache_sweep(struct cache_store *s)
{
	struct cache_scan sc;
	int rc;

	memset(&sc, 0, sizeof(sc));
	rc = cache_scan_read(s, &sc);
	if (rc)
		goto out;
	s->next_id = sc.max_id + 1;
	s->next_seq = sc.max_seq + 1;
	s->entries = sc.c.entries;
	s->used = sc.c.bytes;
	s->st.swept_chunks = sc.c.orphan_chunks;
	/* orphan chunks: through the GC, committed in batches */
	for (size_t i = 0; i < sc.del_body_ids.n; i++) {
		if (s->ngc == s->gccap) {
			size_t nc = s->gccap ? s->gccap * 2 : 16;
			struct cache_gc *n = realloc(s->gc, nc * sizeof(*n));

			if (!n) {
				rc = ENOMEM;
				goto out;
			}
			s->gc = n;
			s->gccap = nc;
		}
		s->gc[s->ngc++] = (struct cache_gc){cache_get_be64(sc.del_body_ids.k[i]), 0, 0, 0};
	}
	struct cache_repair_arg a = {&sc, 0, 0, 0, 0};

	for (int i = 0; i < CACHE_EVICT_LOOP_MAX; i++) {
		if (a.lru_i == sc.del_lru.n && a.url_i == sc.del_url.n && a.add_i == sc.add_lru.n &&
		    a.meta_i == sc.del_meta.n && s->ngc == 0)
			break;
		size_t before = a.lru_i + a.url_i + a.add_i + a.meta_i, ngc = s->ngc;
		uint64_t used = s->used;

		rc = cache_wrun(s, cache_op_repair, &a, CACHE_W_NOEVICT | CACHE_W_NOTOUCH);
		if (rc)
			goto out;
		if (a.lru_i + a.url_i + a.add_i + a.meta_i == before && s->ngc == ngc &&
		    s->used == used)
			break;
	}
	if (sc.del_meta.n) { /* damaged entries claimed chunks they lacked: recount exactly */
		struct cache_scan again;

		memset(&again, 0, sizeof(again));
		rc = cache_scan_read(s, &again);
		if (!rc) {
			s->used = again.c.bytes;
			s->entries = again.c.entries;
		}
		cache_scan_free(&again);
		if (rc)
			goto out;
	}
	rc = 0;
out:
	cache_scan_free(&sc);
	return cache_mdb_err(rc);
}

int
cache_store_check(struct cache_store *s, struct cache_check *c)
{
	struct cache_scan sc;
	int rc;

	if (!s || s->magic != CACHE_STORE_MAGIC)
		return CACHE_EINVAL;
	memset(&sc, 0, sizeof(sc));
	rc = cache_scan_read(s, &sc);
	*c = sc.c;
	cache_scan_free(&sc);
	return cache_mdb_err(rc);
}

int
cache_store_open(const struct cache_store_conf *conf, struct cache_store **out, char *err,
                 size_t errlen)
{
	struct cache_store *s = NULL;
	char path[4096];
	MDB_txn *txn = NULL;
	MDB_envinfo info;
	MDB_stat mst;
	unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
	struct stat sb;
	int rc, ret = CACHE_EIO;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (!conf->root || !*conf->root) {
		cache_errf(err, errlen, "CacheRoot: no directory given");
		return CACHE_EINVAL;
	}
	if (conf->size < CACHE_SIZE_MIN) {
		cache_errf(err, errlen, "%s: CacheSize too small (at least 1M)", conf->root);
		return CACHE_EINVAL;
	}
	if (snprintf(path, sizeof(path), "%s/gatehouse.lock", conf->root) >= (int)sizeof(path)) {
		cache_errf(err, errlen, "%s: path too long", conf->root);
		return CACHE_EINVAL;
	}
	if (mkdir(conf->root, 0750) != 0 && errno != EEXIST) {
		cache_errf(err, errlen, "%s: cannot create: %s", conf->root, strerror(errno));
		return CACHE_EIO;
	}
	if (stat(conf->root, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		cache_errf(err, errlen, "%s: not a directory", conf->root);
		return CACHE_EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		cache_errf(err, errlen, "%s: out of memory", conf->root);
		return CACHE_ENOMEM;
	}
	s->magic = CACHE_STORE_MAGIC;
	s->lock_fd = -1;
	s->data_fd = -1;
	pthread_mutex_init(&s->wmu, NULL);
	pthread_mutex_init(&s->tmu, NULL);
	pthread_mutex_init(&s->pmu, NULL);
	s->touch = malloc(CACHE_TOUCH_MAX * sizeof(*s->touch));
	if (!s->touch) {
		cache_errf(err, errlen, "%s: out of memory", conf->root);
		ret = CACHE_ENOMEM;
		goto fail;
	}
	s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (s->lock_fd < 0) {
		cache_errf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		cache_errf(err, errlen, "%s: in use by another process (%s)", conf->root,
		           strerror(errno));
		ret = CACHE_EBUSY;
		goto fail;
	}
	s->sync = conf->sync;
	if (conf->sync == CACHE_SYNC_DATA)
		flags |= MDB_NOMETASYNC;
	else if (conf->sync == CACHE_SYNC_NONE)
		flags |= MDB_NOSYNC;
	if ((rc = mdb_env_create(&s->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(s->env, 5)) != 0 ||
	    (rc = mdb_env_set_mapsize(s->env, (size_t)conf->size)) != 0 ||
	    (rc = mdb_env_set_maxreaders(s->env, conf->max_readers ? conf->max_readers
	                                                            : 256)) != 0 ||
	    (rc = mdb_env_open(s->env, conf->root, flags, 0640)) != 0) {
		cache_errf(err, errlen, "%s: LMDB: %s", conf->root, mdb_strerror(rc));
		goto fail;
	}
	int dead = 0;

	mdb_reader_check(s->env, &dead);
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->db_meta)) != 0 ||
	    (rc = mdb_dbi_open(txn, "body", MDB_CREATE, &s->db_body)) != 0 ||
	    (rc = mdb_dbi_open(txn, "lru", MDB_CREATE, &s->db_lru)) != 0 ||
	    (rc = mdb_dbi_open(txn, "url", MDB_CREATE, &s->db_url)) != 0 ||
	    (rc = mdb_dbi_open(txn, "purge", MDB_CREATE, &s->db_purge)) != 0) {
		if (txn)
			mdb_txn_abort(txn);
		cache_errf(err, errlen, "%s: LMDB: %s", conf->root, mdb_strerror(rc));
		goto fail;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		cache_errf(err, errlen, "%s: LMDB: %s", conf->root, mdb_strerror(rc));
		goto fail;
	}
	mdb_env_info(s->env, &info);
	mdb_env_stat(s->env, &mst);
	s->psize = mst.ms_psize;
	if (mdb_env_get_fd(s->env, &s->data_fd) != 0)
		s->data_fd = -1;
	s->map_size = conf->size;
	s->budget = conf->size / 100 * (conf->budget_pct ? conf->budget_pct : 75);
	s->high = s->budget / 100 * (conf->evict_start_pct ? conf->evict_start_pct : 90);
	s->low = s->budget / 100 * (conf->evict_target_pct ? conf->evict_target_pct : 80);
	if (s->low > s->high)
		s->low = s->high;
	s->max_object = s->budget / 2;
	s->compress = conf->compress;
	s->level = 1;
	if (conf->compress_level >= 1 && conf->compress_level <= 9)
		s->level = conf->compress_level;
	s->last_sync = (int64_t)time(NULL);
	pthread_mutex_lock(&s->wmu);
	rc = cache_sweep(s);
	cache_map_release(s); /* what the sweep read: the whole store's B-trees */
	if (!rc && s->used > s->high)
		rc = cache_evict_to(s, s->low, CACHE_EVICT_LOOP_MAX);
	pthread_mutex_unlock(&s->wmu);
	if (rc && rc != CACHE_EFULL) {
		cache_errf(err, errlen, "%s: sweeping the cache: %s", conf->root,
		           cache_strerror(rc));
		ret = rc;
		goto fail;
	}
	*out = s;
	return CACHE_OK;
fail:
	if (s->env)
		mdb_env_close(s->env);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	pthread_mutex_destroy(&s->wmu);
	pthread_mutex_destroy(&s->tmu);
	pthread_mutex_destroy(&s->pmu);
	free(s->touch);
	free(s);
	return ret;
}

void
cache_store_close(struct cache_store *s)
{
	if (!s)
		return;
	if (s->magic != CACHE_STORE_MAGIC)
		abort();
	pthread_mutex_lock(&s->wmu);
	/* finish what is cheap to finish */
	for (int i = 0; i < 64 && (s->ngc || __atomic_load_n(&s->ntouch, __ATOMIC_RELAXED)); i++)
		if (cache_wrun(s, cache_op_noop, NULL, 0) != CACHE_OK)
			break;
	pthread_mutex_unlock(&s->wmu);
	if (s->sync != CACHE_SYNC_FULL)
		mdb_env_sync(s->env, 1);
	mdb_env_close(s->env);
	close(s->lock_fd);
	pthread_mutex_destroy(&s->wmu);
	pthread_mutex_destroy(&s->tmu);
	pthread_mutex_destroy(&s->pmu);
	free(s->gc);
	free(s->pins);
	free(s->zbuf);
	free(s->touch);
	s->magic = 0;
	free(s);
}

void
cache_store_full_counts(struct cache_store *s, uint64_t *map_full, uint64_t *disk_full,
                        uint64_t *full_failed)
{
	*map_full = __atomic_load_n(&s->st.map_full, __ATOMIC_RELAXED);
	*disk_full = __atomic_load_n(&s->st.disk_full, __ATOMIC_RELAXED);
	*full_failed = __atomic_load_n(&s->st.full_failed, __ATOMIC_RELAXED);
}

void
cache_store_stats(struct cache_store *s, struct cache_stats *st)
{
	MDB_envinfo info;

	pthread_mutex_lock(&s->wmu);
	*st = s->st;
	st->entries = s->entries;
	st->bytes_used = s->used;
	st->bytes_budget = s->budget;
	st->map_size = s->map_size;
	pthread_mutex_lock(&s->pmu);
	st->gc_bodies = s->ngc;
	st->gc_bytes = 0;
	st->gc_pinned = 0;
	for (size_t i = 0; i < s->ngc; i++) {
		st->gc_bytes += s->gc[i].acct;
		st->gc_pinned += (uint64_t)cache_pinned_locked(s, s->gc[i].id);
	}
	st->pinned_bodies = s->npins;
	pthread_mutex_unlock(&s->pmu);
	pthread_mutex_unlock(&s->wmu);
	st->touches_dropped = __atomic_load_n(&s->touches_dropped, __ATOMIC_RELAXED);
	if (mdb_env_info(s->env, &info) == 0)
		st->file_bytes = ((uint64_t)info.me_last_pgno + 1) * s->psize;
}

void
cache_touch_queue(struct cache_store *s, const unsigned char *key, size_t kl, uint64_t seq)
{
	if (kl > CACHE_KEY_MAX ||
	    __atomic_load_n(&s->ntouch, __ATOMIC_RELAXED) >= CACHE_TOUCH_MAX) {
		__atomic_add_fetch(&s->touches_dropped, 1, __ATOMIC_RELAXED);
		return; /* full until the next write: no lock taken */
	}
	pthread_mutex_lock(&s->tmu);
	if (s->ntouch < CACHE_TOUCH_MAX) {
		struct cache_touch *t = &s->touch[s->ntouch];

		memcpy(t->key, key, kl);
		t->klen = (uint8_t)kl;
		t->seq = seq;
		__atomic_store_n(&s->ntouch, s->ntouch + 1, __ATOMIC_RELAXED);
	} else {
		__atomic_add_fetch(&s->touches_dropped, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&s->tmu);
}

int
cache_store_maintain(struct cache_store *s)
{
	int rc = CACHE_OK;

	if (!s || s->magic != CACHE_STORE_MAGIC)
		return CACHE_EINVAL;
	if (pthread_mutex_trylock(&s->wmu) != 0) {
		cache_map_release(s);
		return 1;
	}
	pthread_mutex_lock(&s->tmu);
	size_t nt = s->ntouch;

	pthread_mutex_unlock(&s->tmu);
	if (nt || cache_gc_ready(s))
		rc = cache_wrun(s, cache_op_noop, NULL, 0);
	/* deferred deletion of bodies whose last reader is gone: up to 16 more transactions of
	 * CACHE_GC_PER_TXN chunks (256 MiB) a pass, so a large body goes within a second */
	for (int i = 0; i < 16 && !rc && cache_gc_ready(s); i++)
		rc = cache_wrun(s, cache_op_noop, NULL, CACHE_W_NOTOUCH);
	if (!rc && s->used > s->high)
		rc = cache_evict_to(s, s->low, 16);
	if (s->sync == CACHE_SYNC_NONE && (int64_t)time(NULL) - s->last_sync >= 5) {
		mdb_env_sync(s->env, 1);
		s->last_sync = (int64_t)time(NULL);
	}
	pthread_mutex_unlock(&s->wmu);
	cache_map_release(s); /* last: the write transaction above read pages too */
	return rc == CACHE_EFULL ? CACHE_OK : rc;
}

/* ---- update after a 304 ---- */

static int
cache_op_update(struct cache_wtx *w, void *arg)
{
	const struct cache_entry *e = arg;
	struct cache_store *s = w->s;
	MDB_val k = {e->keylen, (void *)e->key}, v;
	struct cache_meta cur, nm;
	unsigned char *buf;
	size_t n;
	int rc;

	rc = mdb_get(w->txn, s->db_meta, &k, &v);
	if (rc == MDB_NOTFOUND)
		return CACHE_ENOENT;
	if (rc)
		return rc;
	if (cache_rec_decode(v.mv_data, v.mv_size, &cur) || cur.body_id != e->meta.body_id ||
	    (cur.flags & CACHE_MF_VARY_STUB))
		return CACHE_ENOENT;
	nm = e->meta;
	nm.url = cur.url; /* the key text never changes */
	nm.vary = cur.vary;
	nm.flags = cur.flags;
	nm.seq = cur.seq;
	nm.hits = cur.hits; /* touches applied since the lookup */
	nm.last_access = cur.last_access;
	nm.body_id = cur.body_id;
	nm.body_size = cur.body_size;
	nm.nchunks = cur.nchunks;
	nm.body_acct = cur.body_acct;
	n = cache_rec_size(&nm);
	buf = malloc(n);
	if (!buf)
		return ENOMEM;
	cache_rec_encode(&nm, buf);
	int64_t old = (int64_t)cache_acct(s, k.mv_size, v.mv_size);

	rc = cache_w_put(w, s->db_meta, e->key, e->keylen, buf, n);
	free(buf);
	if (!rc)
		w->d_used += (int64_t)cache_acct(s, e->keylen, n) - old;
	return rc;
}

int
cache_store_update(struct cache_store *s, const struct cache_entry *e)
{
	int rc;

	if (!s || s->magic != CACHE_STORE_MAGIC || !e || e->magic != CACHE_ENTRY_MAGIC ||
	    (e->keylen != 32 && e->keylen != 64))
		return CACHE_EINVAL;
	pthread_mutex_lock(&s->wmu);
	rc = cache_wrun(s, cache_op_update, (void *)e, 0);
	pthread_mutex_unlock(&s->wmu);
	return rc;
}

/* ---- purge, clear, list ---- */

/* Delete every meta record whose key starts with the 32-byte h. */
static int
cache_w_purge_hash(struct cache_wtx *w, const unsigned char *h, long *count)
{
	struct cache_store *s = w->s;
	MDB_cursor *c;
	int rc;

	rc = mdb_cursor_open(w->txn, s->db_meta, &c);
	if (rc)
		return rc;
	for (int i = 0; i < 1000000; i++) {
		MDB_val k = {32, (void *)h}, v;
		unsigned char kb[CACHE_KEY_MAX];
		size_t kl;

		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		if (rc == MDB_NOTFOUND ||
		    (rc == 0 && (k.mv_size < 32 || memcmp(k.mv_data, h, 32)))) {
			rc = 0;
			break;
		}
		if (rc)
			break;
		kl = k.mv_size > CACHE_KEY_MAX ? CACHE_KEY_MAX : k.mv_size;
		memcpy(kb, k.mv_data, kl);
		rc = cache_w_delete_entry(w, kb, kl, v.mv_data, v.mv_size, 0);
		if (rc)
			break;
		(*count)++;
		w->d.purged_entries++;
	}
	mdb_cursor_close(c);
	return rc;
}

struct cache_purge_arg {
	unsigned char h[32];
	long count;
};

static int
cache_op_purge(struct cache_wtx *w, void *arg)
{
	struct cache_purge_arg *a = arg;

	a->count = 0;
	return cache_w_purge_hash(w, a->h, &a->count);
}

long
cache_purge(struct cache_store *s, const char *key, size_t keylen)
{
	struct cache_purge_arg a;
	int rc;

	if (!s || s->magic != CACHE_STORE_MAGIC)
		return CACHE_EINVAL;
	memset(&a, 0, sizeof(a));
	if (cache_sha256(key, keylen, NULL, 0, a.h))
		return CACHE_ENOMEM;
	pthread_mutex_lock(&s->wmu);
	rc = cache_wrun(s, cache_op_purge, &a, 0);
	pthread_mutex_unlock(&s->wmu);
	return rc ? rc : a.count;
}

/* Does url key k (maybe truncated) start with prefix? -1: cannot tell from the key. */
static int
cache_urlkey_prefix(const unsigned char *k, size_t kl, const char *prefix, size_t plen)
{
	int truncated = kl == CACHE_URLKEY_MAX && k[CACHE_URL_TRUNC] == 0;
	size_t avail = truncated ? CACHE_URL_TRUNC : kl;

	if (plen <= avail)
		return memcmp(k, prefix, plen) == 0;
	if (!truncated)
		return 0;
	return memcmp(k, prefix, avail) == 0 ? -1 : 0;
}

static int
cache_meta_url_prefix(MDB_txn *txn, struct cache_store *s, const MDB_val *h, const char *prefix,
                      size_t plen)
{
	MDB_val k = *h, v;
	struct cache_meta m;

	if (mdb_get(txn, s->db_meta, &k, &v) || cache_rec_decode(v.mv_data, v.mv_size, &m))
		return 0;
	return m.url.n >= plen && memcmp(m.url.p, prefix, plen) == 0;
}

/* ---- durable purges: the "purge" database ----
 *
 * One record per purge by prefix in progress, keyed by its id (8 bytes, big-endian: the
 * order they started in). The value is struct cache_pending_rec, then the prefix, then the
 * cursor's key. Each batch saves its cursor in its own transaction, so after a crash or a
 * stop the purge resumes exactly after the last URL a committed batch handled. */
#define CACHE_PENDING_MAGIC 0x50524731u

struct cache_pending_rec {
	uint32_t magic;
	uint32_t plen;
	uint32_t keylen;
	uint32_t started_cur;
	int64_t started;
	int64_t estimate;
	uint64_t removed;
	uint64_t urls;
};

static void
cache_pending_id(uint64_t id, unsigned char k[8])
{
	for (int i = 7; i >= 0; i--, id >>= 8)
		k[i] = (unsigned char)id;
}

/* Write the record of purge cur->pending after a batch that removed count records, or delete
 * it when the walk is over. Inside the batch's transaction. */
static int
cache_pending_save(struct cache_wtx *w, const char *prefix, size_t plen,
                   const struct cache_purge_cursor *cur, long count)
{
	struct cache_store *s = w->s;
	unsigned char kb[8];
	MDB_val k = {8, kb}, v;
	int rc;

	cache_pending_id(cur->pending, kb);
	if (cur->done) {
		rc = mdb_del(w->txn, s->db_purge, &k, NULL);
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	struct cache_pending_rec r;
	rc = mdb_get(w->txn, s->db_purge, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0; /* not durable (the record could not be written at the start) */
	if (rc)
		return rc;
	if (v.mv_size < sizeof(r))
		return MDB_CORRUPTED;
	memcpy(&r, v.mv_data, sizeof(r));
	if (r.magic != CACHE_PENDING_MAGIC || r.plen != plen)
		return MDB_CORRUPTED;
	r.keylen = (uint32_t)cur->keylen;
	r.started_cur = (uint32_t)cur->started;
	r.removed += count > 0 ? (uint64_t)count : 0;
	r.urls = cur->urls;
	unsigned char buf[sizeof(r) + 2048 + sizeof(cur->key)];
	if (plen > 2048)
		return MDB_BAD_VALSIZE;
	memcpy(buf, &r, sizeof(r));
	memcpy(buf + sizeof(r), prefix, plen);
	memcpy(buf + sizeof(r) + plen, cur->key, cur->keylen);
	v = (MDB_val){sizeof(r) + plen + cur->keylen, buf};
	return mdb_put(w->txn, s->db_purge, &k, &v, 0);
}

struct cache_pending_add_arg {
	const char *prefix;
	size_t plen;
	int64_t started;
	long estimate;
	uint64_t id;
};

static int
cache_op_pending_add(struct cache_wtx *w, void *arg)
{
	struct cache_pending_add_arg *a = arg;
	struct cache_store *s = w->s;
	MDB_cursor *c;
	MDB_val k, v;
	unsigned char kb[8];
	int rc = mdb_cursor_open(w->txn, s->db_purge, &c);

	if (rc)
		return rc;
	rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	a->id = 1;
	if (rc == 0 && k.mv_size == 8) {
		const unsigned char *p = k.mv_data;
		uint64_t last = 0;
		for (int i = 0; i < 8; i++)
			last = last << 8 | p[i];
		a->id = last + 1;
	}
	mdb_cursor_close(c);
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	struct cache_pending_rec r = {CACHE_PENDING_MAGIC, (uint32_t)a->plen, 0, 0, a->started,
	                              a->estimate, 0, 0};
	unsigned char buf[sizeof(r) + 2048];
	memcpy(buf, &r, sizeof(r));
	memcpy(buf + sizeof(r), a->prefix, a->plen);
	cache_pending_id(a->id, kb);
	k = (MDB_val){8, kb};
	v = (MDB_val){sizeof(r) + a->plen, buf};
	return mdb_put(w->txn, s->db_purge, &k, &v, 0);
}

int
cache_purge_pending_add(struct cache_store *s, const char *prefix, size_t plen, int64_t started,
                        long estimate, uint64_t *id)
{
	struct cache_pending_add_arg a = {prefix, plen, started, estimate, 0};
	int rc;

	if (!s || s->magic != CACHE_STORE_MAGIC || plen > 2048 || (plen && !prefix))
		return CACHE_EINVAL;
	pthread_mutex_lock(&s->wmu);
	rc = cache_wrun(s, cache_op_pending_add, &a, CACHE_W_NOEVICT | CACHE_W_NOTOUCH);
	pthread_mutex_unlock(&s->wmu);
	if (rc)
		return rc;
	*id = a.id;
	return CACHE_OK;
}

struct cache_pending_list_arg {
	cache_pending_f *cb;
	void *arg;
	long n;
};

static int
cache_op_pending_list(struct cache_wtx *w, void *arg)
{
	struct cache_pending_list_arg *a = arg;
	MDB_cursor *c;
	MDB_val k, v;
	int rc = mdb_cursor_open(w->txn, w->s->db_purge, &c);

	if (rc)
		return rc;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct cache_pending_rec r;
		struct cache_purge_pending p;
		char prefix[2049];

		if (k.mv_size != 8 || v.mv_size < sizeof(r))
			continue;
		memcpy(&r, v.mv_data, sizeof(r));
		if (r.magic != CACHE_PENDING_MAGIC || r.plen > 2048 ||
		    r.keylen > sizeof(p.cur.key) || sizeof(r) + r.plen + r.keylen != v.mv_size)
			continue; /* not ours: skipped, never trusted */
		memset(&p, 0, sizeof(p));
		for (int i = 0; i < 8; i++)
			p.id = p.id << 8 | ((const unsigned char *)k.mv_data)[i];
		memcpy(prefix, (const char *)v.mv_data + sizeof(r), r.plen);
		prefix[r.plen] = '\0';
		p.prefix = prefix;
		p.plen = r.plen;
		p.started = r.started;
		p.estimate = r.estimate;
		p.removed = r.removed;
		memcpy(p.cur.key, (const char *)v.mv_data + sizeof(r) + r.plen, r.keylen);
		p.cur.keylen = r.keylen;
		p.cur.started = r.started_cur != 0;
		p.cur.urls = r.urls;
		p.cur.pending = p.id;
		a->n++;
		if (a->cb(a->arg, &p))
			break;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}

long
cache_purge_pending_list(struct cache_store *s, cache_pending_f *cb, void *arg)
{
	struct cache_pending_list_arg a = {cb, arg, 0};
	int rc;

	if (!s || s->magic != CACHE_STORE_MAGIC || !cb)
		return CACHE_EINVAL;
	pthread_mutex_lock(&s->wmu);
	rc = cache_wrun(s, cache_op_pending_list, &a, CACHE_W_NOEVICT | CACHE_W_NOTOUCH);
	pthread_mutex_unlock(&s->wmu);
	return rc ? rc : a.n;
}

struct cache_purge_step_arg {
	const char *prefix;
	size_t plen;
	size_t max;
	const struct cache_purge_cursor *in;
	struct cache_purge_cursor out;   /* copied back only when the transaction commits */
	long count;
};

_Static_assert(sizeof(((struct cache_purge_cursor *)0)->key) >= CACHE_URLKEY_MAX + 1,
               "cache_purge_cursor.key holds any url key");

/* One batch: the cursor is re-positioned (MDB_SET_RANGE on the last key handled) after each
 * URL, because deleting records moves the cursor's page under it. Keys equal to the last one
 * handled are skipped: one refilled after its purge stays. */
static int
cache_op_purge_prefix_step(struct cache_wtx *w, void *arg)
{
	struct cache_purge_step_arg *a = arg;
	struct cache_purge_cursor *cur = &a->out;
	struct cache_store *s = w->s;
	size_t sl = a->plen < CACHE_URL_TRUNC ? a->plen : CACHE_URL_TRUNC;
	MDB_cursor *c;
	int rc;

	*cur = *a->in;
	a->count = 0;
	if (cur->done)
		return 0;
	rc = mdb_cursor_open(w->txn, s->db_url, &c);
	if (rc)
		return rc;
	for (size_t n = 0; n < a->max; n++) {
		unsigned char seek[CACHE_URLKEY_MAX + 1];
		MDB_val k, v;

		if (cur->started) {
			memcpy(seek, cur->key, cur->keylen);
			k = (MDB_val){cur->keylen, seek};
		} else {
			memcpy(seek, a->prefix, sl);
			k = (MDB_val){sl, seek};
		}
		rc = mdb_cursor_get(c, &k, &v, k.mv_size ? MDB_SET_RANGE : MDB_FIRST);
		if (rc == 0 && cur->started && k.mv_size == cur->keylen &&
		    memcmp(k.mv_data, cur->key, cur->keylen) == 0)
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
		if (rc == MDB_NOTFOUND) {
			rc = 0;
			cur->done = 1;
			break;
		}
		if (rc)
			break;
		int m = cache_urlkey_prefix(k.mv_data, k.mv_size, a->prefix, a->plen);

		if (m == 0) {
			cur->done = 1; /* past the prefix */
			break;
		}
		if (k.mv_size > sizeof(cur->key)) {
			rc = MDB_CORRUPTED;
			break;
		}
		memcpy(cur->key, k.mv_data, k.mv_size);
		cur->keylen = k.mv_size;
		cur->started = 1;
		cur->urls++;
		if (m < 0)
			m = cache_meta_url_prefix(w->txn, s, &v, a->prefix, a->plen);
		if (!m)
			continue;
		unsigned char h[32];
		int have_h = v.mv_size == 32;
		long removed = 0;

		if (have_h) {
			memcpy(h, v.mv_data, 32);
			if ((rc = cache_w_purge_hash(w, h, &removed)) != 0)
				break;
		}
		a->count += removed;
		MDB_val ukey = {cur->keylen, seek};

		memcpy(seek, cur->key, cur->keylen);
		rc = mdb_del(w->txn, s->db_url, &ukey, NULL); /* when no entry took it along */
		if (rc == 0)
			w->d_used -= (int64_t)cache_acct(s, cur->keylen, have_h ? 32 : 0);
		else if (rc != MDB_NOTFOUND)
			break;
		rc = 0;
	}
	mdb_cursor_close(c);
	if (rc == 0 && cur->pending != 0)
		rc = cache_pending_save(w, a->prefix, a->plen, cur, a->count);
	return rc;
}

long
cache_purge_prefix_step(struct cache_store *s, const char *prefix, size_t plen,
                        struct cache_purge_cursor *cur, size_t max_urls)
{
	struct cache_purge_step_arg a;
	int rc;

	if (!s || s->magic != CACHE_STORE_MAGIC || !cur || (plen && !prefix))
		return CACHE_EINVAL;
	memset(&a, 0, sizeof(a));
	a.prefix = plen ? prefix : "";
	a.plen = plen;
	a.max = max_urls ? max_urls : 256;
	a.in = cur;
	if (cur->done)
		return 0;
	pthread_mutex_lock(&s->wmu);
	rc = cache_wrun(s, cache_op_purge_prefix_step, &a, 0);
	pthread_mutex_unlock(&s->wmu);
	if (rc)
		return rc;
	*cur = a.out;
	return a.count;
}

long
cache_purge_prefix(struct cache_store *s, const char *prefix, size_t plen)
{
	struct cache_purge_cursor cur;
	long total = 0;

	memset(&cur, 0, sizeof(cur));
	/* the cursor only moves forward: the walk ends; the bound is a guard */
	for (long i = 0; i < 100L * CACHE_EVICT_LOOP_MAX && !cur.done; i++) {
		long n = cache_purge_prefix_step(s, prefix, plen, &cur, 32);

		if (n < 0)
			return n;
		total += n;
	}
	return total;
}

static int
cache_op_clear(struct cache_wtx *w, void *arg)
{
	struct cache_store *s = w->s;
	int rc;

	(void)arg;
	if ((rc = mdb_drop(w->txn, s->db_meta, 0)) != 0 ||
	    (rc = mdb_drop(w->txn, s->db_body, 0)) != 0 ||
	    (rc = mdb_drop(w->txn, s->db_lru, 0)) != 0 ||
	    (rc = mdb_drop(w->txn, s->db_url, 0)) != 0)
		return rc;
	w->d_used = -(int64_t)s->used;
	w->d_entries = -(int64_t)s->entries;
	w->ngc = 0;
	return 0;
}

int
cache_clear(struct cache_store *s)
{
	int rc;

	if (!s || s->magic != CACHE_STORE_MAGIC)
		return CACHE_EINVAL;
	pthread_mutex_lock(&s->wmu);
	pthread_mutex_lock(&s->tmu);
	__atomic_store_n(&s->ntouch, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&s->tmu);
	rc = cache_wrun(s, cache_op_clear, NULL, CACHE_W_NOEVICT | CACHE_W_NOTOUCH);
	/* even on failure: fills in progress may have lost chunks */
	__atomic_add_fetch(&s->gen, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&s->wmu);
	return rc;
}

static void
cache_item_set(struct cache_store *s, struct cache_item *it, const struct cache_meta *m,
               const void *mkey, size_t mkl, size_t vl)
{
	memset(it, 0, sizeof(*it));
	it->url = m->url;
	it->status = m->status;
	it->vary = (m->flags & CACHE_MF_VARY_STUB) != 0;
	it->body_size = m->body_size;
	it->bytes = m->body_acct + cache_acct(s, mkl, vl);
	it->response_time = m->response_time;
	it->hits = m->hits;
	it->last_access = m->last_access;
	it->variant = mkl == 64;
	it->mkey = mkey;
	it->mkeylen = mkl;
	it->meta = m;
}

/* ASCII case-insensitive: does h (n bytes) contain needle (m bytes, lower case)? */
static int
cache_contains_ci(const char *h, size_t n, const char *needle, size_t m)
{
	if (m == 0)
		return 1;
	for (size_t i = 0; i + m <= n; i++) {
		size_t j = 0;

		while (j < m && (unsigned char)tolower((unsigned char)h[i + j]) ==
		                (unsigned char)needle[j])
			j++;
		if (j == m)
			return 1;
	}
	return 0;
}

static void
cache_find_next(struct cache_find *q, const char *p, size_t n)
{
	if (!q->next || n >= q->next_cap) {
		q->next_len = 0; /* cannot resume after a key that does not fit: end */
		return;
	}
	memcpy(q->next, p, n);
	q->next[n] = 0;
	q->next_len = n;
}

long
cache_find(struct cache_store *s, struct cache_find *q, cache_list_f *cb, void *arg)
{
	unsigned char start[CACHE_URLKEY_MAX + 1];
	char lsub[256];
	size_t sl, slen;
	MDB_txn *txn;
	MDB_cursor *c;
	long n = 0;
	int rc, op, full = 0, stop = 0;

	if (!s || s->magic != CACHE_STORE_MAGIC || !cb || !q || q->slen >= sizeof(lsub) ||
	    (q->plen && !q->prefix))
		return CACHE_EINVAL;
	/* q->after may be q->next (the previous page's cursor): it is copied into start below,
	 * before next is written */
	q->next_len = 0;
	q->scanned = 0;
	slen = q->slen;
	for (size_t i = 0; i < slen; i++)
		lsub[i] = (char)tolower((unsigned char)q->substr[i]);
	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return cache_mdb_err(rc);
	rc = mdb_cursor_open(txn, s->db_url, &c);
	if (rc) {
		mdb_txn_abort(txn);
		return cache_mdb_err(rc);
	}
	const char *prefix = q->plen ? q->prefix : "", *after = q->after;
	size_t plen = q->plen, alen = q->after ? q->alen : 0;

	sl = plen < CACHE_URL_TRUNC ? plen : CACHE_URL_TRUNC;
	memcpy(start, prefix, sl);
	if (alen) { /* from `after`, unless it sorts before the prefix */
		unsigned char ak[CACHE_URLKEY_MAX + 1];
		size_t akl = cache_urlkey(after, alen, ak);
		int cmp = memcmp(ak, start, akl < sl ? akl : sl);

		if (cmp > 0 || (cmp == 0 && akl >= sl)) {
			memcpy(start, ak, akl);
			sl = akl;
		} else {
			alen = 0;
		}
	}
	MDB_val k = {sl, start}, v;

	op = sl ? MDB_SET_RANGE : MDB_FIRST;
	for (;;) {
		rc = mdb_cursor_get(c, &k, &v, op);
		op = MDB_NEXT;
		if (rc)
			break;
		if (alen && k.mv_size == sl && memcmp(k.mv_data, start, sl) == 0)
			continue; /* `after` itself */
		int pm = cache_urlkey_prefix(k.mv_data, k.mv_size, prefix, plen);

		if (pm == 0)
			break; /* past the prefix */
		if (stop || q->scanned >= q->scan_max) {
			full = 1; /* there is more: the cursor (already set) resumes before it */
			break;
		}
		q->scanned++;
		int truncated = k.mv_size == CACHE_URLKEY_MAX && ((const unsigned char *)
		                k.mv_data)[CACHE_URL_TRUNC] == 0;
		MDB_val mk = v, mv;
		struct cache_meta meta;

		/* a short key is the URL itself: match on it and read the record only on a match */
		if (!truncated) {
			cache_find_next(q, k.mv_data, k.mv_size);
			if (!cache_contains_ci(k.mv_data, k.mv_size, lsub, slen))
				continue;
		}
		if (v.mv_size != 32 || mdb_get(txn, s->db_meta, &mk, &mv) ||
		    cache_rec_decode(mv.mv_data, mv.mv_size, &meta))
			continue;
		if (truncated) {
			cache_find_next(q, meta.url.p, meta.url.n);
			if (!cache_contains_ci(meta.url.p, meta.url.n, lsub, slen))
				continue;
		}
		if (meta.url.n < plen || memcmp(meta.url.p, prefix, plen))
			continue;
		struct cache_item it;

		cache_item_set(s, &it, &meta, mk.mv_data, 32, mv.mv_size);
		n++;
		if (cb(arg, &it))
			break;
		if ((size_t)n >= q->max)
			stop = 1; /* one more step: is there anything after this one? */
	}
	if (!full)
		q->next_len = 0;
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	if (q->next && q->next_cap && !q->next_len)
		q->next[0] = 0;
	return (rc && rc != MDB_NOTFOUND) ? cache_mdb_err(rc) : n;
}

/* A listing is a search without a substring and without a scan bound: one walk, written once
 * (cache_find). */
long
cache_list(struct cache_store *s, const char *prefix, size_t plen, const char *after,
           size_t alen, size_t max, cache_list_f *cb, void *arg)
{
	struct cache_find q = {
		.prefix = prefix, .plen = plen, .after = after, .alen = after ? alen : 0,
		.max = max, .scan_max = SIZE_MAX,
	};
	if (max == 0)
		return !s || s->magic != CACHE_STORE_MAGIC || !cb ? CACHE_EINVAL : 0;
	return cache_find(s, &q, cb, arg);
}

long
cache_entry_records(struct cache_store *s, const char *key, size_t keylen, cache_list_f *cb,
                    void *arg)
{
	unsigned char h[32];
	MDB_txn *txn;
	MDB_cursor *c;
	long n = 0;
	int rc, op = MDB_SET_RANGE;

	if (!s || s->magic != CACHE_STORE_MAGIC || !cb)
		return CACHE_EINVAL;
	if (cache_sha256(key, keylen, NULL, 0, h))
		return CACHE_ENOMEM;
	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return cache_mdb_err(rc);
	rc = mdb_cursor_open(txn, s->db_meta, &c);
	if (rc) {
		mdb_txn_abort(txn);
		return cache_mdb_err(rc);
	}
	MDB_val k = {32, h}, v;

	/* the primary (32 bytes) sorts before its variants (the same 32 then 32 more) */
	for (int i = 0; i < 100000; i++) {
		struct cache_meta meta;
		struct cache_item it;

		rc = mdb_cursor_get(c, &k, &v, op);
		op = MDB_NEXT;
		if (rc)
			break;
		if (k.mv_size < 32 || memcmp(k.mv_data, h, 32))
			break;
		if (cache_rec_decode(v.mv_data, v.mv_size, &meta))
			continue;
		cache_item_set(s, &it, &meta, k.mv_data, k.mv_size, v.mv_size);
		n++;
		if (cb(arg, &it))
			break;
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	return (rc && rc != MDB_NOTFOUND) ? cache_mdb_err(rc) : n;
}

long
cache_count_prefix(struct cache_store *s, const char *prefix, size_t plen, size_t limit,
                   int *more)
{
	unsigned char start[CACHE_URLKEY_MAX + 1];
	size_t sl, urls = 0;
	MDB_txn *txn;
	MDB_cursor *c, *mc;
	long n = 0;
	int rc, op;

	if (more)
		*more = 0;
	if (!s || s->magic != CACHE_STORE_MAGIC || (plen && !prefix))
		return CACHE_EINVAL;
	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return cache_mdb_err(rc);
	if ((rc = mdb_cursor_open(txn, s->db_url, &c)) != 0) {
		mdb_txn_abort(txn);
		return cache_mdb_err(rc);
	}
	if ((rc = mdb_cursor_open(txn, s->db_meta, &mc)) != 0) {
		mdb_cursor_close(c);
		mdb_txn_abort(txn);
		return cache_mdb_err(rc);
	}
	sl = plen < CACHE_URL_TRUNC ? plen : CACHE_URL_TRUNC;
	if (sl)
		memcpy(start, prefix, sl);
	MDB_val k = {sl, start}, v;

	op = sl ? MDB_SET_RANGE : MDB_FIRST;
	for (;;) {
		rc = mdb_cursor_get(c, &k, &v, op);
		op = MDB_NEXT;
		if (rc)
			break;
		int m = cache_urlkey_prefix(k.mv_data, k.mv_size, plen ? prefix : "", plen);

		if (m == 0)
			break;
		if (urls >= limit) {
			if (more)
				*more = 1;
			break;
		}
		urls++;
		if (m < 0)
			m = cache_meta_url_prefix(txn, s, &v, prefix, plen);
		if (!m || v.mv_size != 32)
			continue;
		/* the records purging this URL removes: its primary and its variants */
		MDB_val mk = {32, v.mv_data}, mv;
		unsigned char h[32];
		int mop = MDB_SET_RANGE;

		memcpy(h, v.mv_data, 32);
		mk.mv_data = h;
		for (int i = 0; i < 100000; i++) {
			int r2 = mdb_cursor_get(mc, &mk, &mv, mop);

			mop = MDB_NEXT;
			if (r2 || mk.mv_size < 32 || memcmp(mk.mv_data, h, 32))
				break;
			n++;
		}
	}
	mdb_cursor_close(mc);
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	return (rc && rc != MDB_NOTFOUND) ? cache_mdb_err(rc) : n;
}
