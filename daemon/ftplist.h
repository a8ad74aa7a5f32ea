/*
 * ftplist.h - the FTP gateway's pure parts (issue 12): control-channel replies, the numbers
 * in them, ftp:// paths and logins, LIST and MLSD listings, the listing's HTML and JSON, media
 * types, validators. No I/O, no globals except the media-type table (ftp_mime_load, once,
 * before the workers start); every function is unit-tested (tests/unit/test_ftplist.c) and
 * the parsers have a libFuzzer harness (tests/fuzz/fuzz_ftplist.c). daemon/ftp.c drives them.
 *
 * Bounds: a control line is at most FTP_LINE_MAX bytes, a reply at most FTP_REPLY_MAX (the
 * text kept for quoting and for FEAT), a listing at most the cap given to ftp_listing_new:
 * beyond any of them the parser says so (an error the gateway turns into a 502 page).
 */
#ifndef GH_FTPLIST_H
#define GH_FTPLIST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct buf;

/* ---- control-channel replies (RFC 959 4.2, multi-line "123-" ... "123 ") ---- */

#define FTP_LINE_MAX 2048
#define FTP_REPLY_MAX 16384

enum { FTPR_AGAIN = 0, FTPR_DONE = 1, FTPR_ERR = -1 };

struct ftp_reply {
	int code;                   /* 100..599 once FTPR_DONE */
	char text[FTP_REPLY_MAX];   /* every line of the reply, CRLFs as "\n", NUL-terminated */
	size_t text_len;
	/* parser state */
	int state, multi;
	size_t line_len;
	char line_code[4];
};

void ftp_reply_init(struct ftp_reply *r);
/* Feed control-channel bytes. Returns FTPR_DONE with *consumed bytes used (the rest is the
 * next reply; call ftp_reply_init before feeding it), FTPR_AGAIN (all consumed, more
 * needed), or FTPR_ERR with *reason ("control line too long", "reply too long", "malformed
 * reply"). Lines end in CRLF or a bare LF; a NUL is an error. */
int ftp_reply_feed(struct ftp_reply *r, const char *in, size_t len, size_t *consumed,
                   const char **reason);
/* The reply's last line without its code, for quoting on a page ("Failed to open file."),
 * into out (NUL-terminated, control characters replaced by spaces). */
void ftp_reply_last_line(const struct ftp_reply *r, char *out, size_t n);

/* These parsers take the reply's text (r->text, its "227 " code skipped) or the text after
 * the code. 227 "Entering Passive Mode (h1,h2,h3,h4,p1,p2)": the port; *addr4 the address the
 * server named (for the log only: the gateway connects to the control connection's peer).
 * 0 or -1. */
int ftp_parse_pasv(const char *text, unsigned *port, uint32_t *addr4);
/* 229 "Entering Extended Passive Mode (|||6446|)": the port. 0 or -1. */
int ftp_parse_epsv(const char *text, unsigned *port);
/* 213 "20261204123456" or "20261204123456.123" (UTC) to Unix seconds. 0 or -1. */
int ftp_parse_mdtm(const char *text, int64_t *t);
/* 213 "12345": the size. 0 or -1 (no digits, overflow). */
int ftp_parse_size(const char *text, int64_t *size);
/* Does a 211 FEAT reply announce feature ("MLST", "EPSV", "SIZE", "MDTM", "REST STREAM",
 * "UTF8")? Matched case-insensitively as the first word(s) of a feature line. 1 or 0. */
int ftp_feat_has(const char *feat_text, const char *feature);
/* The argument of EPRT ("|1|127.0.0.1|40001|", "|2|::1|40001|") and of PORT
 * ("127,0,0,1,156,65") for a local listening address. 0, or -1 (does not fit, PORT of v6). */
int ftp_fmt_eprt(char *out, size_t n, const struct sockaddr_storage *ss);
int ftp_fmt_port(char *out, size_t n, const struct sockaddr_storage *ss);

/* ---- ftp:// URLs (RFC 1738 3.2.2, RFC 3986) ---- */

#define FTP_MAX_SEGS 64

struct ftp_path {
	char *seg[FTP_MAX_SEGS];    /* decoded directory segments, then the file name (if any) */
	size_t nseg;
	int is_dir;                 /* the path ended in "/" (or was empty): no file name */
	char type;                  /* 'a', 'i', 'd' from ";type=", 0 when absent */
	char mem[4096];             /* the decoded segments live here */
};
/* Parse an ftp URL's path ("/pub/a%20b/file.txt;type=i", query and fragment excluded by the
 * caller). Each segment percent-decoded; a decoded segment containing CR, LF or NUL, or a
 * segment that is "." or ".." after decoding (or holds one between encoded slashes: "%2F" is
 * allowed, for RFC 1738's absolute paths), or too many or too long, is refused with
 * *reason (the gateway answers 400). The last segment is the file unless the path ends in
 * "/". 0 or -1. */
int ftp_path_parse(const char *path, size_t len, struct ftp_path *p, const char **reason);

/* Split and percent-decode "user[:password]" (a URL's userinfo) into user and pass (pass ""
 * when absent, *has_pass says whether there was one). CR/LF/NUL after decoding is refused.
 * 0 or -1. */
