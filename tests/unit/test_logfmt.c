/*
 * test_logfmt.c - the Apache log format compiler and renderer (daemon/logfmt.c): every
 * directive against a known entry, Apache's escaping and "-" for empty values, status
 * conditions, nicknames, refused directives named in the message; and the config directives
 * LogFormat/CustomLog/TransferLog/ErrorLog through the loader (FILE:LINE errors, nickname
 * resolution after the whole file, syslog facilities, piped targets).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/cfg.h"
#include "daemon/log.h"
#include "daemon/logfmt.h"

static const char req_head[] =
	"GET http://origin.test/a/b?x=1&y=2 HTTP/1.1\r\n"
	"Host: origin.test\r\n"
	"User-Agent: test \"agent\"\\1\r\n"
	"X-Multi: one\r\n"
	"Cookie: a=1; sess=abc; z=9\r\n"
	"x-multi: two\r\n"
	"X-Ctl: a\tb\x01\r\n"
	"\r\n";
static const char resp_head[] =
	"HTTP/1.1 200 OK\r\n"
	"Content-Type: text/plain\r\n"
	"ETag: \"v1\"\r\n"
	"\r\n";

static struct sockaddr_storage local_ss, peer_ss;

static struct alog_entry
entry(void)
{
	struct sockaddr_in *l = (struct sockaddr_in *)&local_ss, *p = (struct sockaddr_in *)&peer_ss;

	l->sin_family = AF_INET;
	l->sin_port = htons(3128);
	inet_pton(AF_INET, "127.0.0.9", &l->sin_addr);
	p->sin_family = AF_INET;
	p->sin_port = htons(40000);
	inet_pton(AF_INET, "127.0.0.1", &p->sin_addr);
	struct alog_entry e = {
		.start_us = 1764860645123456ull, /* 2025-12-04 15:04:05.123456 UTC */
		.elapsed_ms = 12,
		.client = "127.0.0.1",
		.action = "TCP_MISS",
		.status = 200,
		.bytes = 1300,
		.body_bytes = 1234,
		.method = "GET",
		.url = "http://origin.test/a/b?x=1&y=2",
		.user = "-",
		.request_line = "GET http://origin.test/a/b?x=1&y=2 HTTP/1.1",
		.req_id = "r-42",
		.req_head = req_head,
		.req_head_len = sizeof(req_head) - 1,
		.resp_head = resp_head,
		.resp_head_len = sizeof(resp_head) - 1,
		.local_addr = &local_ss,
		.peer_addr = &peer_ss,
		.server_name = "proxy.example",
		.minor = 1,
		.keepalives = 3,
		.conn_status = '+',
	};
	return e;
}

static char out[16384];

static const char *
render(const char *fmt, const struct alog_entry *e)
{
	struct logfmt *f = NULL;
	char err[256];

	if (logfmt_compile(fmt, &f, err, sizeof(err)) != 0)
		fail_msg("\"%s\" refused: %s", fmt, err);
	logfmt_render(f, e, out, sizeof(out));
	logfmt_free(&f);
	return out;
}

static void
expect(const char *fmt, const char *want)
{
	struct alog_entry e = entry();

	assert_string_equal(render(fmt, &e), want);
}

static void
refused(const char *fmt, const char *want)
{
	struct logfmt *f = NULL;
	char err[256];

	assert_int_equal(logfmt_compile(fmt, &f, err, sizeof(err)), -1);
	assert_null(f);
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" for \"%s\" lacks \"%s\"", err, fmt, want);
}

static void
test_plain_directives(void **state)
{
	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	expect("%h %a %{c}a %A %l %u", "127.0.0.1 127.0.0.1 127.0.0.1 127.0.0.9 - -");
	expect("%s %>s %<s %b %B %O", "200 200 200 1234 1234 1300");
	expect("%m|%U|%q|%H|%r", "GET|http://origin.test/a/b|?x=1&y=2|HTTP/1.1|"
	       "GET http://origin.test/a/b?x=1&y=2 HTTP/1.1");
	expect("%v %V %p %{local}p %{canonical}p %{remote}p", "proxy.example proxy.example 3128 "
	       "3128 3128 40000");
	expect("%L %X %k %%", "r-42 + 3 %");
	expect("literal only", "literal only");
	expect("tab\\there\\n", "tab\there\n");
}

