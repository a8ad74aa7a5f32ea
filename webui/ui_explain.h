/*
 * ui_explain.h - "Explain this URL" (issue 11, page 5): the daemon walks the decision the
 * running config would take for a URL, a client address and a method, step by step, each
 * step naming the config line (FILE:LINE) that decided. daemon/explain.c implements it with
 * the proxy's own functions; webui/p_explain.c renders the steps (HTML and JSON).
 *
 * The walk does a live DNS lookup (and perhaps a reverse lookup of the client), so it is
 * asynchronous: start() returns a handle while it runs and calls done(arg, result) later on the
 * same thread, exactly once, unless cancel(handle) was called first. When the answer is known
 * at once (bad input, a denial before any lookup), done runs inside start(), which then
 * returns NULL. The result is valid only during the done call.
 */
#ifndef GH_WEBUI_UI_EXPLAIN_H
#define GH_WEBUI_UI_EXPLAIN_H

#include <stddef.h>

#define UI_EXPLAIN_STEPS_MAX 32
#define UI_EXPLAIN_FIELDS_MAX 4096 /* the request header fields' text, bytes (NUL included) */

struct ui_explain_step {
	char name[48];        /* what is decided: "URL", "<Proxy> access", "ProxyBlock", ... */
	char verdict[48];     /* short: "allowed", "denied", "blocked", "hit", "miss", ... */
	char detail[768];     /* the rule's words, addresses, parents, cache key ... */
	char where[256];      /* the deciding config line "FILE:LINE" ("" when none, or a
	                       * built-in default) */
};

struct ui_explain_result {
	int status;           /* 200: walked; 400: bad input (error says which); 500: no memory */
	char error[256];
	char url[2048];       /* the URL as normalised (as given when it could not be) */
	char method[24];
	char client[64];
	char fields[UI_EXPLAIN_FIELDS_MAX]; /* the request header fields as given ("" none) */
	char outcome[512];    /* the end of the walk: "403 blocked by ...", "served from the cache
	                       * (fresh)", "forwarded through parent fw:3128" ... */
	char cache_status[256]; /* the Cache-Status field the answer would carry, "" when none */
	size_t nsteps;
	struct ui_explain_step step[UI_EXPLAIN_STEPS_MAX];
};

typedef void ui_explain_done_f(void *arg, const struct ui_explain_result *r);

struct ui_explain_ops {
	/* url: an absolute http:// or ftp:// URL, or host:port for CONNECT; client: an IPv4 or
	 * IPv6 address as text; method: "GET" ... "CONNECT" ("" means GET); fields: request
	 * header fields, "Name: value" a line (LF or CRLF; "" or NULL: none), which the cache
	 * step matches a Vary'd response's variants with (a bad line is a 400 naming it). wctx
	 * is the call's (struct ui_call's wctx). */
	void *(*start)(void *wctx, const char *url, const char *client, const char *method,
	               const char *fields, ui_explain_done_f *done, void *arg);
	void (*cancel)(void *handle);
};

#endif
