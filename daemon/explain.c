/*
 * explain.c - "Explain this URL" for the status page (webui/ui_explain.h): walk the decision
 * the running config snapshot takes for a URL, a client and a method, in the proxy's order
 * (daemon/proxy.c conn_parse_head, conn_route, conn_decide, conn_next_parent), calling the
 * same functions: url_normalize, pol_acl_check_why (no user: a rule that needs one is shown
 * as "needs credentials", the proxy's 407), pol_ports_has, pol_decide with the live
 * ProxyBlock/NoProxy address sets, health_peek, cachereq_probe (the cache's own decision,
 * cachereq_judge, without acting on it). Each step names the config line that decided.
 * The request carries the form's header fields (explain_fields_parse), so that a Vary'd
 * URL's variant is chosen as the proxy would, and the stored variants are listed.
 *
 * It runs on the worker thread of the status page call and does real lookups on that
 * worker's resolver: the client's reverse lookup when a Require host rule needs it (as the
 * proxy does), and the target's name, always (so the admin sees the addresses and whether a
 * blocked address or a NoProxy subnet matches them).
 */
#include "daemon/explain.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/cachereq.h"
#include "daemon/cfg.h"
#include "daemon/h1.h"
#include "daemon/health.h"
#include "daemon/polres.h"
#include "daemon/status.h"
#include "daemon/url.h"
#include "daemon/worker.h"
#include "cache/cache.h"
#include "policy/pol.h"
#include "resolver/res.h"

#define EXPLAIN_MAGIC 0x45585031u

struct explain {
	unsigned magic;
	struct worker *w;
	struct cfg *cfg;               /* ref held */
	ui_explain_done_f *done;
	void *arg;
	struct res_query *q;           /* the pending lookup, NULL: none */
	int waiting;                   /* a lookup's callback is due */
	int depth;                     /* entry points on the stack: x is freed by the outermost
	                                * one, never under a caller that still reads it */
	int finished;
	struct sockaddr_storage client;
	char *client_name;             /* after a reverse lookup ("" when none) */
	int is_connect, is_ftp;
	int is_https;        /* https:// URL: TLS to the origin, or absolute form to a parent */
	char *host;                    /* normalised */
	unsigned port;
	int resolved;
	int dns_status;
	struct res_addrs addrs;
	char *fields;                  /* the request header fields, "Name: value\r\n" lines */
	struct pol_decision dec0;      /* decided before the lookup */
	struct ui_explain_result r;
};

static const char *const explain_methods[] = {
	"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH", "CONNECT", "PURGE",
	NULL
};

static struct ui_explain_step *
explain_step(struct explain *x, const char *name, const char *verdict, const char *where,
             const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static struct ui_explain_step *
explain_step(struct explain *x, const char *name, const char *verdict, const char *where,
             const char *fmt, ...)
{
	static struct ui_explain_step spare;
	struct ui_explain_step *s = &spare;
	if (x->r.nsteps < UI_EXPLAIN_STEPS_MAX)
		s = &x->r.step[x->r.nsteps++];
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->verdict, sizeof(s->verdict), "%s", verdict);
	snprintf(s->where, sizeof(s->where), "%s", where ? where : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->detail, sizeof(s->detail), fmt, ap);
	va_end(ap);
	return s;
}

static void
explain_outcome(struct explain *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
explain_outcome(struct explain *x, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->r.outcome, sizeof(x->r.outcome), fmt, ap);
	va_end(ap);
}

static void
explain_free(struct explain *x)
{
	res_cancel(&x->q);
	cfg_unref(&x->cfg);
	free(x->client_name);
	free(x->host);
	free(x->fields);
	x->magic = 0;
	free(x);
}

/* Deliver the result and end the walk (x is freed when the outermost entry point leaves). */
static void
explain_finish(struct explain *x)
{
	x->finished = 1;
	x->done(x->arg, &x->r);
}

/* Entry points (start, the resolver's callbacks) bracket their work with these: a lookup may
 * answer inside res_lookup, and the walk may finish there. Returns 1 when x was freed. */
static void
explain_enter(struct explain *x)
{
	x->depth++;
}

static int
explain_leave(struct explain *x)
{
	if (--x->depth == 0 && x->finished) {
		explain_free(x);
		return 1;
	}
	return 0;
}

