/*
 * test_cfg.c - daemon/cfg.c: the Apache-syntax loader. Every directive accepted and refused
 * (exact "FILE:LINE: message" texts), quoting, continuation lines, comments, sections,
 * Include/IncludeOptional with globs in a temporary directory, the built-in default, and the
 * reference count.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/cachecfg.h"
#include "daemon/cfg.h"

#define CFG_MAX_NEST_TEST 33 /* one more than cfg.c's CFG_MAX_NEST */

/* ---- helpers ---- */

static struct cfg *
cfg_ok(const char *text)
{
	struct cfg *c = NULL;
	char err[512];

	if (cfg_load_string("t.conf", text, &c, err, sizeof(err)) != 0)
		fail_msg("refused: %s\n--- config:\n%s", err, text);
	assert_non_null(c);
	return c;
}

/* Load text that must fail; returns the message in a static buffer. */
static const char *
cfg_bad(const char *text)
{
	static char err[512];
	struct cfg *c = (struct cfg *)1;

	err[0] = '\0';
	if (cfg_load_string("t.conf", text, &c, err, sizeof(err)) == 0)
		fail_msg("accepted:\n%s", text);
	assert_null(c);
	return err;
}

static const struct sockaddr *
client(const char *text, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(text, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
	}
	return (const struct sockaddr *)ss;
}

static enum pol_verdict
verdict(const struct cfg *c, const char *url, const char *who, const char **rule)
{
	struct sockaddr_storage ss;
	const char *dummy;

	return pol_acl_check(c->acl, "GET", url, strlen(url), client(who, &ss), NULL,
	                     rule ? rule : &dummy);
}

static void
write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		fail_msg("cannot write %s: %s", path, strerror(errno));
	fputs(text, f);
	fclose(f);
}

/* ---- the built-in default ---- */

static void
builtin_default_loads_and_allows_private_nets(void **state)
{
	struct cfg *c = NULL;
	char err[256];
	const char *rule;

	(void)state;
	assert_int_equal(cfg_load(NULL, &c, err, sizeof(err)), 0);
	assert_string_equal(c->path, "(built-in)");
	assert_int_equal(c->nlisten, 1);
	assert_string_equal(c->listen[0].text, "127.0.0.1:3128");
	assert_int_equal(c->listen[0].addr.ss_family, AF_INET);
	assert_int_equal(c->proxy_requests, 1);
	assert_true(pol_ports_has(c->allow_connect, 443));
	assert_true(pol_ports_has(c->allow_connect, 563));
	assert_false(pol_ports_has(c->allow_connect, 80));
	assert_int_equal(verdict(c, "http://example.com/", "8.8.8.8", &rule), POL_DENY);
	assert_int_equal(verdict(c, "http://example.com/", "192.168.1.5", &rule), POL_ALLOW);
	assert_string_equal(rule, "Require ip 192.168.0.0/16 (<Proxy *> at (built-in):19)");
	assert_int_equal(verdict(c, "http://example.com/", "::1", NULL), POL_ALLOW);
	assert_int_equal(verdict(c, "example.com:443", "10.20.30.40", NULL), POL_ALLOW);
	assert_int_equal(verdict(c, "http://example.com/", "172.31.255.1", NULL), POL_ALLOW);
	assert_int_equal(verdict(c, "http://example.com/", "172.32.0.1", NULL), POL_DENY);
	assert_int_equal(verdict(c, "http://example.com/", "2001:db8::1", NULL), POL_DENY);
	cfg_unref(&c);
	assert_null(c);
}

static void
builtin_default_text_is_commented(void **state)
{
	(void)state;
	assert_non_null(strstr(cfg_default_text, "# "));
	assert_non_null(strstr(cfg_default_text, "\nListen 127.0.0.1:3128\n"));
	assert_non_null(strstr(cfg_default_text, "\nAllowCONNECT 443 563\n"));
	assert_non_null(strstr(cfg_default_text, "<Proxy *>\n"));
}

static void
empty_config_gets_documented_defaults(void **state)
{
	struct cfg *c = cfg_ok("");
	struct res_conf dns;

	(void)state;
	assert_string_equal(c->path, "t.conf");
	assert_int_equal(c->nlisten, 1);
	assert_string_equal(c->listen[0].text, "127.0.0.1:3128");
	assert_int_equal(c->proxy_requests, 1);
	assert_int_equal(c->via, CFG_VIA_OFF);
	assert_true(pol_ports_has(c->allow_connect, 443));
	assert_true(pol_ports_has(c->allow_connect, 563));
	assert_false(pol_ports_has(c->allow_connect, 8443));
	assert_int_equal(c->proxy_timeout_ms, 60000);
	assert_int_equal(c->max_forwards, -1);
	assert_int_equal(c->bad_header, CFG_BADHDR_ISERROR);
	assert_int_equal(c->chain_auth, 0);
	res_conf_default(&dns);
	assert_memory_equal(&c->dns, &dns, sizeof(dns));
	assert_int_equal(c->workers, 0);
	assert_null(c->access_log);
	assert_null(c->error_log);
	assert_int_equal(c->log_level, CFG_LL_WARN);
	assert_int_equal(c->timeout_ms, 60000);
	assert_int_equal(c->keepalive_timeout_ms, 5000);
	assert_int_equal(c->max_keepalive_requests, 100);
	assert_int_equal(c->limit_request_line, 8190);
	assert_int_equal(c->limit_request_field_size, 8190);
	assert_int_equal(c->limit_request_fields, 100);
	assert_int_equal(c->graceful_timeout_ms, 10000);
	assert_int_equal(c->upstream_idle_ms, 30000);
	assert_int_equal(c->max_connections, 0); /* sized by main from the file limit */
	assert_int_equal(c->max_conns_per_client, 256);
	/* no sections: loopback only */
	assert_int_equal(verdict(c, "http://x/", "127.0.0.1", NULL), POL_ALLOW);
	assert_int_equal(verdict(c, "http://x/", "192.168.1.5", NULL), POL_DENY);
	cfg_unref(&c);
}

/* ---- directives: accepted ---- */

struct num_case {
	const char *text;
	size_t off;
	unsigned value;
};

#define F(f) offsetof(struct cfg, f)
static const struct num_case num_cases[] = {
	{ "ProxyTimeout 30", F(proxy_timeout_ms), 30000 },
	{ "ProxyTimeout 86400", F(proxy_timeout_ms), 86400000 },
	{ "DNSTimeout 250", F(dns.timeout_ms), 250 },
	{ "DNSNegativeTTL 0", F(dns.neg_ttl), 0 },
	{ "DNSNegativeTTL 120", F(dns.neg_ttl), 120 },
	{ "Workers 1", F(workers), 1 },
	{ "Workers 256", F(workers), 256 },
	{ "Timeout 300", F(timeout_ms), 300000 },
	{ "KeepAliveTimeout 15", F(keepalive_timeout_ms), 15000 },
	{ "MaxKeepAliveRequests 0", F(max_keepalive_requests), 0 },
	{ "MaxKeepAliveRequests 500", F(max_keepalive_requests), 500 },
	{ "LimitRequestLine 16384", F(limit_request_line), 16384 },
	{ "LimitRequestFieldSize 4096", F(limit_request_field_size), 4096 },
	{ "LimitRequestFields 256", F(limit_request_fields), 256 },
	{ "LimitRequestFields 1", F(limit_request_fields), 1 },
	{ "GracefulShutdownTimeout 3", F(graceful_timeout_ms), 3000 },
	{ "UpstreamIdleTimeout 90", F(upstream_idle_ms), 90000 },
	{ "MaxConnections 20000", F(max_connections), 20000 },
	{ "maxconnections 7", F(max_connections), 7 },       /* names are case-insensitive */
	{ "MaxConnectionsPerClient 20", F(max_conns_per_client), 20 },
	{ "MaxConnectionsPerClient 0", F(max_conns_per_client), 0 }, /* no limit */
	{ "Timeout \"45\"", F(timeout_ms), 45000 },          /* quoted */
};

static void
numeric_directives_accepted(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(num_cases) / sizeof(num_cases[0]); i++) {
		struct cfg *c = cfg_ok(num_cases[i].text);
		unsigned v = *(unsigned *)((char *)c + num_cases[i].off);

		if (v != num_cases[i].value)
			fail_msg("%s: got %u, expected %u", num_cases[i].text, v,
			         num_cases[i].value);
		cfg_unref(&c);
	}
}

static void
listen_forms(void **state)
{
	struct cfg *c;
	const struct sockaddr_in *s4;
	const struct sockaddr_in6 *s6;

	(void)state;
	c = cfg_ok("Listen 3128\nListen 127.0.0.2:8080\nListen [::1]:3128\nListen [::]:8081\n"
	           "listen 10.0.0.1:3129");
	assert_int_equal(c->nlisten, 5);
	assert_string_equal(c->listen[0].text, "0.0.0.0:3128");
	s4 = (const struct sockaddr_in *)&c->listen[0].addr;
	assert_int_equal(s4->sin_family, AF_INET);
	assert_int_equal(ntohs(s4->sin_port), 3128);
	assert_int_equal(s4->sin_addr.s_addr, htonl(INADDR_ANY));
	assert_int_equal(c->listen[0].addrlen, sizeof(struct sockaddr_in));
	assert_string_equal(c->listen[1].text, "127.0.0.2:8080");
	assert_string_equal(c->listen[2].text, "[::1]:3128");
	s6 = (const struct sockaddr_in6 *)&c->listen[2].addr;
	assert_int_equal(s6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(s6->sin6_port), 3128);
	assert_true(IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr));
	assert_int_equal(c->listen[2].addrlen, sizeof(struct sockaddr_in6));
	assert_string_equal(c->listen[3].text, "[::]:8081");
	assert_string_equal(c->listen[4].text, "10.0.0.1:3129");
	cfg_unref(&c);

	c = cfg_ok("Listen *:8000");
	assert_int_equal(c->nlisten, 1);
	assert_string_equal(c->listen[0].text, "0.0.0.0:8000");
	cfg_unref(&c);
}

static void
flag_and_keyword_directives(void **state)
{
	struct cfg *c;
	static const struct {
		const char *text;
		enum cfg_via via;
	} vias[] = {
		{ "ProxyVia On", CFG_VIA_ON }, { "ProxyVia off", CFG_VIA_OFF },
		{ "ProxyVia FULL", CFG_VIA_FULL }, { "ProxyVia Block", CFG_VIA_BLOCK },
	};
	static const struct {
		const char *text;
		enum cfg_bad_header v;
	} badh[] = {
		{ "ProxyBadHeader IsError", CFG_BADHDR_ISERROR },
		{ "ProxyBadHeader ignore", CFG_BADHDR_IGNORE },
		{ "ProxyBadHeader StartBody", CFG_BADHDR_STARTBODY },
	};

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		c = cfg_ok(vias[i].text);
		assert_int_equal(c->via, vias[i].via);
		cfg_unref(&c);
	}
	for (size_t i = 0; i < 3; i++) {
		c = cfg_ok(badh[i].text);
		assert_int_equal(c->bad_header, badh[i].v);
		cfg_unref(&c);
	}
	c = cfg_ok("ProxyRequests Off\nProxyChainAuth On\nProxyMaxForwards 10");
	assert_int_equal(c->proxy_requests, 0);
	assert_int_equal(c->chain_auth, 1);
	assert_int_equal(c->max_forwards, 10);
	cfg_unref(&c);
	c = cfg_ok("ProxyMaxForwards 10\nProxyMaxForwards -1");
	assert_int_equal(c->max_forwards, -1);
	cfg_unref(&c);
	c = cfg_ok("ProxyMaxForwards 0");
	assert_int_equal(c->max_forwards, 0);
	cfg_unref(&c);
}

static void
allow_connect_replaces_default(void **state)
{
	struct cfg *c = cfg_ok("AllowCONNECT 443 8000-8100");

	(void)state;
	assert_true(pol_ports_has(c->allow_connect, 443));
	assert_true(pol_ports_has(c->allow_connect, 8050));
	assert_false(pol_ports_has(c->allow_connect, 563));
	cfg_unref(&c);
	c = cfg_ok("AllowCONNECT 443\nAllowCONNECT 22");
	assert_true(pol_ports_has(c->allow_connect, 22));
	assert_false(pol_ports_has(c->allow_connect, 443));
	cfg_unref(&c);
}

static void
dns_directives(void **state)
{
	struct cfg *c = cfg_ok("DNSServer 127.0.0.53\nDNSServer 127.0.0.1 127.0.0.2\n"
	                       "DNSCacheTTL 10 600\nDNSTimeout 800");
	const struct sockaddr_in *s4;

	(void)state;
	assert_int_equal(c->dns.nservers, 2);
	s4 = (const struct sockaddr_in *)&c->dns.servers[1];
	assert_int_equal(s4->sin_family, AF_INET);
	assert_int_equal(ntohl(s4->sin_addr.s_addr), 0x7f000002);
	assert_int_equal(c->dns.ttl_min, 10);
	assert_int_equal(c->dns.ttl_max, 600);
	assert_int_equal(c->dns.timeout_ms, 800);
	cfg_unref(&c);
	c = cfg_ok("DNSServer 127.0.0.1 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5 127.0.0.6 "
	           "127.0.0.7 127.0.0.8\nDNSCacheTTL 0 0");
	assert_int_equal(c->dns.nservers, 8);
	assert_int_equal(c->dns.ttl_max, 0);
	cfg_unref(&c);
}

