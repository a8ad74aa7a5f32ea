/*
 * ui_cache.h - the cache browser's view of the store (issue 11): a paged search, the records
 * of one URL, and purging. daemon/uicache.c implements it over cache/ (webui/ never includes
 * cache/ headers); webui/p_cache.c renders it.
 *
 * Every op takes the call's wctx (struct status_ctx: the worker and the request's config
 * snapshot, through which the daemon finds the store and the cache rules) and is called on
 * the worker thread serving the page. Strings handed to callbacks are valid during the call
 * only. URLs typed by the admin are normalised by the daemon exactly as request URLs are
 * keyed, so what the page shows and what it purges is what the proxy looks up.
 */
#ifndef GH_WEBUI_UI_CACHE_H
#define GH_WEBUI_UI_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define UI_CACHE_CURSOR_CAP 8200 /* room for any cursor (a cache key, NUL included) */
#define UI_CACHE_SCAN_MAX 5000   /* URL records a page examines at most (substring search) */
#define UI_CACHE_COUNT_MAX 100000 /* URLs a purge-by-prefix count examines at most */

/* One URL of a listing page. */
struct ui_cache_item {
	const char *url;
	size_t url_len;
	int status;
	int vary;             /* the URL has variants (open the entry to see them) */
	uint64_t size;        /* original body size (0 for a URL with variants) */
	uint64_t stored;      /* accounted bytes in the store (after deflate, with records) */
	int64_t age;          /* current age, seconds (RFC 9111 4.2.3) */
	int64_t ttl;          /* freshness lifetime - age: negative when stale */
	uint64_t hits;        /* approximate, see README */
	int64_t last_access;  /* wall clock, -1 never hit */
};

typedef int ui_cache_item_f(void *arg, const struct ui_cache_item *it);

/* A page of the listing. In: prefix (an absolute URL or the start of one, normalised by the
 * daemon when it parses as one, else used as typed; "" for all), substr ("" none; ASCII
 * case-insensitive), after (the previous page's cursor, "" for the first page), max (items).
 * Out: next (the cursor of the next page, "" when this was the last), scanned (records
 * examined: at most UI_CACHE_SCAN_MAX, so a page never walks the whole store), and the
 * normalised prefix it searched (prefix_used). */
struct ui_cache_query {
	const char *prefix;
	const char *substr;
	const char *after;
	size_t max;
	char *next;           /* UI_CACHE_CURSOR_CAP bytes, given by the caller */
	size_t scanned;
	char prefix_used[2048];
};

/* One stored record of a URL: the primary (or, for a URL with variants, its stub) then each
 * variant. */
struct ui_cache_record {
	const char *url;
	size_t url_len;
	int stub;             /* the primary record of a URL with variants: no body */
	int variant;          /* a variant's own record */
	char variant_id[17];  /* hex of the first 8 bytes of its Vary hash ("" otherwise) */
	const char *vary;     /* normalised Vary spec ("accept-encoding"), may be empty */
	size_t vary_len;
	int status;
	const char *headers;  /* the stored fields, "Name: value\r\n" lines */
	size_t headers_len;
	uint64_t size;        /* original body size */
	uint64_t stored;      /* accounted bytes (deflated chunks counted as stored) */
	int compressible;     /* stored deflated when the store compresses */
	int64_t response_time, date, expires, last_modified; /* -1: absent */
	int64_t age, lifetime, ttl; /* seconds (RFC 9111), ttl < 0: stale */
	uint64_t hits;
	int64_t last_access;  /* -1: never hit */
};

typedef int ui_cache_record_f(void *arg, const struct ui_cache_record *r);

/* A purge by prefix, running or finished: it runs in bounded batches on the loop of the worker
 * that started it (the worker goes on serving its other connections between batches) and
 * ends even if the page that started it went away. */
struct ui_cache_purge_info {
	unsigned id;          /* 1, 2, ... in the order started (process-wide) */
	const char *prefix;   /* normalised as for list */
	long removed;         /* records removed so far */
	uint64_t urls;        /* URLs examined so far */
	long estimate;        /* the count made when it started (a lower bound when capped) */
	int64_t started;      /* wall clock, seconds */
	int64_t finished;     /* 0 while running */
	int failed;           /* stopped on a store error */
};

/* Called once on the thread that started the purge: when it has finished, or when it still
 * runs at the answer deadline (info->finished == 0: it goes on in the background). info is
 * valid during the call only. */
typedef void ui_cache_purge_done_f(void *arg, const struct ui_cache_purge_info *info);
typedef void ui_cache_purge_f(void *arg, const struct ui_cache_purge_info *info);

#define UI_CACHE_PURGE_ANSWER_MS 3000 /* a purge still running then is answered "in progress" */

struct ui_cache_ops {
	/* Is a store open (CacheRoot configured)? 0: the pages say so. */
	int (*available)(void *wctx);
	/* Normalise an absolute URL into its cache key (as the proxy keys requests: url
	 * normalisation, CacheIgnoreQueryString). Returns the length, or -1 (not an absolute
	 * URL, too long) with a static *why. */
	long (*key)(void *wctx, const char *url, char *out, size_t cap, const char **why);
	/* A listing page: the number of items passed to cb, or -1 (store error). */
	long (*list)(void *wctx, struct ui_cache_query *q, ui_cache_item_f *cb, void *arg);
	/* The records of one cache key (from key()): their number (0: not stored), or -1. */
	long (*entry)(void *wctx, const char *key, ui_cache_record_f *cb, void *arg);
	/* What purge_prefix would remove (records), examining at most UI_CACHE_COUNT_MAX URLs;
	 * *more = 1 when it stopped there (the count is a lower bound). -1 on error. The prefix
	 * is normalised as for list (the normalised form is written to used, cap bytes). */
	long (*count_prefix)(void *wctx, const char *prefix, int *more, char *used, size_t cap);
	/* Purge one cache key with its variants: the number of records removed, or -1. */
	long (*purge)(void *wctx, const char *key);
	/* Start purging every key under prefix (normalised as for list, written to used): done
	 * is called later (never inside this call) with the result. estimate is the count the
	 * confirmation showed (-1: none), for the progress display only. Returns a handle, or
	 * NULL with a static *why (no store, out of memory, too many purges running). */
	void *(*purge_prefix_start)(void *wctx, const char *prefix, long estimate, char *used,
	                            size_t cap, ui_cache_purge_done_f *done, void *arg,
	                            const char **why);
	/* The page went away before done: done is never called; the purge goes on. */
	void (*purge_detach)(void *handle);
	/* Running and recently finished purges of the whole process, newest first: their
	 * number (cb may be NULL to count). */
	size_t (*purges)(void *wctx, ui_cache_purge_f *cb, void *arg);
};

#endif
