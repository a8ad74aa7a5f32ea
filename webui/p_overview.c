/*
 * p_overview.c - the overview page (route ""), its JSON (api/overview) and its plain-text
 * form for scripts (?auto, as Apache's mod_status).
 *
 * One struct ui_overview (ui_stats.h) is read per call and rendered three ways. The HTML
 * works without JavaScript; every figure that changes is a <span data-ov="KEY">, and
 * api/overview's "display" object holds the same text under the same KEY, so that ui.js
 * refreshes a figure by setting the span's text (no formatting in the script).
 * Everything from the config, the network or the cache goes through ui_out_html /
 * ui_out_json_str; ?auto strips control characters from its values so each stays one line.
 */
#include "webui/ui_priv.h"
#include "webui/ui_stats.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Figures of the page, each with its key (data-ov, api/overview's "display"). */
enum ui_ov_id {
	OV_UPTIME, OV_WORKERS, OV_CONNS_CLIENTS, OV_CONNS_UPSTREAMS, OV_CONNS_TUNNELS,
	OV_REQUESTS, OV_RATE_1M, OV_RATE_5M,
	OV_REQ_HIT, OV_REQ_MISS, OV_REQ_REFRESH, OV_REQ_DENIED, OV_REQ_BLOCKED, OV_REQ_ERROR,
	OV_REQ_LOCAL,
	OV_HIT_RATIO, OV_BYTE_HIT_RATIO, OV_STORE_OUT, OV_UPSTREAM_IN, OV_SAVED, OV_CLIENT_OUT,
	OV_CACHE_ENTRIES, OV_CACHE_USE, OV_CACHE_EVICT, OV_CACHE_PINNED, OV_CACHE_GC,
	OV_COMPRESS,
	OV_DNS_ENTRIES, OV_DNS_HIT_RATIO, OV_DNS_FAILURES,
	OV_BLOCK_ENTRIES, OV_BLOCKED_ADDRS, OV_BLOCKED_1H,
	OV_TLS_SERVER, OV_TLS_CLIENT, OV_TLS_KTLS,
	OV_AUTH_SECTIONS, OV_AUTH_OK, OV_AUTH_FAILED, OV_AUTH_CHALLENGED, OV_AUTH_LIMITED,
	OV_AUTH_UNAVAILABLE, OV_AUTH_CACHE, OV_HELPERS, OV_HELPER_TIMEOUTS, OV_HELPER_RESTARTS,
	OV__COUNT
};

static const char *const ui_ov_keys[OV__COUNT] = {
	"uptime", "workers", "conns_clients", "conns_upstreams", "conns_tunnels",
	"requests", "rate_1m", "rate_5m",
	"req_hit", "req_miss", "req_refresh", "req_denied", "req_blocked", "req_error",
	"req_local",
	"hit_ratio", "byte_hit_ratio", "store_out", "upstream_in", "saved", "client_out",
	"cache_entries", "cache_use", "cache_evict", "cache_pinned", "cache_gc",
	"compress",
	"dns_entries", "dns_hit_ratio", "dns_failures",
	"block_entries", "blocked_addrs", "blocked_1h",
	"tls_server", "tls_client", "tls_ktls",
	"auth_sections", "auth_ok", "auth_failed", "auth_challenged", "auth_limited",
	"auth_unavailable", "auth_cache", "helpers", "helper_timeouts", "helper_restarts",
};

struct ui_ov_text {
	char t[OV__COUNT][96];
};

static void
ui_ov_bytes(char *buf, size_t n, uint64_t b)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)b;
	int u = 0;
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, n, "%" PRIu64 " B", b);
	else
		snprintf(buf, n, "%.1f %s", v, unit[u]);
}

static void
ui_ov_pct(char *buf, size_t n, uint64_t part, uint64_t whole)
{
	if (whole == 0)
		snprintf(buf, n, "-");
	else
		snprintf(buf, n, "%.1f %%", 100.0 * (double)part / (double)whole);
}

/* "120 (95 resumed), 2 failed" */
static void
ui_ov_tls(char *buf, size_t n, uint64_t done, uint64_t resumed, uint64_t failed)
{
	snprintf(buf, n, "%" PRIu64 " (%" PRIu64 " resumed), %" PRIu64 " failed", done, resumed,
	         failed);
}

