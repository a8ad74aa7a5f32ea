/*
 * p_metrics.c - /gatehouse/metrics: the counters in the Prometheus text exposition format
 * 0.0.4, named after Prometheus' conventions (a gatehouse_ prefix, _total on counters, base
 * units: seconds and bytes). Every family has its HELP and TYPE lines; label values are
 * escaped (backslash, double quote, line feed). The histogram's buckets are cumulative and end
 * with le="+Inf", equal to _count.
 *
 * ui_metrics_render is pure (tests/unit/test_metrics.c); ui_page_metrics reads the counters
 * through ui_stats_ops.
 */
#include "webui/ui_priv.h"
#include "webui/ui_stats.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const ui_outcome_names[UI_OUTCOMES] = {
	"hit", "miss", "refresh", "denied", "blocked", "error", "local",
};

void
ui_metrics_label(struct ui_out *o, const char *s)
{
	const char *run = s;
	for (; *s; s++) {
		const char *esc = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
		if (esc == NULL)
			continue;
		ui_out_put(o, run, (size_t)(s - run));
		ui_out_puts(o, esc);
		run = s + 1;
	}
	ui_out_put(o, run, (size_t)(s - run));
}

static void
ui_metrics_head(struct ui_out *o, const char *name, const char *type, const char *help)
{
	ui_out_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
ui_metrics_one(struct ui_out *o, const char *name, const char *type, const char *help,
               uint64_t v)
{
	ui_metrics_head(o, name, type, help);
	ui_out_printf(o, "%s %" PRIu64 "\n", name, v);
}

/* A bound in microseconds as Prometheus' le value in seconds: "0.0025", "1", "10". */
static void
ui_metrics_le(char *buf, size_t n, uint64_t us)
{
	snprintf(buf, n, "%" PRIu64 ".%06" PRIu64, us / 1000000, us % 1000000);
	char *p = buf + strlen(buf) - 1;
	while (*p == '0')
		*p-- = '\0';
	if (*p == '.')
		*p = '\0';
}

void
ui_metrics_render(struct ui_out *o, const struct ui_overview *ov, const char *version)
{
	ui_metrics_head(o, "gatehouse_build_info", "gauge", "Always 1; the version as a label.");
	ui_out_puts(o, "gatehouse_build_info{version=\"");
	ui_metrics_label(o, version ? version : "");
	ui_out_puts(o, "\"} 1\n");
	ui_metrics_one(o, "gatehouse_start_time_seconds", "gauge",
	               "Start time of the process since the Unix epoch in seconds.",
	               (uint64_t)ov->started);
	ui_metrics_head(o, "gatehouse_config_last_reload_successful", "gauge",
	                "1 when the last configuration reload succeeded (or none was asked), 0 "
	                "when it failed, also when the rest of the new configuration runs but "
	                "the TLS certificates in use were kept.");
	ui_out_printf(o, "gatehouse_config_last_reload_successful %d\n",
	              ov->reload_at == 0 || ov->reload_ok);
	ui_metrics_one(o, "gatehouse_config_last_reload_timestamp_seconds", "gauge",
	               "Time of the last configuration reload since the Unix epoch, 0 when none.",
	               (uint64_t)ov->reload_at);
	ui_metrics_one(o, "gatehouse_workers", "gauge", "Worker threads.", ov->workers);

	ui_metrics_head(o, "gatehouse_connections", "gauge",
	                "Open connections: from clients, to upstreams (origins and parents, "
	                "pooled ones included), and client connections that are tunnels.");
	ui_out_printf(o, "gatehouse_connections{kind=\"client\"} %" PRIu64 "\n"
	              "gatehouse_connections{kind=\"upstream\"} %" PRIu64 "\n"
	              "gatehouse_connections{kind=\"tunnel\"} %" PRIu64 "\n",
	              ov->conns_clients, ov->conns_upstreams, ov->conns_tunnels);
	ui_metrics_one(o, "gatehouse_connections_accepted_total", "counter",
	               "Client connections accepted.", ov->accepted);

	ui_metrics_head(o, "gatehouse_requests_total", "counter",
	                "Requests finished, by outcome: hit (served from the store), miss "
	                "(fetched, tunnels too), refresh (revalidated), denied (access rules), "
	                "blocked (ProxyBlock), error (5xx, malformed), local (answered by the "
	                "proxy itself: status page, PAC, redirects).");
	for (int i = 0; i < UI_OUTCOMES; i++)
		ui_out_printf(o, "gatehouse_requests_total{outcome=\"%s\"} %" PRIu64 "\n",
		              ui_outcome_names[i], ov->req[i]);

	ui_metrics_head(o, "gatehouse_bytes_total", "counter",
	                "Bytes by direction: client_out (sent to clients, heads included), "
	                "store_out (the part of client_out served from the store), client_in "
	                "(received from clients), upstream_in (received from origins and "
	                "parents).");
	ui_out_printf(o, "gatehouse_bytes_total{direction=\"client_out\"} %" PRIu64 "\n"
	              "gatehouse_bytes_total{direction=\"store_out\"} %" PRIu64 "\n"
	              "gatehouse_bytes_total{direction=\"client_in\"} %" PRIu64 "\n"
	              "gatehouse_bytes_total{direction=\"upstream_in\"} %" PRIu64 "\n",
	              ov->bytes_client_out, ov->bytes_store_out, ov->bytes_client_in,
	              ov->bytes_upstream_in);

	ui_metrics_head(o, "gatehouse_request_duration_seconds", "histogram",
	                "Time from the start of a request to its access-log line.");
	uint64_t cum = 0;
	char le[32];
	for (int i = 0; i < UI_DUR_BUCKETS; i++) {
		cum += ov->dur_bin[i];
		ui_metrics_le(le, sizeof(le), ov->dur_le_us[i]);
		ui_out_printf(o, "gatehouse_request_duration_seconds_bucket{le=\"%s\"} %" PRIu64 "\n",
		              le, cum);
	}
	cum += ov->dur_bin[UI_DUR_BUCKETS];
	ui_out_printf(o, "gatehouse_request_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
	              "gatehouse_request_duration_seconds_sum %" PRIu64 ".%06" PRIu64 "\n"
	              "gatehouse_request_duration_seconds_count %" PRIu64 "\n",
	              cum, ov->dur_sum_us / 1000000, ov->dur_sum_us % 1000000, cum);

	if (ov->cache_on) {
		ui_metrics_one(o, "gatehouse_cache_entries", "gauge", "Responses in the store.",
		               ov->cache_entries);
		ui_metrics_one(o, "gatehouse_cache_bytes", "gauge",
		               "Bytes the store uses (its own accounting).", ov->cache_bytes);
		ui_metrics_one(o, "gatehouse_cache_size_bytes", "gauge", "CacheSize.",
		               ov->cache_size);
		ui_metrics_one(o, "gatehouse_cache_evictions_total", "counter",
		               "Entries evicted to stay under CacheSize.", ov->cache_evictions);
		ui_metrics_one(o, "gatehouse_cache_pinned_bodies", "gauge",
		               "Stored bodies being read by a client now.", ov->cache_pinned);
		ui_metrics_one(o, "gatehouse_cache_gc_bodies", "gauge",
		               "Stored bodies awaiting deletion.", ov->cache_gc_bodies);
		ui_metrics_one(o, "gatehouse_cache_compress_in_bytes_total", "counter",
		               "Raw bytes of the body chunks stored deflated (zlib).",
		               ov->cache_compress_in);
		ui_metrics_one(o, "gatehouse_cache_compress_out_bytes_total", "counter",
		               "Stored size of those chunks.", ov->cache_compress_out);
	}

	ui_metrics_one(o, "gatehouse_dns_cache_entries", "gauge",
	               "Names in the workers' DNS caches (summed).", ov->dns_entries);
	ui_metrics_one(o, "gatehouse_dns_lookups_total", "counter", "Name lookups.",
	               ov->dns_lookups);
	ui_metrics_one(o, "gatehouse_dns_cache_hits_total", "counter",
	               "Lookups answered from the DNS cache (negative answers included).",
	               ov->dns_hits);
	ui_metrics_one(o, "gatehouse_dns_queries_total", "counter",
	               "Queries sent to DNS servers.", ov->dns_queries);
	ui_metrics_one(o, "gatehouse_dns_failures_total", "counter",
	               "Lookups that failed (NXDOMAIN, no address, SERVFAIL, timeout ...).",
	               ov->dns_failures);

	ui_metrics_one(o, "gatehouse_policy_block_entries", "gauge",
	               "ProxyBlock entries of the running configuration.", ov->block_entries);
	ui_metrics_one(o, "gatehouse_policy_blocked_addresses", "gauge",
	               "Addresses the ProxyBlock names resolved to.", ov->blocked_addrs);

	ui_metrics_head(o, "gatehouse_tls_handshakes_total", "counter",
	                "TLS handshakes: side server (the https listeners) or client (parents, "
	                "origins, FTPS); result full, resumed or failed.");
	ui_out_printf(o, "gatehouse_tls_handshakes_total{side=\"server\",result=\"full\"} %" PRIu64
	              "\ngatehouse_tls_handshakes_total{side=\"server\",result=\"resumed\"} %" PRIu64
	              "\ngatehouse_tls_handshakes_total{side=\"server\",result=\"failed\"} %" PRIu64
	              "\ngatehouse_tls_handshakes_total{side=\"client\",result=\"full\"} %" PRIu64
	              "\ngatehouse_tls_handshakes_total{side=\"client\",result=\"resumed\"} %" PRIu64
	              "\ngatehouse_tls_handshakes_total{side=\"client\",result=\"failed\"} %" PRIu64
	              "\n",
	              ov->tls_srv_handshakes - ov->tls_srv_resumed, ov->tls_srv_resumed,
	              ov->tls_srv_failed, ov->tls_cli_handshakes - ov->tls_cli_resumed,
	              ov->tls_cli_resumed, ov->tls_cli_failed);
	ui_metrics_one(o, "gatehouse_tls_ktls_connections_total", "counter",
	               "TLS connections whose sending side the kernel encrypts (kernel TLS).",
	               ov->tls_ktls);

	ui_metrics_one(o, "gatehouse_auth_sections", "gauge",
	               "<Proxy> sections of the running configuration with authentication "
	               "settings.", ov->auth_sections);
	ui_metrics_head(o, "gatehouse_auth_requests_total", "counter",
	                "Proxy authentication outcomes: ok (a user proved), failed (wrong or "
	                "unknown credentials), challenged (407 asking for credentials), limited "
	                "(429 after too many failures from the address), unavailable (503, a "
	                "helper could not answer).");
	ui_out_printf(o, "gatehouse_auth_requests_total{result=\"ok\"} %" PRIu64 "\n"
	              "gatehouse_auth_requests_total{result=\"failed\"} %" PRIu64 "\n"
	              "gatehouse_auth_requests_total{result=\"challenged\"} %" PRIu64 "\n"
	              "gatehouse_auth_requests_total{result=\"limited\"} %" PRIu64 "\n"
	              "gatehouse_auth_requests_total{result=\"unavailable\"} %" PRIu64 "\n",
	              ov->auth_ok, ov->auth_failed, ov->auth_challenged, ov->auth_limited,
	              ov->auth_unavailable);
	ui_metrics_head(o, "gatehouse_auth_cache_lookups_total", "counter",
	                "Credential checks by where the answer came from: result (the result "
	                "cache had it), connection (the connection's last accepted credential), "
	                "miss (verified: a password hash or a helper request).");
	ui_out_printf(o, "gatehouse_auth_cache_lookups_total{answer=\"result\"} %" PRIu64 "\n"
	              "gatehouse_auth_cache_lookups_total{answer=\"connection\"} %" PRIu64 "\n"
	              "gatehouse_auth_cache_lookups_total{answer=\"miss\"} %" PRIu64 "\n",
	              ov->auth_cache_hits, ov->auth_conn_hits, ov->auth_cache_misses);
	ui_metrics_one(o, "gatehouse_auth_verifications_total", "counter",
	               "Password hashes computed and helper requests made.",
	               ov->auth_verifications);
	ui_metrics_head(o, "gatehouse_auth_helper_children", "gauge",
	                "Authentication helper processes (AuthExternal, AuthNegotiateExternal) "
	                "of all workers: state up (running), busy (answering a request).");
	ui_out_printf(o, "gatehouse_auth_helper_children{state=\"up\"} %" PRIu64 "\n"
	              "gatehouse_auth_helper_children{state=\"busy\"} %" PRIu64 "\n",
	              ov->helper_up, ov->helper_busy);
	ui_metrics_one(o, "gatehouse_auth_helper_queued", "gauge",
	               "Requests waiting for a free helper process.", ov->helper_queued);
	ui_metrics_head(o, "gatehouse_auth_helper_events_total", "counter",
	                "Helper pool events: request (sent to a helper), reply (answered), "
	                "timeout (unanswered in AuthExternalTimeout: the child is killed), death "
	                "(a child exited), restart (a child started again), overload (the queue "
	                "was full).");
	ui_out_printf(o, "gatehouse_auth_helper_events_total{event=\"request\"} %" PRIu64 "\n"
	              "gatehouse_auth_helper_events_total{event=\"reply\"} %" PRIu64 "\n"
	              "gatehouse_auth_helper_events_total{event=\"timeout\"} %" PRIu64 "\n"
	              "gatehouse_auth_helper_events_total{event=\"death\"} %" PRIu64 "\n"
	              "gatehouse_auth_helper_events_total{event=\"restart\"} %" PRIu64 "\n"
	              "gatehouse_auth_helper_events_total{event=\"overload\"} %" PRIu64 "\n",
	              ov->helper_requests, ov->helper_replies, ov->helper_timeouts,
	              ov->helper_deaths, ov->helper_restarts, ov->helper_overloads);

	if (ov->nparents > 0) {
		size_t n = ov->nparents < UI_PARENTS_MAX ? ov->nparents : UI_PARENTS_MAX;
		static const struct {
			const char *name, *type, *help;
		} fam[] = {
			{"gatehouse_parent_up", "gauge", "1 when the parent proxy is usable, 0 while "
			 "it is marked down."},
			{"gatehouse_parent_backoff_seconds", "gauge", "Time until a parent marked "
			 "down is tried again."},
			{"gatehouse_parent_failures", "gauge", "Consecutive failures of the parent."},
			{"gatehouse_parent_requests_total", "counter", "Requests sent through the "
			 "parent."},
		};
		for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
			ui_metrics_head(o, fam[f].name, fam[f].type, fam[f].help);
			for (size_t i = 0; i < n; i++) {
				const struct ui_parent *p = &ov->parents[i];
				ui_out_printf(o, "%s{parent=\"", fam[f].name);
				ui_metrics_label(o, p->name);
				if (f == 0)
					ui_out_printf(o, "\"} %d\n", p->up);
				else if (f == 1)
					ui_out_printf(o, "\"} %u.%03u\n", p->backoff_left_ms / 1000,
					              p->backoff_left_ms % 1000);
				else if (f == 2)
					ui_out_printf(o, "\"} %u\n", p->fails);
				else
					ui_out_printf(o, "\"} %" PRIu64 "\n", p->requests);
			}
		}
	}
}

int ui_page_metrics(struct ui_call *call);

int
ui_page_metrics(struct ui_call *call)
{
	const struct ui_stats_ops *ops = call->ops ? call->ops->stats : NULL;
	if (ops == NULL || ops->overview == NULL)
		return ui_page_error(call, 503, "counters are not available");
	struct ui_overview *ov = calloc(1, sizeof(*ov));
	if (ov == NULL)
		return ui_page_error(call, 500, "out of memory");
	if (ops->overview(call->wctx, ov) < 0) {
		free(ov);
		return ui_page_error(call, 500, "counters could not be read");
	}
	snprintf(call->resp.ctype, sizeof(call->resp.ctype), "text/plain; version=0.0.4; "
	         "charset=utf-8");
	ui_metrics_render(&call->resp.body, ov, call->ops->version);
	free(ov);
	return UI_DONE;
}
