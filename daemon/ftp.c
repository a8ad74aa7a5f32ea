/*
 * ftp.c - the FTP gateway (issue 12): an upstream stream (struct up_stream) that takes an
 * HTTP/1.1 request in absolute form from proxy.c and answers it with an HTTP/1.1 response,
 * speaking FTP on the control connection (the stream u->s) and a data connection of its own
 * (the stream f->ds). Both move bytes only through stream.h, so after AUTH TLS (FTPTLS Try or
 * Require, RFC 4217) the same code runs over TLS: the control connection's handshake after
 * 234, PBSZ 0 and PROT P after the login, and each data connection's handshake reusing the
 * control connection's session (vsftpd's require_ssl_reuse). Try falls back to plain FTP only
 * when AUTH TLS is refused, never when a TLS handshake or certificate check fails.
 *
 * One request at a time per control connection, driven by the replies: each command is sent
 * with the step that handles its reply (enum ftp_step), so the state machine is the table in
 * ftp_on_reply. Everything is non-blocking on the worker's loop and bounded: control lines by
 * ftp_reply_feed, listings by FTPMaxListingSize, a file body by what proxy.c asks to read
 * (the data socket is read straight into proxy.c's buffer, only while it wants to read).
 *
 * Readiness to proxy.c: proxy.c states its interest through want(); what the gateway has for
 * it (a response head or page in f->resp, the end or failure of a body) is reported by a
 * posted event (f->post) that calls proxy_up_io, never synchronously; a file body being
 * streamed is reported by the data socket's own watcher. A RETR's response head waits for the
 * body's first bytes (head_wait), so a data connection that fails before them is a 502 page.
 *
 * Logins: a connection keeps its login while pooled; a request for another login ends the
 * stream before any byte, which proxy.c answers by sending it again on a fresh connection
 * (ftp_login_elsewhere). Passwords go to PASS only: logs say "PASS ****", pages quote replies
 * with the password masked.
 *
 * Lifetime: the struct ftp lives as long as its struct up; close (from up_close) marks it
 * dead, closes the sockets and frees it after the dispatch batch, so a callback that called
 * into proxy.c checks f->dead before it touches anything again.
 */
#include "daemon/ftp.h"
#include "daemon/ftplist.h"
#include "daemon/tls.h"
#include "daemon/url.h"
#include "daemon/worker.h"
#include "cache/cache.h"
#include "webui/ui.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FTP_MAGIC 0xf7a9e0c1u
#define FTP_REQ_CAP (64 * 1024)   /* a request head from proxy.c */
#define FTP_RESP_CAP (256 * 1024) /* a head, a page; a listing page may grow past it */
#define FTP_PUT_CAP (256 * 1024)  /* PUT body bytes waiting for the data connection */
#define FTP_CTL_BUF 4096
#define FTP_READ_MAX (64 * 1024)  /* one read of a file body */
#define FTP_CRED_MAX 256

enum ftp_step {
	FS_GREETING = 1, /* 220 from a new control connection */
	FS_AUTH,         /* AUTH TLS sent (FTPTLS Try/Require): 234, or plain FTP */
	FS_AUTH_HS,      /* 234: the control connection's TLS handshake */
	FS_PBSZ, FS_PROT, /* after the login over TLS: PBSZ 0, PROT P (TLS data connections) */
	FS_READY,        /* logged in or not, waiting for a request */
	FS_USER, FS_PASS, FS_FEAT, FS_PWD, FS_CWD_HOME, FS_CWD, FS_TYPE, FS_SIZE, FS_CWD_PROBE,
	FS_MDTM, FS_TYPE_XFER, FS_EPSV, FS_PASV, FS_EPRT, FS_PORT, FS_REST,
	FS_XFER,         /* RETR/LIST/MLSD/STOR sent: 1xx expected */
	FS_XFER_END,     /* after the 1xx: the transfer's final reply */
	FS_DONE,         /* the request is answered */
};

/* What read() hands proxy.c once f->resp is drained. */
enum ftp_rmode {
	RM_NONE = 0, /* no response yet: EAGAIN */
	RM_DONE,     /* the whole response is (was) in f->resp */
	RM_STREAM,   /* a file body from the data connection */
	RM_FAIL,     /* the transfer failed mid-body: ECONNRESET */
	RM_EOF,      /* the server went away before anything: 0, proxy.c retries a reused one */
};

struct ftp {
	unsigned magic;
	struct up *u;
	int dead;
	struct ev_post post;
	struct ev_timer tmo;
	unsigned want;                /* proxy.c's interest */

	/* control connection */
	enum ftp_step step;
	struct buf cin;               /* reply bytes not parsed yet (FTP_CTL_BUF) */
	char cout[FTP_LINE_MAX + 8];
	size_t cout_len, cout_off;
	char last_cmd[16];            /* for the timeout page: "RETR", "CWD", ... */
	struct ftp_reply rep;
	int pending_final;            /* a transfer's final reply is still to come: swallowed */
	int broken;                   /* the control connection cannot be reused */
	int greeted, logged_in, feat_done, home_known, at_home;
	int tls_ctl;                  /* the control connection is TLS (after AUTH TLS) */
	int prot_done, prot_p;        /* PBSZ/PROT sent; data connections are TLS (PROT P) */
	struct ev_post spost;         /* bytes OpenSSL holds that the loop will not announce */
	int f_mlst, f_epsv_bad, f_size, f_mdtm, f_rest;
	char cur_type;                /* 'I', 'A', 0 unknown */
	char login_user[FTP_CRED_MAX], login_pass[FTP_CRED_MAX];
	char home[1024];

	/* the request (from write) */
	struct buf req;
	size_t req_scan;
	int have_req;                 /* a request head is parsed and being served */
	enum h1_method method;
	char url[4096];               /* the URL without its password, for pages and links */
	struct ftp_path path;
	char user[FTP_CRED_MAX], pass[FTP_CRED_MAX];
	int anon;
	int listing, json;
	size_t ndirs, seg_i;
	int64_t rng_start, rng_end;   /* -1: no range */
	char if_range[256];
	char inm[512];
	int64_t ims;                  /* -1 when absent */
	int64_t size, mtime;
	int existed;                  /* PUT: SIZE found the file */
	char saved_reply[256];        /* a reply quoted later (SIZE's before the probe) */
	int saved_code;

	/* PUT body */
	enum h1_framing bframe;
	uint64_t bleft;
	struct h1_chunked bch;
	int bdone;
	struct buf pbody;

	/* data connection */
	struct stream ds;             /* ds.fd: -1 when there is none */
	int lfd;
	struct ev_io dio, lio;
	int dconnecting, deof, xfer_ok, xfer_started;
	int head_wait;                /* RETR's 1xx came: the head waits for the first body bytes */
	int ctl_gone;                 /* the control connection ended (no final reply will come) */
	int dhs;                      /* the data connection's TLS handshake is in progress */
	int dwant_write;              /* what the data watcher was last asked for */
	int dshut;                    /* a TLS upload's close_notify is sent */
	struct sockaddr_storage dpeer;
	struct ftp_listing *lst;

	/* the response (to read): f->resp, then f->rbody (a rendered listing, not copied) */
	struct buf resp, rbody;
	enum ftp_rmode rmode;
	int chunked;
	int64_t body_left;            /* Content-Length framing: bytes still to come */
};

static void ftp_kick(struct ftp *f);
static void ftp_cio_cb(struct ev_io *io, unsigned revents);
static void ftp_dio_cb(struct ev_io *io, unsigned revents);
static void ftp_lio_cb(struct ev_io *io, unsigned revents);
static void ftp_tmo_cb(struct ev_timer *t);
static void ftp_post_cb(struct ev_post *p);
static void ftp_spost_cb(struct ev_post *p);
static void ftp_req_begin(struct ftp *f);
static int ftp_login_elsewhere(struct ftp *f);
static void ftp_nav_next(struct ftp *f);
static void ftp_data_open(struct ftp *f);
static void ftp_xfer_check_end(struct ftp *f);
static void ftp_data_go(struct ftp *f);

/* ---- small helpers ---- */

static void
ftp_html_esc(struct buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': buf_append(b, "&lt;", 4); break;
		case '>': buf_append(b, "&gt;", 4); break;
		case '&': buf_append(b, "&amp;", 5); break;
		case '"': buf_append(b, "&quot;", 6); break;
		case '\'': buf_append(b, "&#39;", 5); break;
		default: buf_append(b, s, 1); break;
		}
	}
}

/* The reply's last line, with the request's password masked should a server echo it. */
static void
ftp_reply_quote(struct ftp *f, char *out, size_t n)
{
	ftp_reply_last_line(&f->rep, out, n);
	size_t pl = strlen(f->pass);
	if (pl == 0 || f->anon)
		return;
	for (char *p = strstr(out, f->pass); p != NULL; p = strstr(p + 1, f->pass))
		memset(p, '*', pl);
}

static void
ftp_http_date(int64_t t, char out[40])
{
	char d[30];
	cache_http_date_format(t, d);
	snprintf(out, 40, "%s", d);
}

/* The response head's common start: status line, then the fields every answer has. */
static void
ftp_head_start(struct ftp *f, int status)
{
	buf_printf(&f->resp, "HTTP/1.1 %d %s\r\n", status, ui_status_text(status));
	if (f->broken)
		buf_append(&f->resp, "Connection: close\r\n", 19);
}

static void
ftp_timer_arm(struct ftp *f)
{
	ev_timer_start(f->u->w->loop, &f->tmo, f->u->w->cfg->proxy_timeout_ms);
}

/* The request is answered (its response is complete in f->resp, or the stream ended). */
static void
ftp_req_finish(struct ftp *f)
{
	f->have_req = 0;
	f->head_wait = 0;
	f->step = FS_DONE;
	if (!f->pending_final)
		ev_timer_stop(&f->tmo);
	ftp_kick(f);
}

/* The data watcher's interest: what the transfer wants (EV_READ, EV_WRITE or 0) as the
 * stream needs it; a TLS handshake in progress wants what the handshake wants. */
static void
ftp_dio_set(struct ftp *f, unsigned want)
{
	f->dwant_write = (want & EV_WRITE) != 0;
	ev_io_set(f->u->w->loop, &f->dio, stream_interest(&f->ds, f->dhs ? 0 : want));
}

/* The data connection is over: its TLS state and its descriptor go. */
static void
ftp_data_end(struct ftp *f)
{
	ev_io_stop(&f->dio);
	stream_release(&f->ds);
	close(f->ds.fd);
	f->ds.fd = -1;
	f->dhs = 0;
	f->dwant_write = 0;
	f->dshut = 0;
}

static void
ftp_data_close(struct ftp *f)
{
	if (f->ds.fd >= 0)
		ftp_data_end(f);
	if (f->lfd >= 0) {
		ev_io_stop(&f->lio);
		close(f->lfd);
		f->lfd = -1;
	}
	f->dconnecting = 0;
}

/* An error page: a short HTML body naming the cause and, when there is one, quoting the
 * server's last reply. Only before any of the response went out. */
