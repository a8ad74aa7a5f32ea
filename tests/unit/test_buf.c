/*
 * test_buf.c - capped I/O buffers (daemon/buf.c), issue 10 items 11 and 14: a buffer starts at
 * BUF_MIN and grows only when data needs the room (appends, and reads from a sender that fills
 * what it is offered), never past its cap; an empty buffer is released, its BUF_MIN block kept
 * on the thread's capped free list and taken again by the next buffer; what goes back to
 * malloc is counted for the worker's trim.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/buf.h"

/* A socketpair, both ends non-blocking: pair_fill keeps the reader's queue full. */
static void
pair_open(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
}

static void
pair_send(int fd, size_t n)
{
	static char chunk[65536];
	assert_true(n <= sizeof(chunk));
	assert_int_equal(write(fd, chunk, n), (ssize_t)n);
}

/* Write until the socket takes no more (bounded: a socket buffer is finite). */
static void
pair_fill(int fd)
{
	static char chunk[65536];
	for (int i = 0; i < 1000; i++)
		if (write(fd, chunk, sizeof(chunk)) < 0)
			return;
}

static void
buf_starts_small_and_grows_by_appends(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 320 * 1024);
	assert_null(b.data);
	assert_int_equal(buf_append(&b, "HTTP/1.1 200 OK\r\n", 17), 0);
	assert_int_equal(b.size, BUF_MIN);
	char big[10000];
	memset(big, 'x', sizeof(big));
	assert_int_equal(buf_append(&b, big, sizeof(big)), 0);
	assert_int_equal(b.size, 4 * BUF_MIN); /* 17 + 10000 bytes: doubled twice */
	assert_int_equal(buf_len(&b), 10017);
	assert_memory_equal(buf_head(&b) + 17, big, sizeof(big));
	buf_fini(&b);
}

static void
buf_never_passes_its_cap(void **state)
{
	(void)state;
	struct buf b;
	char blk[1000];
	memset(blk, 'y', sizeof(blk));
	buf_init(&b, 6000);
	for (int i = 0; i < 6; i++)
		assert_int_equal(buf_append(&b, blk, sizeof(blk)), 0);
	assert_int_equal(buf_append(&b, blk, sizeof(blk)), -1); /* 7000 > 6000: nothing appended */
	assert_int_equal(buf_len(&b), 6000);
	assert_int_equal(b.size, 6000);
	assert_int_equal(buf_room(&b), 0);
	int sv[2];
	pair_open(sv);
	pair_send(sv[1], 10);
	errno = 0;
	assert_int_equal(buf_read_fd(&b, sv[0]), -1); /* full: backpressure, not an error */
	assert_int_equal(errno, ENOBUFS);
	buf_fini(&b);
	close(sv[0]);
	close(sv[1]);
}

/* A small request is read into BUF_MIN; a sender that fills every read gets a buffer that
 * doubles per read up to 64 KiB reads, and no further while the reader keeps up. */
static void
buf_reads_grow_only_for_a_sender_with_more(void **state)
{
	(void)state;
	int sv[2];
	pair_open(sv);
	struct buf b;
	buf_init(&b, 256 * 1024);
	pair_send(sv[1], 300);
	assert_int_equal(buf_read_fd(&b, sv[0]), 300);
	assert_int_equal(b.size, BUF_MIN);
	buf_consume(&b, 300);
	size_t expect[] = { 4096, 8192, 16384, 32768, 65536, 65536, 65536 };
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		pair_fill(sv[1]);
		ssize_t n = buf_read_fd(&b, sv[0]);
		assert_int_equal(n, (ssize_t)expect[i]);
		assert_int_equal(b.size, expect[i]);
		buf_consume(&b, (size_t)n); /* the reader keeps up */
	}
	/* A reader that does not keep up: the data needs the room, the buffer grows to its cap. */
	for (int i = 0; i < 1000 && buf_room(&b) > 0; i++) {
		pair_fill(sv[1]);
		ssize_t n = buf_read_fd(&b, sv[0]);
		assert_true(n > 0);
	}
	assert_int_equal(b.size, 256 * 1024);
	assert_int_equal(buf_len(&b), 256 * 1024);
	buf_fini(&b);
	close(sv[0]);
	close(sv[1]);
}

static void
buf_release_keeps_data_and_frees_only_an_empty_buffer(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 96 * 1024);
	assert_int_equal(buf_append(&b, "GET / HTTP/1.1\r\n", 16), 0);
	buf_release(&b);
	assert_non_null(b.data);
	assert_memory_equal(buf_head(&b), "GET / HTTP/1.1\r\n", 16);
	buf_consume(&b, 16);
	buf_release(&b);
	assert_null(b.data);
	assert_int_equal(b.size, 0);
	assert_int_equal(buf_len(&b), 0);
	assert_int_equal(buf_room(&b), 96 * 1024);
	/* usable again */
	assert_int_equal(buf_append(&b, "x", 1), 0);
	assert_int_equal(b.size, BUF_MIN);
	buf_fini(&b);
	buf_pool_drain();
}