static int
explain_fail(struct explain *x, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
explain_fail(struct explain *x, int status, const char *fmt, ...)
{
	va_list ap;
	x->r.status = status;
	va_start(ap, fmt);
	vsnprintf(x->r.error, sizeof(x->r.error), fmt, ap);
	va_end(ap);
	explain_finish(x);
	return -1;
}

int
explain_method_ok(const char *m)
{
	for (size_t i = 0; explain_methods[i]; i++)
		if (strcmp(m, explain_methods[i]) == 0)
			return 1;
	return 0;
}

int
explain_client_parse(const char *text, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	char buf[64];
	size_t n = strlen(text);
	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, text, n + 1);
	if (n > 2 && buf[0] == '[' && buf[n - 1] == ']') { /* "[::1]" */
		memmove(buf, buf + 1, n - 2);
		buf[n - 2] = '\0';
	}
	if (inet_pton(AF_INET, buf, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		return 0;
	}
	return -1;
}

/* RFC 9110 tchar */
static int
explain_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int
explain_fields_parse(const char *text, char *head, size_t cap, char *err, size_t errcap)
{
	size_t o = 0;
	int nf = 0, line = 0;
	*err = '\0';
	if (cap > 0)
		head[0] = '\0';
	for (const char *p = text ? text : ""; *p != '\0';) {
		const char *eol = p + strcspn(p, "\n");
		const char *end = eol;
		line++;
		if (end > p && end[-1] == '\r')
			end--;
		const char *q = p;
		while (q < end && (*q == ' ' || *q == '\t'))
			q++;
		if (q == end) { /* a blank line */
			p = *eol ? eol + 1 : eol;
			continue;
		}
		if (q != p) {
			snprintf(err, errcap, "line %d: a field line cannot start with white space "
			         "(no folding)", line);
			return -1;
		}
		const char *colon = p;
		while (colon < end && explain_tchar((unsigned char)*colon))
			colon++;
		if (colon == p || colon == end || *colon != ':') {
			snprintf(err, errcap, "line %d: not \"Name: value\" (%s)", line,
			         memchr(p, ':', (size_t)(end - p)) == NULL ? "no colon"
			         : colon == p ? "no field name" : "bad character in the field name");
			return -1;
		}
		size_t nl = (size_t)(colon - p);
		if (nl > 64) {
			snprintf(err, errcap, "line %d: field name longer than 64 bytes", line);
			return -1;
		}
		if (nl == 4 && strncasecmp(p, "Host", 4) == 0) {
			snprintf(err, errcap, "line %d: Host comes from the URL", line);
			return -1;
		}
		const char *v = colon + 1, *ve = end;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		for (const char *c = v; c < ve; c++)
			if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f) {
				snprintf(err, errcap, "line %d: control character in the value of %.*s",
				         line, (int)nl, p);
				return -1;
			}
		if (++nf > EXPLAIN_FIELDS_MAX) {
			snprintf(err, errcap, "more than %d fields", EXPLAIN_FIELDS_MAX);
			return -1;
		}
		int w = snprintf(head + o, cap - o, "%.*s: %.*s\r\n", (int)nl, p, (int)(ve - v), v);
		if (w < 0 || (size_t)w >= cap - o) {
			snprintf(err, errcap, "the fields are too long (%zu bytes at most)", cap - 1);
			return -1;
		}
		o += (size_t)w;
		p = *eol ? eol + 1 : eol;
	}
	return nf;
}

int
explain_target_normalize(const char *target, int is_connect, char *out, size_t cap,
                         char *host, size_t hostcap, unsigned *port, int *is_ftp,
                         const char **reason)
{
	struct h1_url u;
	struct h1_str t = { target, strlen(target) };
	memset(&u, 0, sizeof(u));
	*is_ftp = 0;
	if (t.n == 0) {
		*reason = "no URL given";
		return -1;
	}
	if (is_connect) {
		/* As conn_parse_head and conn_url_normalize: an authority, then the host rules. */
		if (h1_authority_parse(t, &u, reason) != H1_OK)
			return -1;
		long hl = url_host_normalize(u.host.p, u.host.n, u.host_is_ip6, host, hostcap,
		                             reason);
		if (hl < 0)
			return -1;
		*port = u.port;
		if ((size_t)snprintf(out, cap, u.host_is_ip6 ? "[%s]:%u" : "%s:%u", host, *port) >=
		    cap) {
			*reason = "target too long";
			return -1;
		}
		return 0;
	}
	if (t.p[0] == '/') {
		*reason = "a path is a request for the proxy itself: give an absolute URL "
		          "(http://host/path) or host:port with CONNECT";
		return -1;
	}
	if (h1_url_parse(t, &u, reason) != H1_OK)
		return -1;
	struct url_norm un;
	if (url_normalize(t.p, t.n, 0, out, cap, &un, reason) != 0)
		return -1;
	struct h1_str nt = { out, un.len };
	if (h1_url_parse(nt, &u, reason) != H1_OK) /* the decoded host, as the proxy checks it */
		return -1;
	*is_ftp = u.scheme == H1_SCHEME_FTP;
	if (u.scheme != H1_SCHEME_HTTP && u.scheme != H1_SCHEME_HTTPS && !*is_ftp) {
		*reason = "only http://, https:// and ftp:// URLs are proxied (501 for the others)";
		return -1;
	}
	if (u.userinfo.n > 0 && !*is_ftp) {
		*reason = "user information in http URLs is not allowed";
		return -1;
	}
	if (un.host_len >= hostcap) {
		*reason = "host too long";
		return -1;
	}
	memcpy(host, out + un.host_off, un.host_len);
	host[un.host_len] = '\0';
	*port = un.port;
	/* As conn_url_normalize: an ftp login's password is dropped, so that the page, the
	 * rules and the cache key see "ftp://user@host/..." as the proxy does. */
	const char *colon = memchr(u.userinfo.p, ':', u.userinfo.n);
	if (colon != NULL) {
		char *from = out + (u.userinfo.p + u.userinfo.n - out);
		memmove(out + (colon - out), from, strlen(from) + 1);
	}
	return 0;
}

