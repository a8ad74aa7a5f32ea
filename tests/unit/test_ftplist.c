/*
 * test_ftplist.c - unit tests of the FTP gateway's pure parts (daemon/ftplist.c): replies fed
 * in pieces, the numbers in PASV/EPSV/MDTM/SIZE/FEAT replies, EPRT/PORT arguments, ftp://
 * paths and logins, media types and ETags, and LIST/MLSD listings typed in from what real
 * servers print (vsftpd, GNU ls, ProFTPD, Pure-FTPd, pyftpdlib, IIS), with their HTML and
 * JSON renderings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/buf.h"
#include "daemon/ftplist.h"
#include "tests/json_check.h"

/* ---- replies ---- */

/* Feed s in pieces of step bytes; the result, the code and the bytes consumed. */
static int
tf_feed(struct ftp_reply *r, const char *s, size_t step, size_t *used, const char **why)
{
	size_t off = 0, n = strlen(s), c;
	int rc = FTPR_AGAIN;

	ftp_reply_init(r);
	*why = NULL;
	while (off < n) {
		size_t k = n - off < step ? n - off : step;

		rc = ftp_reply_feed(r, s + off, k, &c, why);
		off += c;
		if (rc != FTPR_AGAIN)
			break;
		assert_int_equal(c, k);
	}
	*used = off;
	return rc;
}

static void
test_reply_single_line(void **state)
{
	static struct ftp_reply r;
	const char *why;
	size_t used;

	(void)state;
	assert_int_equal(tf_feed(&r, "220 (vsFTPd 3.0.3)\r\n", 100, &used, &why), FTPR_DONE);
	assert_int_equal(r.code, 220);
	assert_int_equal(used, 20);
	assert_string_equal(r.text, "220 (vsFTPd 3.0.3)\n");
	/* a bare LF ends a line too, and the next reply's bytes are left */
	assert_int_equal(tf_feed(&r, "331 Please specify the password.\n230 x\r\n", 100, &used,
	                         &why), FTPR_DONE);
	assert_int_equal(r.code, 331);
	assert_int_equal(used, 33);
}

static void
test_reply_multi_line_any_split(void **state)
{
	static struct ftp_reply r;
	const char *s = "211-Features:\r\n EPRT\r\n EPSV\r\n MDTM\r\n MLST type*;size*;modify*;\r\n"
	                "211-not the end\r\n REST STREAM\r\n SIZE\r\n UTF8\r\n211 End\r\n"
	                "226 next\r\n";
	const char *why;
	size_t used, step;

	(void)state;
	for (step = 1; step < 40; step++) {
		assert_int_equal(tf_feed(&r, s, step, &used, &why), FTPR_DONE);
		assert_int_equal(r.code, 211);
		assert_int_equal(used, strlen(s) - strlen("226 next\r\n"));
		assert_true(ftp_feat_has(r.text, "MLST"));
		assert_true(ftp_feat_has(r.text, "rest stream"));
		assert_true(ftp_feat_has(r.text, "EPSV"));
		assert_true(ftp_feat_has(r.text, "UTF8"));
		assert_false(ftp_feat_has(r.text, "MLS"));
		assert_false(ftp_feat_has(r.text, "Features:"));
		assert_false(ftp_feat_has(r.text, "PASV"));
	}
	/* a line with the code but "-" or another code does not end it */
	assert_int_equal(tf_feed(&r, "150-a\r\n150-b\r\n151 c\r\n150\r\n", 3, &used, &why),
	                 FTPR_DONE);
	assert_int_equal(r.code, 150);
	assert_string_equal(r.text, "150-a\n150-b\n151 c\n150\n");
}

static void
test_reply_last_line_quoted_clean(void **state)
{
	static struct ftp_reply r;
	char out[64];
	const char *why;
	size_t used;

	(void)state;
	assert_int_equal(tf_feed(&r, "550 Failed to open file.\r\n", 5, &used, &why), FTPR_DONE);
	ftp_reply_last_line(&r, out, sizeof(out));
	assert_string_equal(out, "Failed to open file.");
	assert_int_equal(tf_feed(&r, "550-first\r\n\tx\x1b[31m\r\n550 last\tone\r\n", 5, &used,
	                         &why), FTPR_DONE);
	ftp_reply_last_line(&r, out, sizeof(out));
	assert_string_equal(out, "last one");
	ftp_reply_last_line(&r, out, 5);
	assert_string_equal(out, "last");
}

static void
test_reply_errors(void **state)
{
	static struct ftp_reply r;
	static char big[FTP_REPLY_MAX + 4096];
	const char *why;
	size_t used, i, off;

	(void)state;
	assert_int_equal(tf_feed(&r, "hello\r\n", 100, &used, &why), FTPR_ERR);
	assert_string_equal(why, "malformed reply");
	assert_int_equal(tf_feed(&r, "600 no\r\n", 100, &used, &why), FTPR_ERR);
	assert_int_equal(tf_feed(&r, "22 no\r\n", 100, &used, &why), FTPR_ERR);
	assert_int_equal(tf_feed(&r, "220x\r\n", 100, &used, &why), FTPR_ERR);
	ftp_reply_init(&r);
	assert_int_equal(ftp_reply_feed(&r, "220 a\0b\r\n", 9, &used, &why), FTPR_ERR);
	assert_string_equal(why, "malformed reply");
	assert_int_equal(used, 5);
	assert_int_equal(strlen(r.text), r.text_len); /* the text so far, terminated */
	/* an endless line */
	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "220 ", 4);
	assert_int_equal(tf_feed(&r, big, 1000, &used, &why), FTPR_ERR);
	assert_string_equal(why, "control line too long");
	assert_true(used <= FTP_LINE_MAX + 1000);
	/* endless continuation lines */
	off = 0;
	memcpy(big, "220-\r\n", 6);
	off = 6;
	for (i = 0; off + 12 < sizeof(big) - 1; i++) {
		memcpy(big + off, " more text\r\n", 12);
		off += 12;
	}
	big[off] = '\0';
	assert_int_equal(tf_feed(&r, big, 777, &used, &why), FTPR_ERR);
	assert_string_equal(why, "reply too long");
	assert_true(r.text_len < FTP_REPLY_MAX);
	/* a line just under the cap is fine */
	memset(big, 'b', FTP_LINE_MAX);
	memcpy(big, "220 ", 4);
	memcpy(big + FTP_LINE_MAX - 2, "\r\n", 3);
	assert_int_equal(tf_feed(&r, big, 100, &used, &why), FTPR_DONE);
	/* feeding a finished reply again without init is refused */
	assert_int_equal(ftp_reply_feed(&r, "220 x\r\n", 7, &used, &why), FTPR_ERR);
}