/* The block a released buffer gives back is the one the next buffer of that size takes (no
 * malloc per request); past BUF_POOL_CLASS_BYTES of a size (32 blocks of BUF_MIN) they go back
 * to malloc, and are counted, as are sizes that have no free list. */
static void
buf_blocks_are_recycled_up_to_a_cap(void **state)
{
	(void)state;
	buf_pool_drain();
	(void)buf_freed_take();
	struct buf a, b;
	buf_init(&a, 256 * 1024);
	buf_init(&b, 320 * 1024);
	assert_int_equal(buf_append(&a, "x", 1), 0);
	char *blk = a.data;
	buf_consume(&a, 1);
	buf_release(&a);
	assert_int_equal(buf_freed_take(), 0); /* kept on the free list */
	assert_int_equal(buf_append(&b, "y", 1), 0);
	assert_ptr_equal(b.data, blk);

	/* Growing to 128 KiB (a 64 KiB stored body behind a head) gives the 4 KiB block back and
	 * keeps the live bytes; released, the 128 KiB block is the next one of its size. */
	static char big[65600];
	memset(big, 'z', sizeof(big));
	assert_int_equal(buf_append(&b, big, sizeof(big)), 0);
	assert_int_equal(b.size, 32 * BUF_MIN);
	assert_memory_equal(buf_head(&b), "y", 1);
	assert_memory_equal(buf_head(&b) + 1, big, sizeof(big));
	char *blk128 = b.data;
	buf_fini(&b);
	assert_int_equal(buf_freed_take(), 0);
	assert_int_equal(buf_append(&a, "x", 1), 0);
	assert_ptr_equal(a.data, blk); /* the 4 KiB block came back */
	assert_int_equal(buf_append(&a, big, sizeof(big)), 0);
	assert_ptr_equal(a.data, blk128);
	buf_fini(&a);

	/* A size clamped by a cap has no free list: back to malloc, counted. */
	struct buf c;
	buf_init(&c, 6000);
	assert_int_equal(buf_append(&c, big, 5000), 0);
	assert_int_equal(c.size, 6000);
	buf_fini(&c);
	assert_int_equal(buf_freed_take(), 6000);
	assert_int_equal(buf_freed_take(), 0);

	/* 100 blocks released at once: 32 stay on the list, 68 go back to malloc. */
	enum { N = 100, KEPT = 32 };
	struct buf many[N];
	for (int i = 0; i < N; i++) {
		buf_init(&many[i], 96 * 1024);
		assert_int_equal(buf_append(&many[i], "q", 1), 0);
	}
	for (int i = 0; i < N; i++)
		buf_fini(&many[i]);
	assert_int_equal(buf_freed_take(), (size_t)(N - KEPT) * BUF_MIN);
	buf_freed_add(123);
	assert_int_equal(buf_freed_take(), 123);
	buf_pool_drain();
	assert_int_equal(buf_freed_take(), 0); /* the drain is the thread's end, not a trim */
}

static void
buf_printf_long_text_grows_the_buffer(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 64 * 1024);
	char s[3000];
	memset(s, 'a', sizeof(s) - 1);
	s[sizeof(s) - 1] = '\0';
	assert_int_equal(buf_printf(&b, "%s-%s", s, s), 0);
	assert_int_equal(buf_len(&b), 2 * (sizeof(s) - 1) + 1);
	assert_int_equal(b.size, 2 * BUF_MIN);
	assert_int_equal(buf_head(&b)[sizeof(s) - 1], '-');
	buf_fini(&b);
	buf_pool_drain();
}

/* A send takes at most its share (proxy.c: the rest of a drive's CONN_SLICE), even when the
 * socket would take the whole buffer; without a limit it takes what the socket takes. */
static void
buf_write_fd_max_sends_at_most_its_share(void **state)
{
	(void)state;
	int sv[2];
	struct buf b;
	char data[10000], got[10000];

	pair_open(sv);
	buf_init(&b, 64 * 1024);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 7);
	assert_int_equal(buf_append(&b, data, sizeof(data)), 0);
	assert_int_equal(buf_write_fd_max(&b, sv[0], 4096), 4096);
	assert_int_equal(buf_len(&b), sizeof(data) - 4096);
	assert_int_equal(buf_write_fd(&b, sv[0]), sizeof(data) - 4096);
	assert_int_equal(buf_len(&b), 0);
	assert_int_equal(recv(sv[1], got, sizeof(got), MSG_WAITALL), sizeof(got));
	assert_memory_equal(got, data, sizeof(data));
	buf_fini(&b);
	close(sv[0]);
	close(sv[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(buf_starts_small_and_grows_by_appends),
		cmocka_unit_test(buf_never_passes_its_cap),
		cmocka_unit_test(buf_reads_grow_only_for_a_sender_with_more),
		cmocka_unit_test(buf_release_keeps_data_and_frees_only_an_empty_buffer),
		cmocka_unit_test(buf_blocks_are_recycled_up_to_a_cap),
		cmocka_unit_test(buf_printf_long_text_grows_the_buffer),
		cmocka_unit_test(buf_write_fd_max_sends_at_most_its_share),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
