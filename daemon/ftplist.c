/*
 * ftplist.c - the FTP gateway's pure parts (issue 12); the contract is daemon/ftplist.h.
 *
 * Everything here works on bytes given by the caller and allocates only what a listing keeps
 * (ftp_listing_*) and the media-type table (ftp_mime_load, once, before the workers start,
 * read-only afterwards, so the workers share it without a lock). The input is the FTP
 * server's and the client's, so it is hostile: every loop is bounded by a length, every copy
 * by a capacity, and nothing here asserts on input. daemon/ftp.c drives these functions;
 * tests/unit/test_ftplist.c and tests/fuzz/fuzz_ftplist.c exercise them.
 */
#include "daemon/ftplist.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/buf.h"

/* ---- small helpers (no locale: the server's bytes are not the C library's business) ---- */

static int
ftp_is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
ftp_is_space(int c)
{
	return c == ' ' || c == '\t';
}

static int
ftp_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int
ftp_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = ftp_lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int
ftp_ieq(const char *a, size_t an, const char *b)
{
	size_t i;

	for (i = 0; i < an; i++)
		if (b[i] == '\0' || ftp_lower((unsigned char)a[i]) != ftp_lower((unsigned char)b[i]))
			return 0;
	return b[an] == '\0';
}

/* Days since 1970-01-01 of a proleptic Gregorian date (the civil-from-days inverse). */
static int64_t
ftp_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int
ftp_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned
ftp_mdays(int64_t y, unsigned m)
{
	static const unsigned md[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && ftp_leap(y) ? 29 : md[m - 1];
}

/* Unix seconds of a UTC date and time, or -1 when a field is out of range. */
static int64_t
ftp_mktime(int64_t y, unsigned mo, unsigned d, unsigned h, unsigned mi, unsigned s)
{
	if (y < 1 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > ftp_mdays(y, mo) || h > 23 ||
	    mi > 59 || s > 60)
		return -1;
	if (s == 60) /* a leap second reads as the last second of its minute */
		s = 59;
	return ftp_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
}

/* n digits at p as a number; -1 if one is not a digit */
static int64_t
ftp_digits(const char *p, size_t n)
{
	int64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!ftp_is_digit((unsigned char)p[i]))
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

/* Skip a reply code ("213 " or "213-") at the start of a reply's text, then blanks. */
static const char *
ftp_skip_code(const char *t)
{
	if (ftp_is_digit((unsigned char)t[0]) && ftp_is_digit((unsigned char)t[1]) &&
	    ftp_is_digit((unsigned char)t[2]) && (t[3] == ' ' || t[3] == '-'))
		t += 4;
	while (ftp_is_space((unsigned char)*t))
		t++;
	return t;
}

/* ---- control-channel replies ---- */

void
ftp_reply_init(struct ftp_reply *r)
{
	r->code = 0;
	r->text[0] = '\0';
	r->text_len = 0;
	r->state = 0;
	r->multi = 0;
	r->line_len = 0;
	memset(r->line_code, 0, sizeof(r->line_code));
}

/* A complete line (no line end): FTPR_DONE when it ends the reply, FTPR_AGAIN, FTPR_ERR. */
static int
ftp_reply_line(struct ftp_reply *r, const char *p, size_t n, const char **reason)
{
	int coded = n >= 3 && ftp_is_digit((unsigned char)p[0]) &&
	            ftp_is_digit((unsigned char)p[1]) && ftp_is_digit((unsigned char)p[2]) &&
	            (n == 3 || p[3] == ' ' || p[3] == '-');

	if (!r->multi) {
		if (!coded || p[0] < '1' || p[0] > '5') {
			*reason = "malformed reply";
			return FTPR_ERR;
		}
		if (n > 3 && p[3] == '-') {
			r->multi = 1;
			memcpy(r->line_code, p, 3);
			r->line_code[3] = '\0';
			return FTPR_AGAIN;
		}
		r->code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
		return FTPR_DONE;
	}
	/* RFC 959 4.2: the reply ends at a line with the same code followed by a space */
	if (n >= 3 && memcmp(p, r->line_code, 3) == 0 && (n == 3 || p[3] == ' ')) {
		r->code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
		return FTPR_DONE;
	}
	return FTPR_AGAIN;
}

int
ftp_reply_feed(struct ftp_reply *r, const char *in, size_t len, size_t *consumed,
               const char **reason)
{
	const char *dummy;
	size_t i;
	int rc;

	if (reason == NULL)
		reason = &dummy;
	*consumed = 0;
	if (r->state != 0) { /* fed again after FTPR_DONE or FTPR_ERR without ftp_reply_init */
		*reason = "malformed reply";
		return FTPR_ERR;
	}
	for (i = 0; i < len; i++) {
		char ch = in[i];

		if (ch == '\n') {
			size_t start = r->text_len - r->line_len, n = r->line_len;

			if (n > 0 && r->text[r->text_len - 1] == '\r') {
				r->text_len--;
				n--;
			}
			rc = ftp_reply_line(r, r->text + start, n, reason);
			r->text[r->text_len++] = '\n'; /* room kept below */
			r->text[r->text_len] = '\0';
			r->line_len = 0;
			if (rc != FTPR_AGAIN) {
				r->state = 1;
				*consumed = i + 1;
				return rc;
			}
			continue;
		}
		if (ch == '\0') {
			*reason = "malformed reply";
			r->state = 1;
			*consumed = i;
			return FTPR_ERR;
		}
		if (r->line_len >= FTP_LINE_MAX) {
			*reason = "control line too long";
			r->state = 1;
			*consumed = i;
			return FTPR_ERR;
		}
		/* keep room for this byte, the line's "\n" and the NUL */
		if (r->text_len + 3 > FTP_REPLY_MAX) {
			*reason = "reply too long";
			r->state = 1;
			*consumed = i;
			return FTPR_ERR;
		}
		r->text[r->text_len++] = ch;
		r->line_len++;
	}
	r->text[r->text_len] = '\0';
	*consumed = len;
	return FTPR_AGAIN;
}

void
ftp_reply_last_line(const struct ftp_reply *r, char *out, size_t n)
{
	const char *t = r->text, *end = r->text + r->text_len, *p;
	size_t k = 0;

	if (n == 0)
		return;
	while (end > t && (end[-1] == '\n' || end[-1] == '\r'))
		end--;
	p = end;
	while (p > t && p[-1] != '\n')
		p--;
	if (end - p >= 3 && ftp_is_digit((unsigned char)p[0]) &&
	    ftp_is_digit((unsigned char)p[1]) && ftp_is_digit((unsigned char)p[2])) {
		p += 3;
		if (p < end && (*p == ' ' || *p == '-'))
			p++;
	}
	for (; p < end && k + 1 < n; p++) {
		unsigned char c = (unsigned char)*p;

		out[k++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	out[k] = '\0';
}

/* ---- numbers in replies ---- */

int
ftp_parse_pasv(const char *text, unsigned *port, uint32_t *addr4)
{
	const char *p;

	/* the six numbers are found wherever they are: servers differ on the parentheses */
	for (p = ftp_skip_code(text); *p != '\0'; p++) {
		unsigned v[6];
		const char *q = p;
		int i;

		if (!ftp_is_digit((unsigned char)*p) ||
		    (p > text && ftp_is_digit((unsigned char)p[-1])))
			continue;
		for (i = 0; i < 6; i++) {
			unsigned x = 0, nd = 0;

			while (ftp_is_digit((unsigned char)*q) && nd < 4) {
				x = x * 10 + (unsigned)(*q++ - '0');
				nd++;
			}
			if (nd == 0 || nd > 3 || x > 255)
				break;
			v[i] = x;
			if (i < 5) {
				if (*q != ',')
					break;
				q++;
			}
		}
		if (i < 6 || ftp_is_digit((unsigned char)*q))
			continue;
		if (v[4] * 256 + v[5] == 0)
			return -1;
		*port = v[4] * 256 + v[5];
		if (addr4 != NULL)
			*addr4 = (uint32_t)v[0] << 24 | v[1] << 16 | v[2] << 8 | v[3];
		return 0;
	}
	return -1;
}

int
ftp_parse_epsv(const char *text, unsigned *port)
{
	const char *p = strchr(ftp_skip_code(text), '(');
	unsigned x = 0, nd = 0;
	char d;

	if (p == NULL)
		return -1;
	d = p[1];
	/* RFC 2428: "(<d><d><d><port><d>)", d printable ASCII 33..126, usually "|" */
	if (d < 33 || d > 126 || ftp_is_digit((unsigned char)d) || p[2] != d || p[3] != d)
		return -1;
	for (p += 4; ftp_is_digit((unsigned char)*p) && nd < 6; p++, nd++)
		x = x * 10 + (unsigned)(*p - '0');
	if (nd == 0 || nd > 5 || x == 0 || x > 65535 || p[0] != d || p[1] != ')')
		return -1;
	*port = x;
	return 0;
}

int
ftp_parse_mdtm(const char *text, int64_t *t)
{
	const char *p = ftp_skip_code(text);
	int64_t v;
	size_t n = 0;

	while (ftp_is_digit((unsigned char)p[n]))
		n++;
	if (n != 14)
		return -1;
	if (p[n] == '.') { /* RFC 3659 fractions of a second: dropped */
		size_t f = 0;

		n++;
		while (ftp_is_digit((unsigned char)p[n]) && f < 10) {
			n++;
			f++;
		}
		if (f == 0 || ftp_is_digit((unsigned char)p[n]))
			return -1;
	}
	if (p[n] != '\0' && p[n] != '\r' && p[n] != '\n' && !ftp_is_space((unsigned char)p[n]))
		return -1;
	v = ftp_mktime(ftp_digits(p, 4), (unsigned)ftp_digits(p + 4, 2),
	               (unsigned)ftp_digits(p + 6, 2), (unsigned)ftp_digits(p + 8, 2),
	               (unsigned)ftp_digits(p + 10, 2), (unsigned)ftp_digits(p + 12, 2));
	if (v < 0)
		return -1;
	*t = v;
	return 0;
}

int
ftp_parse_size(const char *text, int64_t *size)
{
	const char *p = ftp_skip_code(text);
	int64_t v = 0;
	size_t n = 0;

	for (; ftp_is_digit((unsigned char)*p); p++, n++) {
		if (v > (INT64_MAX - (*p - '0')) / 10)
			return -1;
		v = v * 10 + (*p - '0');
	}
	if (n == 0 || (*p != '\0' && *p != '\r' && *p != '\n' && !ftp_is_space((unsigned char)*p)))
		return -1;
	*size = v;
	return 0;
}

int
ftp_feat_has(const char *feat_text, const char *feature)
{
	const char *line = feat_text;

	if (feature == NULL || *feature == '\0')
		return 0;
	while (*line != '\0') {
		const char *eol = strchr(line, '\n'), *p = line, *f = feature;

		if (eol == NULL)
			eol = line + strlen(line);
		/* "211-Features:" and "211 End" are the reply's frame, not features */
		if (!(eol - line >= 4 && ftp_is_digit((unsigned char)p[0]) &&
		      ftp_is_digit((unsigned char)p[1]) && ftp_is_digit((unsigned char)p[2]) &&
		      (p[3] == ' ' || p[3] == '-'))) {
			while (p < eol && ftp_is_space((unsigned char)*p))
				p++;
			while (*f != '\0' && p < eol) {
				if (*f == ' ') { /* one blank in the name matches a run of them */
					if (!ftp_is_space((unsigned char)*p))
						break;
					while (p < eol && ftp_is_space((unsigned char)*p))
						p++;
					f++;
					continue;
				}
				if (ftp_lower((unsigned char)*p) != ftp_lower((unsigned char)*f))
					break;
				p++;
				f++;
			}
			if (*f == '\0' && (p == eol || ftp_is_space((unsigned char)*p) || *p == '\r' ||
			                   *p == ';'))
				return 1;
		}
		line = *eol == '\n' ? eol + 1 : eol;
	}
	return 0;
}

int
ftp_fmt_eprt(char *out, size_t n, const struct sockaddr_storage *ss)
{
	char a[INET6_ADDRSTRLEN];
	int k;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;

		if (inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a)) == NULL)
			return -1;
		k = snprintf(out, n, "|1|%s|%u|", a, (unsigned)ntohs(s->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;

		if (inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof(a)) == NULL)
			return -1;
		k = snprintf(out, n, "|2|%s|%u|", a, (unsigned)ntohs(s->sin6_port));
	} else {
		return -1;
	}
	return k < 0 || (size_t)k >= n ? -1 : 0;
}

int
ftp_fmt_port(char *out, size_t n, const struct sockaddr_storage *ss)
{
	const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
	uint32_t a;
	unsigned p;
	int k;

	if (ss->ss_family != AF_INET)
		return -1;
	a = ntohl(s->sin_addr.s_addr);
	p = ntohs(s->sin_port);
	k = snprintf(out, n, "%u,%u,%u,%u,%u,%u", a >> 24, a >> 16 & 255, a >> 8 & 255, a & 255,
	             p >> 8, p & 255);
	return k < 0 || (size_t)k >= n ? -1 : 0;
}

/* ---- ftp:// paths and logins ---- */

/* Percent-decode in[0..n) into out (cap bytes, NUL-terminated); -1 on a bad escape, on CR,
 * LF or NUL after decoding, or when it does not fit. */
static long
ftp_pct_decode(const char *in, size_t n, char *out, size_t cap, const char **reason)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		int c = (unsigned char)in[i];

		if (c == '%') {
			int h, l;

			if (i + 2 >= n) {
				*reason = "bad percent-encoding";
				return -1;
			}
			h = ftp_hexval((unsigned char)in[i + 1]);
			l = ftp_hexval((unsigned char)in[i + 2]);
			if (h < 0 || l < 0) {
				*reason = "bad percent-encoding";
				return -1;
			}
			c = h * 16 + l;
			i += 2;
		}
		if (c == '\r' || c == '\n' || c == '\0') {
			*reason = "CR, LF or NUL in the URL";
			return -1;
		}
		if (k + 1 >= cap) {
			*reason = "too long";
			return -1;
		}
		out[k++] = (char)c;
	}
	if (cap == 0) {
		*reason = "too long";
		return -1;
	}
	out[k] = '\0';
	return (long)k;
}

