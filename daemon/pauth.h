/*
 * pauth.h - proxy authentication (issue 14): who is browsing.
 *
 * The one place that parses Proxy-Authorization. It fills the request identity (struct who,
 * policy/pol.h) with the user and the user's groups before the <Proxy> decision; the ACL,
 * the policy, the logs and the status page read struct who, never the field.
 *
 * The flow (daemon/proxy.c conn_route):
 *   1. pol_acl_decide() with who.user NULL. POL_NEED_USER (a user term decides) comes back
 *      with the section's authentication settings (struct pauth_cfg) in *authn.
 *   2. pauth_identify() with the request's Proxy-Authorization value:
 *        PAUTH_OK         who.user/groups set (they point into the struct pauth_conn);
 *                         decide again: allowed, or 403 naming the Require line that refused;
 *        PAUTH_CHALLENGE  no, malformed or wrong credentials: 407 with pauth_challenge();
 *        PAUTH_WAIT       a helper was asked; wake(arg) runs later on the worker's loop and
 *                         the caller calls pauth_identify again (same arguments);
 *        PAUTH_LIMITED    too many failures from this client address: 429, Retry-After;
 *        PAUTH_UNAVAILABLE the helper cannot answer (not startable, died, hung, overloaded):
 *                         503 naming why; never a stalled connection.
 *   3. Proxy-Authorization is hop-by-hop: removed from what goes upstream unless
 *      ProxyChainAuth On.
 *
 * Schemes and providers (per <Proxy> section, Apache's names):
 *   AuthType Basic|Negotiate  AuthName REALM
 *   AuthBasicProvider file|external
 *   AuthUserFile PATH         htpasswd: bcrypt, SHA-256/512 crypt (webui/auth.h, one code)
 *   AuthGroupFile PATH        Apache's "group: user user ..." lines
 *   AuthExternal "CMD ARGS"   a Squid Basic helper (basic_ldap_auth ...), pool per worker
 *   AuthExternalChildren N [concurrency=C]   helper processes in all (shared out among the
 *                             workers, at least one each); C requests in flight per child
 *   AuthExternalTimeout SECONDS
 *   AuthNegotiateExternal "CMD ARGS"  negotiate_kerberos_auth (Squid's YR/KK/TT/AF/NA/BH)
 *   AuthNegotiateChildren N
 *   AuthCacheTTL SECONDS, AuthNegativeCacheTTL SECONDS
 * and at the top level AuthFailureLimit BURST SECONDS (the brute-force limiter).
 *
 * The result cache: process-wide, bounded, keyed by an HMAC-SHA256 (random key made at start)
 * of the settings' id and the whole credential: never the password itself. A positive result
 * keeps the user and groups for AuthCacheTTL, a negative one for AuthNegativeCacheTTL. A
 * connection also remembers its last accepted credential (its MAC and expiry): the next
 * request on it with the same Proxy-Authorization costs one memcmp.
 *
 * Threads: struct pauth_cfg is immutable (part of a config snapshot). struct pauth (result
 * cache, limiter, counters) is shared by the workers: one mutex held for a table probe, never
 * while hashing a password. struct pauth_wk is one worker's (its helper pools).
 */
#ifndef GH_PAUTH_H
#define GH_PAUTH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "daemon/helper.h"
#include "policy/pol.h"

#define PAUTH_REALM_DEFAULT "Gatehouse proxy"
#define PAUTH_CACHE_TTL_DEFAULT 300          /* AuthCacheTTL */
#define PAUTH_NEGATIVE_TTL_DEFAULT 10        /* AuthNegativeCacheTTL */
#define PAUTH_CHILDREN_DEFAULT 5             /* AuthExternalChildren, AuthNegotiateChildren */
#define PAUTH_HELPER_TIMEOUT_DEFAULT 10      /* AuthExternalTimeout, seconds */
#define PAUTH_MAX_GROUPS 32                  /* groups kept per user */

struct auth_htpasswd;

/* ---- AuthGroupFile ---- */

struct pauth_groups;
/* Load Apache's group file: "GROUP: USER USER ..." per line, '#' comments and empty lines
 * skipped, a group listed twice merges. Errors name PATH:LINE. 0, or -1 with err. */
int pauth_groups_load(const char *path, struct pauth_groups **out, char *err, size_t errlen);
void pauth_groups_free(struct pauth_groups **g);
/* The groups user is in, at most cap names (owned by g), in file order. Returns the count. */
size_t pauth_groups_of(const struct pauth_groups *g, const char *user, const char **out,
                       size_t cap);

/* ---- the settings of one section (built by daemon/cfg.c, immutable) ---- */

enum pauth_provider { PAUTH_PROV_NONE = 0, PAUTH_PROV_FILE, PAUTH_PROV_EXTERNAL };

