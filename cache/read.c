/*
 * read.c - the read side of the store: readers (one LMDB read transaction each, reset between
 * calls, renewed for each; MDB_NOTLS so any thread may renew it), lookups with Vary variant
 * selection and small bodies copied along, and chunk reads with transparent inflation.
 *
 * Values LMDB keeps on overflow pages (chunks over about 2 KiB) are copied out with pread()
 * from the data file, not through the map: the process then maps only the B-tree pages it
 * walks, and the bodies it serves stay in the page cache without counting as its resident
 * memory (a read of mapped pages would make every body served resident in the process).
 * Within the read transaction those pages cannot change, and the page cache is shared with
 * the map, so both ways read the same bytes.
 *
 * Nothing here takes the write mutex. A lookup queues an LRU touch that the next write
 * transaction applies (cache_touch_queue).
 */
#include "cache/cache_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <zlib.h>

#define CACHE_EAGAIN_ (-100) /* internal: the entry changed under the lookup */

struct cache_reader {
	uint32_t magic;
	struct cache_store *s;
	MDB_txn *txn;            /* reset when idle */
	unsigned char *zbuf;     /* inflate output, CACHE_CHUNK_SIZE, allocated on first use */
};

struct cache_reader *
cache_reader_new(struct cache_store *s)
{
	struct cache_reader *r;

	if (!s || s->magic != CACHE_STORE_MAGIC)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &r->txn) != 0) {
		free(r);
		return NULL;
	}
	mdb_txn_reset(r->txn);
	r->magic = CACHE_READER_MAGIC;
	r->s = s;
	return r;
}

void
cache_reader_free(struct cache_reader *r)
{
	if (!r)
		return;
	if (r->magic != CACHE_READER_MAGIC)
		abort(); /* invariant: freed once */
	mdb_txn_abort(r->txn);
	free(r->zbuf);
	r->magic = 0;
	free(r);
}

/* Decode a chunk value into (data, len): raw values point into the map, deflated ones are
 * inflated into dst (cap bytes). Returns 0 or a CACHE_E* code. */
static int
cache_chunk_decode(const MDB_val *v, unsigned char *dst, size_t cap, const unsigned char **data,
                   size_t *len)
{
	const unsigned char *p = v->mv_data;

	if (v->mv_size < 1)
		return CACHE_ECORRUPT;
	if (p[0] == 0) {
		*data = p + 1;
		*len = v->mv_size - 1;
		return 0;
	}
	if (p[0] != 1 || !dst)
		return CACHE_ECORRUPT;
	uLongf dl = cap;

	if (uncompress(dst, &dl, p + 1, (uLong)(v->mv_size - 1)) != Z_OK)
		return CACHE_ECORRUPT;
	*data = dst;
	*len = dl;
	return 0;
}

/* Read a raw (flag 0) chunk value v into dst (cap bytes) with pread() when LMDB keeps it on
 * overflow pages. Returns the body length, or -1 when the value is not on overflow pages, is
 * deflated or does not fit: the caller then decodes it from the map. */
static ssize_t
cache_chunk_pread(struct cache_store *s, const MDB_val *v, unsigned char *dst, size_t cap)
{
	uintptr_t a = (uintptr_t)v->mv_data;
	unsigned char flag = 0xff;

	if (s->data_fd < 0 || v->mv_size < 2 || v->mv_size - 1 > cap ||
	    v->mv_size < s->psize / 2 || a % s->psize != 16)
		return -1; /* overflow data starts right after a 16-byte page header */
	uintptr_t base = (uintptr_t)cache_map_learn(s, v->mv_data);

	if (!base || a < base)
		return -1;
	struct iovec iov[2] = {{&flag, 1}, {dst, v->mv_size - 1}};
	ssize_t n = preadv(s->data_fd, iov, 2, (off_t)(a - base));

	if (n != (ssize_t)v->mv_size || flag != 0)
		return -1;
	return (ssize_t)(v->mv_size - 1);
}

static int
cache_reader_zbuf(struct cache_reader *r)
{
	if (!r->zbuf)
		r->zbuf = malloc(CACHE_CHUNK_SIZE);
	return r->zbuf ? 0 : CACHE_ENOMEM;
}

/* Pin e's body, then check in a new snapshot that its entry still has that body: if it does,
 * the transaction that will delete it has not committed yet, and the GC (which only deletes
 * bodies queued by an earlier commit, checking pins under the mutex) will see the pin.
 * Returns 1 (pinned), 0 (the entry changed meanwhile: look up again) or a CACHE_E* code. */