static void
log_directives_and_paths(void **state)
{
	struct cfg *c;
	char cwd[1024], want[1200];

	(void)state;
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	c = cfg_ok("AccessLog logs/access.log combined\nErrorLog /var/log/gh.err\nLogLevel info");
	snprintf(want, sizeof(want), "%s/logs/access.log", cwd);
	assert_string_equal(c->access_log, want);
	assert_int_equal(c->access_log_format, CFG_LOG_COMBINED);
	assert_string_equal(c->error_log, "/var/log/gh.err");
	assert_int_equal(c->log_level, CFG_LL_INFO);
	cfg_unref(&c);
	c = cfg_ok("AccessLog - \nErrorLog -\nLogLevel trace8");
	assert_string_equal(c->access_log, "-");
	assert_int_equal(c->access_log_format, CFG_LOG_SQUID);
	assert_string_equal(c->error_log, "-");
	assert_int_equal(c->log_level, CFG_LL_TRACE);
	cfg_unref(&c);
	c = cfg_ok("AccessLog \"/tmp/my log.txt\" SQUID\nLogLevel EMERG");
	assert_string_equal(c->access_log, "/tmp/my log.txt");
	assert_int_equal(c->log_level, CFG_LL_EMERG);
	cfg_unref(&c);
	static const char *const levels[] = {
		"emerg", "alert", "crit", "error", "warn", "notice", "info", "debug", "trace1"
	};
	for (int i = 0; i < 9; i++) {
		char line[64];

		snprintf(line, sizeof(line), "LogLevel %s", levels[i]);
		c = cfg_ok(line);
		assert_int_equal(c->log_level, i);
		cfg_unref(&c);
	}
}

static void
log_level_names(void **state)
{
	(void)state;
	assert_string_equal(cfg_log_level_name(CFG_LL_EMERG), "emerg");
	assert_string_equal(cfg_log_level_name(CFG_LL_WARN), "warn");
	assert_string_equal(cfg_log_level_name(CFG_LL_DEBUG), "debug");
	assert_string_equal(cfg_log_level_name(CFG_LL_TRACE), "trace");
	assert_string_equal(cfg_log_level_name((enum cfg_log_level)99), "unknown");
}

static void
proxy_sections_build_the_acl(void **state)
{
	struct cfg *c;
	const char *rule;

	(void)state;
	c = cfg_ok("# access\n"
	           "<Proxy *>\n"
	           "    Require ip 10.0.0.0/8\n"
	           "</Proxy>\n"
	           "<Proxy \"http://intranet/\">\n"
	           "    Order deny,allow\n"
	           "    Deny from all\n"
	           "    Allow from 10.1.0.0/16\n"
	           "    Satisfy Any\n"
	           "</Proxy>\n"
	           "<ProxyMatch \\.exe$>\n"
	           "    Require all denied\n"
	           "</ProxyMatch>\n"
	           "<Proxy ~ ^http://blocked\\.>\n"
	           "    Require not ip 10.9.0.0/16\n"
	           "    Require all granted\n"
	           "</proxy>\n"
	           "<proxymatch ^http://empty/>\n"
	           "</PROXYMATCH>\n");
	assert_int_equal(verdict(c, "http://x/", "10.2.3.4", &rule), POL_ALLOW);
	assert_string_equal(rule, "Require ip 10.0.0.0/8 (<Proxy *> at t.conf:2)");
	assert_int_equal(verdict(c, "http://x/", "11.2.3.4", &rule), POL_DENY);
	assert_string_equal(rule, "no Require matched (<Proxy *> at t.conf:2)");
	assert_int_equal(verdict(c, "http://intranet/a", "10.2.3.4", &rule), POL_DENY);
	assert_string_equal(rule, "Deny from all (<Proxy http://intranet/> at t.conf:5)");
	assert_int_equal(verdict(c, "http://intranet/a", "10.1.3.4", NULL), POL_ALLOW);
	assert_int_equal(verdict(c, "http://x/a.EXE", "10.2.3.4", &rule), POL_DENY);
	assert_string_equal(rule, "Require all denied (<ProxyMatch \\.exe$> at t.conf:11)");
	assert_int_equal(verdict(c, "http://blocked.example/", "8.8.8.8", NULL), POL_ALLOW);
	assert_int_equal(verdict(c, "http://blocked.example/", "10.9.1.1", &rule), POL_DENY);
	assert_string_equal(rule, "Require not ip 10.9.0.0/16 (<Proxy ~ ^http://blocked\\.> at "
	                    "t.conf:14)");
	/* an empty section does not decide */
	assert_int_equal(verdict(c, "http://empty/", "10.2.3.4", NULL), POL_ALLOW);
	cfg_unref(&c);
}

/* ---- syntax ---- */

static void
continuation_lines_join(void **state)
{
	struct cfg *c;

	(void)state;
	c = cfg_ok("Listen \\\n  127.0.0.1:9000\nProxy\\\nVia On\n");
	assert_string_equal(c->listen[0].text, "127.0.0.1:9000");
	assert_int_equal(c->via, CFG_VIA_ON);
	cfg_unref(&c);
	c = cfg_ok("AllowCONNECT 443 \\\r\n 8443 \\\n\\\n 22\r\n");
	assert_true(pol_ports_has(c->allow_connect, 8443));
	assert_true(pol_ports_has(c->allow_connect, 22));
	cfg_unref(&c);
	/* a comment continued swallows the next line, as in Apache */
	c = cfg_ok("# comment \\\nListen 99999\n");
	assert_string_equal(c->listen[0].text, "127.0.0.1:3128");
	cfg_unref(&c);
	/* errors name the first line of the joined line */
	assert_string_equal(cfg_bad("\nProxy\\\nFoo x\n"),
	                    "t.conf:2: unknown directive \"ProxyFoo\"");
	assert_string_equal(cfg_bad("ProxyVia \\\nOn\nListen \\\n99999"),
	                    "t.conf:3: Listen: bad port \"99999\"");
}

static void
comments_blank_lines_and_crlf(void **state)
{
	struct cfg *c;

	(void)state;
	c = cfg_ok("# comment\n\n   \t# indented comment\r\n\r\nProxyVia Full\r\n   \n"
	           "\tWorkers 4 \n");
	assert_int_equal(c->via, CFG_VIA_FULL);
	assert_int_equal(c->workers, 4);
	cfg_unref(&c);
	c = cfg_ok("\xef\xbb\xbfProxyVia Block\n");     /* UTF-8 byte order mark */
	assert_int_equal(c->via, CFG_VIA_BLOCK);
	cfg_unref(&c);
	assert_string_equal(cfg_bad("\n\xef\xbb\xbfProxyVia Block\n"),
	                    "t.conf:2: unknown directive \"\xef\xbb\xbfProxyVia\"");
	/* '#' only starts a comment at the start of a line */
	assert_string_equal(cfg_bad("Workers 4 # four"), "t.conf:1: Workers: expected 1 argument, "
	                    "got 3");
}

static void
quoted_arguments(void **state)
{
	struct cfg *c;

	(void)state;
	assert_string_equal(cfg_bad("AccessLog \"\""), "t.conf:1: AccessLog: empty file name");
	c = cfg_ok("ErrorLog \"/a \\\"b\\\" \\\\c \\d\"");
	assert_string_equal(c->error_log, "/a \"b\" \\c \\d");
	cfg_unref(&c);
	c = cfg_ok("\"ProxyVia\"\t\"On\"");
	assert_int_equal(c->via, CFG_VIA_ON);
	cfg_unref(&c);
	assert_string_equal(cfg_bad("ProxyVia \"On"), "t.conf:1: unterminated quoted string");
	assert_string_equal(cfg_bad("ProxyVia \"O\"n"), "t.conf:1: text after closing quote");
	assert_string_equal(cfg_bad("ProxyVia \"On\\\""), "t.conf:1: unterminated quoted string");
}

static void
long_lines(void **state)
{
	size_t n = 16 * 1024;
	char *text = malloc(n + 64);
	struct cfg *c;

	(void)state;
	assert_non_null(text);
	/* exactly 16 KiB: accepted */
	memset(text, ' ', n);
	memcpy(text, "Workers 3", 9);
	text[n] = '\0';
	c = cfg_ok(text);
	assert_int_equal(c->workers, 3);
	cfg_unref(&c);
	/* one more byte, across a continuation: refused at the first line */
	snprintf(text, n + 64, "\n");
	memset(text + 1, ' ', n - 8);
	memcpy(text + 1, "Workers 3", 9);
	memcpy(text + 1 + n - 8, "\\\n123456789", 12);
	assert_string_equal(cfg_bad(text), "t.conf:2: line too long (more than 16384 bytes)");
	free(text);
}

/* ---- directives: refused, with exact messages ---- */

struct bad_case {
	const char *text;
	const char *err;
};

