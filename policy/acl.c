/*
 * acl.c - client access control compiled from <Proxy>/<ProxyMatch> sections.
 *
 * A section holds either Apache 2.4 rules (Require) or Apache 2.2 rules (Order/Allow/Deny),
 * never both. pol_acl_check() finds the last section, in config order, whose pattern matches
 * the URL and which has access rules, and evaluates only that one (Apache's default
 * AuthMerging Off: a later section replaces the rules of an earlier one). No matching section:
 * loopback clients only.
 *
 * Semantics of one section:
 *  - 2.4: a tree of policy/authz.c (the one evaluator, shared with <Location>): the Require
 *    lines and containers at the top form a RequireAny; "Require not ..." lines and
 *    <RequireNone> there veto. Allowed when no veto matches and at least one positive rule
 *    matches. "Require all denied" never grants; a section with only "not" rules therefore
 *    denies everybody. <RequireAll>/<RequireAny>/<RequireNone>, valid-user, user and group
 *    (issue 14) as in Apache 2.4; user terms are three-valued like host terms (POL_NEED_USER).
 *    The authentication settings (pol_acl_set_authn) are chosen apart from the rules: the last
 *    matching section that has some, whichever section decides. AuthType None counts as
 *    settings (that ask nobody), so that it switches off what an earlier section set up.
 *  - 2.2: Order deny,allow (also the default when Order is absent): allowed unless in Deny and
 *    not in Allow. Order allow,deny and mutual-failure: allowed only if in Allow and not in
 *    Deny. A section with only "Order allow,deny" denies everybody.
 * Host rules depend on the client's verified name: while it is unknown (client_name NULL) the
 * evaluation is three-valued and an outcome that a host rule could change gives POL_NEED_NAME.
 * Host patterns match the whole name or a label-aligned suffix ("example.org" matches
 * "example.org" and "www.example.org", not "badexample.org"); a leading dot (".example.org")
 * requires at least one more label, as mod_authz_host's in_domain() does.
 *
 * URL patterns: "*" matches everything; a <Proxy> pattern containing '*' or '?' is a
 * wildcard pattern that must match the whole URL ('*' crosses '/'); any other <Proxy> pattern
 * is a prefix. Both compare case-insensitively (Apache compares case-sensitively; we prefer
 * that "HTTP://Example.COM/" cannot slip past a section written in lower case). <ProxyMatch>
 * is a POSIX extended regex, REG_ICASE|REG_NOSUB, unanchored unless the pattern anchors it.
 * The daemon passes the URL in the normalized form of daemon/url.h, and a prefix pattern
 * ("http://Origin.test.:80//a/") is normalized the same way when it is added, so no other
 * spelling of a URL escapes it; wildcard patterns and regexes are kept as written and see the
 * normalized URL.
 *
 * Every description a check may return (*rule, a struct pol_why) is built when the rule is
 * added, so
 * pol_acl_check() allocates nothing (glibc's regexec may allocate internally).
 * Builders run in the config loader only; a finished acl is read-only and thread-safe.
 */
#include <assert.h>
#include <netinet/in.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/url.h"
#include "policy/pol.h"
#include "policy/pol_priv.h"

#define POL_ACL_MAGIC 0x41434c31u   /* "ACL1" */
#define POL_SEC_MAGIC 0x53454331u   /* "SEC1" */
#define POL_REGEX_MAX 4096          /* pattern length */
#define POL_REGEX_COST_MAX 2000     /* estimated compiled size, see pol_acl_regex_check() */
#define POL_REGEX_DEPTH 32          /* nested groups */

enum pol_rule_kind { POL_R_IP, POL_R_HOST, POL_R_ALL, POL_R_LOCAL };

/* Three-valued match result. */
enum pol_tv { POL_TV_NO = 0, POL_TV_YES = 1, POL_TV_UNKNOWN = 2 };

struct pol_rule {
	enum pol_rule_kind kind;
	int negate;           /* Require not ... */
	int granted;          /* POL_R_ALL in 2.4: all granted (1) or all denied (0) */
	struct pol_net net;   /* POL_R_IP */
	char *host;           /* POL_R_HOST: lower case, trailing dot removed */
	size_t host_len;
	struct pol_why *desc; /* "Require ip 10.0.0.0/8 (<Proxy *> at f:3)" */
};

struct pol_rules {
	struct pol_rule *v;
	size_t n, cap;
};

enum pol_style { POL_STYLE_NONE = 0, POL_STYLE_24, POL_STYLE_22 };

