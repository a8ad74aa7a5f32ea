/*
 * tls.c - TLS streams with OpenSSL 3 (tls.h): sets built per config snapshot, the stream
 * operations of a TLS connection, the process-wide client session cache and ticket keys.
 *
 * A connection's SSL object works on the socket itself (SSL_set_fd: the socket BIO, so that
 * kernel TLS can take the records over) and never blocks: SSL_ERROR_WANT_READ/WANT_WRITE are
 * remembered per direction (what the last read, write or handshake step waits for) and
 * turned into loop interest by tls_interest, and the loop's readiness back into what the
 * owner may try by tls_ready. read_ahead is on: OpenSSL reads what the socket has in one
 * read() instead of a record header and then its body (a handshake took nine reads, six of
 * them only because of that; syscalls are what a handshake costs Gatehouse beyond OpenSSL's
 * own work). Bytes it read ahead are in no descriptor's readiness, so tls_pending reports
 * them, decrypted or not, unless the last read or handshake step ended in WANT_READ: then
 * the socket was empty and what OpenSSL holds is at most part of a record that only more
 * bytes from the socket can complete, and epoll announces those. An owner that reads again
 * on "pending" therefore always makes progress, or learns it must wait.
 *
 * Thread safety: a stream lives on one worker. What workers share is locked: the client
 * session cache (a mutex, bounded, oldest out) and the ticket keys (a mutex, copied out
 * under it). Counters are relaxed atomics. A set is immutable once built and reference
 * counted.
 */
#include "daemon/tls.h"

#include "daemon/cfg.h"
#include "daemon/ev.h"
#include "daemon/log.h"
#include "daemon/stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define TLS_SET_MAGIC  0x7153e7a1u
#define TLS_CONN_MAGIC 0x7153c0a1u

/* Mozilla "intermediate" (server side TLS 1.2 list; TLS 1.3 keeps all its suites). */
#define TLS_DEFAULT_CIPHERS                                                                 \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                        \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                        \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                        \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
#define TLS_DEFAULT_GROUPS "X25519:prime256v1:secp384r1"

#define TLS_SESS_MAX      1024       /* client session cache entries, oldest out */
#define TLS_TICKET_PERIOD (24 * 3600) /* a ticket key encrypts for a day, decrypts for two */

struct tls_set {
	unsigned magic;
	atomic_int refs;
	SSL_CTX *srv;         /* NULL: no https listener */
	SSL_CTX *cli;
	/* The client side's settings in one string, part of every session cache key: a session
	 * made under "SSLProxyVerify none" must not resume (unchecked) under "require". */
	char cli_id[64];
};

/* One TLS connection (stream->tls). */
struct tls_conn {
	unsigned magic;
	SSL *ssl;
	int server;
	int hs_done;          /* handshake finished (counted) */
	int hs_failed;
	int rd_starved;       /* the last read or handshake step said WANT_READ (tls_pending) */
	unsigned hs_wait;     /* EV_READ/EV_WRITE the handshake waits for */
	unsigned rd_wait;     /* what the last read waits for (EV_READ, or EV_WRITE) */
	unsigned wr_wait;     /* what the last write waits for (EV_WRITE, or EV_READ) */
	size_t wr_retry;      /* length of a write that said WANT_*: retried with exactly it */
	unsigned want;        /* what the owner asked for in its last stream_interest */
	int shut_sent;        /* close_notify sent */
	char *sess_key;       /* client: the cache key ("cli_id|host:port"), or NULL */
	char host[256];       /* client: the name or address checked */
	char cert_names[128]; /* client: what a mismatched certificate is for */
	int verify_err;       /* first verification error the callback saw, or X509_V_OK */
};

static struct {
	atomic_ullong srv_handshakes, srv_resumed, srv_failed;
	atomic_ullong cli_handshakes, cli_resumed, cli_failed;
	atomic_ullong ktls_send;
} tls_ctr;

static int tls_ex_conn = -1; /* SSL ex_data index of the struct tls_conn */

/* --- helpers -------------------------------------------------------------------------- */

