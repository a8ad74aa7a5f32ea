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
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/buf.h"
#include "daemon/ftplist.h"

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
	assert_int_equal(tf_feed(&r, "331 Please specify the password.\n230 x\r\n", 100, &used, &why),
	                 FTPR_DONE);
	assert_int_equal(r.code, 331);
	assert_int_equal(used, 33);
}

static void
test_reply_multi_line_any_split(void **state)
{
	static struct ftp_reply r;
	const char *s = "211-Features:\r\n EPRT\r\n EPSV\r\n MDTM\r\n MLST type*;size*;modify*;\r\n"
	                "211-not the end\r\n REST STREAM\r\n SIZE\r\n UTF8\r\n211 End\r\n226 next\r\n";
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
	assert_int_equal(ftp_parse_pasv("227 Entering Passive Mode (256,0,0,1,1,1)", &port, &a), -1);
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
	/* "u:p:q" without padding, scheme in other case */
	assert_int_equal(ftp_basic_parse("basic  dTpwOnE", 14, u, sizeof(u), p, sizeof(p)), 0);
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
