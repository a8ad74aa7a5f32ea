/*
 * test_cachecfg.c - the Cache* directives (daemon/cachecfg.c) through the config loader:
 * defaults, sizes with suffixes, On/Off switches, CacheIgnoreHeaders None, FILE:LINE errors,
 * CacheEnable/CacheDisable prefix matching (Disable wins, "/" matches all, scheme and host
 * case), and who may PURGE: <Limit PURGE> in a <Proxy> section, loaded through the config
 * (the built-in default grants loopback; CachePurgeAllow no longer exists).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "daemon/cachecfg.h"
#include "daemon/cfg.h"
#include "policy/pol.h"

static struct cfg *
load(const char *text)
{
	struct cfg *c = NULL;
	char err[512];
	if (cfg_load_string("t.conf", text, &c, err, sizeof(err)) != 0)
		fail_msg("unexpected error: %s", err);
	return c;
}

static void
load_fails(const char *text, const char *want)
{
	struct cfg *c = NULL;
	char err[512];
	assert_int_equal(cfg_load_string("t.conf", text, &c, err, sizeof(err)), -1);
	assert_null(c);
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static int
enabled(const struct cfg *c, const char *key)
{
	return cachecfg_enabled_for(c->cache, key, strlen(key));
}

static void
test_defaults_match_the_documentation(void **state)
{
	(void)state;
	struct cfg *c = load("");
	const struct cachecfg *cc = c->cache;
	assert_null(cc->root);
	assert_int_equal(cc->size, 1ull << 30);
	assert_int_equal(cc->rules.max_file_size, 512ull << 20);
	assert_int_equal(cc->rules.min_file_size, 0);
	assert_int_equal(cc->rules.max_expire, 86400);
	assert_int_equal(cc->rules.default_expire, 3600);
	assert_true(cc->rules.lm_factor > 0.099 && cc->rules.lm_factor < 0.101);
	assert_int_equal(cc->rules.stale_on_error, 1);
	assert_int_equal(cc->rules.debian, 1);
	assert_int_equal(cc->rules.nignore_headers, 1);
	assert_string_equal(cc->rules.ignore_headers[0], "Set-Cookie");
	assert_false(enabled(c, "http://a.test/")); /* no CacheRoot: never */
	cfg_unref(&c);
}

static void
test_directives_set_their_fields(void **state)
{
	(void)state;
	struct cfg *c = load("CacheRoot /var/cache/gh\nCacheSize 10G\nCacheMaxFileSize 2M\n"
	                     "CacheMinFileSize 1k\nCacheIgnoreHeaders None\n"
	                     "CacheIgnoreNoLastMod On\nCacheIgnoreQueryString on\n"
	                     "CacheStoreNoStore On\nCacheStorePrivate On\nCacheStaleOnError Off\n"
	                     "CacheDebianArchive Off\nCacheLastModifiedFactor 0.5\n"
	                     "CacheMaxExpire 600\nCacheDefaultExpire 60\n");
	const struct cachecfg *cc = c->cache;
	assert_string_equal(cc->root, "/var/cache/gh");
	assert_int_equal(cc->size, 10ull << 30);
	assert_int_equal(cc->rules.max_file_size, 2ull << 20);
	assert_int_equal(cc->rules.min_file_size, 1024);
	assert_int_equal(cc->rules.nignore_headers, 0);
	assert_int_equal(cc->rules.ignore_no_lastmod, 1);
	assert_int_equal(cc->rules.ignore_query_string, 1);
	assert_int_equal(cc->rules.store_nostore, 1);
	assert_int_equal(cc->rules.store_private, 1);
	assert_int_equal(cc->rules.stale_on_error, 0);
	assert_int_equal(cc->rules.debian, 0);
	assert_true(cc->rules.lm_factor > 0.49 && cc->rules.lm_factor < 0.51);
	assert_int_equal(cc->rules.max_expire, 600);
	assert_int_equal(cc->rules.default_expire, 60);
	cfg_unref(&c);
}

