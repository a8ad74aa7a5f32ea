/*
 * proxy.c - client connections and the request state machine of the forward proxy.
 *
 * One struct conn per accepted client. Its phase says what it waits for:
 *
 *   HEAD ──► NAME (client's DNS name for an ACL) ──► RESOLVE ──► CONNECT ──► EXCHANGE ──► HEAD
 *     │                                                              └─► TUNNEL (CONNECT)
 *     ├──► error page (conn_local_page, written whole) ──► HEAD or CLOSING
 *     └──► SOURCE: a response source answers (rsrc.h: OPTIONS/TRACE, PAC, status page; head,
 *          then body as the output has room) ──► HEAD or CLOSING
 *
 * POLWAIT comes before CONNECT (from HEAD for a literal target, after RESOLVE for a name)
 * while the ProxyBlock names' addresses are not known yet (conn_polwait_park).
 *
 * conn_drive() is the one place that makes progress: it parses, moves body bytes between the
 * capped buffers (re-framing chunked and close-delimited bodies), flushes, and then derives
 * epoll interest from the state, so a full buffer on one side simply stops reading the other
 * (backpressure). The request head is turned into the upstream head as soon as it is parsed,
 * so the parsed h1_head is per-worker scratch and the client's head bytes are consumed at once.
 *
 * Fairness: a drive stops after CONN_STEPS steps or CONN_SLICE bytes written, so that one
 * connection cannot hold the worker. When it stops with work left it posts itself
 * (ev_post_start) and the loop drives it again after the others had their turn; epoll would
 * not call it back, as the rest of its input may be buffered already and its socket may have
 * room.
 *
 * Ownership: a conn owns at most one busy upstream (struct up). Both are freed through
 * ev_defer, never inside their own callbacks.
 */
#include "daemon/worker.h"
#include "daemon/tls.h"

#include "daemon/cachereq.h"
#include "daemon/clientlim.h"
#include "daemon/errdoc.h"
#include "daemon/health.h"
#include "daemon/history.h"
#include "daemon/local.h"
#include "daemon/logfmt.h"
#include "daemon/pauth.h"
#include "daemon/polres.h"
#include "daemon/rsrc.h"
#include "daemon/status.h"
#include "daemon/url.h"
#include "webui/ui.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#define CONN_MAGIC 0xc0de1e55u
#define CONN_IN_CAP (96 * 1024)   /* must hold the largest head (max_head 64 KiB) */
#define CONN_OUT_CAP (320 * 1024) /* local pages and a full response head fit over HIGH_WATER */
#define HIGH_WATER (128 * 1024)   /* stop producing into an out buffer above this */
#define FLUSH_AT (16 * 1024)      /* conn_drive gathers output steps up to this before a send */
/* A drive's fair share: this many bytes written (to the client and the upstream together), or
 * this many steps, then the connection goes to the back of the loop's posted events. A send to
 * the client takes at most the rest of the share, so that every connection gets the same per
 * turn whatever its socket would take (a stored chunk is 256 KiB); 128 KiB is what a client
 * socket holds unsent (WORKER_NOTSENT_LOWAT in worker.c). */
#define CONN_SLICE (128 * 1024)
#define CONN_STEPS 64
#define CHUNK_OVERHEAD 24         /* "%zx\r\n" + "\r\n" around one chunk */
#define CONN_PAGE_CAP (160 * 1024) /* a local page's body: ErrorDocument templates are <= 64 KiB */
#define CONN_REQ_ID_LEN 12        /* base32 characters: 60 bits */
/* An ErrorDocument redirect's longest Location: it is sent twice (the field, the page's link),
 * and both must fit CONN_OUT_CAP behind up to HIGH_WATER of earlier output */
#define CONN_LOCATION_MAX (64 * 1024)
/* Request body bytes kept for one replay on a fresh upstream connection when a reused one
 * turns out closed (PUT and other idempotent methods); a longer body is not replayed. */
#define CONN_REPLAY_CAP (64 * 1024)

enum conn_phase {
	CP_HEAD = 0, CP_NAME, CP_RESOLVE, CP_CONNECT, CP_EXCHANGE, CP_TUNNEL, CP_CLOSING,
	CP_CACHE, /* serving a stored response (cachereq.c) */
	CP_POLWAIT, /* waiting for the policy's blocked-address set (w->polwait list) */
	CP_SOURCE, /* a response source (rsrc.h) answers: c->src */
	CP_AUTH /* an authentication helper was asked (pauth.h): conn_auth_wake resumes */
};

/* Body transfer from one buffer to another with framing conversion. */
enum body_out { BO_RAW = 0, BO_CHUNKED };
struct body {
	enum h1_framing in;
	enum body_out out;
	uint64_t remaining;
	struct h1_chunked ch;
	int trailer_started;
	int done;
	uint64_t data;       /* body data bytes moved, framing excluded */
	struct creq *tap;    /* response bodies being stored: decoded data goes here too */
};

struct conn {
	unsigned magic;
	struct worker *w;
	struct conn *next, *prev;
	struct stream s;     /* the client's byte stream (stream.h): TCP, or TLS on an https
	                      * listener; s.fd is the descriptor */
	struct ev_io io;
	struct ev_timer tmo;
	struct ev_post post; /* a drive that stopped with work left continues next turn */
	struct sockaddr_storage peer, local;
	char peer_text[64];
	struct buf in, out;
	enum conn_phase phase;
	unsigned nreq;
	int close_after;     /* close once the current response is flushed */
	int read_eof;        /* the client closed its sending side */
	int dead;
	int in_req;          /* a request is being handled (it gets a log line) */
	int logged;
	size_t scan;         /* h1_head_complete resume offset */

	char *client_name;   /* double-reverse name for host ACLs; "" none; NULL unknown */
	struct pauth_conn pa; /* proxy authentication (pauth.h): the user this connection
	                       * proved, a helper request in flight */
	const char *pa_field; /* this request's Proxy-Authorization value, never logged, or
	                       * NULL. It points into the parsed head in c->in, which stays in
	                       * place while the request is routed synchronously (the head is
	                       * consumed, not moved), so a request that needs no user, or
	                       * repeats its connection's credential (the cache-hit path), costs
	                       * no copy. Before routing waits (a reverse lookup, a helper or the
	                       * password verifier), conn_pa_keep copies it to pa_owned: an empty
	                       * c->in goes back to the buffer pool (conn_buf_release), and
	                       * another connection's head may be written there meanwhile */
	size_t pa_field_len;
	char *pa_owned;      /* that copy (a credential: wiped when freed), or NULL */
	const char *req_user; /* the user this request proved, for the logs (log_user), NULL:
	                       * none */
	char log_user[200];  /* c->pa.user with blanks, controls, '%', '"' and '\\' %-escaped
	                      * (a log field is one word), clipped */
	struct res_query *dnsq;
	struct cfg *cfg;     /* snapshot of the current request */

	/* the current request */
	int method;
	int minor;
	int is_connect;
	int is_ftp;          /* ftp:// URL: to a parent, or direct through the FTP gateway */
	int is_https;        /* https:// URL: to a parent in absolute form, or TLS to the origin */
	char *host;          /* lower-case, no brackets */
	uint16_t port;
	char *url;           /* absolute URL ("host:port" for CONNECT), for ACLs and the log;
	                      * never with a password in it (an ftp:// login), see url_full */
	char *url_full;      /* the URL with its password, for the request line to a parent or
	                      * the FTP gateway; NULL when it has none (then c->url) */
	char method_str[24];
	char *request_line;  /* combined log */
	char *referer, *user_agent;
	char *uphead;        /* upstream header fields, after the request line, final CRLF included */
	size_t uphead_len;
	char *uphead_orig;   /* the client's, while uphead is the cache's revalidation */
	size_t uphead_orig_len;
	char *up_method;     /* method and origin-form target for the upstream request line */
	char *up_path;
	uint64_t t_start_us, t_start_ms;
	/* LogFormat %{NAME}i / %{NAME}o (issue 9): the heads, kept only when a log asks */
	char *log_reqhead, *log_resphead;
	size_t log_reqhead_len, log_resphead_len;
	int log_aborted;     /* the request ended with the connection (%X "X") */
	int status;
	const char *action;
	const char *hier;
	char up_peer[64];
	char ctype[96];
	uint64_t bytes_out;  /* bytes queued to the client for this request */
	uint64_t body_out;   /* of which body data (Apache %b) */
	struct body rq;      /* request body, client -> upstream */
	struct body rs;      /* response body, upstream -> client */

	struct up *up;
	int retried;
	struct buf replay;   /* request body as sent upstream, while a replay is possible */
	int replay_ok;       /* replay holds all of it: reused upstream, idempotent method */
	int up_eof;
	int up_got_bytes;    /* any response byte seen on this upstream for this request */
	int rs_head_done;
	size_t rs_scan;
	int rs_started;      /* response bytes queued to the client */
	int up_close;        /* upstream said close, or framing demands it */
	int expect_100;
	int is_head;
	uint64_t last_progress; /* any progress (tunnels, closing) */
	uint64_t last_client;   /* bytes moved from or to the client */
	uint64_t last_up;       /* bytes moved from or to the upstream */
	int tail_queued;        /* SIOCOUTQ at the last keep-alive timeout (conn_tmo_cb) */

	/* tunnel */
	int tun_c_shut, tun_u_shut;

	/* routing */
	int resolved;        /* addrs holds the target's lookup result (possibly empty) */
	int dns_status;
	int forced_direct;   /* every parent down and ProxyRemoteFallback direct */
	struct pol_decision dec;
	struct conn *pw_next, *pw_prev; /* w->polwait, while pw_linked */
	int pw_linked;
	const char *pol_rule;  /* the deciding rule in full, FILE:LINE included (struct pol_why
	                       * full): for the error log and the status page's explain view */
	const struct pol_parent *par[POL_PARENTS_MAX];
	size_t npar, par_i;
	int par_fallback;
	const struct pol_parent *via_parent; /* the parent in use, or NULL: direct */
	struct res_addrs paddrs;
	char par_errs[512];
	char *local_host;    /* Host of a request to the proxy itself (PAC default) */
	char *inm;           /* its If-None-Match */

	int local_kind;      /* LOCAL_* */
	struct rsrc *src;    /* the response source of CP_SOURCE (rsrc.h), or NULL */
	int src_head_done;   /* its head is queued */
	int src_body;        /* its body is still to be queued (not HEAD, not 204/304) */
	int in_drive;        /* conn_drive is on the stack */
	int shut_wr;         /* closing: our side shut down, lingering */
	struct res_addrs addrs;

	struct creq *cq;     /* cache work of the current request (cachereq.h), or NULL */
	int cq_checked;      /* the cache was consulted for this request */
	int background;      /* the internal connection of a stale-while-revalidate refresh */
	int cq_wake;         /* a collapsed-forwarding wake-up is deferred */
	int headless;        /* the client went away; the response is read on for the cache */
	int clim_counted;    /* counted in clientlim.c under clim_key (MaxConnectionsPerClient) */
	uint64_t clim_key;

	/* Error pages and request ids (issue 9, part 4). */
	char req_id[CONN_REQ_ID_LEN + 1]; /* this request's id: pages, access and error log */
	const char *page_where; /* the refusing rule's FILE:LINE: error log only, never the page */
};

static void conn_drive(struct conn *c);
static void conn_close(struct conn *c);
static void conn_req_done(struct conn *c);
static void conn_io_cb(struct ev_io *io, unsigned revents);
static void conn_tmo_cb(struct ev_timer *t);
static void conn_route(struct conn *c);
static void conn_local_begin(struct conn *c);
static void conn_abort(struct conn *c, const char *why);
static void conn_decide(struct conn *c);
static void conn_cache_serve(struct conn *c);
static struct conn *conn_new(struct worker *w, int fd, const struct sockaddr_storage *peer,
                             const struct sockaddr_storage *local);
static void proxy_up_connected_cb(struct conn *c, struct up *u, const char *err, int timeout);

/* ---- small helpers ---- */

/* RFC 9110 9.2.2: may a request with this method be sent again after a connection failure? */
static int
conn_method_idempotent(int method)
{
	return method == H1_M_GET || method == H1_M_HEAD || method == H1_M_PUT ||
	       method == H1_M_DELETE || method == H1_M_OPTIONS || method == H1_M_TRACE;
}

/* A new request id: 60 bits as 12 characters of Crockford's base32 (no I, L, O, U to misread
 * on a screenshot): the request's start second (32 bits, so ids sort by time), the worker
 * (8 bits), and a per-worker counter (20 bits) started at a random value. Unique within a run
 * while a worker starts fewer than a million requests a second, and across restarts unless
 * two runs start within the same second with overlapping counters. */
static void
conn_req_id_new(struct conn *c)
{
	static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	static _Thread_local uint32_t seq;
	static _Thread_local int seeded;
	if (!seeded) {
		uint32_t r = 0;
		if (getentropy(&r, sizeof(r)) != 0)
			r = (uint32_t)ev_wall_us(c->w->loop) ^ (uint32_t)(uintptr_t)c;
		seq = r;
		seeded = 1;
	}
	uint64_t v = ((c->t_start_us / 1000000) & 0xffffffffull) << 28 |
	             (uint64_t)(c->w->id & 0xff) << 20 | (seq++ & 0xfffff);
	for (int i = CONN_REQ_ID_LEN - 1; i >= 0; i--, v >>= 5)
		c->req_id[i] = b32[v & 31];
	c->req_id[CONN_REQ_ID_LEN] = '\0';
}