static void explain_acl(struct explain *x);
static void explain_policy(struct explain *x);
static void explain_after_lookup(struct explain *x);

/* An access rule's own line and its section ("FILE:LINE in <Proxy *> at FILE:LINE"), or the
 * section alone when the rule has no line (nothing granted, a built-in rule). */
static const char *
explain_why_where(const struct pol_why *why)
{
	static __thread char buf[256];
	if (why->line == NULL || *why->line == '\0')
		return why->where;
	snprintf(buf, sizeof(buf), "%s in %s", why->line, why->where);
	return buf;
}

static void
explain_name_cb(void *arg, const char *name)
{
	struct explain *x = arg;
	if (x->magic != EXPLAIN_MAGIC)
		return;
	explain_enter(x);
	x->q = NULL;
	x->waiting = 0;
	free(x->client_name);
	x->client_name = strdup(name ? name : "");
	if (x->client_name == NULL)
		explain_fail(x, 500, "out of memory");
	else
		explain_acl(x);
	explain_leave(x);
}

/* conn_route: the <Proxy> sections, ProxyRequests, AllowCONNECT. */
static void
explain_acl(struct explain *x)
{
	const struct pol_why *why = NULL;
	enum pol_verdict v = pol_acl_check_why(x->cfg->acl, x->r.method, x->r.url,
	                                       strlen(x->r.url),
	                                       (const struct sockaddr *)&x->client,
	                                       x->client_name, &why);
	if (v == POL_NEED_NAME) {
		/* The proxy looks the client's name up (double reverse) and asks again. */
		explain_step(x, "client name", "looked up", NULL,
		             "a Require host rule applies: the proxy looks up the client's name "
		             "(reverse, then forward confirmed)");
		x->waiting = 1;
		struct res_query *q = res_reverse(x->w->res, (const struct sockaddr *)&x->client,
		                                  explain_name_cb, x);
		if (x->waiting)
			x->q = q;
		return;
	}
	if (x->client_name != NULL && x->r.nsteps > 0 &&
	    strcmp(x->r.step[x->r.nsteps - 1].name, "client name") == 0) {
		struct ui_explain_step *s = &x->r.step[x->r.nsteps - 1];
		snprintf(s->verdict, sizeof(s->verdict), "%s", *x->client_name ? "found" : "none");
		snprintf(s->detail + strlen(s->detail), sizeof(s->detail) - strlen(s->detail),
		         ": %s", *x->client_name ? x->client_name : "no confirmed name");
	}
	if (v == POL_NEED_USER) {
		/* The proxy would answer 407 and decide again with the user it proves; explain has
		 * no user to try, so it stops here, naming the rule that asks. */
		explain_step(x, "<Proxy> access", "needs credentials", explain_why_where(why),
		             "needs credentials (%s)", why->text);
		explain_outcome(x, "407 Proxy Authentication Required: %s needs credentials (%s)",
		                x->r.url, why->text);
		explain_finish(x);
		return;
	}
	if (v != POL_ALLOW) {
		explain_step(x, "<Proxy> access", "denied", explain_why_where(why), "%s", why->text);
		explain_outcome(x, "403 Forbidden: access to %s denied by %s", x->r.url, why->text);
		explain_finish(x);
		return;
	}
	explain_step(x, "<Proxy> access", "allowed", explain_why_where(why), "%s", why->text);
	if (!x->cfg->proxy_requests) {
		explain_step(x, "ProxyRequests", "off", NULL,
		             "this server does not act as a proxy (ProxyRequests Off)");
		explain_outcome(x, "403 Forbidden: ProxyRequests Off");
		explain_finish(x);
		return;
	}
	if (x->is_connect) {
		const char *where = x->cfg->allow_connect_where;
		int ok = pol_ports_has(x->cfg->allow_connect, x->port);
		explain_step(x, "AllowCONNECT", ok ? "allowed" : "denied", where,
		             "port %u %s AllowCONNECT%s", x->port, ok ? "is in" : "is not in",
		             where ? "" : " (the built-in default: 443 563)");
		if (!ok) {
			explain_outcome(x, "403 Forbidden: CONNECT to port %u is not allowed by "
			                "AllowCONNECT", x->port);
			explain_finish(x);
			return;
		}
	}
	explain_policy(x);
}

