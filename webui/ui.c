/*
 * ui.c - the status page's core: output buffer and escaping, parameters, the page frame,
 * error pages, and the dispatcher that walks the route tables of every area (issue 11).
 *
 * ui_handle() runs on the worker thread that owns the connection; nothing here keeps state
 * between calls (the route tables and assets are constant). Every byte that comes from a
 * request, the cache or the config reaches the output through ui_out_html, ui_out_json_str or
 * ui_out_url_enc. Pages follow the CSP of ui_security_headers(): no inline script and no
 * style attribute, only static/ui.css and static/ui.js.
 */
#include "webui/ui_priv.h"
#include "webui/ui_assets.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define UI_OUT_MAX (64u * 1024 * 1024) /* a page larger than this is a bug: oom, 500 */

/* ---- output buffer ---- */

void
ui_out_init(struct ui_out *o)
{
	o->p = NULL;
	o->len = o->cap = 0;
	o->oom = 0;
}

void
ui_out_free(struct ui_out *o)
{
	free(o->p);
	ui_out_init(o);
}

/* Room for n more bytes plus a NUL; sets oom on failure (later writes are dropped). */
static int
ui_out_reserve(struct ui_out *o, size_t n)
{
	if (o->oom)
		return -1;
	if (o->len + n + 1 <= o->cap)
		return 0;
	if (o->len + n + 1 > UI_OUT_MAX) {
		o->oom = 1;
		return -1;
	}
	size_t cap = o->cap ? o->cap : 4096;
	while (cap < o->len + n + 1)
		cap *= 2;
	char *p = realloc(o->p, cap);
	if (p == NULL) {
		o->oom = 1;
		return -1;
	}
	o->p = p;
	o->cap = cap;
	return 0;
}

void
ui_out_put(struct ui_out *o, const char *s, size_t n)
{
	if (n == 0 || ui_out_reserve(o, n) != 0)
		return;
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

void
ui_out_puts(struct ui_out *o, const char *s)
{
	ui_out_put(o, s, strlen(s));
}

void
ui_out_printf(struct ui_out *o, const char *fmt, ...)
{
	va_list ap;
	char small[512];
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		ui_out_put(o, small, (size_t)n);
		return;
	}
	if (ui_out_reserve(o, (size_t)n) != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(o->p + o->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	o->len += (size_t)n;
}

void
ui_out_html(struct ui_out *o, const char *s, size_t n)
{
	size_t run = 0; /* bytes copied as they are, written in one go */
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		const char *rep = NULL;
		switch (ch) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&#39;"; break;
		default:
			if ((ch < 0x20 && ch != '\t' && ch != '\n') || ch == 0x7f)
				rep = "\xef\xbf\xbd"; /* U+FFFD */
			break;
		}
		if (rep == NULL)
			continue;
		ui_out_put(o, s + run, i - run);
		ui_out_puts(o, rep);
		run = i + 1;
	}
	ui_out_put(o, s + run, n - run);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 when it is not one. */
static size_t
ui_utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned min;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, min = 0x10000;
	else
		return 0;
	if (len > n)
		return 0;
	unsigned cp = c & (0xff >> (len + 1));
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

void
ui_out_json_str(struct ui_out *o, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	ui_out_put(o, "\"", 1);
	size_t run = 0;
	for (size_t i = 0; i < n;) {
		unsigned char ch = u[i];
		char esc[8];
		const char *rep = NULL;
		size_t adv = 1;
		if (ch == '"')
			rep = "\\\"";
		else if (ch == '\\')
			rep = "\\\\";
		else if (ch == '\n')
			rep = "\\n";
		else if (ch == '\t')
			rep = "\\t";
		else if (ch == '\r')
			rep = "\\r";
		else if (ch < 0x20 || ch == 0x7f || ch == '<' || ch == '>' || ch == '&') {
			snprintf(esc, sizeof(esc), "\\u%04x", ch);
			rep = esc;
		} else if (ch >= 0x80) {
			adv = ui_utf8_len(u + i, n - i);
			if (adv == 0) {
				rep = "\\ufffd"; /* JSON must be UTF-8: a stray byte becomes U+FFFD */
				adv = 1;
			}
		}
		if (rep) {
			ui_out_put(o, s + run, i - run);
			ui_out_puts(o, rep);
			run = i + adv;
		}
		i += adv;
	}
	ui_out_put(o, s + run, n - run);
	ui_out_put(o, "\"", 1);
}

void
ui_out_url_enc(struct ui_out *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			ui_out_put(o, s + i, 1);
		} else {
			char e[3] = { '%', hex[ch >> 4], hex[ch & 15] };
			ui_out_put(o, e, 3);
		}
	}
}

