/*
 * p_cache.c - the cache browser (issue 11): search by URL prefix or substring, paged by a
 * cursor; one URL's records (variants, headers, age, freshness, hits); purge one URL, or
 * every URL under a prefix after a confirmation page that shows the count (run in batches on
 * the worker's loop, see ui_cache_purge_start; progress on the cache page). JSON twins under
 * api/: api/cache, api/cache/entry, api/cache/count, api/purge, api/purges.
 *
 * Data comes through struct ui_cache_ops (webui/ui_cache.h, daemon/uicache.c). Every text
 * from the store is attacker-controlled (URLs, header lines): it goes out through
 * ui_out_html / ui_out_json_str / ui_out_url_enc only. GET never changes anything; the
 * purges are POST routes, whose CSRF token the dispatcher checks before these handlers run.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "webui/ui.h"
#include "webui/ui_cache.h"
#include "webui/ui_priv.h"

#define UI_CACHE_PAGE 50       /* items per listing page */
#define UI_CACHE_URL_CAP 8192  /* longest URL accepted from a form */
#define UI_CACHE_KEY_CAP (UI_CACHE_URL_CAP + 64)
#define UI_CACHE_SUB_CAP 256

/* ---- small formatting helpers ---- */

static void
ui_cache_size(struct ui_out *o, uint64_t b)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)b;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		ui_out_printf(o, "%" PRIu64 " B", b);
	else
		ui_out_printf(o, "%.1f %s", v, unit[u]);
}

static void
ui_cache_dur(struct ui_out *o, int64_t s)
{
	const char *sign = "";

	if (s < 0) {
		sign = "-";
		s = -s;
	}
	if (s < 60)
		ui_out_printf(o, "%s%" PRId64 "s", sign, s);
	else if (s < 3600)
		ui_out_printf(o, "%s%" PRId64 "m %" PRId64 "s", sign, s / 60, s % 60);
	else if (s < 86400)
		ui_out_printf(o, "%s%" PRId64 "h %" PRId64 "m", sign, s / 3600, s / 60 % 60);
	else
		ui_out_printf(o, "%s%" PRId64 "d %" PRId64 "h", sign, s / 86400, s / 3600 % 24);
}

static void
ui_cache_time(struct ui_out *o, int64_t t)
{
	char buf[64];
	struct tm tm;
	time_t tt = (time_t)t;

	if (t < 0 || !gmtime_r(&tt, &tm) || !strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm))
		ui_out_puts(o, "-");
	else
		ui_out_puts(o, buf);
}

static void
ui_cache_ttl(struct ui_out *o, int64_t ttl)
{
	if (ttl >= 0) {
		ui_out_puts(o, "<span class=\"ok\">fresh ");
		ui_cache_dur(o, ttl);
	} else {
		ui_out_puts(o, "<span class=\"warn\">stale ");
		ui_cache_dur(o, -ttl);
	}
	ui_out_puts(o, "</span>");
}

static void
ui_cache_hs(struct ui_out *o, const char *s)
{
	ui_out_html(o, s, strlen(s));
}

static void
ui_cache_js(struct ui_out *o, const char *s)
{
	ui_out_json_str(o, s, strlen(s));
}

/* href to the entry page of url */
static void
ui_cache_entry_href(struct ui_call *call, const char *url, size_t n)
{
	struct ui_out *o = &call->resp.body;

	ui_cache_hs(o, call->req.prefix);
	ui_out_puts(o, "cache/entry?url=");
	ui_out_url_enc(o, url, n); /* only unreserved characters and %XX: safe in an attribute */
}

/* The ops, or an error response (UI_DONE already filled) when there is no cache. */
static const struct ui_cache_ops *
ui_cache_ops_or_error(struct ui_call *call)
{
	const struct ui_cache_ops *ops = call->ops ? call->ops->cache : NULL;

	if (!ops || !ops->available(call->wctx)) {
		ui_page_error(call, 503, "no cache is configured (CacheRoot)");
		return NULL;
	}
	return ops;
}

