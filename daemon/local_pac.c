/*
 * local_pac.c - the proxy auto-config file, /proxy.pac and /wpad.dat, as a response source:
 * the admin's PacFile, or one generated from the live policy (policy/pol.h, pol_pac_generate)
 * naming PacProxy, or by default the host and port the client reached us at. An ETag of the
 * content lets browsers revalidate with If-None-Match (304).
 *
 * Issue 13: a PacProxy item "https://host:port" is "HTTPS host:port" in the file. By default,
 * when the address the client reached has both an https and an http listener, the file
 * offers "HTTPS host:port" first and "PROXY host:port" as the fallback (browsers that do not
 * speak to a proxy over TLS skip the first); the host is the one the client used either way.
 */
#include "daemon/local.h"

#include "daemon/cfg.h"
#include "daemon/h1.h"
#include "daemon/log.h"
#include "daemon/rsrc.h"
#include "daemon/worker.h"
#include "policy/pol.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
local_pac_path(const char *path)
{
	size_t n = strcspn(path, "?");
	return (n == 10 && strncmp(path, "/proxy.pac", 10) == 0) ||
	       (n == 9 && strncmp(path, "/wpad.dat", 9) == 0);
}

/* Can the Host a client sent for the PAC file name this proxy in it: host[:port] with a DNS
 * name or an IP literal (RFC 3986 via h1_url_parse, port 1-65535), in characters a PAC
 * "PROXY host:port" string can hold? Anything else is the client's error (400), not ours. */
int
local_pac_host_ok(const char *hh)
{
	char tmp[300];
	struct h1_url u;
	const char *why;
	size_t n = strlen(hh);
	if (n >= 256)
		return 0;
	n = (size_t)snprintf(tmp, sizeof(tmp), "http://%s/", hh);
	if (h1_url_parse((struct h1_str){tmp, n}, &u, &why) != H1_OK || u.userinfo.n > 0 ||
	    u.path.n != 1)
		return 0;
	for (size_t i = 0; i < u.host.n; i++) {
		unsigned char ch = (unsigned char)u.host.p[i];
		if (!isalnum(ch) && ch != '-' && ch != '.' && ch != '_' &&
		    !(u.host_is_ip6 && ch == ':'))
			return 0;
	}
	return 1;
}

static unsigned
local_pac_port(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)ss)->sin6_port)
	                                 : ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

/* Does listener l take connections for local address a (same family; the same address or the
 * wildcard)? With port 0 any port will do, else the same port. */
static int
local_pac_listen_covers(const struct cfg_listen *l, const struct sockaddr_storage *a,
                        unsigned port)
{
	if (l->addr.ss_family != a->ss_family)
		return 0;
	if (port != 0 && local_pac_port(&l->addr) != port)
		return 0;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)&l->addr, *y = (const void *)a;

		return x->sin_addr.s_addr == htonl(INADDR_ANY) ||
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)&l->addr, *y = (const void *)a;

	return IN6_IS_ADDR_UNSPECIFIED(&x->sin6_addr) ||
	       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

/* The listener of kind https (1) or http (0) serving local address a, port (0: any), or
 * NULL. */
static const struct cfg_listen *
local_pac_listener(const struct cfg *cfg, const struct sockaddr_storage *a, unsigned port,
                   int https)
{
	for (size_t i = 0; i < cfg->nlisten; i++)
		if (cfg->listen[i].https == https && local_pac_listen_covers(&cfg->listen[i], a, port))
			return &cfg->listen[i];
	return NULL;
}