static void
ftp_page(struct ftp *f, int status, const char *extra, const char *quote, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void
ftp_page(struct ftp *f, int status, const char *extra, const char *quote, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (f->rmode != RM_NONE) {
		/* The head is out: the client can only see the body cut short. */
		if (f->rmode == RM_STREAM)
			f->rmode = RM_FAIL;
		ftp_data_close(f);
		ftp_req_finish(f);
		return;
	}
	ftp_data_close(f);
	struct buf body;
	buf_init(&body, 16 * 1024);
	const char *title = ui_status_text(status);
	buf_printf(&body, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
	           "<title>%d %s</title></head>\n<body><h1>%s</h1>\n<p>", status, title, title);
	ftp_html_esc(&body, msg);
	buf_append(&body, "</p>\n", 5);
	if (quote != NULL && quote[0] != '\0') {
		buf_append(&body, "<p>The FTP server said: <code>", 30);
		ftp_html_esc(&body, quote);
		buf_append(&body, "</code></p>\n", 12);
	}
	buf_append(&body, "<p><a href=\"", 12);
	ftp_html_esc(&body, f->url);
	buf_append(&body, "\">", 2);
	ftp_html_esc(&body, f->url);
	buf_append(&body, "</a></p>\n</body></html>\n", 24);
	ftp_head_start(f, status);
	buf_printf(&f->resp, "Content-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\n"
	           "%sContent-Length: %zu\r\n\r\n", extra ? extra : "", buf_len(&body));
	if (f->method != H1_M_HEAD)
		buf_append(&f->resp, buf_head(&body), buf_len(&body));
	buf_fini(&body);
	if (log_on(CFG_LL_INFO))
		log_info("ftp %s: %s: %d %s", f->u->addr_text, f->url, status, msg);
	f->rmode = RM_DONE;
	ftp_req_finish(f);
}

/* A reply that ends the request: the status its code maps to, with the reply quoted. */
static void
ftp_fail_reply(struct ftp *f, const char *what)
{
	char q[512];
	ftp_reply_quote(f, q, sizeof(q));
	int code = f->rep.code, status;
	if (code == 530) {
		char realm[400];
		/* Not reused: vsftpd may refuse a correct login on a connection that had a 530
		 * (h3's test_login_through_the_401_prompt saw it in 4 runs of 5). */
		f->logged_in = 0;
		f->broken = 1;
		/* the pool key is "ftp|host:port": the realm names the host */
		const char *host = f->u->key + 4, *colon = strrchr(host, ':');
		int hl = colon ? (int)(colon - host) : (int)strlen(host);
		snprintf(realm, sizeof(realm), "WWW-Authenticate: Basic realm=\"FTP %.*s\"\r\n", hl,
		         host);
		ftp_page(f, 401, realm, q, "%s", what);
		return;
	}
	if (code == 550 || code == 553) {
		status = (strcasestr(q, "permission") || strcasestr(q, "denied") ||
		          strcasestr(q, "privilege") || strcasestr(q, "not allowed")) ? 403 : 404;
	} else if (code == 421) {
		status = 503;
		f->broken = 1;
	} else if (code == 450 || code == 451 || code == 452) {
		status = 503;
	} else {
		status = 502;
	}
	ftp_page(f, status, NULL, q, "%s", what);
}

/* ---- the control connection ---- */

/* The control watcher's interest: always the replies, and the command while it is not all
 * sent; as the stream (TCP or TLS) needs it. */
static void
ftp_ctl_interest(struct ftp *f)
{
	struct up *u = f->u;
	unsigned want = f->cout_off < f->cout_len ? EV_READ | EV_WRITE : EV_READ;
	ev_io_set(u->w->loop, &u->io, stream_interest(&u->s, f->step == FS_AUTH_HS ? 0 : want));
}

/* Bytes through the stream from a fixed array: a buffer over it that never grows (its size
 * is its cap), so the stream's calls cannot reallocate it. */
static void
ftp_buf_view(struct buf *v, char *p, size_t len, size_t size)
{
	memset(v, 0, sizeof(*v));
	v->data = p;
	v->end = len;
	v->size = v->cap = size;
}

static void
ftp_ctl_flush(struct ftp *f)
{
	struct up *u = f->u;
	for (int i = 0; i < 8 && f->cout_off < f->cout_len; i++) {
		struct buf v;
		ftp_buf_view(&v, f->cout + f->cout_off, f->cout_len - f->cout_off,
		             f->cout_len - f->cout_off);
		ssize_t n = stream_write(&u->s, &v, 0);
		if (n > 0) {
			f->cout_off += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		f->broken = 1; /* the read side will see the end */
		f->cout_off = f->cout_len;
		break;
	}
	ftp_ctl_interest(f);
}

/* Send a command; its reply goes to step. */
static void
ftp_cmd(struct ftp *f, enum ftp_step step, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void
ftp_cmd(struct ftp *f, enum ftp_step step, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(f->cout, sizeof(f->cout) - 2, fmt, ap);
	va_end(ap);
	f->step = step;
	size_t w = strcspn(f->cout, " ");
	snprintf(f->last_cmd, sizeof(f->last_cmd), "%.*s", (int)w, f->cout);
	if (n < 0 || (size_t)n >= sizeof(f->cout) - 2 || strpbrk(f->cout, "\r\n") != NULL) {
		ftp_page(f, 400, NULL, NULL, "the FTP command for %s does not fit a control line",
		         f->url);
		return;
	}
	if (log_on(CFG_LL_DEBUG))
		log_debug("ftp %s: > %s", f->u->addr_text, step == FS_PASS ? "PASS ****" : f->cout);
	memcpy(f->cout + n, "\r\n", 2);
	f->cout_len = (size_t)n + 2;
	f->cout_off = 0;
	ftp_reply_init(&f->rep);
	ftp_timer_arm(f);
	ftp_ctl_flush(f);
}

/* The quoted string of a 257 reply ("/home/x" is the current directory). */
static int
ftp_parse_257(const char *text, char *out, size_t n)
{
	const char *p = strchr(text, '"');
	if (p == NULL)
		return -1;
	size_t o = 0;
	for (p++; *p; p++) {
		if (*p == '"') {
			if (p[1] != '"')
				break;
			p++;
		}
		if (o + 1 >= n)
			return -1;
		out[o++] = *p;
	}
	if (*p != '"' || o == 0)
		return -1;
	out[o] = '\0';
	return 0;
}

static void
ftp_feat_note(struct ftp *f)
{
	const char *t = f->rep.text;
	f->f_mlst = ftp_feat_has(t, "MLST");
	f->f_size = ftp_feat_has(t, "SIZE");
	f->f_mdtm = ftp_feat_has(t, "MDTM");
	f->f_rest = ftp_feat_has(t, "REST STREAM");
}

/* ---- TLS (FTPTLS, RFC 4217) ---- */

/* The server's name or address for SNI and the certificate check: the pool key's host
 * ("ftp|host:port"), without the brackets of an IPv6 literal. */
static void
ftp_tls_host(struct ftp *f, char *out, size_t n)
{
	const char *host = f->u->key + 4, *colon = strrchr(host, ':');
	size_t hl = colon ? (size_t)(colon - host) : strlen(host);
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
		host++;
		hl -= 2;
	}
	snprintf(out, n, "%.*s", (int)hl, host);
}

/* After the greeting: AUTH TLS unless FTPTLS Off. Returns 1 when the greeting's handling is
 * taken over (AUTH TLS sent, or the request answered). */
static int
ftp_tls_begin(struct ftp *f)
{
	struct cfg *cfg = f->u->w->cfg;
	if (cfg->ftp_tls == CFG_FTPTLS_OFF)
		return 0;
	if (cfg->tls == NULL) {
		/* no TLS set in this configuration (cannot happen once main.c builds one) */
		if (cfg->ftp_tls != CFG_FTPTLS_REQUIRE)
			return 0;
		f->broken = 1;
		ftp_page(f, 502, NULL, NULL, "FTPTLS Require, but TLS is not set up");
		return 1;
	}
	ftp_cmd(f, FS_AUTH, "AUTH TLS");
	return 1;
}

/* Drive the data connection's TLS handshake: 0 done, 1 in progress (the watcher waits for
 * what it needs), -1 failed (the request is answered). */
static int
ftp_data_hs(struct ftp *f)
{
	int r = tls_handshake(&f->ds);
	if (r == 0) {
		ftp_dio_set(f, 0);
		return 1;
	}
	if (r < 0) {
		const char *why = stream_error(&f->ds);
		f->broken = 1;
		ftp_page(f, 502, NULL, NULL,
		         "TLS handshake on the data connection to %s failed: %s", f->u->addr_text,
		         why[0] ? why : "the handshake failed");
		return -1;
	}
	f->dhs = 0;
	return 0;
}

/* A data connection is up (TCP): with PROT P it becomes TLS, reusing the control
 * connection's session (vsftpd's require_ssl_reuse). Same returns as ftp_data_hs. */
static int
ftp_data_tls_start(struct ftp *f)
{
	if (!f->prot_p)
		return 0;
	char host[300];
	ftp_tls_host(f, host, sizeof(host));
	if (tls_connect(&f->ds, f->u->w->cfg->tls, host, NULL, &f->u->s) < 0) {
		f->broken = 1;
		ftp_page(f, 502, NULL, NULL, "cannot start TLS on the data connection to %s: "
		         "out of memory", f->u->addr_text);
		return -1;
	}
	f->dhs = 1;
	return ftp_data_hs(f);
}

/* ---- the request (what proxy.c writes) ---- */

/* Does the Accept field prefer application/json to text/html? */
static int
ftp_accept_json(struct h1_str v)
{
	double qj = -1, qh = -1, qany = -1;
	size_t i = 0;
	while (i < v.n) {
		size_t s = i;
		while (i < v.n && v.p[i] != ',')
			i++;
		size_t e = i++;
		while (s < e && (v.p[s] == ' ' || v.p[s] == '\t'))
			s++;
		size_t te = s;
		while (te < e && v.p[te] != ';' && v.p[te] != ' ')
			te++;
		double q = 1.0;
		const char *qp = memmem(v.p + te, e - te, "q=", 2);
		if (qp != NULL)
			q = strtod(qp + 2, NULL);
		struct h1_str t = {v.p + s, te - s};
		if (h1_str_ieq(t, "application/json"))
			qj = q;
		else if (h1_str_ieq(t, "text/html"))
			qh = q;
		else if (h1_str_ieq(t, "*/*"))
			qany = q;
	}
	if (qh < 0)
		qh = qany;
	return qj > 0 && qj > qh;
}

/* Is "bytes=N-", "bytes=N-M" or "bytes=-N" (one range) in v? 0 with the bounds (*end -1
 * open; a suffix "-N" as *start FTP_RNG_SUFFIX and *end N, made bounds once SIZE is known), or
 * -1. */
#define FTP_RNG_SUFFIX (-2)
static int
ftp_range_parse(struct h1_str v, int64_t *start, int64_t *end)
{
	char s[128];
	if (v.n >= sizeof(s) || v.n < 7 || strncasecmp(v.p, "bytes=", 6) != 0)
		return -1;
	memcpy(s, v.p + 6, v.n - 6);
	s[v.n - 6] = '\0';
	if (strchr(s, ',') != NULL)
		return -1;
	char *ep;
	errno = 0;
	if (s[0] == '-' && s[1] >= '0' && s[1] <= '9') {
		long long n = strtoll(s + 1, &ep, 10);
		if (errno || *ep != '\0')
			return -1;
		*start = FTP_RNG_SUFFIX;
		*end = n;
		return 0;
	}
	if (s[0] < '0' || s[0] > '9')
		return -1;
	long long a = strtoll(s, &ep, 10);
	if (errno || *ep != '-')
		return -1;
	*start = a;
	*end = -1;
	if (ep[1] == '\0')
		return 0;
	char *ep2;
	long long b = strtoll(ep + 1, &ep2, 10);
	if (errno || *ep2 != '\0' || b < a || ep[1] < '0' || ep[1] > '9')
		return -1;
	*end = b;
	return 0;
}

/* Copy the URL's text into f->url without the ":password" of its userinfo (the one masker,
 * url_password_mask, masks it before the copy is cut to f->url's size). */
static void
ftp_url_mask(struct ftp *f, struct h1_str target)
{
	char *m = malloc(target.n + 1);
	if (m == NULL)
		return; /* f->url stays "ftp://host/" (ftp_req_parse): no password in it */
	memcpy(m, target.p, target.n);
	m[target.n] = '\0';
	size_t n = url_password_mask(m, target.n, 0);
	snprintf(f->url, sizeof(f->url), "%.*s", (int)n, m);
	free(m);
}

/* A complete request head: take what the FTP side needs. Returns 0, or -1 when a page was
 * made (bad request). */
static int
ftp_req_parse(struct ftp *f, size_t hl)
{
	struct worker *w = f->u->w;
	struct h1_head *h = &w->scratch;
	struct h1_limits lim;
	h1_limits_default(&lim);
	int st = 400;
	const char *reason = "bad request";
	f->method = H1_M_GET;
	snprintf(f->url, sizeof(f->url), "ftp://%s/", f->u->key + 4);
	f->rng_start = f->rng_end = -1;
	f->ims = -1;
	f->inm[0] = f->if_range[0] = '\0';
	f->size = f->mtime = -1;
	f->json = f->listing = 0;
	f->existed = 0;
	f->bframe = H1_BODY_NONE;
	f->bleft = 0;
	f->bdone = 1;
	f->deof = f->xfer_ok = f->xfer_started = f->head_wait = 0;
	f->rmode = RM_NONE;
	f->chunked = 0;
	f->body_left = -1;
	f->saved_reply[0] = '\0';
	if (h1_parse_request(buf_head(&f->req), hl, h, &lim, &st, &reason) != H1_OK) {
		ftp_page(f, 400, NULL, NULL, "bad request to the FTP gateway: %s", reason);
		return -1;
	}
	f->method = h->method;
	ftp_url_mask(f, h->target);
	struct h1_url url;
	if (h1_url_parse(h->target, &url, &reason) != H1_OK || url.scheme != H1_SCHEME_FTP) {
		ftp_page(f, 400, NULL, NULL, "not an ftp URL: %s", reason ? reason : "");
		return -1;
	}
	size_t plen = url.path.n;
	const char *q = memchr(url.path.p, '?', plen);
	if (q != NULL)
		plen = (size_t)(q - url.path.p);
	if (ftp_path_parse(url.path.p, plen, &f->path, &reason) < 0) {
		ftp_page(f, 400, NULL, NULL, "bad ftp path: %s", reason);
		return -1;
	}
	/* The login: the URL's, else Authorization: Basic, else anonymous. */
	int has_pass = 0;
	f->user[0] = f->pass[0] = '\0';
	if (url.userinfo.n > 0) {
		if (ftp_userinfo_parse(url.userinfo.p, url.userinfo.n, f->user, sizeof(f->user),
		                       f->pass, sizeof(f->pass), &has_pass) < 0) {
			ftp_page(f, 400, NULL, NULL, "bad login in the ftp URL");
			return -1;
		}
	}
	const struct h1_field *au = h1_field_get(h, H1_F_AUTHORIZATION);
	if (f->user[0] == '\0' && au != NULL) {
		if (ftp_basic_parse(au->value.p, au->value.n, f->user, sizeof(f->user), f->pass,
		                    sizeof(f->pass)) < 0 ||
		    strpbrk(f->user, "\r\n") != NULL || strpbrk(f->pass, "\r\n") != NULL) {
			ftp_page(f, 400, NULL, NULL, "bad Authorization: Basic credentials");
			return -1;
		}
	} else if (f->user[0] != '\0' && !has_pass && au != NULL) {
		/* "ftp://user@host/": the password from the prompt, when it is the same user */
		char bu[FTP_CRED_MAX], bp[FTP_CRED_MAX];
		int ok = ftp_basic_parse(au->value.p, au->value.n, bu, sizeof(bu), bp, sizeof(bp));
		if (ok == 0 && strcmp(bu, f->user) == 0 && strpbrk(bp, "\r\n") == NULL)
			snprintf(f->pass, sizeof(f->pass), "%s", bp);
	}
	f->anon = f->user[0] == '\0' || strcasecmp(f->user, "anonymous") == 0 ||
	          strcasecmp(f->user, "ftp") == 0;
	if (f->user[0] == '\0') {
		snprintf(f->user, sizeof(f->user), "anonymous");
		snprintf(f->pass, sizeof(f->pass), "%s", w->cfg->ftp_anon_password);
	} else if (f->anon && f->pass[0] == '\0') {
		snprintf(f->pass, sizeof(f->pass), "%s", w->cfg->ftp_anon_password);
	}
	f->listing = f->path.is_dir || f->path.type == 'd';
	f->ndirs = f->path.is_dir || f->path.type == 'd' ? f->path.nseg
	           : f->path.nseg > 0 ? f->path.nseg - 1 : 0;
	if (!f->listing && f->path.nseg == 0)
		f->listing = 1;
	const struct h1_field *fl;
	if ((fl = h1_field_find(h, "Accept", 6)) != NULL)
		f->json = ftp_accept_json(fl->value);
	if ((fl = h1_field_find(h, "Range", 5)) != NULL &&
	    ftp_range_parse(fl->value, &f->rng_start, &f->rng_end) < 0)
		f->rng_start = f->rng_end = -1;
	if ((fl = h1_field_find(h, "If-Range", 8)) != NULL)
		snprintf(f->if_range, sizeof(f->if_range), "%.*s", (int)fl->value.n, fl->value.p);
	if ((fl = h1_field_find(h, "If-None-Match", 13)) != NULL)
		snprintf(f->inm, sizeof(f->inm), "%.*s", (int)fl->value.n, fl->value.p);
	if ((fl = h1_field_find(h, "If-Modified-Since", 17)) != NULL)
		f->ims = cache_http_date_parse(fl->value.p, fl->value.n);
	if (f->method != H1_M_GET && f->method != H1_M_HEAD && f->method != H1_M_PUT) {
		ftp_page(f, 405, "Allow: GET, HEAD, PUT\r\n", NULL,
		         "the FTP gateway serves GET, HEAD and PUT, not %.*s", (int)h->method_str.n,
		         h->method_str.p);
		return -1;
	}
	if (f->method == H1_M_PUT) {
		if (f->listing) {
			ftp_page(f, 400, NULL, NULL, "PUT needs a file name, not a directory");
			return -1;
		}
		f->bframe = h->framing;
		f->bleft = h->content_length;
		f->bdone = h->framing == H1_BODY_NONE ||
		           (h->framing == H1_BODY_LENGTH && h->content_length == 0);
		h1_chunked_init(&f->bch);
		/* The client waits for this before its body (curl -T waits a second otherwise);
		 * proxy.c relays a 1xx. */
		if ((h->flags & H1_EXPECT_CONTINUE) && !f->bdone && h->minor >= 1)
			buf_append(&f->resp, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	}
	return 0;
}

/* PUT body bytes from b into f->pbody, decoded; returns bytes taken. */
static ssize_t
ftp_body_take(struct ftp *f, struct buf *b)
{
	size_t taken = 0;
	while (!f->bdone && buf_len(b) > 0) {
		size_t room = buf_room(&f->pbody);
		if (room == 0)
			break;
		if (f->bframe == H1_BODY_LENGTH) {
			size_t n = buf_len(b);
			if (n > f->bleft)
				n = (size_t)f->bleft;
			if (n > room)
				n = room;
			if (buf_append(&f->pbody, buf_head(b), n) < 0)
				break;
			buf_consume(b, n);
			taken += n;
			f->bleft -= n;
			if (f->bleft == 0)
				f->bdone = 1;
		} else {
			size_t used = 0;
			struct h1_str span = {NULL, 0};
			int kind = 0;
			const char *reason = NULL;
			size_t lim = buf_len(b) < room ? buf_len(b) : room;
			int r = h1_chunked_step(&f->bch, buf_head(b), lim, &used, &span, &kind,
			                        &reason);
			if (r == H1_ERR) {
				f->bdone = 1;
				f->broken = 1;
				ftp_page(f, 400, NULL, NULL, "bad chunked request body: %s",
				         reason);
				buf_consume(b, buf_len(b));
				return (ssize_t)taken;
			}
			if (kind == H1_SPAN_DATA && span.n > 0)
				buf_append(&f->pbody, span.p, span.n);
			buf_consume(b, used);
			taken += used;
			if (r == H1_OK)
				f->bdone = 1;
			else if (used == 0 && span.n == 0)
				break;
		}
	}
	if (f->ds.fd >= 0 && f->xfer_started && !f->dconnecting && !f->dwant_write)
		ftp_dio_set(f, EV_WRITE);
	return (ssize_t)taken;
}

static ssize_t
ftp_write(struct up *u, struct buf *b)
{
	struct ftp *f = u->sdata;
	if (f == NULL || f->magic != FTP_MAGIC || f->dead) {
		errno = EPIPE;
		return -1;
	}
	if (!f->have_req && f->broken) {
		errno = EAGAIN; /* the rest of an abandoned body, or a dead connection */
		return -1;
	}
	if (f->have_req) {
		if (f->method == H1_M_PUT && !f->bdone && f->rmode == RM_NONE) {
			ssize_t n = ftp_body_take(f, b);
			if (n > 0)
				return n;
		}
		errno = EAGAIN;
		return -1;
	}
	if (f->rmode != RM_NONE && (buf_len(&f->resp) > 0 || buf_len(&f->rbody) > 0)) {
		errno = EAGAIN; /* the last response is still being read */
		return -1;
	}
	/* A request head: gather it. */
	size_t room = buf_room(&f->req), n = buf_len(b);
	if (n > room)
		n = room;
	size_t before = buf_len(&f->req);
	if (n == 0 || buf_append(&f->req, buf_head(b), n) < 0) {
		errno = n == 0 ? EAGAIN : ENOMEM;
		return -1;
	}
	struct h1_limits lim;
	h1_limits_default(&lim);
	size_t hl = 0;
	int st = 400;
	const char *reason = "bad request";
	int r = h1_head_complete(buf_head(&f->req), buf_len(&f->req), &f->req_scan, &hl, &lim, 1,
	                         &st, &reason);
	if (r == H1_AGAIN) {
		buf_consume(b, n);
		if (buf_room(&f->req) == 0) {
			f->have_req = 1;
			f->rmode = RM_NONE;
			f->broken = 1;
			ftp_page(f, 431, NULL, NULL, "request head too large");
		}
		return (ssize_t)n;
	}
	/* take only the head's bytes from b; the body (PUT) follows */
	size_t from_b = hl - before;
	buf_consume(b, from_b);
	f->req_scan = 0;
	f->have_req = 1;
	if (r == H1_ERR) {
		f->rmode = RM_NONE;
		f->broken = 1;
		ftp_page(f, 400, NULL, NULL, "bad request to the FTP gateway: %s", reason);
	} else if (ftp_req_parse(f, hl) == 0) {
		buf_consume(&f->req, buf_len(&f->req));
		if (ftp_login_elsewhere(f))
			return (ssize_t)from_b;
		if (f->method == H1_M_PUT && !f->bdone) {
			ssize_t m = ftp_body_take(f, b);
			if (m > 0)
				from_b += (size_t)m;
		}
		if (f->greeted && !f->pending_final && f->step != FS_GREETING)
			ftp_req_begin(f);
		return (ssize_t)from_b;
	}
	buf_consume(&f->req, buf_len(&f->req));
	return (ssize_t)from_b;
}

/* ---- the request's steps ---- */

static void
ftp_after_login(struct ftp *f)
{
	if (f->tls_ctl && !f->prot_done) {
		/* RFC 4217: data connections protected too, before the first of them */
		ftp_cmd(f, FS_PBSZ, "PBSZ 0");
		return;
	}
	if (!f->feat_done) {
		ftp_cmd(f, FS_FEAT, "FEAT");
		return;
	}
	if (!f->home_known) {
		ftp_cmd(f, FS_PWD, "PWD");
		return;
	}
	f->seg_i = 0;
	if (!f->at_home) {
		ftp_cmd(f, FS_CWD_HOME, "CWD %s", f->home[0] ? f->home : "/");
		return;
	}
	ftp_nav_next(f);
}

/* A request for another login than the connection's: never USER/PASS again on it. vsftpd
 * answers a second USER for the same name "331 Any password will do" and PASS "230 Already
 * logged in" whatever the password, so a re-login proves nothing (and it refuses another
 * name). The stream ends before any byte, so proxy.c sends the request again on a fresh
 * connection (conn_up_gone), where the login is checked. Checked before any PUT body is
 * taken: proxy.c replays only what it has sent. Returns 1 when it ended the stream. */
static int
ftp_login_elsewhere(struct ftp *f)
{
	if (!f->logged_in ||
	    (strcmp(f->login_user, f->user) == 0 && strcmp(f->login_pass, f->pass) == 0))
		return 0;
	f->broken = 1;
	f->rmode = RM_EOF;
	ftp_kick(f);
	return 1;
}

static void
ftp_req_begin(struct ftp *f)
{
	if (f->rmode != RM_NONE || ftp_login_elsewhere(f))
		return; /* answered already (a bad request), or for a fresh connection */
	if (f->logged_in) {
		ftp_after_login(f);
		return;
	}
	f->at_home = 0;
	f->home_known = 0;
	ftp_cmd(f, FS_USER, "USER %s", f->user);
}

/* The file's validators: is the client's (or the cache's) copy current? */
static int
ftp_not_modified(struct ftp *f, const char *etag)
{
	if (f->inm[0] != '\0') {
		if (etag[0] == '\0')
			return 0;
		if (strcmp(f->inm, "*") == 0)
			return 1;
		const char *p = f->inm;
		size_t el = strlen(etag);
		while ((p = strstr(p, etag)) != NULL) {
			/* "W/" weak forms compare weakly, which is what If-None-Match does */
			if (p[el] == '\0' || p[el] == ',' || p[el] == ' ')
				return 1;
			p += el;
		}
		return 0;
	}
	return f->ims >= 0 && f->mtime >= 0 && f->mtime <= f->ims;
}

static void
ftp_file_fields(struct ftp *f, const char *etag)
{
	char d[40];
	struct cfg *cfg = f->u->w->cfg;
	const char *name = f->path.nseg ? f->path.seg[f->path.nseg - 1] : "";
	buf_printf(&f->resp, "Content-Type: %s\r\n",
	           f->path.type == 'a' ? "text/plain" : ftp_mime_type(name, strlen(name)));
	if (f->mtime >= 0) {
		ftp_http_date(f->mtime, d);
		buf_printf(&f->resp, "Last-Modified: %s\r\n", d);
	}
	if (etag[0])
		buf_printf(&f->resp, "ETag: %s\r\n", etag);
	if (f->path.type != 'a' && f->size >= 0)
		buf_append(&f->resp, "Accept-Ranges: bytes\r\n", 22);
	if (!f->anon && f->mtime < 0)
		buf_printf(&f->resp, "Cache-Control: private, max-age=%u\r\n",
		           cfg->ftp_default_expire_s);
	else if (!f->anon)
		buf_append(&f->resp, "Cache-Control: private\r\n", 24);
	else if (f->mtime < 0)
		buf_printf(&f->resp, "Cache-Control: max-age=%u\r\n", cfg->ftp_default_expire_s);
}

/* SIZE and MDTM are known: answer from them (HEAD, 304, 416) or go on to the transfer. */
static void
ftp_file_decide(struct ftp *f)
{
	char etag[80] = "";
	if (f->size >= 0 && f->mtime >= 0 && f->path.type != 'a')
		ftp_etag(etag, sizeof(etag), f->size, f->mtime);
	if (f->method == H1_M_GET || f->method == H1_M_HEAD) {
		if (ftp_not_modified(f, etag)) {
			ftp_head_start(f, 304);
			char d[40];
			if (etag[0])
				buf_printf(&f->resp, "ETag: %s\r\n", etag);
			if (f->mtime >= 0) {
				ftp_http_date(f->mtime, d);
				buf_printf(&f->resp, "Last-Modified: %s\r\n", d);
			}
			buf_append(&f->resp, "\r\n", 2);
			f->rmode = RM_DONE;
			ftp_req_finish(f);
			return;
		}
		/* One range from a known size; anything else is the whole file. */
		if (f->rng_start != -1 && (f->size < 0 || f->path.type == 'a' ||
		                           (f->if_range[0] && strcmp(f->if_range, etag) != 0)))
			f->rng_start = f->rng_end = -1;
		if (f->rng_start == FTP_RNG_SUFFIX) { /* the last N bytes; none is unsatisfiable */
			int64_t n = f->rng_end;
			f->rng_start = n == 0 ? f->size : n < f->size ? f->size - n : 0;
			f->rng_end = f->size - 1;
		}
		if (f->rng_start >= 0 && f->rng_start >= f->size) {
			ftp_head_start(f, 416);
			buf_printf(&f->resp, "Content-Range: bytes */%" PRId64 "\r\n"
			           "Content-Length: 0\r\n\r\n", f->size);
			f->rmode = RM_DONE;
			ftp_req_finish(f);
			return;
		}
		if (f->rng_start >= 0 && (f->rng_end < 0 || f->rng_end >= f->size))
			f->rng_end = f->size - 1;
		if (f->method == H1_M_HEAD) {
			ftp_head_start(f, 200);
			ftp_file_fields(f, etag);
			if (f->size >= 0 && f->path.type != 'a')
				buf_printf(&f->resp, "Content-Length: %" PRId64 "\r\n", f->size);
			buf_append(&f->resp, "\r\n", 2);
			f->rmode = RM_DONE;
			ftp_req_finish(f);
			return;
		}
	}
	char want = f->path.type == 'a' ? 'A' : 'I';
	if (f->cur_type != want) {
		ftp_cmd(f, FS_TYPE_XFER, "TYPE %c", want);
		return;
	}
	ftp_data_open(f);
}

static void
ftp_nav_next(struct ftp *f)
{
	if (f->seg_i < f->ndirs) {
		f->at_home = 0;
		ftp_cmd(f, FS_CWD, "CWD %s", f->path.seg[f->seg_i++]);
		return;
	}
	if (f->listing) {
		if (f->method == H1_M_PUT) {
			ftp_page(f, 400, NULL, NULL, "PUT needs a file name");
			return;
		}
		ftp_data_open(f);
		return;
	}
	if (f->cur_type != 'I') {
		ftp_cmd(f, FS_TYPE, "TYPE I");
		return;
	}
	ftp_cmd(f, FS_SIZE, "SIZE %s", f->path.seg[f->path.nseg - 1]);
}

/* ---- data connections ---- */

static int
ftp_data_connect(struct ftp *f, unsigned port)
{
	struct sockaddr_storage ss = f->u->addr;
	socklen_t len;
	if (ss.ss_family == AF_INET) {
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
		len = sizeof(struct sockaddr_in);
	} else {
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
		len = sizeof(struct sockaddr_in6);
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	stream_tcp_init(&f->ds, fd);
	f->dconnecting = 1;
	ev_io_init(&f->dio, fd, ftp_dio_cb, f);
	ftp_dio_set(f, EV_WRITE);
	return 0;
}

/* The data connection is set up (connecting, or listening): REST, then the transfer. */
static void
ftp_xfer_send(struct ftp *f)
{
	if (f->listing) {
		int mlsd = f->f_mlst;
		char dir_url[4200];
		snprintf(dir_url, sizeof(dir_url), "%s", f->url);
		char *semi = strstr(dir_url, ";type=");
		if (semi != NULL)
			*semi = '\0';
		size_t dl = strlen(dir_url);
		if (dl == 0 || dir_url[dl - 1] != '/')
			snprintf(dir_url + dl, sizeof(dir_url) - dl, "/");
		ftp_listing_free(f->lst);
		f->lst = ftp_listing_new(dir_url, mlsd, (int64_t)time(NULL),
		                         (size_t)f->u->w->cfg->ftp_max_listing);
		if (f->lst == NULL) {
			ftp_page(f, 500, NULL, NULL, "out of memory for the listing");
			return;
		}
		ftp_cmd(f, FS_XFER, mlsd ? "MLSD" : "LIST");
		return;
	}
	const char *name = f->path.seg[f->path.nseg - 1];
	if (f->method == H1_M_PUT)
		ftp_cmd(f, FS_XFER, "STOR %s", name);
	else
		ftp_cmd(f, FS_XFER, "RETR %s", name);
}

static void
ftp_data_ready(struct ftp *f)
{
	if (f->rng_start > 0 && !f->listing && f->method == H1_M_GET) {
		ftp_cmd(f, FS_REST, "REST %" PRId64, f->rng_start);
		return;
	}
	ftp_xfer_send(f);
}

static void
ftp_data_active(struct ftp *f)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(f->u->s.fd, (struct sockaddr *)&ss, &len) < 0)
		goto fail;
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = 0;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 1) < 0) {
		close(fd);
		goto fail;
	}
	len = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &len);
	f->lfd = fd;
	ev_io_init(&f->lio, fd, ftp_lio_cb, f);
	char arg[128];
	if (ftp_fmt_eprt(arg, sizeof(arg), &ss) == 0) {
		ftp_cmd(f, FS_EPRT, "EPRT %s", arg);
		return;
	}
	if (ftp_fmt_port(arg, sizeof(arg), &ss) == 0) {
		ftp_cmd(f, FS_PORT, "PORT %s", arg);
		return;
	}
