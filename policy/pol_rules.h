/*
 * pol_rules.h - private to policy/: the layout of a struct pol (ProxyBlock, NoProxy,
 * ProxyRemote(Match), ProxyDomain) and the data structures its matchers are built from:
 * an arena for strings, hash sets of names, sorted address ranges, and address keys.
 * Included only by policy/sets.c, block.c, route.c, compile.c, decide.c and pac.c; the public
 * contract is in pol.h.
 *
 * Invariants once pol_compile() has succeeded: nothing in a struct pol changes again, so any
 * number of threads may read it at once; every string a decision returns lives in the arena.
 * The one exception is block_ready, an atomic flag that goes from 0 to 1 once and never back
 * (pol_block_ready_mark).
 */
#ifndef GH_POL_RULES_H
#define GH_POL_RULES_H

#include <regex.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "policy/pol.h"

#define POL_MAGIC 0x504f4c31u          /* "POL1" */
#define POL_ADDRSET_MAGIC 0x41445331u  /* "ADS1" */
#define POL_NAME_MAX 253               /* a DNS name, without the trailing dot */
#define POL_LABEL_MAX 63
#define POL_HOST_BUF 256               /* request host names longer than 255 are invalid */
#define POL_LABELS_MAX POL_HOST_BUF    /* labels in a host of at most 255 bytes ("...") */
#define POL_REGEX_MAX 4096

/* ---- arena: many small strings, freed at once ---- */

struct pol_arena_blk;
struct pol_arena {
	struct pol_arena_blk *head;
};
void *pol_arena_alloc(struct pol_arena *a, size_t n);
char *pol_arena_strndup(struct pol_arena *a, const char *s, size_t n);
__attribute__((format(printf, 2, 3)))
char *pol_arena_printf(struct pol_arena *a, const char *fmt, ...);
void pol_arena_free(struct pol_arena *a);

/* ---- hashing (FNV-1a, 64 bit; extendable byte by byte) ---- */