static void
tls_ctr_add(atomic_ullong *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* "FILE:LINE: " when where is known. */
static void
tls_errf(char *err, size_t errlen, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void
tls_errf(char *err, size_t errlen, const char *where, const char *fmt, ...)
{
	if (errlen == 0)
		return;
	int n = 0;
	if (where != NULL)
		n = snprintf(err, errlen, "%s: ", where);
	if (n < 0 || (size_t)n >= errlen)
		n = 0;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

/* The reason of the last queued OpenSSL error, in its own words, and the queue emptied. */
static const char *
tls_ossl_reason(unsigned long *code)
{
	unsigned long e = 0, last;
	while ((last = ERR_get_error()) != 0)
		if (e == 0)
			e = last; /* the first is the cause, the rest is how it travelled up */
	if (code != NULL)
		*code = e;
	if (e == 0)
		return "unknown error";
	const char *r = ERR_reason_error_string(e);
	return r != NULL ? r : "unknown error";
}

/* --- protocols and ciphers ------------------------------------------------------------ */

enum { TLS_P_SSL3 = 1, TLS_P_10 = 2, TLS_P_11 = 4, TLS_P_12 = 8, TLS_P_13 = 16 };

/* Apache's SSLProtocol ("all -SSLv3 -TLSv1", "-all +TLSv1.3", "TLSv1.2") into min/max
 * versions. "all" is what Gatehouse speaks (TLS 1.2 and 1.3); asking for an older version is
 * an error, removing one is fine. */
static int
tls_protocol_parse(const char *spec, int *min, int *max, char *err, size_t errlen)
{
	static const struct { const char *name; unsigned bit; } names[] = {
		{ "SSLv3", TLS_P_SSL3 }, { "TLSv1", TLS_P_10 }, { "TLSv1.1", TLS_P_11 },
		{ "TLSv1.2", TLS_P_12 }, { "TLSv1.3", TLS_P_13 }, { "all", TLS_P_12 | TLS_P_13 },
	};
	unsigned set = 0;
	int first = 1;
	const char *p = spec;
	while (*p != '\0') {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		const char *e = p;
		while (*e != '\0' && *e != ' ' && *e != '\t')
			e++;
		char sign = 0;
		const char *w = p;
		if (*w == '+' || *w == '-')
			sign = *w++;
		size_t len = (size_t)(e - w);
		unsigned bit = 0;
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strlen(names[i].name) == len && strncasecmp(w, names[i].name, len) == 0)
				bit = names[i].bit;
		if (bit == 0) {
			snprintf(err, errlen, "unknown protocol \"%.*s\" (all, TLSv1.2, TLSv1.3)",
			         (int)(len > 40 ? 40 : len), w);
			return -1;
		}
		if (sign != '-' && (bit & (TLS_P_SSL3 | TLS_P_10 | TLS_P_11))) {
			snprintf(err, errlen, "%.*s: TLS 1.2 and 1.3 only", (int)len, w);
			return -1;
		}
		if (sign == 0 && first)
			set = bit;
		else if (sign == '-')
			set &= ~bit;
		else
			set |= bit;
		first = 0;
		p = e;
	}
	set &= TLS_P_12 | TLS_P_13;
	if (set == 0) {
		snprintf(err, errlen, "no protocol left (TLS 1.2 and 1.3 only)");
		return -1;
	}
	*min = (set & TLS_P_12) ? TLS1_2_VERSION : TLS1_3_VERSION;
	*max = (set & TLS_P_13) ? TLS1_3_VERSION : TLS1_2_VERSION;
	return 0;
}

/* Protocols and ciphers on ctx from SSLProtocol and the two SSLCipherSuite lists (or the
 * proxy side's). ciphers is the TLS 1.2 list (NULL: Mozilla intermediate), ciphers13 the
 * TLS 1.3 suites (NULL: OpenSSL's, every one); OpenSSL keeps them apart, so does Apache. */
static int
tls_ctx_params(SSL_CTX *ctx, const char *proto, const char *proto_where, const char *proto_name,
               const char *ciphers, const char *ciphers_where, const char *ciphers13,
               const char *ciphers13_where, const char *ciphers_name, char *err, size_t errlen)
{
	int min = TLS1_2_VERSION, max = TLS1_3_VERSION;
	char why[160];
	if (proto != NULL && tls_protocol_parse(proto, &min, &max, why, sizeof(why)) < 0) {
		tls_errf(err, errlen, proto_where, "%s %s: %s", proto_name, proto, why);
		return -1;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, min) || !SSL_CTX_set_max_proto_version(ctx, max)) {
		tls_errf(err, errlen, proto_where, "%s: %s", proto_name, tls_ossl_reason(NULL));
		return -1;
	}
	if (!SSL_CTX_set_cipher_list(ctx, ciphers != NULL ? ciphers : TLS_DEFAULT_CIPHERS)) {
		ERR_clear_error();
		tls_errf(err, errlen, ciphers_where, "%s %s: no usable cipher in it", ciphers_name,
		         ciphers != NULL ? ciphers : TLS_DEFAULT_CIPHERS);
		return -1;
	}
	if (ciphers13 != NULL && !SSL_CTX_set_ciphersuites(ctx, ciphers13)) {
		ERR_clear_error();
		tls_errf(err, errlen, ciphers13_where, "%s TLSv1.3 %s: no usable cipher in it",
		         ciphers_name, ciphers13);
		return -1;
	}
	if (!SSL_CTX_set1_groups_list(ctx, TLS_DEFAULT_GROUPS))
		ERR_clear_error(); /* a library without X25519: its own defaults */
	return 0;
}

/* --- files ---------------------------------------------------------------------------- */

/* Never ask for a passphrase (a prompt would block the daemon): encrypted keys fail. */
static int
tls_no_pass_cb(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* Open path for reading; NULL with "DIRECTIVE PATH: why" in err. */
static BIO *
tls_file_open(const char *path, const char *where, const char *dname, char *err,
              size_t errlen)
{
	BIO *b = BIO_new_file(path, "r");
	if (b == NULL) {
		ERR_clear_error();
		tls_errf(err, errlen, where, "%s %s: %s", dname, path, strerror(errno));
	}
	return b;
}

/* The certificate (and the chain after it) of path into ctx. */
static int
tls_load_cert(SSL_CTX *ctx, const char *path, const char *where, const char *dname, char *err,
              size_t errlen)
{
	BIO *b = tls_file_open(path, where, dname, err, errlen);
	if (b == NULL)
		return -1;
	X509 *x = PEM_read_bio_X509_AUX(b, NULL, tls_no_pass_cb, NULL);
	if (x == NULL) {
		ERR_clear_error();
		BIO_free(b);
		tls_errf(err, errlen, where, "%s %s: no PEM certificate in it", dname, path);
		return -1;
	}
	if (!SSL_CTX_use_certificate(ctx, x)) {
		tls_errf(err, errlen, where, "%s %s: %s", dname, path, tls_ossl_reason(NULL));
		X509_free(x);
		BIO_free(b);
		return -1;
	}
	X509_free(x);
	SSL_CTX_clear_chain_certs(ctx);
	while ((x = PEM_read_bio_X509(b, NULL, tls_no_pass_cb, NULL)) != NULL)
		if (!SSL_CTX_add0_chain_cert(ctx, x))
			X509_free(x);
	ERR_clear_error(); /* the end of the file reads as "no start line" */
	BIO_free(b);
	return 0;
}

static int
tls_load_chain(SSL_CTX *ctx, const char *path, const char *where, char *err, size_t errlen)
{
	BIO *b = tls_file_open(path, where, "SSLCertificateChainFile", err, errlen);
	if (b == NULL)
		return -1;
	X509 *x;
	int n = 0;
	while ((x = PEM_read_bio_X509(b, NULL, tls_no_pass_cb, NULL)) != NULL) {
		if (!SSL_CTX_add0_chain_cert(ctx, x))
			X509_free(x);
		n++;
	}
	ERR_clear_error();
	BIO_free(b);
	if (n == 0) {
		tls_errf(err, errlen, where, "SSLCertificateChainFile %s: no PEM certificate in it",
		         path);
		return -1;
	}
	return 0;
}

static int
tls_load_key(SSL_CTX *ctx, const char *path, const char *where, const char *dname, char *err,
             size_t errlen)
{
	BIO *b = tls_file_open(path, where, dname, err, errlen);
	if (b == NULL)
		return -1;
	EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, tls_no_pass_cb, NULL);
	BIO_free(b);
	if (k == NULL) {
		ERR_clear_error();
		tls_errf(err, errlen, where,
		         "%s %s: no private key in it (or an encrypted one: keys need no "
		         "passphrase)", dname, path);
		return -1;
	}
	int ok = SSL_CTX_use_PrivateKey(ctx, k);
	EVP_PKEY_free(k);
	if (!ok || !SSL_CTX_check_private_key(ctx)) {
		ERR_clear_error();
		tls_errf(err, errlen, where, "%s %s: the key does not match the certificate", dname,
		         path);
		return -1;
	}
	return 0;
}

/* Another certificate and its key (the key in the certificate file when key is NULL) into
 * ctx: OpenSSL keeps one per key type, and the current one, whose key is checked, is the one
 * just loaded. A second pair of the same type replaces the first. */
static int
tls_load_pair(SSL_CTX *ctx, const struct cfg_ssl_pair *p, char *err, size_t errlen)
{
	if (tls_load_cert(ctx, p->cert, p->cert_where, "SSLCertificateFile", err, errlen) < 0)
		return -1;
	if (p->key != NULL)
		return tls_load_key(ctx, p->key, p->key_where, "SSLCertificateKeyFile", err,
		                    errlen);
	return tls_load_key(ctx, p->cert, p->cert_where, "SSLCertificateFile", err, errlen);
}

/* --- ticket keys (server) ------------------------------------------------------------- */

struct tls_tkey {
	unsigned char name[16], aes[32], hmac[32];
	time_t born;
	int valid;
};

static pthread_mutex_t tls_tkey_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tls_tkey tls_tkey_cur, tls_tkey_prev;
/* AES-256-CBC fetched once (tls_global_init): EVP_aes_256_cbc() is a legacy handle that
 * OpenSSL 3 looks up in its provider store, under its locks, at every init (three per full
 * handshake: two tickets made, and one opened per resumption). */
static EVP_CIPHER *tls_tkey_cipher;

static int
tls_tkey_make(struct tls_tkey *k, time_t now)
{
	if (RAND_bytes(k->name, sizeof(k->name)) != 1 || RAND_bytes(k->aes, sizeof(k->aes)) != 1 ||
	    RAND_bytes(k->hmac, sizeof(k->hmac)) != 1) {
		ERR_clear_error();
		return -1;
	}
	k->born = now;
	k->valid = 1;
	return 0;
}

void
tls_tick(time_t now)
{
	pthread_mutex_lock(&tls_tkey_lock);
	if (!tls_tkey_cur.valid || now - tls_tkey_cur.born >= TLS_TICKET_PERIOD ||
	    now < tls_tkey_cur.born) {
		struct tls_tkey k;
		if (tls_tkey_make(&k, now) == 0) {
			tls_tkey_prev = tls_tkey_cur;
			tls_tkey_cur = k;
		}
		OPENSSL_cleanse(&k, sizeof(k));
	}
	pthread_mutex_unlock(&tls_tkey_lock);
}

/* OpenSSL's ticket callback: encrypt with the current key, decrypt with the current or the
 * previous one (2: "renew", the client gets a ticket under the current key). */
static int
tls_ticket_cb(SSL *ssl, unsigned char name[16], unsigned char iv[16], EVP_CIPHER_CTX *cctx,
              EVP_MAC_CTX *hctx, int enc)
{
	(void)ssl;
	struct tls_tkey k;
	int ret = 0;
	pthread_mutex_lock(&tls_tkey_lock);
	if (!tls_tkey_cur.valid && tls_tkey_make(&tls_tkey_cur, time(NULL)) < 0) {
		pthread_mutex_unlock(&tls_tkey_lock);
		return -1;
	}
	if (enc) {
		k = tls_tkey_cur;
		ret = 1;
	} else if (memcmp(name, tls_tkey_cur.name, 16) == 0) {
		k = tls_tkey_cur;
		ret = 1;
	} else if (tls_tkey_prev.valid && memcmp(name, tls_tkey_prev.name, 16) == 0) {
		k = tls_tkey_prev;
		ret = 2;
	}
	pthread_mutex_unlock(&tls_tkey_lock);
	if (ret == 0)
		return 0; /* unknown key: a full handshake */
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac, sizeof(k.hmac)),
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	const EVP_CIPHER *aes = tls_tkey_cipher != NULL ? tls_tkey_cipher : EVP_aes_256_cbc();
	if (enc) {
		memcpy(name, k.name, 16);
		if (RAND_bytes(iv, 16) != 1 || !EVP_EncryptInit_ex(cctx, aes, NULL, k.aes, iv))
			ret = -1;
	} else if (!EVP_DecryptInit_ex(cctx, aes, NULL, k.aes, iv)) {
		ret = -1;
	}
	if (ret > 0 && !EVP_MAC_CTX_set_params(hctx, params))
		ret = -1;
	OPENSSL_cleanse(&k, sizeof(k));
	return ret;
}

