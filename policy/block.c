/*
 * block.c - the struct pol life cycle, helpers shared by its builders (descriptions, warnings,
 * host-name syntax), and ProxyBlock: building its matchers and matching a host name.
 *
 * ProxyBlock entries fall into four matchers (semantics in pol.h):
 *   "*"                    -> p->block_all
 *   address, subnet        -> p->block_nets (sorted disjoint ranges, see sets.c)
 *   name with a dot        -> p->block_names, key without leading/trailing dot; flags
 *                             SELF|SUB for "example.com", SUB for ".example.com"; RESOLVE
 *                             for names the daemon resolves
 *   word (no dot)          -> p->words, indexed at compile time by their first two letters
 * A host matches a name entry when the entry equals a run of whole labels of the host (SELF:
 * the run may start at the first label; SUB: only after it). The host's runs are hashed
 * incrementally, only for run lengths some entry has, so a match costs at most
 * labels x (longest entry in labels) hash probes whatever the size of the list.
 *
 * The readiness flag (pol_block_ready/_mark) says whether the daemon's set of the resolved
 * addresses of those names is complete enough to decide by it.
 *
 * Callers: the config loader (builders), decide.c and compile.c (matching), the daemon's
 * policy resolver (pol_block_ready_mark).
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/pol_rules.h"

static const char pol_err_nomem[] = "out of memory";
static const char pol_err_state[] = "the policy is already compiled";
static const char pol_err_empty[] = "empty argument";
static const char pol_err_star[] =
	"'*' must stand alone (it blocks everything); for a domain write .example.com";
static const char pol_err_url[] = "a URL is not a host name: list the host (example.com)";
static const char pol_err_addr[] = "not a valid IP address or subnet";
static const char pol_err_block_name[] =
	"not a word, host name, .domain, IP address or subnet (letters, digits, '-', '_' and "
	"dots between labels of at most 63 characters)";

int
pol_new(struct pol **pp)
{
	struct pol *p = calloc(1, sizeof(*p));

	*pp = NULL;
	if (!p)
		return -1;
	p->magic = POL_MAGIC;
	for (size_t i = 0; i < 256; i++)
		p->word_char[i] = -1;
	*pp = p;
	return 0;
}

void
pol_free(struct pol **pp)
{
	struct pol *p = *pp;

	if (!p)
		return;
	for (size_t i = 0; i < p->nremotes; i++) {
		if (p->remotes[i].have_re)
			regfree(&p->remotes[i].re);
	}
	free(p->remotes);
	free(p->parents);
	pol_nameset_free(&p->block_names);
	pol_nameset_free(&p->np_names);
	pol_ranges_free(&p->block_nets);
	pol_ranges_free(&p->np_nets);
	free(p->words);
	free(p->word_idx);
	free(p->warns);
	pol_arena_free(&p->arena);
	p->magic = 0;
	free(p);
	*pp = NULL;
}

int
pol_warn_add(struct pol *p, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (p->nwarns == p->capwarns) {
		size_t cap = p->capwarns ? p->capwarns * 2 : 16;
		const char **v = realloc(p->warns, cap * sizeof(*v));

		if (!v)
			return -1;
		p->warns = v;
		p->capwarns = cap;
	}
	const char *w = pol_arena_strndup(&p->arena, buf, strlen(buf));
	if (!w)
		return -1;
	p->warns[p->nwarns++] = w;
	return 0;
}

/* text is an arena string already; where is copied. */
static const struct pol_why *
pol_why_make(struct pol *p, const char *where, const char *text)
{
	struct pol_why *y = pol_arena_alloc(&p->arena, sizeof(*y));

	if (!y || !text)
		return NULL;
	y->text = text;
	y->line = NULL; /* where is the rule's own line already */
	y->where = where && *where ? pol_arena_strndup(&p->arena, where, strlen(where)) : "";
	y->full = *y->where ? pol_arena_printf(&p->arena, "%s (%s)", text, y->where) : text;
	return y->where && y->full ? y : NULL;
}

