/*
 * pol.h - compiled policy: client access control (<Proxy>/<ProxyMatch> sections with Apache
 * 2.4 Require and 2.2 Order/Allow/Deny), address and subnet matching, port lists.
 * (ProxyBlock, NoProxy, ProxyRemote, ProxyDomain and PAC generation join this module with
 * their issue.)
 *
 * Pure functions over immutable compiled objects: no I/O, no locks; a compiled object may be
 * read from any number of threads at once. Builders are used by the config loader only.
 */
#ifndef GH_POL_H
#define GH_POL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* ---- addresses and subnets ---- */

struct pol_net {
	int family;        /* AF_INET or AF_INET6 */
	uint8_t addr[16];  /* network address, host bits zero */
	unsigned prefix;   /* prefix length in bits */
};

/* Parse an address or subnet in any of Apache's forms: a full address ("10.1.2.3", "::1"),
 * a partial IPv4 address ("192.168", "10."), address/netmask ("10.0.0.0/255.0.0.0"),
 * CIDR ("10.0.0.0/8", "fe80::/10"). Returns 0, or -1 with *err (static) when text is not an
 * address form (the caller may then treat it as a host name). */
int pol_net_parse(const char *text, struct pol_net *out, const char **err);

/* Does addr (AF_INET or AF_INET6; v4-mapped IPv6 matches IPv4 nets) lie in net? */
int pol_net_match(const struct pol_net *net, const struct sockaddr *addr);

/* Format a net for messages: "10.0.0.0/8". Returns buf. */
char *pol_net_format(const struct pol_net *net, char *buf, size_t len);

/* ---- authorization containers (issue 11: <Location>; issue 14: <Proxy>) ----
 *
 * Apache 2.4 mod_authz_core: Require lines, an implicit <RequireAny> at the top, and
 * <RequireAny>/<RequireAll>/<RequireNone> containers; terms ip, local, all granted|denied,
 * valid-user, user NAME..., each optionally "not" (a <Proxy> section's tree, built through
 * pol_acl_require, also has host and group). Built by the config loader, then read-only
 * (any thread may check). See policy/authz.c for the evaluation: one evaluator for both,
 * three-valued while the user is not known, so POL_AUTHZ_NO_USER comes back only when a user
 * could change the outcome (a <RequireNone> of users alone refuses without asking). */
struct pol_authz;
enum pol_authz_res {
	POL_AUTHZ_DENIED = 0, POL_AUTHZ_GRANTED, POL_AUTHZ_NEUTRAL,
	POL_AUTHZ_NO_USER     /* a user term and no authenticated user: ask for credentials */
};
int pol_authz_new(struct pol_authz **ap);
void pol_authz_free(struct pol_authz **ap);
/* Open a container ("RequireAny", "RequireAll", "RequireNone") / close the innermost one.
 * Return 0 or -1 with *err (static or owned by a, valid until the next builder call). */
int pol_authz_open(struct pol_authz *a, const char *container, const char **err);
int pol_authz_close(struct pol_authz *a, const char **err);
/* One Require line: args are the words after "Require"; where is "FILE:LINE" for
 * descriptions. */
int pol_authz_require(struct pol_authz *a, char *const *args, size_t nargs, const char *where,
                      const char **err);
/* Every container closed? */
int pol_authz_finish(struct pol_authz *a, const char **err);
int pol_authz_empty(const struct pol_authz *a);      /* no Require at all */
int pol_authz_uses_user(const struct pol_authz *a);  /* valid-user or user terms */
/* Decide for client and user (NULL: not authenticated yet). *rule describes the deciding
 * Require line (owned by a). */
enum pol_authz_res pol_authz_check(const struct pol_authz *a, const struct sockaddr *client,
                                   const char *user, const char **rule);

/* ---- port lists (AllowCONNECT) ---- */

