/*
 * test_metrics.c - the Prometheus text exposition of /metrics (webui/p_metrics.c) and the
 * ?auto lines of the overview (webui/p_overview.c): label values escaped (backslash, double
 * quote, line feed), HELP and TYPE before each family's samples, histogram buckets
 * cumulative with le="+Inf" equal to _count and _sum in seconds, every sample line
 * well-formed; ?auto one "Key: value" per line whatever the strings hold. Proxy
 * authentication's counters and the helper pools' figures (issue 14) appear in both.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "webui/ui.h"
#include "webui/ui_stats.h"

static char *
render(const struct ui_overview *ov, const char *version, int aut)
{
	struct ui_out o;
	ui_out_init(&o);
	if (aut)
		ui_overview_auto(&o, ov, version);
	else
		ui_metrics_render(&o, ov, version);
	assert_false(o.oom);
	ui_out_put(&o, "", 1);
	return o.p;
}

static void
fill(struct ui_overview *ov)
{
	memset(ov, 0, sizeof(*ov));
	ov->now = 1000100;
	ov->started = 1000000;
	snprintf(ov->config, sizeof(ov->config), "/etc/gatehouse/gatehouse.conf");
	ov->workers = 2;
	for (int i = 0; i < UI_OUTCOMES; i++)
		ov->req[i] = (uint64_t)(i + 1) * 10;
	const uint64_t le[UI_DUR_BUCKETS] = {1000, 2500, 5000, 10000, 25000, 50000, 100000,
	                                     250000, 500000, 1000000, 2500000, 5000000, 10000000};
	memcpy(ov->dur_le_us, le, sizeof(le));
	ov->dur_bin[0] = 5;
	ov->dur_bin[3] = 2;
	ov->dur_bin[UI_DUR_BUCKETS] = 1;
	ov->dur_sum_us = 12345678;
	ov->cache_on = 1;
	ov->cache_entries = 42;
	ov->cache_bytes = 4096;
	ov->nparents = 2;
	snprintf(ov->parents[0].name, sizeof(ov->parents[0].name), "fw.test:3128");
	ov->parents[0].up = 1;
	ov->parents[0].requests = 7;
	snprintf(ov->parents[1].name, sizeof(ov->parents[1].name), "we\"ird\\na\nme:1");
	ov->parents[1].backoff_left_ms = 4500;
	snprintf(ov->reload_err, sizeof(ov->reload_err), "gh.conf:3: bad\r\nline");
	ov->reload_at = 1000050;
	ov->auth_sections = 2;
	ov->auth_ok = 101;
	ov->auth_failed = 102;
	ov->auth_challenged = 103;
	ov->auth_limited = 104;
	ov->auth_unavailable = 105;
	ov->auth_cache_hits = 106;
	ov->auth_cache_misses = 107;
	ov->auth_conn_hits = 108;
	ov->auth_verifications = 109;
	ov->helper_up = 5;
	ov->helper_busy = 2;
	ov->helper_queued = 3;
	ov->helper_requests = 110;
	ov->helper_replies = 111;
	ov->helper_timeouts = 112;
	ov->helper_deaths = 113;
	ov->helper_restarts = 114;
	ov->helper_overloads = 115;
}

static const char *
line_with(const char *text, const char *start)
{
	size_t n = strlen(start);
	for (const char *p = text; p && *p;) {
		if (strncmp(p, start, n) == 0)
			return p;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

static uint64_t
sample(const char *text, const char *series)
{
	char want[512];
	snprintf(want, sizeof(want), "%s ", series);
	const char *l = line_with(text, want);
	assert_non_null(l);
	return strtoull(l + strlen(want), NULL, 10);
}

static void
metrics_label_values_are_escaped(void **state)
{
	(void)state;
	struct ui_overview ov;
	fill(&ov);
	char *t = render(&ov, "1.0 \"x\"", 0);
	assert_non_null(strstr(t, "gatehouse_build_info{version=\"1.0 \\\"x\\\"\"} 1\n"));
	assert_non_null(strstr(t, "gatehouse_parent_up{parent=\"we\\\"ird\\\\na\\nme:1\"} 0\n"));
	assert_non_null(strstr(t, "gatehouse_parent_up{parent=\"fw.test:3128\"} 1\n"));
	assert_non_null(strstr(t, "gatehouse_parent_backoff_seconds{parent=\"we\\\"ird\\\\na\\nme:1\"}"
	                          " 4.500\n"));
	assert_int_equal(sample(t, "gatehouse_parent_requests_total{parent=\"fw.test:3128\"}"), 7);
	free(t);
}

/* Every line is a comment (# HELP / # TYPE) or NAME[{LABELS}] VALUE, and each family's
 * TYPE comes before its first sample. */
