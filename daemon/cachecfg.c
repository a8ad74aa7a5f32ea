/*
 * cachecfg.c - parsing of the Cache* directives into struct cachecfg (see cachecfg.h).
 *
 * Called by cfg.c while a snapshot is loaded (one thread), read by workers afterwards.
 * Sizes take K, M and G suffixes (powers of 1024); times are seconds.
 */
#include "daemon/cachecfg.h"
#include "daemon/url.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int
cachecfg_fail(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
	snprintf(err, errlen, fmt, a, b);
	return -1;
}

static int
cachecfg_set_ignore(struct cachecfg *cc, char **names, size_t n)
{
	char **v = n ? calloc(n, sizeof(*v)) : NULL;
	if (n && v == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		v[i] = strdup(names[i]);
		if (v[i] == NULL) {
			for (size_t j = 0; j < i; j++)
				free(v[j]);
			free(v);
			return -1;
		}
	}
	for (size_t i = 0; i < cc->nignore; i++)
		free(cc->ignore[i]);
	free(cc->ignore);
	cc->ignore = v;
	cc->nignore = n;
	cc->rules.ignore_headers = (const char *const *)v;
	cc->rules.nignore_headers = n;
	return 0;
}

struct cachecfg *
cachecfg_new(void)
{
	struct cachecfg *cc = calloc(1, sizeof(*cc));
	char *def[1] = { "Set-Cookie" };
	if (cc == NULL)
		return NULL;
	cc->size = 1ull << 30;
	cc->report_interval = 600;
	cache_conf_default(&cc->rules);
	if (cachecfg_set_ignore(cc, def, 1) < 0) {
		free(cc);
		return NULL;
	}
	return cc;
}

void
cachecfg_free(struct cachecfg *cc)
{
	if (cc == NULL)
		return;
	free(cc->root);
	for (size_t i = 0; i < cc->nenable; i++) {
		free(cc->enable[i]);
		free(cc->enable_where[i]);
	}
	for (size_t i = 0; i < cc->ndisable; i++) {
		free(cc->disable[i]);
		free(cc->disable_where[i]);
	}
	for (size_t i = 0; i < cc->nignore; i++)
		free(cc->ignore[i]);
	free(cc->ignore);
	free(cc);
}

/* "10G", "512M", "64K", "1000": bytes. */
int
cachecfg_size(const char *s, uint64_t *out)
{
	uint64_t v = 0, mul = 1;
	size_t n = strlen(s), i;
	if (n == 0 || n > 16)
		return -1;
	char last = (char)toupper((unsigned char)s[n - 1]);
	if (last == 'K' || last == 'M' || last == 'G' || last == 'T') {
		mul = last == 'K' ? 1ull << 10 : last == 'M' ? 1ull << 20 : 1ull << 30;
		if (last == 'T')
			mul = 1ull << 40;
		n--;
	}
	if (n == 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > (UINT64_C(1) << 50) / mul)
		return -1;
	*out = v * mul;
	return 0;
}