static char *
conn_strndup(const char *p, size_t n)
{
	char *s = malloc(n + 1);
	if (s) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

/* Keep the response head queued at c->out offset before, for LogFormat %{NAME}o, when some
 * log asks for it (only the first head of a request: interim 1xx heads are not kept). */
static void
conn_log_keep_resp(struct conn *c, size_t before)
{
	if (!(alog_needs(gh.alog) & LOGFMT_NEED_RESPHEAD) || c->log_resphead ||
	    before > buf_len(&c->out))
		return;
	const char *p = buf_head(&c->out) + before;
	size_t n = buf_len(&c->out) - before;
	const char *end = memmem(p, n, "\r\n\r\n", 4);
	if (end)
		n = (size_t)(end - p) + 4;
	c->log_resphead = conn_strndup(p, n);
	c->log_resphead_len = c->log_resphead ? n : 0;
}

static void
conn_set_ctype(struct conn *c, const char *p, size_t n)
{
	if (n >= sizeof(c->ctype))
		n = sizeof(c->ctype) - 1;
	memcpy(c->ctype, p, n);
	c->ctype[n] = '\0';
	/* keep just the media type for the log */
	char *semi = strchr(c->ctype, ';');
	if (semi)
		*semi = '\0';
	for (char *q = c->ctype; *q; q++)
		if (*q == ' ' || *q == '\t')
			*q = '\0';
}

/* The server name on pages: ServerName, or this machine's host name (cfg.h). */
static const char *
conn_server_name(struct conn *c)
{
	return (c->cfg != NULL ? c->cfg : c->w->cfg)->server_name;
}

/* The Cache-Status field of a page the proxy answers itself (RFC 9211), so that every error
 * page has one: the cache's own when it handled the request; "fwd=bypass" when the request
 * went on without the cache (not enabled for the URL, CONNECT); otherwise the request was
 * answered before the cache step and "detail" says why (denied, error, local). "" when the
 * caller's fields carry one already. */
static const char *
conn_page_cache_status(struct conn *c, const char *extra, char *buf, size_t n)
{
	if (extra != NULL && strstr(extra, "Cache-Status:") != NULL)
		return "";
	const char *line = c->cq != NULL ? cachereq_status_line(c->cq) : "";
	if (*line)
		return line;
	const char *what = c->cq_checked                           ? "fwd=bypass"
	                   : c->action && strcmp(c->action, "TCP_DENIED") == 0 ? "detail=denied"
	                   : c->status >= 400                       ? "detail=error"
	                                                            : "detail=local";
	snprintf(buf, n, "Cache-Status: Gatehouse; %s\r\n", what);
	return buf;
}

/* Queue a complete local response: status line, headers, a short HTML page naming the cause
 * (or the admin's ErrorDocument for it: a page, or a 302 to a URL), with Cache-Status and the
 * request id (Gatehouse-Request-Id, and on the built-in page). Marks the request done (and the
 * connection to close when close_after is set). The message is for users: it never holds a
 * config file's name; c->page_where (the refusing rule's FILE:LINE) goes to the error log. */
static void
conn_local_page(struct conn *c, int status, const char *action, const char *extra_headers,
                const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (status >= 500 && !c->rs_started && cachereq_stale_on_error(c->cq)) {
		/* the origin failed a revalidation: the stale entry is served (stale-if-error) */
		log_info("[id %s] %s: %s: serving the stale entry: %s", c->req_id, c->peer_text,
		         c->url, msg);
		c->up_close = 1;
		conn_cache_serve(c);
		return;
	}
	if (extra_headers == NULL)
		extra_headers = "";
	c->status = status;
	c->action = action;
	char csbuf[96];
	const char *cache_status = conn_page_cache_status(c, extra_headers, csbuf, sizeof(csbuf));

	const char *title = ui_status_text(status);
	const struct cfg *cfg = c->cfg != NULL ? c->cfg : c->w->cfg;
	struct errdoc_vars vars = {
		.status = status, .status_text = title, .reason = msg, .url = c->url,
		.req_id = c->req_id, .server_name = conn_server_name(c),
	};
	struct buf body;
	buf_init(&body, CONN_PAGE_CAP);
	enum errdoc_kind doc = status >= 400 ? errdoc_render(cfg->errdocs, &vars, &body)
	                                     : ERRDOC_NONE;
	char *location = NULL;
	int code = status;
	if (doc == ERRDOC_REDIRECT && buf_len(&body) > CONN_LOCATION_MAX)
		doc = ERRDOC_NONE; /* a percent-encoded huge URL: the built-in page instead */
	if (doc == ERRDOC_REDIRECT) {
		/* Apache's ErrorDocument to a full URL: the client gets a redirect instead. */
		location = conn_strndup(buf_head(&body), buf_len(&body));
		code = 302;
		buf_consume(&body, buf_len(&body));
		if (location == NULL)
			doc = ERRDOC_NONE;
		else {
			buf_printf(&body, "<!DOCTYPE html>\n<html><head><title>302 Found</title></head>\n"
			           "<body>\n<p><a href=\"");
			errdoc_html_escape(&body, location);
			buf_printf(&body, "\">%d %s</a></p>\n</body></html>\n", status, title);
		}
	}
	if (doc == ERRDOC_NONE) {
		buf_consume(&body, buf_len(&body));
		buf_printf(&body, "<!DOCTYPE html>\n<html><head><title>%d %s</title></head>\n"
		           "<body>\n<h1>%d %s</h1>\n<p>", status, title, status, title);
		errdoc_html_escape(&body, msg);
		buf_printf(&body, "</p>\n<p>Request id: <code>%s</code></p>\n"
		           "<hr><address>Gatehouse/%s at ", c->req_id, GH_VERSION);
		errdoc_html_escape(&body, conn_server_name(c));
		buf_printf(&body, "</address>\n</body></html>\n");
	}

	conn_local_begin(c); /* an unread request body would desynchronise the stream */
	size_t before = buf_len(&c->out);
	buf_printf(&c->out,
	           "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: Gatehouse/%s\r\n"
	           "Content-Type: text/html; charset=utf-8\r\n"
	           "Content-Length: %zu\r\nCache-Control: no-store\r\n%s%s%s%s"
	           "Gatehouse-Request-Id: %s\r\n%s%s\r\n",
	           code, code == 302 ? "Found" : title, worker_http_date(c->w), GH_VERSION,
	           buf_len(&body), location ? "Location: " : "", location ? location : "",
	           location ? "\r\n" : "", cache_status, c->req_id, extra_headers,
	           c->close_after ? "Connection: close\r\n" : "");
	conn_log_keep_resp(c, before);
	if (!c->is_head) {
		buf_append(&c->out, buf_head(&body), buf_len(&body));
		c->body_out += buf_len(&body);
	}
	buf_fini(&body);
	free(location);
	c->bytes_out += buf_len(&c->out) - before;
	c->status = code;
	c->rs_started = 1;
	snprintf(c->ctype, sizeof(c->ctype), "text/html");
	if (status >= 500)
		c->w->st.errors_5xx++;
	else if (status >= 400)
		c->w->st.errors_4xx++;
	c->w->st.responses_local++;
	if (status >= 400 && log_on(CFG_LL_INFO))
		log_msg(CFG_LL_INFO, "[id %s] %s: %d %s: %s%s%s%s", c->req_id, c->peer_text, status,
		        c->url ? c->url : "-", msg, c->page_where ? " (" : "",
		        c->page_where ? c->page_where : "", c->page_where ? ")" : "");
	conn_req_done(c);
}

/* ---- connection lifetime ---- */

static void
conn_free_deferred(struct ev_loop *loop, void *arg)
{
	(void)loop;
	struct conn *c = arg;
	buf_fini(&c->in);
	buf_fini(&c->out);
	buf_fini(&c->replay);
	free(c->client_name);
	c->magic = 0;
	free(c);
	buf_freed_add(sizeof(*c));
}

static void
conn_req_reset(struct conn *c)
{
	free(c->host);
	free(c->url);
	free(c->url_full);
	c->url_full = NULL;
	free(c->request_line);
	free(c->referer);
	free(c->user_agent);
	free(c->uphead);
	free(c->uphead_orig);
	c->uphead_orig = NULL;
	c->uphead_orig_len = 0;
	free(c->up_method);
	free(c->up_path);
	c->host = c->url = c->request_line = c->referer = c->user_agent = c->uphead = NULL;
	free(c->log_reqhead);
	free(c->log_resphead);
	c->log_reqhead = c->log_resphead = NULL;
	c->log_reqhead_len = c->log_resphead_len = 0;
	c->up_method = c->up_path = NULL;
	free(c->local_host);
	free(c->inm);
	c->local_host = c->inm = NULL;
	if (c->pa_owned != NULL) {
		OPENSSL_cleanse(c->pa_owned, c->pa_field_len);
		free(c->pa_owned);
	}
	c->pa_owned = NULL;
	c->pa_field = NULL;
	c->pa_field_len = 0;
	c->req_user = NULL;
	c->resolved = 0;
	c->dns_status = 0;
	c->forced_direct = 0;
	c->via_parent = NULL;
	c->npar = c->par_i = 0;
	c->pol_rule = NULL;
	c->page_where = NULL;
	c->req_id[0] = '\0';
	c->uphead_len = 0;
	if (c->cfg)
		cfg_unref(&c->cfg);
	memset(&c->rq, 0, sizeof(c->rq));
	memset(&c->rs, 0, sizeof(c->rs));
	c->method = 0;
	c->minor = 1;
	c->is_connect = 0;
	c->is_ftp = 0;
	c->is_https = 0;
	c->status = 0;
	c->action = "NONE";
	c->hier = "HIER_NONE";
	c->up_peer[0] = '\0';
	c->ctype[0] = '\0';
	c->method_str[0] = '\0';
	c->bytes_out = 0;
	c->body_out = 0;
	c->retried = 0;
	buf_fini(&c->replay);
	c->replay_ok = 0;
	c->up_eof = 0;
	c->up_got_bytes = 0;
	c->rs_head_done = 0;
	c->rs_scan = 0;
	c->rs_started = 0;
	c->up_close = 0;
	c->expect_100 = 0;
	c->is_head = 0;
	c->tun_c_shut = c->tun_u_shut = 0;
	c->in_req = 0;
	c->logged = 0;
	cachereq_free(&c->cq);
	c->cq_checked = 0;
	rsrc_free(&c->src);
	c->src_head_done = c->src_body = 0;
}

/* Write the access-log line of the current request, once. */
static void
conn_log(struct conn *c)
{
	if (!c->in_req || c->logged)
		return;
	c->logged = 1;
	struct worker *w = c->w;
	if (c->log_resphead != NULL && c->cq != NULL) {
		/* %{Cache-Status}o: "stored" as it turned out, not as the head foretold */
		size_t n = 0;
		char *fixed = cachereq_log_resphead(c->cq, c->log_resphead, c->log_resphead_len, &n);
		if (fixed != NULL) {
			free(c->log_resphead);
			c->log_resphead = fixed;
			c->log_resphead_len = n;
		}
	}
	/* c->url has no ftp login's password (conn_url_normalize), but a URL inside it may:
	 * the status page's explain query ("?url=ftp%3A%2F%2Fuser%3Asecret%40host"), a bad
	 * target kept as sent. The log line and the recent requests get a masked copy; c->url
	 * itself is the cache key and stays as it is. */
	const char *url = c->url ? c->url : "error:invalid-request";
	char *murl = NULL;
	if (strchr(url, '@') != NULL || strcasestr(url, "%40") != NULL) {
		murl = strdup(url);
		if (murl == NULL)
			url = "error:out-of-memory";
		else
			url_password_mask(murl, strlen(murl), URL_MASK_EVERY);
	}
	if (murl != NULL)
		url = murl;
	const char *line = c->request_line; /* masked when kept (conn_parse_head) */
	struct alog_entry e = {
		.start_us = c->t_start_us,
		.elapsed_ms = ev_now(w->loop) - c->t_start_ms,
		.client = c->peer_text,
		.action = c->action,
		.status = c->status,
		.bytes = c->bytes_out,
		.body_bytes = c->body_out + c->rs.data,
		.method = c->method_str[0] ? c->method_str : "NONE",
		.url = url,
		.user = c->req_user != NULL                  ? c->req_user
		        : c->src && c->src->ops->user ? c->src->ops->user(c->src)
		                                      : "-",
		.hier = c->hier,
		.peer = c->up_peer[0] ? c->up_peer : "-",
		.ctype = c->ctype[0] ? c->ctype : "-",
		.request_line = line,
		.referer = c->referer,
		.user_agent = c->user_agent,
		.req_id = c->req_id[0] ? c->req_id : NULL,
		.req_head = c->log_reqhead,
		.req_head_len = c->log_reqhead_len,
		.resp_head = c->log_resphead,
		.resp_head_len = c->log_resphead_len,
		.local_addr = &c->local,
		.peer_addr = &c->peer,
		.server_name = c->cfg ? c->cfg->server_host : NULL,
		.minor = c->minor,
		.keepalives = c->nreq,
		.conn_status = c->log_aborted && c->phase != CP_TUNNEL ? 'X' :
		               c->close_after ? '-' : '+',
	};
	alog_add(&w->alog, &e);
	stats_req(w, &e, c->pol_rule != NULL && c->pol_rule == c->dec.rule &&
	          c->dec.action == POL_BLOCK, c->via_parent ? c->via_parent->key : NULL);
#ifndef GH_NO_STATS
	/* the status page (issue 11) counts the traffic, not its own requests */
	if (c->src == NULL || !(c->src->ops->flags & RSRC_F_NOT_TRAFFIC))
		history_note(w->id, &e, c->host, c->rs.data, c->pol_rule);
#endif
	free(murl);
}

static void conn_polwait_leave(struct conn *c);

static void
conn_close(struct conn *c)
{
	if (c->dead)
		return;
	struct worker *w = c->w;
	conn_polwait_leave(c);
	if (c->in_req && !c->logged && c->status == 0)
		c->status = c->phase == CP_TUNNEL ? 200 : 499; /* 499: client went away (nginx) */
	c->log_aborted = 1;
	conn_log(c);
	c->dead = 1;
	if (c->phase == CP_TUNNEL)
		w->st.tunnels_open--;
	if (c->dnsq)
		res_cancel(&c->dnsq);
	if (c->up) {
		up_close(c->up);
		c->up = NULL;
	}
	ev_io_stop(&c->io);
	ev_timer_stop(&c->tmo);
	ev_post_stop(&c->post);
	stream_release(&c->s);
	if (c->s.fd >= 0)
		close(c->s.fd);
	c->s.fd = -1;
	if (c->clim_counted)
		clim_give(c->clim_key);
	c->clim_counted = 0;
	conn_req_reset(c);
	pauth_conn_fini(&c->pa); /* cancels a helper request in flight */
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
	w->st.conns_open--;
	if (ev_defer(w->loop, conn_free_deferred, c) < 0)
		log_error("out of memory deferring a connection free; leaking it");
}

/* The client went away (reset, a failed write, stopped reading) in the middle of a response
 * that is being stored. When the cache wants the fill to complete (others follow it, or the
 * rest is small: cachereq_outlive_client), the connection lives on "headless": the client
 * socket is closed, the response is read to its end into the cache and what would go to
 * the client is dropped; then the connection closes. Returns 1 when it went headless. */
static int
conn_go_headless(struct conn *c)
{
	if (c->headless || c->phase != CP_EXCHANGE || !c->rs_head_done || c->rs.done ||
	    c->up == NULL || c->cq == NULL || !c->rq.done)
		return 0;
	int64_t rest = c->rs.in == H1_BODY_LENGTH ? (int64_t)c->rs.remaining : -1;
	if (!cachereq_outlive_client(c->cq, rest, c->rs.data))
		return 0;
	log_info("[id %s] %s: %s: the client went away; reading the response on for the cache",
	         c->req_id, c->peer_text, c->url ? c->url : "-");
	ev_io_stop(&c->io);
	stream_release(&c->s);
	close(c->s.fd);
	c->s.fd = -1;
	c->headless = 1;
	c->read_eof = 1;
	c->close_after = 1;
	buf_consume(&c->out, buf_len(&c->out));
	return 1;
}

static void
conn_client_gone(struct conn *c)
{
	if (!conn_go_headless(c))
		conn_close(c);
}

/* Finish the current request: log it, release or close its upstream, and either wait for the
 * next request or close once the output is flushed. */
static void
conn_req_done(struct conn *c)
{
	struct worker *w = c->w;
	conn_polwait_leave(c);
	conn_log(c);
	if (c->dnsq)
		res_cancel(&c->dnsq);
	if (c->up) {
		struct up *u = c->up;
		c->up = NULL;
		int reuse = !c->up_close && !c->up_eof && c->rs.done && c->rq.done &&
		            c->phase == CP_EXCHANGE;
		up_release(u, reuse);
	}
	c->nreq++;
	w->st.requests++;
	if (w->stopping)
		c->close_after = 1;
	conn_req_reset(c);
	c->phase = c->close_after ? CP_CLOSING : CP_HEAD;
	if (c->phase == CP_HEAD) {
		struct cfg *cfg = w->cfg;
		ev_timer_start(w->loop, &c->tmo, buf_len(&c->in) ? cfg->timeout_ms : cfg->keepalive_timeout_ms);
	} else {
		/* Closing: flush, shut down our side, and linger briefly reading what the client
		 * still sends, so that the response is not lost to a reset. */
		ev_timer_start(w->loop, &c->tmo, 2000);
	}
}

/* ---- bodies ---- */

static int
body_put_chunk(struct buf *dst, const char *p, size_t n)
{
	char hdr[24];
	int k = snprintf(hdr, sizeof(hdr), "%zx\r\n", n);
	if (buf_room(dst) < (size_t)k + n + 2)
		return -1;
	buf_append(dst, hdr, (size_t)k);
	buf_append(dst, p, n);
	buf_append(dst, "\r\n", 2);
	return 0;
}

/* Move body bytes from src to dst, converting framing. Stops when dst reaches HIGH_WATER, src
 * is empty, or the body is complete. Returns 1 if anything moved, 0 if not, -1 on a framing
 * error (*err). Called with dst under HIGH_WATER, 0 with bytes left in src means they are the
 * start of a chunk-size or trailer line that needs more input (at EOF: a truncated body).
 * A close-delimited body is completed by the caller at EOF (body_eof). */
static int
body_pump(struct body *b, struct buf *src, struct buf *dst, const char **err)
{
	int progress = 0;
	while (!b->done && buf_len(dst) < HIGH_WATER) {
		size_t avail = buf_len(src);
		size_t room = HIGH_WATER + (HIGH_WATER / 2) - buf_len(dst);
		if (b->in == H1_BODY_LENGTH) {
			if (b->remaining == 0) {
				b->done = 1;
				return 1;
			}
			if (avail == 0)
				break;
			size_t n = avail < room ? avail : room;
			if (n > b->remaining)
				n = (size_t)b->remaining;
			buf_append(dst, buf_head(src), n);
			cachereq_fill_data(b->tap, buf_head(src), n);
			buf_consume(src, n);
			b->data += n;
			b->remaining -= n;
			progress = 1;
			if (b->remaining == 0)
				b->done = 1;
		} else if (b->in == H1_BODY_CLOSE) {
			if (avail == 0)
				break;
			size_t n = avail < room - CHUNK_OVERHEAD ? avail : room - CHUNK_OVERHEAD;
			if (b->out == BO_CHUNKED)
				body_put_chunk(dst, buf_head(src), n);
			else
				buf_append(dst, buf_head(src), n);
			cachereq_fill_data(b->tap, buf_head(src), n);
			buf_consume(src, n);
			b->data += n;
			progress = 1;
		} else if (b->in == H1_BODY_CHUNKED) {
			if (avail == 0)
				break;
			size_t lim = avail < room - CHUNK_OVERHEAD ? avail : room - CHUNK_OVERHEAD;
			size_t used = 0;
			struct h1_str span = {NULL, 0};
			int kind = H1_SPAN_DATA;
			int r = h1_chunked_step(&b->ch, buf_head(src), lim, &used, &span, &kind, err);
			if (r == H1_ERR)
				return -1;
			if (span.n > 0) {
				if (kind == H1_SPAN_DATA) {
					b->data += span.n;
					cachereq_fill_data(b->tap, span.p, span.n);
					if (b->out == BO_CHUNKED)
						body_put_chunk(dst, span.p, span.n);
					else
						buf_append(dst, span.p, span.n);
				} else if (b->out == BO_CHUNKED) {
					if (!b->trailer_started)
						buf_append(dst, "0\r\n", 3);
					b->trailer_started = 1;
					buf_append(dst, span.p, span.n);
				}
			}
			buf_consume(src, used);
			if (used > 0 || span.n > 0)
				progress = 1;
			if (r == H1_OK) {
				if (b->out == BO_CHUNKED) {
					if (!b->trailer_started)
						buf_append(dst, "0\r\n", 3);
					buf_append(dst, "\r\n", 2);
				}
				b->done = 1;
				return 1;
			}
			if (used == 0 && span.n == 0)
				break;
		} else {
			b->done = 1;
			return 1;
		}
	}
	return progress;
}

static void
body_eof(struct body *b, struct buf *dst)
{
	if (b->out == BO_CHUNKED)
		buf_append(dst, "0\r\n\r\n", 5);
	b->done = 1;
}

static void
body_setup(struct body *b, enum h1_framing in, uint64_t len, enum body_out out)
{
	memset(b, 0, sizeof(*b));
	b->in = in;
	b->out = out;
	b->remaining = len;
	h1_chunked_init(&b->ch);
	if (in == H1_BODY_NONE || (in == H1_BODY_LENGTH && len == 0))
		b->done = 1;
}

/* ---- request heads ---- */

static void
conn_limits(const struct cfg *cfg, struct h1_limits *lim)
{
	h1_limits_default(lim);
	lim->max_line = cfg->limit_request_line;
	lim->max_field = cfg->limit_request_field_size;
	lim->max_fields = cfg->limit_request_fields;
}

static void
conn_put_via(struct conn *c, struct buf *b)
{
	if (c->cfg->via == CFG_VIA_ON) { /* appends: this runs for every response */
		buf_append(b, c->minor ? "Via: 1.1 " : "Via: 1.0 ", 9);
		buf_append(b, c->cfg->server_name, strlen(c->cfg->server_name));
		buf_append(b, "\r\n", 2);
	}
	else if (c->cfg->via == CFG_VIA_FULL)
		buf_printf(b, "Via: 1.%d %s (Gatehouse/%s)\r\n", c->minor, c->cfg->server_name,
		           GH_VERSION);
}

/* Serialize the header fields sent upstream: Host from the URI, hop-by-hop fields removed, Via
 * and Max-Forwards as configured, framing re-stated. The request line is written when the
 * upstream is known (conn_send_uphead): origin-form to an origin, absolute-form to a parent. */
static int
conn_build_uphead(struct conn *c, const struct h1_head *h, const struct h1_url *u)
{
	struct buf b;
	buf_init(&b, 160 * 1024);
	const struct cfg *cfg = c->cfg;
	int rc = 0;
	c->up_method = conn_strndup(h->method_str.p, h->method_str.n);
	c->up_path = conn_strndup(u->path.p, u->path.n);
	if (c->up_method == NULL || c->up_path == NULL)
		rc = -1;
	if (u->host_is_ip6)
		rc |= buf_printf(&b, "Host: [%.*s]", (int)u->host.n, u->host.p);
	else
		rc |= buf_printf(&b, "Host: %.*s", (int)u->host.n, u->host.p);
	if (u->port_explicit && u->port != (u->scheme == H1_SCHEME_FTP     ? 21
	                                    : u->scheme == H1_SCHEME_HTTPS ? 443
	                                                                   : 80))
		rc |= buf_printf(&b, ":%u", u->port);
	rc |= buf_append(&b, "\r\n", 2);
	for (size_t i = 0; i < h->nfields; i++) {
		const struct h1_field *f = &h->fields[i];
		if (f->id == H1_F_PROXY_AUTHORIZATION) {
			if (!cfg->chain_auth)
				continue;
		} else if (f->hop) {
			continue;
		}
		switch (f->id) {
		case H1_F_HOST:
		case H1_F_MAX_FORWARDS:
		case H1_F_CONTENT_LENGTH:
		case H1_F_TRANSFER_ENCODING:
			continue;
		case H1_F_VIA:
			if (cfg->via == CFG_VIA_BLOCK)
				continue;
			break;
		default:
			break;
		}
		rc |= buf_printf(&b, "%.*s: %.*s\r\n", (int)f->name.n, f->name.p, (int)f->value.n,
		                 f->value.p);
	}
	if (cfg->via != CFG_VIA_BLOCK)
		conn_put_via(c, &b);
	if (h->max_forwards >= 0)
		rc |= buf_printf(&b, "Max-Forwards: %d\r\n", h->max_forwards > 0 ? h->max_forwards - 1 : 0);
	else if (cfg->max_forwards >= 0)
		rc |= buf_printf(&b, "Max-Forwards: %d\r\n", cfg->max_forwards);
	if (h->framing == H1_BODY_LENGTH)
		rc |= buf_printf(&b, "Content-Length: %" PRIu64 "\r\n", h->content_length);
	else if (h->framing == H1_BODY_CHUNKED)
		rc |= buf_append(&b, "Transfer-Encoding: chunked\r\n", 28);
	rc |= buf_append(&b, "\r\n", 2);
	if (rc != 0) {
		buf_fini(&b);
		return -1;
	}
	/* Kept for the whole request: an exact copy, and the buffer (BUF_MIN for any usual head)
	 * goes back to the free list. */
	c->uphead_len = buf_len(&b);
	c->uphead = conn_strndup(b.data, c->uphead_len);
	buf_fini(&b);
	return c->uphead != NULL ? 0 : -1;
}

static char *
conn_field_dup(const struct h1_head *h, enum h1_field_id id)
{
	const struct h1_field *f = h1_field_get(h, id);
	return f ? conn_strndup(f->value.p, f->value.n) : NULL;
}


/* Has this request already passed through this process? Our pseudonym (gh.hop_token) goes in
 * a CDN-Loop field (RFC 8586) on every request to a parent, whatever ProxyVia says: a parent
 * that sends the request back (a ProxyRemote naming this proxy under another name, or two
 * proxies naming each other) is caught at the second pass instead of looping until
 * descriptors run out. Members are matched whole, so "gatehouse-1234" is not taken for
 * "gatehouse-12". */
static int
conn_hop_seen(const struct h1_head *h)
{
	size_t tl = strlen(gh.hop_token);
	for (size_t i = 0; i < h->nfields; i++) {
		const struct h1_field *f = &h->fields[i];
		if (!h1_str_ieq(f->name, "cdn-loop"))
			continue;
		const char *p = f->value.p, *end = p + f->value.n;
		while (p < end) {
			while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
				p++;
			const char *m = p;
			while (p < end && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
				p++;
			if ((size_t)(p - m) == tl && memcmp(m, gh.hop_token, tl) == 0)
				return 1;
			while (p < end && *p != ',') /* skip parameters */
				p++;
		}
	}
	return 0;
}

static int
conn_is_self(const struct conn *c, const struct h1_url *u)
{
	char want[64], host[256]; /* an address, or ServerName's host */
	if (u->host.n >= sizeof(host))
		return 0;
	memcpy(host, u->host.p, u->host.n);
	host[u->host.n] = '\0';
	gh_addr_text(&c->local, want, sizeof(want), 0);
	unsigned lport = c->local.ss_family == AF_INET6
	                     ? ntohs(((const struct sockaddr_in6 *)&c->local)->sin6_port)
	                     : ntohs(((const struct sockaddr_in *)&c->local)->sin_port);
	if (u->port != lport)
		return 0;
	if (strcasecmp(host, want) == 0)
		return 1;
	if (strcasecmp(host, c->cfg->server_host) == 0)
		return 1;
	/* another of our listeners, named by its address (or "localhost"): ours too, so that
	 * the status page there is judged by its own rules, not reached through a forward */
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	int is_localhost = strcasecmp(host, "localhost") == 0;
	if (is_localhost || inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(u->port);
		if (is_localhost)
			s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (cfg_listens_on(c->cfg, &ss))
			return 1;
	}
	memset(&ss, 0, sizeof(ss));
	if (is_localhost || inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(u->port);
		if (is_localhost)
			s6->sin6_addr = in6addr_loopback;
		if (cfg_listens_on(c->cfg, &ss))
			return 1;
	}
	return 0;
}

/* Set c->url, c->host and c->port to the normalized form of target, already parsed into *u
 * (daemon/url.h), and parse *u again from c->url, so that u's slices (the path and Host sent
 * upstream) are the normalized ones too; the second parse also checks a decoded host
 * ("%30x7f.1" is "0x7f.1"). CONNECT: the host rules only; c->url is "host:port". Returns 0, or
 * -1 with *reason for a 400 (NULL: out of memory); c->url may then be NULL. */
static int
conn_url_normalize(struct conn *c, struct h1_str target, struct h1_url *u, const char **reason)
{
	size_t cap = target.n + URL_NORM_SLACK;
	char *s = malloc(cap);
	struct url_norm un;
	struct h1_str t;

	*reason = NULL;
	if (s == NULL)
		return -1;
	if (c->is_connect) {
		long hl = url_host_normalize(u->host.p, u->host.n, u->host_is_ip6, s, cap, reason);
		if (hl < 0) {
			free(s);
			return -1;
		}
		c->host = s;
		c->port = u->port;
		c->url = malloc((size_t)hl + 16);
		if (c->url == NULL)
			return -1;
		snprintf(c->url, (size_t)hl + 16, u->host_is_ip6 ? "[%s]:%u" : "%s:%u", c->host,
		         c->port);
		return 0;
	}
	if (url_normalize(target.p, target.n, 0, s, cap, &un, reason) != 0) {
		free(s);
		return -1;
	}
	c->url = s;
	if (memchr(u->host.p, '%', u->host.n) != NULL) {
		t.p = s;
		t.n = un.len;
		if (h1_url_parse(t, u, reason) != H1_OK)
			return -1;
	} else { /* the same parts, where they now are (no second parse on the hit path) */
		u->scheme_str.p = s;
		u->userinfo.p = u->userinfo.n ? s + u->scheme_str.n + 3 : "";
		u->host.p = s + un.host_off;
		u->host.n = un.host_len;
		u->port = (uint16_t)un.port;
		/* ":port" written: only when it is not the default */
		u->port_explicit = un.path_off > un.host_off + un.host_len + u->host_is_ip6;
		u->path.p = s + un.path_off;
		u->path.n = un.len - un.path_off;
		u->path_is_default = 0;
	}
	c->host = conn_strndup(u->host.p, u->host.n);
	c->port = u->port;
	if (c->host == NULL)
		return -1;
	if (memchr(u->userinfo.p, ':', u->userinfo.n) != NULL) {
		/* A password (an ftp:// login): kept for the request line upstream only; every
		 * page, log line, cache key and rule sees the URL without it. u stays on url_full. */
		char *m = conn_strndup(s, un.len);
		if (m == NULL)
			return -1;
		c->url_full = s;
		c->url = m;
		if (url_password_mask(m, un.len, 0) == un.len)
			return -1; /* not found where the parser saw it: never keep it in c->url */
	}
	return 0;
}

/* Parse one request head from c->in. Returns 1 when something happened (a request started or
 * the connection is to close), 0 when more input is needed. */
static int
conn_parse_head(struct conn *c)
{
	struct worker *w = c->w;
	struct h1_limits lim;
	conn_limits(w->cfg, &lim);
	size_t head_len = 0;
	int status = 400;
	const char *reason = "bad request";
	if (buf_len(&c->in) == 0) {
		if (c->read_eof)
			conn_close(c);
		return 0;
	}
	int r = h1_head_complete(buf_head(&c->in), buf_len(&c->in), &c->scan, &head_len, &lim, 1,
	                         &status, &reason);
	if (r == H1_AGAIN && !c->read_eof)
		return 0;

	/* A request starts here: it will get a log line whatever happens. */
	c->in_req = 1;
	c->logged = 0;
	c->cfg = cfg_ref(w->cfg);
	c->t_start_us = ev_wall_us(w->loop);
	c->t_start_ms = ev_now(w->loop);
	conn_req_id_new(c);
	ev_timer_stop(&c->tmo);
	if (r == H1_AGAIN) { /* EOF in the middle of a head */
		c->close_after = 1;
		conn_local_page(c, 400, "NONE", NULL, "incomplete request head");
		return 1;
	}
	if (r == H1_ERR) {
		c->close_after = 1;
		conn_local_page(c, status, "NONE", NULL, "%s", reason);
		return 1;
	}
	c->scan = 0;

	struct h1_head *h = &w->scratch;
	r = h1_parse_request(buf_head(&c->in), head_len, h, &lim, &status, &reason);
	if (r != H1_OK) {
		c->close_after = 1;
		conn_local_page(c, status, "NONE", NULL, "%s", reason);
		return 1;
	}
	size_t ml = h->method_str.n < sizeof(c->method_str) - 1 ? h->method_str.n : sizeof(c->method_str) - 1;
	memcpy(c->method_str, h->method_str.p, ml);
	c->method_str[ml] = '\0';
	c->method = h->method;
	c->minor = h->minor;
	c->is_head = h->method == H1_M_HEAD;
	c->expect_100 = (h->flags & H1_EXPECT_CONTINUE) != 0;
	if (h->flags & H1_CONN_CLOSE)
		c->close_after = 1;
	body_setup(&c->rq, h->framing, h->content_length,
	           h->framing == H1_BODY_CHUNKED ? BO_CHUNKED : BO_RAW);
	if (alog_needs(gh.alog) & LOGFMT_NEED_REQHEAD) {
		c->log_reqhead = conn_strndup(buf_head(&c->in), head_len);
		c->log_reqhead_len = c->log_reqhead ? head_len : 0;
		/* As the request line below: no password of a URL reaches the log (a Referer of
		 * the status page's explain form holds the URL the admin typed). */
		if (c->log_reqhead != NULL)
			c->log_reqhead_len = url_password_mask(c->log_reqhead, c->log_reqhead_len,
			                                       URL_MASK_EVERY);
	}
	if (c->cfg->access_log_format == CFG_LOG_COMBINED ||
	    (alog_needs(gh.alog) & LOGFMT_NEED_LINE)) {
		const char *eol = memchr(buf_head(&c->in), '\n', head_len);
		size_t n = eol ? (size_t)(eol - buf_head(&c->in)) : 0;
		while (n > 0 && (buf_head(&c->in)[n - 1] == '\r'))
			n--;
		c->request_line = conn_strndup(buf_head(&c->in), n);
		c->referer = conn_field_dup(h, H1_F_REFERER);
		c->user_agent = conn_field_dup(h, H1_F_USER_AGENT);
		/* kept for the log only: without the password of an ftp:// login, or of a URL
		 * in a query (the status page's explain form) or in the Referer */
		if (c->request_line != NULL)
			url_password_mask(c->request_line, n, URL_MASK_EVERY);
		if (c->referer != NULL)
			url_password_mask(c->referer, strlen(c->referer), URL_MASK_EVERY);
	}
	{
		/* For authentication (pauth.h), if a <Proxy> section asks for a user: a pointer
		 * into the head, copied only if routing must wait (conn_pa_keep). */
		const struct h1_field *pf = h1_field_get(h, H1_F_PROXY_AUTHORIZATION);
		if (pf != NULL) {
			c->pa_field = pf->value.p;
			c->pa_field_len = pf->value.n;
		}
	}

	int local = LOCAL_NONE;
	struct h1_url u;
	memset(&u, 0, sizeof(u));
	if (h->method == H1_M_CONNECT) {
		if (h1_authority_parse(h->target, &u, &reason) != H1_OK) {
			c->url = conn_strndup(h->target.p, h->target.n);
			c->close_after = 1;
			conn_local_page(c, 400, "NONE", NULL, "bad CONNECT target: %s", reason);
			return 1;
		}
		c->is_connect = 1;
	} else if (h->target.n > 0 && (h->target.p[0] == '/' || (h->target.n == 1 && h->target.p[0] == '*'))) {
		local = LOCAL_PAGE;
		c->url = conn_strndup(h->target.p, h->target.n);
	} else if (h1_url_parse(h->target, &u, &reason) != H1_OK) {
		c->url = conn_strndup(h->target.p, h->target.n < 512 ? h->target.n : 512);
		c->close_after = 1;
		conn_local_page(c, 400, "NONE", NULL, "bad request target: %s", reason);
		return 1;
	}
	if (!local) {
		/* From here on, c->url, c->host, c->port and u are the normalized URL (daemon/url.h):
		 * what the ACL, the policy and the cache judge is what goes upstream. */
		if (conn_url_normalize(c, h->target, &u, &reason) != 0) {
			if (c->url == NULL)
				c->url = conn_strndup(h->target.p, h->target.n < 512 ? h->target.n : 512);
			c->close_after = 1;
			if (reason == NULL)
				conn_local_page(c, 500, "NONE", NULL, "out of memory");
			else
				conn_local_page(c, 400, "NONE", NULL, "bad request target: %s", reason);
			return 1;
		}
		if (!c->is_connect && conn_is_self(c, &u)) {
			char *path = conn_strndup(u.path.p, u.path.n); /* u points into c->url */
			local = LOCAL_PAGE;
			free(c->url);
			c->url = path;
			if (c->url == NULL) {
				c->close_after = 1;
				conn_local_page(c, 500, "NONE", NULL, "out of memory");
				return 1;
			}
		}
	}
	if (!local && conn_hop_seen(h)) {
		buf_consume(&c->in, head_len);
		c->close_after |= c->rq.in != H1_BODY_NONE;
		conn_local_page(c, 508, "NONE", NULL, "forwarding loop: this request has already "
		                "passed through this proxy (CDN-Loop: %s); check ProxyRemote",
		                gh.hop_token);
		return 1;
	}
	if ((h->method == H1_M_OPTIONS || h->method == H1_M_TRACE) && h->max_forwards == 0)
		local = h->method == H1_M_OPTIONS ? LOCAL_OPTIONS : LOCAL_TRACE;
	if (local == LOCAL_PAGE && h->method == H1_M_OPTIONS)
		local = LOCAL_OPTIONS;
	if (local == LOCAL_TRACE) {
		/* TRACE answered here echoes the request head, minus credentials. */
		struct buf b;
		buf_init(&b, 128 * 1024);
		const char *eol = memchr(buf_head(&c->in), '\n', head_len);
		size_t n = eol ? (size_t)(eol - buf_head(&c->in)) + 1 : 0;
		buf_append(&b, buf_head(&c->in), n);
		for (size_t i = 0; i < h->nfields; i++) {
			const struct h1_field *f = &h->fields[i];
			if (f->id == H1_F_PROXY_AUTHORIZATION || f->id == H1_F_AUTHORIZATION ||
			    h1_str_ieq(f->name, "cookie"))
				continue;
			buf_printf(&b, "%.*s: %.*s\r\n", (int)f->name.n, f->name.p, (int)f->value.n, f->value.p);
		}
		buf_append(&b, "\r\n", 2);
		c->uphead = b.data;
		c->uphead_len = buf_len(&b);
	} else if (!local && !c->is_connect) {
		/* ftp:// is routed like http:// (ProxyBlock, NoProxy, ProxyRemote "ftp") and goes to
		 * a parent as an HTTP proxy request, or direct through the FTP gateway (the "ftp"
		 * stream of up.c). Userinfo is part of an ftp URL (the FTP login). https:// too
		 * (ProxyRemote "https"): absolute form to a parent, or TLS to the origin. */
		c->is_ftp = u.scheme == H1_SCHEME_FTP;
		c->is_https = u.scheme == H1_SCHEME_HTTPS;
		if (u.scheme != H1_SCHEME_HTTP && !c->is_ftp && !c->is_https) {
			buf_consume(&c->in, head_len);
			c->close_after |= c->rq.in != H1_BODY_NONE;
			conn_local_page(c, 501, "NONE", NULL, "%.*s:// URLs are not supported by this proxy",
			                (int)u.scheme_str.n, u.scheme_str.p);
			return 1;
		}
		if (u.userinfo.n > 0 && !c->is_ftp) {
			c->close_after = 1;
			conn_local_page(c, 400, "NONE", NULL, "user information in http URLs is not allowed");
			return 1;
		}
		if (conn_build_uphead(c, h, &u) < 0) {
			c->close_after = 1;
			conn_local_page(c, 431, "NONE", NULL, "request head too large to forward");
			return 1;
		}
	}
	c->local_kind = local;
	if (local == LOCAL_PAGE) {
		int oom = 0;
		c->src = status_open(w, c->cfg, c->url, h, &c->peer, c->peer_text, &oom);
		if (oom) {
			c->close_after = 1;
			conn_local_page(c, 500, "NONE", NULL, "out of memory");
			return 1;
		}
		c->local_host = conn_field_dup(h, H1_F_HOST);
		const struct h1_field *inm = h1_field_find(h, "if-none-match", 13);
		c->inm = inm ? conn_strndup(inm->value.p, inm->value.n) : NULL;
	}
	buf_consume(&c->in, head_len);
	conn_route(c);
	return 1;
}

/* ---- routing: access control, local answers, name resolution, upstream ---- */

static void
conn_kick(struct conn *c)
{
	/* Called from resolver/connect callbacks: drive unless a drive is already on the stack
	 * (c-ares may answer synchronously), in which case that drive sees the new state. */
	if (!c->in_drive)
		conn_drive(c);
}

static void
conn_name_cb(void *arg, const char *name)
{
	struct conn *c = arg;
	if (c->magic != CONN_MAGIC)
		return;
	c->dnsq = NULL;
	free(c->client_name);
	c->client_name = strdup(name ? name : "");
	if (c->client_name == NULL) {
		conn_local_page(c, 500, "NONE", NULL, "out of memory");
	} else {
		c->phase = CP_HEAD;
		conn_route(c);
	}
	conn_kick(c);
}

/* Before writing a local answer's head: an unread request body means the connection must
 * close, and the head must say so. */
static void
conn_local_begin(struct conn *c)
{
	if (c->rq.in != H1_BODY_NONE && !c->rq.done)
		c->close_after = 1;
}

/* ---- response sources (rsrc.h): the connection writes the head, pumps the body ---- */

#define CONN_SRC_SLICE (64 * 1024) /* body bytes asked of a source per call */

static void
conn_source_wake(void *arg)
{
	struct conn *c = arg;
	if (c->magic == CONN_MAGIC && !c->dead)
		conn_kick(c);
}

/* Hand the request to c->src: the drive steps it (conn_source_step) in CP_SOURCE. The client
 * sends its body, or takes the answer, within Timeout of its last byte (conn_tmo_cb). */
static void
conn_source_start(struct conn *c)
{
	c->phase = CP_SOURCE;
	rsrc_set_wake(c->src, conn_source_wake, c);
	c->last_client = ev_now(c->w->loop);
	ev_timer_start(c->w->loop, &c->tmo, c->cfg->timeout_ms);
}

/* Queue the head a source gave. -1 when the output has no room for it yet. */
static int
conn_source_head(struct conn *c, const struct rsrc_head *h)
{
	size_t need = strlen(h->fields) + (h->ctype ? strlen(h->ctype) : 0) + strlen(h->reason) + 512;
	if (buf_room(&c->out) < need)
		return -1;
	if (c->src->ops->flags & RSRC_F_READS_BODY)
		c->rq.done = 1; /* read by the source, or left with close_after set */
	else
		conn_local_begin(c);
	size_t before = buf_len(&c->out);
	buf_printf(&c->out, "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: Gatehouse/%s\r\n", h->status,
	           h->reason, worker_http_date(c->w), GH_VERSION);
	if (h->ctype != NULL)
		buf_printf(&c->out, "Content-Type: %s\r\n", h->ctype);
	if (h->length != RSRC_NO_BODY)
		buf_printf(&c->out, "Content-Length: %" PRId64 "\r\n", h->length);
	buf_printf(&c->out, "%sGatehouse-Request-Id: %s\r\n%s\r\n", h->fields, c->req_id,
	           c->close_after ? "Connection: close\r\n" : "");
	conn_log_keep_resp(c, before);
	c->bytes_out += buf_len(&c->out) - before;
	c->status = h->status;
	c->action = "NONE";
	if (h->log_ctype != NULL)
		conn_set_ctype(c, h->log_ctype, strlen(h->log_ctype));
	c->rs_started = 1;
	c->src_head_done = 1;
	c->src_body = !c->is_head && h->length != RSRC_NO_BODY;
	return 0;
}

/* One step of CP_SOURCE: the head once the source knows it, then body bytes while the client's
 * output is under HIGH_WATER; at the end, count and finish the request. Returns progress. */
static int
conn_source_step(struct conn *c)
{
	struct rsrc *s = c->src;
	struct rsrc_io io = { .in = &c->in, .out = &c->out, .read_eof = c->read_eof,
	                      .is_head = c->is_head, .close_after = c->close_after };
	int progress = 0;
	if (!c->src_head_done) {
		struct rsrc_head h;
		memset(&h, 0, sizeof(h));
		int r = s->ops->head(s, &io, &h);
		c->close_after = io.close_after;
		c->bytes_out += io.bytes_out;
		if (r != RSRC_END)
			return r == RSRC_PROGRESS;
		if (conn_source_head(c, &h) < 0)
			return io.bytes_out > 0; /* asked again once the output drains */
		progress = 1;
	}
	while (c->src_body && buf_len(&c->out) < HIGH_WATER) {
		io.bytes_out = 0;
		io.room = buf_room(&c->out) < CONN_SRC_SLICE ? buf_room(&c->out) : CONN_SRC_SLICE;
		int r = s->ops->body(s, &io);
		c->bytes_out += io.bytes_out;
		c->body_out += io.bytes_out;
		if (r == RSRC_END)
			c->src_body = 0;
		else if (r == RSRC_WAIT)
			break;
		progress = 1;
	}
	if (c->src_body)
		return progress;
	if (c->status >= 500)
		c->w->st.errors_5xx++;
	else if (c->status >= 400)
		c->w->st.errors_4xx++;
	c->w->st.responses_local++;
	conn_req_done(c);
	return 1;
}

/* OPTIONS, TRACE, the PAC file, or a 404 for another path (local.h): after the access check. */
static void
conn_local_answer(struct conn *c)
{
	struct local_req r = {
		.kind = c->local_kind, .method = c->method, .path = c->url, .host = c->local_host,
		.inm = c->inm, .trace = c->uphead, .trace_len = c->uphead_len, .local = &c->local,
		.cfg = c->cfg, .room = buf_room(&c->out),
	};
	struct rsrc_refusal ref;
	c->src = local_open(&r, &ref);
	if (c->src == NULL) {
		conn_local_page(c, ref.status, "NONE", ref.fields, "%s", ref.msg);
		return;
	}
	conn_source_start(c);
}

static void conn_resolved_cb(void *arg, int status, const struct res_addrs *addrs);
static void conn_decide(struct conn *c);
static void conn_go_direct(struct conn *c);
static void conn_next_parent(struct conn *c);
static void conn_connect_upstream(struct conn *c);

/* A helper answered (pauth.h PAUTH_WAIT): route again, which asks pauth_identify again. */
static void
conn_auth_wake(void *arg)
{
	struct conn *c = arg;
	if (c->magic != CONN_MAGIC || c->dead || c->phase != CP_AUTH)
		return;
	c->phase = CP_HEAD;
	conn_route(c);
	conn_kick(c);
}

/* The request proved c->pa.user: its name for the logs, one word in the Squid and combined
 * formats (what would split it is %-escaped). */
static void
conn_log_user(struct conn *c)
{
	size_t k = 0;
	for (const unsigned char *p = (const unsigned char *)c->pa.user;
	     *p && k + 4 < sizeof(c->log_user); p++) {
		if (*p <= 0x20 || *p == 0x7f || *p == '%' || *p == '"' || *p == '\\')
			k += (size_t)snprintf(c->log_user + k, sizeof(c->log_user) - k, "%%%02X", *p);
		else
			c->log_user[k++] = (char)*p;
	}
	c->log_user[k] = '\0';
	c->req_user = c->log_user;
}

/* Routing is about to wait (a reverse lookup, a helper, the verifier thread): the
 * Proxy-Authorization value must outlive the head it points into, whose buffer is released
 * to the pool while the connection waits and may hold another client's head when it wakes
 * (test_auth_core ..._waiting_for_the_helper_are_its_own). 0, or -1 when memory is short. */
static int
conn_pa_keep(struct conn *c)
{
	if (c->pa_field == NULL || c->pa_owned != NULL)
		return 0;
	c->pa_owned = conn_strndup(c->pa_field, c->pa_field_len);
	if (c->pa_owned == NULL)
		return -1;
	c->pa_field = c->pa_owned;
	return 0;
}

/* The request needs a user (POL_NEED_USER): authenticate with its Proxy-Authorization.
 * Returns 1 when who->user is set (decide again), 0 when an answer was queued or a helper
 * was asked (CP_AUTH). */
static int
conn_authenticate(struct conn *c, const struct pauth_cfg *authn, const struct pol_why *why,
                  struct who *who)
{
	struct worker *w = c->w;
	if (authn == NULL) {
		/* The loader refuses user terms without authentication: a broken config. */
		conn_local_page(c, 403, "TCP_DENIED", NULL, "access to %s denied: a user is "
		                "required but no authentication is configured", c->url);
		return 0;
	}
	if (!authn->basic && !authn->negotiate) {
		/* AuthType None in force (a later section switched off what <Proxy *> set up) and
		 * a rule of another section wants a user: nobody can be asked. The loader refuses
		 * this within one section; across sections it is the request's 403, as Apache
		 * refuses (with a 500) rather than asking. */
		c->pol_rule = why ? why->full : NULL;
		c->page_where = authn->where;
		conn_local_page(c, 403, "TCP_DENIED", NULL, "access to %s denied: %s needs a user, "
		                "and authentication is off here (AuthType None)", c->url,
		                why ? why->text : "a Require line");
		return 0;
	}
	struct pauth_req r;
	memset(&r, 0, sizeof(r));
	r.cfg = authn;
	r.field = c->pa_field;
	r.field_len = c->pa_field_len;
	r.addr = (const struct sockaddr *)&c->peer;
	r.addr_text = c->peer_text;
	r.now_ms = (int64_t)(ev_wall_us(w->loop) / 1000);
	r.wake = conn_auth_wake;
	r.wake_arg = c;
	c->phase = CP_AUTH; /* before the call: the wake may come inside it */
	enum pauth_res res = pauth_identify(w->pauth, w->pauth_wk, &c->pa, &r, who);
	if (res == PAUTH_WAIT) {
		/* conn_auth_wake routes again, later (unless it already ran inside the call: then
		 * the phase moved on and the head was still in place) */
		if (c->phase == CP_AUTH && conn_pa_keep(c) != 0) {
			c->phase = CP_HEAD;
			c->close_after = 1; /* closing cancels the helper request (pauth_conn_fini) */
			conn_local_page(c, 500, "TCP_DENIED", NULL, "out of memory");
		}
		return 0;
	}
	c->phase = CP_HEAD;
	char fields[1024];
	switch (res) {
	case PAUTH_OK:
		conn_log_user(c);
		return 1;
	case PAUTH_CHALLENGE:
		if (pauth_challenge(authn, &c->pa, fields, sizeof(fields)) == 0)
			fields[0] = '\0';
		conn_local_page(c, 407, "TCP_DENIED", fields, "%s", r.msg);
		return 0;
	case PAUTH_LIMITED:
		snprintf(fields, sizeof(fields), "Retry-After: %u\r\n", r.retry_s ? r.retry_s : 1);
		conn_local_page(c, 429, "TCP_DENIED", fields, "%s", r.msg);
		return 0;
	case PAUTH_UNAVAILABLE:
	default:
		conn_local_page(c, 503, "TCP_DENIED", NULL, "proxy authentication is unavailable: %s",
		                r.msg[0] ? r.msg : "the authentication helper cannot answer");
		return 0;
	}
}

static void
conn_route(struct conn *c)
{
	struct worker *w = c->w;
	const struct pol_why *why = NULL;
	if (c->src != NULL) {
		/* a source chosen with the head (the status page): its own access rules, not the
		 * <Proxy> sections (Apache applies <Proxy> to proxied requests only) */
		conn_source_start(c);
		return;
	}
	/* Who is asking (pol.h): the PAC file and WPAD stay reachable without credentials, as
	 * browsers fetch them before they can authenticate. */
	struct who who = {
		.addr = (const struct sockaddr *)&c->peer, .name = c->client_name,
		.exempt = c->local_kind == LOCAL_PAGE && local_pac_path(c->url),
	};
	const void *authn = NULL;
	/* A request repeating its connection's accepted credential is decided once, with the
	 * user; if another section's settings turn out to be in force, once more without. */
	int known = c->pa_field != NULL &&
	            pauth_conn_repeat(w->pauth, &c->pa, c->pa_field, c->pa_field_len,
	                              (int64_t)(ev_wall_us(w->loop) / 1000), &who);
	enum pol_verdict v = pol_acl_decide(c->cfg->acl, c->method_str, c->url, strlen(c->url),
	                                    &who, &why, &authn);
	if (known && !pauth_conn_under(&c->pa, authn)) {
		who.user = NULL;
		who.groups = NULL;
		who.ngroups = 0;
		known = 0;
		why = NULL;
		v = pol_acl_decide(c->cfg->acl, c->method_str, c->url, strlen(c->url), &who, &why,
		                   &authn);
	}
	if (known)
		conn_log_user(c);
	if (v == POL_NEED_USER) {
		if (!conn_authenticate(c, authn, why, &who))
			return;
		why = NULL;
		v = pol_acl_decide(c->cfg->acl, c->method_str, c->url, strlen(c->url), &who, &why,
		                   &authn);
		if (v == POL_NEED_USER) { /* cannot happen with a user set; never a loop */
			conn_local_page(c, 403, "TCP_DENIED", NULL, "access to %s denied", c->url);
			return;
		}
	}
	if (v == POL_NEED_NAME) {
		if (conn_pa_keep(c) != 0) {
			conn_local_page(c, 500, "NONE", NULL, "out of memory");
			return;
		}
		c->phase = CP_NAME; /* before the call: the callback may run inside it */
		struct res_query *q = res_reverse(w->res, (const struct sockaddr *)&c->peer, conn_name_cb, c);
		if (c->phase == CP_NAME && q != NULL)
			c->dnsq = q;
		return;
	}
	if (v != POL_ALLOW) {
		/* The rule's words on the page, its FILE:LINE in the error log only. */
		c->pol_rule = why->full;
		c->page_where = *why->where ? why->where : NULL;
		if (who.user != NULL)
			conn_local_page(c, 403, "TCP_DENIED", NULL, "access to %s denied to user %s by %s",
			                c->url, who.user, why->text);
		else
			conn_local_page(c, 403, "TCP_DENIED", NULL, "access to %s denied by %s", c->url,
			                why->text);
		return;
	}
	if (c->local_kind != LOCAL_NONE) {
		conn_local_answer(c);
		return;
	}
	if (!c->cfg->proxy_requests) {
		conn_local_page(c, 403, "TCP_DENIED", NULL,
		                "this server does not act as a proxy (ProxyRequests Off)");
		return;
	}
	if (c->is_connect && !pol_ports_has(c->cfg->allow_connect, c->port)) {
		conn_local_page(c, 403, "TCP_DENIED", NULL,
		                "CONNECT to port %u is not allowed by AllowCONNECT", c->port);
		return;
	}
	(void)w;
	conn_decide(c);
}

/* ---- intranet policy: ProxyDomain, ProxyBlock, NoProxy, ProxyRemote (policy/pol.h) ---- */

static void
conn_set_ports(struct res_addrs *a, unsigned port)
{
	for (unsigned i = 0; i < a->n; i++) {
		struct sockaddr_storage *ss = &a->a[i];
		if (ss->ss_family == AF_INET)
			((struct sockaddr_in *)ss)->sin_port = htons(port);
		else
			((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	}
}

/* Look the target up, then decide again (the callback may run before this returns). */
static void
conn_resolve_target(struct conn *c)
{
	c->phase = CP_RESOLVE;
	struct res_query *q = res_lookup(c->w->res, c->host, conn_resolved_cb, c);
	if (c->phase == CP_RESOLVE && q != NULL && c->dnsq == NULL)
		c->dnsq = q;
}

static void
conn_resolved_cb(void *arg, int status, const struct res_addrs *addrs)
{
	struct conn *c = arg;
	if (c->magic != CONN_MAGIC)
		return;
	c->dnsq = NULL;
	c->resolved = 1;
	c->dns_status = status;
	if (status == RES_OK) {
		c->addrs = *addrs;
		conn_set_ports(&c->addrs, c->port);
	} else {
		c->addrs.n = 0;
	}
	if (c->forced_direct)
		conn_go_direct(c);
	else
		conn_decide(c);
	conn_kick(c);
}

/* Connect to the origin with the resolved addresses (or say why there are none). */
static void
conn_go_direct(struct conn *c)
{
	c->via_parent = NULL;
	if (!c->resolved) {
		conn_resolve_target(c);
		return;
	}
	if (c->addrs.n == 0) {
		conn_local_page(c, c->dns_status == RES_TIMEOUT ? 504 : 502, "TCP_MISS", NULL,
		                "DNS lookup for %s failed: %s", c->host, res_strerror(c->dns_status));
		return;
	}
	conn_connect_upstream(c);
}

/* ---- the cache (cachereq.c): consulted after the ACL and the policy, before DNS ---- */

/* Queue the head of the stored response of c->cq. Returns 0, or -1 when the request was
 * aborted. */
static int
conn_cache_head(struct conn *c)
{
	struct worker *w = c->w;
	c->action = cachereq_action(c->cq);
	if (c->rq.in != H1_BODY_NONE && !c->rq.done)
		c->close_after = 1; /* the unread request body would desynchronise the stream */
	if (c->cfg->max_keepalive_requests && c->nreq + 1 >= c->cfg->max_keepalive_requests)
		c->close_after = 1;
	if (w->stopping)
		c->close_after = 1;
	size_t before = buf_len(&c->out);
	int status = 0;
	int rc = cachereq_serve_head(c->cq, &c->out, c->is_head, &status, c->ctype,
	                             sizeof(c->ctype));
	if (cachereq_close_delimited(c->cq))
		c->close_after = 1; /* a collapsed HTTP/1.0 client of a body without length */
	conn_put_via(c, &c->out);
	if (c->close_after)
		rc |= buf_append(&c->out, "Connection: close\r\n", 19);
	else if (c->minor == 0)
		rc |= buf_append(&c->out, "Connection: keep-alive\r\n", 24);
	rc |= buf_append(&c->out, "\r\n", 2);
	conn_log_keep_resp(c, before);
	c->bytes_out += buf_len(&c->out) - before;
	c->status = status;
	c->rs_started = 1;
	if (rc != 0) {
		conn_abort(c, "the cached response head does not fit the output buffer");
		return -1;
	}
	return 0;
}

/* Start serving the stored response of c->cq: the head now, the body from conn_cache_pump as
 * the client drains. */
static void
conn_cache_serve(struct conn *c)
{
	c->phase = CP_CACHE;
	if (conn_cache_head(c) < 0)
		return;
	c->last_client = ev_now(c->w->loop);
	ev_timer_start(c->w->loop, &c->tmo, c->cfg->timeout_ms);
}

/* Collapsed forwarding: another request's fill woke this one (cachereq.c). The drive runs
 * from the loop, not inside the other connection's processing. */
static void
conn_cache_wake_deferred(struct ev_loop *loop, void *arg)
{
	(void)loop;
	struct conn *c = arg;
	if (c->magic != CONN_MAGIC || c->dead)
		return;
	c->cq_wake = 0;
	if (c->phase == CP_CACHE)
		conn_drive(c);
}

static void
conn_cache_wake(void *arg)
{
	struct conn *c = arg;
	if (c->magic != CONN_MAGIC || c->dead || c->cq_wake)
		return;
	c->cq_wake = 1;
	if (ev_defer(c->w->loop, conn_cache_wake_deferred, c) < 0)
		c->cq_wake = 0;
}

/* Move stored body chunks to the client while its buffer has room. */
static int
conn_cache_pump(struct conn *c)
{
	int progress = 0;
	for (int i = 0; i < 8 && buf_len(&c->out) < HIGH_WATER; i++) {
		size_t moved = 0;
		int r = cachereq_serve_body(c->cq, &c->out, &moved);
		c->bytes_out += moved;
		c->body_out += moved;
		if (r < 0) {
			conn_abort(c, "the cached entry went away while it was being served");
			return 1;
		}
		if (r == 2) {
			conn_req_done(c);
			return 1;
		}
		if (r == 3) { /* collapsed: the fill we wait on has its head */
			if (conn_cache_head(c) < 0)
				return 1;
			progress = 1;
			continue;
		}
		if (r == 4) { /* collapsed: the fill we waited on is not usable, forward */
			c->action = cachereq_action(c->cq);
			conn_decide(c);
			return 1;
		}
		if (r == 0)
			break;
		progress = 1;
	}
	return progress;
}

/* stale-while-revalidate: the refresh is an internal request on this worker, from the same
 * client address (so the ACL decides as for the client) over a socketpair whose far end only
 * drains the answer. Its cache work revalidates the entry (client max-age=0). */
#define SWR_MAGIC 0x5e1f4e57u
struct conn_swr {
	unsigned magic;
	int fd;
	struct ev_io io;
	struct worker *w;
};

static void
conn_swr_free(struct ev_loop *loop, void *arg)
{
	(void)loop;
	struct conn_swr *s = arg;
	s->magic = 0;
	free(s);
}

static void
conn_swr_io_cb(struct ev_io *io, unsigned revents)
{
	struct conn_swr *s = io->arg;
	char sink[16384];
	(void)revents;
	if (s->magic != SWR_MAGIC || s->fd < 0)
		return;
	for (int i = 0; i < 64; i++) {
		ssize_t n = recv(s->fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		ev_io_stop(&s->io); /* the answer ended (or failed): done */
		close(s->fd);
		s->fd = -1;
		if (ev_defer(s->w->loop, conn_swr_free, s) < 0)
			log_error("out of memory deferring a refresh free; leaking it");
		return;
	}
}

static void
conn_swr_spawn(struct conn *c)
{
	char *req = NULL;
	size_t len = 0;
	int sv[2];
	if (c->w->stopping || cachereq_refresh_request(c->cq, c->url, &req, &len) < 0)
		return;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
		free(req);
		return;
	}
	ssize_t n = send(sv[1], req, len, MSG_NOSIGNAL);
	free(req);
	struct conn_swr *s = n == (ssize_t)len ? calloc(1, sizeof(*s)) : NULL;
	if (s != NULL) {
		s->magic = SWR_MAGIC;
		s->fd = sv[1];
		s->w = c->w;
		ev_io_init(&s->io, sv[1], conn_swr_io_cb, s);
	}
	if (s == NULL || ev_io_set(c->w->loop, &s->io, EV_READ) < 0) {
		close(sv[0]);
		close(sv[1]);
		free(s);
		return;
	}
	log_info("[id %s] %s: %s: stale-while-revalidate: refreshing in the background", c->req_id,
	         c->peer_text, c->url);
	/* conn_new, not conn_accept: the refresh is the proxy's, not one of the client's
	 * connections (MaxConnectionsPerClient). */
	struct conn *ic = conn_new(c->w, sv[0], &c->peer, &c->local);
	if (ic != NULL)
		ic->background = 1;
}

/* Returns 1 when the cache answered (stored response or local answer), 0 to forward (maybe
 * as a revalidation with the head cachereq built). */
static int
conn_cache_consult(struct conn *c)
{
	c->cq_checked = 1;
	if (c->is_connect || c->up_method == NULL || c->uphead == NULL)
		return 0;
	int status = 0;
	enum cachereq_verdict v = cachereq_begin(&c->cq, c->w->id, c->cfg, c->method_str, c->url,
	                                         c->uphead, c->uphead_len, &status);
	if (c->background && c->cq != NULL)
		cachereq_set_background(c->cq);
	if (v == CQ_LOCAL) {
		const char *hdr = cachereq_status_line(c->cq);
		if (status == 504)
			conn_local_page(c, 504, cachereq_action(c->cq), hdr,
			                "%s is not in the cache (only-if-cached)", c->url);
		else if (status == 200)
			conn_local_page(c, 200, "NONE", hdr, "%s purged from the cache", c->url);
		else
			conn_local_page(c, 404, "NONE", hdr, "%s is not in the cache", c->url);
		return 1;
	}
	if (v == CQ_SERVE) {
		conn_swr_spawn(c);
		conn_cache_serve(c);
		return 1;
	}
	if (v == CQ_WAIT) {
		c->phase = CP_CACHE;
		cachereq_set_wake(c->cq, conn_cache_wake, c);
		cachereq_set_minor(c->cq, c->minor);
		c->last_client = ev_now(c->w->loop);
		ev_timer_start(c->w->loop, &c->tmo, c->cfg->timeout_ms);
		conn_cache_wake(c); /* the fill may have its head already */
		return 1;
	}
	size_t n = 0;
	char *uh = cachereq_take_uphead(c->cq, &n);
	if (uh != NULL) {
		free(c->uphead_orig);
		c->uphead_orig = c->uphead;
		c->uphead_orig_len = c->uphead_len;
		c->uphead = uh;
		c->uphead_len = n;
	}
	return 0;
}

/* ---- waiting for the blocked-address set (pol.h POL_WAIT) ----
 * At start and after a reload that adds ProxyBlock names, their addresses are not known yet.
 * A request that would need them is parked (no polling): the policy resolver marks the policy
 * ready once the set holds every name's first answer and wakes the worker, which decides the
 * parked requests again (conn_polwait_wake). After DNSTimeout the request fails closed: 503,
 * as for a DNS failure of the proxy itself; a 403 would claim a block nobody decided. */

static void
conn_polwait_park(struct conn *c)
{
	struct worker *w = c->w;
	c->phase = CP_POLWAIT;
	c->pw_prev = NULL;
	c->pw_next = w->polwait;
	if (w->polwait)
		w->polwait->pw_prev = c;
	w->polwait = c;
	c->pw_linked = 1;
	ev_timer_start(w->loop, &c->tmo, c->cfg->dns.timeout_ms);
}

static void
conn_polwait_leave(struct conn *c)
{
	if (!c->pw_linked)
		return;
	if (c->pw_prev)
		c->pw_prev->pw_next = c->pw_next;
	else
		c->w->polwait = c->pw_next;
	if (c->pw_next)
		c->pw_next->pw_prev = c->pw_prev;
	c->pw_next = c->pw_prev = NULL;
	c->pw_linked = 0;
	ev_timer_stop(&c->tmo);
}

void
conn_polwait_wake(struct worker *w)
{
	struct conn *c = w->polwait, *next;
	for (; c != NULL; c = next) {
		next = c->pw_next;
		if (c->magic != CONN_MAGIC || c->dead || !pol_block_ready(c->cfg->pol))
			continue;
		conn_polwait_leave(c);
		conn_decide(c);
		conn_kick(c);
	}
}

static void
conn_polwait_timeout(struct conn *c)
{
	conn_polwait_leave(c);
	conn_local_page(c, 503, "NONE", "Retry-After: 5\r\n",
	                "cannot decide whether %s is blocked: %s (no DNS answer for them within "
	                "DNSTimeout, %u ms)", c->url, c->dec.why->text, c->cfg->dns.timeout_ms);
}

static void
conn_decide(struct conn *c)
{
	struct worker *w = c->w;
	struct pol_req pr = {
		.method = c->up_method ? c->up_method : c->method_str,
		.scheme = c->is_connect || c->is_https ? "https" : c->is_ftp ? "ftp" : "http",
		.host = c->host,
		.port = c->port,
		.url = c->url,
		.resolved = c->resolved,
		.addrs = c->addrs.a,
		.naddrs = c->resolved ? c->addrs.n : 0,
	};
	struct pol_decision *d = &c->dec;
	enum pol_action a = pol_decide(c->cfg->pol, &pr, polres_blocked(gh.polres),
	                               polres_noproxy(gh.polres), w->locbuf, w->loclen, d);
	c->pol_rule = d->rule;
	/* Pages show the rule's words (d->why->text); its FILE:LINE goes to the error log. */
	c->page_where = *d->why->where ? d->why->where : NULL;
	switch (a) {
	case POL_INVALID:
		conn_local_page(c, 400, "NONE", NULL, "cannot route %s: %s", c->url, d->why->text);
		return;
	case POL_BLOCK:
		conn_local_page(c, 403, "TCP_DENIED", NULL, "%s is blocked by %s", c->host,
		                d->why->text);
		return;
	case POL_WAIT:
		conn_polwait_park(c);
		return;
	case POL_REDIRECT: {
		char hdr[64 * 1024 + 300];
		snprintf(hdr, sizeof(hdr), "Location: %.*s\r\n", (int)d->location_len, d->location);
		conn_local_page(c, 301, "NONE", hdr, "moved to %.*s (%s)", (int)d->location_len,
		                d->location, d->why->text);
		return;
	}
	default:
		break;
	}
	if (d->need_addrs && !c->resolved) {
		conn_resolve_target(c);
		return;
	}
	if (!c->cq_checked && conn_cache_consult(c))
		return;
	if (a == POL_DIRECT) {
		conn_go_direct(c);
		return;
	}
	c->npar = d->nparents;
	memcpy(c->par, d->parents, sizeof(d->parents[0]) * d->nparents);
	c->par_fallback = d->fallback_direct;
	c->par_i = 0;
	c->par_errs[0] = '\0';
	conn_next_parent(c);
}

static void
conn_parent_note(struct conn *c, const struct pol_parent *pp, const char *why)
{
	size_t n = strlen(c->par_errs);
	snprintf(c->par_errs + n, sizeof(c->par_errs) - n, "%s%s (%s)", n ? ", " : "", pp->key,
	         why);
}

static void
conn_parent_resolved_cb(void *arg, int status, const struct res_addrs *addrs)
{
	struct conn *c = arg;
	if (c->magic != CONN_MAGIC)
		return;
	c->dnsq = NULL;
	const struct pol_parent *pp = c->via_parent;
	if (status != RES_OK) {
		char why[128];
		snprintf(why, sizeof(why), "DNS lookup failed: %s", res_strerror(status));
		struct health *hh = health_get(pp->key);
		health_fail(hh, ev_now(c->w->loop));
		health_note(hh, why);
		conn_parent_note(c, pp, why);
		c->par_i++;
		conn_next_parent(c);
	} else {
		c->paddrs = *addrs;
		conn_set_ports(&c->paddrs, pp->port);
		conn_connect_upstream(c);
	}
	conn_kick(c);
}

/* Try the next parent of the failover list that is not marked down; when none is left, go
 * direct if ProxyRemoteFallback allows it, else answer 502 naming every parent. */
static void
conn_next_parent(struct conn *c)
{
	uint64_t now = ev_now(c->w->loop);
	while (c->par_i < c->npar) {
		const struct pol_parent *pp = c->par[c->par_i];
		if (health_is_down(health_get(pp->key), now)) {
			conn_parent_note(c, pp, "marked down");
			c->par_i++;
			continue;
		}
		c->via_parent = pp;
		c->phase = CP_RESOLVE;
		struct res_query *q = res_lookup(c->w->res, pp->host, conn_parent_resolved_cb, c);
		if (c->phase == CP_RESOLVE && q != NULL && c->dnsq == NULL)
			c->dnsq = q;
		return;
	}
	c->via_parent = NULL;
	if (c->par_fallback) {
		log_info("[id %s] %s: every parent for %s is down (%s): going direct "
		         "(ProxyRemoteFallback)", c->req_id, c->peer_text, c->url, c->par_errs);
		c->forced_direct = 1;
		conn_go_direct(c);
		return;
	}
	conn_local_page(c, 502, "TCP_MISS", NULL, "no parent proxy is available for %s: %s", c->url,
	                c->par_errs);
}

static void
conn_connect_upstream(struct conn *c)
{
	struct worker *w = c->w;
	char key[300];
	const struct res_addrs *addrs = &c->addrs;
	/* Pool keys: what a connection is, so that one is never reused for another kind (a TLS
	 * connection for a plain one, the FTP gateway's for HTTP). */
	const char *tls_host = NULL;
	const char *fmt = strchr(c->host, ':') ? "%s[%s]:%u" : "%s%s:%u";
	if (c->via_parent) {
		const struct pol_parent *pp = c->via_parent;
		snprintf(key, sizeof(key), "parent|%s", pp->key); /* "https://" in a TLS one's */
		addrs = &c->paddrs;
		tls_host = pp->tls ? pp->host : NULL;
	} else if (c->is_ftp) {
		snprintf(key, sizeof(key), fmt, "ftp|", c->host, c->port);
	} else if (c->is_https) {
		snprintf(key, sizeof(key), fmt, "https|", c->host, c->port);
		tls_host = c->host;
	} else {
		snprintf(key, sizeof(key), fmt, "", c->host, c->port);
	}
	struct up *u = c->retried ? NULL : up_pool_take(w, key);
	if (u != NULL) {
		u->owner = c;
		proxy_up_connected_cb(c, u, NULL, 0);
		return;
	}
	c->phase = CP_CONNECT;
	u = up_connect(w, c, key, addrs, c->cfg->proxy_timeout_ms,
	               c->via_parent == NULL && c->is_ftp ? "ftp" : "http", c->cfg->tls, tls_host,
	               proxy_up_connected_cb);
	if (u == NULL)
		conn_local_page(c, 500, "NONE", NULL, "out of memory");
}

/* Queue the request line and header fields on a connected upstream: origin-form to an
 * origin, absolute-form (with the parent's credentials) to a parent, CONNECT to a parent for
 * a tunnel. */
static int
conn_send_uphead(struct conn *c, struct up *u)
{
	const struct pol_parent *pp = c->via_parent;
	int rc;
	if (c->is_connect) {
		rc = buf_printf(&u->out, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n", c->url, c->url);
		if (rc == 0 && pp->auth)
			rc = buf_printf(&u->out, "Proxy-Authorization: %s\r\n", pp->auth);
		if (rc == 0)
			rc = buf_printf(&u->out, "CDN-Loop: %s\r\n", gh.hop_token);
		if (rc == 0 && c->cfg->via != CFG_VIA_OFF && c->cfg->via != CFG_VIA_BLOCK)
			conn_put_via(c, &u->out);
		return rc == 0 ? buf_append(&u->out, "\r\n", 2) : -1;
	}
	const char *target = pp || u->absolute_form ? (c->url_full ? c->url_full : c->url) : c->up_path;
	rc = buf_printf(&u->out, "%s %s HTTP/1.1\r\n", c->up_method, target);
	if (rc == 0 && pp && pp->auth)
		rc = buf_printf(&u->out, "Proxy-Authorization: %s\r\n", pp->auth);
	if (rc == 0 && pp) /* loop detection: conn_hop_seen */
		rc = buf_printf(&u->out, "CDN-Loop: %s\r\n", gh.hop_token);
	return rc == 0 ? buf_append(&u->out, c->uphead, c->uphead_len) : -1;
}

static void
conn_start_tunnel(struct conn *c)
{
	struct worker *w = c->w;
	c->phase = CP_TUNNEL;
	c->status = 200;
	c->action = "TCP_TUNNEL";
	w->st.tunnels++;
	w->st.tunnels_open++;
	size_t before = buf_len(&c->out);
	buf_append(&c->out, "HTTP/1.1 200 Connection established\r\n\r\n", 39);
	conn_log_keep_resp(c, before);
	c->bytes_out += 39;
	c->rs_started = 1;
	ev_timer_start(w->loop, &c->tmo, c->cfg->proxy_timeout_ms);
}

static void
proxy_up_connected_cb(struct conn *c, struct up *u, const char *err, int how)
{
	if (c == NULL || c->magic != CONN_MAGIC) {
		if (u)
			up_close(u);
		return;
	}
	struct worker *w = c->w;
	const struct pol_parent *pp = c->via_parent;
	int timeout = how == UP_FAIL_TIMEOUT;
	if (err != NULL && how == UP_FAIL_LOCAL) {
		/* Out of descriptors or ports here: no parent is at fault and none is marked down;
		 * the next one would fail the same way. */
		conn_local_page(c, 503, "NONE", NULL, "%s", err);
		conn_kick(c);
		return;
	}
	if (err != NULL) {
		if (pp != NULL) {
			/* Mark the parent down for its backoff and fail over to the next one. */
			struct health *hh = health_get(pp->key);
			unsigned ms = health_fail(hh, ev_now(w->loop));
			health_note(hh, err);
			log_warn("[id %s] parent proxy %s%s:%u failed (%s); marked down for %u s",
			         c->req_id, pp->tls ? "https://" : "", pp->host, pp->port, err,
			         ms / 1000);
			conn_parent_note(c, pp, how == UP_FAIL_TLS ? err : timeout ? "timed out"
			                                                            : "refused");
			c->par_i++;
			conn_next_parent(c);
		} else {
			conn_local_page(c, timeout ? 504 : 502, "TCP_MISS", NULL, "%s", err);
		}
		conn_kick(c);
		return;
	}
	if (pp == NULL && u->nreq == 0 && cfg_listens_on(c->cfg, &u->addr)) {
		/* A name that resolves to this proxy: the request would come back to us, from our
		 * own address (and reach the status page with the proxy's rights). */
		char who[64];
		gh_addr_text(&u->addr, who, sizeof(who), 1);
		up_close(u);
		conn_local_page(c, 508, "NONE", NULL, "forwarding loop: %s is this proxy's own "
		                "listener", who);
		conn_kick(c);
		return;
	}
	c->up = u;
	u->owner = c;
	u->nreq++;
	c->up_eof = 0;
	c->up_got_bytes = 0;
	c->last_progress = c->last_client = c->last_up = ev_now(w->loop);
	if (pp != NULL) {
		health_ok(health_get(pp->key));
		c->hier = "FIRSTUP_PARENT";
		snprintf(c->up_peer, sizeof(c->up_peer), "%s", pp->host);
	} else {
		c->hier = "HIER_DIRECT";
		gh_addr_text(&u->addr, c->up_peer, sizeof(c->up_peer), 0);
	}
	if (c->is_connect && pp == NULL) {
		conn_start_tunnel(c);
	} else {
		/* HTTP exchange; a CONNECT through a parent waits for its answer here too. */
		c->phase = CP_EXCHANGE;
		c->action = c->is_connect ? "TCP_TUNNEL" : "TCP_MISS";
		if (conn_send_uphead(c, u) < 0 ||
		    (c->retried && buf_len(&c->replay) > 0 &&
		     buf_append(&u->out, buf_head(&c->replay), buf_len(&c->replay)) < 0)) {
			conn_local_page(c, 500, "NONE", NULL, "request head does not fit the upstream buffer");
			conn_kick(c);
			return;
		}
		/* On a reused connection keep what the body pump sends, for conn_up_gone */
		buf_fini(&c->replay);
		c->replay_ok = u->nreq > 1 && conn_method_idempotent(c->method);
		unsigned ct = c->cfg->timeout_ms, pt = c->cfg->proxy_timeout_ms;
		ev_timer_start(w->loop, &c->tmo, ct < pt ? ct : pt);
	}
	conn_kick(c);
}

/* ---- the exchange with the upstream ---- */

/* Abort the current request after its response started: the client sees a truncated body
 * (no last-chunk, or fewer bytes than Content-Length) and the connection closes. */
static void
conn_abort(struct conn *c, const char *why)
{
	log_info("[id %s] %s: %s: %s", c->req_id, c->peer_text, c->url ? c->url : "-", why);
	c->up_close = 1;
	c->close_after = 1;
	conn_req_done(c);
}

/* Fail the request with an error page if nothing was sent yet, else abort it. */
static void
conn_fail(struct conn *c, int status, const char *fmt, const char *arg1, const char *arg2)
{
	char msg[1024];
	snprintf(msg, sizeof(msg), fmt, arg1, arg2);
	c->up_close = 1;
	if (!c->rs_started)
		conn_local_page(c, status, "TCP_MISS", NULL, "%s", msg);
	else
		conn_abort(c, msg);
}

static void
conn_send_resp_head(struct conn *c, const struct h1_head *h)
{
	struct worker *w = c->w;
	struct buf *o = &c->out;
	size_t before = buf_len(o);
	int final = h->status >= 200;
	if (final) {
		c->status = h->status;
		if (h->flags & H1_CONN_CLOSE)
			c->up_close = 1;
		enum body_out bo = BO_RAW;
		if (h->framing == H1_BODY_CHUNKED || h->framing == H1_BODY_CLOSE) {
			if (c->minor >= 1)
				bo = BO_CHUNKED;
			else
				c->close_after = 1;
			if (h->framing == H1_BODY_CLOSE)
				c->up_close = 1;
		}
		body_setup(&c->rs, h->framing, h->content_length, bo);
		c->rs.tap = c->cq;
		if (c->cq)
			c->action = cachereq_action(c->cq);
		if (c->cfg->max_keepalive_requests && c->nreq + 1 >= c->cfg->max_keepalive_requests)
			c->close_after = 1;
		if (w->stopping)
			c->close_after = 1;
		const struct h1_field *ct = h1_field_get(h, H1_F_CONTENT_TYPE);
		if (ct)
			conn_set_ctype(c, ct->value.p, ct->value.n);
	}
	buf_printf(o, "HTTP/1.1 %d %.*s\r\n", h->status, (int)h->reason.n, h->reason.p);
	for (size_t i = 0; i < h->nfields; i++) {
		const struct h1_field *f = &h->fields[i];
		/* Content-Length is end-to-end framing even if Connection names it. */
		if (f->hop && f->id != H1_F_CONTENT_LENGTH)
			continue;
		buf_printf(o, "%.*s: %.*s\r\n", (int)f->name.n, f->name.p, (int)f->value.n, f->value.p);
	}
	if (final && c->rs.out == BO_CHUNKED)
		buf_append(o, "Transfer-Encoding: chunked\r\n", 28);
	if (final && h1_field_get(h, H1_F_DATE) == NULL) /* RFC 9110 6.6.1 */
		buf_printf(o, "Date: %s\r\n", worker_http_date(w));
	if (final && c->cq)
		buf_printf(o, "%s", cachereq_status_line(c->cq));
	if (c->cfg->via == CFG_VIA_ON || c->cfg->via == CFG_VIA_FULL) {
		int m = c->minor;
		c->minor = h->minor; /* Via names the protocol received from the upstream */
		conn_put_via(c, o);
		c->minor = m;
	}
	if (final) {
		if (c->close_after)
			buf_append(o, "Connection: close\r\n", 19);
		else if (c->minor == 0)
			buf_append(o, "Connection: keep-alive\r\n", 24);
	}
	buf_append(o, "\r\n", 2);
	if (final)
		conn_log_keep_resp(c, before);
	c->bytes_out += buf_len(o) - before;
	c->rs_started = 1;
}

/* Upstream closed (or failed) before a complete response head. */
static void
conn_up_gone(struct conn *c, int had_error)
{
	struct up *u = c->up;
	/* A reused connection the server closed just as we sent: retry once on a fresh one
	 * when the request can be repeated safely (nothing received; no body, or an idempotent
	 * method with the whole body sent so far kept in c->replay). */
	int again = c->rq.in == H1_BODY_NONE ? c->method != H1_M_POST && c->method != H1_M_PATCH
	                                      : c->replay_ok;
	if (!c->up_got_bytes && u->nreq > 1 && !c->retried && again) {
		c->retried = 1;
		c->w->st.up_retries++;
		c->up = NULL;
		up_close(u);
		conn_connect_upstream(c);
		return;
	}
	char who[300];
	snprintf(who, sizeof(who), "%s:%u (%s)", c->host, c->port, u->addr_text);
	if (c->up_got_bytes)
		conn_fail(c, 502, "%s sent an incomplete response head%s", who,
		          had_error ? " and reset the connection" : "");
	else
		conn_fail(c, 502, "%s closed the connection without sending a response%s", who,
		          had_error ? " (connection reset)" : "");
}

static int
conn_exchange(struct conn *c)
{
	struct worker *w = c->w;
	struct up *u = c->up;
	const char *err = NULL;
	int progress = 0;

	if (!c->rq.done && buf_len(&u->out) < HIGH_WATER) {
		size_t before = buf_len(&u->out);
		int r = body_pump(&c->rq, &c->in, &u->out, &err);
		if (r < 0) {
			c->close_after = 1;
			conn_fail(c, 400, "bad request body: %s%s", err, "");
			return 1;
		}
		progress |= r;
		size_t sent = buf_len(&u->out) - before;
		if (c->replay_ok && sent > 0 &&
		    buf_append(&c->replay, buf_head(&u->out) + before, sent) < 0) {
			c->replay_ok = 0; /* longer than CONN_REPLAY_CAP: not replayed */
			buf_fini(&c->replay);
		}
		/* The client gave up in the middle of its body: nothing left, or only the start of
		 * a line (a trailer, the final CRLF) that can never end now (r == 0: stuck). */
		if (!c->rq.done && c->read_eof && (buf_len(&c->in) == 0 || r == 0)) {
			conn_close(c);
			return 0;
		}
	}

	while (!c->rs_head_done && buf_len(&c->out) < HIGH_WATER) {
		struct h1_limits lim;
		conn_limits(c->cfg, &lim);
		size_t hl = 0;
		int st = 502;
		const char *reason = "bad response";
		int r = H1_AGAIN;
		if (buf_len(&u->in) > 0)
			r = h1_head_complete(buf_head(&u->in), buf_len(&u->in), &c->rs_scan, &hl, &lim, 0,
			                     &st, &reason);
		if (r == H1_AGAIN) {
			if (c->up_eof) {
				conn_up_gone(c, c->up_eof > 1);
				return 1;
			}
			return progress;
		}
		char who[300];
		snprintf(who, sizeof(who), "%s:%u", c->host, c->port);
		if (r == H1_ERR) {
			conn_fail(c, 502, "bad response from %s: %s", who, reason);
			return 1;
		}
		struct h1_head *h = &w->scratch;
		r = h1_parse_response(buf_head(&u->in), &hl, h, c->method, &lim, c->cfg->bad_header, &st,
		                      &reason);
		c->rs_scan = 0;
		if (r != H1_OK) {
			conn_fail(c, 502, "bad response from %s: %s", who, reason);
			return 1;
		}
		if (h->status == 101) {
			conn_fail(c, 502, "%s switched protocols although no upgrade was requested%s", who, "");
			return 1;
		}
		if (h->status < 200) {
			if (c->minor >= 1)
				conn_send_resp_head(c, h); /* 100 Continue and friends, relayed */
			buf_consume(&u->in, hl);
			progress = 1;
			continue;
		}
		if (c->is_connect && h->status >= 200 && h->status < 300) {
			/* The parent opened the tunnel: whatever follows its head is tunnel data. */
			buf_consume(&u->in, hl);
			conn_start_tunnel(c);
			return 1;
		}
		enum cachereq_verdict cv = c->cq != NULL ? cachereq_response(c->cq, h) : CQ_FORWARD;
		if (cv == CQ_SERVE || (cv == CQ_REFETCH && c->uphead_orig != NULL)) {
			/* 304 to our revalidation (or stale-if-error): serve the stored entry;
			 * a 304 that matches nothing stored: ask again with the client's head */
			buf_consume(&u->in, hl);
			int reuse = h->framing == H1_BODY_NONE && !(h->flags & H1_CONN_CLOSE) &&
			            c->rq.done && buf_len(&u->in) == 0 && !c->up_eof;
			c->up = NULL;
			up_release(u, reuse);
			if (cv == CQ_REFETCH) {
				free(c->uphead);
				c->uphead = c->uphead_orig;
				c->uphead_len = c->uphead_orig_len;
				c->uphead_orig = NULL;
				c->uphead_orig_len = 0;
				conn_connect_upstream(c);
				return 1;
			}
			c->rs_head_done = 1;
			conn_cache_serve(c);
			return 1;
		}
		if (c->is_connect)
			c->close_after = 1; /* the parent refused: relay its answer, then close */
		conn_send_resp_head(c, h);
		buf_consume(&u->in, hl);
		c->rs_head_done = 1;
		progress = 1;
	}

	if (!c->rs.done && buf_len(&c->out) < HIGH_WATER) {
		size_t before = buf_len(&c->out);
		int r = body_pump(&c->rs, &u->in, &c->out, &err);
		c->bytes_out += buf_len(&c->out) - before;
		if (r < 0) {
			conn_abort(c, err);
			return 1;
		}
		progress |= r;
		if (!c->rs.done && c->up_eof && (buf_len(&u->in) == 0 || r == 0)) {
			if (c->rs.in == H1_BODY_CLOSE && c->up_eof == 1 && buf_len(&u->in) == 0) {
				before = buf_len(&c->out);
				body_eof(&c->rs, &c->out);
				c->bytes_out += buf_len(&c->out) - before;
			} else {
				conn_abort(c, "upstream closed in the middle of the response body");
				return 1;
			}
		}
	}
	if (c->rs.done) {
		cachereq_response_done(c->cq);
		if (!c->rq.done) {
			/* Answered before the request body ended: drop the rest with the connection. */
			c->close_after = 1;
			c->up_close = 1;
		}
		conn_req_done(c);
		return 1;
	}
	return progress;
}

/* ---- CONNECT tunnels: bytes spliced both ways, half-close propagated ---- */

static int
conn_tunnel(struct conn *c, size_t *sent)
{
	struct up *u = c->up;
	int progress = 0;
	if (buf_len(&c->in) > 0 && !c->tun_u_shut) {
		ssize_t n = up_write(u, &c->in);
		if (n > 0) {
			progress = 1;
			*sent += (size_t)n;
			c->w->st.bytes_out += (uint64_t)n;
		} else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			conn_close(c);
			return 0;
		}
	}
	if (c->read_eof && buf_len(&c->in) == 0 && !c->tun_u_shut) {
		/* TLS to a parent: the close_notify may have to wait for the socket */
		if (up_shutdown_wr(u) == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
			c->tun_u_shut = 1; /* an error: the peer's side ends the tunnel */
			progress = 1;
		}
	}
	if (buf_len(&c->out) == 0 && buf_len(&u->in) > 0) {
		ssize_t n = stream_write(&c->s, &u->in, 0);
		if (n > 0) {
			progress = 1;
			*sent += (size_t)n;
			c->bytes_out += (uint64_t)n;
			c->body_out += (uint64_t)n;
		} else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			conn_close(c);
			return 0;
		}
	}
	if (c->up_eof && buf_len(&u->in) == 0 && buf_len(&c->out) == 0 && !c->tun_c_shut &&
	    (stream_shutdown_wr(&c->s) == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))) {
		c->tun_c_shut = 1; /* done, or failed: then no write interest waits for it */
		progress = 1;
	}
	if (c->tun_c_shut && c->tun_u_shut) {
		conn_close(c);
		return 0;
	}
	return progress;
}

/* ---- driving a connection ---- */

/* Connection memory follows the data in flight (issue 10, item 11): a buffer that is empty at
 * a point where nothing will fill it before the connection's next event is released, so an
 * idle keep-alive connection, one waiting for a name or an upstream, and a finished upload
 * hold no buffer. BUF_MIN blocks go to the thread's free list, so a cache hit's drive (which
 * ends here with both buffers empty) costs a few instructions, not malloc/free. Buffers that
 * are being streamed through (a body, a tunnel, a stored response) keep their memory. */
static void
conn_buf_release(struct conn *c)
{
	struct up *u = c->up;
	int streaming = c->phase == CP_TUNNEL || c->phase == CP_CACHE ||
	                (c->phase == CP_EXCHANGE && c->rs_head_done);
	if (buf_len(&c->in) == 0 && c->in.data != NULL && c->phase != CP_TUNNEL &&
	    (c->phase != CP_EXCHANGE || c->rq.done))
		buf_release(&c->in);
	if (buf_len(&c->out) == 0 && c->out.data != NULL && !streaming)
		buf_release(&c->out);
	if (u != NULL && c->phase == CP_EXCHANGE && c->rq.done && buf_len(&u->out) == 0 &&
	    u->out.data != NULL)
		buf_release(&u->out);
}

static void
conn_update_interest(struct conn *c)
{
	struct worker *w = c->w;
	struct up *u = c->up;
	conn_buf_release(c);
	unsigned ci = 0, ui = 0;
	int in_room = buf_room(&c->in) > 0;
	switch (c->phase) {
	case CP_HEAD:
		if (!c->read_eof && in_room && buf_len(&c->out) < HIGH_WATER)
			ci |= EV_READ;
		break;
	case CP_EXCHANGE:
		if (!c->rq.done && !c->read_eof && in_room && u && buf_len(&u->out) < HIGH_WATER)
			ci |= EV_READ;
		if (u && !c->up_eof && buf_room(&u->in) > 0 &&
		    (!c->rs_head_done || buf_len(&c->out) < HIGH_WATER))
			ui |= EV_READ;
		if (u && buf_len(&u->out) > 0)
			ui |= EV_WRITE;
		break;
	case CP_TUNNEL:
		if (!c->read_eof && in_room)
			ci |= EV_READ;
		if (buf_len(&c->out) == 0 && u && buf_len(&u->in) > 0)
			ci |= EV_WRITE;
		if (u && !c->up_eof && buf_room(&u->in) > 0)
			ui |= EV_READ;
		if (u && buf_len(&c->in) > 0 && !c->tun_u_shut)
			ui |= EV_WRITE;
		/* a half-close still to go out (a TLS close_notify that met a full socket) */
		if (u && c->read_eof && buf_len(&c->in) == 0 && !c->tun_u_shut)
			ui |= EV_WRITE;
		if (u && c->up_eof && buf_len(&u->in) == 0 && buf_len(&c->out) == 0 && !c->tun_c_shut)
			ci |= EV_WRITE;
		break;
	case CP_CLOSING:
		if (buf_len(&c->out) == 0 && !c->read_eof)
			ci |= EV_READ; /* lingering: drain what the client still sends */
		if (buf_len(&c->out) == 0 && !c->shut_wr)
			ci |= EV_WRITE; /* a TLS close_notify still to go out */
		break;
	case CP_SOURCE:
		if (!c->src_head_done && c->src->ops->wants_input && c->src->ops->wants_input(c->src) &&
		    !c->read_eof && in_room)
			ci |= EV_READ;
		break;
	default:
		break;
	}
	if (buf_len(&c->out) > 0)
		ci |= EV_WRITE;
	if (!c->headless && ev_io_set(w->loop, &c->io, stream_interest(&c->s, ci)) < 0) {
		conn_close(c);
		return;
	}
	if (u && u->state == UP_BUSY) {
		/* nothing more to read after the end: no interest, and no HUP wake-ups */
		if (c->up_eof)
			ui = 0;
		if (u->st->want(u, ui) < 0) {
			conn_close(c);
			return;
		}
	}
	/* A TLS stream may hold decrypted bytes the descriptor will not announce: read them on
	 * the next turn (conn_post_cb). */
	if (((ci & EV_READ) && !c->headless && stream_pending(&c->s)) ||
	    ((ui & EV_READ) && u && u->state == UP_BUSY && u->st->pending(u)))
		ev_post_start(w->loop, &c->post);
}

static void
conn_drive(struct conn *c)
{
	if (c->dead)
		return;
	struct worker *w = c->w;
	size_t sent = 0; /* bytes written in this drive, against CONN_SLICE */
	int more = 1;    /* the loop below stopped with work left: continue next turn */
	c->in_drive = 1;
	if (ev_post_active(&c->post))
		ev_post_stop(&c->post); /* this drive is the turn it was posted for */
	for (int guard = 0; guard < CONN_STEPS && !c->dead; guard++) {
		int progress = 0;
		switch (c->phase) {
		case CP_HEAD:
			if (buf_len(&c->out) < HIGH_WATER)
				progress = conn_parse_head(c);
			break;
		case CP_EXCHANGE:
			progress = conn_exchange(c);
			break;
		case CP_TUNNEL:
			progress = conn_tunnel(c, &sent);
			break;
		case CP_CACHE:
			if (buf_len(&c->out) < HIGH_WATER)
				progress = conn_cache_pump(c);
			break;
		case CP_SOURCE:
			progress = conn_source_step(c);
			break;
		case CP_CLOSING:
			if (buf_len(&c->out) == 0) {
				if (c->read_eof) {
					conn_close(c);
				} else if (!c->shut_wr && stream_shutdown_wr(&c->s) == 0) {
					c->shut_wr = 1;
				}
			}
			break;
		default:
			break;
		}
		if (c->dead)
			break;
		/* A step that produced output may be followed by more (a cached head by its body,
		 * a response by the next pipelined one): gather it, so that a small response goes
		 * out in one send and one TCP segment. Bounded by FLUSH_AT and the guard. */
		if (progress && !c->headless && buf_len(&c->out) > 0 && buf_len(&c->out) < FLUSH_AT &&
		    guard < CONN_STEPS - 4 && (c->phase == CP_CACHE || c->phase == CP_HEAD))
			continue;
		if (buf_len(&c->out) > 0 && c->headless) {
			buf_consume(&c->out, buf_len(&c->out)); /* nobody to send it to */
		} else if (buf_len(&c->out) > 0 && sent < CONN_SLICE) {
			/* At most the rest of this turn's share: one send of a whole stored chunk
			 * would give a client with a wide window twice the others' share. */
			ssize_t n = stream_write(&c->s, &c->out, CONN_SLICE - sent);
			if (n > 0) {
				progress = 1;
				sent += (size_t)n;
				c->last_client = ev_now(w->loop);
				w->st.bytes_out += (uint64_t)n;
			} else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
				conn_client_gone(c);
				if (c->dead)
					break;
				progress = 1;
			}
		}
		if (c->up && c->phase == CP_EXCHANGE && buf_len(&c->up->out) > 0) {
			ssize_t n = up_write(c->up, &c->up->out);
			if (n > 0) {
				progress = 1;
				sent += (size_t)n;
				c->last_up = ev_now(w->loop);
			} else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
				/* The upstream stopped taking our request: see what it said. */
				buf_fini(&c->up->out);
				if (!c->up_eof)
					c->up_eof = 2;
				progress = 1;
			}
		}
		if (!progress) {
			more = 0; /* waiting for readiness: the interest below asks epoll for it */
			break;
		}
		c->last_progress = ev_now(w->loop);
		if (sent >= CONN_SLICE)
			break; /* its share of this turn: the other connections go first */
	}
	if (!c->dead)
		conn_update_interest(c);
	/* Stopped by the step guard or the slice, not for want of readiness: nothing from epoll
	 * may come (the rest of a pipeline is buffered, the socket took every byte), so ask the
	 * loop for another turn. */
	if (more && !c->dead)
		ev_post_start(w->loop, &c->post);
	c->in_drive = 0;
}

