/*
 * cache.c - the resolver's name table: a chained hash table keyed by the lower-case name
 * (SipHash-1-3 with a per-resolver random key, so clients cannot aim names at one chain),
 * and an LRU list of the cached (answered) entries bounded by cache_max.
 *
 * Invariants: every entry is in the table exactly once; an entry is either pending (not on
 * the LRU, not counted in ncached) or cached (on the LRU, counted); the table grows so that
 * chains stay short (nhashed <= nbuckets). Called only from res.c, on the resolver's thread.
 */
#include "resolver/res_priv.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define RES_TAB_MIN 64
#define RES_TAB_MAX ((size_t)1 << 22)

/* ---- SipHash-1-3 (Aumasson & Bernstein), written from the paper ---- */

static uint64_t
res_rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

#define RES_SIPROUND(v0, v1, v2, v3) do { \
	v0 += v1; v1 = res_rotl(v1, 13); v1 ^= v0; v0 = res_rotl(v0, 32); \
	v2 += v3; v3 = res_rotl(v3, 16); v3 ^= v2; \
	v0 += v3; v3 = res_rotl(v3, 21); v3 ^= v0; \
	v2 += v1; v1 = res_rotl(v1, 17); v1 ^= v2; v2 = res_rotl(v2, 32); \
} while (0)

