/*
 * cachecfg.h - the Cache* directives (Apache mod_cache names plus our own CacheRoot,
 * CacheSize, CacheDebianArchive) as one part of a config snapshot.
 *
 * cfg.c owns the snapshot: it creates the part with cachecfg_new(), hands every Cache*
 * directive to cachecfg_directive() (which only says what is wrong; cfg.c adds FILE:LINE)
 * and frees it with the snapshot. Like the rest of a snapshot, it is never modified after
 * loading. cachereq.c reads it per request.
 */
#ifndef GH_CACHECFG_H
#define GH_CACHECFG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cache/cache.h"

#define CACHECFG_MAX_PREFIX 64

struct cachecfg {
	char *root;                 /* CacheRoot DIR; NULL: no cache at all */
	uint64_t size;              /* CacheSize, default 1G */
	char *enable[CACHECFG_MAX_PREFIX];  /* CacheEnable lmdb PREFIX (normalised) */
	size_t nenable;
	char *disable[CACHECFG_MAX_PREFIX]; /* CacheDisable PREFIX */
	size_t ndisable;
	char *enable_where[CACHECFG_MAX_PREFIX];  /* "FILE:LINE" of each, NULL: not known */
	char *disable_where[CACHECFG_MAX_PREFIX];
	struct cache_conf rules;    /* the RFC 9111 knobs (cache.h); ignore_headers below */
	char **ignore;              /* CacheIgnoreHeaders; default {"Set-Cookie"} */
	size_t nignore;
	unsigned report_interval;   /* CacheReportInterval SECONDS: the cache report in the error
	                             * log (hit ratio, store figures); default 600, 0 = only at
	                             * shutdown; start-up only */
};

/* A snapshot part with the defaults, or NULL when out of memory. */
struct cachecfg *cachecfg_new(void);
void cachecfg_free(struct cachecfg *cc);

/* Apply one directive (argv[0] is its name, argc counts it). Returns 0, or -1 with a message
 * (no FILE:LINE) in err. */
int cachecfg_directive(struct cachecfg *cc, char **argv, size_t argc, char *err, size_t errlen);

/* Is the cache enabled for this cache key (a normalised absolute URL)? It must start with a
 * CacheEnable prefix ("/" matches every URL) and with no CacheDisable prefix ("/" again
 * matches every URL): CacheDisable wins, as in Apache. */
int cachecfg_enabled_for(const struct cachecfg *cc, const char *key, size_t keylen);
/* The same, saying which prefix decided: *prefix the first CacheEnable prefix that matches, or
 * the first CacheDisable one that overrides it (*by_disable 1), NULL when no CacheEnable
 * prefix matches; *where its "FILE:LINE" (NULL: not known). For the status page's explain. */
int cachecfg_enabled_why(const struct cachecfg *cc, const char *key, size_t keylen,
                         const char **prefix, int *by_disable, const char **where);

/* A size as the Cache* directives write it: "1000", "64K", "512M", "10G", "1T" (powers of
 * 1024, case-insensitive suffix) into *out, at most 2^50 bytes. 0, or -1 when malformed.
 * cfg.c parses FTPMaxListingSize with it too, so every size reads the same way. */
int cachecfg_size(const char *s, uint64_t *out);

/* Record where the CacheEnable/CacheDisable prefixes added since the last call are written
 * (cfg.c calls it after each Cache* directive). Returns 0, or -1 when out of memory. */
int cachecfg_note_where(struct cachecfg *cc, const char *where);

#endif