int
ftp_path_parse(const char *path, size_t len, struct ftp_path *p, const char **reason)
{
	const char *dummy, *seg_end, *s, *e = path + len, *last;
	size_t used = 0;

	if (reason == NULL)
		reason = &dummy;
	p->nseg = 0;
	p->is_dir = 0;
	p->type = 0;
	/* ";type=X" ends the last segment (RFC 1738 3.2.2); another ';' is part of a name */
	last = e;
	while (last > path && last[-1] != '/')
		last--;
	for (s = last; s < e; s++) {
		if (*s == ';' && e - s >= 6 && ftp_ieq(s + 1, 5, "type=")) {
			int c = e - s == 7 ? ftp_lower((unsigned char)s[6]) : 0;

			if (c != 'a' && c != 'i' && c != 'd') {
				*reason = "bad ;type= (a, i or d)";
				return -1;
			}
			p->type = (char)c;
			e = s;
			break;
		}
	}
	s = path;
	if (s < e && *s == '/')
		s++;
	if (s == e) {
		p->is_dir = 1;
		return 0;
	}
	for (;;) {
		long n;
		char *seg;

		seg_end = memchr(s, '/', (size_t)(e - s));
		if (seg_end == NULL)
			seg_end = e;
		if (seg_end == s) {
			*reason = "empty segment in the path";
			return -1;
		}
		if (p->nseg >= FTP_MAX_SEGS) {
			*reason = "too many segments in the path";
			return -1;
		}
		seg = p->mem + used;
		n = ftp_pct_decode(s, (size_t)(seg_end - s), seg, sizeof(p->mem) - used, reason);
		if (n < 0) {
			if (strcmp(*reason, "too long") == 0)
				*reason = "path too long";
			else if (strcmp(*reason, "bad percent-encoding") == 0)
				*reason = "bad percent-encoding in the path";
			else
				*reason = "CR, LF or NUL in the path";
			return -1;
		}
		if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.')) {
			*reason = "'.' or '..' segment in the path";
			return -1;
		}
		p->seg[p->nseg++] = seg;
		used += (size_t)n + 1;
		if (seg_end == e)
			break;
		s = seg_end + 1;
		if (s == e) { /* the path ended in "/" */
			p->is_dir = 1;
			break;
		}
	}
	return 0;
}

