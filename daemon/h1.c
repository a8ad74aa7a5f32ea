/*
 * h1.c - strict, incremental HTTP/1.1 parsing for the proxy (RFC 9112; field syntax from
 * RFC 9110; targets from RFC 3986). Called by the connection code on every request and
 * response head and on every chunked body, so it is the hot path: nothing here allocates,
 * every result is a slice of the caller's buffer, and each byte is looked at a bounded number
 * of times.
 *
 * Scanning (h1_head_complete) only finds the end of a head and enforces the size limits and
 * the bare-CR rule, byte for byte in stream order, so a head split at any point gives the
 * same verdict as the whole head. Its resume state is packed into the caller's size_t:
 * the resume offset, the start of the current line and the number of lines seen. Heads are
 * therefore limited to H1_SCAN_HEAD_MAX bytes whatever max_head says (128 MiB on 64-bit
 * hosts; 32-bit hosts keep only the line start and rescan the current line on resume).
 *
 * Dissection (h1_parse_request/h1_parse_response) refuses anything a peer could interpret
 * differently: repeated or conflicting Content-Length (even "5, 5" or two identical lines,
 * in responses as well: RFC 9110 8.6 would let us accept identical values, we do not),
 * Content-Length with Transfer-Encoding, chunked not last or applied twice, Transfer-Encoding
 * in HTTP/1.0, obs-fold, whitespace before the colon, bare CR. A line ending in a head is CRLF
 * or a bare LF (RFC 9112 2.2: heads are re-serialised, never forwarded raw); in chunked framing
 * (size lines, after the data, trailer lines) it is CRLF only, since trailer lines are
 * forwarded as they came and a recipient that splits lines differently at a bare LF must
 * never see one (RFC 9112 7.1 has no bare-LF allowance of its own). Requests get 400
 * (414/431 for limits, 417, 501, 505), responses 502. ProxyBadHeader (responses only)
 * applies to a malformed field line; a malformed line that names Content-Length or
 * Transfer-Encoding is always an error, as are obs-fold, bare CR and framing conflicts.
 *
 * Hosts in targets: a reg-name whose last label is numeric (all digits or "0x...") must be a
 * canonical dotted quad, so "0x7f.1" or "2130706433" can never reach a resolver that would
 * read them as 127.0.0.1 behind the ACLs' back. "http://host?q" (query without path) is
 * refused because the path slice could not carry the substituted "/".
 *
 * Leading empty lines are skipped before a request (RFC 9112 2.2) but not before a response:
 * a stray CRLF from a server means its previous body length was wrong.
 */
#include "daemon/h1.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

/* ---- character classes ---- */

#define H1_C_TCHAR    0x001u /* token character (RFC 9110 5.6.2) */
#define H1_C_FVAL     0x002u /* field-vchar, SP, HTAB: allowed inside a field value */
#define H1_C_TARGET   0x004u /* visible ASCII: allowed in a request target */
#define H1_C_HEX      0x008u
#define H1_C_REGNAME  0x010u /* unreserved, sub-delims, '%': reg-name characters */
#define H1_C_USERINFO 0x020u /* reg-name characters and ':' */
#define H1_C_DIGIT    0x040u
#define H1_C_SCHEME   0x080u /* ALPHA DIGIT + - . */
#define H1_C_QDTEXT   0x100u /* quoted-string text: FVAL but '"' and '\\' */
#define H1_C_WS       0x200u /* SP, HTAB */

#define H1_IS_ALPHA(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))
#define H1_IS_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define H1_IS_HEX(c) (H1_IS_DIGIT(c) || ((c) >= 'a' && (c) <= 'f') || ((c) >= 'A' && (c) <= 'F'))
#define H1_IS_TSYM(c) ((c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' || (c) == '&' || \
                       (c) == '\'' || (c) == '*' || (c) == '+' || (c) == '-' || (c) == '.' || \
                       (c) == '^' || (c) == '_' || (c) == '`' || (c) == '|' || (c) == '~')
#define H1_IS_SUBDELIM(c) ((c) == '!' || (c) == '$' || (c) == '&' || (c) == '\'' || \
                           (c) == '(' || (c) == ')' || (c) == '*' || (c) == '+' || \
                           (c) == ',' || (c) == ';' || (c) == '=')
#define H1_IS_UNRESERVED(c) (H1_IS_ALPHA(c) || H1_IS_DIGIT(c) || (c) == '-' || (c) == '.' || \
                             (c) == '_' || (c) == '~')
#define H1_IS_VIS(c) ((c) >= 0x21 && (c) <= 0x7e)
#define H1_IS_FVAL(c) (H1_IS_VIS(c) || (c) >= 0x80 || (c) == ' ' || (c) == '\t')
#define H1_IS_REGNAME(c) (H1_IS_UNRESERVED(c) || H1_IS_SUBDELIM(c) || (c) == '%')

#define H1_CC(c) ((uint16_t)( \
	((H1_IS_ALPHA(c) || H1_IS_DIGIT(c) || H1_IS_TSYM(c)) ? H1_C_TCHAR : 0) | \
	(H1_IS_FVAL(c) ? H1_C_FVAL : 0) | \
	(H1_IS_VIS(c) ? H1_C_TARGET : 0) | \
	(H1_IS_HEX(c) ? H1_C_HEX : 0) | \
	(H1_IS_REGNAME(c) ? H1_C_REGNAME : 0) | \
	((H1_IS_REGNAME(c) || (c) == ':') ? H1_C_USERINFO : 0) | \
	(H1_IS_DIGIT(c) ? H1_C_DIGIT : 0) | \
	((H1_IS_ALPHA(c) || H1_IS_DIGIT(c) || (c) == '+' || (c) == '-' || (c) == '.') ? \
	 H1_C_SCHEME : 0) | \
	((H1_IS_FVAL(c) && (c) != '"' && (c) != '\\') ? H1_C_QDTEXT : 0) | \
	(((c) == ' ' || (c) == '\t') ? H1_C_WS : 0)))
#define H1_CC4(b) H1_CC(b), H1_CC((b) + 1), H1_CC((b) + 2), H1_CC((b) + 3)
#define H1_CC16(b) H1_CC4(b), H1_CC4((b) + 4), H1_CC4((b) + 8), H1_CC4((b) + 12)
#define H1_CC64(b) H1_CC16(b), H1_CC16((b) + 16), H1_CC16((b) + 32), H1_CC16((b) + 48)

static const uint16_t h1_cc[256] = { H1_CC64(0), H1_CC64(64), H1_CC64(128), H1_CC64(192) };

#define H1_CLS(ch, bit) (h1_cc[(unsigned char)(ch)] & (bit))

/* ---- limits and small helpers ---- */

#define H1_CHUNK_LINE_MAX 4096 /* chunk-size line including extensions */
#define H1_TRAILER_MAX 8192    /* whole trailer section including its final CRLF */
#define H1_HOST_MAX 255

void
h1_limits_default(struct h1_limits *l)
{
	l->max_line = 8190;
	l->max_field = 8190;
	l->max_fields = 100;
	l->max_head = 65536;
}

static int
h1_lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

/* Case-insensitive equality of two byte ranges of the same length n. */
static int
h1_mem_ieq(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (h1_lower((unsigned char)a[i]) != h1_lower((unsigned char)b[i]))
			return 0;
	return 1;
}

/* Fast compare of a validated token (tchar only) with a lower-case literal made of letters
 * and '-': (c | 0x20) maps 'A'-'Z' to 'a'-'z', and the only other byte it maps onto a letter
 * or '-' is CR (0x0d -> '-'), which is never a tchar. */
static int
h1_tok_eq(const char *p, const char *lit, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (((unsigned char)p[i] | 0x20) != (unsigned char)lit[i])
			return 0;
	return 1;
}