const struct pol_why *
pol_why_new(struct pol *p, const char *where, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	if ((size_t)n < sizeof(buf))
		return pol_why_make(p, where, pol_arena_strndup(&p->arena, buf, (size_t)n));
	char *big = pol_arena_alloc(&p->arena, (size_t)n + 1);
	if (!big)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return pol_why_make(p, where, big);
}

const struct pol_why *
pol_desc(struct pol *p, const char *directive, const char *arg, const char *where)
{
	return pol_why_make(p, where, pol_arena_printf(&p->arena, "%s %s", directive, arg));
}

static int
pol_name_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

int
pol_name_canon(const char *text, int allow_lead, char *out, int *lead)
{
	size_t len = strlen(text), o = 0, label = 0;
	const char *s = text;

	*lead = 0;
	if (len > 0 && s[0] == '.') {
		if (!allow_lead)
			return -1;
		*lead = 1;
		s++;
		len--;
	}
	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || len > POL_NAME_MAX)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return -1;
			label = 0;
		} else if (pol_name_char(c)) {
			/* A label neither starts nor ends with '-' (RFC 1123). */
			if ((label == 0 && c == '-') || ++label > POL_LABEL_MAX)
				return -1;
		} else {
			return -1;
		}
		out[o++] = (char)tolower(c);
	}
	if (label == 0 || s[len - 1] == '-')
		return -1;
	out[o] = '\0';
	return (int)o;
}

/* Does text look like an address or subnet rather than a name? (':' or '/', or only digits and
 * dots with at least one dot.) */
static int
pol_block_addr_form(const char *text)
{
	int dot = 0;

	if (strchr(text, ':') || strchr(text, '/'))
		return 1;
	for (const char *s = text; *s; s++) {
		if (*s == '.')
			dot = 1;
		else if (*s < '0' || *s > '9')
			return 0;
	}
	return dot;
}

static int
pol_builder_check(struct pol *p, const char *arg, const char **err)
{
	if (!p || p->magic != POL_MAGIC) {
		*err = pol_err_state;
		return -1;
	}
	if (p->compiled) {
		*err = pol_err_state;
		return -1;
	}
	if (!arg || !*arg) {
		*err = pol_err_empty;
		return -1;
	}
	return 0;
}

static int
pol_block_add_word(struct pol *p, const char *w, size_t len, const char *entry,
                   const char *where, const char **err)
{
	if (p->nwords == p->capwords) {
		size_t cap = p->capwords ? p->capwords * 2 : 8;
		struct pol_word *v = realloc(p->words, cap * sizeof(*v));

		if (!v)
			goto nomem;
		p->words = v;
		p->capwords = cap;
	}
	struct pol_word *e = &p->words[p->nwords];
	e->w = pol_arena_strndup(&p->arena, w, len);
	e->len = len;
	e->desc = pol_desc(p, "ProxyBlock", entry, where);
	e->where = where ? pol_arena_strndup(&p->arena, where, strlen(where)) : "";
	if (!e->w || !e->desc || !e->where)
		goto nomem;
	p->nwords++;
	return 0;
nomem:
	*err = pol_err_nomem;
	return -1;
}

