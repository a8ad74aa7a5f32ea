/*
 * p_history.c - the status page's history (issue 11): charts (inline SVG drawn here, no chart
 * library), top lists and recent requests, and their JSON: api/series, api/top, api/recent.
 * The data comes through call->ops->series (webui/ui_series.h, daemon/history.c).
 *
 * Every page also answers ?part=... with just the fragment ui.js swaps in every few seconds
 * (the element's data-gh-refresh names that URL), so the pages work without JavaScript and
 * the script needs no renderer of its own. No style attributes anywhere (CSP default-src
 * 'self'): the SVG uses presentation attributes and the classes of ui.css.
 */
#include "webui/ui_priv.h"
#include "webui/ui_series.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- number and time formatting ---- */

/* v with an SI suffix: 950, 1.2k, 34M, 0.25: two digits below 10 of a unit. */
static void
ui_hist_si(char *buf, size_t n, double v)
{
	static const char *const suf[] = {"", "k", "M", "G", "T", "P"};
	size_t i = 0;
	if (v < 0)
		v = 0;                    /* charts start at 0 */
	while (v >= 1000 && i + 1 < sizeof(suf) / sizeof(suf[0])) {
		v /= 1000;
		i++;
	}
	if (v >= 10 || v == (double)(long long)v)
		snprintf(buf, n, "%.0f%s", v, suf[i]);
	else
		snprintf(buf, n, "%.2g%s", v, suf[i]);
}

/* Bytes in binary units: 512 B, 1.5 KiB, 20 MiB. */
static void
ui_hist_bytes(char *buf, size_t n, uint64_t b)
{
	static const char *const suf[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)b;
	size_t i = 0;
	while (v >= 1024 && i + 1 < sizeof(suf) / sizeof(suf[0])) {
		v /= 1024;
		i++;
	}
	if (i == 0 || v >= 10)
		snprintf(buf, n, "%.0f %s", v, suf[i]);
	else
		snprintf(buf, n, "%.1f %s", v, suf[i]);
}

static void
ui_hist_hhmm(char *buf, size_t n, int64_t t, int secs)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	if (secs)
		strftime(buf, n, "%Y-%m-%d %H:%M:%S", &tm);
	else
		strftime(buf, n, "%H:%M", &tm);
}

/* The smallest of 1, 2, 2.5, 5 x 10^k at or above v (v > 0): a round tick step. */
static double
ui_hist_nice(double v)
{
	double p = 1;
	while (p * 10 <= v)
		p *= 10;
	while (p > v)
		p /= 10;
	static const double m[] = {1, 2, 2.5, 5, 10};
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		if (m[i] * p >= v)
			return m[i] * p;
	return 10 * p;
}

/* ---- SVG charts ---- */

#define UI_CH_W 720
#define UI_CH_H 200
#define UI_CH_ML 56
#define UI_CH_MR 12
#define UI_CH_MT 22
#define UI_CH_MB 26

struct ui_chart_line {
	const double *v;          /* n values; NAN: no value (a gap in the line) */
	const char *label;
	const char *color;        /* an SVG colour: a presentation attribute, not a style */
};

/* An SVG line chart of n points, one per res seconds from start, with labelled axes: y from
 * 0 to a round maximum (ymax_fixed when > 0, e.g. 100 for a percentage), x in UTC clock
 * times. Text is escaped; coordinates stay inside the view box whatever the values. */
