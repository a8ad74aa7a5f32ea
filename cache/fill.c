/*
 * fill.c - writing one response into the store: body bytes are buffered into chunks of
 * CACHE_CHUNK_SIZE, each whole chunk is (maybe) deflated outside the lock and written in its
 * own short write transaction; the commit writes the last partial chunk with the meta, LRU
 * and URL records atomically, replacing any previous version.
 *
 * A fill belongs to one thread at a time. Its chunks live under a body id nobody else uses
 * (s->next_id), so a lookup can never see them before the meta exists, and a replaced
 * version's chunks are never mixed with the new ones. Aborted fills queue their chunks for
 * the GC; after a crash the sweep at open finds them (no meta references the id).
 */
#include "cache/cache_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define CACHE_FILL_BUF_MIN 16384u

struct cache_fill {
	uint32_t magic;
	struct cache_store *s;
	struct cache_entry *e;       /* the meta to commit (url = the cache key) */
	unsigned char key[CACHE_KEY_MAX];
	size_t keylen;
	uint64_t id, gen;
	uint32_t nchunks;            /* chunks written (committed) */
	uint64_t size;               /* body bytes appended */
	uint64_t acct;               /* accounting of the chunks written */
	unsigned char *buf;          /* the chunk being filled */
	size_t blen, bcap;
	unsigned char *zbuf;         /* deflate output (compressible fills only) */
	size_t zcap;
	int dead;                    /* CACHE_E* once a write failed */
};

struct cache_chunk_arg {
	struct cache_fill *f;
	uint32_t idx;
	int deflated;
	const unsigned char *data;
	size_t len;                  /* stored length (after deflate) */
	size_t raw;                  /* bytes before deflate */
	uint64_t acct;               /* out: accounting of the chunk */
};

/* Deflate a chunk into f->zbuf when that saves at least an eighth. */
static void
cache_fill_deflate(struct cache_fill *f, struct cache_chunk_arg *a, const unsigned char *in,
                   size_t n)
{
	a->data = in;
	a->len = a->raw = n;
	a->deflated = 0;
	if (!f->s->compress || !(f->e->meta.flags & CACHE_MF_COMPRESSIBLE) || n < 512)
		return;
	uLongf bound = compressBound((uLong)n);

	if (f->zcap < bound) {
		unsigned char *z = realloc(f->zbuf, bound);

		if (!z)
			return;
		f->zbuf = z;
		f->zcap = bound;
	}
	uLongf zl = bound;

	if (compress2(f->zbuf, &zl, in, (uLong)n, f->s->level) != Z_OK || zl > n - n / 8)
		return;
	a->data = f->zbuf;
	a->len = zl;
	a->deflated = 1;
}

/* Write one chunk record: a flag byte (0 raw, 1 zlib) and the data. */
static int
cache_w_put_chunk(struct cache_wtx *w, struct cache_chunk_arg *a)
{
	unsigned char kb[12];
	MDB_val k = {12, kb}, v = {a->len + 1, NULL};
	int rc;

	cache_be64(kb, a->f->id);
	cache_be32(kb + 8, a->idx);
	rc = mdb_put(w->txn, w->s->db_body, &k, &v, MDB_RESERVE);
	if (rc)
		return rc;
	((unsigned char *)v.mv_data)[0] = (unsigned char)a->deflated;
	memcpy((unsigned char *)v.mv_data + 1, a->data, a->len);
	a->acct = cache_acct(w->s, 12, a->len + 1);
	w->d_used += (int64_t)a->acct;
	w->d.body_bytes_written += a->raw;
	if (a->deflated) {
		w->d.compress_in += a->raw;
		w->d.compress_out += a->len;
	}
	return 0;
}

static int
cache_op_chunk(struct cache_wtx *w, void *arg)
{
	return cache_w_put_chunk(w, arg);
}

/* Before writing `incoming` bytes: keep the accounting under the start mark. Caller holds
 * wmu. A bounded number of eviction transactions, more only when over the hard budget. */
static void
cache_fill_make_room(struct cache_store *s, uint64_t incoming)
{
	if (s->used + incoming <= s->high)
		return;
	if (cache_evict_to(s, s->low, 8) == CACHE_OK || s->used + incoming <= s->budget)
		return;
	cache_evict_to(s, s->budget > incoming ? s->budget - incoming : 0, 1000);
}