int
h1_str_ieq(struct h1_str s, const char *lit)
{
	size_t n = strlen(lit);

	return s.n == n && h1_mem_ieq(s.p, lit, n);
}

static struct h1_str
h1_trim(const char *p, size_t n)
{
	struct h1_str s;

	while (n > 0 && H1_CLS(p[0], H1_C_WS)) {
		p++;
		n--;
	}
	while (n > 0 && H1_CLS(p[n - 1], H1_C_WS))
		n--;
	s.p = p;
	s.n = n;
	return s;
}

/* Next element of a comma-separated list, OWS trimmed; empty elements are returned too (an
 * empty value is one empty element). *pos starts at 0. Returns 0 when the list is done. */
static int
h1_list_next(struct h1_str v, size_t *pos, struct h1_str *elem)
{
	const char *comma;
	size_t start = *pos, end;

	if (start > v.n)
		return 0;
	comma = start < v.n ? memchr(v.p + start, ',', v.n - start) : NULL;
	end = comma != NULL ? (size_t)(comma - v.p) : v.n;
	*elem = h1_trim(v.p + start, end - start);
	*pos = end + 1;
	return 1;
}

int
h1_list_has(struct h1_str value, const char *token)
{
	struct h1_str e;
	size_t pos = 0;

	while (h1_list_next(value, &pos, &e))
		if (e.n > 0 && h1_str_ieq(e, token))
			return 1;
	return 0;
}

/* ---- field names ---- */

/* Recognise a well-known field from a validated name: length, then first letter, then a
 * case-insensitive compare. */
static enum h1_field_id
h1_field_id(const char *p, size_t n)
{
	int c = (unsigned char)p[0] | 0x20;

	switch (n) {
	case 2:
		return h1_tok_eq(p, "te", 2) ? H1_F_TE : H1_F_OTHER;
	case 3:
		return h1_tok_eq(p, "via", 3) ? H1_F_VIA : H1_F_OTHER;
	case 4:
		if (c == 'h')
			return h1_tok_eq(p, "host", 4) ? H1_F_HOST : H1_F_OTHER;
		if (c == 'd')
			return h1_tok_eq(p, "date", 4) ? H1_F_DATE : H1_F_OTHER;
		return H1_F_OTHER;
	case 6:
		if (c == 'e')
			return h1_tok_eq(p, "expect", 6) ? H1_F_EXPECT : H1_F_OTHER;
		if (c == 'p')
			return h1_tok_eq(p, "pragma", 6) ? H1_F_PRAGMA : H1_F_OTHER;
		return H1_F_OTHER;
	case 7:
		if (c == 'u')
			return h1_tok_eq(p, "upgrade", 7) ? H1_F_UPGRADE : H1_F_OTHER;
		if (c == 't')
			return h1_tok_eq(p, "trailer", 7) ? H1_F_TRAILER : H1_F_OTHER;
		if (c == 'r')
			return h1_tok_eq(p, "referer", 7) ? H1_F_REFERER : H1_F_OTHER;
		return H1_F_OTHER;
	case 10:
		if (c == 'c')
			return h1_tok_eq(p, "connection", 10) ? H1_F_CONNECTION : H1_F_OTHER;
		if (c == 'k')
			return h1_tok_eq(p, "keep-alive", 10) ? H1_F_KEEP_ALIVE : H1_F_OTHER;
		if (c == 'u')
			return h1_tok_eq(p, "user-agent", 10) ? H1_F_USER_AGENT : H1_F_OTHER;
		return H1_F_OTHER;
	case 12:
		if (c == 'm')
			return h1_tok_eq(p, "max-forwards", 12) ? H1_F_MAX_FORWARDS : H1_F_OTHER;
		if (c == 'c')
			return h1_tok_eq(p, "content-type", 12) ? H1_F_CONTENT_TYPE : H1_F_OTHER;
		return H1_F_OTHER;
	case 13:
		if (c == 'a')
			return h1_tok_eq(p, "authorization", 13) ? H1_F_AUTHORIZATION : H1_F_OTHER;
		if (c == 'c')
			return h1_tok_eq(p, "cache-control", 13) ? H1_F_CACHE_CONTROL : H1_F_OTHER;
		return H1_F_OTHER;
	case 14:
		return h1_tok_eq(p, "content-length", 14) ? H1_F_CONTENT_LENGTH : H1_F_OTHER;
	case 16:
		return h1_tok_eq(p, "proxy-connection", 16) ? H1_F_PROXY_CONNECTION : H1_F_OTHER;
	case 17:
		return h1_tok_eq(p, "transfer-encoding", 17) ? H1_F_TRANSFER_ENCODING : H1_F_OTHER;
	case 18:
		return h1_tok_eq(p, "proxy-authenticate", 18) ? H1_F_PROXY_AUTHENTICATE
		                                               : H1_F_OTHER;
	case 19:
		return h1_tok_eq(p, "proxy-authorization", 19) ? H1_F_PROXY_AUTHORIZATION
		                                                : H1_F_OTHER;
	default:
		return H1_F_OTHER;
	}
}

static int
h1_id_is_hop(enum h1_field_id id)
{
	switch (id) {
	case H1_F_CONNECTION:
	case H1_F_KEEP_ALIVE:
	case H1_F_PROXY_CONNECTION:
	case H1_F_TE:
	case H1_F_TRANSFER_ENCODING:
	case H1_F_UPGRADE:
	case H1_F_PROXY_AUTHORIZATION:
	case H1_F_PROXY_AUTHENTICATE:
	case H1_F_TRAILER:
		return 1;
	default:
		return 0;
	}
}

const struct h1_field *
h1_field_get(const struct h1_head *h, enum h1_field_id id)
{
	size_t i;

	for (i = 0; i < h->nfields; i++)
		if (h->fields[i].id == id)
			return &h->fields[i];
	return NULL;
}

const struct h1_field *
h1_field_find(const struct h1_head *h, const char *name, size_t name_len)
{
	size_t i;

	for (i = 0; i < h->nfields; i++)
		if (h->fields[i].name.n == name_len &&
		    h1_mem_ieq(h->fields[i].name.p, name, name_len))
			return &h->fields[i];
	return NULL;
}

/* ---- phase 1: finding the end of a head ---- */

#if SIZE_MAX >= 0xffffffffffffffffu
#define H1_SCAN_FULL 1
#define H1_SCAN_POS_BITS 27
#else
#define H1_SCAN_FULL 0
#define H1_SCAN_POS_BITS 23
#endif
#define H1_SCAN_HEAD_MAX (((size_t)1 << H1_SCAN_POS_BITS) - 1)
#define H1_SCAN_MASK H1_SCAN_HEAD_MAX
#define H1_SCAN_LINES_MASK ((size_t)0x1ff) /* lines are counted up to H1_MAX_FIELDS + 1 */

/* *scan layout (64-bit): pos | (pos - line_start) << 27 | nlines << 54. On 32-bit hosts only
 * line_start | nlines << 23 is kept and the scan resumes at the start of the line. */
static size_t
h1_scan_pack(size_t pos, size_t line_start, size_t nlines)
{
#if H1_SCAN_FULL
	return pos | (pos - line_start) << H1_SCAN_POS_BITS | nlines << (2 * H1_SCAN_POS_BITS);
#else
	(void)pos;
	return line_start | nlines << H1_SCAN_POS_BITS;
#endif
}

static void
h1_scan_unpack(size_t s, size_t *pos, size_t *line_start, size_t *nlines)
{
#if H1_SCAN_FULL
	*pos = s & H1_SCAN_MASK;
	*line_start = *pos - ((s >> H1_SCAN_POS_BITS) & H1_SCAN_MASK);
	*nlines = (s >> (2 * H1_SCAN_POS_BITS)) & H1_SCAN_LINES_MASK;
	if (*line_start > *pos) /* not a value we produced */
		*pos = *line_start = *nlines = 0;
#else
	*pos = *line_start = s & H1_SCAN_MASK;
	*nlines = (s >> H1_SCAN_POS_BITS) & H1_SCAN_LINES_MASK;
#endif
}