fail:
	ftp_page(f, 502, NULL, NULL, "no data connection to %s: cannot listen for an active one",
	         f->u->addr_text);
}

static void
ftp_data_open(struct ftp *f)
{
	ftp_data_close(f);
	f->deof = f->xfer_ok = f->xfer_started = 0;
	if (!f->f_epsv_bad) {
		ftp_cmd(f, FS_EPSV, "EPSV");
		return;
	}
	if (f->u->addr.ss_family == AF_INET) {
		ftp_cmd(f, FS_PASV, "PASV");
		return;
	}
	if (f->u->w->cfg->ftp_active_fallback) {
		ftp_data_active(f);
		return;
	}
	ftp_page(f, 502, NULL, NULL, "no passive data connection to %s (EPSV refused)",
	         f->u->addr_text);
}

static void
ftp_passive_failed(struct ftp *f, const char *why)
{
	char q[512];
	ftp_reply_quote(f, q, sizeof(q));
	if (f->u->w->cfg->ftp_active_fallback) {
		ftp_data_active(f);
		return;
	}
	ftp_page(f, 502, NULL, q, "no data connection to %s: %s", f->u->addr_text, why);
}

/* ---- the transfer ---- */

/* The listing is complete (data ended and 226): render it. */
static void
ftp_listing_answer(struct ftp *f)
{
	const char *reason = NULL;
	if (ftp_listing_end(f->lst, &reason) < 0) {
		ftp_page(f, 502, NULL, NULL, "listing of %s: %s", f->url, reason);
		return;
	}
	struct buf body;
	buf_init(&body, (size_t)f->u->w->cfg->ftp_max_listing * 4 + 65536);
	int rc = f->json ? ftp_listing_json(f->lst, &body) : ftp_listing_html(f->lst, &body);
	ftp_listing_free(f->lst);
	f->lst = NULL;
	if (rc < 0) {
		buf_fini(&body);
		ftp_page(f, 500, NULL, NULL, "cannot render the listing of %s", f->url);
		return;
	}
	struct cfg *cfg = f->u->w->cfg;
	ftp_head_start(f, 200);
	buf_printf(&f->resp, "Content-Type: %s\r\nVary: Accept\r\nCache-Control: %smax-age=%u\r\n"
	           "Content-Length: %zu\r\n\r\n",
	           f->json ? "application/json" : "text/html; charset=utf-8",
	           f->anon ? "" : "private, ", cfg->ftp_listing_expire_s, buf_len(&body));
	if (f->method != H1_M_HEAD) {
		buf_fini(&f->rbody);
		f->rbody = body; /* read() hands it over after the head */
	} else {
		buf_fini(&body);
	}
	f->rmode = RM_DONE;
	ftp_req_finish(f);
}