static void
ui_chart_svg(struct ui_out *o, const char *title, const char *yunit,
             const struct ui_chart_line *lines, size_t nl, unsigned n, int64_t start,
             unsigned res, double ymax_fixed)
{
	const double pw = UI_CH_W - UI_CH_ML - UI_CH_MR, ph = UI_CH_H - UI_CH_MT - UI_CH_MB;
	double max = 0;
	for (size_t l = 0; l < nl; l++)
		for (unsigned i = 0; i < n; i++)
			if (isfinite(lines[l].v[i]) && lines[l].v[i] > max)
				max = lines[l].v[i];
	/* y axis: a round step, up to four of them covering the peak (0, 1, 2, 3, 4) */
	double ymax = ymax_fixed > 0 ? ymax_fixed : max > 0 ? max : 1;
	double ystep = ui_hist_nice(ymax / 4);
	int nsteps = 1;
	while (nsteps < 4 && ystep * nsteps < ymax * (1 - 1e-9))
		nsteps++;
	ymax = ystep * nsteps;
	char a[32], b[32];

	ui_out_printf(o, "<svg class=\"chart\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
	              "role=\"img\" xmlns=\"http://www.w3.org/2000/svg\">\n<title>",
	              UI_CH_W, UI_CH_H, UI_CH_W, UI_CH_H);
	ui_out_html(o, title, strlen(title));
	ui_out_puts(o, "</title>\n");
	ui_out_printf(o, "<text x=\"%d\" y=\"14\" font-size=\"12\" font-weight=\"600\" "
	              "fill=\"currentColor\">", UI_CH_ML);
	ui_out_html(o, title, strlen(title));
	ui_out_puts(o, " <tspan font-weight=\"400\" fill=\"#888\">(");
	ui_out_html(o, yunit, strlen(yunit));
	ui_out_puts(o, ")</tspan></text>\n");
	/* legend, right-aligned */
	double lx = UI_CH_W - UI_CH_MR;
	for (size_t l = nl; l-- > 0;) {
		lx -= 8.0 * (double)strlen(lines[l].label) + 22;
		ui_out_printf(o, "<rect x=\"%.0f\" y=\"6\" width=\"10\" height=\"10\" fill=\"", lx);
		ui_out_html(o, lines[l].color, strlen(lines[l].color));
		ui_out_printf(o, "\"/><text x=\"%.0f\" y=\"15\" font-size=\"11\" fill=\"currentColor\">",
		              lx + 14);
		ui_out_html(o, lines[l].label, strlen(lines[l].label));
		ui_out_puts(o, "</text>\n");
	}
	/* y grid lines with labels */
	for (int k = 0; k <= nsteps; k++) {
		double y = UI_CH_MT + ph - ph * k / nsteps;
		ui_hist_si(a, sizeof(a), ystep * k);
		ui_out_printf(o, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#8884\" "
		              "stroke-width=\"1\"/><text x=\"%d\" y=\"%.1f\" font-size=\"10\" "
		              "text-anchor=\"end\" fill=\"#888\">%s</text>\n",
		              UI_CH_ML, y, UI_CH_W - UI_CH_MR, y, UI_CH_ML - 4, y + 3, a);
	}
	/* x axis: clock times, every 10 min over an hour, every 3 h over a day */
	int64_t span = (int64_t)n * res;
	int64_t step = span <= 3600 ? 600 : 10800;
	int64_t t0 = start >= 0 ? (start + step - 1) / step * step : start / step * step;
	for (int64_t t = t0; t <= start + span; t += step) {
		double x = UI_CH_ML + pw * (double)(t - start) / (double)span;
		ui_hist_hhmm(b, sizeof(b), t, 0);
		ui_out_printf(o, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#8884\" "
		              "stroke-width=\"1\"/><text x=\"%.1f\" y=\"%d\" font-size=\"10\" "
		              "text-anchor=\"middle\" fill=\"#888\">%s</text>\n",
		              x, UI_CH_MT, x, UI_CH_MT + (int)ph + 4, x, UI_CH_H - 8, b);
	}
	ui_out_printf(o, "<text x=\"4\" y=\"%d\" font-size=\"10\" fill=\"#888\">UTC</text>\n",
	              UI_CH_H - 8);
	/* the lines: one path each, a gap where a value is missing */
	for (size_t l = 0; l < nl; l++) {
		ui_out_puts(o, "<path fill=\"none\" stroke-width=\"1.5\" stroke=\"");
		ui_out_html(o, lines[l].color, strlen(lines[l].color));
		ui_out_puts(o, "\" d=\"");
		int pen = 0, any = 0;
		for (unsigned i = 0; i < n; i++) {
			double v = lines[l].v[i];
			if (!isfinite(v)) {
				pen = 0;
				continue;
			}
			if (v < 0)
				v = 0;
			if (v > ymax)
				v = ymax;
			double x = UI_CH_ML + pw * (i + 0.5) / n;
			double y = UI_CH_MT + ph - ph * v / ymax;
			ui_out_printf(o, "%s%.1f %.1f", pen ? " L" : any ? " M" : "M", x, y);
			pen = any = 1;
		}
		ui_out_puts(o, "\"/>\n");
	}
	ui_out_puts(o, "</svg>\n");
}

/* ---- charts page ---- */

static const char *const ui_hist_metric_names[UI_SERIES_NMETRIC] = {
	"requests", "hits", "bytes_client", "bytes_upstream", "upstream_errors",
};

