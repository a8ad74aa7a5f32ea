/*
 * polres.c - the policy resolver thread (see polres.h).
 *
 * State lives on the thread: a table of listed names (kind, next due time, query in flight),
 * one pol_addrset_builder per kind, a tick timer that starts due lookups (at most
 * POLRES_INFLIGHT at once, so a 100,000-name blocklist does not flood the DNS server) and
 * publishes dirty sets, and a retire list of replaced sets. main.c talks to the thread only
 * through polres_set_cfg (a queue under a lock and an ev_async wake-up).
 *
 * Readiness (pol_block_ready): each ProxyBlock name counts as unanswered until its first
 * outcome, an answer or an answered failure (SERVFAIL, REFUSED); a timeout or an unreachable
 * server tells nothing about the name, so it stays unanswered and is retried soon (1 s,
 * doubling up to POLRES_RETRY_MS). Every configuration handed to the thread waits in a list
 * until no name of the current table is unanswered; then the blocked set is published at once
 * (not coalesced) and, after it, the policies of the waiting configurations are marked ready
 * and the workers woken (polres_waker_add), so that the requests they parked decide again.
 * Older configurations are marked with the newest: names a reload dropped are meant to go.
 */
#include "daemon/polres.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ev.h"
#include "daemon/log.h"
#include "resolver/res.h"

#define POLRES_MAGIC 0x9011e5a1u
#define POLRES_INFLIGHT 32
#define POLRES_TICK_MS 200
#define POLRES_PUBLISH_MS 1000
#define POLRES_RETIRE_MS 10000
#define POLRES_RETRY_MS 30000 /* after a failure other than NXDOMAIN/NODATA */
#define POLRES_UNANSWERED_MS 1000 /* first retry of a name no DNS server answered for */
#define POLRES_WAKERS_MAX 256

enum { POLRES_BLOCK = 0, POLRES_NOPROXY = 1 };

struct polres_name {
	unsigned magic;
	struct polres *p;
	char *name;
	int kind;
	uint64_t due;             /* ms; 0 = now */
	struct res_query *q;      /* in flight */
	int inflight;
	int answered;             /* its first outcome is in the builder (see the top) */
	unsigned backoff_ms;      /* next retry while unanswered */
	int kept;                 /* polres_load: listed again (the old table stays sorted) */
};

struct polres_retired {
	struct pol_addrset *set;
	uint64_t free_at;
	struct polres_retired *next;
};

struct polres {
	unsigned magic;
	pthread_t thread;
	struct ev_loop *loop;
	struct res *res;
	struct res **res_old;                /* replaced by a reload; freed once idle */
	size_t nres_old;
	struct ev_timer tick;
	struct cfg *cfg;                     /* the policy being served (ref held) */
	pthread_mutex_t lock;                /* guards queued and wakers */
	struct cfg **queued;                 /* handed over by polres_set_cfg, oldest first */
	size_t nqueued;
	struct polres_waker {
		void (*fn)(void *arg);
		void *arg;
	} wakers[POLRES_WAKERS_MAX];
	size_t nwakers;
	atomic_int stop;

	struct cfg **waiting;                /* configurations whose policy is not ready (refs) */
	size_t nwaiting;
	size_t unanswered;                   /* ProxyBlock names without a first outcome */
	int starting;                        /* polres_start_due is on the stack */

	struct polres_name **names;
	size_t nnames;
	size_t inflight;
	size_t cursor;                       /* where the next due scan starts */

	struct pol_addrset_builder *b[2];
	int dirty[2];
	uint64_t last_publish;
	_Atomic(struct pol_addrset *) set[2];
	struct polres_retired *retired;
};

const struct pol_addrset *
polres_blocked(struct polres *p)
{
	return p ? atomic_load_explicit(&p->set[POLRES_BLOCK], memory_order_acquire) : NULL;
}

const struct pol_addrset *
polres_noproxy(struct polres *p)
{
	return p ? atomic_load_explicit(&p->set[POLRES_NOPROXY], memory_order_acquire) : NULL;
}