/* Index of the first CR or LF in buf[from..stop), or stop. */
static size_t
h1_find_eol(const char *buf, size_t from, size_t stop)
{
	const char *lf, *cr;
	size_t end;

	if (from >= stop)
		return stop;
	lf = memchr(buf + from, '\n', stop - from);
	end = lf != NULL ? (size_t)(lf - buf) : stop;
	cr = end > from ? memchr(buf + from, '\r', end - from) : NULL;
	return cr != NULL ? (size_t)(cr - buf) : end;
}

int
h1_head_complete(const char *buf, size_t len, size_t *scan, size_t *head_len,
                 const struct h1_limits *lim, int is_request, int *status, const char **reason)
{
	struct h1_limits dl;
	size_t i, line_start, nlines, max_head, max_fields, limit, stop;
	int pending;

	if (lim == NULL) {
		h1_limits_default(&dl);
		lim = &dl;
	}
	max_head = lim->max_head < H1_SCAN_HEAD_MAX ? lim->max_head : H1_SCAN_HEAD_MAX;
	max_fields = lim->max_fields < H1_MAX_FIELDS ? lim->max_fields : H1_MAX_FIELDS;
	h1_scan_unpack(*scan, &i, &line_start, &nlines);
	if (i > len) /* not our buffer any more: start over */
		i = line_start = nlines = 0;
	pending = i > line_start && buf[i - 1] == '\r';
	while (i < len) {
		unsigned char c;

		if (i >= max_head) {
			*status = is_request ? 431 : 502;
			*reason = "head too large";
			return H1_ERR;
		}
		c = (unsigned char)buf[i];
		if (pending && c != '\n') {
			*status = is_request ? 400 : 502;
			*reason = "bare CR";
			return H1_ERR;
		}
		if (c == '\n') {
			size_t clen = i - line_start - (size_t)pending;

			i++;
			pending = 0;
			if (clen == 0) {
				if (nlines == 0 && is_request) {
					line_start = i; /* leading empty line */
					continue;
				}
				*head_len = i;
				*scan = h1_scan_pack(i, i, nlines);
				return H1_OK;
			}
			if (nlines > max_fields) {
				*status = is_request ? 431 : 502;
				*reason = "too many header fields";
				return H1_ERR;
			}
			nlines++;
			line_start = i;
			continue;
		}
		if (c == '\r') {
			pending = 1;
			i++;
			continue;
		}
		limit = nlines == 0 ? lim->max_line : lim->max_field;
		if (i - line_start >= limit) {
			if (nlines == 0) {
				*status = is_request ? 414 : 502;
				*reason = is_request ? "request line too long"
				                     : "status line too long";
			} else {
				*status = is_request ? 431 : 502;
				*reason = "header field too long";
			}
			return H1_ERR;
		}
		/* an ordinary byte: skip to the next CR/LF, staying below both limits */
		stop = len;
		if (limit - (i - line_start) < stop - i)
			stop = line_start + limit;
		if (stop > max_head)
			stop = max_head;
		i = h1_find_eol(buf, i + 1, stop);
	}
	*scan = h1_scan_pack(i, line_start, nlines);
	return H1_AGAIN;
}

/* ---- phase 2: dissection ---- */

static int h1_hostport(struct h1_str s, struct h1_url *u, int port_required, const char **reason);

struct h1_te {
	unsigned codings;  /* transfer-codings listed */
	unsigned chunked;  /* how many of them are chunked */
	int last_chunked;  /* the last listed is chunked */
	int other;         /* something other than chunked is listed */
	int bad;           /* syntax error */
};

struct h1_pctx {
	struct h1_head *h;
	const struct h1_limits *lim;
	int is_request;
	int mode;          /* ProxyBadHeader, responses only */
	int err_status;    /* 400 or 502 */
	int have_cl, have_te, have_host, have_mf, conn_names;
	struct h1_te te;
};

enum { H1_FL_OK = 0, H1_FL_BAD, H1_FL_FATAL };

/* Next line of buf[*pos..len) with its terminator (CRLF or LF) removed. Returns 1, 0 when
 * there is no further LF, -1 on a CR that does not precede the LF. */
static int
h1_next_line(const char *buf, size_t len, size_t *pos, struct h1_str *line)
{
	const char *lf, *cr;
	size_t s = *pos, e;

	if (s >= len)
		return 0;
	lf = memchr(buf + s, '\n', len - s);
	if (lf == NULL)
		return 0;
	e = (size_t)(lf - buf);
	cr = e > s ? memchr(buf + s, '\r', e - s) : NULL;
	if (cr != NULL && cr != lf - 1)
		return -1;
	line->p = buf + s;
	line->n = e - s - (cr != NULL);
	*pos = e + 1;
	return 1;
}

/* Split and validate one field line (terminator removed, not starting with whitespace).
 * Returns H1_FL_OK with f filled, H1_FL_BAD for a malformed line (ProxyBadHeader applies) or
 * H1_FL_FATAL for a malformed line that touches framing; *reason is set on failure. */
static int
h1_field_split(struct h1_str line, struct h1_field *f, const char **reason)
{
	const char *p = line.p;
	size_t n = line.n, i = 0, j, vs, ve;
	enum h1_field_id id;

	while (i < n && H1_CLS(p[i], H1_C_TCHAR))
		i++;
	if (i == n) {
		*reason = "missing colon in header";
		return H1_FL_BAD;
	}
	if (p[i] != ':') {
		if (i > 0 && H1_CLS(p[i], H1_C_WS)) {
			for (j = i; j < n && H1_CLS(p[j], H1_C_WS); j++)
				;
			if (j < n && p[j] == ':') {
				id = h1_field_id(p, i);
				*reason = "whitespace before colon";
				return (id == H1_F_CONTENT_LENGTH || id == H1_F_TRANSFER_ENCODING)
				           ? H1_FL_FATAL : H1_FL_BAD;
			}
		}
		*reason = "invalid character in header name";
		return H1_FL_BAD;
	}
	if (i == 0) {
		*reason = "empty header name";
		return H1_FL_BAD;
	}
	id = h1_field_id(p, i);
	f->name.p = p;
	f->name.n = i;
	f->id = id;
	f->hop = h1_id_is_hop(id);
	vs = i + 1;
	while (vs < n && H1_CLS(p[vs], H1_C_WS))
		vs++;
	ve = n;
	while (ve > vs && H1_CLS(p[ve - 1], H1_C_WS))
		ve--;
	for (j = vs; j < ve; j++) {
		if (!H1_CLS(p[j], H1_C_FVAL)) {
			*reason = "invalid character in header value";
			return (id == H1_F_CONTENT_LENGTH || id == H1_F_TRANSFER_ENCODING)
			           ? H1_FL_FATAL : H1_FL_BAD;
		}
	}
	f->value.p = p + vs;
	f->value.n = ve - vs;
	return H1_FL_OK;
}

/* 1*DIGIT into *v; values above max are an error unless clamp is set. */
static int
h1_parse_digits(struct h1_str s, uint64_t max, int clamp, uint64_t *v)
{
	uint64_t x = 0;
	size_t i;

	if (s.n == 0)
		return -1;
	for (i = 0; i < s.n; i++) {
		unsigned d = (unsigned char)s.p[i] - '0';

		if (d > 9)
			return -1;
		if (x > (max - d) / 10) {
			if (!clamp)
				return -1;
			x = max;
			continue;
		}
		x = x * 10 + d;
	}
	*v = x;
	return 0;
}