#define POL_HASH_INIT 0xcbf29ce484222325ull
static inline uint64_t
pol_hash_bytes(uint64_t h, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* ---- name sets: lower-case names (no leading or trailing dot) with flags ---- */

#define POL_NF_SELF 1u      /* matches where the name starts at the host's first label */
#define POL_NF_SUB 2u       /* matches where at least one label precedes the name */
#define POL_NF_RESOLVE 4u   /* listed in the names the daemon resolves */

struct pol_name {
	uint64_t hash;
	const char *key;        /* arena */
	uint32_t len;
	uint16_t labels;
	uint16_t flags;
	const struct pol_why *desc;     /* rule description when matched with POL_NF_SELF */
	const struct pol_why *desc_sub; /* ... with POL_NF_SUB */
	const char *shown;      /* the entry as written (first one), for warnings */
	const char *where;      /* "f:3" of the first one, or "" */
};

struct pol_nameset {
	struct pol_name *v;     /* insertion order */
	size_t n, cap;
	uint64_t *slot;         /* (fingerprint << 32) | (index + 1); 0 is empty */
	size_t mask;
	uint64_t label_bits;    /* bit k (k < 63): an entry of k labels; bit 63: 63 or more */
	unsigned max_labels;
};

/* Add key (already lower case) with flags; an existing key gets the flags or-ed in and keeps
 * its descriptions where set. *out is the entry. Returns 1 when the key existed, 0 when new,
 * -1 when out of memory. */
int pol_nameset_add(struct pol_nameset *s, const char *key, size_t len, unsigned flags,
                    struct pol_name **out);
const struct pol_name *pol_nameset_find(const struct pol_nameset *s, uint64_t hash,
                                        const char *key, size_t len);
void pol_nameset_free(struct pol_nameset *s);

/* Count labels of a name ("a.b.c" = 3). */
unsigned pol_name_labels(const char *s, size_t len);

/* ---- addresses as 128-bit keys: IPv4 as ::ffff:a.b.c.d ---- */

struct pol_key {
	uint64_t hi, lo;
};

/* From a sockaddr (AF_INET or AF_INET6). Returns 0, or -1 for another family. */
int pol_key_from_sa(const struct sockaddr *sa, struct pol_key *k);
/* First and last address of a net. */
void pol_key_range(const struct pol_net *net, struct pol_key *lo, struct pol_key *hi);
static inline int
pol_key_cmp(const struct pol_key *a, const struct pol_key *b)
{
	if (a->hi != b->hi)
		return a->hi < b->hi ? -1 : 1;
	if (a->lo != b->lo)
		return a->lo < b->lo ? -1 : 1;
	return 0;
}

/* The name owning address k in s, or NULL. */
const char *pol_addrset_lookup_key(const struct pol_addrset *s, const struct pol_key *k);

/* ---- address ranges: subnets, sorted and made disjoint by pol_ranges_compile ---- */

struct pol_range {
	struct pol_key lo, hi;
	struct pol_net net;
	const struct pol_why *desc; /* "ProxyBlock 10.0.0.0/8 (f:3)" */
	const char *where;      /* "f:3" or "" */
	const char *shown;      /* the entry as written */
	size_t seq;             /* insertion order */
};

struct pol_ranges {
	struct pol_range *v;    /* insertion order until compiled; then sorted, disjoint */
	size_t n, cap;
	struct pol_range *all;  /* compiled: every entry in insertion order (PAC, warnings) */
	size_t nall;
};

int pol_ranges_add(struct pol_ranges *r, const struct pol_net *net, const struct pol_why *desc,
                   const char *where, const char *shown);
/* Sort and drop ranges inside an earlier wider (or equal) one; report each dropped one through
 * redundant(arg, dropped, kept). Returns 0 or -1 when out of memory. */
int pol_ranges_compile(struct pol_ranges *r,
                       void (*redundant)(void *arg, const struct pol_range *dropped,
                                         const struct pol_range *kept),
                       void *arg);
const struct pol_range *pol_ranges_find(const struct pol_ranges *r, const struct pol_key *k);
void pol_ranges_free(struct pol_ranges *r);

/* ---- the compiled policy ---- */

struct pol_word {
	const char *w;          /* lower case, no dot */
	size_t len;
	const struct pol_why *desc;
	const char *where;
};

enum pol_rkind { POL_RK_ALL, POL_RK_SCHEME, POL_RK_PREFIX, POL_RK_REGEX };

struct pol_remote {
	enum pol_rkind kind;
	const char *pat;        /* SCHEME: lower case; PREFIX: as written */
	size_t pat_len;
	size_t icase_len;       /* PREFIX: the scheme://authority part compared without case */
	int host_dot;           /* PREFIX "scheme://host." alone: also the host without the dot */
	int have_re;
	regex_t re;
	struct pol_parent *parent;
	const struct pol_why *desc; /* "ProxyRemote * http://fw:3128 (f:7)" (no credentials) */
	const char *where;
};

#define POL_WORD_BUCKETS 256

struct pol {
	unsigned magic;
	int compiled;
	struct pol_arena arena;

	/* ProxyBlock */
	const struct pol_why *block_all; /* description of "ProxyBlock *", or NULL */
	struct pol_nameset block_names; /* entries with a dot */
	struct pol_word *words;         /* entries without a dot */
	size_t nwords, capwords;
	uint32_t word_off[POL_WORD_BUCKETS + 1]; /* compiled: bigram buckets of words (len >= 2) */
	uint32_t *word_idx;
	int32_t word_char[256];         /* compiled: one-letter word index for a char, or -1 */
	struct pol_ranges block_nets;
	const char **block_resolve;     /* compiled: names the daemon resolves */
	size_t nblock_resolve;
	/* 1 once the daemon's blocked-address set holds the first answer of every name in
	 * block_resolve (set by pol_compile when there are none): until then, decisions that
	 * would read the set answer POL_WAIT. 0 -> 1 only. */
	atomic_int block_ready;

	/* NoProxy */
	struct pol_nameset np_names;    /* domains (SELF|SUB) and host names (SELF|RESOLVE) */
	struct pol_ranges np_nets;
	const char **np_resolve;
	size_t nnp_resolve;

	/* ProxyRemote, ProxyRemoteMatch */
	struct pol_remote *remotes;
	size_t nremotes, capremotes;
	struct pol_parent **parents;    /* distinct (host, port, credentials), arena-allocated */
	size_t nparents, capparents;
	int fallback_direct;
	const char *np_where;       /* first NoProxy line, for warnings */
	const char *fallback_where; /* ProxyRemoteFallback line, for warnings */

	/* ProxyDomain */
	const char *domain;             /* ".corp.example", lower case */
	size_t domain_len;
	const struct pol_why *domain_desc;

	/* warnings found while adding (duplicates), reported by pol_compile */
	const char **warns;
	size_t nwarns, capwarns;
};

/* Record a builder warning (arena copy). Returns 0 or -1 when out of memory. */
__attribute__((format(printf, 2, 3)))
int pol_warn_add(struct pol *p, const char *fmt, ...);

/* A rule description (arena): text "DIRECTIVE ARG", where as given ("" for NULL), full
 * "DIRECTIVE ARG (WHERE)" or the text alone when where is NULL or "". NULL when out of memory. */
const struct pol_why *pol_desc(struct pol *p, const char *directive, const char *arg,
                               const char *where);
/* The same with the text from a format. */
__attribute__((format(printf, 3, 4)))
const struct pol_why *pol_why_new(struct pol *p, const char *where, const char *fmt, ...);

/* Check a host name as written in a rule: letters, digits, '-', '_', dots between labels,
 * optional leading dot when allow_lead, optional trailing dot; labels of 1..63 bytes, at most
 * 253 bytes. On success writes the lower-case name without leading/trailing dot to out
 * (POL_NAME_MAX + 1 bytes) and returns its length; *lead tells whether it had a leading dot.
 * Returns -1 when invalid. */
int pol_name_canon(const char *text, int allow_lead, char *out, int *lead);

/* ---- matching helpers used by decide.c and compile.c ---- */

/* A request host prepared for matching. */
struct pol_host {
	char name[POL_HOST_BUF];        /* lower case, no brackets, no trailing dot */
	size_t len;
	unsigned nlabels;
	uint16_t lab[POL_LABELS_MAX + 1]; /* start of each label; lab[nlabels] = len + 1 */
	int literal;                    /* AF_INET, AF_INET6 or 0 */
	struct pol_key key;             /* the literal's address */
};

/* Prepare host (NUL-terminated). Returns 0, or -1 when it is empty or too long. */
int pol_host_prepare(const char *host, struct pol_host *hv);

/* Build the ProxyBlock word index (pol_compile). Returns 0 or -1 when out of memory. */
int pol_block_words_compile(struct pol *p);

/* ProxyBlock by name: the description of the first matching entry, or NULL. */
const struct pol_why *pol_block_match_name(const struct pol *p, const struct pol_host *hv);
/* NoProxy by name (Domain and Hostname forms): the description, or NULL. */
const struct pol_why *pol_noproxy_match_name(const struct pol *p, const struct pol_host *hv);

#endif
