/*
 * buf.h - capped byte buffers for connection I/O.
 *
 * A buffer is data[start..end) inside data[0..size), growing on demand up to cap, never past.
 * "Full" means "stop reading the other side and try again later" (backpressure), not an error.
 * Memory is allocated lazily and can be released when a connection goes idle.
 */
#ifndef GH_BUF_H
#define GH_BUF_H

#include <stddef.h>
#include <sys/types.h>

struct buf {
	char *data;
	size_t start, end, size, cap;
};

void buf_init(struct buf *b, size_t cap);
void buf_fini(struct buf *b);
/* Drops the allocation if the buffer is empty (idle connections keep no memory). */
void buf_release(struct buf *b);

static inline size_t
buf_len(const struct buf *b)
{
	return b->end - b->start;
}

static inline char *
buf_head(const struct buf *b)
{
	return b->data + b->start;
}

static inline void
buf_consume(struct buf *b, size_t n)
{
	b->start += n;
	if (b->start == b->end)
		b->start = b->end = 0;
}

/* Room that can be made at the tail without passing cap (after compaction/growth). */
static inline size_t
buf_room(const struct buf *b)
{
	return b->cap - buf_len(b);
}

/* Make at least want (clamped to the cap) bytes writable at the tail; returns the writable
 * pointer and sets *avail, or NULL when the buffer is full or memory is short. */
char *buf_reserve(struct buf *b, size_t want, size_t *avail);
static inline void
buf_commit(struct buf *b, size_t n)
{
	b->end += n;
}

/* Append n bytes; returns 0, or -1 if they do not fit under the cap (nothing appended). */
int buf_append(struct buf *b, const void *p, size_t n);
/* Append formatted text; -1 if it does not fit. */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* read(2) into the buffer: returns bytes read, 0 on EOF, -1 with errno (EAGAIN when nothing
 * to read, ENOBUFS when the buffer is full). */
ssize_t buf_read_fd(struct buf *b, int fd);
/* write(2)/send(2) from the buffer: returns bytes written or -1 with errno. */
ssize_t buf_write_fd(struct buf *b, int fd);

#endif