struct pauth_cfg {
	char *where;                   /* "FILE:LINE" of the section's AuthType */
	int basic;                     /* Basic offered: AuthType Basic, or AuthType Negotiate
	                                * with an AuthBasicProvider as the fallback */
	int negotiate;                 /* AuthType Negotiate (needs AuthNegotiateExternal).
	                                * basic and negotiate both 0: AuthType None, settings
	                                * that ask nobody (pol_acl_set_authn off): where they are
	                                * in force no user is taken, and a user rule inherited
	                                * from another section answers 403 (proxy.c) */
	char *realm;                   /* AuthName; NULL: PAUTH_REALM_DEFAULT */
	enum pauth_provider provider;  /* AuthBasicProvider (file when AuthUserFile is given) */
	char *user_file;               /* AuthUserFile, absolute */
	struct auth_htpasswd *users;   /* loaded with the config (a reload reads it again) */
	char *group_file;              /* AuthGroupFile, absolute, or NULL */
	struct pauth_groups *groups;
	struct hpool_cfg external;     /* AuthExternal, AuthExternalChildren (children here is
	                                * per worker, computed by the loader), concurrency,
	                                * AuthExternalTimeout; cmd NULL: none */
	unsigned external_children;    /* as written: in all */
	struct hpool_cfg negotiate_helper; /* AuthNegotiateExternal, AuthNegotiateChildren */
	unsigned negotiate_children;
	unsigned cache_ttl_s;          /* AuthCacheTTL */
	unsigned negative_ttl_s;       /* AuthNegativeCacheTTL */
	uint8_t id[16];                /* random, per built object: the result cache's key
	                                * includes it, so a reload or another section never
	                                * reuses a result made under other settings */
};
void pauth_cfg_free(struct pauth_cfg *pc);   /* the members; not pc itself */

/* ---- process-wide state ---- */

struct pauth_stats {
	uint64_t ok, failed, challenged, limited, unavailable;  /* pauth_identify outcomes */
	uint64_t cache_hits, cache_misses, conn_hits;           /* result cache, per-connection */
	uint64_t verifications;        /* password hashes computed or helper requests made */
};

struct pauth;
int pauth_new(struct pauth **out, unsigned fail_burst, unsigned fail_refill_s);
void pauth_free(struct pauth **pa);
/* AuthFailureLimit after a reload (the table is kept). */
void pauth_set_limit(struct pauth *pa, unsigned fail_burst, unsigned fail_refill_s);
void pauth_get_stats(const struct pauth *pa, struct pauth_stats *out);

/* A worker's part: its helper pools (helper.h). */
struct pauth_wk;
int pauth_wk_new(struct ev_loop *loop, unsigned nworkers, struct pauth_wk **out);
void pauth_wk_free(struct pauth_wk **wk);
void pauth_wk_helper_stats(const struct pauth_wk *wk, struct hpool_stats *out);
/* A config was loaded (the worker's start, a reload): start the helper pools its sections
 * use, on wk's loop thread, so that the first login after a start or a reload does not pay
 * the helpers' start. Unchanged helper lines keep their pool and running children (the set
 * matches by settings); a pool no longer named idles out as before. Spawning does not wait
 * for the children; one that cannot start is logged and retried at the first request (503
 * naming it). */
void pauth_wk_start(struct pauth_wk *wk, struct pauth_cfg *const *auths, size_t nauths);
/* The worker's loop was woken (ev_async): deliver finished verifications (their wake
 * callbacks run here). worker.c calls it from its async callback. */
void pauth_wk_poll(struct pauth_wk *wk);

/* ---- per connection ---- */

struct pauth_conn {
	char *user;                    /* the identity the last request proved (owned) */
	char *groups[PAUTH_MAX_GROUPS];
	size_t ngroups;
	char *cred;                    /* the last accepted Proxy-Authorization value, as sent:
	                               * the next request on the connection repeating it costs a
	                               * memcmp (no hashing: a hit through an authenticated
	                               * connection stays within a few % of one without). Wiped
	                               * when forgotten. Never in the result cache, which keys
	                               * on a MAC */
	size_t cred_len;
	int64_t cred_expires_ms;       /* 0: none remembered */
	const struct pauth_cfg *cred_cfg;
	uint8_t cred_id[16];           /* cred_cfg's id: the settings may be freed by a reload
	                                * between two requests and others made at the same
	                                * address; pauth_conn_under compares both */
	struct hreq *pending;          /* a helper request in flight, or NULL */
	struct pauth_job *job;         /* an htpasswd verification on the verifier thread (bcrypt
	                                * costs milliseconds: never on the worker's loop), or NULL */
	int pending_done;              /* its answer arrived: pauth_identify reads it */
	char *answer;                  /* that answer (owned), or NULL */
	int answer_status;             /* enum hp_status */
	uint32_t neg_child;            /* Negotiate: the helper child of an exchange in progress
	                                * (HPOOL_ANY: none) */
	char *neg_token;               /* Negotiate: the token for the next Proxy-Authenticate */
	char *neg_accepted;            /* Negotiate: the client's token that proved user on this
	                               * connection; a request repeating it byte for byte is that
	                               * user without asking the helper (pauth_neg.c says why
	                               * this is safe). Freed with the user, never shared */
	size_t neg_accepted_len;
	int neg_user_ok;               /* Negotiate: this connection proved pc->user (under
	                               * cred_cfg); later requests on it without
	                               * Proxy-Authorization are that user (SPNEGO is
	                               * connection-oriented). A new token starts over. */
	void (*wake)(void *arg);
	void *wake_arg;
};
void pauth_conn_init(struct pauth_conn *pc);
/* The connection closes: cancel a helper request or a queued password check (a check being
 * computed is waited for: its htpasswd belongs to the connection's snapshot), free the rest. */