static void
explain_decide(struct explain *x, struct pol_decision *d, char *loc, size_t loclen)
{
	struct pol_req pr = {
		.method = x->r.method,
		.scheme = x->is_connect || x->is_https ? "https" : x->is_ftp ? "ftp" : "http",
		.host = x->host,
		.port = x->port,
		.url = x->r.url,
		.resolved = x->resolved,
		.addrs = x->addrs.a,
		.naddrs = x->resolved ? x->addrs.n : 0,
	};
	pol_decide(x->cfg->pol, &pr, polres_blocked(gh.polres), polres_noproxy(gh.polres), loc,
	           loclen, d);
}

static void
explain_resolved_cb(void *arg, int status, const struct res_addrs *addrs)
{
	struct explain *x = arg;
	if (x->magic != EXPLAIN_MAGIC)
		return;
	explain_enter(x);
	x->q = NULL;
	x->waiting = 0;
	x->resolved = 1;
	x->dns_status = status;
	if (status == RES_OK)
		x->addrs = *addrs;
	else
		x->addrs.n = 0;
	explain_after_lookup(x);
	explain_leave(x);
}

/* conn_decide before any lookup: ProxyDomain, ProxyBlock by name. */
static void
explain_policy(struct explain *x)
{
	size_t loclen = strlen(x->r.url) + 256;
	char *loc = malloc(loclen);
	if (loc == NULL) {
		explain_fail(x, 500, "out of memory");
		return;
	}
	struct pol_decision *d = &x->dec0;
	explain_decide(x, d, loc, loclen);
	switch (d->action) {
	case POL_INVALID:
		explain_step(x, "policy", "invalid", d->why->where, "%s", d->why->text);
		explain_outcome(x, "400 Bad Request: cannot route %s: %s", x->r.url, d->why->text);
		free(loc);
		explain_finish(x);
		return;
	case POL_REDIRECT:
		explain_step(x, "ProxyDomain", "redirect", d->why->where, "%s: 301 to %.*s",
		             d->why->text, (int)d->location_len, d->location);
		explain_outcome(x, "301 Moved Permanently to %.*s", (int)d->location_len,
		                d->location);
		free(loc);
		explain_finish(x);
		return;
	case POL_BLOCK:
		explain_step(x, "ProxyDomain", "not applied", NULL, "no redirect");
		explain_step(x, "ProxyBlock", "blocked", d->why->where, "%s blocked by name: %s",
		             x->host, d->why->text);
		explain_outcome(x, "403 Forbidden: %s is blocked by %s", x->host, d->why->text);
		free(loc);
		explain_finish(x);
		return;
	default:
		break;
	}
	free(loc);
	explain_step(x, "ProxyDomain", "not applied", NULL,
	             strcmp(x->r.method, "GET") != 0 ? "only GET requests are redirected"
	             : strchr(x->host, '.') || strchr(x->host, ':') ? "the host is qualified"
	             : "no ProxyDomain, or the host is exempt");
	if (d->action == POL_WAIT)
		explain_step(x, "ProxyBlock", "not ready", d->why->where,
		             "%s: the proxy waits for the first answers for the ProxyBlock names "
		             "before it decides", d->why->text);
	else
		explain_step(x, "ProxyBlock", "no name match", NULL,
		             "no ProxyBlock entry matches the name %s", x->host);
	/* The live lookup: always, so the admin sees the addresses; the proxy itself resolves
	 * only when it goes direct or an address rule could change the outcome (need_addrs). */
	x->waiting = 1;
	struct res_query *q = res_lookup(x->w->res, x->host, explain_resolved_cb, x);
	if (x->waiting)
		x->q = q;
}

static void
explain_parents(struct explain *x, const struct pol_decision *d)
{
	uint64_t now = ev_now(x->w->loop);
	int first = -1;
	for (size_t i = 0; i < d->nparents; i++) {
		const struct pol_parent *pp = d->parents[i];
		uint64_t left = 0;
		unsigned fails = 0;
		char err[160], name[32];
		int down = health_peek(health_get(pp->key), now, &left, &fails, err, sizeof(err));
		if (!down && first < 0)
			first = (int)i;
		snprintf(name, sizeof(name), "parent %zu", i + 1);
		explain_step(x, name, down ? "down" : first == (int)i ? "up: tried first" : "up",
		             pp->where, "%s%s: %s", pp->key,
		             pp->auth ? " (with credentials)" : "", down ? "marked down, " : "up");
		struct ui_explain_step *s = &x->r.step[x->r.nsteps - 1];
		size_t n = strlen(s->detail);
		if (down)
			snprintf(s->detail + n, sizeof(s->detail) - n, "backoff %llu.%01llu s left",
			         (unsigned long long)(left / 1000),
			         (unsigned long long)(left % 1000 / 100));
		n = strlen(s->detail);
		if (fails || *err)
			snprintf(s->detail + n, sizeof(s->detail) - n, "; %u consecutive failure%s%s%s",
			         fails, fails == 1 ? "" : "s", *err ? ", last: " : "", err);
	}
	if (first >= 0)
		explain_outcome(x, "forwarded through parent %s%s", d->parents[first]->key,
		                d->parents[first]->tls ? " (TLS to the parent)" : "");
	else if (d->fallback_direct)
		explain_outcome(x, "every parent is down: sent direct (ProxyRemoteFallback direct)");
	else
		explain_outcome(x, "502 Bad Gateway: no parent proxy is available");
}

