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
#include "webui/auth.h"

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
		if (b[i] == '\0' ||
		    ftp_lower((unsigned char)a[i]) != ftp_lower((unsigned char)b[i]))
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
			r->text[r->text_len] = '\0';
			return FTPR_ERR;
		}
		if (r->line_len >= FTP_LINE_MAX) {
			*reason = "control line too long";
			r->state = 1;
			*consumed = i;
			r->text[r->text_len] = '\0';
			return FTPR_ERR;
		}
		/* keep room for this byte, the line's "\n" and the NUL */
		if (r->text_len + 3 > FTP_REPLY_MAX) {
			*reason = "reply too long";
			r->state = 1;
			*consumed = i;
			r->text[r->text_len] = '\0';
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
			if (*f == '\0' && (p == eol || ftp_is_space((unsigned char)*p) ||
			                   *p == '\r' || *p == ';'))
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

static int
ftp_is_dots(const char *p, size_t n)
{
	return (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.');
}

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

/* Is the decoded segment "." or "..", or does it hold one between encoded slashes
 * ("..%2F..")? An encoded slash is RFC 1738's way to name an absolute path ("%2Fpub"), so it
 * is allowed, but not to climb out of the directory the URL names. */
static int
ftp_path_has_dots(const char *seg, size_t n)
{
	size_t i = 0;

	while (i <= n) {
		const char *slash = memchr(seg + i, '/', n - i);
		size_t end = slash != NULL ? (size_t)(slash - seg) : n;

		if (ftp_is_dots(seg + i, end - i))
			return 1;
		i = end + 1;
	}
	return 0;
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
		if (ftp_path_has_dots(seg, (size_t)n)) {
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

/* The decoding is webui/auth.c's, the one Basic parser (the status page's, and issue 14's
 * proxy logins); what the FTP gateway adds is that a password goes into a PASS command line,
 * so a CR or LF in it is refused here. */
int
ftp_basic_parse(const char *value, size_t n, char *user, size_t ucap, char *pass,
                size_t pcap)
{
	char field[1024];

	if (n >= sizeof(field) || memchr(value, '\0', n) != NULL)
		return -1;
	memcpy(field, value, n);
	field[n] = '\0';
	if (auth_basic_decode(field, user, ucap, pass, pcap) < 0)
		return -1;
	if (strpbrk(pass, "\r\n") != NULL) {
		user[0] = pass[0] = '\0';
		return -1;
	}
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

/* ---- LIST and MLSD lines ---- */

static void
ftp_entry_start(struct ftp_entry *e, const char *line, size_t len)
{
	memset(e, 0, sizeof(*e));
	e->raw = line;
	e->raw_len = len;
	e->size = -1;
	e->mtime = -1;
}

static int
ftp_is_blank(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!ftp_is_space((unsigned char)p[i]) && p[i] != '\r')
			return 0;
	return 1;
}

/* The year of Unix day number days (the inverse of ftp_days_from_civil, year only). */
static int64_t
ftp_year_of(int64_t t)
{
	int64_t z = (t >= 0 ? t / 86400 : (t - 86399) / 86400) + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;

	return yoe + era * 400 + (mp >= 10);
}

/* "Mon DD HH:MM" has no year: the most recent such date not more than a day after now (the
 * server's clock and time zone may be ahead of ours). Feb 29 looks back to a leap year. */
static int64_t
ftp_list_infer_year(int64_t now, unsigned mon, unsigned day, unsigned h, unsigned mi)
{
	int64_t y, y0;

	if (now < 0 || now > (int64_t)253402300799) /* past 9999 */
		return -1;
	y0 = ftp_year_of(now);
	for (y = y0 + 1; y >= y0 - 8; y--) {
		int64_t t = ftp_mktime(y, mon, day, h, mi, 0);

		if (t >= 0 && t <= now + 86400)
			return t;
	}
	return -1;
}

struct ftp_tok {
	size_t s, e;  /* [s, e) in the line */
};

#define FTP_TOKS 12

/* Split on blanks into at most max tokens; the count. */
static size_t
ftp_tokens(const char *p, size_t n, struct ftp_tok *t, size_t max)
{
	size_t i = 0, k = 0;

	while (k < max) {
		while (i < n && ftp_is_space((unsigned char)p[i]))
			i++;
		if (i == n)
			break;
		t[k].s = i;
		while (i < n && !ftp_is_space((unsigned char)p[i]))
			i++;
		t[k++].e = i;
	}
	return k;
}

static int
ftp_month(const char *p, size_t n)
{
	static const char m[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	int i;

	if (n != 3)
		return 0;
	for (i = 0; i < 12; i++)
		if (ftp_lower((unsigned char)p[0]) == m[3 * i] &&
		    ftp_lower((unsigned char)p[1]) == m[3 * i + 1] &&
		    ftp_lower((unsigned char)p[2]) == m[3 * i + 2])
			return i + 1;
	return 0;
}

/* "drwxr-xr-x", maybe with a trailing '+' (ACL), '.' (SELinux) or '@' (xattrs) */
static int
ftp_is_perms(const char *p, size_t n)
{
	size_t i;

	if (n == 11 && (p[10] == '+' || p[10] == '.' || p[10] == '@'))
		n = 10;
	if (n != 10 || strchr("-dlcbpsDn", p[0]) == NULL || p[0] == '\0')
		return 0;
	for (i = 1; i < 10; i++)
		if (p[i] == '\0' || strchr("rwxsStTlL-", p[i]) == NULL)
			return 0;
	return 1;
}

/* A decimal number of at most 18 digits in [p, p+n), or -1. */
static int64_t
ftp_num(const char *p, size_t n)
{
	if (n == 0 || n > 18)
		return -1;
	return ftp_digits(p, n);
}

/* "H:MM" or "HH:MM": minutes since midnight, or -1 */
static int
ftp_hhmm(const char *p, size_t n)
{
	int64_t h, m;

	if (n == 4 && p[1] == ':')
		h = ftp_digits(p, 1), m = ftp_digits(p + 2, 2);
	else if (n == 5 && p[2] == ':')
		h = ftp_digits(p, 2), m = ftp_digits(p + 3, 2);
	else
		return -1;
	if (h < 0 || m < 0 || h > 23 || m > 59)
		return -1;
	return (int)(h * 60 + m);
}

/* Unix "ls -l": FTPL_ENTRY, or FTPL_TEXT when the line is not in that form. */
static int
ftp_list_unix(const char *p, size_t n, int64_t now, struct ftp_entry *e)
{
	struct ftp_tok t[FTP_TOKS];
	size_t nt = ftp_tokens(p, n, t, FTP_TOKS), k, name;

	if (nt < 5 || !ftp_is_perms(p + t[0].s, t[0].e - t[0].s))
		return FTPL_TEXT;
	for (k = 2; k + 3 <= nt; k++) {
		const char *a = p + t[k].s, *b = p + t[k + 1].s;
		size_t an = t[k].e - t[k].s, bn = t[k + 1].e - t[k + 1].s;
		int64_t size = ftp_num(p + t[k - 1].s, t[k - 1].e - t[k - 1].s);
		int mon = ftp_month(a, an), dev = 0;

		if (size < 0)
			continue;
		if (k >= 3 && p[t[k - 2].e - 1] == ',' &&
		    ftp_num(p + t[k - 2].s, t[k - 2].e - t[k - 2].s - 1) >= 0)
			dev = 1; /* "c 1, 3": major, minor */
		if (mon != 0 && k + 4 <= nt) {
			/* "Dec 04 12:34" or "Dec  4  2024" */
			const char *c = p + t[k + 2].s;
			size_t cn = t[k + 2].e - t[k + 2].s;
			int64_t day = bn <= 2 ? ftp_num(b, bn) : -1;
			int64_t y = cn == 4 ? ftp_num(c, 4) : -1;
			int hm = ftp_hhmm(c, cn);

			if (day < 1 || day > 31 || (hm < 0 && y < 0))
				continue;
			if (hm >= 0) {
				e->mtime = ftp_list_infer_year(now, (unsigned)mon, (unsigned)day,
				                               (unsigned)hm / 60,
				                               (unsigned)hm % 60);
				e->mtime_precision = e->mtime >= 0 ? 2 : 0;
			} else {
				e->mtime = ftp_mktime(y, (unsigned)mon, (unsigned)day, 0, 0, 0);
				e->mtime_precision = e->mtime >= 0 ? 1 : 0;
			}
			name = t[k + 2].e + 1; /* one blank: a name may begin with blanks */
		} else if (an == 10 && a[4] == '-' && a[7] == '-' && ftp_hhmm(b, bn) >= 0 &&
		           bn == 5) {
			/* ls --time-style=long-iso: "2024-12-04 12:34" */
			int64_t y = ftp_digits(a, 4), mo = ftp_digits(a + 5, 2);
			int64_t d = ftp_digits(a + 8, 2);
			int hm = ftp_hhmm(b, bn);

			if (y < 0 || mo < 1 || mo > 12 || d < 1)
				continue;
			e->mtime = ftp_mktime(y, (unsigned)mo, (unsigned)d, (unsigned)hm / 60,
			                      (unsigned)hm % 60, 0);
			if (e->mtime < 0)
				continue;
			e->mtime_precision = 2;
			name = t[k + 1].e + 1;
		} else {
			continue;
		}
		if (name >= n)
			return FTPL_TEXT;
		e->name = p + name;
		e->name_len = n - name;
		switch (p[t[0].s]) {
		case '-': e->type = FTP_ENT_FILE; break;
		case 'd': e->type = FTP_ENT_DIR; break;
		case 'l': e->type = FTP_ENT_LINK; break;
		default: e->type = FTP_ENT_UNKNOWN; break;
		}
		e->size = dev || e->type == FTP_ENT_DIR ? -1 : size;
		if (e->type == FTP_ENT_LINK) {
			const char *arrow = NULL;
			size_t i;

			for (i = 0; i + 4 <= e->name_len; i++)
				if (memcmp(e->name + i, " -> ", 4) == 0) {
					arrow = e->name + i;
					break;
				}
			if (arrow != NULL && arrow > e->name) {
				e->target = arrow + 4;
				e->target_len = e->name_len - (size_t)(arrow - e->name) - 4;
				e->name_len = (size_t)(arrow - e->name);
			}
		}
		if (ftp_is_dots(e->name, e->name_len))
			return FTPL_SKIP;
		e->parsed = 1;
		return FTPL_ENTRY;
	}
	return FTPL_TEXT;
}

/* DOS/IIS: "12-04-26  01:23PM  <DIR>  name", "12-04-2026 13:23 1234 name" */
static int
ftp_list_dos(const char *p, size_t n, struct ftp_entry *e)
{
	struct ftp_tok t[FTP_TOKS];
	size_t nt = ftp_tokens(p, n, t, FTP_TOKS), k = 2, dn, tn, i, name;
	const char *d = p + t[0].s, *tm;
	int64_t mo, day, y, h, mi, size = -1;
	int ampm = 0, isdir = 0;

	if (nt < 4)
		return FTPL_TEXT;
	dn = t[0].e - t[0].s;
	if ((dn != 8 && dn != 10) || (d[2] != '-' && d[2] != '/') || d[5] != d[2])
		return FTPL_TEXT;
	mo = ftp_digits(d, 2);
	day = ftp_digits(d + 3, 2);
	y = ftp_digits(d + 6, dn - 6);
	if (mo < 0 || day < 0 || y < 0)
		return FTPL_TEXT;
	if (dn == 8)
		y += y < 70 ? 2000 : 1900;
	tm = p + t[1].s;
	tn = t[1].e - t[1].s;
	if (tn >= 2 && (ftp_lower((unsigned char)tm[tn - 1]) == 'm') &&
	    (ftp_lower((unsigned char)tm[tn - 2]) == 'a' ||
	     ftp_lower((unsigned char)tm[tn - 2]) == 'p')) {
		ampm = ftp_lower((unsigned char)tm[tn - 2]);
		tn -= 2;
	} else if (t[2].e - t[2].s == 2 && ftp_lower((unsigned char)p[t[2].s + 1]) == 'm' &&
	           (ftp_lower((unsigned char)p[t[2].s]) == 'a' ||
	            ftp_lower((unsigned char)p[t[2].s]) == 'p')) {
		ampm = ftp_lower((unsigned char)p[t[2].s]);
		k = 3;
	}
	if (tn == 4 && tm[1] == ':')
		h = ftp_digits(tm, 1), mi = ftp_digits(tm + 2, 2);
	else if (tn == 5 && tm[2] == ':')
		h = ftp_digits(tm, 2), mi = ftp_digits(tm + 3, 2);
	else
		return FTPL_TEXT;
	if (h < 0 || mi < 0 || mi > 59)
		return FTPL_TEXT;
	if (ampm != 0) {
		if (h < 1 || h > 12)
			return FTPL_TEXT;
		h = h % 12 + (ampm == 'p' ? 12 : 0);
	}
	if (k + 2 > nt)
		return FTPL_TEXT;
	if (t[k].e - t[k].s == 5 && ftp_ieq(p + t[k].s, 5, "<dir>")) {
		isdir = 1;
	} else {
		/* digits, maybe grouped by commas ("1,234") */
		size = 0;
		for (i = t[k].s; i < t[k].e; i++) {
			if (p[i] == ',' && i > t[k].s)
				continue;
			if (!ftp_is_digit((unsigned char)p[i]) || size > (INT64_MAX - 9) / 10)
				return FTPL_TEXT;
			size = size * 10 + (p[i] - '0');
		}
	}
	e->mtime = ftp_mktime(y, (unsigned)mo, (unsigned)day, (unsigned)h, (unsigned)mi, 0);
	if (e->mtime < 0)
		return FTPL_TEXT;
	e->mtime_precision = 2;
	name = t[k + 1].s;
	e->name = p + name;
	e->name_len = n - name;
	e->type = isdir ? FTP_ENT_DIR : FTP_ENT_FILE;
	e->size = isdir ? -1 : size;
	if (ftp_is_dots(e->name, e->name_len))
		return FTPL_SKIP;
	e->parsed = 1;
	return FTPL_ENTRY;
}

int
ftp_list_parse_line(const char *line, size_t len, int64_t now, struct ftp_entry *e)
{
	struct ftp_tok t[3];
	int rc;

	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
		len--;
	ftp_entry_start(e, line, len);
	if (ftp_is_blank(line, len))
		return FTPL_SKIP;
	/* "total 12" (and "total 12K") heads ls output */
	if (ftp_tokens(line, len, t, 3) == 2 && t[0].e - t[0].s == 5 &&
	    memcmp(line + t[0].s, "total", 5) == 0 && ftp_is_digit((unsigned char)line[t[1].s]))
		return FTPL_SKIP;
	rc = ftp_list_unix(line, len, now, e);
	if (rc == FTPL_TEXT) {
		ftp_entry_start(e, line, len);
		rc = ftp_list_dos(line, len, e);
	}
	if (rc == FTPL_TEXT)
		ftp_entry_start(e, line, len);
	return rc;
}

int
ftp_mlsd_parse_line(const char *line, size_t len, struct ftp_entry *e)
{
	const char *sp, *f, *end;

	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
		len--;
	ftp_entry_start(e, line, len);
	if (ftp_is_blank(line, len))
		return FTPL_SKIP;
	/* RFC 3659 7.2: facts, each "name=value;", then one blank, then the name */
	sp = memchr(line, ' ', len);
	if (sp == NULL || sp == line || sp[-1] != ';' || sp + 1 == line + len)
		return FTPL_TEXT;
	e->type = FTP_ENT_UNKNOWN;
	for (f = line; f < sp; f = end + 1) {
		const char *eq, *v;
		size_t fn, vn;

		end = memchr(f, ';', (size_t)(sp - f));
		if (end == NULL)
			end = sp; /* not reached: the facts end in ';' */
		eq = memchr(f, '=', (size_t)(end - f));
		if (eq == NULL)
			continue;
		fn = (size_t)(eq - f);
		v = eq + 1;
		vn = (size_t)(end - v);
		if (ftp_ieq(f, fn, "type")) {
			if (ftp_ieq(v, vn, "file"))
				e->type = FTP_ENT_FILE;
			else if (ftp_ieq(v, vn, "dir"))
				e->type = FTP_ENT_DIR;
			else if (ftp_ieq(v, vn, "cdir") || ftp_ieq(v, vn, "pdir"))
				return FTPL_SKIP;
			else if (vn >= 13 && ftp_ieq(v, 13, "os.unix=slink")) {
				/* "OS.unix=slink:/target" (ProFTPD, Pure-FTPd) */
				e->type = FTP_ENT_LINK;
				if (vn > 14 && v[13] == ':') {
					e->target = v + 14;
					e->target_len = vn - 14;
				}
			} else if (ftp_ieq(v, vn, "os.unix=symlink")) {
				e->type = FTP_ENT_LINK;
			}
		} else if (ftp_ieq(f, fn, "size")) {
			e->size = ftp_num(v, vn);
		} else if (ftp_ieq(f, fn, "modify") && vn >= 14 && vn < 40) {
			char tv[40];
			int64_t t;

			memcpy(tv, v, vn);
			tv[vn] = '\0';
			if (ftp_parse_mdtm(tv, &t) == 0) {
				e->mtime = t;
				e->mtime_precision = 3;
			}
		}
	}
	e->name = sp + 1;
	e->name_len = (size_t)(line + len - e->name);
	if (e->type == FTP_ENT_DIR)
		e->size = -1;
	if (ftp_is_dots(e->name, e->name_len))
		return FTPL_SKIP;
	e->parsed = 1;
	return FTPL_ENTRY;
}

/* ---- listings ---- */

/* A kept line: where it is in mem, and what sorting needs (parsed again when rendered). */
struct ftp_lrec {
	uint32_t off;
	uint16_t len;
	uint16_t name_off, name_len;
	uint8_t type, parsed;
};

/* What a kept line costs against the cap besides its bytes: its record, so that a listing of
 * very short lines cannot make the index many times larger than the cap. */
#define FTP_LREC_COST 16

struct ftp_listing {
	char *dir_url;
	int mlsd;
	int64_t now;
	size_t cap, used;         /* bytes fed, plus FTP_LREC_COST per kept line */
	char *mem;                /* kept lines back to back, then the line being received */
	size_t mem_len, mem_cap, cur;
	struct ftp_lrec *rec;
	size_t nrec, rec_cap;
	int failed;
	char why[64];
};

struct ftp_listing *
ftp_listing_new(const char *dir_url, int mlsd, int64_t now, size_t cap)
{
	struct ftp_listing *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->dir_url = strdup(dir_url != NULL ? dir_url : "");
	if (l->dir_url == NULL) {
		free(l);
		return NULL;
	}
	/* allocated now: slices and copies never start from a null pointer */
	l->mem_cap = 4096;
	l->mem = malloc(l->mem_cap);
	if (l->mem == NULL) {
		free(l->dir_url);
		free(l);
		return NULL;
	}
	l->mlsd = mlsd;
	l->now = now;
	/* offsets are 32-bit: a listing cap beyond 2 GiB would be a configuration mistake */
	l->cap = cap > ((size_t)1 << 31) ? (size_t)1 << 31 : cap;
	return l;
}

static int
ftp_listing_fail(struct ftp_listing *l, const char *why, const char **reason)
{
	if (!l->failed) {
		snprintf(l->why, sizeof(l->why), "%s", why);
		l->failed = 1;
	}
	*reason = l->why;
	return -1;
}

static int
ftp_listing_too_big(struct ftp_listing *l, const char **reason)
{
	char why[64];

	snprintf(why, sizeof(why), "listing larger than %zu bytes", l->cap);
	return ftp_listing_fail(l, why, reason);
}

/* The line mem[cur..mem_len) is complete: keep it unless it is to be skipped. */
static int
ftp_listing_line(struct ftp_listing *l, const char **reason)
{
	size_t len = l->mem_len - l->cur;
	const char *line = l->mem + l->cur;
	struct ftp_entry e;
	int rc;

	while (len > 0 && line[len - 1] == '\r')
		len--;
	rc = l->mlsd ? ftp_mlsd_parse_line(line, len, &e) : ftp_list_parse_line(line, len, l->now,
	                                                                          &e);
	if (rc == FTPL_SKIP) {
		l->mem_len = l->cur;
		return 0;
	}
	if (l->used + FTP_LREC_COST > l->cap)
		return ftp_listing_too_big(l, reason);
	l->used += FTP_LREC_COST;
	if (l->nrec == l->rec_cap) {
		size_t ncap = l->rec_cap ? l->rec_cap * 2 : 64;
		struct ftp_lrec *r = realloc(l->rec, ncap * sizeof(*r));

		if (r == NULL)
			return ftp_listing_fail(l, "out of memory", reason);
		l->rec = r;
		l->rec_cap = ncap;
	}
	l->rec[l->nrec].off = (uint32_t)l->cur;
	l->rec[l->nrec].len = (uint16_t)len;
	l->rec[l->nrec].parsed = rc == FTPL_ENTRY;
	l->rec[l->nrec].type = rc == FTPL_ENTRY ? (uint8_t)e.type : 0;
	l->rec[l->nrec].name_off = rc == FTPL_ENTRY ? (uint16_t)(e.name - line) : 0;
	l->rec[l->nrec].name_len = rc == FTPL_ENTRY ? (uint16_t)e.name_len : 0;
	l->nrec++;
	l->mem_len = l->cur + len;
	l->cur = l->mem_len;
	return 0;
}

int
ftp_listing_feed(struct ftp_listing *l, const char *data, size_t len, const char **reason)
{
	const char *dummy;

	if (reason == NULL)
		reason = &dummy;
	if (l->failed) {
		*reason = l->why;
		return -1;
	}
	while (len > 0) {
		const char *nl = memchr(data, '\n', len);
		size_t take = nl != NULL ? (size_t)(nl - data) : len;

		if (l->used + take + (nl != NULL) > l->cap)
			return ftp_listing_too_big(l, reason);
		if (l->mem_len - l->cur + take > FTP_LINE_MAX)
			return ftp_listing_fail(l, "listing line too long", reason);
		if (l->mem_len + take > l->mem_cap) {
			size_t ncap = l->mem_cap;
			char *m;

			while (ncap < l->mem_len + take)
				ncap *= 2;
			m = realloc(l->mem, ncap);
			if (m == NULL)
				return ftp_listing_fail(l, "out of memory", reason);
			l->mem = m;
			l->mem_cap = ncap;
		}
		memcpy(l->mem + l->mem_len, data, take);
		l->mem_len += take;
		l->used += take + (nl != NULL);
		data += take + (nl != NULL);
		len -= take + (nl != NULL);
		if (nl != NULL && ftp_listing_line(l, reason) < 0)
			return -1;
	}
	return 0;
}

int
ftp_listing_end(struct ftp_listing *l, const char **reason)
{
	const char *dummy;

	if (reason == NULL)
		reason = &dummy;
	if (l->failed) {
		*reason = l->why;
		return -1;
	}
	if (l->mem_len > l->cur)
		return ftp_listing_line(l, reason);
	return 0;
}

size_t
ftp_listing_count(const struct ftp_listing *l)
{
	return l->nrec;
}

void
ftp_listing_free(struct ftp_listing *l)
{
	if (l == NULL)
		return;
	free(l->dir_url);
	free(l->mem);
	free(l->rec);
	free(l);
}

/* Order shown: entries before unparsed lines; directories first; then by name, bytewise;
 * then as the server listed them. */
static int
ftp_listing_cmp(const void *a, const void *b, void *arg)
{
	const struct ftp_listing *l = arg;
	const struct ftp_lrec *x = &l->rec[*(const uint32_t *)a];
	const struct ftp_lrec *y = &l->rec[*(const uint32_t *)b];
	size_t n;
	int c;

	if (x->parsed != y->parsed)
		return x->parsed ? -1 : 1;
	if (x->parsed) {
		if ((x->type == FTP_ENT_DIR) != (y->type == FTP_ENT_DIR))
			return x->type == FTP_ENT_DIR ? -1 : 1;
		n = x->name_len < y->name_len ? x->name_len : y->name_len;
		c = memcmp(l->mem + x->off + x->name_off, l->mem + y->off + y->name_off, n);
		if (c != 0)
			return c;
		if (x->name_len != y->name_len)
			return x->name_len < y->name_len ? -1 : 1;
	}
	return x->off < y->off ? -1 : x->off > y->off;
}

static uint32_t *
ftp_listing_order(const struct ftp_listing *l)
{
	uint32_t *o = malloc((l->nrec ? l->nrec : 1) * sizeof(*o));
	size_t i;

	if (o == NULL)
		return NULL;
	for (i = 0; i < l->nrec; i++)
		o[i] = (uint32_t)i;
	qsort_r(o, l->nrec, sizeof(*o), ftp_listing_cmp, (void *)l);
	return o;
}

static void
ftp_listing_entry(const struct ftp_listing *l, size_t i, struct ftp_entry *e)
{
	const char *line = l->mem + l->rec[i].off;
	size_t len = l->rec[i].len;

	if (!l->rec[i].parsed)
		ftp_entry_start(e, line, len);
	else if (l->mlsd)
		(void)ftp_mlsd_parse_line(line, len, e);
	else
		(void)ftp_list_parse_line(line, len, l->now, e);
}

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlong form, no surrogate, nothing
 * past U+10FFFF), or 0. */
static size_t
ftp_utf8_len(const unsigned char *p, size_t n)
{
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (p[0] >= 0xe0 && p[0] <= 0xef) {
		if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
			return 0;
		if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f))
			return 0;
		return 3;
	}
	if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
		    (p[3] & 0xc0) != 0x80)
			return 0;
		if ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

#define FTP_REPL "\xef\xbf\xbd" /* U+FFFD */

/* HTML text and attribute values: escaped, control characters and bytes that are not UTF-8
 * shown as U+FFFD (the page is UTF-8; a server's Latin-1 name must not break it). */
static int
ftp_html_put(struct buf *out, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k;

	while (i < n) {
		const char *rep = NULL;

		k = ftp_utf8_len(p + i, n - i);
		if (k == 0 || p[i] < 0x20 || p[i] == 0x7f)
			rep = FTP_REPL;
		else if (p[i] == '&')
			rep = "&amp;";
		else if (p[i] == '<')
			rep = "&lt;";
		else if (p[i] == '>')
			rep = "&gt;";
		else if (p[i] == '"')
			rep = "&quot;";
		else if (p[i] == '\'')
			rep = "&#39;";
		if (rep != NULL) {
			if (buf_append(out, rep, strlen(rep)) < 0)
				return -1;
			i += k ? k : 1;
			continue;
		}
		/* a run of plain bytes at once */
		k = i;
		while (k < n && p[k] >= 0x20 && p[k] < 0x7f && p[k] != '&' && p[k] != '<' &&
		       p[k] != '>' && p[k] != '"' && p[k] != '\'')
			k++;
		if (k == i) { /* a valid multi-byte sequence */
			k = i + ftp_utf8_len(p + i, n - i);
		}
		if (buf_append(out, s + i, k - i) < 0)
			return -1;
		i = k;
	}
	return 0;
}

/* A relative reference to the name: every byte but RFC 3986's unreserved ones
 * percent-encoded, so "#", "?", "%", ";", ":" and blanks stay part of the name. */
static int
ftp_href_put(struct buf *out, const char *s, size_t n, int dir)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[3];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			if (buf_append(out, s + i, 1) < 0)
				return -1;
			continue;
		}
		esc[0] = '%';
		esc[1] = hex[c >> 4];
		esc[2] = hex[c & 15];
		if (buf_append(out, esc, 3) < 0)
			return -1;
	}
	return dir ? buf_append(out, "/", 1) : 0;
}