/* The length of a RETR's body as its head states it: the range's, else SIZE's; -1 when unknown
 * (ASCII, no SIZE: chunked). */
static int64_t
ftp_body_length(const struct ftp *f)
{
	if (f->rng_start >= 0)
		return f->rng_end - f->rng_start + 1;
	return f->size >= 0 && f->path.type != 'a' ? f->size : -1;
}

/* A RETR's response head, into f->resp: sent once the first body bytes are in
 * (ftp_retr_first), or at the 1xx for an empty file. */
static void
ftp_retr_head(struct ftp *f)
{
	char etag[80] = "";
	if (f->size >= 0 && f->mtime >= 0 && f->path.type != 'a')
		ftp_etag(etag, sizeof(etag), f->size, f->mtime);
	f->body_left = ftp_body_length(f);
	ftp_head_start(f, f->rng_start >= 0 ? 206 : 200);
	ftp_file_fields(f, etag);
	if (f->rng_start >= 0)
		buf_printf(&f->resp, "Content-Range: bytes %" PRId64 "-%" PRId64 "/%" PRId64 "\r\n",
		           f->rng_start, f->rng_end, f->size);
	if (f->body_left >= 0) {
		buf_printf(&f->resp, "Content-Length: %" PRId64 "\r\n\r\n", f->body_left);
	} else {
		f->chunked = 1;
		buf_append(&f->resp, "Transfer-Encoding: chunked\r\n\r\n", 30);
	}
	f->rmode = RM_STREAM;
}

