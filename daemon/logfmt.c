/*
 * logfmt.c - Apache log formats compiled into ops (see logfmt.h).
 *
 * A compiled format is one allocation: the op array followed by the literal bytes and
 * arguments the ops point into. Rendering writes into a caller's fixed buffer through a
 * cursor that stops at the end (a cut line, never an overflow) and calls the clock only for
 * %D, %T and end: times.
 */
#include "daemon/logfmt.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "daemon/log.h"

#define LOGFMT_MAX_OPS 256
#define LOGFMT_MAX_CODES 8
#define LOGFMT_TEXT_MAX 8192

enum logfmt_kind {
	LF_LIT = 0, LF_CLIENT, LF_LOCAL_IP, LF_DASH, LF_USER, LF_TIME_CLF, LF_TIME_STRF,
	LF_TIME_SEC, LF_TIME_MSEC, LF_TIME_USEC, LF_TIME_MSEC_FRAC, LF_TIME_USEC_FRAC,
	LF_REQLINE, LF_STATUS, LF_BYTES_CLF, LF_BYTES, LF_BYTES_OUT, LF_METHOD, LF_URLPATH,
	LF_QUERY, LF_PROTO, LF_SERVER, LF_LOCAL_PORT, LF_PEER_PORT, LF_PID, LF_TID, LF_HEXTID,
	LF_DUR_US, LF_DUR_MS, LF_DUR_S, LF_REQHDR, LF_RESPHDR, LF_COOKIE, LF_REQID,
	LF_CONNSTAT, LF_KEEPALIVE
};

struct logfmt_op {
	enum logfmt_kind kind;
	const char *arg;        /* literal text, header/cookie name, strftime format */
	size_t arglen;
	int end;                /* %{end:...}t: the time the request ended */
	int negate;             /* %!200{..}i */
	unsigned ncodes;
	short codes[LOGFMT_MAX_CODES];
};

struct logfmt {
	unsigned needs;
	size_t nops;
	struct logfmt_op ops[];  /* then the argument bytes */
};

/* ---- compiling ---- */

struct logfmt_letter {
	char c;
	enum logfmt_kind kind;
	const char *what;        /* for messages */
};

static const struct logfmt_letter logfmt_letters[] = {
	{ 'a', LF_CLIENT, "client address" }, { 'h', LF_CLIENT, "client host" },
	{ 'A', LF_LOCAL_IP, "local address" }, { 'l', LF_DASH, "remote logname" },
	{ 'u', LF_USER, "remote user" }, { 't', LF_TIME_CLF, "time" },
	{ 'r', LF_REQLINE, "request line" }, { 's', LF_STATUS, "status" },
	{ 'b', LF_BYTES_CLF, "body bytes" }, { 'B', LF_BYTES, "body bytes" },
	{ 'O', LF_BYTES_OUT, "bytes sent" }, { 'm', LF_METHOD, "method" },
	{ 'U', LF_URLPATH, "URL path" }, { 'q', LF_QUERY, "query string" },
	{ 'H', LF_PROTO, "protocol" }, { 'v', LF_SERVER, "server name" },
	{ 'V', LF_SERVER, "server name" }, { 'p', LF_LOCAL_PORT, "port" },
	{ 'P', LF_PID, "process id" }, { 'D', LF_DUR_US, "duration" },
	{ 'T', LF_DUR_S, "duration" }, { 'i', LF_REQHDR, "request header" },
	{ 'o', LF_RESPHDR, "response header" }, { 'C', LF_COOKIE, "cookie" },
	{ 'L', LF_REQID, "request id" }, { 'X', LF_CONNSTAT, "connection status" },
	{ 'k', LF_KEEPALIVE, "keep-alive requests" },
};

