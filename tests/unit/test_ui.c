/*
 * test_ui.c - webui/ui.c: the escaping every page relies on (HTML, JSON, URL components),
 * parameters of queries and form bodies, the page frame, error pages (HTML and JSON), and the
 * dispatcher (assets, 404, 405 with Allow, a POST refused without a CSRF token before its
 * handler runs, HEAD taken as GET).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "webui/ui_priv.h"

static const char *
html(const char *s, size_t n)
{
	static char keep[4096];
	struct ui_out o;
	ui_out_init(&o);
	ui_out_html(&o, s, n);
	snprintf(keep, sizeof(keep), "%s", o.p ? o.p : "");
	ui_out_free(&o);
	return keep;
}

static const char *
json(const char *s, size_t n)
{
	static char keep[4096];
	struct ui_out o;
	ui_out_init(&o);
	ui_out_json_str(&o, s, n);
	snprintf(keep, sizeof(keep), "%s", o.p ? o.p : "");
	ui_out_free(&o);
	return keep;
}

static const char *
urlenc(const char *s)
{
	static char keep[4096];
	struct ui_out o;
	ui_out_init(&o);
	ui_out_url_enc(&o, s, strlen(s));
	snprintf(keep, sizeof(keep), "%s", o.p ? o.p : "");
	ui_out_free(&o);
	return keep;
}

static void
html_escapes_markup_quotes_and_controls(void **state)
{
	(void)state;
	const char *s = "<script>alert('x')</script>";
	assert_string_equal(html(s, strlen(s)),
	                    "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;");
	s = "a\"b&c";
	assert_string_equal(html(s, strlen(s)), "a&quot;b&amp;c");
	/* a NUL, ESC, CR and DEL become U+FFFD; tab and newline stay */
	assert_string_equal(html("a\0b\x1b[\r\x7f\t\n", 9),
	                    "a\xef\xbf\xbd" "b\xef\xbf\xbd[\xef\xbf\xbd\xef\xbf\xbd\t\n");
	/* UTF-8 passes through; an already escaped entity is escaped again */
	s = "caf\xc3\xa9 &amp;";
	assert_string_equal(html(s, strlen(s)), "caf\xc3\xa9 &amp;amp;");
	assert_string_equal(html("", 0), "");
	/* an attribute cannot be left: no raw quote of either kind survives */
	s = "\" onmouseover=' x";
	const char *o = html(s, strlen(s));
	assert_null(strchr(o, '"'));
	assert_null(strchr(o, '\''));
}

static void
json_strings_escape_quotes_controls_markup_and_bad_utf8(void **state)
{
	(void)state;
	const char *s = "a\"b\\c\n\t</script>&";
	assert_string_equal(json(s, strlen(s)),
	                    "\"a\\\"b\\\\c\\n\\t\\u003c/script\\u003e\\u0026\"");
	assert_string_equal(json("\x01\x7f", 2), "\"\\u0001\\u007f\"");
	/* valid UTF-8 is kept; a stray byte, an overlong form and a surrogate become U+FFFD */
	assert_string_equal(json("\xc3\xa9", 2), "\"\xc3\xa9\"");
	assert_string_equal(json("a\xff" "b", 3), "\"a\\ufffdb\"");
	assert_string_equal(json("\xc0\xaf", 2), "\"\\ufffd\\ufffd\"");
	assert_string_equal(json("\xed\xa0\x80", 3), "\"\\ufffd\\ufffd\\ufffd\"");
	assert_string_equal(json("\xe2\x82", 2), "\"\\ufffd\\ufffd\"");
	assert_string_equal(json("", 0), "\"\"");
}

static void
url_encoding_keeps_only_unreserved(void **state)
{
	(void)state;
	assert_string_equal(urlenc("http://a.test/x y?q=1&r=~_-."),
	                    "http%3A%2F%2Fa.test%2Fx%20y%3Fq%3D1%26r%3D~_-.");
	assert_string_equal(urlenc("\xc3\xa9<"), "%C3%A9%3C");
}