/* All of a Content-Length body is read: a range stops here (the server's 426 is expected);
 * the whole file's 226 may still be on its way. */
static void
ftp_body_complete(struct ftp *f)
{
	ftp_data_close(f);
	f->deof = 1;
	f->rmode = RM_DONE;
	if (f->step == FS_XFER_END && !f->xfer_ok) {
		f->pending_final = 1;
		f->step = FS_DONE;
	}
	ftp_req_finish(f);
}

/* The 1xx to RETR. The head waits for the body's first bytes, so that a data connection that
 * fails before them (refused, reset, a TLS handshake or certificate check that fails after the
 * 1xx) is a 502 page naming why and not a 200 cut short, and nothing of it reaches the cache.
 * No wait beyond what the body needs anyway; an empty file is answered at once. */
static void
ftp_retr_begin(struct ftp *f)
{
	if (ftp_body_length(f) == 0) {
		ftp_retr_head(f);
		ftp_data_close(f);
		f->rmode = RM_DONE;
		f->pending_final = f->rep.code < 200; /* a 226 without a 1xx is this one */
		ftp_req_finish(f);
		return;
	}
	f->head_wait = 1;
	if (f->ds.fd >= 0 && !f->dconnecting && !f->dhs)
		ftp_data_go(f); /* else when it is connected (and its TLS handshake done) */
}

/* head_wait: the data connection is readable. The first bytes commit the head and follow it
 * in f->resp (chunk-framed for a chunked body); the data ending first waits for the final
 * reply (ftp_xfer_check_end); an error first is the 502. */
static void
ftp_retr_first(struct ftp *f)
{
	char tmp[16384];
	size_t cap = sizeof(tmp);
	int64_t len = ftp_body_length(f);
	if (len >= 0 && (uint64_t)len < cap)
		cap = (size_t)len;
	struct buf v;
	ftp_buf_view(&v, tmp, 0, cap);
	ssize_t n = stream_read(&f->ds, &v);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		ftp_dio_set(f, EV_READ);
		return;
	}
	if (n == 0) {
		ftp_data_end(f);
		f->deof = 1;
		if (f->ctl_gone) {
			ftp_page(f, 502, NULL, NULL, "the FTP server %s closed the control connection",
			         f->u->addr_text);
			return;
		}
		ftp_xfer_check_end(f);
		return;
	}
	if (n < 0) {
		const char *why = stream_error(&f->ds);
		f->broken = 1;
		ftp_page(f, 502, NULL, NULL, "the data connection to %s failed before any data: %s",
		         f->u->addr_text, why[0] ? why : strerror(errno));
		return;
	}
	ftp_timer_arm(f);
	f->head_wait = 0;
	ftp_retr_head(f);
	if (f->chunked) {
		buf_printf(&f->resp, "%zx\r\n", (size_t)n);
		buf_append(&f->resp, tmp, (size_t)n);
		buf_append(&f->resp, "\r\n", 2);
	} else {
		buf_append(&f->resp, tmp, (size_t)n);
		f->body_left -= n;
		if (f->body_left == 0) {
			ftp_body_complete(f);
			return;
		}
	}
	/* the rest is read by ftp_read once f->resp is drained */
	ftp_dio_set(f, 0);
	ftp_kick(f);
	if (stream_pending(&f->ds))
		ev_post_start(f->u->w->loop, &f->spost);
}

/* Both the data's end and the final reply are needed to call a transfer complete. */
static void
ftp_xfer_check_end(struct ftp *f)
{
	if (!f->xfer_ok || !f->deof)
		return;
	if (f->listing) {
		ftp_listing_answer(f);
		return;
	}
	if (f->method == H1_M_PUT) {
		ftp_head_start(f, f->existed ? 200 : 201);
		const char *msg = f->existed ? "replaced\n" : "created\n";
		if (!f->existed)
			buf_printf(&f->resp, "Location: %s\r\n", f->url);
		buf_printf(&f->resp, "Content-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s",
		           strlen(msg), msg);
		f->rmode = RM_DONE;
		ftp_req_finish(f);
		return;
	}
	if (f->head_wait) {
		/* the data ended before any byte, and the server calls the transfer complete */
		int64_t len = ftp_body_length(f);
		if (len > 0) {
			ftp_page(f, 502, NULL, NULL, "the data connection to %s ended before any "
			         "data (%" PRId64 " bytes expected)", f->u->addr_text, len);
			return;
		}
		f->head_wait = 0;
		ftp_retr_head(f); /* an empty body of unknown length: chunked */
	}
	if (f->rmode == RM_STREAM && f->chunked) {
		buf_append(&f->resp, "0\r\n\r\n", 5);
		f->rmode = RM_DONE;
		ftp_req_finish(f);
	}
}

/* The transfer's final reply. */
static void
ftp_xfer_final(struct ftp *f)
{
	int code = f->rep.code;
	if (code == 226 || code == 250) {
		f->xfer_ok = 1;
		if (f->rmode == RM_DONE) {
			ftp_req_finish(f); /* a range or a body already complete */
			return;
		}
		if (f->ds.fd < 0 && f->lfd < 0)
			f->deof = 1;
		ftp_xfer_check_end(f);
		return;
	}
	if (f->rmode == RM_DONE) {
		ftp_req_finish(f); /* we closed the data connection early: 426 is expected */
		return;
	}
	ftp_fail_reply(f, f->listing ? "the listing failed" : f->method == H1_M_PUT
	                                                      ? "the upload failed"
	                                                      : "the transfer failed");
}

/* ---- replies ---- */

/* The session can take requests: greeted (in TLS when it was asked for and given). Start the
 * waiting request, if any. interest: the control connection's loop interest is set first
 * (after a handshake, which may have changed what the stream waits for). */
static void
ftp_session_ready(struct ftp *f, int interest)
{
	f->greeted = 1;
	f->step = FS_READY;
	ev_timer_stop(&f->tmo);
	if (interest)
		ftp_ctl_interest(f);
	if (f->have_req && f->rmode == RM_NONE)
		ftp_req_begin(f);
}