struct pol_acl_section {
	unsigned magic;
	struct pol_acl *acl;
	enum pol_section_kind kind;
	char *pattern;
	size_t pattern_len;
	int match_all;        /* "*" */
	int wildcard;         /* <Proxy> pattern with '*' or '?' */
	int host_dot;         /* prefix "scheme://host." alone: also the host without the dot */
	int have_re;
	regex_t re;
	char *where;          /* "<Proxy *> at gatehouse.conf:10" */
	char *rule_line;      /* FILE:LINE of the rules being added (pol_acl_rule_line), or NULL */
	enum pol_style style;
	struct pol_authz *az;            /* 2.4: the Require tree (authz.c), NULL until a Require */
	const void *authn;               /* pol_acl_set_authn, not owned */
	int authn_off;                   /* AuthType None: authn are settings that ask nobody */
	enum pol_order order;            /* 2.2 */
	struct pol_rules allow, deny;    /* 2.2 */
	struct pol_why *desc_none;    /* 2.4: nothing granted */
	struct pol_why *desc_default; /* 2.2: the Order default decided */
	/* <Limit>/<LimitExcept> blocks inside a section: each is a pol_acl_section of its own
	 * (kind, pattern unused) with parent set and the methods it names. */
	struct pol_acl_section *parent;
	int except;           /* <LimitExcept>: applies to every method but these */
	char **methods;
	size_t nmethods;
	struct pol_acl_section **limits;
	size_t nlimits, caplimits;
};

struct pol_acl {
	unsigned magic;
	struct pol_acl_section **secs;
	size_t n, cap;
	char errbuf[512];     /* messages returned through *err by the builders */
};

static const char pol_acl_err_nomem[] = "out of memory";
#define POL_ACL_BUILTIN(name, s) static const struct pol_why name = { s, "", s, NULL }
POL_ACL_BUILTIN(pol_acl_rule_default, "no <Proxy> section applies: loopback clients only");
POL_ACL_BUILTIN(pol_acl_rule_purge, "PURGE needs a <Limit PURGE> grant in a <Proxy> section");

/* Format a message into the acl's error buffer and point *err at it. Returns -1. */
__attribute__((format(printf, 3, 4)))
static int
pol_acl_fail(struct pol_acl *acl, const char **err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(acl->errbuf, sizeof(acl->errbuf), fmt, ap);
	va_end(ap);
	*err = acl->errbuf;
	return -1;
}

__attribute__((format(printf, 1, 2)))
static char *
pol_acl_strf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

/* A rule description in one allocation (free() it): text from fmt, where the section's
 * name, full "TEXT (WHERE)", line the rule's own FILE:LINE (NULL: unknown). NULL when out of
 * memory. */
__attribute__((format(printf, 3, 4)))
static struct pol_why *
pol_acl_why(const char *where, const char *line, const char *fmt, ...)
{
	va_list ap;
	char *text = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	size_t tl = (size_t)n, wl = where ? strlen(where) : 0, ll = line ? strlen(line) : 0;
	struct pol_why *y = malloc(sizeof(*y) + (tl + 1) + (wl + 1) + (tl + wl + 4) + (ll + 1));
	if (y) {
		char *t = (char *)(y + 1), *w = t + tl + 1, *f = w + wl + 1;

		memcpy(t, text, tl + 1);
		memcpy(w, where ? where : "", wl + 1);
		memcpy(f, text, tl + 1);
		if (wl) {
			memcpy(f + tl, " (", 2);
			memcpy(f + tl + 2, where, wl);
			memcpy(f + tl + 2 + wl, ")", 2);
		}
		y->text = t;
		y->where = w;
		y->full = f;
		y->line = NULL;
		if (line) {
			char *l = f + tl + wl + 4;
			memcpy(l, line, ll + 1);
			y->line = l;
		}
	}
	free(text);
	return y;
}

static void
pol_acl_rules_free(struct pol_rules *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].host);
		free(r->v[i].desc);
	}
	free(r->v);
	memset(r, 0, sizeof(*r));
}

/* Append a zeroed rule; NULL on allocation failure. */
static struct pol_rule *
pol_acl_rules_push(struct pol_rules *r)
{
	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 4;
		struct pol_rule *v = realloc(r->v, ncap * sizeof(*v));

		if (!v)
			return NULL;
		r->v = v;
		r->cap = ncap;
	}
	memset(&r->v[r->n], 0, sizeof(r->v[0]));
	return &r->v[r->n++];
}

/* Drop the last rule pushed (after a failure that followed the push). */
static void
pol_acl_rules_pop(struct pol_rules *r)
{
	assert(r->n > 0);
	r->n--;
	free(r->v[r->n].host);
	free(r->v[r->n].desc);
}

int
pol_acl_new(struct pol_acl **aclp)
{
	struct pol_acl *acl = calloc(1, sizeof(*acl));

	*aclp = acl;
	if (!acl)
		return -1;
	acl->magic = POL_ACL_MAGIC;
	return 0;
}

static void
pol_acl_section_free(struct pol_acl_section *s)
{
	if (!s)
		return;
	assert(s->magic == POL_SEC_MAGIC);
	if (s->have_re)
		regfree(&s->re);
	free(s->pattern);
	free(s->where);
	free(s->rule_line);
	free(s->desc_none);
	free(s->desc_default);
	pol_authz_free(&s->az);
	pol_acl_rules_free(&s->allow);
	pol_acl_rules_free(&s->deny);
	for (size_t i = 0; i < s->nmethods; i++)
		free(s->methods[i]);
	free(s->methods);
	for (size_t i = 0; i < s->nlimits; i++)
		pol_acl_section_free(s->limits[i]);
	free(s->limits);
	s->magic = 0;
	free(s);
}