static int
cachecfg_secs(const char *s, int64_t *out)
{
	int64_t v = 0;
	size_t n = strlen(s);
	if (n == 0 || n > 10)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int
cachecfg_onoff(const char *name, const char *arg, int *out, char *err, size_t errlen)
{
	if (strcasecmp(arg, "On") == 0)
		*out = 1;
	else if (strcasecmp(arg, "Off") == 0)
		*out = 0;
	else
		return cachecfg_fail(err, errlen, "%s: expected On or Off, got \"%.200s\"", name,
		                     arg);
	return 0;
}

/* Normalise a URL prefix: "/" stays, "scheme://host/..." takes the normalized form of
 * daemon/url.h, which cache keys have too. NULL with *why when it cannot be normalized, NULL
 * with *why NULL when out of memory. */
static char *
cachecfg_prefix(const char *arg, const char **why)
{
	size_t n = strlen(arg);
	*why = NULL;
	if (strcmp(arg, "/") == 0)
		return strdup(arg);
	char *p = malloc(n + URL_NORM_SLACK);
	if (p != NULL && url_normalize(arg, n, URL_N_PREFIX, p, n + URL_NORM_SLACK, NULL, why)) {
		free(p);
		return NULL;
	}
	return p;
}

static int
cachecfg_valid_prefix(const char *arg)
{
	if (strcmp(arg, "/") == 0)
		return 1;
	const char *sep = strstr(arg, "://");
	if (sep == NULL || sep == arg)
		return 0;
	for (const char *q = arg; q < sep; q++)
		if (!isalpha((unsigned char)*q))
			return 0;
	for (const char *q = arg; *q; q++)
		if ((unsigned char)*q <= 0x20 || *q == 0x7f)
			return 0;
	return 1;
}

int
cachecfg_directive(struct cachecfg *cc, char **argv, size_t argc, char *err, size_t errlen)
{
	const char *d = argv[0];
	const char *a = argc > 1 ? argv[1] : "";
	struct cache_conf *r = &cc->rules;
	const char *why = NULL;
	int64_t secs;

	if (argc < 2)
		return cachecfg_fail(err, errlen, "%s: expected at least 1 argument%s", d, "");
	if (strcasecmp(d, "CacheRoot") == 0) {
		if (a[0] != '/')
			return cachecfg_fail(err, errlen, "%s: expected an absolute directory, got "
			                     "\"%.200s\"", d, a);
		free(cc->root);
		cc->root = strdup(a);
		return cc->root ? 0 : cachecfg_fail(err, errlen, "%s: out of memory%s", d, "");
	}
	if (strcasecmp(d, "CacheSize") == 0) {
		uint64_t v;
		if (cachecfg_size(a, &v) < 0 || v < (1ull << 20))
			return cachecfg_fail(err, errlen, "%s: expected a size of at least 1M "
			                     "(K, M, G suffixes), got \"%.200s\"", d, a);
		cc->size = v;
		return 0;
	}
	if (strcasecmp(d, "CacheMaxFileSize") == 0 || strcasecmp(d, "CacheMinFileSize") == 0) {
		uint64_t v;
		if (cachecfg_size(a, &v) < 0)
			return cachecfg_fail(err, errlen, "%s: expected a size in bytes (K, M, G "
			                     "suffixes), got \"%.200s\"", d, a);
		if (strcasecmp(d, "CacheMaxFileSize") == 0)
			r->max_file_size = v;
		else
			r->min_file_size = v;
		return 0;
	}
	if (strcasecmp(d, "CacheEnable") == 0) {
		if (argc != 3)
			return cachecfg_fail(err, errlen,
			                     "%s: expected 2 arguments (lmdb URL-prefix)%s", d, "");
		if (strcasecmp(a, "lmdb") != 0)
			return cachecfg_fail(err, errlen,
			                     "%s: unknown cache type \"%.200s\" (lmdb; Apache's "
			                     "disk, mem and socache mean lmdb)", d, a);
		if (!cachecfg_valid_prefix(argv[2]))
			return cachecfg_fail(err, errlen, "%s: expected \"/\" or a URL prefix "
			                     "such as http:// or http://host/path, got \"%.200s\"",
			                     d, argv[2]);
		if (cc->nenable >= CACHECFG_MAX_PREFIX)
			return cachecfg_fail(err, errlen, "%s: more than 64 prefixes%s", d, "");
		cc->enable[cc->nenable] = cachecfg_prefix(argv[2], &why);
		if (cc->enable[cc->nenable] == NULL && why != NULL)
			return cachecfg_fail(err, errlen, "%s: cannot normalize the URL prefix: %s",
			                     d, why);
		if (cc->enable[cc->nenable] == NULL)
			return cachecfg_fail(err, errlen, "%s: out of memory%s", d, "");
		cc->nenable++;
		return 0;
	}
	if (strcasecmp(d, "CacheDisable") == 0) {
		if (argc != 2)
			return cachecfg_fail(err, errlen, "%s: expected 1 argument%s", d, "");
		if (!cachecfg_valid_prefix(a))
			return cachecfg_fail(err, errlen, "%s: expected \"/\" or a URL prefix "
			                     "such as http://host/path, got \"%.200s\"", d, a);
		if (cc->ndisable >= CACHECFG_MAX_PREFIX)
			return cachecfg_fail(err, errlen, "%s: more than 64 prefixes%s", d, "");
		cc->disable[cc->ndisable] = cachecfg_prefix(a, &why);
		if (cc->disable[cc->ndisable] == NULL && why != NULL)
			return cachecfg_fail(err, errlen, "%s: cannot normalize the URL prefix: %s",
			                     d, why);
		if (cc->disable[cc->ndisable] == NULL)
			return cachecfg_fail(err, errlen, "%s: out of memory%s", d, "");
		cc->ndisable++;
		return 0;
	}
	if (strcasecmp(d, "CacheIgnoreHeaders") == 0) {
		if (argc == 2 && strcasecmp(a, "None") == 0)
			return cachecfg_set_ignore(cc, NULL, 0);
		if (cachecfg_set_ignore(cc, argv + 1, argc - 1) < 0)
			return cachecfg_fail(err, errlen, "%s: out of memory%s", d, "");
		return 0;
	}
	if (argc != 2)
		return cachecfg_fail(err, errlen, "%s: expected 1 argument%s", d, "");
	if (strcasecmp(d, "CacheIgnoreNoLastMod") == 0)
		return cachecfg_onoff(d, a, &r->ignore_no_lastmod, err, errlen);
	if (strcasecmp(d, "CacheIgnoreQueryString") == 0)
		return cachecfg_onoff(d, a, &r->ignore_query_string, err, errlen);
	if (strcasecmp(d, "CacheStoreNoStore") == 0)
		return cachecfg_onoff(d, a, &r->store_nostore, err, errlen);
	if (strcasecmp(d, "CacheStorePrivate") == 0)
		return cachecfg_onoff(d, a, &r->store_private, err, errlen);
	if (strcasecmp(d, "CacheStaleOnError") == 0)
		return cachecfg_onoff(d, a, &r->stale_on_error, err, errlen);
	if (strcasecmp(d, "CacheDebianArchive") == 0)
		return cachecfg_onoff(d, a, &r->debian, err, errlen);
	if (strcasecmp(d, "CacheLastModifiedFactor") == 0) {
		char *end = NULL;
		errno = 0;
		double f = strtod(a, &end);
		if (end == a || *end || errno || !(f >= 0.0 && f <= 100.0))
			return cachecfg_fail(err, errlen,
			                     "%s: expected a number from 0 to 100, got \"%.200s\"",
			                     d, a);
		r->lm_factor = f;
		return 0;
	}
	if (strcasecmp(d, "CacheMaxExpire") == 0 || strcasecmp(d, "CacheDefaultExpire") == 0) {
		if (cachecfg_secs(a, &secs) < 0 || secs > 10 * 365 * 86400LL)
			return cachecfg_fail(err, errlen, "%s: expected seconds from 0 to "
			                     "315360000, got \"%.200s\"", d, a);
		if (strcasecmp(d, "CacheMaxExpire") == 0)
			r->max_expire = secs;
		else
			r->default_expire = secs;
		return 0;
	}
	/* issue 9: the cache report in the error log (cachereq.c) */
	if (strcasecmp(d, "CacheReportInterval") == 0) {
		if (cachecfg_secs(a, &secs) < 0 || secs > 86400)
			return cachecfg_fail(err, errlen, "%s: expected seconds from 0 to 86400, got "
			                     "\"%.200s\"", d, a);
		cc->report_interval = (unsigned)secs;
		return 0;
	}
	return cachecfg_fail(err, errlen, "unknown directive \"%.200s\"%s", d, "");
}

static int
cachecfg_prefix_match(const char *pre, const char *key, size_t keylen)
{
	size_t n = strlen(pre);
	if (n == 1 && pre[0] == '/')
		return 1;
	/* "http://origin.test." stays a prefix of longer names (a partial host is kept as
	 * written), but keys have their trailing dot dropped: it also names origin.test itself,
	 * followed by a path or a port. (One compare per prefix unless it ends in a dot.) */
	if (pre[n - 1] == '.') {
		const char *h = strstr(pre, "://");
		if (h != NULL && h + 4 < pre + n && strpbrk(h + 3, "/:@[") == NULL &&
		    keylen >= n && memcmp(key, pre, n - 1) == 0 &&
		    (key[n - 1] == '/' || key[n - 1] == ':'))
			return 1;
	}
	return keylen >= n && memcmp(key, pre, n) == 0;
}

int
cachecfg_enabled_why(const struct cachecfg *cc, const char *key, size_t keylen,
                     const char **prefix, int *by_disable, const char **where)
{
	*prefix = *where = NULL;
	*by_disable = 0;
	if (cc == NULL || cc->root == NULL)
		return 0;
	size_t i;
	for (i = 0; i < cc->nenable; i++)
		if (cachecfg_prefix_match(cc->enable[i], key, keylen))
			break;
	if (i == cc->nenable)
		return 0;
	*prefix = cc->enable[i];
	*where = cc->enable_where[i];
	for (i = 0; i < cc->ndisable; i++)
		if (cachecfg_prefix_match(cc->disable[i], key, keylen)) {
			*prefix = cc->disable[i];
			*where = cc->disable_where[i];
			*by_disable = 1;
			return 0;
		}
	return 1;
}

int
cachecfg_note_where(struct cachecfg *cc, const char *where)
{
	for (size_t i = 0; i < cc->nenable; i++)
		if (cc->enable_where[i] == NULL && (cc->enable_where[i] = strdup(where)) == NULL)
			return -1;
	for (size_t i = 0; i < cc->ndisable; i++)
		if (cc->disable_where[i] == NULL && (cc->disable_where[i] = strdup(where)) == NULL)
			return -1;
	return 0;
}

int
cachecfg_enabled_for(const struct cachecfg *cc, const char *key, size_t keylen)
{
	const char *prefix, *where;
	int by_disable;
	return cachecfg_enabled_why(cc, key, keylen, &prefix, &by_disable, &where);
}