/* Read parameter name (query or POST body) into out; -1 when absent, -2 when too long. */
static long
ui_cache_arg(const struct ui_call *call, const char *name, char *out, size_t cap)
{
	long n = ui_arg(call, name, out, cap);

	if (n < 0) {
		out[0] = 0;
		return -1;
	}
	if ((size_t)n >= cap)
		return -2;
	return n;
}

/* ---- the listing ---- */

static void ui_cache_purges_html(struct ui_call *call, const struct ui_cache_ops *ops);

struct ui_cache_list {
	struct ui_call *call;
	int json;
	long n;
};

static int
ui_cache_row(void *arg, const struct ui_cache_item *it)
{
	struct ui_cache_list *l = arg;
	struct ui_out *o = &l->call->resp.body;

	if (l->json) {
		ui_out_puts(o, l->n ? ",\n{\"url\":" : "\n{\"url\":");
		ui_out_json_str(o, it->url, it->url_len);
		ui_out_printf(o, ",\"status\":%d,\"vary\":%s,\"size\":%" PRIu64 ",\"stored\":%" PRIu64
		              ",\"age\":%" PRId64 ",\"ttl\":%" PRId64 ",\"hits\":%" PRIu64
		              ",\"last_access\":%" PRId64 "}",
		              it->status, it->vary ? "true" : "false", it->size, it->stored, it->age,
		              it->ttl, it->hits, it->last_access);
	} else {
		ui_out_puts(o, "<tr><td class=\"url\"><a href=\"");
		ui_cache_entry_href(l->call, it->url, it->url_len);
		ui_out_puts(o, "\">");
		ui_out_html(o, it->url, it->url_len);
		ui_out_printf(o, "</a></td><td>%d</td><td>", it->status);
		if (it->vary) {
			ui_out_puts(o, "variants</td><td>-</td><td>");
		} else {
			ui_cache_size(o, it->size);
			ui_out_puts(o, "</td><td>");
			ui_cache_size(o, it->stored);
			ui_out_puts(o, "</td><td>");
		}
		ui_cache_dur(o, it->age);
		ui_out_puts(o, "</td><td>");
		if (it->vary)
			ui_out_puts(o, "-");
		else
			ui_cache_ttl(o, it->ttl);
		ui_out_printf(o, "</td><td class=\"num\">%" PRIu64 "</td><td>", it->hits);
		ui_cache_time(o, it->last_access);
		ui_out_puts(o, "</td></tr>\n");
	}
	l->n++;
	return 0;
}