void
pol_acl_free(struct pol_acl **aclp)
{
	struct pol_acl *acl;

	if (!aclp || !*aclp)
		return;
	acl = *aclp;
	assert(acl->magic == POL_ACL_MAGIC);
	for (size_t i = 0; i < acl->n; i++)
		pol_acl_section_free(acl->secs[i]);
	free(acl->secs);
	acl->magic = 0;
	free(acl);
	*aclp = NULL;
}

/* Skip a bracket expression starting at p[i] == '['. Returns the index after its ']', or len
 * when it is not closed (regcomp then reports it). */
static size_t
pol_acl_regex_bracket(const char *p, size_t i, size_t len)
{
	size_t j = i + 1;

	if (j < len && p[j] == '^')
		j++;
	if (j < len && p[j] == ']')
		j++;
	while (j < len && p[j] != ']') {
		if (p[j] == '[' && j + 1 < len && strchr(":.=", p[j + 1])) {
			char kind = p[j + 1];

			/* [:class:], [.coll.], [=equiv=] */
			for (j += 2; j + 1 < len && !(p[j] == kind && p[j + 1] == ']'); j++)
				;
			j += 2;
		} else {
			j++;
		}
	}
	return j < len ? j + 1 : len;
}

/* Refuse regexes glibc would take too long to compile or match. glibc copies the operand of
 * '+' and of {n,m} bounds into the compiled tree, so the size of a pattern is estimated
 * the same way (an atom counts 1, "E+" twice E, "E{n,m}" max(n,m) times E, nested groups
 * multiply) and must stay under POL_REGEX_COST_MAX. Stacked repetition operators ("a*+",
 * undefined in POSIX, exponential in glibc) and back-references are refused. */
static const char *
pol_acl_regex_check(const char *p)
{
	struct { unsigned long total, last; } st[POL_REGEX_DEPTH], cur = { 0, 0 };
	size_t depth = 0, len = strlen(p), i = 0;
	int prev_rep = 0;

	if (len > POL_REGEX_MAX)
		return "too long";
	while (i < len) {
		unsigned long mult = 0;
		char c = p[i];

		if (c == '*' || c == '?' || c == '+') {
			mult = c == '+' ? 2 : 1;
			i++;
		} else if (c == '{') {
			unsigned long v = 0, maxv = 1;

			for (i++; i < len && p[i] != '}'; i++) {
				if (p[i] >= '0' && p[i] <= '9') {
					v = v * 10 + (unsigned long)(p[i] - '0');
					if (v > POL_REGEX_COST_MAX)
						return "repetitions too large or too deeply nested";
				} else {
					v = 0;
				}
				if (v > maxv)
					maxv = v;
			}
			i++;
			mult = maxv;
		}
		if (mult) {
			if (prev_rep)
				return "a repetition operator follows another";
			prev_rep = 1;
			cur.last = (cur.last ? cur.last : 1) * mult;
			if (cur.last > POL_REGEX_COST_MAX)
				return "repetitions too large or too deeply nested";
			continue;
		}
		prev_rep = 0;
		cur.total += cur.last;
		cur.last = 0;
		if (c == '(') {
			if (depth == POL_REGEX_DEPTH)
				return "groups nested too deeply";
			st[depth++] = cur;
			cur.total = cur.last = 0;
			i++;
		} else if (c == ')' && depth > 0) {
			unsigned long g = cur.total;

			cur = st[--depth];
			cur.last = g + 1;
			i++;
		} else if (c == '|') {
			i++;
		} else if (c == '[') {
			cur.last = 1;
			i = pol_acl_regex_bracket(p, i, len);
		} else if (c == '\\' && i + 1 < len) {
			if (p[i + 1] >= '1' && p[i + 1] <= '9')
				return "back-references are not supported";
			cur.last = 1;
			i += 2;
		} else {
			cur.last = 1;
			i++;
		}
		if (cur.total > POL_REGEX_COST_MAX)
			return "repetitions too large or too deeply nested";
	}
	return NULL;
}

/* Make room for one more pointer in *vec (n used of *cap) and allocate a section of acl
 * named where (taken over: freed on failure; NULL means out of memory), with its fixed
 * descriptions. The caller fills in the rest and appends it. NULL with *err on failure. */