/* Apache's directives that Gatehouse cannot honour: refused by name. */
static const struct { char c; const char *why; } logfmt_refused[] = {
	{ 'e', "%e (environment variables) is not supported" },
	{ 'n', "%n (module notes) is not supported" },
	{ 'f', "%f (file name) does not apply to a proxy" },
	{ 'R', "%R (handler) is not supported" },
	{ 'I', "%I (bytes received, mod_logio) is not supported" },
	{ 'S', "%S (bytes transferred, mod_logio) is not supported" },
	{ 'x', "%x (mod_ssl variables) is not supported" },
	{ 'c', "%c (connection status, Apache 1.3) is not supported; use %X" },
	{ '^', "%^ti and %^to (trailers) are not supported" },
};

static int
logfmt_fail(char *err, size_t errlen, const char *fmt, const char *a, size_t alen)
{
	if (errlen > 0)
		snprintf(err, errlen, fmt, (int)alen, a);
	return -1;
}

/* Parse "%{...}" arguments of the letters that take one. 0 ok, -1 refused (err set). */
static int
logfmt_arg(struct logfmt_op *op, char letter, const char *arg, size_t n, char *err, size_t errlen)
{
	switch (letter) {
	case 'a': case 'h':
		if (n == 1 && arg[0] == 'c')
			return 0; /* the peer of the connection: the same, Gatehouse has no proxy protocol */
		return logfmt_fail(err, errlen, "%%{%.*s}a: only %%{c}a is supported", arg, n);
	case 'p':
		if (n == 9 && strncmp(arg, "canonical", 9) == 0)
			return 0;
		if (n == 5 && strncmp(arg, "local", 5) == 0)
			return 0;
		if (n == 6 && strncmp(arg, "remote", 6) == 0) {
			op->kind = LF_PEER_PORT;
			return 0;
		}
		return logfmt_fail(err, errlen, "%%{%.*s}p: expected canonical, local or remote",
		                   arg, n);
	case 'P':
		if (n == 3 && strncmp(arg, "pid", 3) == 0)
			return 0;
		if (n == 3 && strncmp(arg, "tid", 3) == 0) {
			op->kind = LF_TID;
			return 0;
		}
		if (n == 6 && strncmp(arg, "hextid", 6) == 0) {
			op->kind = LF_HEXTID;
			return 0;
		}
		return logfmt_fail(err, errlen, "%%{%.*s}P: expected pid, tid or hextid", arg, n);
	case 'T':
		if (n == 1 && arg[0] == 's')
			return 0;
		if (n == 2 && strncmp(arg, "ms", 2) == 0) {
			op->kind = LF_DUR_MS;
			return 0;
		}
		if (n == 2 && strncmp(arg, "us", 2) == 0) {
			op->kind = LF_DUR_US;
			return 0;
		}
		return logfmt_fail(err, errlen, "%%{%.*s}T: expected s, ms or us", arg, n);
	case 't': {
		static const struct { const char *w; enum logfmt_kind k; } special[] = {
			{ "sec", LF_TIME_SEC }, { "msec", LF_TIME_MSEC }, { "usec", LF_TIME_USEC },
			{ "msec_frac", LF_TIME_MSEC_FRAC }, { "usec_frac", LF_TIME_USEC_FRAC },
		};
		if (n >= 6 && strncmp(arg, "begin:", 6) == 0) {
			arg += 6;
			n -= 6;
		} else if (n >= 4 && strncmp(arg, "end:", 4) == 0) {
			op->end = 1;
			arg += 4;
			n -= 4;
		}
		op->kind = LF_TIME_STRF;
		op->arg = arg;
		op->arglen = n;
		for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
			if (strlen(special[i].w) == n && strncmp(special[i].w, arg, n) == 0)
				op->kind = special[i].k;
		if (op->kind == LF_TIME_STRF && n == 0)
			op->kind = LF_TIME_CLF;
		return 0;
	}
	case 'i': case 'o': case 'C':
		if (n == 0)
			return logfmt_fail(err, errlen, "%%{}%.*s: empty name", &letter, 1);
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)arg[i] <= ' ' || arg[i] == 0x7f || (letter != 'C' && arg[i] == ':'))
				return logfmt_fail(err, errlen, "%%{%.*s}: not a field name", arg, n);
		op->arg = arg;
		op->arglen = n;
		return 0;
	default:
		return logfmt_fail(err, errlen, "%%%.*s does not take a {argument}", &letter, 1);
	}
}

