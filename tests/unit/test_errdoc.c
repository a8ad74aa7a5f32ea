/*
 * test_errdoc.c - ErrorDocument (daemon/errdoc.c): Apache's heuristic for the second argument
 * (message, file, URL, default), the codes accepted, placeholders checked at load and filled
 * per page (HTML-escaped in pages, percent-encoded in URLs), a later line replacing an earlier
 * one, and the FILE:LINE the config loader puts in front of its messages.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/cfg.h"
#include "daemon/errdoc.h"

static const struct errdoc_vars vars403 = {
	.status = 403, .status_text = "Forbidden", .reason = "x is blocked by ProxyBlock <x>",
	.url = "http://x/?a=<b>&c='d'\"", .req_id = "ABCDEFGH1234", .server_name = "gw",
};

/* Render status from e into a string (static buffer); NULL when there is no document. */
static const char *
render(const struct errdoc *e, int status, enum errdoc_kind *kind)
{
	static char out[4096];
	struct errdoc_vars v = vars403;
	struct buf b;
	v.status = status;
	buf_init(&b, sizeof(out) - 1);
	*kind = errdoc_render(e, &v, &b);
	if (*kind == ERRDOC_NONE) {
		buf_fini(&b);
		return NULL;
	}
	memcpy(out, buf_head(&b), buf_len(&b));
	out[buf_len(&b)] = '\0';
	buf_fini(&b);
	return out;
}

static void
errdoc_message_is_a_page_with_escaped_values(void **state)
{
	struct errdoc *e = NULL;
	char msg[512];
	enum errdoc_kind k;
	(void)state;
	assert_int_equal(errdoc_directive(&e, "403", "<p>%{STATUS} %{STATUS_TEXT}: %{REASON} "
	                                  "%{URL} %{REQUEST_ID} %{SERVER_NAME} 100%</p>", msg,
	                                  sizeof(msg)), 0);
	assert_string_equal(render(e, 403, &k),
	                    "<p>403 Forbidden: x is blocked by ProxyBlock &lt;x&gt; "
	                    "http://x/?a=&lt;b&gt;&amp;c=&#39;d&#39;&quot; ABCDEFGH1234 gw 100%</p>");
	assert_int_equal(k, ERRDOC_PAGE);
	assert_null(render(e, 502, &k)); /* other codes keep the built-in page */
	assert_null(render(NULL, 403, &k));
	errdoc_free(&e);
	assert_null(e);
}

static void
errdoc_url_redirects_with_encoded_values(void **state)
{
	struct errdoc *e = NULL;
	char msg[512];
	enum errdoc_kind k;
	(void)state;
	assert_int_equal(errdoc_directive(&e, "502", "https://intra/e?u=%{URL}&id=%{REQUEST_ID}",
	                                  msg, sizeof(msg)), 0);
	assert_string_equal(render(e, 502, &k),
	                    "https://intra/e?u=http%3A%2F%2Fx%2F%3Fa%3D%3Cb%3E%26c%3D%27d%27%22"
	                    "&id=ABCDEFGH1234");
	assert_int_equal(k, ERRDOC_REDIRECT);
	errdoc_free(&e);
}

static void
errdoc_later_line_replaces_and_default_restores(void **state)
{
	struct errdoc *e = NULL;
	char msg[512];
	enum errdoc_kind k;
	(void)state;
	assert_int_equal(errdoc_directive(&e, "403", "one", msg, sizeof(msg)), 0);
	assert_int_equal(errdoc_directive(&e, "403", "two words", msg, sizeof(msg)), 0);
	assert_string_equal(render(e, 403, &k), "two words");
	assert_int_equal(errdoc_directive(&e, "403", "default", msg, sizeof(msg)), 0);
	assert_null(render(e, 403, &k));
	assert_int_equal(errdoc_directive(&e, "404", "DEFAULT", msg, sizeof(msg)), 0);
	assert_null(render(e, 404, &k));
	errdoc_free(&e);
}