static int
ui_hist_span(const struct ui_call *call, enum ui_series_span *span, const char *arg)
{
	char v[16];
	long n = ui_arg(call, arg, v, sizeof(v));
	if (n < 0 || strcmp(v, "hour") == 0)
		*span = UI_SPAN_HOUR;
	else if (strcmp(v, "day") == 0)
		*span = UI_SPAN_DAY;
	else
		return -1;
	return 0;
}

/* The charts of one span, with its totals above them. */
static void
ui_hist_charts_part(struct ui_call *call, const struct ui_series *s, enum ui_series_span span)
{
	struct ui_out *o = &call->resp.body;
	unsigned n = s->n;
	double *req = calloc(5 * (size_t)n, sizeof(double));
	if (req == NULL) {
		o->oom = 1;
		return;
	}
	double *hit = req + n, *bc = req + 2 * n, *bu = req + 3 * n, *ue = req + 4 * n;
	uint64_t tot[UI_SERIES_NMETRIC] = {0};
	for (unsigned i = 0; i < n; i++) {
		const uint64_t *v = s->v[i];
		for (int m = 0; m < UI_SERIES_NMETRIC; m++)
			tot[m] += v[m];
		req[i] = (double)v[UI_SERIES_REQUESTS] / s->res;
		hit[i] = v[UI_SERIES_REQUESTS] ? 100.0 * (double)v[UI_SERIES_HITS] /
		                                 (double)v[UI_SERIES_REQUESTS] : NAN;
		bc[i] = (double)v[UI_SERIES_BYTES_CLIENT] / s->res;
		bu[i] = (double)v[UI_SERIES_BYTES_UPSTREAM] / s->res;
		ue[i] = (double)v[UI_SERIES_UP_ERRORS];
	}
	const char *what = span == UI_SPAN_DAY ? "Last 24 hours, 5-minute points"
	                                       : "Last hour, 10-second points";
	char b1[32], b2[32];
	ui_out_printf(o, "<h2>%s</h2>\n<div class=\"cards\">\n", what);
	ui_out_printf(o, "<div class=\"card\"><h2>Requests</h2><div class=\"big\" "
	              "data-gh-metric=\"requests\">%llu</div></div>\n",
	              (unsigned long long)tot[UI_SERIES_REQUESTS]);
	if (tot[UI_SERIES_REQUESTS])
		ui_out_printf(o, "<div class=\"card\"><h2>Hit ratio</h2><div class=\"big\">%.1f %%"
		              "</div><div class=\"mute\">%llu hits</div></div>\n",
		              100.0 * (double)tot[UI_SERIES_HITS] / (double)tot[UI_SERIES_REQUESTS],
		              (unsigned long long)tot[UI_SERIES_HITS]);
	else
		ui_out_puts(o, "<div class=\"card\"><h2>Hit ratio</h2><div class=\"big\">-</div>"
		            "<div class=\"mute\">no requests</div></div>\n");
	ui_hist_bytes(b1, sizeof(b1), tot[UI_SERIES_BYTES_CLIENT]);
	ui_hist_bytes(b2, sizeof(b2), tot[UI_SERIES_BYTES_UPSTREAM]);
	ui_out_printf(o, "<div class=\"card\"><h2>To clients</h2><div class=\"big\">%s</div></div>\n"
	              "<div class=\"card\"><h2>From upstreams</h2><div class=\"big\">%s</div></div>\n",
	              b1, b2);
	ui_out_printf(o, "<div class=\"card\"><h2>Upstream errors</h2><div class=\"big%s\">%llu"
	              "</div><div class=\"mute\">502 and 504 answers</div></div>\n</div>\n",
	              tot[UI_SERIES_UP_ERRORS] ? " bad" : "",
	              (unsigned long long)tot[UI_SERIES_UP_ERRORS]);

	struct ui_chart_line l_req = {req, "requests/s", "#2563eb"};
	struct ui_chart_line l_hit = {hit, "hit ratio", "#16a34a"};
	struct ui_chart_line l_bytes[2] = {{bc, "to clients", "#2563eb"},
	                                   {bu, "from upstreams", "#d97706"}};
	struct ui_chart_line l_err = {ue, "upstream errors", "#dc2626"};
	ui_out_puts(o, "<div class=\"hist-grid\">\n");
	ui_chart_svg(o, "Requests", "per second", &l_req, 1, n, s->start, s->res, 0);
	ui_chart_svg(o, "Hit ratio", "% of requests", &l_hit, 1, n, s->start, s->res, 100);
	ui_chart_svg(o, "Bandwidth", "bytes per second", l_bytes, 2, n, s->start, s->res, 0);
	ui_chart_svg(o, "Upstream errors", span == UI_SPAN_DAY ? "per 5 minutes" : "per 10 s",
	             &l_err, 1, n, s->start, s->res, 0);
	ui_out_puts(o, "</div>\n");
	free(req);
}

