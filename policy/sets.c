/*
 * sets.c - the data structures behind the intranet policy: a string arena, hash sets of names,
 * 128-bit address keys, sorted disjoint address ranges, the immutable address sets
 * (struct pol_addrset) with their mutable builder, and base64.
 *
 * Name sets are open-addressing tables of 64-bit FNV-1a hashes with a 32-bit fingerprint in
 * the slot, so a lookup that misses touches one slot only. Ranges are laminar (subnets either
 * nest or are disjoint): compiling sorts them by start, wider first, and keeps only the
 * outermost, so a lookup is one binary search. Address sets are sorted arrays of keys.
 *
 * Callers: the builders in block.c and route.c, compile.c, decide.c, pac.c, and (address sets)
 * the daemon. Pure; no locks: mutable objects belong to one thread, built ones are read-only.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/pol_rules.h"

/* ---- arena ---- */

#define POL_ARENA_BLK 65536

struct pol_arena_blk {
	struct pol_arena_blk *next;
	size_t used, cap;
	_Alignas(16) char data[];
};

void *
pol_arena_alloc(struct pol_arena *a, size_t n)
{
	struct pol_arena_blk *b = a->head;

	n = (n + 15) & ~(size_t)15;
	if (n == 0)
		n = 16;
	if (!b || b->cap - b->used < n) {
		size_t cap = n > POL_ARENA_BLK / 4 ? n : POL_ARENA_BLK;

		b = malloc(sizeof(*b) + cap);
		if (!b)
			return NULL;
		b->cap = cap;
		b->used = 0;
		if (cap == n && a->head) {
			/* A big piece gets its own block behind the current one. */
			b->next = a->head->next;
			a->head->next = b;
		} else {
			b->next = a->head;
			a->head = b;
		}
	}
	void *r = b->data + b->used;
	b->used += n;
	return r;
}

char *
pol_arena_strndup(struct pol_arena *a, const char *s, size_t n)
{
	char *r = pol_arena_alloc(a, n + 1);

	if (r) {
		memcpy(r, s, n);
		r[n] = '\0';
	}
	return r;
}

char *
pol_arena_printf(struct pol_arena *a, const char *fmt, ...)
{
	va_list ap;
	char small[256];
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	if ((size_t)n < sizeof(small))
		return pol_arena_strndup(a, small, (size_t)n);
	char *r = pol_arena_alloc(a, (size_t)n + 1);
	if (!r)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(r, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return r;
}

void
pol_arena_free(struct pol_arena *a)
{
	struct pol_arena_blk *b = a->head, *next;

	for (; b; b = next) {
		next = b->next;
		free(b);
	}
	a->head = NULL;
}

/* ---- name sets ---- */

unsigned
pol_name_labels(const char *s, size_t len)
{
	unsigned n = len ? 1 : 0;

	for (size_t i = 0; i < len; i++)
		n += s[i] == '.';
	return n;
}

static size_t
pol_nameset_slot_of(uint64_t h, size_t mask)
{
	return (size_t)(h ^ (h >> 29)) & mask;
}

static int
pol_nameset_grow(struct pol_nameset *s)
{
	size_t cap = s->slot ? (s->mask + 1) * 2 : 64;
	uint64_t *slot = calloc(cap, sizeof(*slot));

	if (!slot)
		return -1;
	for (size_t i = 0; i < s->n; i++) {
		size_t j = pol_nameset_slot_of(s->v[i].hash, cap - 1);

		while (slot[j])
			j = (j + 1) & (cap - 1);
		slot[j] = (s->v[i].hash >> 32) << 32 | (uint64_t)(i + 1);
	}
	free(s->slot);
	s->slot = slot;
	s->mask = cap - 1;
	return 0;
}

const struct pol_name *
pol_nameset_find(const struct pol_nameset *s, uint64_t hash, const char *key, size_t len)
{
	if (!s->slot)
		return NULL;
	uint64_t fp = hash >> 32;
	size_t j = pol_nameset_slot_of(hash, s->mask);

	/* Bounded: the table is at most half full, so an empty slot comes within mask+1 steps. */
	for (size_t step = 0; step <= s->mask; step++) {
		uint64_t v = s->slot[j];

		if (v == 0)
			return NULL;
		if (v >> 32 == fp) {
			const struct pol_name *e = &s->v[(uint32_t)v - 1];

			if (e->hash == hash && e->len == len && memcmp(e->key, key, len) == 0)
				return e;
		}
		j = (j + 1) & s->mask;
	}
	return NULL;
}

int
pol_nameset_add(struct pol_nameset *s, const char *key, size_t len, unsigned flags,
                struct pol_name **out)
{
	uint64_t h = pol_hash_bytes(POL_HASH_INIT, key, len);
	const struct pol_name *e = pol_nameset_find(s, h, key, len);

	if (e) {
		*out = &s->v[e - s->v];
		(*out)->flags |= (uint16_t)flags;
		return 1;
	}
	if (s->n >= UINT32_MAX - 1)
		return -1;
	if (!s->slot || (s->n + 1) * 2 > s->mask + 1) {
		if (pol_nameset_grow(s) != 0)
			return -1;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct pol_name *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -1;
		s->v = v;
		s->cap = cap;
	}
	struct pol_name *n = &s->v[s->n];
	memset(n, 0, sizeof(*n));
	n->hash = h;
	n->key = key;
	n->len = (uint32_t)len;
	n->labels = (uint16_t)pol_name_labels(key, len);
	n->flags = (uint16_t)flags;
	size_t j = pol_nameset_slot_of(h, s->mask);
	while (s->slot[j])
		j = (j + 1) & s->mask;
	s->slot[j] = (h >> 32) << 32 | (uint64_t)(s->n + 1);
	s->n++;
	s->label_bits |= 1ull << (n->labels < 63 ? n->labels : 63);
	if (n->labels > s->max_labels)
		s->max_labels = n->labels;
	*out = n;
	return 0;
}

void
pol_nameset_free(struct pol_nameset *s)
{
	free(s->v);
	free(s->slot);
	memset(s, 0, sizeof(*s));
}

/* ---- address keys ---- */

static uint64_t
pol_be64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return be64toh(v);
}

