/*
 * fuzz_tls.c - libFuzzer harness for the TLS listener's post-handshake HTTP path: bytes that
 * arrive as TLS application data are read by the server stream (daemon/tls.c, stream_read
 * into a capped struct buf, with stream_pending for what OpenSSL holds decrypted) and handed
 * to the request-head scanner and dissector the way proxy.c's conn_parse_head does.
 *
 * Static state, made once: a self-signed certificate (OpenSSL API, in a temporary directory),
 * a set built from a struct cfg, a loopback TCP pair, a server stream (tls_accept) and a
 * client stream (tls_connect, SSLProxyVerify none), handshaken. Each input is then
 *   byte 0:      the reading buffer's cap (256 B .. 64 KiB: ENOBUFS and pending paths)
 *   then pairs:  a length byte L, then L*64/255+1 bytes sent as one TLS record
 * and the server reads until it has every byte. Besides sanitizer reports, the harness
 * abort()s when the plaintext the server reads differs from what the client sent, or when a
 * stream reports an error on a healthy connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "daemon/buf.h"
#include "daemon/cfg.h"
#include "daemon/ev.h"
#include "daemon/h1.h"
#include "daemon/stream.h"
#include "daemon/tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct stream fz_srv, fz_cli;
static int fz_ready;

static void
fz_check(int ok)
{
	if (!ok)
		abort();
}

static void
fz_cert(const char *path)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	fz_check(k != NULL && x != NULL);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -86400);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
	X509_set_pubkey(x, k);
	X509_NAME *n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
	                           -1, 0);
	X509_set_issuer_name(x, n);
	fz_check(X509_sign(x, k, EVP_sha256()) > 0);
	FILE *f = fopen(path, "w");
	fz_check(f != NULL);
	fz_check(PEM_write_X509(f, x) && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL));
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(k);
}

/* Wait until fd has what interest asks for (2 s at most). */
static void
fz_wait(struct stream *s, unsigned want)
{
	unsigned i = stream_interest(s, want);
	struct pollfd p = { .fd = s->fd,
		            .events = (short)(((i & EV_READ) ? POLLIN : 0) |
		                              ((i & EV_WRITE) ? POLLOUT : 0)) };
	fz_check(poll(&p, 1, 2000) == 1);
}

