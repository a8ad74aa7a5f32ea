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

/* ---- proxy.c's side: one status page request (a local response source) ----
 *
 * conn_parse_head() asks status_req_new() about every origin-form request to the proxy
 * itself; a path under a <Location> with SetHandler gatehouse-status gives a status_req that
 * holds copies of what the page needs (the head's scratch is gone once the head is parsed).
 * conn_route() then sets the phase to CP_STATUS and conn_drive() calls status_step(), which
 * reads the POST body from the client's buffer, checks access and credentials, calls
 * ui_handle() and queues the response into the client's output, a slice at a time.
 * status_req_free() (request reset, connection close) cancels an asynchronous page. */
struct status_req;

/* NULL when path is not under a status <Location> of cfg (or out of memory: *oom = 1). */
struct status_req *status_req_new(struct worker *w, struct cfg *cfg, const char *path,
                                  const struct h1_head *h, const struct sockaddr_storage *peer,
                                  const char *peer_text, int *oom);
void status_req_free(struct status_req **sp);

struct status_io {
	struct buf *in, *out;     /* the client's buffers */
	int read_eof;             /* the client closed its side */
	int close_after;          /* in: the connection closes after this response; out: set
	                           * when the request body could not be read (413, 400) */
	int is_head;
	const char *req_id;
	uint64_t bytes_out, body_out;   /* out: bytes queued, of which body */
};
enum { STATUS_WAIT = 0, STATUS_PROGRESS = 1, STATUS_END = 2 };
/* One step: STATUS_WAIT (needs client input, or an asynchronous page), STATUS_PROGRESS,
 * STATUS_END (the whole response is queued). wake is called (on the worker) when an
 * asynchronous page completes. */
int status_step(struct status_req *s, struct status_io *io);
void status_set_wake(struct status_req *s, void (*wake)(void *arg), void *arg);
int status_wants_body(const struct status_req *s);
/* For the access log once the response is queued. */
int status_resp_code(const struct status_req *s);
const char *status_resp_ctype(const struct status_req *s);
const char *status_user(const struct status_req *s);   /* "-" when none */

/* The table webui/ reads through (version, CSRF secret, the areas' ops): made once. */
const struct ui_ops *status_ui_ops(void);

#endif
