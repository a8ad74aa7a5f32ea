/*
 * sketch.h - space-saving heavy-hitters sketch (Metwally, Agrawal, El Abbadi 2005) for the
 * status page's top lists (issue 11): hosts and clients by requests and by bytes, blocked
 * hosts with the rule that blocked them.
 *
 * A sketch keeps at most SKETCH_CAP counters, whatever the number of distinct keys. A key
 * already counted adds its weight; a new key, once the sketch is full, takes over the
 * smallest counter: its count becomes that minimum plus the weight, and the minimum is
 * remembered as its possible overcount (err). So for every key kept:
 *     count - err <= true weight <= count,
 * and every key whose true weight exceeds (total weight) / SKETCH_CAP is kept.
 *
 * Pure code: no locks, no allocation in a sketch (sketch_top allocates once on the reading
 * side). One writer per sketch (its worker); daemon/history.c serialises readers.
 */
#ifndef GH_SKETCH_H
#define GH_SKETCH_H

#include <stddef.h>
#include <stdint.h>

#define SKETCH_CAP 256u
#define SKETCH_BUCKETS 512u       /* hash chains: a power of two, 2 x SKETCH_CAP */
#define SKETCH_KEY_MAX 128u       /* longer keys are cut (and share a counter); < 256 */
#define SKETCH_NOTE_MAX 160u      /* blocked hosts: the rule's text, cut */
_Static_assert(SKETCH_KEY_MAX < 256, "struct sketch_ctr keeps klen in 8 bits");

struct sketch_ctr {
	uint64_t count, err;
	uint32_t hash;
	int16_t next;                 /* hash chain, -1 ends it */
	uint16_t heap;                /* position in the min-heap */
	uint8_t klen;                 /* strlen(key) */
	char key[SKETCH_KEY_MAX];
};

struct sketch {
	unsigned n;                   /* counters in use */
	uint64_t total;               /* weight added since the reset */
	int16_t bucket[SKETCH_BUCKETS];
	struct sketch_hent {          /* a min-heap on count, the counts copied in so that
	                               * sifting stays within 4 KiB (the counters are 39 KiB) */
		uint64_t count;
		uint32_t ci;          /* counter index */
	} heap[SKETCH_CAP];
	struct sketch_ctr ctr[SKETCH_CAP];
	char (*note)[SKETCH_NOTE_MAX]; /* SKETCH_CAP notes (the last one given with the counter's
	                                * key, "" none), or NULL: only blocked hosts keep notes */
};

/* Empty sketch; notes, if not NULL, is an array of SKETCH_CAP notes the caller owns. */
void sketch_init(struct sketch *s, char (*notes)[SKETCH_NOTE_MAX]);
/* Empty the sketch (its notes array stays). */
void sketch_reset(struct sketch *s);
/* Count weight w for key (klen bytes) with an optional note (NUL-terminated, NULL none). */
void sketch_add(struct sketch *s, const char *key, size_t klen, uint64_t w, const char *note);
/* The same with the key's hash from sketch_hash(key, klen) (one key, several sketches). */
void sketch_add_hashed(struct sketch *s, const char *key, size_t klen, uint32_t hash, uint64_t w,
                       const char *note);
/* The key's hash: of at most SKETCH_KEY_MAX - 1 bytes, as sketch_add cuts it. */
uint32_t sketch_hash(const char *key, size_t klen);
/* The smallest count once full (the bound on any key not kept), else 0. */
uint64_t sketch_min(const struct sketch *s);

/* ---- reading: several sketches merged (workers; current and previous window) ---- */

struct sketch_item {
	char key[SKETCH_KEY_MAX];
	char note[SKETCH_NOTE_MAX];
	uint64_t count;               /* estimate: the sum of the sketches' counts */
	uint64_t err;                 /* |true - count| <= err */
	uint64_t minsum_in;           /* (internal) scaled minima of the sketches holding it */
};

struct sketch_top {
	struct sketch_item *it;
	size_t n, cap;
	uint32_t *tab;                /* open addressing: index + 1, 0 empty */
	size_t tabcap;
	uint64_t minsum;              /* sum of every added sketch's scaled minimum */
	uint64_t total;               /* sum of the scaled totals */
};

/* Room for up to nsketches sketches. Returns 0, or -1 when out of memory. */
int sketch_top_init(struct sketch_top *t, size_t nsketches);
void sketch_top_fini(struct sketch_top *t);
/* Add s scaled by num/den (the previous window counts for the part of it still inside the
 * last hour: see history.c). Keys that s lacks may have up to its minimum there: that goes
 * into their err. */
void sketch_top_add(struct sketch_top *t, const struct sketch *s, uint64_t num, uint64_t den);
/* Finish the errors and sort by count, largest first (ties by key). */
void sketch_top_finish(struct sketch_top *t);

#endif
