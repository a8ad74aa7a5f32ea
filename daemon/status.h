/*
 * status.h - the daemon's side of the status page (issue 11): serves a <Location> with
 * "SetHandler gatehouse-status" through webui/ (ui_handle), with the access rules, Basic
 * authentication (AuthUserFile) and the table of functions webui/ reads its data through.
 *
 * struct status_ctx is what struct ui_call's wctx points to during a call: every op of
 * webui/ui_stats.h, ui_cache.h and ui_explain.h gets it back and finds its worker, the
 * config snapshot of the request and the cache store there.
 */
#ifndef GH_STATUS_H
#define GH_STATUS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct worker;
struct cfg;
struct buf;
struct h1_head;
struct ui_ops;

struct status_ctx {
	struct worker *w;         /* the worker thread running the call */
	struct cfg *cfg;          /* the request's snapshot (refcounted by the connection) */
};

/* ---- proxy.c's side: one status page request, a response source (rsrc.h) ----
 *
 * conn_parse_head() asks status_open() about every origin-form request to the proxy itself;
 * a path under a <Location> with SetHandler gatehouse-status gives a source that holds copies
 * of what the page needs (the head's scratch is gone once the head is parsed). conn_route()
 * hands it the request before the <Proxy> access check (its <Location> rules apply instead).
 * Its head() reads the POST body from the client's buffer (RSRC_F_READS_BODY), checks access
 * and credentials, calls ui_handle() and waits for an asynchronous page or a password check
 * (rsrc_wake); its body() hands the rendered page over as the output has room. rsrc_free()
 * (request reset, connection close) cancels an asynchronous page or a pending check. */
struct rsrc;

/* NULL when path is not under a status <Location> of cfg (or out of memory: *oom = 1). */
struct rsrc *status_open(struct worker *w, struct cfg *cfg, const char *path,
                         const struct h1_head *h, const struct sockaddr_storage *peer,
                         const char *peer_text, int *oom);

/* The worker's cross-thread wake-up (worker_async_cb): finish the status page requests of w
 * whose password the verifier thread has checked. */
void status_worker_poll(struct worker *w);

/* The table webui/ reads through (version, CSRF secret, the areas' ops): made once. */
const struct ui_ops *status_ui_ops(void);

#endif
