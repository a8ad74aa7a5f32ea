/*
 * local.c - OPTIONS and TRACE answered by the proxy itself (OPTIONS to the proxy or "*",
 * OPTIONS and TRACE with Max-Forwards: 0), and the choice among the local sources (local.h).
 * Each answer is an rsrc_mem: a head and a body known at once.
 */
#include "daemon/local.h"

#include "daemon/rsrc.h"

#include <stdio.h>

struct rsrc *
local_open(const struct local_req *r, struct rsrc_refusal *ref)
{
	struct rsrc *s = NULL;
	ref->status = 0;
	ref->fields = NULL;
	ref->msg[0] = '\0';
	switch (r->kind) {
	case LOCAL_OPTIONS:
		s = rsrc_mem_new("options", 200, "OK", NULL,
		                 "Allow: GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE, CONNECT\r\n",
		                 NULL, 0, NULL);
		break;
	case LOCAL_TRACE:
		/* the log's content type stays "-", as it was before sources */
		s = rsrc_mem_new("trace", 200, "OK", "message/http", NULL, r->trace,
		                 (int64_t)r->trace_len, NULL);
		break;
	default:
		if (local_pac_path(r->path))
			return local_pac_open(r, ref);
		ref->status = 404;
		snprintf(ref->msg, sizeof(ref->msg), "no such page on this proxy: %s", r->path);
		return NULL;
	}
	if (s == NULL) {
		ref->status = 500;
		snprintf(ref->msg, sizeof(ref->msg), "out of memory");
	}
	return s;
}