static int
ui_cache_listing(struct ui_call *call, int json)
{
	const struct ui_cache_ops *ops = ui_cache_ops_or_error(call);
	char prefix[2048], sub[UI_CACHE_SUB_CAP], *after = NULL, *next = NULL;
	struct ui_cache_query q;
	struct ui_cache_list l = {call, json, 0};
	struct ui_out *o = &call->resp.body;
	long n;

	if (!ops)
		return UI_DONE;
	after = malloc(UI_CACHE_CURSOR_CAP);
	next = malloc(UI_CACHE_CURSOR_CAP);
	if (!after || !next) {
		free(after);
		free(next);
		return ui_page_error(call, 500, "out of memory");
	}
	if (ui_cache_arg(call, "prefix", prefix, sizeof(prefix)) == -2 ||
	    ui_cache_arg(call, "q", sub, sizeof(sub)) == -2 ||
	    ui_cache_arg(call, "after", after, UI_CACHE_CURSOR_CAP) == -2) {
		free(after);
		free(next);
		return ui_page_error(call, 400, "prefix, q or after is too long");
	}
	memset(&q, 0, sizeof(q));
	q.prefix = prefix;
	q.substr = sub;
	q.after = after;
	q.max = UI_CACHE_PAGE;
	q.next = next;
	if (json) {
		ui_resp_json(call);
		ui_out_puts(o, "{\"items\":[");
	} else {
		ui_page_begin(call, "Cache", "cache");
		ui_cache_purges_html(call, ops);
		ui_out_puts(o, "<form method=\"get\" action=\"");
		ui_cache_hs(o, call->req.prefix);
		ui_out_puts(o, "cache\" class=\"search\">\n<label>URL prefix <input name=\"prefix\" "
		            "size=\"50\" placeholder=\"http://deb.debian.org/debian/\" value=\"");
		ui_cache_hs(o, prefix);
		ui_out_puts(o, "\"></label>\n<label>containing <input name=\"q\" size=\"20\" value=\"");
		ui_cache_hs(o, sub);
		ui_out_puts(o, "\"></label>\n<button type=\"submit\">Search</button>\n</form>\n"
		            "<table class=\"list\"><thead><tr><th>URL</th><th>Status</th><th>Size</th>"
		            "<th>Stored</th><th>Age</th><th>Freshness</th><th>Hits</th>"
		            "<th>Last hit</th></tr></thead>\n<tbody>\n");
	}
	n = ops->list(call->wctx, &q, ui_cache_row, &l);
	if (n < 0) {
		free(after);
		free(next);
		ui_out_free(o);
		ui_out_init(o);
		return ui_page_error(call, 500, "the cache store could not be read");
	}
	if (json) {
		ui_out_puts(o, "\n],\"prefix\":");
		ui_cache_js(o, q.prefix_used);
		ui_out_puts(o, ",\"q\":");
		ui_cache_js(o, sub);
		ui_out_puts(o, ",\"next\":");
		if (next[0])
			ui_cache_js(o, next);
		else
			ui_out_puts(o, "null");
		ui_out_printf(o, ",\"scanned\":%zu,\"count\":%ld", q.scanned, l.n);
		char tok[128];

		/* the token api/purge wants (bound to this session's cookie) */
		if (ui_csrf_token(call, tok, sizeof(tok)) == 0) {
			ui_out_puts(o, ",\"csrf\":");
			ui_cache_js(o, tok);
		}
		ui_out_puts(o, "}\n");
	} else {
		if (!l.n)
			ui_out_puts(o, "<tr><td colspan=\"8\">No entry on this page.</td></tr>\n");
		ui_out_printf(o, "</tbody></table>\n<p class=\"mute\">%ld shown, %zu examined",
		              l.n, q.scanned);
		if (q.prefix_used[0]) {
			ui_out_puts(o, " under <code>");
			ui_cache_hs(o, q.prefix_used);
			ui_out_puts(o, "</code>");
		}
		ui_out_puts(o, ".");
		if (next[0]) {
			ui_out_puts(o, " <a rel=\"next\" href=\"");
			ui_cache_hs(o, call->req.prefix);
			ui_out_puts(o, "cache?prefix=");
			ui_out_url_enc(o, prefix, strlen(prefix));
			ui_out_puts(o, "&amp;q=");
			ui_out_url_enc(o, sub, strlen(sub));
			ui_out_puts(o, "&amp;after=");
			ui_out_url_enc(o, next, strlen(next));
			ui_out_puts(o, "\">Next page &rarr;</a>");
		} else {
			ui_out_puts(o, " End of the listing.");
		}
		ui_out_puts(o, "</p>\n");
		if (q.prefix_used[0]) {
			ui_out_puts(o, "<form method=\"post\" action=\"");
			ui_cache_hs(o, call->req.prefix);
			ui_out_puts(o, "cache/purge\" class=\"purge\">");
			ui_csrf_field(call);
			ui_out_puts(o, "<input type=\"hidden\" name=\"prefix\" value=\"");
			ui_cache_hs(o, q.prefix_used);
			ui_out_puts(o, "\"><button type=\"submit\" class=\"danger\">Purge everything under this "
			            "prefix&hellip;</button></form>\n");
		}
		ui_page_end(call);
	}
	free(after);
	free(next);
	return UI_DONE;
}

static int
ui_page_cache(struct ui_call *call)
{
	return ui_cache_listing(call, ui_wants_json(call));
}

static int
ui_page_api_cache(struct ui_call *call)
{
	return ui_cache_listing(call, 1);
}

/* ---- one entry ---- */

struct ui_cache_ent {
	struct ui_call *call;
	int json;
	long n;
};