/* The date as shown: "2026-12-04", "2026-12-04 12:34" or "2026-12-04 12:34:56"; iso gives
 * "2026-12-04T12:34:56Z" whatever the precision. */
static int
ftp_date_fmt(char *out, size_t n, int64_t t, int precision, int iso)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t < 0 || precision == 0 || gmtime_r(&tt, &tm) == NULL)
		return -1;
	if (iso)
		strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
	else if (precision == 1)
		strftime(out, n, "%Y-%m-%d", &tm);
	else if (precision == 2)
		strftime(out, n, "%Y-%m-%d %H:%M", &tm);
	else
		strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm);
	return 0;
}

static const char *
ftp_type_name(enum ftp_ent_type t)
{
	switch (t) {
	case FTP_ENT_FILE: return "file";
	case FTP_ENT_DIR: return "dir";
	case FTP_ENT_LINK: return "link";
	default: return "unknown";
	}
}

/* Is dir_url's path "/" (no parent to link to)? */
static int
ftp_url_is_root(const char *url)
{
	const char *p = strstr(url, "://");

	p = p != NULL ? p + 3 : url;
	p = strchr(p, '/');
	return p == NULL || strcmp(p, "/") == 0;
}

static const char ftp_page_style[] =
	"body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
	"h1{font-size:1.3em;word-break:break-all}"
	"table{border-collapse:collapse}"
	"th,td{padding:.2em .8em;text-align:left;vertical-align:top}"
	"th{border-bottom:1px solid #aaa}"
	"td.s{text-align:right;font-variant-numeric:tabular-nums}"
	"tr:nth-child(even){background:#f4f4f4}"
	"pre{background:#f4f4f4;padding:.5em;overflow:auto}"
	"footer{margin-top:1.5em;font-size:.85em;color:#666}";

