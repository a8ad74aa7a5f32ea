/*
 * fuzz_h1.c - libFuzzer harness for the HTTP/1.1 head scanner, dissectors and chunked decoder
 * (daemon/h1.c).
 *
 * Each input is used as a request head, as a response head and as a chunked body. Besides
 * crashes and sanitizer reports, the harness abort()s when two ways of feeding the same
 * bytes disagree: the head scanner one-shot vs. split at a data-derived point vs. one byte at
 * a time; the chunked decoder the same three ways; the three ProxyBadHeader modes on a
 * response that IsError accepts; and the scanner vs. the dissector on limits and bare CRs
 * (whatever the scanner accepted, the dissector must not refuse for those reasons).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/h1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_BYTEWISE_MAX 2048

struct fz_scan {
	int rc;
	size_t head_len;
	int status;
	const char *reason;
};

static void
fz_check(int ok)
{
	if (!ok)
		abort();
}

static void
fz_scan(const char *in, const size_t *cuts, size_t ncuts,
        const struct h1_limits *lim, int is_request, struct fz_scan *r)
{
	size_t scan = 0, i;

	r->rc = H1_AGAIN;
	r->head_len = 0;
	r->status = 0;
	r->reason = NULL;
	for (i = 0; i < ncuts && r->rc == H1_AGAIN; i++)
		r->rc = h1_head_complete(in, cuts[i], &scan, &r->head_len, lim, is_request,
		                         &r->status, &r->reason);
}

static void
fz_scan_same(const struct fz_scan *a, const struct fz_scan *b)
{
	fz_check(a->rc == b->rc);
	if (a->rc == H1_OK)
		fz_check(a->head_len == b->head_len);
	if (a->rc == H1_ERR)
		fz_check(a->status == b->status && strcmp(a->reason, b->reason) == 0);
}

/* Every slice of a dissected head lies inside buf[0..len). */
static void
fz_head_slices(const struct h1_head *h, const char *buf, size_t len)
{
	size_t i;

	fz_check(h->nfields <= H1_MAX_FIELDS);
	for (i = 0; i < h->nfields; i++) {
		const struct h1_field *f = &h->fields[i];

		fz_check(f->name.n > 0 && f->name.p >= buf && f->name.p + f->name.n <= buf + len);
		fz_check(f->value.p >= buf && f->value.p + f->value.n <= buf + len);
	}
	if (h->framing == H1_BODY_LENGTH)
		fz_check(h->content_length <= INT64_MAX);
}

static int
fz_scan_reason(const char *why)
{
	return strcmp(why, "bare CR") == 0 || strcmp(why, "incomplete head") == 0 ||
	       strcmp(why, "data after head") == 0 || strcmp(why, "head too large") == 0 ||
	       strcmp(why, "too many header fields") == 0 ||
	       strcmp(why, "header field too long") == 0 ||
	       strcmp(why, "request line too long") == 0 ||
	       strcmp(why, "status line too long") == 0;
}

static struct h1_head fz_h, fz_h2;
static size_t fz_cuts[FZ_BYTEWISE_MAX];

static void
fz_head(const char *in, size_t len, size_t split, const struct h1_limits *lim, int is_request)
{
	struct fz_scan whole, part;
	size_t cuts[2], i, hl, hl2;
	int st, st2, rc, rc2, mode;
	const char *why, *why2;

	cuts[0] = len;
	fz_scan(in, cuts, 1, lim, is_request, &whole);
	cuts[0] = split;
	cuts[1] = len;
	fz_scan(in, cuts, 2, lim, is_request, &part);
	fz_scan_same(&whole, &part);
	if (len <= FZ_BYTEWISE_MAX) {
		for (i = 0; i < len; i++)
			fz_cuts[i] = i + 1;
		fz_scan(in, fz_cuts, len, lim, is_request, &part);
		fz_scan_same(&whole, &part);
	}
	if (whole.rc != H1_OK)
		return;
	fz_check(whole.head_len <= len);
	if (is_request) {
		rc = h1_parse_request(in, whole.head_len, &fz_h, lim, &st, &why);
		if (rc == H1_OK) {
			fz_check(fz_h.head_len == whole.head_len);
			fz_head_slices(&fz_h, in, whole.head_len);
			fz_check(fz_h.minor == 0 || fz_h.minor == 1);
		} else {
			fz_check(!fz_scan_reason(why));
			fz_check(st == 400 || st == 417 || st == 501 || st == 505);
		}
		return;
	}
	for (mode = 0; mode <= 2; mode++) {
		hl = whole.head_len;
		rc = h1_parse_response(in, &hl, &fz_h, H1_M_GET, lim, mode, &st, &why);
		if (rc != H1_OK) {
			fz_check(st == 502 && !fz_scan_reason(why));
			continue;
		}
		fz_check(hl <= whole.head_len && fz_h.head_len == hl);
		fz_head_slices(&fz_h, in, hl);
		fz_check(fz_h.status >= 100 && fz_h.status <= 599);
		if (mode != 0)
			continue;
		/* IsError accepted it: the other modes see no malformed line and must agree */
		for (i = 1; i <= 2; i++) {
			hl2 = whole.head_len;
			rc2 = h1_parse_response(in, &hl2, &fz_h2, H1_M_GET, lim, (int)i, &st2, &why2);
			fz_check(rc2 == H1_OK && hl2 == hl && fz_h2.nfields == fz_h.nfields &&
			         fz_h2.framing == fz_h.framing && fz_h2.flags == fz_h.flags &&
			         fz_h2.content_length == fz_h.content_length);
		}
		/* HEAD and CONNECT change nothing but the framing */
		hl2 = whole.head_len;
		rc2 = h1_parse_response(in, &hl2, &fz_h2, H1_M_HEAD, lim, 0, &st2, &why2);
		fz_check(rc2 == H1_OK && fz_h2.framing == H1_BODY_NONE);
		break;
	}
}

