/*
 * tls.h - TLS streams (stream.h) with OpenSSL 3 on the worker loops: non-blocking, no thread,
 * no blocking handshake. SSL_ERROR_WANT_READ/WANT_WRITE become loop interest through
 * stream_interest(); the rest of the daemon sees a byte stream.
 *
 * One struct tls_set per config snapshot (cfg->tls), built by main.c from the SSL*
 * directives when the config is loaded or reloaded:
 *   - a server context when any Listen line says https: SSLCertificateFile,
 *     SSLCertificateKeyFile, SSLCertificateChainFile; ALPN "http/1.1"; session tickets whose
 *     keys are process-wide and rotated daily (tls_tick), so a reload does not end resumption;
 *   - a client context for parents (ProxyRemote https://), origins (https:// URLs) and FTPS:
 *     SSLProxyCACertificateFile (default: the system store, /etc/ssl/certs), SSLProxyVerify
 *     require|none, SSLProxyMachineCertificateFile (a client certificate), SNI and a hostname
 *     check, and a process-wide session cache keyed by "host:port" (thread-safe: workers
 *     share it).
 * Both: TLS 1.2 and 1.3 only; Mozilla "intermediate" ciphers unless SSLProtocol /
 * SSLCipherSuite (SSLProxyProtocol / SSLProxyCipherSuite for the client side) say otherwise;
 * SSL_OP_ENABLE_KTLS (kernel TLS where the kernel and cipher allow it).
 *
 * A set is reference counted: a connection that started under a snapshot keeps its SSL
 * objects (which hold their context) after a reload, so a renewed certificate takes effect for
 * new connections without dropping old ones.
 */
#ifndef GH_TLS_H
#define GH_TLS_H

#include <stddef.h>
#include <time.h>

struct cfg;
struct stream;
struct tls_set;

/* Once at start, before any set is built: library init, the kernel TLS probe. Logs one line
 * saying whether kernel TLS is available ("TLS: kernel TLS in use for ..."/"not available:
 * why"). Returns 0, or -1 with a message in err. */
int tls_global_init(char *err, size_t errlen);

/* Build the set for cfg (which must have been parsed). NULL with err on failure, in the form
 * "FILE:LINE: SSLCertificateFile /etc/x.pem: no such file" (the directive's line), naming what
 * is wrong: unreadable file, not a certificate, key does not match the certificate, bad
 * SSLProtocol/SSLCipherSuite. A config with nothing TLS still gets a set (the client side:
 * https:// URLs work without any directive). */
struct tls_set *tls_set_build(const struct cfg *c, char *err, size_t errlen);
void tls_set_ref(struct tls_set *t);
void tls_set_release(struct tls_set *t);   /* NULL is fine */
/* Does the set have a server side (a usable certificate for https listeners)? */
int tls_set_has_server(const struct tls_set *t);

/* Server side: turn s (TCP, an accepted descriptor) into a TLS server stream. The handshake
 * runs inside the first stream_read()/stream_write() calls. 0, or -1 (ENOMEM, no server
 * side). */
int tls_accept(struct stream *s, struct tls_set *t);

/* Client side: turn s (TCP, connected) into a TLS client stream to host (name or address
 * literal: SNI is sent for names only; the certificate is checked against the name or the
 * address unless SSLProxyVerify none). sess_key ("host:port") keys the session cache.
 * resume_from, when not NULL, is a TLS stream whose session this one reuses (an FTPS data
 * connection reusing the control connection's session); sess_key is then unused. Then call
 * tls_handshake until it is done. 0, or -1 (ENOMEM). */
int tls_connect(struct stream *s, struct tls_set *t, const char *host, const char *sess_key,
                const struct stream *resume_from);

/* Drive a client handshake: 1 done, 0 in progress (register stream_interest(s, 0) and call
 * again when ready), -1 failed: stream_error(s) says why in words an admin understands
 * ("certificate has expired", "certificate is for www.example.net, not 127.0.0.1",
 * "self-signed certificate", "unable to get local issuer certificate", "peer closed the
 * connection during the handshake", "no protocol in common: ..."). Also usable on a server
 * stream (then the reads do it otherwise). */
int tls_handshake(struct stream *s);

/* After the handshake, for logs and pages: "TLSv1.3", "TLS_AES_256_GCM_SHA384"; resumed: the
 * session was resumed (ticket or cache). "" / 0 when s is not TLS. */
const char *tls_version(const struct stream *s);
const char *tls_cipher(const struct stream *s);
int tls_resumed(const struct stream *s);

/* Rotate the ticket keys when the current one is a day old (keeps the previous key for
 * decryption). main.c calls it once a minute; cheap when nothing is due. */
void tls_tick(time_t now);

/* Counters for the status page and metrics (process-wide, relaxed atomics): handshakes done
 * as server and as client, of which resumed, and failures. */
struct tls_counters {
	unsigned long long srv_handshakes, srv_resumed, srv_failed;
	unsigned long long cli_handshakes, cli_resumed, cli_failed;
	unsigned long long ktls_send;   /* handshakes after which the kernel encrypts (KTLS) */
};
void tls_counters_get(struct tls_counters *out);

#endif
