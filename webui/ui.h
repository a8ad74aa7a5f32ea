/*
 * ui.h - the status page's one interface to the daemon (issue 11).
 *
 * webui/ renders; it owns no socket and includes no cache/ or policy/ header. The daemon
 * (daemon/status.c) decides that a request is for the status page (a <Location> with
 * "SetHandler gatehouse-status", addressed to the proxy itself, access granted), reads the
 * request (a POST body too, at most UI_BODY_MAX bytes), and calls ui_handle() on the worker
 * thread that owns the connection. The page's data comes through struct ui_ops, a table of
 * functions the daemon fills; each area of the page has its own table and header:
 *   webui/ui_stats.h    counters, series, top lists, recent requests (daemon/stats.c)
 *   webui/ui_cache.h    cache listing cursor, entry, purge (daemon/uicache.c)
 *   webui/ui_explain.h  the explain walk (daemon/explain.c)
 *
 * Output: the handler fills struct ui_resp (status, type, extra header lines, body); the
 * daemon adds Date, Server, Content-Length, Connection, the security headers of
 * ui_security_headers() and sends it. HEAD gets the head only.
 *
 * Asynchronous pages (explain does a live DNS lookup): a handler may return UI_ASYNC after
 * setting call->cancel; it later fills call->resp and calls call->done(call), on the same
 * thread, exactly once, unless the daemon called call->cancel(call) first (the client went
 * away), after which it must never touch call again.
 */
#ifndef GH_WEBUI_UI_H
#define GH_WEBUI_UI_H

#include <stddef.h>
#include <stdint.h>

#define UI_BODY_MAX 65536u   /* a longer POST body gets 413 before ui_handle is called */

/* ---- output buffer ---- */

struct ui_out {
	char *p;
	size_t len, cap;
	int oom;                 /* an allocation failed: the daemon answers 500 */
};

void ui_out_init(struct ui_out *o);
void ui_out_free(struct ui_out *o);
void ui_out_put(struct ui_out *o, const char *s, size_t n);
void ui_out_puts(struct ui_out *o, const char *s);
void ui_out_printf(struct ui_out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* HTML-escape (& < > " ' become entities; bytes below 0x20 except \t\n, and 0x7f, become
 * U+FFFD) n bytes of s. Every text that comes from a request, the cache or the config goes
 * through this (or ui_out_json_str / ui_out_url_enc). */
void ui_out_html(struct ui_out *o, const char *s, size_t n);
/* A JSON string literal, quotes included, with \u escapes for controls, <, > and &. */
void ui_out_json_str(struct ui_out *o, const char *s, size_t n);
/* Percent-encode for a query component (unreserved characters kept). */
void ui_out_url_enc(struct ui_out *o, const char *s, size_t n);

/* ---- one call ---- */

enum ui_method { UI_GET = 0, UI_HEAD, UI_POST, UI_OTHER };

struct ui_req {
	enum ui_method method;
	const char *path;         /* after the <Location> prefix, without the query: "",
	                           * "api/overview", "cache", "static/ui.css" ... */
	const char *query;        /* raw query text without '?', "" when none */
	const char *body;         /* POST body (application/x-www-form-urlencoded), else "" */
	size_t body_len;
	const char *content_type; /* NULL when absent */
	const char *accept;       /* NULL when absent */
	const char *cookie;       /* the Cookie field, NULL when absent */
	const char *prefix;       /* the <Location> path, "/gatehouse/": for links */
	const char *client;       /* client address as text ("127.0.0.1", "::1") */
	const char *user;         /* the user AuthUserFile verified, or NULL (no auth) */
	int64_t now;              /* wall clock, seconds */
};

struct ui_resp {
	int status;               /* 200 unless set */
	char ctype[64];           /* "text/html; charset=utf-8" unless set */
	char headers[512];        /* extra "Name: value\r\n" lines (Set-Cookie, Location, ...) */
	struct ui_out body;
};

struct ui_ops;

struct ui_call {
	struct ui_req req;
	struct ui_resp resp;
	const struct ui_ops *ops;
	void *wctx;               /* the daemon's per-call context, passed back to every op */
	/* asynchronous pages */
	void (*done)(struct ui_call *call);   /* set by the daemon */
	void (*cancel)(struct ui_call *call); /* set by a handler that returns UI_ASYNC */
	void *hctx;                           /* the handler's own state */
};

enum { UI_DONE = 0, UI_ASYNC = 1 };

/* Answer one call: UI_DONE (resp filled) or UI_ASYNC (see above). Never fails: errors are
 * pages (400 for bad parameters, 403 for a bad CSRF token, 404, 405, 500). */
int ui_handle(struct ui_call *call);

/* The daemon's own refusals before ui_handle (401, 403, 413, 429, 301 ...): resets call->resp
 * and fills it with the error page (JSON for api/ paths) for status and msg. call->req and
 * call->ops must be set. */
void ui_refuse(struct ui_call *call, int status, const char *msg);

/* The reason phrase of a status code the daemon answers with ("Not Found"; "Status" for
 * others): the one table for the status pages, the proxy's own pages and the FTP gateway. */
const char *ui_status_text(int status);

/* Header lines every status page response carries (CSP default-src 'self', nosniff,
 * no-store, Referrer-Policy same-origin), "Name: value\r\n" each. */
const char *ui_security_headers(void);

/* ---- the daemon's table ---- */

struct ui_stats_ops;    /* webui/ui_stats.h */
struct ui_cache_ops;    /* webui/ui_cache.h */
struct ui_explain_ops;  /* webui/ui_explain.h */
struct ui_series_ops;   /* webui/ui_series.h */

struct ui_ops {
	const struct ui_stats_ops *stats;     /* NULL: not available */
	const struct ui_cache_ops *cache;     /* NULL: no cache configured */
	const struct ui_explain_ops *explain;
	const struct ui_series_ops *series;   /* charts, top lists, recent requests (h4) */
	const char *version;
	const char *csrf_secret;  /* 32 random bytes, hex, made at start (sessions end with
	                           * the process) */
};

#endif