int
cache_fill_begin(struct cache_store *s, const char *key, size_t keylen,
                 const struct cache_meta *meta, const struct cache_hdrs *req_hdrs,
                 int64_t size_hint, struct cache_fill **out)
{
	struct cache_fill *f;
	struct cache_meta m;
	int rc;

	*out = NULL;
	if (!s || s->magic != CACHE_STORE_MAGIC || !key || !keylen || !meta)
		return CACHE_EINVAL;
	if ((meta->flags & CACHE_MF_VARY_STUB) || (meta->vary.n == 1 && meta->vary.p[0] == '*'))
		return CACHE_EINVAL;
	if (size_hint >= 0 && (uint64_t)size_hint > s->max_object)
		return CACHE_ETOOBIG;
	f = calloc(1, sizeof(*f));
	if (!f)
		return CACHE_ENOMEM;
	f->magic = CACHE_FILL_MAGIC;
	f->s = s;
	rc = cache_sha256(key, keylen, NULL, 0, f->key);
	f->keylen = 32;
	if (!rc && meta->vary.n) {
		struct cache_hdrs none = {NULL, 0};

		rc = cache_vary_hash(meta->vary, req_hdrs ? req_hdrs : &none, f->key + 32);
		f->keylen = 64;
	}
	m = *meta;
	m.url = (struct cache_str){key, keylen};
	m.flags &= CACHE_MF_COMPRESSIBLE;
	if (!rc) {
		f->e = cache_entry_copy(&m, f->key, f->keylen, 0);
		if (!f->e)
			rc = CACHE_ENOMEM;
	}
	if (!rc) {
		f->bcap = CACHE_FILL_BUF_MIN;
		if (size_hint >= 0 && (uint64_t)size_hint < CACHE_CHUNK_SIZE)
			f->bcap = (size_t)size_hint;
		if (f->bcap == 0)
			f->bcap = 1;
		f->buf = malloc(f->bcap);
		if (!f->buf)
			rc = CACHE_ENOMEM;
	}
	if (rc) {
		cache_entry_free(f->e);
		free(f);
		return rc;
	}
	/* no lock: begin must not wait behind a writer */
	f->id = __atomic_fetch_add(&s->next_id, 1, __ATOMIC_RELAXED);
	f->gen = __atomic_load_n(&s->gen, __ATOMIC_ACQUIRE);
	*out = f;
	return CACHE_OK;
}

/* Write the full buffer as chunk f->nchunks. */
static int
cache_fill_flush(struct cache_fill *f)
{
	struct cache_store *s = f->s;
	struct cache_chunk_arg a;
	int rc;

	memset(&a, 0, sizeof(a));
	a.f = f;
	a.idx = f->nchunks;
	cache_fill_deflate(f, &a, f->buf, f->blen);
	pthread_mutex_lock(&s->wmu);
	if (f->gen != s->gen) {
		rc = CACHE_ENOENT; /* the store was cleared under us */
	} else {
		cache_fill_make_room(s, cache_acct(s, 12, a.len + 1));
		rc = cache_wrun(s, cache_op_chunk, &a, 0);
	}
	pthread_mutex_unlock(&s->wmu);
	if (rc)
		return rc;
	f->acct += a.acct;
	f->blen = 0;
	__atomic_store_n(&f->nchunks, f->nchunks + 1, __ATOMIC_RELEASE);
	return CACHE_OK;
}

int
cache_fill_append(struct cache_fill *f, const void *data, size_t len)
{
	const unsigned char *p = data;

	if (!f || f->magic != CACHE_FILL_MAGIC)
		return CACHE_EINVAL;
	if (f->dead)
		return f->dead;
	if (f->size + len > f->s->max_object) {
		f->dead = CACHE_ETOOBIG;
		return f->dead;
	}
	while (len) {
		size_t take = CACHE_CHUNK_SIZE - f->blen;

		if (take > len)
			take = len;
		if (f->blen + take > f->bcap) {
			size_t nc = f->bcap;

			while (nc < f->blen + take)
				nc = nc * 2 > CACHE_CHUNK_SIZE ? CACHE_CHUNK_SIZE : nc * 2;
			unsigned char *nb = realloc(f->buf, nc);

			if (!nb) {
				f->dead = CACHE_ENOMEM;
				return f->dead;
			}
			f->buf = nb;
			f->bcap = nc;
		}
		memcpy(f->buf + f->blen, p, take);
		f->blen += take;
		f->size += take;
		p += take;
		len -= take;
		if (f->blen == CACHE_CHUNK_SIZE) {
			int rc = cache_fill_flush(f);

			if (rc) {
				f->dead = rc;
				return rc;
			}
		}
	}
	return CACHE_OK;
}

static void
cache_fill_free(struct cache_fill *f)
{
	cache_entry_free(f->e);
	free(f->buf);
	free(f->zbuf);
	f->magic = 0;
	free(f);
}