static int
h1_fail(struct h1_pctx *x, int status, const char *why, int *st, const char **reason)
{
	*st = x->is_request ? status : 502;
	*reason = why;
	return H1_ERR;
}

static int
h1_content_length(struct h1_pctx *x, struct h1_str v, int *st, const char **reason)
{
	struct h1_str e;
	size_t pos = 0;
	uint64_t val, first = 0;
	unsigned count = 0;
	int same = 1;

	while (h1_list_next(v, &pos, &e)) {
		if (h1_parse_digits(e, INT64_MAX, 0, &val) != 0)
			return h1_fail(x, 400, "bad Content-Length", st, reason);
		if (count++ == 0)
			first = val;
		else if (val != first)
			same = 0;
	}
	if (x->have_cl)
		same = same && first == x->h->content_length;
	if (count > 1 || x->have_cl)
		return h1_fail(x, 400, same ? "repeated Content-Length"
		                            : "conflicting Content-Length", st, reason);
	x->have_cl = 1;
	x->h->content_length = first;
	return H1_OK;
}

/* quoted-string at p[*i] == '"'; advances past the closing quote. */
static int
h1_skip_quoted(const char *p, size_t n, size_t *i)
{
	size_t k = *i + 1;

	while (k < n) {
		unsigned char c = (unsigned char)p[k];

		if (c == '"') {
			*i = k + 1;
			return 0;
		}
		if (c == '\\') {
			if (k + 1 >= n || !H1_CLS(p[k + 1], H1_C_FVAL))
				return -1;
			k += 2;
			continue;
		}
		if (!H1_CLS(c, H1_C_QDTEXT))
			return -1;
		k++;
	}
	return -1;
}

static size_t
h1_skip_ws(const char *p, size_t n, size_t i)
{
	while (i < n && H1_CLS(p[i], H1_C_WS))
		i++;
	return i;
}

/* transfer-coding list: coding *( OWS "," OWS coding ), coding = token *( OWS ";" OWS token
 * OWS "=" OWS ( token / quoted-string ) ). Empty elements are refused. */
static void
h1_te_parse(struct h1_te *te, struct h1_str v)
{
	const char *p = v.p;
	size_t n = v.n, i = 0, s;

	for (;;) {
		int chunked, params = 0;

		i = h1_skip_ws(p, n, i);
		for (s = i; i < n && H1_CLS(p[i], H1_C_TCHAR); i++)
			;
		if (i == s) {
			te->bad = 1;
			return;
		}
		chunked = i - s == 7 && h1_tok_eq(p + s, "chunked", 7);
		i = h1_skip_ws(p, n, i);
		while (i < n && p[i] == ';') {
			params = 1;
			i = h1_skip_ws(p, n, i + 1);
			for (s = i; i < n && H1_CLS(p[i], H1_C_TCHAR); i++)
				;
			i = h1_skip_ws(p, n, i);
			if (i == s || i >= n || p[i] != '=') {
				te->bad = 1;
				return;
			}
			i = h1_skip_ws(p, n, i + 1);
			if (i < n && p[i] == '"') {
				if (h1_skip_quoted(p, n, &i) != 0) {
					te->bad = 1;
					return;
				}
			} else {
				for (s = i; i < n && H1_CLS(p[i], H1_C_TCHAR); i++)
					;
				if (i == s) {
					te->bad = 1;
					return;
				}
			}
			i = h1_skip_ws(p, n, i);
		}
		if (chunked && params) { /* chunked takes no parameters */
			te->bad = 1;
			return;
		}
		te->codings++;
		te->chunked += (unsigned)chunked;
		te->last_chunked = chunked;
		if (!chunked)
			te->other = 1;
		if (i == n)
			return;
		if (p[i] != ',') {
			te->bad = 1;
			return;
		}
		i++;
	}
}

/* Semantics of one stored field. */
static int
h1_field_semantics(struct h1_pctx *x, const struct h1_field *f, int *st, const char **reason)
{
	struct h1_head *h = x->h;
	struct h1_str e;
	size_t pos = 0;
	uint64_t v;

	switch (f->id) {
	case H1_F_CONTENT_LENGTH:
		return h1_content_length(x, f->value, st, reason);
	case H1_F_TRANSFER_ENCODING:
		x->have_te = 1;
		h1_te_parse(&x->te, f->value);
		return H1_OK;
	case H1_F_CONNECTION:
		while (h1_list_next(f->value, &pos, &e)) {
			if (e.n == 0)
				continue;
			if (h1_str_ieq(e, "close"))
				h->flags |= H1_CONN_CLOSE;
			else if (h1_str_ieq(e, "keep-alive"))
				h->flags |= H1_CONN_KEEPALIVE;
			else
				x->conn_names = 1;
		}
		return H1_OK;
	case H1_F_TE:
		if (h1_list_has(f->value, "trailers"))
			h->flags |= H1_HAS_TE_TRAILERS;
		return H1_OK;
	case H1_F_UPGRADE:
		h->flags |= H1_HAS_UPGRADE;
		return H1_OK;
	default:
		break;
	}
	if (!x->is_request)
		return H1_OK;
	switch (f->id) {
	case H1_F_HOST: {
		struct h1_url u;
		const char *why;

		if (x->have_host)
			return h1_fail(x, 400, "repeated Host", st, reason);
		x->have_host = 1;
		if (f->value.n > 0 && h1_hostport(f->value, &u, 0, &why) != H1_OK)
			return h1_fail(x, 400, "bad Host", st, reason);
		return H1_OK;
	}
	case H1_F_MAX_FORWARDS:
		if (x->have_mf)
			return h1_fail(x, 400, "repeated Max-Forwards", st, reason);
		x->have_mf = 1;
		if (h1_parse_digits(f->value, INT_MAX, 1, &v) != 0)
			return h1_fail(x, 400, "bad Max-Forwards", st, reason);
		h->max_forwards = (int)v;
		return H1_OK;
	case H1_F_EXPECT:
		while (h1_list_next(f->value, &pos, &e)) {
			if (e.n == 0)
				continue;
			if (!h1_str_ieq(e, "100-continue"))
				return h1_fail(x, 417, "unsupported expectation", st, reason);
			/* RFC 9110 10.1.1: ignored in HTTP/1.0 requests */
			if (h->minor == 1)
				h->flags |= H1_EXPECT_CONTINUE;
		}
		return H1_OK;
	default:
		return H1_OK;
	}
}

/* Field lines from *pos up to and including the empty line. For a response in StartBody mode
 * the first malformed line ends the head: *body_at is set to its offset. */
static int
h1_fields(struct h1_pctx *x, const char *buf, size_t len, size_t *pos, size_t *body_at,
          int *st, const char **reason)
{
	struct h1_head *h = x->h;
	size_t max_fields = x->lim->max_fields < H1_MAX_FIELDS ? x->lim->max_fields : H1_MAX_FIELDS;
	struct h1_str line;
	int r;

	for (;;) { /* each turn consumes one line of buf[0..len) */
		size_t off = *pos;
		struct h1_field *f;

		r = h1_next_line(buf, len, pos, &line);
		if (r < 0)
			return h1_fail(x, 400, "bare CR", st, reason);
		if (r == 0)
			return h1_fail(x, 400, "incomplete head", st, reason);
		if (line.n == 0)
			return H1_OK;
		if (line.n > x->lim->max_field)
			return h1_fail(x, 431, "header field too long", st, reason);
		if (H1_CLS(line.p[0], H1_C_WS))
			return h1_fail(x, 400, "obs-fold in header", st, reason);
		if (h->nfields >= max_fields)
			return h1_fail(x, 431, "too many header fields", st, reason);
		f = &h->fields[h->nfields];
		r = h1_field_split(line, f, reason);
		if (r != H1_FL_OK) {
			if (x->is_request || r == H1_FL_FATAL || (x->mode != 1 && x->mode != 2)) {
				*st = x->err_status;
				return H1_ERR;
			}
			if (x->mode == 1) /* Ignore */
				continue;
			*body_at = off; /* StartBody */
			return H1_OK;
		}
		h->nfields++;
		if (h1_field_semantics(x, f, st, reason) != H1_OK)
			return H1_ERR;
	}
}