int
ftp_userinfo_parse(const char *ui, size_t n, char *user, size_t ucap, char *pass,
                   size_t pcap, int *has_pass)
{
	const char *colon = memchr(ui, ':', n), *why;
	size_t un = colon != NULL ? (size_t)(colon - ui) : n;

	if (ftp_pct_decode(ui, un, user, ucap, &why) < 0)
		return -1;
	*has_pass = colon != NULL;
	if (colon == NULL) {
		if (pcap == 0)
			return -1;
		pass[0] = '\0';
		return 0;
	}
	return ftp_pct_decode(colon + 1, n - un - 1, pass, pcap, &why) < 0 ? -1 : 0;
}

static int
ftp_b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
ftp_basic_parse(const char *value, size_t n, char *user, size_t ucap, char *pass,
                size_t pcap)
{
	char dec[1024];
	size_t i = 0, k = 0, pad = 0, un;
	unsigned acc = 0, bits = 0;
	const char *colon;

	while (i < n && ftp_is_space((unsigned char)value[i]))
		i++;
	if (n - i < 6 || !ftp_ieq(value + i, 5, "basic") || !ftp_is_space((unsigned char)value[i + 5]))
		return -1;
	i += 6;
	while (i < n && ftp_is_space((unsigned char)value[i]))
		i++;
	while (n > i && ftp_is_space((unsigned char)value[n - 1]))
		n--;
	for (; i < n; i++) {
		int v = ftp_b64val((unsigned char)value[i]);

		if (value[i] == '=') {
			pad++;
			continue;
		}
		if (v < 0 || pad > 0)
			return -1;
		acc = acc << 6 | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (k >= sizeof(dec))
				return -1;
			dec[k++] = (char)(acc >> bits & 255);
		}
	}
	if (pad > 2 || bits >= 6)
		return -1;
	colon = memchr(dec, ':', k);
	if (colon == NULL)
		return -1;
	un = (size_t)(colon - dec);
	if (memchr(dec, '\0', k) || memchr(dec, '\r', k) || memchr(dec, '\n', k))
		return -1;
	if (un + 1 > ucap || k - un - 1 + 1 > pcap)
		return -1;
	memcpy(user, dec, un);
	user[un] = '\0';
	memcpy(pass, colon + 1, k - un - 1);
	pass[k - un - 1] = '\0';
	return 0;
}

