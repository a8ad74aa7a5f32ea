/*
 * authz.c - Apache 2.4 authorization containers (mod_authz_core) for a <Location> (issue 11)
 * and for the <Proxy>/<ProxyMatch>/<Limit> sections of the client ACL (issue 14): Require
 * lines grouped by <RequireAny>, <RequireAll> and <RequireNone>, with ip, host, local, all,
 * valid-user, user and group terms. One evaluator for both; policy/pol_priv.h says how a
 * section's tree differs.
 *
 * The tree is built by the config loader (pol_authz_open/close/require) and then read-only:
 * any thread may evaluate it. The top level is an implicit <RequireAny>, as in Apache.
 *
 * Values are mod_authz_core's: granted (G), denied (D), neutral (N).
 *   leaf        ip/local: G if the client matches, else D; all granted|denied; host: G when
 *               the client's confirmed name is in the domain, else D; valid-user: G with a
 *               user; user A B: G when the user is one of them, else D; group A B: G when
 *               one of the user's groups is listed, else D.
 *   "not" leaf  G -> D, D -> N.
 *   RequireAny  G if one is; else D if one is; else N.
 *   RequireAll  D if one is; else G if one is; else N.
 *   RequireNone D if one child is G; else N.
 * A section's top: the positive lines and containers as a RequireAny, then each "Require not"
 * line and <RequireNone> at the top as a veto (a RequireAll of both); G allows, D and N deny.
 *
 * Unknowns (three-valued, as Require host always was in sections): a host term while the
 * client's name is not looked up yet, and a user term while no user is authenticated, could
 * be G or D. Each node's result is therefore the SET of values it could take, computed over
 * every combination of its children's possible values (each set has at most three members,
 * so a container costs 9 combinations per child). When the top's set maps to one verdict, the
 * unknowns do not matter: an address grants without asking anybody, or RequireAll{ip 10/8,
 * valid-user} from outside 10/8 denies without asking for a password. Otherwise the caller
 * must learn more: the name first (cheap, and it may settle it), then the user (a 407). Terms
 * are treated as independent, so "host a" and "not host a" together may ask for a name that
 * then decides: never a wrong answer, at worst a lookup too many.
 *
 * As in Apache, a negated Require directly in a <RequireAny> or <RequireNone> (and at the top
 * of a <Location>) is an error: it could never grant; a container must hold at least one
 * Require, and a <RequireAll> of negative rules only can never grant.
 */
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/pol.h"
#include "policy/pol_priv.h"

#define POL_AUTHZ_MAGIC 0x415a3031u /* "AZ01" */
#define POL_AUTHZ_DEPTH 16
#define POL_HOST_MAX 253

enum pol_az_kind {
	POL_AZ_ANY = 0, POL_AZ_ALL, POL_AZ_NONE,      /* containers */
	POL_AZ_IP, POL_AZ_LOCAL, POL_AZ_GRANTED, POL_AZ_DENIED, POL_AZ_VALID_USER, POL_AZ_USER,
	POL_AZ_GROUP, POL_AZ_HOST
};

struct pol_az_node {
	enum pol_az_kind kind;
	int negate;
	struct pol_net *nets;          /* ip */
	size_t nnets;
	char **names;                  /* user, group, host (host: lower case) */
	size_t *lens;                  /* host: name lengths */
	size_t nnames;
	struct pol_why **arg_why;      /* section trees, ip and host: one per argument */
	struct pol_why *why;           /* the whole line */
	struct pol_az_node **kids;
	size_t nkids;
	struct pol_az_node *parent;
};

struct pol_authz {
	unsigned magic;
	struct pol_az_node root;       /* implicit RequireAny */
	struct pol_az_node *cur;       /* open container while building */
	unsigned depth;
	int section;                   /* a <Proxy> section's tree (pol_priv.h) */
	char *where;                   /* section: its name, for descriptions */
	const struct pol_why *none;    /* section: "no Require matched" (not owned) */
	const struct pol_why *first_user;
	char errbuf[512];
};

