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

/* ---- port lists (AllowCONNECT) ---- */

struct pol_ports;
/* Parse "443", "563", "8000-8100" arguments (ports 1..65535, ranges lo-hi with lo <= hi).
 * Returns 0 or -1 with *err pointing at the bad argument itself (args[i]), or NULL when out of
 * memory. */
int pol_ports_new(struct pol_ports **pp, char *const *args, size_t nargs, const char **err);
void pol_ports_free(struct pol_ports **pp);
int pol_ports_has(const struct pol_ports *p, unsigned port);

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

/* Apache 2.4: "Require ip A B...", "Require host H...", "Require all granted|denied",
 * "Require not ip|host ...", "Require local". args are the words after "Require".
 * Several Require lines in a section mean any of them (RequireAny), with "not" lines vetoing.
 * Returns 0 or -1 with *err. */
int pol_acl_require(struct pol_acl_section *s, char *const *args, size_t nargs, const char **err);

/* Apache 2.2: "Order deny,allow|allow,deny|mutual-failure", "Allow from ...", "Deny from ..."
 * (args start after "from": "all", addresses/subnets in pol_net forms, host names or domain
 * suffixes, "env=..." is rejected). Mixing 2.2 and 2.4 directives in one section is an error. */
int pol_acl_order(struct pol_acl_section *s, const char *arg, const char **err);
int pol_acl_allow(struct pol_acl_section *s, int deny, char *const *args, size_t nargs, const char **err);

enum pol_verdict { POL_ALLOW = 0, POL_DENY = 1, POL_NEED_NAME = 2 };

/* Decide whether client may use the proxy for url (the request target as an absolute URL, or
 * "host:port" for CONNECT). Sections whose pattern matches url are applied in config order; the
 * last matching section that has access rules decides. No matching section: loopback clients
 * only. client_name is the client's double-reverse-confirmed host name, or NULL when not (yet)
 * known: if the answer depends on it, POL_NEED_NAME is returned and the caller looks the name up
 * and asks again (with "" when it has none). *rule is set to a static or acl-owned description
 * of the deciding rule for the 403 page and log
 * ("Require ip 10.0.0.0/8 (<Proxy *> at gatehouse.conf:10)"). */
enum pol_verdict pol_acl_check(const struct pol_acl *acl, const char *url, size_t url_len,
                               const struct sockaddr *client, const char *client_name,
                               const char **rule);

#endif