static void
errdoc_file_is_read_at_load(void **state)
{
	char path[] = "/tmp/test_errdoc_XXXXXX";
	struct errdoc *e = NULL;
	char msg[512];
	enum errdoc_kind k;
	(void)state;
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char page[] = "<html>%{STATUS} %{URL}</html>\n";
	assert_int_equal(write(fd, page, sizeof(page) - 1), (ssize_t)(sizeof(page) - 1));
	close(fd);
	assert_int_equal(errdoc_directive(&e, "504", path, msg, sizeof(msg)), 0);
	unlink(path); /* read once, at load: the snapshot keeps the text */
	assert_string_equal(render(e, 504, &k),
	                    "<html>504 http://x/?a=&lt;b&gt;&amp;c=&#39;d&#39;&quot;</html>\n");
	assert_int_equal(errdoc_directive(&e, "504", path, msg, sizeof(msg)), -1);
	assert_non_null(strstr(msg, "cannot read /tmp/test_errdoc_"));
	errdoc_free(&e);
}

static void
errdoc_errors(void **state)
{
	static const struct { const char *code, *arg, *want; } cases[] = {
		{ "200", "x", "not an error status" },
		{ "418", "x", "not an error status" },
		{ "4033", "x", "not an error status" },
		{ "40x", "x", "not an error status" },
		{ "403", "", "empty document" },
		{ "403", "a %{NOPE} b", "unknown placeholder \"%{NOPE}\"" },
		{ "403", "a %{url} b", "unknown placeholder \"%{url}\"" },
		{ "403", "a %{URL b", "without a closing" },
		{ "403", "ftp://host/x", "only http:// and https://" },
		{ "403", "http:///x", "only http:// and https://" },
		{ "403", "/nonexistent/dir/page.html", "cannot read /nonexistent/dir/page.html" },
		{ "403", "/dev/null", "/dev/null is not a regular file" },
		{ "403", "/tmp", "/tmp is not a regular file" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct errdoc *e = NULL;
		char msg[512] = "";
		if (errdoc_directive(&e, cases[i].code, cases[i].arg, msg, sizeof(msg)) != -1)
			fail_msg("case %zu (%s %s) accepted", i, cases[i].code, cases[i].arg);
		if (strstr(msg, cases[i].want) == NULL)
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, msg, cases[i].want);
		errdoc_free(&e);
	}
}

static void
errdoc_config_errors_name_file_and_line(void **state)
{
	struct cfg *c = NULL;
	char err[512];
	(void)state;
	assert_int_equal(cfg_load_string("t.conf", "Listen 127.0.0.1:3128\n"
	                                 "ErrorDocument 418 \"no\"\n", &c, err, sizeof(err)), -1);
	assert_null(c);
	assert_non_null(strstr(err, "t.conf:2: ErrorDocument: \"418\""));
	assert_int_equal(cfg_load_string("t.conf", "ErrorDocument 403 \"Go away, %{URL}\"\n"
	                                 "ErrorDocument 502 http://intra/e\n", &c, err,
	                                 sizeof(err)), 0);
	enum errdoc_kind k;
	assert_string_equal(render(c->errdocs, 403, &k),
	                    "Go away, http://x/?a=&lt;b&gt;&amp;c=&#39;d&#39;&quot;");
	assert_string_equal(render(c->errdocs, 502, &k), "http://intra/e");
	cfg_unref(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(errdoc_message_is_a_page_with_escaped_values),
		cmocka_unit_test(errdoc_url_redirects_with_encoded_values),
		cmocka_unit_test(errdoc_later_line_replaces_and_default_restores),
		cmocka_unit_test(errdoc_file_is_read_at_load),
		cmocka_unit_test(errdoc_errors),
		cmocka_unit_test(errdoc_config_errors_name_file_and_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
