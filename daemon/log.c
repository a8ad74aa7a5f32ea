/*
 * log.c - error log and access log (see log.h).
 *
 * The error log is written with one write(2) per line, so lines from threads do not interleave.
 * The access log keeps a per-worker buffer that the worker flushes once per loop turn (and when
 * it grows past 32 KiB) under a mutex that also guards reopening (SIGUSR1 from logrotate).
 *
 * Issue 9: the error log may also go to syslog ("syslog[:FACILITY]", ident "gatehouse") or
 * to a piped program ("|program", logpipe.c); there may be several access logs (AccessLog,
 * then every CustomLog/TransferLog, chained by alog->next, each with its own per-worker
 * buffer chained the same way), each a file, stderr or a piped program, each in the Squid
 * native format, the built-in combined writer or a compiled Apache format (logfmt.c).
 */
#include "daemon/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "daemon/logfmt.h"
#include "daemon/logpipe.h"
#include "daemon/svc.h"

static int log_fd = 2;
static char *log_path;
static enum cfg_log_level log_level = CFG_LL_WARN;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_syslog;           /* ErrorLog syslog[:FACILITY] */
static struct logpipe *log_pipe; /* ErrorLog "|program" */

static const struct { const char *name; int fac; } log_facilities[] = {
	{ "daemon", LOG_DAEMON }, { "user", LOG_USER }, { "local0", LOG_LOCAL0 },
	{ "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
	{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 }, { "local6", LOG_LOCAL6 },
	{ "local7", LOG_LOCAL7 }, { "auth", LOG_AUTH }, { "authpriv", LOG_AUTHPRIV },
	{ "cron", LOG_CRON }, { "kern", LOG_KERN }, { "lpr", LOG_LPR }, { "mail", LOG_MAIL },
	{ "news", LOG_NEWS }, { "syslog", LOG_SYSLOG }, { "uucp", LOG_UUCP },
	{ "ftp", LOG_FTP },
};

int
log_syslog_spec(const char *spec)
{
	if (strncasecmp(spec, "syslog", 6) != 0 || (spec[6] != '\0' && spec[6] != ':'))
		return -2;
	if (spec[6] == '\0')
		return LOG_DAEMON;
	for (size_t i = 0; i < sizeof(log_facilities) / sizeof(log_facilities[0]); i++)
		if (strcasecmp(spec + 7, log_facilities[i].name) == 0)
			return log_facilities[i].fac;
	return -1;
}

static int
log_open_file(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

int
log_open(const char *path, enum cfg_log_level level)
{
	log_level = level;
	if (path == NULL || strcmp(path, "-") == 0)
		return 0;
	int fac = log_syslog_spec(path);
	if (fac >= 0) {
		openlog("gatehouse", LOG_PID | LOG_NDELAY, fac);
		log_syslog = 1;
		return 0;
	}
	if (path[0] == '|') {
		/* lines go to stderr until the program starts (logpipe_start_all, after the drop) */
		log_pipe = logpipe_new(path + 1, "ErrorLog");
		return log_pipe ? 0 : -1;
	}
	int fd = log_open_file(path);
	if (fd < 0)
		return -1;
	pthread_mutex_lock(&log_lock);
	if (log_fd > 2)
		close(log_fd);
	log_fd = fd;
	free(log_path);
	log_path = strdup(path);
	pthread_mutex_unlock(&log_lock);
	return 0;
}

int
log_reopen(void)
{
	if (log_path == NULL)
		return 0;
	int fd = log_open_file(log_path);
	if (fd < 0)
		return -1;
	pthread_mutex_lock(&log_lock);
	int old = log_fd;
	log_fd = fd;
	pthread_mutex_unlock(&log_lock);
	if (old > 2)
		close(old);
	return 0;
}

void
log_set_level(enum cfg_log_level level)
{
	log_level = level;
}

int
log_on(enum cfg_log_level level)
{
	return level <= log_level;
}

void
log_msg(enum cfg_log_level level, const char *fmt, ...)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ld [%s] ", ts.tv_nsec / 1000000,
	                      cfg_log_level_name(level));
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += (size_t)m;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (log_syslog) {
		static const int prio[] = { LOG_EMERG, LOG_ALERT, LOG_CRIT, LOG_ERR, LOG_WARNING,
		                            LOG_NOTICE, LOG_INFO, LOG_DEBUG, LOG_DEBUG };
		size_t skip = 24; /* "YYYY-MM-DD HH:MM:SS.mmm ": syslog stamps lines itself */

		syslog(prio[level <= CFG_LL_TRACE ? level : CFG_LL_DEBUG], "%.*s", (int)(n - 1 - skip),
		       line + skip);
		return;
	}
	if (log_pipe && logpipe_write(log_pipe, line, n) == 0)
		return; /* else: not started yet, or the program is down: stderr */
	pthread_mutex_lock(&log_lock);
	ssize_t w = write(log_fd, line, n);
	pthread_mutex_unlock(&log_lock);
	(void)w;
}

