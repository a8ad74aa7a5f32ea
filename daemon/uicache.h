/*
 * uicache.h - the daemon's implementation of webui/ui_cache.h (the status page's cache
 * browser) over cache/: listing, entry records, purge. status.c puts uicache_ops() into
 * struct ui_ops.
 */
#ifndef GH_UICACHE_H
#define GH_UICACHE_H

struct ui_cache_ops;

/* The table; its ops take a struct status_ctx (daemon/status.h) as wctx. */
const struct ui_cache_ops *uicache_ops(void);

struct ev_loop;

/* Resume, on loop (one worker's, at start), the purges by prefix that the last exit stopped
 * (recorded in the store: cache_purge_pending_list). They show on the status page as
 * running, and end as any purge does. */
void uicache_purge_resume(struct ev_loop *loop);

#endif
