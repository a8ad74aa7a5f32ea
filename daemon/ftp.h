/*
 * ftp.h - the FTP gateway (issue 12): ftp:// URLs fetched by the proxy itself.
 *
 * The gateway is a stream (struct up_stream, daemon/worker.h) on an upstream connection whose
 * descriptor is the FTP server's control connection. To proxy.c it is an HTTP/1.1 server that
 * takes absolute-form requests ("GET ftp://user:pass@host:port/path;type=d HTTP/1.1" plus the
 * header fields proxy.c forwards, and a PUT's body) and answers with an HTTP/1.1 response
 * (status line, fields, body framed by Content-Length or chunked). So the body pump, the
 * cache and its revalidation (If-None-Match/If-Modified-Since answered 304 from SIZE and
 * MDTM), Range, collapsed forwarding, the access log and Cache-Status are proxy.c's and
 * cachereq.c's, written once, and proxy.c has no FTP branch: up_connect(..., "ftp", ...)
 * attaches the gateway once the control connection is up.
 *
 * Everything runs on the worker's loop: the control connection (u->fd), the data connection
 * (passive: EPSV, then PASV to the control peer's address, never the one in the reply; active
 * EPRT/PORT with FTPActiveFallback On), timers. A pooled connection keeps its FTP login for
 * the next request to the same server (pool key "ftp|host:port"); a request for another login
 * is sent again on a fresh connection (a re-login on the same one proves nothing: vsftpd says
 * "230 Already logged in" to any password), and a connection that got a 530 is not pooled.
 *
 * Response fields the gateway writes, which the cache relies on: Last-Modified (MDTM), ETag
 * (ftp_etag: size and mtime), Content-Length (SIZE), Content-Type (ftp_mime_type),
 * Accept-Ranges: bytes; Cache-Control: max-age=FTPDefaultExpire for a file without MDTM,
 * max-age=FTPListingExpire for a listing, private for a non-anonymous login.
 */
#ifndef GH_FTP_H
#define GH_FTP_H

struct up;

/* up_stream attach hook: the connected control connection u becomes the gateway's (u->st,
 * u->sdata, u->absolute_form = 1). Returns 0, or -1 when out of memory (nothing taken). */
int ftp_attach(struct up *u);

#endif