static int
ui_hist_no_data(struct ui_call *call)
{
	return ui_page_error(call, 503, "the history of requests is not available");
}

static int
ui_page_charts(struct ui_call *call)
{
	const struct ui_series_ops *ops = call->ops ? call->ops->series : NULL;
	if (ops == NULL)
		return ui_hist_no_data(call);
	char part[16];
	enum ui_series_span span = UI_SPAN_HOUR;
	int only = ui_arg(call, "part", part, sizeof(part)) >= 0;
	if (only && ui_hist_span(call, &span, "part") < 0)
		return ui_page_error(call, 400, "part must be hour or day");
	struct ui_series *s = malloc(sizeof(*s));
	if (s == NULL)
		return ui_page_error(call, 500, "out of memory");
	struct ui_out *o = &call->resp.body;
	if (only) {
		if (ops->series(call->wctx, span, call->req.now, s) < 0) {
			free(s);
			return ui_page_error(call, 500, "cannot read the series");
		}
		ui_hist_charts_part(call, s, span);
		free(s);
		return UI_DONE;
	}
	ui_page_begin(call, "Charts", "charts");
	static const char *const names[2] = {"hour", "day"};
	for (int k = 0; k < 2; k++) {
		span = k ? UI_SPAN_DAY : UI_SPAN_HOUR;
		ui_out_printf(o, "<section id=\"charts-%s\" data-gh-refresh=\"", names[k]);
		ui_out_html(o, call->req.prefix, strlen(call->req.prefix));
		ui_out_printf(o, "charts?part=%s\" data-gh-every=\"%d\">\n", names[k], k ? 60 : 5);
		if (ops->series(call->wctx, span, call->req.now, s) == 0)
			ui_hist_charts_part(call, s, span);
		ui_out_puts(o, "</section>\n");
	}
	free(s);
	ui_page_end(call);
	return UI_DONE;
}

static int
ui_page_api_series(struct ui_call *call)
{
	const struct ui_series_ops *ops = call->ops ? call->ops->series : NULL;
	if (ops == NULL)
		return ui_hist_no_data(call);
	enum ui_series_span span;
	if (ui_hist_span(call, &span, "span") < 0)
		return ui_page_error(call, 400, "span must be hour or day");
	struct ui_series *s = malloc(sizeof(*s));
	if (s == NULL)
		return ui_page_error(call, 500, "out of memory");
	if (ops->series(call->wctx, span, call->req.now, s) < 0) {
		free(s);
		return ui_page_error(call, 500, "cannot read the series");
	}
	ui_resp_json(call);
	struct ui_out *o = &call->resp.body;
	uint64_t tot[UI_SERIES_NMETRIC] = {0};
	ui_out_printf(o, "{\"span\":\"%s\",\"resolution_s\":%u,\"start\":%lld,\"now\":%lld,"
	              "\"metrics\":[", span == UI_SPAN_DAY ? "day" : "hour", s->res,
	              (long long)s->start, (long long)call->req.now);
	for (int m = 0; m < UI_SERIES_NMETRIC; m++)
		ui_out_printf(o, "%s\"%s\"", m ? "," : "", ui_hist_metric_names[m]);
	ui_out_puts(o, "],\"points\":[");
	for (unsigned i = 0; i < s->n; i++) {
		ui_out_puts(o, i ? ",[" : "[");
		for (int m = 0; m < UI_SERIES_NMETRIC; m++) {
			tot[m] += s->v[i][m];
			ui_out_printf(o, "%s%llu", m ? "," : "", (unsigned long long)s->v[i][m]);
		}
		ui_out_puts(o, "]");
	}
	ui_out_puts(o, "],\"totals\":{");
	for (int m = 0; m < UI_SERIES_NMETRIC; m++)
		ui_out_printf(o, "%s\"%s\":%llu", m ? "," : "", ui_hist_metric_names[m],
		              (unsigned long long)tot[m]);
	ui_out_puts(o, "}}\n");
	free(s);
	return UI_DONE;
}

/* ---- top lists ---- */

