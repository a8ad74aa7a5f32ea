/*
 * helper.h - pools of helper processes speaking Squid's helper line protocol over pipes
 * (issue 14): the authentication helpers Debian's squid package ships (basic_ldap_auth,
 * basic_pam_auth, basic_radius_auth, negotiate_kerberos_auth, ...), run by Gatehouse.
 *
 * One pool belongs to one worker and runs on that worker's event loop: non-blocking pipes,
 * no thread, no lock. The workers never block on a helper: a request is written to a child's
 * stdin when it has room (concurrency) or queued, and the answer comes back through the
 * callback on a later loop turn.
 *
 * The protocol (Squid's helper protocol, version 3.4+):
 *   request   "[CHANNEL ]LINE\n"        CHANNEL only when concurrency > 0 (0, 1, 2, ...)
 *   reply     "[CHANNEL ]CODE[ ARGS]\n"  CODE: OK ERR BH (Basic), TT AF NA LD BH KK (Negotiate;
 *             newer helpers answer OK/ERR with token=... user=... keys)
 * hreply_parse() splits a reply; the pool itself only matches replies to requests.
 *
 * Children: started when the pool is made (all of them, so the first request does not pay a
 * start), each with stdin/stdout on pipes and stderr inherited (the daemon's error log).
 *   - a child that exits or closes its stdout is reaped and started again, at most once a
 *     second per slot (longer, up to a minute, while it keeps failing right after its start);
 *     its requests in flight fail with HP_DIED, and so do new ones at once while no child is
 *     up because the last one could not start or died at once (a crash loop);
 *   - a child that answers what nobody asked (no request in flight, an unknown channel ID)
 *     or a line longer than 64 KiB is out of step: killed and started again;
 *   - a request unanswered for timeout_ms fails with HP_TIMEOUT, and its child (hung, or
 *     out of step) is killed (SIGKILL) and started again;
 *   - more than queue_max requests waiting: HP_OVERLOAD at once.
 * Every such event is counted (struct hpool_stats) and logged at warn with the command name.
 */
#ifndef GH_HELPER_H
#define GH_HELPER_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;

struct hpool_cfg {
	const char *cmd;          /* the command line as written in the config (AuthExternal):
	                           * words split on blanks, "..." quoting; the first is an
	                           * absolute path, run without a shell */
	unsigned children;        /* processes in this pool (>= 1) */
	unsigned concurrency;     /* requests in flight per child; 0: one, and no channel IDs */
	unsigned timeout_ms;      /* a request unanswered this long: HP_TIMEOUT */
	unsigned queue_max;       /* requests waiting for a free child; more: HP_OVERLOAD */
};

enum hp_status {
	HP_OK = 0,       /* reply holds the answer line (channel ID and newline removed) */
	HP_TIMEOUT,      /* no answer within timeout_ms (the child was restarted) */
	HP_DIED,         /* the child exited (or could not be started) before answering */
	HP_OVERLOAD      /* the queue was full */
};

struct hpool_reply {
	enum hp_status status;
	const char *line;         /* HP_OK: the reply, NUL-terminated, valid during the callback */
	size_t len;
	uint32_t child;           /* the child that answered (an id: slot and generation), for
	                           * hpool_submit's pinned form */
};

typedef void hpool_cb(void *arg, const struct hpool_reply *r);

struct hpool;
struct hreq;

/* Make a pool on loop and start its children. Returns 0, or -1 with a one-line message in
 * err (the command does not exist or is not executable, pipes or fork failed). */
int hpool_new(struct ev_loop *loop, const struct hpool_cfg *cfg, struct hpool **out,
              char *err, size_t errlen);
/* Kill the children and free the pool. Requests in flight fail with HP_DIED (their callbacks
 * run inside this call): call it only from the pool's loop thread, never from inside one of
 * the pool's callbacks, and before ev_loop_free (the memory goes through ev_defer). */
void hpool_free(struct hpool **p);

/* Send line (len bytes, no newline; the pool adds channel ID and newline) to a child: any free
 * one when child is HPOOL_ANY, else that child (a multi-step Negotiate exchange that must stay
 * with the child that began it; HP_DIED when it has been restarted since). The callback runs
 * exactly once, on a later loop turn, unless hpool_cancel is called first. Returns the request,
 * or NULL when out of memory (no callback then). */
