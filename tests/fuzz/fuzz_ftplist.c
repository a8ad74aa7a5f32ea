/*
 * fuzz_ftplist.c - libFuzzer harness for the FTP gateway's parsers (daemon/ftplist.c).
 *
 * The first byte picks what the rest is fed to: the control-channel reply parser (in splits
 * chosen by the input, compared with feeding it whole: the same result, code and text), the
 * numbers read from a reply, a LIST line, an MLSD line, a whole listing rendered as HTML and
 * JSON, an ftp:// path, a URL's userinfo and an Authorization value.
 *
 * Besides crashes, the harness abort()s when a result breaks the contract: slices outside the
 * line, a reply text longer than its cap or with a NUL inside, a code outside 100..599, a
 * decoded path segment holding CR, LF or NUL or being "." or "..", a page holding "<script"
 * or a raw '<' from a name, JSON that does not parse.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/buf.h"
#include "daemon/ftplist.h"
#include "tests/json_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fz_check(int ok)
{
	if (!ok)
		abort();
}

static int
fz_inside(const char *s, size_t n, const char *p, size_t len)
{
	return s >= p && s + n <= p + len;
}

/* ---- replies ---- */

static struct ftp_reply fz_whole, fz_split;

static void
fz_reply_check(const struct ftp_reply *r, int rc)
{
	char last[256];
	unsigned port;
	uint32_t a4;
	int64_t v;

	fz_check(r->text_len < FTP_REPLY_MAX && r->text[r->text_len] == '\0');
	fz_check(strlen(r->text) == r->text_len);
	if (rc != FTPR_DONE)
		return;
	fz_check(r->code >= 100 && r->code <= 599);
	ftp_reply_last_line(r, last, sizeof(last));
	for (size_t i = 0; last[i] != '\0'; i++)
		fz_check((unsigned char)last[i] >= 0x20 && last[i] != 0x7f);
	if (ftp_parse_pasv(r->text, &port, &a4) == 0)
		fz_check(port > 0 && port < 65536);
	if (ftp_parse_epsv(r->text, &port) == 0)
		fz_check(port > 0 && port < 65536);
	if (ftp_parse_size(r->text, &v) == 0)
		fz_check(v >= 0);
	if (ftp_parse_mdtm(r->text, &v) == 0)
		fz_check(v >= -62135596800LL && v < 253402300800LL);
	(void)ftp_feat_has(r->text, "MLST");
	(void)ftp_feat_has(r->text, "REST STREAM");
}

static void
fz_reply(const char *p, size_t n)
{
	const char *why1 = NULL, *why2 = NULL;
	size_t used1, used2 = 0, c, k = 0;
	int rc1, rc2 = FTPR_AGAIN;

	ftp_reply_init(&fz_whole);
	rc1 = ftp_reply_feed(&fz_whole, p, n, &used1, &why1);
	fz_check(used1 <= n);
	fz_check(rc1 != FTPR_ERR || why1 != NULL);
	fz_reply_check(&fz_whole, rc1);
	/* the same bytes in pieces whose sizes come from the bytes themselves */
	ftp_reply_init(&fz_split);
	while (used2 < n) {
		size_t step = 1 + ((unsigned char)p[k++ % n] % 17);

		if (step > n - used2)
			step = n - used2;
		rc2 = ftp_reply_feed(&fz_split, p + used2, step, &c, &why2);
		fz_check(c <= step);
		used2 += c;
		if (rc2 != FTPR_AGAIN)
			break;
		fz_check(c == step);
	}
	fz_check(rc1 == rc2 && used1 == used2);
	if (rc1 == FTPR_DONE)
		fz_check(fz_whole.code == fz_split.code && fz_whole.text_len == fz_split.text_len &&
		         memcmp(fz_whole.text, fz_split.text, fz_whole.text_len) == 0);
	if (rc1 == FTPR_ERR)
		fz_check(strcmp(why1, why2) == 0);
}

/* ---- listing lines ---- */

static void
fz_entry_check(const char *p, size_t n, int rc, const struct ftp_entry *e)
{
	fz_check(rc == FTPL_SKIP || rc == FTPL_TEXT || rc == FTPL_ENTRY);
	if (rc == FTPL_SKIP)
		return;
	fz_check(fz_inside(e->raw, e->raw_len, p, n));
	if (rc == FTPL_TEXT) {
		fz_check(!e->parsed && e->raw == p);
		return;
	}
	fz_check(e->parsed && e->name_len > 0 && fz_inside(e->name, e->name_len, p, n));
	fz_check(e->type >= FTP_ENT_UNKNOWN && e->type <= FTP_ENT_LINK);
	fz_check(e->target == NULL || fz_inside(e->target, e->target_len, p, n));
	fz_check(e->size >= -1);
	fz_check(e->mtime_precision >= 0 && e->mtime_precision <= 3);
	fz_check(e->mtime_precision == 0 || e->mtime != -1); /* a date, or "unknown" */
	fz_check(!(e->name_len == 1 && e->name[0] == '.'));
	fz_check(!(e->name_len == 2 && e->name[0] == '.' && e->name[1] == '.'));
}

/* a copy that ends where the input does, so that reading past it is caught by ASan */
static char *
fz_copy(const char *p, size_t n)
{
	char *c = malloc(n ? n : 1);

	fz_check(c != NULL);
	if (n)
		memcpy(c, p, n);
	return c;
}