/* ALPN on the server: http/1.1 when the client offers it; otherwise no ALPN at all (a client
 * offering only h2 still gets HTTP/1.1, as from a server without ALPN). */
static int
tls_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
            unsigned inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	static const unsigned char h11[] = "\x08http/1.1";
	unsigned char *sel;
	if (SSL_select_next_proto(&sel, outlen, h11, sizeof(h11) - 1, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/* --- client session cache ------------------------------------------------------------- */

struct tls_sess {
	char *key;
	SSL_SESSION *sess;
};

static pthread_mutex_t tls_sess_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tls_sess tls_sess_tab[TLS_SESS_MAX];
static size_t tls_sess_next; /* the slot taken next (the oldest when the table is full) */

/* A new session for key (takes the reference); replaces an older one for the same key. */
static void
tls_sess_put(const char *key, SSL_SESSION *sess)
{
	char *k = strdup(key);
	if (k == NULL) {
		SSL_SESSION_free(sess);
		return;
	}
	SSL_SESSION *old = NULL;
	char *oldkey = NULL;
	pthread_mutex_lock(&tls_sess_lock);
	size_t i;
	for (i = 0; i < TLS_SESS_MAX; i++)
		if (tls_sess_tab[i].key != NULL && strcmp(tls_sess_tab[i].key, key) == 0)
			break;
	if (i == TLS_SESS_MAX) {
		i = tls_sess_next;
		tls_sess_next = (tls_sess_next + 1) % TLS_SESS_MAX;
	}
	old = tls_sess_tab[i].sess;
	oldkey = tls_sess_tab[i].key;
	tls_sess_tab[i].key = k;
	tls_sess_tab[i].sess = sess;
	pthread_mutex_unlock(&tls_sess_lock);
	free(oldkey);
	if (old != NULL)
		SSL_SESSION_free(old);
}

/* A reference to the session cached for key, or NULL. It stays cached: a TLS 1.3 ticket
 * should be used once, but OpenSSL's server sends no new ticket after a resumption, and
 * taking it out would make every other connection a full handshake; newer tickets replace it
 * as they come. */
static SSL_SESSION *
tls_sess_get(const char *key)
{
	SSL_SESSION *s = NULL;
	pthread_mutex_lock(&tls_sess_lock);
	for (size_t i = 0; i < TLS_SESS_MAX; i++) {
		if (tls_sess_tab[i].key != NULL && strcmp(tls_sess_tab[i].key, key) == 0) {
			/* a copy: freeing a connection that ended without close_notify marks its
			 * session not resumable, and that must not be the cached one */
			s = SSL_SESSION_dup(tls_sess_tab[i].sess);
			break;
		}
	}
	pthread_mutex_unlock(&tls_sess_lock);
	return s;
}

static int
tls_new_sess_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_conn *tc = SSL_get_ex_data(ssl, tls_ex_conn);
	if (tc == NULL || tc->sess_key == NULL || !SSL_SESSION_is_resumable(sess))
		return 0;
	/* A copy: OpenSSL marks the connection's own session not resumable when the connection
	 * is freed without close_notify, which is how idle upstream connections end. */
	SSL_SESSION *copy = SSL_SESSION_dup(sess);
	if (copy != NULL)
		tls_sess_put(tc->sess_key, copy);
	return 0;
}

/* What certificate x is for, "a.example, b.example, 192.0.2.1": its DNS and IP names, or
 * its common name when it has none. */
static void
tls_cert_names(X509 *x, char *out, size_t outlen)
{
	size_t n = 0;
	out[0] = '\0';
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		char one[64] = "";
		if (g->type == GEN_DNS) {
			int l = ASN1_STRING_length(g->d.dNSName);
			const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
			snprintf(one, sizeof(one), "%.*s", l > 60 ? 60 : l, (const char *)d);
		} else if (g->type == GEN_IPADD) {
			int l = ASN1_STRING_length(g->d.iPAddress);
			const unsigned char *d = ASN1_STRING_get0_data(g->d.iPAddress);
			if (l == 4 || l == 16)
				inet_ntop(l == 4 ? AF_INET : AF_INET6, d, one, sizeof(one));
		}
		if (one[0] == '\0')
			continue;
		int w = snprintf(out + n, outlen - n, "%s%s", n ? ", " : "", one);
		if (w < 0 || (size_t)w >= outlen - n)
			break; /* what fits is said */
		n += (size_t)w;
	}
	GENERAL_NAMES_free(gens);
	if (out[0] == '\0') {
		X509_NAME *sub = X509_get_subject_name(x);
		int idx = X509_NAME_get_index_by_NID(sub, NID_commonName, -1);
		ASN1_STRING *cn =
		    idx >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(sub, idx)) : NULL;
		int l = cn != NULL ? ASN1_STRING_length(cn) : 0;
		if (cn != NULL)
			snprintf(out, outlen, "%.*s", l > 100 ? 100 : l,
			         (const char *)ASN1_STRING_get0_data(cn));
	}
	if (out[0] == '\0')
		snprintf(out, outlen, "no name");
}