void
log_shutdown(void)
{
	logpipe_stop_all();
	logpipe_free_all();
	log_pipe = NULL;
	if (log_syslog) {
		log_syslog = 0;
		closelog();
	}
}

const char *
log_clip(const char *p, size_t n, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (size_t i = 0; i < n && i < 64 && o + 5 < outlen; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (n > 64 && o + 4 < outlen) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o < outlen ? o : outlen - 1] = '\0';
	return out;
}

/* ---- access log ---- */

struct alog {
	pthread_mutex_t lock;
	int fd;
	char *path;                  /* NULL for stderr and pipes: nothing to reopen */
	enum cfg_log_format fmt;
	struct logfmt *lf;           /* a compiled Apache format, or NULL for fmt */
	struct logpipe *pipe;        /* "|program", or NULL */
	struct alog *next;           /* the next access log (CustomLog) */
	unsigned needs;              /* on the head: LOGFMT_NEED_* of every log of the chain */
};

static int
alog_open_target(struct alog **ap, const char *path, enum cfg_log_format fmt, const char *what)
{
	struct alog *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -1;
	pthread_mutex_init(&a->lock, NULL);
	a->fmt = fmt;
	a->fd = -1;
	if (strcmp(path, "-") == 0) {
		a->fd = 2;
	} else if (path[0] == '|') {
		a->pipe = logpipe_new(path + 1, what);
		if (a->pipe == NULL) {
			free(a);
			errno = ENOMEM;
			return -1;
		}
	} else {
		a->path = strdup(path);
		a->fd = log_open_file(path);
		if (a->fd < 0 || a->path == NULL) {
			int e = errno;
			if (a->fd >= 0)
				close(a->fd);
			free(a->path);
			free(a);
			errno = e;
			return -1;
		}
	}
	*ap = a;
	return 0;
}

int
alog_open(struct alog **ap, const char *path, enum cfg_log_format fmt)
{
	return alog_open_target(ap, path, fmt, "AccessLog");
}

void
alog_close(struct alog **ap)
{
	struct alog *a = *ap;
	while (a != NULL) {
		struct alog *next = a->next;
		if (a->fd > 2)
			close(a->fd);
		pthread_mutex_destroy(&a->lock);
		logfmt_free(&a->lf);
		free(a->path);
		free(a);
		a = next;
	}
	*ap = NULL;
}