int
pol_key_from_sa(const struct sockaddr *sa, struct pol_key *k)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		const uint8_t *b = (const uint8_t *)&s4->sin_addr;

		k->hi = 0;
		k->lo = 0xffffull << 32 | (uint64_t)b[0] << 24 | (uint64_t)b[1] << 16 |
		        (uint64_t)b[2] << 8 | b[3];
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		const uint8_t *b = (const uint8_t *)&s6->sin6_addr;

		k->hi = pol_be64(b);
		k->lo = pol_be64(b + 8);
		return 0;
	}
	return -1;
}

void
pol_key_range(const struct pol_net *net, struct pol_key *lo, struct pol_key *hi)
{
	unsigned prefix;

	if (net->family == AF_INET) {
		const uint8_t *b = net->addr;

		lo->hi = 0;
		lo->lo = 0xffffull << 32 | (uint64_t)b[0] << 24 | (uint64_t)b[1] << 16 |
		         (uint64_t)b[2] << 8 | b[3];
		prefix = 96 + net->prefix;
	} else {
		lo->hi = pol_be64(net->addr);
		lo->lo = pol_be64(net->addr + 8);
		prefix = net->prefix;
	}
	*hi = *lo;
	/* Set the host bits of hi (the net's host bits are already zero in lo). */
	if (prefix < 64) {
		hi->hi |= ~0ull >> prefix;
		hi->lo = ~0ull;
	} else if (prefix < 128) {
		hi->lo |= ~0ull >> (prefix - 64);
	}
}

/* ---- ranges ---- */

int
pol_ranges_add(struct pol_ranges *r, const struct pol_net *net, const struct pol_why *desc,
               const char *where, const char *shown)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 8;
		struct pol_range *v = realloc(r->v, cap * sizeof(*v));

		if (!v)
			return -1;
		r->v = v;
		r->cap = cap;
	}
	struct pol_range *e = &r->v[r->n++];
	e->net = *net;
	e->seq = r->n - 1;
	pol_key_range(net, &e->lo, &e->hi);
	e->desc = desc;
	e->where = where ? where : "";
	e->shown = shown;
	return 0;
}

static int
pol_ranges_order(const void *a, const void *b)
{
	const struct pol_range *x = a, *y = b;
	int c = pol_key_cmp(&x->lo, &y->lo);

	if (c)
		return c;
	c = pol_key_cmp(&y->hi, &x->hi);   /* wider first */
	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq; /* equal nets: config order */
}

