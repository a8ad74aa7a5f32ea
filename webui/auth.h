/*
 * auth.h - authentication building blocks: htpasswd files, Basic credentials, a failed-login
 * rate limiter, a cache of verified credentials, and CSRF tokens bound to a session.
 *
 * Pure C on OpenSSL and libcrypt (libxcrypt's crypt_rn); it includes no ui.h, so that proxy
 * authentication (issue 14) reuses it as it is. The status page's glue (the ui_csrf_* of
 * webui/ui_priv.h) is in webui/ui_csrf.c; daemon/status.c calls the rest.
 *
 * Threads: a struct auth_htpasswd is immutable once loaded (share it between workers, free it
 * after the last reader: it lives in a config snapshot). struct auth_limit and struct
 * auth_vcache each hold one mutex, held for a table probe (no hashing of passwords under it):
 * one instance may be shared by every worker. Neither is touched by proxied requests.
 */
#ifndef GH_WEBUI_AUTH_H
#define GH_WEBUI_AUTH_H

#include <stddef.h>
#include <stdint.h>

/* ---- htpasswd (AuthUserFile) ---- */

#define AUTH_HTPASSWD_MAX_USERS 100000   /* more is an error */
#define AUTH_HTPASSWD_MAX_LINE  1024     /* bytes per line, newline excluded */
#define AUTH_USER_MAX           255      /* bytes of a user name */
#define AUTH_PASS_MAX           1023     /* bytes of a password */

struct auth_htpasswd;

/* Load an htpasswd file. Each line is "user:hash"; empty lines and lines starting with '#'
 * are skipped; a trailing CR is ignored. Accepted hashes: bcrypt ($2y$, $2b$, $2a$, as
 * `htpasswd -B` makes), SHA-256 crypt ($5$) and SHA-512 crypt ($6$). Anything else (plain
 * text, $apr1$ MD5, {SHA}, $1$, crypt(DES)) is an error naming PATH:LINE, the user and the
 * fix ("create the entry with htpasswd -B"). A user listed twice is an error too (naming both
 * lines): a silent last-wins would let a forgotten old line decide. Returns 0 and *out (free
 * it with auth_htpasswd_free), or -1 with a one-line message in err. */
int auth_htpasswd_load(const char *path, struct auth_htpasswd **out, char *err, size_t errlen);
void auth_htpasswd_free(struct auth_htpasswd **h);
size_t auth_htpasswd_count(const struct auth_htpasswd *h);
/* Is user listed? (For "Require user": the name check, never the password.) */
int auth_htpasswd_has(const struct auth_htpasswd *h, const char *user);

/* Verify user's password with crypt_rn: 1 when it matches, 0 otherwise (unknown user, wrong
 * password, malformed input). The result is compared in constant time; an unknown user costs
 * a verification against another entry's hash, so timing does not tell which users exist.
 * Costs what the hash costs (bcrypt cost 5 .. 12: a few ms to a few hundred): call it off
 * the hot path, or through auth_vcache. */
int auth_htpasswd_check(const struct auth_htpasswd *h, const char *user, const char *pass);

/* ---- Basic credentials ---- */

/* Decode an Authorization (or Proxy-Authorization) field value, "Basic <base64>": the scheme
 * is case-insensitive, the base64 strict (padding required, no stray bytes). user gets the text
 * before the first ':', pass the rest. Returns 0, or -1 when the value is not Basic, is
 * malformed, holds a NUL or control byte in the user, or does not fit ucap / pcap (both
 * NUL-terminated). */
int auth_basic_decode(const char *field, char *user, size_t ucap, char *pass, size_t pcap);

/* ---- failed-login rate limit ---- */

/* Per client address (an IPv4 address; an IPv6 /64, since one host owns a whole /64), a
 * token bucket of `burst` failures that refills one every `refill_s` seconds: after `burst`
 * failures in a row the client is blocked until a token comes back. The table has `slots`
 * entries (rounded up to a power of two); when the probe window of a new address is full,
 * the entry closest to a full bucket is evicted (a full bucket is the same as none). One
 * mutex, shared by the workers: an attacker cannot multiply its budget by the worker count.
 */
#define AUTH_LIMIT_BURST   10
#define AUTH_LIMIT_REFILL  6     /* seconds: 10 failures a minute, sustained */
#define AUTH_LIMIT_SLOTS   4096

struct auth_limit;

int auth_limit_new(struct auth_limit **out, unsigned slots, unsigned burst, unsigned refill_s);
void auth_limit_free(struct auth_limit **l);
/* 1 when addr (text, "192.0.2.1" or "2001:db8::1") may not try now; check before verifying,
 * so that a blocked client costs no hashing. */
int auth_limit_blocked(struct auth_limit *l, const char *addr, int64_t now);
/* Count a failed login of addr. */
void auth_limit_fail(struct auth_limit *l, const char *addr, int64_t now);
/* A successful login: forget addr's failures. */
void auth_limit_reset(struct auth_limit *l, const char *addr);

/* ---- verified-credentials cache ---- */

/* Remembers "this user:password verified (or failed) against this htpasswd entry" for ttl
 * seconds, so that a browser's every request does not pay bcrypt. The key is an
 * HMAC-SHA256, under a random key made by auth_vcache_new, of user, password and the stored
 * hash: the password is never stored, and a changed entry (a reloaded file) misses. Bounded:
 * `slots` entries (power of two), one per hash bucket, the newer result replaces the older. */
#define AUTH_VCACHE_SLOTS    1024
#define AUTH_VCACHE_TTL_OK   300
#define AUTH_VCACHE_TTL_FAIL 10

struct auth_vcache;

int auth_vcache_new(struct auth_vcache **out, unsigned slots, unsigned ttl_ok, unsigned ttl_fail);
void auth_vcache_free(struct auth_vcache **vc);
/* auth_htpasswd_check through the cache (vc may be NULL: no cache). */
int auth_htpasswd_verify(const struct auth_htpasswd *h, struct auth_vcache *vc,
                         const char *user, const char *pass, int64_t now);

/* ---- sessions and CSRF ---- */

#define AUTH_SESSION_LEN 32      /* hex characters: 16 random bytes */
#define AUTH_CSRF_LEN    64      /* hex characters: HMAC-SHA256 */
#define AUTH_SESSION_COOKIE "gh_session"

/* A new random session id (AUTH_SESSION_LEN lowercase hex + NUL). 0, or -1 when the random
 * generator fails (the caller then has no session: every POST fails, safely). */
int auth_session_new(char out[AUTH_SESSION_LEN + 1]);
/* Is s a well-formed session id (exactly AUTH_SESSION_LEN lowercase hex)? */
int auth_session_valid(const char *s, size_t n);
/* The value of cookie name in a Cookie field ("a=1; name=v; b=2"): the first occurrence,
 * copied NUL-terminated into out. Returns its length, or -1 when absent or longer than
 * cap - 1. */
long auth_cookie_get(const char *field, const char *name, char *out, size_t cap);
/* The CSRF token of session under secret: hex HMAC-SHA256(secret, session). -1 when secret
 * is NULL or empty, or the session is malformed. */
int auth_csrf_token(const char *secret, const char *session, char out[AUTH_CSRF_LEN + 1]);
/* 1 when token (n bytes) is session's token under secret, compared in constant time. */
int auth_csrf_check(const char *secret, const char *session, const char *token, size_t n);

#endif
