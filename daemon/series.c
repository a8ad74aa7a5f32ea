/*
 * series.c - fixed-size time-series rings, rotated lazily (see series.h).
 *
 * Slot i of a ring counts period p where p % n == i; its period field says which p. A write
 * for period p finds slot p % n: same period, add; older period, zero and claim it; newer
 * period (the wall clock went back), drop the write rather than corrupt newer counts. A read
 * for period p uses the slot only when its period is exactly p.
 */
#include "daemon/series.h"

#include <string.h>

int64_t
series_period(int64_t t, unsigned res)
{
	int64_t q = t / (int64_t)res;
	if (t < 0 && q * (int64_t)res != t)
		q--;
	return q;
}

void
series_init(struct series_ring *r, unsigned res, unsigned n)
{
	memset(r, 0, sizeof(*r));
	r->res = res ? res : 1;
	r->n = n == 0 ? 1 : n > SERIES_MAX_SLOTS ? SERIES_MAX_SLOTS : n;
	for (unsigned i = 0; i < SERIES_MAX_SLOTS; i++)
		r->slot[i].period = -1;
}

static unsigned
series_index(const struct series_ring *r, int64_t p)
{
	int64_t i = p % (int64_t)r->n;
	return (unsigned)(i < 0 ? i + r->n : i);
}

void
series_add(struct series_ring *r, int64_t t, const uint64_t v[SERIES_NMETRIC])
{
	int64_t p = series_period(t, r->res);
	struct series_slot *s = &r->slot[series_index(r, p)];
	if (s->period != p) {
		if (s->period > p)
			return;
		memset(s->v, 0, sizeof(s->v));
		s->period = p;
	}
	for (int m = 0; m < SERIES_NMETRIC; m++)
		s->v[m] += v[m];
}

void
series_sum(const struct series_ring *r, int64_t now, uint64_t (*out)[SERIES_NMETRIC])
{
	int64_t last = series_period(now, r->res);
	for (unsigned k = 0; k < r->n; k++) {
		int64_t p = last - (int64_t)(r->n - 1 - k);
		const struct series_slot *s = &r->slot[series_index(r, p)];
		if (s->period != p)
			continue;
		for (int m = 0; m < SERIES_NMETRIC; m++)
			out[k][m] += s->v[m];
	}
}