static void
ftp_on_reply(struct ftp *f)
{
	int code = f->rep.code;
	if (log_on(CFG_LL_DEBUG)) {
		char q[256];
		ftp_reply_last_line(&f->rep, q, sizeof(q));
		log_debug("ftp %s: < %d %s", f->u->addr_text, code, q);
	}
	if (f->pending_final && code >= 200) {
		/* the end of a transfer we had stopped reading (a range, a complete body) */
		f->pending_final = 0;
		if (f->step == FS_DONE)
			ev_timer_stop(&f->tmo);
		if (f->have_req && f->rmode == RM_NONE)
			ftp_req_begin(f);
		return;
	}
	if (code < 200 && f->step != FS_XFER) {
		ftp_timer_arm(f);
		return; /* a preliminary reply: the final one follows */
	}
	switch (f->step) {
	case FS_GREETING:
		if (code == 220) {
			if (ftp_tls_begin(f))
				return;
			ftp_session_ready(f, 0);
			return;
		}
		f->broken = 1;
		ftp_fail_reply(f, "the FTP server refused the connection");
		return;
	case FS_AUTH:
		if (code == 234) {
			char host[300];
			ftp_tls_host(f, host, sizeof(host));
			if (tls_connect(&f->u->s, f->u->w->cfg->tls, host, f->u->key, NULL) < 0) {
				f->broken = 1;
				ftp_page(f, 502, NULL, NULL, "cannot start TLS with the FTP server "
				         "%s: out of memory", f->u->addr_text);
				return;
			}
			f->step = FS_AUTH_HS; /* ftp_ctl_read drives the handshake */
			return;
		}
		if (code == 421) {
			f->broken = 1;
			ftp_fail_reply(f, "the FTP server refused the connection");
			return;
		}
		if (f->u->w->cfg->ftp_tls == CFG_FTPTLS_REQUIRE) {
			/* a 502, not the 401 a 530 would make: no login can fix it */
			char q[512];
			ftp_reply_quote(f, q, sizeof(q));
			f->broken = 1;
			ftp_page(f, 502, NULL, q,
			         "the FTP server does not offer TLS (FTPTLS Require)");
			return;
		}
		/* FTPTLS Try: no TLS here, plain FTP as without it */
		ftp_session_ready(f, 0);
		return;
	case FS_PBSZ:
		/* whatever the reply, PROT P decides (some servers take it without PBSZ) */
		ftp_cmd(f, FS_PROT, "PROT P");
		return;
	case FS_PROT:
		f->prot_done = 1;
		f->prot_p = code == 200;
		if (!f->prot_p && f->u->w->cfg->ftp_tls == CFG_FTPTLS_REQUIRE) {
			char q[512];
			ftp_reply_quote(f, q, sizeof(q));
			f->broken = 1;
			ftp_page(f, 502, NULL, q, "the FTP server refuses TLS on data connections "
			         "(PROT P; FTPTLS Require)");
			return;
		}
		ftp_after_login(f);
		return;
	case FS_USER:
		if (code == 230)
			goto logged_in;
		if (code == 331) {
			ftp_cmd(f, FS_PASS, "PASS %s", f->pass);
			return;
		}
		ftp_fail_reply(f, "the FTP server refused the login");
		return;
	case FS_PASS:
		if (code == 230 || code == 202)
			goto logged_in;
		if (code == 332) {
			ftp_page(f, 502, NULL, NULL,
			         "the FTP server wants an account (ACCT): not supported");
			return;
		}
		ftp_fail_reply(f, "the FTP server refused the login");
		return;
	logged_in:
		f->logged_in = 1;
		f->at_home = 1;
		f->cur_type = 0;
		snprintf(f->login_user, sizeof(f->login_user), "%s", f->user);
		snprintf(f->login_pass, sizeof(f->login_pass), "%s", f->pass);
		ftp_after_login(f);
		return;
	case FS_FEAT:
		f->feat_done = 1;
		if (code == 211)
			ftp_feat_note(f);
		ftp_after_login(f);
		return;
	case FS_PWD:
		f->home_known = 1;
		if (code != 257 || ftp_parse_257(f->rep.text, f->home, sizeof(f->home)) < 0)
			f->home[0] = '\0';
		ftp_after_login(f);
		return;
	case FS_CWD_HOME:
		if (code == 250 || code == 200) {
			f->at_home = 1;
			ftp_nav_next(f);
			return;
		}
		f->broken = 1;
		ftp_fail_reply(f, "cannot go back to the login directory");
		return;
	case FS_CWD:
		if (code == 250 || code == 200) {
			ftp_nav_next(f);
			return;
		}
		ftp_fail_reply(f, "no such directory");
		return;
	case FS_TYPE:
		if (code == 200) {
			f->cur_type = 'I';
			ftp_nav_next(f);
			return;
		}
		ftp_fail_reply(f, "TYPE I refused");
		return;
	case FS_TYPE_XFER:
		if (code == 200) {
			f->cur_type = f->path.type == 'a' ? 'A' : 'I';
			ftp_data_open(f);
			return;
		}
		ftp_fail_reply(f, "the transfer type was refused");
		return;
	case FS_SIZE:
		if (code == 213 && ftp_parse_size(f->rep.text, &f->size) == 0) {
			f->existed = 1;
		} else if (code == 550 && f->method != H1_M_PUT) {
			/* Not a file: a directory (301 to the slash form) or nothing (RETR
			 * says which). */
			f->saved_code = code;
			ftp_reply_quote(f, f->saved_reply, sizeof(f->saved_reply));
			f->at_home = 0;
			ftp_cmd(f, FS_CWD_PROBE, "CWD %s", f->path.seg[f->path.nseg - 1]);
			return;
		} else {
			f->size = -1;
		}
		ftp_cmd(f, FS_MDTM, "MDTM %s", f->path.seg[f->path.nseg - 1]);
		return;
	case FS_CWD_PROBE:
		if (code == 250 || code == 200) {
			char loc[4400];
			snprintf(loc, sizeof(loc), "Location: %s", f->url);
			char *semi = strstr(loc, ";type=");
			if (semi != NULL)
				*semi = '\0';
			size_t n = strlen(loc);
			snprintf(loc + n, sizeof(loc) - n, "/\r\n");
			ftp_page(f, 301, loc, NULL, "%s is a directory", f->url);
			return;
		}
		ftp_cmd(f, FS_MDTM, "MDTM %s", f->path.seg[f->path.nseg - 1]);
		return;
	case FS_MDTM:
		if (code != 213 || ftp_parse_mdtm(f->rep.text, &f->mtime) < 0)
			f->mtime = -1;
		ftp_file_decide(f);
		return;
	case FS_EPSV: {
		unsigned port = 0;
		if (code == 229 && ftp_parse_epsv(f->rep.text, &port) == 0 && port > 0 &&
		    port < 65536) {
			if (ftp_data_connect(f, port) == 0) {
				ftp_data_ready(f);
				return;
			}
		}
		if (code >= 500 || code == 229) {
			f->f_epsv_bad = 1;
			ftp_data_open(f);
			return;
		}
		ftp_passive_failed(f, "EPSV refused");
		return;
	}
	case FS_PASV: {
		unsigned port = 0;
		uint32_t a4 = 0;
		if (code == 227 && ftp_parse_pasv(f->rep.text, &port, &a4) == 0 && port > 0 &&
		    port < 65536) {
			const struct sockaddr_in *s4 = (const struct sockaddr_in *)&f->u->addr;
			if (a4 != ntohl(s4->sin_addr.s_addr) && log_on(CFG_LL_INFO)) {
				struct in_addr ia = {htonl(a4)};
				char t[INET_ADDRSTRLEN];
				inet_ntop(AF_INET, &ia, t, sizeof(t));
				log_info("ftp %s: PASV named %s; connecting to the control peer "
				         "instead", f->u->addr_text, t);
			}
			if (ftp_data_connect(f, port) == 0) {
				ftp_data_ready(f);
				return;
			}
		}
		ftp_passive_failed(f, "PASV refused");
		return;
	}
	case FS_EPRT:
		if (code == 200) {
			ftp_data_ready(f);
			return;
		}
		if (f->u->addr.ss_family == AF_INET) {
			struct sockaddr_storage ss;
			socklen_t len = sizeof(ss);
			char arg[128];
			if (getsockname(f->lfd, (struct sockaddr *)&ss, &len) == 0 &&
			    ftp_fmt_port(arg, sizeof(arg), &ss) == 0) {
				ftp_cmd(f, FS_PORT, "PORT %s", arg);
				return;
			}
		}
		ftp_fail_reply(f, "no data connection: EPRT refused");
		return;
	case FS_PORT:
		if (code == 200) {
			ftp_data_ready(f);
			return;
		}
		ftp_fail_reply(f, "no data connection: PORT refused");
		return;
	case FS_REST:
		if (code != 350)
			f->rng_start = f->rng_end = -1; /* no restart: the whole file */
		ftp_xfer_send(f);
		return;
	case FS_XFER:
		if (code == 125 || code == 150 || code == 226 || code == 250) {
			/* the transfer starts (226 without a 1xx: an empty listing or file) */
			f->step = FS_XFER_END;
			f->xfer_started = 1;
			ftp_timer_arm(f);
			if (f->lfd >= 0)
				ev_io_set(f->u->w->loop, &f->lio, EV_READ);
			if (f->listing) {
				if (f->ds.fd >= 0 && !f->dconnecting)
					ftp_data_go(f);
			} else if (f->method == H1_M_PUT) {
				if (f->ds.fd >= 0 && !f->dconnecting)
					ftp_data_go(f);
			} else {
				ftp_retr_begin(f);
			}
			if (code >= 200 && !f->dead)
				ftp_xfer_final(f);
			return;
		}
		if (code < 200)
			return;
		if (code == 425 || code == 426) {
			ftp_data_close(f);
			char q[512];
			ftp_reply_quote(f, q, sizeof(q));
			ftp_page(f, 502, NULL, q, "the data connection to %s failed",
			         f->u->addr_text);
			return;
		}
		ftp_fail_reply(f, f->listing ? "cannot list this directory"
		                  : f->method == H1_M_PUT ? "cannot store this file"
		                                          : "cannot retrieve this file");
		return;
	case FS_XFER_END:
		ftp_xfer_final(f);
		return;
	case FS_READY:
	case FS_DONE:
	default:
		/* unsolicited: 421 on an idle connection, or noise */
		f->broken = 1;
		return;
	}
}

/* ---- watchers ---- */

/* The control connection's TLS handshake (after 234 to AUTH TLS), driven by the watcher. A
 * certificate that fails verification ends the request with a 502 naming the reason, under Try
 * as well: a server that offers TLS and cannot prove who it is is never used in plain. */
static void
ftp_auth_drive(struct ftp *f)
{
	struct up *u = f->u;
	int r = tls_handshake(&u->s);
	if (r == 0) {
		ftp_ctl_interest(f);
		return;
	}
	if (r < 0) {
		const char *why = stream_error(&u->s);
		f->broken = 1;
		ev_io_stop(&u->io);
		ftp_page(f, 502, NULL, NULL, "TLS with the FTP server %s failed: %s", u->addr_text,
		         why[0] ? why : "the handshake failed");
		return;
	}
	f->tls_ctl = 1;
	ftp_session_ready(f, 1);
	if (!f->dead && stream_pending(&u->s))
		ev_post_start(u->w->loop, &f->spost);
}

