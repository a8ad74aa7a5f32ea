/*
 * test_rsrc.c - response sources (daemon/rsrc.h) and the local ones (daemon/local.h): rsrc_mem
 * gives its head once and its body in pieces no larger than the room it is offered (the
 * connection's backpressure), a body-less head says so, and freeing mid-body is clean; the
 * PAC file's path and Host checks; the local answers' sources and refusals (404, 405), and
 * the PAC file's ETag and 304.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/buf.h"
#include "daemon/cfg.h"
#include "daemon/h1.h"
#include "daemon/local.h"
#include "daemon/rsrc.h"

/* Drive a source as the connection does: head, then the body with room at most per call. */
static void
drain(struct rsrc *s, struct rsrc_head *h, struct buf *out, size_t room, int *calls)
{
	struct rsrc_io io = { .out = out };
	assert_int_equal(s->ops->head(s, &io, h), RSRC_END);
	*calls = 0;
	if (h->length == RSRC_NO_BODY)
		return;
	for (int guard = 0; guard < 1000; guard++) {
		io.bytes_out = 0;
		io.room = room;
		size_t before = buf_len(out);
		int r = s->ops->body(s, &io);
		assert_true(buf_len(out) - before <= room);
		assert_int_equal(io.bytes_out, buf_len(out) - before);
		++*calls;
		if (r == RSRC_END)
			return;
		assert_int_equal(r, RSRC_PROGRESS);
	}
	fail_msg("the body never ended");
}

static void
test_mem_body_in_pieces(void **state)
{
	(void)state;
	char body[1000];
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (char)('a' + i % 26);
	struct rsrc *s = rsrc_mem_new("t", 200, "OK", "text/plain", "X-A: 1\r\n", body,
	                              sizeof(body), "text/plain");
	assert_non_null(s);
	struct buf out;
	buf_init(&out, 64 * 1024);
	struct rsrc_head h;
	int calls;
	drain(s, &h, &out, 300, &calls);
	assert_int_equal(h.status, 200);
	assert_string_equal(h.reason, "OK");
	assert_string_equal(h.ctype, "text/plain");
	assert_string_equal(h.fields, "X-A: 1\r\n");
	assert_int_equal(h.length, 1000);
	assert_int_equal(calls, 4); /* 300 + 300 + 300 + 100 */
	assert_int_equal(buf_len(&out), sizeof(body));
	assert_memory_equal(buf_head(&out), body, sizeof(body));
	rsrc_free(&s);
	assert_null(s);
	rsrc_free(&s); /* NULL is fine */
	buf_fini(&out);
}

static void
test_mem_no_body_and_free_midway(void **state)
{
	(void)state;
	struct buf out;
	buf_init(&out, 64 * 1024);
	struct rsrc *s = rsrc_mem_new("t", 304, "Not Modified", NULL, NULL, NULL, RSRC_NO_BODY,
	                              NULL);
	assert_non_null(s);
	struct rsrc_head h;
	int calls;
	drain(s, &h, &out, 100, &calls);
	assert_int_equal(h.length, RSRC_NO_BODY);
	assert_string_equal(h.fields, "");
	assert_null(h.ctype);
	assert_int_equal(calls, 0);
	rsrc_free(&s);

	s = rsrc_mem_new("t", 200, "OK", NULL, NULL, "0123456789", 10, NULL);
	struct rsrc_io io = { .out = &out, .room = 4 };
	assert_int_equal(s->ops->head(s, &io, &h), RSRC_END);
	assert_int_equal(s->ops->body(s, &io), RSRC_PROGRESS);
	rsrc_free(&s); /* a client gone in the middle: nothing leaks (ASan) */
	assert_int_equal(buf_len(&out), 4);
	buf_fini(&out);
}

static void
test_pac_paths_and_hosts(void **state)
{
	(void)state;
	assert_true(local_pac_path("/proxy.pac"));
	assert_true(local_pac_path("/wpad.dat?x=1"));
	assert_false(local_pac_path("/proxy.pacx"));
	assert_false(local_pac_path("/"));
	assert_true(local_pac_host_ok("proxy.example:3128"));
	assert_true(local_pac_host_ok("[::1]:8080"));
	assert_true(local_pac_host_ok("127.0.0.1"));
	assert_false(local_pac_host_ok("a b"));
	assert_false(local_pac_host_ok("user@host"));
	assert_false(local_pac_host_ok("host/x"));
	assert_false(local_pac_host_ok("host:99999"));
}

static void
test_local_open(void **state)
{
	(void)state;
	static struct cfg cfg; /* only what the local answers read */
	static char pac[] = "function FindProxyForURL(u, h) { return \"DIRECT\"; }\n";
	cfg.pac_text = pac;
	cfg.pac_len = strlen(pac);
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_INET;
	struct local_req r = { .kind = LOCAL_OPTIONS, .method = H1_M_OPTIONS, .path = "*",
	                       .local = &ss, .cfg = &cfg, .room = 300 * 1024 };
	struct rsrc_refusal ref;
	struct buf out;
	buf_init(&out, 64 * 1024);
	struct rsrc_head h;
	int calls;

	struct rsrc *s = local_open(&r, &ref);
	assert_non_null(s);
	drain(s, &h, &out, 1000, &calls);
	assert_int_equal(h.status, 200);
	assert_int_equal(h.length, 0);
	assert_non_null(strstr(h.fields, "Allow: GET, HEAD, POST"));
	rsrc_free(&s);

	r.kind = LOCAL_PAGE;
	r.method = H1_M_GET;
	r.path = "/nothing-here";
	assert_null(local_open(&r, &ref));
	assert_int_equal(ref.status, 404);
	assert_non_null(strstr(ref.msg, "/nothing-here"));

	r.path = "/proxy.pac";
	r.method = H1_M_POST;
	assert_null(local_open(&r, &ref));
	assert_int_equal(ref.status, 405);
	assert_string_equal(ref.fields, "Allow: GET, HEAD\r\n");

	r.method = H1_M_GET;
	s = local_open(&r, &ref);
	assert_non_null(s);
	buf_consume(&out, buf_len(&out));
	drain(s, &h, &out, 1000, &calls);
	assert_int_equal(h.status, 200);
	assert_int_equal(h.length, (int64_t)strlen(pac));
	assert_memory_equal(buf_head(&out), pac, strlen(pac));
	char etag[40];
	const char *e = strstr(h.fields, "ETag: ");
	assert_non_null(e);
	snprintf(etag, sizeof(etag), "%.18s", e + 6);
	rsrc_free(&s);

	r.inm = etag; /* revalidation: 304, no body */
	s = local_open(&r, &ref);
	assert_non_null(s);
	drain(s, &h, &out, 1000, &calls);
	assert_int_equal(h.status, 304);
	assert_int_equal(h.length, RSRC_NO_BODY);
	rsrc_free(&s);

	r.inm = NULL;
	r.room = 100; /* the file does not fit what the output could take: 500, as before */
	assert_null(local_open(&r, &ref));
	assert_int_equal(ref.status, 500);
	buf_fini(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mem_body_in_pieces),
		cmocka_unit_test(test_mem_no_body_and_free_midway),
		cmocka_unit_test(test_pac_paths_and_hosts),
		cmocka_unit_test(test_local_open),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
