/*
 * status.c - what happened to a request, told two ways: a Cache-Status member (RFC 9211)
 * for the response, and Squid's result code for the access log.
 *
 * Pure functions over constant tables.
 */
#include "cache/cache_priv.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const struct {
	const char *squid;
	int hit;
	enum cache_fwd fwd;
	const char *detail;
} cache_outcomes[CACHE_OUT__COUNT] = {
	[CACHE_OUT_BYPASS] = {"TCP_MISS", 0, CACHE_FWD_BYPASS, NULL},
	[CACHE_OUT_MISS] = {"TCP_MISS", 0, CACHE_FWD_URI_MISS, NULL},
	[CACHE_OUT_VARY_MISS] = {"TCP_MISS", 0, CACHE_FWD_VARY_MISS, NULL},
	[CACHE_OUT_CLIENT_REFRESH] = {"TCP_CLIENT_REFRESH_MISS", 0, CACHE_FWD_REQUEST, NULL},
	[CACHE_OUT_HIT] = {"TCP_HIT", 1, CACHE_FWD_NONE, NULL},
	[CACHE_OUT_HIT_STALE] = {"TCP_HIT", 1, CACHE_FWD_NONE, "stale"},
	[CACHE_OUT_HIT_INM] = {"TCP_INM_HIT", 1, CACHE_FWD_NONE, NULL},
	[CACHE_OUT_HIT_IMS] = {"TCP_IMS_HIT", 1, CACHE_FWD_NONE, NULL},
	[CACHE_OUT_REFRESH_UNMODIFIED] = {"TCP_REFRESH_UNMODIFIED", 0, CACHE_FWD_STALE, NULL},
	[CACHE_OUT_REFRESH_MODIFIED] = {"TCP_REFRESH_MODIFIED", 0, CACHE_FWD_STALE, NULL},
	[CACHE_OUT_REFRESH_FAIL_OLD] = {"TCP_REFRESH_FAIL_OLD", 0, CACHE_FWD_STALE,
	                                "stale-if-error"},
	[CACHE_OUT_REFRESH_FAIL_ERR] = {"TCP_REFRESH_FAIL_ERR", 0, CACHE_FWD_STALE, NULL},
	[CACHE_OUT_ONLY_IF_CACHED] = {"TCP_MISS", 0, CACHE_FWD_NONE, "only-if-cached"},
	[CACHE_OUT_DENIED] = {"TCP_DENIED", 0, CACHE_FWD_NONE, "denied"},
};

const char *
cache_outcome_squid(enum cache_outcome o)
{
	if ((unsigned)o >= CACHE_OUT__COUNT)
		return "NONE";
	return cache_outcomes[o].squid;
}

void
cache_outcome_status(enum cache_outcome o, struct cache_status *st)
{
	memset(st, 0, sizeof(*st));
	if ((unsigned)o >= CACHE_OUT__COUNT)
		return;
	st->hit = cache_outcomes[o].hit;
	st->fwd = cache_outcomes[o].fwd;
	st->detail = cache_outcomes[o].detail;
}

/* sf-token: ( ALPHA / "*" ) *( tchar / ":" / "/" ) */
static int
cache_sf_token(const char *s)
{
	if (!s || !*s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '*'))
		return 0;
	for (; *s; s++) {
		int c = (unsigned char)*s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("!#$%&'*+-.^_`|~:/", c)))
			return 0;
	}
	return 1;
}

struct cache_sbuf {
	char *p;
	size_t cap, len;
};

static void
cache_sb_put(struct cache_sbuf *b, const char *s, size_t n)
{
	if (b->len + n < b->cap)
		memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void
cache_sb_str(struct cache_sbuf *b, const char *s)
{
	cache_sb_put(b, s, strlen(s));
}

/* A token as is, anything else as an sf-string (printable ASCII, '"' and '\' escaped). */
static void
cache_sb_item(struct cache_sbuf *b, const char *s)
{
	if (cache_sf_token(s)) {
		cache_sb_str(b, s);
		return;
	}
	cache_sb_put(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c > 0x7e)
			continue;
		if (c == '"' || c == '\\')
			cache_sb_put(b, "\\", 1);
		cache_sb_put(b, (const char *)&c, 1);
	}
	cache_sb_put(b, "\"", 1);
}

size_t
cache_status_format(const char *name, const struct cache_status *st, char *out, size_t cap)
{
	static const char *const fwd[] = {
		[CACHE_FWD_NONE] = NULL, [CACHE_FWD_BYPASS] = "bypass",
		[CACHE_FWD_METHOD] = "method",
		[CACHE_FWD_URI_MISS] = "uri-miss", [CACHE_FWD_VARY_MISS] = "vary-miss",
		[CACHE_FWD_MISS] = "miss", [CACHE_FWD_REQUEST] = "request",
		[CACHE_FWD_STALE] = "stale", [CACHE_FWD_PARTIAL] = "partial",
	};
	struct cache_sbuf b = {out, cap, 0};
	char num[32];

	cache_sb_item(&b, name && *name ? name : "Gatehouse");
	if (st->hit) {
		cache_sb_str(&b, "; hit");
	} else if ((unsigned)st->fwd < sizeof(fwd) / sizeof(fwd[0]) && fwd[st->fwd]) {
		cache_sb_str(&b, "; fwd=");
		cache_sb_str(&b, fwd[st->fwd]);
		if (st->fwd_status >= 100 && st->fwd_status <= 999) {
			snprintf(num, sizeof(num), "; fwd-status=%d", st->fwd_status);
			cache_sb_str(&b, num);
		}
	}
	if (st->has_ttl) {
		snprintf(num, sizeof(num), "; ttl=%" PRId64, st->ttl);
		cache_sb_str(&b, num);
	}
	if (st->stored)
		cache_sb_str(&b, "; stored");
	if (st->collapsed)
		cache_sb_str(&b, "; collapsed");
	if (st->detail && *st->detail) {
		cache_sb_str(&b, "; detail=");
		cache_sb_item(&b, st->detail);
	}
	if (b.len < cap)
		out[b.len] = '\0';
	return b.len;
}
