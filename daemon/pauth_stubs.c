/*
 * pauth_stubs.c - TEMPORARY (branch a2 only): link-time stand-ins for what a3 (daemon/helper.c:
 * hpool_*) delivers. Deleted when a3's published commit is merged.
 */
#include <stdio.h>
#include <stdlib.h>

#include "daemon/helper.h"

#ifndef PAUTH_HAVE_HELPER
struct hpool_set {
	int unused;
};

int
hpool_set_new(struct ev_loop *loop, struct hpool_set **out)
{
	(void)loop;
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -1;
}

void
hpool_set_free(struct hpool_set **s)
{
	free(*s);
	*s = NULL;
}

struct hpool *
hpool_set_get(struct hpool_set *s, const struct hpool_cfg *cfg, char *err, size_t errlen)
{
	(void)s; (void)cfg;
	snprintf(err, errlen, "helper pools are not built yet");
	return NULL;
}

void
hpool_set_stats(const struct hpool_set *s, struct hpool_stats *out)
{
	(void)s; (void)out;
}

struct hreq *
hpool_submit(struct hpool *p, uint32_t child, const char *line, size_t len, hpool_cb *cb,
             void *arg)
{
	(void)p; (void)child; (void)line; (void)len; (void)cb; (void)arg;
	return NULL;
}

void
hpool_cancel(struct hreq *r)
{
	(void)r;
}

int
hreply_parse(char *line, size_t len, struct hreply *out)
{
	(void)line; (void)len;
	out->code = HR_UNKNOWN;
	return -1;
}

size_t
hreq_basic_line(const char *user, const char *pass, char *out, size_t cap)
{
	(void)user; (void)pass; (void)out; (void)cap;
	return 0;
}
#endif