static struct pol_acl_section *
pol_acl_section_alloc(struct pol_acl *acl, struct pol_acl_section ***vec, size_t n, size_t *cap,
                      char *where, const char **err)
{
	struct pol_acl_section *s = NULL;

	if (where && n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 4;
		struct pol_acl_section **v = realloc(*vec, ncap * sizeof(*v));

		if (v) {
			*vec = v;
			*cap = ncap;
		} else {
			free(where);
			where = NULL;
		}
	}
	if (where)
		s = calloc(1, sizeof(*s));
	if (!s) {
		free(where);
		*err = pol_acl_err_nomem;
		return NULL;
	}
	s->magic = POL_SEC_MAGIC;
	s->acl = acl;
	s->where = where;
	s->desc_none = pol_acl_why(where, NULL, "no Require matched");
	s->desc_default = pol_acl_why(where, NULL, "Order deny,allow: no Deny matched");
	if (!s->desc_none || !s->desc_default) {
		pol_acl_section_free(s);
		*err = pol_acl_err_nomem;
		return NULL;
	}
	return s;
}

/* The pattern as it is matched: a <Proxy> URL prefix ("scheme://...") in the normalized form
 * of daemon/url.h, the one requests are matched in; wildcards, "*" and regexes as written.
 * NULL with *why when it cannot be normalized, NULL with *why NULL when out of memory. */
static char *
pol_acl_pattern_dup(enum pol_section_kind kind, const char *pattern, const char **why)
{
	size_t n = strlen(pattern);
	char *out;

	*why = NULL;
	if (kind == POL_SEC_REGEX || strpbrk(pattern, "*?") || !strstr(pattern, "://"))
		return strdup(pattern);
	out = malloc(n + URL_NORM_SLACK);
	if (out && url_normalize(pattern, n, URL_N_PREFIX, out, n + URL_NORM_SLACK, NULL, why)) {
		free(out);
		return NULL;
	}
	return out;
}

struct pol_acl_section *
pol_acl_section_add(struct pol_acl *acl, enum pol_section_kind kind, const char *pattern,
                    const char *where, const char **err)
{
	struct pol_acl_section *s;
	const char *why;

	assert(acl && acl->magic == POL_ACL_MAGIC);
	if (!pattern || !*pattern) {
		pol_acl_fail(acl, err, "empty pattern");
		return NULL;
	}
	if (kind == POL_SEC_REGEX && (why = pol_acl_regex_check(pattern)) != NULL) {
		pol_acl_fail(acl, err, "bad regular expression \"%.200s\": %s", pattern, why);
		return NULL;
	}
	s = pol_acl_section_alloc(acl, &acl->secs, acl->n, &acl->cap,
	                          where ? strdup(where)
	                                : pol_acl_strf("<%s %s>", kind == POL_SEC_REGEX
	                                                              ? "ProxyMatch" : "Proxy",
	                                               pattern),
	                          err);
	if (!s)
		return NULL;
	s->kind = kind;
	s->pattern = pol_acl_pattern_dup(kind, pattern, &why);
	if (!s->pattern && why) {
		pol_acl_section_free(s);
		pol_acl_fail(acl, err, "cannot normalize URL \"%.200s\": %s", pattern, why);
		return NULL;
	}
	s->pattern_len = s->pattern ? strlen(s->pattern) : 0;
	if (!s->pattern) {
		pol_acl_section_free(s);
		*err = pol_acl_err_nomem;
		return NULL;
	}
	if (kind == POL_SEC_REGEX) {
		int rc = regcomp(&s->re, pattern, REG_EXTENDED | REG_ICASE | REG_NOSUB);

		if (rc != 0) {
			char msg[128];

			regerror(rc, &s->re, msg, sizeof(msg));
			pol_acl_section_free(s);
			pol_acl_fail(acl, err, "bad regular expression \"%.200s\": %s", pattern,
			             msg);
			return NULL;
		}
		s->have_re = 1;
	} else {
		s->match_all = strcmp(pattern, "*") == 0;
		s->wildcard = strpbrk(pattern, "*?") != NULL;
		/* "http://origin.test." stays a prefix of longer names (a partial host is kept as
		 * written), but requests have their trailing dot dropped: it must also name the
		 * host origin.test itself, or it matches none of its requests */
		const char *h = strstr(s->pattern, "://");
		s->host_dot = !s->wildcard && h != NULL && s->pattern_len > (size_t)(h - s->pattern) +
		              4 && s->pattern[s->pattern_len - 1] == '.' && !strpbrk(h + 3, "/:@[");
	}
	acl->secs[acl->n++] = s;
	return s;
}

/* A method name: an RFC 9110 token of at most 23 bytes. */
static int
pol_acl_method_valid(const char *m)
{
	size_t n = strlen(m);

	if (n == 0 || n > 23)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!strchr("!#$%&'*+-.^_`|~", m[i]) && !(m[i] >= '0' && m[i] <= '9') &&
		    !((m[i] | 0x20) >= 'a' && (m[i] | 0x20) <= 'z'))
			return 0;
	return 1;
}

