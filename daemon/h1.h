/*
 * h1.h - strict HTTP/1.1 message parsing (RFC 9112) for a proxy: request and response heads,
 * request targets, and incremental chunked bodies.
 *
 * Two phases, as Varnish does it: h1_head_complete() finds the end of a head in a buffer that
 * may still be filling (resumable through *scan so bytes are not rescanned), then
 * h1_parse_request()/h1_parse_response() dissect the complete head strictly. Dissection
 * allocates nothing: every string is an h1_str slice into the caller's buffer, valid as long as
 * those bytes stay where they are.
 *
 * Anything ambiguous is an error, never a guess: the parser returns H1_ERR with an HTTP status
 * (400, 414, 431, 501, 505; 502 for bad responses) and a static reason string. Input never
 * reaches an assert.
 */
#ifndef GH_H1_H
#define GH_H1_H

#include <stddef.h>
#include <stdint.h>

enum { H1_OK = 0, H1_AGAIN = 1, H1_ERR = -1 };

struct h1_str {
	const char *p;
	size_t n;
};

/* Limits; a request line over max_line is 414, a header line over max_field or more than
 * max_fields fields is 431, a head over max_head is 431 (every limit is 502 for responses). */
struct h1_limits {
	size_t max_line;   /* request line / status line, default 8190 */
	size_t max_field;  /* one field line, default 8190 */
	size_t max_fields; /* number of fields, default 100, at most H1_MAX_FIELDS */
	size_t max_head;   /* whole head incl. final CRLF, default 65536 */
};
#define H1_MAX_FIELDS 256
void h1_limits_default(struct h1_limits *l);

enum h1_method {
	H1_M_OTHER = 0, H1_M_GET, H1_M_HEAD, H1_M_POST, H1_M_PUT, H1_M_DELETE, H1_M_CONNECT,
	H1_M_OPTIONS, H1_M_TRACE, H1_M_PATCH, H1_M_PURGE
};

/* How the body of a message is delimited (RFC 9112 section 6.3). */
enum h1_framing {
	H1_BODY_NONE = 0,  /* no body: requests without CL/TE, HEAD/1xx/204/304 responses, CONNECT 2xx */
	H1_BODY_LENGTH,    /* content_length bytes */
	H1_BODY_CHUNKED,   /* chunked is the final transfer coding */
	H1_BODY_CLOSE      /* responses only: read until the server closes */
};

/* Well-known fields, recognised once during dissection. */
enum h1_field_id {
	H1_F_OTHER = 0, H1_F_CONNECTION, H1_F_KEEP_ALIVE, H1_F_PROXY_CONNECTION, H1_F_TE,
	H1_F_TRANSFER_ENCODING, H1_F_UPGRADE, H1_F_PROXY_AUTHORIZATION, H1_F_PROXY_AUTHENTICATE,
	H1_F_CONTENT_LENGTH, H1_F_HOST, H1_F_VIA, H1_F_MAX_FORWARDS, H1_F_EXPECT, H1_F_TRAILER,
	H1_F_CONTENT_TYPE, H1_F_DATE, H1_F_USER_AGENT, H1_F_REFERER, H1_F_AUTHORIZATION,
	H1_F_CACHE_CONTROL, H1_F_PRAGMA, H1_F__COUNT
};

struct h1_field {
	struct h1_str name;   /* as sent, no surrounding whitespace */
	struct h1_str value;  /* leading/trailing OWS removed */
	enum h1_field_id id;
	unsigned hop : 1;     /* hop-by-hop: a fixed hop-by-hop name or listed in Connection */
};

/* Flags derived from the fields. */
#define H1_CONN_CLOSE      0x01u /* Connection: close, or HTTP/1.0 without keep-alive */
#define H1_CONN_KEEPALIVE  0x02u /* Connection: keep-alive (meaningful for HTTP/1.0) */
#define H1_EXPECT_CONTINUE 0x04u /* Expect: 100-continue (other expectations -> 417) */
#define H1_HAS_UPGRADE     0x08u
#define H1_HAS_TE_TRAILERS 0x10u

struct h1_head {
	/* request */
	enum h1_method method;
	struct h1_str method_str;
	struct h1_str target;
	/* response */
	int status;
	struct h1_str reason;
	/* both */
	int minor;               /* HTTP/1.<minor>; 0 or 1 */
	size_t head_len;         /* bytes of the head including the blank line */
	struct h1_field fields[H1_MAX_FIELDS];
	size_t nfields;
	unsigned flags;
	enum h1_framing framing;
	uint64_t content_length; /* when framing == H1_BODY_LENGTH */
	int max_forwards;        /* -1 when absent */
};

/* Phase 1: is there a complete head in buf[0..len)? *scan carries the resume offset between
 * calls on the same (growing) buffer; start it at 0. Returns H1_OK and sets *head_len,
 * H1_AGAIN, or H1_ERR (head over limits->max_head -> *status 431, or a line over max_line for
 * the first line -> 414, a CR not followed by LF -> 400 "bare CR"; 502 for all of these when
 * !is_request) with *reason. Leading empty lines before a request are skipped per
 * RFC 9112 2.2 and counted in *head_len. Reset *scan to 0 for the next head. */
int h1_head_complete(const char *buf, size_t len, size_t *scan, size_t *head_len,
                     const struct h1_limits *lim, int is_request, int *status, const char **reason);