struct pol_ports;
/* Parse "443", "563", "8000-8100" arguments (ports 1..65535, ranges lo-hi with lo <= hi).
 * Returns 0 or -1 with *err pointing at the bad argument itself (args[i]), or NULL when out of
 * memory. */
int pol_ports_new(struct pol_ports **pp, char *const *args, size_t nargs, const char **err);
void pol_ports_free(struct pol_ports **pp);
int pol_ports_has(const struct pol_ports *p, unsigned port);

/* ---- why a rule decided ---- */

/* A rule's description in two parts, and both together. text is the rule's words, for the
 * pages users see ("ProxyBlock casino", "Require ip 10.0.0.0/8"); where says where the rule
 * is written, for admins only ("gatehouse.conf:12", "<Proxy *> at gatehouse.conf:10"; "" for
 * built-in rules); full is "TEXT (WHERE)", or the text alone when where is "", for the error
 * log and the status page ("ProxyBlock casino (gatehouse.conf:12)"). The struct and its
 * strings are static or owned by the compiled object that returned them. */
struct pol_why {
	const char *text;
	const char *where;
	const char *full;
	const char *line;  /* the rule's own "FILE:LINE" when known (access rules, see
	                    * pol_acl_rule_line), else NULL: for the status page's explain */
};

/* ---- client access control ---- */

struct pol_acl;
struct pol_acl_section;

enum pol_section_kind { POL_SEC_PREFIX, POL_SEC_REGEX };
enum pol_order { POL_ORDER_NONE = 0, POL_ORDER_DENY_ALLOW, POL_ORDER_ALLOW_DENY, POL_ORDER_MUTUAL_FAILURE };

int pol_acl_new(struct pol_acl **aclp);
void pol_acl_free(struct pol_acl **aclp);

/* Add a <Proxy pattern> (prefix; "*" matches everything; a pattern with '*' or '?' is one of
 * Apache's wildcard forms, matched against the whole URL: "http://" "*.example.com/" "*" as one
 * word) or <ProxyMatch regex> (POSIX extended, case-insensitive) section. Sections are kept in
 * config order. where names the section in rule descriptions, e.g. "<Proxy *> at
 * gatehouse.conf:10" (NULL: "<Proxy PATTERN>"). Returns the section or NULL with *err.
 * Builder messages (*err from pol_acl_*) may live in the acl: valid until the next builder call
 * on the same acl or pol_acl_free. */
struct pol_acl_section *pol_acl_section_add(struct pol_acl *acl, enum pol_section_kind kind,
                                            const char *pattern, const char *where,
                                            const char **err);

/* <Limit METHOD...> (except 0) or <LimitExcept METHOD...> (except 1) inside section parent:
 * access rules added to the returned block apply only to the methods it names (or, for
 * LimitExcept, to all others) and, for those methods, replace the section's own rules.
 * Method names are case-sensitive tokens. Returns the block (to pass to pol_acl_require etc.)
 * or NULL with *err. where names it in rule descriptions (NULL: generated). */
struct pol_acl_section *pol_acl_limit_add(struct pol_acl_section *parent, int except,
                                          char *const *methods, size_t nmethods,
                                          const char *where, const char **err);

/* Apache 2.4: "Require ip A B...", "Require host H...", "Require all granted|denied",
 * "Require local", "Require valid-user", "Require user U...", "Require group G...", each but
 * "all" also as "Require not ...". args are the words after "Require". The lines go into the
 * innermost open container (pol_acl_container_open), else the section's top, where several
 * lines mean any of them (RequireAny) and "not" lines (and <RequireNone>) veto, as before
 * issue 14. A negative line directly in <RequireAny> or <RequireNone> is refused, as Apache
 * does. Returns 0 or -1 with *err. */
int pol_acl_require(struct pol_acl_section *s, char *const *args, size_t nargs, const char **err);