static const struct bad_case bad_cases[] = {
	{ "ProxyFoo On", "t.conf:1: unknown directive \"ProxyFoo\"" },
	{ "\n\nProxyVia maybe",
	  "t.conf:3: ProxyVia: expected On, Off, Full or Block, got \"maybe\"" },
	{ "Listen 99999", "t.conf:1: Listen: bad port \"99999\"" },
	{ "Listen 0", "t.conf:1: Listen: bad port \"0\"" },
	{ "Listen 127.0.0.1:", "t.conf:1: Listen: bad port \"127.0.0.1:\"" },
	{ "Listen [::1]:65536", "t.conf:1: Listen: bad port \"[::1]:65536\"" },
	{ "Listen localhost:3128",
	  "t.conf:1: Listen: expected PORT, ADDR:PORT or [ADDR]:PORT with a numeric address, "
	  "got \"localhost:3128\"" },
	{ "Listen [::1]",
	  "t.conf:1: Listen: expected PORT, ADDR:PORT or [ADDR]:PORT with a numeric address, "
	  "got \"[::1]\"" },
	{ "Listen ::1:3128",
	  "t.conf:1: Listen: expected PORT, ADDR:PORT or [ADDR]:PORT with a numeric address, "
	  "got \"::1:3128\"" },
	{ "Listen 1.2.3:80",
	  "t.conf:1: Listen: expected PORT, ADDR:PORT or [ADDR]:PORT with a numeric address, "
	  "got \"1.2.3:80\"" },
	{ "Listen 3128 spdy", "t.conf:1: Listen: expected http or https after the address, "
	  "got \"spdy\"" },
	{ "Listen 3128 https extra", "t.conf:1: Listen: expected 1 or 2 arguments, got 3" },
	/* issue 13: TLS */
	{ "\nListen 127.0.0.1:3129 https", "t.conf:2: Listen 127.0.0.1:3129 https: "
	  "SSLCertificateFile is missing (the certificate the listener presents, with "
	  "SSLCertificateKeyFile)" },
	{ "SSLProtocol SSLv3", "t.conf:1: SSLProtocol: SSLv3 is not supported: Gatehouse speaks "
	  "TLSv1.2 and TLSv1.3 only (\"-SSLv3\" is accepted)" },
	{ "SSLProtocol all +TLSv1.1", "t.conf:1: SSLProtocol: TLSv1.1 is not supported: "
	  "Gatehouse speaks TLSv1.2 and TLSv1.3 only (\"-TLSv1.1\" is accepted)" },
	{ "SSLProxyProtocol TLSv1.4", "t.conf:1: SSLProxyProtocol: unknown protocol "
	  "\"TLSv1.4\" (expected all, TLSv1.2 or TLSv1.3, each with an optional + or -)" },
	{ "SSLProtocol -all", "t.conf:1: SSLProtocol: no protocol left (TLSv1.2 and TLSv1.3 are "
	  "the ones Gatehouse speaks)" },
	{ "SSLProtocol TLSv1.2 -TLSv1.2 +TLSv1", "t.conf:1: SSLProtocol: TLSv1 is not "
	  "supported: Gatehouse speaks TLSv1.2 and TLSv1.3 only (\"-TLSv1\" is accepted)" },
	{ "SSLProxyVerify optional", "t.conf:1: SSLProxyVerify: expected require or none, got "
	  "\"optional\"" },
	{ "SSLProxyVerify optional_no_ca", "t.conf:1: SSLProxyVerify: expected require or none, "
	  "got \"optional_no_ca\"" },
	{ "SSLCipherSuite RSA HIGH", "t.conf:1: SSLCipherSuite: expected SSL or TLSv1.3 before "
	  "the cipher list, got \"RSA\"" },
	{ "SSLCertificateFile \"\"", "t.conf:1: SSLCertificateFile: empty file name" },
	{ "FTPTLS Maybe", "t.conf:1: FTPTLS: expected Off, Try or Require, got \"Maybe\"" },
	{ "Listen", "t.conf:1: Listen: expected 1 or 2 arguments, got 0" },
	{ "Listen 3128\nListen *:3128", "t.conf:2: Listen: 0.0.0.0:3128 given twice" },
	{ "Listen 3128\nListen 127.0.0.1:3128",
	  "t.conf:2: Listen: 127.0.0.1:3128 overlaps 0.0.0.0:3128" },
	{ "Listen [::1]:80\nListen [::]:80", "t.conf:2: Listen: [::]:80 overlaps [::1]:80" },
	{ "ProxyRequests maybe", "t.conf:1: ProxyRequests: expected On or Off, got \"maybe\"" },
	{ "ProxyRequests", "t.conf:1: ProxyRequests: expected 1 argument, got 0" },
	{ "AllowCONNECT 443 0", "t.conf:1: AllowCONNECT: bad port \"0\"" },
	{ "AllowCONNECT 10-5", "t.conf:1: AllowCONNECT: bad port \"10-5\"" },
	{ "AllowCONNECT *", "t.conf:1: AllowCONNECT: bad port \"*\"" },
	{ "AllowCONNECT", "t.conf:1: AllowCONNECT: expected at least 1 argument, got 0" },
	{ "ProxyTimeout 0", "t.conf:1: ProxyTimeout: expected seconds from 1 to 86400, got \"0\"" },
	{ "ProxyTimeout 10s",
	  "t.conf:1: ProxyTimeout: expected seconds from 1 to 86400, got \"10s\"" },
	{ "ProxyTimeout -1",
	  "t.conf:1: ProxyTimeout: expected seconds from 1 to 86400, got \"-1\"" },
	{ "ProxyTimeout +5",
	  "t.conf:1: ProxyTimeout: expected seconds from 1 to 86400, got \"+5\"" },
	{ "ProxyTimeout 99999999999",
	  "t.conf:1: ProxyTimeout: expected seconds from 1 to 86400, got \"99999999999\"" },
	{ "ProxyTimeout 4294967296",
	  "t.conf:1: ProxyTimeout: expected seconds from 1 to 86400, got \"4294967296\"" },
	{ "ProxyTimeout \" 5\"",
	  "t.conf:1: ProxyTimeout: expected seconds from 1 to 86400, got \" 5\"" },
	{ "ProxyMaxForwards -2",
	  "t.conf:1: ProxyMaxForwards: expected -1 or a number from 0 to 65535, got \"-2\"" },
	{ "ProxyMaxForwards 65536",
	  "t.conf:1: ProxyMaxForwards: expected -1 or a number from 0 to 65535, got \"65536\"" },
	{ "ProxyBadHeader foo",
	  "t.conf:1: ProxyBadHeader: expected IsError, Ignore or StartBody, got \"foo\"" },
	{ "ProxyChainAuth yes", "t.conf:1: ProxyChainAuth: expected On or Off, got \"yes\"" },
	{ "DNSServer 1 2 3 4 5 6 7 8 9", "t.conf:1: DNSServer: expected 1 to 8 arguments, got 9" },
	{ "DNSServer", "t.conf:1: DNSServer: expected 1 to 8 arguments, got 0" },
	{ "DNSTimeout 5",
	  "t.conf:1: DNSTimeout: expected milliseconds from 10 to 60000, got \"5\"" },
	{ "DNSTimeout 60001",
	  "t.conf:1: DNSTimeout: expected milliseconds from 10 to 60000, got \"60001\"" },
	{ "DNSCacheTTL 10", "t.conf:1: DNSCacheTTL: expected 2 arguments, got 1" },
	{ "DNSCacheTTL 100 10", "t.conf:1: DNSCacheTTL: minimum 100 is greater than maximum 10" },
	{ "DNSCacheTTL 1 x",
	  "t.conf:1: DNSCacheTTL: expected seconds from 0 to 604800, got \"x\"" },
	{ "DNSCacheTTL 1 604801",
	  "t.conf:1: DNSCacheTTL: expected seconds from 0 to 604800, got \"604801\"" },
	{ "DNSNegativeTTL x",
	  "t.conf:1: DNSNegativeTTL: expected seconds from 0 to 86400, got \"x\"" },
	{ "Workers 0", "t.conf:1: Workers: expected a number from 1 to 256, got \"0\"" },
	{ "Workers 257", "t.conf:1: Workers: expected a number from 1 to 256, got \"257\"" },
	{ "Workers 0x10", "t.conf:1: Workers: expected a number from 1 to 256, got \"0x10\"" },
	{ "AccessLog a.log json", "t.conf:1: AccessLog: expected squid or combined, got \"json\"" },
	{ "AccessLog a.log combined x", "t.conf:1: AccessLog: expected 1 or 2 arguments, got 3" },
	{ "AccessLog \"||/usr/bin/logger\"", "t.conf:1: AccessLog: \"||program\" (without a "
	  "shell) is not supported; use \"|program\", which runs it with /bin/sh -c" },
	{ "ErrorLog syslog:local9",
	  "t.conf:1: ErrorLog: unknown syslog facility \"local9\" (expected daemon, user, "
	  "local0 to local7, ...)" },
	{ "ErrorLog", "t.conf:1: ErrorLog: expected 1 argument, got 0" },
	{ "LogLevel verbose",
	  "t.conf:1: LogLevel: expected emerg, alert, crit, error, warn, notice, info, debug or "
	  "trace1 to trace8, got \"verbose\"" },
	{ "LogLevel trace9",
	  "t.conf:1: LogLevel: expected emerg, alert, crit, error, warn, notice, info, debug or "
	  "trace1 to trace8, got \"trace9\"" },
	{ "LogLevel trace",
	  "t.conf:1: LogLevel: expected emerg, alert, crit, error, warn, notice, info, debug or "
	  "trace1 to trace8, got \"trace\"" },
	{ "LogLevel info ssl:warn", "t.conf:1: LogLevel: expected 1 argument, got 2" },
	{ "Timeout 0", "t.conf:1: Timeout: expected seconds from 1 to 86400, got \"0\"" },
	{ "KeepAliveTimeout 3601",
	  "t.conf:1: KeepAliveTimeout: expected seconds from 1 to 3600, got \"3601\"" },
	{ "MaxKeepAliveRequests -1",
	  "t.conf:1: MaxKeepAliveRequests: expected a number from 0 to 1000000, got \"-1\"" },
	{ "LimitRequestLine 10",
	  "t.conf:1: LimitRequestLine: expected a number from 64 to 65536, got \"10\"" },
	{ "LimitRequestFieldSize 70000",
	  "t.conf:1: LimitRequestFieldSize: expected a number from 64 to 65536, got \"70000\"" },
	{ "LimitRequestFields 257",
	  "t.conf:1: LimitRequestFields: expected a number from 1 to 256, got \"257\"" },
	{ "LimitRequestFields 0",
	  "t.conf:1: LimitRequestFields: expected a number from 1 to 256, got \"0\"" },
	{ "GracefulShutdownTimeout 0",
	  "t.conf:1: GracefulShutdownTimeout: expected seconds from 1 to 86400, got \"0\"" },
	{ "UpstreamIdleTimeout x",
	  "t.conf:1: UpstreamIdleTimeout: expected seconds from 1 to 86400, got \"x\"" },
	{ "MaxConnections 0",
	  "t.conf:1: MaxConnections: expected a number from 1 to 1048576, got \"0\"" },
	{ "MaxConnectionsPerClient -1",
	  "t.conf:1: MaxConnectionsPerClient: expected a number from 0 to 1048576, got \"-1\"" },
	{ "Include", "t.conf:1: Include: expected 1 argument, got 0" },
	{ "Include \"\"", "t.conf:1: Include: empty file name" },
	/* reserved for later issues: refused as unknown, never ignored */
	{ "ProxyPass / http://backend/",
	  "t.conf:1: ProxyPass: Gatehouse is a forward proxy only; reverse proxying is not "
	  "supported" },
	{ "ProxyBlock", "t.conf:1: ProxyBlock: expected at least 1 argument, got 0" },
	{ "KeepAlive On", "t.conf:1: unknown directive \"KeepAlive\"" },
	{ "ServerRoot /etc", "t.conf:1: ServerRoot: Gatehouse has no ServerRoot; relative paths "
	  "are relative to the configuration file's directory" },
	/* sections */
	{ "<Proxy *>\nListen 80\n</Proxy>", "t.conf:2: Listen not allowed in <Proxy>" },
	{ "<ProxyMatch x>\nInclude y\n</ProxyMatch>",
	  "t.conf:2: Include not allowed in <ProxyMatch>" },
	{ "<Proxy *>\nFrobnicate\n</Proxy>", "t.conf:2: unknown directive \"Frobnicate\"" },
	{ "Require ip 10.0.0.0/8",
	  "t.conf:1: Require: only allowed inside <Proxy> or <ProxyMatch>" },
	{ "Order deny,allow", "t.conf:1: Order: only allowed inside <Proxy> or <ProxyMatch>" },
	{ "Allow from all", "t.conf:1: Allow: only allowed inside <Proxy> or <ProxyMatch>" },
	{ "Deny from all", "t.conf:1: Deny: only allowed inside <Proxy> or <ProxyMatch>" },
	{ "Satisfy Any", "t.conf:1: Satisfy: only allowed inside <Proxy> or <ProxyMatch>" },
	{ "Workers 2\n<Proxy *>\n  Require ip 1.2.3.4\n", "t.conf:2: <Proxy> section not closed" },
	{ "<Proxy *>\n</ProxyMatch>", "t.conf:2: expected </Proxy> but saw </ProxyMatch>" },
	{ "</Proxy>", "t.conf:1: </Proxy> without matching <Proxy> section" },
	{ "<Proxy *>\n</Proxy>\n</Proxy>", "t.conf:3: </Proxy> without matching <Proxy> section" },
	{ "<Proxy *>\n<Proxy x>\n</Proxy>\n</Proxy>", "t.conf:2: <Proxy> not allowed in <Proxy>" },
	{ "<Proxy *>\n<ProxyMatch x>", "t.conf:2: <ProxyMatch> not allowed in <Proxy>" },
	{ "<Proxy *", "t.conf:1: <Proxy> directive missing closing '>'" },
	{ "<Proxy *>\n</Proxy", "t.conf:2: </Proxy> directive missing closing '>'" },
	{ "<Proxy *>\n</Proxy> x", "t.conf:2: text after </Proxy>" },
	{ "<Proxy>", "t.conf:1: <Proxy>: expected 1 argument, got 0" },
	{ "<Proxy a b>", "t.conf:1: <Proxy>: expected 1 argument, got 2" },
	{ "<ProxyMatch ~ x>", "t.conf:1: <ProxyMatch>: expected 1 argument, got 2" },
	{ "<VirtualHost *:80>\n</VirtualHost>", "t.conf:1: unknown section \"<VirtualHost>\": "
	  "Gatehouse is one server; put the directives at the top level" },
	{ "<IfModule mod_proxy.c>", "t.conf:1: <IfModule> section not closed" },
	{ "<Proxy \"a>", "t.conf:1: <Proxy>: unterminated quoted string" },
	{ "<ProxyMatch (a)\\1>",
	  "t.conf:1: <ProxyMatch>: bad regular expression \"(a)\\1\": back-references are not "
	  "supported" },
	{ "<Proxy *>\nRequire ip 10.0.0.0/8\nOrder deny,allow\n</Proxy>",
	  "t.conf:3: Order: cannot mix Order/Allow/Deny with Require in one section" },
	{ "<Proxy *>\nAllow from all\nRequire all granted\n</Proxy>",
	  "t.conf:3: Require: cannot mix Require with Order/Allow/Deny in one section" },
	{ "<Proxy *>\nAllow 10.0.0.1\n</Proxy>",
	  "t.conf:2: Allow: expected at least 2 arguments, got 1" },
	{ "<Proxy *>\nDeny to 10.0.0.1\n</Proxy>",
	  "t.conf:2: Deny: expected \"from\", got \"to\"" },
	{ "<Proxy *>\nAllow from 10.0.0.300\n</Proxy>",
	  "t.conf:2: Allow: bad address \"10.0.0.300\": not an IP address or subnet" },
	{ "<Proxy *>\nOrder allow\n</Proxy>",
	  "t.conf:2: Order: expected deny,allow, allow,deny or mutual-failure, got \"allow\"" },
	{ "<Proxy *>\nOrder deny, allow\n</Proxy>", "t.conf:2: Order: expected 1 argument, got 2" },
	{ "<Proxy *>\nSatisfy maybe\n</Proxy>",
	  "t.conf:2: Satisfy: expected Any or All, got \"maybe\"" },
	/* issue 14: user terms need authentication in force; containers in sections */
	{ "<Proxy *>\nRequire user bob\n</Proxy>",
	  "t.conf:2: Require user bob needs AuthType in this or an enclosing <Proxy *> section" },
	{ "<Proxy *>\nRequire ip 10.0.0.0/8\n</Proxy>\n<Proxy http://payroll/>\n"
	  "<RequireAll>\nRequire ip 10.0.0.0/8\nRequire group hr\n</RequireAll>\n</Proxy>",
	  "t.conf:7: Require group hr needs AuthType in this or an enclosing <Proxy *> section" },
	{ "<Proxy *>\n<Limit POST>\nRequire valid-user\n</Limit>\n</Proxy>",
	  "t.conf:3: Require valid-user needs AuthType in this or an enclosing <Proxy *> section" },
	{ "<Proxy *>\nRequire env X\n</Proxy>",
	  "t.conf:2: Require: unsupported provider \"env\" (supported: ip, host, all, local, "
	  "valid-user, user, group)" },
	{ "<Proxy *>\n<RequireAny>\nRequire not ip 10.0.0.1\n</RequireAny>\n</Proxy>",
	  "t.conf:3: Require: a negative Require has no effect in <RequireAny> (or outside any "
	  "container): put it in <RequireAll> or <RequireNone>" },
	{ "<Proxy *>\n<RequireAll>\nRequire all granted\n<RequireNone>\n"
	  "Require not host evil.example\n</RequireNone>\n</RequireAll>\n</Proxy>",
	  "t.conf:5: Require: a negative Require has no effect in <RequireNone>: it could never "
	  "grant (write the positive rule there)" },
	{ "<Proxy *>\n<RequireAll>\nRequire not ip 10.0.0.1\n</RequireAll>\n</Proxy>",
	  "t.conf:4: </RequireAll>: <RequireAll> holds only negative rules: it can never grant" },
	{ "<Proxy *>\n<RequireAny>\n</RequireAny>\n</Proxy>",
	  "t.conf:3: </RequireAny>: the container holds no Require directive" },
	{ "<Proxy *>\n<RequireAll>\nRequire ip 10.0.0.1\n</Proxy>",
	  "t.conf:4: expected </RequireAll> but saw </Proxy>" },
	{ "<Proxy *>\n<RequireAll>\n<Limit GET>\n</Limit>\n</RequireAll>\n</Proxy>",
	  "t.conf:3: <Limit> not allowed in <RequireAll>" },
	{ "<Proxy *>\n<RequireAll x>\n</RequireAll>\n</Proxy>",
	  "t.conf:2: <RequireAll> takes no arguments" },
	{ "<Proxy *>\n<RequireSome>\n</RequireSome>\n</Proxy>",
	  "t.conf:2: unknown section \"<RequireSome>\"" },
	{ "<Proxy *>\nOrder deny,allow\n<RequireAll>\nRequire all granted\n</RequireAll>\n"
	  "</Proxy>", "t.conf:3: <RequireAll>: cannot mix Require with Order/Allow/Deny in one "
	  "section" },
	{ "<Proxy *>\nRequire group\n</Proxy>",
	  "t.conf:2: Require: \"group\" needs at least one group name" },
	{ "<Proxy *>\nRequire\n</Proxy>",
	  "t.conf:2: Require: expected at least 1 argument, got 0" },
	{ "<Proxy *>\nRequire ip 10.0.0.0/33\n</Proxy>",
	  "t.conf:2: Require: bad address \"10.0.0.0/33\": bad prefix length" },
	/* the first error stops loading */
	{ "Workers 0\nProxyFoo", "t.conf:1: Workers: expected a number from 1 to 256, got \"0\"" },
};