#define FTP_PUT(lit) do { if (buf_append(out, lit, sizeof(lit) - 1) < 0) goto fail; } while (0)

int
ftp_listing_html(const struct ftp_listing *l, struct buf *out)
{
	uint32_t *o = ftp_listing_order(l);
	size_t i, nraw = 0;
	struct ftp_entry e;
	char tmp[64];

	if (o == NULL)
		return -1;
	FTP_PUT("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	        "<meta name=\"viewport\" content=\"width=device-width\">\n<title>Index of ");
	if (ftp_html_put(out, l->dir_url, strlen(l->dir_url)) < 0)
		goto fail;
	FTP_PUT("</title>\n<style>");
	FTP_PUT(ftp_page_style);
	FTP_PUT("</style></head>\n<body>\n<h1>Index of ");
	if (ftp_html_put(out, l->dir_url, strlen(l->dir_url)) < 0)
		goto fail;
	FTP_PUT("</h1>\n<table>\n<thead><tr><th>Name</th><th>Size</th><th>Modified (UTC)</th>"
	        "<th>Type</th></tr></thead>\n<tbody>\n");
	if (!ftp_url_is_root(l->dir_url))
		FTP_PUT("<tr><td><a href=\"../\">Parent directory</a></td><td class=\"s\"></td>"
		        "<td></td><td>dir</td></tr>\n");
	for (i = 0; i < l->nrec; i++) {
		ftp_listing_entry(l, o[i], &e);
		if (!e.parsed) {
			nraw++;
			continue;
		}
		FTP_PUT("<tr><td><a href=\"");
		if (ftp_href_put(out, e.name, e.name_len, e.type == FTP_ENT_DIR) < 0)
			goto fail;
		FTP_PUT("\">");
		if (ftp_html_put(out, e.name, e.name_len) < 0)
			goto fail;
		if (e.type == FTP_ENT_DIR)
			FTP_PUT("/");
		FTP_PUT("</a>");
		if (e.target != NULL) {
			FTP_PUT(" &rarr; ");
			if (ftp_html_put(out, e.target, e.target_len) < 0)
				goto fail;
		}
		FTP_PUT("</td><td class=\"s\">");
		if (e.size >= 0 && buf_printf(out, "%lld", (long long)e.size) < 0)
			goto fail;
		FTP_PUT("</td><td>");
		if (ftp_date_fmt(tmp, sizeof(tmp), e.mtime, e.mtime_precision, 0) == 0 &&
		    buf_append(out, tmp, strlen(tmp)) < 0)
			goto fail;
		FTP_PUT("</td><td>");
		if (buf_printf(out, "%s", ftp_type_name(e.type)) < 0)
			goto fail;
		FTP_PUT("</td></tr>\n");
	}
	FTP_PUT("</tbody>\n</table>\n");
	if (nraw > 0) {
		FTP_PUT("<h2>Lines not understood</h2>\n<pre>");
		for (i = 0; i < l->nrec; i++) {
			if (l->rec[o[i]].parsed)
				continue;
			if (ftp_html_put(out, l->mem + l->rec[o[i]].off, l->rec[o[i]].len) < 0)
				goto fail;
			FTP_PUT("\n");
		}
		FTP_PUT("</pre>\n");
	}
	FTP_PUT("<footer>Gatehouse FTP gateway</footer>\n</body></html>\n");
	free(o);
	return 0;
fail:
	free(o);
	return -1;
}