static void
test_bad_values_are_errors_with_file_and_line(void **state)
{
	(void)state;
	load_fails("\nCacheSize 10X\n", "t.conf:2: CacheSize");
	load_fails("CacheSize 512K\n", "at least 1M");
	load_fails("CacheRoot relative/dir\n", "absolute");
	load_fails("CacheEnable ramdisk /\n", "unknown cache type");
	load_fails("CacheEnable lmdb\n", "CacheEnable: expected 2 arguments");
	load_fails("CacheEnable lmdb host/path\n", "URL prefix");
	load_fails("CacheDisable \"http://a b\"\n", "URL prefix");
	load_fails("CacheStorePrivate yes\n", "On or Off");
	load_fails("CacheLastModifiedFactor -1\n", "CacheLastModifiedFactor");
	load_fails("CacheMaxExpire 1.5\n", "CacheMaxExpire");
	load_fails("CachePurgeAllow 10.0.0.0/8\n", "t.conf:1: unknown directive");
	load_fails("<Limit PURGE>\nRequire local\n</Limit>\n",
	           "t.conf:1: <Limit> is only allowed inside <Proxy>");
	load_fails("<Proxy *>\n<Limit PURGE>\nRequire local\n</Proxy>\n",
	           "t.conf:4: expected </Limit> but saw </Proxy>");
	load_fails("<Proxy *>\n<Limit PURGE>\nRequire local\n", "t.conf:2: <Limit> section not closed");
	load_fails("<Proxy *>\n<Limit PURGE>\n<Limit GET>\n", "t.conf:3: <Limit> not allowed in <Limit>");
	load_fails("<Proxy *>\n<LimitExcept>\n", "t.conf:2: <LimitExcept>: expected one or more");
	load_fails("<Proxy *>\n<Limit PURGE>\nCacheRoot /x\n", "t.conf:3: CacheRoot not allowed in <Limit>");
}

/* The status page's explain names the deciding CacheEnable/CacheDisable line, and the
 * AllowCONNECT in force. */
static void
test_deciding_prefix_has_its_line(void **state)
{
	(void)state;
	struct cfg *c = load("CacheRoot /tmp/x\n\nCacheEnable lmdb http://a.test/\n"
	                     "CacheEnable lmdb /\nCacheDisable http://a.test/private\n"
	                     "AllowCONNECT 443 8443\n");
	const char *prefix, *where;
	int by_disable;
	assert_true(cachecfg_enabled_why(c->cache, "http://a.test/x", 15, &prefix, &by_disable,
	                                 &where));
	assert_string_equal(prefix, "http://a.test/");
	assert_string_equal(where, "t.conf:3");
	assert_false(by_disable);
	assert_true(cachecfg_enabled_why(c->cache, "http://b.test/x", 15, &prefix, &by_disable,
	                                 &where));
	assert_string_equal(prefix, "/");
	assert_string_equal(where, "t.conf:4");
	assert_false(cachecfg_enabled_why(c->cache, "http://a.test/private/1", 23, &prefix,
	                                  &by_disable, &where));
	assert_true(by_disable);
	assert_string_equal(prefix, "http://a.test/private");
	assert_string_equal(where, "t.conf:5");
	assert_string_equal(c->allow_connect_where, "t.conf:6");
	cfg_unref(&c);
	c = load("CacheRoot /tmp/x\nCacheEnable lmdb http://a.test/\n");
	assert_false(cachecfg_enabled_why(c->cache, "http://b.test/", 14, &prefix, &by_disable,
	                                  &where));
	assert_null(prefix);
	assert_null(where);
	assert_null(c->allow_connect_where);
	cfg_unref(&c);
}

