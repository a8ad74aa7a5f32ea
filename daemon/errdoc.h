/*
 * errdoc.h - ErrorDocument: the admin's replacements for the proxy's own error pages.
 *
 * Apache's syntax and heuristic for the second argument (issue 9, part 4):
 *   ErrorDocument 403 "<p>Blocked: %{REASON}</p>"     a message: the page body, as text/html
 *   ErrorDocument 502 /etc/gatehouse/502.html          an absolute file path: an HTML template,
 *                                                      read when the config is loaded (Apache
 *                                                      means a local URL-path; Gatehouse serves
 *                                                      no files)
 *   ErrorDocument 403 http://intranet/blocked?u=%{URL} a URL: a 302 redirect to it
 *   ErrorDocument 403 default                          the built-in page again
 * An argument with a space is a message; one starting with '/' a file; "http://" or "https://"
 * a URL; anything else a message. Codes: the 4xx and 5xx statuses the proxy answers itself.
 *
 * Placeholders, in messages, files and URLs: %{STATUS} (403), %{STATUS_TEXT} (Forbidden),
 * %{REASON} (the page's words: "www.casino.example is blocked by ProxyBlock casino"),
 * %{URL} (the request's URL), %{REQUEST_ID}, %{SERVER_NAME}. Values are HTML-escaped in
 * pages and percent-encoded in URLs. Any other "%{NAME}" is a config error; a '%' not followed
 * by '{' is kept as it is.
 *
 * A struct errdoc belongs to one config snapshot: built by the loader, then read-only (any
 * number of threads at once) until errdoc_free.
 */
#ifndef GH_ERRDOC_H
#define GH_ERRDOC_H

#include <stddef.h>

#include "daemon/buf.h"

#define ERRDOC_MAX_BYTES (64 * 1024) /* largest template file */

struct errdoc;

/* One ErrorDocument line: code and arg as written (quotes removed). *ep may be NULL (created
 * here). Returns 0, or -1 with msg holding what is wrong ("ErrorDocument: ..."); the caller adds
 * FILE:LINE. */
int errdoc_directive(struct errdoc **ep, const char *code, const char *arg, char *msg,
                     size_t msglen);
/* Free (NULL is fine) and set *ep to NULL. */
void errdoc_free(struct errdoc **ep);

enum errdoc_kind { ERRDOC_NONE = 0, ERRDOC_PAGE, ERRDOC_REDIRECT };

/* The values of the placeholders. Any may be NULL (then "-"). */
struct errdoc_vars {
	int status;
	const char *status_text;
	const char *reason;
	const char *url;
	const char *req_id;
	const char *server_name;
};

/* Is there an ErrorDocument for status? NONE: no (or e NULL); PAGE: the body (HTML) was
 * appended to out; REDIRECT: the Location value was appended to out. When out cannot take it
 * all, returns NONE and out holds a partial result the caller discards. */
enum errdoc_kind errdoc_render(const struct errdoc *e, const struct errdoc_vars *v,
                               struct buf *out);

/* Append s to b HTML-escaped ('<' '>' '&' '"' '\'' as entities, control bytes as '?').
 * Returns 0 or -1 when b is full. */
int errdoc_html_escape(struct buf *b, const char *s);

#endif