int
pol_block_add(struct pol *p, const char *entry, const char *where, const char **err)
{
	char canon[POL_NAME_MAX + 1];
	int lead, len;

	if (pol_builder_check(p, entry, err) != 0)
		return -1;
	if (strcmp(entry, "*") == 0) {
		if (p->block_all) {
			if (pol_warn_add(p, "%s: ProxyBlock * repeats %s", where ? where : "-",
			                 p->block_all->full) != 0)
				goto nomem;
			return 0;
		}
		p->block_all = pol_desc(p, "ProxyBlock", "*", where);
		if (!p->block_all)
			goto nomem;
		return 0;
	}
	if (strchr(entry, '*')) {
		*err = pol_err_star;
		return -1;
	}
	if (strstr(entry, "://")) {
		*err = pol_err_url;
		return -1;
	}
	if (pol_block_addr_form(entry)) {
		struct pol_net net;
		const char *why;

		if (pol_net_parse(entry, &net, &why) != 0) {
			*err = pol_err_addr;
			return -1;
		}
		const struct pol_why *desc = pol_desc(p, "ProxyBlock", entry, where);
		const char *w = where ? pol_arena_strndup(&p->arena, where, strlen(where)) : "";
		const char *shown = pol_arena_strndup(&p->arena, entry, strlen(entry));
		if (!desc || !w || !shown ||
		    pol_ranges_add(&p->block_nets, &net, desc, w, shown) != 0)
			goto nomem;
		return 0;
	}
	len = pol_name_canon(entry, 1, canon, &lead);
	if (len < 0) {
		*err = pol_err_block_name;
		return -1;
	}
	if (!lead && !memchr(canon, '.', (size_t)len))
		return pol_block_add_word(p, canon, (size_t)len, entry, where, err);

	unsigned flags = lead ? POL_NF_SUB : (POL_NF_SELF | POL_NF_SUB | POL_NF_RESOLVE);
	char *key = pol_arena_strndup(&p->arena, canon, (size_t)len);
	const struct pol_why *desc = pol_desc(p, "ProxyBlock", entry, where);
	struct pol_name *e;
	if (!key || !desc)
		goto nomem;
	unsigned before = 0;
	const struct pol_name *old = pol_nameset_find(&p->block_names,
	                                              pol_hash_bytes(POL_HASH_INIT, key,
	                                                             (size_t)len),
	                                              key, (size_t)len);
	if (old)
		before = old->flags;
	int r = pol_nameset_add(&p->block_names, key, (size_t)len, flags, &e);
	if (r < 0)
		goto nomem;
	if (r == 0) {
		e->where = where ? pol_arena_strndup(&p->arena, where, strlen(where)) : "";
		e->shown = pol_arena_strndup(&p->arena, entry, strlen(entry));
		if (!e->where || !e->shown)
			goto nomem;
	}
	if (!e->desc && (flags & POL_NF_SELF))
		e->desc = desc;
	if (!e->desc_sub)
		e->desc_sub = desc;
	if (r == 1 && (before & flags & (POL_NF_SELF | POL_NF_SUB)) ==
	              (flags & (POL_NF_SELF | POL_NF_SUB))) {
		if (pol_warn_add(p, "%s: ProxyBlock %s adds nothing to %s", where ? where : "-",
		                 entry, ((before & POL_NF_SELF) ? e->desc : e->desc_sub)->full) != 0)
			goto nomem;
	}
	return 0;
nomem:
	*err = pol_err_nomem;
	return -1;
}

size_t
pol_block_count(const struct pol *p)
{
	if (p == NULL)
		return 0;
	return (p->block_all != NULL) + p->block_names.n + p->nwords +
	       (p->compiled ? p->block_nets.nall : p->block_nets.n);
}

const char *
pol_block_name(const struct pol *p, size_t i)
{
	if (!p || p->magic != POL_MAGIC || !p->compiled || i >= p->nblock_resolve)
		return NULL;
	return p->block_resolve[i];
}

void
pol_block_ready_mark(struct pol *p)
{
	if (p && p->magic == POL_MAGIC && p->compiled)
		atomic_store_explicit(&p->block_ready, 1, memory_order_release);
}

int
pol_block_ready(const struct pol *p)
{
	/* Acquire: pairs with the release in pol_block_ready_mark, which the daemon does after
	 * publishing the set, so a reader that sees 1 then loads that set or a newer one. */
	return p && p->magic == POL_MAGIC && p->compiled &&
	       atomic_load_explicit(&p->block_ready, memory_order_acquire);
}