static void
test_times(void **state)
{
	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	expect("%t", "[04/Dec/2025:15:04:05 +0000]");
	expect("%{%Y-%m-%d %H:%M:%S}t", "2025-12-04 15:04:05");
	expect("%{begin:%H}t", "15");
	expect("%{sec}t.%{msec_frac}t %{usec_frac}t", "1764860645.123 123456");
	expect("%{msec}t %{usec}t", "1764860645123 1764860645123456");
	/* durations from start_us to now: a start 2.5 s ago */
	struct alog_entry e = entry();
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	e.start_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u - 2500000u;
	unsigned long long d, ms, s, us;
	assert_int_equal(sscanf(render("%D %{ms}T %T %{us}T", &e), "%llu %llu %llu %llu", &d, &ms,
	                        &s, &us), 4);
	assert_true(d >= 2500000 && d < 3500000);
	assert_true(ms >= 2500 && ms < 3500);
	assert_int_equal(s, 2);
	assert_true(us >= 2500000 && us < 3500000);
	/* end: is now, not the start */
	unsigned long long end_sec;
	assert_int_equal(sscanf(render("%{end:sec}t", &e), "%llu", &end_sec), 1);
	assert_true(end_sec >= (unsigned long long)ts.tv_sec);
}

static void
test_headers_cookies_and_escaping(void **state)
{
	(void)state;
	expect("%{Host}i|%{host}i|%{X-Absent}i", "origin.test|origin.test|-");
	expect("%{User-Agent}i", "test \\\"agent\\\"\\\\1");
	expect("%{X-Multi}i", "one, two");
	expect("%{X-Ctl}i", "a\\tb\\x01");
	expect("%{Content-Type}o %{ETag}o %{Server}o", "text/plain \\\"v1\\\" -");
	expect("%{sess}C %{a}C %{z}C %{nope}C", "abc 1 9 -");
	/* no heads kept: "-" */
	struct alog_entry e = entry();
	e.req_head = e.resp_head = NULL;
	assert_string_equal(render("%{Host}i %{ETag}o %{a}C", &e), "- - -");
	/* empty values and zero bytes */
	e = entry();
	e.body_bytes = 0;
	e.req_id = NULL;
	e.url = "http://origin.test/";
	e.user = "alice";
	assert_string_equal(render("%b %B %L [%q] %u", &e), "- 0 - [] alice");
}

static void
test_status_conditions(void **state)
{
	(void)state;
	struct alog_entry e = entry();
	assert_string_equal(render("%200,304{Host}i %!200{Host}i %404{Host}i", &e),
	                    "origin.test - -");
	e.status = 404;
	assert_string_equal(render("%200,304{Host}i %!200{Host}i %404{Host}i", &e),
	                    "- origin.test origin.test");
}

static void
test_nicknames(void **state)
{
	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	expect(logfmt_nickname("common"),
	       "127.0.0.1 - - [04/Dec/2025:15:04:05 +0000] \"GET http://origin.test/a/b?x=1&y=2 "
	       "HTTP/1.1\" 200 1234");
	expect(logfmt_nickname("combined"),
	       "127.0.0.1 - - [04/Dec/2025:15:04:05 +0000] \"GET http://origin.test/a/b?x=1&y=2 "
	       "HTTP/1.1\" 200 1234 \"-\" \"test \\\"agent\\\"\\\\1\"");
	assert_null(logfmt_nickname("squid")); /* log.c's own writer */
	assert_null(logfmt_nickname("nope"));
}

static void
test_refused_directives_are_named(void **state)
{
	(void)state;
	refused("%e", "%e (environment variables)");
	refused("%{HOME}e", "%e (environment variables)");
	refused("%I", "%I (bytes received");
	refused("%f", "%f (file name)");
	refused("%Z", "unknown directive %Z");
	refused("abc %", "a directive letter is missing");
	refused("%{Host", "missing }");
	refused("%i", "%i needs a name");
	refused("%{x}s", "%s does not take a {argument}");
	refused("%{foo}P", "expected pid, tid or hextid");
	refused("%{min}T", "expected s, ms or us");
	refused("%20{Host}i", "three digits");
	refused("%{a b}i", "not a field name");
}