static const struct {
	const char *json;
	const char *title;
	const char *what;
	int bytes;
} ui_top_kinds[UI_TOP_NKIND] = {
	[UI_TOP_HOSTS_REQ] = {"hosts_by_requests", "Hosts by requests", "Host", 0},
	[UI_TOP_HOSTS_BYTES] = {"hosts_by_bytes", "Hosts by bytes", "Host", 1},
	[UI_TOP_CLIENTS_REQ] = {"clients_by_requests", "Clients by requests", "Client", 0},
	[UI_TOP_CLIENTS_BYTES] = {"clients_by_bytes", "Clients by bytes", "Client", 1},
	[UI_TOP_USERS_REQ] = {"users_by_requests", "Users by requests", "User", 0},
	[UI_TOP_USERS_BYTES] = {"users_by_bytes", "Users by bytes", "User", 1},
	[UI_TOP_BLOCKED] = {"blocked_hosts", "Blocked hosts", "Host", 0},
};

static void
ui_hist_top_table(struct ui_out *o, enum ui_top_kind k, const struct ui_top *t, size_t max)
{
	int blocked = k == UI_TOP_BLOCKED, bytes = ui_top_kinds[k].bytes;
	char b[32], e[32];
	ui_out_printf(o, "<div><h2>%s</h2>\n<table class=\"top\" id=\"top-%s\">\n"
	              "<tr><th class=\"num\">#</th><th>%s</th>%s<th class=\"num\">%s</th>"
	              "<th class=\"num\">share</th><th class=\"num\">error</th></tr>\n",
	              ui_top_kinds[k].title, ui_top_kinds[k].json, ui_top_kinds[k].what,
	              blocked ? "<th>rule</th>" : "",
	              bytes ? "bytes" : blocked ? "blocked" : "requests");
	if (t->n == 0)
		ui_out_printf(o, "<tr><td colspan=\"%d\" class=\"mute\">none in the last hour</td></tr>\n",
		              blocked ? 6 : 5);
	for (size_t i = 0; i < t->n && i < max; i++) {
		const struct ui_top_item *it = &t->item[i];
		ui_out_printf(o, "<tr><td class=\"num\">%zu</td><td class=\"url\">", i + 1);
		ui_out_html(o, it->key, strlen(it->key));
		ui_out_puts(o, "</td>");
		if (blocked) {
			ui_out_puts(o, "<td><code>");
			ui_out_html(o, it->note, strlen(it->note));
			ui_out_puts(o, "</code></td>");
		}
		if (bytes) {
			ui_hist_bytes(b, sizeof(b), it->count);
			ui_hist_bytes(e, sizeof(e), it->err);
		} else {
			snprintf(b, sizeof(b), "%llu", (unsigned long long)it->count);
			snprintf(e, sizeof(e), "%llu", (unsigned long long)it->err);
		}
		ui_out_printf(o, "<td class=\"num\">%s</td><td class=\"num\">%.1f %%</td>"
		              "<td class=\"num mute\">&#177; %s</td></tr>\n", b,
		              t->total ? 100.0 * (double)it->count / (double)t->total : 0.0, e);
	}
	ui_out_puts(o, "</table></div>\n");
}

static int
ui_hist_top_n(const struct ui_call *call, size_t *n)
{
	char v[16];
	*n = 20;
	if (ui_arg(call, "n", v, sizeof(v)) < 0)
		return 0;
	char *end;
	long x = strtol(v, &end, 10);
	if (*v == '\0' || *end != '\0' || x < 1 || x > (long)UI_TOP_MAX)
		return -1;
	*n = (size_t)x;
	return 0;
}

/* The top lists' start, for the page and the API: NULL when the answer is already made (*ret:
 * no data, a bad n, no memory); else a list to fill one kind at a time with ui_top_get (free
 * it), and the number of items to show in *max. */
static struct ui_top *
ui_top_fetch(struct ui_call *call, size_t *max, int *ret)
{
	if (call->ops == NULL || call->ops->series == NULL) {
		*ret = ui_hist_no_data(call);
		return NULL;
	}
	if (ui_hist_top_n(call, max) < 0) {
		*ret = ui_page_error(call, 400, "n must be a number from 1 to %u", UI_TOP_MAX);
		return NULL;
	}
	struct ui_top *t = malloc(sizeof(*t));
	if (t == NULL)
		*ret = ui_page_error(call, 500, "out of memory");
	return t;
}

/* One kind's list into t (empty when the daemon has none). */
static void
ui_top_get(struct ui_call *call, enum ui_top_kind k, struct ui_top *t)
{
	if (call->ops->series->top(call->wctx, k, call->req.now, t) < 0)
		memset(t, 0, sizeof(*t));
}