struct pol_acl_section *
pol_acl_limit_add(struct pol_acl_section *parent, int except, char *const *methods,
                  size_t nmethods, const char *where, const char **err)
{
	struct pol_acl *acl;
	struct pol_acl_section *s;

	assert(parent && parent->magic == POL_SEC_MAGIC && !parent->parent);
	acl = parent->acl;
	if (nmethods == 0) {
		pol_acl_fail(acl, err, "expected one or more method names");
		return NULL;
	}
	for (size_t i = 0; i < nmethods; i++) {
		if (!pol_acl_method_valid(methods[i])) {
			pol_acl_fail(acl, err, "bad method name \"%.200s\"", methods[i]);
			return NULL;
		}
	}
	s = pol_acl_section_alloc(acl, &parent->limits, parent->nlimits, &parent->caplimits,
	                          where ? strdup(where)
	                                : pol_acl_strf("<%s %s> in %s",
	                                               except ? "LimitExcept" : "Limit", methods[0],
	                                               parent->where),
	                          err);
	if (!s)
		return NULL;
	s->kind = parent->kind;
	s->parent = parent;
	s->except = except;
	s->methods = calloc(nmethods, sizeof(*s->methods));
	for (size_t i = 0; s->methods && i < nmethods; i++) {
		s->methods[i] = strdup(methods[i]);
		if (!s->methods[i])
			break;
		s->nmethods++;
	}
	if (s->nmethods != nmethods) {
		pol_acl_section_free(s);
		*err = pol_acl_err_nomem;
		return NULL;
	}
	parent->limits[parent->nlimits++] = s;
	return s;
}

/* Fill a host rule from h (validated). Returns 0 or -1 on allocation failure. */
static int
pol_acl_host_set(struct pol_rule *r, const char *h)
{
	r->kind = POL_R_HOST;
	r->host = strdup(h);
	if (!r->host)
		return -1;
	r->host_len = strlen(h);
	for (size_t i = 0; i < r->host_len; i++)
		if (r->host[i] >= 'A' && r->host[i] <= 'Z')
			r->host[i] = (char)(r->host[i] - 'A' + 'a');
	return 0;
}

/* The section's Require tree, made at its first Require or container. 0, or -1 with *err. */
static int
pol_acl_az(struct pol_acl_section *s, const char **err)
{
	if (s->style == POL_STYLE_22)
		return pol_acl_fail(s->acl, err,
		                    "cannot mix Require with Order/Allow/Deny in one section");
	if (!s->az && pol_authz_new_section(&s->az, s->where, s->desc_none) != 0) {
		*err = pol_acl_err_nomem;
		return -1;
	}
	return 0;
}

int
pol_acl_require(struct pol_acl_section *s, char *const *args, size_t nargs, const char **err)
{
	assert(s && s->magic == POL_SEC_MAGIC);
	if (pol_acl_az(s, err) != 0)
		return -1;
	if (pol_authz_require_line(s->az, args, nargs, s->rule_line, err) != 0)
		return -1;
	s->style = POL_STYLE_24;
	return 0;
}

int
pol_acl_container_open(struct pol_acl_section *s, const char *container, const char **err)
{
	assert(s && s->magic == POL_SEC_MAGIC);
	if (pol_acl_az(s, err) != 0 || pol_authz_open(s->az, container, err) != 0)
		return -1;
	s->style = POL_STYLE_24;
	return 0;
}

int
pol_acl_container_close(struct pol_acl_section *s, const char **err)
{
	assert(s && s->magic == POL_SEC_MAGIC);
	if (!s->az) {
		*err = "no open authorization container";
		return -1;
	}
	return pol_authz_close(s->az, err);
}

int
pol_acl_set_authn(struct pol_acl_section *s, const void *authn, int off)
{
	assert(s && s->magic == POL_SEC_MAGIC);
	s->authn = authn;
	s->authn_off = off != 0;
	return 0;
}

const struct pol_why *
pol_acl_sec_first_user(const struct pol_acl_section *s)
{
	const struct pol_why *u;

	assert(s && s->magic == POL_SEC_MAGIC);
	u = pol_authz_first_user(s->az);
	for (size_t i = 0; !u && i < s->nlimits; i++)
		u = pol_authz_first_user(s->limits[i]->az);
	return u;
}

int
pol_acl_order(struct pol_acl_section *s, const char *arg, const char **err)
{
	struct pol_acl *acl;
	enum pol_order order;
	const char *text;
	struct pol_why *desc;

	assert(s && s->magic == POL_SEC_MAGIC);
	acl = s->acl;
	if (s->style == POL_STYLE_24)
		return pol_acl_fail(acl, err,
		                    "cannot mix Order/Allow/Deny with Require in one section");
	if (strcasecmp(arg, "deny,allow") == 0) {
		order = POL_ORDER_DENY_ALLOW;
		text = "Order deny,allow: no Deny matched";
	} else if (strcasecmp(arg, "allow,deny") == 0) {
		order = POL_ORDER_ALLOW_DENY;
		text = "Order allow,deny: no Allow matched";
	} else if (strcasecmp(arg, "mutual-failure") == 0) {
		order = POL_ORDER_MUTUAL_FAILURE;
		text = "Order mutual-failure: no Allow matched";
	} else {
		return pol_acl_fail(acl, err, "expected deny,allow, allow,deny or mutual-failure, "
		                    "got \"%.200s\"", arg);
	}
	desc = pol_acl_why(s->where, s->rule_line, "%s", text);
	if (!desc) {
		*err = pol_acl_err_nomem;
		return -1;
	}
	free(s->desc_default);
	s->desc_default = desc;
	s->order = order;
	s->style = POL_STYLE_22;
	return 0;
}