/* Phase 2: dissect a complete request head buf[0..head_len). Returns H1_OK or H1_ERR with
 * *status (400, 414, 431, 501 for unknown transfer-coding, 505 for a version other than
 * HTTP/1.x) and a static *reason such as "Content-Length with Transfer-Encoding".
 *
 * Refused with 400: conflicting or repeated Content-Length, Content-Length with
 * Transfer-Encoding, a transfer-coding list not ending in chunked, obs-fold, whitespace before
 * the colon or in a field name, bare CR, control characters or spaces in the target, invalid
 * field values (CTLs other than HTAB), an HTTP/1.1 request without Host or with more than one
 * Host (RFC 9112 3.2), a bad Max-Forwards, an Expect other than 100-continue (417).
 * Framing: Transfer-Encoding chunked, else Content-Length, else none. */
int h1_parse_request(const char *buf, size_t head_len, struct h1_head *h, const struct h1_limits *lim,
                     int *status, const char **reason);

/* Dissect a complete response head. req_method is the method of the request it answers
 * (HEAD and CONNECT change the framing). Framing: 1xx/204/304 and HEAD -> none; 2xx to
 * CONNECT -> none; chunked; Content-Length; otherwise close-delimited. A transfer-coding list
 * not ending in chunked is close-delimited per RFC 9112 6.3. Errors are H1_ERR with *reason;
 * *status is 502. bad_header_mode selects ProxyBadHeader: 0 IsError (a malformed field line is
 * an error), 1 Ignore (the malformed line is dropped), 2 StartBody (the malformed line and
 * everything after it are treated as the start of the body: *head_len is shortened). */
int h1_parse_response(const char *buf, size_t *head_len, struct h1_head *h, enum h1_method req_method,
                      const struct h1_limits *lim, int bad_header_mode, int *status, const char **reason);

/* Field access. Names compare case-insensitively. Returns the first match or NULL. */
const struct h1_field *h1_field_get(const struct h1_head *h, enum h1_field_id id);
const struct h1_field *h1_field_find(const struct h1_head *h, const char *name, size_t name_len);

/* Does a comma-separated field value list contain token (case-insensitive, OWS allowed)? */
int h1_list_has(struct h1_str value, const char *token);

/* Case-insensitive compare of a slice with a NUL-terminated string. */
int h1_str_ieq(struct h1_str s, const char *lit);

/* ---- request targets ---- */

enum h1_scheme { H1_SCHEME_NONE = 0, H1_SCHEME_HTTP, H1_SCHEME_HTTPS, H1_SCHEME_FTP, H1_SCHEME_OTHER };

struct h1_url {
	enum h1_scheme scheme;
	struct h1_str scheme_str;
	struct h1_str userinfo;  /* without '@'; empty when absent */
	struct h1_str host;      /* reg-name or IP literal without brackets */
	int host_is_ip6;         /* host was a [bracketed] literal */
	uint16_t port;           /* explicit port or the scheme's default (80, 443, 21) */
	int port_explicit;
	struct h1_str path;      /* path-abempty + "?" query, "/" substituted when empty */
	int path_is_default;     /* path was empty and "/" was substituted (path.p is static) */
};

/* Parse an absolute-form target ("http://host[:port]/path?q"). Rejects: missing host, bad
 * port (0 or > 65535 or non-digits), characters outside RFC 3986 in host, unbalanced
 * brackets, fragments ('#'), a query without a path ("http://h?q"), a numeric-looking host
 * that is not a dotted quad ("0x7f.1"), and anything with CTLs or spaces. Returns H1_OK or
 * H1_ERR with a static *reason. Host is not lower-cased here: compare with h1_str_ieq. */
int h1_url_parse(struct h1_str target, struct h1_url *u, const char **reason);

/* Parse an authority-form target ("host:port", "[v6]:port"), port required. */
int h1_authority_parse(struct h1_str target, struct h1_url *u, const char **reason);

/* ---- chunked bodies ---- */

struct h1_chunked {
	int state;
	uint64_t remaining;   /* bytes left in the current chunk's data */
	size_t line_len;      /* bytes of the current size/trailer line seen, for limits */
	size_t trailer_bytes; /* total trailer-section bytes, capped */
	int saw_ext;
};
void h1_chunked_init(struct h1_chunked *c);

/* Decodes in[0..len). Each call consumes framing and/or returns at most one span: on return
 * *consumed is how much of in was used and *span (n may be 0) lies inside that consumed part.
 * *span_kind says what the span is: H1_SPAN_DATA (body data) or H1_SPAN_TRAILER (one complete,
 * validated trailer field line including its CRLF; returned only once the whole line is in in).
 * Returns H1_AGAIN (call again with the unconsumed rest, plus more input when *consumed == 0
 * and span is empty), H1_OK when the last-chunk and the trailer section's final CRLF have been
 * consumed, or H1_ERR with *reason ("bad chunk size", "chunk size too large", "missing CRLF
 * after chunk data", "bare CR", "bare LF", "trailer section too large", "bad trailer field",
 * ...). Every line of the framing must end in CRLF: a bare LF is an error, never a line end.
 * Sizes use at most 16 hex digits and never overflow; chunk extensions are checked and
 * skipped; trailer lines are validated like header fields (no obs-fold). */
enum { H1_SPAN_DATA = 0, H1_SPAN_TRAILER = 1 };
int h1_chunked_step(struct h1_chunked *c, const char *in, size_t len, size_t *consumed,
                    struct h1_str *span, int *span_kind, const char **reason);

#endif