static void
ui_cache_record_html(struct ui_cache_ent *e, const struct ui_cache_record *r)
{
	struct ui_out *o = &e->call->resp.body;

	if (r->stub) {
		ui_out_puts(o, "<h2>Varies on <code>");
		ui_out_html(o, r->vary, r->vary_len);
		ui_out_puts(o, "</code></h2>\n<table class=\"kv\">");
	} else if (r->variant) {
		ui_out_printf(o, "<h2>Variant %s</h2>\n<table class=\"kv\">", r->variant_id);
	} else {
		ui_out_puts(o, "<table class=\"kv\">");
	}
	ui_out_printf(o, "<tr><th>Status</th><td>%d</td></tr>\n", r->status);
	if (!r->stub) {
		ui_out_puts(o, "<tr><th>Size</th><td>");
		ui_cache_size(o, r->size);
		ui_out_printf(o, " (%" PRIu64 " bytes)</td></tr>\n<tr><th>Stored</th><td>", r->size);
		ui_cache_size(o, r->stored);
		ui_out_printf(o, " (%" PRIu64 " bytes accounted%s)</td></tr>\n", r->stored,
		              r->compressible ? ", deflated when the store compresses" : "");
	}
	ui_out_puts(o, "<tr><th>Stored at</th><td>");
	ui_cache_time(o, r->response_time);
	ui_out_puts(o, "</td></tr>\n<tr><th>Age</th><td>");
	ui_cache_dur(o, r->age);
	ui_out_puts(o, "</td></tr>\n");
	if (!r->stub) {
		ui_out_puts(o, "<tr><th>Freshness lifetime</th><td>");
		ui_cache_dur(o, r->lifetime);
		ui_out_puts(o, "</td></tr>\n<tr><th>TTL</th><td>");
		ui_cache_ttl(o, r->ttl);
		ui_out_puts(o, "</td></tr>\n<tr><th>Date</th><td>");
		ui_cache_time(o, r->date);
		ui_out_puts(o, "</td></tr>\n<tr><th>Expires</th><td>");
		ui_cache_time(o, r->expires);
		ui_out_puts(o, "</td></tr>\n<tr><th>Last-Modified</th><td>");
		ui_cache_time(o, r->last_modified);
		ui_out_puts(o, "</td></tr>\n");
	}
	ui_out_printf(o, "<tr><th>Hits</th><td>%" PRIu64 "</td></tr>\n<tr><th>Last hit</th><td>",
	              r->hits);
	ui_cache_time(o, r->last_access);
	ui_out_puts(o, "</td></tr>\n</table>\n");
	if (r->headers_len) {
		const char *p = r->headers, *end = r->headers + r->headers_len;

		/* one line each, without the CR (a control: the escaper would show U+FFFD) */
		ui_out_puts(o, "<pre class=\"headers\">");
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *le = nl ? nl : end;

			ui_out_html(o, p, (size_t)(le - p - (le > p && le[-1] == '\r')));
			ui_out_puts(o, "\n");
			p = nl ? nl + 1 : end;
		}
		ui_out_puts(o, "</pre>\n");
	}
}

static void
ui_cache_record_json(struct ui_cache_ent *e, const struct ui_cache_record *r)
{
	struct ui_out *o = &e->call->resp.body;

	ui_out_puts(o, e->n ? ",\n{" : "\n{");
	ui_out_printf(o, "\"kind\":\"%s\",\"variant\":",
	              r->stub ? "vary" : r->variant ? "variant" : "entry");
	if (r->variant)
		ui_cache_js(o, r->variant_id);
	else
		ui_out_puts(o, "null");
	ui_out_puts(o, ",\"vary\":");
	ui_out_json_str(o, r->vary, r->vary_len);
	ui_out_printf(o, ",\"status\":%d,\"size\":%" PRIu64 ",\"stored\":%" PRIu64
	              ",\"response_time\":%" PRId64 ",\"date\":%" PRId64 ",\"expires\":%" PRId64
	              ",\"last_modified\":%" PRId64 ",\"age\":%" PRId64 ",\"lifetime\":%" PRId64
	              ",\"ttl\":%" PRId64 ",\"hits\":%" PRIu64 ",\"last_access\":%" PRId64
	              ",\"headers\":",
	              r->status, r->size, r->stored, r->response_time, r->date, r->expires,
	              r->last_modified, r->age, r->lifetime, r->ttl, r->hits, r->last_access);
	ui_out_json_str(o, r->headers, r->headers_len);
	ui_out_puts(o, "}");
}