static void
fz_list_line(const char *p, size_t n, int mlsd)
{
	struct ftp_entry e;
	char *c = fz_copy(p, n);
	int rc;

	/* "now": a fixed day, and one from the input (year inference at any time) */
	rc = mlsd ? ftp_mlsd_parse_line(c, n, &e) : ftp_list_parse_line(c, n, 1796430600, &e);
	fz_entry_check(c, n, rc, &e);
	if (!mlsd && n >= 8) {
		int64_t now;

		memcpy(&now, c, 8);
		rc = ftp_list_parse_line(c, n, now, &e);
		fz_entry_check(c, n, rc, &e);
	}
	free(c);
}

/* ---- listings, HTML, JSON ---- */

/* Every '<' on the page opens one of the page's own elements. */
static void
fz_html_check(const struct buf *b)
{
	static const char *const tags[] = { "!DOCTYPE", "html", "head", "meta", "title", "style",
	                                    "body", "h1", "h2", "table", "thead", "tbody", "tr",
	                                    "th", "td", "a", "pre", "footer", "/" };
	const char *p = buf_head(b), *e = p + buf_len(b);

	for (; (p = memchr(p, '<', (size_t)(e - p))) != NULL; p++) {
		size_t i, ok = 0;

		for (i = 0; i < sizeof(tags) / sizeof(tags[0]) && !ok; i++) {
			size_t tl = strlen(tags[i]);

			ok = (size_t)(e - p) > tl + 1 && memcmp(p + 1, tags[i], tl) == 0 &&
			     (tags[i][0] == '/' || p[1 + tl] == '>' || p[1 + tl] == ' ');
		}
		fz_check(ok);
	}
}

static void
fz_listing(const char *p, size_t n)
{
	struct ftp_listing *l;
	const char *why = NULL;
	size_t off = 0, k = 0;
	int rc = 0, mlsd;
	struct buf b;

	if (n == 0)
		return;
	mlsd = p[0] & 1; /* a flag byte: MLSD or LIST lines */
	p++;
	n--;
	l = ftp_listing_new("ftp://fuzz.test/d/<x>/", mlsd, 1796430600, 1u << 14);
	fz_check(l != NULL);
	while (off < n && rc == 0) {
		size_t step = 1 + ((unsigned char)p[k++ % n] % 61);

		if (step > n - off)
			step = n - off;
		rc = ftp_listing_feed(l, p + off, step, &why);
		off += step;
	}
	if (rc == 0)
		rc = ftp_listing_end(l, &why);
	if (rc != 0) {
		fz_check(why != NULL && strlen(why) > 0);
		ftp_listing_free(l);
		return;
	}
	fz_check(ftp_listing_count(l) <= n);
	buf_init(&b, 1u << 22);
	fz_check(ftp_listing_html(l, &b) == 0);
	fz_html_check(&b);
	buf_fini(&b);
	buf_init(&b, 1u << 22);
	fz_check(ftp_listing_json(l, &b) == 0);
	{
		const char *s = buf_head(&b), *e = s + buf_len(&b);

		fz_check(tj_valid_span(s, e));
	}
	buf_fini(&b);
	ftp_listing_free(l);
}

/* ---- paths and logins ---- */

static struct ftp_path fz_path;

static void
fz_path_parse(const char *p, size_t n)
{
	char *c = fz_copy(p, n);
	const char *why = NULL;
	size_t i;

	if (ftp_path_parse(c, n, &fz_path, &why) == 0) {
		fz_check(fz_path.nseg <= FTP_MAX_SEGS);
		fz_check(fz_path.type == 0 || fz_path.type == 'a' || fz_path.type == 'i' ||
		         fz_path.type == 'd');
		fz_check(fz_path.nseg > 0 || fz_path.is_dir);
		for (i = 0; i < fz_path.nseg; i++) {
			const char *s = fz_path.seg[i];
			size_t sl;

			fz_check(s >= fz_path.mem && s < fz_path.mem + sizeof(fz_path.mem));
			sl = strnlen(s, (size_t)(fz_path.mem + sizeof(fz_path.mem) - s));
			fz_check(s + sl < fz_path.mem + sizeof(fz_path.mem) && sl > 0);
			fz_check(strpbrk(s, "\r\n") == NULL);
			fz_check(strcmp(s, ".") != 0 && strcmp(s, "..") != 0);
		}
	} else {
		fz_check(why != NULL);
	}
	free(c);
}

static void
fz_login(const char *p, size_t n)
{
	char *c = fz_copy(p, n);
	char user[64], pass[64];
	int hp;

	if (ftp_userinfo_parse(c, n, user, sizeof(user), pass, sizeof(pass), &hp) == 0) {
		fz_check(strlen(user) < sizeof(user) && strlen(pass) < sizeof(pass));
		fz_check(strpbrk(user, "\r\n") == NULL && strpbrk(pass, "\r\n") == NULL);
		fz_check(hp || pass[0] == '\0');
	}
	if (ftp_basic_parse(c, n, user, sizeof(user), pass, sizeof(pass)) == 0) {
		fz_check(strpbrk(user, "\r\n:") == NULL && strpbrk(pass, "\r\n") == NULL);
	}
	(void)ftp_mime_type(c, n);
	free(c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data + 1;
	size_t n;

	if (size < 1 || size > 70000)
		return 0;
	n = size - 1;
	switch (data[0] % 6) {
	case 0: fz_reply(p, n); break;
	case 1: fz_list_line(p, n, 0); break;
	case 2: fz_list_line(p, n, 1); break;
	case 3: fz_listing(p, n); break;
	case 4: fz_path_parse(p, n); break;
	default: fz_login(p, n); break;
	}
	return 0;
}