/* ---- parameters ---- */

static int
ui_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode n bytes of a form component ('+' is a space, %XX a byte; a malformed % stays as it
 * is) into out (cap bytes, NUL-terminated, truncated); returns the full decoded length. */
static size_t
ui_form_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		int ch = (unsigned char)s[i];
		if (ch == '+')
			ch = ' ';
		else if (ch == '%' && i + 2 < n && ui_hexval(s[i + 1]) >= 0 &&
		         ui_hexval(s[i + 2]) >= 0) {
			ch = ui_hexval(s[i + 1]) << 4 | ui_hexval(s[i + 2]);
			i += 2;
		}
		if (out && k + 1 < cap)
			out[k] = (char)ch;
		k++;
	}
	if (out && cap > 0)
		out[k < cap ? k : cap - 1] = '\0';
	return k;
}

long
ui_param(const char *qs, size_t n, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	size_t i = 0;
	if (qs == NULL)
		return -1;
	while (i < n) {
		size_t end = i;
		while (end < n && qs[end] != '&' && qs[end] != ';')
			end++;
		size_t eq = i;
		while (eq < end && qs[eq] != '=')
			eq++;
		char key[128];
		size_t kl = ui_form_decode(qs + i, eq - i, key, sizeof(key));
		if (kl == nl && kl < sizeof(key) && memcmp(key, name, nl) == 0) {
			const char *v = eq < end ? qs + eq + 1 : qs + end;
			size_t vn = eq < end ? end - eq - 1 : 0;
			return (long)ui_form_decode(v, vn, out, cap);
		}
		i = end + 1;
	}
	return -1;
}

long
ui_arg(const struct ui_call *call, const char *name, char *out, size_t cap)
{
	const struct ui_req *r = &call->req;
	long n = -1;
	if (r->method == UI_POST && r->body != NULL)
		n = ui_param(r->body, r->body_len, name, out, cap);
	if (n < 0 && r->query != NULL)
		n = ui_param(r->query, strlen(r->query), name, out, cap);
	return n;
}

int
ui_wants_json(const struct ui_call *call)
{
	char v[16];
	if (ui_param(call->req.query, call->req.query ? strlen(call->req.query) : 0, "format", v,
	             sizeof(v)) >= 0)
		return strcmp(v, "json") == 0;
	return call->req.accept != NULL && strstr(call->req.accept, "application/json") != NULL;
}

/* ---- responses ---- */

void
ui_resp_json(struct ui_call *call)
{
	snprintf(call->resp.ctype, sizeof(call->resp.ctype), "application/json");
}

/* Append a header line to resp.headers (dropped, not cut, when it does not fit). */
static void
ui_resp_header(struct ui_call *call, const char *line)
{
	size_t have = strlen(call->resp.headers), n = strlen(line);
	if (have + n < sizeof(call->resp.headers))
		memcpy(call->resp.headers + have, line, n + 1);
}

const char *
ui_security_headers(void)
{
	return "Content-Security-Policy: default-src 'self'\r\n"
	       "X-Content-Type-Options: nosniff\r\n"
	       "Cache-Control: no-store\r\n"
	       "Referrer-Policy: same-origin\r\n"
	       "X-Frame-Options: DENY\r\n";
}

static const char *const ui_nav[][2] = {
	{ "overview", "" }, { "charts", "charts" }, { "top", "top" }, { "cache", "cache" },
	{ "explain", "explain" }, { "recent", "recent" },
};