/* <RequireAll>, <RequireAny>, <RequireNone> (container: the name without brackets) inside s,
 * nested at most 16 deep; close checks the innermost (not empty; a <RequireAll> must hold a
 * positive rule). The config loader keeps the sections balanced; a section left with an open
 * container is a loader bug. Return 0 or -1 with *err. (issue 14) */
int pol_acl_container_open(struct pol_acl_section *s, const char *container, const char **err);
int pol_acl_container_close(struct pol_acl_section *s, const char **err);

/* Apache 2.2: "Order deny,allow|allow,deny|mutual-failure", "Allow from ...", "Deny from ..."
 * (args start after "from": "all", addresses/subnets in pol_net forms, host names or domain
 * suffixes, "env=..." is rejected). Mixing 2.2 and 2.4 directives in one section is an error. */
int pol_acl_order(struct pol_acl_section *s, const char *arg, const char **err);
int pol_acl_allow(struct pol_acl_section *s, int deny, char *const *args, size_t nargs, const char **err);

/* The Require/Allow/Deny/Order rules added to s from now on are written at line ("FILE:LINE";
 * NULL: unknown): their struct pol_why says so in its line member (where and full are
 * unchanged). Returns 0, or -1 when out of memory. */
int pol_acl_rule_line(struct pol_acl_section *s, const char *line);

enum pol_verdict { POL_ALLOW = 0, POL_DENY = 1, POL_NEED_NAME = 2,
                   POL_NEED_USER = 3  /* issue 14: the answer depends on a user and who->user
                                       * is NULL: the daemon asks for credentials (407) */ };

/* ---- the request identity (ARCHITECTURE.md, "Seams for what comes next"; issue 14) ----
 *
 * Who is asking: filled by the daemon before the <Proxy> decision and read by the ACL, the
 * policy, the logs and the status page. Authentication (daemon/pauth.c) is the only code that
 * parses Proxy-Authorization; it sets user and groups. The strings belong to the caller (the
 * connection) and live at least as long as the call. */
struct who {
	const struct sockaddr *addr;    /* the client's address (never NULL) */
	const char *name;               /* its double-reverse-confirmed host name: NULL not looked
	                                 * up yet, "" none */
	const char *user;               /* the authenticated user, NULL: none (yet) */
	const char *const *groups;      /* the user's groups (AuthGroupFile, or the helper's
	                                 * group= keys), ngroups of them; NULL when none */
	size_t ngroups;
	int exempt;                     /* PAC/WPAD: reachable without credentials. User terms
	                                 * (valid-user, user, group) count as granted, so host and
	                                 * ip terms still decide, and POL_NEED_USER never comes */
};

/* The authentication settings of a section (AuthType, AuthName, providers: daemon/pauth.h's
 * struct pauth_cfg), opaque here: the config loader attaches them with pol_acl_set_authn and
 * the decision returns the ones in force for the URL. The acl does not own or free them.
 * off: they are AuthType None's (Apache: authentication switched off in this section). They
 * are still "settings" for the choice of the last matching section that has some, so a
 * <Proxy http://intranet/> with AuthType None switches off what <Proxy *> set up; they cover
 * no user term (pol_acl_authn_missing), and the daemon asks nobody under them. */
int pol_acl_set_authn(struct pol_acl_section *s, const void *authn, int off);

/* The first user term (valid-user, user, group) of s's own rules and its <Limit> blocks', or
 * NULL (cfg: a section with AuthType None cannot have one). */
const struct pol_why *pol_acl_sec_first_user(const struct pol_acl_section *s);

