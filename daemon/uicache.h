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

#endif