void pauth_conn_fini(struct pauth_conn *pc);

enum pauth_res {
	PAUTH_OK = 0, PAUTH_CHALLENGE, PAUTH_WAIT, PAUTH_LIMITED, PAUTH_UNAVAILABLE
};

struct pauth_req {
	const struct pauth_cfg *cfg;   /* the settings pol_acl_decide returned */
	const char *field;             /* the Proxy-Authorization value, NULL when absent */
	size_t field_len;
	const struct sockaddr *addr;   /* the client */
	const char *addr_text;         /* "10.0.0.5", for the limiter and the logs */
	int64_t now_ms;                /* the loop's clock */
	void (*wake)(void *arg);       /* PAUTH_WAIT: called once on the worker's loop */
	void *wake_arg;
	/* out */
	char msg[200];                 /* why (for the page and the log): "wrong password for
	                                * user alice", "the helper basic_ldap_auth timed out" */
	unsigned retry_s;              /* PAUTH_LIMITED: seconds for Retry-After */
	const char *user_tried;        /* the user name of a failed Basic attempt (for the log
	                                * field), valid until the next call, or NULL */
};

/* See the flow above. Failures are logged at notice level, one line each, in a form the
 * packaged fail2ban filter matches:
 *   proxy authentication failed for user "alice" from 10.0.0.5: wrong password
 *   proxy authentication blocked for 10.0.0.5: 10 failures, retry in 6 s */
enum pauth_res pauth_identify(struct pauth *pa, struct pauth_wk *wk, struct pauth_conn *pc,
                              struct pauth_req *r, struct who *who);

/* Was pc's remembered identity proved under cfg (the same settings object, not one a reload
 * made at a freed one's address)? */
int pauth_conn_under(const struct pauth_conn *pc, const struct pauth_cfg *cfg);

/* Before the <Proxy> decision: does this request repeat, byte for byte, the Basic credential
 * its connection last had accepted (not expired, no exchange in progress)? Then who gets that
 * user and groups, a connection hit is counted, and 1 comes back: the decision is made once,
 * with the user, instead of once without and once with. The caller must check that the
 * settings the decision returns are pc's (pauth_conn_under), and decide again without the user when they
 * are not (another section's realm). 0: decide without a user, as usual. */
int pauth_conn_repeat(struct pauth *pa, struct pauth_conn *pc, const char *field, size_t len,
                      int64_t now_ms, struct who *who);

/* The Proxy-Authenticate field lines of a 407 for these settings, CRLF-terminated
 * ("Proxy-Authenticate: Negotiate\r\nProxy-Authenticate: Basic realm=\"Office\",
 * charset=\"UTF-8\"\r\n"). Returns the length written (NUL-terminated), 0 when cap is too
 * small. pc may carry a Negotiate continuation token ("Negotiate TOKEN"). */
size_t pauth_challenge(const struct pauth_cfg *cfg, const struct pauth_conn *pc, char *out,
                       size_t cap);

/* ---- internal: pauth.c <-> pauth_neg.c ---- */

/* Negotiate's exchange (pauth_neg.c): token is what follows "Negotiate " (NULL, 0 when the
 * field is absent: OK when the connection already proved a user by Negotiate). Called by
 * pauth_identify, again with the same arguments after PAUTH_WAIT. Never uses the cache. */
enum pauth_res pauth_negotiate(struct pauth *pa, struct pauth_wk *wk, struct pauth_conn *pc,
                               struct pauth_req *r, const char *token, size_t len,
                               struct who *who);
/* hpool_set_get on the worker's set. */
struct hpool *pauth_wk_pool(struct pauth_wk *wk, const struct hpool_cfg *hc, char *err,
                            size_t errlen);
/* Nonzero when r->addr_text is blocked now (sets r->retry_s and r->msg, counts nothing). */
int pauth_limit_check(struct pauth *pa, struct pauth_req *r);
/* A failed attempt: limiter, counter, the notice line; PAUTH_LIMITED (retry_s set) or
 * PAUTH_CHALLENGE; user may be NULL. */
enum pauth_res pauth_fail(struct pauth *pa, struct pauth_req *r, const char *user,
                          const char *why);
/* A request was decided by its connection's remembered identity (AuthConnHits). */
void pauth_count_conn_hit(struct pauth *pa);
/* who's user and groups are pc's (borrowed: valid until pc forgets them). */
void pauth_who_fill(const struct pauth_conn *pc, struct who *who);
/* Free pc's user and groups and drop their expiry and config (the credential stays). */
void pauth_conn_forget_user(struct pauth_conn *pc);

#endif