uint64_t
res_cache_hash(const struct res *r, const char *key, size_t len)
{
	const unsigned char *p = (const unsigned char *)key;
	uint64_t k0 = r->hkey[0], k1 = r->hkey[1];
	uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
	uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
	size_t full = len & ~(size_t)7;

	for (size_t i = 0; i < full; i += 8) {
		uint64_t m = 0;
		for (int j = 7; j >= 0; j--)
			m = (m << 8) | p[i + (size_t)j];
		v3 ^= m;
		RES_SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	uint64_t b = (uint64_t)len << 56;
	for (size_t j = 0; j < (len & 7); j++)
		b |= (uint64_t)p[full + j] << (8 * j);
	v3 ^= b;
	RES_SIPROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xff;
	RES_SIPROUND(v0, v1, v2, v3);
	RES_SIPROUND(v0, v1, v2, v3);
	RES_SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- table ---- */

int
res_cache_init(struct res *r)
{
	if (getrandom(r->hkey, sizeof(r->hkey), GRND_NONBLOCK) != (ssize_t)sizeof(r->hkey)) {
		/* No entropy yet (early boot): still vary the key per process and resolver. */
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		r->hkey[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)r;
		r->hkey[1] = (uint64_t)ts.tv_sec * 0xc2b2ae3d27d4eb4full ^ (uint64_t)(uintptr_t)&ts;
	}
	r->tab = calloc(RES_TAB_MIN, sizeof(*r->tab));
	if (r->tab == NULL)
		return -1;
	r->nbuckets = RES_TAB_MIN;
	return 0;
}

static void
res_ent_free(struct res_ent *e)
{
	e->magic = RES_DEAD_MAGIC;
	free(e->ip);
	if (e->parked_ai != NULL)
		ares_freeaddrinfo(e->parked_ai);
	free(e);
}

void
res_cache_destroy(struct res *r)
{
	for (size_t i = 0; r->tab != NULL && i < r->nbuckets; i++) {
		struct res_ent *e = r->tab[i];
		while (e != NULL) {
			struct res_ent *n = e->hnext;
			res_ent_free(e);
			e = n;
		}
	}
	free(r->tab);
	r->tab = NULL;
	r->nbuckets = r->nhashed = 0;
	r->lru_head = r->lru_tail = NULL;
	r->ncached = 0;
}

struct res_ent *
res_cache_find(struct res *r, const char *key, size_t len, uint64_t hash)
{
	for (struct res_ent *e = r->tab[hash & (r->nbuckets - 1)]; e != NULL; e = e->hnext)
		if (e->hash == hash && e->len == len && memcmp(e->name, key, len) == 0)
			return e;
	return NULL;
}

/* Double the table; on no memory keep the old one (chains just get longer). */
static void
res_cache_grow(struct res *r)
{
	size_t nb = r->nbuckets * 2;
	if (nb > RES_TAB_MAX)
		return;
	struct res_ent **t = calloc(nb, sizeof(*t));
	if (t == NULL)
		return;
	for (size_t i = 0; i < r->nbuckets; i++) {
		struct res_ent *e = r->tab[i];
		while (e != NULL) {
			struct res_ent *n = e->hnext;
			size_t b = e->hash & (nb - 1);
			e->hnext = t[b];
			t[b] = e;
			e = n;
		}
	}
	free(r->tab);
	r->tab = t;
	r->nbuckets = nb;
}

struct res_ent *
res_cache_add(struct res *r, const char *key, size_t len, uint64_t hash)
{
	if (r->nhashed >= r->nbuckets)
		res_cache_grow(r);
	struct res_ent *e = calloc(1, sizeof(*e) + len + 1);
	if (e == NULL)
		return NULL;
	e->magic = RES_ENT_MAGIC;
	e->r = r;
	e->hash = hash;
	e->pending = 1;
	e->len = len;
	memcpy(e->name, key, len);
	e->name[len] = '\0';
	size_t b = hash & (r->nbuckets - 1);
	e->hnext = r->tab[b];
	r->tab[b] = e;
	r->nhashed++;
	return e;
}

/* ---- LRU ---- */

static void
res_lru_unlink(struct res *r, struct res_ent *e)
{
	if (e->lru_prev != NULL)
		e->lru_prev->lru_next = e->lru_next;
	else
		r->lru_head = e->lru_next;
	if (e->lru_next != NULL)
		e->lru_next->lru_prev = e->lru_prev;
	else
		r->lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

static void
res_lru_push(struct res *r, struct res_ent *e)
{
	e->lru_prev = NULL;
	e->lru_next = r->lru_head;
	if (r->lru_head != NULL)
		r->lru_head->lru_prev = e;
	else
		r->lru_tail = e;
	r->lru_head = e;
}

void
res_cache_touch(struct res *r, struct res_ent *e)
{
	if (r->lru_head == e)
		return;
	res_lru_unlink(r, e);
	res_lru_push(r, e);
}

void
res_cache_remove(struct res *r, struct res_ent *e)
{
	struct res_ent **pp = &r->tab[e->hash & (r->nbuckets - 1)];
	while (*pp != NULL && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp == e) {
		*pp = e->hnext;
		r->nhashed--;
	}
	if (!e->pending) {
		res_lru_unlink(r, e);
		r->ncached--;
	}
	res_ent_free(e);
}

int
res_cache_store(struct res *r, struct res_ent *e, int status, const struct res_ip *ip,
		unsigned nip, unsigned ttl)
{
	struct res_ip *copy = NULL;

	if (status == RES_OK && nip > 0) {
		copy = malloc(nip * sizeof(*copy));
		if (copy == NULL) {
			res_cache_remove(r, e);
			return -1;
		}
		memcpy(copy, ip, nip * sizeof(*copy));
	}
	free(e->ip);
	e->ip = copy;
	e->nip = copy ? nip : 0;
	e->status = status;
	e->ttl = ttl;
	e->expires = ev_now(r->loop) + (uint64_t)ttl * 1000u;
	e->pending = 0;
	res_lru_push(r, e);
	r->ncached++;
	/* Bounded by ncached: each turn removes one cached entry. */
	while (r->ncached > r->conf.cache_max && r->lru_tail != NULL)
		res_cache_remove(r, r->lru_tail);
	return 0;
}

void
res_cache_reuse(struct res *r, struct res_ent *e)
{
	res_lru_unlink(r, e);
	r->ncached--;
	free(e->ip);
	e->ip = NULL;
	e->nip = 0;
	e->bad_status = 0;
	e->pending = 1;
}