static const struct pol_why pol_az_why_none = {
	"no Require rule granted access", "", "no Require rule granted access", NULL
};

__attribute__((format(printf, 3, 4)))
static int
pol_az_fail(struct pol_authz *a, const char **err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->errbuf, sizeof(a->errbuf), fmt, ap);
	va_end(ap);
	*err = a->errbuf;
	return -1;
}

/* A description in one allocation: text, where ("" when NULL), "TEXT (WHERE)" (the text
 * alone without where), line (may be NULL). NULL when out of memory. */
static struct pol_why *
pol_az_why_new(const char *text, const char *where, const char *line)
{
	size_t tl = strlen(text), wl = where ? strlen(where) : 0, ll = line ? strlen(line) : 0;
	struct pol_why *y = malloc(sizeof(*y) + (tl + 1) + (wl + 1) + (tl + wl + 4) + (ll + 1));

	if (y == NULL)
		return NULL;
	char *t = (char *)(y + 1), *w = t + tl + 1, *f = w + wl + 1, *l = f + tl + wl + 4;

	memcpy(t, text, tl + 1);
	memcpy(w, where ? where : "", wl + 1);
	if (wl)
		snprintf(f, tl + wl + 4, "%s (%s)", text, where);
	else
		memcpy(f, text, tl + 1);
	y->text = t;
	y->where = w;
	y->full = f;
	y->line = NULL;
	if (line) {
		memcpy(l, line, ll + 1);
		y->line = l;
	}
	return y;
}

static void
pol_az_node_fini(struct pol_az_node *n)
{
	for (size_t i = 0; i < n->nkids; i++) {
		pol_az_node_fini(n->kids[i]);
		free(n->kids[i]);
	}
	for (size_t i = 0; i < n->nnames; i++)
		free(n->names[i]);
	if (n->arg_why)
		for (size_t i = 0; i < (n->nnets ? n->nnets : n->nnames); i++)
			free(n->arg_why[i]);
	free(n->arg_why);
	free(n->names);
	free(n->lens);
	free(n->kids);
	free(n->nets);
	free(n->why);
}

int
pol_authz_new(struct pol_authz **ap)
{
	struct pol_authz *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -1;
	a->magic = POL_AUTHZ_MAGIC;
	a->root.kind = POL_AZ_ANY;
	a->cur = &a->root;
	*ap = a;
	return 0;
}

int
pol_authz_new_section(struct pol_authz **ap, const char *where, const struct pol_why *none)
{
	if (pol_authz_new(ap) != 0)
		return -1;
	(*ap)->section = 1;
	(*ap)->none = none;
	if (where && ((*ap)->where = strdup(where)) == NULL) {
		pol_authz_free(ap);
		return -1;
	}
	return 0;
}

void
pol_authz_free(struct pol_authz **ap)
{
	struct pol_authz *a = *ap;
	if (a == NULL)
		return;
	pol_az_node_fini(&a->root);
	free(a->where);
	a->magic = 0;
	free(a);
	*ap = NULL;
}

static struct pol_az_node *
pol_az_add(struct pol_az_node *parent, enum pol_az_kind kind)
{
	struct pol_az_node *n = calloc(1, sizeof(*n));
	struct pol_az_node **v = realloc(parent->kids, (parent->nkids + 1) * sizeof(*v));
	if (n == NULL || v == NULL) {
		free(n);
		if (v)
			parent->kids = v;
		return NULL;
	}
	parent->kids = v;
	v[parent->nkids++] = n;
	n->kind = kind;
	n->parent = parent;
	return n;
}

/* May a negative rule (a "Require not", or <RequireNone>) go into the open container? */
static const char *
pol_az_negative_refused(const struct pol_authz *a, int container)
{
	const struct pol_az_node *c = a->cur;

	if (c == &a->root && a->section)
		return NULL; /* a section's top: a veto */
	if (container)
		return NULL; /* <RequireNone> in <RequireAny>: allowed (neutral at most) */
	if (c->kind == POL_AZ_ANY)
		return "a negative Require has no effect in <RequireAny> (or outside any "
		       "container): put it in <RequireAll> or <RequireNone>";
	if (c->kind == POL_AZ_NONE)
		return "a negative Require has no effect in <RequireNone>: it could never grant "
		       "(write the positive rule there)";
	return NULL;
}

