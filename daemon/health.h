/*
 * health.h - parent proxy health, shared by every worker and kept across reloads (keyed by the
 * parent's "host:port"). A parent that fails (connect refused or timed out, DNS failure) is
 * marked down for a backoff that doubles from 5 s up to 60 s while it keeps failing; a success
 * clears it. Unlike Apache, dead parents are not retried on every request.
 */
#ifndef GH_HEALTH_H
#define GH_HEALTH_H

#include <stddef.h>
#include <stdint.h>

struct health;

/* The entry for key, created on first use; NULL only when the table (256 parents) is full. */
struct health *health_get(const char *key);
/* Is it down at now_ms (a monotonic ms clock, ev_now)? */
int health_is_down(const struct health *h, uint64_t now_ms);
/* Record a failure at now_ms; returns the backoff in ms. */
unsigned health_fail(struct health *h, uint64_t now_ms);
void health_ok(struct health *h);
/* Remember why the parent last failed (for the status page); takes a lock, failures only. */
void health_note(struct health *h, const char *why);
/* A parent's state at now_ms: down or not, the backoff left (ms), consecutive failures, and
 * the last failure's reason ("" when none) copied into err. NULL h: up, never failed. */
int health_peek(struct health *h, uint64_t now_ms, uint64_t *left_ms, unsigned *fails,
                char *err, size_t errlen);

/* For the status page (any thread). The entry's index in the table (0 .. 255), or -1 for
 * NULL: a key keeps its index for the life of the process. */
int health_index(const struct health *h);
/* Note why a parent failed (the last error shown on the status page); a short lock. */
void health_note(struct health *h, const char *why);
struct health_info {
	int down;
	unsigned backoff_left_ms;   /* while down */
	unsigned fails;             /* consecutive failures */
	char last_err[160];         /* "" when none */
	int64_t last_err_at;        /* wall clock, seconds; 0 when none */
};
void health_info_get(const struct health *h, uint64_t now_ms, struct health_info *out);

#endif