/* ---- numbers ---- */

static void
test_pasv_epsv(void **state)
{
	unsigned port;
	uint32_t a;

	(void)state;
	assert_int_equal(ftp_parse_pasv("227 Entering Passive Mode (127,0,0,1,156,65).\n", &port,
	                                &a), 0);
	assert_int_equal(port, 156 * 256 + 65);
	assert_int_equal(a, 0x7f000001u);
	/* without parentheses (some servers), with the code stripped by the caller */
	assert_int_equal(ftp_parse_pasv("Entering Passive Mode 10,1,2,3,4,5", &port, &a), 0);
	assert_int_equal(port, 4 * 256 + 5);
	assert_int_equal(a, 0x0a010203u);
	assert_int_equal(ftp_parse_pasv("227 Entering Passive Mode (256,0,0,1,1,1)", &port, &a),
	                 -1);
	assert_int_equal(ftp_parse_pasv("227 Entering Passive Mode (1,0,0,1,0,0)", &port, &a), -1);
	assert_int_equal(ftp_parse_pasv("227 Entering Passive Mode (1,0,0,1,1)", &port, &a), -1);
	assert_int_equal(ftp_parse_pasv("227 nothing", &port, &a), -1);
	assert_int_equal(ftp_parse_pasv("227 (1,2,3,4,5,6789)", &port, &a), -1);
	assert_int_equal(ftp_parse_epsv("229 Entering Extended Passive Mode (|||6446|)\r\n", &port),
	                 0);
	assert_int_equal(port, 6446);
	assert_int_equal(ftp_parse_epsv("229 ok (!!!21!)", &port), 0);
	assert_int_equal(port, 21);
	assert_int_equal(ftp_parse_epsv("229 (|||0|)", &port), -1);
	assert_int_equal(ftp_parse_epsv("229 (|||65536|)", &port), -1);
	assert_int_equal(ftp_parse_epsv("229 (||6446|)", &port), -1);
	assert_int_equal(ftp_parse_epsv("229 (|||6446)", &port), -1);
	assert_int_equal(ftp_parse_epsv("229 (|||6446|", &port), -1);
	assert_int_equal(ftp_parse_epsv("229 no parentheses", &port), -1);
}

