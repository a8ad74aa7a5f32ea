/*
 * tls.c - TLS streams with OpenSSL 3 (tls.h). Being written (issue 13); only the release of a
 * set exists yet, and no set is ever built.
 */
#include "daemon/tls.h"

void
tls_set_release(struct tls_set *t)
{
	(void)t;
}

int
tls_accept(struct stream *s, struct tls_set *t)
{
	(void)s;
	(void)t;
	return -1;
}

/* Placeholders until daemon/tls.c is written (t1): no TLS, so FTPTLS Try stays plain. */
int
tls_connect(struct stream *s, struct tls_set *t, const char *host, const char *sess_key,
            const struct stream *resume_from)
{
	(void)s;
	(void)t;
	(void)host;
	(void)sess_key;
	(void)resume_from;
	return -1;
}

int
tls_handshake(struct stream *s)
{
	(void)s;
	return -1;
}