/* The loop's turn for a connection that posted itself (conn_drive). */
static void
conn_post_cb(struct ev_post *p)
{
	struct conn *c = p->arg;
	if (c->magic != CONN_MAGIC || c->dead)
		return;
	if (!c->headless && stream_pending(&c->s)) {
		conn_io_cb(&c->io, EV_READ); /* reads, then drives */
		return;
	}
	if (c->up && c->up->state == UP_BUSY && c->up->st->pending(c->up)) {
		proxy_up_io(c->up, EV_READ);
		return;
	}
	conn_drive(c);
}

static void
conn_io_cb(struct ev_io *io, unsigned revents)
{
	struct conn *c = io->arg;
	if (c->magic != CONN_MAGIC || c->dead)
		return;
	revents = stream_ready(&c->s, revents) | (revents & EV_ERROR);
	if (revents & (EV_READ | EV_ERROR)) {
		if (c->phase == CP_CLOSING && buf_len(&c->out) == 0) {
			char sink[4096];
			ssize_t n = recv(c->s.fd, sink, sizeof(sink), MSG_DONTWAIT);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
				conn_close(c);
				return;
			}
		} else if (!c->read_eof) {
			ssize_t n = stream_read(&c->s, &c->in);
			if (n == 0) {
				c->read_eof = 1;
			} else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) {
				conn_client_gone(c);
				if (c->dead)
					return;
			} else if (n > 0) {
				c->w->st.bytes_in += (uint64_t)n;
				c->last_client = ev_now(c->w->loop);
			}
		} else if (revents & EV_ERROR) {
			conn_client_gone(c);
			if (c->dead)
				return;
		}
	}
	conn_drive(c);
}