/* Mark every field named by a Connection option as hop-by-hop, and apply the version's
 * default persistence. */
static void
h1_finish(struct h1_pctx *x)
{
	struct h1_head *h = x->h;
	struct h1_str e;
	size_t i, j, pos;

	if (x->conn_names) {
		for (i = 0; i < h->nfields; i++) {
			if (h->fields[i].id != H1_F_CONNECTION)
				continue;
			pos = 0;
			while (h1_list_next(h->fields[i].value, &pos, &e)) {
				if (e.n == 0 || h1_str_ieq(e, "close") ||
				    h1_str_ieq(e, "keep-alive"))
					continue;
				for (j = 0; j < h->nfields; j++)
					if (!h->fields[j].hop && h->fields[j].name.n == e.n &&
					    h1_mem_ieq(h->fields[j].name.p, e.p, e.n))
						h->fields[j].hop = 1;
			}
		}
	}
	if (h->minor == 0 && !(h->flags & H1_CONN_KEEPALIVE))
		h->flags |= H1_CONN_CLOSE;
}

static void
h1_head_init(struct h1_head *h)
{
	h->method = H1_M_OTHER;
	h->method_str.p = h->target.p = h->reason.p = "";
	h->method_str.n = h->target.n = h->reason.n = 0;
	h->status = 0;
	h->minor = 1;
	h->head_len = 0;
	h->nfields = 0;
	h->flags = 0;
	h->framing = H1_BODY_NONE;
	h->content_length = 0;
	h->max_forwards = -1;
}

static enum h1_method
h1_method_id(const char *p, size_t n)
{
	switch (n) {
	case 3:
		if (memcmp(p, "GET", 3) == 0)
			return H1_M_GET;
		if (memcmp(p, "PUT", 3) == 0)
			return H1_M_PUT;
		break;
	case 4:
		if (memcmp(p, "HEAD", 4) == 0)
			return H1_M_HEAD;
		if (memcmp(p, "POST", 4) == 0)
			return H1_M_POST;
		break;
	case 5:
		if (memcmp(p, "PATCH", 5) == 0)
			return H1_M_PATCH;
		if (memcmp(p, "PURGE", 5) == 0)
			return H1_M_PURGE;
		if (memcmp(p, "TRACE", 5) == 0)
			return H1_M_TRACE;
		break;
	case 6:
		if (memcmp(p, "DELETE", 6) == 0)
			return H1_M_DELETE;
		break;
	case 7:
		if (memcmp(p, "CONNECT", 7) == 0)
			return H1_M_CONNECT;
		if (memcmp(p, "OPTIONS", 7) == 0)
			return H1_M_OPTIONS;
		break;
	default:
		break;
	}
	return H1_M_OTHER;
}

/* "HTTP/" DIGIT "." DIGIT: 0 for 1.0/1.1, -1 malformed, -2 another version. */
static int
h1_version(const char *p, size_t n, int *minor)
{
	if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || !H1_IS_DIGIT(p[5]) || p[6] != '.' ||
	    !H1_IS_DIGIT(p[7]))
		return -1;
	if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
		return -2;
	*minor = p[7] - '0';
	return 0;
}

/* method SP request-target SP HTTP-version, single spaces. */
static int
h1_request_line(struct h1_pctx *x, struct h1_str line, int *st, const char **reason)
{
	struct h1_head *h = x->h;
	const char *p = line.p;
	size_t n = line.n, i = 0, ts, sp, k;
	struct h1_url u;
	const char *why;
	int r;

	while (i < n && H1_CLS(p[i], H1_C_TCHAR))
		i++;
	if (i == 0 || i == n || p[i] != ' ')
		return h1_fail(x, 400, "bad request line", st, reason);
	h->method_str.p = p;
	h->method_str.n = i;
	h->method = h1_method_id(p, i);
	ts = i + 1;
	for (sp = n; sp > ts && p[sp - 1] != ' '; sp--)
		;
	if (sp <= ts)
		return h1_fail(x, 400, "bad request line", st, reason);
	sp--; /* the space before the version */
	r = h1_version(p + sp + 1, n - sp - 1, &h->minor);
	if (r == -1)
		return h1_fail(x, 400, "bad HTTP version", st, reason);
	if (r == -2)
		return h1_fail(x, 505, "HTTP version not supported", st, reason);
	if (sp == ts || p[ts] == ' ' || p[sp - 1] == ' ')
		return h1_fail(x, 400, "bad request line", st, reason);
	h->target.p = p + ts;
	h->target.n = sp - ts;
	for (k = ts; k < sp; k++) {
		if (!H1_CLS(p[k], H1_C_TARGET))
			return h1_fail(x, 400, "control character in target", st, reason);
		if (p[k] == '#')
			return h1_fail(x, 400, "fragment in target", st, reason);
	}
	if (h->method == H1_M_CONNECT) {
		if (h1_authority_parse(h->target, &u, &why) != H1_OK)
			return h1_fail(x, 400, why, st, reason);
	} else if (h->target.p[0] == '/') {
		/* origin-form */
	} else if (h->target.n == 1 && h->target.p[0] == '*') {
		if (h->method != H1_M_OPTIONS)
			return h1_fail(x, 400, "asterisk-form target without OPTIONS", st, reason);
	} else if (h1_url_parse(h->target, &u, &why) != H1_OK) {
		return h1_fail(x, 400, why, st, reason);
	}
	return H1_OK;
}

int
h1_parse_request(const char *buf, size_t head_len, struct h1_head *h, const struct h1_limits *lim,
                 int *status, const char **reason)
{
	struct h1_limits dl;
	struct h1_pctx x;
	struct h1_str line;
	size_t pos = 0, body_at = SIZE_MAX;
	int r;

	if (lim == NULL) {
		h1_limits_default(&dl);
		lim = &dl;
	}
	h1_head_init(h);
	memset(&x, 0, sizeof(x));
	x.h = h;
	x.lim = lim;
	x.is_request = 1;
	x.err_status = 400;
	if (head_len > lim->max_head)
		return h1_fail(&x, 431, "head too large", status, reason);
	do { /* leading empty lines; each turn consumes a line */
		r = h1_next_line(buf, head_len, &pos, &line);
		if (r < 0)
			return h1_fail(&x, 400, "bare CR", status, reason);
		if (r == 0)
			return h1_fail(&x, 400, "incomplete head", status, reason);
	} while (line.n == 0);
	if (line.n > lim->max_line)
		return h1_fail(&x, 414, "request line too long", status, reason);
	if (h1_request_line(&x, line, status, reason) != H1_OK)
		return H1_ERR;
	if (h1_fields(&x, buf, head_len, &pos, &body_at, status, reason) != H1_OK)
		return H1_ERR;
	if (pos != head_len)
		return h1_fail(&x, 400, "data after head", status, reason);
	h->head_len = head_len;
	h1_finish(&x);
	if (h->minor == 1 && !x.have_host)
		return h1_fail(&x, 400, "missing Host", status, reason);
	if (x.have_te) {
		if (x.have_cl)
			return h1_fail(&x, 400, "Content-Length with Transfer-Encoding", status,
			               reason);
		if (h->minor == 0)
			return h1_fail(&x, 400, "Transfer-Encoding in HTTP/1.0", status, reason);
		if (x.te.bad)
			return h1_fail(&x, 400, "bad Transfer-Encoding", status, reason);
		if (x.te.chunked > 1)
			return h1_fail(&x, 400, "chunked applied more than once", status, reason);
		if (!x.te.last_chunked)
			return h1_fail(&x, 400, "transfer-coding list does not end in chunked",
			               status, reason);
		if (x.te.other)
			return h1_fail(&x, 501, "unsupported transfer-coding", status, reason);
		h->framing = H1_BODY_CHUNKED;
	} else if (x.have_cl) {
		h->framing = H1_BODY_LENGTH;
	}
	if (h->method == H1_M_CONNECT) {
		if (h->framing == H1_BODY_CHUNKED || h->content_length > 0)
			return h1_fail(&x, 400, "CONNECT with a body", status, reason);
		h->framing = H1_BODY_NONE;
	}
	return H1_OK;
}