static void
metrics_lines_are_well_formed(void **state)
{
	(void)state;
	struct ui_overview ov;
	fill(&ov);
	char *t = render(&ov, "0.1.0", 0);
	char typed[64][80];
	int ntyped = 0, nsamples = 0;
	assert_true(strlen(t) > 0 && t[strlen(t) - 1] == '\n');
	for (char *l = t; *l;) {
		char *nl = strchr(l, '\n');
		assert_non_null(nl);
		*nl = '\0';
		if (strncmp(l, "# HELP ", 7) == 0) {
			assert_true(strncmp(l + 7, "gatehouse_", 10) == 0);
		} else if (strncmp(l, "# TYPE ", 7) == 0) {
			char name[80], type[20];
			assert_int_equal(sscanf(l + 7, "%79s %19s", name, type), 2);
			assert_true(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
			            strcmp(type, "histogram") == 0);
			if (strcmp(type, "counter") == 0)
				assert_non_null(strstr(name, "_total"));
			assert_true(ntyped < 64);
			snprintf(typed[ntyped++], sizeof(typed[0]), "%s", name);
		} else {
			size_t n = strspn(l, "abcdefghijklmnopqrstuvwxyz_0123456789");
			assert_true(n > 0);
			int found = 0;
			for (int i = 0; i < ntyped && !found; i++) {
				size_t k = strlen(typed[i]);
				found = strncmp(l, typed[i], k) == 0 &&
				        (n == k || strncmp(l + k, "_bucket", 7) == 0 ||
				         strncmp(l + k, "_sum", 4) == 0 || strncmp(l + k, "_count", 6) == 0);
			}
			assert_true(found);
			const char *v = strrchr(l, ' ');
			assert_non_null(v);
			char *end;
			strtod(v + 1, &end);
			assert_true(*end == '\0' && end > v + 1);
			nsamples++;
		}
		l = nl + 1;
	}
	assert_true(nsamples > 40);
	free(t);
}

static void
metrics_histogram_is_cumulative(void **state)
{
	(void)state;
	struct ui_overview ov;
	fill(&ov);
	char *t = render(&ov, "0.1.0", 0);
	const char *h = "gatehouse_request_duration_seconds";
	char s[128];
	snprintf(s, sizeof(s), "%s_bucket{le=\"0.001\"}", h);
	assert_int_equal(sample(t, s), 5);
	snprintf(s, sizeof(s), "%s_bucket{le=\"0.0025\"}", h);
	assert_int_equal(sample(t, s), 5);
	snprintf(s, sizeof(s), "%s_bucket{le=\"0.01\"}", h);
	assert_int_equal(sample(t, s), 7);
	snprintf(s, sizeof(s), "%s_bucket{le=\"10\"}", h);
	assert_int_equal(sample(t, s), 7);
	snprintf(s, sizeof(s), "%s_bucket{le=\"+Inf\"}", h);
	assert_int_equal(sample(t, s), 8);
	snprintf(s, sizeof(s), "%s_count", h);
	assert_int_equal(sample(t, s), 8);
	assert_non_null(strstr(t, "gatehouse_request_duration_seconds_sum 12.345678\n"));
	assert_non_null(strstr(t, "# TYPE gatehouse_request_duration_seconds histogram\n"));
	/* the buckets in increasing le order, +Inf last */
	const char *a = strstr(t, "le=\"0.001\""), *b = strstr(t, "le=\"0.5\""),
	           *c = strstr(t, "le=\"+Inf\"");
	assert_true(a && b && c && a < b && b < c);
	free(t);
}

static void
metrics_counters_and_gauges_carry_the_figures(void **state)
{
	(void)state;
	struct ui_overview ov;
	fill(&ov);
	char *t = render(&ov, "0.1.0", 0);
	assert_int_equal(sample(t, "gatehouse_requests_total{outcome=\"hit\"}"), 10);
	assert_int_equal(sample(t, "gatehouse_requests_total{outcome=\"blocked\"}"), 50);
	assert_int_equal(sample(t, "gatehouse_requests_total{outcome=\"local\"}"), 70);
	assert_int_equal(sample(t, "gatehouse_cache_entries"), 42);
	assert_int_equal(sample(t, "gatehouse_cache_bytes"), 4096);
	assert_int_equal(sample(t, "gatehouse_workers"), 2);
	free(t);
	/* no store: no cache families at all, rather than zeros that look like an empty one */
	ov.cache_on = 0;
	ov.nparents = 0;
	t = render(&ov, "0.1.0", 0);
	assert_null(strstr(t, "gatehouse_cache_entries"));
	assert_null(strstr(t, "gatehouse_parent_up"));
	free(t);
}

