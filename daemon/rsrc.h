/*
 * rsrc.h - response sources: what produces the response to a request once the connection has
 * decided who answers it (ARCHITECTURE.md, "Seams for what comes next").
 *
 * Sources that exist: OPTIONS and TRACE answered by the proxy itself (daemon/local.c), the
 * PAC/WPAD file (daemon/local_pac.c), the status page and its API (daemon/status.c, whose
 * explain page answers asynchronously), and rsrc_mem, a body held in memory, which the first
 * two are made of. Sources to come: the FTP gateway (daemon/ftp.c, issue 12), then the HTTP
 * upstream and the stored cache entry, which proxy.c still drives itself in its CP_EXCHANGE
 * and CP_CACHE phases (with cachereq.c). The error pages (conn_local_page) stay in proxy.c:
 * they are the connection's own words, written whole, with ErrorDocument.
 *
 * The connection (proxy.c) owns one source per request and drives it in its CP_SOURCE phase:
 *
 *   1. ops->head() until RSRC_END, with *h filled in. Before that, a source may read the
 *      request body from io->in (RSRC_F_READS_BODY; ops->wants_input says when the
 *      connection should read the client for it), queue an interim "100 Continue" into
 *      io->out, or wait (RSRC_WAIT) for something asynchronous: it then calls rsrc_wake()
 *      on the worker's thread when it can go on.
 *   2. The connection writes the head: status line, Date, Server, Content-Type and
 *      Content-Length (from *h), the source's own fields, Gatehouse-Request-Id and, when the
 *      connection is to close (an unread request body, a source that says so, a stopping
 *      worker), Connection: close. It keeps the head for %{NAME}o.
 *   3. Unless the request is HEAD or the head has no body, ops->body() is asked for more
 *      whenever the client's output is under its high-water mark, io->room bytes at most
 *      (backpressure: a slow client stops the source), until RSRC_END.
 *   4. The connection counts the response, writes the access-log line and frees the source
 *      with rsrc_free(). A client that goes away earlier gets the same rsrc_free(): that is
 *      the cancel, and a source must drop whatever it has pending (a callback, a job on
 *      another thread) so that nothing reaches it afterwards.
 *
 * Framing is the connection's: a source hands over body bytes, never chunk sizes. All calls
 * run on the connection's worker thread.
 */
#ifndef GH_RSRC_H
#define GH_RSRC_H

#include <stddef.h>
#include <stdint.h>

struct buf;
struct rsrc;

/* Results of head() and body(), as the connection's steps count progress. */
enum rsrc_res { RSRC_WAIT = 0, RSRC_PROGRESS = 1, RSRC_END = 2 };

#define RSRC_NO_BODY (-1) /* rsrc_head.length: no body and no Content-Length (204, 304) */

struct rsrc_head {
	int status;
	const char *reason;     /* the status line's reason phrase */
	const char *ctype;      /* Content-Type, or NULL for none */
	int64_t length;         /* the body's length (Content-Length), or RSRC_NO_BODY */
	const char *fields;     /* further header fields, each line ending in CRLF ("" none) */
	const char *log_ctype;  /* the media type of the access log's line, or NULL for "-" */
};

struct rsrc_io {
	struct buf *in;         /* the client's input: request body bytes (RSRC_F_READS_BODY) */
	struct buf *out;        /* the client's output: an interim head, then body bytes */
	size_t room;            /* body(): the most bytes it may queue into out in this call */
	int read_eof;           /* the client has closed its sending side */
	int is_head;            /* a HEAD request: the body is never asked for */
	int close_after;        /* in: the connection closes after this response; out: a source
	                         * sets it when request body bytes are left unread */
	uint64_t bytes_out;     /* out: bytes the source queued into out in this call */
};

#define RSRC_F_READS_BODY 0x1  /* the source consumes the request body itself; otherwise an
                                * unread body closes the connection after the response */
#define RSRC_F_NOT_TRAFFIC 0x2 /* the proxy's own pages: not in the traffic history */

struct rsrc_ops {
	const char *name;       /* for logs: "options", "pac", "status" */
	unsigned flags;         /* RSRC_F_* */
	/* Advance until the head is known: RSRC_END with *h filled (its strings stay valid
	 * until the source is freed), RSRC_PROGRESS (call again), RSRC_WAIT (input, or
	 * rsrc_wake). Called again after RSRC_END when the output had no room for the head
	 * yet: it then gives the same head. */
	int (*head)(struct rsrc *s, struct rsrc_io *io, struct rsrc_head *h);
	/* Queue up to io->room body bytes into io->out: RSRC_END once the last is queued. */
	int (*body)(struct rsrc *s, struct rsrc_io *io);
	/* The connection should read the client for it (a request body). NULL: never. */
	int (*wants_input)(const struct rsrc *s);
	/* The authenticated user for the access log, or NULL: "-". NULL: none. */
	const char *(*user)(const struct rsrc *s);
	/* Cancel anything pending and free the source (see rsrc_free). */
	void (*free)(struct rsrc *s);
};

/* Every source starts with this (first member), set up by rsrc_init. */
struct rsrc {
	const struct rsrc_ops *ops;
	void (*wake)(void *arg);   /* the connection's: the source may go on */
	void *wake_arg;
};

void rsrc_init(struct rsrc *s, const struct rsrc_ops *ops);
/* Frees *sp (cancelling whatever it has pending) and sets it to NULL; NULL is fine. */
void rsrc_free(struct rsrc **sp);
void rsrc_set_wake(struct rsrc *s, void (*wake)(void *arg), void *arg);
/* Called by an asynchronous source, on the worker's thread, when it can go on. */
void rsrc_wake(struct rsrc *s);

/* A source whose body is in memory: copies of fields (may be NULL) and of len bytes of body
 * (RSRC_NO_BODY: none). name, reason and ctype must be static strings. log_ctype as in
 * struct rsrc_head. NULL when out of memory. */
struct rsrc *rsrc_mem_new(const char *name, int status, const char *reason, const char *ctype,
                          const char *fields, const void *body, int64_t len,
                          const char *log_ctype);

/* When a source cannot be opened, what the connection answers instead: an error page
 * (status, extra header fields, a message for users). */
struct rsrc_refusal {
	int status;
	const char *fields;     /* static, or NULL */
	char msg[1024];          /* as long as conn_local_page's */
};

#endif