/* Decide for who (see struct who) whether it may use the proxy for method (NULL: GET) on url,
 * as pol_acl_check_why does, with the Apache 2.4 rules of issue 14 inside <Proxy>,
 * <ProxyMatch>, <Limit> and <LimitExcept>: <RequireAll>, <RequireAny>, <RequireNone>
 * containers, and Require valid-user, user NAME..., group NAME... beside ip, host, local, all.
 * Returns:
 *   POL_ALLOW / POL_DENY   (*why: the deciding rule, as for pol_acl_check_why);
 *   POL_NEED_NAME          the answer depends on who->name, which is NULL: look it up, ask again;
 *   POL_NEED_USER          the answer depends on a user and who->user is NULL: authenticate
 *                          (credentials, or a 407 asking for them), then ask again.
 * A host term and a user term both undecided: POL_NEED_NAME first.
 * *authn (authn may be NULL) is set to the authentication settings in force for url: those of
 * the last section in config order that matches url and has some (pol_acl_set_authn), so that
 * <Proxy *> can hold AuthType... and a later <Proxy http://payroll/> only "Require group hr";
 * NULL when no matching section has any. When POL_NEED_USER comes back with *authn NULL, the
 * config is broken (the loader refuses user terms without authentication in force), and the
 * daemon denies. */
enum pol_verdict pol_acl_decide(const struct pol_acl *acl, const char *method, const char *url,
                                size_t url_len, const struct who *who,
                                const struct pol_why **why, const void **authn);

/* Does any section's rule use valid-user, user or group? (cfg: refuse such a config when no
 * section has authentication settings.) */
int pol_acl_uses_user(const struct pol_acl *acl);

/* The first user term (valid-user, user, group) of a section that no section with
 * authentication settings can cover (the section itself, "*", a <Proxy> whose prefix is a
 * prefix of its own, or any <ProxyMatch>/wildcard section, whose reach cannot be compared),
 * or NULL when every one is covered. The config loader calls it once every section is
 * complete and refuses the config with "LINE: TEXT needs AuthType in this or an enclosing
 * <Proxy *> section" (line: the rule's "FILE:LINE"). */
const struct pol_why *pol_acl_authn_missing(const struct pol_acl *acl);

/* Decide whether client may use the proxy for method (NULL: GET) on url (the request target
 * as an absolute URL, or "host:port" for CONNECT). Sections whose pattern matches url are
 * applied in config order; the last matching section that has access rules for the method
 * decides (a <Limit> block naming the method first, else the section's own rules). No matching
 * section: loopback clients only. PURGE is special: only <Limit>/<LimitExcept> blocks that
 * apply to it can grant it, and without one it is denied to everybody. client_name is the client's double-reverse-confirmed host name, or NULL when not (yet)
 * known: if the answer depends on it, POL_NEED_NAME is returned and the caller looks the name up
 * and asks again (with "" when it has none). *rule is set to a static or acl-owned description
 * of the deciding rule for the 403 page and log
 * ("Require ip 10.0.0.0/8 (<Proxy *> at gatehouse.conf:10)"). */
enum pol_verdict pol_acl_check(const struct pol_acl *acl, const char *method, const char *url,
                               size_t url_len,
                               const struct sockaddr *client, const char *client_name,
                               const char **rule);
/* The same, with the deciding rule in two parts (*why: never NULL on return; see struct
 * pol_why): pol_acl_check's *rule is (*why)->full. */
enum pol_verdict pol_acl_check_why(const struct pol_acl *acl, const char *method,
                                   const char *url, size_t url_len,
                                   const struct sockaddr *client, const char *client_name,
                                   const struct pol_why **why);

