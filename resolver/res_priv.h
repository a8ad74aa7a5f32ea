/*
 * res_priv.h - internals shared by the resolver's files: res.c (the c-ares channel on the ev
 * loop, lookups, reverse lookups), cache.c (the name table: hash, LRU, expiry) and name.c
 * (name validation, literals, server addresses, status texts).
 *
 * One struct res_ent per name is in the hash table: either pending (a c-ares query in flight,
 * waiters attached, not in the LRU) or cached (an answer or a negative answer with an expiry
 * time, in the LRU, no waiters). Every live struct res_query is on res->all so res_free can
 * drop them all without calling back.
 */
#ifndef GH_RES_PRIV_H
#define GH_RES_PRIV_H

#include <ares.h>
#include <stdint.h>

#include "daemon/ev.h"
#include "resolver/res.h"

#define RES_MAGIC       0x7e5017e5u
#define RES_ENT_MAGIC   0x7e5e0e07u
#define RES_QUERY_MAGIC 0x7e59e7a1u
#define RES_SOCK_MAGIC  0x7e550c4bu
#define RES_REV_MAGIC   0x7e5fe7e5u
#define RES_DEAD_MAGIC  0xdeadbeefu

#define RES_NAME_MAX 253 /* presentation length, no trailing dot */

/* One address, compact (the cache keeps these, not sockaddr_storage). */
struct res_ip {
	sa_family_t family;      /* AF_INET or AF_INET6 */
	unsigned char b[16];     /* 4 or 16 bytes used */
};

/* A list of waiting queries: an entry's waiters, or a batch being answered. */
struct res_wlist {
	struct res_query *head;
};

struct res_ent {
	unsigned magic;
	struct res *r;
	struct res_ent *hnext;               /* hash chain */
	struct res_ent *lru_prev, *lru_next; /* only while cached */
	uint64_t hash;
	uint64_t expires;                    /* ev_now() ms; only while cached */
	int pending;                         /* a c-ares query is in flight */
	int status;                          /* RES_OK, RES_NXDOMAIN or RES_NODATA while cached */
	unsigned ttl;                        /* seconds, clamped */
	unsigned nip;
	struct res_ip *ip;                   /* nip addresses while cached with RES_OK */
	struct res_wlist waiters;            /* only while pending */
	/* c-ares may answer inside ares_getaddrinfo(): the answer is parked here and handled
	 * after the call returns, so the caller's state is consistent. */
	int starting, parked, parked_status;
	struct ares_addrinfo *parked_ai;
	/* RES_SERVFAIL or RES_REFUSED if a server answered so: c-ares then skips that server
	 * and, when all are used up, reports ARES_ECONNREFUSED, which this corrects. */
	int bad_status;
	size_t len;
	char name[];                         /* lower case, no trailing dot */
};

enum res_qkind { RES_Q_FWD = 1, RES_Q_REV };

struct res_rev;

struct res_query {
	unsigned magic;
	enum res_qkind kind;
	struct res *r;
	struct res_query *all_prev, *all_next; /* res->all */
	struct res_wlist *owner;               /* waiter list we are on, or NULL */
	struct res_query *prev, *next;         /* on owner */
	void *arg;
	res_done_f *cb;                        /* RES_Q_FWD */
	res_name_f *name_cb;                   /* RES_Q_REV */
	struct res_rev *rev;                   /* RES_Q_REV: PTR query in flight */
	struct res_ip client;                  /* RES_Q_REV: the address to confirm */
	char *name;                            /* RES_Q_REV: PTR name being confirmed */
};

struct res_sock {
	unsigned magic;
	struct res *r;
	struct res_sock *next;
	struct ev_io io;
};

struct res {
	unsigned magic;
	struct ev_loop *loop;
	ares_channel ch;
	struct res_conf conf;
	struct ev_timer timer;
	struct res_sock *socks;    /* one per c-ares socket */
	struct res_sock *grave;    /* stopped sockets whose ev_defer failed; freed by res_free */
	int have_ch;               /* ch is initialised */

	struct res_ent **tab;
	size_t nbuckets;           /* power of two */
	size_t nhashed;            /* entries in the table, pending ones included */
	struct res_ent *lru_head, *lru_tail; /* most recently used first */
	unsigned ncached;
	uint64_t hkey[2];          /* per-resolver hash key */

	struct res_query *all;
	struct res_stats st;
	int busy;                  /* nesting depth of our entry points */
	int dying;                 /* res_free was called while busy */
	int destroying;            /* inside res_destroy */
};

/* ---- cache.c ---- */
int res_cache_init(struct res *r);
void res_cache_destroy(struct res *r);
uint64_t res_cache_hash(const struct res *r, const char *key, size_t len);
struct res_ent *res_cache_find(struct res *r, const char *key, size_t len, uint64_t hash);
/* New pending entry in the table; NULL on out of memory. */
struct res_ent *res_cache_add(struct res *r, const char *key, size_t len, uint64_t hash);
/* Pending -> cached (status RES_OK with a (copied) or a negative status); evicts the least
 * recently used beyond cache_max, possibly e itself. Returns -1 (e removed) on no memory. */
int res_cache_store(struct res *r, struct res_ent *e, int status, const struct res_ip *ip,
		unsigned nip, unsigned ttl);
/* Cached and expired -> pending. */
void res_cache_reuse(struct res *r, struct res_ent *e);
/* Cached and used: most recent. */
void res_cache_touch(struct res *r, struct res_ent *e);
/* Unlink from table (and LRU) and free. */
void res_cache_remove(struct res *r, struct res_ent *e);

/* ---- name.c ---- */
/* Literal IPv4, IPv6 or [IPv6]: 1 and *ip set, 0 if not a literal, -1 if a malformed one
 * (bracketed, or containing ':', but not an IPv6 address). */
int res_name_literal(const char *text, struct res_ip *ip);
/* Validate a host name and write its cache key (lower case, no trailing dot) into
 * out[RES_NAME_MAX + 1]. Returns the key length, or -1. */
int res_name_key(const char *text, char *out);
/* "localhost" or a name under .localhost (RFC 6761). */
int res_name_is_localhost(const char *key, size_t len);
void res_ip_to_sockaddr(const struct res_ip *ip, struct sockaddr_storage *ss);

#endif