/* Issue 13: the SSL* directives, FTPTLS and "Listen ... https" fill the contract fields of
 * cfg.h, each with the FILE:LINE tls_set_build names in its errors. */
static void
tls_directives_set_their_fields(void **state)
{
	struct cfg *c;

	(void)state;
	c = cfg_ok("Listen 127.0.0.1:3128\nListen 127.0.0.1:3129 HTTPS\nListen 3130 http\n"
	           "SSLCertificateFile /etc/ssl/certs/gh.pem\n"
	           "SSLCertificateKeyFile /etc/ssl/private/gh.key\n"
	           "SSLCertificateChainFile /etc/ssl/certs/chain.pem\n"
	           "SSLProtocol all -SSLv3 -TLSv1 -TLSv1.1\n"
	           "SSLCipherSuite ECDHE-RSA-AES128-GCM-SHA256\n"
	           "SSLProxyCACertificateFile /etc/ca.pem\nSSLProxyCACertificatePath /etc/cas\n"
	           "SSLProxyVerify none\nSSLProxyMachineCertificateFile /etc/client.pem\n"
	           "SSLProxyProtocol -all +TLSv1.3\nSSLProxyCipherSuite TLSv1.3 TLS_AES_128_GCM_SHA256\n"
	           "FTPTLS Require\n");
	assert_int_equal(c->nlisten, 3);
	assert_int_equal(c->listen[0].https, 0);
	assert_int_equal(c->listen[1].https, 1);
	assert_int_equal(c->listen[2].https, 0);
	assert_string_equal(c->ssl_cert_file, "/etc/ssl/certs/gh.pem");
	assert_string_equal(c->ssl_cert_where, "t.conf:4");
	assert_string_equal(c->ssl_key_file, "/etc/ssl/private/gh.key");
	assert_string_equal(c->ssl_key_where, "t.conf:5");
	assert_string_equal(c->ssl_chain_file, "/etc/ssl/certs/chain.pem");
	assert_string_equal(c->ssl_chain_where, "t.conf:6");
	assert_string_equal(c->ssl_protocol, "all -SSLv3 -TLSv1 -TLSv1.1");
	assert_string_equal(c->ssl_protocol_where, "t.conf:7");
	assert_string_equal(c->ssl_ciphers, "ECDHE-RSA-AES128-GCM-SHA256");
	assert_string_equal(c->ssl_ciphers_where, "t.conf:8");
	assert_string_equal(c->ssl_proxy_ca_file, "/etc/ca.pem");
	assert_string_equal(c->ssl_proxy_ca_where, "t.conf:9");
	assert_string_equal(c->ssl_proxy_ca_path, "/etc/cas");
	assert_int_equal(c->ssl_proxy_verify, 0);
	assert_string_equal(c->ssl_proxy_machine_cert, "/etc/client.pem");
	assert_string_equal(c->ssl_proxy_machine_where, "t.conf:12");
	assert_string_equal(c->ssl_proxy_protocol, "-all +TLSv1.3");
	assert_string_equal(c->ssl_proxy_protocol_where, "t.conf:13");
	assert_null(c->ssl_proxy_ciphers);
	assert_string_equal(c->ssl_proxy_ciphers13, "TLS_AES_128_GCM_SHA256");
	assert_string_equal(c->ssl_proxy_ciphers13_where, "t.conf:14");
	assert_int_equal(c->ftp_tls, CFG_FTPTLS_REQUIRE);
	cfg_unref(&c);
	/* defaults: verify, FTPTLS Try, nothing set; a later line replaces an earlier one */
	c = cfg_ok("Listen 3128\nSSLProxyVerify none\nSSLProxyVerify REQUIRE\nFTPTLS off\n"
	           "SSLProtocol TLSv1.2\nSSLProtocol +TLSv1.3\n");
	assert_int_equal(c->listen[0].https, 0);
	assert_int_equal(c->ssl_proxy_verify, 1);
	assert_int_equal(c->ftp_tls, CFG_FTPTLS_OFF);
	assert_string_equal(c->ssl_protocol, "+TLSv1.3");
	assert_string_equal(c->ssl_protocol_where, "t.conf:6");
	assert_null(c->ssl_cert_file);
	assert_null(c->ssl_proxy_ca_file);
	cfg_unref(&c);
	c = cfg_ok("Listen 3128\n");
	assert_int_equal(c->ftp_tls, CFG_FTPTLS_TRY);
	assert_int_equal(c->ssl_proxy_verify, 1);
	assert_null(c->ssl_protocol);
	cfg_unref(&c);
	/* SSLCertificateFile repeated (one per key type): the n-th key goes with the n-th */
	c = cfg_ok("Listen 3128\nSSLCertificateFile /r.pem\nSSLCertificateKeyFile /r.key\n"
	           "SSLCertificateFile /e.pem\nSSLCertificateFile /d.pem\n"
	           "SSLCertificateKeyFile /e.key\n");
	assert_string_equal(c->ssl_cert_file, "/r.pem");
	assert_string_equal(c->ssl_key_file, "/r.key");
	assert_int_equal(c->nssl_more, 2);
	assert_string_equal(c->ssl_more[0].cert, "/e.pem");
	assert_string_equal(c->ssl_more[0].cert_where, "t.conf:4");
	assert_string_equal(c->ssl_more[0].key, "/e.key");
	assert_string_equal(c->ssl_more[0].key_where, "t.conf:6");
	assert_string_equal(c->ssl_more[1].cert, "/d.pem");
	assert_null(c->ssl_more[1].key);
	cfg_unref(&c);
	/* one cipher list per protocol, as Apache: a TLS 1.2 and a TLS 1.3 line combine, a later
	 * line replaces its own protocol's only */
	c = cfg_ok("Listen 3128\nSSLCipherSuite ECDHE+AESGCM\nSSLCipherSuite TLSv1.3 "
	           "TLS_AES_256_GCM_SHA384\nSSLCipherSuite SSL ECDHE+CHACHA20\n"
	           "SSLProxyCipherSuite TLSv1.3 TLS_CHACHA20_POLY1305_SHA256\n"
	           "SSLProxyCipherSuite HIGH:!aNULL\n");
	assert_string_equal(c->ssl_ciphers, "ECDHE+CHACHA20");
	assert_string_equal(c->ssl_ciphers_where, "t.conf:4");
	assert_string_equal(c->ssl_ciphers13, "TLS_AES_256_GCM_SHA384");
	assert_string_equal(c->ssl_ciphers13_where, "t.conf:3");
	assert_string_equal(c->ssl_proxy_ciphers, "HIGH:!aNULL");
	assert_string_equal(c->ssl_proxy_ciphers_where, "t.conf:6");
	assert_string_equal(c->ssl_proxy_ciphers13, "TLS_CHACHA20_POLY1305_SHA256");
	assert_string_equal(c->ssl_proxy_ciphers13_where, "t.conf:5");
	cfg_unref(&c);
	/* SSLEngine / SSLProxyEngine: accepted, with a notice that says what does it instead */
	c = cfg_ok("Listen 3128\nSSLProxyEngine on\n");
	assert_non_null(c->notices);
	assert_non_null(strstr(c->notices, "t.conf:2: SSLProxyEngine on: has no effect"));
	cfg_unref(&c);
}

static void
bad_directives_exact_messages(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const char *err = cfg_bad(bad_cases[i].text);

		if (strcmp(err, bad_cases[i].err) != 0)
			fail_msg("config:\n%s\n--- got:      %s\n--- expected: %s",
			         bad_cases[i].text, err, bad_cases[i].err);
	}
}

static void
bad_prefix_messages(void **state)
{
	static const struct bad_case cases[] = {
		{ "DNSServer 127.0.0.1 nonsense!",
		  "t.conf:1: DNSServer: bad address \"nonsense!\": " },
		{ "<ProxyMatch (>\n</ProxyMatch>", "t.conf:1: <ProxyMatch>: bad regular expression "
		  "\"(\": " },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *err = cfg_bad(cases[i].text);

		if (strncmp(err, cases[i].err, strlen(cases[i].err)) != 0 ||
		    strlen(err) == strlen(cases[i].err))
			fail_msg("got \"%s\", expected \"%s...\"", err, cases[i].err);
	}
}

static void
too_many_listen_addresses(void **state)
{
	char text[1024] = "";

	(void)state;
	for (int i = 0; i < CFG_MAX_LISTEN + 1; i++) {
		char line[64];

		snprintf(line, sizeof(line), "Listen 127.0.0.1:%d\n", 4000 + i);
		strcat(text, line);
	}
	assert_string_equal(cfg_bad(text), "t.conf:17: Listen: more than 16 addresses");
}

static void
error_buffer_is_bounded(void **state)
{
	struct cfg *c = NULL;
	char err[16];

	(void)state;
	memset(err, 'x', sizeof(err));
	assert_int_equal(cfg_load_string("t.conf", "ProxyFoo", &c, err, sizeof(err)), -1);
	assert_string_equal(err, "t.conf:1: unkno");
	assert_int_equal(cfg_load_string("t.conf", "ProxyFoo", &c, err, 0), -1);
	assert_null(c);
}

/* ---- files and Include ---- */

static char tmpdir[256];

static int
tmp_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_cfg.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	return 0;
}