static void
fz_setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	char err[256], dir[] = "/tmp/fuzz_tls.XXXXXX", pem[64];
	fz_check(tls_global_init(err, sizeof(err)) == 0);
	fz_check(mkdtemp(dir) != NULL);
	snprintf(pem, sizeof(pem), "%s/cert.pem", dir);
	fz_cert(pem);
	struct cfg *c = NULL;
	fz_check(cfg_load_string("fuzz.conf", "Listen 127.0.0.1:3129\n", &c, err, sizeof(err)) ==
	         0);
	c->listen[0].https = 1;
	c->ssl_cert_file = strdup(pem);
	c->ssl_proxy_verify = 0;
	struct tls_set *t = tls_set_build(c, err, sizeof(err));
	if (t == NULL) {
		fprintf(stderr, "fuzz_tls: %s\n", err);
		abort();
	}
	unlink(pem); /* loaded: the set holds it */
	rmdir(dir);

	int l = socket(AF_INET, SOCK_STREAM, 0), a, b;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof(sa);
	fz_check(l >= 0 && bind(l, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(l, 1) == 0 &&
	         getsockname(l, (struct sockaddr *)&sa, &sl) == 0);
	a = socket(AF_INET, SOCK_STREAM, 0);
	fz_check(a >= 0 && connect(a, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	b = accept(l, NULL, NULL);
	fz_check(b >= 0);
	close(l);
	fcntl(a, F_SETFL, O_NONBLOCK);
	fcntl(b, F_SETFL, O_NONBLOCK);
	stream_tcp_init(&fz_cli, a);
	stream_tcp_init(&fz_srv, b);
	fz_check(tls_accept(&fz_srv, t) == 0);
	fz_check(tls_connect(&fz_cli, t, "localhost", NULL, NULL) == 0);
	tls_set_release(t); /* the SSL objects hold their contexts */
	cfg_unref(&c);

	struct buf in;
	buf_init(&in, 4096);
	int h = 0;
	for (int i = 0; i < 100 && h == 0; i++) {
		h = tls_handshake(&fz_cli);
		ssize_t n = stream_read(&fz_srv, &in);
		fz_check(n < 0 && errno == EAGAIN);
		if (h == 0) {
			unsigned ic = stream_interest(&fz_cli, 0);
			unsigned is = stream_interest(&fz_srv, EV_READ);
			struct pollfd p[2] = {
				{ .fd = a, .events = (short)(((ic & EV_READ) ? POLLIN : 0) |
				                             ((ic & EV_WRITE) ? POLLOUT : 0)) },
				{ .fd = b, .events = (short)(((is & EV_READ) ? POLLIN : 0) |
				                             ((is & EV_WRITE) ? POLLOUT : 0)) },
			};
			fz_check(poll(p, 2, 2000) > 0);
		}
	}
	fz_check(h == 1);
	buf_fini(&in);
	fz_ready = 1;
}

/* What conn_parse_head does with the bytes in b: scan for a complete head, dissect it,
 * consume it (the body framing is the body reader's business: skipped here with the head).
 * A refused head ends the "connection": the rest is dropped. Returns the bytes consumed. */
static size_t
fz_parse(struct buf *b, const struct h1_limits *lim, size_t *scan, int full)
{
	size_t used = 0;
	while (buf_len(b) > 0) {
		size_t head_len = 0;
		int status = 400;
		const char *reason = "bad request";
		int r = h1_head_complete(buf_head(b), buf_len(b), scan, &head_len, lim, 1, &status,
		                         &reason);
		if (r == H1_AGAIN && !full)
			break;
		if (r != H1_OK) {
			fz_check(r == H1_AGAIN || (status >= 400 && reason != NULL));
			used += buf_len(b);
			buf_consume(b, buf_len(b));
			*scan = 0;
			break;
		}
		*scan = 0;
		struct h1_head h;
		r = h1_parse_request(buf_head(b), head_len, &h, lim, &status, &reason);
		fz_check(r == H1_OK || (r == H1_ERR && status >= 400 && reason != NULL));
		if (r == H1_OK)
			fz_check(h.nfields <= lim->max_fields);
		fz_check(head_len > 0 && head_len <= buf_len(b));
		used += head_len;
		buf_consume(b, head_len);
	}
	return used;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!fz_ready)
		fz_setup();
	if (size == 0)
		return 0;
	size_t cap = 256 + ((size_t)data[0] << 8); /* 256 B .. 64 KiB */
	data++;
	size--;

	/* the records the client sends, and the plaintext they carry, concatenated */
	static char sent[1 << 20];
	size_t nsent = 0;
	struct buf out;
	buf_init(&out, 1 << 20);
	while (size > 0 && nsent < sizeof(sent)) {
		size_t len = (size_t)data[0] * 64 / 255 + 1;
		data++;
		size--;
		if (len > size)
			len = size;
		if (len == 0)
			break;
		memcpy(sent + nsent, data, len);
		buf_append(&out, data, len);
		nsent += len;
		data += len;
		size -= len;
		while (buf_len(&out) > 0) { /* one record per slice: write with max = len */
			ssize_t n = stream_write(&fz_cli, &out, buf_len(&out));
			if (n < 0) {
				fz_check(errno == EAGAIN);
				fz_wait(&fz_cli, EV_WRITE);
			}
		}
	}
	buf_fini(&out);

	struct h1_limits lim;
	h1_limits_default(&lim);
	struct buf in;
	buf_init(&in, cap);
	size_t got = 0, scan = 0;
	static char recv_copy[1 << 20];
	for (int i = 0; i < 100000 && got < nsent; i++) {
		ssize_t n = stream_read(&fz_srv, &in);
		if (n > 0) {
			const char *fresh = buf_head(&in) + buf_len(&in) - (size_t)n;
			memcpy(recv_copy + got, fresh, (size_t)n);
			got += (size_t)n;
			fz_parse(&in, &lim, &scan, 0);
			continue;
		}
		fz_check(n < 0);
		if (errno == ENOBUFS) {
			/* full without a complete head: proxy.c answers 431/400; here dropped */
			fz_parse(&in, &lim, &scan, 1);
			continue;
		}
		fz_check(errno == EAGAIN);
		if (stream_pending(&fz_srv))
			continue; /* decrypted bytes inside OpenSSL: read again without waiting */
		fz_wait(&fz_srv, EV_READ);
	}
	fz_check(got == nsent);
	fz_check(memcmp(sent, recv_copy, nsent) == 0);
	fz_parse(&in, &lim, &scan, 1);
	fz_check(buf_len(&in) == 0);
	buf_fini(&in);
	return 0;
}