static void
test_render_never_overflows(void **state)
{
	(void)state;
	struct logfmt *f = NULL;
	char err[128], small[16];
	struct alog_entry e = entry();

	assert_int_equal(logfmt_compile("%r %r %{User-Agent}i", &f, err, sizeof(err)), 0);
	size_t n = logfmt_render(f, &e, small, sizeof(small));
	assert_int_equal(n, sizeof(small) - 1);
	assert_int_equal(strlen(small), n);
	logfmt_free(&f);
}

/* ---- through the config loader ---- */

static void
load_fails(const char *text, const char *want)
{
	struct cfg *c = NULL;
	char err[512];

	assert_int_equal(cfg_load_string("t.conf", text, &c, err, sizeof(err)), -1);
	assert_null(c);
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static struct cfg *
load(const char *text)
{
	struct cfg *c = NULL;
	char err[512];

	if (cfg_load_string("t.conf", text, &c, err, sizeof(err)) != 0)
		fail_msg("unexpected error: %s", err);
	return c;
}

static void
test_config_directives(void **state)
{
	(void)state;
	/* nickname defined after its use, redefinition wins, literal formats, squid, pipes */
	struct cfg *c = load("CustomLog /tmp/a.log mine\n"
	                     "LogFormat \"%h first\" mine\n"
	                     "LogFormat \"%h %>s\" mine\n"
	                     "CustomLog \"|/usr/bin/logger -t gatehouse\" combined\n"
	                     "CustomLog /tmp/b.log \"%m %U\"\n"
	                     "CustomLog - squid\n"
	                     "LogFormat \"%u\"\n"
	                     "TransferLog /tmp/c.log\n"
	                     "ErrorLog syslog:local1\n");
	assert_int_equal(c->ncustom_logs, 5);
	assert_string_equal(c->custom_logs[0].format, "%h %>s");
	assert_string_equal(c->custom_logs[0].target, "/tmp/a.log");
	assert_string_equal(c->custom_logs[1].target, "|/usr/bin/logger -t gatehouse");
	assert_string_equal(c->custom_logs[1].format, logfmt_nickname("combined"));
	assert_string_equal(c->custom_logs[2].format, "%m %U");
	assert_true(c->custom_logs[3].squid);
	assert_string_equal(c->custom_logs[4].format, "%u");
	assert_string_equal(c->error_log, "syslog:local1");
	cfg_unref(&c);
	c = load("TransferLog /tmp/c.log\nErrorLog syslog\nAccessLog \"|cat\" combined\n");
	assert_string_equal(c->custom_logs[0].format, logfmt_nickname("common"));
	assert_string_equal(c->access_log, "|cat");
	cfg_unref(&c);

	load_fails("Listen 1\n\nLogFormat \"%h %{X}e\" x\n", "t.conf:3: LogFormat: %e");
	load_fails("CustomLog /tmp/x \"%h %Q\"\n", "t.conf:1: CustomLog: unknown directive %Q");
	load_fails("\nCustomLog /tmp/x nosuch\n", "t.conf:2: CustomLog: unknown format nickname "
	           "\"nosuch\"");
	load_fails("CustomLog /tmp/x common env=!dontlog\n", "t.conf:1: CustomLog: conditional");
	load_fails("ErrorLog syslog:nosuch\n", "t.conf:1: ErrorLog: unknown syslog facility");
	load_fails("CustomLog syslog common\n", "t.conf:1: CustomLog: syslog is only for ErrorLog");
	load_fails("ErrorLog \"||/bin/cat\"\n", "t.conf:1: ErrorLog: \"||program\"");
	load_fails("ErrorLog \"|  \"\n", "t.conf:1: ErrorLog: \"|\" names no program");
	load_fails("LogFormat mine \"%h\"\n", "t.conf:1: LogFormat: bad nickname");
	load_fails("CustomLog /tmp/x\n", "t.conf:1: CustomLog");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_directives),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_headers_cookies_and_escaping),
		cmocka_unit_test(test_status_conditions),
		cmocka_unit_test(test_nicknames),
		cmocka_unit_test(test_refused_directives_are_named),
		cmocka_unit_test(test_render_never_overflows),
		cmocka_unit_test(test_config_directives),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