int
logfmt_compile(const char *text, struct logfmt **out, char *err, size_t errlen)
{
	size_t tlen = strlen(text);
	struct logfmt_op ops[LOGFMT_MAX_OPS];
	size_t nops = 0;
	unsigned needs = 0;
	char *lit;
	size_t litlen = 0;

	*out = NULL;
	if (tlen > LOGFMT_TEXT_MAX)
		return logfmt_fail(err, errlen, "format longer than %.*s bytes", "8192", 4);
	/* Literal bytes (with \n and \t decoded as Apache's LogFormat does) go into lit; op args
	 * point into text for now and are rebased into the final allocation at the end. */
	lit = malloc(tlen + 1);
	if (!lit)
		return logfmt_fail(err, errlen, "out of memory%.*s", "", 0);
	for (size_t i = 0; i < tlen;) {
		struct logfmt_op op;

		memset(&op, 0, sizeof(op));
		if (nops == LOGFMT_MAX_OPS) {
			free(lit);
			return logfmt_fail(err, errlen, "more than %.*s directives", "256", 3);
		}
		if (text[i] != '%') {
			size_t start = litlen;

			while (i < tlen && text[i] != '%') {
				char ch = text[i++];

				if (ch == '\\' && i < tlen) {
					char nx = text[i];

					if (nx == 'n' || nx == 't') {
						ch = nx == 'n' ? '\n' : '\t';
						i++;
					}
				}
				lit[litlen++] = ch;
			}
			op.kind = LF_LIT;
			op.arg = (const char *)(uintptr_t)start; /* an offset into lit for now */
			op.arglen = litlen - start;
			ops[nops++] = op;
			continue;
		}
		size_t dstart = i++;
		/* %% */
		if (i < tlen && text[i] == '%') {
			lit[litlen] = '%';
			op.kind = LF_LIT;
			op.arg = (const char *)(uintptr_t)litlen++;
			op.arglen = 1;
			ops[nops++] = op;
			i++;
			continue;
		}
		/* modifiers: ! status list, < > */
		for (;;) {
			if (i < tlen && text[i] == '!') {
				op.negate = 1;
				i++;
			} else if (i < tlen && (text[i] == '<' || text[i] == '>')) {
				i++;
			} else if (i < tlen && text[i] >= '0' && text[i] <= '9') {
				unsigned v = 0, k = 0;

				while (i < tlen && text[i] >= '0' && text[i] <= '9' && k < 4) {
					v = v * 10 + (unsigned)(text[i++] - '0');
					k++;
				}
				if (k != 3 || v < 100 || v > 999) {
					free(lit);
					return logfmt_fail(err, errlen, "%.*s: a status condition is "
					                   "three digits", text + dstart, i - dstart);
				}
				if (op.ncodes == LOGFMT_MAX_CODES) {
					free(lit);
					return logfmt_fail(err, errlen, "%.*s: more than 8 status codes",
					                   text + dstart, i - dstart);
				}
				op.codes[op.ncodes++] = (short)v;
				if (i < tlen && text[i] == ',')
					i++;
			} else {
				break;
			}
		}
		const char *arg = NULL;
		size_t alen = 0;
		int has_arg = 0;
		if (i < tlen && text[i] == '{') {
			const char *close = memchr(text + i, '}', tlen - i);

			if (!close) {
				free(lit);
				return logfmt_fail(err, errlen, "%.*s: missing }", text + dstart,
				                   tlen - dstart > 40 ? 40 : tlen - dstart);
			}
			arg = text + i + 1;
			alen = (size_t)(close - arg);
			has_arg = 1;
			i = (size_t)(close - text) + 1;
		}
		if (i >= tlen) {
			free(lit);
			return logfmt_fail(err, errlen, "%.*s at the end of the format: a directive "
			                   "letter is missing", text + dstart, i - dstart);
		}
		char letter = text[i++];
		const struct logfmt_letter *L = NULL;
		for (size_t k = 0; k < sizeof(logfmt_letters) / sizeof(logfmt_letters[0]); k++)
			if (logfmt_letters[k].c == letter)
				L = &logfmt_letters[k];
		if (!L) {
			for (size_t k = 0; k < sizeof(logfmt_refused) / sizeof(logfmt_refused[0]); k++) {
				if (logfmt_refused[k].c == letter) {
					free(lit);
					return logfmt_fail(err, errlen, "%.*s", logfmt_refused[k].why,
					                   strlen(logfmt_refused[k].why));
				}
			}
			free(lit);
			return logfmt_fail(err, errlen, "unknown directive %%%.*s", &letter, 1);
		}
		op.kind = L->kind;
		if (has_arg) {
			if (logfmt_arg(&op, letter, arg, alen, err, errlen) < 0) {
				free(lit);
				return -1;
			}
			if (op.arg) /* an offset from text, rebased below */
				op.arg = (const char *)(uintptr_t)(tlen + 1 + (size_t)(op.arg - text));
		} else if (letter == 'i' || letter == 'o' || letter == 'C') {
			free(lit);
			return logfmt_fail(err, errlen, "%%%.*s needs a name, as in %%{NAME}i", &letter, 1);
		}
		if (op.kind == LF_REQHDR || op.kind == LF_COOKIE)
			needs |= LOGFMT_NEED_REQHEAD;
		if (op.kind == LF_RESPHDR)
			needs |= LOGFMT_NEED_RESPHEAD;
		if (op.kind == LF_REQLINE)
			needs |= LOGFMT_NEED_LINE;
		ops[nops++] = op;
	}

	/* One allocation: ops, then lit, then a copy of text for the {arguments}. */
	size_t opsz = sizeof(struct logfmt) + nops * sizeof(struct logfmt_op);
	struct logfmt *f = malloc(opsz + litlen + 1 + tlen + 1);
	if (!f) {
		free(lit);
		return logfmt_fail(err, errlen, "out of memory%.*s", "", 0);
	}
	char *base = (char *)f + opsz;
	memcpy(base, lit, litlen);
	base[litlen] = '\0';
	memcpy(base + litlen + 1, text, tlen + 1);
	free(lit);
	f->needs = needs;
	f->nops = nops;
	for (size_t k = 0; k < nops; k++) {
		f->ops[k] = ops[k];
		if (ops[k].kind == LF_LIT)
			f->ops[k].arg = base + (uintptr_t)ops[k].arg;
		else if (ops[k].arg)
			f->ops[k].arg = base + litlen + (uintptr_t)ops[k].arg - tlen;
	}
	*out = f;
	return 0;
}