/* Verification: remember the first error, and for a name mismatch what the certificate is
 * for (the handshake's error then names both). */
static int
tls_verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_conn *tc = ssl != NULL ? SSL_get_ex_data(ssl, tls_ex_conn) : NULL;
	if (ok || tc == NULL)
		return ok;
	int e = X509_STORE_CTX_get_error(xs);
	if (tc->verify_err == X509_V_OK)
		tc->verify_err = e;
	X509 *x = X509_STORE_CTX_get_current_cert(xs);
	if ((e == X509_V_ERR_HOSTNAME_MISMATCH || e == X509_V_ERR_IP_ADDRESS_MISMATCH) &&
	    tc->cert_names[0] == '\0' && x != NULL)
		tls_cert_names(x, tc->cert_names, sizeof(tc->cert_names));
	return ok;
}

/* --- sets ----------------------------------------------------------------------------- */

/* Set by tls_global_init's probe. Without it, SSL_OP_ENABLE_KTLS would cost every handshake
 * two failing setsockopt(TCP_ULP) calls, and, for a process that may load modules (the
 * daemon before it drops privileges, tests running as root), a modprobe attempt each. */
static int tls_ktls_ok;

static SSL_CTX *
tls_ctx_new(int server)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION |
	                             SSL_OP_NO_COMPRESSION);
	if (tls_ktls_ok)
		SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                          SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_read_ahead(ctx, 1); /* see the top of this file (tls_pending) */
	SSL_CTX_set_default_passwd_cb(ctx, tls_no_pass_cb);
	return ctx;
}