void
ui_page_begin(struct ui_call *call, const char *title, const char *active)
{
	struct ui_out *o = &call->resp.body;
	const char *pre = call->req.prefix ? call->req.prefix : "/";
	size_t pl = strlen(pre);
	ui_out_puts(o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	            "<title>");
	ui_out_html(o, title, strlen(title));
	ui_out_puts(o, " - Gatehouse</title>\n<link rel=\"stylesheet\" href=\"");
	ui_out_html(o, pre, pl);
	ui_out_puts(o, "static/ui.css\">\n<link rel=\"icon\" type=\"image/svg+xml\" href=\"");
	ui_out_html(o, pre, pl);
	ui_out_puts(o, "static/icon.svg\">\n<script src=\"");
	ui_out_html(o, pre, pl);
	ui_out_puts(o, "static/ui.js\" defer></script>\n</head>\n<body>\n"
	            "<header class=\"bar\"><a class=\"brand\" href=\"");
	ui_out_html(o, pre, pl);
	ui_out_puts(o, "\"><img src=\"");
	ui_out_html(o, pre, pl);
	ui_out_puts(o, "static/icon.svg\" alt=\"\" width=\"20\" height=\"20\"> Gatehouse</a>\n<nav>");
	for (size_t i = 0; i < sizeof(ui_nav) / sizeof(ui_nav[0]); i++) {
		int on = active != NULL && strcmp(active, ui_nav[i][0]) == 0;
		ui_out_puts(o, "<a href=\"");
		ui_out_html(o, pre, pl);
		ui_out_puts(o, ui_nav[i][1]);
		ui_out_printf(o, "\"%s>%s</a>", on ? " class=\"on\" aria-current=\"page\"" : "",
		              ui_nav[i][0]);
	}
	ui_out_puts(o, "</nav>\n<span class=\"who\">");
	if (call->req.user) {
		ui_out_html(o, call->req.user, strlen(call->req.user));
		ui_out_puts(o, " &middot; ");
	}
	if (call->ops && call->ops->version)
		ui_out_html(o, call->ops->version, strlen(call->ops->version));
	ui_out_puts(o, "</span></header>\n<main>\n<h1>");
	ui_out_html(o, title, strlen(title));
	ui_out_puts(o, "</h1>\n");
}

void
ui_page_end(struct ui_call *call)
{
	ui_out_puts(&call->resp.body, "</main>\n</body></html>\n");
}

const char *
ui_status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 407: return "Proxy Authentication Required";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	case 508: return "Loop Detected";
	default: return "Status";
	}
}

int
ui_page_error(struct ui_call *call, int status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ui_out_free(&call->resp.body);
	call->resp.status = status;
	const char *path = call->req.path ? call->req.path : "";
	if (strncmp(path, "api/", 4) == 0 || ui_wants_json(call)) {
		ui_resp_json(call);
		ui_out_puts(&call->resp.body, "{\"error\":");
		ui_out_json_str(&call->resp.body, msg, strlen(msg));
		ui_out_printf(&call->resp.body, ",\"status\":%d}\n", status);
		return UI_DONE;
	}
	snprintf(call->resp.ctype, sizeof(call->resp.ctype), "text/html; charset=utf-8");
	char title[64];
	snprintf(title, sizeof(title), "%d %s", status, ui_status_text(status));
	ui_page_begin(call, title, NULL);
	ui_out_puts(&call->resp.body, "<p class=\"err\">");
	ui_out_html(&call->resp.body, msg, strlen(msg));
	ui_out_puts(&call->resp.body, "</p>\n");
	ui_page_end(call);
	return UI_DONE;
}

void
ui_refuse(struct ui_call *call, int status, const char *msg)
{
	call->resp.headers[0] = '\0';
	ui_page_error(call, status, "%s", msg);
}

/* ---- core routes: assets, the fallback index, the CSRF check ---- */

static int
ui_page_asset(struct ui_call *call)
{
	const struct ui_asset *a = ui_asset_find(call->req.path + 7); /* after "static/" */
	if (a == NULL)
		return ui_page_error(call, 404, "no such file");
	snprintf(call->resp.ctype, sizeof(call->resp.ctype), "%s", a->ctype);
	ui_out_put(&call->resp.body, (const char *)a->data, a->len);
	return UI_DONE;
}

/* The index when no area provides the overview (the tables are walked in order, and the
 * core's table comes last). */