/* ---- media types and validators ---- */

struct ftp_mime_ent {
	char *ext;   /* lower case */
	char *type;
};

/* The table, sorted by extension; written by ftp_mime_load before the workers start. */
static struct ftp_mime_ent *ftp_mime_tab;
static size_t ftp_mime_n;
static char *ftp_mime_mem;

static int
ftp_mime_cmp(const void *a, const void *b)
{
	const struct ftp_mime_ent *x = a, *y = b;
	int c = strcmp(x->ext, y->ext);

	/* equal extensions: the one earlier in the file (lower address) first, so it wins */
	if (c == 0)
		c = x->type < y->type ? -1 : x->type > y->type;
	return c;
}

int
ftp_mime_load(const char *path, int *loaded)
{
	FILE *f = fopen(path, "r");
	char *mem = NULL, *p;
	size_t len = 0, cap = 0, nent = 0, i, k;
	struct ftp_mime_ent *tab;
	char line[4096];

	*loaded = 0;
	if (f == NULL)
		return 0;
	ftp_mime_free();
	/* Copy the words into one block first (types and extensions NUL-separated, a line's
	 * words after its type), then index it: no pointer into a block that still grows. */
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t n = strlen(line), w;

		if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
			int c;

			while ((c = fgetc(f)) != EOF && c != '\n')
				; /* an overlong line is skipped whole */
			continue;
		}
		p = strchr(line, '#');
		if (p != NULL)
			*p = '\0';
		for (p = line, w = 0;; w++) {
			size_t wl;

			while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
				p++;
			if (*p == '\0')
				break;
			wl = strcspn(p, " \t\r\n");
			if (len + wl + 3 > cap) {
				size_t ncap = cap < 65536 ? 65536 : cap * 2;
				char *m = realloc(mem, ncap);

				if (m == NULL) {
					free(mem);
					fclose(f);
					return -1;
				}
				mem = m;
				cap = ncap;
			}
			/* a type is marked by a leading '\1' so the indexer tells it apart */
			if (w == 0)
				mem[len++] = '\1';
			for (i = 0; i < wl; i++)
				mem[len++] = w == 0 ? p[i] : (char)ftp_lower((unsigned char)p[i]);
			mem[len++] = '\0';
			if (w > 0)
				nent++;
			p += wl;
		}
	}
	fclose(f);
	tab = calloc(nent ? nent : 1, sizeof(*tab));
	if (tab == NULL) {
		free(mem);
		return -1;
	}
	for (i = 0, k = 0; i < len && k < nent;) {
		char *type;

		if (mem[i] != '\1') { /* not reached: every line starts with its type */
			i += strlen(mem + i) + 1;
			continue;
		}
		type = mem + i + 1;
		i += strlen(mem + i) + 1;
		while (i < len && mem[i] != '\1' && k < nent) {
			tab[k].ext = mem + i;
			tab[k].type = type;
			k++;
			i += strlen(mem + i) + 1;
		}
	}
	qsort(tab, k, sizeof(*tab), ftp_mime_cmp);
	ftp_mime_tab = tab;
	ftp_mime_n = k;
	ftp_mime_mem = mem;
	*loaded = 1;
	return 0;
}