int
pol_acl_allow(struct pol_acl_section *s, int deny, char *const *args, size_t nargs,
              const char **err)
{
	struct pol_acl *acl;
	struct pol_rules *list;
	size_t before;

	assert(s && s->magic == POL_SEC_MAGIC);
	acl = s->acl;
	if (s->style == POL_STYLE_24)
		return pol_acl_fail(acl, err,
		                    "cannot mix Order/Allow/Deny with Require in one section");
	if (nargs == 0)
		return pol_acl_fail(acl, err,
		                    "expected \"all\", addresses or host names after \"from\"");
	list = deny ? &s->deny : &s->allow;
	before = list->n;
	for (size_t i = 0; i < nargs; i++) {
		struct pol_rule *r;
		struct pol_net net;
		const char *why;
		int is_all = strcasecmp(args[i], "all") == 0, is_net = 0;

		if (strncasecmp(args[i], "env=", 4) == 0) {
			pol_acl_fail(acl, err, "\"%.200s\": env= is not supported", args[i]);
			goto fail;
		}
		if (!is_all) {
			if (pol_net_parse(args[i], &net, &why) == 0) {
				is_net = 1;
			} else if (!pol_host_valid(args[i])) {
				/* A colon, or only digits, dots and slashes: an address was
				 * meant. */
				if (strchr(args[i], ':') ||
				    strspn(args[i], "0123456789./") == strlen(args[i]))
					pol_acl_fail(acl, err, "bad address \"%.200s\": %s",
					             args[i], why);
				else
					pol_acl_fail(acl, err, "bad address or host name "
					             "\"%.200s\"", args[i]);
				goto fail;
			}
		}
		r = pol_acl_rules_push(list);
		if (!r)
			goto nomem;
		if (is_all) {
			r->kind = POL_R_ALL;
			r->granted = 1;
		} else if (is_net) {
			r->kind = POL_R_IP;
			r->net = net;
		} else if (pol_acl_host_set(r, args[i]) != 0) {
			goto nomem;
		}
		r->desc = pol_acl_why(s->where, s->rule_line, "%s from %s", deny ? "Deny" : "Allow", args[i]);
		if (!r->desc)
			goto nomem;
	}
	s->style = POL_STYLE_22;
	return 0;

nomem:
	*err = pol_acl_err_nomem;
fail:
	while (list->n > before)
		pol_acl_rules_pop(list);
	return -1;
}

/* ---- evaluation: no allocation below this line ---- */

static int
pol_acl_lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

static int
pol_acl_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const uint8_t *a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;

		return a[0] == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_LOOPBACK(a6))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127;
	}
	return 0;
}

static enum pol_tv
pol_acl_rule_match(const struct pol_rule *r, const struct sockaddr *client, const char *name)
{
	switch (r->kind) {
	case POL_R_IP:
		return pol_net_match(&r->net, client) ? POL_TV_YES : POL_TV_NO;
	case POL_R_LOCAL:
		return pol_acl_is_loopback(client) ? POL_TV_YES : POL_TV_NO;
	case POL_R_ALL:
		return POL_TV_YES;
	case POL_R_HOST:
		if (!name)
			return POL_TV_UNKNOWN;
		return pol_host_match(r->host, r->host_len, name) ? POL_TV_YES : POL_TV_NO;
	}
	return POL_TV_NO;
}

/* Is the client in a 2.2 Allow or Deny list? *which is the first matching entry, or the
 * first entry whose answer is unknown. */
static enum pol_tv
pol_acl_list_match(const struct pol_rules *l, const struct sockaddr *client, const char *name,
                   const struct pol_rule **which)
{
	enum pol_tv res = POL_TV_NO;

	*which = NULL;
	for (size_t i = 0; i < l->n; i++) {
		enum pol_tv m = pol_acl_rule_match(&l->v[i], client, name);

		if (m == POL_TV_YES) {
			*which = &l->v[i];
			return POL_TV_YES;
		}
		if (m == POL_TV_UNKNOWN && res == POL_TV_NO) {
			res = POL_TV_UNKNOWN;
			*which = &l->v[i];
		}
	}
	return res;
}