static int
ui_page_top(struct ui_call *call)
{
	size_t max;
	int ret;
	struct ui_top *t = ui_top_fetch(call, &max, &ret);
	if (t == NULL)
		return ret;
	char part[8];
	int only = ui_arg(call, "part", part, sizeof(part)) >= 0;
	struct ui_out *o = &call->resp.body;
	if (!only) {
		ui_page_begin(call, "Top lists of the last hour", "top");
		ui_out_puts(o, "<p class=\"mute\">Estimates from bounded heavy-hitter sketches: each "
		            "count is within the error shown of the true figure.</p>\n");
		ui_out_puts(o, "<section id=\"top\" data-gh-refresh=\"");
		ui_out_html(o, call->req.prefix, strlen(call->req.prefix));
		ui_out_printf(o, "top?part=1&amp;n=%zu\">\n", max);
	}
	ui_out_puts(o, "<div class=\"hist-grid\">\n");
	for (int k = 0; k < UI_TOP_NKIND; k++) {
		ui_top_get(call, (enum ui_top_kind)k, t);
		ui_hist_top_table(o, (enum ui_top_kind)k, t, max);
	}
	free(t);
	ui_out_puts(o, "</div>\n");
	if (!only) {
		ui_out_puts(o, "</section>\n");
		ui_page_end(call);
	}
	return UI_DONE;
}

static int
ui_page_api_top(struct ui_call *call)
{
	size_t max;
	int ret;
	struct ui_top *t = ui_top_fetch(call, &max, &ret);
	if (t == NULL)
		return ret;
	ui_resp_json(call);
	struct ui_out *o = &call->resp.body;
	ui_out_printf(o, "{\"window_s\":3600,\"now\":%lld", (long long)call->req.now);
	for (int k = 0; k < UI_TOP_NKIND; k++) {
		ui_top_get(call, (enum ui_top_kind)k, t);
		ui_out_printf(o, ",\"%s\":{\"total\":%llu,\"items\":[", ui_top_kinds[k].json,
		              (unsigned long long)t->total);
		for (size_t i = 0; i < t->n && i < max; i++) {
			const struct ui_top_item *it = &t->item[i];
			ui_out_puts(o, i ? ",{\"key\":" : "{\"key\":");
			ui_out_json_str(o, it->key, strlen(it->key));
			if (k == UI_TOP_BLOCKED) {
				ui_out_puts(o, ",\"rule\":");
				ui_out_json_str(o, it->note, strlen(it->note));
			}
			ui_out_printf(o, ",\"count\":%llu,\"error\":%llu}", (unsigned long long)it->count,
			              (unsigned long long)it->err);
		}
		ui_out_puts(o, "]}");
	}
	ui_out_puts(o, "}\n");
	free(t);
	return UI_DONE;
}

/* ---- recent requests ---- */

struct ui_recent_filter {
	char client[64];
	char user[64];
	char host[256];
	int status;               /* 0 any; 100..599 exact */
	int status_class;         /* 0 any; 1..5: 1xx..5xx */
};

/* Read the filter from the query; -1 with a message in err on a bad value. */
static int
ui_recent_filter_get(const struct ui_call *call, struct ui_recent_filter *f, const char **err)
{
	memset(f, 0, sizeof(*f));
	char st[16];
	if (ui_arg(call, "client", f->client, sizeof(f->client)) >= (long)sizeof(f->client)) {
		*err = "client is too long";
		return -1;
	}
	if (ui_arg(call, "host", f->host, sizeof(f->host)) >= (long)sizeof(f->host)) {
		*err = "host is too long";
		return -1;
	}
	if (ui_arg(call, "user", f->user, sizeof(f->user)) >= (long)sizeof(f->user)) {
		*err = "user is too long";
		return -1;
	}
	long n = ui_arg(call, "status", st, sizeof(st));
	if (n <= 0)
		return 0;
	if (n == 3 && st[0] >= '1' && st[0] <= '5' && (st[1] == 'x' || st[1] == 'X') &&
	    (st[2] == 'x' || st[2] == 'X')) {
		f->status_class = st[0] - '0';
		return 0;
	}
	char *end;
	long v = strtol(st, &end, 10);
	if (n != 3 || *end != '\0' || v < 100 || v > 599) {
		*err = "status must be a code like 404 or a class like 4xx";
		return -1;
	}
	f->status = (int)v;
	return 0;
}