static void
test_mdtm_size(void **state)
{
	int64_t t, s;

	(void)state;
	assert_int_equal(ftp_parse_mdtm("213 20261204123456\r\n", &t), 0);
	assert_int_equal(t, 1796387696); /* date -u -d '2026-12-04 12:34:56' +%s */
	assert_int_equal(ftp_parse_mdtm("19700101000000", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(ftp_parse_mdtm("213 20240229235960.123", &t), 0);
	assert_int_equal(t, 1709251199);
	assert_int_equal(ftp_parse_mdtm("213 20230229000000", &t), -1);
	assert_int_equal(ftp_parse_mdtm("213 2026120412345", &t), -1);
	assert_int_equal(ftp_parse_mdtm("213 191261204123456", &t), -1); /* the Y2K bug */
	assert_int_equal(ftp_parse_mdtm("213 20261304123456", &t), -1);
	assert_int_equal(ftp_parse_mdtm("213 20261204243456", &t), -1);
	assert_int_equal(ftp_parse_mdtm("213 20261204123456.", &t), -1);
	assert_int_equal(ftp_parse_mdtm("213 20261204123456x", &t), -1);
	assert_int_equal(ftp_parse_size("213 12345\r\n", &s), 0);
	assert_int_equal(s, 12345);
	assert_int_equal(ftp_parse_size("0", &s), 0);
	assert_int_equal(s, 0);
	assert_int_equal(ftp_parse_size("213 9223372036854775807", &s), 0);
	assert_true(s == INT64_MAX);
	assert_int_equal(ftp_parse_size("213 9223372036854775808", &s), -1);
	assert_int_equal(ftp_parse_size("213 ", &s), -1);
	assert_int_equal(ftp_parse_size("213 -1", &s), -1);
	assert_int_equal(ftp_parse_size("213 12a", &s), -1);
}

static void
test_eprt_port(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	char out[80];

	(void)state;
	memset(&ss, 0, sizeof(ss));
	s4->sin_family = AF_INET;
	s4->sin_port = htons(40001);
	inet_pton(AF_INET, "127.0.0.1", &s4->sin_addr);
	assert_int_equal(ftp_fmt_eprt(out, sizeof(out), &ss), 0);
	assert_string_equal(out, "|1|127.0.0.1|40001|");
	assert_int_equal(ftp_fmt_port(out, sizeof(out), &ss), 0);
	assert_string_equal(out, "127,0,0,1,156,65");
	assert_int_equal(ftp_fmt_port(out, 10, &ss), -1);
	assert_int_equal(ftp_fmt_eprt(out, 10, &ss), -1);
	memset(&ss, 0, sizeof(ss));
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(40001);
	inet_pton(AF_INET6, "::1", &s6->sin6_addr);
	assert_int_equal(ftp_fmt_eprt(out, sizeof(out), &ss), 0);
	assert_string_equal(out, "|2|::1|40001|");
	assert_int_equal(ftp_fmt_port(out, sizeof(out), &ss), -1);
}

/* ---- paths and logins ---- */

static void
test_path_parse(void **state)
{
	static struct ftp_path p;
	const char *why;
	char longp[6000];
	size_t i;

	(void)state;
	assert_int_equal(ftp_path_parse("/pub/a%20b/file.txt;type=i", 26, &p, &why), 0);
	assert_int_equal(p.nseg, 3);
	assert_string_equal(p.seg[0], "pub");
	assert_string_equal(p.seg[1], "a b");
	assert_string_equal(p.seg[2], "file.txt");
	assert_int_equal(p.is_dir, 0);
	assert_int_equal(p.type, 'i');
	assert_int_equal(ftp_path_parse("/pub/dir/", 9, &p, &why), 0);
	assert_int_equal(p.nseg, 2);
	assert_int_equal(p.is_dir, 1);
	assert_int_equal(p.type, 0);
	assert_int_equal(ftp_path_parse("/", 1, &p, &why), 0);
	assert_int_equal(p.nseg, 0);
	assert_int_equal(p.is_dir, 1);
	assert_int_equal(ftp_path_parse("", 0, &p, &why), 0);
	assert_int_equal(p.is_dir, 1);
	assert_int_equal(ftp_path_parse("/pub;TYPE=D", 11, &p, &why), 0);
	assert_int_equal(p.type, 'd');
	assert_int_equal(p.nseg, 1);
	assert_string_equal(p.seg[0], "pub");
	assert_int_equal(ftp_path_parse("/;type=d", 8, &p, &why), 0);
	assert_int_equal(p.nseg, 0);
	assert_int_equal(p.is_dir, 1);
	/* a ';' that is not ";type=" is part of the name; an encoded one too */
	assert_int_equal(ftp_path_parse("/a;b/c%3Btype=d", 15, &p, &why), 0);
	assert_string_equal(p.seg[0], "a;b");
	assert_string_equal(p.seg[1], "c;type=d");
	assert_int_equal(p.type, 0);
	/* refusals */
	assert_int_equal(ftp_path_parse("/a/file;type=x", 14, &p, &why), -1);
	assert_non_null(strstr(why, "type"));
	assert_int_equal(ftp_path_parse("/a/%2e%2E/etc", 13, &p, &why), -1);
	assert_non_null(strstr(why, ".."));
	assert_int_equal(ftp_path_parse("/a/./b", 6, &p, &why), -1);
	assert_int_equal(ftp_path_parse("/a/..%2F..%2Fetc/x", 18, &p, &why), -1);
	assert_int_equal(ftp_path_parse("/a/x%2F.", 8, &p, &why), -1);
	/* an encoded slash names an absolute path (RFC 1738 3.2.2) */
	assert_int_equal(ftp_path_parse("/%2Fetc/motd", 12, &p, &why), 0);
	assert_string_equal(p.seg[0], "/etc");
	assert_string_equal(p.seg[1], "motd");
	assert_int_equal(ftp_path_parse("/a/..b/.c", 9, &p, &why), 0);
	assert_int_equal(ftp_path_parse("/a/x%0d%0aDELE%20y", 18, &p, &why), -1);
	assert_non_null(strstr(why, "CR, LF"));
	assert_int_equal(ftp_path_parse("/a%00", 5, &p, &why), -1);
	assert_int_equal(ftp_path_parse("/a%zz", 5, &p, &why), -1);
	assert_non_null(strstr(why, "percent"));
	assert_int_equal(ftp_path_parse("/a%4", 4, &p, &why), -1);
	assert_int_equal(ftp_path_parse("/a//b", 5, &p, &why), -1);
	for (i = 0; i < 65; i++)
		memcpy(longp + 2 * i, "/x", 2);
	assert_int_equal(ftp_path_parse(longp, 128, &p, &why), 0);
	assert_int_equal(p.nseg, 64);
	assert_int_equal(ftp_path_parse(longp, 130, &p, &why), -1);
	assert_non_null(strstr(why, "too many"));
	longp[0] = '/';
	memset(longp + 1, 'y', sizeof(longp) - 1);
	assert_int_equal(ftp_path_parse(longp, sizeof(longp), &p, &why), -1);
	assert_string_equal(why, "path too long");
}

static void
test_userinfo_basic(void **state)
{
	char u[64], p[64];
	int hp;

	(void)state;
	assert_int_equal(ftp_userinfo_parse("alice:s%3Acret", 14, u, sizeof(u), p, sizeof(p), &hp),
	                 0);
	assert_string_equal(u, "alice");
	assert_string_equal(p, "s:cret");
	assert_int_equal(hp, 1);
	assert_int_equal(ftp_userinfo_parse("bob", 3, u, sizeof(u), p, sizeof(p), &hp), 0);
	assert_string_equal(u, "bob");
	assert_string_equal(p, "");
	assert_int_equal(hp, 0);
	assert_int_equal(ftp_userinfo_parse("bob:", 4, u, sizeof(u), p, sizeof(p), &hp), 0);
	assert_int_equal(hp, 1);
	assert_string_equal(p, "");
	assert_int_equal(ftp_userinfo_parse("a%0d%0aUSER%20x:p", 17, u, sizeof(u), p, sizeof(p),
	                                    &hp), -1);
	assert_int_equal(ftp_userinfo_parse("a:p%0a", 6, u, sizeof(u), p, sizeof(p), &hp), -1);
	assert_int_equal(ftp_userinfo_parse("abcdef:p", 8, u, 4, p, sizeof(p), &hp), -1);
	/* "alice:open sesame" */
	assert_int_equal(ftp_basic_parse("Basic YWxpY2U6b3BlbiBzZXNhbWU=", 30, u, sizeof(u), p,
	                                 sizeof(p)), 0);
	assert_string_equal(u, "alice");
	assert_string_equal(p, "open sesame");
	/* "u:p:q", the scheme in other case, two spaces before the credentials */
	assert_int_equal(ftp_basic_parse("basic  dTpwOnE=", 15, u, sizeof(u), p, sizeof(p)), 0);
	assert_string_equal(u, "u");
	assert_string_equal(p, "p:q");
	assert_int_equal(ftp_basic_parse("Basic dXNlcg==", 14, u, sizeof(u), p, sizeof(p)), -1);
	assert_int_equal(ftp_basic_parse("Bearer dTpw", 11, u, sizeof(u), p, sizeof(p)), -1);
	assert_int_equal(ftp_basic_parse("Basic dT!w", 10, u, sizeof(u), p, sizeof(p)), -1);
	/* "u:a\r\nb" */
	assert_int_equal(ftp_basic_parse("Basic dTphDQpi", 14, u, sizeof(u), p, sizeof(p)), -1);
	assert_int_equal(ftp_basic_parse("Basic YWxpY2U6b3BlbiBzZXNhbWU=", 30, u, sizeof(u), p, 4),
	                 -1);
}

/* ---- media types and validators ---- */

static void
test_mime_and_etag(void **state)
{
	char path[] = "/tmp/test_ftplist_mimeXXXXXX";
	int fd = mkstemp(path), loaded = -1;
	FILE *f;
	char tag[64];

	(void)state;
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs("# comment line\n\napplication/pdf\t\t\t\tpdf\n"
	      "text/plain\t\t\t\t\ttxt asc text # trailing\r\n"
	      "application/x-first\tdup\n"
	      "application/x-second\tdup\n"
	      "image/jpeg jpeg jpg JPE\n"
	      "application/x-noext\n", f);
	fclose(f);
	assert_string_equal(ftp_mime_type("a.pdf", 5), "application/octet-stream");
	assert_int_equal(ftp_mime_load(path, &loaded), 0);
	assert_int_equal(loaded, 1);
	assert_string_equal(ftp_mime_type("report.PDF", 10), "application/pdf");
	assert_string_equal(ftp_mime_type("a.b.txt", 7), "text/plain");
	assert_string_equal(ftp_mime_type("x.text", 6), "text/plain");
	assert_string_equal(ftp_mime_type("x.jpe", 5), "image/jpeg");
	assert_string_equal(ftp_mime_type("x.dup", 5), "application/x-first");
	assert_string_equal(ftp_mime_type("x.trailing", 10), "application/octet-stream");
	assert_string_equal(ftp_mime_type("x.unknown", 9), "application/octet-stream");
	assert_string_equal(ftp_mime_type("pdf", 3), "application/octet-stream");
	assert_string_equal(ftp_mime_type(".pdf", 4), "application/octet-stream");
	assert_string_equal(ftp_mime_type("a.pdf/b", 7), "application/octet-stream");
	assert_string_equal(ftp_mime_type("a.", 2), "application/octet-stream");
	ftp_mime_free();
	assert_string_equal(ftp_mime_type("a.pdf", 5), "application/octet-stream");
	unlink(path);
	assert_int_equal(ftp_mime_load(path, &loaded), 0);
	assert_int_equal(loaded, 0);
	/* the system's table when the package is there (media-types) */
	if (access("/etc/mime.types", R_OK) == 0) {
		assert_int_equal(ftp_mime_load("/etc/mime.types", &loaded), 0);
		assert_int_equal(loaded, 1);
		assert_string_equal(ftp_mime_type("x.html", 6), "text/html");
		assert_string_equal(ftp_mime_type("x.tar.gz", 8), "application/gzip");
		ftp_mime_free();
	}
	ftp_etag(tag, sizeof(tag), 1234, 1796387696);
	assert_string_equal(tag, "\"ftp-4d2-6b12b370\"");
	ftp_etag(tag, 8, 1234, 1796387696);
	assert_string_equal(tag, "\"ftp-4d");
}

/* ---- listings ---- */

/* 2026-12-05 00:30:00 UTC: "now" for the listings without a year */
#define TF_NOW 1796430600

struct list_case {
	const char *line;
	int rc;
	enum ftp_ent_type type;
	const char *name;
	const char *target;
	int64_t size, mtime;
	int precision;
};

static const struct list_case list_cases[] = {
	/* vsftpd (numeric owners, "Mon DD HH:MM" within six months) */
	{ "-rw-r--r--    1 0        0            1234 Dec 04 12:34 file", FTPL_ENTRY,
	  FTP_ENT_FILE, "file", NULL, 1234, 1796387640, 2 },
	{ "drwxr-xr-x    2 0        0            4096 Nov 30 09:00 pub", FTPL_ENTRY, FTP_ENT_DIR,
	  "pub", NULL, -1, 1796029200, 2 },
	{ "-rw-r--r--    1 0        0       104857600 Jun 01  2025 100M.bin\r", FTPL_ENTRY,
	  FTP_ENT_FILE, "100M.bin", NULL, 104857600, 1748736000, 1 },
	/* the year: the most recent date not more than a day after now */
	{ "-rw-r--r--    1 0        0               1 Dec 06 10:00 tomorrow-ish", FTPL_ENTRY,
	  FTP_ENT_FILE, "tomorrow-ish", NULL, 1, 1765015200, 2 },
	{ "-rw-r--r--    1 0        0               1 Dec 05 20:00 later-today", FTPL_ENTRY,
	  FTP_ENT_FILE, "later-today", NULL, 1, 1796500800, 2 },
	{ "-rw-r--r--    1 0        0               1 Jan 02 10:00 new-year", FTPL_ENTRY,
	  FTP_ENT_FILE, "new-year", NULL, 1, 1767348000, 2 },
	{ "-rw-r--r--    1 0        0               1 Feb 29 10:00 leap", FTPL_ENTRY,
	  FTP_ENT_FILE, "leap", NULL, 1, 1709200800, 2 },
	/* GNU ls -l: named owners, day padded, year right-aligned, names with blanks */
	{ "-rw-r--r-- 1 alice users 1234 Dec  4  2024 name with spaces", FTPL_ENTRY,
	  FTP_ENT_FILE, "name with spaces", NULL, 1234, 1733270400, 1 },
	{ "-rw-r--r-- 1 alice users 5 Dec  4  2024  leading blank", FTPL_ENTRY, FTP_ENT_FILE,
	  " leading blank", NULL, 5, 1733270400, 1 },
	{ "-rw-r--r--+ 1 alice users 5 Dec  4 12:34 acl", FTPL_ENTRY, FTP_ENT_FILE, "acl", NULL,
	  5, 1796387640, 2 },
	{ "-rw-r--r--. 1 alice users 5 2024-12-04 12:34 iso", FTPL_ENTRY, FTP_ENT_FILE, "iso",
	  NULL, 5, 1733315640, 2 },
	{ "-rw-r--r-- 1 alice 5 Dec  4  2024 no group", FTPL_ENTRY, FTP_ENT_FILE, "no group",
	  NULL, 5, 1733270400, 1 },
	/* ProFTPD, Pure-FTPd */
	{ "-rw-r--r--   1 ftp      ftp          1234 Dec  4 12:34 readme.txt", FTPL_ENTRY,
	  FTP_ENT_FILE, "readme.txt", NULL, 1234, 1796387640, 2 },
	{ "drwxr-xr-x    3 1000       1000             4096 Dec  4 12:34 incoming", FTPL_ENTRY,
	  FTP_ENT_DIR, "incoming", NULL, -1, 1796387640, 2 },
	/* symlinks */
	{ "lrwxrwxrwx 1 0 0 7 Jan 01 2025 link -> target", FTPL_ENTRY, FTP_ENT_LINK, "link",
	  "target", 7, 1735689600, 1 },
	{ "lrwxrwxrwx    1 0        0              14 Dec 04 12:34 a -> b -> c", FTPL_ENTRY,
	  FTP_ENT_LINK, "a", "b -> c", 14, 1796387640, 2 },
	{ "-rw-r--r--    1 0        0              14 Dec 04 12:34 not -> link", FTPL_ENTRY,
	  FTP_ENT_FILE, "not -> link", NULL, 14, 1796387640, 2 },
	/* device files: "major, minor" where the size is */
	{ "crw-rw-rw-    1 0        0          1,   3 Dec 04 12:34 null", FTPL_ENTRY,
	  FTP_ENT_UNKNOWN, "null", NULL, -1, 1796387640, 2 },
	{ "brw-rw----    1 0        6          8,   0 Jan 01  2025 sda", FTPL_ENTRY,
	  FTP_ENT_UNKNOWN, "sda", NULL, -1, 1735689600, 1 },
	{ "prw-r--r--    1 0        0               0 Dec 04 12:34 fifo", FTPL_ENTRY,
	  FTP_ENT_UNKNOWN, "fifo", NULL, 0, 1796387640, 2 },
	/* pyftpdlib's LIST */
	{ "-rw-r--r--   1 user     user         1234 Dec 04 12:34 file.txt", FTPL_ENTRY,
	  FTP_ENT_FILE, "file.txt", NULL, 1234, 1796387640, 2 },
	{ "-rw-r--r--   1 user     user         1234 Dec 04  2024 old.txt", FTPL_ENTRY,
	  FTP_ENT_FILE, "old.txt", NULL, 1234, 1733270400, 1 },
	/* IIS (DOS style), two-digit and four-digit years, 12- and 24-hour clocks */
	{ "12-04-26  01:23PM       <DIR>          My Folder", FTPL_ENTRY, FTP_ENT_DIR,
	  "My Folder", NULL, -1, 1796390580, 2 },
	{ "12-04-26  01:23AM                 1234 report.pdf", FTPL_ENTRY, FTP_ENT_FILE,
	  "report.pdf", NULL, 1234, 1796347380, 2 },
	{ "12-04-2026  01:23PM                 1234 report 2026.pdf", FTPL_ENTRY, FTP_ENT_FILE,
	  "report 2026.pdf", NULL, 1234, 1796390580, 2 },
	{ "12-04-2026 13:23 1234 name", FTPL_ENTRY, FTP_ENT_FILE, "name", NULL, 1234,
	  1796390580, 2 },
	{ "12-04-2026 12:00AM 0 midnight", FTPL_ENTRY, FTP_ENT_FILE, "midnight", NULL, 0,
	  1796342400, 2 },
	{ "12-04-99  01:23PM  7 y2k", FTPL_ENTRY, FTP_ENT_FILE, "y2k", NULL, 7, 944313780, 2 },
	/* skipped */
	{ "total 12", FTPL_SKIP, 0, NULL, NULL, 0, 0, 0 },
	{ "", FTPL_SKIP, 0, NULL, NULL, 0, 0, 0 },
	{ "  \r", FTPL_SKIP, 0, NULL, NULL, 0, 0, 0 },
	{ "drwxr-xr-x    2 0        0            4096 Dec 04 12:34 .", FTPL_SKIP, 0, NULL, NULL,
	  0, 0, 0 },
	{ "drwxr-xr-x    2 0        0            4096 Dec 04 12:34 ..", FTPL_SKIP, 0, NULL, NULL,
	  0, 0, 0 },
	/* in neither form: shown as text */
	{ "hello world", FTPL_TEXT, 0, NULL, NULL, 0, 0, 0 },
	{ "-rw-r--r-- garbage after the mode", FTPL_TEXT, 0, NULL, NULL, 0, 0, 0 },
	{ "-rw-r--r--    1 0 0 1234 Dec 04 12:34", FTPL_TEXT, 0, NULL, NULL, 0, 0, 0 },
	{ "-rw-r--r--    1 0 0 1234 Dec 32 12:34 bad-day", FTPL_TEXT, 0, NULL, NULL, 0, 0, 0 },
	{ "-rw-r--r--    1 0 0 1234 Dec 04 25:34 bad-hour", FTPL_TEXT, 0, NULL, NULL, 0, 0, 0 },
	{ "xrw-r--r--    1 0 0 1234 Dec 04 12:34 bad-mode", FTPL_TEXT, 0, NULL, NULL, 0, 0, 0 },
	{ "13-04-26  01:23PM  1 bad-month", FTPL_TEXT, 0, NULL, NULL, 0, 0, 0 },
	{ "12-04-26  13:23PM  1 bad-pm", FTPL_TEXT, 0, NULL, NULL, 0, 0, 0 },
	{ "12-04-26  01:23PM  12x bad-size", FTPL_TEXT, 0, NULL, NULL, 0, 0, 0 },
	{ "226 Transfer complete.", FTPL_TEXT, 0, NULL, NULL, 0, 0, 0 },
};

static void
tf_check_entry(const struct list_case *c, int rc, const struct ftp_entry *e)
{
	if (rc != c->rc)
		fail_msg("%s: rc %d, want %d", c->line, rc, c->rc);
	if (rc == FTPL_TEXT) {
		assert_int_equal(e->parsed, 0);
		assert_ptr_equal(e->raw, c->line);
		return;
	}
	if (rc != FTPL_ENTRY)
		return;
	assert_int_equal(e->parsed, 1);
	if (e->type != c->type || e->name_len != strlen(c->name) ||
	    memcmp(e->name, c->name, e->name_len) != 0 || e->size != c->size ||
	    e->mtime != c->mtime || e->mtime_precision != c->precision)
		fail_msg("%s: type %d name \"%.*s\" size %lld mtime %lld/%d", c->line, e->type,
		         (int)e->name_len, e->name, (long long)e->size, (long long)e->mtime,
		         e->mtime_precision);
	if (c->target == NULL)
		assert_null(e->target);
	else
		assert_true(e->target_len == strlen(c->target) &&
		            memcmp(e->target, c->target, e->target_len) == 0);
}

static void
test_list_lines_from_real_servers(void **state)
{
	struct ftp_entry e;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(list_cases) / sizeof(list_cases[0]); i++) {
		const struct list_case *c = &list_cases[i];

		tf_check_entry(c, ftp_list_parse_line(c->line, strlen(c->line), TF_NOW, &e), &e);
	}
}

static const struct list_case mlsd_cases[] = {
	{ "type=file;size=1234;modify=20261204123456;perm=r; name", FTPL_ENTRY, FTP_ENT_FILE,
	  "name", NULL, 1234, 1796387696, 3 },
	{ "type=dir;sizd=4096;modify=20261204123456;perm=flcdmpe; sub dir", FTPL_ENTRY,
	  FTP_ENT_DIR, "sub dir", NULL, -1, 1796387696, 3 },
	/* pyftpdlib's order and unique fact; a name with "; " in it */
	{ "type=file;size=5;perm=r;modify=20261204123456.789;unique=803g2a; x; y z\r",
	  FTPL_ENTRY, FTP_ENT_FILE, "x; y z", NULL, 5, 1796387696, 3 },
	{ "Type=File;Size=7;Modify=20261204123456; upper", FTPL_ENTRY, FTP_ENT_FILE, "upper",
	  NULL, 7, 1796387696, 3 },
	{ "type=OS.unix=slink:/srv/target;modify=20261204123456; lnk", FTPL_ENTRY, FTP_ENT_LINK,
	  "lnk", "/srv/target", -1, 1796387696, 3 },
	{ "size=3; no-type", FTPL_ENTRY, FTP_ENT_UNKNOWN, "no-type", NULL, 3, -1, 0 },
	{ "type=file;modify=garbage; bad-date", FTPL_ENTRY, FTP_ENT_FILE, "bad-date", NULL, -1,
	  -1, 0 },
	{ "type=cdir;modify=20261204123456;perm=flcdmpe; .", FTPL_SKIP, 0, NULL, NULL, 0, 0, 0 },
	{ "type=pdir;modify=20261204123456;perm=flcdmpe; ..", FTPL_SKIP, 0, NULL, NULL, 0, 0, 0 },
	{ "type=dir; ..", FTPL_SKIP, 0, NULL, NULL, 0, 0, 0 },
	{ "", FTPL_SKIP, 0, NULL, NULL, 0, 0, 0 },
	{ "no separator line", FTPL_TEXT, 0, NULL, NULL, 0, 0, 0 },
	{ "type=file;size=1", FTPL_TEXT, 0, NULL, NULL, 0, 0, 0 },
	{ "type=file;size=1; ", FTPL_TEXT, 0, NULL, NULL, 0, 0, 0 },
};

static void
test_mlsd_lines(void **state)
{
	struct ftp_entry e;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(mlsd_cases) / sizeof(mlsd_cases[0]); i++) {
		const struct list_case *c = &mlsd_cases[i];

		tf_check_entry(c, ftp_mlsd_parse_line(c->line, strlen(c->line), &e), &e);
	}
}