static enum pol_verdict
pol_acl_eval22(const struct pol_acl_section *s, const struct sockaddr *client, const char *name,
               const struct pol_why **rule)
{
	const struct pol_rule *ar, *dr;
	enum pol_tv in_allow = pol_acl_list_match(&s->allow, client, name, &ar);
	enum pol_tv in_deny = pol_acl_list_match(&s->deny, client, name, &dr);

	if (s->order == POL_ORDER_DENY_ALLOW || s->order == POL_ORDER_NONE) {
		/* Default allow; Deny, then Allow overrides. */
		if (in_allow == POL_TV_YES) {
			*rule = ar->desc;
			return POL_ALLOW;
		}
		if (in_deny == POL_TV_NO) {
			*rule = s->desc_default;
			return POL_ALLOW;
		}
		if (in_deny == POL_TV_YES && in_allow == POL_TV_NO) {
			*rule = dr->desc;
			return POL_DENY;
		}
		*rule = (in_allow == POL_TV_UNKNOWN ? ar : dr)->desc;
		return POL_NEED_NAME;
	}
	/* allow,deny and mutual-failure: default deny; Allow, then Deny overrides. */
	if (in_deny == POL_TV_YES) {
		*rule = dr->desc;
		return POL_DENY;
	}
	if (in_allow == POL_TV_NO) {
		*rule = s->desc_default;
		return POL_DENY;
	}
	if (in_allow == POL_TV_YES && in_deny == POL_TV_NO) {
		*rule = ar->desc;
		return POL_ALLOW;
	}
	*rule = (in_deny == POL_TV_UNKNOWN ? dr : ar)->desc;
	return POL_NEED_NAME;
}

/* Case-insensitive wildcard match of the whole of s[0..n) against pat ('*' any run, '?' any
 * one byte). Iterative with one backtrack point: O(len(pat) * n), no recursion. */
static int
pol_acl_wild_match(const char *pat, size_t plen, const char *s, size_t n)
{
	size_t p = 0, i = 0, star_p = 0, star_i = 0;
	int have_star = 0;

	while (i < n) {
		if (p < plen && pat[p] == '*') {
			have_star = 1;
			star_p = p++;
			star_i = i;
		} else if (p < plen && (pat[p] == '?' ||
		                        pol_acl_lower((unsigned char)pat[p]) ==
		                        pol_acl_lower((unsigned char)s[i]))) {
			p++;
			i++;
		} else if (have_star) {
			p = star_p + 1;
			i = ++star_i;
		} else {
			return 0;
		}
	}
	while (p < plen && pat[p] == '*')
		p++;
	return p == plen;
}