/* A JSON string: control characters as \uXXXX, bytes that are not UTF-8 as \uFFFD. */
static int
ftp_json_put(struct buf *out, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k;

	if (buf_append(out, "\"", 1) < 0)
		return -1;
	while (i < n) {
		k = ftp_utf8_len(p + i, n - i);
		if (k == 0) {
			if (buf_append(out, "\\uFFFD", 6) < 0)
				return -1;
			i++;
			continue;
		}
		if (p[i] == '"' || p[i] == '\\') {
			char esc[2] = { '\\', (char)p[i] };

			if (buf_append(out, esc, 2) < 0)
				return -1;
		} else if (p[i] < 0x20 || p[i] == 0x7f) {
			if (buf_printf(out, "\\u%04X", p[i]) < 0)
				return -1;
		} else if (buf_append(out, s + i, k) < 0) {
			return -1;
		}
		i += k;
	}
	return buf_append(out, "\"", 1);
}

int
ftp_listing_json(const struct ftp_listing *l, struct buf *out)
{
	uint32_t *o = ftp_listing_order(l);
	size_t i, nent = 0, nraw = 0;
	struct ftp_entry e;
	char tmp[64];

	if (o == NULL)
		return -1;
	FTP_PUT("{\"url\":");
	if (ftp_json_put(out, l->dir_url, strlen(l->dir_url)) < 0)
		goto fail;
	FTP_PUT(",\"entries\":[");
	for (i = 0; i < l->nrec; i++) {
		ftp_listing_entry(l, o[i], &e);
		if (!e.parsed)
			continue;
		if (nent++ > 0)
			FTP_PUT(",");
		FTP_PUT("\n{\"name\":");
		if (ftp_json_put(out, e.name, e.name_len) < 0)
			goto fail;
		if (buf_printf(out, ",\"type\":\"%s\",\"size\":", ftp_type_name(e.type)) < 0)
			goto fail;
		if (e.size >= 0 ? buf_printf(out, "%lld", (long long)e.size) < 0 :
		                  buf_append(out, "null", 4) < 0)
			goto fail;
		FTP_PUT(",\"modified\":");
		if (ftp_date_fmt(tmp, sizeof(tmp), e.mtime, e.mtime_precision, 1) == 0) {
			if (buf_printf(out, "\"%s\"", tmp) < 0)
				goto fail;
		} else {
			FTP_PUT("null");
		}
		if (e.target != NULL) {
			FTP_PUT(",\"target\":");
			if (ftp_json_put(out, e.target, e.target_len) < 0)
				goto fail;
		}
		/* the href as the page has it: JSON strings can hold it as it is */
		FTP_PUT(",\"href\":\"");
		if (ftp_href_put(out, e.name, e.name_len, e.type == FTP_ENT_DIR) < 0)
			goto fail;
		FTP_PUT("\"}");
	}
	FTP_PUT("],\n\"unparsed\":[");
	for (i = 0; i < l->nrec; i++) {
		if (l->rec[o[i]].parsed)
			continue;
		if (nraw++ > 0)
			FTP_PUT(",");
		if (ftp_json_put(out, l->mem + l->rec[o[i]].off, l->rec[o[i]].len) < 0)
			goto fail;
	}
	FTP_PUT("]}\n");
	free(o);
	return 0;
fail:
	free(o);
	return -1;
}