static int
tj_valid(const struct buf *b)
{
	return tj_valid_span(buf_head(b), buf_head(b) + buf_len(b));
}

/* the buffer as a C string */
static const char *
tf_str(struct buf *b)
{
	assert_int_equal(buf_append(b, "", 1), 0);
	b->end--;
	return buf_head(b);
}

static void
test_json_check_catches_errors(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 1 << 16);
	assert_int_equal(buf_printf(&b, "{\"a\":[1,null,\"x\\u00e9\"],\"b\":{}}"), 0);
	assert_true(tj_valid(&b));
	buf_consume(&b, buf_len(&b));
	assert_int_equal(buf_printf(&b, "{\"a\":[1,],\"b\":{}}"), 0);
	assert_false(tj_valid(&b));
	buf_consume(&b, buf_len(&b));
	assert_int_equal(buf_printf(&b, "{\"a\":\"\x01\"}"), 0);
	assert_false(tj_valid(&b));
	buf_fini(&b);
}

static const char tf_vsftpd_listing[] =
	"drwxr-xr-x    2 0        0            4096 Nov 30 09:00 pub\r\n"
	"-rw-r--r--    1 0        0            1234 Dec 04 12:34 zeta.txt\r\n"
	"-rw-r--r--    1 0        0               5 Dec 04 12:34 <script>alert(1)</script>\r\n"
	"-rw-r--r--    1 0        0               6 Dec 04 12:34 a&b \"q\" 'x'\r\n"
	"-rw-r--r--    1 0        0               7 Dec 04 12:34 a #?%; b.txt\r\n"
	"-rw-r--r--    1 0        0               8 Dec 04 12:34 caf\xe9-latin1\r\n"
	"-rw-r--r--    1 0        0               9 Dec 04 12:34 caf\xc3\xa9-utf8\r\n"
	"drwxr-xr-x    2 0        0            4096 Dec 04 12:34 Alpha dir\r\n"
	"lrwxrwxrwx    1 0        0               4 Dec 04 12:34 latest -> pub/<b>\r\n"
	"this line <is> garbage\r\n"
	"total 12\r\n"
	"-rw-r--r--    1 0        0              10 Dec 04 12:34 no-newline-at-end";