static int
cache_lookup_pin(struct cache_reader *r, struct cache_entry *e)
{
	struct cache_store *s = r->s;
	MDB_val k = {e->keylen, e->key}, v;
	struct cache_meta m;
	int rc;

	if (cache_body_pin(s, e->meta.body_id))
		return CACHE_ENOMEM;
	if (mdb_txn_renew(r->txn) != 0) {
		cache_body_unpin(s, e->meta.body_id);
		return CACHE_EIO;
	}
	rc = mdb_get(r->txn, s->db_meta, &k, &v);
	rc = rc == 0 && cache_rec_decode(v.mv_data, v.mv_size, &m) == 0 &&
	     m.body_id == e->meta.body_id;
	mdb_txn_reset(r->txn);
	if (!rc) {
		cache_body_unpin(s, e->meta.body_id);
		return 0;
	}
	e->pin = s;
	e->unpin = cache_body_unpin;
	return 1;
}

static int
cache_lookup_once(struct cache_reader *r, const char *key, size_t keylen,
                  const struct cache_hdrs *req_hdrs, unsigned flags, struct cache_entry **out)
{
	struct cache_store *s;
	unsigned char mk[CACHE_KEY_MAX];
	size_t mkl = 32, room = 0;
	uint64_t stub_seq = 0;
	struct cache_meta m;
	struct cache_entry *e = NULL;
	MDB_val k, v;
	int rc, ret = CACHE_MISS, variant = 0, inline_body = 0;

	*out = NULL;
	if (!r || r->magic != CACHE_READER_MAGIC || !key)
		return CACHE_EINVAL;
	s = r->s;
	if (cache_sha256(key, keylen, NULL, 0, mk))
		return CACHE_ENOMEM;
	if (mdb_txn_renew(r->txn) != 0)
		return CACHE_EIO;
	k = (MDB_val){32, mk};
	rc = mdb_get(r->txn, s->db_meta, &k, &v);
	if (rc) {
		ret = rc == MDB_NOTFOUND ? CACHE_MISS : CACHE_EIO;
		goto out;
	}
	if (cache_rec_decode(v.mv_data, v.mv_size, &m)) {
		ret = CACHE_ECORRUPT;
		goto out;
	}
	if (m.flags & CACHE_MF_VARY_STUB) {
		struct cache_hdrs none = {NULL, 0};

		stub_seq = m.seq;
		variant = 1;
		if (cache_vary_hash(m.vary, req_hdrs ? req_hdrs : &none, mk + 32)) {
			ret = CACHE_ENOMEM;
			goto out;
		}
		mkl = 64;
		k = (MDB_val){64, mk};
		rc = mdb_get(r->txn, s->db_meta, &k, &v);
		if (rc) {
			ret = rc == MDB_NOTFOUND ? CACHE_VARY_MISS : CACHE_EIO;
			goto out;
		}
		if (cache_rec_decode(v.mv_data, v.mv_size, &m) || (m.flags & CACHE_MF_VARY_STUB)) {
			ret = CACHE_ECORRUPT;
			goto out;
		}
	}
	if (!(m.flags & CACHE_MF_COMPLETE)) {
		ret = CACHE_MISS;
		goto out;
	}
	inline_body = !(flags & CACHE_LOOKUP_NO_BODY) && m.body_size <= CACHE_INLINE_MAX &&
	                  m.nchunks <= 1;

	if (inline_body)
		room = m.body_size + 1;
	e = cache_entry_copy(&m, mk, mkl, room);
	if (!e) {
		ret = CACHE_ENOMEM;
		goto out;
	}
	if (inline_body && m.nchunks == 1) {
		unsigned char kb[12];
		MDB_val ck = {12, kb}, cv;
		const unsigned char *data;
		size_t len;

		cache_be64(kb, m.body_id);
		cache_be32(kb + 8, 0);
		rc = mdb_get(r->txn, s->db_body, &ck, &cv);
		ssize_t pn = rc ? -1 : cache_chunk_pread(s, &cv, (unsigned char *)e->body, room);

		if (pn >= 0) {
			data = (const unsigned char *)e->body;
			len = (size_t)pn;
		}
		if (rc ||
		    (pn < 0 && cache_chunk_decode(&cv, (unsigned char *)e->body, room, &data, &len)) ||
		    len != m.body_size) {
			ret = CACHE_ECORRUPT;
			goto out;
		}
		if (data != e->body)
			memcpy((unsigned char *)e->body, data, len);
		e->body_len = len;
	}
	ret = CACHE_HIT;
out:
	mdb_txn_reset(r->txn);
	if (ret == CACHE_HIT || ret == CACHE_VARY_MISS) {
		if (variant)
			cache_touch_queue(s, mk, 32, stub_seq);
		if (ret == CACHE_HIT)
			cache_touch_queue(s, mk, mkl, e->meta.seq);
	}
	if (ret == CACHE_HIT && !inline_body && e->meta.nchunks > 0 &&
	    !(flags & CACHE_LOOKUP_NO_BODY)) {
		int pr = cache_lookup_pin(r, e);

		if (pr != 1) {
			cache_entry_free(e);
			return pr == 0 ? CACHE_EAGAIN_ : pr;
		}
	}
	if (ret == CACHE_HIT)
		*out = e;
	else
		cache_entry_free(e);
	return ret;
}