int
pol_authz_open(struct pol_authz *a, const char *container, const char **err)
{
	enum pol_az_kind k;
	if (strcasecmp(container, "RequireAny") == 0)
		k = POL_AZ_ANY;
	else if (strcasecmp(container, "RequireAll") == 0)
		k = POL_AZ_ALL;
	else if (strcasecmp(container, "RequireNone") == 0)
		k = POL_AZ_NONE;
	else {
		*err = "unknown authorization container (RequireAny, RequireAll, RequireNone)";
		return -1;
	}
	if (a->depth >= POL_AUTHZ_DEPTH) {
		*err = "authorization containers nested too deep";
		return -1;
	}
	struct pol_az_node *n = pol_az_add(a->cur, k);
	if (n == NULL) {
		*err = "out of memory";
		return -1;
	}
	a->cur = n;
	a->depth++;
	return 0;
}

int
pol_authz_close(struct pol_authz *a, const char **err)
{
	if (a->cur == &a->root) {
		*err = "no open authorization container";
		return -1;
	}
	if (a->cur->nkids == 0) {
		*err = "the container holds no Require directive";
		return -1;
	}
	if (a->cur->kind == POL_AZ_ALL) {
		int positive = 0;
		for (size_t i = 0; i < a->cur->nkids; i++)
			positive |= !a->cur->kids[i]->negate && a->cur->kids[i]->kind != POL_AZ_NONE;
		if (!positive) {
			*err = "<RequireAll> holds only negative rules: it can never grant";
			return -1;
		}
	}
	a->cur = a->cur->parent;
	a->depth--;
	return 0;
}

int
pol_host_valid(const char *h)
{
	size_t len = strlen(h), i = 0;
	int alpha = 0;

	if (len == 0 || len > POL_HOST_MAX)
		return 0;
	if (h[0] == '.')
		i = 1;
	if (i == len || h[len - 1] == '.')
		return 0;
	for (; i < len; i++) {
		char c = h[i];

		if (c == '.') {
			if (h[i + 1] == '.')
				return 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
		           c == '_') {
			alpha = 1;
		} else if (c < '0' || c > '9') {
			return 0;
		}
	}
	return alpha;
}

static int
pol_az_lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

int
pol_host_match(const char *pattern, size_t hl, const char *name)
{
	size_t nl = strlen(name);
	const char *tail;

	if (nl > 0 && name[nl - 1] == '.')
		nl--;
	if (nl < hl || hl == 0)
		return 0;
	tail = name + (nl - hl);
	for (size_t i = 0; i < hl; i++)
		if (pol_az_lower((unsigned char)tail[i]) != pattern[i])
			return 0;
	if (nl == hl)
		return pattern[0] != '.';
	return pattern[0] == '.' || tail[-1] == '.';
}

