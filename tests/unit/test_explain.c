/*
 * test_explain.c - the pure parts of the status page's explain (daemon/explain.c): methods,
 * client addresses, and the target normalised as the proxy normalises it before judging it
 * (absolute http/ftp URLs, an ftp password dropped, host:port for CONNECT, the proxy's 400/501
 * reasons).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "daemon/explain.h"
#include "daemon/url.h"

static void
test_methods(void **state)
{
	(void)state;
	assert_true(explain_method_ok("GET"));
	assert_true(explain_method_ok("CONNECT"));
	assert_true(explain_method_ok("PURGE"));
	assert_false(explain_method_ok("get"));
	assert_false(explain_method_ok("BREW"));
	assert_false(explain_method_ok(""));
}

static void
test_client_addresses(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	assert_int_equal(explain_client_parse("10.1.2.3", &ss), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr), 0x0a010203u);
	assert_int_equal(explain_client_parse("::1", &ss), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(explain_client_parse("[2001:db8::1]", &ss), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(explain_client_parse("10.1.2", &ss), -1);
	assert_int_equal(explain_client_parse("host.test", &ss), -1);
	assert_int_equal(explain_client_parse("", &ss), -1);
	assert_int_equal(explain_client_parse("10.0.0.1/8", &ss), -1);
}

static int
norm(const char *in, int connect, char *out, char *host, unsigned *port, int *ftp,
     const char **reason)
{
	return explain_target_normalize(in, connect, out, 512, host, 256, port, ftp, reason);
}

static void
test_targets(void **state)
{
	(void)state;
	char out[512], host[256];
	unsigned port = 0;
	int ftp = -1;
	const char *reason = NULL;
	assert_int_equal(norm("HTTP://WWW.Example.TEST:80/a/../b?q", 0, out, host, &port, &ftp,
	                      &reason), 0);
	assert_string_equal(out, "http://www.example.test/b?q");
	assert_string_equal(host, "www.example.test");
	assert_int_equal(port, 80);
	assert_int_equal(ftp, 0);
	assert_int_equal(norm("http://h.test:8080", 0, out, host, &port, &ftp, &reason), 0);
	assert_string_equal(out, "http://h.test:8080/");
	assert_int_equal(port, 8080);
	/* a percent-encoded host is decoded and judged as what it decodes to */
	assert_int_equal(norm("http://%77ww.test/", 0, out, host, &port, &ftp, &reason), 0);
	assert_string_equal(host, "www.test");
	assert_int_equal(norm("ftp://user@ftp.test/pub/", 0, out, host, &port, &ftp, &reason), 0);
	assert_int_equal(ftp, 1);
	assert_int_equal(port, 21);
	assert_string_equal(out, "ftp://user@ftp.test/pub/");
	/* an ftp login's password is dropped, as the proxy drops it from c->url (issue 12) */
	assert_int_equal(norm("FTP://alice:s%3Acr3t@FTP.Test:21/pub/f.txt;type=i", 0, out, host,
	                      &port, &ftp, &reason), 0);
	assert_string_equal(out, "ftp://alice@ftp.test/pub/f.txt;type=i");
	assert_string_equal(host, "ftp.test");
	assert_int_equal(ftp, 1);
	assert_int_equal(norm("ftp://:pw@ftp.test:2121/", 0, out, host, &port, &ftp, &reason), 0);
	assert_string_equal(out, "ftp://@ftp.test:2121/");
	assert_int_equal(port, 2121);
	assert_int_equal(norm("Host.Test.:443", 1, out, host, &port, &ftp, &reason), 0);
	assert_string_equal(out, "host.test:443");
	assert_int_equal(port, 443);
	assert_int_equal(norm("[2001:DB8::1]:8443", 1, out, host, &port, &ftp, &reason), 0);
	assert_string_equal(out, "[2001:db8::1]:8443");
	assert_string_equal(host, "2001:db8::1");

	/* https:// URLs are proxied (TLS to the origin): port 443 by default */
	assert_int_equal(norm("HTTPS://Secure.Test:443/a", 0, out, host, &port, &ftp, &reason), 0);
	assert_string_equal(out, "https://secure.test/a");
	assert_int_equal(port, 443);
	assert_int_equal(ftp, 0);
	assert_int_equal(norm("https://secure.test:8443/", 0, out, host, &port, &ftp, &reason), 0);
	assert_int_equal(port, 8443);
	assert_int_equal(norm("http://user@h.test/", 0, out, host, &port, &ftp, &reason), -1);
	assert_non_null(strstr(reason, "user information"));
	assert_int_equal(norm("gopher://h.test/", 0, out, host, &port, &ftp, &reason), -1);
	assert_non_null(strstr(reason, "http://"));
	assert_int_equal(norm("/local/path", 0, out, host, &port, &ftp, &reason), -1);
	assert_int_equal(norm("not a url", 0, out, host, &port, &ftp, &reason), -1);
	assert_int_equal(norm("", 0, out, host, &port, &ftp, &reason), -1);
	assert_int_equal(norm("h.test", 1, out, host, &port, &ftp, &reason), -1); /* no port */
	assert_int_equal(norm("http://h.test/", 1, out, host, &port, &ftp, &reason), -1);
	assert_int_equal(norm("http://h_t\x01.test/", 0, out, host, &port, &ftp, &reason), -1);
}

static void
test_fields(void **state)
{
	char head[256], err[160];
	(void)state;
	assert_int_equal(explain_fields_parse("", head, sizeof(head), err, sizeof(err)), 0);
	assert_string_equal(head, "");
	assert_int_equal(explain_fields_parse("Accept-Language:de\n\r\n  \nX-A:  v w \t\r\n",
	                                      head, sizeof(head), err, sizeof(err)), 2);
	assert_string_equal(head, "Accept-Language: de\r\nX-A: v w\r\n");
	assert_int_equal(explain_fields_parse("A: 1\nB", head, sizeof(head), err, sizeof(err)),
	                 -1);
	assert_string_equal(err, "line 2: not \"Name: value\" (no colon)");
	assert_int_equal(explain_fields_parse("HOST: x", head, sizeof(head), err, sizeof(err)), -1);
	assert_string_equal(err, "line 1: Host comes from the URL");
	assert_int_equal(explain_fields_parse("A: \x7f\x01", head, sizeof(head), err,
	                                      sizeof(err)), -1);
	assert_string_equal(err, "line 1: control character in the value of A");
	assert_int_equal(explain_fields_parse("A: 0123456789", head, 8, err, sizeof(err)), -1);
	assert_string_equal(err, "the fields are too long (7 bytes at most)");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_methods),
		cmocka_unit_test(test_client_addresses),
		cmocka_unit_test(test_targets),
		cmocka_unit_test(test_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