static int
tls_set_server(struct tls_set *t, const struct cfg *c, char *err, size_t errlen)
{
	if (c->ssl_cert_file == NULL) {
		const char *l = "";
		for (size_t i = 0; i < c->nlisten; i++)
			if (c->listen[i].https)
				l = c->listen[i].text;
		tls_errf(err, errlen, NULL, "Listen %s https: no SSLCertificateFile", l);
		return -1;
	}
	t->srv = tls_ctx_new(1);
	if (t->srv == NULL) {
		tls_errf(err, errlen, NULL, "TLS: %s", tls_ossl_reason(NULL));
		return -1;
	}
	SSL_CTX *x = t->srv;
	if (tls_ctx_params(x, c->ssl_protocol, c->ssl_protocol_where, "SSLProtocol", c->ssl_ciphers,
	                   c->ssl_ciphers_where, c->ssl_ciphers13, c->ssl_ciphers13_where,
	                   "SSLCipherSuite", err, errlen) < 0)
		return -1;
	SSL_CTX_set_dh_auto(x, 1);
	if (tls_load_cert(x, c->ssl_cert_file, c->ssl_cert_where, "SSLCertificateFile", err,
	                  errlen) < 0)
		return -1;
	if (c->ssl_chain_file != NULL &&
	    tls_load_chain(x, c->ssl_chain_file, c->ssl_chain_where, err, errlen) < 0)
		return -1;
	if (c->ssl_key_file != NULL) {
		if (tls_load_key(x, c->ssl_key_file, c->ssl_key_where, "SSLCertificateKeyFile", err,
		                 errlen) < 0)
			return -1;
	} else if (tls_load_key(x, c->ssl_cert_file, c->ssl_cert_where, "SSLCertificateFile", err,
	                        errlen) < 0) {
		return -1;
	}
	for (size_t i = 0; i < c->nssl_more; i++) /* other key types (Apache 2.4) */
		if (tls_load_pair(x, &c->ssl_more[i], err, errlen) < 0)
			return -1;
	/* The chain sent is what the files hold. Without this OpenSSL, finding no chain
	 * certificate, would build one at every handshake (an X509_verify_cert against this
	 * context's store), and that store holds no CA: it would only ever find the leaf. */
	SSL_CTX_set_mode(x, SSL_MODE_NO_AUTO_CHAIN);
	static const unsigned char sid[] = "gatehouse";
	SSL_CTX_set_session_id_context(x, sid, sizeof(sid) - 1);
	/* tickets only: a server-side cache would be per worker and lost at a reload */
	SSL_CTX_set_session_cache_mode(x, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(x, 2);
	SSL_CTX_set_tlsext_ticket_key_evp_cb(x, tls_ticket_cb);
	SSL_CTX_set_alpn_select_cb(x, tls_alpn_cb, NULL);
	return 0;
}

static int
tls_set_client(struct tls_set *t, const struct cfg *c, char *err, size_t errlen)
{
	t->cli = tls_ctx_new(0);
	if (t->cli == NULL) {
		tls_errf(err, errlen, NULL, "TLS: %s", tls_ossl_reason(NULL));
		return -1;
	}
	SSL_CTX *x = t->cli;
	if (tls_ctx_params(x, c->ssl_proxy_protocol, c->ssl_proxy_protocol_where,
	                   "SSLProxyProtocol", c->ssl_proxy_ciphers, c->ssl_proxy_ciphers_where,
	                   c->ssl_proxy_ciphers13, c->ssl_proxy_ciphers13_where,
	                   "SSLProxyCipherSuite", err, errlen) < 0)
		return -1;
	if (c->ssl_proxy_ca_path != NULL) {
		struct stat st;
		/* OpenSSL looks into the directory only when it verifies: say now if it cannot */
		int sr = stat(c->ssl_proxy_ca_path, &st);
		if (sr < 0 || !S_ISDIR(st.st_mode)) {
			const char *why = sr < 0 ? strerror(errno) : "not a directory";
			tls_errf(err, errlen, NULL, "SSLProxyCACertificatePath %s: %s",
			         c->ssl_proxy_ca_path, why);
			return -1;
		}
		if (!SSL_CTX_load_verify_locations(x, NULL, c->ssl_proxy_ca_path)) {
			tls_errf(err, errlen, NULL, "SSLProxyCACertificatePath %s: %s",
			         c->ssl_proxy_ca_path, tls_ossl_reason(NULL));
			return -1;
		}
	} else if (!SSL_CTX_set_default_verify_paths(x)) {
		ERR_clear_error(); /* no system store: only the CA file, if any */
	}
	if (c->ssl_proxy_ca_file != NULL) {
		FILE *f = fopen(c->ssl_proxy_ca_file, "r");
		if (f == NULL) {
			tls_errf(err, errlen, c->ssl_proxy_ca_where,
			         "SSLProxyCACertificateFile %s: %s", c->ssl_proxy_ca_file,
			         strerror(errno));
			return -1;
		}
		fclose(f);
		if (!SSL_CTX_load_verify_locations(x, c->ssl_proxy_ca_file, NULL)) {
			ERR_clear_error();
			tls_errf(err, errlen, c->ssl_proxy_ca_where,
			         "SSLProxyCACertificateFile %s: no PEM certificate in it",
			         c->ssl_proxy_ca_file);
			return -1;
		}
	}
	if (c->ssl_proxy_machine_cert != NULL &&
	    (tls_load_cert(x, c->ssl_proxy_machine_cert, c->ssl_proxy_machine_where,
	                   "SSLProxyMachineCertificateFile", err, errlen) < 0 ||
	     tls_load_key(x, c->ssl_proxy_machine_cert, c->ssl_proxy_machine_where,
	                  "SSLProxyMachineCertificateFile", err, errlen) < 0))
		return -1;
	SSL_CTX_set_verify(x, c->ssl_proxy_verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
	                   tls_verify_cb);
	SSL_CTX_set_session_cache_mode(x, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(x, tls_new_sess_cb);

	/* What sessions made under this set may be resumed under: the settings that decide
	 * whether a peer is trusted, hashed (a reload with other CAs starts afresh). */
	unsigned long h = 5381;
	const char *parts[] = { c->ssl_proxy_verify ? "v1" : "v0", c->ssl_proxy_ca_file,
		                c->ssl_proxy_ca_path, c->ssl_proxy_machine_cert,
		                c->ssl_proxy_protocol, c->ssl_proxy_ciphers,
		                c->ssl_proxy_ciphers13 };
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		for (const char *p = parts[i] ? parts[i] : "-"; *p; p++)
			h = h * 33 + (unsigned char)*p;
		h = h * 33 + '|';
	}
	snprintf(t->cli_id, sizeof(t->cli_id), "%lx", h);
	return 0;
}

struct tls_set *
tls_set_build(const struct cfg *c, char *err, size_t errlen)
{
	if (errlen > 0)
		err[0] = '\0';
	if (tls_ex_conn < 0 && tls_global_init(err, errlen) < 0)
		return NULL;
	struct tls_set *t = calloc(1, sizeof(*t));
	if (t == NULL) {
		tls_errf(err, errlen, NULL, "TLS: out of memory");
		return NULL;
	}
	t->magic = TLS_SET_MAGIC;
	atomic_init(&t->refs, 1);
	int server = 0;
	for (size_t i = 0; i < c->nlisten; i++)
		server |= c->listen[i].https;
	if ((server && tls_set_server(t, c, err, errlen) < 0) ||
	    tls_set_client(t, c, err, errlen) < 0) {
		ERR_clear_error();
		tls_set_release(t);
		return NULL;
	}
	return t;
}

void
tls_set_ref(struct tls_set *t)
{
	if (t == NULL || t->magic != TLS_SET_MAGIC)
		abort();
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void
tls_set_release(struct tls_set *t)
{
	if (t == NULL)
		return;
	if (t->magic != TLS_SET_MAGIC)
		abort();
	if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
		return;
	SSL_CTX_free(t->srv);
	SSL_CTX_free(t->cli);
	t->magic = 0;
	free(t);
}

int
tls_set_has_server(const struct tls_set *t)
{
	return t != NULL && t->srv != NULL;
}

/* --- streams -------------------------------------------------------------------------- */

extern const struct stream_ops stream_tls_ops;

static struct tls_conn *
tls_conn_of(const struct stream *s)
{
	struct tls_conn *tc = s->tls;
	if (tc == NULL || tc->magic != TLS_CONN_MAGIC)
		abort(); /* a TLS operation on a stream that is not (or no longer) TLS */
	return tc;
}

/* A failed operation's reason in s->err, in words; returns -1 with errno set. */
static int
tls_fail(struct stream *s, struct tls_conn *tc, int sslerr, int ret)
{
	int saved = errno;
	unsigned long code = 0;
	const char *why = NULL;
	char buf[sizeof(s->err)];
	const char *what = tc->hs_done ? "" : "handshake: ";
	if (sslerr == SSL_ERROR_SYSCALL) {
		ERR_clear_error();
		if (ret == 0 || saved == 0) {
			why = tc->hs_done ? "peer closed the connection"
			                  : "peer closed the connection during the handshake";
			what = "";
			saved = ECONNRESET;
		} else {
			snprintf(s->err, sizeof(s->err), "%s%s", what, strerror(saved));
			errno = saved;
			return -1;
		}
	} else if (sslerr == SSL_ERROR_ZERO_RETURN) {
		why = "peer closed the connection during the handshake";
		what = "";
		saved = ECONNRESET;
	} else {
		/* under SSLProxyVerify none the chain is still checked, its result ignored: then
		 * it is not why the handshake failed */
		int checked = !tc->server && SSL_get_verify_mode(tc->ssl) != SSL_VERIFY_NONE;
		long vr = SSL_get_verify_result(tc->ssl);
		if (!tc->hs_done && checked && tc->verify_err == X509_V_OK && vr != X509_V_OK)
			tc->verify_err = (int)vr;
		int ve = checked ? tc->verify_err : X509_V_OK;
		why = tls_ossl_reason(&code);
		int reason = ERR_GET_REASON(code);
		if (!tc->hs_done && ve != X509_V_OK &&
		    (ve == X509_V_ERR_HOSTNAME_MISMATCH || ve == X509_V_ERR_IP_ADDRESS_MISMATCH)) {
			snprintf(buf, sizeof(buf), "certificate is for %.80s, not %.50s",
			         tc->cert_names, tc->host);
			why = buf;
			what = "";
		} else if (!tc->hs_done && ve != X509_V_OK) {
			why = X509_verify_cert_error_string(ve);
			what = "";
		} else if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			why = tc->hs_done ? "peer closed the connection"
			                  : "peer closed the connection during the handshake";
			what = "";
		} else if (reason == SSL_R_UNSUPPORTED_PROTOCOL ||
		           reason == SSL_R_NO_PROTOCOLS_AVAILABLE ||
		           reason == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION ||
		           reason == SSL_R_WRONG_VERSION_NUMBER ||
		           reason == SSL_R_UNKNOWN_PROTOCOL) {
			snprintf(buf, sizeof(buf), "no protocol in common: %s", why);
			why = buf;
		} else if (reason == SSL_R_NO_SHARED_CIPHER ||
		           reason == SSL_R_NO_CIPHERS_AVAILABLE ||
		           reason == SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE) {
			snprintf(buf, sizeof(buf), "no cipher in common: %s", why);
			why = buf;
		}
		saved = EPROTO;
	}
	snprintf(s->err, sizeof(s->err), "%s%.140s", what, why);
	errno = saved;
	return -1;
}

static void
tls_hs_finished(struct tls_conn *tc)
{
	tc->hs_done = 1;
	tc->hs_wait = 0;
	int resumed = SSL_session_reused(tc->ssl);
	if (tc->server) {
		tls_ctr_add(&tls_ctr.srv_handshakes);
		if (resumed)
			tls_ctr_add(&tls_ctr.srv_resumed);
	} else {
		tls_ctr_add(&tls_ctr.cli_handshakes);
		if (resumed)
			tls_ctr_add(&tls_ctr.cli_resumed);
	}
	if (BIO_get_ktls_send(SSL_get_wbio(tc->ssl)))
		tls_ctr_add(&tls_ctr.ktls_send);
}

/* One handshake step: 1 done, 0 waiting (hs_wait says for what), -1 failed (errno, s->err). */
static int
tls_hs_step(struct stream *s, struct tls_conn *tc)
{
	if (tc->hs_done)
		return 1;
	if (tc->hs_failed) {
		errno = EPROTO;
		return -1;
	}
	ERR_clear_error();
	errno = 0;
	int r = SSL_do_handshake(tc->ssl);
	tc->rd_starved = 0;
	if (r == 1) {
		tls_hs_finished(tc);
		return 1;
	}
	int e = SSL_get_error(tc->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		tc->rd_starved = 1;
		tc->hs_wait = EV_READ;
		errno = EAGAIN;
		return 0;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		tc->hs_wait = EV_WRITE;
		errno = EAGAIN;
		return 0;
	}
	tc->hs_failed = 1;
	tls_ctr_add(tc->server ? &tls_ctr.srv_failed : &tls_ctr.cli_failed);
	return tls_fail(s, tc, e, r);
}

int
tls_handshake(struct stream *s)
{
	return tls_hs_step(s, tls_conn_of(s));
}

static ssize_t
tls_read(struct stream *s, struct buf *b)
{
	struct tls_conn *tc = tls_conn_of(s);
	int h = tls_hs_step(s, tc);
	if (h <= 0)
		return -1;
	size_t avail; /* the room the way buf_read_fd takes it */
	char *dst = buf_read_room(b, &avail);
	if (dst == NULL)
		return -1;
	size_t got = 0;
	int e = SSL_ERROR_NONE, r = 1;
	tc->rd_wait = EV_READ;
	while (got < avail) {
		size_t n = 0;
		ERR_clear_error();
		errno = 0;
		r = SSL_read_ex(tc->ssl, dst + got, avail - got, &n);
		if (r == 1) {
			got += n;
			continue;
		}
		e = SSL_get_error(tc->ssl, r);
		break;
	}
	tc->rd_starved = e == SSL_ERROR_WANT_READ;
	b->end += got;
	b->more = got > 0 && got == avail;
	if (got > 0) {
		/* what a write was waiting to read may have come: let it try again on
		 * writability (it says WANT_READ again if not) rather than wait for bytes that
		 * may never come */
		tc->wr_wait = EV_WRITE;
		return (ssize_t)got;
	}
	switch (e) {
	case SSL_ERROR_WANT_READ:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		tc->rd_wait = EV_WRITE;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (errno == 0) {
			ERR_clear_error();
			return 0; /* EOF without close_notify: HTTP framing judges truncation */
		}
		return tls_fail(s, tc, e, r);
	default:
		return tls_fail(s, tc, e, r);
	}
}

static ssize_t
tls_write(struct stream *s, struct buf *b, size_t max)
{
	struct tls_conn *tc = tls_conn_of(s);
	int h = tls_hs_step(s, tc);
	if (h <= 0)
		return -1;
	size_t limit = max ? max : SIZE_MAX, sent = 0;
	tc->wr_wait = EV_WRITE;
	while (buf_len(b) > 0) {
		size_t len = buf_len(b);
		if (tc->wr_retry > 0) {
			/* OpenSSL wants the same write again after WANT_*, whatever max says now */
			if (tc->wr_retry <= len)
				len = tc->wr_retry;
		} else {
			if (sent >= limit)
				break;
			if (len > limit - sent)
				len = limit - sent;
		}
		size_t n = 0;
		ERR_clear_error();
		errno = 0;
		int r = SSL_write_ex(tc->ssl, buf_head(b), len, &n);
		if (r == 1) {
			tc->wr_retry = 0;
			tc->rd_wait = EV_READ; /* as in tls_read: a read waiting to write retries */
			buf_consume(b, n);
			sent += n;
			continue;
		}
		int e = SSL_get_error(tc->ssl, r);
		if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
			tc->wr_retry = len;
			tc->wr_wait = e == SSL_ERROR_WANT_READ ? EV_READ : EV_WRITE;
			if (sent > 0)
				return (ssize_t)sent;
			errno = EAGAIN;
			return -1;
		}
		if (sent > 0)
			return (ssize_t)sent; /* the error comes again at the next call */
		if (e == SSL_ERROR_SYSCALL && errno == 0)
			errno = EPIPE;
		return tls_fail(s, tc, e, r);
	}
	return (ssize_t)sent;
}