static int
ui_cache_record(void *arg, const struct ui_cache_record *r)
{
	struct ui_cache_ent *e = arg;

	if (e->json)
		ui_cache_record_json(e, r);
	else
		ui_cache_record_html(e, r);
	e->n++;
	return 0;
}

/* Read url= and make the cache key; an error page (returns 0) when it cannot. */
static long
ui_cache_key_arg(struct ui_call *call, const struct ui_cache_ops *ops, char *url, char *key)
{
	const char *why = NULL;
	long n = ui_cache_arg(call, "url", url, UI_CACHE_URL_CAP);

	if (n == -1 || (n >= 0 && url[0] == 0)) {
		ui_page_error(call, 400, "url= is missing");
		return -1;
	}
	if (n == -2) {
		ui_page_error(call, 400, "url= is too long");
		return -1;
	}
	if (ops->key(call->wctx, url, key, UI_CACHE_KEY_CAP, &why) < 0) {
		ui_page_error(call, 400, "bad url=: %s", why ? why : "invalid");
		return -1;
	}
	return 0;
}

static int
ui_cache_entry_page(struct ui_call *call, int json)
{
	const struct ui_cache_ops *ops = ui_cache_ops_or_error(call);
	struct ui_cache_ent e = {call, json, 0};
	struct ui_out *o = &call->resp.body;
	char *url, *key;
	long n;

	if (!ops)
		return UI_DONE;
	url = malloc(UI_CACHE_URL_CAP);
	key = malloc(UI_CACHE_KEY_CAP);
	if (!url || !key) {
		free(url);
		free(key);
		return ui_page_error(call, 500, "out of memory");
	}
	if (ui_cache_key_arg(call, ops, url, key) < 0)
		goto out;
	if (json) {
		ui_resp_json(call);
		ui_out_puts(o, "{\"url\":");
		ui_cache_js(o, key);
		ui_out_puts(o, ",\"records\":[");
	} else {
		ui_page_begin(call, "Cache entry", "cache");
		ui_out_puts(o, "<p class=\"url\"><code>");
		ui_cache_hs(o, key);
		ui_out_puts(o, "</code></p>\n");
	}
	n = ops->entry(call->wctx, key, ui_cache_record, &e);
	if (n <= 0) {
		ui_out_free(o);
		ui_out_init(o);
		call->resp.ctype[0] = 0;
		if (n < 0)
			ui_page_error(call, 500, "the cache store could not be read");
		else
			ui_page_error(call, 404, "not in the cache: %.200s", key);
		goto out;
	}
	if (json) {
		ui_out_puts(o, "\n]}\n");
	} else {
		ui_out_puts(o, "<form method=\"post\" action=\"");
		ui_cache_hs(o, call->req.prefix);
		ui_out_puts(o, "cache/purge\" class=\"purge\">");
		ui_csrf_field(call);
		ui_out_puts(o, "<input type=\"hidden\" name=\"url\" value=\"");
		ui_cache_hs(o, key);
		ui_out_puts(o, "\"><button type=\"submit\" class=\"danger\">Purge this entry</button></form>\n");
		ui_page_end(call);
	}
out:
	free(url);
	free(key);
	return UI_DONE;
}

static int
ui_page_cache_entry(struct ui_call *call)
{
	return ui_cache_entry_page(call, ui_wants_json(call));
}

static int
ui_page_api_cache_entry(struct ui_call *call)
{
	return ui_cache_entry_page(call, 1);
}

/* ---- counting and purging ---- */

static int
ui_page_api_cache_count(struct ui_call *call)
{
	const struct ui_cache_ops *ops = ui_cache_ops_or_error(call);
	char prefix[2048], used[2048];
	int more = 0;
	long n;

	if (!ops)
		return UI_DONE;
	if (ui_cache_arg(call, "prefix", prefix, sizeof(prefix)) == -2)
		return ui_page_error(call, 400, "prefix= is too long");
	n = ops->count_prefix(call->wctx, prefix, &more, used, sizeof(used));
	if (n < 0)
		return ui_page_error(call, 500, "the cache store could not be read");
	ui_resp_json(call);
	ui_out_puts(&call->resp.body, "{\"prefix\":");
	ui_cache_js(&call->resp.body, used);
	ui_out_printf(&call->resp.body, ",\"count\":%ld,\"estimate\":%s}\n", n,
	              more ? "true" : "false");
	return UI_DONE;
}