#define HPOOL_ANY UINT32_MAX
struct hreq *hpool_submit(struct hpool *p, uint32_t child, const char *line, size_t len,
                          hpool_cb *cb, void *arg);
/* The callback will not run (the client went away). The child's answer, when it comes, is
 * read and dropped. */
void hpool_cancel(struct hreq *r);

struct hpool_stats {
	uint64_t requests, replies, timeouts, deaths, restarts, overloads;
	unsigned children_up, busy, queued;  /* busy: children with a request in flight */
};
void hpool_get_stats(const struct hpool *p, struct hpool_stats *out);

/* ---- a worker's pools, by command ----
 *
 * The config can name several helpers (AuthExternal, AuthNegotiateExternal; per section), and
 * a reload may change them. A set hands out one pool per distinct struct hpool_cfg (command,
 * children, concurrency, timeout, queue): the same settings after a reload get the same pool
 * and its running children; a pool nobody asked for during the last 60 s is freed once it has
 * nothing in flight, unless the config in force names it (hpool_set_start). */
struct hpool_set;
int hpool_set_new(struct ev_loop *loop, struct hpool_set **out);
void hpool_set_free(struct hpool_set **s);
/* The pool for cfg, made on first use. NULL with err when it cannot be started (then every
 * request using it fails: the caller answers 503 with err). */
struct hpool *hpool_set_get(struct hpool_set *s, const struct hpool_cfg *cfg, char *err,
                            size_t errlen);
/* A config was loaded: make (and so start the children of) the pools cfgs name, before any
 * request asks, and keep them while that config is in force: they never idle out, while the
 * pools it no longer names idle out as before (60 s unused, nothing in flight). The same
 * settings keep their pool and its running children. A pool that cannot start is logged at
 * warn (hpool_set_get tries again at the first request). Returns how many could not. */
unsigned hpool_set_start(struct hpool_set *s, const struct hpool_cfg *const *cfgs, size_t n);
/* The sum over the set's pools (for the status page). */
void hpool_set_stats(const struct hpool_set *s, struct hpool_stats *out);

/* ---- replies ---- */

enum hr_code { HR_OK, HR_ERR, HR_BH, HR_TT, HR_AF, HR_NA, HR_LD, HR_KK, HR_UNKNOWN };

#define HREPLY_MAX_GROUPS 32

/* One reply line split in place (line is modified; the pointers point into it):
 *  - code: the first word;
 *  - Negotiate's old form "TT TOKEN", "AF TOKEN USER", "NA TOKEN REASON", "LD TOKEN USER":
 *    token and user (or message for NA) from the positional words;
 *  - keys (Squid 3.4+, any code): user=, group= (repeatable), token=, message=, log=;
 *    values are a word or "quoted" with \-escapes, then %-decoded as Squid's helpers
 *    encode them. Unknown keys are ignored, and so is an empty group=.
 *  - a user, group or token that is empty or holds a control byte (it would reach a header or
 *    a log line), a %00, or an unclosed quote make the line malformed; control bytes in a
 *    message become blanks. line[len] is never read or written.
 * Returns 0, or -1 when the line is empty or malformed (then code is HR_UNKNOWN). */
struct hreply {
	enum hr_code code;
	const char *user;          /* NULL when absent */
	const char *token;         /* Negotiate's base64 blob, NULL when absent */
	const char *message;       /* message= or the rest of an ERR/NA/BH line, NULL absent */
	const char *groups[HREPLY_MAX_GROUPS];
	size_t ngroups;
};
int hreply_parse(char *line, size_t len, struct hreply *out);

/* Squid's request encoding for Basic helpers: "USER PASS" with both %-encoded as
 * rfc1738_escape does (anything but unreserved ASCII letters, digits and "-._~" escaped),
 * so blanks and newlines in a password cannot break the line. Returns the length written
 * (NUL-terminated), or 0 when it does not fit cap. */
size_t hreq_basic_line(const char *user, const char *pass, char *out, size_t cap);

#endif