static void
out_grows_and_printf_handles_long_text(void **state)
{
	(void)state;
	struct ui_out o;
	ui_out_init(&o);
	char big[3000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (int i = 0; i < 100; i++)
		ui_out_printf(&o, "%d:%s;", i, big);
	assert_false(o.oom);
	assert_int_equal(o.len, strlen(o.p));
	assert_true(o.len > 100 * 3000);
	assert_memory_equal(o.p, "0:xxx", 5);
	ui_out_free(&o);
	assert_null(o.p);
}

static void
param_decodes_and_takes_the_first(void **state)
{
	(void)state;
	char v[64];
	const char *q = "a=1&url=http%3A%2F%2Fx.test%2F%3Cs%3E&b=two+words&url=second&empty=&flag";
	assert_int_equal(ui_param(q, strlen(q), "a", v, sizeof(v)), 1);
	assert_string_equal(v, "1");
	assert_int_equal(ui_param(q, strlen(q), "url", v, sizeof(v)), 17);
	assert_string_equal(v, "http://x.test/<s>");
	assert_int_equal(ui_param(q, strlen(q), "b", v, sizeof(v)), 9);
	assert_string_equal(v, "two words");
	assert_int_equal(ui_param(q, strlen(q), "empty", v, sizeof(v)), 0);
	assert_string_equal(v, "");
	assert_int_equal(ui_param(q, strlen(q), "flag", v, sizeof(v)), 0);
	assert_int_equal(ui_param(q, strlen(q), "missing", v, sizeof(v)), -1);
	assert_int_equal(ui_param(q, strlen(q), "ur", v, sizeof(v)), -1);
	/* a bad escape stays as written; %00 decodes (the length tells) */
	q = "x=%zz%4&y=a%00b";
	assert_int_equal(ui_param(q, strlen(q), "x", v, sizeof(v)), 5);
	assert_string_equal(v, "%zz%4");
	assert_int_equal(ui_param(q, strlen(q), "y", v, sizeof(v)), 3);
	/* truncated to the buffer, full length returned */
	q = "k=0123456789";
	assert_int_equal(ui_param(q, strlen(q), "k", v, 5), 10);
	assert_string_equal(v, "0123");
	/* only n bytes are read: the rest of the string is not a parameter */
	q = "a=1&b=2";
	assert_int_equal(ui_param(q, 3, "b", v, sizeof(v)), -1);
	/* an encoded name matches; ';' separates too */
	q = "c%73rf=t;z=9";
	assert_int_equal(ui_param(q, strlen(q), "csrf", v, sizeof(v)), 1);
	assert_int_equal(ui_param(q, strlen(q), "z", v, sizeof(v)), 1);
	assert_int_equal(ui_param(NULL, 0, "z", v, sizeof(v)), -1);
}

static struct ui_ops ops = { .version = "9.9<b>", .csrf_secret = "00112233445566778899aabbccddeeff"
                                                                  "00112233445566778899aabbccddeeff" };

static void
call_init(struct ui_call *c, enum ui_method m, const char *path, const char *query,
          const char *body)
{
	memset(c, 0, sizeof(*c));
	c->ops = &ops;
	c->req.method = m;
	c->req.path = path;
	c->req.query = query;
	c->req.body = body;
	c->req.body_len = body ? strlen(body) : 0;
	c->req.prefix = "/gh/";
	c->req.client = "127.0.0.1";
}

static void
arg_reads_the_body_of_a_post_then_the_query(void **state)
{
	(void)state;
	struct ui_call c;
	char v[32];
	call_init(&c, UI_POST, "x", "a=q&b=q", "a=body");
	assert_int_equal(ui_arg(&c, "a", v, sizeof(v)), 4);
	assert_string_equal(v, "body");
	assert_int_equal(ui_arg(&c, "b", v, sizeof(v)), 1);
	assert_string_equal(v, "q");
	call_init(&c, UI_GET, "x", "a=q", "a=body");
	assert_int_equal(ui_arg(&c, "a", v, sizeof(v)), 1);
	assert_string_equal(v, "q");
}

static void
wants_json_from_accept_or_format(void **state)
{
	(void)state;
	struct ui_call c;
	call_init(&c, UI_GET, "", "", NULL);
	assert_false(ui_wants_json(&c));
	c.req.accept = "text/html, application/json;q=0.9";
	assert_true(ui_wants_json(&c));
	c.req.query = "format=html";
	assert_false(ui_wants_json(&c));
	c.req.accept = NULL;
	c.req.query = "x=1&format=json";
	assert_true(ui_wants_json(&c));
}

static void
frame_marks_the_active_page_and_escapes(void **state)
{
	(void)state;
	struct ui_call c;
	call_init(&c, UI_GET, "", "", NULL);
	c.req.user = "<eve>";
	ui_out_init(&c.resp.body);
	ui_page_begin(&c, "Cache <all>", "cache");
	ui_page_end(&c);
	const char *p = c.resp.body.p;
	assert_non_null(strstr(p, "<title>Cache &lt;all&gt; - Gatehouse</title>"));
	assert_non_null(strstr(p, "<a href=\"/gh/cache\" class=\"on\" aria-current=\"page\">"));
	assert_non_null(strstr(p, "<a href=\"/gh/charts\">"));
	assert_non_null(strstr(p, "href=\"/gh/static/ui.css\""));
	assert_non_null(strstr(p, "&lt;eve&gt;"));
	assert_non_null(strstr(p, "9.9&lt;b&gt;"));
	assert_null(strstr(p, "<eve>"));
	assert_non_null(strstr(p, "</main>\n</body></html>\n"));
	ui_out_free(&c.resp.body);
}

static void
dispatcher_serves_assets_and_refuses_the_rest(void **state)
{
	(void)state;
	struct ui_call c;

	call_init(&c, UI_GET, "static/ui.css", "", NULL);
	assert_int_equal(ui_handle(&c), UI_DONE);
	assert_int_equal(c.resp.status, 200);
	assert_string_equal(c.resp.ctype, "text/css; charset=utf-8");
	assert_true(c.resp.body.len > 100);
	ui_out_free(&c.resp.body);

	call_init(&c, UI_HEAD, "static/icon.svg", "", NULL);
	ui_handle(&c);
	assert_int_equal(c.resp.status, 200);
	assert_string_equal(c.resp.ctype, "image/svg+xml");
	ui_out_free(&c.resp.body);

	call_init(&c, UI_GET, "static/../ui.c", "", NULL);
	ui_handle(&c);
	assert_int_equal(c.resp.status, 404);
	assert_non_null(strstr(c.resp.body.p, "static/../ui.c")); /* escaped, named */
	ui_out_free(&c.resp.body);

	call_init(&c, UI_GET, "<x>", "", NULL);
	ui_handle(&c);
	assert_int_equal(c.resp.status, 404);
	assert_null(strstr(c.resp.body.p, "<x>"));
	assert_non_null(strstr(c.resp.body.p, "&lt;x&gt;"));
	ui_out_free(&c.resp.body);

	call_init(&c, UI_GET, "api/nothing", "", NULL);
	ui_handle(&c);
	assert_int_equal(c.resp.status, 404);
	assert_string_equal(c.resp.ctype, "application/json");
	assert_string_equal(c.resp.body.p, "{\"error\":\"no such page: api/nothing\",\"status\":404}\n");
	ui_out_free(&c.resp.body);

	call_init(&c, UI_OTHER, "static/ui.js", "", NULL);
	ui_handle(&c);
	assert_int_equal(c.resp.status, 405);
	assert_non_null(strstr(c.resp.headers, "Allow: GET, HEAD\r\n"));
	ui_out_free(&c.resp.body);

	call_init(&c, UI_POST, "static/ui.js", "", "a=b");
	ui_handle(&c);
	assert_int_equal(c.resp.status, 405);
	ui_out_free(&c.resp.body);
}

static void
post_needs_the_csrf_token_of_its_session(void **state)
{
	(void)state;
	struct ui_call c;
	char tok[128], body[256], cookie[128];

	/* no session, no token */
	call_init(&c, UI_POST, "api/csrf", "", "x=1");
	ui_handle(&c);
	assert_int_equal(c.resp.status, 403);
	ui_out_free(&c.resp.body);

	/* GET makes a session (Set-Cookie) and gives its token */
	call_init(&c, UI_GET, "api/csrf", "", NULL);
	ui_handle(&c);
	assert_int_equal(c.resp.status, 200);
	const char *sc = strstr(c.resp.headers, "Set-Cookie: gh_session=");
	assert_non_null(sc);
	snprintf(cookie, sizeof(cookie), "gh_session=%.32s", sc + 23);
	assert_int_equal(ui_csrf_token(&c, tok, sizeof(tok)), 0);
	ui_out_free(&c.resp.body);

	snprintf(body, sizeof(body), "csrf=%s", tok);
	call_init(&c, UI_POST, "api/csrf", "", body);
	c.req.cookie = cookie;
	ui_handle(&c);
	assert_int_equal(c.resp.status, 204);
	ui_out_free(&c.resp.body);

	/* the token in the query does not count: it must be in the body */
	char q[256];
	snprintf(q, sizeof(q), "csrf=%s", tok);
	call_init(&c, UI_POST, "api/csrf", q, "x=1");
	c.req.cookie = cookie;
	ui_handle(&c);
	assert_int_equal(c.resp.status, 403);
	ui_out_free(&c.resp.body);

	/* a token altered by one character */
	body[10] = body[10] == '0' ? '1' : '0';
	call_init(&c, UI_POST, "api/csrf", "", body);
	c.req.cookie = cookie;
	ui_handle(&c);
	assert_int_equal(c.resp.status, 403);
	ui_out_free(&c.resp.body);
}

static void
security_headers_are_the_four_and_frame_denial(void **state)
{
	(void)state;
	const char *h = ui_security_headers();
	assert_non_null(strstr(h, "Content-Security-Policy: default-src 'self'\r\n"));
	assert_non_null(strstr(h, "X-Content-Type-Options: nosniff\r\n"));
	assert_non_null(strstr(h, "Cache-Control: no-store\r\n"));
	assert_non_null(strstr(h, "Referrer-Policy: same-origin\r\n"));
}

static void
refuse_makes_an_error_page_without_earlier_headers(void **state)
{
	(void)state;
	struct ui_call c;
	call_init(&c, UI_GET, "api/overview", "", NULL);
	ui_out_init(&c.resp.body);
	ui_out_puts(&c.resp.body, "partial");
	snprintf(c.resp.headers, sizeof(c.resp.headers), "X-Old: 1\r\n");
	ui_refuse(&c, 403, "denied \"here\"");
	assert_int_equal(c.resp.status, 403);
	assert_string_equal(c.resp.headers, "");
	assert_string_equal(c.resp.body.p, "{\"error\":\"denied \\\"here\\\"\",\"status\":403}\n");
	ui_out_free(&c.resp.body);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(html_escapes_markup_quotes_and_controls),
		cmocka_unit_test(json_strings_escape_quotes_controls_markup_and_bad_utf8),
		cmocka_unit_test(url_encoding_keeps_only_unreserved),
		cmocka_unit_test(out_grows_and_printf_handles_long_text),
		cmocka_unit_test(param_decodes_and_takes_the_first),
		cmocka_unit_test(arg_reads_the_body_of_a_post_then_the_query),
		cmocka_unit_test(wants_json_from_accept_or_format),
		cmocka_unit_test(frame_marks_the_active_page_and_escapes),
		cmocka_unit_test(dispatcher_serves_assets_and_refuses_the_rest),
		cmocka_unit_test(post_needs_the_csrf_token_of_its_session),
		cmocka_unit_test(security_headers_are_the_four_and_frame_denial),
		cmocka_unit_test(refuse_makes_an_error_page_without_earlier_headers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