static struct ftp_listing *
tf_listing(const char *url, int mlsd, const char *data, size_t len, size_t step)
{
	struct ftp_listing *l = ftp_listing_new(url, mlsd, TF_NOW, 1 << 20);
	const char *why = NULL;
	size_t off;

	assert_non_null(l);
	for (off = 0; off < len; off += step) {
		size_t k = len - off < step ? len - off : step;

		assert_int_equal(ftp_listing_feed(l, data + off, k, &why), 0);
	}
	assert_int_equal(ftp_listing_end(l, &why), 0);
	return l;
}

static void
test_listing_html_sorted_escaped_linked(void **state)
{
	struct ftp_listing *l;
	struct buf b;
	const char *h, *p1, *p2, *p3, *p4;
	size_t step;

	(void)state;
	for (step = 1; step < 80; step += 13) {
		l = tf_listing("ftp://mirror.test/pub/<x>/", 0, tf_vsftpd_listing,
		               sizeof(tf_vsftpd_listing) - 1, step);
		assert_int_equal(ftp_listing_count(l), 11);
		buf_init(&b, 1 << 20);
		assert_int_equal(ftp_listing_html(l, &b), 0);
		h = tf_str(&b);
		/* escaped everywhere, no script, no external resource */
		assert_null(strstr(h, "<script"));
		assert_null(strstr(h, "<x>"));
		assert_null(strstr(h, "<b>"));
		assert_null(strstr(h, "<is>"));
		assert_null(strstr(h, " src="));
		assert_null(strstr(h, "<link"));
		assert_null(strstr(h, "url("));
		assert_null(strstr(h, "@import"));
		assert_non_null(strstr(h, "<h1>Index of ftp://mirror.test/pub/&lt;x&gt;/</h1>"));
		assert_non_null(strstr(h, "&lt;script&gt;alert(1)&lt;/script&gt;"));
		assert_non_null(strstr(h, "a&amp;b &quot;q&quot; &#39;x&#39;"));
		assert_non_null(strstr(h, "pub/&lt;x&gt;/"));
		assert_non_null(strstr(h, "this line &lt;is&gt; garbage"));
		/* hrefs: relative, percent-encoded, "/" after a directory */
		assert_non_null(strstr(h, "href=\"a%20%23%3F%25%3B%20b.txt\""));
		assert_non_null(strstr(h, "href=\"%3Cscript%3Ealert%281%29%3C%2Fscript%3E\""));
		assert_non_null(strstr(h, "href=\"Alpha%20dir/\""));
		assert_non_null(strstr(h, "href=\"pub/\""));
		assert_non_null(strstr(h, "href=\"latest\""));
		assert_non_null(strstr(h, "href=\"../\""));
		assert_non_null(strstr(h, "href=\"no-newline-at-end\""));
		/* non-UTF-8 shown as U+FFFD, UTF-8 kept */
		assert_non_null(strstr(h, "caf\xef\xbf\xbd-latin1"));
		assert_non_null(strstr(h, "caf\xc3\xa9-utf8"));
		assert_non_null(strstr(h, "href=\"caf%E9-latin1\""));
		/* size, date (UTC), type */
		assert_non_null(strstr(h, ">1234</td><td>2026-12-04 12:34</td><td>file<"));
		assert_non_null(strstr(h, " &rarr; pub/&lt;b&gt;</td>"));
		/* directories first, then by name; the unparsed line after the table */
		p1 = strstr(h, "href=\"Alpha%20dir/\"");
		p2 = strstr(h, "href=\"pub/\"");
		p3 = strstr(h, "href=\"%3Cscript");
		p4 = strstr(h, "href=\"zeta.txt\"");
		assert_true(p1 < p2 && p2 < p3 && p3 < p4);
		assert_true(strstr(h, "</table>") < strstr(h, "this line &lt;is"));
		assert_null(strstr(h, "total 12"));
		buf_fini(&b);
		ftp_listing_free(l);
	}
	/* no parent link at the root */
	l = tf_listing("ftp://mirror.test/", 0, tf_vsftpd_listing, sizeof(tf_vsftpd_listing) - 1,
	               4096);
	buf_init(&b, 1 << 20);
	assert_int_equal(ftp_listing_html(l, &b), 0);
	assert_null(strstr(tf_str(&b), "href=\"../\""));
	buf_fini(&b);
	/* an output buffer too small is an error, not a cut page */
	buf_init(&b, 512);
	assert_int_equal(ftp_listing_html(l, &b), -1);
	buf_fini(&b);
	ftp_listing_free(l);
}