static int
tls_shutdown_wr(struct stream *s)
{
	struct tls_conn *tc = tls_conn_of(s);
	if (tc->hs_done && !tc->hs_failed && !tc->shut_sent) {
		ERR_clear_error();
		int r = SSL_shutdown(tc->ssl);
		if (r < 0) {
			int e = SSL_get_error(tc->ssl, r);
			if (e == SSL_ERROR_WANT_WRITE) {
				tc->wr_wait = EV_WRITE;
				errno = EAGAIN;
				return -1;
			}
			ERR_clear_error(); /* cannot say goodbye: the FIN says it */
		}
	}
	tc->shut_sent = 1;
	(void)shutdown(s->fd, SHUT_WR);
	return 0;
}

static unsigned
tls_interest(struct stream *s, unsigned want)
{
	struct tls_conn *tc = tls_conn_of(s);
	tc->want = want;
	if (!tc->hs_done && !tc->hs_failed)
		return tc->hs_wait;
	unsigned i = 0;
	if (want & EV_READ)
		i |= tc->rd_wait;
	if (want & EV_WRITE)
		i |= tc->wr_wait;
	return i;
}

/* The loop's readiness back into what the owner may try. As with TCP, only what it asked for
 * in its last stream_interest (a TCP descriptor reports nothing else); during the handshake
 * an owner that asked for nothing (a client driving tls_handshake) gets whatever moved. */