/* HTTP-version SP 3DIGIT [ SP reason-phrase ]; the SP before an empty reason may be missing. */
static int
h1_status_line(struct h1_pctx *x, struct h1_str line, int *st, const char **reason)
{
	struct h1_head *h = x->h;
	const char *p = line.p;
	size_t n = line.n, k;
	int r;

	r = h1_version(p, n < 8 ? n : 8, &h->minor);
	if (r == -1)
		return h1_fail(x, 400, "bad HTTP version", st, reason);
	if (r == -2)
		return h1_fail(x, 505, "HTTP version not supported", st, reason);
	if (n < 12 || p[8] != ' ' || !H1_IS_DIGIT(p[9]) || !H1_IS_DIGIT(p[10]) ||
	    !H1_IS_DIGIT(p[11]) || (n > 12 && p[12] != ' '))
		return h1_fail(x, 400, "bad status line", st, reason);
	h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	if (h->status < 100 || h->status > 599)
		return h1_fail(x, 400, "bad status code", st, reason);
	if (n > 12) {
		for (k = 13; k < n; k++)
			if (!H1_CLS(p[k], H1_C_FVAL))
				return h1_fail(x, 400, "bad status line", st, reason);
		h->reason.p = p + 13;
		h->reason.n = n - 13;
	} else {
		h->reason.p = p + n;
	}
	return H1_OK;
}

int
h1_parse_response(const char *buf, size_t *head_len, struct h1_head *h, enum h1_method req_method,
                  const struct h1_limits *lim, int bad_header_mode, int *status,
                  const char **reason)
{
	struct h1_limits dl;
	struct h1_pctx x;
	struct h1_str line;
	size_t pos = 0, body_at = SIZE_MAX;
	int r;

	if (lim == NULL) {
		h1_limits_default(&dl);
		lim = &dl;
	}
	h1_head_init(h);
	memset(&x, 0, sizeof(x));
	x.h = h;
	x.lim = lim;
	x.is_request = 0;
	x.mode = bad_header_mode;
	x.err_status = 502;
	if (*head_len > lim->max_head)
		return h1_fail(&x, 431, "head too large", status, reason);
	r = h1_next_line(buf, *head_len, &pos, &line);
	if (r < 0)
		return h1_fail(&x, 400, "bare CR", status, reason);
	if (r == 0)
		return h1_fail(&x, 400, "incomplete head", status, reason);
	if (line.n > lim->max_line)
		return h1_fail(&x, 414, "status line too long", status, reason);
	if (h1_status_line(&x, line, status, reason) != H1_OK)
		return H1_ERR;
	if (h1_fields(&x, buf, *head_len, &pos, &body_at, status, reason) != H1_OK)
		return H1_ERR;
	if (body_at != SIZE_MAX)
		*head_len = body_at;
	else if (pos != *head_len)
		return h1_fail(&x, 400, "data after head", status, reason);
	h->head_len = *head_len;
	h1_finish(&x);
	if (x.have_te) {
		if (x.have_cl)
			return h1_fail(&x, 400, "Content-Length with Transfer-Encoding", status,
			               reason);
		if (h->minor == 0)
			return h1_fail(&x, 400, "Transfer-Encoding in HTTP/1.0", status, reason);
		if (x.te.bad)
			return h1_fail(&x, 400, "bad Transfer-Encoding", status, reason);
		if (x.te.chunked > 1)
			return h1_fail(&x, 400, "chunked applied more than once", status, reason);
	}
	if (req_method == H1_M_HEAD || h->status < 200 || h->status == 204 || h->status == 304)
		h->framing = H1_BODY_NONE;
	else if (req_method == H1_M_CONNECT && h->status < 300)
		h->framing = H1_BODY_NONE;
	else if (x.have_te)
		h->framing = x.te.last_chunked ? H1_BODY_CHUNKED : H1_BODY_CLOSE;
	else if (x.have_cl)
		h->framing = H1_BODY_LENGTH;
	else
		h->framing = H1_BODY_CLOSE;
	/* A body in a coding other than chunked (gzip, ...) would reach the client undecoded and
	 * unnamed once the framing is re-stated (Transfer-Encoding is hop-by-hop), and be stored
	 * as the content: refuse it, as nginx does (issue 10, found by the response fuzzer). */
	if (x.have_te && x.te.other && h->framing != H1_BODY_NONE)
		return h1_fail(&x, 502, "unsupported transfer-coding", status, reason);
	return H1_OK;
}

/* ---- request targets ---- */

/* A reg-name whose last label (one trailing dot ignored) is all digits or starts with "0x"
 * must be a canonical dotted quad: other numeric spellings mean an address to some
 * resolvers (inet_aton) and a name to others. */
static int
h1_host_numeric_ok(const char *p, size_t n)
{
	size_t end = n, s, i, labels = 0;
	int numeric = 1;

	if (end > 0 && p[end - 1] == '.')
		end--;
	for (s = end; s > 0 && p[s - 1] != '.'; s--)
		;
	if (s == end)
		return 1;
	if (!(end - s >= 2 && p[s] == '0' && (p[s + 1] == 'x' || p[s + 1] == 'X')))
		for (i = s; i < end; i++)
			if (!H1_IS_DIGIT(p[i]))
				numeric = 0;
	if (!numeric)
		return 1;
	if (end != n) /* "1.2.3.4." */
		return 0;
	for (s = 0; s <= n; labels++) { /* each turn consumes one label */
		unsigned v = 0;

		for (i = s; i < n && p[i] != '.'; i++) {
			if (!H1_IS_DIGIT(p[i]) || i - s >= 3)
				return 0;
			v = v * 10 + (unsigned)(p[i] - '0');
		}
		if (i == s || v > 255 || (p[s] == '0' && i - s > 1))
			return 0;
		s = i + 1;
	}
	return labels == 4;
}

/* Valid pct-encoding: every '%' in p[0..n) is followed by two hex digits. */
static int
h1_pct_ok(const char *p, size_t n)
{
	const char *q = p, *end = p + n;

	while ((q = memchr(q, '%', (size_t)(end - q))) != NULL) {
		if (end - q < 3 || !H1_CLS(q[1], H1_C_HEX) || !H1_CLS(q[2], H1_C_HEX))
			return 0;
		q += 3;
	}
	return 1;
}

/* host [ ":" port ]; the port is required when port_required. Fills host, host_is_ip6,
 * port and port_explicit of u. */