static void
test_listing_json_valid_and_escaped(void **state)
{
	struct ftp_listing *l;
	struct buf b;
	const char *j;

	(void)state;
	l = tf_listing("ftp://mirror.test/pub/\"q\"/", 0, tf_vsftpd_listing,
	               sizeof(tf_vsftpd_listing) - 1, 7);
	buf_init(&b, 1 << 20);
	assert_int_equal(ftp_listing_json(l, &b), 0);
	assert_true(tj_valid(&b));
	j = tf_str(&b);
	assert_non_null(strstr(j, "\"url\":\"ftp://mirror.test/pub/\\\"q\\\"/\""));
	assert_non_null(strstr(j, "{\"name\":\"zeta.txt\",\"type\":\"file\",\"size\":1234,"
	                          "\"modified\":\"2026-12-04T12:34:00Z\",\"href\":\"zeta.txt\"}"));
	assert_non_null(strstr(j, "{\"name\":\"pub\",\"type\":\"dir\",\"size\":null,"
	                          "\"modified\":\"2026-11-30T09:00:00Z\",\"href\":\"pub/\"}"));
	assert_non_null(strstr(j, "\"name\":\"latest\",\"type\":\"link\",\"size\":4,"));
	assert_non_null(strstr(j, "\"target\":\"pub/<b>\""));
	assert_non_null(strstr(j, "\"name\":\"caf\\uFFFD-latin1\""));
	assert_non_null(strstr(j, "\"name\":\"caf\xc3\xa9-utf8\""));
	assert_non_null(strstr(j, "\"name\":\"a&b \\\"q\\\" 'x'\""));
	assert_non_null(strstr(j, "\"unparsed\":[\"this line <is> garbage\"]"));
	buf_fini(&b);
	ftp_listing_free(l);
}