void
proxy_up_io(struct up *u, unsigned revents)
{
	struct conn *c = u->owner;
	if (c == NULL || c->magic != CONN_MAGIC || c->dead || c->up != u) {
		up_close(u);
		return;
	}
	if ((revents & (EV_READ | EV_ERROR)) && !c->up_eof) {
		ssize_t n = up_read(u, &u->in);
		if (n == 0) {
			c->up_eof = 1;
		} else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) {
			c->up_eof = 2; /* error: a close-delimited body is then not complete */
		} else if (n > 0) {
			c->up_got_bytes = 1;
			c->w->st.bytes_in += (uint64_t)n;
			stats_upstream_in(&c->w->stats, (uint64_t)n);
			c->last_up = ev_now(c->w->loop);
		}
	}
	conn_drive(c);
}

static void
conn_tmo_cb(struct ev_timer *t)
{
	struct conn *c = t->arg;
	if (c->magic != CONN_MAGIC || c->dead)
		return;
	struct worker *w = c->w;
	uint64_t now = ev_now(w->loop);
	switch (c->phase) {
	case CP_HEAD:
		if (buf_len(&c->out) > 0 && now - c->last_client < w->cfg->timeout_ms) {
			/* The end of the last response is still being taken (a request is done once
			 * its last byte is queued): not idle. The client has Timeout to take it. */
			ev_timer_start(w->loop, &c->tmo,
			               w->cfg->timeout_ms - (now - c->last_client));
			return;
		}
		if (buf_len(&c->in) == 0) {
			/* The kernel may still hold the end of the last response: a send buffer and
			 * the client's window take megabytes, which a slow reader, or one of many on
			 * a busy machine, takes seconds to read. It is not idle until it has taken
			 * them: its next request would meet a closed connection. Each timeout that
			 * finds the queue moved restarts KeepAliveTimeout; none for Timeout closes. */
			int queued = 0;
			if (ioctl(c->s.fd, SIOCOUTQ, &queued) == 0 && queued > 0) {
				if (queued != c->tail_queued) {
					c->tail_queued = queued;
					c->last_client = now;
				}
				if (now - c->last_client < w->cfg->timeout_ms) {
					ev_timer_start(w->loop, &c->tmo, w->cfg->keepalive_timeout_ms);
					return;
				}
			}
			conn_close(c); /* idle keep-alive connection */
			return;
		}
		c->in_req = 1;
		c->cfg = cfg_ref(w->cfg);
		c->t_start_us = ev_wall_us(w->loop);
		c->t_start_ms = now;
		conn_req_id_new(c);
		c->close_after = 1;
		conn_local_page(c, 408, "NONE", NULL, "timed out waiting for the request head");
		break;
	case CP_TUNNEL: {
		uint64_t limit = c->cfg->proxy_timeout_ms;
		if (now - c->last_progress < limit) {
			ev_timer_start(w->loop, &c->tmo, limit - (now - c->last_progress));
			return;
		}
		conn_close(c);
		return;
	}
	case CP_EXCHANGE: {
		/* Two clocks: Timeout for the client (sending its body, taking our bytes) and
		 * ProxyTimeout for the upstream (taking the request, answering). Each applies only
		 * while that side is the one being waited for. */
		uint64_t ct = c->cfg->timeout_ms, pt = c->cfg->proxy_timeout_ms;
		struct up *u = c->up;
		int client_waited = (!c->rq.done && (u == NULL || buf_len(&u->out) < HIGH_WATER)) ||
		                    buf_len(&c->out) > 0;
		int up_waited = (c->rq.done && !c->rs.done &&
		                 (!c->rs_head_done || buf_len(&c->out) < HIGH_WATER)) ||
		                (u != NULL && buf_len(&u->out) > 0);
		if (client_waited && now - c->last_client >= ct) {
			c->up_close = 1;
			c->close_after = 1;
			if (!c->rs_started)
				conn_local_page(c, 408, "NONE", NULL,
				                "timed out waiting for the client to send the request body");
			else if (!conn_go_headless(c))
				conn_abort(c, "client stopped taking the response");
			break;
		}
		if (up_waited && now - c->last_up >= pt) {
			char who[300], secs[32];
			snprintf(who, sizeof(who), "%s:%u", c->host, c->port);
			snprintf(secs, sizeof(secs), "%u", (unsigned)(pt / 1000));
			if (!c->rs_head_done)
				conn_fail(c, 504, "upstream %s timed out: no response within %s s", who, secs);
			else
				conn_abort(c, "upstream timed out in the middle of the response body");
			break;
		}
		uint64_t next = pt;
		if (client_waited && ct - (now - c->last_client) < next)
			next = ct - (now - c->last_client);
		if (up_waited && now - c->last_up < pt && pt - (now - c->last_up) < next)
			next = pt - (now - c->last_up);
		ev_timer_start(w->loop, &c->tmo, next < 10 ? 10 : next);
		return;
	}
	case CP_CACHE:
		if (now - c->last_client >= c->cfg->timeout_ms) {
			conn_abort(c, "client stopped taking the response");
			break;
		}
		ev_timer_start(w->loop, &c->tmo, c->cfg->timeout_ms - (now - c->last_client));
		return;
	case CP_CLOSING:
		if (buf_len(&c->out) > 0 && now - c->last_progress < c->w->cfg->timeout_ms) {
			ev_timer_start(w->loop, &c->tmo, 2000); /* still draining to a slow client */
			return;
		}
		conn_close(c);
		return;
	case CP_POLWAIT:
		conn_polwait_timeout(c);
		break;
	case CP_SOURCE:
		/* the client sends its body, or takes the page, within Timeout of its last byte */
		if (now - c->last_client >= c->cfg->timeout_ms) {
			conn_close(c);
			return;
		}
		ev_timer_start(w->loop, &c->tmo, c->cfg->timeout_ms - (now - c->last_client));
		return;
	default:
		/* NAME, RESOLVE, CONNECT carry their own deadlines */
		return;
	}
	conn_drive(c);
}

