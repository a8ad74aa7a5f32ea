/*
 * sketch.c - space-saving heavy-hitters sketch and its merge (see sketch.h).
 *
 * Counters sit in a fixed array; a chained hash (bucket heads and next links as 16-bit
 * indexes) finds a key, and a binary min-heap on count finds the counter a new key replaces
 * in O(log SKETCH_CAP). A count only grows, so after an add the counter sinks in the heap.
 */
#include "daemon/sketch.h"

#include <stdlib.h>
#include <string.h>

/* Eight bytes a step, multiply and fold (the request path hashes two keys per request:
 * a byte-at-a-time FNV cost 126 instructions a cache hit, this about a third). */
uint32_t
sketch_hash(const char *p, size_t n)
{
	if (n >= SKETCH_KEY_MAX)
		n = SKETCH_KEY_MAX - 1;
	uint64_t h = 0x9e3779b97f4a7c15ull ^ n, v;
	for (; n >= 8; p += 8, n -= 8) {
		memcpy(&v, p, 8);
		h = (h ^ v) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	v = 0;
	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)(unsigned char)p[i] << (8 * i);
	h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 29;
	return (uint32_t)h;
}

void
sketch_init(struct sketch *s, char (*notes)[SKETCH_NOTE_MAX])
{
	s->note = notes;
	sketch_reset(s);
}

void
sketch_reset(struct sketch *s)
{
	s->n = 0;
	s->total = 0;
	for (unsigned i = 0; i < SKETCH_BUCKETS; i++)
		s->bucket[i] = -1;
}

uint64_t
sketch_min(const struct sketch *s)
{
	return s->n < SKETCH_CAP ? 0 : s->heap[0].count;
}

static void
sketch_heap_swap(struct sketch *s, unsigned a, unsigned b)
{
	struct sketch_hent t = s->heap[a];
	s->heap[a] = s->heap[b];
	s->heap[b] = t;
	s->ctr[s->heap[a].ci].heap = (uint16_t)a;
	s->ctr[s->heap[b].ci].heap = (uint16_t)b;
}

static void
sketch_heap_down(struct sketch *s, unsigned i)
{
	for (;;) {
		unsigned l = 2 * i + 1, r = l + 1, m = i;
		if (l < s->n && s->heap[l].count < s->heap[m].count)
			m = l;
		if (r < s->n && s->heap[r].count < s->heap[m].count)
			m = r;
		if (m == i)
			return;
		sketch_heap_swap(s, i, m);
		i = m;
	}
}

static void
sketch_heap_up(struct sketch *s, unsigned i)
{
	while (i > 0) {
		unsigned p = (i - 1) / 2;
		if (s->heap[p].count <= s->heap[i].count)
			return;
		sketch_heap_swap(s, i, p);
		i = p;
	}
}

static void
sketch_unlink(struct sketch *s, unsigned ci)
{
	int16_t *pp = &s->bucket[s->ctr[ci].hash & (SKETCH_BUCKETS - 1)];
	while (*pp != -1) {
		if ((unsigned)*pp == ci) {
			*pp = s->ctr[ci].next;
			return;
		}
		pp = &s->ctr[*pp].next;
	}
}

static void
sketch_set_note(struct sketch *s, unsigned ci, const char *note)
{
	if (note == NULL || s->note == NULL)
		return;
	size_t n = strlen(note);
	if (n >= SKETCH_NOTE_MAX)
		n = SKETCH_NOTE_MAX - 1;
	memcpy(s->note[ci], note, n);
	s->note[ci][n] = '\0';
}

void
sketch_add(struct sketch *s, const char *key, size_t klen, uint64_t w, const char *note)
{
	sketch_add_hashed(s, key, klen, sketch_hash(key, klen), w, note);
}