static int
pol_acl_section_matches(const struct pol_acl_section *s, const char *url, size_t url_len)
{
	if (s->kind == POL_SEC_REGEX) {
		regmatch_t m[1];

		m[0].rm_so = 0;
		m[0].rm_eo = (regoff_t)url_len;
		return regexec(&s->re, url, 1, m, REG_STARTEND) == 0;
	}
	if (s->match_all)
		return 1;
	if (s->wildcard)
		return pol_acl_wild_match(s->pattern, s->pattern_len, url, url_len);
	size_t n = s->pattern_len - (size_t)s->host_dot; /* host_dot: compare without the dot */
	if (url_len < n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (pol_acl_lower((unsigned char)s->pattern[i]) !=
		    pol_acl_lower((unsigned char)url[i]))
			return 0;
	/* host_dot: the host ends here (the path, a port or nothing follows) or the dot does */
	return !s->host_dot || url_len == n || url[n] == '/' || url[n] == ':' || url[n] == '.';
}

/* Does a <Limit>/<LimitExcept> block apply to method? Method names compare with case, as
 * HTTP methods do. */
static int
pol_acl_limit_applies(const struct pol_acl_section *l, const char *method)
{
	int named = 0;

	for (size_t i = 0; i < l->nmethods && !named; i++)
		named = strcmp(l->methods[i], method) == 0;
	return l->except ? !named : named;
}

/* The rules of section s that decide for method: the last <Limit>/<LimitExcept> block that
 * applies to it and has rules, else the section's own rules (never for PURGE). NULL when s
 * has none for this method. */
static const struct pol_acl_section *
pol_acl_rules_for(const struct pol_acl_section *s, const char *method, int explicit_only)
{
	for (size_t i = s->nlimits; i > 0; i--) {
		const struct pol_acl_section *l = s->limits[i - 1];

		if (l->style != POL_STYLE_NONE && pol_acl_limit_applies(l, method))
			return l;
	}
	if (explicit_only || s->style == POL_STYLE_NONE)
		return NULL;
	return s;
}

/* The authentication settings in force for url and method: those of the last matching
 * section that has some (a <Limit> block applying to the method, else the section's own). */
static const void *
pol_acl_authn_for(const struct pol_acl *acl, const char *method, const char *url,
                  size_t url_len)
{
	for (size_t k = acl ? acl->n : 0; k > 0; k--) {
		const struct pol_acl_section *s = acl->secs[k - 1];
		const void *found = NULL;

		if (!pol_acl_section_matches(s, url, url_len))
			continue;
		for (size_t i = s->nlimits; i > 0 && !found; i--)
			if (s->limits[i - 1]->authn && pol_acl_limit_applies(s->limits[i - 1], method))
				found = s->limits[i - 1]->authn;
		if (!found)
			found = s->authn;
		if (found)
			return found;
	}
	return NULL;
}

enum pol_verdict
pol_acl_decide(const struct pol_acl *acl, const char *method, const char *url, size_t url_len,
               const struct who *who, const struct pol_why **why, const void **authn)
{
	const struct pol_why *dummy;
	/* PURGE empties the cache for everyone: only an explicit <Limit PURGE> (or a
	 * <LimitExcept> not naming it) grants it, never the rules that admit ordinary use. */
	int explicit_only = method && strcmp(method, "PURGE") == 0;

	assert(who && who->addr);
	if (!why)
		why = &dummy;
	if (!method)
		method = "GET";
	assert(!acl || acl->magic == POL_ACL_MAGIC);
	if (!url) {
		url = "";
		url_len = 0;
	}
	if (authn)
		*authn = pol_acl_authn_for(acl, method, url, url_len);
	for (size_t k = acl ? acl->n : 0; k > 0; k--) {
		const struct pol_acl_section *s = acl->secs[k - 1], *r;

		if (!pol_acl_section_matches(s, url, url_len))
			continue;
		r = pol_acl_rules_for(s, method, explicit_only);
		if (!r)
			continue;
		if (r->style == POL_STYLE_22)
			return pol_acl_eval22(r, who->addr, who->name, why);
		return pol_authz_decide(r->az, who, why);
	}
	if (explicit_only) {
		*why = &pol_acl_rule_purge;
		return POL_DENY;
	}
	*why = &pol_acl_rule_default;
	return pol_acl_is_loopback(who->addr) ? POL_ALLOW : POL_DENY;
}

enum pol_verdict
pol_acl_check_why(const struct pol_acl *acl, const char *method, const char *url,
                  size_t url_len, const struct sockaddr *client, const char *client_name,
                  const struct pol_why **rule)
{
	struct who who = { .addr = client, .name = client_name };

	return pol_acl_decide(acl, method, url, url_len, &who, rule, NULL);
}

static int
pol_acl_sec_uses_user(const struct pol_acl_section *s)
{
	if (pol_authz_uses_user(s->az))
		return 1;
	for (size_t i = 0; i < s->nlimits; i++)
		if (pol_authz_uses_user(s->limits[i]->az))
			return 1;
	return 0;
}

int
pol_acl_uses_user(const struct pol_acl *acl)
{
	for (size_t k = 0; acl && k < acl->n; k++)
		if (pol_acl_sec_uses_user(acl->secs[k]))
			return 1;
	return 0;
}

/* Could section a supply the authentication for section s? Itself; "*"; a prefix pattern
 * that is a prefix of s's; and, since their reach cannot be compared, any regex or wildcard
 * section or any section when s is one. */
static int
pol_acl_sec_covers(const struct pol_acl_section *a, const struct pol_acl_section *s)
{
	if (a == s || a->match_all || a->kind == POL_SEC_REGEX || a->wildcard ||
	    s->kind == POL_SEC_REGEX || s->wildcard)
		return 1;
	if (a->pattern_len > s->pattern_len)
		return 0;
	for (size_t i = 0; i < a->pattern_len; i++)
		if (pol_acl_lower((unsigned char)a->pattern[i]) !=
		    pol_acl_lower((unsigned char)s->pattern[i]))
			return 0;
	return 1;
}

/* Settings that can ask for a user (AuthType None's cannot: they cover nothing). */
static int
pol_acl_sec_has_authn(const struct pol_acl_section *s)
{
	if (s->authn && !s->authn_off)
		return 1;
	for (size_t i = 0; i < s->nlimits; i++)
		if (s->limits[i]->authn && !s->limits[i]->authn_off)
			return 1;
	return 0;
}

const struct pol_why *
pol_acl_authn_missing(const struct pol_acl *acl)
{
	for (size_t k = 0; acl && k < acl->n; k++) {
		const struct pol_acl_section *s = acl->secs[k];
		const struct pol_why *u = pol_authz_first_user(s->az);
		int covered = 0;

		for (size_t i = 0; !u && i < s->nlimits; i++)
			u = pol_authz_first_user(s->limits[i]->az);
		if (!u)
			continue;
		for (size_t j = 0; j < acl->n && !covered; j++)
			covered = pol_acl_sec_has_authn(acl->secs[j]) &&
			          pol_acl_sec_covers(acl->secs[j], s);
		if (!covered)
			return u;
	}
	return NULL;
}

enum pol_verdict
pol_acl_check(const struct pol_acl *acl, const char *method, const char *url, size_t url_len,
              const struct sockaddr *client, const char *client_name, const char **rule)
{
	const struct pol_why *why = NULL;
	enum pol_verdict v = pol_acl_check_why(acl, method, url, url_len, client, client_name,
	                                       &why);

	if (rule)
		*rule = why->full;
	return v;
}

int
pol_acl_rule_line(struct pol_acl_section *s, const char *line)
{
	char *l = line ? strdup(line) : NULL;
	if (line && !l)
		return -1;
	free(s->rule_line);
	s->rule_line = l;
	return 0;
}