/* ---- accept and shutdown ---- */

#define CONN_CLIM_LOG_MS 1000 /* at most one "too many connections" line a second per worker */

/* A client over MaxConnectionsPerClient: a short 503 naming the cause, best effort (the socket
 * is new: its send buffer is empty), then close. What the client already sent is read first,
 * so that the close does not turn into a reset that loses the answer. The log line is rate
 * limited per worker, with the number of refusals it stands for. */
static void
conn_refuse_client(struct worker *w, int fd, const struct sockaddr_storage *peer, unsigned limit,
                   int tls)
{
	static _Thread_local uint64_t last_log;
	static _Thread_local unsigned refused;
	char page[512], resp[1024], sink[4096];
	int pn = snprintf(page, sizeof(page),
	                  "<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head>\n"
	                  "<body>\n<h1>Service Unavailable</h1>\n<p>Too many connections from your "
	                  "address: this proxy takes at most %u at a time from one client "
	                  "(MaxConnectionsPerClient).</p>\n</body></html>\n", limit);
	int rn = snprintf(resp, sizeof(resp),
	                  "HTTP/1.1 503 Service Unavailable\r\nDate: %s\r\nServer: Gatehouse/%s\r\n"
	                  "Content-Type: text/html\r\nContent-Length: %d\r\nRetry-After: 5\r\n"
	                  "Connection: close\r\n\r\n%s", worker_http_date(w), GH_VERSION, pn, page);
	(void)recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
	/* On an https listener the page would have to wait for a handshake, which is the work
	 * being refused: the client is closed without one (the log line below says why). */
	if (!tls && rn > 0 && (size_t)rn < sizeof(resp))
		(void)send(fd, resp, (size_t)rn, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
	refused++;
	uint64_t now = ev_now(w->loop);
	if (last_log == 0 || now - last_log >= CONN_CLIM_LOG_MS) {
		char who[64];
		gh_addr_text(peer, who, sizeof(who), 0);
		log_warn("%s%s has %u connections open (MaxConnectionsPerClient %u): refusing more "
		         "(%u refused by worker %u since the last such line)", who,
		         peer->ss_family == AF_INET6 && strchr(who, ':') ? " (its /64)" : "", limit,
		         limit, refused, w->id);
		last_log = now;
		refused = 0;
	}
}

static struct conn *
conn_new(struct worker *w, int fd, const struct sockaddr_storage *peer,
         const struct sockaddr_storage *local)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return NULL;
	}
	c->magic = CONN_MAGIC;
	c->w = w;
	stream_tcp_init(&c->s, fd);
	c->peer = *peer;
	c->local = *local;
	gh_addr_text(peer, c->peer_text, sizeof(c->peer_text), 0);
	pauth_conn_init(&c->pa);
	buf_init(&c->in, CONN_IN_CAP);
	buf_init(&c->out, CONN_OUT_CAP);
	buf_init(&c->replay, CONN_REPLAY_CAP);
	conn_req_reset(c);
	c->phase = CP_HEAD;
	ev_io_init(&c->io, fd, conn_io_cb, c);
	ev_timer_init(&c->tmo, conn_tmo_cb, c);
	ev_post_init(&c->post, conn_post_cb, c);
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	w->st.accepted++;
	w->st.conns_open++;
	if (ev_io_set(w->loop, &c->io, EV_READ) < 0) {
		conn_close(c);
		return NULL;
	}
	ev_timer_start(w->loop, &c->tmo, w->cfg->timeout_ms);
	return c;
}

