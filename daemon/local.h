/*
 * local.h - the proxy's own answers to requests addressed to it (origin-form, or naming this
 * proxy), as response sources (rsrc.h): OPTIONS and TRACE (local.c), the PAC/WPAD file
 * (local_pac.c). The status page has its own door (status.h), opened when the head is parsed,
 * because its <Location> rules replace the <Proxy> access check; these come after it.
 */
#ifndef GH_LOCAL_H
#define GH_LOCAL_H

#include <stddef.h>
#include <sys/socket.h>

struct cfg;
struct rsrc;
struct rsrc_refusal;

/* What a request is, once its target is known (proxy.c's conn_parse_head). */
enum local_kind { LOCAL_NONE = 0, LOCAL_PAGE, LOCAL_OPTIONS, LOCAL_TRACE };

struct local_req {
	enum local_kind kind;
	int method;                   /* H1_M_* */
	const char *path;             /* the target: origin-form path and query, or "*" */
	const char *host;             /* its Host field, or NULL */
	const char *inm;              /* its If-None-Match, or NULL */
	const char *trace;            /* TRACE: the head to echo, credentials removed */
	size_t trace_len;
	const struct sockaddr_storage *local; /* the address the client reached us at */
	struct cfg *cfg;              /* the request's snapshot */
	size_t room;                  /* the most a whole answer may take (the client's output) */
};

/* The source that answers r, or NULL with *ref saying what to answer instead (404 for a path
 * the proxy does not serve, 405, 400, 500). */
struct rsrc *local_open(const struct local_req *r, struct rsrc_refusal *ref);

/* local_pac.c */
int local_pac_path(const char *path);       /* /proxy.pac or /wpad.dat, any query */
int local_pac_host_ok(const char *host);    /* a Host the PAC file can name us by */
struct rsrc *local_pac_open(const struct local_req *r, struct rsrc_refusal *ref);

#endif