/* ==== intranet policy: ProxyBlock, NoProxy, ProxyRemote(Match), ProxyDomain, PAC ====
 *
 * Life cycle: pol_new(); one builder call per directive argument or line, in config order;
 * pol_compile(); then the struct pol is immutable and may be read by any number of threads at
 * once until pol_free(). Builder calls after pol_compile() fail. Builder error messages (*err)
 * are static strings; the config loader prefixes "FILE:LINE: Directive: ". where is the
 * caller's "FILE:LINE" (may be NULL): it appears in rule descriptions and warnings.
 *
 * The daemon decides in this order (issue 3), pol_decide() doing all but the first step:
 *   1. client ACL: pol_acl_check() (a separate object; a denial ends the request);
 *   2. ProxyDomain: GET for an unqualified host -> REDIRECT (301);
 *   3. ProxyBlock: `*`, names and words, then addresses (IP/CIDR entries, and the resolved
 *      addresses of listed names through a struct pol_addrset) -> BLOCK (403); when no
 *      entry matches but the set is not complete yet (pol_block_ready) -> WAIT;
 *   4. NoProxy (only when some ProxyRemote line matches): -> DIRECT;
 *   5. ProxyRemote/ProxyRemoteMatch lines matching the request, in config order -> PARENTS;
 *   6. otherwise DIRECT.
 *
 * Matching semantics (host names compare without case, a trailing dot is ignored):
 *  ProxyBlock
 *   - `*` blocks everything.
 *   - A word (no dot: "casino") blocks every host containing it anywhere: Apache's substring
 *     rule, checked by a bigram index. Words are meant to be few.
 *   - A name with a dot ("example.com") blocks every host in which it appears as a whole run
 *     of labels: example.com, www.example.com, example.com.evil.net, a.example.com.b. This is
 *     Apache's "hostname contains the entry" with the run aligned to labels; unlike Apache,
 *     "myexample.com" and "example.community" are not blocked by it (a blocklist of 100,000
 *     domains stays a hash lookup per label run instead of 100,000 substring searches).
 *   - A leading dot (".example.com") requires at least one label before the run: it blocks
 *     www.example.com and www.example.com.evil.net, not example.com (as Apache's substring).
 *   - An address ("10.1.2.3", "2001:db8::1"), a subnet with '/' (CIDR or address/netmask) or a
 *     partial dotted address ("192.168", "10.") blocks by address: the host when it is a
 *     literal, or any of its resolved addresses. A number without a dot is a word.
 *   - Dotted names without a leading dot (not all digits) are also resolved by the daemon
 *     (pol_block_name()); their addresses, held in a struct pol_addrset, block requests to any
 *     host resolving to one of them, also when the request goes through a parent (Apache skips
 *     the address check there).
 *  NoProxy
 *   - ".corp.example" (Domain): corp.example itself and every name below it (Apache matches
 *     only names below it; the bare domain is included here on purpose).
 *   - "192.168", "10.0.0.0/8", "10.0.0.0/255.0.0.0", "fd00::/8" (SubNet) and "10.1.2.3",
 *     "::1" (IpAddr): the host when it is a literal, or any of its resolved addresses.
 *   - Anything else is a Hostname: an exact name match, or one of the request's resolved
 *     addresses is one of the name's addresses (pol_noproxy_name() lists the names to resolve;
 *     the answers go in a second struct pol_addrset). Never a substring match.
 *  ProxyRemote match remote [user:pass]
 *   - match `*`: every request; a scheme ("http", "ftp", "https"): requests of that scheme;
 *     anything containing ':' is a URL prefix, its scheme://authority part compared without
 *     case and the rest with case. ProxyRemoteMatch: POSIX extended regex over the URL, without
 *     case (as <ProxyMatch> here; Apache compares with case).
 *   - CONNECT host:port is matched as the URL "https://host/" (port 443) or
 *     "https://host:port/", scheme "https".
 *   - remote is http://[user:pass@]host[:port][/]; the port defaults to 80 as in Apache.
 *     https://... is an HTTPS parent (pol_parent.tls: TLS to it, port 443 by default), another
 *     parent than http:// to the same host and port, with its own health key. Credentials (the
 *     percent-decoded userinfo, or the third argument, not both) become the
 *     "Basic <base64(user:pass)>" value of Proxy-Authorization.
 *   - Every line that matches a request adds its parent to the request's failover list, in
 *     config order, each parent once, at most POL_PARENTS_MAX.
 *  ProxyDomain .corp.example
 *   - A GET whose host has no dot, is not "localhost" and not an IPv6 literal is redirected to
 *     the same URL with the domain appended to the host (userinfo, port, path, query kept).
 */