static int
tmp_teardown(void **state)
{
	char cmd[512];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct cfg *
load_file_ok(const char *name)
{
	char path[512], err[1024];
	struct cfg *c = NULL;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	if (cfg_load(path, &c, err, sizeof(err)) != 0)
		fail_msg("%s refused: %s", path, err);
	return c;
}

static const char *
load_file_bad(const char *name)
{
	static char err[1024];
	char path[512];
	struct cfg *c = NULL;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	if (cfg_load(path, &c, err, sizeof(err)) == 0)
		fail_msg("%s accepted", path);
	assert_null(c);
	return err;
}

static void
include_globs_sorted_and_relative(void **state)
{
	char want[1024], sub[512];
	struct cfg *c;

	(void)state;
	snprintf(sub, sizeof(sub), "%s/conf.d", tmpdir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(sub, sizeof(sub), "%s/conf.d/sub", tmpdir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(sub, sizeof(sub), "%s/conf.d/dir.conf", tmpdir);   /* a directory matching */
	assert_int_equal(mkdir(sub, 0700), 0);
	write_file(tmpdir, "main.conf",
	           "Workers 2\nInclude conf.d/*.conf\nIncludeOptional none/*.x\n"
	           "Include nothing-*.conf\nIncludeOptional missing.conf\nAccessLog logs/a.log\n");
	write_file(tmpdir, "conf.d/b.conf", "ProxyVia Full\nInclude sub/x.conf\n");
	write_file(tmpdir, "conf.d/a.conf", "ProxyVia On\nWorkers 3\n");
	write_file(tmpdir, "conf.d/c.txt", "ProxyFoo\n");
	write_file(tmpdir, "conf.d/sub/x.conf", "ErrorLog err.log\n<Proxy *>\nRequire all granted\n"
	           "</Proxy>\n");
	c = load_file_ok("main.conf");
	assert_int_equal(c->via, CFG_VIA_FULL);        /* b.conf after a.conf */
	assert_int_equal(c->workers, 3);
	snprintf(want, sizeof(want), "%s/main.conf", tmpdir);
	assert_string_equal(c->path, want);
	snprintf(want, sizeof(want), "%s/logs/a.log", tmpdir);
	assert_string_equal(c->access_log, want);
	snprintf(want, sizeof(want), "%s/conf.d/sub/err.log", tmpdir);
	assert_string_equal(c->error_log, want);
	assert_int_equal(verdict(c, "http://x/", "8.8.8.8", NULL), POL_ALLOW);
	cfg_unref(&c);
}

static void
include_errors(void **state)
{
	char want[1024];

	(void)state;
	write_file(tmpdir, "m1.conf", "\nInclude missing.conf\n");
	snprintf(want, sizeof(want), "%s/m1.conf:2: Include: cannot read \"%s/missing.conf\": "
	         "No such file or directory", tmpdir, tmpdir);
	assert_string_equal(load_file_bad("m1.conf"), want);

	write_file(tmpdir, "m2.conf", "Include inc/bad.conf\n");
	snprintf(want, sizeof(want), "%s/inc", tmpdir);
	assert_int_equal(mkdir(want, 0700), 0);
	write_file(tmpdir, "inc/bad.conf", "# included\nWorkers many\n");
	snprintf(want, sizeof(want), "%s/inc/bad.conf:2: Workers: expected a number from 1 to 256, "
	         "got \"many\"", tmpdir);
	assert_string_equal(load_file_bad("m2.conf"), want);

	write_file(tmpdir, "loop.conf", "Workers 1\nInclude loop.conf\n");
	snprintf(want, sizeof(want), "%s/loop.conf:2: Include nested too deeply (loop?)", tmpdir);
	assert_string_equal(load_file_bad("loop.conf"), want);

	write_file(tmpdir, "m3.conf", "Include inc\n");
	snprintf(want, sizeof(want), "%s/m3.conf:1: Include: cannot read \"%s/inc\": "
	         "is a directory (use a wildcard such as dir/*.conf)", tmpdir, tmpdir);
	assert_string_equal(load_file_bad("m3.conf"), want);

	write_file(tmpdir, "m4.conf", "Include inc/open.conf\nListen 80\n");
	write_file(tmpdir, "inc/open.conf", "<Proxy *>\n");
	snprintf(want, sizeof(want), "%s/inc/open.conf:1: <Proxy> section not closed", tmpdir);
	assert_string_equal(load_file_bad("m4.conf"), want);

	write_file(tmpdir, "m5.conf", "<Proxy *>\nInclude inc/x.conf\n</Proxy>\n");
	snprintf(want, sizeof(want), "%s/m5.conf:2: Include not allowed in <Proxy>", tmpdir);
	assert_string_equal(load_file_bad("m5.conf"), want);

	snprintf(want, sizeof(want), "%s/fifo", tmpdir);
	assert_int_equal(mkfifo(want, 0600), 0);
	write_file(tmpdir, "m6.conf", "IncludeOptional fifo\n");
	snprintf(want, sizeof(want), "%s/m6.conf:1: Include: cannot read \"%s/fifo\": "
	         "not a regular file", tmpdir, tmpdir);
	assert_string_equal(load_file_bad("m6.conf"), want);

	snprintf(want, sizeof(want), "%s/nope.conf: cannot read: No such file or directory",
	         tmpdir);
	assert_string_equal(load_file_bad("nope.conf"), want);

	/* a NUL byte in a file */
	snprintf(want, sizeof(want), "%s/nul.conf", tmpdir);
	FILE *f = fopen(want, "w");
	assert_non_null(f);
	fwrite("Workers 2\n\0\n", 1, 12, f);
	fclose(f);
	snprintf(want, sizeof(want), "%s/nul.conf: cannot read: contains a NUL byte", tmpdir);
	assert_string_equal(load_file_bad("nul.conf"), want);
}

static void
include_relative_to_cwd_for_strings(void **state)
{
	char cwd[1024];
	struct cfg *c;

	(void)state;
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	write_file(tmpdir, "s.conf", "Workers 9\n");
	assert_int_equal(chdir(tmpdir), 0);
	c = cfg_ok("Include s.conf");
	assert_int_equal(chdir(cwd), 0);
	assert_int_equal(c->workers, 9);
	cfg_unref(&c);
}

static void
relative_top_file_resolves_from_cwd(void **state)
{
	char cwd[1024], want[1024], err[512];
	struct cfg *c = NULL;

	(void)state;
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	snprintf(want, sizeof(want), "%s/rel", tmpdir);
	assert_int_equal(mkdir(want, 0700), 0);
	write_file(tmpdir, "rel/r.conf", "Listen 3128\nAccessLog a.log\nInclude more.conf\n");
	write_file(tmpdir, "rel/more.conf", "ErrorLog ../e.log\n");
	assert_int_equal(chdir(tmpdir), 0);
	int rc = cfg_load("rel/r.conf", &c, err, sizeof(err));
	assert_int_equal(chdir(cwd), 0);
	if (rc != 0)
		fail_msg("%s", err);
	assert_string_equal(c->path, "rel/r.conf");
	snprintf(want, sizeof(want), "%s/rel/a.log", tmpdir);
	assert_string_equal(c->access_log, want);
	snprintf(want, sizeof(want), "%s/rel/../e.log", tmpdir);
	assert_string_equal(c->error_log, want);
	cfg_unref(&c);
}

/* ---- Apache compatibility (issue 9, part 3) ---- */

static void
ifmodule_truth_table(void **state)
{
	static const struct {
		const char *module;
		int present;
	} cases[] = {
		{ "mod_proxy.c", 1 }, { "proxy_module", 1 }, { "mod_proxy", 1 },
		{ "mod_proxy_http.c", 1 }, { "proxy_http_module", 1 }, { "mod_proxy_ftp.c", 1 },
		{ "proxy_connect_module", 1 }, { "mod_cache.c", 1 }, { "cache_disk_module", 1 },
		{ "mod_status.c", 1 }, { "mod_log_config.c", 1 }, { "authz_core_module", 1 },
		{ "mod_authz_host.c", 1 }, { "mod_auth_basic.c", 1 }, { "authn_file_module", 1 },
		{ "MOD_PROXY.C", 1 },
		/* not stood in for: false */
		{ "mod_ssl.c", 1 }, { "ssl_module", 1 }, /* issue 13 */
		{ "mod_rewrite.c", 0 },
		{ "mod_proxy_balancer.c", 0 }, { "mod_cache_socache.c", 0 }, { "proxy", 0 },
		{ "mod_.c", 0 }, { "_module", 0 }, { "mod_proxy.cc", 0 }, { "", 0 },
	};
	char text[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cfg *c;

		if (cfg_module_present(cases[i].module) != cases[i].present)
			fail_msg("cfg_module_present(\"%s\") != %d", cases[i].module,
			         cases[i].present);
		if (!cases[i].module[0])
			continue;
		/* the section: true sets Workers 3, the negated one Workers 5 */
		snprintf(text, sizeof(text), "<IfModule %s>\nWorkers 3\n</IfModule>\n"
		         "<IfModule !%s>\nWorkers 5\n</IfModule>\n", cases[i].module,
		         cases[i].module);
		c = cfg_ok(text);
		if (c->workers != (cases[i].present ? 3u : 5u))
			fail_msg("<IfModule %s>: Workers %u", cases[i].module, c->workers);
		cfg_unref(&c);
	}
}

static void
ifdefine_follows_dash_d(void **state)
{
	struct cfg *c;

	(void)state;
	cfg_defines_clear();
	c = cfg_ok("<IfDefine CACHE>\nWorkers 3\n</IfDefine>\n<IfDefine !CACHE>\nWorkers 5\n"
	           "</IfDefine>\n");
	assert_int_equal(c->workers, 5);
	cfg_unref(&c);
	assert_int_equal(cfg_define("CACHE"), 0);
	c = cfg_ok("<IfDefine CACHE>\nWorkers 3\n</IfDefine>\n<IfDefine !CACHE>\nWorkers 5\n"
	           "</IfDefine>\n");
	assert_int_equal(c->workers, 3);
	cfg_unref(&c);
	/* names are case-sensitive, as Apache's */
	c = cfg_ok("Workers 2\n<IfDefine cache>\nWorkers 3\n</IfDefine>\n");
	assert_int_equal(c->workers, 2);
	cfg_unref(&c);
	assert_int_equal(cfg_define(""), -1);
	assert_int_equal(cfg_define("!X"), -1);
	assert_int_equal(cfg_define("A B"), -1);
	cfg_defines_clear();
	c = cfg_ok("Workers 2\n<IfDefine CACHE>\nWorkers 3\n</IfDefine>\n");
	assert_int_equal(c->workers, 2);
	cfg_unref(&c);
}

static void
conditional_sections_nest_and_wrap_proxy(void **state)
{
	struct cfg *c;

	(void)state;
	/* nested: the inner one counts only when the outer is true */
	c = cfg_ok("<IfModule mod_proxy.c>\n  <IfModule mod_cache.c>\n    Workers 3\n"
	           "  </IfModule>\n  <IfModule mod_rewrite.c>\n    Workers 4\n  </IfModule>\n"
	           "</IfModule>\n");
	assert_int_equal(c->workers, 3);
	cfg_unref(&c);
	/* a false section skips everything inside, sections and unknown directives included */
	c = cfg_ok("Workers 2\n<IfModule mod_rewrite.c>\n  RewriteEngine on\n  Frobnicate\n"
	           "  <VirtualHost *:443>\n    <IfModule mod_proxy.c>\n      Workers 9\n"
	           "    </IfModule>\n  </VirtualHost>\n</IfModule>\n");
	assert_int_equal(c->workers, 2);
	cfg_unref(&c);
	/* ... and closing tags there are matched by name only */
	c = cfg_ok("Workers 2\n<IfModule mod_rewrite.c>\n<VirtualHost *>\n</VirtualHost\n"
	           "</IfModule> trailing\nWorkers 4\n");
	assert_int_equal(c->workers, 4);
	cfg_unref(&c);
	/* <Proxy> inside <IfModule>, <IfModule> inside <Proxy> and <Limit> */
	c = cfg_ok("<IfModule mod_proxy.c>\n<Proxy *>\n  <IfModule mod_authz_host.c>\n"
	           "    Require ip 10.0.0.0/8\n    <Limit PURGE>\n      <IfDefine !NOPURGE>\n"
	           "        Require ip 10.0.0.5\n      </IfDefine>\n    </Limit>\n"
	           "  </IfModule>\n  <IfModule !mod_authz_host.c>\n    Require all granted\n"
	           "  </IfModule>\n</Proxy>\n</IfModule>\n");
	assert_int_equal(verdict(c, "http://x/", "10.1.2.3", NULL), POL_ALLOW);
	assert_int_equal(verdict(c, "http://x/", "192.168.1.1", NULL), POL_DENY);
	cfg_unref(&c);
	/* a false <IfModule> around a whole <Proxy>: no section, loopback only */
	c = cfg_ok("<IfModule mod_rewrite.c>\n<Proxy *>\nRequire all granted\n</Proxy>\n"
	           "</IfModule>\n");
	assert_int_equal(verdict(c, "http://x/", "10.1.2.3", NULL), POL_DENY);
	cfg_unref(&c);
	/* tags are case-insensitive; quoting works as elsewhere */
	c = cfg_ok("<ifmodule \"mod_proxy.c\">\nWorkers 7\n</IFMODULE>\n");
	assert_int_equal(c->workers, 7);
	cfg_unref(&c);
}

static void
conditional_section_errors(void **state)
{
	static const struct bad_case cases[] = {
		{ "Workers 2\n<IfModule mod_proxy.c>\nWorkers 3\n",
		  "t.conf:2: <IfModule> section not closed" },
		{ "<IfModule mod_rewrite.c>\n<IfDefine X>\n</IfDefine>\n",
		  "t.conf:1: <IfModule> section not closed" },
		{ "<IfDefine X>\nWorkers 3\n", "t.conf:1: <IfDefine> section not closed" },
		{ "<IfModule mod_proxy.c>\n</IfDefine>", "t.conf:2: expected </IfModule> but saw "
		  "</IfDefine>" },
		{ "<IfModule mod_rewrite.c>\n<VirtualHost *>\n</IfModule>\n",
		  "t.conf:3: expected </VirtualHost> but saw </IfModule>" },
		{ "<IfModule mod_proxy.c>\n<Proxy *>\n</IfModule>\n</Proxy>\n",
		  "t.conf:3: expected </Proxy> but saw </IfModule>" },
		{ "<Proxy *>\n<IfModule mod_proxy.c>\n</Proxy>\n</IfModule>\n",
		  "t.conf:3: expected </IfModule> but saw </Proxy>" },
		{ "<Proxy *>\n<IfModule mod_proxy.c>\n", "t.conf:2: <IfModule> section not closed" },
		{ "</IfModule>", "t.conf:1: </IfModule> without matching <IfModule> section" },
		{ "<IfModule>\n</IfModule>", "t.conf:1: <IfModule>: expected 1 argument, got 0" },
		{ "<IfModule a b>\n</IfModule>", "t.conf:1: <IfModule>: expected 1 argument, got 2" },
		{ "<IfModule !>\n</IfModule>", "t.conf:1: <IfModule>: expected a module after '!'" },
		{ "<IfDefine !>\n</IfDefine>", "t.conf:1: <IfDefine>: expected a name after '!'" },
		{ "<IfModule mod_proxy.c\n</IfModule>",
		  "t.conf:1: <IfModule> directive missing closing '>'" },
		/* a true section checks what it holds */
		{ "<IfModule mod_proxy.c>\nWorkers 0\n</IfModule>",
		  "t.conf:2: Workers: expected a number from 1 to 256, got \"0\"" },
		{ "<IfModule mod_proxy.c>\nRequire all granted\n</IfModule>",
		  "t.conf:2: Require: only allowed inside <Proxy> or <ProxyMatch>" },
		{ "<Proxy *>\n<IfModule mod_proxy.c>\nListen 80\n</IfModule>\n</Proxy>",
		  "t.conf:3: Listen not allowed in <Proxy>" },
	};
	char text[CFG_MAX_NEST_TEST * 32];
	size_t n = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *err = cfg_bad(cases[i].text);

		if (strcmp(err, cases[i].err) != 0)
			fail_msg("config:\n%s\n--- got:      %s\n--- expected: %s", cases[i].text, err,
			         cases[i].err);
	}
	/* nesting has a limit */
	for (int i = 0; i < CFG_MAX_NEST_TEST; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "<IfModule mod_proxy.c>\n");
	assert_string_equal(cfg_bad(text), "t.conf:33: sections nested more than 32 deep");
}

static void
server_name_forms(void **state)
{
	static const struct {
		const char *arg, *name, *host;
	} ok[] = {
		{ "proxy.corp.example", "proxy.corp.example", "proxy.corp.example" },
		{ "proxy.corp.example:3128", "proxy.corp.example:3128", "proxy.corp.example" },
		{ "http://proxy.corp.example:8080", "proxy.corp.example:8080", "proxy.corp.example" },
		{ "https://gw", "gw", "gw" },
		{ "10.0.0.1:3128", "10.0.0.1:3128", "10.0.0.1" },
		{ "[fd00::1]:3128", "[fd00::1]:3128", "fd00::1" },
	};
	static const struct bad_case bad[] = {
		{ "ServerName ftp://x", "t.conf:1: ServerName: expected http:// or https:// before "
		  "the name, got \"ftp://x\"" },
		{ "ServerName a/b", "t.conf:1: ServerName: expected [scheme://]host[:port], got "
		  "\"a/b\"" },
		{ "ServerName x:0", "t.conf:1: ServerName: bad port in \"x:0\"" },
		{ "ServerName x:", "t.conf:1: ServerName: bad port in \"x:\"" },
		{ "ServerName [zz]:1", "t.conf:1: ServerName: bad IPv6 address in \"[zz]:1\"" },
		{ "ServerName", "t.conf:1: ServerName: expected 1 argument, got 0" },
		{ "<Proxy *>\nServerName x\n</Proxy>", "t.conf:2: ServerName not allowed in <Proxy>" },
	};
	char text[256], host[256];
	struct cfg *c;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(text, sizeof(text), "ServerName %s\n", ok[i].arg);
		c = cfg_ok(text);
		assert_string_equal(c->server_name, ok[i].name);
		assert_string_equal(c->server_host, ok[i].host);
		cfg_unref(&c);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_string_equal(cfg_bad(bad[i].text), bad[i].err);
	/* not given: this machine's name, so that Via always names the proxy */
	c = cfg_ok("");
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	assert_string_equal(c->server_name, host[0] ? host : "gatehouse");
	cfg_unref(&c);
}

static void
apache_cache_directives_give_notices(void **state)
{
	struct cfg *c;

	(void)state;
	c = cfg_ok("CacheRoot /tmp/x\nCacheEnable disk /\nCacheEnable mem http://a.example/\n"
	           "CacheEnable socache http://b.example/\nCacheDirLevels 2\nCacheDirLength 1\n"
	           "CacheLock on\nCacheLockPath /tmp/mod_cache-lock\nCacheLockMaxAge 5\n"
	           "CacheQuickHandler off\nLoadModule proxy_module modules/mod_proxy.so\n");
	assert_int_equal(c->cache->nenable, 3);
	assert_int_equal(c->nnotices, 10);
	assert_non_null(strstr(c->notices, "t.conf:2: CacheEnable disk: Gatehouse stores every "
	                       "cached object in its LMDB store (CacheRoot); treated as "
	                       "CacheEnable lmdb\n"));
	assert_non_null(strstr(c->notices, "t.conf:5: CacheDirLevels: accepted for Apache "
	                       "compatibility, no effect: the LMDB store (CacheRoot) has no "
	                       "directory tree\n"));
	assert_non_null(strstr(c->notices, "t.conf:7: CacheLock: accepted for Apache "
	                       "compatibility, no effect: concurrent misses"));
	assert_non_null(strstr(c->notices, "t.conf:11: LoadModule proxy_module: Gatehouse has "
	                       "this module built in; the line has no effect\n"));
	cfg_unref(&c);
	/* CacheEnable without CacheRoot stores nothing: say so */
	c = cfg_ok("Workers 2\nCacheEnable disk /\n");
	assert_non_null(strstr(c->notices, "t.conf:2: CacheEnable without CacheRoot: nothing is "
	                       "cached"));
	cfg_unref(&c);
	/* a plain config has no notices */
	c = cfg_ok("CacheRoot /tmp/x\nCacheEnable lmdb /\n");
	assert_null(c->notices);
	assert_int_equal(c->nnotices, 0);
	cfg_unref(&c);
}

static void
apache_directives_refused_with_reasons(void **state)
{
	static const struct bad_case cases[] = {
		{ "CacheDirLevels 0", "t.conf:1: CacheDirLevels: expected a number from 1 to 20, "
		  "got \"0\"" },
		{ "CacheDirLevels 5\nCacheDirLength 5", "t.conf:2: CacheDirLength: CacheDirLevels "
		  "times CacheDirLength must not be higher than 20" },
		{ "CacheLock maybe", "t.conf:1: CacheLock: expected On or Off, got \"maybe\"" },
		{ "CacheQuickHandler 1", "t.conf:1: CacheQuickHandler: expected On or Off, got "
		  "\"1\"" },
		{ "CacheLockMaxAge 0", "t.conf:1: CacheLockMaxAge: expected a number of seconds "
		  "above 0, got \"0\"" },
		{ "CacheLockPath \"\"", "t.conf:1: CacheLockPath: expected a directory" },
		{ "CacheEnable ramdisk /", "t.conf:1: CacheEnable: unknown cache type \"ramdisk\" "
		  "(lmdb; Apache's disk, mem and socache mean lmdb)" },
		{ "CacheEnable disk nowhere", "t.conf:1: CacheEnable: expected \"/\" or a URL prefix "
		  "such as http:// or http://host/path, got \"nowhere\"" },
		{ "LoadModule rewrite_module modules/mod_rewrite.so", "t.conf:1: LoadModule "
		  "rewrite_module: Gatehouse has no such module (it stands in for mod_proxy, "
		  "mod_proxy_http, mod_proxy_ftp, mod_proxy_connect, mod_cache, mod_cache_disk, "
		  "mod_status, mod_log_config, mod_authz_core, mod_authz_host, mod_auth_basic, "
		  "mod_authn_file and mod_ssl)" },

		{ "ProxyPassReverse /foo http://foo.example.com/bar", "t.conf:1: ProxyPassReverse: "
		  "Gatehouse is a forward proxy only; reverse proxying is not supported" },
		{ "SSLVerifyClient require", "t.conf:1: SSLVerifyClient: not supported (Gatehouse's "
		  "TLS directives are SSLCertificateFile, SSLCertificateKeyFile, "
		  "SSLCertificateChainFile, SSLProtocol, SSLCipherSuite and SSLProxyCACertificateFile, "
		  "SSLProxyCACertificatePath, SSLProxyVerify, SSLProxyMachineCertificateFile, "
		  "SSLProxyProtocol, SSLProxyCipherSuite)" },
		{ "Define X", "t.conf:1: Define: use \"gatehouse -D NAME\" for <IfDefine NAME>" },
		/* issue 11: <Location> serves the status page and nothing else */
		{ "<Location /x>\n</Location>", "t.conf:1: <Location /x> without \"SetHandler "
		  "gatehouse-status\": Gatehouse serves nothing under <Location> but its status page" },
		{ "<LocationMatch ^/x>\n</LocationMatch>", "t.conf:1: unknown section "
		  "\"<LocationMatch>\": use <Location PATH>: the status page is the only thing "
		  "served there" },
		{ "\n<Location /g/>\nSetHandler server-status\n</Location>", "t.conf:3: SetHandler "
		  "server-status: the only handler is gatehouse-status (the status page)" },
		{ "<Location g/>\n</Location>", "t.conf:1: <Location g/>: expected a path such as "
		  "/gatehouse/ (starting with '/', not \"/\" alone, no wildcards)" },
		{ "<Location />\n</Location>", "t.conf:1: <Location />: expected a path such as "
		  "/gatehouse/ (starting with '/', not \"/\" alone, no wildcards)" },
		{ "<Location /g/>\nSetHandler gatehouse-status\nRequire valid-user\n</Location>",
		  "t.conf:1: <Location /g/>: Require valid-user or user needs \"AuthType Basic\" and "
		  "AuthUserFile" },
		{ "<Location /g/>\nSetHandler gatehouse-status\nAuthType Basic\n</Location>",
		  "t.conf:1: <Location /g/>: AuthType Basic needs AuthUserFile" },
		{ "<Location /g/>\nSetHandler gatehouse-status\nAuthType Digest\n</Location>",
		  "t.conf:3: AuthType Digest: only Basic (or None) is supported" },
		{ "<Location /g/>\nSetHandler gatehouse-status\nRequire ip nowhere\n</Location>",
		  "t.conf:3: Require: bad address \"nowhere\": not an IP address or subnet" },
		{ "<Location /g/>\nSetHandler gatehouse-status\nRequire not ip 10.0.0.1\n"
		  "</Location>", "t.conf:3: Require: a negative Require has no effect in <RequireAny> "
		  "(or outside any container): put it in <RequireAll> or <RequireNone>" },
		{ "<Location /g/>\nSetHandler gatehouse-status\n<RequireAll>\n</RequireAll>\n"
		  "</Location>", "t.conf:4: </RequireAll>: the container holds no Require directive" },
		{ "<Location /g/>\nSetHandler gatehouse-status\nProxyRequests On\n</Location>",
		  "t.conf:3: ProxyRequests not allowed in <Location>" },
		{ "<Location /g/>\nSetHandler gatehouse-status\n<Proxy *>\n</Proxy>\n</Location>",
		  "t.conf:3: <Proxy> not allowed in <Location>" },
		{ "<RequireAll>\n</RequireAll>", "t.conf:1: <RequireAll> is only allowed inside "
		  "<Proxy>, <ProxyMatch>, <Limit>, <LimitExcept> or <Location>" },
		{ "<Location /g/>\nSetHandler gatehouse-status\nAuthType Basic\n"
		  "AuthUserFile /nonexistent/h1.htpasswd\n</Location>", "t.conf:4: AuthUserFile: "
		  "/nonexistent/h1.htpasswd: No such file or directory" },
		{ "<IfVersion >= 2.4>\n</IfVersion>", "t.conf:1: unknown section \"<IfVersion>\": "
		  "Gatehouse has only <IfModule> and <IfDefine>" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *err = cfg_bad(cases[i].text);

		if (strcmp(err, cases[i].err) != 0)
			fail_msg("config:\n%s\n--- got:      %s\n--- expected: %s", cases[i].text, err,
			         cases[i].err);
	}
}

/* -M: the text of path, read back into a string. */
static char *
dump_file(const char *path)
{
	char *text = NULL, err[1024];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	if (cfg_dump(path, f, err, sizeof(err)) != 0)
		fail_msg("cfg_dump %s: %s", path ? path : "(built-in)", err);
	fclose(f);
	return text;
}

/* The directive lines of a -M text: no comments, no blank lines. */
static char *
dump_directives(const char *text)
{
	char *out = calloc(1, strlen(text) + 1), *o = out;

	assert_non_null(out);
	while (*text) {
		const char *nl = strchr(text, '\n'), *p = text;
		size_t n = nl ? (size_t)(nl - text) + 1 : strlen(text);

		while (*p == ' ')
			p++;
		if (*p != '#' && *p != '\n') {
			memcpy(o, text, n);
			o += n;
		}
		text += n;
	}
	return out;
}

static void
dump_is_effective_and_reloadable(void **state)
{
	char path[512], path2[512], *d1, *d2, *l1, *l2;
	struct cfg *c = NULL;
	char err[1024];

	(void)state;
	cfg_defines_clear();
	assert_int_equal(cfg_define("WITHCACHE"), 0);
	write_file(tmpdir, "main.conf",
	           "ServerName gw.corp.example\n"
	           "<IfModule mod_proxy.c>\n  ProxyVia On\n  Include conf.d/*.conf\n</IfModule>\n"
	           "<IfModule mod_rewrite.c>\n  RewriteEngine On\n</IfModule>\n"
	           "<IfDefine WITHCACHE>\n  CacheRoot /tmp/gh-cache\n  CacheEnable disk /\n"
	           "</IfDefine>\nAccessLog logs/access.log\n"
	           "<Proxy *>\n  Require ip 10.0.0.0/8 \"127.0.0.1\"\n  <Limit PURGE>\n"
	           "    Require local\n  </Limit>\n</Proxy>\n"
	           "ProxyRemoteMatch \"^http://a\\.example/\" http://fw.example:8080\n"
	           "PidFile \"run dir/gh.pid\"\n");
	snprintf(path, sizeof(path), "%s/conf.d", tmpdir);
	assert_int_equal(mkdir(path, 0700), 0);
	write_file(tmpdir, "conf.d/10-timeout.conf", "ProxyTimeout 30\n");
	snprintf(path, sizeof(path), "%s/main.conf", tmpdir);
	d1 = dump_file(path);
	/* Includes expanded with their place, conditions resolved, defaults filled in */
	snprintf(path2, sizeof(path2), "# %s/conf.d/10-timeout.conf:1\nProxyTimeout 30\n", tmpdir);
	assert_non_null(strstr(d1, path2));
	assert_non_null(strstr(d1, "\n# Include conf.d/*.conf\n"));
	assert_null(strstr(d1, "<IfModule"));
	assert_null(strstr(d1, "</IfModule"));
	assert_null(strstr(d1, "RewriteEngine"));
	assert_non_null(strstr(d1, "\nCacheEnable disk /\n"));
	assert_non_null(strstr(d1, "\n<Proxy *>\n"));
	assert_non_null(strstr(d1, "\n    Require ip 10.0.0.0/8 127.0.0.1\n"));
	assert_non_null(strstr(d1, "\n        Require local\n    </Limit>\n</Proxy>\n"));
	assert_non_null(strstr(d1, "\nProxyRemoteMatch \"^http://a\\\\.example/\" "
	                       "http://fw.example:8080\n"));
	snprintf(path2, sizeof(path2), "\nPidFile \"%s/run dir/gh.pid\"\n", tmpdir);
	assert_non_null(strstr(d1, path2));
	snprintf(path2, sizeof(path2), "\nAccessLog %s/logs/access.log\n", tmpdir);
	assert_non_null(strstr(d1, path2));
	assert_non_null(strstr(d1, "\nKeepAliveTimeout 5\n"));
	assert_non_null(strstr(d1, "\nListen 127.0.0.1:3128\n"));
	assert_non_null(strstr(d1, "\n# User: not set\n"));
	assert_null(strstr(d1, "\nProxyTimeout 60\n"));  /* given, so no default line */
	assert_null(strstr(d1, "\nInclude "));

	/* read back: accepted, the same snapshot, and its own -M has the same directives */
	write_file(tmpdir, "dumped.conf", d1);
	snprintf(path2, sizeof(path2), "%s/dumped.conf", tmpdir);
	assert_int_equal(cfg_load(path2, &c, err, sizeof(err)), 0);
	assert_string_equal(c->server_name, "gw.corp.example");
	assert_int_equal(c->proxy_timeout_ms, 30000);
	assert_int_equal(c->via, CFG_VIA_ON);
	assert_int_equal(c->cache->nenable, 1);
	cfg_unref(&c);
	d2 = dump_file(path2);
	l1 = dump_directives(d1);
	l2 = dump_directives(d2);
	assert_string_equal(l1, l2);
	free(l1);
	free(l2);
	free(d2);
	free(d1);

	/* an error prints nothing */
	write_file(tmpdir, "broken.conf", "ProxyVia On\nWorkers 0\n");
	snprintf(path, sizeof(path), "%s/broken.conf", tmpdir);
	{
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);

		assert_int_equal(cfg_dump(path, f, err, sizeof(err)), -1);
		fclose(f);
		assert_int_equal(len, 0);
		free(text);
		assert_non_null(strstr(err, "broken.conf:2: Workers"));
	}
	cfg_defines_clear();
}

static void
dump_of_builtin_and_empty_configs_load_again(void **state)
{
	char path[512], err[1024], *d, *d2, *l1, *l2;
	struct cfg *c = NULL;

	(void)state;
	d = dump_file(NULL);
	assert_non_null(strstr(d, "# (built-in):"));
	write_file(tmpdir, "b.conf", d);
	snprintf(path, sizeof(path), "%s/b.conf", tmpdir);
	if (cfg_load(path, &c, err, sizeof(err)) != 0)
		fail_msg("-M of the built-in configuration refused: %s", err);
	cfg_unref(&c);
	d2 = dump_file(path);
	l1 = dump_directives(d);
	l2 = dump_directives(d2);
	assert_string_equal(l1, l2);
	free(l1);
	free(l2);
	free(d2);
	free(d);

	/* An empty file is refused (issue 10: it looks truncated), -M included ... */
	write_file(tmpdir, "e.conf", "");
	snprintf(path, sizeof(path), "%s/e.conf", tmpdir);
	{
		FILE *devnull = fopen("/dev/null", "w");

		assert_non_null(devnull);
		assert_int_not_equal(cfg_dump(path, devnull, err, sizeof(err)), 0);
		assert_non_null(strstr(err, "no Listen and no <Proxy> section"));
		fclose(devnull);
	}
	/* ... a file with one Listen line is not: every default line alone is a valid directive
	 * with the default value */
	write_file(tmpdir, "e.conf", "Listen 127.0.0.1:3128\n");
	d = dump_file(path);
	write_file(tmpdir, "e2.conf", d);
	snprintf(path, sizeof(path), "%s/e2.conf", tmpdir);
	if (cfg_load(path, &c, err, sizeof(err)) != 0)
		fail_msg("-M of an empty configuration refused: %s", err);
	{
		struct cfg *e = cfg_ok("");

		/* the defaults printed mean the defaults */
		assert_int_equal(c->proxy_timeout_ms, e->proxy_timeout_ms);
		assert_int_equal(c->timeout_ms, e->timeout_ms);
		assert_int_equal(c->keepalive_timeout_ms, e->keepalive_timeout_ms);
		assert_int_equal(c->max_keepalive_requests, e->max_keepalive_requests);
		assert_int_equal(c->limit_request_line, e->limit_request_line);
		assert_int_equal(c->limit_request_field_size, e->limit_request_field_size);
		assert_int_equal(c->limit_request_fields, e->limit_request_fields);
		assert_int_equal(c->graceful_timeout_ms, e->graceful_timeout_ms);
		assert_int_equal(c->upstream_idle_ms, e->upstream_idle_ms);
		assert_int_equal(c->max_connections, e->max_connections);
		assert_int_equal(c->max_conns_per_client, e->max_conns_per_client);
		assert_int_equal(c->max_forwards, e->max_forwards);
		assert_int_equal(c->via, e->via);
		assert_int_equal(c->proxy_requests, e->proxy_requests);
		assert_int_equal(c->log_level, e->log_level);
		assert_int_equal(c->dns.timeout_ms, e->dns.timeout_ms);
		assert_int_equal(c->dns.ttl_min, e->dns.ttl_min);
		assert_int_equal(c->dns.ttl_max, e->dns.ttl_max);
		assert_int_equal(c->dns.neg_ttl, e->dns.neg_ttl);
		assert_int_equal(c->nlisten, e->nlisten);
		assert_string_equal(c->listen[0].text, e->listen[0].text);
		assert_int_equal(c->cache->size, e->cache->size);
		assert_int_equal(c->cache->rules.max_file_size, e->cache->rules.max_file_size);
		assert_int_equal(c->cache->rules.max_expire, e->cache->rules.max_expire);
		cfg_unref(&e);
	}
	cfg_unref(&c);
	free(d);
}

/* ---- references ---- */


/* ---- out of the box (issue 9, part 2) ---- */

static struct cfg *
builtin_for(uid_t uid, const char *home, const char *xc, const char *xs)
{
	char err[512];
	char *text = cfg_builtin_text(uid, home, xc, xs, err, sizeof(err));
	struct cfg *c;

	if (!text)
		fail_msg("no built-in text: %s", err);
	c = cfg_ok(text);
	free(text);
	return c;
}

static void
builtin_default_caches_and_logs(void **state)
{
	struct cfg *c;

	(void)state;
	/* root: the system's directories */
	c = builtin_for(0, "/root", "/elsewhere", "/elsewhere");
	assert_string_equal(c->cache->root, "/var/cache/gatehouse");
	assert_true(c->cache->size == 1ull << 30);
	assert_int_equal(c->cache->nenable, 1);
	assert_string_equal(c->cache->enable[0], "/");
	assert_string_equal(c->access_log, "/var/log/gatehouse/access.log");
	assert_int_equal(c->log_level, CFG_LL_NOTICE);
	/* the package's account when it exists (it owns the package's directories) */
	assert_string_equal(c->user, getpwnam("_gatehouse") ? "_gatehouse" : "nobody");
	assert_int_equal(c->cache->report_interval, 600);
	cfg_unref(&c);
	/* anyone else: the user's own, XDG first, then HOME */
	c = builtin_for(1000, "/home/u", NULL, NULL);
	assert_string_equal(c->cache->root, "/home/u/.cache/gatehouse");
	assert_string_equal(c->access_log, "/home/u/.local/state/gatehouse/access.log");
	assert_int_equal(c->cache->nenable, 1);
	cfg_unref(&c);
	c = builtin_for(1000, "/home/u", "/x/cache/", "/x/state");
	assert_string_equal(c->cache->root, "/x/cache/gatehouse");
	assert_string_equal(c->access_log, "/x/state/gatehouse/access.log");
	cfg_unref(&c);
	/* relative XDG values are ignored; awkward characters are quoted */
	c = builtin_for(1000, "/home/a \"b\\c", "rel", "");
	assert_string_equal(c->cache->root, "/home/a \"b\\c/.cache/gatehouse");
	assert_string_equal(c->access_log, "/home/a \"b\\c/.local/state/gatehouse/access.log");
	cfg_unref(&c);
}

static void
builtin_default_without_home_is_an_error(void **state)
{
	char err[512];

	(void)state;
	assert_null(cfg_builtin_text(1000, NULL, NULL, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "(built-in): no usable cache directory for uid 1000"));
	assert_null(cfg_builtin_text(1000, "relative", NULL, "/s", err, sizeof(err)));
	assert_null(cfg_builtin_text(1000, "/home/u\nx", NULL, NULL, err, sizeof(err)));
	/* with both XDG directories no home is needed */
	char *t = cfg_builtin_text(1000, NULL, "/c", "/s", err, sizeof(err));
	assert_non_null(t);
	free(t);
}

static void
builtin_load_is_marked(void **state)
{
	struct cfg *c = NULL;
	char err[512];

	(void)state;
	assert_int_equal(cfg_load(NULL, &c, err, sizeof(err)), 0);
	assert_int_equal(c->builtin, 1);
	assert_non_null(c->cache->root);
	assert_non_null(c->access_log);
	assert_int_equal(c->nfiles, 0);
	cfg_unref(&c);
	c = cfg_ok("Listen 3128\n");
	assert_int_equal(c->builtin, 0);
	cfg_unref(&c);
}

/* A root start of the built-in configuration drops to User; a reload (SIGHUP) loads the
 * built-in text again as that user and must get the text the start got, not the one for an
 * unprivileged user's home (which moved CacheRoot and AccessLog and made every reload warn
 * that log changes wait for the next start). Checked in a child that gives up root. */
static void
builtin_reload_after_the_drop_keeps_the_start_text(void **state)
{
	pid_t pid;
	int status = 0;

	(void)state;
	if (geteuid() != 0)
		skip();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct cfg *a = NULL, *b = NULL;
		char err[512];
		int rc = 0;

		if (cfg_load(NULL, &a, err, sizeof(err)) != 0)
			_exit(2);
		if (seteuid(65534) != 0)
			_exit(3);
		if (cfg_load(NULL, &b, err, sizeof(err)) != 0)
			_exit(4);
		if (strcmp(a->cache->root, b->cache->root) != 0 ||
		    strcmp(a->access_log, b->access_log) != 0) {
			fprintf(stderr, "start: %s %s; reload: %s %s\n", a->cache->root,
			        a->access_log, b->cache->root, b->access_log);
			rc = 1;
		}
		cfg_unref(&a);
		cfg_unref(&b);
		_exit(rc);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
listen_reset_drops_earlier_addresses(void **state)
{
	struct cfg *c;

	(void)state;
	c = cfg_ok("Listen 3128\nListen [::1]:3128\nListenReset\nListen 127.0.0.1:8080\n");
	assert_int_equal(c->nlisten, 1);
	assert_string_equal(c->listen[0].text, "127.0.0.1:8080");
	cfg_unref(&c);
	/* the same address may be given again after a reset */
	c = cfg_ok("Listen 3128\nListenReset\nListen 3128\n");
	assert_int_equal(c->nlisten, 1);
	assert_string_equal(c->listen[0].text, "0.0.0.0:3128");
	cfg_unref(&c);
	/* nothing after it: the default */
	c = cfg_ok("Listen 3128\nlistenreset\n");
	assert_int_equal(c->nlisten, 1);
	assert_string_equal(c->listen[0].text, "127.0.0.1:3128");
	cfg_unref(&c);
	assert_string_equal(cfg_bad("ListenReset now\n"),
	                    "t.conf:1: ListenReset: expected 0 arguments, got 1");
}

static void
listen_override_replaces_and_survives_loads(void **state)
{
	const char *two[] = { "127.0.0.1:9000", "[::1]:9001" };
	const char *bad[] = { "localhost:9000" };
	const char *dup[] = { "127.0.0.1:1", "127.0.0.1:1" };
	const char *over[] = { "*:1", "127.0.0.1:1" };
	const char *badport[] = { "127.0.0.1:0" };
	char err[512];
	struct cfg *c;

	(void)state;
	assert_int_equal(cfg_listen_override(two, 2, 0, err, sizeof(err)), 0);
	for (int i = 0; i < 2; i++) { /* every load, as reloads are */
		c = cfg_ok("Listen 3128\nListen 10.1.1.1:80\n");
		assert_int_equal(c->nlisten, 2);
		assert_string_equal(c->listen[0].text, "127.0.0.1:9000");
		assert_string_equal(c->listen[1].text, "[::1]:9001");
		assert_int_equal(c->listen_from_cmdline, 1);
		cfg_unref(&c);
	}
	/* -p: the configured addresses on another port */
	assert_int_equal(cfg_listen_override(NULL, 0, 9100, err, sizeof(err)), 0);
	c = cfg_ok("Listen 127.0.0.2:3128\nListen [::1]:3129\n");
	assert_int_equal(c->nlisten, 2);
	assert_string_equal(c->listen[0].text, "127.0.0.2:9100");
	assert_string_equal(c->listen[1].text, "[::1]:9100");
	cfg_unref(&c);
	c = cfg_ok(""); /* the default address */
	assert_int_equal(c->nlisten, 1);
	assert_string_equal(c->listen[0].text, "127.0.0.1:9100");
	cfg_unref(&c);
	c = cfg_ok("Listen 127.0.0.1:1\nListen 127.0.0.1:2\n"); /* kept once */
	assert_int_equal(c->nlisten, 1);
	assert_string_equal(c->listen[0].text, "127.0.0.1:9100");
	cfg_unref(&c);
	assert_string_equal(cfg_bad("Listen 3128\nListen 127.0.0.1:3129\n"),
	                    "t.conf: -p 9100: 127.0.0.1:9100 overlaps 0.0.0.0:9100");
	/* bad command lines */
	assert_int_equal(cfg_listen_override(bad, 1, 0, err, sizeof(err)), -1);
	assert_string_equal(err, "-l localhost:9000: expected PORT, ADDR:PORT or [ADDR]:PORT "
	                    "with a numeric address");
	assert_int_equal(cfg_listen_override(badport, 1, 0, err, sizeof(err)), -1);
	assert_string_equal(err, "-l 127.0.0.1:0: bad port");
	assert_int_equal(cfg_listen_override(dup, 2, 0, err, sizeof(err)), -1);
	assert_string_equal(err, "-l 127.0.0.1:1 given twice");
	assert_int_equal(cfg_listen_override(over, 2, 0, err, sizeof(err)), -1);
	assert_string_equal(err, "-l 127.0.0.1:1 overlaps 0.0.0.0:1");
	/* the failed calls left -p 9100 in place; clear it */
	c = cfg_ok("Listen 127.0.0.1:1\n");
	assert_string_equal(c->listen[0].text, "127.0.0.1:9100");
	cfg_unref(&c);
	assert_int_equal(cfg_listen_override(NULL, 0, 0, err, sizeof(err)), 0);
	c = cfg_ok("Listen 127.0.0.1:1\n");
	assert_string_equal(c->listen[0].text, "127.0.0.1:1");
	assert_int_equal(c->listen_from_cmdline, 0);
	cfg_unref(&c);
}

static void
cache_report_interval_and_cache_root_place(void **state)
{
	struct cfg *c;

	(void)state;
	c = cfg_ok("Listen 3128\nCacheRoot /tmp/x\nCacheReportInterval 5\n");
	assert_int_equal(c->cache->report_interval, 5);
	assert_string_equal(c->cache_root_where, "t.conf:2");
	cfg_unref(&c);
	c = cfg_ok("CacheReportInterval 0\n");
	assert_int_equal(c->cache->report_interval, 0);
	assert_null(c->cache_root_where);
	cfg_unref(&c);
	assert_string_equal(cfg_bad("CacheReportInterval soon\n"),
	                    "t.conf:1: CacheReportInterval: expected seconds from 0 to 86400, "
	                    "got \"soon\"");
}

/* issue 12: the FTP gateway's directives land in their fields; defaults without them. */
static void
ftp_directives_set_their_fields(void **state)
{
	struct cfg *c;

	(void)state;
	c = cfg_ok("Listen 3128\n");
	assert_string_equal(c->ftp_anon_password, "gatehouse@");
	assert_int_equal(c->ftp_active_fallback, 0);
	assert_int_equal(c->ftp_default_expire_s, 3600);
	assert_int_equal(c->ftp_listing_expire_s, 300);
	assert_true(c->ftp_max_listing == 16u << 20);
	assert_null(c->notices);
	cfg_unref(&c);
	c = cfg_ok("Listen 3128\nFTPAnonymousPassword proxy@corp.example\nFTPActiveFallback on\n"
	           "FTPDefaultExpire 0\nFTPListingExpire 315360000\nFTPMaxListingSize 64k\n"
	           "FTPAnonymousPassword last@wins\nProxyFtpListOnWildcard Off\n"
	           "ProxyFtpEscapeWildcards On\nProxyFtpDirCharset utf-8\n"
	           "CacheEnable lmdb ftp://\n");
	assert_string_equal(c->ftp_anon_password, "last@wins");
	assert_int_equal(c->ftp_active_fallback, 1);
	assert_int_equal(c->ftp_default_expire_s, 0);
	assert_int_equal(c->ftp_listing_expire_s, 315360000);
	assert_true(c->ftp_max_listing == 65536);
	/* the three Apache directives: a notice each, with the place */
	assert_int_equal(c->nnotices, 4); /* and CacheEnable without CacheRoot */
	assert_non_null(strstr(c->notices, "t.conf:8: ProxyFtpListOnWildcard Off: accepted"));
	assert_non_null(strstr(c->notices, "t.conf:9: ProxyFtpEscapeWildcards On: accepted"));
	assert_non_null(strstr(c->notices, "t.conf:10: ProxyFtpDirCharset: accepted"));
	cfg_unref(&c);
	c = cfg_ok("Listen 3128\nFTPMaxListingSize 4096\nFTPAnonymousPassword x\n");
	assert_true(c->ftp_max_listing == 4096);
	assert_string_equal(c->ftp_anon_password, "x");
	cfg_unref(&c);
	c = cfg_ok("Listen 3128\nFTPMaxListingSize 1G\n");
	assert_true(c->ftp_max_listing == 1u << 30);
	cfg_unref(&c);
	assert_string_equal(cfg_bad("FTPMaxListingSize 4095\n"),
	                    "t.conf:1: FTPMaxListingSize: expected a size from 4K to 1G (K, M, G "
	                    "suffixes), got \"4095\"");
	assert_string_equal(cfg_bad("FTPMaxListingSize 1025M\n"),
	                    "t.conf:1: FTPMaxListingSize: expected a size from 4K to 1G (K, M, G "
	                    "suffixes), got \"1025M\"");
	assert_string_equal(cfg_bad("FTPAnonymousPassword \"a\tb\"\n"),
	                    "t.conf:1: FTPAnonymousPassword: expected one word of printable ASCII "
	                    "without spaces, 1 to 128 bytes (an e-mail address such as gatehouse@), "
	                    "got \"a\tb\"");
	assert_non_null(strstr(cfg_bad("FTPAnonymousPassword \"a\x7f\"\n"), "printable ASCII"));
	assert_string_equal(cfg_bad("FTPListingExpire 1.5\n"),
	                    "t.conf:1: FTPListingExpire: expected seconds from 0 to 315360000, got "
	                    "\"1.5\"");
	assert_string_equal(cfg_bad("<Proxy *>\nFTPActiveFallback On\n</Proxy>\n"),
	                    "t.conf:2: FTPActiveFallback not allowed in <Proxy>");
	assert_non_null(strstr(cfg_bad("ProxyFtpDirCharset koi8-r\n"),
	                       "t.conf:1: ProxyFtpDirCharset koi8-r: Gatehouse's FTP listings are "
	                       "UTF-8"));
}

static void
files_read_are_recorded(void **state)
{
	char want[1024], sub[512];
	struct cfg *c;

	(void)state;
	snprintf(sub, sizeof(sub), "%s/conf.d", tmpdir);
	assert_int_equal(mkdir(sub, 0700), 0);
	write_file(tmpdir, "p403.html", "<p>blocked</p>\n");
	snprintf(want, sizeof(want), "Listen 3128\nInclude conf.d/*.conf\nInclude one.conf\n"
	         "IncludeOptional none.conf\nPacFile p.pac\nErrorDocument 403 %s/p403.html\n",
	         tmpdir);
	write_file(tmpdir, "main.conf", want);
	write_file(tmpdir, "conf.d/a.conf", "ProxyVia On\n");
	write_file(tmpdir, "one.conf", "Workers 2\n");
	write_file(tmpdir, "p.pac", "function FindProxyForURL(u, h) { return \"DIRECT\"; }\n");
	c = load_file_ok("main.conf");
	assert_int_equal(c->nfiles, 5);
	snprintf(want, sizeof(want), "%s/main.conf", tmpdir);
	assert_string_equal(c->files[0], want);
	snprintf(want, sizeof(want), "%s/conf.d/a.conf", tmpdir);
	assert_string_equal(c->files[1], want);
	snprintf(want, sizeof(want), "%s/one.conf", tmpdir);
	assert_string_equal(c->files[2], want);
	snprintf(want, sizeof(want), "%s/p.pac", tmpdir);
	assert_string_equal(c->files[3], want);
	snprintf(want, sizeof(want), "%s/p403.html", tmpdir);
	assert_string_equal(c->files[4], want);
	assert_int_equal(c->ndirs, 1);
	snprintf(want, sizeof(want), "%s/conf.d", tmpdir);
	assert_string_equal(c->dirs[0], want);
	cfg_unref(&c);
}

static void
refcount_frees_at_zero(void **state)
{
	struct cfg *c = cfg_ok("<Proxy *>\nRequire all granted\n</Proxy>\nAccessLog /x\n");
	struct cfg *a, *b;

	(void)state;
	a = cfg_ref(c);
	b = cfg_ref(c);
	assert_ptr_equal(a, c);
	assert_ptr_equal(b, c);
	cfg_unref(&a);
	assert_null(a);
	cfg_unref(&b);
	/* still usable through the last reference */
	assert_int_equal(verdict(c, "http://x/", "8.8.8.8", NULL), POL_ALLOW);
	cfg_unref(&c);
	assert_null(c);
	cfg_unref(&c);          /* NULL is fine */
	cfg_unref(NULL);
	assert_null(cfg_ref(NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(builtin_default_loads_and_allows_private_nets),
		cmocka_unit_test(builtin_default_text_is_commented),
		cmocka_unit_test(empty_config_gets_documented_defaults),
		cmocka_unit_test(numeric_directives_accepted),
		cmocka_unit_test(listen_forms),
		cmocka_unit_test(flag_and_keyword_directives),
		cmocka_unit_test(allow_connect_replaces_default),
		cmocka_unit_test(dns_directives),
		cmocka_unit_test(log_directives_and_paths),
		cmocka_unit_test(log_level_names),
		cmocka_unit_test(proxy_sections_build_the_acl),
		cmocka_unit_test(continuation_lines_join),
		cmocka_unit_test(comments_blank_lines_and_crlf),
		cmocka_unit_test(quoted_arguments),
		cmocka_unit_test(long_lines),
		cmocka_unit_test(bad_directives_exact_messages),
		cmocka_unit_test(bad_prefix_messages),
		cmocka_unit_test(too_many_listen_addresses),
		cmocka_unit_test(error_buffer_is_bounded),
		cmocka_unit_test_setup_teardown(include_globs_sorted_and_relative, tmp_setup,
		                                tmp_teardown),
		cmocka_unit_test_setup_teardown(include_errors, tmp_setup, tmp_teardown),
		cmocka_unit_test_setup_teardown(include_relative_to_cwd_for_strings, tmp_setup,
		                                tmp_teardown),
		cmocka_unit_test_setup_teardown(relative_top_file_resolves_from_cwd, tmp_setup,
		                                tmp_teardown),
		cmocka_unit_test(refcount_frees_at_zero),
		/* Apache compatibility (issue 9, part 3) */
		cmocka_unit_test(ifmodule_truth_table),
		cmocka_unit_test(ifdefine_follows_dash_d),
		cmocka_unit_test(conditional_sections_nest_and_wrap_proxy),
		cmocka_unit_test(conditional_section_errors),
		cmocka_unit_test(server_name_forms),
		cmocka_unit_test(apache_cache_directives_give_notices),
		cmocka_unit_test(apache_directives_refused_with_reasons),
		cmocka_unit_test_setup_teardown(dump_is_effective_and_reloadable, tmp_setup,
		                                tmp_teardown),
		cmocka_unit_test_setup_teardown(dump_of_builtin_and_empty_configs_load_again,
		                                tmp_setup, tmp_teardown),
		/* out of the box (issue 9, part 2) */
		cmocka_unit_test(builtin_default_caches_and_logs),
		cmocka_unit_test(builtin_default_without_home_is_an_error),
		cmocka_unit_test(builtin_load_is_marked),
		cmocka_unit_test(builtin_reload_after_the_drop_keeps_the_start_text),
		cmocka_unit_test(listen_reset_drops_earlier_addresses),
		cmocka_unit_test(listen_override_replaces_and_survives_loads),
		cmocka_unit_test(cache_report_interval_and_cache_root_place),
		cmocka_unit_test(ftp_directives_set_their_fields),
		cmocka_unit_test(tls_directives_set_their_fields),
		cmocka_unit_test_setup_teardown(files_read_are_recorded, tmp_setup, tmp_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