static void
polres_publish(struct polres *p, int kind)
{
	struct pol_addrset *s = pol_addrset_build(p->b[kind]);
	if (s == NULL) {
		log_error("policy resolver: out of memory building an address set");
		return;
	}
	struct pol_addrset *old = atomic_exchange_explicit(&p->set[kind], s, memory_order_acq_rel);
	p->dirty[kind] = 0;
	if (old) {
		struct polres_retired *r = malloc(sizeof(*r));
		if (r == NULL)
			return; /* leak rather than free what a worker may be reading */
		r->set = old;
		r->free_at = ev_now(p->loop) + POLRES_RETIRE_MS;
		r->next = p->retired;
		p->retired = r;
	}
	log_debug("policy resolver: %s set now holds %zu addresses",
	          kind == POLRES_BLOCK ? "ProxyBlock" : "NoProxy", pol_addrset_count(s));
}

static void
polres_retire_sweep(struct polres *p, int all)
{
	uint64_t now = ev_now(p->loop);
	struct polres_retired **pp = &p->retired;
	while (*pp) {
		struct polres_retired *r = *pp;
		if (all || r->free_at <= now) {
			*pp = r->next;
			pol_addrset_free(&r->set);
			free(r);
		} else {
			pp = &r->next;
		}
	}
}

static void
polres_wake_workers(struct polres *p)
{
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->nwakers; i++)
		p->wakers[i].fn(p->wakers[i].arg);
	pthread_mutex_unlock(&p->lock);
}

/* Every ProxyBlock name of the current table has its first outcome: publish the blocked set
 * now, then (release, after the set) mark the waiting policies ready and wake the workers. */
static void
polres_ready(struct polres *p)
{
	if (p->nwaiting == 0)
		return;
	if (p->dirty[POLRES_BLOCK])
		polres_publish(p, POLRES_BLOCK);
	if (p->dirty[POLRES_BLOCK])
		return; /* out of memory: the set lacks answers; the tick tries again */
	for (size_t i = 0; i < p->nwaiting; i++) {
		pol_block_ready_mark(p->waiting[i]->pol);
		cfg_unref(&p->waiting[i]);
	}
	log_info("policy resolver: the addresses of every ProxyBlock name are known (%zu in the "
	         "set)", pol_addrset_count(polres_blocked(p)));
	p->nwaiting = 0;
	polres_wake_workers(p);
}

/* cfg's policy waits for the current table's first answers (if it is not ready already). */
static void
polres_wait_add(struct polres *p, struct cfg *cfg)
{
	if (pol_block_ready(cfg->pol))
		return;
	struct cfg **v = realloc(p->waiting, (p->nwaiting + 1) * sizeof(*v));
	if (v == NULL) {
		/* Its requests fail closed after DNSTimeout instead of waiting for the set. */
		log_error("policy resolver: out of memory: requests by address under the new "
		          "configuration will fail until the next reload");
		return;
	}
	p->waiting = v;
	p->waiting[p->nwaiting++] = cfg_ref(cfg);
}

static void polres_start_due(struct polres *p);

/* n has its first outcome in the builder (called after setting it). */
static void
polres_answered(struct polres *p, struct polres_name *n)
{
	if (n->answered)
		return;
	n->answered = 1;
	n->backoff_ms = 0;
	if (n->kind == POLRES_BLOCK && --p->unanswered == 0)
		polres_ready(p);
}