void
sketch_add_hashed(struct sketch *s, const char *key, size_t klen, uint32_t h, uint64_t w,
                  const char *note)
{
	if (klen >= SKETCH_KEY_MAX)
		klen = SKETCH_KEY_MAX - 1;
	s->total += w;
	for (int16_t i = s->bucket[h & (SKETCH_BUCKETS - 1)]; i != -1; i = s->ctr[i].next) {
		struct sketch_ctr *c = &s->ctr[i];
		if (c->hash == h && c->klen == klen && memcmp(c->key, key, klen) == 0) {
			c->count += w;
			s->heap[c->heap].count = c->count;
			sketch_set_note(s, (unsigned)i, note);
			sketch_heap_down(s, c->heap);
			return;
		}
	}
	if (w == 0)
		return;                    /* nothing to count: no counter changes hands */
	unsigned ci;
	uint64_t base = 0;
	if (s->n < SKETCH_CAP) {
		ci = s->n;
		s->heap[s->n].ci = ci;
		s->ctr[ci].heap = (uint16_t)s->n;
		s->n++;
	} else {
		ci = s->heap[0].ci;        /* the smallest counter changes hands */
		base = s->ctr[ci].count;
		sketch_unlink(s, ci);
	}
	struct sketch_ctr *c = &s->ctr[ci];
	c->count = base + w;
	s->heap[c->heap].count = c->count;
	c->err = base;
	c->hash = h;
	memcpy(c->key, key, klen);
	c->key[klen] = '\0';
	c->klen = (uint8_t)klen;
	if (s->note != NULL)
		s->note[ci][0] = '\0';
	sketch_set_note(s, ci, note);
	c->next = s->bucket[h & (SKETCH_BUCKETS - 1)];
	s->bucket[h & (SKETCH_BUCKETS - 1)] = (int16_t)ci;
	if (base == 0)
		sketch_heap_up(s, c->heap);
	else
		sketch_heap_down(s, c->heap);
}

/* ---- merge ---- */

int
sketch_top_init(struct sketch_top *t, size_t nsketches)
{
	memset(t, 0, sizeof(*t));
	t->cap = (nsketches ? nsketches : 1) * SKETCH_CAP;
	t->tabcap = 1;
	while (t->tabcap < 2 * t->cap)
		t->tabcap <<= 1;
	t->it = calloc(t->cap, sizeof(*t->it));
	t->tab = calloc(t->tabcap, sizeof(*t->tab));
	if (t->it == NULL || t->tab == NULL) {
		sketch_top_fini(t);
		return -1;
	}
	return 0;
}

void
sketch_top_fini(struct sketch_top *t)
{
	free(t->it);
	free(t->tab);
	memset(t, 0, sizeof(*t));
}

static uint64_t
sketch_scale(uint64_t v, uint64_t num, uint64_t den)
{
	if (num == den)
		return v;
	return (uint64_t)((unsigned __int128)v * num / den);
}

void
sketch_top_add(struct sketch_top *t, const struct sketch *s, uint64_t num, uint64_t den)
{
	if (den == 0 || num == 0)
		return;
	uint64_t smin = sketch_scale(sketch_min(s), num, den);
	t->minsum += smin;
	t->total += sketch_scale(s->total, num, den);
	for (unsigned i = 0; i < s->n; i++) {
		const struct sketch_ctr *c = &s->ctr[i];
		size_t klen = strlen(c->key);
		size_t j = sketch_hash(c->key, klen) & (t->tabcap - 1);
		struct sketch_item *it = NULL;
		while (t->tab[j] != 0) {
			struct sketch_item *x = &t->it[t->tab[j] - 1];
			if (strcmp(x->key, c->key) == 0) {
				it = x;
				break;
			}
			j = (j + 1) & (t->tabcap - 1);
		}
		if (it == NULL) {
			if (t->n == t->cap)
				continue;  /* more sketches than promised at init: cannot happen */
			it = &t->it[t->n++];
			t->tab[j] = (uint32_t)t->n;
			memcpy(it->key, c->key, klen + 1);
		}
		if (s->note != NULL && s->note[i][0] != '\0')
			memcpy(it->note, s->note[i], sizeof(it->note));
		it->count += sketch_scale(c->count, num, den);
		it->err += sketch_scale(c->err, num, den);
		it->minsum_in += smin;
	}
}

static int
sketch_item_cmp(const void *a, const void *b)
{
	const struct sketch_item *x = a, *y = b;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp(x->key, y->key);
}

void
sketch_top_finish(struct sketch_top *t)
{
	/* A sketch without the key may still have counted up to its minimum of it. */
	for (size_t i = 0; i < t->n; i++)
		t->it[i].err += t->minsum - t->it[i].minsum_in;
	qsort(t->it, t->n, sizeof(*t->it), sketch_item_cmp);
	/* the hash table is stale after sorting: nothing adds after finish */
}