/* The stored variants of a Vary'd URL, one step each (at most EXPLAIN_VARIANTS_SHOWN), so
 * that the admin sees which one this request's fields select, or why none: each with its
 * Vary field as stored, the fields that tell variants apart (Content-Encoding, -Language,
 * -Type) and this request's values of the fields it varies on. */
#define EXPLAIN_VARIANTS_SHOWN 8

struct explain_variants {
	struct explain *x;
	const struct cachereq_probe *p;
	struct cache_hdrs req;
	unsigned n;
};

/* The value of field name in a stored "Name: value\r\n" block, into out ("" when absent). */
static void
explain_stored_field(const struct cache_meta *m, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	const char *p = m->headers.p, *end = p + m->headers.n;
	*out = '\0';
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *le = eol ? eol : end;
		if ((size_t)(le - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
			const char *v = p + nl + 1;
			while (v < le && (*v == ' ' || *v == '\t'))
				v++;
			size_t vn = (size_t)(le - v);
			while (vn > 0 && (v[vn - 1] == '\r' || v[vn - 1] == ' '))
				vn--;
			snprintf(out, cap, "%.*s", (int)(vn < 200 ? vn : 200), v);
			return;
		}
		p = le + 1;
	}
}

static int
explain_variant_cb(void *arg, const struct cache_item *it)
{
	struct explain_variants *a = arg;
	if (!it->variant)
		return 0;
	if (++a->n > EXPLAIN_VARIANTS_SHOWN)
		return 0; /* counted, not shown */
	const struct cache_meta *m = it->meta;
	int mine = a->p->mkeylen == it->mkeylen && it->mkeylen > 0 &&
	           memcmp(a->p->mkey, it->mkey, it->mkeylen) == 0;
	char name[32], vary[208], ce[208], cl[208], ct[208], mineval[300] = "";
	snprintf(name, sizeof(name), "variant %u", a->n);
	explain_stored_field(m, "Vary", vary, sizeof(vary));
	explain_stored_field(m, "Content-Encoding", ce, sizeof(ce));
	explain_stored_field(m, "Content-Language", cl, sizeof(cl));
	explain_stored_field(m, "Content-Type", ct, sizeof(ct));
	/* this request's values of the fields the variant varies on */
	size_t o = 0;
	for (const char *f = m->vary.p, *fe = m->vary.p + m->vary.n; f < fe && o < 240;) {
		const char *c = memchr(f, ',', (size_t)(fe - f));
		size_t fl = (size_t)((c ? c : fe) - f);
		char v[64];
		long vl = cache_vary_value(&a->req, f, fl, v, sizeof(v));
		o += (size_t)snprintf(mineval + o, sizeof(mineval) - o, "%s%.*s%s%s%s",
		                      o ? ", " : "", (int)fl, f, vl < 0 ? " absent" : "=\"",
		                      vl < 0 ? "" : v, vl < 0 ? "" : vl >= (long)sizeof(v)
		                                                   ? "...\"" : "\"");
		if (o >= sizeof(mineval))
			o = sizeof(mineval) - 1;
		f = c ? c + 1 : fe;
	}
	explain_step(a->x, name, mine ? "this request's" : "other values", NULL,
	             "Vary: %s; status %d, %llu bytes%s%s%s%s%s%s; this request: %s",
	             *vary ? vary : "(none)", m->status, (unsigned long long)m->body_size,
	             *ce ? ", Content-Encoding: " : "", ce, *cl ? ", Content-Language: " : "", cl,
	             *ct ? ", Content-Type: " : "", ct, *mineval ? mineval : "no fields");
	return 0;
}

static void
explain_variants(struct explain *x, const struct cachereq_probe *p)
{
	struct cache_store *st = cachereq_store();
	struct cache_hdr v[EXPLAIN_FIELDS_MAX];
	struct explain_variants a = { x, p, { v, 0 }, 0 };
	/* x->fields was checked by explain_fields_parse: "Name: value\r\n" lines */
	for (const char *f = x->fields ? x->fields : ""; *f && a.req.n < EXPLAIN_FIELDS_MAX;) {
		const char *colon = strchr(f, ':'), *eol = strstr(f, "\r\n");
		if (colon == NULL || eol == NULL || colon > eol)
			break;
		v[a.req.n].name = (struct cache_str){ f, (size_t)(colon - f) };
		v[a.req.n].value = (struct cache_str){ colon + 2, (size_t)(eol - colon - 2) };
		a.req.n++;
		f = eol + 2;
	}
	if (st == NULL || cache_entry_records(st, p->key, strlen(p->key), explain_variant_cb,
	                                      &a) < 0) {
		explain_step(x, "variants", "unknown", NULL, "the store could not be read");
		return;
	}
	if (a.n > EXPLAIN_VARIANTS_SHOWN)
		explain_step(x, "variants", "more", NULL, "%u variants stored, %u shown", a.n,
		             EXPLAIN_VARIANTS_SHOWN);
}

