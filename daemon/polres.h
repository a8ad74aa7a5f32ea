/*
 * polres.h - background resolution of the names the policy lists (ProxyBlock names, NoProxy
 * host names), so that requests for their addresses are matched too.
 *
 * One thread with its own event loop and resolver. Startup never waits for it: names block at
 * once by name, and their addresses join as answers arrive. Each name is re-resolved when its
 * TTL runs out. Until every ProxyBlock name of a configuration has its first outcome, that
 * configuration's policy is not ready (pol_block_ready in policy/pol.h): requests that need the
 * blocked set wait for it (proxy.c parks them) and are woken through polres_waker_add once the
 * thread has published the set and marked the policy; a reload's new policy is marked only
 * when the names it adds have answered. Answers are published as immutable struct
 * pol_addrset objects through atomic pointers, at most about once a second (at once when the
 * last first answer arrives); workers load them (acquire) at the start of a decision and do
 * not keep them past it. A replaced set is freed 10 s later, long after any decision that
 * could still be reading it (decisions are synchronous and take microseconds).
 */
#ifndef GH_POLRES_H
#define GH_POLRES_H

#include "daemon/cfg.h"

struct polres;

/* Start the thread for cfg's policy. Returns 0 or -1 (logged). */
int polres_start(struct polres **pp, struct cfg *cfg);
/* A reloaded configuration: names no longer listed are forgotten, new ones resolved (now, not
 * at the next tick). Every configuration passed here is marked ready in turn, also when
 * reloads come faster than the thread takes them. */
void polres_set_cfg(struct polres *p, struct cfg *cfg);
/* fn(arg) is called on the resolver thread (so it must be thread-safe: ev_async_send) each
 * time policies have just been marked ready. At most 256; returns 0 or -1. Remove before arg
 * goes away. p NULL: nothing to do (0). */
int polres_waker_add(struct polres *p, void (*fn)(void *arg), void *arg);
void polres_waker_remove(struct polres *p, void *arg);
/* Stop the thread and free everything (NULL is fine). */
void polres_stop(struct polres **pp);

/* The current sets (may be NULL before the first answer, or when p is NULL). */
const struct pol_addrset *polres_blocked(struct polres *p);
const struct pol_addrset *polres_noproxy(struct polres *p);

#endif
