/*
 * test_p_history.c - the history pages' pure parts (webui/p_history.c, included for its
 * statics): the inline SVG chart (empty data draws axes and no NaN, every coordinate stays in
 * the view box whatever the values, a missing value breaks the line, text is escaped, the y
 * axis ends at a round number above the peak), and the recent-requests filter (client and
 * host substrings, an exact status or a class, bad values refused; a user substring), and the
 * recent table's user column (escaped, "-" without a user).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "webui/p_history.c"

static char *
svg_of(const char *title, const double *v, const double *v2, unsigned n, double fixed)
{
	struct ui_out o;
	ui_out_init(&o);
	struct ui_chart_line l[2] = {{v, "first <b>", "#123456"}, {v2, "second", "#654321"}};
	ui_chart_svg(&o, title, "per second", l, v2 ? 2 : 1, n, 1800000000, 10, fixed);
	assert_false(o.oom);
	ui_out_put(&o, "", 1);          /* NUL */
	return o.p;
}

/* Every x/y attribute and path coordinate is inside the view box. */
static void
svg_assert_in_box(const char *s)
{
	static const char *const attrs[] = {" x=\"", " y=\"", " x1=\"", " y1=\"", " x2=\"",
	                                    " y2=\""};
	for (size_t a = 0; a < sizeof(attrs) / sizeof(attrs[0]); a++) {
		int ymode = strchr(attrs[a], 'y') != NULL;
		for (const char *p = strstr(s, attrs[a]); p; p = strstr(p + 1, attrs[a])) {
			double v = strtod(p + strlen(attrs[a]), NULL);
			assert_true(v >= 0 && v <= (ymode ? UI_CH_H : UI_CH_W));
		}
	}
	int paths = 0;
	for (const char *p = strstr(s, " d=\""); p; p = strstr(p + 1, " d=\"")) {
		paths++;
		const char *q = p + 4;
		while (*q && *q != '"') {
			if (*q == 'M' || *q == 'L' || *q == ' ') {
				q++;
				continue;
			}
			char *end;
			double x = strtod(q, &end);
			assert_true(end != q);
			double y = strtod(end, &end);
			assert_true(x >= UI_CH_ML && x <= UI_CH_W - UI_CH_MR);
			assert_true(y >= UI_CH_MT && y <= UI_CH_H - UI_CH_MB);
			q = end;
		}
	}
	assert_true(paths > 0);
}

static void
chart_empty_data_draws_axes(void **state)
{
	(void)state;
	double v[360] = {0};
	char *s = svg_of("Requests", v, NULL, 360, 0);
	assert_non_null(strstr(s, "<svg class=\"chart\""));
	assert_non_null(strstr(s, "</svg>"));
	assert_null(strstr(s, "nan"));
	assert_null(strstr(s, "inf"));
	assert_non_null(strstr(s, ">1</text>"));       /* y axis up to 1 in steps of 0.25 */
	assert_non_null(strstr(s, ">0.25</text>"));
	assert_non_null(strstr(s, ">08:00</text>"));   /* 1800000000 is 08:00 UTC */
	assert_non_null(strstr(s, ">08:50</text>"));   /* then every 10 minutes */
	assert_null(strstr(s, "style="));            /* CSP: no style attributes */
	svg_assert_in_box(s);
	free(s);
}

static void
chart_bounds_hold_for_any_values(void **state)
{
	(void)state;
	double v[288], w[288];
	for (int i = 0; i < 288; i++) {
		v[i] = i % 7 == 0 ? -5 : (double)i * 1e15;
		w[i] = i == 100 ? NAN : i == 101 ? INFINITY : 3;
	}
	char *s = svg_of("Bandwidth", v, w, 288, 0);
	svg_assert_in_box(s);
	assert_null(strstr(s, "nan"));
	/* the second line has a gap: two moves */
	const char *p = strstr(s, "stroke=\"#654321\" d=\"");
	assert_non_null(p);
	const char *end = strchr(p + 20, '"');
	int moves = 0;
	for (const char *q = p + 20; q < end; q++)
		moves += *q == 'M';
	assert_int_equal(moves, 2);
	free(s);
	/* a fixed maximum (percentages) clips larger values */
	double pct[10] = {0, 50, 100, 250, 0, 0, 0, 0, 0, 0};
	s = svg_of("Hit ratio", pct, NULL, 10, 100);
	assert_non_null(strstr(s, ">100</text>"));
	assert_non_null(strstr(s, ">75</text>"));     /* 25 % steps */
	svg_assert_in_box(s);
	free(s);
}