struct rsrc *
local_pac_open(const struct local_req *r, struct rsrc_refusal *ref)
{
	struct cfg *cfg = r->cfg;
	char *gen = NULL;
	const char *text;
	size_t len;
	if (r->method != H1_M_GET && r->method != H1_M_HEAD) {
		ref->status = 405;
		ref->fields = "Allow: GET, HEAD\r\n";
		snprintf(ref->msg, sizeof(ref->msg), "%s is read with GET", r->path);
		return NULL;
	}
	if (cfg->pac_text) {
		text = cfg->pac_text;
		len = cfg->pac_len;
	} else {
		char self[400], other[400];
		const char *two[2];
		const char *const *proxies = (const char *const *)cfg->pac_proxies;
		size_t n = cfg->npac_proxies;
		if (n == 0) {
			unsigned port = local_pac_port(r->local);
			/* The kind of listener the client came through, and one of the other kind on
			 * the same address. */
			int tls = local_pac_listener(cfg, r->local, port, 1) != NULL;
			const struct cfg_listen *alt = local_pac_listener(cfg, r->local, 0, !tls);
			char hostonly[300];
			const char *hh = r->host;
			if (hh && *hh && !local_pac_host_ok(hh)) {
				char clip[300];
				log_clip(hh, strlen(hh), clip, sizeof(clip));
				ref->status = 400;
				snprintf(ref->msg, sizeof(ref->msg),
				         "malformed Host field \"%s\": the PAC file "
				         "names this proxy by it, as host[:port]", clip);
				return NULL;
			}
			const char *pfx = tls ? "https://" : "";
			if (hh && *hh) {
				/* the name the browser used to reach us; add our port if it gave none */
				const char *rb = strrchr(hh, ']');
				const char *colon = strrchr(hh, ':');
				if (colon && (!rb || colon > rb)) {
					snprintf(self, sizeof(self), "%s%s", pfx, hh);
					snprintf(hostonly, sizeof(hostonly), "%.*s", (int)(colon - hh), hh);
				} else {
					snprintf(self, sizeof(self), "%s%s:%u", pfx, hh, port);
					snprintf(hostonly, sizeof(hostonly), "%s", hh);
				}
			} else {
				char at[80], a[64];
				gh_addr_text(r->local, at, sizeof(at), 1);
				snprintf(self, sizeof(self), "%s%s", pfx, at);
				gh_addr_text(r->local, a, sizeof(a), 0);
				/* [v6] for host:port */
				snprintf(hostonly, sizeof(hostonly), strchr(a, ':') ? "[%s]" : "%s", a);
			}
			two[0] = self;
			n = 1;
			if (alt) {
				/* HTTPS first, PROXY as the fallback */
				snprintf(other, sizeof(other), "%s%s:%u", tls ? "" : "https://", hostonly,
				         local_pac_port(&alt->addr));
				two[0] = tls ? self : other;
				two[1] = tls ? other : self;
				n = 2;
			}
			proxies = two;
		}
		const char *err = NULL;
		if (pol_pac_generate(cfg->pol, proxies, n, cfg->pac_fallback_direct, &gen, &len, &err) < 0) {
			ref->status = 500;
			snprintf(ref->msg, sizeof(ref->msg), "cannot generate the PAC file: %s",
			         err ? err : "out of memory");
			return NULL;
		}
		text = gen;
	}
	if (len + 1024 > r->room) {
		/* the whole file was queued at once before sources; the limit stays */
		free(gen);
		ref->status = 500;
		snprintf(ref->msg, sizeof(ref->msg), "the PAC file (%zu bytes) is too large to serve",
		         len);
		return NULL;
	}
	/* ETag: FNV-1a 64 of the content, so browsers revalidate cheaply. */
	uint64_t hsh = 14695981039346656037ull;
	for (size_t i = 0; i < len; i++)
		hsh = (hsh ^ (unsigned char)text[i]) * 1099511628211ull;
	char etag[40], fields[128];
	snprintf(etag, sizeof(etag), "\"%016llx\"", (unsigned long long)hsh);
	snprintf(fields, sizeof(fields), "ETag: %s\r\nCache-Control: max-age=300\r\n", etag);
	int not_modified = r->inm && (strstr(r->inm, etag) != NULL || strcmp(r->inm, "*") == 0);
	struct rsrc *s;
	if (not_modified)
		s = rsrc_mem_new("pac", 304, "Not Modified", "application/x-ns-proxy-autoconfig",
		                 fields, NULL, RSRC_NO_BODY, NULL);
	else
		s = rsrc_mem_new("pac", 200, "OK", "application/x-ns-proxy-autoconfig", fields, text,
		                 (int64_t)len, NULL);
	free(gen);
	if (s == NULL) {
		ref->status = 500;
		snprintf(ref->msg, sizeof(ref->msg), "out of memory");
	}
	return s;
}