/* Build the stub record (no body) that tells lookups which fields a URL varies on. */
static unsigned char *
cache_stub_record(const struct cache_meta *m, uint64_t seq, uint64_t hits, int64_t last_access,
                  size_t *n)
{
	struct cache_meta st;
	unsigned char *buf;

	memset(&st, 0, sizeof(st));
	st.status = m->status;
	st.flags = CACHE_MF_VARY_STUB | CACHE_MF_COMPLETE;
	st.cc.max_age = st.cc.s_maxage = st.cc.swr = st.cc.sie = -1;
	st.date = st.expires = st.last_modified = -1;
	st.request_time = m->request_time;
	st.response_time = m->response_time;
	st.seq = seq;
	st.hits = hits;
	st.last_access = last_access;
	st.url = m->url;
	st.vary = m->vary;
	*n = cache_rec_size(&st);
	buf = malloc(*n);
	if (buf)
		cache_rec_encode(&st, buf);
	return buf;
}

/* Put a record with its LRU record and, for primary keys, its URL record. */
static int
cache_w_put_entry(struct cache_wtx *w, const unsigned char *k, size_t kl, const unsigned char *rec,
                  size_t rl, uint64_t seq, const struct cache_str *url)
{
	struct cache_store *s = w->s;
	unsigned char lk[8 + CACHE_KEY_MAX], uk[CACHE_URLKEY_MAX + 1];
	int rc;

	rc = cache_w_put(w, s->db_meta, k, kl, rec, rl);
	if (rc)
		return rc;
	w->d_used += (int64_t)cache_acct(s, kl, rl);
	cache_be64(lk, seq);
	memcpy(lk + 8, k, kl);
	rc = cache_w_put(w, s->db_lru, lk, 8 + kl, "", 0);
	if (rc)
		return rc;
	w->d_used += (int64_t)cache_acct(s, 8 + kl, 0);
	if (kl == 32) {
		size_t ukl = cache_urlkey(url->p, url->n, uk);
		MDB_val ukey = {ukl, uk}, old;

		if (mdb_get(w->txn, s->db_url, &ukey, &old) == 0)
			w->d_used -= (int64_t)cache_acct(s, ukl, old.mv_size);
		rc = cache_w_put(w, s->db_url, uk, ukl, k, 32);
		if (rc)
			return rc;
		w->d_used += (int64_t)cache_acct(s, ukl, 32);
	}
	return 0;
}

/* Delete the record under k if there is one. */
static int
cache_w_delete_key(struct cache_wtx *w, const unsigned char *k, size_t kl, struct cache_meta *old,
                   int *found)
{
	MDB_val key = {kl, (void *)k}, v;
	int rc = mdb_get(w->txn, w->s->db_meta, &key, &v);

	*found = 0;
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	*found = 1;
	if (old && cache_rec_decode(v.mv_data, v.mv_size, old))
		memset(old, 0, sizeof(*old));
	return cache_w_delete_entry(w, k, kl, v.mv_data, v.mv_size, 0);
}

/* Delete every variant (64-byte key) of primary hash h. */
static int
cache_w_delete_variants(struct cache_wtx *w, const unsigned char *h)
{
	MDB_cursor *c;
	unsigned char start[33];
	int rc;

	memcpy(start, h, 32);
	start[32] = 0;
	rc = mdb_cursor_open(w->txn, w->s->db_meta, &c);
	if (rc)
		return rc;
	for (int i = 0; i < 1000000; i++) {
		MDB_val k = {33, start}, v;
		unsigned char kb[CACHE_KEY_MAX];

		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		if (rc == MDB_NOTFOUND ||
		    (rc == 0 && (k.mv_size != 64 || memcmp(k.mv_data, h, 32)))) {
			rc = 0;
			break;
		}
		if (rc)
			break;
		memcpy(kb, k.mv_data, 64);
		rc = cache_w_delete_entry(w, kb, 64, v.mv_data, v.mv_size, 0);
		if (rc)
			break;
	}
	mdb_cursor_close(c);
	return rc;
}

struct cache_commit_arg {
	struct cache_fill *f;
	struct cache_chunk_arg tail;  /* len 0 when there is no partial chunk */
	int have_tail;
};