static void
metrics_and_auto_carry_the_auth_counters(void **state)
{
	(void)state;
	struct ui_overview ov;
	fill(&ov);
	char *t = render(&ov, "0.1.0", 0);
	static const struct {
		const char *series;
		uint64_t v;
	} want[] = {
		{"gatehouse_auth_sections", 2},
		{"gatehouse_auth_requests_total{result=\"ok\"}", 101},
		{"gatehouse_auth_requests_total{result=\"failed\"}", 102},
		{"gatehouse_auth_requests_total{result=\"challenged\"}", 103},
		{"gatehouse_auth_requests_total{result=\"limited\"}", 104},
		{"gatehouse_auth_requests_total{result=\"unavailable\"}", 105},
		{"gatehouse_auth_cache_lookups_total{answer=\"result\"}", 106},
		{"gatehouse_auth_cache_lookups_total{answer=\"miss\"}", 107},
		{"gatehouse_auth_cache_lookups_total{answer=\"connection\"}", 108},
		{"gatehouse_auth_verifications_total", 109},
		{"gatehouse_auth_helper_children{state=\"up\"}", 5},
		{"gatehouse_auth_helper_children{state=\"busy\"}", 2},
		{"gatehouse_auth_helper_queued", 3},
		{"gatehouse_auth_helper_events_total{event=\"request\"}", 110},
		{"gatehouse_auth_helper_events_total{event=\"reply\"}", 111},
		{"gatehouse_auth_helper_events_total{event=\"timeout\"}", 112},
		{"gatehouse_auth_helper_events_total{event=\"death\"}", 113},
		{"gatehouse_auth_helper_events_total{event=\"restart\"}", 114},
		{"gatehouse_auth_helper_events_total{event=\"overload\"}", 115},
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(sample(t, want[i].series), want[i].v);
	free(t);
	t = render(&ov, "0.1.0", 1);
	static const struct {
		const char *key;
		uint64_t v;
	} keys[] = {
		{"AuthSections:", 2}, {"AuthOK:", 101}, {"AuthFailed:", 102},
		{"AuthChallenged:", 103}, {"AuthLimited:", 104}, {"AuthUnavailable:", 105},
		{"AuthCacheHits:", 106}, {"AuthCacheMisses:", 107}, {"AuthConnHits:", 108},
		{"AuthVerifications:", 109}, {"HelperChildren:", 5}, {"HelperBusy:", 2},
		{"HelperQueued:", 3}, {"HelperTimeouts:", 112}, {"HelperRestarts:", 114},
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		assert_int_equal(sample(t, keys[i].key), keys[i].v);
	free(t);
}

static void
auto_is_one_key_value_per_line(void **state)
{
	(void)state;
	struct ui_overview ov;
	fill(&ov);
	char *t = render(&ov, "0.1.0", 1);
	int lines = 0;
	for (char *l = t; *l;) {
		char *nl = strchr(l, '\n');
		assert_non_null(nl);
		*nl = '\0';
		char *colon = strstr(l, ": ");
		assert_non_null(colon);
		for (char *k = l; k < colon; k++)
			assert_true((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') ||
			            (*k >= '0' && *k <= '9'));
		lines++;
		if (strncmp(l, "LastReloadError: ", 17) == 0)
			assert_string_equal(l, "LastReloadError: gh.conf:3: bad  line");
		if (strncmp(l, "Uptime: ", 8) == 0)
			assert_string_equal(l, "Uptime: 100");
		if (strncmp(l, "ReqHit: ", 8) == 0)
			assert_string_equal(l, "ReqHit: 10");
		l = nl + 1;
	}
	assert_true(lines > 30);
	free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(metrics_label_values_are_escaped),
		cmocka_unit_test(metrics_lines_are_well_formed),
		cmocka_unit_test(metrics_histogram_is_cumulative),
		cmocka_unit_test(metrics_counters_and_gauges_carry_the_figures),
		cmocka_unit_test(metrics_and_auto_carry_the_auth_counters),
		cmocka_unit_test(auto_is_one_key_value_per_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