/* Open one CustomLog/TransferLog of c. */
static int
alog_open_custom(struct alog **ap, const struct cfg_customlog *cl, char *err, size_t errlen)
{
	struct alog *a = NULL;
	char why[256];

	if (alog_open_target(&a, cl->target, CFG_LOG_SQUID,
	                     cl->transfer ? "TransferLog" : "CustomLog") < 0) {
		snprintf(err, errlen, "%s: cannot open %s %s: %s", cl->where,
		         cl->transfer ? "TransferLog" : "CustomLog", cl->target, strerror(errno));
		return -1;
	}
	if (!cl->squid && logfmt_compile(cl->format, &a->lf, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: %s", cl->where, why);
		alog_close(&a);
		return -1;
	}
	*ap = a;
	return 0;
}

int
alog_open_all(struct alog **ap, const struct cfg *c, char *err, size_t errlen)
{
	struct alog *head = NULL, **tail = &head;

	*ap = NULL;
	if (c->access_log) {
		if (alog_open(&head, c->access_log, c->access_log_format) < 0) {
			snprintf(err, errlen, "cannot open AccessLog %s: %s", c->access_log,
			         strerror(errno));
			return -1;
		}
		tail = &head->next;
	}
	for (size_t i = 0; i < c->ncustom_logs; i++) {
		if (alog_open_custom(tail, &c->custom_logs[i], err, errlen) < 0) {
			alog_close(&head);
			return -1;
		}
		tail = &(*tail)->next;
	}
	/* the head answers for the whole chain */
	for (struct alog *a = head; a; a = a->next)
		head->needs |= logfmt_needs(a->lf);
	*ap = head;
	return 0;
}

unsigned
alog_needs(const struct alog *a)
{
	return a ? a->needs : 0;
}

static int
alog_streq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

int
alog_cfg_same(const struct cfg *a, const struct cfg *b)
{
	if (!alog_streq(a->access_log, b->access_log) || !alog_streq(a->error_log, b->error_log) ||
	    a->access_log_format != b->access_log_format || a->ncustom_logs != b->ncustom_logs)
		return 0;
	for (size_t i = 0; i < a->ncustom_logs; i++) {
		const struct cfg_customlog *x = &a->custom_logs[i], *y = &b->custom_logs[i];

		if (!alog_streq(x->target, y->target) || !alog_streq(x->format, y->format) ||
		    x->squid != y->squid)
			return 0;
	}
	return 1;
}

void
log_precreate_all(const struct cfg *c)
{
	const char *logs[2] = { c->error_log, c->access_log };

	for (int i = 0; i < 2; i++)
		if (logs[i] && strcmp(logs[i], "-") != 0 && logs[i][0] == '/')
			(void)svc_file_precreate(logs[i], c->uid, c->gid);
	for (size_t i = 0; i < c->ncustom_logs; i++)
		if (c->custom_logs[i].target[0] == '/')
			(void)svc_file_precreate(c->custom_logs[i].target, c->uid, c->gid);
}

static int
alog_reopen_one(struct alog *a)
{
	if (a == NULL || a->path == NULL)
		return 0;
	int fd = log_open_file(a->path);
	if (fd < 0)
		return -1;
	pthread_mutex_lock(&a->lock);
	int old = a->fd;
	a->fd = fd;
	pthread_mutex_unlock(&a->lock);
	close(old);
	return 0;
}

int
alog_reopen(struct alog *a)
{
	int rc = 0;
	for (; a; a = a->next)
		if (alog_reopen_one(a) < 0)
			rc = -1;
	return rc;
}

void
alog_buf_init(struct alog_buf *b, struct alog *log)
{
	memset(b, 0, sizeof(*b));
	b->log = log;
	/* one buffer per further access log; out of memory, those logs get nothing */
	struct alog_buf **tail = &b->next;
	for (struct alog *a = log ? log->next : NULL; a; a = a->next) {
		struct alog_buf *n = calloc(1, sizeof(*n));
		if (n == NULL)
			break;
		n->log = a;
		*tail = n;
		tail = &n->next;
	}
}

void
alog_buf_fini(struct alog_buf *b)
{
	alog_flush(b);
	free(b->data);
	b->data = NULL;
	struct alog_buf *n = b->next;
	b->next = NULL;
	while (n) {
		struct alog_buf *next = n->next;
		free(n->data);
		free(n);
		n = next;
	}
}

static void alog_flush_one(struct alog_buf *b);

void
alog_flush(struct alog_buf *b)
{
	for (; b; b = b->next)
		alog_flush_one(b);
}

static void
alog_flush_one(struct alog_buf *b)
{
	if (b->len == 0 || b->log == NULL)
		return;
	if (b->log->pipe) {
		(void)logpipe_write(b->log->pipe, b->data, b->len);
		b->len = 0;
		return;
	}
	pthread_mutex_lock(&b->log->lock);
	size_t off = 0;
	while (off < b->len) {
		ssize_t w = write(b->log->fd, b->data + off, b->len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break; /* disk full or the like: drop the batch rather than block the worker */
		off += (size_t)w;
	}
	pthread_mutex_unlock(&b->log->lock);
	b->len = 0;
}

/* Copy s into the log line with spaces and control bytes escaped, so a field never splits. */
static size_t
alog_field(char *dst, size_t room, const char *s, int quote)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	if (s == NULL || *s == '\0')
		s = "-";
	for (; *s && o + 4 < room; s++) {
		unsigned char c = (unsigned char)*s;
		int bad = c < 0x21 || c >= 0x7f || c == '%' || (quote && (c == '"' || c == '\\'));
		if (quote && c == ' ')
			bad = 0;
		if (bad) {
			dst[o++] = '%';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		} else {
			dst[o++] = (char)c;
		}
	}
	return o;
}

static void alog_add_one(struct alog_buf *b, const struct alog_entry *e);

/* " ID" (or " -") at d, the request id that ends Squid and combined lines; returns its length.
 * A copy, not a printf: it is on every request's path, hits included. Ids are short (12
 * characters); longer text is clipped to 32. */
static size_t
alog_req_id(char *d, const char *id)
{
	size_t n = id ? strnlen(id, 32) : 0;

	d[0] = ' ';
	if (n == 0) {
		d[1] = '-';
		return 2;
	}
	memcpy(d + 1, id, n);
	return n + 1;
}

void
alog_add(struct alog_buf *b, const struct alog_entry *e)
{
	for (; b; b = b->next)
		alog_add_one(b, e);
}

static void
alog_add_one(struct alog_buf *b, const struct alog_entry *e)
{
	if (b->log == NULL)
		return;
	if (b->cap - b->len < 10240) {
		size_t ncap = b->cap ? b->cap * 2 : 65536;
		char *p = realloc(b->data, ncap);
		if (p == NULL)
			return;
		b->data = p;
		b->cap = ncap;
	}
	char *d = b->data + b->len;
	size_t room = 10240, o = 0;
#define ALOG_PUT(...) do { int k_ = snprintf(d + o, room - o, __VA_ARGS__); \
		if (k_ > 0) o += (size_t)k_ < room - o ? (size_t)k_ : room - o - 1; } while (0)
	if (b->log->lf) {
		o = logfmt_render(b->log->lf, e, d, room - 1);
	} else if (b->log->fmt == CFG_LOG_SQUID) {
		/* time.ms elapsed client action/code bytes method URL user hier/peer type */
		ALOG_PUT("%llu.%03llu %6llu %s %s/%03d %llu %s ",
		         (unsigned long long)(e->start_us / 1000000),
		         (unsigned long long)(e->start_us / 1000 % 1000),
		         (unsigned long long)e->elapsed_ms, e->client, e->action, e->status,
		         (unsigned long long)e->bytes, e->method ? e->method : "NONE");
		o += alog_field(d + o, room - o - 1024, e->url, 0);
		ALOG_PUT(" %s %s/%s ", e->user ? e->user : "-", e->hier, e->peer ? e->peer : "-");
		o += alog_field(d + o, room - o - 64, e->ctype, 0);
		o += alog_req_id(d + o, e->req_id); /* issue 9: a trailing field */
	} else {
		char tbuf[64];
		struct tm tm;
		time_t t = (time_t)(e->start_us / 1000000);
		localtime_r(&t, &tm);
		strftime(tbuf, sizeof(tbuf), "%d/%b/%Y:%H:%M:%S %z", &tm);
		ALOG_PUT("%s - %s [%s] \"", e->client, e->user ? e->user : "-", tbuf);
		o += alog_field(d + o, room - o - 2048, e->request_line, 1);
		if (e->body_bytes)
			ALOG_PUT("\" %d %llu \"", e->status, (unsigned long long)e->body_bytes);
		else
			ALOG_PUT("\" %d - \"", e->status);
		o += alog_field(d + o, room - o - 1024, e->referer, 1);
		ALOG_PUT("\" \"");
		o += alog_field(d + o, room - o - 64, e->user_agent, 1);
		d[o++] = '"';
		o += alog_req_id(d + o, e->req_id); /* issue 9: a trailing field */
	}
#undef ALOG_PUT
	d[o++] = '\n';
	b->len += o;
	if (b->len > 32768)
		alog_flush_one(b);
}
