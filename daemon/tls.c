/*
 * tls.c - TLS streams with OpenSSL 3 (tls.h). Being written (issue 13); only the release of a
 * set exists yet, and no set is ever built.
 */
#include "daemon/tls.h"

#include <stdio.h>

#include "daemon/cfg.h"

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

/* Temporary (t2) until t1's tls.c lands: a set without a server side, so that the plain
 * daemon runs; an https listener is refused at build time. */
static char tls_dummy;

int
tls_global_init(char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	return 0;
}

struct tls_set *
tls_set_build(const struct cfg *c, char *err, size_t errlen)
{
	(void)c;
	snprintf(err, errlen, "TLS is not built yet");
	return c->ssl_cert_file ? NULL : (struct tls_set *)&tls_dummy;
}

void
tls_set_ref(struct tls_set *t)
{
	(void)t;
}

int
tls_set_has_server(const struct tls_set *t)
{
	(void)t;
	return 0;
}

void
tls_tick(time_t now)
{
	(void)now;
}