/* The cache (conn_cache_consult), with the cache's own decision. */
static void
explain_cache(struct explain *x, int going_direct)
{
	if (x->is_connect) {
		explain_step(x, "cache", "not consulted", NULL, "CONNECT requests are not cached");
		return;
	}
	size_t hcap = strlen(x->host) + 16 + (x->fields ? strlen(x->fields) : 0);
	char *head = malloc(hcap);
	struct cachereq_probe *p = malloc(sizeof(*p));
	if (p == NULL || head == NULL) {
		free(p);
		free(head);
		explain_step(x, "cache", "unknown", NULL, "out of memory");
		return;
	}
	snprintf(head, hcap, "Host: %s\r\n%s", x->host, x->fields ? x->fields : "");
	int rc = cachereq_probe(x->w->id, x->cfg, x->r.method, x->r.url, head, strlen(head), p);
	free(head);
	if (!p->configured) {
		explain_step(x, "cache", "no cache", x->cfg->cache_root_where,
		             "no CacheRoot: nothing is cached");
		free(p);
		return;
	}
	if (p->prefix == NULL)
		explain_step(x, "CacheEnable", "not enabled", NULL,
		             "no CacheEnable prefix matches %s", p->key);
	else if (p->by_disable)
		explain_step(x, "CacheEnable", "disabled", p->rule_where, "CacheDisable %s",
		             p->prefix);
	else
		explain_step(x, "CacheEnable", "enabled", p->rule_where, "CacheEnable lmdb %s",
		             p->prefix);
	if (!p->enabled) {
		free(p);
		return;
	}
	if (!p->method_ok || strcmp(x->r.method, "PURGE") == 0) {
		explain_step(x, "cache", "not looked up", NULL,
		             strcmp(x->r.method, "PURGE") == 0
		                 ? "PURGE removes the stored entry for key %s (when <Limit PURGE> grants "
		                   "it)"
		                 : "%s is forwarded: a successful answer invalidates the stored "
		                   "entry for key %s", strcmp(x->r.method, "PURGE") == 0 ? p->key
		                                                                     : x->r.method,
		             p->key);
		free(p);
		return;
	}
	if (rc < 0 || p->lookup < 0) {
		explain_step(x, "cache lookup", "unknown", NULL, "the store could not be read");
		free(p);
		return;
	}
	explain_step(x, "cache key", p->lookup == CACHE_MISS ? "not stored" : "stored", NULL,
	             "%s%s", p->key, p->key_truncated ? "..." : "");
	if (p->lookup == CACHE_VARY_MISS)
		explain_step(x, "Vary", "no variant", NULL,
		             "responses for this URL vary, and none is stored for a request with "
		             "%s", x->fields && *x->fields ? "these fields' values"
		                                          : "none of those fields");
	else if (p->lookup == CACHE_HIT)
		explain_step(x, "Vary", *p->vary ? "varies" : "none", NULL, "%s",
		             *p->vary ? p->vary : "the stored response has no Vary");
	if (p->lookup == CACHE_VARY_MISS || (p->lookup == CACHE_HIT && *p->vary))
		explain_variants(x, p);
	const struct cache_decision *dc = &p->dec;
	const char *verdict = "miss";
	switch (dc->action) {
	case CACHE_ACT_FRESH:
		verdict = "hit";
		break;
	case CACHE_ACT_STALE_REVALIDATE:
		verdict = "stale hit";
		break;
	case CACHE_ACT_REVALIDATE:
		verdict = p->outcome == CACHE_OUT_REFRESH_MODIFIED || p->outcome ==
		          CACHE_OUT_CLIENT_REFRESH ? "stale: revalidate" : "stale: refetch";
		break;
	case CACHE_ACT_ONLY_IF_CACHED_MISS:
		verdict = "only-if-cached miss";
		break;
	default:
		verdict = p->lookup == CACHE_HIT && dc->stale ? "stale: refetch" : "miss";
		break;
	}
	if (p->lookup == CACHE_HIT)
		explain_step(x, "cache decision", verdict, NULL,
		             "%s: status %d, %llu bytes, age %lld s, lifetime %lld s, ttl %lld s%s%s%s; "
		             "%s", p->action, p->status, (unsigned long long)p->body_size,
		             (long long)dc->age, (long long)dc->lifetime, (long long)dc->ttl,
		             *p->etag ? ", ETag " : "", p->etag, dc->stale ? ", stale" : "",
		             dc->reason ? dc->reason : "");
	else
		explain_step(x, "cache decision", verdict, NULL, "%s: %s", p->action,
		             dc->reason ? dc->reason : "nothing stored");
	snprintf(x->r.cache_status, sizeof(x->r.cache_status), "%s", p->cache_status);
	const char *cs = p->cache_status;
	if (strncasecmp(cs, "Cache-Status: ", 14) == 0)
		memmove(x->r.cache_status, x->r.cache_status + 14, strlen(x->r.cache_status + 14) + 1);
	explain_step(x, "Cache-Status", verdict, NULL, "%s%s", x->r.cache_status,
	             dc->action == CACHE_ACT_FRESH || dc->action == CACHE_ACT_STALE_REVALIDATE
	                 ? "" : " (fwd-status and stored are added when the origin answers)");
	if (dc->action == CACHE_ACT_FRESH || dc->action == CACHE_ACT_STALE_REVALIDATE)
		explain_outcome(x, "served from the cache (%s)%s", verdict,
		                dc->action == CACHE_ACT_STALE_REVALIDATE
		                    ? "; refreshed in the background" : "");
	else if (dc->action == CACHE_ACT_ONLY_IF_CACHED_MISS)
		explain_outcome(x, "504: not in the cache (only-if-cached)");
	(void)going_direct;
	free(p);
}

