/*
 * test_h1.c - unit tests of the strict HTTP/1.1 parser (daemon/h1.c).
 *
 * Table-driven: every row of a table is registered as its own cmocka test, named for the
 * behaviour it pins down. Request and response rows are also scanned one byte at a time and
 * must give the same verdict as the one-shot scan; chunked rows are decoded whole, byte by
 * byte, split at every offset and in pseudo-random pieces, and every way must agree.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/h1.h"

#define CRLF "\r\n"
#define HOST "Host: example.com\r\n"

static const struct h1_limits small_lim = { 32, 40, 3, 160 };

/* ---- requests ---- */

struct rq_case {
	const char *name;
	const char *in;
	size_t len;            /* 0: strlen(in) */
	int rc;                /* expected result of the whole parse */
	int status;            /* when rc == H1_ERR */
	const char *reason;    /* when rc == H1_ERR */
	int phase1;            /* the scanner (h1_head_complete) already refuses it */
	enum h1_method method;
	enum h1_framing framing;
	uint64_t cl;
	unsigned flags;
	const struct h1_limits *lim;
};

#define RQ_OK(n, s, m, fr, c, fl) \
	{ .name = n, .in = s, .rc = H1_OK, .method = m, .framing = fr, .cl = c, .flags = fl }
#define RQ_ERR(n, s, st, r) { .name = n, .in = s, .rc = H1_ERR, .status = st, .reason = r }
#define RQ_SCAN_ERR(n, s, st, r, l) \
	{ .name = n, .in = s, .rc = H1_ERR, .status = st, .reason = r, .phase1 = 1, .lim = l }

#define NUL_REQ "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n"

