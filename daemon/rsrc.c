/*
 * rsrc.c - the common part of response sources (rsrc.h) and rsrc_mem, a source whose head
 * and body are in memory: OPTIONS, TRACE and the PAC file are made of it.
 */
#include "daemon/rsrc.h"

#include "daemon/buf.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define RSRC_MEM_MAGIC 0x52534d45u /* "RSME" */

void
rsrc_init(struct rsrc *s, const struct rsrc_ops *ops)
{
	s->ops = ops;
	s->wake = NULL;
	s->wake_arg = NULL;
}

void
rsrc_free(struct rsrc **sp)
{
	struct rsrc *s = *sp;
	if (s == NULL)
		return;
	*sp = NULL;
	s->ops->free(s);
}

void
rsrc_set_wake(struct rsrc *s, void (*wake)(void *arg), void *arg)
{
	s->wake = wake;
	s->wake_arg = arg;
}

void
rsrc_wake(struct rsrc *s)
{
	if (s->wake != NULL)
		s->wake(s->wake_arg);
}

/* ---- rsrc_mem ---- */

struct rsrc_mem {
	struct rsrc src;        /* first: a struct rsrc * is a struct rsrc_mem * */
	unsigned magic;
	const char *name;
	struct rsrc_head head;
	char *fields;
	char *body;
	size_t len, off;
	struct rsrc_ops ops;    /* name differs per use; the functions do not */
};

static struct rsrc_mem *
rsrc_mem_of(struct rsrc *s)
{
	struct rsrc_mem *m = (struct rsrc_mem *)s;
	assert(m->magic == RSRC_MEM_MAGIC);
	return m;
}

static int
rsrc_mem_head(struct rsrc *s, struct rsrc_io *io, struct rsrc_head *h)
{
	(void)io;
	*h = rsrc_mem_of(s)->head;
	return RSRC_END;
}

static int
rsrc_mem_body(struct rsrc *s, struct rsrc_io *io)
{
	struct rsrc_mem *m = rsrc_mem_of(s);
	size_t n = m->len - m->off;
	if (n > io->room)
		n = io->room;
	if (n > 0 && buf_append(io->out, m->body + m->off, n) != 0)
		return RSRC_WAIT;
	m->off += n;
	io->bytes_out += n;
	if (m->off == m->len)
		return RSRC_END;
	return n > 0 ? RSRC_PROGRESS : RSRC_WAIT;
}

static void
rsrc_mem_free(struct rsrc *s)
{
	struct rsrc_mem *m = rsrc_mem_of(s);
	free(m->fields);
	free(m->body);
	m->magic = 0;
	free(m);
}

struct rsrc *
rsrc_mem_new(const char *name, int status, const char *reason, const char *ctype,
             const char *fields, const void *body, int64_t len, const char *log_ctype)
{
	struct rsrc_mem *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->magic = RSRC_MEM_MAGIC;
	m->ops = (struct rsrc_ops){ .name = name, .head = rsrc_mem_head, .body = rsrc_mem_body,
	                            .free = rsrc_mem_free };
	rsrc_init(&m->src, &m->ops);
	m->fields = strdup(fields != NULL ? fields : "");
	m->len = len > 0 ? (size_t)len : 0;
	m->body = malloc(m->len + 1);
	if (m->fields == NULL || m->body == NULL) {
		rsrc_mem_free(&m->src);
		return NULL;
	}
	if (m->len > 0)
		memcpy(m->body, body, m->len);
	m->head = (struct rsrc_head){ .status = status, .reason = reason, .ctype = ctype,
	                              .length = len, .fields = m->fields, .log_ctype = log_ctype };
	return &m->src;
}
