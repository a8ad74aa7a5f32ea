/*
 * pol_priv.h - private to policy/: the Apache 2.4 authorization tree (authz.c) as the client
 * ACL (acl.c) uses it for the Require rules of a <Proxy>/<ProxyMatch>/<Limit> section, and
 * the host-name helpers both share. The public contract is in pol.h.
 *
 * One evaluator serves <Location> (pol_authz_check) and the sections (pol_authz_decide). A
 * section's tree differs from a <Location>'s in three ways: host and group terms are allowed;
 * "Require not" lines and <RequireNone> directly at its top veto (Gatehouse's flat lists
 * before issue 14: any positive line grants unless a negative one matches); and its rule
 * descriptions are struct pol_why objects naming the section, one per address or host name
 * so that a 403 says which of "Require ip A B" matched.
 */
#ifndef GH_POL_PRIV_H
#define GH_POL_PRIV_H

#include <stddef.h>

#include "policy/pol.h"

/* A section's tree. where names the section ("<Proxy *> at f.conf:10"); none is the
 * description for "nothing granted" (owned by the caller, must outlive the tree). */
int pol_authz_new_section(struct pol_authz **ap, const char *where, const struct pol_why *none);

/* One Require line of a section written at line ("FILE:LINE", or NULL). Same errors as
 * pol_authz_require. */
int pol_authz_require_line(struct pol_authz *a, char *const *args, size_t nargs,
                           const char *line, const char **err);

/* Decide for who: POL_ALLOW, POL_DENY, POL_NEED_NAME or POL_NEED_USER (see pol.h,
 * pol_acl_decide). *why is never NULL on return. No allocation. */
enum pol_verdict pol_authz_decide(const struct pol_authz *a, const struct who *who,
                                  const struct pol_why **why);

/* The FILE:LINE and words of the first user term (valid-user, user, group), or NULL. */
const struct pol_why *pol_authz_first_user(const struct pol_authz *a);

/* Host names of Require host and Allow/Deny from: a plausible name or domain suffix (letters,
 * digits, '-', '_', dots between labels, an optional leading dot; not only digits and dots). */
int pol_host_valid(const char *h);
/* mod_authz_host's in_domain(): name equals pattern (lower case, no trailing dot), or ends
 * with it on a label boundary; a pattern with a leading dot needs one more label. */
int pol_host_match(const char *pattern, size_t plen, const char *name);

#endif