static void
test_listing_mlsd_and_iis(void **state)
{
	static const char mlsd[] =
		"type=cdir;modify=20261204123456;perm=flcdmpe; .\r\n"
		"type=pdir;modify=20261204123456;perm=flcdmpe; ..\r\n"
		"type=file;size=1234;modify=20261204123456;perm=r; b.bin\r\n"
		"type=dir;modify=20261204123456;perm=flcdmpe; a-dir\r\n"
		"type=file;size=1;modify=20261204123456;perm=r; ctl\x01name\r\n";
	static const char iis[] =
		"12-04-26  01:23PM       <DIR>          My Folder\r\n"
		"12-04-26  01:23PM                 1234 report.pdf\r\n";
	struct ftp_listing *l = tf_listing("ftp://m.test/x/", 1, mlsd, sizeof(mlsd) - 1, 3);
	struct buf b;
	const char *h;

	(void)state;
	assert_int_equal(ftp_listing_count(l), 3);
	buf_init(&b, 1 << 20);
	assert_int_equal(ftp_listing_json(l, &b), 0);
	assert_true(tj_valid(&b));
	h = tf_str(&b);
	assert_non_null(strstr(h, "\"modified\":\"2026-12-04T12:34:56Z\""));
	assert_non_null(strstr(h, "\"name\":\"ctl\\u0001name\""));
	assert_true(strstr(h, "a-dir") < strstr(h, "b.bin"));
	buf_consume(&b, buf_len(&b));
	assert_int_equal(ftp_listing_html(l, &b), 0);
	h = tf_str(&b);
	assert_non_null(strstr(h, ">2026-12-04 12:34:56<"));
	assert_non_null(strstr(h, "ctl\xef\xbf\xbdname"));
	buf_fini(&b);
	ftp_listing_free(l);
	l = tf_listing("ftp://m.test/", 0, iis, sizeof(iis) - 1, 5);
	buf_init(&b, 1 << 20);
	assert_int_equal(ftp_listing_html(l, &b), 0);
	h = tf_str(&b);
	assert_non_null(strstr(h, "href=\"My%20Folder/\">My Folder/</a>"));
	assert_non_null(strstr(h, ">1234</td><td>2026-12-04 13:23</td><td>file<"));
	buf_fini(&b);
	ftp_listing_free(l);
}

