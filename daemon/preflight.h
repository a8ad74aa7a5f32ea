/*
 * preflight.h - what a start needs from the machine, checked before anything starts, the same
 * way for `gatehouse -t` and for a start, so that -t catches what a start would refuse.
 *
 * preflight_check() checks, for the user the daemon will run as (User when started as root,
 * else whoever started it):
 *  - started as root, the configuration names a User ("User root" keeps root on purpose);
 *  - that user can read every file the load read (the daemon reads its configuration again,
 *    as that user, on every reload) and list every directory an Include wildcard searched;
 *  - that user can write CacheRoot, or it can be created for them.
 * The checks for another user run in a forked child that becomes that user (initgroups,
 * setgid, setuid, as the daemon will) and asks access(2), so the kernel answers as it will
 * answer the daemon. Nothing is changed on the machine.
 *
 * preflight_prepare() then creates what is missing, as root before the privilege drop (or as
 * the user who started the daemon): every missing level of CacheRoot and, for the built-in
 * configuration, of its access log's directory, owned by User:Group (mode 0750; 0700 when
 * not started as root, as the XDG base directory specification asks).
 *
 * Main thread only, before any other thread exists (it forks).
 */
#ifndef GH_PREFLIGHT_H
#define GH_PREFLIGHT_H

#include <stddef.h>

#include "daemon/cfg.h"

/* Returns 0 when the daemon can start with c, or -1 with one line per problem in err (no
 * trailing newline; "FILE: message" or "FILE:LINE: message" where a line is to blame). */
int preflight_check(const struct cfg *c, char *err, size_t errlen);

/* Create CacheRoot and the built-in access log's directory (see above). Returns 0, or -1
 * with a message in err. */
int preflight_prepare(const struct cfg *c, char *err, size_t errlen);

#endif
