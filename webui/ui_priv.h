/*
 * ui_priv.h - what the pages of webui/ share: routing, the page frame, parameters, CSRF.
 * Implemented in webui/ui.c (dispatcher, frame, parameters) and webui/auth.c (CSRF, sessions).
 *
 * Each page or API endpoint is one handler, int ui_page_NAME(struct ui_call *call) returning
 * UI_DONE or UI_ASYNC (see ui.h), listed in the route table of ui.c.
 */
#ifndef GH_WEBUI_UI_PRIV_H
#define GH_WEBUI_UI_PRIV_H

#include "webui/ui.h"

typedef int ui_page_f(struct ui_call *call);

/* Route table row: path (relative to the <Location> prefix, exact match; "" is the
 * overview), the methods it takes (UI_M_GET covers HEAD), and the handler. A POST route
 * checks the CSRF token before its handler runs (403 page when it is missing or wrong). */
#define UI_M_GET  0x1u
#define UI_M_POST 0x2u
struct ui_route {
	const char *path;
	unsigned methods;
	ui_page_f *fn;
};

/* Each area lists its routes in its own table, ended by a row with path NULL; ui.c's
 * dispatcher walks the tables it names (ui_route_tables in ui.c: one line per area). */
extern const struct ui_route ui_routes_core[];    /* ui.c: static assets, ?auto ... */
extern const struct ui_route ui_routes_stats[];   /* overview, charts, top, recent, metrics */
extern const struct ui_route ui_routes_cache[];   /* cache browser, entry, purge */
extern const struct ui_route ui_routes_explain[]; /* explain */
extern const struct ui_route ui_routes_history[]; /* p_history.c: charts, top, recent */

/* The HTML frame of every page: doctype, <head> with the embedded CSS and JS
 * (static/ui.css, static/ui.js under the prefix), the navigation bar with `active` marked
 * (one of "overview", "charts", "top", "cache", "explain", "recent"), then <main>.
 * ui_page_end closes it. Titles are escaped. */
void ui_page_begin(struct ui_call *call, const char *title, const char *active);
void ui_page_end(struct ui_call *call);

/* An error page (or JSON {"error": ...} when the path starts with "api/") with status. */
int ui_page_error(struct ui_call *call, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Set a JSON response (Content-Type application/json). */
void ui_resp_json(struct ui_call *call);

/* Does the client want JSON (Accept: application/json, or ?format=json)? */
int ui_wants_json(const struct ui_call *call);

/* Look up parameter name in a query or form body (a=b&c=d, '+' is a space, %XX decoded).
 * Returns the decoded length and a NUL-terminated copy in out (truncated to cap - 1), or -1
 * when absent. A parameter given twice: the first. */
long ui_param(const char *qs, size_t n, const char *name, char *out, size_t cap);
/* ... from the query, or for a POST from the body. */
long ui_arg(const struct ui_call *call, const char *name, char *out, size_t cap);

/* CSRF (webui/auth.c): the token is an HMAC-SHA256 of the session id (cookie gh_session,
 * HttpOnly, SameSite=Strict, Path=prefix, set on the first page when missing) under
 * ops->csrf_secret. ui_csrf_field writes <input type="hidden" name="csrf" value="...">;
 * ui_csrf_token the bare token (for the JSON API: api/overview carries it). */
void ui_csrf_field(struct ui_call *call);
int ui_csrf_token(struct ui_call *call, char *out, size_t cap);
int ui_csrf_ok(const struct ui_call *call);

#endif