int
pol_ranges_compile(struct pol_ranges *r,
                   void (*redundant)(void *arg, const struct pol_range *dropped,
                                     const struct pol_range *kept),
                   void *arg)
{
	size_t k = 0;

	free(r->all);
	r->all = NULL;
	r->nall = r->n;
	if (r->n == 0)
		return 0;
	r->all = malloc(r->n * sizeof(*r->all));
	if (!r->all)
		return -1;
	memcpy(r->all, r->v, r->n * sizeof(*r->all));
	qsort(r->v, r->n, sizeof(*r->v), pol_ranges_order);
	for (size_t i = 0; i < r->n; i++) {
		if (k > 0 && pol_key_cmp(&r->v[i].lo, &r->v[k - 1].hi) <= 0) {
			/* Laminar: starting inside the last kept range means lying inside it. */
			if (redundant)
				redundant(arg, &r->v[i], &r->v[k - 1]);
			continue;
		}
		r->v[k++] = r->v[i];
	}
	r->n = k;
	return 0;
}

const struct pol_range *
pol_ranges_find(const struct pol_ranges *r, const struct pol_key *k)
{
	size_t lo = 0, hi = r->n;

	/* Find the last range whose start is <= k. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (pol_key_cmp(&r->v[mid].lo, k) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	const struct pol_range *e = &r->v[lo - 1];
	return pol_key_cmp(k, &e->hi) <= 0 ? e : NULL;
}

void
pol_ranges_free(struct pol_ranges *r)
{
	free(r->v);
	free(r->all);
	memset(r, 0, sizeof(*r));
}

/* ---- address sets ---- */

struct pol_asb_name {
	char *name;
	uint64_t hash;
	size_t n;
	struct pol_key *keys;
};

struct pol_addrset_builder {
	unsigned magic;
	struct pol_asb_name *v;   /* open addressing by name hash; name NULL = empty */
	size_t mask, used;
	size_t total;             /* sum of n */
};

struct pol_addrent {
	struct pol_key k;
	uint32_t name;            /* index into names */
};

struct pol_addrset {
	unsigned magic;
	size_t n;
	struct pol_addrent *v;    /* sorted by key, unique */
	size_t nnames;
	const char **names;
	char *pool;
};

#define POL_ASB_MAGIC 0x41534231u  /* "ASB1" */

int
pol_addrset_builder_new(struct pol_addrset_builder **bp)
{
	struct pol_addrset_builder *b = calloc(1, sizeof(*b));

	*bp = NULL;
	if (!b)
		return -1;
	b->v = calloc(64, sizeof(*b->v));
	if (!b->v) {
		free(b);
		return -1;
	}
	b->mask = 63;
	b->magic = POL_ASB_MAGIC;
	*bp = b;
	return 0;
}

void
pol_addrset_builder_free(struct pol_addrset_builder **bp)
{
	struct pol_addrset_builder *b = *bp;

	if (!b)
		return;
	for (size_t i = 0; i <= b->mask; i++) {
		free(b->v[i].name);
		free(b->v[i].keys);
	}
	free(b->v);
	b->magic = 0;
	free(b);
	*bp = NULL;
}

static struct pol_asb_name *
pol_asb_slot(struct pol_asb_name *v, size_t mask, const char *name, uint64_t h)
{
	size_t j = (size_t)(h ^ (h >> 31)) & mask;

	for (size_t step = 0; step <= mask; step++) {
		if (!v[j].name || (v[j].hash == h && strcmp(v[j].name, name) == 0))
			return &v[j];
		j = (j + 1) & mask;
	}
	return NULL;   /* cannot happen: the table is kept at most half full */
}

static int
pol_asb_grow(struct pol_addrset_builder *b)
{
	size_t cap = (b->mask + 1) * 2;
	struct pol_asb_name *v = calloc(cap, sizeof(*v));

	if (!v)
		return -1;
	for (size_t i = 0; i <= b->mask; i++) {
		if (b->v[i].name)
			*pol_asb_slot(v, cap - 1, b->v[i].name, b->v[i].hash) = b->v[i];
	}
	free(b->v);
	b->v = v;
	b->mask = cap - 1;
	return 0;
}

int
pol_addrset_builder_set(struct pol_addrset_builder *b, const char *name,
                        const struct sockaddr_storage *addrs, size_t n)
{
	struct pol_key *keys = NULL;
	size_t nk = 0;

	if (!b || b->magic != POL_ASB_MAGIC || !name)
		return -1;
	if (n > 0) {
		keys = malloc(n * sizeof(*keys));
		if (!keys)
			return -1;
		for (size_t i = 0; i < n; i++) {
			if (pol_key_from_sa((const struct sockaddr *)&addrs[i], &keys[nk]) == 0)
				nk++;
		}
	}
	uint64_t h = pol_hash_bytes(POL_HASH_INIT, name, strlen(name));
	struct pol_asb_name *e = pol_asb_slot(b->v, b->mask, name, h);
	if (!e->name) {
		if (nk == 0) {
			free(keys);
			return 0;
		}
		if ((b->used + 1) * 2 > b->mask + 1) {
			if (pol_asb_grow(b) != 0) {
				free(keys);
				return -1;
			}
			e = pol_asb_slot(b->v, b->mask, name, h);
		}
		e->name = strdup(name);
		if (!e->name) {
			free(keys);
			return -1;
		}
		e->hash = h;
		b->used++;
	}
	b->total -= e->n;
	free(e->keys);
	e->keys = keys;
	e->n = nk;
	b->total += nk;
	return 0;
}

static int
pol_addrent_cmp(const void *a, const void *b)
{
	const struct pol_addrent *x = a, *y = b;
	int c = pol_key_cmp(&x->k, &y->k);

	if (c)
		return c;
	return x->name < y->name ? -1 : x->name > y->name;
}

struct pol_addrset *
pol_addrset_build(const struct pol_addrset_builder *b)
{
	struct pol_addrset *s;
	size_t poolsz = 0, ni = 0, k = 0;

	if (!b || b->magic != POL_ASB_MAGIC)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->magic = POL_ADDRSET_MAGIC;
	for (size_t i = 0; i <= b->mask; i++) {
		if (b->v[i].name && b->v[i].n) {
			poolsz += strlen(b->v[i].name) + 1;
			s->nnames++;
		}
	}
	s->v = malloc((b->total ? b->total : 1) * sizeof(*s->v));
	s->names = malloc((s->nnames ? s->nnames : 1) * sizeof(*s->names));
	s->pool = malloc(poolsz ? poolsz : 1);
	if (!s->v || !s->names || !s->pool) {
		pol_addrset_free(&s);
		return NULL;
	}
	char *w = s->pool;
	for (size_t i = 0; i <= b->mask; i++) {
		const struct pol_asb_name *e = &b->v[i];

		if (!e->name || e->n == 0)
			continue;
		size_t len = strlen(e->name) + 1;
		memcpy(w, e->name, len);
		s->names[ni] = w;
		w += len;
		for (size_t j = 0; j < e->n; j++) {
			s->v[k].k = e->keys[j];
			s->v[k].name = (uint32_t)ni;
			k++;
		}
		ni++;
	}
	qsort(s->v, k, sizeof(*s->v), pol_addrent_cmp);
	size_t u = 0;
	for (size_t i = 0; i < k; i++) {
		if (u > 0 && pol_key_cmp(&s->v[i].k, &s->v[u - 1].k) == 0)
			continue;
		s->v[u++] = s->v[i];
	}
	s->n = u;
	return s;
}

void
pol_addrset_free(struct pol_addrset **sp)
{
	struct pol_addrset *s = *sp;

	if (!s)
		return;
	free(s->v);
	free(s->names);
	free(s->pool);
	s->magic = 0;
	free(s);
	*sp = NULL;
}

size_t
pol_addrset_count(const struct pol_addrset *s)
{
	return s && s->magic == POL_ADDRSET_MAGIC ? s->n : 0;
}

const char *
pol_addrset_lookup_key(const struct pol_addrset *s, const struct pol_key *k)
{
	size_t lo = 0, hi;

	if (!s || s->magic != POL_ADDRSET_MAGIC)
		return NULL;
	hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = pol_key_cmp(&s->v[mid].k, k);

		if (c == 0)
			return s->names[s->v[mid].name];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const char *
pol_addrset_lookup(const struct pol_addrset *s, const struct sockaddr *addr)
{
	struct pol_key k;

	if (!addr || pol_key_from_sa(addr, &k) != 0)
		return NULL;
	return pol_addrset_lookup_key(s, &k);
}

/* ---- base64 ---- */

size_t
pol_base64(const void *in, size_t n, char *out, size_t outlen)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = in;
	size_t need = 4 * ((n + 2) / 3) + 1, o = 0;

	if (outlen == 0)
		return 0;
	if (outlen < need || n > (SIZE_MAX / 4) - 3) {
		out[0] = '\0';
		return 0;
	}
	size_t i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
		out[o++] = tab[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;

		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;

		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}
