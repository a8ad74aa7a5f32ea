/*
 * cachereq.h - the shared HTTP cache (cache/cache.h) inside the proxy: the process-wide store,
 * and the per-request cache work that proxy.c hooks into its state machine.
 *
 * The store is opened once by main.c (cachereq_open, after the privilege drop) and shared by
 * every worker; each worker thread lazily gets its own cache_reader. A maintenance thread
 * calls cache_store_maintain() about once a second. Everything here is inert unless the
 * config has a CacheRoot and a CacheEnable prefix matches the URL.
 *
 * Per request (proxy.c, one worker thread): cachereq_begin() after the ACL and the policy
 * decision, before name resolution, says whether to forward (possibly as a revalidation, with
 * a replacement upstream head), to serve from the cache, or to answer locally (only-if-cached
 * 504, PURGE). On the forwarded path, cachereq_response() sees the final response head
 * (storability, 304 merge, invalidation), cachereq_fill_data() the decoded body bytes, and
 * cachereq_response_done() the end of the body (commit). cachereq_free() aborts whatever is
 * unfinished (a truncated body is never stored).
 */
#ifndef GH_CACHEREQ_H
#define GH_CACHEREQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cache/cache.h"
#include "daemon/buf.h"
#include "daemon/cfg.h"
#include "daemon/h1.h"

struct creq;
struct cache_store;

/* Open the store named by cfg's CacheRoot (nothing to do without one: returns 0). Returns 0,
 * or -1 with a message in err. Starts the maintenance thread. Main thread only. */
int cachereq_open(const struct cfg *cfg, char *err, size_t errlen);
/* Stop maintenance, free the readers and close the store (after the workers have stopped). */
void cachereq_close(void);
/* The open store, or NULL (no CacheRoot): for the status page (daemon/uicache.c). */
struct cache_store *cachereq_store(void);
/* The store's counters (cache_store_stats; takes its write mutex briefly), for the status
 * page. Returns -1 when no store is open. Any thread. */
struct cache_stats;
int cachereq_store_stats(struct cache_stats *st);

enum cachereq_verdict {
	CQ_FORWARD = 0, /* go to the origin (cachereq_uphead may replace the upstream head) */
	CQ_SERVE,       /* serve from the cache: cachereq_serve_head, then cachereq_serve_body */
	CQ_LOCAL,       /* answer locally: status in *status (Cache-Status: cachereq_status_line) */
	CQ_WAIT,        /* collapsed: wait for another request's fill (cachereq_set_wake), then
	                 * cachereq_serve_body says what to do */
	CQ_REFETCH      /* cachereq_response: drop this response and send the client's original
	                 * request again (a 304 whose validators match nothing stored) */
};

/* The function that wakes a waiting (collapsed) request; called on the request's worker
 * thread from inside other processing (another request's, or cachereq_worker_poll), so it
 * should only schedule work. */
void cachereq_set_wake(struct creq *q, void (*fn)(void *), void *arg);
/* The waiting request's client speaks HTTP/1.minor (1: a body without length is sent
 * chunked; 0: it ends with the connection, see cachereq_close_delimited). */
void cachereq_set_minor(struct creq *q, int minor);
/* After cachereq_serve_head: the body ends with the connection (close it afterwards). */
int cachereq_close_delimited(const struct creq *q);

/* Collapsed forwarding across workers: worker wid's loop can be woken from any thread with
 * kick(arg) (an ev_async_send); on that wake-up the worker calls cachereq_worker_poll(wid)
 * on its own thread, which wakes its waiting requests whose fill changed. Attach before the
 * worker serves, detach after its connections are gone. */
void cachereq_worker_attach(unsigned wid, void (*kick)(void *), void *arg);
void cachereq_worker_detach(unsigned wid);
void cachereq_worker_poll(unsigned wid);

/* The client of a forwarded request went away in the middle of the response body: returns 1
 * when the exchange is to go on without it so that the fill completes (the response is being
 * stored, and other requests follow the fill, or the rest of the body, rest bytes after got,
 * is known and small: at most 1 MiB or under a quarter of the whole); 0: drop it. */
int cachereq_outlive_client(const struct creq *q, int64_t rest, uint64_t got);

/* Start the cache work of a request after the ACL and policy allowed it. method is the
 * request method token, url the absolute URL as url_normalize() wrote it (daemon/url.h; it
 * is keyed as it is), head the upstream header block ("Name: value" lines, as forwarded),
 * peer the client. *out is NULL when the cache has nothing to do with this request. wid is
 * the worker's id (for its reader). */
enum cachereq_verdict cachereq_begin(struct creq **out, unsigned wid, const struct cfg *cfg,
                                     const char *method, const char *url, const char *head,
                                     size_t head_len, int *status);

/* q is the proxy's own background refresh (stale-while-revalidate), not a client's request:
 * it is left out of the hit ratio (lookups and hits). */
void cachereq_set_background(struct creq *q);

/* A replacement upstream head for a revalidation (the client's If-* and Range dropped, the
 * stored validators added), or NULL: keep the original. Ownership passes to the caller. */
char *cachereq_take_uphead(struct creq *q, size_t *len);

/* stale-while-revalidate: when q is being served stale within its window, the request that
 * refreshes the entry in the background ("GET URL HTTP/1.1", the client's fields minus
 * If-*, Range, Cache-Control, Pragma, Via and Max-Forwards, plus "Cache-Control: max-age=0"
 * and "Connection: close"), malloc'd into *out; -1 otherwise, or when a refresh of the same
 * URL was started by this worker in the last 10 seconds. */