/* Check the arguments of an ip or host line, and keep them in n. 0, or -1 with *err. */
static int
pol_az_args(struct pol_authz *a, struct pol_az_node *n, char *const *args, size_t nargs,
            const char **err)
{
	if (n->kind == POL_AZ_IP) {
		if ((n->nets = calloc(nargs, sizeof(*n->nets))) == NULL)
			goto nomem;
		for (size_t i = 0; i < nargs; i++) {
			const char *why;
			if (pol_net_parse(args[i], &n->nets[i], &why) != 0)
				return pol_az_fail(a, err, "bad address \"%.200s\": %s", args[i],
				                   why);
		}
		n->nnets = nargs;
		return 0;
	}
	if ((n->names = calloc(nargs, sizeof(*n->names))) == NULL ||
	    (n->lens = calloc(nargs, sizeof(*n->lens))) == NULL)
		goto nomem;
	for (size_t i = 0; i < nargs; i++) {
		struct pol_net net;
		const char *why;

		if (n->kind == POL_AZ_HOST && !pol_host_valid(args[i])) {
			if (pol_net_parse(args[i], &net, &why) == 0)
				return pol_az_fail(a, err, "\"%.200s\" is an address: use "
				                   "Require ip", args[i]);
			return pol_az_fail(a, err, "bad host name \"%.200s\"", args[i]);
		}
		if (n->kind != POL_AZ_HOST && (args[i][0] == '\0' || strlen(args[i]) > 255))
			return pol_az_fail(a, err, "bad %s name \"%.200s\"",
			                   n->kind == POL_AZ_GROUP ? "group" : "user", args[i]);
		if ((n->names[i] = strdup(args[i])) == NULL)
			goto nomem;
		n->nnames = i + 1;
		n->lens[i] = strlen(args[i]);
		if (n->kind == POL_AZ_HOST)
			for (char *p = n->names[i]; *p; p++)
				*p = (char)pol_az_lower((unsigned char)*p);
	}
	return 0;
nomem:
	*err = "out of memory";
	return -1;
}

/* The descriptions of a line: "Require [not] WORDS" clipped, and for a section's ip and host
 * lines one per argument. */
static int
pol_az_describe(struct pol_authz *a, struct pol_az_node *n, char *const *args, size_t nargs,
                const char *where, const char *line)
{
	char text[300];
	size_t off = (size_t)snprintf(text, sizeof(text), "Require%s", n->negate ? " not" : "");

	for (size_t i = 0; i < nargs && off < sizeof(text) - 1; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off, " %s", args[i]);
	if ((n->why = pol_az_why_new(text, where, line)) == NULL)
		return -1;
	if (!a->section || (n->kind != POL_AZ_IP && n->kind != POL_AZ_HOST))
		return 0;
	if ((n->arg_why = calloc(nargs - 1, sizeof(*n->arg_why))) == NULL)
		return -1;
	for (size_t i = 1; i < nargs; i++) {
		snprintf(text, sizeof(text), "Require%s %s %.250s", n->negate ? " not" : "",
		         args[0], args[i]);
		if ((n->arg_why[i - 1] = pol_az_why_new(text, where, line)) == NULL)
			return -1;
	}
	return 0;
}