/* The control connection ended (or failed) while reading. */
static void
ftp_ctl_gone(struct ftp *f)
{
	struct up *u = f->u;
	f->broken = 1;
	if (u->state == UP_IDLE) {
		up_close(u);
		return;
	}
	ev_io_stop(&u->io);
	f->ctl_gone = 1;
	if (f->head_wait && f->ds.fd >= 0 && ftp_body_length(f) > 0)
		return; /* its data decides, as for a body under way (below): complete or cut */
	if (f->rmode == RM_NONE && f->have_req) {
		enum ftp_step st = f->step;
		int early = st == FS_USER || st == FS_CWD_HOME || st == FS_TYPE ||
		            st == FS_SIZE || st == FS_EPSV || st == FS_FEAT || st == FS_PWD;
		if (u->nreq > 1 && early) {
			/* a pooled connection that had died: proxy.c retries */
			f->rmode = RM_EOF;
			ftp_kick(f);
			return;
		}
		const char *why = stream_error(&u->s);
		if (stream_is_tls(&u->s) && why[0])
			ftp_page(f, 502, NULL, NULL, "the TLS control connection to the FTP server "
			         "%s failed: %s", u->addr_text, why);
		else
			ftp_page(f, 502, NULL, NULL,
			         "the FTP server %s closed the control connection", u->addr_text);
		return;
	}
	if (f->rmode == RM_STREAM && !(f->deof && f->xfer_ok)) {
		/* the data may still complete a Content-Length body: read() decides */
		if (f->chunked) {
			f->rmode = RM_FAIL;
			ftp_data_close(f);
		}
		ftp_kick(f);
	}
}

/* Replies from the control connection: a bounded number of reads a turn; what OpenSSL still
 * holds after them is read from a posted event (the descriptor will not announce it). */
static void
ftp_ctl_read(struct ftp *f)
{
	struct up *u = f->u;
	for (int round = 0; round < 16; round++) {
		ssize_t n = stream_read(&u->s, &f->cin);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0 && errno == ENOBUFS) {
			/* ftp_reply_feed takes every byte it is given: cannot happen */
			buf_consume(&f->cin, buf_len(&f->cin));
			continue;
		}
		if (n <= 0) {
			/* the server closed the control connection */
			ftp_ctl_gone(f);
			return;
		}
		size_t off = 0, len = buf_len(&f->cin);
		const char *in = buf_head(&f->cin);
		while (off < len && !f->dead) {
			size_t used = 0;
			const char *reason = NULL;
			int r = ftp_reply_feed(&f->rep, in + off, len - off, &used, &reason);
			off += used;
			if (r == FTPR_AGAIN)
				break;
			if (r == FTPR_ERR) {
				f->broken = 1;
				buf_consume(&f->cin, buf_len(&f->cin));
				if (u->state == UP_IDLE) {
					up_close(u);
					return;
				}
				ev_io_stop(&u->io);
				ftp_page(f, 502, NULL, NULL, "bad reply from the FTP server %s: %s",
				         u->addr_text, reason);
				return;
			}
			ftp_on_reply(f);
			ftp_reply_init(&f->rep);
			if (u->state == UP_IDLE && f->broken) {
				up_close(u);
				return;
			}
			if (f->step == FS_AUTH_HS) {
				/* 234: what follows is TLS (nothing may come between) */
				off = len;
				break;
			}
		}
		if (f->dead)
			return;
		buf_consume(&f->cin, off);
		if (f->step == FS_AUTH_HS) {
			buf_consume(&f->cin, buf_len(&f->cin));
			ftp_auth_drive(f);
			return;
		}
	}
	if (stream_pending(&u->s))
		ev_post_start(u->w->loop, &f->spost);
}

static void
ftp_cio_cb(struct ev_io *io, unsigned revents)
{
	struct ftp *f = io->arg;
	if (f == NULL || f->magic != FTP_MAGIC || f->dead)
		return;
	unsigned rev = stream_ready(&f->u->s, revents) | (revents & EV_ERROR);
	if (f->step == FS_AUTH_HS) {
		ftp_auth_drive(f);
		return;
	}
	if (rev & EV_WRITE)
		ftp_ctl_flush(f);
	if (!f->dead && (rev & (EV_READ | EV_ERROR)))
		ftp_ctl_read(f);
}

/* Listing data: read it all (proxy.c is not reading yet: the page is made at the end). */
static void
ftp_dio_listing(struct ftp *f)
{
	char tmp[16384];
	for (int i = 0; i < 8; i++) {
		struct buf v;
		ftp_buf_view(&v, tmp, 0, sizeof(tmp));
		ssize_t n = stream_read(&f->ds, &v);
		if (n > 0) {
			const char *reason = NULL;
			ftp_timer_arm(f);
			if (ftp_listing_feed(f->lst, tmp, (size_t)n, &reason) < 0) {
				/* the server is still sending: this connection is done */
				f->broken = 1;
				ftp_page(f, 502, NULL, NULL, "listing of %s: %s", f->url, reason);
				return;
			}
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ftp_dio_set(f, EV_READ);
			return;
		}
		ftp_data_end(f);
		f->deof = 1;
		ftp_xfer_check_end(f);
		return;
	}
	if (stream_pending(&f->ds))
		ev_post_start(f->u->w->loop, &f->spost);
}

/* The end of a TLS upload: close_notify, then the server's end read before the descriptor is
 * closed (closing it with the server's session tickets unread would send a reset, which can
 * cost the server the last bytes of the file). 1 while waiting, 0 done. */
static int
ftp_dio_tls_close(struct ftp *f)
{
	if (!f->dshut) {
		if (stream_shutdown_wr(&f->ds) < 0 && errno == EAGAIN) {
			ftp_dio_set(f, EV_WRITE);
			return 1;
		}
		f->dshut = 1;
	}
	char tmp[4096];
	for (int i = 0; i < 8; i++) {
		struct buf v;
		ftp_buf_view(&v, tmp, 0, sizeof(tmp));
		ssize_t n = stream_read(&f->ds, &v);
		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ftp_dio_set(f, EV_READ);
			return 1;
		}
		return 0;
	}
	ftp_dio_set(f, EV_READ);
	return 1;
}

/* PUT body: from f->pbody to the data connection; closed when the body is all sent. */
static void
ftp_dio_put(struct ftp *f)
{
	if (buf_len(&f->pbody) > 0) {
		ssize_t n = stream_write(&f->ds, &f->pbody, 0);
		if (n > 0) {
			ftp_timer_arm(f);
			ftp_kick(f); /* room for more of the body */
		} else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			f->broken = 1;
			ftp_page(f, 502, NULL, NULL,
			         "the data connection to %s failed while storing", f->u->addr_text);
			return;
		}
	}
	if (f->bdone && buf_len(&f->pbody) == 0) {
		if (stream_is_tls(&f->ds) && ftp_dio_tls_close(f) > 0)
			return;
		ftp_data_end(f);
		f->deof = 1;
		ftp_xfer_check_end(f);
		return;
	}
	ftp_dio_set(f, buf_len(&f->pbody) > 0 ? EV_WRITE : 0);
}

/* The data connection is ready for bytes (connected, TLS done): watch it for what the
 * transfer does, once it has started. */
static void
ftp_data_go(struct ftp *f)
{
	unsigned ev = 0;
	if (f->xfer_started)
		ev = f->listing || f->head_wait ? EV_READ
		     : f->method == H1_M_PUT ? EV_WRITE : (f->want & EV_READ);
	ftp_dio_set(f, ev);
	if (stream_pending(&f->ds))
		ev_post_start(f->u->w->loop, &f->spost);
}

static void
ftp_dio_cb(struct ev_io *io, unsigned revents)
{
	(void)revents;
	struct ftp *f = io->arg;
	if (f == NULL || f->magic != FTP_MAGIC || f->dead || f->ds.fd < 0)
		return;
	if (f->dconnecting) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(f->ds.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err != 0) {
			f->broken = 1;
			ftp_page(f, 502, NULL, NULL, "the data connection to %s failed: %s",
			         f->u->addr_text, strerror(err));
			return;
		}
		f->dconnecting = 0;
		if (ftp_data_tls_start(f) == 0)
			ftp_data_go(f);
		return;
	}
	if (f->dhs) {
		if (ftp_data_hs(f) == 0)
			ftp_data_go(f);
		return;
	}
	if (f->listing) {
		ftp_dio_listing(f);
		return;
	}
	if (f->method == H1_M_PUT) {
		ftp_dio_put(f);
		return;
	}
	if (f->head_wait) {
		ftp_retr_first(f);
		return;
	}
	/* a file body: proxy.c reads it (ftp_read) */
	if (f->u->state == UP_BUSY && f->u->owner != NULL && (f->want & EV_READ)) {
		proxy_up_io(f->u, EV_READ);
		return;
	}
	ftp_dio_set(f, 0);
}