static void
ui_ov_duration(char *buf, size_t n, int64_t s)
{
	if (s < 0)
		s = 0;
	if (s >= 86400)
		snprintf(buf, n, "%" PRId64 " d %" PRId64 " h %" PRId64 " min", s / 86400,
		         s % 86400 / 3600, s % 3600 / 60);
	else if (s >= 3600)
		snprintf(buf, n, "%" PRId64 " h %" PRId64 " min", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(buf, n, "%" PRId64 " min %" PRId64 " s", s / 60, s % 60);
	else
		snprintf(buf, n, "%" PRId64 " s", s);
}

static void
ui_ov_when(char *buf, size_t n, int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;
	if (t <= 0 || gmtime_r(&tt, &tm) == NULL)
		snprintf(buf, n, "-");
	else
		strftime(buf, n, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* Requests that reached the cache or an upstream: the base of the hit ratio. */
static uint64_t
ui_ov_cacheable(const struct ui_overview *ov)
{
	return ov->req[0] + ov->req[1] + ov->req[2];
}

static void
ui_ov_format(const struct ui_overview *ov, struct ui_ov_text *x)
{
#define T(id) x->t[id], sizeof(x->t[id])
	char a[40], b[40];
	ui_ov_duration(T(OV_UPTIME), ov->now - ov->started);
	snprintf(T(OV_WORKERS), "%u", ov->workers);
	snprintf(T(OV_CONNS_CLIENTS), "%" PRIu64, ov->conns_clients);
	snprintf(T(OV_CONNS_UPSTREAMS), "%" PRIu64, ov->conns_upstreams);
	snprintf(T(OV_CONNS_TUNNELS), "%" PRIu64, ov->conns_tunnels);
	snprintf(T(OV_REQUESTS), "%" PRIu64, ov->requests);
	snprintf(T(OV_RATE_1M), "%.2f", ov->win_1m ? (double)ov->req_1m / ov->win_1m : 0.0);
	snprintf(T(OV_RATE_5M), "%.2f", ov->win_5m ? (double)ov->req_5m / ov->win_5m : 0.0);
	for (int i = 0; i < UI_OUTCOMES; i++)
		snprintf(T(OV_REQ_HIT + i), "%" PRIu64, ov->req[i]);
	ui_ov_pct(T(OV_HIT_RATIO), ov->req[0], ui_ov_cacheable(ov));
	ui_ov_pct(T(OV_BYTE_HIT_RATIO), ov->bytes_store_out, ov->bytes_client_out);
	ui_ov_bytes(T(OV_STORE_OUT), ov->bytes_store_out);
	ui_ov_bytes(T(OV_UPSTREAM_IN), ov->bytes_upstream_in);
	ui_ov_bytes(T(OV_CLIENT_OUT), ov->bytes_client_out);
	ui_ov_pct(T(OV_SAVED), ov->bytes_store_out, ov->bytes_store_out + ov->bytes_upstream_in);
	snprintf(T(OV_CACHE_ENTRIES), "%" PRIu64, ov->cache_entries);
	ui_ov_bytes(a, sizeof(a), ov->cache_bytes);
	ui_ov_bytes(b, sizeof(b), ov->cache_size);
	snprintf(T(OV_CACHE_USE), "%s of %s", a, b);
	snprintf(T(OV_CACHE_EVICT), "%.2f", ov->cache_evictions_per_s);
	snprintf(T(OV_CACHE_PINNED), "%" PRIu64, ov->cache_pinned);
	snprintf(T(OV_CACHE_GC), "%" PRIu64, ov->cache_gc_bodies);
	if (ov->cache_compress_in == 0) {
		snprintf(T(OV_COMPRESS), "nothing stored deflated");
	} else {
		uint64_t saved = ov->cache_compress_in > ov->cache_compress_out
		                 ? ov->cache_compress_in - ov->cache_compress_out : 0;
		ui_ov_bytes(a, sizeof(a), saved);
		ui_ov_pct(b, sizeof(b), saved, ov->cache_compress_in);
		snprintf(T(OV_COMPRESS), "%s (%s)", a, b);
	}
	snprintf(T(OV_DNS_ENTRIES), "%" PRIu64, ov->dns_entries);
	ui_ov_pct(T(OV_DNS_HIT_RATIO), ov->dns_hits, ov->dns_lookups);
	snprintf(T(OV_DNS_FAILURES), "%" PRIu64, ov->dns_failures);
	snprintf(T(OV_BLOCK_ENTRIES), "%" PRIu64, ov->block_entries);
	snprintf(T(OV_BLOCKED_ADDRS), "%" PRIu64, ov->blocked_addrs);
	snprintf(T(OV_BLOCKED_1H), "%" PRIu64, ov->blocked_1h);
	ui_ov_tls(T(OV_TLS_SERVER), ov->tls_srv_handshakes, ov->tls_srv_resumed,
	          ov->tls_srv_failed);
	ui_ov_tls(T(OV_TLS_CLIENT), ov->tls_cli_handshakes, ov->tls_cli_resumed,
	          ov->tls_cli_failed);
	snprintf(T(OV_TLS_KTLS), "%" PRIu64 " connections", ov->tls_ktls);
	if (ov->auth_sections == 0)
		snprintf(T(OV_AUTH_SECTIONS), "none (no AuthType in a <Proxy> section)");
	else
		snprintf(T(OV_AUTH_SECTIONS), "%u", ov->auth_sections);
	snprintf(T(OV_AUTH_OK), "%" PRIu64, ov->auth_ok);
	snprintf(T(OV_AUTH_FAILED), "%" PRIu64, ov->auth_failed);
	snprintf(T(OV_AUTH_CHALLENGED), "%" PRIu64, ov->auth_challenged);
	snprintf(T(OV_AUTH_LIMITED), "%" PRIu64, ov->auth_limited);
	snprintf(T(OV_AUTH_UNAVAILABLE), "%" PRIu64, ov->auth_unavailable);
	ui_ov_pct(a, sizeof(a), ov->auth_cache_hits, ov->auth_cache_hits + ov->auth_cache_misses);
	snprintf(T(OV_AUTH_CACHE), "%s (%" PRIu64 " hits, %" PRIu64 " misses; %" PRIu64
	         " on the connection)", a, ov->auth_cache_hits, ov->auth_cache_misses,
	         ov->auth_conn_hits);
	snprintf(T(OV_HELPERS), "%" PRIu64 " running, %" PRIu64 " busy, %" PRIu64 " queued",
	         ov->helper_up, ov->helper_busy, ov->helper_queued);
	snprintf(T(OV_HELPER_TIMEOUTS), "%" PRIu64, ov->helper_timeouts);
	snprintf(T(OV_HELPER_RESTARTS), "%" PRIu64 " (%" PRIu64 " died)", ov->helper_restarts,
	         ov->helper_deaths);
#undef T
}

/* ---- HTML ---- */

static void
ui_ov_span(struct ui_out *o, const struct ui_ov_text *x, enum ui_ov_id id)
{
	ui_out_printf(o, "<span data-ov=\"%s\">", ui_ov_keys[id]);
	ui_out_html(o, x->t[id], strlen(x->t[id]));
	ui_out_puts(o, "</span>");
}

static void
ui_ov_row(struct ui_out *o, const char *label, const struct ui_ov_text *x, enum ui_ov_id id)
{
	ui_out_printf(o, "<tr><th>%s</th><td>", label);
	ui_ov_span(o, x, id);
	ui_out_puts(o, "</td></tr>\n");
}

static void
ui_ov_html(struct ui_call *call, const struct ui_overview *ov, const struct ui_ov_text *x)
{
	struct ui_out *o = &call->resp.body;
	char when[64], buf[64];
	const char *version = call->ops && call->ops->version ? call->ops->version : "";

	ui_page_begin(call, "Overview", "overview");
	ui_out_puts(o, "<section id=\"ov-server\"><h2>Server</h2>\n"
	            "<table class=\"kv\">\n<tr><th>Version</th><td>Gatehouse/");
	ui_out_html(o, version, strlen(version));
	ui_out_puts(o, "</td></tr>\n");
	ui_ov_when(when, sizeof(when), ov->started);
	ui_out_printf(o, "<tr><th>Started</th><td>%s</td></tr>\n", when);
	ui_ov_row(o, "Uptime", x, OV_UPTIME);
	ui_out_puts(o, "<tr><th>Configuration</th><td><code>");
	ui_out_html(o, ov->config, strlen(ov->config));
	ui_out_puts(o, "</code></td></tr>\n<tr><th>Last reload</th><td id=\"ov-reload\">");
	if (ov->reload_at == 0) {
		ui_out_puts(o, "none since start");
	} else {
		ui_ov_when(when, sizeof(when), ov->reload_at);
		ui_out_printf(o, "%s: <span class=\"%s\">%s</span>", when,
		              ov->reload_ok ? "ok" : "bad", ov->reload_ok ? "succeeded" : "failed");
		if (!ov->reload_ok) {
			ui_out_puts(o, " <code class=\"err\">");
			ui_out_html(o, ov->reload_err, strlen(ov->reload_err));
			ui_out_puts(o, ov->reload_applied
			            ? "</code> (the rest of the new configuration is running; the "
			              "TLS certificates and settings of the previous one were kept)"
			            : "</code> (the previous configuration keeps running)");
		}
	}
	ui_out_puts(o, "</td></tr>\n</table></section>\n");

	ui_out_puts(o, "<section id=\"ov-conns\"><h2>Workers and connections</h2>\n"
	            "<table class=\"kv\">\n");
	ui_ov_row(o, "Workers", x, OV_WORKERS);
	ui_ov_row(o, "Client connections", x, OV_CONNS_CLIENTS);
	ui_ov_row(o, "Upstream connections", x, OV_CONNS_UPSTREAMS);
	ui_ov_row(o, "Tunnels (CONNECT)", x, OV_CONNS_TUNNELS);
	ui_out_puts(o, "</table></section>\n");

	ui_out_puts(o, "<section id=\"ov-requests\"><h2>Requests</h2>\n<table class=\"kv\">\n");
	ui_ov_row(o, "Requests/s, last minute", x, OV_RATE_1M);
	ui_ov_row(o, "Requests/s, last 5 minutes", x, OV_RATE_5M);
	ui_ov_row(o, "Requests since start", x, OV_REQUESTS);
	static const char *const labels[UI_OUTCOMES] = {
		"Hits (served from the store)", "Misses (fetched; tunnels)",
		"Refreshes (revalidated)", "Denied (access rules)", "Blocked (ProxyBlock)",
		"Errors", "Local answers (this page, PAC, redirects)",
	};
	for (int i = 0; i < UI_OUTCOMES; i++)
		ui_ov_row(o, labels[i], x, (enum ui_ov_id)(OV_REQ_HIT + i));
	ui_out_puts(o, "</table></section>\n");

	ui_out_puts(o, "<section id=\"ov-ratio\"><h2>Cache effectiveness</h2>\n"
	            "<table class=\"kv\">\n");
	ui_ov_row(o, "Hit ratio by requests (of hits, misses and refreshes)", x, OV_HIT_RATIO);
	ui_ov_row(o, "Hit ratio by bytes (of bytes sent to clients)", x, OV_BYTE_HIT_RATIO);
	ui_ov_row(o, "Served from the store", x, OV_STORE_OUT);
	ui_ov_row(o, "Fetched from upstreams", x, OV_UPSTREAM_IN);
	ui_ov_row(o, "Bandwidth saved (store / (store + fetched))", x, OV_SAVED);
	ui_ov_row(o, "Sent to clients", x, OV_CLIENT_OUT);
	ui_out_puts(o, "</table></section>\n");

	ui_out_puts(o, "<section id=\"ov-store\"><h2>Store</h2>\n");
	if (!ov->cache_on) {
		ui_out_puts(o, "<p>No cache is configured (CacheRoot, CacheEnable).</p>\n");
	} else {
		ui_out_puts(o, "<table class=\"kv\">\n");
		ui_ov_row(o, "Entries", x, OV_CACHE_ENTRIES);
		ui_ov_row(o, "Use against CacheSize", x, OV_CACHE_USE);
		ui_ov_row(o, "Evictions/s", x, OV_CACHE_EVICT);
		ui_ov_row(o, "Bodies being read (pinned)", x, OV_CACHE_PINNED);
		ui_ov_row(o, "Bodies awaiting deletion", x, OV_CACHE_GC);
		ui_ov_row(o, "zlib compression saving", x, OV_COMPRESS);
		ui_out_puts(o, "</table>\n");
	}
	ui_out_puts(o, "</section>\n");

	ui_out_puts(o, "<section id=\"ov-dns\"><h2>DNS</h2>\n<table class=\"kv\">\n");
	ui_ov_row(o, "Cached names", x, OV_DNS_ENTRIES);
	ui_ov_row(o, "Cache hit ratio", x, OV_DNS_HIT_RATIO);
	ui_ov_row(o, "Failed lookups", x, OV_DNS_FAILURES);
	ui_out_puts(o, "<tr><th>Servers</th><td>");
	ui_out_html(o, ov->dns_servers, strlen(ov->dns_servers));
	ui_out_puts(o, "</td></tr>\n</table></section>\n");

	ui_out_puts(o, "<section id=\"ov-tls\"><h2>TLS</h2>\n<table class=\"kv\">\n");
	ui_ov_row(o, "Handshakes on the HTTPS listeners", x, OV_TLS_SERVER);
	ui_ov_row(o, "Handshakes with parents and origins", x, OV_TLS_CLIENT);
	ui_ov_row(o, "Encrypted by the kernel (kernel TLS)", x, OV_TLS_KTLS);
	ui_out_puts(o, "</table></section>\n");

	ui_out_puts(o, "<section id=\"ov-auth\"><h2>Proxy authentication</h2>\n"
	            "<table class=\"kv\">\n");
	ui_ov_row(o, "Sections with authentication", x, OV_AUTH_SECTIONS);
	ui_ov_row(o, "Users proved", x, OV_AUTH_OK);
	ui_ov_row(o, "Failed (wrong or unknown credentials)", x, OV_AUTH_FAILED);
	ui_ov_row(o, "Asked for credentials (407)", x, OV_AUTH_CHALLENGED);
	ui_ov_row(o, "Refused after too many failures (429)", x, OV_AUTH_LIMITED);
	ui_ov_row(o, "Helper could not answer (503)", x, OV_AUTH_UNAVAILABLE);
	ui_ov_row(o, "Result cache hit ratio", x, OV_AUTH_CACHE);
	ui_ov_row(o, "Helper processes", x, OV_HELPERS);
	ui_ov_row(o, "Helper timeouts", x, OV_HELPER_TIMEOUTS);
	ui_ov_row(o, "Helper restarts", x, OV_HELPER_RESTARTS);
	ui_out_printf(o, "</table><p class=\"mute\">Who: <a href=\"%stop\">top users</a>, "
	              "<a href=\"%srecent\">recent requests</a>.</p></section>\n",
	              call->req.prefix, call->req.prefix);

	ui_out_puts(o, "<section id=\"ov-policy\"><h2>Policy</h2>\n<table class=\"kv\">\n");
	ui_ov_row(o, "ProxyBlock entries", x, OV_BLOCK_ENTRIES);
	ui_ov_row(o, "Resolved blocked addresses", x, OV_BLOCKED_ADDRS);
	ui_ov_row(o, "Blocked in the last hour", x, OV_BLOCKED_1H);
	ui_out_puts(o, "</table></section>\n");

	ui_out_puts(o, "<section id=\"ov-parents\"><h2>Parent proxies</h2>\n");
	if (ov->nparents == 0) {
		ui_out_puts(o, "<p>None (no ProxyRemote): requests go direct.</p>\n");
	} else {
		ui_out_puts(o, "<table class=\"list\">\n<thead><tr><th>Parent</th><th>Health</th>"
		            "<th>Backoff left</th><th>Failures</th><th>Last error</th>"
		            "<th>Requests routed</th></tr></thead>\n<tbody>\n");
		size_t n = ov->nparents < UI_PARENTS_MAX ? ov->nparents : UI_PARENTS_MAX;
		for (size_t i = 0; i < n; i++) {
			const struct ui_parent *p = &ov->parents[i];
			ui_out_puts(o, "<tr data-parent=\"");
			ui_out_html(o, p->name, strlen(p->name));
			ui_out_puts(o, "\"><td><code>");
			ui_out_html(o, p->name, strlen(p->name));
			ui_out_printf(o, "</code></td><td class=\"%s\">%s</td><td>", p->up ? "ok" : "bad",
			              p->up ? "up" : "down");
			if (p->up)
				ui_out_puts(o, "-");
			else
				ui_out_printf(o, "%u.%u s", p->backoff_left_ms / 1000,
				              p->backoff_left_ms % 1000 / 100);
			ui_out_printf(o, "</td><td>%u</td><td>", p->fails);
			if (p->last_err[0]) {
				ui_ov_when(buf, sizeof(buf), p->last_err_at);
				ui_out_html(o, p->last_err, strlen(p->last_err));
				ui_out_printf(o, " <small>(%s)</small>", buf);
			} else {
				ui_out_puts(o, "-");
			}
			ui_out_printf(o, "</td><td>%" PRIu64 "</td></tr>\n", p->requests);
		}
		ui_out_puts(o, "</tbody></table>\n");
		if (ov->nparents > n)
			ui_out_printf(o, "<p>and %zu more.</p>\n", ov->nparents - n);
	}
	ui_out_puts(o, "</section>\n");
	ui_out_printf(o, "<p class=\"links\">For scripts: <a href=\"%s?auto\">?auto</a>, "
	              "<a href=\"%sapi/overview\">api/overview</a> (JSON), "
	              "<a href=\"%smetrics\">metrics</a> (Prometheus).</p>\n",
	              call->req.prefix, call->req.prefix, call->req.prefix);
	ui_page_end(call);
}

/* ---- JSON ---- */

static void
ui_ov_jstr(struct ui_out *o, const char *key, const char *s)
{
	ui_out_printf(o, "\"%s\":", key);
	ui_out_json_str(o, s, strlen(s));
	ui_out_puts(o, ",");
}

static void
ui_ov_json(struct ui_call *call, const struct ui_overview *ov, const struct ui_ov_text *x)
{
	struct ui_out *o = &call->resp.body;
	const char *version = call->ops && call->ops->version ? call->ops->version : "";
	ui_resp_json(call);
	ui_out_puts(o, "{");
	ui_ov_jstr(o, "version", version);
	ui_out_printf(o, "\"now\":%" PRId64 ",\"started\":%" PRId64 ",\"uptime\":%" PRId64 ",",
	              ov->now, ov->started, ov->now - ov->started);
	ui_ov_jstr(o, "config", ov->config);
	ui_out_printf(o, "\"reload_at\":%" PRId64 ",\"reload_ok\":%s,", ov->reload_at,
	              ov->reload_at == 0 ? "null" : ov->reload_ok ? "true" : "false");
	ui_ov_jstr(o, "reload_error", ov->reload_err);
	ui_out_printf(o, "\"reload_applied\":%s,",
	              ov->reload_at == 0 ? "null" : ov->reload_applied ? "true" : "false");
	ui_out_printf(o, "\"workers\":%u,\"connections\":{\"clients\":%" PRIu64
	              ",\"upstreams\":%" PRIu64 ",\"tunnels\":%" PRIu64 "},\"accepted\":%" PRIu64
	              ",", ov->workers, ov->conns_clients, ov->conns_upstreams, ov->conns_tunnels,
	              ov->accepted);
	ui_out_printf(o, "\"requests\":{\"total\":%" PRIu64, ov->requests);
	for (int i = 0; i < UI_OUTCOMES; i++)
		ui_out_printf(o, ",\"%s\":%" PRIu64, ui_outcome_names[i], ov->req[i]);
	ui_out_printf(o, "},\"rate_1m\":%.3f,\"rate_5m\":%.3f,",
	              ov->win_1m ? (double)ov->req_1m / ov->win_1m : 0.0,
	              ov->win_5m ? (double)ov->req_5m / ov->win_5m : 0.0);
	uint64_t base = ui_ov_cacheable(ov);
	ui_out_printf(o, "\"hit_ratio\":%.4f,\"byte_hit_ratio\":%.4f,",
	              base ? (double)ov->req[0] / base : 0.0,
	              ov->bytes_client_out ? (double)ov->bytes_store_out / ov->bytes_client_out
	                                   : 0.0);
	ui_out_printf(o, "\"bytes\":{\"client_out\":%" PRIu64 ",\"store_out\":%" PRIu64
	              ",\"client_in\":%" PRIu64 ",\"upstream_in\":%" PRIu64 "},",
	              ov->bytes_client_out, ov->bytes_store_out, ov->bytes_client_in,
	              ov->bytes_upstream_in);
	if (ov->cache_on)
		ui_out_printf(o, "\"cache\":{\"entries\":%" PRIu64 ",\"bytes\":%" PRIu64
		              ",\"size\":%" PRIu64 ",\"evictions\":%" PRIu64
		              ",\"evictions_per_s\":%.3f,\"pinned_bodies\":%" PRIu64
		              ",\"gc_bodies\":%" PRIu64 ",\"compress_in\":%" PRIu64
		              ",\"compress_out\":%" PRIu64 "},",
		              ov->cache_entries, ov->cache_bytes, ov->cache_size,
		              ov->cache_evictions, ov->cache_evictions_per_s, ov->cache_pinned,
		              ov->cache_gc_bodies, ov->cache_compress_in, ov->cache_compress_out);
	else
		ui_out_puts(o, "\"cache\":null,");
	ui_out_printf(o, "\"dns\":{\"entries\":%" PRIu64 ",\"lookups\":%" PRIu64
	              ",\"hits\":%" PRIu64 ",\"failures\":%" PRIu64 ",\"queries\":%" PRIu64 ",",
	              ov->dns_entries, ov->dns_lookups, ov->dns_hits, ov->dns_failures,
	              ov->dns_queries);
	ui_out_puts(o, "\"servers\":");
	ui_out_json_str(o, ov->dns_servers, strlen(ov->dns_servers));
	ui_out_printf(o, "},\"policy\":{\"block_entries\":%" PRIu64 ",\"blocked_addresses\":%"
	              PRIu64 ",\"blocked_1h\":%" PRIu64 "},", ov->block_entries,
	              ov->blocked_addrs, ov->blocked_1h);
	ui_out_printf(o, "\"tls\":{\"server\":{\"handshakes\":%" PRIu64 ",\"resumed\":%" PRIu64
	              ",\"failed\":%" PRIu64 "},\"client\":{\"handshakes\":%" PRIu64
	              ",\"resumed\":%" PRIu64 ",\"failed\":%" PRIu64 "},\"ktls\":%" PRIu64 "},",
	              ov->tls_srv_handshakes, ov->tls_srv_resumed, ov->tls_srv_failed,
	              ov->tls_cli_handshakes, ov->tls_cli_resumed, ov->tls_cli_failed,
	              ov->tls_ktls);
	ui_out_printf(o, "\"auth\":{\"sections\":%u,\"ok\":%" PRIu64 ",\"failed\":%" PRIu64
	              ",\"challenged\":%" PRIu64 ",\"limited\":%" PRIu64 ",\"unavailable\":%"
	              PRIu64 ",\"cache_hits\":%" PRIu64 ",\"cache_misses\":%" PRIu64
	              ",\"conn_hits\":%" PRIu64 ",\"verifications\":%" PRIu64 ",",
	              ov->auth_sections, ov->auth_ok, ov->auth_failed, ov->auth_challenged,
	              ov->auth_limited, ov->auth_unavailable, ov->auth_cache_hits,
	              ov->auth_cache_misses, ov->auth_conn_hits, ov->auth_verifications);
	ui_out_printf(o, "\"helpers\":{\"children_up\":%" PRIu64 ",\"busy\":%" PRIu64
	              ",\"queued\":%" PRIu64 ",\"requests\":%" PRIu64 ",\"replies\":%" PRIu64
	              ",\"timeouts\":%" PRIu64 ",\"deaths\":%" PRIu64 ",\"restarts\":%" PRIu64
	              ",\"overloads\":%" PRIu64 "}},",
	              ov->helper_up, ov->helper_busy, ov->helper_queued, ov->helper_requests,
	              ov->helper_replies, ov->helper_timeouts, ov->helper_deaths,
	              ov->helper_restarts, ov->helper_overloads);
	ui_out_printf(o, "\"nparents\":%zu,\"parents\":[", ov->nparents);
	size_t n = ov->nparents < UI_PARENTS_MAX ? ov->nparents : UI_PARENTS_MAX;
	for (size_t i = 0; i < n; i++) {
		const struct ui_parent *p = &ov->parents[i];
		ui_out_puts(o, i ? ",{" : "{");
		ui_ov_jstr(o, "name", p->name);
		ui_out_printf(o, "\"up\":%s,\"backoff_left_ms\":%u,\"fails\":%u,",
		              p->up ? "true" : "false", p->backoff_left_ms, p->fails);
		ui_ov_jstr(o, "last_error", p->last_err);
		ui_out_printf(o, "\"last_error_at\":%" PRId64 ",\"requests\":%" PRIu64 "}",
		              p->last_err_at, p->requests);
	}
	ui_out_puts(o, "],\"display\":{");
	for (int i = 0; i < OV__COUNT; i++) {
		ui_out_printf(o, "%s\"%s\":", i ? "," : "", ui_ov_keys[i]);
		ui_out_json_str(o, x->t[i], strlen(x->t[i]));
	}
	char tok[128];
	ui_out_puts(o, "},\"csrf\":");
	if (ui_csrf_token(call, tok, sizeof(tok)) < 0)
		tok[0] = '\0';
	ui_out_json_str(o, tok, strlen(tok));
	ui_out_puts(o, "}\n");
}

/* ---- ?auto ---- */

/* "Key: value\n", the value on one line (control characters become spaces). */
static void
ui_ov_auto_str(struct ui_out *o, const char *key, const char *v)
{
	ui_out_printf(o, "%s: ", key);
	for (const char *s = v; *s; s++) {
		char ch = (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s;
		ui_out_put(o, &ch, 1);
	}
	ui_out_puts(o, "\n");
}

void
ui_overview_auto(struct ui_out *o, const struct ui_overview *ov, const char *version)
{
	static const char *const req_keys[UI_OUTCOMES] = {
		"ReqHit", "ReqMiss", "ReqRefresh", "ReqDenied", "ReqBlocked", "ReqError", "ReqLocal",
	};
	uint64_t base = ui_ov_cacheable(ov);
	ui_ov_auto_str(o, "Version", version ? version : "");
	ui_out_printf(o, "StartTime: %" PRId64 "\nUptime: %" PRId64 "\n", ov->started,
	              ov->now - ov->started);
	ui_ov_auto_str(o, "ConfigFile", ov->config);
	ui_out_printf(o, "LastReload: %" PRId64 "\nLastReloadOK: %d\n", ov->reload_at,
	              ov->reload_at == 0 || ov->reload_ok);
	ui_ov_auto_str(o, "LastReloadError", ov->reload_err);
	ui_out_printf(o, "LastReloadApplied: %d\n", ov->reload_at == 0 || ov->reload_applied);
	ui_out_printf(o, "Workers: %u\nConnsClients: %" PRIu64 "\nConnsUpstreams: %" PRIu64
	              "\nConnsTunnels: %" PRIu64 "\nConnsAccepted: %" PRIu64 "\n",
	              ov->workers, ov->conns_clients, ov->conns_upstreams, ov->conns_tunnels,
	              ov->accepted);
	ui_out_printf(o, "Requests: %" PRIu64 "\n", ov->requests);
	for (int i = 0; i < UI_OUTCOMES; i++)
		ui_out_printf(o, "%s: %" PRIu64 "\n", req_keys[i], ov->req[i]);
	ui_out_printf(o, "ReqPerSec1m: %.3f\nReqPerSec5m: %.3f\n",
	              ov->win_1m ? (double)ov->req_1m / ov->win_1m : 0.0,
	              ov->win_5m ? (double)ov->req_5m / ov->win_5m : 0.0);
	ui_out_printf(o, "HitRatio: %.4f\nByteHitRatio: %.4f\n",
	              base ? (double)ov->req[0] / base : 0.0,
	              ov->bytes_client_out ? (double)ov->bytes_store_out / ov->bytes_client_out
	                                   : 0.0);
	ui_out_printf(o, "BytesClientOut: %" PRIu64 "\nBytesStoreOut: %" PRIu64
	              "\nBytesClientIn: %" PRIu64 "\nBytesUpstreamIn: %" PRIu64 "\n",
	              ov->bytes_client_out, ov->bytes_store_out, ov->bytes_client_in,
	              ov->bytes_upstream_in);
	if (ov->cache_on)
		ui_out_printf(o, "CacheEntries: %" PRIu64 "\nCacheBytes: %" PRIu64
		              "\nCacheSize: %" PRIu64 "\nCacheEvictions: %" PRIu64
		              "\nCacheEvictionsPerSec: %.3f\nCachePinnedBodies: %" PRIu64
		              "\nCacheGCBodies: %" PRIu64 "\nCacheCompressIn: %" PRIu64
		              "\nCacheCompressOut: %" PRIu64 "\n",
		              ov->cache_entries, ov->cache_bytes, ov->cache_size,
		              ov->cache_evictions, ov->cache_evictions_per_s, ov->cache_pinned,
		              ov->cache_gc_bodies, ov->cache_compress_in, ov->cache_compress_out);
	ui_out_printf(o, "DNSCacheEntries: %" PRIu64 "\nDNSLookups: %" PRIu64
	              "\nDNSCacheHits: %" PRIu64 "\nDNSFailures: %" PRIu64 "\n",
	              ov->dns_entries, ov->dns_lookups, ov->dns_hits, ov->dns_failures);
	ui_ov_auto_str(o, "DNSServers", ov->dns_servers);
	ui_out_printf(o, "TLSServerHandshakes: %" PRIu64 "\nTLSServerResumed: %" PRIu64
	              "\nTLSServerFailed: %" PRIu64 "\nTLSClientHandshakes: %" PRIu64
	              "\nTLSClientResumed: %" PRIu64 "\nTLSClientFailed: %" PRIu64
	              "\nTLSKernel: %" PRIu64 "\n",
	              ov->tls_srv_handshakes, ov->tls_srv_resumed, ov->tls_srv_failed,
	              ov->tls_cli_handshakes, ov->tls_cli_resumed, ov->tls_cli_failed,
	              ov->tls_ktls);
	ui_out_printf(o, "AuthSections: %u\nAuthOK: %" PRIu64 "\nAuthFailed: %" PRIu64
	              "\nAuthChallenged: %" PRIu64 "\nAuthLimited: %" PRIu64
	              "\nAuthUnavailable: %" PRIu64 "\nAuthCacheHits: %" PRIu64
	              "\nAuthCacheMisses: %" PRIu64 "\nAuthConnHits: %" PRIu64
	              "\nAuthVerifications: %" PRIu64 "\n",
	              ov->auth_sections, ov->auth_ok, ov->auth_failed, ov->auth_challenged,
	              ov->auth_limited, ov->auth_unavailable, ov->auth_cache_hits,
	              ov->auth_cache_misses, ov->auth_conn_hits, ov->auth_verifications);
	ui_out_printf(o, "HelperChildren: %" PRIu64 "\nHelperBusy: %" PRIu64 "\nHelperQueued: %"
	              PRIu64 "\nHelperRequests: %" PRIu64 "\nHelperReplies: %" PRIu64
	              "\nHelperTimeouts: %" PRIu64 "\nHelperDeaths: %" PRIu64
	              "\nHelperRestarts: %" PRIu64 "\nHelperOverloads: %" PRIu64 "\n",
	              ov->helper_up, ov->helper_busy, ov->helper_queued, ov->helper_requests,
	              ov->helper_replies, ov->helper_timeouts, ov->helper_deaths,
	              ov->helper_restarts, ov->helper_overloads);
	ui_out_printf(o, "BlockEntries: %" PRIu64 "\nBlockedAddresses: %" PRIu64
	              "\nBlockedLastHour: %" PRIu64 "\nParents: %zu\n", ov->block_entries,
	              ov->blocked_addrs, ov->blocked_1h, ov->nparents);
	size_t n = ov->nparents < UI_PARENTS_MAX ? ov->nparents : UI_PARENTS_MAX;
	for (size_t i = 0; i < n; i++) {
		const struct ui_parent *p = &ov->parents[i];
		char v[600];
		snprintf(v, sizeof(v), "%s up=%d backoff_ms=%u fails=%u requests=%" PRIu64, p->name,
		         p->up, p->backoff_left_ms, p->fails, p->requests);
		ui_ov_auto_str(o, "Parent", v);
	}
}

/* Is "auto" one of the query's parameters (mod_status' ?auto takes no value)? */
static int
ui_ov_is_auto(const char *q)
{
	for (const char *p = q; p && *p;) {
		size_t n = strcspn(p, "&");
		if ((n == 4 && strncmp(p, "auto", 4) == 0) || (n > 4 && strncmp(p, "auto=", 5) == 0))
			return 1;
		p += n;
		if (*p == '&')
			p++;
	}
	return 0;
}

static int
ui_ov_read(struct ui_call *call, struct ui_overview **ovp)
{
	const struct ui_stats_ops *ops = call->ops ? call->ops->stats : NULL;
	*ovp = NULL;
	if (ops == NULL || ops->overview == NULL)
		return ui_page_error(call, 503, "counters are not available");
	struct ui_overview *ov = calloc(1, sizeof(*ov));
	if (ov == NULL)
		return ui_page_error(call, 500, "out of memory");
	if (ops->overview(call->wctx, ov) < 0) {
		free(ov);
		return ui_page_error(call, 500, "counters could not be read");
	}
	*ovp = ov;
	return UI_DONE;
}

int ui_page_overview(struct ui_call *call);
int ui_page_api_overview(struct ui_call *call);
int ui_page_metrics(struct ui_call *call);

int
ui_page_overview(struct ui_call *call)
{
	struct ui_overview *ov;
	int rc = ui_ov_read(call, &ov);
	if (ov == NULL)
		return rc;
	const char *version = call->ops->version;
	if (ui_ov_is_auto(call->req.query)) {
		snprintf(call->resp.ctype, sizeof(call->resp.ctype), "text/plain; charset=utf-8");
		ui_overview_auto(&call->resp.body, ov, version);
	} else {
		struct ui_ov_text *x = malloc(sizeof(*x));
		if (x == NULL) {
			free(ov);
			return ui_page_error(call, 500, "out of memory");
		}
		ui_ov_format(ov, x);
		if (ui_wants_json(call))
			ui_ov_json(call, ov, x);
		else
			ui_ov_html(call, ov, x);
		free(x);
	}
	free(ov);
	return UI_DONE;
}

int
ui_page_api_overview(struct ui_call *call)
{
	struct ui_overview *ov;
	int rc = ui_ov_read(call, &ov);
	if (ov == NULL)
		return rc;
	struct ui_ov_text *x = malloc(sizeof(*x));
	if (x == NULL) {
		free(ov);
		return ui_page_error(call, 500, "out of memory");
	}
	ui_ov_format(ov, x);
	ui_ov_json(call, ov, x);
	free(x);
	free(ov);
	return UI_DONE;
}

const struct ui_route ui_routes_stats[] = {
	{"", UI_M_GET, ui_page_overview},
	{"api/overview", UI_M_GET, ui_page_api_overview},
	{"metrics", UI_M_GET, ui_page_metrics},
	{NULL, 0, NULL},
};