static void
chart_peak_sets_a_round_axis(void **state)
{
	(void)state;
	double v[6] = {0, 1, 3.7, 2, 0, 0};
	char *s = svg_of("Requests", v, NULL, 6, 0);
	assert_non_null(strstr(s, ">4</text>"));      /* steps of 1 up to 4 cover 3.7 */
	assert_non_null(strstr(s, ">3</text>"));
	assert_null(strstr(s, ">5</text>"));
	free(s);
	assert_true(ui_hist_nice(3.7) == 5);
	assert_true(ui_hist_nice(120) == 200);
	assert_true(ui_hist_nice(0.03) > 0.0299 && ui_hist_nice(0.03) < 0.0501);
	assert_true(ui_hist_nice(1000) == 1000);
}

static void
chart_text_is_escaped(void **state)
{
	(void)state;
	double v[4] = {1, 2, 3, 4};
	char *s = svg_of("<script>alert(1)</script>", v, NULL, 4, 0);
	assert_null(strstr(s, "<script>"));
	assert_null(strstr(s, "<b>"));
	assert_non_null(strstr(s, "&lt;script&gt;"));
	assert_non_null(strstr(s, "first &lt;b&gt;"));
	free(s);
}

static void
call_with(struct ui_call *c, const char *query)
{
	memset(c, 0, sizeof(*c));
	c->req.method = UI_GET;
	c->req.path = "recent";
	c->req.query = query;
	c->req.body = "";
	c->req.prefix = "/gatehouse/";
}

static void
recent_filter_by_client_host_status(void **state)
{
	(void)state;
	struct ui_call c;
	struct ui_recent_filter f;
	const char *err = NULL;
	struct ui_recent r = {.status = 404};
	strcpy(r.client, "10.1.0.7");
	strcpy(r.host, "www.Example.org");

	call_with(&c, "client=10.1.0.&host=example.ORG&status=4xx");
	assert_int_equal(ui_recent_filter_get(&c, &f, &err), 0);
	assert_true(ui_recent_match(&f, &r));
	call_with(&c, "status=404");
	assert_int_equal(ui_recent_filter_get(&c, &f, &err), 0);
	assert_true(ui_recent_match(&f, &r));
	call_with(&c, "status=200");
	assert_int_equal(ui_recent_filter_get(&c, &f, &err), 0);
	assert_false(ui_recent_match(&f, &r));
	call_with(&c, "client=10.1.0.8");
	assert_int_equal(ui_recent_filter_get(&c, &f, &err), 0);
	assert_false(ui_recent_match(&f, &r));
	call_with(&c, "host=other");
	assert_int_equal(ui_recent_filter_get(&c, &f, &err), 0);
	assert_false(ui_recent_match(&f, &r));
	call_with(&c, "status=");
	assert_int_equal(ui_recent_filter_get(&c, &f, &err), 0);
	assert_true(ui_recent_match(&f, &r));
	static const char *const bad[] = {"status=abc", "status=99", "status=6xx", "status=4040",
	                                  "status=40x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		call_with(&c, bad[i]);
		err = NULL;
		assert_int_equal(ui_recent_filter_get(&c, &f, &err), -1);
		assert_non_null(err);
	}
}

static void
recent_filter_and_column_by_user(void **state)
{
	(void)state;
	struct ui_call c;
	struct ui_recent_filter f;
	const char *err = NULL;
	struct ui_recent r[2] = {{.status = 200}, {.status = 407}};
	strcpy(r[0].client, "10.1.0.7");
	strcpy(r[0].user, "<img src=x>alice");
	strcpy(r[1].client, "10.1.0.8");

	call_with(&c, "user=alice");
	assert_int_equal(ui_recent_filter_get(&c, &f, &err), 0);
	assert_true(ui_recent_match(&f, &r[0]));
	assert_false(ui_recent_match(&f, &r[1]));
	call_with(&c, "user=bob");
	assert_int_equal(ui_recent_filter_get(&c, &f, &err), 0);
	assert_false(ui_recent_match(&f, &r[0]));

	call_with(&c, "");
	assert_int_equal(ui_recent_filter_get(&c, &f, &err), 0);
	struct ui_out o;
	ui_out_init(&o);
	ui_recent_rows(&o, r, 2, &f);
	ui_out_put(&o, "", 1);
	assert_false(o.oom);
	assert_non_null(strstr(o.p, "<th>user</th>"));
	assert_null(strstr(o.p, "<img"));
	assert_non_null(strstr(o.p, "<td class=\"user\">&lt;img src=x&gt;alice</td>"));
	assert_non_null(strstr(o.p, "<td class=\"user\">-</td>"));
	ui_out_free(&o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(chart_empty_data_draws_axes),
		cmocka_unit_test(chart_bounds_hold_for_any_values),
		cmocka_unit_test(chart_peak_sets_a_round_axis),
		cmocka_unit_test(chart_text_is_escaped),
		cmocka_unit_test(recent_filter_by_client_host_status),
		cmocka_unit_test(recent_filter_and_column_by_user),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