/* ---- matching ---- */

static const struct pol_why *
pol_block_match_runs(const struct pol_nameset *s, const struct pol_host *hv)
{
	for (unsigned a = 0; a < hv->nlabels; a++) {
		uint64_t h = POL_HASH_INIT;
		unsigned maxk = hv->nlabels - a;

		if (maxk > s->max_labels)
			maxk = s->max_labels;
		for (unsigned k = 1; k <= maxk; k++) {
			unsigned t = a + k - 1;
			size_t ls = hv->lab[t], le = hv->lab[t + 1] - 1u;

			if (k > 1)
				h = pol_hash_bytes(h, ".", 1);
			h = pol_hash_bytes(h, hv->name + ls, le - ls);
			if (!(s->label_bits & (1ull << (k < 63 ? k : 63))))
				continue;
			size_t off = hv->lab[a];
			const struct pol_name *e = pol_nameset_find(s, h, hv->name + off, le - off);
			if (!e)
				continue;
			if (a == 0 && (e->flags & POL_NF_SELF))
				return e->desc;
			if (a > 0 && (e->flags & POL_NF_SUB))
				return e->desc_sub;
		}
	}
	return NULL;
}

static unsigned
pol_word_bucket(unsigned char c0, unsigned char c1)
{
	return ((unsigned)c0 * 37u + c1) & (POL_WORD_BUCKETS - 1);
}

/* One-letter words by letter, the others by a hash of their first two letters. */
int
pol_block_words_compile(struct pol *p)
{
	uint32_t count[POL_WORD_BUCKETS] = { 0 };

	free(p->word_idx);
	p->word_idx = malloc((p->nwords ? p->nwords : 1) * sizeof(*p->word_idx));
	if (!p->word_idx)
		return -1;
	for (size_t i = 0; i < p->nwords; i++) {
		const struct pol_word *w = &p->words[i];

		if (w->len == 1) {
			if (p->word_char[(unsigned char)w->w[0]] < 0)
				p->word_char[(unsigned char)w->w[0]] = (int32_t)i;
		} else {
			count[pol_word_bucket((unsigned char)w->w[0], (unsigned char)w->w[1])]++;
		}
	}
	p->word_off[0] = 0;
	for (size_t b = 0; b < POL_WORD_BUCKETS; b++)
		p->word_off[b + 1] = p->word_off[b] + count[b];
	memset(count, 0, sizeof(count));
	for (size_t i = 0; i < p->nwords; i++) {
		const struct pol_word *w = &p->words[i];

		if (w->len < 2)
			continue;
		unsigned b = pol_word_bucket((unsigned char)w->w[0], (unsigned char)w->w[1]);
		p->word_idx[p->word_off[b] + count[b]++] = (uint32_t)i;
	}
	return 0;
}

static const struct pol_why *
pol_block_match_words(const struct pol *p, const struct pol_host *hv)
{
	const char *h = hv->name;
	size_t len = hv->len;

	for (size_t i = 0; i < len; i++) {
		int32_t one = p->word_char[(unsigned char)h[i]];

		if (one >= 0)
			return p->words[one].desc;
		if (i + 1 >= len)
			break;
		unsigned b = pol_word_bucket((unsigned char)h[i], (unsigned char)h[i + 1]);
		for (uint32_t j = p->word_off[b]; j < p->word_off[b + 1]; j++) {
			const struct pol_word *w = &p->words[p->word_idx[j]];

			if (w->len <= len - i && memcmp(h + i, w->w, w->len) == 0)
				return w->desc;
		}
	}
	return NULL;
}

const struct pol_why *
pol_block_match_name(const struct pol *p, const struct pol_host *hv)
{
	const struct pol_why *d = NULL;

	if (p->block_names.n)
		d = pol_block_match_runs(&p->block_names, hv);
	if (!d && p->nwords)
		d = pol_block_match_words(p, hv);
	return d;
}