const char *
ftp_mime_type(const char *name, size_t len)
{
	char ext[32];
	size_t i, lo = 0, hi = ftp_mime_n, dot = len;

	for (i = len; i > 0; i--) {
		if (name[i - 1] == '/')
			break;
		if (name[i - 1] == '.') {
			dot = i - 1;
			break;
		}
	}
	if (dot == len || dot == 0 || name[dot - 1] == '/' || len - dot - 1 == 0 ||
	    len - dot - 1 >= sizeof(ext))
		return "application/octet-stream";
	for (i = dot + 1; i < len; i++)
		ext[i - dot - 1] = (char)ftp_lower((unsigned char)name[i]);
	ext[len - dot - 1] = '\0';
	if (memchr(ext, '\0', len - dot - 1) != NULL)
		return "application/octet-stream";
	/* lower bound: the first entry for the extension is the file's first line naming it */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(ftp_mime_tab[mid].ext, ext) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < ftp_mime_n && strcmp(ftp_mime_tab[lo].ext, ext) == 0)
		return ftp_mime_tab[lo].type;
	return "application/octet-stream";
}

void
ftp_mime_free(void)
{
	free(ftp_mime_tab);
	free(ftp_mime_mem);
	ftp_mime_tab = NULL;
	ftp_mime_mem = NULL;
	ftp_mime_n = 0;
}