int ftp_userinfo_parse(const char *ui, size_t n, char *user, size_t ucap, char *pass,
                       size_t pcap, int *has_pass);
/* "Basic dXNlcjpwYXNz" (an Authorization value) into user and pass, decoded by webui/auth.c's
 * auth_basic_decode (strict, padded base64); a CR or LF in the password is refused (it goes
 * into a PASS line). 0 or -1. */
int ftp_basic_parse(const char *value, size_t n, char *user, size_t ucap, char *pass,
                    size_t pcap);

/* ---- listings ---- */

enum ftp_ent_type { FTP_ENT_UNKNOWN = 0, FTP_ENT_FILE, FTP_ENT_DIR, FTP_ENT_LINK };

struct ftp_entry {
	int parsed;                 /* 0: a line in neither form, shown as text (raw) */
	enum ftp_ent_type type;
	const char *name;           /* slices into the line (not NUL-terminated) */
	size_t name_len;
	const char *target;         /* a symlink's "-> target", else NULL */
	size_t target_len;
	const char *raw;            /* the whole line */
	size_t raw_len;
	int64_t size;               /* -1 unknown */
	int64_t mtime;              /* Unix seconds (UTC as the server gives it), -1 unknown */
	int mtime_precision;        /* 0 unknown, 1 day ("Jan 12 2025"), 2 minute, 3 second */
};

enum { FTPL_SKIP = -1, FTPL_TEXT = 0, FTPL_ENTRY = 1 };
/* One line of LIST output (no line end): Unix "ls -l" (with the year, or with HH:MM and the
 * year inferred from now: the most recent such date not more than a day in the future),
 * symlinks "name -> target", names with spaces, numeric or named owners, device files
 * ("c 4, 64"); DOS/IIS ("12-04-26  01:23PM  <DIR>  name", "12-04-2026 13:23 1234 name").
 * Returns FTPL_ENTRY, FTPL_TEXT (e->parsed 0, e->raw set: show it as text) or FTPL_SKIP
 * ("total 12", empty lines, "." and ".."). */
int ftp_list_parse_line(const char *line, size_t len, int64_t now, struct ftp_entry *e);
/* One line of MLSD output ("type=file;size=12;modify=20261204123456; name"): FTPL_ENTRY,
 * FTPL_TEXT for a line without the "; " separator, FTPL_SKIP for type=cdir/pdir. */
int ftp_mlsd_parse_line(const char *line, size_t len, struct ftp_entry *e);

/* A listing being received: bytes fed as they arrive, split into lines (CRLF or LF), parsed,
 * kept (copied) up to cap bytes of input and FTP_LINE_MAX per line (each kept line also
 * counts 16 bytes, its index, against cap: a listing of tiny lines stays bounded too). */
struct ftp_listing;
/* dir_url: the directory's URL as shown (no password), ending in "/"; it is escaped where
 * written. mlsd: the lines are MLSD's. now: for ftp_list_parse_line. NULL when out of
 * memory. */
struct ftp_listing *ftp_listing_new(const char *dir_url, int mlsd, int64_t now, size_t cap);
/* 0, or -1 with *reason ("listing larger than N bytes", "listing line too long"). */
int ftp_listing_feed(struct ftp_listing *l, const char *data, size_t len, const char **reason);
/* The end of the data: a last line without its line end counts. 0 or -1 as above. */
int ftp_listing_end(struct ftp_listing *l, const char **reason);
/* Lines kept: entries and lines shown as text (not the skipped "total", ".", ".."). */
size_t ftp_listing_count(const struct ftp_listing *l);
/* The page: directories first, then files, by name; each name a link (percent-encoded
 * relative href, "/" after a directory's), size, date (UTC), type; a parent-directory link
 * unless dir_url's path is "/"; lines in neither form at the end as preformatted text;
 * everything HTML-escaped; the style inline in a <style> element (no scripts). 0 or -1. */
int ftp_listing_html(const struct ftp_listing *l, struct buf *out);
/* The same as JSON: {"url":..., "entries":[{"name","type":"file|dir|link|unknown",
 * "size"(number|null),"modified"("2026-12-04T12:34:56Z"|null),"target"(links),
 * "href"}...], "unparsed":[lines]}; strings JSON-escaped (control characters as \uXXXX,
 * bytes that are not UTF-8 as \uFFFD). 0 or -1. */
int ftp_listing_json(const struct ftp_listing *l, struct buf *out);
void ftp_listing_free(struct ftp_listing *l);

/* ---- media types and validators ---- */

/* Load a mime.types file (Debian's /etc/mime.types, package media-types): "type ext ext...".
 * Once, before the workers start. A missing file is not an error (*loaded 0: every file is
 * application/octet-stream). -1 only for out of memory. */
int ftp_mime_load(const char *path, int *loaded);
/* The media type for a file name by its extension (case-insensitive), or
 * "application/octet-stream". The string is static or the table's. */
const char *ftp_mime_type(const char *name, size_t len);
void ftp_mime_free(void);

/* A strong ETag from size and modification time: "\"ftp-<size hex>-<mtime hex>\"". */
void ftp_etag(char *out, size_t n, int64_t size, int64_t mtime);

#endif
