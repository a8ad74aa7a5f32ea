/*
 * buf.h - capped byte buffers for connection I/O.
 *
 * A buffer is data[start..end) inside data[0..size), growing on demand up to cap, never past.
 * "Full" means "stop reading the other side and try again later" (backpressure), not an error.
 * Memory is allocated lazily, starts small (BUF_MIN) and grows only when data needs the room;
 * an empty buffer can be released (buf_release), so an idle connection holds none.
 *
 * Memory return (issue 10, item 11): the blocks that every request takes and gives back (BUF_MIN
 * and the power-of-two sizes growth goes through, up to 256 KiB) come from small free lists per
 * thread (a few instructions, no malloc on a cache hit), capped so that a burst does not leave
 * them all behind; everything else goes back to malloc, and the bytes handed back are counted
 * per thread (buf_freed_take) so that a worker can tell when a malloc_trim() is worth its cost.
 * Not thread-safe: a buffer lives on one thread.
 */
#ifndef GH_BUF_H
#define GH_BUF_H

#include <stddef.h>
#include <sys/types.h>

/* The first allocation of a buffer, and the smallest block kept on the free lists. */
#define BUF_MIN 4096

struct buf {
	char *data;
	size_t start, end, size, cap;
	int more;            /* the last buf_read_fd filled all the room it had: ask for more */
};

void buf_init(struct buf *b, size_t cap);
/* Frees the memory; the buffer can be used again (it allocates anew). */
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
 * to read, ENOBUFS when the buffer is full). A read takes the room there is (after moving the
 * live bytes to the front when less than half the buffer is free); a read that filled it
 * doubles the buffer for the next one, up to 64 KiB a read, so a sender with more to say gets
 * big reads and a small request stays in BUF_MIN. */
ssize_t buf_read_fd(struct buf *b, int fd);
/* The room buf_read_fd reads into, by the same growth rule, for a reader that is not read(2)
 * (a TLS stream): *avail bytes at the returned pointer; the caller then adds what it got to
 * b->end and sets b->more = (got == *avail). NULL with errno ENOBUFS when there is none. */
char *buf_read_room(struct buf *b, size_t *avail);
/* write(2)/send(2) from the buffer: returns bytes written or -1 with errno. */
ssize_t buf_write_fd(struct buf *b, int fd);
/* The same, sending at most max bytes (max > 0): a connection's share of a loop turn. */
ssize_t buf_write_fd_max(struct buf *b, int fd, size_t max);

/* Connection memory handed back to malloc on this thread: buf_freed_add(n) counts n more bytes
 * (buffers count themselves; callers add the objects they free with them), buf_freed_take()
 * returns the count since its last call and starts again from 0. */
void buf_freed_add(size_t n);
size_t buf_freed_take(void);
/* Free this thread's free list: a thread that used buffers calls it before it ends. */
void buf_pool_drain(void);

#endif