int
cache_lookup(struct cache_reader *r, const char *key, size_t keylen,
             const struct cache_hdrs *req_hdrs, unsigned flags, struct cache_entry **out)
{
	/* an entry replaced between the lookup and the pin: look again (bounded) */
	for (int i = 0; i < 4; i++) {
		int rc = cache_lookup_once(r, key, keylen, req_hdrs, flags, out);

		if (rc != CACHE_EAGAIN_)
			return rc;
	}
	return CACHE_MISS;
}

/* Renew r's read transaction and find chunk idx of body body_id in it. On success the
 * transaction stays open for the caller, who resets it; on failure it is reset here. */
static int
cache_chunk_get(struct cache_reader *r, uint64_t body_id, uint32_t idx, MDB_val *v)
{
	unsigned char kb[12];
	MDB_val k = {12, kb};
	int rc;

	cache_be64(kb, body_id);
	cache_be32(kb + 8, idx);
	if (mdb_txn_renew(r->txn) != 0)
		return CACHE_EIO;
	rc = mdb_get(r->txn, r->s->db_body, &k, v);
	if (rc == 0)
		return CACHE_OK;
	mdb_txn_reset(r->txn);
	return rc == MDB_NOTFOUND ? CACHE_ENOENT : CACHE_EIO;
}

/* Decode the chunk value v (found by cache_chunk_get) and hand it to cb; resets the
 * transaction. */
static int
cache_chunk_deliver(struct cache_reader *r, MDB_val *v, cache_chunk_f *cb, void *arg)
{
	const unsigned char *data;
	size_t len;
	int rc;

	if (v->mv_size >= 1 && ((const unsigned char *)v->mv_data)[0] == 1 && cache_reader_zbuf(r))
		rc = CACHE_ENOMEM;
	else if ((rc = cache_chunk_decode(v, r->zbuf, CACHE_CHUNK_SIZE, &data, &len)) == 0)
		rc = cb(arg, data, len);
	mdb_txn_reset(r->txn);
	return rc;
}

int
cache_read_chunk(struct cache_reader *r, uint64_t body_id, uint32_t idx, cache_chunk_f *cb,
                 void *arg)
{
	MDB_val v;
	int rc;

	if (!r || r->magic != CACHE_READER_MAGIC || !cb)
		return CACHE_EINVAL;
	rc = cache_chunk_get(r, body_id, idx, &v);
	return rc ? rc : cache_chunk_deliver(r, &v, cb, arg);
}

struct cache_copy_arg {
	unsigned char *buf;
	size_t cap, len;
};

static int
cache_copy_cb(void *arg, const unsigned char *data, size_t len)
{
	struct cache_copy_arg *a = arg;

	if (len > a->cap)
		return CACHE_EINVAL;
	memcpy(a->buf, data, len);
	a->len = len;
	return CACHE_OK;
}

int
cache_read_chunk_copy(struct cache_reader *r, uint64_t body_id, uint32_t idx, void *buf,
                      size_t cap, size_t *len)
{
	struct cache_copy_arg a = {buf, cap, 0};
	MDB_val v;
	ssize_t n;
	int rc;

	*len = 0;
	if (!r || r->magic != CACHE_READER_MAGIC || !buf)
		return CACHE_EINVAL;
	rc = cache_chunk_get(r, body_id, idx, &v);
	if (rc)
		return rc;
	n = cache_chunk_pread(r->s, &v, buf, cap);
	if (n >= 0) {
		mdb_txn_reset(r->txn);
		*len = (size_t)n;
		return CACHE_OK;
	}
	/* not on overflow pages, or deflated: through the map, in the same transaction */
	rc = cache_chunk_deliver(r, &v, cache_copy_cb, &a);
	*len = rc == CACHE_OK ? a.len : 0;
	return rc;
}
