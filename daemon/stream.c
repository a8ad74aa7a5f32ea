/*
 * stream.c - the plain TCP stream (stream.h): the buffer calls on the descriptor, readiness as
 * the loop reports it, nothing held back.
 */
#include "daemon/stream.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

static ssize_t
tcp_read(struct stream *s, struct buf *b)
{
	return buf_read_fd(b, s->fd);
}

static ssize_t
tcp_write(struct stream *s, struct buf *b, size_t max)
{
	return max ? buf_write_fd_max(b, s->fd, max) : buf_write_fd(b, s->fd);
}

static int
tcp_shutdown_wr(struct stream *s)
{
	(void)shutdown(s->fd, SHUT_WR);
	return 0;
}

static unsigned
tcp_interest(struct stream *s, unsigned want)
{
	(void)s;
	return want;
}

static unsigned
tcp_ready(struct stream *s, unsigned revents)
{
	(void)s;
	return revents;
}

static int
tcp_pending(struct stream *s)
{
	(void)s;
	return 0;
}

static void
tcp_release(struct stream *s)
{
	(void)s;
}

const struct stream_ops stream_tcp_ops = {
	.name = "tcp",
	.read = tcp_read,
	.write = tcp_write,
	.shutdown_wr = tcp_shutdown_wr,
	.interest = tcp_interest,
	.ready = tcp_ready,
	.pending = tcp_pending,
	.release = tcp_release,
};

void
stream_tcp_init(struct stream *s, int fd)
{
	s->ops = &stream_tcp_ops;
	s->fd = fd;
	s->tls = NULL;
	s->err[0] = '\0';
}

void
stream_release(struct stream *s)
{
	if (s->ops != NULL)
		s->ops->release(s);
	s->ops = &stream_tcp_ops;
	s->tls = NULL;
}