static void
explain_after_lookup(struct explain *x)
{
	char addrs[600] = "";
	size_t n = 0;
	for (unsigned i = 0; i < x->addrs.n && n < sizeof(addrs) - 64; i++) {
		char a[80];
		gh_addr_text(&x->addrs.a[i], a, sizeof(a), 0);
		n += (size_t)snprintf(addrs + n, sizeof(addrs) - n, "%s%s", i ? ", " : "", a);
	}
	if (x->dns_status == RES_OK)
		explain_step(x, "DNS", "resolved", NULL, "%s: %s (TTL %u s)", x->host, addrs,
		             x->addrs.ttl);
	else
		explain_step(x, "DNS", "failed", NULL, "%s: %s", x->host, res_strerror(x->dns_status));

	size_t loclen = strlen(x->r.url) + 256;
	char *loc = malloc(loclen);
	if (loc == NULL) {
		explain_fail(x, 500, "out of memory");
		return;
	}
	struct pol_decision d;
	explain_decide(x, &d, loc, loclen);
	free(loc);
	/* The proxy acts on the first decision unless it asked for the addresses. */
	const struct pol_decision *use = x->dec0.need_addrs || x->dec0.action == POL_WAIT
	                                     ? &d : &x->dec0;
	if (use->action == POL_BLOCK) {
		explain_step(x, "ProxyBlock by address", "blocked", use->why->where,
		             "an address of %s is blocked: %s", x->host, use->why->text);
		explain_outcome(x, "403 Forbidden: %s is blocked by %s", x->host, use->why->text);
		explain_finish(x);
		return;
	}
	if (use->action == POL_WAIT) {
		explain_step(x, "ProxyBlock by address", "not ready", use->why->where, "%s",
		             use->why->text);
		explain_outcome(x, "waits for the ProxyBlock names' first answers (503 after "
		                "DNSTimeout)");
		explain_finish(x);
		return;
	}
	if (use->action != POL_DIRECT && use->action != POL_PARENTS) {
		explain_step(x, "policy", "invalid", use->why->where, "%s", use->why->text);
		explain_outcome(x, "400 Bad Request: %s", use->why->text);
		explain_finish(x);
		return;
	}
	explain_step(x, "ProxyBlock by address", "no match", NULL,
	             x->addrs.n ? "no ProxyBlock entry matches the addresses of %s"
	                        : "no addresses of %s to check", x->host);
	int noproxy = use->action == POL_DIRECT && strncmp(use->why->text, "NoProxy", 7) == 0;
	if (noproxy)
		explain_step(x, "NoProxy", "direct", use->why->where, "%s", use->why->text);
	else if (use->action == POL_DIRECT)
		explain_step(x, "NoProxy", "not applied", NULL, "%s", use->why->text);
	else
		explain_step(x, "NoProxy", "no match", NULL, "no NoProxy entry matches");
	if (use->action == POL_PARENTS) {
		explain_step(x, "ProxyRemote", "parents", use->why->where,
		             "%s; %zu parent%s in failover order%s", use->why->text, use->nparents,
		             use->nparents == 1 ? "" : "s",
		             use->fallback_direct ? ", then direct (ProxyRemoteFallback direct)" : "");
		explain_parents(x, use);
	} else {
		/* A direct ftp:// URL is fetched by the proxy itself (daemon/ftp.c): the FTP
		 * gateway speaks FTP to the server and answers as an HTTP upstream would. */
		explain_step(x, "ProxyRemote", x->is_ftp     ? "direct (FTP gateway)"
		                               : x->is_https ? "direct (TLS to origin)"
		                                             : "direct", NULL,
		             noproxy ? "NoProxy sends it direct" : "%s", use->why->text);
		if (x->dns_status != RES_OK || x->addrs.n == 0)
			explain_outcome(x, "%d: DNS lookup for %s failed: %s",
			                x->dns_status == RES_TIMEOUT ? 504 : 502, x->host,
			                res_strerror(x->dns_status));
		else if (x->is_ftp)
			explain_outcome(x, "fetched by the FTP gateway from %s port %u", x->host,
			                x->port);
		else if (x->is_https)
			explain_outcome(x, "sent direct to %s port %u over TLS (the certificate checked "
			                "for %s)", x->host, x->port, x->host);
		else
			explain_outcome(x, "sent direct to %s port %u", x->host, x->port);
	}
	explain_cache(x, use->action == POL_DIRECT);
	explain_finish(x);
}

