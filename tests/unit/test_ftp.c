/*
 * test_ftp.c - the FTP gateway's pure helpers (daemon/ftp.c, issue 12), included so that its
 * statics can be tested: the single-range parser (one "bytes=N-[M]" or "bytes=-N", or
 * nothing), Accept's preference for JSON listings, the 257 reply's quoted directory, the URL
 * shown on pages without its password, and the conditional check that turns a revalidation
 * into a 304; for FTPS, the host name the TLS check uses and the fixed-array views that carry
 * control lines and data through the stream.
 * The stream itself is tested end to end (tests/integration/test_ftp_smoke.py).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "daemon/ftp.c"

static struct h1_str
S(const char *s)
{
	struct h1_str r = {s, strlen(s)};
	return r;
}

static void
ftp_range_takes_one_range_only(void **state)
{
	(void)state;
	int64_t a = 0, b = 0;
	assert_int_equal(ftp_range_parse(S("bytes=100-"), &a, &b), 0);
	assert_int_equal(a, 100);
	assert_int_equal(b, -1);
	assert_int_equal(ftp_range_parse(S("bytes=5-9"), &a, &b), 0);
	assert_int_equal(a, 5);
	assert_int_equal(b, 9);
	assert_int_equal(ftp_range_parse(S("BYTES=0-0"), &a, &b), 0);
	/* a suffix: the last 500 bytes, made bounds once SIZE is known */
	assert_int_equal(ftp_range_parse(S("bytes=-500"), &a, &b), 0);
	assert_int_equal(a, FTP_RNG_SUFFIX);
	assert_int_equal(b, 500);
	assert_int_equal(ftp_range_parse(S("bytes=-"), &a, &b), -1);
	assert_int_equal(ftp_range_parse(S("bytes=-5x"), &a, &b), -1);
	/* several ranges, nonsense: the whole file */
	assert_int_equal(ftp_range_parse(S("bytes=0-1,5-9"), &a, &b), -1);
	assert_int_equal(ftp_range_parse(S("bytes=9-5"), &a, &b), -1);
	assert_int_equal(ftp_range_parse(S("bytes=1-x"), &a, &b), -1);
	assert_int_equal(ftp_range_parse(S("items=1-2"), &a, &b), -1);
	assert_int_equal(ftp_range_parse(S("bytes=99999999999999999999-"), &a, &b), -1);
}

static void
ftp_accept_prefers_json_only_when_asked(void **state)
{
	(void)state;
	assert_true(ftp_accept_json(S("application/json")));
	assert_true(ftp_accept_json(S("text/html;q=0.5, application/json")));
	assert_false(ftp_accept_json(S("text/html,application/xhtml+xml,*/*;q=0.8")));
	assert_false(ftp_accept_json(S("*/*")));
	assert_false(ftp_accept_json(S("application/json;q=0")));
	assert_false(ftp_accept_json(S("text/html, application/json;q=0.9")));
	assert_true(ftp_accept_json(S("*/*;q=0.1, application/json")));
}

static void
ftp_257_gives_the_quoted_directory(void **state)
{
	(void)state;
	char d[64];
	assert_int_equal(ftp_parse_257("\"/home/alice\" is the cwd", d, sizeof(d)), 0);
	assert_string_equal(d, "/home/alice");
	assert_int_equal(ftp_parse_257("\"/a \"\"quoted\"\" dir\" created", d, sizeof(d)), 0);
	assert_string_equal(d, "/a \"quoted\" dir");
	assert_int_equal(ftp_parse_257("no quotes here", d, sizeof(d)), -1);
	assert_int_equal(ftp_parse_257("\"unterminated", d, sizeof(d)), -1);
	assert_int_equal(ftp_parse_257("\"/much/too/long/for/the/buffer\"", d, 8), -1);
}