struct fz_ck {
	int rc;
	const char *reason;
	uint64_t dhash, thash;
	size_t dlen, tlen, used;
};

static uint64_t
fz_fnv(uint64_t h, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* Decode in[0..len) arriving in pieces (cuts increasing, last == len), as a caller with a
 * contiguous buffer would. */
static void
fz_chunked(const char *in, size_t len, const size_t *cuts, size_t ncuts, struct fz_ck *o)
{
	struct h1_chunked c;
	size_t off = 0, avail = cuts[0], next = 1, guard;

	h1_chunked_init(&c);
	o->rc = H1_AGAIN;
	o->reason = NULL;
	o->dhash = o->thash = 0xcbf29ce484222325ull;
	o->dlen = o->tlen = 0;
	for (guard = 0; guard < 4 * len + 16; guard++) {
		struct h1_str span = { NULL, 0 };
		size_t used = 0;
		int kind = -1;

		o->rc = h1_chunked_step(&c, in + off, avail - off, &used, &span, &kind, &o->reason);
		fz_check(used <= avail - off);
		if (span.n > 0) {
			fz_check(span.p >= in + off && span.p + span.n <= in + off + used);
			if (kind == H1_SPAN_DATA) {
				o->dhash = fz_fnv(o->dhash, span.p, span.n);
				o->dlen += span.n;
			} else {
				fz_check(kind == H1_SPAN_TRAILER);
				/* forwarded as it came: it must end in CRLF, never a bare LF */
				fz_check(span.n >= 2 && span.p[span.n - 2] == '\r' &&
				         span.p[span.n - 1] == '\n');
				o->thash = fz_fnv(o->thash, span.p, span.n);
				o->tlen += span.n;
			}
		}
		off += used;
		if (o->rc != H1_AGAIN)
			break;
		if (used == 0 && span.n == 0) {
			if (next >= ncuts)
				break;
			avail = cuts[next++];
		}
	}
	fz_check(guard < 4 * len + 16); /* no livelock */
	o->used = off;
}

static void
fz_ck_same(const struct fz_ck *a, const struct fz_ck *b)
{
	fz_check(a->rc == b->rc);
	if (a->rc == H1_ERR)
		fz_check(strcmp(a->reason, b->reason) == 0);
	else
		fz_check(a->used == b->used);
	fz_check(a->dlen == b->dlen && a->dhash == b->dhash);
	fz_check(a->tlen == b->tlen && a->thash == b->thash);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct h1_limits lim, small = { 64, 64, 4, 256 };
	struct fz_ck whole, part;
	size_t split, cuts[2], i;

	if (size == 0)
		return 0;
	h1_limits_default(&lim);
	/* a split point derived from the data, anywhere in [0, size] */
	split = ((size_t)data[0] * 251u + (size_t)data[size - 1] * 7u) % (size + 1);

	fz_head(in, size, split, (data[0] & 1) ? &small : &lim, 1);
	fz_head(in, size, split, (data[size - 1] & 1) ? &small : &lim, 0);

	cuts[0] = size;
	fz_chunked(in, size, cuts, 1, &whole);
	if (whole.rc == H1_OK)
		fz_check(whole.used <= size);
	cuts[0] = split;
	cuts[1] = size;
	fz_chunked(in, size, cuts, split == size ? 1 : 2, &part);
	fz_ck_same(&whole, &part);
	if (size <= FZ_BYTEWISE_MAX) {
		for (i = 0; i < size; i++)
			fz_cuts[i] = i + 1;
		fz_chunked(in, size, fz_cuts, size, &part);
		fz_ck_same(&whole, &part);
	}
	return 0;
}