struct pol;
struct pol_addrset;
struct pol_addrset_builder;

/* An empty policy. Returns 0, or -1 when out of memory. */
int pol_new(struct pol **pp);
/* Free a policy (NULL is fine); sets *pp to NULL. */
void pol_free(struct pol **pp);

/* ProxyBlock: one call per argument ("*", a word, a name, ".domain", an address or a subnet). */
int pol_block_add(struct pol *p, const char *entry, const char *where, const char **err);
/* NoProxy: one call per argument (Domain, SubNet, IpAddr or Hostname). */
int pol_noproxy_add(struct pol *p, const char *entry, const char *where, const char **err);
/* ProxyRemote match remote [userpass]; userpass NULL when absent. */
int pol_remote_add(struct pol *p, const char *match, const char *remote, const char *userpass,
                   const char *where, const char **err);
/* ProxyRemoteMatch regex remote [userpass]. */
int pol_remote_match_add(struct pol *p, const char *regex, const char *remote,
                         const char *userpass, const char *where, const char **err);
/* ProxyDomain .domain (must start with a dot, as in Apache). A second call replaces the first. */
int pol_domain_set(struct pol *p, const char *domain, const char *where, const char **err);
/* ProxyRemoteFallback direct (on = 1) | none (on = 0, the default): may the daemon go direct
 * when every parent of a request is down? Carried to the decision as fallback_direct. */
void pol_remote_fallback_direct(struct pol *p, int on);
/* The FILE:LINE of the ProxyRemoteFallback line, for warnings (optional). */
void pol_remote_fallback_where(struct pol *p, const char *where);

/* Finalise: sort, index, and look for conflicts: a NoProxy entry shadowed by ProxyBlock, a
 * subnet inside another one, duplicates, `ProxyBlock *` with other rules, NoProxy or
 * ProxyRemoteFallback without ProxyRemote, a ProxyDomain that NoProxy does not cover while
 * parents exist, ... Each conflict is one line ending in '\n', naming the config lines
 * involved ("FILE:LINE: message" when one line is at fault), appended to warn (always
 * NUL-terminated when warnlen > 0; lines that do not fit are dropped, the count still counts
 * them). Warnings are for `gatehouse -t`, not errors. Returns the number of warnings, or -1
 * when out of memory or called twice (the policy is then unusable: pol_free it). */
int pol_compile(struct pol *p, char *warn, size_t warnlen);

/* Names the daemon resolves in the background and keeps resolved (re-resolving when their TTL
 * runs out), for ProxyBlock and for NoProxy Hostname entries: lower case, no trailing dot.
 * i from 0; NULL past the end. Compiled policies only. */
const char *pol_block_name(const struct pol *p, size_t i);
/* ProxyBlock entries (names, words, addresses and subnets, `*`), for the status page. */
size_t pol_block_count(const struct pol *p);
const char *pol_noproxy_name(const struct pol *p, size_t i);

/* The first resolution of the ProxyBlock names (pol_block_name). A compiled policy that lists
 * such names starts "not ready": their addresses are not known yet, so a request by address
 * literal, or through another name, cannot be checked against them, and pol_decide answers
 * POL_WAIT where it would have to read the blocked set. The daemon marks the policy ready
 * (pol_block_ready_mark, any thread, once) after it has published a blocked set holding the
 * first outcome of every such name: addresses, NXDOMAIN/NODATA, or an answered failure such as
 * SERVFAIL; a DNS server that does not answer at all leaves the policy waiting. A policy with
 * no such names is ready from pol_compile on. The flag is the one thing that changes in a
 * compiled policy: 0 to 1, never back (release store; pol_block_ready loads with acquire, so a
 * thread that sees 1 and then loads the published set sees that set or a newer one). */
void pol_block_ready_mark(struct pol *p);
int pol_block_ready(const struct pol *p);

