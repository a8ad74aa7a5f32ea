/*
 * compile.c - pol_compile(): finalise a struct pol built by the config loader (word index,
 * sorted disjoint subnets, lists of names to resolve) and report the conflicts it can see as
 * warnings for `gatehouse -t`:
 *   - duplicate or redundant entries (found while adding, and subnets inside subnets);
 *   - a NoProxy entry shadowed by ProxyBlock (its hosts are refused, never reached directly);
 *   - `ProxyBlock *` next to other ProxyBlock, NoProxy or ProxyRemote lines;
 *   - NoProxy or ProxyRemoteFallback without any ProxyRemote;
 *   - a ProxyDomain whose hosts ProxyBlock refuses, or that NoProxy does not cover while
 *     parents exist (the PAC file sends browsers there directly, the proxy would not);
 *   - more ProxyRemote lines than a request's failover list holds.
 * After it returns >= 0 the policy is immutable.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/pol_rules.h"

struct pol_warnbuf {
	char *buf;
	size_t size, used;
	int count;
};

/* Append one line (dropped when it does not fit whole). */
__attribute__((format(printf, 2, 3)))
static void
pol_compile_warn(struct pol_warnbuf *wb, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	wb->count++;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || wb->size == 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (wb->used + (size_t)n + 1 > wb->size)
		return;
	memcpy(wb->buf + wb->used, line, (size_t)n);
	wb->used += (size_t)n;
	wb->buf[wb->used] = '\0';
}

static const char *
pol_compile_where(const char *w)
{
	return w && *w ? w : "-";
}

struct pol_compile_ctx {
	struct pol_warnbuf *wb;
	const char *directive;
};

static void
pol_compile_redundant(void *arg, const struct pol_range *dropped, const struct pol_range *kept)
{
	struct pol_compile_ctx *c = arg;

	pol_compile_warn(c->wb, "%s: %s %s adds nothing to %s", pol_compile_where(dropped->where),
	                 c->directive, dropped->shown, kept->desc->full);
}

static int
pol_compile_word_cmp(const void *a, const void *b)
{
	const struct pol_word *const *x = a, *const *y = b;
	int c = strcmp((*x)->w, (*y)->w);

	if (c)
		return c;
	return *x < *y ? -1 : *x > *y;
}

static int
pol_compile_words(struct pol *p, struct pol_warnbuf *wb)
{
	if (pol_block_words_compile(p) != 0)
		return -1;
	if (p->nwords < 2)
		return 0;
	const struct pol_word **v = malloc(p->nwords * sizeof(*v));
	if (!v)
		return -1;
	for (size_t i = 0; i < p->nwords; i++)
		v[i] = &p->words[i];
	qsort(v, p->nwords, sizeof(*v), pol_compile_word_cmp);
	/* Equal words sort in config order; each repeat names the first. */
	for (size_t i = 1, first = 0; i < p->nwords; i++) {
		if (strcmp(v[i]->w, v[first]->w) != 0) {
			first = i;
			continue;
		}
		pol_compile_warn(wb, "%s: ProxyBlock %s adds nothing to %s",
		                 pol_compile_where(v[i]->where), v[i]->w, v[first]->desc->full);
	}
	free(v);
	return 0;
}

static int
pol_compile_resolve_list(struct pol *p, const struct pol_nameset *s, const char ***out,
                         size_t *nout)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++)
		n += (s->v[i].flags & POL_NF_RESOLVE) != 0;
	*out = pol_arena_alloc(&p->arena, (n ? n : 1) * sizeof(**out));
	if (!*out)
		return -1;
	n = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i].flags & POL_NF_RESOLVE)
			(*out)[n++] = s->v[i].key;
	}
	*nout = n;
	return 0;
}

/* Is a host in the domain name (and every host below it) matched by a SUB entry of s that is
 * name itself or one of its suffixes? */
static const struct pol_name *
pol_compile_covers_below(const struct pol_nameset *s, const char *name)
{
	size_t len = strlen(name);

	for (size_t off = 0; off < len;) {
		uint64_t h = pol_hash_bytes(POL_HASH_INIT, name + off, len - off);
		const struct pol_name *e = pol_nameset_find(s, h, name + off, len - off);

		if (e && (e->flags & POL_NF_SUB))
			return e;
		const char *dot = memchr(name + off, '.', len - off);
		if (!dot)
			break;
		off = (size_t)(dot - name) + 1;
	}
	return NULL;
}

