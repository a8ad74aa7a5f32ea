/*
 * log.c - error log and access log (see log.h).
 *
 * The error log is written with one write(2) per line, so lines from threads do not interleave.
 * The access log keeps a per-worker buffer that the worker flushes once per loop turn (and when
 * it grows past 32 KiB) under a mutex that also guards reopening (SIGUSR1 from logrotate).
 */
#include "daemon/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int log_fd = 2;
static char *log_path;
static enum cfg_log_level log_level = CFG_LL_WARN;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

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
	pthread_mutex_lock(&log_lock);
	ssize_t w = write(log_fd, line, n);
	pthread_mutex_unlock(&log_lock);
	(void)w;
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
	char *path;
	enum cfg_log_format fmt;
};

int
alog_open(struct alog **ap, const char *path, enum cfg_log_format fmt)
{
	struct alog *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -1;
	pthread_mutex_init(&a->lock, NULL);
	a->fmt = fmt;
	if (strcmp(path, "-") == 0) {
		a->fd = 2;
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

void
alog_close(struct alog **ap)
{
	struct alog *a = *ap;
	if (a == NULL)
		return;
	if (a->fd > 2)
		close(a->fd);
	pthread_mutex_destroy(&a->lock);
	free(a->path);
	free(a);
	*ap = NULL;
}

int
alog_reopen(struct alog *a)
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

void
alog_buf_init(struct alog_buf *b, struct alog *log)
{
	memset(b, 0, sizeof(*b));
	b->log = log;
}

void
alog_buf_fini(struct alog_buf *b)
{
	alog_flush(b);
	free(b->data);
	b->data = NULL;
}

void
alog_flush(struct alog_buf *b)
{
	if (b->len == 0 || b->log == NULL)
		return;
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

void
alog_add(struct alog_buf *b, const struct alog_entry *e)
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
	if (b->log->fmt == CFG_LOG_SQUID) {
		/* time.ms elapsed client action/code bytes method URL user hier/peer type */
		ALOG_PUT("%llu.%03llu %6llu %s %s/%03d %llu %s ",
		         (unsigned long long)(e->start_us / 1000000),
		         (unsigned long long)(e->start_us / 1000 % 1000),
		         (unsigned long long)e->elapsed_ms, e->client, e->action, e->status,
		         (unsigned long long)e->bytes, e->method ? e->method : "NONE");
		o += alog_field(d + o, room - o - 1024, e->url, 0);
		ALOG_PUT(" %s %s/%s ", e->user ? e->user : "-", e->hier, e->peer ? e->peer : "-");
		o += alog_field(d + o, room - o - 64, e->ctype, 0);
		ALOG_PUT(" %s", e->req_id ? e->req_id : "-"); /* issue 9: a trailing field */
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
		ALOG_PUT("\" %s", e->req_id ? e->req_id : "-"); /* issue 9: a trailing field */
	}
#undef ALOG_PUT
	d[o++] = '\n';
	b->len += o;
	if (b->len > 32768)
		alog_flush(b);
}