static int
pol_az_require(struct pol_authz *a, char *const *args, size_t nargs, const char *where,
               const char *line, const char **err)
{
	const char *supported = a->section ? "ip, host, all, local, valid-user, user, group"
	                                   : "ip, local, all, valid-user, user";
	int negate = 0;
	enum pol_az_kind k;

	if (nargs > 0 && strcasecmp(args[0], "not") == 0) {
		negate = 1;
		args++;
		nargs--;
	}
	if (nargs == 0)
		return pol_az_fail(a, err, "missing provider (%s)", supported);
	const char *p = args[0];
	if (strcasecmp(p, "ip") == 0)
		k = POL_AZ_IP;
	else if (strcasecmp(p, "local") == 0)
		k = POL_AZ_LOCAL;
	else if (strcasecmp(p, "all") == 0) {
		if (negate)
			return pol_az_fail(a, err, "\"Require not all\" is not supported");
		if (nargs != 2)
			return pol_az_fail(a, err, "expected \"all granted\" or \"all denied\"");
		if (strcasecmp(args[1], "granted") && strcasecmp(args[1], "denied"))
			return pol_az_fail(a, err, "expected \"all granted\" or \"all denied\", "
			                   "got \"all %.200s\"", args[1]);
		k = strcasecmp(args[1], "granted") == 0 ? POL_AZ_GRANTED : POL_AZ_DENIED;
	} else if (strcasecmp(p, "valid-user") == 0)
		k = POL_AZ_VALID_USER;
	else if (strcasecmp(p, "user") == 0)
		k = POL_AZ_USER;
	else if (strcasecmp(p, "group") == 0 && a->section)
		k = POL_AZ_GROUP;
	else if (strcasecmp(p, "host") == 0 && a->section)
		k = POL_AZ_HOST;
	else if (strcasecmp(p, "host") == 0)
		return pol_az_fail(a, err, "\"Require host\" is not supported here (use "
		                   "Require ip)");
	else
		return pol_az_fail(a, err, "unsupported provider \"%.100s\" (supported: %s)", p,
		                   supported);
	if (negate && (*err = pol_az_negative_refused(a, 0)) != NULL)
		return -1;
	if ((k == POL_AZ_IP || k == POL_AZ_HOST || k == POL_AZ_USER || k == POL_AZ_GROUP) &&
	    nargs < 2) {
		static const char *const need[] = {
			[POL_AZ_IP] = "\"ip\" needs at least one address or subnet",
			[POL_AZ_HOST] = "\"host\" needs at least one host name or domain",
			[POL_AZ_USER] = "\"user\" needs at least one user name",
			[POL_AZ_GROUP] = "\"group\" needs at least one group name",
		};
		*err = need[k];
		return -1;
	}
	if ((k == POL_AZ_LOCAL || k == POL_AZ_VALID_USER) && nargs != 1)
		return pol_az_fail(a, err, a->section ? "\"%s\" takes no arguments"
		                                      : "this provider takes no arguments",
		                   k == POL_AZ_LOCAL ? "local" : "valid-user");
	/* Built aside and attached whole, so that a refused line leaves the tree as it was. */
	struct pol_az_node *n = calloc(1, sizeof(*n));
	if (n == NULL)
		goto nomem;
	n->kind = k;
	n->negate = negate;
	n->parent = a->cur;
	if ((k == POL_AZ_IP || k == POL_AZ_HOST || k == POL_AZ_USER || k == POL_AZ_GROUP) &&
	    pol_az_args(a, n, args + 1, nargs - 1, err) != 0) {
		pol_az_node_fini(n);
		free(n);
		return -1;
	}
	struct pol_az_node **v = realloc(a->cur->kids, (a->cur->nkids + 1) * sizeof(*v));
	if (v != NULL)
		a->cur->kids = v;
	if (v == NULL || pol_az_describe(a, n, args, nargs, where, line) != 0) {
		pol_az_node_fini(n);
		free(n);
		goto nomem;
	}
	v[a->cur->nkids++] = n;
	if ((k == POL_AZ_USER || k == POL_AZ_VALID_USER || k == POL_AZ_GROUP) && !a->first_user)
		a->first_user = n->why;
	return 0;
nomem:
	*err = "out of memory";
	return -1;
}

int
pol_authz_require(struct pol_authz *a, char *const *args, size_t nargs, const char *where,
                  const char **err)
{
	return pol_az_require(a, args, nargs, where, where, err);
}

int
pol_authz_require_line(struct pol_authz *a, char *const *args, size_t nargs,
                       const char *line, const char **err)
{
	return pol_az_require(a, args, nargs, a->where, line, err);
}

int
pol_authz_finish(struct pol_authz *a, const char **err)
{
	if (a->cur != &a->root) {
		*err = "authorization container not closed";
		return -1;
	}
	return 0;
}

int
pol_authz_empty(const struct pol_authz *a)
{
	return a == NULL || a->root.nkids == 0;
}

int
pol_authz_uses_user(const struct pol_authz *a)
{
	return a != NULL && a->first_user != NULL;
}

const struct pol_why *
pol_authz_first_user(const struct pol_authz *a)
{
	return a ? a->first_user : NULL;
}

/* ---- evaluation: no allocation below this line ---- */

enum { AZ_G = 0, AZ_D = 1, AZ_N = 2 };
#define AZ_BIT(v) (1u << (v))

/* What a node could evaluate to, with the rule behind each value. weak marks a value whose
 * rule only failed to match (an address or name not listed): at a section's top, a denial
 * made only of those is "no Require matched". need_name/need_user: a host/user term whose
 * answer is unknown and which the set still depends on. */
struct pol_az_out {
	unsigned set;
	unsigned weak;
	const struct pol_why *why[3];
	const struct pol_why *need_name, *need_user;
};

