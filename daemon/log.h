/*
 * log.h - the error log (levelled, to stderr or a file) and the access log (one line per
 * request, Squid native format or Apache combined, buffered per worker and flushed with one
 * write(2) per loop turn to an O_APPEND file, so lines from several threads never interleave).
 *
 * Error-log lines: "2026-11-26 16:40:01.123 [warn] message". Check the level before formatting
 * (log_on). Network bytes are logged clipped and escaped (log_clip).
 */
#ifndef GH_LOG_H
#define GH_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "daemon/cfg.h"

/* Set the error log: path NULL or "-" means stderr. Returns 0 or -1 with errno. */
int log_open(const char *path, enum cfg_log_level level);
/* Reopen the error log file (SIGUSR1). */
int log_reopen(void);
void log_set_level(enum cfg_log_level level);
int log_on(enum cfg_log_level level);
void log_msg(enum cfg_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) do { if (log_on(CFG_LL_ERROR)) log_msg(CFG_LL_ERROR, __VA_ARGS__); } while (0)
#define log_warn(...) do { if (log_on(CFG_LL_WARN)) log_msg(CFG_LL_WARN, __VA_ARGS__); } while (0)
#define log_notice(...) do { if (log_on(CFG_LL_NOTICE)) log_msg(CFG_LL_NOTICE, __VA_ARGS__); } while (0)
#define log_info(...) do { if (log_on(CFG_LL_INFO)) log_msg(CFG_LL_INFO, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (log_on(CFG_LL_DEBUG)) log_msg(CFG_LL_DEBUG, __VA_ARGS__); } while (0)

/* ErrorLog "syslog" or "syslog:FACILITY": the facility (LOG_DAEMON by default), -1 for an
 * unknown facility, -2 when spec is not a syslog target. */
int log_syslog_spec(const char *spec);
/* At exit: stop piped log programs (logpipe.h) and close syslog; later lines go to stderr. */
void log_shutdown(void);
/* Before the privilege drop: create every log file of c owned by User (svc_file_precreate). */
void log_precreate_all(const struct cfg *c);

/* Escape at most 64 bytes of p[0..n) into out (printable ASCII kept, others as \xHH). */
const char *log_clip(const char *p, size_t n, char *out, size_t outlen);

/* ---- access log ---- */

/* One shared access log: opened by main, written by every worker. */
struct alog;
int alog_open(struct alog **ap, const char *path, enum cfg_log_format fmt);
void alog_close(struct alog **ap);
/* Reopen every access log file of the chain (pipes and stderr are left alone). */
int alog_reopen(struct alog *a);
/* Open AccessLog and then every CustomLog/TransferLog of c as one chain (*ap is its head, or
 * NULL when there is no access log). Piped ones start with logpipe_start_all. Returns 0, or -1
 * with "FILE:LINE: ..." in err. */
int alog_open_all(struct alog **ap, const struct cfg *c, char *err, size_t errlen);
/* LOGFMT_NEED_* (logfmt.h) of every log of the chain: what a request must keep for them. */
unsigned alog_needs(const struct alog *a);
/* Do a and b name the same logs (a reload that changes them warns: they apply at start)? */
int alog_cfg_same(const struct cfg *a, const struct cfg *b);

/* Everything a log line needs about one request. */
struct alog_entry {
	uint64_t start_us;        /* wall clock at request start */
	uint64_t elapsed_ms;
	const char *client;       /* client address text */
	const char *action;       /* Squid result code: TCP_MISS, TCP_DENIED, TCP_TUNNEL, NONE ... */
	int status;
	uint64_t bytes;           /* bytes sent to the client, head included */
	uint64_t body_bytes;      /* body data only (Apache %b) */
	const char *method;
	const char *url;
	const char *user;         /* "-" */
	const char *hier;         /* HIER_DIRECT, HIER_NONE, FIRSTUP_PARENT ... */
	const char *peer;         /* upstream address or "-" */
	const char *ctype;        /* response Content-Type or "-" */
	const char *request_line; /* combined format: the request line as received */
	const char *referer, *user_agent;
	const char *req_id;       /* the request id shown on error pages and in the logs, or NULL */

	/* For LogFormat/CustomLog (logfmt.h, issue 9); NULL/0 when unknown. The heads are kept
	 * by proxy.c only when a log format asks for them (alog_needs). */
	const char *req_head;     /* the request head as received, or NULL */
	size_t req_head_len;
	const char *resp_head;    /* the response head as sent to the client, or NULL */
	size_t resp_head_len;
	const struct sockaddr_storage *local_addr, *peer_addr;
	const char *server_name;  /* %v %V */
	int minor;                /* HTTP/1.<minor> of the request (%H) */
	unsigned keepalives;      /* requests before this one on the connection (%k) */
	char conn_status;         /* %X: 'X' aborted, '+' may be kept alive, '-' will close */
};

/* Per-worker line buffer; one per access log of the chain, linked by next. */
struct alog_buf {
	struct alog *log;
	char *data;
	size_t len, cap;
	struct alog_buf *next;
};
void alog_buf_init(struct alog_buf *b, struct alog *log);
void alog_buf_fini(struct alog_buf *b);
void alog_add(struct alog_buf *b, const struct alog_entry *e);
void alog_flush(struct alog_buf *b);

#endif
