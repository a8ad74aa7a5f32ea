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

#endif