static const struct rq_case rq_cases[] = {
	/* valid requests */
	RQ_OK("GET origin-form is accepted without a body",
	      "GET /index.html?q=1 HTTP/1.1\r\n" HOST "User-Agent: curl/8.0\r\nAccept: */*\r\n\r\n",
	      H1_M_GET, H1_BODY_NONE, 0, 0),
	RQ_OK("POST with Content-Length is length-delimited",
	      "POST /form HTTP/1.1\r\n" HOST "Content-Type: text/plain\r\nContent-Length: 5\r\n\r\n",
	      H1_M_POST, H1_BODY_LENGTH, 5, 0),
	RQ_OK("POST with chunked is chunked",
	      "POST /up HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n",
	      H1_M_POST, H1_BODY_CHUNKED, 0, 0),
	RQ_OK("chunked is matched case-insensitively",
	      "PUT /up HTTP/1.1\r\n" HOST "Transfer-Encoding: ChUnKeD\r\n\r\n",
	      H1_M_PUT, H1_BODY_CHUNKED, 0, 0),
	RQ_OK("CONNECT authority-form has no body",
	      "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
	      H1_M_CONNECT, H1_BODY_NONE, 0, 0),
	RQ_OK("CONNECT to an IPv6 literal",
	      "CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n",
	      H1_M_CONNECT, H1_BODY_NONE, 0, 0),
	RQ_OK("CONNECT with Content-Length 0 is tolerated",
	      "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nContent-Length: 0\r\n\r\n",
	      H1_M_CONNECT, H1_BODY_NONE, 0, 0),
	RQ_OK("OPTIONS asterisk-form",
	      "OPTIONS * HTTP/1.1\r\n" HOST "\r\n", H1_M_OPTIONS, H1_BODY_NONE, 0, 0),
	RQ_OK("absolute-form target",
	      "GET http://example.com:8080/a/b?c=d HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
	      H1_M_GET, H1_BODY_NONE, 0, 0),
	RQ_OK("absolute-form target with an empty Host",
	      "GET http://example.com/ HTTP/1.1\r\nHost:\r\n\r\n", H1_M_GET, H1_BODY_NONE, 0, 0),
	RQ_OK("HTTP/1.0 without Host defaults to close",
	      "GET / HTTP/1.0\r\n\r\n", H1_M_GET, H1_BODY_NONE, 0, H1_CONN_CLOSE),
	RQ_OK("HTTP/1.0 keep-alive stays open",
	      "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
	      H1_M_GET, H1_BODY_NONE, 0, H1_CONN_KEEPALIVE),
	RQ_OK("HTTP/1.1 Connection close",
	      "GET / HTTP/1.1\r\n" HOST "Connection: close\r\n\r\n",
	      H1_M_GET, H1_BODY_NONE, 0, H1_CONN_CLOSE),
	RQ_OK("Expect 100-continue sets the flag",
	      "PUT /f HTTP/1.1\r\n" HOST "Expect: 100-Continue\r\nContent-Length: 10\r\n\r\n",
	      H1_M_PUT, H1_BODY_LENGTH, 10, H1_EXPECT_CONTINUE),
	RQ_OK("Expect 100-continue is ignored in HTTP/1.0",
	      "PUT /f HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
	      H1_M_PUT, H1_BODY_LENGTH, 1, H1_CONN_CLOSE),
	RQ_OK("TE trailers and Upgrade set their flags",
	      "GET /ws HTTP/1.1\r\n" HOST "TE: trailers, deflate;q=0.5\r\nConnection: Upgrade, TE\r\n"
	      "Upgrade: websocket\r\n\r\n",
	      H1_M_GET, H1_BODY_NONE, 0, H1_HAS_TE_TRAILERS | H1_HAS_UPGRADE),
	RQ_OK("leading empty lines are skipped",
	      "\r\n\n\r\nGET / HTTP/1.1\r\n" HOST "\r\n", H1_M_GET, H1_BODY_NONE, 0, 0),
	RQ_OK("bare LF line endings are accepted",
	      "GET / HTTP/1.1\nHost: a\nX: y\n\n", H1_M_GET, H1_BODY_NONE, 0, 0),
	RQ_OK("unknown token method is H1_M_OTHER",
	      "PROPFIND /dav HTTP/1.1\r\n" HOST "\r\n", H1_M_OTHER, H1_BODY_NONE, 0, 0),
	RQ_OK("methods are case-sensitive",
	      "get / HTTP/1.1\r\n" HOST "\r\n", H1_M_OTHER, H1_BODY_NONE, 0, 0),
	RQ_OK("Content-Length 0 on GET",
	      "GET / HTTP/1.1\r\n" HOST "Content-Length: 0\r\n\r\n", H1_M_GET, H1_BODY_LENGTH, 0, 0),
	RQ_OK("Content-Length with leading zeros",
	      "POST / HTTP/1.1\r\n" HOST "Content-Length: 0042\r\n\r\n", H1_M_POST, H1_BODY_LENGTH,
	      42, 0),
	RQ_OK("largest Content-Length",
	      "POST / HTTP/1.1\r\n" HOST "Content-Length: 9223372036854775807\r\n\r\n", H1_M_POST,
	      H1_BODY_LENGTH, INT64_MAX, 0),
	RQ_OK("obs-text and tabs in a field value",
	      "GET / HTTP/1.1\r\n" HOST "X-Name: caf\xc3\xa9\tbar\r\n\r\n", H1_M_GET, H1_BODY_NONE,
	      0, 0),
	RQ_OK("empty field value", "GET / HTTP/1.1\r\n" HOST "X-Empty:\r\n\r\n", H1_M_GET,
	      H1_BODY_NONE, 0, 0),
	RQ_OK("Host with an IPv6 literal and port",
	      "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", H1_M_GET, H1_BODY_NONE, 0, 0),
	RQ_OK("target with reserved and odd visible characters",
	      "GET /a;b=c/%20d?x=[1]&y=|{}`^ HTTP/1.1\r\n" HOST "\r\n", H1_M_GET, H1_BODY_NONE, 0, 0),
	RQ_OK("exactly max_fields fields",
	      "GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 2\r\n\r\n", H1_M_GET, H1_BODY_NONE, 0, 0),

	/* request smuggling shapes */
	RQ_ERR("two identical Content-Length lines are refused",
	       "POST / HTTP/1.1\r\n" HOST "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", 400,
	       "repeated Content-Length"),
	RQ_ERR("an identical Content-Length list is refused",
	       "POST / HTTP/1.1\r\n" HOST "Content-Length: 5, 5\r\n\r\n", 400,
	       "repeated Content-Length"),
	RQ_ERR("two different Content-Length lines conflict",
	       "POST / HTTP/1.1\r\n" HOST "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", 400,
	       "conflicting Content-Length"),
	RQ_ERR("a Content-Length list with different values conflicts",
	       "POST / HTTP/1.1\r\n" HOST "Content-Length: 5,6\r\n\r\n", 400,
	       "conflicting Content-Length"),
	RQ_ERR("Content-Length with Transfer-Encoding",
	       "POST / HTTP/1.1\r\n" HOST "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	       400, "Content-Length with Transfer-Encoding"),
	RQ_ERR("Transfer-Encoding before Content-Length",
	       "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
	       400, "Content-Length with Transfer-Encoding"),
	RQ_ERR("chunked not last", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked, gzip\r\n\r\n",
	       400, "transfer-coding list does not end in chunked"),
	RQ_ERR("only gzip", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: gzip\r\n\r\n", 400,
	       "transfer-coding list does not end in chunked"),
	RQ_ERR("gzip then chunked is unsupported",
	       "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: gzip, chunked\r\n\r\n", 501,
	       "unsupported transfer-coding"),
	RQ_ERR("chunked twice in one line",
	       "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked, chunked\r\n\r\n", 400,
	       "chunked applied more than once"),
	RQ_ERR("chunked twice in two lines",
	       "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"
	       "\r\n", 400, "chunked applied more than once"),
	RQ_ERR("a second Transfer-Encoding line after chunked",
	       "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n"
	       "\r\n", 400, "transfer-coding list does not end in chunked"),
	RQ_ERR("chunked with a parameter",
	       "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked;x=1\r\n\r\n", 400,
	       "bad Transfer-Encoding"),
	RQ_ERR("empty Transfer-Encoding", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding:\r\n\r\n",
	       400, "bad Transfer-Encoding"),
	RQ_ERR("empty transfer-coding list element",
	       "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: , chunked\r\n\r\n", 400,
	       "bad Transfer-Encoding"),
	RQ_ERR("Transfer-Encoding with a vertical tab",
	       "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: \x0b" "chunked\r\n\r\n", 400,
	       "invalid character in header value"),
	RQ_ERR("Transfer-Encoding in HTTP/1.0",
	       "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
	       "Transfer-Encoding in HTTP/1.0"),
	RQ_ERR("non-digit Content-Length", "POST / HTTP/1.1\r\n" HOST "Content-Length: 5a\r\n\r\n",
	       400, "bad Content-Length"),
	RQ_ERR("signed Content-Length", "POST / HTTP/1.1\r\n" HOST "Content-Length: +5\r\n\r\n",
	       400, "bad Content-Length"),
	RQ_ERR("negative Content-Length", "POST / HTTP/1.1\r\n" HOST "Content-Length: -1\r\n\r\n",
	       400, "bad Content-Length"),
	RQ_ERR("empty Content-Length", "POST / HTTP/1.1\r\n" HOST "Content-Length:\r\n\r\n",
	       400, "bad Content-Length"),
	RQ_ERR("Content-Length over 2^63", "POST / HTTP/1.1\r\n" HOST
	       "Content-Length: 9223372036854775808\r\n\r\n", 400, "bad Content-Length"),
	RQ_ERR("Content-Length with an empty list element",
	       "POST / HTTP/1.1\r\n" HOST "Content-Length: 5,\r\n\r\n", 400, "bad Content-Length"),
	RQ_ERR("obs-fold", "GET / HTTP/1.1\r\n" HOST "X-A: b\r\n c\r\n\r\n", 400,
	       "obs-fold in header"),
	RQ_ERR("obs-fold with a tab", "GET / HTTP/1.1\r\n" HOST "X-A: b\r\n\tc\r\n\r\n", 400,
	       "obs-fold in header"),
	RQ_ERR("whitespace before the colon of Content-Length",
	       "POST / HTTP/1.1\r\n" HOST "Content-Length : 5\r\n\r\n", 400,
	       "whitespace before colon"),
	RQ_ERR("tab before the colon of Transfer-Encoding",
	       "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding\t: chunked\r\n\r\n", 400,
	       "whitespace before colon"),
	RQ_ERR("space inside a field name", "GET / HTTP/1.1\r\n" HOST "X Y: z\r\n\r\n", 400,
	       "invalid character in header name"),
	RQ_ERR("field line without a colon", "GET / HTTP/1.1\r\n" HOST "Garbage\r\n\r\n", 400,
	       "missing colon in header"),
	RQ_ERR("empty field name", "GET / HTTP/1.1\r\n" HOST ": x\r\n\r\n", 400,
	       "empty header name"),
	RQ_ERR("non-token byte in a field name", "GET / HTTP/1.1\r\n" HOST "X(a): z\r\n\r\n", 400,
	       "invalid character in header name"),
	RQ_ERR("control character in a field value",
	       "GET / HTTP/1.1\r\n" HOST "X-A: a\x01" "b\r\n\r\n", 400,
	       "invalid character in header value"),
	{ .name = "NUL in a field value",
	  .in = NUL_REQ, .len = sizeof(NUL_REQ) - 1, .rc = H1_ERR,
	  .status = 400, .reason = "invalid character in header value" },
	RQ_ERR("DEL in a field value", "GET / HTTP/1.1\r\n" HOST "X-A: a\x7f\r\n\r\n", 400,
	       "invalid character in header value"),
	RQ_SCAN_ERR("bare CR in a field value",
	            "GET / HTTP/1.1\r\n" HOST "X-A: a\rb\r\n\r\n", 400, "bare CR", NULL),
	RQ_SCAN_ERR("bare CR ending a field line", "GET / HTTP/1.1\r\n" HOST "X-A: a\r\r\n\r\n",
	            400, "bare CR", NULL),
	RQ_SCAN_ERR("bare CR in the request line", "GET /\r HTTP/1.1\r\n" HOST "\r\n", 400,
	            "bare CR", NULL),
	RQ_SCAN_ERR("bare CR as the head terminator", "GET / HTTP/1.1\r\n" HOST "\r\r\n", 400,
	            "bare CR", NULL),
	RQ_ERR("DEL in the target", "GET /a\x7f HTTP/1.1\r\n" HOST "\r\n", 400,
	       "control character in target"),
	RQ_ERR("non-ASCII in the target", "GET /caf\xc3\xa9 HTTP/1.1\r\n" HOST "\r\n", 400,
	       "control character in target"),
	RQ_ERR("tab in the target", "GET /a\tb HTTP/1.1\r\n" HOST "\r\n", 400,
	       "control character in target"),
	RQ_ERR("space in the target", "GET /a b HTTP/1.1\r\n" HOST "\r\n", 400,
	       "control character in target"),
	RQ_ERR("fragment in the target", "GET /a#b HTTP/1.1\r\n" HOST "\r\n", 400,
	       "fragment in target"),
	RQ_ERR("HTTP/1.1 without Host", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400,
	       "missing Host"),
	RQ_ERR("two Host lines", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400,
	       "repeated Host"),
	RQ_ERR("Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "bad Host"),
	RQ_ERR("Host with userinfo", "GET / HTTP/1.1\r\nHost: u@h\r\n\r\n", 400, "bad Host"),
	RQ_ERR("Host with port 0", "GET / HTTP/1.1\r\nHost: h:0\r\n\r\n", 400, "bad Host"),
	RQ_ERR("non-numeric Max-Forwards", "OPTIONS * HTTP/1.1\r\n" HOST "Max-Forwards: ten\r\n\r\n",
	       400, "bad Max-Forwards"),
	RQ_ERR("negative Max-Forwards", "OPTIONS * HTTP/1.1\r\n" HOST "Max-Forwards: -1\r\n\r\n",
	       400, "bad Max-Forwards"),
	RQ_ERR("unknown expectation", "PUT / HTTP/1.1\r\n" HOST "Expect: the-unexpected\r\n\r\n",
	       417, "unsupported expectation"),
	RQ_ERR("100-continue listed with another expectation",
	       "PUT / HTTP/1.1\r\n" HOST "Expect: 100-continue, foo\r\n\r\n", 417,
	       "unsupported expectation"),
	RQ_ERR("HTTP/2.0 on a 1.x connection", "GET / HTTP/2.0\r\n" HOST "\r\n", 505,
	       "HTTP version not supported"),
	RQ_ERR("HTTP/1.2", "GET / HTTP/1.2\r\n" HOST "\r\n", 505, "HTTP version not supported"),
	RQ_ERR("HTTP/0.9 style version", "GET / HTTP/0.9\r\n\r\n", 505,
	       "HTTP version not supported"),
	RQ_ERR("lower-case version", "GET / http/1.1\r\n" HOST "\r\n", 400, "bad HTTP version"),
	RQ_ERR("two-digit minor version", "GET / HTTP/1.10\r\n" HOST "\r\n", 400,
	       "bad HTTP version"),
	RQ_ERR("version without minor", "GET / HTTP/1\r\n" HOST "\r\n", 400, "bad HTTP version"),
	RQ_ERR("request line without version", "GET /\r\n" HOST "\r\n", 400, "bad request line"),
	RQ_ERR("double space after the method", "GET  / HTTP/1.1\r\n" HOST "\r\n", 400,
	       "bad request line"),
	RQ_ERR("double space before the version", "GET /  HTTP/1.1\r\n" HOST "\r\n", 400,
	       "bad request line"),
	RQ_ERR("trailing space after the version", "GET / HTTP/1.1 \r\n" HOST "\r\n", 400,
	       "bad HTTP version"),
	RQ_ERR("non-token method", "GE@T / HTTP/1.1\r\n" HOST "\r\n", 400, "bad request line"),
	RQ_ERR("request line starting with a space", " GET / HTTP/1.1\r\n" HOST "\r\n", 400,
	       "bad request line"),
	RQ_ERR("asterisk-form on GET", "GET * HTTP/1.1\r\n" HOST "\r\n", 400,
	       "asterisk-form target without OPTIONS"),
	RQ_ERR("CONNECT with an origin-form target", "CONNECT / HTTP/1.1\r\n" HOST "\r\n", 400,
	       "invalid character in host"),
	RQ_ERR("CONNECT without a port", "CONNECT example.com HTTP/1.1\r\n" HOST "\r\n", 400,
	       "missing port"),
	RQ_ERR("CONNECT with a body", "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n"
	       "Content-Length: 5\r\n\r\n", 400, "CONNECT with a body"),
	RQ_ERR("CONNECT with a chunked body", "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n"
	       "Transfer-Encoding: chunked\r\n\r\n", 400, "CONNECT with a body"),
	RQ_ERR("absolute-form with port 0", "GET http://h:0/ HTTP/1.1\r\nHost: h\r\n\r\n", 400,
	       "bad port"),
	RQ_ERR("authority-form on GET", "GET example.com:80 HTTP/1.1\r\n" HOST "\r\n", 400,
	       "missing authority"),
	RQ_ERR("relative target", "GET index.html HTTP/1.1\r\n" HOST "\r\n", 400,
	       "missing scheme"),
	RQ_ERR("head passed with bytes after it", "GET / HTTP/1.1\r\n" HOST "\r\nX", 400,
	       "data after head"),

	/* limits (small_lim: line 32, field 40, 3 fields, head 160) */
	RQ_SCAN_ERR("request line over max_line",
	            "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: a\r\n\r\n", 414,
	            "request line too long", &small_lim),
	RQ_SCAN_ERR("field line over max_field",
	            "GET / HTTP/1.1\r\nHost: a\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
	            431, "header field too long", &small_lim),
	RQ_SCAN_ERR("more than max_fields fields",
	            "GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 2\r\nD: 3\r\n\r\n", 431,
	            "too many header fields", &small_lim),
	RQ_SCAN_ERR("head over max_head",
	            "GET / HTTP/1.1\r\nHost: a\r\nX-1: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
	            "X-2: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nX-3: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
	            "\r\n", 431, "too many header fields", &small_lim),
	{ .name = "head over max_head before the field count",
	  .in = "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n"
	        "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n"
	        "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n"
	        "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n"
	        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	  .rc = H1_ERR, .status = 431, .reason = "head too large", .phase1 = 1, .lim = &small_lim },
	{ .name = "request line of exactly max_line",
	  .in = "GET /aaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: a\r\n\r\n", .rc = H1_OK,
	  .method = H1_M_GET, .lim = &small_lim },
};

static struct h1_head g_head;

static size_t
case_len(const char *in, size_t len)
{
	return len != 0 ? len : strlen(in);
}

/* Scan in one shot and one byte at a time; both must agree. Returns the one-shot result. */
static int
scan_both(const char *in, size_t len, const struct h1_limits *lim, int is_request,
          size_t *head_len, int *status, const char **reason)
{
	size_t scan = 0, hl2 = 0, i;
	int rc, rc2 = H1_AGAIN, st2 = 0;
	const char *why2 = NULL;

	rc = h1_head_complete(in, len, &scan, head_len, lim, is_request, status, reason);
	scan = 0;
	for (i = 1; i <= len && rc2 == H1_AGAIN; i++)
		rc2 = h1_head_complete(in, i, &scan, &hl2, lim, is_request, &st2, &why2);
	assert_int_equal(rc, rc2);
	if (rc == H1_OK)
		assert_int_equal(*head_len, hl2);
	if (rc == H1_ERR) {
		assert_int_equal(*status, st2);
		assert_string_equal(*reason, why2);
	}
	return rc;
}

static void
test_request_case(void **state)
{
	const struct rq_case *c = *state;
	size_t len = case_len(c->in, c->len), hl = 0;
	int st = 0, rc;
	const char *why = "";

	rc = scan_both(c->in, len, c->lim, 1, &hl, &st, &why);
	if (c->phase1) {
		assert_int_equal(rc, H1_ERR);
		assert_int_equal(st, c->status);
		assert_string_equal(why, c->reason);
		return;
	}
	if (rc != H1_OK)
		print_error("scan: rc %d status %d reason %s\n", rc, st, why);
	assert_int_equal(rc, H1_OK);
	if (strcmp(c->name, "head passed with bytes after it") == 0) {
		/* the dissector is handed more than the scanner found */
		assert_int_equal(hl, len - 1);
		hl = len;
	} else {
		assert_int_equal(hl, len);
	}
	rc = h1_parse_request(c->in, hl, &g_head, c->lim, &st, &why);
	if (rc != c->rc)
		print_error("parse: rc %d status %d reason %s\n", rc, st, rc == H1_ERR ? why : "");
	assert_int_equal(rc, c->rc);
	if (rc == H1_ERR) {
		assert_int_equal(st, c->status);
		assert_string_equal(why, c->reason);
		return;
	}
	assert_int_equal(g_head.method, c->method);
	assert_int_equal(g_head.framing, c->framing);
	assert_int_equal(g_head.flags, c->flags);
	assert_int_equal(g_head.head_len, len);
	if (c->framing == H1_BODY_LENGTH)
		assert_int_equal(g_head.content_length, c->cl);
}

/* ---- responses ---- */

struct rs_case {
	const char *name;
	const char *in;
	enum h1_method req;
	int mode;              /* ProxyBadHeader: 0 IsError, 1 Ignore, 2 StartBody */
	int rc;
	const char *reason;    /* when rc == H1_ERR (status is always 502) */
	int phase1;
	int status;            /* when rc == H1_OK */
	enum h1_framing framing;
	uint64_t cl;
	unsigned flags;
	size_t head_len;       /* 0: the whole input */
	int nfields;           /* -1: not checked */
};

#define RS_OK(n, s, rq, st, fr, c, fl) \
	{ .name = n, .in = s, .req = rq, .rc = H1_OK, .status = st, .framing = fr, .cl = c, \
	  .flags = fl, .nfields = -1 }
#define RS_ERR(n, s, m, r) { .name = n, .in = s, .req = H1_M_GET, .mode = m, .rc = H1_ERR, \
	                     .reason = r, .nfields = -1 }

static const struct rs_case rs_cases[] = {
	RS_OK("200 with Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n"
	      "Content-Type: text/html\r\n\r\n", H1_M_GET, 200, H1_BODY_LENGTH, 12, 0),
	RS_OK("200 chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", H1_M_GET, 200,
	      H1_BODY_CHUNKED, 0, 0),
	RS_ERR("gzip then chunked: the coding would be lost", "HTTP/1.1 200 OK\r\n"
	       "Transfer-Encoding: gzip, chunked\r\n\r\n", 0, "unsupported transfer-coding"),
	RS_ERR("gzip alone (read until close): the coding would be lost",
	       "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 0,
	       "unsupported transfer-coding"),
	RS_OK("gzip, chunked on a 304 has no body to refuse", "HTTP/1.1 304 Not Modified\r\n"
	      "Transfer-Encoding: gzip, chunked\r\n\r\n", H1_M_GET, 304, H1_BODY_NONE, 0, 0),
	RS_OK("no framing fields reads until close", "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n",
	      H1_M_GET, 200, H1_BODY_CLOSE, 0, 0),
	RS_OK("204 has no body", "HTTP/1.1 204 No Content\r\n\r\n", H1_M_DELETE, 204, H1_BODY_NONE,
	      0, 0),
	RS_OK("304 with Content-Length has no body", "HTTP/1.1 304 Not Modified\r\n"
	      "Content-Length: 100\r\n\r\n", H1_M_GET, 304, H1_BODY_NONE, 0, 0),
	RS_OK("100 Continue has no body", "HTTP/1.1 100 Continue\r\n\r\n", H1_M_PUT, 100,
	      H1_BODY_NONE, 0, 0),
	RS_OK("101 Switching Protocols", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	      "Connection: Upgrade\r\n\r\n", H1_M_GET, 101, H1_BODY_NONE, 0, H1_HAS_UPGRADE),
	RS_OK("response to HEAD has no body", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
	      H1_M_HEAD, 200, H1_BODY_NONE, 0, 0),
	RS_OK("chunked response to HEAD has no body", "HTTP/1.1 200 OK\r\n"
	      "Transfer-Encoding: chunked\r\n\r\n", H1_M_HEAD, 200, H1_BODY_NONE, 0, 0),
	RS_OK("2xx to CONNECT has no body", "HTTP/1.1 200 Connection established\r\n\r\n",
	      H1_M_CONNECT, 200, H1_BODY_NONE, 0, 0),
	RS_OK("407 to CONNECT has its body", "HTTP/1.1 407 Proxy Authentication Required\r\n"
	      "Content-Length: 3\r\nProxy-Authenticate: Basic realm=\"x\"\r\n\r\n", H1_M_CONNECT, 407,
	      H1_BODY_LENGTH, 3, 0),
	RS_OK("status line without reason or space", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
	      H1_M_GET, 200, H1_BODY_LENGTH, 0, 0),
	RS_OK("status line with an empty reason", "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n",
	      H1_M_GET, 404, H1_BODY_LENGTH, 0, 0),
	RS_OK("HTTP/1.0 response defaults to close", "HTTP/1.0 200 OK\r\n\r\n", H1_M_GET, 200,
	      H1_BODY_CLOSE, 0, H1_CONN_CLOSE),
	RS_OK("HTTP/1.0 keep-alive response", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
	      "Content-Length: 2\r\n\r\n", H1_M_GET, 200, H1_BODY_LENGTH, 2, H1_CONN_KEEPALIVE),
	RS_OK("bare LF response", "HTTP/1.1 200 OK\nContent-Length: 2\n\n", H1_M_GET, 200,
	      H1_BODY_LENGTH, 2, 0),
	RS_OK("Expect and Host mean nothing in a response", "HTTP/1.1 200 OK\r\nExpect: x\r\n"
	      "Host: a\r\nHost: b\r\nContent-Length: 1\r\n\r\n", H1_M_GET, 200, H1_BODY_LENGTH, 1, 0),

	RS_ERR("identical repeated Content-Length in a response", "HTTP/1.1 200 OK\r\n"
	       "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", 0, "repeated Content-Length"),
	RS_ERR("conflicting Content-Length in a response", "HTTP/1.1 200 OK\r\n"
	       "Content-Length: 5, 7\r\n\r\n", 0, "conflicting Content-Length"),
	RS_ERR("Content-Length with Transfer-Encoding in a response", "HTTP/1.1 200 OK\r\n"
	       "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 1,
	       "Content-Length with Transfer-Encoding"),
	RS_ERR("framing conflicts are errors even on 304", "HTTP/1.1 304 Not Modified\r\n"
	       "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 2,
	       "Content-Length with Transfer-Encoding"),
	RS_ERR("chunked twice in a response", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
	       "Transfer-Encoding: chunked\r\n\r\n", 0, "chunked applied more than once"),
	RS_ERR("Transfer-Encoding in an HTTP/1.0 response", "HTTP/1.0 200 OK\r\n"
	       "Transfer-Encoding: chunked\r\n\r\n", 0, "Transfer-Encoding in HTTP/1.0"),
	RS_ERR("bad Content-Length in a response", "HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n",
	       1, "bad Content-Length"),
	RS_ERR("four-digit status", "HTTP/1.1 2000 OK\r\n\r\n", 0, "bad status line"),
	RS_ERR("two-digit status", "HTTP/1.1 20 OK\r\n\r\n", 0, "bad status line"),
	RS_ERR("status below 100", "HTTP/1.1 099 Odd\r\n\r\n", 0, "bad status code"),
	RS_ERR("status above 599", "HTTP/1.1 600 Odd\r\n\r\n", 0, "bad status code"),
	RS_ERR("HTTP/2.0 status line", "HTTP/2.0 200 OK\r\n\r\n", 0, "HTTP version not supported"),
	RS_ERR("HTTP/2 status line", "HTTP/2 200 OK\r\n\r\n", 0, "bad HTTP version"),
	RS_ERR("not HTTP at all", "ICY 200 OK\r\n\r\n", 0, "bad HTTP version"),
	RS_ERR("control character in the reason", "HTTP/1.1 200 O\x01K\r\n\r\n", 0,
	       "bad status line"),
	RS_ERR("leading empty line before a response", "\r\nHTTP/1.1 200 OK\r\n\r\n", 0,
	       "bad HTTP version"),
	RS_ERR("obs-fold in a response is an error in Ignore mode", "HTTP/1.1 200 OK\r\nX: a\r\n"
	       " b\r\n\r\n", 1, "obs-fold in header"),
	RS_ERR("IsError refuses a malformed field line", "HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
	       0, "invalid character in header name"),
	RS_ERR("IsError refuses a field line without colon", "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", 0,
	       "missing colon in header"),
	RS_ERR("unknown mode behaves as IsError", "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", 7,
	       "missing colon in header"),
	RS_ERR("whitespace before colon of Content-Length is fatal in Ignore mode",
	       "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n", 1, "whitespace before colon"),
	RS_ERR("bad Transfer-Encoding value is fatal in StartBody mode",
	       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\x01\r\n\r\n", 2,
	       "invalid character in header value"),
	{ .name = "bare CR in a response", .in = "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
	  .req = H1_M_GET, .mode = 1, .rc = H1_ERR, .reason = "bare CR", .phase1 = 1,
	  .nfields = -1 },

	{ .name = "Ignore drops a malformed field line",
	  .in = "HTTP/1.1 200 OK\r\nA: 1\r\nBad Header: x\r\nContent-Length: 3\r\n\r\n",
	  .req = H1_M_GET, .mode = 1, .rc = H1_OK, .status = 200, .framing = H1_BODY_LENGTH,
	  .cl = 3, .nfields = 2 },
	{ .name = "Ignore drops a field line with a control character",
	  .in = "HTTP/1.1 200 OK\r\nX-A: a\x01\r\nContent-Length: 3\r\n\r\n",
	  .req = H1_M_GET, .mode = 1, .rc = H1_OK, .status = 200, .framing = H1_BODY_LENGTH,
	  .cl = 3, .nfields = 1 },
	{ .name = "StartBody ends the head at a malformed field line",
	  .in = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n<html>\r\nX-After: 1\r\n\r\n",
	  .req = H1_M_GET, .mode = 2, .rc = H1_OK, .status = 200, .framing = H1_BODY_LENGTH,
	  .cl = 7, .head_len = 36, .nfields = 1 },
	{ .name = "StartBody without framing fields reads until close",
	  .in = "HTTP/1.1 200 OK\r\nServer: old\r\nhello world\r\n\r\n",
	  .req = H1_M_GET, .mode = 2, .rc = H1_OK, .status = 200, .framing = H1_BODY_CLOSE,
	  .head_len = 30, .nfields = 1 },
};

static void
test_response_case(void **state)
{
	const struct rs_case *c = *state;
	size_t len = strlen(c->in), hl = 0;
	int st = 0, rc;
	const char *why = "";

	rc = scan_both(c->in, len, NULL, 0, &hl, &st, &why);
	if (c->phase1) {
		assert_int_equal(rc, H1_ERR);
		assert_int_equal(st, 502);
		assert_string_equal(why, c->reason);
		return;
	}
	assert_int_equal(rc, H1_OK);
	if (strncmp(c->in, "\r\n", 2) == 0)
		assert_int_equal(hl, 2); /* an empty first line ends an (empty) response head */
	else
		assert_int_equal(hl, len);
	rc = h1_parse_response(c->in, &hl, &g_head, c->req, NULL, c->mode, &st, &why);
	if (rc != c->rc)
		print_error("parse: rc %d status %d reason %s\n", rc, st, rc == H1_ERR ? why : "");
	assert_int_equal(rc, c->rc);
	if (rc == H1_ERR) {
		assert_int_equal(st, 502);
		assert_string_equal(why, c->reason);
		return;
	}
	assert_int_equal(g_head.status, c->status);
	assert_int_equal(g_head.framing, c->framing);
	assert_int_equal(g_head.flags, c->flags);
	assert_int_equal(hl, c->head_len != 0 ? c->head_len : len);
	assert_int_equal(g_head.head_len, hl);
	if (c->framing == H1_BODY_LENGTH)
		assert_int_equal(g_head.content_length, c->cl);
	if (c->nfields >= 0)
		assert_int_equal(g_head.nfields, (size_t)c->nfields);
}

/* ---- targets ---- */

struct url_case {
	const char *name;
	const char *in;
	int authority;          /* h1_authority_parse instead of h1_url_parse */
	int rc;
	const char *reason;
	enum h1_scheme scheme;
	const char *host;
	int ip6;
	uint16_t port;
	int port_explicit;
	const char *path;
	const char *userinfo;
	int path_default;
};

#define URL_OK(n, s, sc, h, p, pe, pa) \
	{ .name = n, .in = s, .rc = H1_OK, .scheme = sc, .host = h, .port = p, .port_explicit = pe, \
	  .path = pa, .userinfo = "" }
#define URL_ERR(n, s, r) { .name = n, .in = s, .rc = H1_ERR, .reason = r }
#define AUTH_ERR(n, s, r) { .name = n, .in = s, .authority = 1, .rc = H1_ERR, .reason = r }

static const struct url_case url_cases[] = {
	URL_OK("plain http URL", "http://example.com/a/b?c=d&e", H1_SCHEME_HTTP, "example.com", 80,
	       0, "/a/b?c=d&e"),
	{ .name = "scheme is case-insensitive and an empty path becomes /",
	  .in = "HTTP://Example.COM", .rc = H1_OK, .scheme = H1_SCHEME_HTTP, .host = "Example.COM",
	  .port = 80, .path = "/", .userinfo = "", .path_default = 1 },
	URL_OK("https with explicit port", "https://h.example:8443/x", H1_SCHEME_HTTPS, "h.example",
	       8443, 1, "/x"),
	{ .name = "ftp with userinfo", .in = "ftp://user:p%40ss@files.example/pub/f.txt",
	  .rc = H1_OK, .scheme = H1_SCHEME_FTP, .host = "files.example", .port = 21,
	  .path = "/pub/f.txt", .userinfo = "user:p%40ss" },
	{ .name = "IPv6 literal with port", .in = "http://[2001:db8::1]:8080/", .rc = H1_OK,
	  .scheme = H1_SCHEME_HTTP, .host = "2001:db8::1", .ip6 = 1, .port = 8080,
	  .port_explicit = 1, .path = "/", .userinfo = "" },
	URL_OK("unknown scheme has no default port", "gopher://h/1", H1_SCHEME_OTHER, "h", 0, 0,
	       "/1"),
	URL_OK("dotted-quad host", "http://127.0.0.1/", H1_SCHEME_HTTP, "127.0.0.1", 80, 0, "/"),
	URL_OK("all reg-name characters", "http://a.b-c_d~e!$&'()*+,;=%41/", H1_SCHEME_HTTP,
	       "a.b-c_d~e!$&'()*+,;=%41", 80, 0, "/"),
	URL_OK("highest port", "http://h:65535/", H1_SCHEME_HTTP, "h", 65535, 1, "/"),
	URL_OK("port with leading zeros", "http://h:00080/", H1_SCHEME_HTTP, "h", 80, 1, "/"),
	URL_OK("host with a trailing dot", "http://example.com./", H1_SCHEME_HTTP, "example.com.",
	       80, 0, "/"),
	URL_OK("digits inside a name are fine", "http://1.example2/", H1_SCHEME_HTTP,
	       "1.example2", 80, 0, "/"),
	URL_OK("@ in the path is not userinfo", "http://h/a@b", H1_SCHEME_HTTP, "h", 80, 0, "/a@b"),
	URL_OK("host with an empty last label", "http://a../", H1_SCHEME_HTTP, "a..", 80, 0, "/"),
	{ .name = "authority-form", .in = "example.com:443", .authority = 1, .rc = H1_OK,
	  .host = "example.com", .port = 443, .port_explicit = 1, .path = "", .userinfo = "" },
	{ .name = "authority-form with IPv6", .in = "[::1]:22", .authority = 1, .rc = H1_OK,
	  .host = "::1", .ip6 = 1, .port = 22, .port_explicit = 1, .path = "", .userinfo = "" },

	URL_ERR("empty URL", "", "empty target"),
	URL_ERR("no host", "http:///x", "missing host"),
	URL_ERR("nothing after //", "http://", "missing host"),
	URL_ERR("port 0", "http://h:0/", "bad port"),
	URL_ERR("port over 65535", "http://h:65536/", "bad port"),
	URL_ERR("non-digit port", "http://h:8a/", "bad port"),
	URL_ERR("empty port", "http://h:/", "bad port"),
	URL_ERR("fragment", "http://h/a#frag", "fragment in target"),
	URL_ERR("space", "http://h/a b", "control character in target"),
	URL_ERR("DEL", "http://h/\x7f", "control character in target"),
	URL_ERR("non-ASCII host", "http://b\xc3\xa4r/", "control character in target"),
	URL_ERR("unclosed bracket", "http://[::1/", "unbalanced brackets in host"),
	URL_ERR("stray closing bracket", "http://h]/", "unbalanced brackets in host"),
	URL_ERR("not an IPv6 address", "http://[zz::1]/", "bad IPv6 literal"),
	URL_ERR("IPv6 zone id", "http://[fe80::1%25eth0]/", "bad IPv6 literal"),
	URL_ERR("junk after IPv6 literal", "http://[::1]x/", "invalid character in host"),
	URL_ERR("unbracketed IPv6", "http://::1/", "missing host"),
	URL_ERR("two @ in the authority", "http://a@b@c/", "bad userinfo"),
	URL_ERR("bad character in userinfo", "http://a[b@c/", "bad userinfo"),
	URL_ERR("bad character in host", "http://h^x/", "invalid character in host"),
	URL_ERR("backslash in host", "http://h\\x/", "invalid character in host"),
	URL_ERR("query without path", "http://h?q=1", "query without path"),
	URL_ERR("missing //", "http:/h/", "missing authority"),
	URL_ERR("no scheme", "example.com/", "missing scheme"),
	URL_ERR("scheme starting with a digit", "1http://h/", "missing scheme"),
	URL_ERR("hexadecimal IPv4", "http://0x7f.1/", "bad IPv4 address"),
	URL_ERR("decimal IPv4", "http://2130706433/", "bad IPv4 address"),
	URL_ERR("short IPv4", "http://127.1/", "bad IPv4 address"),
	URL_ERR("IPv4 octet over 255", "http://1.2.3.256/", "bad IPv4 address"),
	URL_ERR("IPv4 octet with a leading zero", "http://01.2.3.4/", "bad IPv4 address"),
	URL_ERR("IPv4 with a trailing dot", "http://1.2.3.4./", "bad IPv4 address"),
	URL_ERR("bad percent-encoding in host", "http://%zz/", "bad percent-encoding in host"),
	URL_ERR("hexadecimal last label", "http://1.0x7f/", "bad IPv4 address"),
	URL_ERR("IPv6 literal too long", "http://[0000:0000:0000:0000:0000:0000:0000:0000:0]/",
	        "bad IPv6 literal"),
	URL_ERR("empty IPv6 literal", "http://[]/", "bad IPv6 literal"),
	URL_ERR("host name over 255 bytes", "http://a"
	        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	        "/", "host name too long"),
	AUTH_ERR("authority-form without port", "example.com", "missing port"),
	AUTH_ERR("authority-form with userinfo", "u@h:443", "userinfo in authority-form target"),
	AUTH_ERR("authority-form with port 0", "h:0", "bad port"),
	AUTH_ERR("authority-form without host", ":443", "missing host"),
	AUTH_ERR("authority-form with a path", "h:443/x", "bad port"),
	AUTH_ERR("empty authority-form", "", "missing host"),
};

static void
assert_slice(struct h1_str s, const char *want)
{
	if (s.n != strlen(want) || memcmp(s.p, want, s.n) != 0)
		print_error("got '%.*s' want '%s'\n", (int)s.n, s.p, want);
	assert_int_equal(s.n, strlen(want));
	assert_memory_equal(s.p, want, s.n);
}

static void
test_url_case(void **state)
{
	const struct url_case *c = *state;
	struct h1_str t = { c->in, strlen(c->in) };
	struct h1_url u;
	const char *why = "";
	int rc;

	rc = c->authority ? h1_authority_parse(t, &u, &why) : h1_url_parse(t, &u, &why);
	if (rc != c->rc)
		print_error("rc %d reason %s\n", rc, rc == H1_ERR ? why : "");
	assert_int_equal(rc, c->rc);
	if (rc == H1_ERR) {
		assert_string_equal(why, c->reason);
		return;
	}
	assert_int_equal(u.scheme, c->scheme);
	assert_slice(u.host, c->host);
	assert_int_equal(u.host_is_ip6, c->ip6);
	assert_int_equal(u.port, c->port);
	assert_int_equal(u.port_explicit, c->port_explicit);
	assert_slice(u.path, c->path);
	assert_slice(u.userinfo, c->userinfo);
	assert_int_equal(u.path_is_default, c->path_default);
}

/* ---- chunked bodies ---- */

struct ck_case {
	const char *name;
	const char *in;
	int rc;               /* final result once all input is offered */
	const char *reason;
	const char *data;     /* decoded body */
	const char *trailers; /* trailer lines, concatenated */
	size_t used;          /* bytes consumed in total; 0: all */
};

struct ck_out {
	int rc;
	const char *reason;
	char data[1 << 14];
	size_t dlen;
	char tr[1 << 14];
	size_t tlen;
	size_t used;
};

/* Decode in[0..len) offered in pieces: arrive[k] is how much has arrived after k+1 deliveries
 * (increasing, last == len). */
static void
ck_decode(const char *in, size_t len, const size_t *arrive, size_t narrive, struct ck_out *o)
{
	struct h1_chunked c;
	size_t off = 0, avail = arrive[0], next = 1, guard;

	h1_chunked_init(&c);
	o->dlen = o->tlen = 0;
	o->reason = "";
	o->rc = H1_AGAIN;
	for (guard = 0; guard < 4 * len + 64; guard++) {
		size_t used = 0;
		struct h1_str span = { NULL, 0 };
		int kind = -1;

		o->rc = h1_chunked_step(&c, in + off, avail - off, &used, &span, &kind, &o->reason);
		assert_true(used <= avail - off);
		if (span.n > 0) {
			assert_true(span.p >= in + off && span.p + span.n <= in + off + used);
			if (kind == H1_SPAN_DATA) {
				assert_true(o->dlen + span.n <= sizeof(o->data));
				memcpy(o->data + o->dlen, span.p, span.n);
				o->dlen += span.n;
			} else {
				assert_int_equal(kind, H1_SPAN_TRAILER);
				assert_true(o->tlen + span.n <= sizeof(o->tr));
				memcpy(o->tr + o->tlen, span.p, span.n);
				o->tlen += span.n;
			}
		}
		off += used;
		if (o->rc != H1_AGAIN)
			break;
		if (used == 0 && span.n == 0) {
			if (next >= narrive)
				break;
			avail = arrive[next++];
		}
	}
	assert_true(guard < 4 * len + 64);
	o->used = off;
}

static struct ck_out g_ck_ref, g_ck_try;
static size_t g_arrive[1 << 14];

static void
ck_same(const struct ck_out *a, const struct ck_out *b)
{
	assert_int_equal(a->rc, b->rc);
	if (a->rc == H1_ERR)
		assert_string_equal(a->reason, b->reason);
	assert_int_equal(a->dlen, b->dlen);
	assert_memory_equal(a->data, b->data, a->dlen);
	assert_int_equal(a->tlen, b->tlen);
	assert_memory_equal(a->tr, b->tr, a->tlen);
	if (a->rc != H1_ERR)
		assert_int_equal(a->used, b->used);
}

/* Whole, byte by byte, every two-piece split and seeded random splits must all agree. */
static void
ck_all_splits(const char *in, size_t len, struct ck_out *ref)
{
	size_t i, k, n, seed;

	g_arrive[0] = len;
	ck_decode(in, len, g_arrive, 1, ref);
	assert_true(len < sizeof(g_arrive) / sizeof(g_arrive[0]));
	for (i = 0; i < len; i++)
		g_arrive[i] = i + 1;
	ck_decode(in, len, g_arrive, len, &g_ck_try);
	ck_same(ref, &g_ck_try);
	for (k = 1; k < len; k++) {
		g_arrive[0] = k;
		g_arrive[1] = len;
		ck_decode(in, len, g_arrive, 2, &g_ck_try);
		ck_same(ref, &g_ck_try);
	}
	for (seed = 1; seed <= 20; seed++) {
		uint32_t x = (uint32_t)seed * 2654435761u;

		for (n = 0, i = 0; i < len; n++) {
			x = x * 1103515245u + 12345u;
			i += 1 + (x >> 16) % 9;
			g_arrive[n] = i < len ? i : len;
		}
		ck_decode(in, len, g_arrive, n, &g_ck_try);
		ck_same(ref, &g_ck_try);
	}
}

static char g_big[12000];

static const struct ck_case ck_cases[] = {
	{ "one chunk", "5\r\nhello\r\n0\r\n\r\n", H1_OK, NULL, "hello", "", 0 },
	{ "several chunks with hex sizes in both cases", "a\r\n0123456789\r\nA\r\nabcdefghij\r\n"
	  "1\r\n!\r\n0\r\n\r\n", H1_OK, NULL, "0123456789abcdefghij!", "", 0 },
	{ "extensions with token and quoted values",
	  "4;name=val;q=\"a \\\" b\";flag\r\nWiki\r\n5 ; a = b\r\npedia\r\n0;last\r\n\r\n", H1_OK,
	  NULL, "Wikipedia", "", 0 },
	{ "trailer fields are returned one by one",
	  "3\r\nabc\r\n0\r\nExpires: never\r\nX-Sum: 42\r\n\r\n", H1_OK, NULL, "abc",
	  "Expires: never\r\nX-Sum: 42\r\n", 0 },
	{ "bytes after the body are not consumed", "0\r\n\r\nGET / HTTP/1.1\r\n", H1_OK, NULL, "",
	  "", 5 },
	{ "sixteen hex digits are allowed", "0000000000000001\r\nx\r\n0\r\n\r\n", H1_OK, NULL, "x",
	  "", 0 },
	{ "largest chunk size is accepted", "7fffffffffffffff\r\nabc", H1_AGAIN, NULL, "abc", "",
	  0 },
	{ "incomplete chunk waits for more", "5\r\nhel", H1_AGAIN, NULL, "hel", "", 0 },
	{ "incomplete trailer line waits for more", "0\r\nX-A: b", H1_AGAIN, NULL, "", "", 3 },
	{ "seventeen hex digits", "00000000000000001\r\nx\r\n0\r\n\r\n", H1_ERR,
	  "chunk size too large", "", "", 0 },
	{ "chunk size of 2^63", "8000000000000000\r\n", H1_ERR, "chunk size too large", "", "", 0 },
	{ "chunk size overflowing 64 bits", "ffffffffffffffff1\r\n", H1_ERR, "chunk size too large",
	  "", "", 0 },
	{ "non-hex chunk size", "g\r\n", H1_ERR, "bad chunk size", "", "", 0 },
	{ "empty chunk size", "\r\nabc", H1_ERR, "bad chunk size", "", "", 0 },
	{ "negative chunk size", "-1\r\n", H1_ERR, "bad chunk size", "", "", 0 },
	{ "0x prefix", "0x5\r\nhello\r\n", H1_ERR, "bad chunk size", "", "", 0 },
	{ "whitespace before the line end", "5 \r\nhello\r\n", H1_ERR,
	  "whitespace before end of chunk line", "", "", 0 },
	{ "empty extension", "5;\r\nhello\r\n", H1_ERR, "bad chunk extension", "", "", 0 },
	{ "extension without value", "5;a=\r\nhello\r\n", H1_ERR, "bad chunk extension", "", "",
	  0 },
	{ "unterminated quoted extension", "5;a=\"x\r\nhello\r\n", H1_ERR, "bad chunk extension",
	  "", "", 0 },
	{ "extension shapes with whitespace", "1;a ;b\r\nx\r\n1;a=\"q\" ;b\r\ny\r\n"
	  "1;a=\"q\"\r\nz\r\n1;a=\"\"\r\nw\r\n0\r\n\r\n", H1_OK, NULL, "xyzw", "", 0 },
	{ "whitespace after an extension name before the line end", "5;a \r\nhello\r\n", H1_ERR,
	  "bad chunk extension", "", "", 0 },
	{ "junk after a quoted extension", "5;a=\"x\"y\r\nhello\r\n", H1_ERR,
	  "bad chunk extension", "", "", 0 },
	{ "control character escaped in a quoted extension", "5;a=\"\\\x01\"\r\nhello\r\n",
	  H1_ERR, "bad chunk extension", "", "", 0 },
	{ "two extension values", "5;a=b c\r\nhello\r\n", H1_ERR, "bad chunk extension", "",
	  "", 0 },
	{ "junk after an extension name", "5;a/\r\nhello\r\n", H1_ERR, "bad chunk extension",
	  "", "", 0 },
	{ "junk after whitespace after an extension name", "5;a x\r\nhello\r\n", H1_ERR,
	  "bad chunk extension", "", "", 0 },
	{ "bare CR after the size", "5\rhello\r\n", H1_ERR, "bare CR", "", "", 0 },
	{ "bare CR after an extension", "5;a=b\rX", H1_ERR, "bare CR", "", "", 0 },
	{ "data longer than its size", "5\r\nhelloX\r\n0\r\n\r\n", H1_ERR,
	  "missing CRLF after chunk data", "hello", "", 0 },
	{ "CR then junk after data", "5\r\nhello\rX", H1_ERR, "missing CRLF after chunk data",
	  "hello", "", 0 },
	{ "obs-fold in the trailer", "0\r\nX: a\r\n b\r\n\r\n", H1_ERR, "obs-fold in trailer", "",
	  "X: a\r\n", 0 },
	{ "malformed trailer field", "0\r\nBad Name: x\r\n\r\n", H1_ERR, "bad trailer field", "",
	  "", 0 },
	{ "bare CR in a trailer", "0\r\nX: a\rb\r\n\r\n", H1_ERR, "bare CR", "", "", 0 },
	{ "trailer section over 8 KiB", g_big, H1_ERR, "trailer section too large", "", "", 0 },
	/* A bare LF ends no line of the framing (issue 10 item 15): trailer lines are forwarded
	 * as they came, and a peer that splits at a bare LF would see other messages. */
	{ "bare LF line endings everywhere", "3\nabc\n0\n\n", H1_ERR, "bare LF", "", "", 0 },
	{ "bare LF after the chunk size", "5\nhello\r\n0\r\n\r\n", H1_ERR, "bare LF", "", "",
	  0 },
	{ "bare LF after the last-chunk size", "0\nGET /x HTTP/1.1\r\n\r\n", H1_ERR, "bare LF",
	  "", "", 0 },
	{ "bare LF after an extension name", "5;a\nhello\r\n", H1_ERR, "bare LF", "", "", 0 },
	{ "bare LF after an extension value", "5;a=b\nhello\r\n", H1_ERR, "bare LF", "", "", 0 },
	{ "bare LF after a quoted extension", "5;a=\"b\"\nhello\r\n", H1_ERR, "bare LF", "",
	  "", 0 },
	{ "bare LF after the data", "5\r\nhello\n0\r\n\r\n", H1_ERR, "bare LF", "hello", "", 0 },
	{ "bare LF ending a trailer line", "0\r\nX: a\nY: b\r\n\r\n", H1_ERR, "bare LF", "", "",
	  0 },
	{ "bare LF as the final empty line", "0\r\n\nGET /x HTTP/1.1\r\n\r\n", H1_ERR,
	  "bare LF", "", "", 0 },
	{ "bare LF as the final line after a trailer", "0\r\nX: a\r\n\n", H1_ERR, "bare LF", "",
	  "X: a\r\n", 0 },
	{ "whitespace then a bare LF after the size", "5 \nhello\r\n", H1_ERR,
	  "whitespace before end of chunk line", "", "", 0 },
};

static void
test_chunked_case(void **state)
{
	const struct ck_case *c = *state;
	size_t len = strlen(c->in);

	ck_all_splits(c->in, len, &g_ck_ref);
	if (g_ck_ref.rc != c->rc)
		print_error("rc %d reason %s\n", g_ck_ref.rc, g_ck_ref.rc == H1_ERR ?
		            g_ck_ref.reason : "");
	assert_int_equal(g_ck_ref.rc, c->rc);
	if (c->rc == H1_ERR)
		assert_string_equal(g_ck_ref.reason, c->reason);
	assert_int_equal(g_ck_ref.dlen, strlen(c->data));
	assert_memory_equal(g_ck_ref.data, c->data, g_ck_ref.dlen);
	assert_int_equal(g_ck_ref.tlen, strlen(c->trailers));
	assert_memory_equal(g_ck_ref.tr, c->trailers, g_ck_ref.tlen);
	if (c->rc != H1_ERR)
		assert_int_equal(g_ck_ref.used, c->used != 0 ? c->used : len);
}

/* The sample body of RFC-style examples, split at every offset and byte by byte. */
static void
test_chunked_sample_body_every_split(void **state)
{
	static const char body[] = "4;ext=1;q=\"a b\"\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\n"
	                           "chunks.\r\n0;last\r\nExpires: never\r\nX-Sum: 42\r\n\r\n";
	static const char data[] = "Wikipedia in\r\n\r\nchunks.";
	static const char tr[] = "Expires: never\r\nX-Sum: 42\r\n";

	(void)state;
	ck_all_splits(body, sizeof(body) - 1, &g_ck_ref);
	assert_int_equal(g_ck_ref.rc, H1_OK);
	assert_int_equal(g_ck_ref.used, sizeof(body) - 1);
	assert_int_equal(g_ck_ref.dlen, sizeof(data) - 1);
	assert_memory_equal(g_ck_ref.data, data, sizeof(data) - 1);
	assert_int_equal(g_ck_ref.tlen, sizeof(tr) - 1);
	assert_memory_equal(g_ck_ref.tr, tr, sizeof(tr) - 1);
}

static void
test_chunked_stays_failed_and_done(void **state)
{
	struct h1_chunked c;
	struct h1_str span;
	size_t used;
	int kind;
	const char *why = "";

	(void)state;
	h1_chunked_init(&c);
	assert_int_equal(h1_chunked_step(&c, "zz", 2, &used, &span, &kind, &why), H1_ERR);
	assert_int_equal(h1_chunked_step(&c, "0\r\n\r\n", 5, &used, &span, &kind, &why), H1_ERR);
	assert_int_equal(used, 0);
	h1_chunked_init(&c);
	assert_int_equal(h1_chunked_step(&c, "0\r\n\r\n", 5, &used, &span, &kind, &why), H1_OK);
	assert_int_equal(used, 5);
	assert_int_equal(h1_chunked_step(&c, "1\r\n", 3, &used, &span, &kind, &why), H1_OK);
	assert_int_equal(used, 0);
	assert_int_equal(span.n, 0);
}

static void
test_chunked_extension_line_is_capped(void **state)
{
	static char line[6000];
	struct h1_chunked c;
	struct h1_str span;
	size_t used;
	int kind;
	const char *why = "";

	(void)state;
	memset(line, 'a', sizeof(line));
	memcpy(line, "5;x=", 4);
	h1_chunked_init(&c);
	assert_int_equal(h1_chunked_step(&c, line, sizeof(line), &used, &span, &kind, &why),
	                 H1_ERR);
	assert_string_equal(why, "chunk extension too long");
}

/* ---- field helpers and derived state ---- */

static int
parse_ok(const char *in)
{
	size_t scan = 0, hl = 0;
	int st = 0;
	const char *why = "";

	assert_int_equal(h1_head_complete(in, strlen(in), &scan, &hl, NULL, 1, &st, &why), H1_OK);
	if (h1_parse_request(in, hl, &g_head, NULL, &st, &why) != H1_OK) {
		print_error("%d %s\n", st, why);
		return 0;
	}
	return 1;
}

static void
test_hop_fields_are_marked(void **state)
{
	static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close, X-Secret,  foo\r\n"
	                         "Keep-Alive: 5\r\nx-secret: 1\r\nFOO: 2\r\nProxy-Authorization: b\r\n"
	                         "TE: trailers\r\nTrailer: X\r\nUpgrade: h2c\r\nProxy-Connection: k\r\n"
	                         "Proxy-Authenticate: x\r\nAccept: */*\r\nX-Other: 3\r\n\r\n";
	static const char *hop[] = { "Connection", "Keep-Alive", "x-secret", "FOO",
	                             "Proxy-Authorization", "TE", "Trailer", "Upgrade",
	                             "Proxy-Connection", "Proxy-Authenticate" };
	size_t i, k, nhop = 0;

	(void)state;
	assert_true(parse_ok(in));
	assert_int_equal(g_head.nfields, 13);
	for (i = 0; i < g_head.nfields; i++) {
		int want = 0;

		for (k = 0; k < sizeof(hop) / sizeof(hop[0]); k++)
			if (h1_str_ieq(g_head.fields[i].name, hop[k]))
				want = 1;
		assert_int_equal(g_head.fields[i].hop, want);
		nhop += want;
	}
	assert_int_equal(nhop, 10);
	assert_true(g_head.flags & H1_CONN_CLOSE);
}

static void
test_field_ids_and_lookup(void **state)
{
	static const char in[] = "POST /x HTTP/1.1\r\nhOsT: a\r\nCONTENT-LENGTH: 3\r\n"
	                         "user-agent: u\r\nVia: 1.1 p\r\nDate: d\r\nPragma: no-cache\r\n"
	                         "Referer: r\r\nAuthorization: z\r\nCache-Control: max-age=0\r\n"
	                         "Content-Type: t\r\nMax-Forwards: 99999999999\r\nX-Custom: c\r\n"
	                         "Transfer-Encodin: x\r\n\r\n";
	static const enum h1_field_id ids[] = {
		H1_F_HOST, H1_F_CONTENT_LENGTH, H1_F_USER_AGENT, H1_F_VIA, H1_F_DATE, H1_F_PRAGMA,
		H1_F_REFERER, H1_F_AUTHORIZATION, H1_F_CACHE_CONTROL, H1_F_CONTENT_TYPE,
		H1_F_MAX_FORWARDS, H1_F_OTHER, H1_F_OTHER
	};
	const struct h1_field *f;
	size_t i;

	(void)state;
	assert_true(parse_ok(in));
	assert_int_equal(g_head.nfields, sizeof(ids) / sizeof(ids[0]));
	for (i = 0; i < g_head.nfields; i++)
		assert_int_equal(g_head.fields[i].id, ids[i]);
	assert_int_equal(g_head.max_forwards, INT_MAX);
	f = h1_field_get(&g_head, H1_F_CACHE_CONTROL);
	assert_non_null(f);
	assert_slice(f->value, "max-age=0");
	f = h1_field_find(&g_head, "x-CUSTOM", 8);
	assert_non_null(f);
	assert_slice(f->value, "c");
	assert_slice(f->name, "X-Custom");
	assert_null(h1_field_find(&g_head, "X-Custo", 7));
	assert_null(h1_field_get(&g_head, H1_F_EXPECT));
}

static void
test_field_value_ows_is_trimmed(void **state)
{
	(void)state;
	assert_true(parse_ok("GET / HTTP/1.1\r\nHost:\t example.com \t\r\nMax-Forwards: 0\r\n\r\n"));
	assert_slice(g_head.fields[0].value, "example.com");
	assert_int_equal(g_head.max_forwards, 0);
	assert_true(parse_ok("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
	assert_int_equal(g_head.max_forwards, -1);
	assert_slice(g_head.method_str, "GET");
	assert_slice(g_head.target, "/");
	assert_int_equal(g_head.minor, 1);
}

static void
test_list_has_and_str_ieq(void **state)
{
	struct h1_str v = { " gzip ,\tTrailers , ,x ", 22 };
	struct h1_str e = { "", 0 };
	struct h1_str k = { "Keep-Alive", 10 };

	(void)state;
	assert_true(h1_list_has(v, "trailers"));
	assert_true(h1_list_has(v, "GZIP"));
	assert_true(h1_list_has(v, "x"));
	assert_false(h1_list_has(v, "trailer"));
	assert_false(h1_list_has(v, ""));
	assert_false(h1_list_has(e, "x"));
	assert_true(h1_str_ieq(k, "keep-alive"));
	assert_false(h1_str_ieq(k, "keep-alivE "));
	assert_false(h1_str_ieq(k, "keep_alive"));
}

/* ---- the dissectors on their own: heads the scanner would not have passed ---- */

struct dis_case {
	const char *name;
	const char *in;
	int is_request;
	const struct h1_limits *lim;
	int status;
	const char *reason;
};

static const struct dis_case dis_cases[] = {
	{ "request with a bare CR", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 1, NULL, 400,
	  "bare CR" },
	{ "request with a bare CR in the request line", "GET /\r HTTP/1.1\r\n\r\n", 1, NULL, 400,
	  "bare CR" },
	{ "request without the empty line", "GET / HTTP/1.1\r\nHost: a\r\n", 1, NULL, 400,
	  "incomplete head" },
	{ "only empty lines", "\r\n\r\n", 1, NULL, 400, "incomplete head" },
	{ "request line over max_line", "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n", 1,
	  &small_lim, 414, "request line too long" },
	{ "request field over max_field", "GET / HTTP/1.1\r\nHost: a\r\n"
	  "X: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n", 1, &small_lim, 431,
	  "header field too long" },
	{ "request head over max_head", "GET / HTTP/1.1\r\nHost: a\r\n"
	  "X: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
	  "X: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n", 1,
	  &small_lim, 431, "head too large" },
	{ "response with a bare CR", "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", 0, NULL, 502,
	  "bare CR" },
	{ "response with a bare CR in the status line", "HTTP/1.1 200 O\rK\r\n\r\n", 0, NULL, 502,
	  "bare CR" },
	{ "response without the empty line", "HTTP/1.1 200 OK\r\nX: a\r\n", 0, NULL, 502,
	  "incomplete head" },
	{ "response without any line", "HTTP/1.1 200 OK", 0, NULL, 502, "incomplete head" },
	{ "response with bytes after the head", "HTTP/1.1 200 OK\r\n\r\nbody", 0, NULL, 502,
	  "data after head" },
	{ "status line over max_line", "HTTP/1.1 200 A very long reason phrase\r\n\r\n", 0,
	  &small_lim, 502, "status line too long" },
	{ "response head over max_head", "HTTP/1.1 200 OK\r\n"
	  "X: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
	  "X: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n", 0,
	  &small_lim, 502, "head too large" },
	{ "response field over max_field", "HTTP/1.1 200 OK\r\n"
	  "X: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n", 0, &small_lim, 502,
	  "header field too long" },
	{ "bad quoted transfer-coding parameter", "HTTP/1.1 200 OK\r\n"
	  "Transfer-Encoding: gzip;q=\"abc, chunked\r\n\r\n", 0, NULL, 502, "bad Transfer-Encoding" },
	{ "bad escape in a transfer-coding parameter", "HTTP/1.1 200 OK\r\n"
	  "Transfer-Encoding: gzip;q=\"a\\\x01\", chunked\r\n\r\n", 0, NULL, 502,
	  "invalid character in header value" },
	{ "transfer-coding parameter without value", "HTTP/1.1 200 OK\r\n"
	  "Transfer-Encoding: gzip;q, chunked\r\n\r\n", 0, NULL, 502, "bad Transfer-Encoding" },
	{ "transfer-coding parameter with empty value", "HTTP/1.1 200 OK\r\n"
	  "Transfer-Encoding: gzip;q=, chunked\r\n\r\n", 0, NULL, 502, "bad Transfer-Encoding" },
	{ "transfer-codings without comma", "HTTP/1.1 200 OK\r\n"
	  "Transfer-Encoding: gzip chunked\r\n\r\n", 0, NULL, 502, "bad Transfer-Encoding" },
	{ "transfer-coding list with a trailing comma", "HTTP/1.1 200 OK\r\n"
	  "Transfer-Encoding: chunked,\r\n\r\n", 0, NULL, 502, "bad Transfer-Encoding" },
	{ "repeated Max-Forwards", "OPTIONS * HTTP/1.1\r\nHost: a\r\nMax-Forwards: 1\r\n"
	  "Max-Forwards: 1\r\n\r\n", 1, NULL, 400, "repeated Max-Forwards" },
	{ "quoted transfer-coding parameter in a request", "POST / HTTP/1.1\r\nHost: a\r\n"
	  "Transfer-Encoding: gzip;q=\"a,\\\"b\" , chunked\r\n\r\n", 1, NULL, 501,
	  "unsupported transfer-coding" },
};

static void
test_dissect_case(void **state)
{
	const struct dis_case *c = *state;
	size_t len = strlen(c->in);
	int st = 0, rc;
	const char *why = "";

	if (c->is_request)
		rc = h1_parse_request(c->in, len, &g_head, c->lim, &st, &why);
	else
		rc = h1_parse_response(c->in, &len, &g_head, H1_M_GET, c->lim, 1, &st, &why);
	if (rc != H1_ERR)
		print_error("accepted\n");
	assert_int_equal(rc, H1_ERR);
	assert_int_equal(st, c->status);
	assert_string_equal(why, c->reason);
}

static void
test_quoted_transfer_coding_parameters_parse(void **state)
{
	static const char in[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip ; q = \"a,\\\"b\" ;"
	                         " r=t , chunked\r\n\r\n";
	size_t len = sizeof(in) - 1;
	int st = 0;
	const char *why = "";

	(void)state;
	/* The list parses (a syntax error would say "bad Transfer-Encoding"); gzip is then refused
	 * because the proxy cannot pass the coding on. */
	assert_int_equal(h1_parse_response(in, &len, &g_head, H1_M_GET, NULL, 0, &st, &why), H1_ERR);
	assert_string_equal(why, "unsupported transfer-coding");
}

static void
test_methods_are_recognised(void **state)
{
	static const struct {
		const char *m;
		enum h1_method id;
	} ms[] = {
		{ "GET", H1_M_GET }, { "HEAD", H1_M_HEAD }, { "POST", H1_M_POST },
		{ "PUT", H1_M_PUT }, { "DELETE", H1_M_DELETE }, { "OPTIONS", H1_M_OPTIONS },
		{ "TRACE", H1_M_TRACE }, { "PATCH", H1_M_PATCH }, { "PURGE", H1_M_PURGE },
		{ "PATCHY", H1_M_OTHER }, { "PURGES", H1_M_OTHER }, { "TRACK", H1_M_OTHER },
		{ "DELETED", H1_M_OTHER }, { "POS", H1_M_OTHER }, { "M-SEARCH", H1_M_OTHER },
	};
	char buf[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
		snprintf(buf, sizeof(buf), "%s /x HTTP/1.1\r\nHost: a\r\n\r\n", ms[i].m);
		assert_true(parse_ok(buf));
		assert_int_equal(g_head.method, ms[i].id);
		assert_slice(g_head.method_str, ms[i].m);
	}
}

static void
test_expect_skips_empty_elements(void **state)
{
	(void)state;
	assert_true(parse_ok("PUT / HTTP/1.1\r\nHost: a\r\nExpect: , 100-continue ,\r\n"
	                     "Connection: , close\r\n\r\n"));
	assert_int_equal(g_head.flags, H1_EXPECT_CONTINUE | H1_CONN_CLOSE);
}

/* A head delivered in odd pieces with a partial CRLF at each cut gives the same head_len. */
static void
test_scan_resumes_across_crlf(void **state)
{
	static const char in[] = "\r\nGET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\nBODY";
	size_t cuts[] = { 1, 2, 17, 18, 26, 33, 34, 35, sizeof(in) - 1 };
	size_t scan = 0, hl = 0, i;
	int st = 0, rc = H1_AGAIN;
	const char *why = "";

	(void)state;
	for (i = 0; i < sizeof(cuts) / sizeof(cuts[0]) && rc == H1_AGAIN; i++)
		rc = h1_head_complete(in, cuts[i], &scan, &hl, NULL, 1, &st, &why);
	assert_int_equal(rc, H1_OK);
	assert_int_equal(hl, sizeof(in) - 1 - 4);
}

#if SIZE_MAX > 0xffffffffu
/* Bytes already scanned are not looked at again, even inside the current line: the resumed
 * scan must not see a bare CR planted behind the resume point. */
static void
test_scan_does_not_rescan(void **state)
{
	char buf[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Long: 0123456789abcdef\r\n\r\n";
	size_t len = sizeof(buf) - 1, part = 40, scan = 0, hl = 0;
	int st = 0;
	const char *why = "";

	(void)state;
	assert_int_equal(h1_head_complete(buf, part, &scan, &hl, NULL, 1, &st, &why), H1_AGAIN);
	buf[part - 5] = '\r';
	assert_int_equal(h1_head_complete(buf, len, &scan, &hl, NULL, 1, &st, &why), H1_OK);
	assert_int_equal(hl, len);
	scan = 0;
	assert_int_equal(h1_head_complete(buf, len, &scan, &hl, NULL, 1, &st, &why), H1_ERR);
	assert_string_equal(why, "bare CR");
}
#endif

static void
test_scan_big_head_byte_at_a_time(void **state)
{
	static char buf[60000];
	struct h1_limits lim;
	size_t n = 0, i, scan = 0, hl = 0;
	int st = 0, rc = H1_AGAIN;
	const char *why = "";

	(void)state;
	h1_limits_default(&lim);
	n += (size_t)sprintf(buf, "GET / HTTP/1.1\r\nHost: a\r\n");
	for (i = 0; i < 7; i++) {
		n += (size_t)sprintf(buf + n, "X-%zu: ", i);
		memset(buf + n, 'v', 8000);
		n += 8000;
		memcpy(buf + n, "\r\n", 2);
		n += 2;
	}
	memcpy(buf + n, "\r\n", 2);
	n += 2;
	for (i = 1; i <= n && rc == H1_AGAIN; i++)
		rc = h1_head_complete(buf, i, &scan, &hl, &lim, 1, &st, &why);
	assert_int_equal(rc, H1_OK);
	assert_int_equal(hl, n);
	assert_int_equal(h1_parse_request(buf, hl, &g_head, &lim, &st, &why), H1_OK);
	assert_int_equal(g_head.nfields, 8);
}

static void
test_max_fields_is_capped_at_array_size(void **state)
{
	static char buf[8000];
	struct h1_limits lim;
	size_t n, i, scan = 0, hl = 0;
	int st = 0;
	const char *why = "";

	(void)state;
	h1_limits_default(&lim);
	lim.max_fields = 100000;
	n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\n");
	for (i = 0; i < H1_MAX_FIELDS + 1; i++)
		n += (size_t)sprintf(buf + n, "H%zu: v\r\n", i);
	n += (size_t)sprintf(buf + n, "\r\n");
	assert_int_equal(h1_head_complete(buf, n, &scan, &hl, &lim, 1, &st, &why), H1_ERR);
	assert_int_equal(st, 431);
	assert_int_equal(h1_parse_request(buf, n, &g_head, &lim, &st, &why), H1_ERR);
	assert_int_equal(st, 431);
	assert_string_equal(why, "too many header fields");
}

/* ---- registration ---- */

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

int
main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_chunked_sample_body_every_split),
		cmocka_unit_test(test_chunked_stays_failed_and_done),
		cmocka_unit_test(test_chunked_extension_line_is_capped),
		cmocka_unit_test(test_hop_fields_are_marked),
		cmocka_unit_test(test_field_ids_and_lookup),
		cmocka_unit_test(test_field_value_ows_is_trimmed),
		cmocka_unit_test(test_list_has_and_str_ieq),
		cmocka_unit_test(test_scan_resumes_across_crlf),
#if SIZE_MAX > 0xffffffffu
		cmocka_unit_test(test_scan_does_not_rescan),
#endif
		cmocka_unit_test(test_scan_big_head_byte_at_a_time),
		cmocka_unit_test(test_max_fields_is_capped_at_array_size),
		cmocka_unit_test(test_quoted_transfer_coding_parameters_parse),
		cmocka_unit_test(test_methods_are_recognised),
		cmocka_unit_test(test_expect_skips_empty_elements),
	};
	static char names[NELEM(rq_cases) + NELEM(rs_cases) + NELEM(dis_cases) + NELEM(url_cases) +
	                  NELEM(ck_cases)][160];
	struct CMUnitTest *t;
	size_t n = 0, i, total;
	int rc;

	/* a trailer section one line of which is over 8 KiB */
	memcpy(g_big, "0\r\nX-Big: ", 10);
	memset(g_big + 10, 'b', sizeof(g_big) - 10 - 3);
	memcpy(g_big + sizeof(g_big) - 3, "\r\n", 3);

	total = NELEM(fixed) + NELEM(rq_cases) + NELEM(rs_cases) + NELEM(dis_cases) +
	        NELEM(url_cases) + NELEM(ck_cases);
	t = calloc(total, sizeof(*t));
	if (t == NULL)
		return 1;
	for (i = 0; i < NELEM(fixed); i++)
		t[n++] = fixed[i];
#define ADD(table, prefix, fn) \
	for (i = 0; i < NELEM(table); i++, n++) { \
		snprintf(names[n - NELEM(fixed)], sizeof(names[0]), prefix "%s", table[i].name); \
		t[n].name = names[n - NELEM(fixed)]; \
		t[n].test_func = fn; \
		t[n].initial_state = (void *)&table[i]; \
	}
	ADD(rq_cases, "request: ", test_request_case)
	ADD(rs_cases, "response: ", test_response_case)
	ADD(dis_cases, "dissector: ", test_dissect_case)
	ADD(url_cases, "target: ", test_url_case)
	ADD(ck_cases, "chunked: ", test_chunked_case)
#undef ADD
	rc = _cmocka_run_group_tests("h1", t, n, NULL, NULL);
	free(t);
	return rc;
}