static int
ui_recent_match(const struct ui_recent_filter *f, const struct ui_recent *r)
{
	if (f->client[0] && strstr(r->client, f->client) == NULL)
		return 0;
	if (f->host[0] && strcasestr(r->host, f->host) == NULL)
		return 0;
	if (f->user[0] && strstr(r->user, f->user) == NULL)
		return 0;
	if (f->status && r->status != f->status)
		return 0;
	if (f->status_class && r->status / 100 != f->status_class)
		return 0;
	return 1;
}

static void
ui_recent_rows(struct ui_out *o, const struct ui_recent *r, size_t n,
               const struct ui_recent_filter *f)
{
	char t[32], b[32];
	size_t shown = 0;
	ui_out_puts(o, "<table id=\"recent-table\">\n<tr><th>time (UTC)</th><th>client</th>"
	            "<th>user</th><th>method</th><th>URL</th><th class=\"num\">status</th>"
	            "<th>action</th>"
	            "<th class=\"num\">bytes</th><th class=\"num\">ms</th></tr>\n");
	for (size_t i = 0; i < n; i++) {
		if (!ui_recent_match(f, &r[i]))
			continue;
		shown++;
		ui_hist_hhmm(t, sizeof(t), r[i].t_ms / 1000, 1);
		ui_out_printf(o, "<tr><td>%s.%03d</td><td>", t, (int)(r[i].t_ms % 1000));
		ui_out_html(o, r[i].client, strlen(r[i].client));
		ui_out_puts(o, "</td><td class=\"user\">");
		if (r[i].user[0])
			ui_out_html(o, r[i].user, strlen(r[i].user));
		else
			ui_out_puts(o, "-");
		ui_out_puts(o, "</td><td>");
		ui_out_html(o, r[i].method, strlen(r[i].method));
		ui_out_puts(o, "</td><td class=\"url\">");
		ui_out_html(o, r[i].url, strlen(r[i].url));
		ui_out_printf(o, "</td><td class=\"num%s\">%d</td><td>",
		              r[i].status >= 500 ? " bad" : r[i].status >= 400 ? " warn" : "",
		              r[i].status);
		ui_out_html(o, r[i].action, strlen(r[i].action));
		ui_hist_bytes(b, sizeof(b), r[i].bytes);
		ui_out_printf(o, "</td><td class=\"num\">%s</td><td class=\"num\">%llu</td></tr>\n", b,
		              (unsigned long long)r[i].dur_ms);
	}
	if (shown == 0)
		ui_out_puts(o, "<tr><td colspan=\"9\" class=\"mute\">no request matches</td>"
		            "</tr>\n");
	ui_out_puts(o, "</table>\n");
	ui_out_printf(o, "<p class=\"mute\">%zu of the last %zu requests shown.</p>\n", shown, n);
}

/* The filter as a query string (for the refresh URL), HTML-escaped for an attribute. */
static void
ui_recent_query(struct ui_out *o, const struct ui_call *call)
{
	static const char *const names[] = {"client", "user", "host", "status"};
	char v[256];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		long n = ui_arg(call, names[i], v, sizeof(v));
		if (n <= 0)
			continue;
		struct ui_out tmp;
		ui_out_init(&tmp);
		ui_out_url_enc(&tmp, v, strlen(v));
		ui_out_printf(o, "&amp;%s=", names[i]);
		if (!tmp.oom && tmp.p)
			ui_out_html(o, tmp.p, tmp.len);
		else
			o->oom = 1;
		ui_out_free(&tmp);
	}
}

static void
ui_recent_input(struct ui_out *o, const char *name, const char *label, const char *value,
                const char *hint)
{
	ui_out_printf(o, "<label>%s <input name=\"%s\" value=\"", label, name);
	ui_out_html(o, value, strlen(value));
	ui_out_printf(o, "\" placeholder=\"%s\"></label>\n", hint);
}

/* The recent requests and the filter of the query, for the page and the API: NULL when the
 * answer is already made (*ret: no data, a bad filter, no memory); else the entries (free
 * them) and their number in *n. */