/* A parent proxy. Owned by the policy; the same pointer for every line naming the same
 * (host, port, credentials). */
struct pol_parent {
	unsigned id;        /* 0 .. pol_parent_count()-1: index for the daemon's health table */
	const char *host;   /* host name or address literal (IPv6 without brackets) */
	unsigned port;
	const char *key;    /* "host:port" ("[v6]:port"), "https://host:port" for a TLS parent:
	                     * identity to keep health across reloads, and its name for admins */
	int tls;            /* https://: TLS to the parent (SNI and the certificate check name
	                     * host); the default port is then 443 */
	const char *auth;   /* Proxy-Authorization value "Basic ...", or NULL */
	const char *where;  /* the first line naming it */
};
size_t pol_parent_count(const struct pol *p);
const struct pol_parent *pol_parent_get(const struct pol *p, size_t i);

/* ---- address sets: the resolved addresses of listed names ----
 * Answers arrive from background DNS and expire, so they live outside the immutable policy.
 * The daemon keeps one builder per kind (ProxyBlock names, NoProxy host names) on one thread,
 * sets a name's addresses as answers arrive, and publishes an immutable struct pol_addrset
 * made by pol_addrset_build() through an atomic pointer (release store; readers load with
 * acquire at the start of a decision and never keep it past the current loop iteration).
 * Publishing is coalesced (e.g. at most once a second while answers keep coming: a build
 * costs O(n log n) in the number of addresses). The old set is freed after a grace period in
 * which every worker has finished the loop iteration it was in at the swap (each worker
 * bumps a counter per iteration; free when all counters moved). Sets carry the names, not
 * indices, so a set built for an older policy is safe: names no longer listed are ignored.
 */

int pol_addrset_builder_new(struct pol_addrset_builder **bp);
void pol_addrset_builder_free(struct pol_addrset_builder **bp);
/* Replace the addresses of name (as given by pol_block_name/pol_noproxy_name) with addrs
 * (AF_INET/AF_INET6 entries; others are skipped); n == 0 forgets the name. Returns 0 or -1 when
 * out of memory (the builder is unchanged). */
int pol_addrset_builder_set(struct pol_addrset_builder *b, const char *name,
                            const struct sockaddr_storage *addrs, size_t n);
/* An immutable set of every address set so far (NULL when out of memory). */
struct pol_addrset *pol_addrset_build(const struct pol_addrset_builder *b);
void pol_addrset_free(struct pol_addrset **sp);
size_t pol_addrset_count(const struct pol_addrset *s);
/* The listed name owning addr (one of them when several share it), or NULL. IPv4 and
 * v4-mapped IPv6 addresses are the same. */
const char *pol_addrset_lookup(const struct pol_addrset *s, const struct sockaddr *addr);

/* ---- decisions ---- */

#define POL_PARENTS_MAX 16

struct pol_req {
	const char *method;   /* "GET", "CONNECT", ... (compared with case, as HTTP does) */
	const char *scheme;   /* "http", "ftp", ...; ignored for CONNECT */
	const char *host;     /* NUL-terminated; an IPv6 literal with or without brackets */
	unsigned port;
	const char *url;      /* the absolute URL as requested, NUL-terminated (not for CONNECT) */
	/* The target's addresses: resolved = 0 means not looked up yet (addrs ignored);
	 * resolved = 1 means addrs[0..naddrs) is the whole answer, possibly empty when resolution
	 * failed. A literal host is its own address either way. */
	int resolved;
	const struct sockaddr_storage *addrs;
	size_t naddrs;
};

enum pol_action {
	POL_DIRECT = 0,   /* contact the origin (or FTP server) directly */
	POL_PARENTS,      /* go through parents[0..nparents) in order, skipping those down */
	POL_BLOCK,        /* 403 naming rule */
	POL_REDIRECT,     /* 301 to location */
	POL_INVALID,      /* the request cannot be decided (host empty or too long, redirect
	                   * buffer too small, policy not compiled): 400 with rule as the reason */
	POL_WAIT          /* the answer depends on the blocked set, and the policy is not ready
	                   * (pol_block_ready): wait until it is, then decide again; never act on
	                   * it (the request may be blocked). rule says why. */
};