static void
ui_cache_back(struct ui_call *call, const char *prefix)
{
	struct ui_out *o = &call->resp.body;

	ui_out_puts(o, "<p><a href=\"");
	ui_cache_hs(o, call->req.prefix);
	ui_out_puts(o, "cache");
	if (prefix && prefix[0]) {
		ui_out_puts(o, "?prefix=");
		ui_out_url_enc(o, prefix, strlen(prefix));
	}
	ui_out_puts(o, "\">Back to the cache</a></p>\n");
}

/* A purge by prefix runs on the worker's loop in batches (daemon/uicache.c): the call waits
 * for it (UI_ASYNC) and is answered with the count when it ends, or with "in progress" (202)
 * when it still runs after UI_CACHE_PURGE_ANSWER_MS; it then goes on, and the cache page
 * and api/purges show its progress. A client that goes away does not stop it. */
struct ui_cache_pjob {
	struct ui_call *call;
	void *handle;
	int json;
};

static void
ui_cache_purge_info_json(struct ui_out *o, const struct ui_cache_purge_info *p)
{
	ui_out_printf(o, "{\"id\":%u,\"prefix\":", p->id);
	ui_cache_js(o, p->prefix);
	ui_out_printf(o, ",\"purged\":%ld,\"urls\":%" PRIu64 ",\"estimate\":%ld,\"started\":%"
	              PRId64 ",\"finished\":%s,\"failed\":%s,\"finished_at\":%" PRId64 "}",
	              p->removed, p->urls, p->estimate, p->started, p->finished ? "true" : "false",
	              p->failed ? "true" : "false", p->finished);
}

static void
ui_cache_purge_done(void *arg, const struct ui_cache_purge_info *p)
{
	struct ui_cache_pjob *pj = arg;
	struct ui_call *call = pj->call;
	struct ui_out *o = &call->resp.body;

	if (p->failed && !pj->json) {
		ui_page_error(call, 500, "the purge failed after %ld records", p->removed);
	} else if (pj->json) {
		ui_resp_json(call);
		if (p->failed)
			call->resp.status = 500;
		else if (!p->finished)
			call->resp.status = 202;
		ui_cache_purge_info_json(o, p);
		ui_out_puts(o, "\n");
	} else if (!p->finished) {
		call->resp.status = 202;
		ui_page_begin(call, "Purge in progress", "cache");
		ui_out_printf(o, "<p>Purge %u is still running: <strong id=\"purged\">%ld</strong> "
		              "record%s removed so far under <code>", p->id, p->removed,
		              p->removed == 1 ? "" : "s");
		ui_cache_hs(o, p->prefix);
		ui_out_puts(o, "</code>. It goes on in the background; the cache page shows its "
		            "progress.</p>\n");
		ui_cache_back(call, NULL);
		ui_page_end(call);
	} else {
		ui_page_begin(call, "Purged by prefix", "cache");
		ui_out_printf(o, "<p><strong id=\"purged\">%ld</strong> record%s "
		              "removed under <code>", p->removed, p->removed == 1 ? "" : "s");
		ui_cache_hs(o, p->prefix);
		ui_out_puts(o, "</code>.</p>\n");
		ui_cache_back(call, p->prefix);
		ui_page_end(call);
	}
	free(pj);
	call->hctx = NULL;
	call->cancel = NULL;
	call->done(call);
}

static void
ui_cache_purge_cancel(struct ui_call *call)
{
	struct ui_cache_pjob *pj = call->hctx;

	call->ops->cache->purge_detach(pj->handle);
	free(pj);
	call->hctx = NULL;
}

