/*
 * polres.h - background resolution of the names the policy lists (ProxyBlock names, NoProxy
 * host names), so that requests for their addresses are matched too.
 *
 * One thread with its own event loop and resolver. Startup never waits for it: names block at
 * once by name, and their addresses join as answers arrive. Each name is re-resolved when its
 * TTL runs out. Answers are published as immutable struct pol_addrset objects through atomic
 * pointers, at most about once a second; workers load them (acquire) at the start of a decision
 * and do not keep them past it. A replaced set is freed 10 s later, long after any decision that
 * could still be reading it (decisions are synchronous and take microseconds).
 */
#ifndef GH_POLRES_H
#define GH_POLRES_H

#include "daemon/cfg.h"

struct polres;

/* Start the thread for cfg's policy. Returns 0 or -1 (logged). */
int polres_start(struct polres **pp, struct cfg *cfg);
/* A reloaded configuration: names no longer listed are forgotten, new ones resolved. */
void polres_set_cfg(struct polres *p, struct cfg *cfg);
/* Stop the thread and free everything (NULL is fine). */
void polres_stop(struct polres **pp);

/* The current sets (may be NULL before the first answer, or when p is NULL). */
const struct pol_addrset *polres_blocked(struct polres *p);
const struct pol_addrset *polres_noproxy(struct polres *p);

#endif