static void
test_listing_bounds(void **state)
{
	static char line[FTP_LINE_MAX + 10];
	struct ftp_listing *l;
	const char *why = NULL;
	size_t i;

	(void)state;
	/* a never-ending listing */
	l = ftp_listing_new("ftp://m.test/", 0, TF_NOW, 100000);
	assert_non_null(l);
	for (i = 0; i < 10000; i++)
		if (ftp_listing_feed(l, "-rw-r--r-- 1 0 0 1 Dec 04 12:34 f\r\n", 35, &why) < 0)
			break;
	assert_true(i < 10000);
	assert_string_equal(why, "listing larger than 100000 bytes");
	/* it stays failed */
	assert_int_equal(ftp_listing_feed(l, "x\n", 2, &why), -1);
	assert_int_equal(ftp_listing_end(l, &why), -1);
	ftp_listing_free(l);
	/* the bytes count as they arrive, before a line is complete */
	l = ftp_listing_new("ftp://m.test/", 0, TF_NOW, 100);
	memset(line, 'x', 150);
	assert_int_equal(ftp_listing_feed(l, line, 100, &why), 0);
	assert_int_equal(ftp_listing_feed(l, line, 1, &why), -1);
	assert_string_equal(why, "listing larger than 100 bytes");
	ftp_listing_free(l);
	/* very short lines count their index against the cap too */
	l = ftp_listing_new("ftp://m.test/", 0, TF_NOW, 100000);
	for (i = 0; i < 100000; i++)
		if (ftp_listing_feed(l, "a\n", 2, &why) < 0)
			break;
	assert_true(i < 100000 / 16);
	ftp_listing_free(l);
	/* an endless line, fed in pieces and at the end without its line end */
	memset(line, 'x', sizeof(line));
	l = ftp_listing_new("ftp://m.test/", 0, TF_NOW, 1 << 20);
	assert_int_equal(ftp_listing_feed(l, line, 1000, &why), 0);
	assert_int_equal(ftp_listing_feed(l, line, 1000, &why), 0);
	assert_int_equal(ftp_listing_feed(l, line, 1000, &why), -1);
	assert_string_equal(why, "listing line too long");
	ftp_listing_free(l);
	/* a line just at the cap is kept */
	l = ftp_listing_new("ftp://m.test/", 0, TF_NOW, 1 << 20);
	line[FTP_LINE_MAX] = '\n';
	assert_int_equal(ftp_listing_feed(l, line, FTP_LINE_MAX + 1, &why), 0);
	assert_int_equal(ftp_listing_end(l, &why), 0);
	assert_int_equal(ftp_listing_count(l), 1);
	ftp_listing_free(l);
	/* empty lines first, then one entry */
	l = ftp_listing_new("ftp://m.test/", 0, TF_NOW, 1 << 20);
	assert_int_equal(ftp_listing_feed(l, "\n\r\n", 3, &why), 0);
	assert_int_equal(ftp_listing_feed(l, "12-04-26  01:23PM  7 f\n", 23, &why), 0);
	assert_int_equal(ftp_listing_end(l, &why), 0);
	assert_int_equal(ftp_listing_count(l), 1);
	ftp_listing_free(l);
	/* an empty listing renders */
	l = ftp_listing_new("ftp://m.test/d/", 1, TF_NOW, 1 << 20);
	assert_int_equal(ftp_listing_end(l, &why), 0);
	assert_int_equal(ftp_listing_count(l), 0);
	{
		struct buf b;

		buf_init(&b, 1 << 16);
		assert_int_equal(ftp_listing_json(l, &b), 0);
		assert_string_equal(tf_str(&b), "{\"url\":\"ftp://m.test/d/\",\"entries\":[],\n"
		                                "\"unparsed\":[]}\n");
		buf_fini(&b);
	}
	ftp_listing_free(l);
	ftp_listing_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_single_line),
		cmocka_unit_test(test_reply_multi_line_any_split),
		cmocka_unit_test(test_reply_last_line_quoted_clean),
		cmocka_unit_test(test_reply_errors),
		cmocka_unit_test(test_pasv_epsv),
		cmocka_unit_test(test_mdtm_size),
		cmocka_unit_test(test_eprt_port),
		cmocka_unit_test(test_path_parse),
		cmocka_unit_test(test_userinfo_basic),
		cmocka_unit_test(test_mime_and_etag),
		cmocka_unit_test(test_list_lines_from_real_servers),
		cmocka_unit_test(test_mlsd_lines),
		cmocka_unit_test(test_json_check_catches_errors),
		cmocka_unit_test(test_listing_html_sorted_escaped_linked),
		cmocka_unit_test(test_listing_json_valid_and_escaped),
		cmocka_unit_test(test_listing_mlsd_and_iis),
		cmocka_unit_test(test_listing_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