void
ftp_etag(char *out, size_t n, int64_t size, int64_t mtime)
{
	if (n > 0)
		snprintf(out, n, "\"ftp-%llx-%llx\"", (unsigned long long)size,
		         (unsigned long long)mtime);
}

/* ---- listings (being written) ---- */

struct ftp_listing {
	int dummy;
};

int
ftp_list_parse_line(const char *line, size_t len, int64_t now, struct ftp_entry *e)
{
	(void)now;
	memset(e, 0, sizeof(*e));
	e->raw = line;
	e->raw_len = len;
	return FTPL_TEXT;
}

int
ftp_mlsd_parse_line(const char *line, size_t len, struct ftp_entry *e)
{
	return ftp_list_parse_line(line, len, 0, e);
}

struct ftp_listing *
ftp_listing_new(const char *dir_url, int mlsd, int64_t now, size_t cap)
{
	(void)dir_url; (void)mlsd; (void)now; (void)cap;
	return NULL;
}

int
ftp_listing_feed(struct ftp_listing *l, const char *data, size_t len, const char **reason)
{
	(void)l; (void)data; (void)len;
	*reason = "listings not written yet";
	return -1;
}

int
ftp_listing_end(struct ftp_listing *l, const char **reason)
{
	(void)l;
	*reason = "listings not written yet";
	return -1;
}

size_t
ftp_listing_count(const struct ftp_listing *l)
{
	(void)l;
	return 0;
}

int
ftp_listing_html(const struct ftp_listing *l, struct buf *out)
{
	(void)l; (void)out;
	return -1;
}

int
ftp_listing_json(const struct ftp_listing *l, struct buf *out)
{
	(void)l; (void)out;
	return -1;
}

void
ftp_listing_free(struct ftp_listing *l)
{
	(void)l;
}