struct pol_decision {
	enum pol_action action;
	/* 1: an address-based rule (ProxyBlock address or subnet, NoProxy subnet or Hostname by
	 * address) could change this outcome and the target was not resolved: resolve it, then
	 * decide again with resolved = 1 before acting. Never set for BLOCK, REDIRECT or WAIT.
	 * While the policy is not ready (pol_block_ready), every request not yet decided by
	 * name needs its addresses when the policy lists names to resolve. */
	int need_addrs;
	/* Static or policy-owned description of the deciding rule, for the 403 page and the log:
	 * "ProxyBlock example.com (gatehouse.conf:12)", "NoProxy .corp.example (gatehouse.conf:3)",
	 * "ProxyRemote * http://fw:3128 (gatehouse.conf:7)" (first matching line),
	 * "ProxyDomain .corp.example (gatehouse.conf:2)", "no ProxyRemote applies". */
	const char *rule;
	const struct pol_why *why; /* the same rule in two parts: rule is why->full */
	const char *location;  /* REDIRECT: NUL-terminated, in the caller's buffer */
	size_t location_len;
	size_t nparents;
	const struct pol_parent *parents[POL_PARENTS_MAX];
	int fallback_direct;   /* PARENTS: ProxyRemoteFallback direct */
};

/* Decide req under p. blocked holds the addresses of pol_block_name() names, noproxy those of
 * pol_noproxy_name() names; either may be NULL (empty). locbuf/loclen receive a REDIRECT's
 * location: strlen(url) + 256 bytes always suffice. No I/O, no allocation (glibc's regexec may
 * allocate for ProxyRemoteMatch). Returns out->action. */
enum pol_action pol_decide(const struct pol *p, const struct pol_req *req,
                           const struct pol_addrset *blocked, const struct pol_addrset *noproxy,
                           char *locbuf, size_t loclen, struct pol_decision *out);

/* ---- PAC ---- */

/* Generate a proxy auto-config file from the policy: FindProxyForURL(url, host) sends plain
 * host names, the ProxyDomain domain and NoProxy domains and host names DIRECT (string tests),
 * NoProxy subnets DIRECT for IP-literal hosts only (isInNet for IPv4, a small helper for IPv6),
 * and everything else to "PROXY p1; PROXY p2 ..." where proxies ("host:port", from PacProxy;
 * "https://host:port" is an HTTPS proxy and becomes "HTTPS host:port", issue 13: HTTPS ones
 * come first, PROXY ones as their fallback, each kind rotated on its own)
 * are rotated by a stable hash of the host so browsers spread over them, the others following
 * as failover; "; DIRECT" is appended when fallback_direct (PacFallback direct). ProxyBlock
 * rules are not copied into the file (the proxy refuses, with its 403 page), except that hosts
 * a ProxyBlock rule blocks inside a NoProxy/ProxyDomain domain, ProxyBlock words, `*`, and
 * blocked subnets overlapping NoProxy subnets are sent to the proxy instead of DIRECT.
 * On success *out is a malloc'd NUL-terminated file (free it), *outlen its length, and 0 is
 * returned; -1 with *err (static) otherwise. */
int pol_pac_generate(const struct pol *p, const char *const *proxies, size_t nproxies,
                     int fallback_direct, char **out, size_t *outlen, const char **err);

/* Standard base64 (RFC 4648, with padding) of in[0..n) into out, NUL-terminated. Returns the
 * length written, or 0 when outlen < 4 * ((n + 2) / 3) + 1 (out then holds ""). */
size_t pol_base64(const void *in, size_t n, char *out, size_t outlen);

#endif