static void
ftp_url_on_pages_has_no_password(void **state)
{
	(void)state;
	static struct ftp f;
	ftp_url_mask(&f, S("ftp://alice:s3cret@ftp.example.org:2121/pub/a.txt"));
	assert_string_equal(f.url, "ftp://alice@ftp.example.org:2121/pub/a.txt");
	ftp_url_mask(&f, S("ftp://alice@ftp.example.org/pub/"));
	assert_string_equal(f.url, "ftp://alice@ftp.example.org/pub/");
	ftp_url_mask(&f, S("ftp://ftp.example.org/a:b@c"));
	assert_string_equal(f.url, "ftp://ftp.example.org/a:b@c");
	ftp_url_mask(&f, S("ftp://u:p:q@h/x"));
	assert_string_equal(f.url, "ftp://u@h/x");
}

static void
ftp_conditional_matches_etag_or_date(void **state)
{
	(void)state;
	static struct ftp f;
	char etag[80];
	ftp_etag(etag, sizeof(etag), 1234, 1700000000);
	f.ims = -1;
	f.mtime = 1700000000;
	snprintf(f.inm, sizeof(f.inm), "%s", etag);
	assert_true(ftp_not_modified(&f, etag));
	snprintf(f.inm, sizeof(f.inm), "\"other\", %s", etag);
	assert_true(ftp_not_modified(&f, etag));
	snprintf(f.inm, sizeof(f.inm), "\"ftp-4d2-0\"");
	assert_false(ftp_not_modified(&f, etag));
	/* If-None-Match decides when present, even with a matching date */
	f.ims = 1800000000;
	assert_false(ftp_not_modified(&f, etag));
	f.inm[0] = '\0';
	assert_true(ftp_not_modified(&f, etag));
	f.ims = 1600000000; /* the file changed since */
	assert_false(ftp_not_modified(&f, etag));
	f.mtime = -1; /* no MDTM: no date to compare */
	f.ims = 1800000000;
	assert_false(ftp_not_modified(&f, ""));
}

/* FTPS: the name SNI and the certificate check use is the pool key's host, without the port
 * and without an IPv6 literal's brackets. */
static void
ftp_tls_host_is_the_key_host(void **state)
{
	(void)state;
	static const char *cases[][2] = {
		{"ftp|ftp.example.org:21", "ftp.example.org"},
		{"ftp|127.0.0.1:990", "127.0.0.1"},
		{"ftp|[::1]:2121", "::1"},
		{"ftp|::1:21", "::1"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct up u;
		struct ftp f;
		memset(&u, 0, sizeof(u));
		memset(&f, 0, sizeof(f));
		snprintf(u.key, sizeof(u.key), "%s", cases[i][0]);
		f.u = &u;
		char host[300];
		ftp_tls_host(&f, host, sizeof(host));
		assert_string_equal(host, cases[i][1]);
	}
}

/* The control line and the data body go through the stream in a view of a fixed array: a read
 * fills at most the view's size (the bytes after it stay as they were) and a write sends the
 * view's bytes. */
static void
ftp_buf_view_stays_inside_its_array(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	char big[100];
	memset(big, 'x', sizeof(big));
	assert_int_equal(write(sv[1], big, sizeof(big)), (ssize_t)sizeof(big));
	struct stream s;
	stream_tcp_init(&s, sv[0]);
	char arr[32];
	memset(arr, '#', sizeof(arr));
	struct buf v;
	ftp_buf_view(&v, arr, 0, 10);
	assert_int_equal(stream_read(&s, &v), 10);
	assert_int_equal(buf_len(&v), 10);
	for (size_t i = 10; i < sizeof(arr); i++)
		assert_int_equal(arr[i], '#');
	char line[] = "AUTH TLS\r\n";
	ftp_buf_view(&v, line, 10, 10);
	assert_int_equal(stream_write(&s, &v, 0), 10);
	char got[16] = "";
	assert_int_equal(read(sv[1], got, sizeof(got)), 10);
	assert_memory_equal(got, "AUTH TLS\r\n", 10);
	close(sv[0]);
	close(sv[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ftp_range_takes_one_range_only),
		cmocka_unit_test(ftp_accept_prefers_json_only_when_asked),
		cmocka_unit_test(ftp_257_gives_the_quoted_directory),
		cmocka_unit_test(ftp_url_on_pages_has_no_password),
		cmocka_unit_test(ftp_conditional_matches_etag_or_date),
		cmocka_unit_test(ftp_tls_host_is_the_key_host),
		cmocka_unit_test(ftp_buf_view_stays_inside_its_array),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