static void
polres_answer(void *arg, int status, const struct res_addrs *addrs)
{
	struct polres_name *n = arg;
	if (n->magic != POLRES_MAGIC)
		return;
	struct polres *p = n->p;
	uint64_t now = ev_now(p->loop);
	n->q = NULL;
	if (n->inflight) {
		n->inflight = 0;
		p->inflight--;
	}
	if (status == RES_OK) {
		if (pol_addrset_builder_set(p->b[n->kind], n->name, addrs->a, addrs->n) == 0)
			p->dirty[n->kind] = 1;
		n->due = now + (uint64_t)(addrs->ttl ? addrs->ttl : 5) * 1000u;
		polres_answered(p, n);
	} else if (status == RES_NXDOMAIN || status == RES_NODATA) {
		if (pol_addrset_builder_set(p->b[n->kind], n->name, NULL, 0) == 0)
			p->dirty[n->kind] = 1;
		n->due = now + (uint64_t)(p->cfg->dns.neg_ttl ? p->cfg->dns.neg_ttl : 30) * 1000u;
		polres_answered(p, n);
	} else if (!n->answered && (status == RES_TIMEOUT || status == RES_UNREACHABLE)) {
		/* No server answered for this name: its addresses are unknown, and requests that
		 * need them keep failing closed. Retry soon. (SERVFAIL and REFUSED are answers: a
		 * blocklist holds dead domains, and one of them must not hold every request.) */
		unsigned ms = n->backoff_ms ? n->backoff_ms : POLRES_UNANSWERED_MS;
		n->backoff_ms = ms * 2 < POLRES_RETRY_MS ? ms * 2 : POLRES_RETRY_MS;
		n->due = now + ms;
		log_info("policy resolver: %s: %s (retrying in %u ms; requests that need its "
		         "addresses fail until it answers)", n->name, res_strerror(status), ms);
	} else {
		/* Keep what we had: a DNS hiccup must not unblock anything. */
		n->due = now + POLRES_RETRY_MS;
		log_info("policy resolver: %s: %s (retrying in %u s)", n->name, res_strerror(status),
		         POLRES_RETRY_MS / 1000);
		polres_answered(p, n);
	}
	/* During a first resolution, the next name starts as soon as an answer frees a slot
	 * rather than at the next tick (unless this answer came from inside the scan). */
	if (p->unanswered > 0 && !p->starting)
		polres_start_due(p);
}

static void
polres_start_due(struct polres *p)
{
	uint64_t now = ev_now(p->loop);
	size_t scanned = 0;
	p->starting = 1;
	/* Bounded scan per tick, resuming where the last one stopped. */
	while (p->inflight < POLRES_INFLIGHT && scanned < p->nnames && scanned < 4096) {
		if (p->cursor >= p->nnames)
			p->cursor = 0;
		struct polres_name *n = p->names[p->cursor++];
		scanned++;
		if (n->inflight || n->due > now)
			continue;
		n->inflight = 1;
		p->inflight++;
		n->due = UINT64_MAX;
		struct res_query *q = res_lookup(p->res, n->name, polres_answer, n);
		if (n->inflight)
			n->q = q; /* else answered synchronously */
	}
	p->starting = 0;
}

static void polres_res_retire(struct polres *p);

static void
polres_tick(struct ev_timer *t)
{
	struct polres *p = t->arg;
	polres_res_retire(p);
	polres_start_due(p);
	uint64_t now = ev_now(p->loop);
	if ((p->dirty[0] || p->dirty[1]) && now - p->last_publish >= POLRES_PUBLISH_MS) {
		for (int k = 0; k < 2; k++)
			if (p->dirty[k])
				polres_publish(p, k);
		p->last_publish = now;
	}
	if (p->nwaiting > 0 && p->unanswered == 0)
		polres_ready(p); /* a publish that failed for want of memory */
	polres_retire_sweep(p, 0);
	ev_timer_start(p->loop, &p->tick, POLRES_TICK_MS);
}

static void
polres_name_free(struct polres *p, struct polres_name *n)
{
	if (n->q)
		res_cancel(&n->q);
	if (n->inflight)
		p->inflight--;
	n->magic = 0;
	free(n->name);
	free(n);
}

static int
polres_cmp(const void *a, const void *b)
{
	const struct polres_name *x = *(const struct polres_name *const *)a;
	const struct polres_name *y = *(const struct polres_name *const *)b;
	if (x->kind != y->kind)
		return x->kind - y->kind;
	return strcmp(x->name, y->name);
}

