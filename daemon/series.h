/*
 * series.h - fixed-size time-series rings for the status page's charts (issue 11).
 *
 * A ring holds n slots of res seconds each: the last hour at 10 s (360 slots) and the last
 * 24 h at 5 min (288 slots). Each slot remembers the period it counts (time / res), so the
 * ring rotates lazily: a write into a slot whose period is old zeroes it first, and a read
 * treats a slot of any other period than the one asked for as zero. Nothing runs on a timer.
 *
 * Pure code: no locks, no clock. One ring is written by one thread (its worker); the caller
 * (daemon/history.c) guards reads from other threads. Summing across workers is series_sum
 * into a plain array.
 */
#ifndef GH_SERIES_H
#define GH_SERIES_H

#include <stdint.h>

enum series_metric {
	SERIES_REQUESTS = 0,   /* requests logged */
	SERIES_HITS,           /* of which served from the cache (action *HIT*) */
	SERIES_BYTES_CLIENT,   /* bytes sent to clients, heads included */
	SERIES_BYTES_UPSTREAM, /* body bytes received from origins and parents */
	SERIES_UP_ERRORS,      /* 502/504 answers: an upstream failed or timed out */
	SERIES_NMETRIC
};

#define SERIES_MAX_SLOTS 360u

struct series_slot {
	int64_t period;                  /* time / res of the counts, -1: never written */
	uint64_t v[SERIES_NMETRIC];
};

struct series_ring {
	unsigned res;                    /* seconds per slot */
	unsigned n;                      /* slots, at most SERIES_MAX_SLOTS */
	struct series_slot slot[SERIES_MAX_SLOTS];
};

/* Empty ring of n slots of res seconds each (n <= SERIES_MAX_SLOTS, res >= 1). */
void series_init(struct series_ring *r, unsigned res, unsigned n);

/* Add v[] (SERIES_NMETRIC values) at time t (seconds). A time older than the ring's window
 * (or before a slot that already moved on: the clock went back) is dropped. */
void series_add(struct series_ring *r, int64_t t, const uint64_t v[SERIES_NMETRIC]);

/* Add the ring's counts for the n periods ending with the one holding time now into
 * out[0..n) (oldest first; out[n - 1] is the current period). Stale slots add nothing. */
void series_sum(const struct series_ring *r, int64_t now, uint64_t (*out)[SERIES_NMETRIC]);

/* The period index (time / res, rounded down also for negative times). */
int64_t series_period(int64_t t, unsigned res);

#endif