static int
ui_cache_purge_start(struct ui_call *call, const struct ui_cache_ops *ops, const char *prefix,
                     int json)
{
	struct ui_cache_pjob *pj = calloc(1, sizeof(*pj));
	char used[2048], cnt[24];
	const char *why = NULL;
	long estimate = -1;

	if (!pj)
		return ui_page_error(call, 500, "out of memory");
	if (ui_cache_arg(call, "count", cnt, sizeof(cnt)) >= 0 && cnt[0] >= '0' && cnt[0] <= '9')
		estimate = strtol(cnt, NULL, 10);
	pj->call = call;
	pj->json = json;
	/* done is never called inside purge_prefix_start: the call is set up after it */
	pj->handle = ops->purge_prefix_start(call->wctx, prefix, estimate, used, sizeof(used),
	                                     ui_cache_purge_done, pj, &why);
	if (!pj->handle) {
		free(pj);
		return ui_page_error(call, 503, "the purge could not start: %s", why);
	}
	call->hctx = pj;
	call->cancel = ui_cache_purge_cancel;
	return UI_ASYNC;
}

struct ui_cache_plist {
	struct ui_call *call;
	int json;
	size_t n;
};

static void
ui_cache_purge_row(void *arg, const struct ui_cache_purge_info *p)
{
	struct ui_cache_plist *l = arg;
	struct ui_out *o = &l->call->resp.body;

	if (l->json) {
		ui_out_puts(o, l->n ? ",\n" : "\n");
		ui_cache_purge_info_json(o, p);
	} else {
		ui_out_printf(o, "<tr><td class=\"num\">%u</td><td class=\"url\"><code>", p->id);
		ui_cache_hs(o, p->prefix[0] ? p->prefix : "(the whole cache)");
		ui_out_printf(o, "</code></td><td class=\"num\">%ld</td><td class=\"num\">", p->removed);
		if (p->estimate >= 0)
			ui_out_printf(o, "%ld", p->estimate);
		else
			ui_out_puts(o, "-");
		ui_out_printf(o, "</td><td>%s</td></tr>\n",
		              p->failed ? "failed" : p->finished ? "done" : "running");
	}
	l->n++;
}

/* The purges table of the cache page (nothing when there was none). */
static void
ui_cache_purges_html(struct ui_call *call, const struct ui_cache_ops *ops)
{
	struct ui_cache_plist l = {call, 0, 0};
	struct ui_out *o = &call->resp.body;

	if (!ops->purges || ops->purges(call->wctx, NULL, NULL) == 0)
		return;
	ui_out_puts(o, "<h2>Purges by prefix</h2>\n<table class=\"list\" id=\"purges\"><thead><tr>"
	            "<th>#</th><th>Prefix</th><th>Removed</th><th>Counted before</th>"
	            "<th>State</th></tr></thead>\n<tbody>\n");
	ops->purges(call->wctx, ui_cache_purge_row, &l);
	ui_out_puts(o, "</tbody></table>\n");
}

/* GET api/purges: the running and recently finished purges by prefix, newest first. */
static int
ui_page_api_purges(struct ui_call *call)
{
	const struct ui_cache_ops *ops = ui_cache_ops_or_error(call);
	struct ui_cache_plist l = {call, 1, 0};

	if (!ops)
		return UI_DONE;
	ui_resp_json(call);
	ui_out_puts(&call->resp.body, "{\"purges\":[");
	ops->purges(call->wctx, ui_cache_purge_row, &l);
	ui_out_puts(&call->resp.body, "\n]}\n");
	return UI_DONE;
}

/* POST url=  -> purge that URL (all its variants)
 * POST prefix= without confirm=1 -> the count and a confirmation form (nothing purged)
 * POST prefix= confirm=1 -> purge everything under the prefix */