static unsigned
tls_ready(struct stream *s, unsigned revents)
{
	struct tls_conn *tc = tls_conn_of(s);
	unsigned r = 0;
	if (!tc->hs_done && !tc->hs_failed) {
		/* a read or a write drives the handshake */
		if (revents & (tc->hs_wait | EV_ERROR))
			r = EV_READ | EV_WRITE;
		return tc->want ? r & tc->want : r;
	}
	if (revents & (tc->rd_wait | EV_ERROR))
		r |= EV_READ;
	if (revents & (tc->wr_wait | EV_ERROR))
		r |= EV_WRITE;
	return r & tc->want;
}

static int
tls_pending(struct stream *s)
{
	struct tls_conn *tc = tls_conn_of(s);
	if (!tc->hs_done)
		return 0;
	/* decrypted bytes; or records read ahead, unless the socket was found empty since */
	return SSL_pending(tc->ssl) > 0 || (!tc->rd_starved && SSL_has_pending(tc->ssl));
}

static void
tls_release(struct stream *s)
{
	struct tls_conn *tc = s->tls;
	if (tc == NULL)
		return;
	SSL_free(tc->ssl); /* no close_notify here: shutdown_wr says goodbye when wanted */
	free(tc->sess_key);
	tc->magic = 0;
	free(tc);
	s->tls = NULL;
}

const struct stream_ops stream_tls_ops = {
	.name = "tls",
	.read = tls_read,
	.write = tls_write,
	.shutdown_wr = tls_shutdown_wr,
	.interest = tls_interest,
	.ready = tls_ready,
	.pending = tls_pending,
	.release = tls_release,
};

static struct tls_conn *
tls_conn_new(struct stream *s, SSL_CTX *ctx, int server)
{
	struct tls_conn *tc = calloc(1, sizeof(*tc));
	if (tc == NULL)
		return NULL;
	tc->magic = TLS_CONN_MAGIC;
	tc->server = server;
	tc->hs_wait = server ? EV_READ : EV_WRITE;
	tc->rd_wait = EV_READ;
	tc->wr_wait = EV_WRITE;
	tc->verify_err = X509_V_OK;
	tc->ssl = SSL_new(ctx);
	if (tc->ssl == NULL || !SSL_set_fd(tc->ssl, s->fd) ||
	    !SSL_set_ex_data(tc->ssl, tls_ex_conn, tc)) {
		ERR_clear_error();
		SSL_free(tc->ssl);
		free(tc);
		return NULL;
	}
	if (server)
		SSL_set_accept_state(tc->ssl);
	else
		SSL_set_connect_state(tc->ssl);
	return tc;
}

static void
tls_stream_take(struct stream *s, struct tls_conn *tc)
{
	s->ops->release(s);
	s->ops = &stream_tls_ops;
	s->tls = tc;
	s->err[0] = '\0';
}

