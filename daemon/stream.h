/*
 * stream.h - the byte stream under a connection: plain TCP or TLS (ARCHITECTURE.md, "Seams
 * for what comes next"). A client connection (proxy.c), an upstream connection (up.c's
 * up_tcp) and a CONNECT tunnel move bytes through these operations and never through the
 * descriptor, so TLS is one file pair (daemon/tls.c) and not a branch in every function.
 *
 * The descriptor still belongs to the owner: it registers it with the loop (ev_io), closes it,
 * and may use it for what is not a byte of the stream (SIOCOUTQ, getsockname, the lingering
 * drain of a connection being closed, which discards whatever arrives).
 *
 * Readiness. A TLS stream may need the other direction to move (a read that must first send
 * a handshake message or a key update, a write that waits for a handshake reply), and it may
 * hold decrypted bytes that the descriptor will never announce. So the owner:
 *   - asks stream_interest(s, want) for the loop interest to register, where want is what it
 *     wants to do (EV_READ to read, EV_WRITE to write);
 *   - turns the loop's readiness into what it may try with stream_ready(s, revents);
 *   - after a drive that left read interest on, checks stream_pending(s) and, when it says
 *     bytes are buffered, reads again without waiting for the loop (it posts itself:
 *     ev_post_start).
 * For TCP these are the identity and 0, and cost one indirect call.
 */
#ifndef GH_STREAM_H
#define GH_STREAM_H

#include <stddef.h>
#include <sys/types.h>

#include "daemon/buf.h"

struct stream;

struct stream_ops {
	const char *name;                          /* "tcp", "tls" */
	/* buf_read_fd's contract: bytes read into b (> 0), 0 at the end of the stream (a TLS
	 * close_notify or the peer's FIN), -1 with errno: EAGAIN when nothing can move now
	 * (also while a TLS handshake is in progress), ENOBUFS when b has no room, another
	 * errno on failure (a TLS failure sets EPROTO, and stream_error() says why). */
	ssize_t (*read)(struct stream *s, struct buf *b);
	/* buf_write_fd_max's contract, max 0 meaning no limit. */
	ssize_t (*write)(struct stream *s, struct buf *b, size_t max);
	/* No more bytes from this side: TLS sends close_notify, then both shut the socket's
	 * sending side. 0 done, -1 with EAGAIN: call again when stream_interest(s, EV_WRITE)
	 * is ready. */
	int (*shutdown_wr)(struct stream *s);
	unsigned (*interest)(struct stream *s, unsigned want);
	unsigned (*ready)(struct stream *s, unsigned revents);
	int (*pending)(struct stream *s);
	/* Release what the stream holds besides the descriptor (the SSL object). */
	void (*release)(struct stream *s);
};

struct stream {
	const struct stream_ops *ops;
	int fd;
	void *tls;          /* daemon/tls.c's state (SSL *, what it waits for), NULL for TCP */
	char err[160];      /* why the last operation failed, when the stream knows more than
	                     * errno ("certificate has expired", "handshake: wrong version") */
};

extern const struct stream_ops stream_tcp_ops;

/* A plain TCP stream on fd (already non-blocking). */
void stream_tcp_init(struct stream *s, int fd);

static inline ssize_t
stream_read(struct stream *s, struct buf *b)
{
	return s->ops->read(s, b);
}

static inline ssize_t
stream_write(struct stream *s, struct buf *b, size_t max)
{
	return s->ops->write(s, b, max);
}

static inline int
stream_shutdown_wr(struct stream *s)
{
	return s->ops->shutdown_wr(s);
}

static inline unsigned
stream_interest(struct stream *s, unsigned want)
{
	return s->ops->interest(s, want);
}

static inline unsigned
stream_ready(struct stream *s, unsigned revents)
{
	return s->ops->ready(s, revents);
}

static inline int
stream_pending(struct stream *s)
{
	return s->ops->pending(s);
}

/* Release the stream's state (not the descriptor); the stream is then TCP again. */
void stream_release(struct stream *s);

/* Is this a TLS stream? */
static inline int
stream_is_tls(const struct stream *s)
{
	return s->tls != NULL;
}

/* Why the last operation failed, or "" (an errno is then all there is). */
static inline const char *
stream_error(const struct stream *s)
{
	return s->err;
}

#endif