static int
ui_cache_purge(struct ui_call *call, int json)
{
	const struct ui_cache_ops *ops = ui_cache_ops_or_error(call);
	struct ui_out *o = &call->resp.body;
	char prefix[2048], used[2048], confirm[8];
	long pl, n;

	if (!ops)
		return UI_DONE;
	pl = ui_cache_arg(call, "prefix", prefix, sizeof(prefix));
	if (pl == -2)
		return ui_page_error(call, 400, "prefix= is too long");
	if (pl == -1) {
		char *url = malloc(UI_CACHE_URL_CAP), *key = malloc(UI_CACHE_KEY_CAP);

		if (!url || !key) {
			free(url);
			free(key);
			return ui_page_error(call, 500, "out of memory");
		}
		if (ui_cache_arg(call, "url", url, UI_CACHE_URL_CAP) == -1) {
			free(url);
			free(key);
			return ui_page_error(call, 400, "give url= (one entry) or prefix= (many)");
		}
		if (ui_cache_key_arg(call, ops, url, key) == 0) {
			n = ops->purge(call->wctx, key);
			if (n < 0) {
				ui_page_error(call, 500, "the purge failed");
			} else if (json) {
				ui_resp_json(call);
				ui_out_puts(o, "{\"url\":");
				ui_cache_js(o, key);
				ui_out_printf(o, ",\"purged\":%ld}\n", n);
			} else {
				ui_page_begin(call, "Purged", "cache");
				ui_out_puts(o, "<p>");
				ui_out_printf(o, "%ld record%s removed for <code>", n, n == 1 ? "" : "s");
				ui_cache_hs(o, key);
				ui_out_puts(o, "</code>.</p>\n");
				ui_cache_back(call, NULL);
				ui_page_end(call);
			}
		}
		free(url);
		free(key);
		return UI_DONE;
	}
	if (ui_cache_arg(call, "confirm", confirm, sizeof(confirm)) < 0 || strcmp(confirm, "1")) {
		int more = 0;

		n = ops->count_prefix(call->wctx, prefix, &more, used, sizeof(used));
		if (n < 0)
			return ui_page_error(call, 500, "the cache store could not be read");
		if (json) {
			ui_resp_json(call);
			ui_out_puts(o, "{\"prefix\":");
			ui_cache_js(o, used);
			ui_out_printf(o, ",\"count\":%ld,\"estimate\":%s,\"purged\":0,"
			              "\"confirm\":\"repeat with confirm=1 to purge\"}\n",
			              n, more ? "true" : "false");
			return UI_DONE;
		}
		ui_page_begin(call, "Confirm purge by prefix", "cache");
		ui_out_puts(o, "<p>This removes <strong id=\"count\">");
		ui_out_printf(o, "%s%ld</strong> record%s (URLs and their variants) under <code>",
		              more ? "at least " : "", n, n == 1 ? "" : "s");
		ui_cache_hs(o, used[0] ? used : "");
		ui_out_puts(o, used[0] ? "</code>" : "</code> (the whole cache)");
		if (more)
			ui_out_printf(o, " (counted over the first %d URLs only)", UI_CACHE_COUNT_MAX);
		ui_out_puts(o, ".</p>\n<form method=\"post\" action=\"");
		ui_cache_hs(o, call->req.prefix);
		ui_out_puts(o, "cache/purge\" class=\"purge\">");
		ui_csrf_field(call);
		ui_out_puts(o, "<input type=\"hidden\" name=\"prefix\" value=\"");
		ui_cache_hs(o, used);
		ui_out_printf(o, "\"><input type=\"hidden\" name=\"count\" value=\"%ld\">", n);
		ui_out_puts(o, "<input type=\"hidden\" name=\"confirm\" value=\"1\">"
		            "<button type=\"submit\" class=\"danger\">Purge</button></form>\n");
		ui_cache_back(call, used);
		ui_page_end(call);
		return UI_DONE;
	}
	return ui_cache_purge_start(call, ops, prefix, json);
}

static int
ui_page_cache_purge(struct ui_call *call)
{
	return ui_cache_purge(call, ui_wants_json(call));
}

static int
ui_page_api_purge(struct ui_call *call)
{
	return ui_cache_purge(call, 1);
}

const struct ui_route ui_routes_cache[] = {
	{"cache", UI_M_GET, ui_page_cache},
	{"cache/entry", UI_M_GET, ui_page_cache_entry},
	{"cache/purge", UI_M_POST, ui_page_cache_purge},
	{"api/cache", UI_M_GET, ui_page_api_cache},
	{"api/cache/entry", UI_M_GET, ui_page_api_cache_entry},
	{"api/cache/count", UI_M_GET, ui_page_api_cache_count},
	{"api/purge", UI_M_POST, ui_page_api_purge},
	{"api/purges", UI_M_GET, ui_page_api_purges},
	{NULL, 0, NULL},
};
