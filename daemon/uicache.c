/*
 * uicache.c - the cache browser's ops (webui/ui_cache.h) over the shared store (cache/).
 *
 * The store is the process-wide one of cachereq.c; the cache rules (freshness heuristics,
 * CacheIgnoreQueryString) come from the config snapshot of the status page's request
 * (struct status_ctx), as they would for a proxied request under the same snapshot. URLs
 * typed by the admin go through the same normalisation as request targets (url_normalize,
 * then cache_key_normalise's query rule), so a purge hits the key a request would use.
 * Listing callbacks run inside the store's read transaction: they only copy figures out.
 */
#include "daemon/uicache.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cache/cache.h"
#include "daemon/cachecfg.h"
#include "daemon/cachereq.h"
#include "daemon/cfg.h"
#include "daemon/status.h"
#include "daemon/url.h"
#include "webui/ui_cache.h"

static const struct cachecfg *
uicache_cfg(void *wctx)
{
	const struct status_ctx *sc = wctx;

	return sc && sc->cfg ? sc->cfg->cache : NULL;
}

static struct cache_store *
uicache_store(void *wctx)
{
	const struct cachecfg *cc = uicache_cfg(wctx);

	return cc && cc->root ? cachereq_store() : NULL;
}

static int
uicache_available(void *wctx)
{
	return uicache_store(wctx) != NULL;
}

static long
uicache_key(void *wctx, const char *url, char *out, size_t cap, const char **why)
{
	const struct cachecfg *cc = uicache_cfg(wctx);
	size_t n = strlen(url), len = 0;

	*why = "not an absolute URL (scheme://host/path)";
	if (!cc)
		return -1;
	if (n + URL_NORM_SLACK > cap) {
		*why = "URL too long";
		return -1;
	}
	if (cache_key_normalise(url, n, cc->rules.ignore_query_string, out, cap, &len) != CACHE_OK)
		return -1;
	return (long)len;
}

/* A prefix as the admin typed it, normalised like a CacheEnable prefix when it parses as the
 * start of an absolute URL ("http://Example.COM:80/a" -> "http://example.com/a"), else kept
 * as typed ("http://deb." is not a URL, and still a useful prefix of keys). */
static void
uicache_prefix(const char *in, char *out, size_t cap)
{
	size_t n = strlen(in);
	const char *why = NULL;

	if (n == 0 || n + URL_NORM_SLACK > cap ||
	    url_normalize(in, n, URL_N_PREFIX, out, cap, NULL, &why) != 0)
		snprintf(out, cap, "%s", in);
}

struct uicache_list_arg {
	const struct cachecfg *cc;
	int64_t now;
	ui_cache_item_f *cb;
	void *arg;
};

static int
uicache_list_cb(void *arg, const struct cache_item *it)
{
	struct uicache_list_arg *a = arg;
	struct ui_cache_item ui;

	memset(&ui, 0, sizeof(ui));
	ui.url = it->url.p;
	ui.url_len = it->url.n;
	ui.status = it->status;
	ui.vary = it->vary;
	ui.size = it->body_size;
	ui.stored = it->bytes;
	ui.age = cache_current_age(it->meta, a->now);
	ui.ttl = cache_freshness_lifetime(&a->cc->rules, it->meta) - ui.age;
	ui.hits = it->hits;
	ui.last_access = it->last_access;
	return a->cb(a->arg, &ui);
}

static long
uicache_list(void *wctx, struct ui_cache_query *q, ui_cache_item_f *cb, void *arg)
{
	struct cache_store *s = uicache_store(wctx);
	struct uicache_list_arg a = {uicache_cfg(wctx), (int64_t)time(NULL), cb, arg};
	const char *sub = q->substr ? q->substr : "", *after = q->after ? q->after : "";
	long n;

	q->next[0] = 0;
	q->scanned = 0;
	uicache_prefix(q->prefix ? q->prefix : "", q->prefix_used, sizeof(q->prefix_used));
	if (!s)
		return -1;
	struct cache_find f = {
		.prefix = q->prefix_used, .plen = strlen(q->prefix_used),
		.substr = sub, .slen = strlen(sub), .after = after, .alen = strlen(after),
		.max = q->max ? q->max : 50, .scan_max = UI_CACHE_SCAN_MAX,
		.next = q->next, .next_cap = UI_CACHE_CURSOR_CAP,
	};

	if (f.slen >= 256)
		return -1;
	n = cache_find(s, &f, uicache_list_cb, &a);
	q->scanned = f.scanned;
	return n < 0 ? -1 : n;
}