void
logfmt_free(struct logfmt **fp)
{
	free(*fp);
	*fp = NULL;
}

unsigned
logfmt_needs(const struct logfmt *f)
{
	return f ? f->needs : 0;
}

const char *
logfmt_nickname(const char *name)
{
	static const struct { const char *name, *text; } nick[] = {
		{ "common", "%h %l %u %t \"%r\" %>s %b" },
		{ "combined", "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\"" },
		{ "referer", "%{Referer}i -> %U" },
		{ "agent", "%{User-agent}i" },
	};
	for (size_t i = 0; i < sizeof(nick) / sizeof(nick[0]); i++)
		if (strcmp(nick[i].name, name) == 0)
			return nick[i].text;
	return NULL;
}

/* ---- rendering ---- */

struct logfmt_out {
	char *d;
	size_t o, room;          /* room excludes the final NUL */
};

static void
logfmt_put(struct logfmt_out *w, const char *s, size_t n)
{
	if (n > w->room - w->o)
		n = w->room - w->o;
	memcpy(w->d + w->o, s, n);
	w->o += n;
}

static void
logfmt_putc(struct logfmt_out *w, char c)
{
	if (w->o < w->room)
		w->d[w->o++] = c;
}

static void
logfmt_putu(struct logfmt_out *w, unsigned long long v)
{
	char t[24];
	size_t n = 0;

	do {
		t[sizeof(t) - 1 - n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	logfmt_put(w, t + sizeof(t) - n, n);
}

/* A value from the network, escaped as Apache's ap_escape_logitem; "-" when empty. */
static void
logfmt_puts_esc(struct logfmt_out *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	if (s == NULL || n == 0) {
		logfmt_putc(w, '-');
		return;
	}
	for (size_t i = 0; i < n && w->o < w->room; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			w->d[w->o++] = (char)c;
			continue;
		}
		switch (c) {
		case '"': logfmt_put(w, "\\\"", 2); break;
		case '\\': logfmt_put(w, "\\\\", 2); break;
		case '\n': logfmt_put(w, "\\n", 2); break;
		case '\r': logfmt_put(w, "\\r", 2); break;
		case '\t': logfmt_put(w, "\\t", 2); break;
		case '\b': logfmt_put(w, "\\b", 2); break;
		case '\v': logfmt_put(w, "\\v", 2); break;
		default: {
			char x[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };
			logfmt_put(w, x, 4);
		}
		}
	}
}

static void
logfmt_putz(struct logfmt_out *w, const char *s)
{
	logfmt_puts_esc(w, s, s ? strlen(s) : 0);
}

/* The value of field name in a raw head (first line skipped), or NULL. Repeated fields are
 * joined by ", " into tmp, as Apache's table merge shows them. */
static const char *
logfmt_field(const char *head, size_t len, const char *name, size_t nlen, char *tmp, size_t tcap,
             size_t *vlen)
{
	const char *p = memchr(head, '\n', len), *end = head + len;
	const char *first = NULL;
	size_t flen = 0, t = 0;
	int many = 0;

	while (p && ++p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t ll = eol ? (size_t)(eol - p) : (size_t)(end - p);

		if (ll > 0 && p[ll - 1] == '\r')
			ll--;
		if (ll > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
			const char *v = p + nlen + 1, *ve = p + ll;

			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			if (!first) {
				first = v;
				flen = (size_t)(ve - v);
			} else {
				if (!many) {
					t = flen < tcap ? flen : tcap;
					memcpy(tmp, first, t);
					many = 1;
				}
				size_t k = (size_t)(ve - v);
				if (t + 2 + k <= tcap) {
					memcpy(tmp + t, ", ", 2);
					memcpy(tmp + t + 2, v, k);
					t += 2 + k;
				}
			}
		}
		p = eol;
	}
	if (many) {
		*vlen = t;
		return tmp;
	}
	*vlen = flen;
	return first;
}

/* Cookie name's value in the request's Cookie fields. */
static const char *
logfmt_cookie(const struct alog_entry *e, const char *name, size_t nlen, char *tmp, size_t tcap,
              size_t *vlen)
{
	size_t clen;
	const char *c = logfmt_field(e->req_head, e->req_head_len, "Cookie", 6, tmp, tcap, &clen);
	const char *end = c ? c + clen : NULL;

	while (c && c < end) {
		while (c < end && (*c == ' ' || *c == ';'))
			c++;
		const char *semi = memchr(c, ';', (size_t)(end - c));
		const char *ce = semi ? semi : end;
		const char *eq = memchr(c, '=', (size_t)(ce - c));

		if (eq && (size_t)(eq - c) == nlen && memcmp(c, name, nlen) == 0) {
			*vlen = (size_t)(ce - eq - 1);
			return eq + 1;
		}
		c = ce;
	}
	return NULL;
}

static uint64_t
logfmt_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* "[04/Dec/2026:15:04:05 +0000]", cached per thread for the last second seen. */
static void
logfmt_put_clf_time(struct logfmt_out *w, uint64_t us)
{
	static _Thread_local time_t last = -1;
	static _Thread_local char text[40];
	static _Thread_local size_t tn;
	time_t t = (time_t)(us / 1000000u);

	if (t != last) {
		struct tm tm;

		localtime_r(&t, &tm);
		tn = strftime(text, sizeof(text), "[%d/%b/%Y:%H:%M:%S %z]", &tm);
		last = t;
	}
	logfmt_put(w, text, tn);
}

static void
logfmt_put_port(struct logfmt_out *w, const struct sockaddr_storage *a)
{
	if (a && a->ss_family == AF_INET)
		logfmt_putu(w, ntohs(((const struct sockaddr_in *)(const void *)a)->sin_port));
	else if (a && a->ss_family == AF_INET6)
		logfmt_putu(w, ntohs(((const struct sockaddr_in6 *)(const void *)a)->sin6_port));
	else
		logfmt_putc(w, '-');
}

size_t
logfmt_render(const struct logfmt *f, const struct alog_entry *e, char *dst, size_t room)
{
	struct logfmt_out w = { dst, 0, room ? room - 1 : 0 };
	uint64_t now = 0;
	char tmp[4096];

	for (size_t k = 0; k < f->nops; k++) {
		const struct logfmt_op *op = &f->ops[k];
		const char *v;
		size_t vn;

		if (op->ncodes) {
			int in = 0;

			for (unsigned c = 0; c < op->ncodes; c++)
				in |= op->codes[c] == e->status;
			if (in == op->negate) {
				logfmt_putc(&w, '-');
				continue;
			}
		}
		switch (op->kind) {
		case LF_LIT:
			logfmt_put(&w, op->arg, op->arglen);
			break;
		case LF_CLIENT:
			logfmt_putz(&w, e->client);
			break;
		case LF_LOCAL_IP: {
			char a[INET6_ADDRSTRLEN] = "";
			const struct sockaddr_storage *s = e->local_addr;

			if (s && s->ss_family == AF_INET)
				inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)s)->sin_addr,
				          a, sizeof(a));
			else if (s && s->ss_family == AF_INET6)
				inet_ntop(AF_INET6,
				          &((const struct sockaddr_in6 *)(const void *)s)->sin6_addr, a,
				          sizeof(a));
			logfmt_putz(&w, a);
			break;
		}
		case LF_DASH:
			logfmt_putc(&w, '-');
			break;
		case LF_USER:
			logfmt_putz(&w, e->user && strcmp(e->user, "-") != 0 ? e->user : NULL);
			break;
		case LF_TIME_CLF:
		case LF_TIME_STRF:
		case LF_TIME_SEC: case LF_TIME_MSEC: case LF_TIME_USEC:
		case LF_TIME_MSEC_FRAC: case LF_TIME_USEC_FRAC: {
			uint64_t us = e->start_us;

			if (op->end) {
				if (!now)
					now = logfmt_now_us();
				us = now;
			}
			if (op->kind == LF_TIME_CLF) {
				logfmt_put_clf_time(&w, us);
			} else if (op->kind == LF_TIME_SEC) {
				logfmt_putu(&w, us / 1000000u);
			} else if (op->kind == LF_TIME_MSEC) {
				logfmt_putu(&w, us / 1000u);
			} else if (op->kind == LF_TIME_USEC) {
				logfmt_putu(&w, us);
			} else if (op->kind == LF_TIME_MSEC_FRAC) {
				char t[8];
				snprintf(t, sizeof(t), "%03u", (unsigned)(us / 1000u % 1000u));
				logfmt_put(&w, t, 3);
			} else if (op->kind == LF_TIME_USEC_FRAC) {
				char t[8];
				snprintf(t, sizeof(t), "%06u", (unsigned)(us % 1000000u));
				logfmt_put(&w, t, 6);
			} else {
				char fmt[256], out[512];
				size_t fl = op->arglen < sizeof(fmt) - 1 ? op->arglen : sizeof(fmt) - 1;
				time_t t = (time_t)(us / 1000000u);
				struct tm tm;

				memcpy(fmt, op->arg, fl);
				fmt[fl] = '\0';
				localtime_r(&t, &tm);
				logfmt_put(&w, out, strftime(out, sizeof(out), fmt, &tm));
			}
			break;
		}
		case LF_REQLINE:
			logfmt_putz(&w, e->request_line);
			break;
		case LF_STATUS:
			if (e->status)
				logfmt_putu(&w, (unsigned)e->status);
			else
				logfmt_putc(&w, '-');
			break;
		case LF_BYTES_CLF:
			if (e->body_bytes)
				logfmt_putu(&w, e->body_bytes);
			else
				logfmt_putc(&w, '-');
			break;
		case LF_BYTES:
			logfmt_putu(&w, e->body_bytes);
			break;
		case LF_BYTES_OUT:
			logfmt_putu(&w, e->bytes);
			break;
		case LF_METHOD:
			logfmt_putz(&w, e->method);
			break;
		case LF_URLPATH:
		case LF_QUERY: {
			const char *u = e->url ? e->url : "";
			const char *q = strchr(u, '?');

			if (op->kind == LF_URLPATH)
				logfmt_puts_esc(&w, u, q ? (size_t)(q - u) : strlen(u));
			else if (q)
				logfmt_puts_esc(&w, q, strlen(q));
			break;
		}
		case LF_PROTO:
			logfmt_put(&w, e->minor ? "HTTP/1.1" : "HTTP/1.0", 8);
			break;
		case LF_SERVER:
			logfmt_putz(&w, e->server_name);
			break;
		case LF_LOCAL_PORT:
			logfmt_put_port(&w, e->local_addr);
			break;
		case LF_PEER_PORT:
			logfmt_put_port(&w, e->peer_addr);
			break;
		case LF_PID:
			logfmt_putu(&w, (unsigned long long)getpid());
			break;
		case LF_TID:
			logfmt_putu(&w, (unsigned long long)syscall(SYS_gettid));
			break;
		case LF_HEXTID: {
			char t[24];
			int n = snprintf(t, sizeof(t), "%lx", (unsigned long)syscall(SYS_gettid));
			logfmt_put(&w, t, n > 0 ? (size_t)n : 0);
			break;
		}
		case LF_DUR_US:
		case LF_DUR_MS:
		case LF_DUR_S: {
			if (!now)
				now = logfmt_now_us();
			uint64_t d = now > e->start_us && e->start_us ? now - e->start_us : 0;

			logfmt_putu(&w, op->kind == LF_DUR_US ? d : op->kind == LF_DUR_MS ? d / 1000u :
			                d / 1000000u);
			break;
		}
		case LF_REQHDR:
		case LF_RESPHDR: {
			const char *h = op->kind == LF_REQHDR ? e->req_head : e->resp_head;
			size_t hl = op->kind == LF_REQHDR ? e->req_head_len : e->resp_head_len;

			v = h ? logfmt_field(h, hl, op->arg, op->arglen, tmp, sizeof(tmp), &vn) : NULL;
			logfmt_puts_esc(&w, v, v ? vn : 0);
			break;
		}
		case LF_COOKIE:
			v = e->req_head ? logfmt_cookie(e, op->arg, op->arglen, tmp, sizeof(tmp), &vn) :
			                  NULL;
			logfmt_puts_esc(&w, v, v ? vn : 0);
			break;
		case LF_REQID:
			logfmt_putz(&w, e->req_id);
			break;
		case LF_CONNSTAT:
			logfmt_putc(&w, e->conn_status ? e->conn_status : '-');
			break;
		case LF_KEEPALIVE:
			logfmt_putu(&w, e->keepalives);
			break;
		}
	}
	dst[w.o] = '\0';
	return w.o;
}
