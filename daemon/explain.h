/*
 * explain.h - "Explain this URL" (issue 11): the daemon's side of webui/ui_explain.h. Walks
 * the running snapshot's decision for a URL, a client and a method with the proxy's own
 * functions, each step naming the config line that decided (see explain.c). The small pure
 * helpers are exported for the unit tests.
 */
#ifndef GH_EXPLAIN_H
#define GH_EXPLAIN_H

#include <stddef.h>
#include <sys/socket.h>

#include "webui/ui_explain.h"

struct worker;
struct cfg;

/* The table given to webui/ (struct ui_ops.explain). */
const struct ui_explain_ops *explain_ui_ops(void);

/* Start a walk on worker w's thread for snapshot cfg (a reference is taken). See
 * ui_explain.h for done, the handle and cancel. */
void *explain_start(struct worker *w, struct cfg *cfg, const char *url, const char *client,
                    const char *method, const char *fields, ui_explain_done_f *done,
                    void *arg);
void explain_cancel(void *handle);

/* Is m a method explain knows (GET ... CONNECT, PURGE; compared with case)? */
int explain_method_ok(const char *m);
/* An IPv4 or IPv6 address ("[::1]" too) into ss (port 0). Returns 0 or -1. */
int explain_client_parse(const char *text, struct sockaddr_storage *ss);
/* Normalise target as the proxy does before judging it (conn_parse_head and
 * conn_url_normalize): an absolute http:// or ftp:// URL, or host:port when is_connect.
 * out (cap >= strlen(target) + URL_NORM_SLACK) gets the normalised URL ("host:port" for
 * CONNECT), host the normalised host, *port the port. Returns 0, or -1 with *reason (the
 * proxy's 400/501 reason). */
int explain_target_normalize(const char *target, int is_connect, char *out, size_t cap,
                             char *host, size_t hostcap, unsigned *port, int *is_ftp,
                             const char **reason);

/* The form's request header fields: "Name: value" lines (LF or CRLF, blank lines skipped),
 * at most EXPLAIN_FIELDS_MAX of them, names tokens, values without control characters, no
 * Host (the URL gives it). head (cap bytes) gets them as "Name: value\r\n" lines. Returns
 * the number of fields, or -1 with err naming the line and the cause. */
#define EXPLAIN_FIELDS_MAX 32
int explain_fields_parse(const char *text, char *head, size_t cap, char *err, size_t errcap);

#endif