static int
ui_page_index(struct ui_call *call)
{
	if (ui_wants_json(call)) {
		ui_resp_json(call);
		ui_out_puts(&call->resp.body, "{\"version\":");
		const char *v = call->ops && call->ops->version ? call->ops->version : "";
		ui_out_json_str(&call->resp.body, v, strlen(v));
		ui_out_puts(&call->resp.body, "}\n");
		return UI_DONE;
	}
	ui_page_begin(call, "Overview", "overview");
	ui_out_puts(&call->resp.body, "<p>Gatehouse ");
	if (call->ops && call->ops->version)
		ui_out_html(&call->resp.body, call->ops->version, strlen(call->ops->version));
	ui_out_puts(&call->resp.body, ": the figures of this page are not built in.</p>\n");
	ui_page_end(call);
	return UI_DONE;
}

/* GET: the session's CSRF token (for scripts driving the JSON API). POST: 204 when the
 * token sent is right (the dispatcher checked it): lets a script test its session. */
static int
ui_page_csrf(struct ui_call *call)
{
	if (call->req.method == UI_POST) {
		call->resp.status = 204;
		return UI_DONE;
	}
	char tok[128];
	if (ui_csrf_token(call, tok, sizeof(tok)) < 0)
		return ui_page_error(call, 500, "cannot make a CSRF token");
	ui_resp_json(call);
	ui_out_puts(&call->resp.body, "{\"csrf\":");
	ui_out_json_str(&call->resp.body, tok, strlen(tok));
	ui_out_puts(&call->resp.body, "}\n");
	return UI_DONE;
}

const struct ui_route ui_routes_core[] = {
	{ "static/ui.css", UI_M_GET, ui_page_asset },
	{ "static/ui.js", UI_M_GET, ui_page_asset },
	{ "static/icon.svg", UI_M_GET, ui_page_asset },
	{ "api/csrf", UI_M_GET | UI_M_POST, ui_page_csrf },
	{ "", UI_M_GET, ui_page_index },
	{ NULL, 0, NULL },
};

/* Every area's table, walked in this order; the first row whose path matches decides. One
 * line per area; the core's table comes last (its "" index yields to an area's overview). */
static const struct ui_route *const ui_route_tables[] = {
	ui_routes_cache,
	ui_routes_explain,
	ui_routes_stats,
	ui_routes_history,
	ui_routes_core,
	NULL,
};

int
ui_handle(struct ui_call *call)
{
	struct ui_resp *r = &call->resp;
	r->status = 200;
	snprintf(r->ctype, sizeof(r->ctype), "text/html; charset=utf-8");
	r->headers[0] = '\0';
	ui_out_init(&r->body);
	if (call->req.path == NULL)
		call->req.path = "";
	if (call->req.query == NULL)
		call->req.query = "";
	if (call->req.body == NULL) {
		call->req.body = "";
		call->req.body_len = 0;
	}

	const struct ui_route *hit = NULL;
	unsigned allowed = 0;
	for (size_t t = 0; ui_route_tables[t] != NULL && hit == NULL; t++)
		for (const struct ui_route *rt = ui_route_tables[t]; rt->path != NULL; rt++)
			if (strcmp(rt->path, call->req.path) == 0) {
				hit = rt;
				allowed = rt->methods;
				break;
			}
	if (hit == NULL)
		return ui_page_error(call, 404, "no such page: %.200s", call->req.path);
	unsigned want = call->req.method == UI_GET || call->req.method == UI_HEAD ? UI_M_GET
	                : call->req.method == UI_POST ? UI_M_POST : 0;
	if (!(want & allowed)) {
		char allow[64];
		snprintf(allow, sizeof(allow), "Allow: %s%s%s\r\n",
		         allowed & UI_M_GET ? "GET, HEAD" : "",
		         (allowed & UI_M_GET) && (allowed & UI_M_POST) ? ", " : "",
		         allowed & UI_M_POST ? "POST" : "");
		ui_page_error(call, 405, "%s takes %s", call->req.path[0] ? call->req.path : "this page",
		              allowed & UI_M_POST ? (allowed & UI_M_GET ? "GET or POST" : "POST only")
		                                  : "GET only");
		ui_resp_header(call, allow);
		return UI_DONE;
	}
	if (want == UI_M_POST && !ui_csrf_ok(call))
		return ui_page_error(call, 403, "missing or wrong CSRF token: reload the page and "
		                     "try again");
	int rc = hit->fn(call);
	if (rc == UI_DONE && r->body.oom)
		return ui_page_error(call, 500, "out of memory rendering the page");
	return rc;
}