static int
pol_az_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ((const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr)[0] == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a6) || (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
	}
	return 0;
}

static void
pol_az_one(struct pol_az_out *o, int v, const struct pol_why *why, int weak)
{
	memset(o, 0, sizeof(*o));
	o->set = AZ_BIT(v);
	o->why[v] = why;
	o->weak = weak ? AZ_BIT(v) : 0;
}

/* Is name in the node's list (user names compare with case, as Apache's)? */
static int
pol_az_listed(const struct pol_az_node *n, const char *name)
{
	for (size_t i = 0; i < n->nnames; i++)
		if (strcmp(n->names[i], name) == 0)
			return 1;
	return 0;
}

/* flip: the leaf sits under an odd number of <RequireNone> (exempt reads it, see below). */
static void
pol_az_leaf(const struct pol_az_node *n, const struct who *who, int flip, struct pol_az_out *o)
{
	const struct pol_why *line = n->why;

	switch (n->kind) {
	case POL_AZ_IP:
		for (size_t i = 0; i < n->nnets; i++)
			if (pol_net_match(&n->nets[i], who->addr)) {
				pol_az_one(o, AZ_G, n->arg_why ? n->arg_why[i] : line, 0);
				return;
			}
		pol_az_one(o, AZ_D, line, 1);
		return;
	case POL_AZ_HOST:
		if (who->name == NULL) {
			pol_az_one(o, AZ_G, n->arg_why[0], 0);
			o->set |= AZ_BIT(AZ_D);
			o->why[AZ_D] = n->arg_why[0];
			o->weak = AZ_BIT(AZ_D);
			o->need_name = n->arg_why[0];
			return;
		}
		for (size_t i = 0; i < n->nnames; i++)
			if (pol_host_match(n->names[i], n->lens[i], who->name)) {
				pol_az_one(o, AZ_G, n->arg_why[i], 0);
				return;
			}
		pol_az_one(o, AZ_D, line, 1);
		return;
	case POL_AZ_LOCAL:
		pol_az_one(o, pol_az_loopback(who->addr) ? AZ_G : AZ_D, line,
		           !pol_az_loopback(who->addr));
		return;
	case POL_AZ_GRANTED:
		pol_az_one(o, AZ_G, line, 0);
		return;
	case POL_AZ_DENIED:
		pol_az_one(o, AZ_D, line, 0);
		return;
	case POL_AZ_VALID_USER:
	case POL_AZ_USER:
	case POL_AZ_GROUP:
		if (who->exempt) {
			/* counts as granted where granted helps, and as not matching where a
			 * match would refuse ("Require not user bob", a user in <RequireNone>):
			 * a user term never refuses the PAC file */
			pol_az_one(o, (n->negate ^ flip) ? AZ_D : AZ_G, line, 0);
			return;
		}
		if (who->user == NULL) {
			pol_az_one(o, AZ_G, line, 0);
			o->set |= AZ_BIT(AZ_D);
			o->why[AZ_D] = line;
			o->need_user = line;
			return;
		}
		if (n->kind == POL_AZ_VALID_USER) {
			pol_az_one(o, AZ_G, line, 0);
		} else if (n->kind == POL_AZ_USER) {
			pol_az_one(o, pol_az_listed(n, who->user) ? AZ_G : AZ_D, line, 0);
		} else {
			int in = 0;
			for (size_t i = 0; i < who->ngroups && !in; i++)
				in = who->groups[i] != NULL && pol_az_listed(n, who->groups[i]);
			pol_az_one(o, in ? AZ_G : AZ_D, line, 0);
		}
		return;
	default:
		pol_az_one(o, AZ_N, line, 1);
		return;
	}
}

