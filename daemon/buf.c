/*
 * buf.c - capped I/O buffers (see buf.h). Growth doubles from 16 KiB up to the cap; compaction
 * moves live bytes to the front only when that makes the requested room.
 */
#include "daemon/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_MIN 16384

void
buf_init(struct buf *b, size_t cap)
{
	memset(b, 0, sizeof(*b));
	b->cap = cap;
}

void
buf_fini(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->start = b->end = b->size = 0;
}

void
buf_release(struct buf *b)
{
	if (buf_len(b) == 0)
		buf_fini(b);
}

char *
buf_reserve(struct buf *b, size_t want, size_t *avail)
{
	size_t len = buf_len(b);
	if (want > b->cap - len)
		want = b->cap - len;
	if (want == 0)
		return NULL;
	if (b->size - b->end < want) {
		if (b->start > 0 && b->size - len >= want) {
			memmove(b->data, b->data + b->start, len);
			b->start = 0;
			b->end = len;
		} else {
			size_t nsize = b->size ? b->size : BUF_MIN;
			while (nsize < len + want)
				nsize *= 2;
			if (nsize > b->cap)
				nsize = b->cap;
			if (b->start > 0) {
				memmove(b->data, b->data + b->start, len);
				b->start = 0;
				b->end = len;
			}
			char *p = realloc(b->data, nsize);
			if (p == NULL)
				return NULL;
			b->data = p;
			b->size = nsize;
		}
	}
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

ssize_t
buf_read_fd(struct buf *b, int fd)
{
	size_t avail;
	char *dst = buf_reserve(b, 65536, &avail);
	if (dst == NULL) {
		errno = ENOBUFS;
		return -1;
	}
	ssize_t n;
	do
		n = read(fd, dst, avail);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		b->end += (size_t)n;
	return n;
}

ssize_t
buf_write_fd(struct buf *b, int fd)
{
	size_t len = buf_len(b);
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