static int
h1_hostport(struct h1_str s, struct h1_url *u, int port_required, const char **reason)
{
	const char *p = s.p;
	size_t n = s.n, i;
	uint64_t port;

	if (n == 0) {
		*reason = "missing host";
		return H1_ERR;
	}
	if (p[0] == '[') {
		const char *close = memchr(p, ']', n);
		char tmp[INET6_ADDRSTRLEN];
		struct in6_addr a;
		size_t hl;

		if (close == NULL) {
			*reason = "unbalanced brackets in host";
			return H1_ERR;
		}
		hl = (size_t)(close - p) - 1;
		if (hl == 0 || hl >= sizeof(tmp)) {
			*reason = "bad IPv6 literal";
			return H1_ERR;
		}
		memcpy(tmp, p + 1, hl);
		tmp[hl] = '\0';
		if (inet_pton(AF_INET6, tmp, &a) != 1) {
			*reason = "bad IPv6 literal";
			return H1_ERR;
		}
		u->host.p = p + 1;
		u->host.n = hl;
		u->host_is_ip6 = 1;
		i = hl + 2;
	} else {
		for (i = 0; i < n && H1_CLS(p[i], H1_C_REGNAME); i++)
			;
		if (i < n && p[i] != ':') {
			*reason = p[i] == ']' ? "unbalanced brackets in host"
			                      : "invalid character in host";
			return H1_ERR;
		}
		if (i == 0) {
			*reason = "missing host";
			return H1_ERR;
		}
		if (i > H1_HOST_MAX) {
			*reason = "host name too long";
			return H1_ERR;
		}
		if (!h1_pct_ok(p, i)) {
			*reason = "bad percent-encoding in host";
			return H1_ERR;
		}
		if (!h1_host_numeric_ok(p, i)) {
			*reason = "bad IPv4 address";
			return H1_ERR;
		}
		u->host.p = p;
		u->host.n = i;
		u->host_is_ip6 = 0;
	}
	if (i == n) {
		if (port_required) {
			*reason = "missing port";
			return H1_ERR;
		}
		return H1_OK;
	}
	if (p[i] != ':') {
		*reason = "invalid character in host";
		return H1_ERR;
	}
	{
		struct h1_str ps = { p + i + 1, n - i - 1 };

		if (h1_parse_digits(ps, 65535, 0, &port) != 0 || port == 0) {
			*reason = "bad port";
			return H1_ERR;
		}
	}
	u->port = (uint16_t)port;
	u->port_explicit = 1;
	return H1_OK;
}

static void
h1_url_init(struct h1_url *u)
{
	u->scheme = H1_SCHEME_NONE;
	u->scheme_str.p = u->userinfo.p = u->host.p = u->path.p = "";
	u->scheme_str.n = u->userinfo.n = u->host.n = u->path.n = 0;
	u->host_is_ip6 = 0;
	u->port = 0;
	u->port_explicit = 0;
	u->path_is_default = 0;
}

/* Shared character check of targets: visible ASCII, no fragment. */
static int
h1_target_chars_ok(struct h1_str t, const char **reason)
{
	size_t i;

	for (i = 0; i < t.n; i++) {
		if (!H1_CLS(t.p[i], H1_C_TARGET)) {
			*reason = "control character in target";
			return 0;
		}
		if (t.p[i] == '#') {
			*reason = "fragment in target";
			return 0;
		}
	}
	return 1;
}

int
h1_url_parse(struct h1_str target, struct h1_url *u, const char **reason)
{
	const char *p = target.p, *at, *at2;
	size_t n = target.n, i, a;
	struct h1_str auth;

	h1_url_init(u);
	if (n == 0) {
		*reason = "empty target";
		return H1_ERR;
	}
	if (!h1_target_chars_ok(target, reason))
		return H1_ERR;
	if (!H1_IS_ALPHA(p[0])) {
		*reason = "missing scheme";
		return H1_ERR;
	}
	for (i = 1; i < n && H1_CLS(p[i], H1_C_SCHEME); i++)
		;
	if (i == n || p[i] != ':') {
		*reason = "missing scheme";
		return H1_ERR;
	}
	u->scheme_str.p = p;
	u->scheme_str.n = i;
	if (h1_str_ieq(u->scheme_str, "http")) {
		u->scheme = H1_SCHEME_HTTP;
		u->port = 80;
	} else if (h1_str_ieq(u->scheme_str, "https")) {
		u->scheme = H1_SCHEME_HTTPS;
		u->port = 443;
	} else if (h1_str_ieq(u->scheme_str, "ftp")) {
		u->scheme = H1_SCHEME_FTP;
		u->port = 21;
	} else {
		u->scheme = H1_SCHEME_OTHER;
	}
	i++;
	if (n - i < 2 || p[i] != '/' || p[i + 1] != '/') {
		*reason = "missing authority";
		return H1_ERR;
	}
	a = i + 2;
	for (i = a; i < n && p[i] != '/' && p[i] != '?'; i++)
		;
	auth.p = p + a;
	auth.n = i - a;
	if (i == n) {
		u->path.p = "/";
		u->path.n = 1;
		u->path_is_default = 1;
	} else if (p[i] == '?') {
		*reason = "query without path";
		return H1_ERR;
	} else {
		u->path.p = p + i;
		u->path.n = n - i;
	}
	at = auth.n > 0 ? memchr(auth.p, '@', auth.n) : NULL;
	if (at != NULL) {
		size_t ul = (size_t)(at - auth.p), k;

		at2 = memchr(at + 1, '@', auth.n - ul - 1);
		if (at2 != NULL) {
			*reason = "bad userinfo";
			return H1_ERR;
		}
		for (k = 0; k < ul; k++)
			if (!H1_CLS(auth.p[k], H1_C_USERINFO))
				break;
		if (k < ul || !h1_pct_ok(auth.p, ul)) {
			*reason = "bad userinfo";
			return H1_ERR;
		}
		u->userinfo.p = auth.p;
		u->userinfo.n = ul;
		auth.p += ul + 1;
		auth.n -= ul + 1;
	}
	if (h1_hostport(auth, u, 0, reason) != H1_OK) {
		u->port = 0;
		return H1_ERR;
	}
	return H1_OK;
}

int
h1_authority_parse(struct h1_str target, struct h1_url *u, const char **reason)
{
	h1_url_init(u);
	if (target.n == 0) {
		*reason = "missing host";
		return H1_ERR;
	}
	if (!h1_target_chars_ok(target, reason))
		return H1_ERR;
	if (memchr(target.p, '@', target.n) != NULL) {
		*reason = "userinfo in authority-form target";
		return H1_ERR;
	}
	return h1_hostport(target, u, 1, reason);
}

/* ---- chunked bodies ---- */

enum {
	H1_CK_SIZE0 = 0,   /* start of a chunk-size line: a hex digit is required */
	H1_CK_SIZE,        /* in the hex digits */
	H1_CK_PRE_SEMI,    /* BWS that must be followed by ';' */
	H1_CK_NAME0,       /* after ';': BWS then a chunk-ext-name */
	H1_CK_NAME,
	H1_CK_POST_NAME,   /* BWS after a name: '=' or ';' */
	H1_CK_VAL0,        /* after '=': BWS then token or quoted-string */
	H1_CK_VAL_TOK,
	H1_CK_VAL_QS,
	H1_CK_VAL_QP,      /* after a backslash in a quoted-string */
	H1_CK_POST_QS,     /* right after a quoted-string */
	H1_CK_SIZE_LF,     /* CR seen at the end of the size line */
	H1_CK_DATA,
	H1_CK_DATA_END,    /* CRLF required after the data */
	H1_CK_DATA_LF,     /* CR seen after the data */
	H1_CK_TRAILER,     /* at the start of a trailer field line or the final empty line */
	H1_CK_DONE,
	H1_CK_FAILED
};

void
h1_chunked_init(struct h1_chunked *c)
{
	c->state = H1_CK_SIZE0;
	c->remaining = 0;
	c->line_len = 0;
	c->trailer_bytes = 0;
	c->saw_ext = 0;
}

static int
h1_ck_fail(struct h1_chunked *c, const char *why, const char **reason)
{
	c->state = H1_CK_FAILED;
	*reason = why;
	return H1_ERR;
}

/* The size line is over: on to the data, or to the trailer section after the last chunk. */
static void
h1_ck_line_done(struct h1_chunked *c)
{
	c->line_len = 0;
	c->state = c->remaining == 0 ? H1_CK_TRAILER : H1_CK_DATA;
}