/* Active mode: the server connects to our listening socket. */
static void
ftp_lio_cb(struct ev_io *io, unsigned revents)
{
	(void)revents;
	struct ftp *f = io->arg;
	if (f == NULL || f->magic != FTP_MAGIC || f->dead || f->lfd < 0)
		return;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = accept4(f->lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	/* only the control connection's peer may connect (no third party) */
	char a[64], b[64];
	gh_addr_text(&ss, a, sizeof(a), 0);
	gh_addr_text(&f->u->addr, b, sizeof(b), 0);
	if (strcmp(a, b) != 0) {
		log_info("ftp %s: active data connection from %s refused", f->u->addr_text, a);
		close(fd);
		return;
	}
	ev_io_stop(&f->lio);
	close(f->lfd);
	f->lfd = -1;
	stream_tcp_init(&f->ds, fd);
	f->dconnecting = 0;
	ev_io_init(&f->dio, fd, ftp_dio_cb, f);
	if (ftp_data_tls_start(f) == 0)
		ftp_data_go(f);
}

static void
ftp_tmo_cb(struct ev_timer *t)
{
	struct ftp *f = t->arg;
	if (f == NULL || f->magic != FTP_MAGIC || f->dead)
		return;
	struct up *u = f->u;
	if (u->state == UP_IDLE) {
		up_close(u); /* a transfer's final reply never came */
		return;
	}
	if (f->rmode == RM_STREAM && !(f->want & EV_READ) && buf_len(&f->resp) == 0) {
		/* proxy.c is not reading (a slow client): its own Timeout judges the client */
		ftp_timer_arm(f);
		return;
	}
	f->broken = 1;
	unsigned secs = u->w->cfg->proxy_timeout_ms / 1000;
	if (f->rmode == RM_NONE && f->have_req && f->pending_final && u->nreq > 1) {
		/* the last transfer's reply never came: nothing of this request was sent, so
		 * proxy.c sends it again on a fresh connection */
		f->rmode = RM_EOF;
		ftp_kick(f);
		return;
	}
	if (f->rmode == RM_NONE && f->have_req && f->head_wait) {
		ftp_page(f, 504, NULL, NULL, "the FTP server %s sent no data for %s within %u s",
		         u->addr_text, f->last_cmd, secs);
		return;
	}
	if (f->rmode == RM_NONE && f->have_req) {
		ftp_page(f, 504, NULL, NULL, "the FTP server %s did not answer %s within %u s",
		         u->addr_text, f->last_cmd, secs);
		return;
	}
	if (f->rmode == RM_STREAM) {
		f->rmode = RM_FAIL;
		ftp_data_close(f);
		ftp_kick(f);
	}
}

/* ---- the stream's operations ---- */

static unsigned
ftp_ready(struct ftp *f)
{
	unsigned r = 0;
	if (buf_len(&f->resp) > 0 || buf_len(&f->rbody) > 0 || f->rmode == RM_FAIL ||
	    f->rmode == RM_EOF)
		r |= EV_READ;
	if (!f->have_req && f->rmode != RM_STREAM && buf_len(&f->resp) == 0 &&
	    buf_len(&f->rbody) == 0)
		r |= EV_WRITE;
	else if (f->have_req && f->method == H1_M_PUT && !f->bdone && f->rmode == RM_NONE &&
	         buf_room(&f->pbody) > 0)
		r |= EV_WRITE;
	return r;
}

static void
ftp_kick(struct ftp *f)
{
	if (f->dead)
		return;
	if (f->want & ftp_ready(f))
		ev_post_start(f->u->w->loop, &f->post);
}

static void
ftp_post_cb(struct ev_post *p)
{
	struct ftp *f = p->arg;
	if (f == NULL || f->magic != FTP_MAGIC || f->dead)
		return;
	struct up *u = f->u;
	if (u->state != UP_BUSY || u->owner == NULL)
		return;
	unsigned rev = f->want & ftp_ready(f);
	if (rev)
		proxy_up_io(u, rev);
}

static ssize_t
ftp_read(struct up *u, struct buf *b)
{
	struct ftp *f = u->sdata;
	if (f == NULL || f->magic != FTP_MAGIC || f->dead) {
		errno = ECONNRESET;
		return -1;
	}
	struct buf *src = buf_len(&f->resp) > 0 ? &f->resp : &f->rbody;
	size_t rl = buf_len(src);
	if (rl > 0) {
		size_t avail = 0;
		char *p = buf_reserve(b, rl, &avail);
		if (p == NULL) {
			errno = ENOBUFS;
			return -1;
		}
		size_t n = rl < avail ? rl : avail;
		memcpy(p, buf_head(src), n);
		buf_commit(b, n);
		buf_consume(src, n);
		if (buf_len(src) == 0)
			buf_fini(src);
		ftp_kick(f);
		return (ssize_t)n;
	}
	switch (f->rmode) {
	case RM_FAIL:
		errno = ECONNRESET;
		return -1;
	case RM_EOF:
		return 0;
	case RM_STREAM:
		break;
	default:
		errno = EAGAIN;
		return -1;
	}
	if (f->ds.fd < 0 || f->dconnecting || f->dhs) {
		errno = EAGAIN;
		return -1;
	}
	size_t want = FTP_READ_MAX, avail = 0;
	if (!f->chunked && f->body_left >= 0 && (uint64_t)f->body_left < want)
		want = (size_t)f->body_left;
	char *p = buf_reserve(b, f->chunked ? want + 16 : want, &avail);
	if (p == NULL || (f->chunked && avail < 16)) {
		errno = ENOBUFS;
		return -1;
	}
	size_t cap = f->chunked ? avail - 12 : avail;
	if (cap > want)
		cap = want;
	struct buf v;
	ftp_buf_view(&v, f->chunked ? p + 10 : p, 0, cap);
	ssize_t n = stream_read(&f->ds, &v);
	if (n > 0) {
		ftp_timer_arm(f);
		if (f->chunked) {
			char hdr[24];
			snprintf(hdr, sizeof(hdr), "%08x\r\n", (unsigned)n); /* n <= FTP_READ_MAX */
			memcpy(p, hdr, 10);
			memcpy(p + 10 + n, "\r\n", 2);
			buf_commit(b, (size_t)n + 12);
			return n + 12;
		}
		buf_commit(b, (size_t)n);
		f->body_left -= n;
		if (f->body_left == 0)
			ftp_body_complete(f);
		return n;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		ftp_dio_set(f, f->want & EV_READ);
		errno = EAGAIN;
		return -1;
	}
	/* the data connection ended */
	ftp_data_end(f);
	f->deof = 1;
	if (!f->chunked) {
		/* short of Content-Length: never a complete-looking body */
		log_info("ftp %s: %s: the data connection ended %" PRId64 " bytes short",
		         u->addr_text, f->url, f->body_left);
		f->rmode = RM_FAIL;
		f->broken = 1;
		errno = ECONNRESET;
		return -1;
	}
	ftp_xfer_check_end(f); /* with the 226: the last chunk */
	if (buf_len(&f->resp) > 0)
		return ftp_read(u, b);
	errno = EAGAIN;
	return -1;
}

static void
ftp_shutdown_wr(struct up *u)
{
	(void)u;
}

static int
ftp_want(struct up *u, unsigned events)
{
	struct ftp *f = u->sdata;
	if (f == NULL || f->magic != FTP_MAGIC || f->dead)
		return 0;
	f->want = events;
	if (f->rmode == RM_STREAM && f->ds.fd >= 0 && !f->dconnecting && !f->dhs &&
	    buf_len(&f->resp) == 0)
		ftp_dio_set(f, events & EV_READ);
	ftp_kick(f);
	return 0;
}

static int
ftp_idle_usable(struct up *u)
{
	struct ftp *f = u->sdata;
	if (f == NULL || f->broken || !f->greeted)
		return 0;
	if (stream_pending(&u->s))
		return f->pending_final; /* a reply OpenSSL holds */
	/* raw bytes: on TLS a record that may hold a reply; either way, not idle */
	char c;
	ssize_t n = recv(u->s.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0)
		return 0;
	if (n > 0)
		return f->pending_final; /* its transfer's reply, else something unsolicited */
	return errno == EAGAIN || errno == EWOULDBLOCK;
}

static int
ftp_idle(struct up *u)
{
	struct ftp *f = u->sdata;
	if (f == NULL || f->broken || f->have_req || buf_len(&f->resp) > 0 ||
	    buf_len(&f->rbody) > 0 ||
	    (f->rmode != RM_DONE && f->rmode != RM_NONE))
		return -1;
	f->want = 0;
	ev_post_stop(&f->post);
	ftp_data_close(f);
	buf_release(&f->req);
	buf_release(&f->pbody);
	buf_release(&f->resp);
	buf_release(&f->cin);
	f->rmode = RM_NONE;
	return ev_io_set(u->w->loop, &u->io, stream_interest(&u->s, EV_READ));
}

static void
ftp_free_deferred(struct ev_loop *loop, void *arg)
{
	(void)loop;
	struct ftp *f = arg;
	buf_fini(&f->req);
	buf_fini(&f->resp);
	buf_fini(&f->rbody);
	buf_fini(&f->pbody);
	buf_fini(&f->cin);
	ftp_listing_free(f->lst);
	f->magic = 0;
	free(f);
}

static void
ftp_close(struct up *u)
{
	struct ftp *f = u->sdata;
	if (f != NULL && f->magic == FTP_MAGIC && !f->dead) {
		f->dead = 1;
		ev_post_stop(&f->post);
		ev_post_stop(&f->spost);
		ev_timer_stop(&f->tmo);
		ftp_data_close(f);
		if (u->s.fd >= 0 && f->greeted && !f->broken) {
			char quit[] = "QUIT\r\n";
			struct buf v;
			ftp_buf_view(&v, quit, 6, 6);
			(void)stream_write(&u->s, &v, 0); /* best effort: no waiting for it */
		}
		f->login_pass[0] = f->pass[0] = '\0';
		if (ev_defer(u->w->loop, ftp_free_deferred, f) < 0)
			log_error("out of memory deferring an FTP gateway free; leaking it");
	}
	u->sdata = NULL;
	stream_release(&u->s);
	if (u->s.fd >= 0) {
		ev_io_stop(&u->io);
		close(u->s.fd);
		u->s.fd = -1;
	}
}

/* A file body being streamed may be held decrypted by OpenSSL (PROT P): proxy.c reads it
 * without waiting for the loop. Everything else is in the gateway's own buffers. */
static int
ftp_pending(struct up *u)
{
	struct ftp *f = u->sdata;
	if (f == NULL || f->magic != FTP_MAGIC || f->dead)
		return 0;
	return f->rmode == RM_STREAM && f->ds.fd >= 0 && !f->dconnecting && !f->dhs &&
	       buf_len(&f->resp) == 0 && stream_pending(&f->ds);
}

/* Bytes OpenSSL holds on the control or the data connection, which no readiness will
 * announce: handled as if the loop had. */
static void
ftp_spost_cb(struct ev_post *p)
{
	struct ftp *f = p->arg;
	if (f == NULL || f->magic != FTP_MAGIC || f->dead)
		return;
	if (f->step != FS_AUTH_HS && stream_pending(&f->u->s))
		ftp_ctl_read(f);
	if (f->dead || f->ds.fd < 0 || f->dconnecting || f->dhs || !stream_pending(&f->ds))
		return;
	if (f->listing)
		ftp_dio_listing(f);
	else if (f->method == H1_M_PUT)
		ftp_dio_put(f);
	else if (f->head_wait)
		ftp_retr_first(f);
	else if (f->u->state == UP_BUSY && f->u->owner != NULL && (f->want & EV_READ))
		proxy_up_io(f->u, EV_READ);
}

static const struct up_stream ftp_stream = {
	.name = "ftp",
	.read = ftp_read,
	.write = ftp_write,
	.shutdown_wr = ftp_shutdown_wr,
	.want = ftp_want,
	.pending = ftp_pending,
	.idle_usable = ftp_idle_usable,
	.idle = ftp_idle,
	.close = ftp_close,
};

int
ftp_attach(struct up *u)
{
	struct ftp *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -1;
	f->magic = FTP_MAGIC;
	f->u = u;
	stream_tcp_init(&f->ds, -1);
	f->lfd = -1;
	f->step = FS_GREETING;
	f->rmode = RM_NONE;
	buf_init(&f->req, FTP_REQ_CAP);
	buf_init(&f->resp, FTP_RESP_CAP);
	buf_init(&f->rbody, 0);
	buf_init(&f->pbody, FTP_PUT_CAP);
	buf_init(&f->cin, FTP_CTL_BUF);
	ftp_reply_init(&f->rep);
	ev_post_init(&f->post, ftp_post_cb, f);
	ev_post_init(&f->spost, ftp_spost_cb, f);
	ev_timer_init(&f->tmo, ftp_tmo_cb, f);
	ev_io_stop(&u->io);
	ev_io_init(&u->io, u->s.fd, ftp_cio_cb, f);
	if (ev_io_set(u->w->loop, &u->io, stream_interest(&u->s, EV_READ)) < 0) {
		buf_fini(&f->req);
		buf_fini(&f->resp);
		buf_fini(&f->pbody);
		buf_fini(&f->cin);
		free(f);
		return -1;
	}
	u->sdata = f;
	u->st = &ftp_stream;
	u->absolute_form = 1;
	ftp_timer_arm(f);
	return 0;
}