int
tls_accept(struct stream *s, struct tls_set *t)
{
	if (t == NULL || t->srv == NULL) {
		errno = EINVAL;
		return -1;
	}
	struct tls_conn *tc = tls_conn_new(s, t->srv, 1);
	if (tc == NULL) {
		errno = ENOMEM;
		return -1;
	}
	tls_stream_take(s, tc);
	return 0;
}

static int
tls_is_ip(const char *host)
{
	unsigned char a[16];
	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

int
tls_connect(struct stream *s, struct tls_set *t, const char *host, const char *sess_key,
            const struct stream *resume_from)
{
	if (t == NULL || t->cli == NULL || host == NULL) {
		errno = EINVAL;
		return -1;
	}
	struct tls_conn *tc = tls_conn_new(s, t->cli, 0);
	if (tc == NULL) {
		errno = ENOMEM;
		return -1;
	}
	/* "[::1]" from a URL: the address without its brackets */
	size_t hl = strlen(host);
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']')
		snprintf(tc->host, sizeof(tc->host), "%.*s", (int)(hl - 2), host + 1);
	else
		snprintf(tc->host, sizeof(tc->host), "%s", host);
	int ok = 1;
	if (tls_is_ip(tc->host)) {
		if (SSL_get_verify_mode(tc->ssl) != SSL_VERIFY_NONE)
			ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(tc->ssl), tc->host);
	} else {
		ok = SSL_set_tlsext_host_name(tc->ssl, tc->host);
		if (ok && SSL_get_verify_mode(tc->ssl) != SSL_VERIFY_NONE)
			ok = SSL_set1_host(tc->ssl, tc->host);
	}
	if (ok && resume_from == NULL && sess_key != NULL) {
		size_t n = strlen(t->cli_id) + 1 + strlen(sess_key) + 1;
		tc->sess_key = malloc(n);
		if (tc->sess_key == NULL) {
			ok = 0;
		} else {
			snprintf(tc->sess_key, n, "%s|%s", t->cli_id, sess_key);
			SSL_SESSION *sess = tls_sess_get(tc->sess_key);
			if (sess != NULL) {
				SSL_set_session(tc->ssl, sess);
				SSL_SESSION_free(sess);
			}
		}
	} else if (ok && resume_from != NULL && resume_from->tls != NULL) {
		struct tls_conn *from = tls_conn_of(resume_from);
		SSL_SESSION *shared = SSL_get0_session(from->ssl);
		/* a copy, as in tls_sess_get */
		SSL_SESSION *sess = shared != NULL ? SSL_SESSION_dup(shared) : NULL;
		if (sess != NULL) {
			SSL_set_session(tc->ssl, sess);
			SSL_SESSION_free(sess);
		}
	}
	if (!ok) {
		ERR_clear_error();
		SSL_free(tc->ssl);
		free(tc->sess_key);
		free(tc);
		errno = ENOMEM;
		return -1;
	}
	ERR_clear_error();
	tls_stream_take(s, tc);
	return 0;
}

const char *
tls_version(const struct stream *s)
{
	if (s->tls == NULL)
		return "";
	return SSL_get_version(tls_conn_of(s)->ssl);
}

const char *
tls_cipher(const struct stream *s)
{
	if (s->tls == NULL)
		return "";
	const char *c = SSL_get_cipher_name(tls_conn_of(s)->ssl);
	return c != NULL ? c : "";
}

int
tls_resumed(const struct stream *s)
{
	if (s->tls == NULL)
		return 0;
	return SSL_session_reused(tls_conn_of(s)->ssl);
}

void
tls_counters_get(struct tls_counters *out)
{
	out->srv_handshakes = atomic_load_explicit(&tls_ctr.srv_handshakes, memory_order_relaxed);
	out->srv_resumed = atomic_load_explicit(&tls_ctr.srv_resumed, memory_order_relaxed);
	out->srv_failed = atomic_load_explicit(&tls_ctr.srv_failed, memory_order_relaxed);
	out->cli_handshakes = atomic_load_explicit(&tls_ctr.cli_handshakes, memory_order_relaxed);
	out->cli_resumed = atomic_load_explicit(&tls_ctr.cli_resumed, memory_order_relaxed);
	out->cli_failed = atomic_load_explicit(&tls_ctr.cli_failed, memory_order_relaxed);
	out->ktls_send = atomic_load_explicit(&tls_ctr.ktls_send, memory_order_relaxed);
}

/* --- start ---------------------------------------------------------------------------- */

/* Can this kernel take TLS records over? Attach the "tls" upper layer to a connected
 * loopback socket (the module loads on demand where it may). 1 yes, 0 no with why. */
static int
tls_ktls_probe(char *why, size_t whylen)
{
#ifdef OPENSSL_NO_KTLS
	snprintf(why, whylen, "OpenSSL built without it");
	return 0;
#else
	int l = -1, c = -1, ok = 0;
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &al) < 0 ||
	    (c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(c, (struct sockaddr *)&a, sizeof(a)) < 0) {
		snprintf(why, whylen, "probe socket: %s", strerror(errno));
	} else if (setsockopt(c, IPPROTO_TCP, TCP_ULP, "tls", 3) < 0) {
		snprintf(why, whylen, "%s",
		         errno == ENOENT ? "no tls module in the kernel (modprobe tls)"
		                         : strerror(errno));
	} else {
		ok = 1;
	}
	if (c >= 0)
		close(c);
	if (l >= 0)
		close(l);
	return ok;
#endif
}

int
tls_global_init(char *err, size_t errlen)
{
	if (tls_ex_conn >= 0)
		return 0;
	if (!OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS,
	                      NULL)) {
		tls_errf(err, errlen, NULL, "TLS: OpenSSL would not start");
		return -1;
	}
	tls_ex_conn = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	if (tls_ex_conn < 0) {
		tls_errf(err, errlen, NULL, "TLS: %s", tls_ossl_reason(NULL));
		return -1;
	}
	tls_tkey_cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL); /* NULL: fetched per use */
	ERR_clear_error();
	tls_tick(time(NULL));
	char why[128];
	tls_ktls_ok = tls_ktls_probe(why, sizeof(why));
	if (tls_ktls_ok)
		log_notice("TLS: %s; kernel TLS available, used where the cipher allows",
		           OpenSSL_version(OPENSSL_VERSION));
	else
		log_notice("TLS: %s; kernel TLS not available: %s",
		           OpenSSL_version(OPENSSL_VERSION), why);
	return 0;
}