/* "not": G -> D, D -> N, N stays; the rules go with the values. */
static void
pol_az_negate(struct pol_az_out *o)
{
	struct pol_az_out r = *o;

	r.set = 0;
	r.weak = 0;
	r.why[AZ_G] = r.why[AZ_D] = r.why[AZ_N] = NULL;
	if (o->set & AZ_BIT(AZ_G)) {
		r.set |= AZ_BIT(AZ_D);
		r.why[AZ_D] = o->why[AZ_G];
		r.weak |= (o->weak & AZ_BIT(AZ_G)) ? AZ_BIT(AZ_D) : 0;
	}
	for (int v = AZ_D; v <= AZ_N; v++)
		if (o->set & AZ_BIT(v)) {
			r.set |= AZ_BIT(AZ_N);
			if (r.why[AZ_N] == NULL || (r.weak & AZ_BIT(AZ_N))) {
				r.why[AZ_N] = o->why[v];
				r.weak = (r.weak & ~AZ_BIT(AZ_N)) |
				         ((o->weak & AZ_BIT(v)) ? AZ_BIT(AZ_N) : 0);
			}
		}
	*o = r;
}

/* The order a combination takes the larger of: Any N < D < G, All N < G < D. */
static int
pol_az_rank(int all, int v)
{
	static const int any_rank[3] = { [AZ_N] = 0, [AZ_D] = 1, [AZ_G] = 2 };
	static const int all_rank[3] = { [AZ_N] = 0, [AZ_G] = 1, [AZ_D] = 2 };
	return all ? all_rank[v] : any_rank[v];
}

/* acc := every value combine(x, y) for x in acc, y in kid (all: RequireAll, else RequireAny). */
static void
pol_az_fold(struct pol_az_out *acc, const struct pol_az_out *kid, int all)
{
	struct pol_az_out r = { 0 };

	/* Only the values present (one each, mostly: everything known, the request path). */
	for (unsigned xs = acc->set; xs != 0; xs &= xs - 1) {
		int x = __builtin_ctz(xs);
		for (unsigned ys = kid->set; ys != 0; ys &= ys - 1) {
			int y = __builtin_ctz(ys);
			int from_acc = pol_az_rank(all, x) >= pol_az_rank(all, y);
			int v = from_acc ? x : y;
			const struct pol_why *why = from_acc ? acc->why[x] : kid->why[y];
			int weak = from_acc ? !!(acc->weak & AZ_BIT(x)) : !!(kid->weak & AZ_BIT(y));

			/* a tie: the stronger reason, else the earlier one */
			if (x == y && (acc->weak & AZ_BIT(x)) && !(kid->weak & AZ_BIT(y)) &&
			    kid->why[y]) {
				why = kid->why[y];
				weak = 0;
			}
			if (why == NULL) {
				why = from_acc ? kid->why[y] : acc->why[x];
				weak = 1;
			}
			if (!(r.set & AZ_BIT(v)) || r.why[v] == NULL ||
			    ((r.weak & AZ_BIT(v)) && !weak && why)) {
				r.why[v] = why;
				r.weak = (r.weak & ~AZ_BIT(v)) | (weak ? AZ_BIT(v) : 0);
			}
			r.set |= AZ_BIT(v);
		}
	}
	r.need_name = acc->need_name ? acc->need_name : kid->need_name;
	r.need_user = acc->need_user ? acc->need_user : kid->need_user;
	*acc = r;
}

static void pol_az_eval(const struct pol_az_node *n, const struct who *who, int flip,
                        struct pol_az_out *o);

/* A container's children (skip: those with negate set at a section's top, which veto). Stops
 * as soon as the set cannot change: RequireAny at {G}, RequireAll at {D}. */
static void
pol_az_kids(const struct pol_az_node *n, const struct who *who, int flip, int all,
            int positives_only, struct pol_az_out *o)
{
	struct pol_az_out kid;

	pol_az_one(o, AZ_N, NULL, 1);
	for (size_t i = 0; i < n->nkids; i++) {
		const struct pol_az_node *k = n->kids[i];

		if (positives_only && (k->negate || k->kind == POL_AZ_NONE))
			continue;
		pol_az_eval(k, who, flip, &kid);
		pol_az_fold(o, &kid, all);
		if (o->set == AZ_BIT(all ? AZ_D : AZ_G))
			break;
	}
}

