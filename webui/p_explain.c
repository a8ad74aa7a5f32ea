/*
 * p_explain.c - "Explain this URL" (issue 11, page 5): a GET form (url, client, method,
 * request header fields) and the walk's steps as a table, and
 * api/explain?url=...&client=...&method=...&fields=... as JSON. The
 * walk itself is the daemon's (webui/ui_explain.h): it does live DNS lookups, so both routes
 * are asynchronous (UI_ASYNC) unless the answer is known at once. Everything shown comes from
 * the request or the config and is escaped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "webui/ui.h"
#include "webui/ui_explain.h"
#include "webui/ui_priv.h"

#define PX_URL_MAX 4096

struct px {
	struct ui_call *call;
	void *handle;
	int in_start;
	int answered;
};

static int
px_is_api(const struct ui_call *call)
{
	return strncmp(call->req.path, "api/", 4) == 0;
}

static void
px_form(struct ui_call *call, const char *url, const char *client, const char *method,
        const char *fields)
{
	static const char *const methods[] = { "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS",
	                                       "TRACE", "PATCH", "CONNECT", "PURGE", NULL };
	struct ui_out *o = &call->resp.body;
	ui_out_puts(o, "<form class=\"explain\" method=\"get\" action=\"");
	ui_out_html(o, call->req.prefix, strlen(call->req.prefix));
	ui_out_puts(o, "explain\">\n<label>URL <input type=\"text\" name=\"url\" size=\"80\" "
	            "placeholder=\"http://host/path, or host:port for CONNECT\" value=\"");
	ui_out_html(o, url, strlen(url));
	ui_out_puts(o, "\"></label>\n<label>Client <input type=\"text\" name=\"client\" "
	            "size=\"24\" value=\"");
	ui_out_html(o, client, strlen(client));
	ui_out_puts(o, "\"></label>\n<label>Method <select name=\"method\">");
	for (size_t i = 0; methods[i]; i++)
		ui_out_printf(o, "<option%s>%s</option>", strcmp(methods[i], method) == 0
		              ? " selected" : "", methods[i]);
	ui_out_puts(o, "</select></label>\n<label>Request header fields <textarea name=\"fields\" "
	            "rows=\"3\" cols=\"60\" placeholder=\"Name: value, one a line (e.g. "
	            "Accept-Encoding: gzip): matched against a Vary'd response's variants\">");
	ui_out_html(o, fields, strlen(fields));
	ui_out_puts(o, "</textarea></label>\n<button type=\"submit\">Explain</button>\n</form>\n");
}

static void
px_html(struct ui_call *call, const struct ui_explain_result *r)
{
	struct ui_out *o = &call->resp.body;
	ui_page_begin(call, "Explain this URL", "explain");
	px_form(call, r->url, r->client, r->method, r->fields);
	ui_out_puts(o, "<h2>");
	ui_out_html(o, r->method, strlen(r->method));
	ui_out_puts(o, " ");
	ui_out_html(o, r->url, strlen(r->url));
	ui_out_puts(o, " from ");
	ui_out_html(o, r->client, strlen(r->client));
	if (*r->fields)
		ui_out_puts(o, " with the request header fields given");
	ui_out_puts(o, "</h2>\n<p class=\"outcome\"><strong>Outcome:</strong> ");
	ui_out_html(o, r->outcome, strlen(r->outcome));
	ui_out_puts(o, "</p>\n");
	if (*r->cache_status) {
		ui_out_puts(o, "<p class=\"cache-status\"><strong>Cache-Status:</strong> <code>");
		ui_out_html(o, r->cache_status, strlen(r->cache_status));
		ui_out_puts(o, "</code></p>\n");
	}
	ui_out_puts(o, "<table class=\"explain\">\n<thead><tr><th>#</th><th>Step</th>"
	            "<th>Verdict</th><th>Detail</th><th>Config line</th></tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < r->nsteps; i++) {
		const struct ui_explain_step *s = &r->step[i];
		ui_out_printf(o, "<tr><td>%zu</td><td>", i + 1);
		ui_out_html(o, s->name, strlen(s->name));
		ui_out_puts(o, "</td><td>");
		ui_out_html(o, s->verdict, strlen(s->verdict));
		ui_out_puts(o, "</td><td>");
		ui_out_html(o, s->detail, strlen(s->detail));
		ui_out_puts(o, "</td><td>");
		if (*s->where) {
			ui_out_puts(o, "<code>");
			ui_out_html(o, s->where, strlen(s->where));
			ui_out_puts(o, "</code>");
		}
		ui_out_puts(o, "</td></tr>\n");
	}
	ui_out_puts(o, "</tbody>\n</table>\n");
	ui_page_end(call);
}

static void
px_json_field(struct ui_out *o, const char *name, const char *v, int comma)
{
	ui_out_printf(o, "%s\"%s\":", comma ? "," : "", name);
	ui_out_json_str(o, v, strlen(v));
}

static void
px_json(struct ui_call *call, const struct ui_explain_result *r)
{
	struct ui_out *o = &call->resp.body;
	ui_resp_json(call);
	ui_out_puts(o, "{");
	px_json_field(o, "url", r->url, 0);
	px_json_field(o, "method", r->method, 1);
	px_json_field(o, "client", r->client, 1);
	px_json_field(o, "fields", r->fields, 1);
	px_json_field(o, "outcome", r->outcome, 1);
	px_json_field(o, "cache_status", r->cache_status, 1);
	ui_out_puts(o, ",\"steps\":[");
	for (size_t i = 0; i < r->nsteps; i++) {
		const struct ui_explain_step *s = &r->step[i];
		ui_out_puts(o, i ? ",{" : "{");
		px_json_field(o, "name", s->name, 0);
		px_json_field(o, "verdict", s->verdict, 1);
		px_json_field(o, "detail", s->detail, 1);
		px_json_field(o, "where", s->where, 1);
		ui_out_puts(o, "}");
	}
	ui_out_puts(o, "]}\n");
}

/* The daemon's answer: render it, then end the call unless start() is still running. */
static void
px_done(void *arg, const struct ui_explain_result *r)
{
	struct px *st = arg;
	struct ui_call *call = st->call;
	st->answered = 1;
	if (r->status != 200)
		ui_page_error(call, r->status, "%s", r->error);
	else if (px_is_api(call) || ui_wants_json(call))
		px_json(call, r);
	else
		px_html(call, r);
	if (!st->in_start) {
		free(st);
		call->hctx = NULL;
		call->cancel = NULL;
		call->done(call);
	}
}