static int
cache_op_commit(struct cache_wtx *w, void *arg)
{
	struct cache_commit_arg *a = arg;
	struct cache_fill *f = a->f;
	struct cache_meta m = f->e->meta;
	unsigned char *rec = NULL, *stub = NULL;
	size_t rl, sl;
	int rc, found;

	if (a->have_tail && (rc = cache_w_put_chunk(w, &a->tail)) != 0)
		return rc;
	/* whatever was stored under this key before goes (its chunks to the GC) */
	if ((rc = cache_w_delete_key(w, f->key, f->keylen, NULL, &found)) != 0)
		return rc;
	if (f->keylen == 64) {
		/* the primary record becomes (or stays) a stub naming the Vary spec; a stub that
		 * stays keeps the URL's hits */
		MDB_val pk = {32, f->key}, pv;
		struct cache_meta old;
		uint64_t hits = 0;
		int64_t last = -1;

		if (mdb_get(w->txn, w->s->db_meta, &pk, &pv) == 0 &&
		    cache_rec_decode(pv.mv_data, pv.mv_size, &old) == 0 &&
		    (old.flags & CACHE_MF_VARY_STUB)) {
			hits = old.hits;
			last = old.last_access;
		}
		if ((rc = cache_w_delete_key(w, f->key, 32, NULL, &found)) != 0)
			return rc;
		stub = cache_stub_record(&m, w->next_seq, hits, last, &sl);
		if (!stub)
			return ENOMEM;
		rc = cache_w_put_entry(w, f->key, 32, stub, sl, w->next_seq, &m.url);
		free(stub);
		if (rc)
			return rc;
		w->next_seq++;
	} else if ((rc = cache_w_delete_variants(w, f->key)) != 0) {
		return rc;
	}
	m.body_id = f->id;
	m.body_size = f->size;
	m.nchunks = f->nchunks + (a->have_tail ? 1 : 0);
	m.body_acct = f->acct + (a->have_tail ? a->tail.acct : 0);
	m.flags = (m.flags & CACHE_MF_COMPRESSIBLE) | CACHE_MF_COMPLETE;
	m.seq = w->next_seq++;
	m.hits = 0;
	m.last_access = -1;
	rl = cache_rec_size(&m);
	rec = malloc(rl);
	if (!rec)
		return ENOMEM;
	cache_rec_encode(&m, rec);
	rc = cache_w_put_entry(w, f->key, f->keylen, rec, rl, m.seq, &m.url);
	free(rec);
	if (rc)
		return rc;
	w->d_entries++;
	w->d.fills_committed++;
	return 0;
}

/* Queue the fill's chunks for deletion (no transaction needed: nothing references them). */
static void
cache_fill_drop_chunks(struct cache_fill *f)
{
	struct cache_store *s = f->s;

	pthread_mutex_lock(&s->wmu);
	s->st.fills_aborted++;
	if (f->nchunks && f->gen == s->gen) {
		if (s->ngc == s->gccap) {
			size_t nc = s->gccap ? s->gccap * 2 : 16;
			struct cache_gc *n = realloc(s->gc, nc * sizeof(*n));

			if (n) {
				s->gc = n;
				s->gccap = nc;
			}
		}
		if (s->ngc < s->gccap) /* else the sweep at the next open finds them */
			s->gc[s->ngc++] = (struct cache_gc){f->id, 0, 0, f->acct};
	}
	pthread_mutex_unlock(&s->wmu);
}

int
cache_fill_commit(struct cache_fill *f, int64_t expected_size)
{
	struct cache_commit_arg a;
	struct cache_store *s;
	int rc;

	if (!f || f->magic != CACHE_FILL_MAGIC)
		return CACHE_EINVAL;
	s = f->s;
	if (f->dead || (expected_size >= 0 && (uint64_t)expected_size != f->size)) {
		rc = f->dead ? f->dead : CACHE_EINVAL;
		cache_fill_abort(f);
		return rc;
	}
	memset(&a, 0, sizeof(a));
	a.f = f;
	if (f->blen) {
		a.have_tail = 1;
		a.tail.f = f;
		a.tail.idx = f->nchunks;
		cache_fill_deflate(f, &a.tail, f->buf, f->blen);
	}
	pthread_mutex_lock(&s->wmu);
	if (f->gen != s->gen) {
		rc = CACHE_ENOENT;
	} else {
		cache_fill_make_room(s, a.have_tail ? cache_acct(s, 12, a.tail.len + 1) : 0);
		rc = cache_wrun(s, cache_op_commit, &a, 0);
	}
	pthread_mutex_unlock(&s->wmu);
	if (rc) {
		cache_fill_abort(f);
		return rc;
	}
	cache_fill_free(f);
	return CACHE_OK;
}

void
cache_fill_abort(struct cache_fill *f)
{
	if (!f)
		return;
	if (f->magic != CACHE_FILL_MAGIC)
		abort(); /* invariant: a fill is aborted once */
	cache_fill_drop_chunks(f);
	cache_fill_free(f);
}

uint64_t
cache_fill_body_id(const struct cache_fill *f)
{
	return f->id;
}

uint32_t
cache_fill_chunks(const struct cache_fill *f)
{
	return __atomic_load_n(&f->nchunks, __ATOMIC_ACQUIRE);
}