/* Rebuild the name table for cfg, keeping the state of names listed before. */
static void
polres_load(struct polres *p, struct cfg *cfg)
{
	size_t count = 0;
	for (size_t i = 0; pol_block_name(cfg->pol, i); i++)
		count++;
	for (size_t i = 0; pol_noproxy_name(cfg->pol, i); i++)
		count++;
	struct polres_name **nn = calloc(count ? count : 1, sizeof(*nn));
	if (nn == NULL) {
		log_error("policy resolver: out of memory loading %zu names", count);
		return;
	}
	size_t k = 0;
	for (int kind = 0; kind < 2; kind++) {
		for (size_t i = 0;; i++) {
			const char *name = kind == POLRES_BLOCK ? pol_block_name(cfg->pol, i)
			                                        : pol_noproxy_name(cfg->pol, i);
			if (name == NULL)
				break;
			struct polres_name key = {.name = (char *)name, .kind = kind}, *kp = &key;
			struct polres_name **old =
			    p->nnames ? bsearch(&kp, p->names, p->nnames, sizeof(*p->names), polres_cmp) : NULL;
			/* Found entries stay in place: the old table must stay whole while bsearch
			 * runs on it (emptying a slot made the next lookup read through NULL). */
			if (old && !(*old)->kept) {
				nn[k++] = *old; /* keeps its addresses, due time and query */
				(*old)->kept = 1;
				continue;
			}
			struct polres_name *n = calloc(1, sizeof(*n));
			if (n == NULL || (n->name = strdup(name)) == NULL) {
				free(n);
				continue;
			}
			n->magic = POLRES_MAGIC;
			n->p = p;
			n->kind = kind;
			nn[k++] = n;
		}
	}
	/* Names no longer listed: forget their addresses. */
	for (size_t i = 0; i < p->nnames; i++) {
		struct polres_name *n = p->names[i];
		if (n->kept) {
			n->kept = 0;
			continue;
		}
		pol_addrset_builder_set(p->b[n->kind], n->name, NULL, 0);
		p->dirty[n->kind] = 1;
		polres_name_free(p, n);
	}
	free(p->names);
	qsort(nn, k, sizeof(*nn), polres_cmp);
	p->names = nn;
	p->nnames = k;
	p->cursor = 0;
	p->unanswered = 0;
	for (size_t i = 0; i < k; i++)
		p->unanswered += nn[i]->kind == POLRES_BLOCK && !nn[i]->answered;
	if (p->cfg != cfg) {
		cfg_unref(&p->cfg);
		p->cfg = cfg_ref(cfg);
	}
	polres_wait_add(p, cfg);
	if (k > 0)
		log_info("policy resolver: %zu names to keep resolved", k);
	if (p->unanswered == 0)
		polres_ready(p); /* only names dropped or kept: the set is complete already */
}

/* Free replaced resolvers whose lookups have all been answered (checked every tick). */
static void
polres_res_retire(struct polres *p)
{
	p->nres_old = res_free_idle(p->res_old, p->nres_old);
}

/* The DNS* directives changed: new lookups go to a new resolver, those in flight finish on
 * the old one. */
static void
polres_res_replace(struct polres *p, const struct res_conf *conf)
{
	const char *err = NULL;
	struct res *n = NULL;
	struct res **v = realloc(p->res_old, (p->nres_old + 1) * sizeof(*v));
	if (v == NULL)
		return;
	p->res_old = v;
	if (res_new(&n, p->loop, conf, &err) < 0) {
		log_error("policy resolver: %s: the DNS* directives stay as they were",
		          err ? err : "failed");
		return;
	}
	p->res_old[p->nres_old++] = p->res;
	p->res = n;
	polres_res_retire(p);
}

static void
polres_wake(struct ev_loop *loop, void *arg)
{
	struct polres *p = arg;
	pthread_mutex_lock(&p->lock);
	struct cfg **q = p->queued;
	size_t nq = p->nqueued;
	p->queued = NULL;
	p->nqueued = 0;
	pthread_mutex_unlock(&p->lock);
	/* Reloads in quick succession: only the newest table is loaded, but every policy waits
	 * for it (workers may have taken any of them). */
	for (size_t i = 0; i + 1 < nq; i++) {
		polres_wait_add(p, q[i]);
		cfg_unref(&q[i]);
	}
	if (nq > 0) {
		struct cfg *n = q[nq - 1];
		if (res_conf_differs(&p->cfg->dns, &n->dns))
			polres_res_replace(p, &n->dns);
		polres_load(p, n);
		cfg_unref(&n);
		ev_timer_start(loop, &p->tick, 0); /* new names: look them up now */
	}
	free(q);
	if (atomic_load(&p->stop))
		ev_loop_break(loop);
}