static void
pol_compile_conflicts(struct pol *p, struct pol_warnbuf *wb)
{
	struct pol_host hv;
	int others = p->block_names.n || p->nwords || p->block_nets.nall || p->np_names.n ||
	             p->np_nets.nall || p->nremotes;

	if (p->block_all && others)
		pol_compile_warn(wb, "%s refuses every request: the other ProxyBlock, NoProxy and "
		                 "ProxyRemote lines have no effect", p->block_all->full);
	if (p->nremotes == 0 && (p->np_names.n || p->np_nets.nall))
		pol_compile_warn(wb, "%s: NoProxy has no effect without ProxyRemote (every request "
		                 "goes direct already)", p->np_where ? p->np_where : "(config)");
	if (p->nremotes == 0 && p->fallback_direct)
		pol_compile_warn(wb, "%s: ProxyRemoteFallback direct has no effect without "
		                 "ProxyRemote", p->fallback_where ? p->fallback_where : "(config)");
	if (p->nremotes > POL_PARENTS_MAX)
		pol_compile_warn(wb, "%s: more than %d ProxyRemote lines: a request tries at most "
		                 "the first %d that match it", p->remotes[POL_PARENTS_MAX].where,
		                 POL_PARENTS_MAX, POL_PARENTS_MAX);

	/* NoProxy names shadowed by ProxyBlock. */
	for (size_t i = 0; i < p->np_names.n && !p->block_all; i++) {
		const struct pol_name *e = &p->np_names.v[i];
		const struct pol_why *by;

		if (pol_host_prepare(e->key, &hv) != 0)
			continue;
		by = pol_block_match_name(p, &hv);
		if (by) {
			pol_compile_warn(wb, "%s: NoProxy %s is shadowed by %s: its hosts are "
			                 "refused", pol_compile_where(e->where), e->shown, by->full);
			continue;
		}
		if (e->flags & POL_NF_SUB) {
			const struct pol_name *b;

			b = pol_compile_covers_below(&p->block_names, e->key);
			if (b)
				pol_compile_warn(wb, "%s: NoProxy %s is shadowed by %s: the "
				                 "hosts below %s are refused",
				                 pol_compile_where(e->where), e->shown, b->desc_sub->full,
				                 e->key);
		}
	}
	/* NoProxy subnets inside ProxyBlock subnets. */
	for (size_t i = 0; i < p->np_nets.nall && !p->block_all; i++) {
		const struct pol_range *r = &p->np_nets.all[i];
		const struct pol_range *b = pol_ranges_find(&p->block_nets, &r->lo);

		if (b && pol_key_cmp(&r->hi, &b->hi) <= 0)
			pol_compile_warn(wb, "%s: NoProxy %s is shadowed by %s: its addresses are "
			                 "refused", pol_compile_where(r->where), r->shown, b->desc->full);
	}
	/* ProxyDomain. */
	if (p->domain && pol_host_prepare(p->domain + 1, &hv) == 0) {
		const struct pol_why *by = pol_block_match_name(p, &hv);
		const struct pol_name *b = by ? NULL :
		                           pol_compile_covers_below(&p->block_names, p->domain + 1);

		if (by || b)
			pol_compile_warn(wb, "%s redirects to host names that %s refuses",
			                 p->domain_desc->full, (by ? by : b->desc_sub)->full);
		if (p->nremotes && !pol_compile_covers_below(&p->np_names, p->domain + 1))
			pol_compile_warn(wb, "%s is not covered by NoProxy: the proxy may send "
			                 "its hosts to a parent while the PAC file sends browsers "
			                 "to them directly (add NoProxy %s)", p->domain_desc->full,
			                 p->domain);
	}
}

int
pol_compile(struct pol *p, char *warn, size_t warnlen)
{
	struct pol_warnbuf wb = { warn, warnlen, 0, 0 };
	struct pol_compile_ctx bctx = { &wb, "ProxyBlock" }, nctx = { &wb, "NoProxy" };

	if (warn && warnlen)
		warn[0] = '\0';
	else
		wb.size = 0;
	if (!p || p->magic != POL_MAGIC || p->compiled)
		return -1;
	for (size_t i = 0; i < p->nwarns; i++)
		pol_compile_warn(&wb, "%s", p->warns[i]);
	if (pol_compile_words(p, &wb) != 0 ||
	    pol_ranges_compile(&p->block_nets, pol_compile_redundant, &bctx) != 0 ||
	    pol_ranges_compile(&p->np_nets, pol_compile_redundant, &nctx) != 0 ||
	    pol_compile_resolve_list(p, &p->block_names, &p->block_resolve,
	                             &p->nblock_resolve) != 0 ||
	    pol_compile_resolve_list(p, &p->np_names, &p->np_resolve, &p->nnp_resolve) != 0)
		return -1;
	pol_compile_conflicts(p, &wb);
	/* Nothing to resolve: the address set can never hold more than the policy says. */
	atomic_store_explicit(&p->block_ready, p->nblock_resolve == 0, memory_order_relaxed);
	p->compiled = 1;
	return wb.count;
}
