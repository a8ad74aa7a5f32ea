/*
 * buf.c - capped I/O buffers (see buf.h). Growth doubles from BUF_MIN up to the cap; compaction
 * moves live bytes to the front only when that makes the requested room.
 *
 * Blocks of BUF_MIN << k bytes (4 KiB to 256 KiB, the sizes growth goes through) are recycled
 * through per-thread free lists, at most BUF_POOL_CLASS_BYTES of each size (one block at
 * least): a keep-alive connection takes its buffers for each request and gives them back when
 * it goes idle, which would otherwise be a malloc/free pair (and for a 64 KiB hit a realloc to
 * 128 KiB) per cache hit. Growing copies the live bytes into a new block, not the whole old one.
 */
#include "daemon/buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_CLASSES 7                      /* BUF_MIN << 0 .. BUF_MIN << 6: 4 KiB .. 256 KiB */
#define BUF_POOL_CLASS_BYTES (128 * 1024)  /* kept per size and thread: 32 x 4 KiB ... 1 x 256 */
#define BUF_POOL_MAX (BUF_POOL_CLASS_BYTES / BUF_MIN)
#define BUF_READ_MAX 65536     /* a read that filled its room doubles the buffer up to this */

/* The free lists: a stack per size class, one set per thread (each worker its own). */
struct buf_pool {
	void *blk[BUF_CLASSES][BUF_POOL_MAX];
	unsigned n[BUF_CLASSES];
	size_t freed;          /* bytes handed back to malloc since buf_freed_take */
};
static _Thread_local struct buf_pool buf_pool;

/* The size class of a block of size bytes, or -1 when it has none (a size clamped by a cap). */
static int
buf_class(size_t size)
{
	if (size < BUF_MIN || (size & (size - 1)) != 0)
		return -1;
	int k = __builtin_ctzl(size) - __builtin_ctzl(BUF_MIN);
	return k < BUF_CLASSES ? k : -1;
}

static unsigned
buf_class_max(int k)
{
	size_t n = BUF_POOL_CLASS_BYTES / ((size_t)BUF_MIN << k);
	return n > 0 ? (unsigned)n : 1;
}

static char *
buf_mem_get(size_t size)
{
	int k = buf_class(size);
	if (k >= 0 && buf_pool.n[k] > 0)
		return buf_pool.blk[k][--buf_pool.n[k]];
	return malloc(size);
}

static void
buf_mem_free(char *p, size_t size)
{
	int k = buf_class(size);
	if (k >= 0 && buf_pool.n[k] < buf_class_max(k)) {
		buf_pool.blk[k][buf_pool.n[k]++] = p;
		return;
	}
	free(p);
	buf_pool.freed += size;
}

void
buf_pool_drain(void)
{
	for (int k = 0; k < BUF_CLASSES; k++)
		while (buf_pool.n[k] > 0)
			free(buf_pool.blk[k][--buf_pool.n[k]]);
}

void
buf_freed_add(size_t n)
{
	buf_pool.freed += n;
}

size_t
buf_freed_take(void)
{
	size_t n = buf_pool.freed;
	buf_pool.freed = 0;
	return n;
}

void
buf_init(struct buf *b, size_t cap)
{
	memset(b, 0, sizeof(*b));
	b->cap = cap;
}

void
buf_fini(struct buf *b)
{
	if (b->data != NULL)
		buf_mem_free(b->data, b->size);
	b->data = NULL;
	b->start = b->end = b->size = 0;
	b->more = 0;
}

void
buf_release(struct buf *b)
{
	if (buf_len(b) == 0)
		buf_fini(b);
}

/* The slow path of buf_reserve, out of line so that the common case (the room is there) stays
 * a few instructions: a cached head is built by some fifty appends. */
static __attribute__((noinline)) int
buf_make_room(struct buf *b, size_t want)
{
	size_t len = buf_len(b);
	if (b->start > 0 && b->size - len >= want) {
		memmove(b->data, b->data + b->start, len);
	} else {
		size_t nsize = b->size ? b->size : BUF_MIN;
		while (nsize < len + want)
			nsize *= 2;
		if (nsize > b->cap)
			nsize = b->cap;
		char *p = buf_mem_get(nsize);
		if (p == NULL)
			return -1;
		if (b->data != NULL) {
			memcpy(p, b->data + b->start, len);
			buf_mem_free(b->data, b->size);
		}
		b->data = p;
		b->size = nsize;
	}
	b->start = 0;
	b->end = len;
	return 0;
}

char *
buf_reserve(struct buf *b, size_t want, size_t *avail)
{
	size_t len = buf_len(b);
	if (want > b->cap - len)
		want = b->cap - len;
	if (want == 0)
		return NULL;
	if (b->size - b->end < want && buf_make_room(b, want) < 0)
		return NULL;
	*avail = b->size - b->end;
	return b->data + b->end;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	size_t avail;
	char *dst = buf_reserve(b, n, &avail);
	if (dst == NULL || avail < n)
		return -1;
	memcpy(dst, p, n);
	b->end += n;
	return 0;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(small))
		return buf_append(b, small, (size_t)n);
	size_t avail;
	char *dst = buf_reserve(b, (size_t)n + 1, &avail);
	if (dst == NULL || avail < (size_t)n + 1)
		return -1;
	va_start(ap, fmt);
	vsnprintf(dst, avail, fmt, ap);
	va_end(ap);
	b->end += (size_t)n;
	return 0;
}

char *
buf_read_room(struct buf *b, size_t *avail)
{
	size_t len = buf_len(b), want;
	if (b->size == 0)
		want = BUF_MIN;
	else if (b->more && b->size < BUF_READ_MAX)
		want = b->size - len + 1; /* more than there is room for: the buffer doubles */
	else
		want = b->size / 2;
	char *dst = buf_reserve(b, want, avail);
	if (dst == NULL)
		errno = ENOBUFS;
	return dst;
}

ssize_t
buf_read_fd(struct buf *b, int fd)
{
	size_t avail;
	char *dst = buf_read_room(b, &avail);
	if (dst == NULL)
		return -1;
	ssize_t n;
	do
		n = read(fd, dst, avail);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		b->end += (size_t)n;
	b->more = n > 0 && (size_t)n == avail;
	return n;
}

ssize_t
buf_write_fd(struct buf *b, int fd)
{
	return buf_write_fd_max(b, fd, SIZE_MAX);
}

ssize_t
buf_write_fd_max(struct buf *b, int fd, size_t max)
{
	size_t len = buf_len(b) < max ? buf_len(b) : max;
	if (len == 0)
		return 0;
	ssize_t n;
	do
		n = send(fd, buf_head(b), len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		buf_consume(b, (size_t)n);
	return n;
}