int cachereq_refresh_request(struct creq *q, const char *url, char **out, size_t *len);

/* The access-log action ("TCP_HIT", "TCP_MISS", ...) of the outcome so far. */
const char *cachereq_action(const struct creq *q);

/* The "Cache-Status: ...\r\n" line for the outcome so far, NUL-terminated (static to q). */
const char *cachereq_status_line(struct creq *q);

/* The access log's copy of the response head (LogFormat %{Cache-Status}o), told the truth at
 * the end of the request: the head's Cache-Status said "stored" when the fill began with a
 * known length, and said nothing of a fill without one; whether the entry really got
 * committed is known only now (a body cut short, or refused by the store, is not stored).
 * Returns a malloc'd copy of head with its Cache-Status line rewritten (*outlen set) when
 * that differs, else NULL (keep head). */
char *cachereq_log_resphead(struct creq *q, const char *head, size_t len, size_t *outlen);
/* The final response head of a forwarded request arrived (h, fields valid during the call).
 * Returns CQ_SERVE when the stored entry is to be served instead (304 to a revalidation, or
 * an error with stale-if-error): the caller drops the upstream response and serves;
 * CQ_REFETCH when the 304 to our revalidation carries an ETag or Last-Modified that differs
 * from the stored entry's (RFC 9111 4.3.4: it freshens nothing): the caller drops it and
 * sends the client's original request head (without the cache's validators) once more, and
 * that response is relayed and stored as on a miss; else CQ_FORWARD (the response is
 * relayed, and stored when storable). */
enum cachereq_verdict cachereq_response(struct creq *q, const struct h1_head *h);

/* The origin could not be reached or failed before answering (the proxy would send a 5xx of
 * its own): returns 1 when the stale entry being revalidated is to be served instead
 * (stale-if-error, CacheStaleOnError), else 0. */
int cachereq_stale_on_error(struct creq *q);

/* Decoded body bytes of the relayed response (never chunk framing). */
void cachereq_fill_data(struct creq *q, const char *p, size_t n);

/* The relayed body ended completely: commit the fill if any. */
void cachereq_response_done(struct creq *q);

/* Serving: queue the status line and fields (stored fields, Age, Cache-Status,
 * Content-Length) without the final CRLF; the caller adds Via, Connection and the CRLF.
 * is_head: no body follows. Sets *status. Returns 0, or -1 when the head does not fit. */
int cachereq_serve_head(struct creq *q, struct buf *out, int is_head, int *status,
                        char *ctype, size_t ctype_len);

/* Move more of the stored body into out (chunk by chunk, as room allows). Returns 1 on
 * progress (*moved bytes), 0 when out has no room for the next chunk (or, collapsed, the next
 * chunk is not stored yet), 2 when the body is complete, -1 when the entry disappeared or is
 * damaged or the fill followed failed (abort the response). A collapsed request also gets 3:
 * its head is ready (call cachereq_serve_head, then this again), or 4: forward on your own. */
int cachereq_serve_body(struct creq *q, struct buf *out, size_t *moved);

/* Free the request's cache state; an unfinished fill is aborted. NULL is fine. */
void cachereq_free(struct creq **qp);

/* ---- the status page's explain (daemon/explain.c) ---- */

/* What cachereq_begin would decide for a request now, decided by the same code
 * (cachereq_judge) without acting on it: no fill joined, no entry claimed, nothing counted
 * (a hit's LRU touch is queued as for any lookup). */
struct cachereq_probe {
	int configured;          /* a store is open (CacheRoot) */
	int enabled;             /* a CacheEnable prefix matches and no CacheDisable one */
	const char *prefix;      /* the deciding CacheEnable prefix, or the CacheDisable one
	                          * (by_disable), NULL when none matches (owned by the config) */
	int by_disable;
	const char *rule_where;  /* its "FILE:LINE", or NULL */
	int method_ok;           /* GET or HEAD: the store is consulted */
	char key[2048];          /* the cache key */
	int key_truncated;
	int lookup;              /* CACHE_HIT, CACHE_MISS, CACHE_VARY_MISS; -1: not looked up */
	struct cache_decision dec;       /* when looked up; dec.reason says why */
	enum cache_outcome outcome;
	const char *action;      /* "TCP_HIT", "TCP_MISS", ... */
	/* the stored entry (lookup == CACHE_HIT) */
	int status;
	int64_t response_time;
	uint64_t body_size;
	char vary[256];          /* its normalised Vary spec, "" when none */
	char etag[128];
	unsigned char mkey[64];  /* the record it hit (a Vary'd URL's variant: hash || Vary
	                          * hash), so that a listing of the variants can say which */
	size_t mkeylen;
	/* "Gatehouse; hit; ttl=12" as the answer would carry it (a forwarded request's later
	 * fwd-status and stored are added when the origin answers) */
	char cache_status[256];
};

/* Fill *out for method, url (normalised), head (the request fields). Returns 0, or -1 out of
 * memory or without a reader (out then says what was known). */
int cachereq_probe(unsigned wid, const struct cfg *cfg, const char *method, const char *url,
                   const char *head, size_t head_len, struct cachereq_probe *out);

#endif