void *
explain_start(struct worker *w, struct cfg *cfg, const char *url, const char *client,
              const char *method, const char *fields, ui_explain_done_f *done, void *arg)
{
	struct explain *x = calloc(1, sizeof(*x));
	if (x == NULL) {
		static struct ui_explain_result oom = { .status = 500, .error = "out of memory" };
		done(arg, &oom);
		return NULL;
	}
	x->magic = EXPLAIN_MAGIC;
	x->w = w;
	x->cfg = cfg_ref(cfg);
	x->done = done;
	x->arg = arg;
	explain_enter(x);
	x->r.status = 200;
	if (method == NULL || *method == '\0')
		method = "GET";
	snprintf(x->r.method, sizeof(x->r.method), "%s", method);
	snprintf(x->r.client, sizeof(x->r.client), "%s", client ? client : "");
	snprintf(x->r.url, sizeof(x->r.url), "%s", url ? url : "");
	snprintf(x->r.fields, sizeof(x->r.fields), "%s", fields ? fields : "");
	char ferr[160];
	int nf = 0;
	if (fields != NULL && *fields != '\0') {
		size_t fcap = strlen(fields) + 4 * EXPLAIN_FIELDS_MAX + 1; /* LF -> CRLF, ": " */
		x->fields = malloc(fcap);
		nf = x->fields ? explain_fields_parse(fields, x->fields, fcap, ferr, sizeof(ferr))
		               : -2;
	}

	if (strlen(fields ? fields : "") >= sizeof(x->r.fields))
		explain_fail(x, 400, "bad request header fields: longer than %zu bytes",
		             sizeof(x->r.fields) - 1);
	else if (nf == -2)
		explain_fail(x, 500, "out of memory");
	else if (nf < 0)
		explain_fail(x, 400, "bad request header fields: %s", ferr);
	else if (!explain_method_ok(method))
		explain_fail(x, 400, "unknown method \"%.40s\" (GET, HEAD, POST, PUT, DELETE, OPTIONS, "
		             "TRACE, PATCH, CONNECT or PURGE)", method);
	else if (client == NULL || explain_client_parse(client, &x->client) != 0)
		explain_fail(x, 400, "bad client address \"%.64s\": give an IPv4 or IPv6 address",
		             client ? client : "");
	else {
		x->is_connect = strcmp(method, "CONNECT") == 0;
		size_t cap = strlen(url) + URL_NORM_SLACK;
		char *norm = malloc(cap), host[512];
		const char *reason = "out of memory";
		if (norm == NULL || explain_target_normalize(url, x->is_connect, norm, cap, host,
		                                             sizeof(host), &x->port, &x->is_ftp,
		                                             &reason) != 0) {
			explain_fail(x, norm ? 400 : 500, "bad %s: %s", x->is_connect
			             ? "CONNECT target (host:port)" : "URL", reason);
		} else if (strlen(norm) >= sizeof(x->r.url) || (x->host = strdup(host)) == NULL) {
			explain_fail(x, 400, "URL too long for explain (%zu bytes at most)",
			             sizeof(x->r.url) - 1);
		} else {
			snprintf(x->r.url, sizeof(x->r.url), "%s", norm);
			x->is_https = !x->is_connect && strncmp(norm, "https://", 8) == 0;
			explain_step(x, "URL", "normalised", NULL, "%s%s", norm,
			             strcmp(norm, url) ? "" : " (already normal)");
			explain_acl(x);
		}
		free(norm);
	}
	if (explain_leave(x))
		return NULL;
	return x;
}

void
explain_cancel(void *handle)
{
	struct explain *x = handle;
	if (x == NULL || x->magic != EXPLAIN_MAGIC)
		return;
	explain_free(x);
}

/* ---- the table webui/ reads ---- */

static void *
explain_ui_start(void *wctx, const char *url, const char *client, const char *method,
                 const char *fields, ui_explain_done_f *done, void *arg)
{
	struct status_ctx *sc = wctx;
	return explain_start(sc->w, sc->cfg, url, client, method, fields, done, arg);
}

static const struct ui_explain_ops explain_ops = {
	.start = explain_ui_start,
	.cancel = explain_cancel,
};

const struct ui_explain_ops *
explain_ui_ops(void)
{
	return &explain_ops;
}
