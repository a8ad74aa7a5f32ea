/*
 * health.c - parent proxy health table (see health.h). Entries are created under a mutex and
 * never removed; reads and updates of an entry are lock-free atomics.
 */
#include "daemon/health.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define HEALTH_MAX 256
#define HEALTH_BASE_MS 5000u
#define HEALTH_MAX_MS 60000u

struct health {
	char key[300];
	_Atomic uint64_t down_until;
	atomic_uint fails;
	char last_err[160];           /* under health_lock (health_note, health_info_get) */
	int64_t last_err_at;
};

static struct health health_table[HEALTH_MAX];
static atomic_size_t health_count;
static pthread_mutex_t health_lock = PTHREAD_MUTEX_INITIALIZER;

struct health *
health_get(const char *key)
{
	size_t n = atomic_load_explicit(&health_count, memory_order_acquire);
	for (size_t i = 0; i < n; i++)
		if (strcmp(health_table[i].key, key) == 0)
			return &health_table[i];
	pthread_mutex_lock(&health_lock);
	struct health *h = NULL;
	n = atomic_load_explicit(&health_count, memory_order_acquire);
	for (size_t i = 0; i < n && h == NULL; i++)
		if (strcmp(health_table[i].key, key) == 0)
			h = &health_table[i];
	if (h == NULL && n < HEALTH_MAX) {
		h = &health_table[n];
		snprintf(h->key, sizeof(h->key), "%s", key);
		atomic_store(&h->down_until, 0);
		atomic_store(&h->fails, 0);
		atomic_store_explicit(&health_count, n + 1, memory_order_release);
	}
	pthread_mutex_unlock(&health_lock);
	return h;
}

int
health_is_down(const struct health *h, uint64_t now_ms)
{
	return h != NULL && atomic_load(&h->down_until) > now_ms;
}

unsigned
health_fail(struct health *h, uint64_t now_ms)
{
	if (h == NULL)
		return 0;
	/* Attempts that started before the parent was marked down end one by one: they are the
	 * same outage, not a parent that keeps failing after its backoff, so they neither double
	 * the backoff nor move its end (six requests in flight at a parent's death marked it
	 * down for 5, 10, 20 ... 60 s). */
	uint64_t until = atomic_load(&h->down_until);
	if (until > now_ms)
		return (unsigned)(until - now_ms);
	unsigned f = atomic_fetch_add(&h->fails, 1);
	unsigned backoff = HEALTH_BASE_MS;
	for (unsigned i = 0; i < f && backoff < HEALTH_MAX_MS; i++)
		backoff *= 2;
	if (backoff > HEALTH_MAX_MS)
		backoff = HEALTH_MAX_MS;
	atomic_store(&h->down_until, now_ms + backoff);
	return backoff;
}

void
health_ok(struct health *h)
{
	if (h == NULL)
		return;
	atomic_store(&h->fails, 0);
	atomic_store(&h->down_until, 0);
}

int
health_index(const struct health *h)
{
	return h != NULL ? (int)(h - health_table) : -1;
}

void
health_note(struct health *h, const char *why)
{
	if (h == NULL)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	pthread_mutex_lock(&health_lock);
	snprintf(h->last_err, sizeof(h->last_err), "%s", why);
	h->last_err_at = ts.tv_sec;
	pthread_mutex_unlock(&health_lock);
}

void
health_info_get(const struct health *h, uint64_t now_ms, struct health_info *out)
{
	memset(out, 0, sizeof(*out));
	if (h == NULL)
		return;
	uint64_t until = atomic_load(&h->down_until);
	out->down = until > now_ms;
	out->backoff_left_ms = out->down ? (unsigned)(until - now_ms) : 0;
	out->fails = atomic_load(&h->fails);
	pthread_mutex_lock(&health_lock);
	memcpy(out->last_err, h->last_err, sizeof(out->last_err));
	out->last_err_at = h->last_err_at;
	pthread_mutex_unlock(&health_lock);
}

int
health_peek(struct health *h, uint64_t now_ms, uint64_t *left_ms, unsigned *fails, char *err,
            size_t errlen)
{
	struct health_info hi;

	health_info_get(h, now_ms, &hi);
	*left_ms = hi.backoff_left_ms;
	*fails = hi.fails;
	if (errlen > 0)
		snprintf(err, errlen, "%s", hi.last_err);
	return hi.down;
}