static struct ui_recent *
ui_recent_fetch(struct ui_call *call, struct ui_recent_filter *f, size_t *n, int *ret)
{
	const struct ui_series_ops *ops = call->ops ? call->ops->series : NULL;
	const char *err = NULL;
	struct ui_recent *r;

	if (ops == NULL) {
		*ret = ui_hist_no_data(call);
		return NULL;
	}
	if (ui_recent_filter_get(call, f, &err) < 0) {
		*ret = ui_page_error(call, 400, "%s", err);
		return NULL;
	}
	r = calloc(UI_RECENT_MAX, sizeof(*r));
	if (r == NULL) {
		*ret = ui_page_error(call, 500, "out of memory");
		return NULL;
	}
	*n = ops->recent(call->wctx, r, UI_RECENT_MAX);
	return r;
}

static int
ui_page_recent(struct ui_call *call)
{
	struct ui_recent_filter f;
	size_t n = 0;
	int ret = UI_DONE;
	struct ui_recent *r = ui_recent_fetch(call, &f, &n, &ret);
	if (r == NULL)
		return ret;
	char part[8];
	struct ui_out *o = &call->resp.body;
	if (ui_arg(call, "part", part, sizeof(part)) >= 0) {
		ui_recent_rows(o, r, n, &f);
		free(r);
		return UI_DONE;
	}
	ui_page_begin(call, "Recent requests", "recent");
	ui_out_puts(o, "<form method=\"get\" action=\"");
	ui_out_html(o, call->req.prefix, strlen(call->req.prefix));
	ui_out_puts(o, "recent\" class=\"filter\">\n");
	char st[16] = "";
	ui_arg(call, "status", st, sizeof(st));
	ui_recent_input(o, "client", "Client", f.client, "10.1.0.7");
	ui_recent_input(o, "user", "User", f.user, "alice");
	ui_recent_input(o, "host", "Host", f.host, "example.org");
	ui_recent_input(o, "status", "Status", st, "404 or 5xx");
	ui_out_puts(o, "<button type=\"submit\">Filter</button>\n</form>\n");
	ui_out_puts(o, "<section id=\"recent\" data-gh-refresh=\"");
	ui_out_html(o, call->req.prefix, strlen(call->req.prefix));
	ui_out_puts(o, "recent?part=1");
	ui_recent_query(o, call);
	ui_out_puts(o, "\">\n");
	ui_recent_rows(o, r, n, &f);
	ui_out_puts(o, "</section>\n");
	free(r);
	ui_page_end(call);
	return UI_DONE;
}

static int
ui_page_api_recent(struct ui_call *call)
{
	struct ui_recent_filter f;
	size_t n = 0;
	int ret = UI_DONE;
	struct ui_recent *r = ui_recent_fetch(call, &f, &n, &ret);
	if (r == NULL)
		return ret;
	ui_resp_json(call);
	struct ui_out *o = &call->resp.body;
	ui_out_printf(o, "{\"retained\":%zu,\"entries\":[", n);
	int first = 1;
	for (size_t i = 0; i < n; i++) {
		if (!ui_recent_match(&f, &r[i]))
			continue;
		ui_out_printf(o, "%s{\"time_ms\":%lld,\"client\":", first ? "" : ",",
		              (long long)r[i].t_ms);
		first = 0;
		ui_out_json_str(o, r[i].client, strlen(r[i].client));
		ui_out_puts(o, ",\"user\":");
		if (r[i].user[0])
			ui_out_json_str(o, r[i].user, strlen(r[i].user));
		else
			ui_out_puts(o, "null");
		ui_out_puts(o, ",\"method\":");
		ui_out_json_str(o, r[i].method, strlen(r[i].method));
		ui_out_puts(o, ",\"host\":");
		ui_out_json_str(o, r[i].host, strlen(r[i].host));
		ui_out_puts(o, ",\"url\":");
		ui_out_json_str(o, r[i].url, strlen(r[i].url));
		ui_out_printf(o, ",\"status\":%d,\"action\":", r[i].status);
		ui_out_json_str(o, r[i].action, strlen(r[i].action));
		ui_out_printf(o, ",\"bytes\":%llu,\"duration_ms\":%llu}",
		              (unsigned long long)r[i].bytes, (unsigned long long)r[i].dur_ms);
	}
	ui_out_puts(o, "]}\n");
	free(r);
	return UI_DONE;
}

const struct ui_route ui_routes_history[] = {
	{"charts", UI_M_GET, ui_page_charts},
	{"top", UI_M_GET, ui_page_top},
	{"recent", UI_M_GET, ui_page_recent},
	{"api/series", UI_M_GET, ui_page_api_series},
	{"api/top", UI_M_GET, ui_page_api_top},
	{"api/recent", UI_M_GET, ui_page_api_recent},
	{NULL, 0, NULL},
};
