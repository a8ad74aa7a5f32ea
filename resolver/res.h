/*
 * res.h - asynchronous name resolution on an ev loop: one c-ares channel per loop, a DNS cache
 * with TTLs (floor and ceiling), negative caching, coalesced concurrent lookups of one name,
 * and a short-cut for address literals.
 *
 * c-ares is driven by the loop: ARES_OPT_SOCK_STATE_CB sets epoll interest, ares_process_fd
 * runs on readiness, ares_timeout is folded into an ev_timer. No blocking getaddrinfo anywhere.
 *
 * Callbacks may run synchronously inside res_lookup() (cache hits, literals, and c-ares errors
 * found at once); in that case res_lookup returns NULL. Set your state before calling.
 * A struct res belongs to one loop and one thread.
 */
#ifndef GH_RES_H
#define GH_RES_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct ev_loop;
struct res;
struct res_query;

enum res_status {
	RES_OK = 0,
	RES_NXDOMAIN,   /* the name does not exist */
	RES_NODATA,     /* the name exists, no A/AAAA records */
	RES_SERVFAIL,   /* server failure */
	RES_REFUSED,    /* server refused */
	RES_TIMEOUT,    /* no answer from any server in time */
	RES_BADNAME,    /* not a valid host name */
	RES_ERROR,      /* anything else (out of memory, malformed answers) */
	RES_UNREACHABLE, /* every DNS server refused the connection (ICMP port unreachable) */
	RES_CANCELLED   /* never passed to a callback; for internal use */
};

/* Short text for a status: "NXDOMAIN", "no address records", "SERVFAIL", "REFUSED",
 * "timed out", "bad name", "resolver error", "DNS server unreachable". */
const char *res_strerror(int status);

#define RES_MAX_ADDRS 16
#define RES_MAX_SERVERS 8

struct res_addrs {
	unsigned n;
	unsigned ttl;                           /* seconds, after floor/ceiling */
	struct sockaddr_storage a[RES_MAX_ADDRS]; /* port 0; in c-ares' RFC 6724 order, both
	                                           * families kept when truncated */
};

struct res_conf {
	/* DNS servers; nservers == 0 means /etc/resolv.conf. Port 0 means 53. */
	struct sockaddr_storage servers[RES_MAX_SERVERS];
	unsigned nservers;
	unsigned timeout_ms;  /* per try, default 1500 */
	unsigned tries;       /* default 2 */
	unsigned ttl_min;     /* floor, seconds, default 5 */
	unsigned ttl_max;     /* ceiling, seconds, default 3600 */
	unsigned neg_ttl;     /* negative answers (NXDOMAIN/NODATA), default 30 */
	unsigned cache_max;   /* entries, default 10000; least recently used go first */
};
void res_conf_default(struct res_conf *c);
/* 1 when a and b would make different resolvers (servers, timeouts, TTL bounds, cache). */
int res_conf_differs(const struct res_conf *a, const struct res_conf *b);

/* Parse "ADDR", "ADDR:PORT", "[V6]:PORT" or bare "V6" into a server address.
 * Returns 0 or -1 with *err set to a static message. */
int res_server_parse(const char *text, struct sockaddr_storage *out, const char **err);

/* status is an enum res_status; addrs is valid only during the call and only when RES_OK. */
typedef void res_done_f(void *arg, int status, const struct res_addrs *addrs);

/* Create a resolver on loop. Returns 0, or -1 with *err (static) describing the failure. */
int res_new(struct res **resp, struct ev_loop *loop, const struct res_conf *conf, const char **err);
/* Cancels outstanding queries without calling their callbacks, frees everything. May be called
 * from inside a resolver callback (the channel then goes when the resolver unwinds). */
void res_free(struct res **resp);

/* 1 when no query is live on r (every callback has run or was cancelled): res_free then
 * drops nobody. A resolver replaced on reload is freed once it is idle. */
int res_idle(const struct res *r);

/* Free the idle resolvers of v[0..n) and pack the others to the front; returns how many are
 * left (the list of resolvers replaced on reload, checked periodically). */
size_t res_free_idle(struct res **v, size_t n);

/* Look up A and AAAA for name (a literal IPv4/IPv6 address, bracketed or not, answers at once
 * without DNS). If the answer is available now, cb runs before res_lookup returns and NULL is
 * returned; otherwise the returned handle stays valid until cb runs or res_cancel is called.
 * cb runs exactly once unless cancelled. Concurrent lookups of one name share one query. */
struct res_query *res_lookup(struct res *r, const char *name, res_done_f *cb, void *arg);

/* Reverse lookup with forward confirmation (as Apache's double-reverse for Require host):
 * the PTR name is accepted only if it resolves back to addr. cb gets the name or NULL.
 * As with res_lookup, cb may run before res_reverse returns, which then returns NULL. */
typedef void res_name_f(void *arg, const char *name);
struct res_query *res_reverse(struct res *r, const struct sockaddr *addr, res_name_f *cb, void *arg);

/* Cancel a pending query: its callback will not run. Sets *q to NULL. */
void res_cancel(struct res_query **q);

/* Counters for the status page. */
struct res_stats {
	uint64_t lookups, cache_hits, cache_neg_hits, coalesced, queries, failures;
	unsigned cache_entries;
};
void res_stats_get(const struct res *r, struct res_stats *out);

#endif
