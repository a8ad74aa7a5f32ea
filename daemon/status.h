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

struct worker;
struct cfg;

struct status_ctx {
	struct worker *w;         /* the worker thread running the call */
	struct cfg *cfg;          /* the request's snapshot (refcounted by the connection) */
};

#endif