static void
pol_az_eval(const struct pol_az_node *n, const struct who *who, int flip, struct pol_az_out *o)
{
	switch (n->kind) {
	case POL_AZ_ANY:
	case POL_AZ_NONE:
		pol_az_kids(n, who, flip ^ (n->kind == POL_AZ_NONE), 0, 0, o);
		/* a container's verdict is a reason of its own, even when its children only
		 * failed to match */
		o->weak = 0;
		if (n->kind == POL_AZ_NONE)
			pol_az_negate(o);
		break;
	case POL_AZ_ALL:
		pol_az_kids(n, who, flip, 1, 0, o);
		o->weak = 0;
		break;
	default:
		pol_az_leaf(n, who, flip, o);
		if (n->negate)
			pol_az_negate(o);
		break;
	}
	if ((o->set & (o->set - 1)) == 0) /* one value: nothing unknown matters below */
		o->need_name = o->need_user = NULL;
}

/* The whole tree: RequireAny at the top, and for a section the top's negative rules veto. */
static void
pol_az_top(const struct pol_authz *a, const struct who *who, struct pol_az_out *o)
{
	struct pol_az_out veto;

	if (!a->section) {
		pol_az_kids(&a->root, who, 0, 0, 0, o);
		return;
	}
	pol_az_kids(&a->root, who, 0, 0, 1, o);
	for (size_t i = 0; i < a->root.nkids && o->set != AZ_BIT(AZ_D); i++) {
		const struct pol_az_node *k = a->root.kids[i];

		if (!k->negate && k->kind != POL_AZ_NONE)
			continue;
		pol_az_eval(k, who, 0, &veto);
		pol_az_fold(o, &veto, 1);
	}
	if ((o->set & (o->set - 1)) == 0)
		o->need_name = o->need_user = NULL;
}

enum pol_verdict
pol_authz_decide(const struct pol_authz *a, const struct who *who, const struct pol_why **why)
{
	struct pol_az_out o;
	const struct pol_why *none = a->none ? a->none : &pol_az_why_none;

	pol_az_top(a, who, &o);
	if (o.set == AZ_BIT(AZ_G)) {
		*why = o.why[AZ_G] ? o.why[AZ_G] : none;
		return POL_ALLOW;
	}
	if (!(o.set & AZ_BIT(AZ_G))) {
		int v = (o.set & AZ_BIT(AZ_D)) ? AZ_D : AZ_N;

		*why = o.why[v] && !(o.weak & AZ_BIT(v)) ? o.why[v] : none;
		return POL_DENY;
	}
	/* G and a refusal both possible: something unknown decides; the name first */
	if (o.need_name && who->name == NULL) {
		*why = o.need_name;
		return POL_NEED_NAME;
	}
	if (o.need_user && who->user == NULL) {
		*why = o.need_user;
		return POL_NEED_USER;
	}
	*why = none; /* cannot happen: every unknown is one of those two */
	return POL_DENY;
}

enum pol_authz_res
pol_authz_check(const struct pol_authz *a, const struct sockaddr *client, const char *user,
                const char **rule)
{
	struct who who = { .addr = client, .name = "", .user = user };
	struct pol_az_out o;
	const struct pol_why *w;
	enum pol_authz_res res;

	pol_az_top(a, &who, &o);
	if (o.set == AZ_BIT(AZ_G)) {
		res = POL_AUTHZ_GRANTED;
		w = o.why[AZ_G];
	} else if (o.set == AZ_BIT(AZ_N)) {
		res = POL_AUTHZ_NEUTRAL;
		w = o.why[AZ_N];
	} else if (!(o.set & AZ_BIT(AZ_G))) {
		res = POL_AUTHZ_DENIED; /* denied, or neutral: refused either way */
		w = o.why[(o.set & AZ_BIT(AZ_D)) ? AZ_D : AZ_N];
	} else {
		res = POL_AUTHZ_NO_USER;
		w = o.need_user;
	}
	*rule = w ? w->full : pol_az_why_none.full;
	return res;
}