static void
test_enable_and_disable_prefixes(void **state)
{
	(void)state;
	struct cfg *c = load("CacheRoot /tmp/x\nCacheEnable lmdb HTTP://Deb.Example.test/debian\n"
	                     "CacheEnable lmdb ftp://\n"
	                     "CacheDisable http://deb.example.test/debian/private\n");
	assert_true(enabled(c, "http://deb.example.test/debian/pool/a.deb"));
	assert_false(enabled(c, "http://deb.example.test/other"));
	assert_true(enabled(c, "ftp://ftp.test/pub/x"));
	assert_false(enabled(c, "http://deb.example.test/debian/private/x"));
	cfg_unref(&c);
	c = load("CacheRoot /tmp/x\nCacheEnable lmdb /\n");
	assert_true(enabled(c, "http://any.test/"));
	assert_true(enabled(c, "ftp://any.test/"));
	cfg_unref(&c);
	c = load("CacheRoot /tmp/x\nCacheEnable lmdb /\nCacheDisable /\n");
	assert_false(enabled(c, "http://any.test/"));
	cfg_unref(&c);
	/* prefixes take the normalized form of keys (daemon/url.h) */
	c = load("CacheRoot /tmp/x\nCacheEnable lmdb http://Deb.Test.:080//debian/./%70ool\n"
	         "CacheDisable http://deb.test:8080\n");
	assert_true(enabled(c, "http://deb.test/debian/pool/a.deb"));
	assert_false(enabled(c, "http://deb.test/debian/other"));
	assert_false(enabled(c, "http://deb.test:8080/debian/pool/a.deb"));
	cfg_unref(&c);
	/* a host with a trailing dot and nothing after it names that host (keys have the dot
	 * dropped) and the longer names it is a prefix of; it disabled none of them */
	c = load("CacheRoot /tmp/x\nCacheEnable lmdb /\nCacheDisable http://Private.Test.\n");
	assert_false(enabled(c, "http://private.test/x"));
	assert_false(enabled(c, "http://private.test:8080/x"));
	assert_false(enabled(c, "http://private.test.cdn.test/x"));
	assert_true(enabled(c, "http://private.testing/x"));
	assert_true(enabled(c, "http://other.test/x"));
	cfg_unref(&c);
	load_fails("CacheRoot /tmp/x\nCacheEnable lmdb http://deb.test:99999/\n",
	           "t.conf:2: CacheEnable: cannot normalize the URL prefix: bad port");
}

static int
purge_ok(const struct cfg *c, int family, const char *addr)
{
	struct sockaddr_storage ss;
	const char *rule = NULL;
	const char *url = "http://any.test/x";
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = (sa_family_t)family;
	if (family == AF_INET)
		assert_int_equal(inet_pton(AF_INET, addr,
		                           &((struct sockaddr_in *)&ss)->sin_addr), 1);
	else
		assert_int_equal(inet_pton(AF_INET6, addr,
		                           &((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
	return pol_acl_check(c->acl, "PURGE", url, strlen(url), (const struct sockaddr *)&ss, NULL,
	                     &rule) == POL_ALLOW;
}

static void
test_purge_needs_a_limit_grant(void **state)
{
	(void)state;
	struct cfg *c = NULL;
	char err[512];
	/* the built-in default: loopback only */
	if (cfg_load(NULL, &c, err, sizeof(err)) != 0)
		fail_msg("default: %s", err);
	assert_true(purge_ok(c, AF_INET, "127.0.0.1"));
	assert_true(purge_ok(c, AF_INET6, "::1"));
	assert_false(purge_ok(c, AF_INET, "10.0.0.1"));
	cfg_unref(&c);
	/* a section that admits the office does not grant PURGE */
	c = load("<Proxy *>\nRequire all granted\n</Proxy>\n");
	assert_false(purge_ok(c, AF_INET, "127.0.0.1"));
	assert_false(purge_ok(c, AF_INET, "10.0.0.1"));
	cfg_unref(&c);
	c = load("<Proxy *>\n  Require ip 10.0.0.0/8\n  <Limit PURGE>\n"
	         "    Require ip 10.1.0.0/16 2001:db8::/32 192.0.2.7\n  </Limit>\n</Proxy>\n");
	assert_false(purge_ok(c, AF_INET, "127.0.0.1"));
	assert_true(purge_ok(c, AF_INET, "10.1.200.3"));
	assert_false(purge_ok(c, AF_INET, "10.2.0.1"));
	assert_true(purge_ok(c, AF_INET, "192.0.2.7"));
	assert_false(purge_ok(c, AF_INET, "192.0.2.8"));
	assert_true(purge_ok(c, AF_INET6, "2001:db8:5::1"));
	assert_true(purge_ok(c, AF_INET6, "::ffff:10.1.2.3"));
	assert_false(purge_ok(c, AF_INET6, "2001:db9::1"));
	cfg_unref(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_match_the_documentation),
		cmocka_unit_test(test_directives_set_their_fields),
		cmocka_unit_test(test_bad_values_are_errors_with_file_and_line),
		cmocka_unit_test(test_enable_and_disable_prefixes),
		cmocka_unit_test(test_deciding_prefix_has_its_line),
		cmocka_unit_test(test_purge_needs_a_limit_grant),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