struct uicache_entry_arg {
	const struct cachecfg *cc;
	int64_t now;
	ui_cache_record_f *cb;
	void *arg;
};

static int
uicache_entry_cb(void *arg, const struct cache_item *it)
{
	static const char hex[] = "0123456789abcdef";
	struct uicache_entry_arg *a = arg;
	const struct cache_meta *m = it->meta;
	struct ui_cache_record r;

	memset(&r, 0, sizeof(r));
	r.url = m->url.p;
	r.url_len = m->url.n;
	r.stub = (m->flags & CACHE_MF_VARY_STUB) != 0;
	r.variant = it->variant;
	if (it->variant && it->mkeylen >= 40) {
		for (int i = 0; i < 8; i++) {
			r.variant_id[2 * i] = hex[it->mkey[32 + i] >> 4];
			r.variant_id[2 * i + 1] = hex[it->mkey[32 + i] & 15];
		}
	}
	r.vary = m->vary.p;
	r.vary_len = m->vary.n;
	r.status = m->status;
	r.headers = m->headers.p;
	r.headers_len = m->headers.n;
	r.size = m->body_size;
	r.stored = it->bytes;
	r.compressible = (m->flags & CACHE_MF_COMPRESSIBLE) != 0;
	r.response_time = m->response_time;
	r.date = m->date;
	r.expires = m->expires;
	r.last_modified = m->last_modified;
	r.age = cache_current_age(m, a->now);
	r.lifetime = cache_freshness_lifetime(&a->cc->rules, m);
	r.ttl = r.lifetime - r.age;
	r.hits = m->hits;
	r.last_access = m->last_access;
	return a->cb(a->arg, &r);
}

static long
uicache_entry(void *wctx, const char *key, ui_cache_record_f *cb, void *arg)
{
	struct cache_store *s = uicache_store(wctx);
	struct uicache_entry_arg a = {uicache_cfg(wctx), (int64_t)time(NULL), cb, arg};
	long n;

	if (!s)
		return -1;
	n = cache_entry_records(s, key, strlen(key), uicache_entry_cb, &a);
	return n < 0 ? -1 : n;
}

static long
uicache_count_prefix(void *wctx, const char *prefix, int *more, char *used, size_t cap)
{
	struct cache_store *s = uicache_store(wctx);
	long n;

	uicache_prefix(prefix, used, cap);
	if (!s)
		return -1;
	n = cache_count_prefix(s, used, strlen(used), UI_CACHE_COUNT_MAX, more);
	return n < 0 ? -1 : n;
}

static long
uicache_purge(void *wctx, const char *key)
{
	struct cache_store *s = uicache_store(wctx);
	long n;

	if (!s)
		return -1;
	n = cache_purge(s, key, strlen(key));
	return n < 0 ? -1 : n;
}

static long
uicache_purge_prefix(void *wctx, const char *prefix)
{
	struct cache_store *s = uicache_store(wctx);
	char used[2048];
	long n;

	uicache_prefix(prefix, used, sizeof(used));
	if (!s)
		return -1;
	n = cache_purge_prefix(s, used, strlen(used));
	return n < 0 ? -1 : n;
}

static const struct ui_cache_ops uicache_table = {
	.available = uicache_available,
	.key = uicache_key,
	.list = uicache_list,
	.entry = uicache_entry,
	.count_prefix = uicache_count_prefix,
	.purge = uicache_purge,
	.purge_prefix = uicache_purge_prefix,
};

const struct ui_cache_ops *
uicache_ops(void)
{
	return &uicache_table;
}