static void *
polres_main(void *arg)
{
	struct polres *p = arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	ev_timer_start(p->loop, &p->tick, 0);
	ev_loop_run(p->loop);
	return NULL;
}

int
polres_start(struct polres **pp, struct cfg *cfg)
{
	struct polres *p = calloc(1, sizeof(*p));
	const char *err = NULL;
	if (p == NULL)
		return -1;
	p->magic = POLRES_MAGIC;
	pthread_mutex_init(&p->lock, NULL);
	if (ev_loop_new(&p->loop) < 0 || res_new(&p->res, p->loop, &cfg->dns, &err) < 0 ||
	    pol_addrset_builder_new(&p->b[0]) < 0 || pol_addrset_builder_new(&p->b[1]) < 0 ||
	    ev_async_start(p->loop, polres_wake, p) < 0) {
		log_error("policy resolver: cannot start: %s", err ? err : "out of memory");
		polres_stop(&p);
		return -1;
	}
	ev_timer_init(&p->tick, polres_tick, p);
	polres_load(p, cfg);
	if (pthread_create(&p->thread, NULL, polres_main, p) != 0) {
		log_error("policy resolver: cannot start its thread");
		p->thread = 0;
		polres_stop(&p);
		return -1;
	}
	*pp = p;
	return 0;
}

void
polres_set_cfg(struct polres *p, struct cfg *cfg)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	struct cfg **v = realloc(p->queued, (p->nqueued + 1) * sizeof(*v));
	if (v != NULL) {
		p->queued = v;
		p->queued[p->nqueued++] = cfg_ref(cfg);
	}
	pthread_mutex_unlock(&p->lock);
	if (v == NULL)
		log_error("policy resolver: out of memory: the reloaded ProxyBlock and NoProxy names "
		          "are not resolved");
	ev_async_send(p->loop);
}

int
polres_waker_add(struct polres *p, void (*fn)(void *arg), void *arg)
{
	int rc = -1;
	if (p == NULL)
		return 0;
	pthread_mutex_lock(&p->lock);
	if (p->nwakers < POLRES_WAKERS_MAX) {
		p->wakers[p->nwakers].fn = fn;
		p->wakers[p->nwakers].arg = arg;
		p->nwakers++;
		rc = 0;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

void
polres_waker_remove(struct polres *p, void *arg)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->nwakers; i++) {
		if (p->wakers[i].arg == arg) {
			p->wakers[i] = p->wakers[--p->nwakers];
			break;
		}
	}
	pthread_mutex_unlock(&p->lock);
}

void
polres_stop(struct polres **pp)
{
	struct polres *p = *pp;
	if (p == NULL)
		return;
	if (p->thread) {
		atomic_store(&p->stop, 1);
		ev_async_send(p->loop);
		pthread_join(p->thread, NULL);
	}
	for (size_t i = 0; i < p->nnames; i++)
		if (p->names[i])
			polres_name_free(p, p->names[i]);
	free(p->names);
	res_free(&p->res);
	for (size_t i = 0; i < p->nres_old; i++)
		res_free(&p->res_old[i]);
	free(p->res_old);
	for (int k = 0; k < 2; k++) {
		struct pol_addrset *s = atomic_exchange(&p->set[k], NULL);
		pol_addrset_free(&s);
		pol_addrset_builder_free(&p->b[k]);
	}
	if (p->loop) {
		polres_retire_sweep(p, 1);
		ev_loop_free(&p->loop);
	}
	for (size_t i = 0; i < p->nqueued; i++)
		cfg_unref(&p->queued[i]);
	free(p->queued);
	for (size_t i = 0; i < p->nwaiting; i++)
		cfg_unref(&p->waiting[i]);
	free(p->waiting);
	cfg_unref(&p->cfg);
	pthread_mutex_destroy(&p->lock);
	p->magic = 0;
	free(p);
	*pp = NULL;
}