static void
px_cancel(struct ui_call *call)
{
	struct px *st = call->hctx;
	if (st == NULL)
		return;
	call->ops->explain->cancel(st->handle);
	free(st);
	call->hctx = NULL;
}

static int px_run_with(struct ui_call *call, int api, char *fields, long fl);

static int
px_run(struct ui_call *call, int api)
{
	char *fields = malloc(UI_EXPLAIN_FIELDS_MAX);
	if (fields == NULL)
		return ui_page_error(call, 500, "out of memory");
	long fl = ui_arg(call, "fields", fields, UI_EXPLAIN_FIELDS_MAX);
	int rc = px_run_with(call, api, fields, fl);
	free(fields);
	return rc;
}

static int
px_run_with(struct ui_call *call, int api, char *fields, long fl)
{
	char url[PX_URL_MAX], client[128], method[32];
	long ul = ui_arg(call, "url", url, sizeof(url));
	long cl = ui_arg(call, "client", client, sizeof(client));
	long ml = ui_arg(call, "method", method, sizeof(method));
	if (ul >= (long)sizeof(url))
		return ui_page_error(call, 400, "url too long (%zu bytes at most)", sizeof(url) - 1);
	if (cl >= (long)sizeof(client))
		return ui_page_error(call, 400, "bad client address: too long");
	if (ml >= (long)sizeof(method))
		return ui_page_error(call, 400, "unknown method: too long");
	if (fl >= UI_EXPLAIN_FIELDS_MAX)
		return ui_page_error(call, 400, "bad request header fields: longer than %d bytes",
		                     UI_EXPLAIN_FIELDS_MAX - 1);
	if (fl < 0)
		fields[0] = '\0';
	if (cl <= 0)
		snprintf(client, sizeof(client), "%s", call->req.client ? call->req.client : "");
	if (ml <= 0)
		snprintf(method, sizeof(method), "GET");
	if (ul < 0 || (ul == 0 && !api)) {
		if (api)
			return ui_page_error(call, 400, "missing parameter url");
		/* the empty form */
		ui_page_begin(call, "Explain this URL", "explain");
		px_form(call, "", client, method, fields);
		ui_out_puts(&call->resp.body, "<p>Walks the running configuration's decision for a "
		            "URL, a client address and a method, step by step, with the config line "
		            "that decided each step.</p>\n");
		ui_page_end(call);
		return UI_DONE;
	}
	if (call->ops == NULL || call->ops->explain == NULL)
		return ui_page_error(call, 503, "explain is not available");
	struct px *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return ui_page_error(call, 500, "out of memory");
	st->call = call;
	st->in_start = 1;
	call->hctx = st;
	call->cancel = px_cancel;
	st->handle = call->ops->explain->start(call->wctx, url, client, method, fields, px_done,
	                                       st);
	st->in_start = 0;
	if (st->answered) {
		free(st);
		call->hctx = NULL;
		call->cancel = NULL;
		return UI_DONE;
	}
	return UI_ASYNC;
}

static int
ui_page_explain(struct ui_call *call)
{
	return px_run(call, 0);
}

static int
ui_page_api_explain(struct ui_call *call)
{
	return px_run(call, 1);
}

const struct ui_route ui_routes_explain[] = {
	{ "explain", UI_M_GET, ui_page_explain },
	{ "api/explain", UI_M_GET, ui_page_api_explain },
	{ NULL, 0, NULL },
};