struct conn *
conn_accept(struct worker *w, int fd, const struct sockaddr_storage *peer, socklen_t plen,
            const struct sockaddr_storage *local, struct tls_set *tls)
{
	(void)plen;
	unsigned limit = w->cfg->max_conns_per_client;
	uint64_t key = 0;
	int counted = 0;
	if (limit > 0 && clim_key(peer, &key) == 0) {
		counted = clim_take(key, limit);
		if (counted == 0) {
			conn_refuse_client(w, fd, peer, limit, tls != NULL);
			return NULL;
		}
	}
	struct conn *c = conn_new(w, fd, peer, local);
	if (c == NULL) {
		if (counted > 0)
			clim_give(key);
		return NULL;
	}
	c->clim_key = key;
	c->clim_counted = counted > 0;
	if (tls != NULL && tls_accept(&c->s, tls) < 0) {
		conn_close(c); /* out of memory: as if it had never been accepted */
		return NULL;
	}
	return c;
}

void
conn_drain_all(struct worker *w)
{
	struct conn *c = w->conns, *next;
	for (; c != NULL; c = next) {
		next = c->next;
		if (c->phase == CP_HEAD && buf_len(&c->in) == 0 && !c->in_req)
			conn_close(c);
		else
			c->close_after = 1;
	}
}

void
conn_close_all(struct worker *w)
{
	while (w->conns)
		conn_close(w->conns);
}