/* One trailer line (or the final empty line) at in[0..len). */
static int
h1_ck_trailer(struct h1_chunked *c, const char *in, size_t len, size_t *used,
              struct h1_str *span, int *span_kind, const char **reason)
{
	size_t room = H1_TRAILER_MAX - c->trailer_bytes, total;
	const char *lf = memchr(in, '\n', len < room ? len : room), *cr;
	struct h1_str line;
	struct h1_field f;

	*used = 0;
	if (lf == NULL) { /* a line ending at or after in[room] cannot fit */
		if (len >= room)
			return h1_ck_fail(c, "trailer section too large", reason);
		return H1_AGAIN;
	}
	total = (size_t)(lf - in) + 1;
	cr = memchr(in, '\r', total - 1);
	if (cr != NULL && cr != lf - 1)
		return h1_ck_fail(c, "bare CR", reason);
	if (cr == NULL) /* trailer lines are forwarded as they came: CRLF only */
		return h1_ck_fail(c, "bare LF", reason);
	line.p = in;
	line.n = total - 2;
	c->trailer_bytes += total;
	*used = total;
	if (line.n == 0) {
		c->state = H1_CK_DONE;
		return H1_OK;
	}
	if (H1_CLS(line.p[0], H1_C_WS))
		return h1_ck_fail(c, "obs-fold in trailer", reason);
	if (h1_field_split(line, &f, reason) != H1_FL_OK)
		return h1_ck_fail(c, "bad trailer field", reason);
	span->p = in;
	span->n = total;
	*span_kind = H1_SPAN_TRAILER;
	return H1_AGAIN;
}

int
h1_chunked_step(struct h1_chunked *c, const char *in, size_t len, size_t *consumed,
                struct h1_str *span, int *span_kind, const char **reason)
{
	size_t i = 0;

	span->p = in;
	span->n = 0;
	*span_kind = H1_SPAN_DATA;
	*consumed = 0;
	if (c->state == H1_CK_DONE)
		return H1_OK;
	if (c->state == H1_CK_FAILED) {
		*reason = "chunked body already failed";
		return H1_ERR;
	}
	while (i < len) { /* each turn consumes at least one byte or returns */
		unsigned char ch;
		int d;

		if (c->state == H1_CK_DATA) {
			size_t n = len - i;

			if ((uint64_t)n > c->remaining)
				n = (size_t)c->remaining;
			span->p = in + i;
			span->n = n;
			c->remaining -= n;
			if (c->remaining == 0)
				c->state = H1_CK_DATA_END;
			*consumed = i + n;
			return H1_AGAIN;
		}
		if (c->state == H1_CK_TRAILER) {
			size_t used;
			int r = h1_ck_trailer(c, in + i, len - i, &used, span, span_kind, reason);

			*consumed = i + used;
			return r;
		}
		ch = (unsigned char)in[i++];
		if (c->state == H1_CK_DATA_END) {
			if (ch == '\n')
				return h1_ck_fail(c, "bare LF", reason);
			if (ch != '\r')
				return h1_ck_fail(c, "missing CRLF after chunk data", reason);
			c->state = H1_CK_DATA_LF;
			continue;
		}
		if (c->state == H1_CK_DATA_LF) {
			if (ch != '\n')
				return h1_ck_fail(c, "missing CRLF after chunk data", reason);
			c->state = H1_CK_SIZE0;
			continue;
		}
		/* the chunk-size line */
		if (++c->line_len > H1_CHUNK_LINE_MAX)
			return h1_ck_fail(c, "chunk extension too long", reason);
		switch (c->state) {
		case H1_CK_SIZE0:
		case H1_CK_SIZE:
			if (H1_CLS(ch, H1_C_HEX)) {
				d = H1_IS_DIGIT(ch) ? ch - '0' : (ch | 0x20) - 'a' + 10;
				if (c->line_len > 16 || c->remaining >= ((uint64_t)1 << 59))
					return h1_ck_fail(c, "chunk size too large", reason);
				c->remaining = c->remaining << 4 | (uint64_t)d;
				c->state = H1_CK_SIZE;
				break;
			}
			if (c->state == H1_CK_SIZE0)
				return h1_ck_fail(c, "bad chunk size", reason);
			if (ch == ';') {
				c->saw_ext = 1;
				c->state = H1_CK_NAME0;
			} else if (H1_CLS(ch, H1_C_WS)) {
				c->state = H1_CK_PRE_SEMI;
			} else if (ch == '\r') {
				c->state = H1_CK_SIZE_LF;
			} else {
				return h1_ck_fail(c, ch == '\n' ? "bare LF" : "bad chunk size",
				                  reason);
			}
			break;
		case H1_CK_PRE_SEMI:
			if (ch == ';') {
				c->saw_ext = 1;
				c->state = H1_CK_NAME0;
			} else if (!H1_CLS(ch, H1_C_WS)) {
				return h1_ck_fail(c, ch == '\r' || ch == '\n'
				                         ? "whitespace before end of chunk line"
				                         : "bad chunk extension", reason);
			}
			break;
		case H1_CK_NAME0:
			if (H1_CLS(ch, H1_C_TCHAR))
				c->state = H1_CK_NAME;
			else if (!H1_CLS(ch, H1_C_WS))
				return h1_ck_fail(c, "bad chunk extension", reason);
			break;
		case H1_CK_NAME:
		case H1_CK_VAL_TOK:
		case H1_CK_POST_QS:
			if (c->state != H1_CK_POST_QS && H1_CLS(ch, H1_C_TCHAR))
				break;
			if (ch == '=' && c->state == H1_CK_NAME)
				c->state = H1_CK_VAL0;
			else if (ch == ';')
				c->state = H1_CK_NAME0;
			else if (H1_CLS(ch, H1_C_WS))
				c->state = c->state == H1_CK_NAME ? H1_CK_POST_NAME
				                                  : H1_CK_PRE_SEMI;
			else if (ch == '\r')
				c->state = H1_CK_SIZE_LF;
			else
				return h1_ck_fail(c, ch == '\n' ? "bare LF" : "bad chunk extension",
				                  reason);
			break;
		case H1_CK_POST_NAME:
			if (ch == '=')
				c->state = H1_CK_VAL0;
			else if (ch == ';')
				c->state = H1_CK_NAME0;
			else if (!H1_CLS(ch, H1_C_WS))
				return h1_ck_fail(c, "bad chunk extension", reason);
			break;
		case H1_CK_VAL0:
			if (H1_CLS(ch, H1_C_TCHAR))
				c->state = H1_CK_VAL_TOK;
			else if (ch == '"')
				c->state = H1_CK_VAL_QS;
			else if (!H1_CLS(ch, H1_C_WS))
				return h1_ck_fail(c, "bad chunk extension", reason);
			break;
		case H1_CK_VAL_QS:
			if (ch == '"')
				c->state = H1_CK_POST_QS;
			else if (ch == '\\')
				c->state = H1_CK_VAL_QP;
			else if (!H1_CLS(ch, H1_C_QDTEXT))
				return h1_ck_fail(c, "bad chunk extension", reason);
			break;
		case H1_CK_VAL_QP:
			if (!H1_CLS(ch, H1_C_FVAL))
				return h1_ck_fail(c, "bad chunk extension", reason);
			c->state = H1_CK_VAL_QS;
			break;
		case H1_CK_SIZE_LF:
			if (ch != '\n')
				return h1_ck_fail(c, "bare CR", reason);
			h1_ck_line_done(c);
			break;
		default: /* not a state this code produces */
			return h1_ck_fail(c, "bad chunked decoder state", reason);
		}
	}
	*consumed = i;
	return H1_AGAIN;
}
