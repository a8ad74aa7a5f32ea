/*
 * authz.c - Apache 2.4 authorization containers (mod_authz_core) for a <Location> (issue 11),
 * and later for <Proxy> (issue 14): Require lines grouped by <RequireAny>, <RequireAll> and
 * <RequireNone>, with ip, local, all, valid-user and user terms.
 *
 * The tree is built by the config loader (pol_authz_open/close/require) and then read-only:
 * any thread may call pol_authz_check() on it. The top level is an implicit <RequireAny>, as
 * in Apache. Results are mod_authz_core's: granted, denied, neutral, and "denied, no user"
 * (a user term with no authenticated user yet: the caller asks for credentials, 401).
 *
 *   leaf        ip/local: granted if the client matches, else denied; all granted|denied;
 *               valid-user: granted with a user, else no-user; user A B: granted when the
 *               user is one of them, denied for another user, no-user without one.
 *   "not" leaf  granted -> denied, denied -> neutral (no-user stays).
 *   RequireAny  granted if one is; else no-user if one is; else denied if one is; else neutral.
 *   RequireAll  denied if one is; else no-user if one is; else granted if one is; else neutral.
 *   RequireNone denied if one child is granted; else no-user if one is; else neutral.
 * As in Apache, a negated Require directly in a RequireAny (the top level included) is an
 * error (it could never grant), and a container must hold at least one Require.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/pol.h"

#define POL_AUTHZ_MAGIC 0x415a3031u /* "AZ01" */
#define POL_AUTHZ_DEPTH 16

enum pol_az_kind {
	POL_AZ_ANY = 0, POL_AZ_ALL, POL_AZ_NONE,      /* containers */
	POL_AZ_IP, POL_AZ_LOCAL, POL_AZ_GRANTED, POL_AZ_DENIED, POL_AZ_VALID_USER, POL_AZ_USER
};

struct pol_az_node {
	enum pol_az_kind kind;
	int negate;
	struct pol_net *nets;
	size_t nnets;
	char **users;
	size_t nusers;
	struct pol_az_node **kids;
	size_t nkids;
	struct pol_az_node *parent;
	char *desc;          /* "Require ip 10.0.0.0/8 (f.conf:3)" */
};

struct pol_authz {
	unsigned magic;
	struct pol_az_node root;   /* implicit RequireAny */
	struct pol_az_node *cur;   /* open container while building */
	unsigned depth;
	int has_user;              /* some term names users: credentials may be asked for */
	char errbuf[256];
};

static void
pol_az_node_fini(struct pol_az_node *n)
{
	for (size_t i = 0; i < n->nkids; i++) {
		pol_az_node_fini(n->kids[i]);
		free(n->kids[i]);
	}
	for (size_t i = 0; i < n->nusers; i++)
		free(n->users[i]);
	free(n->users);
	free(n->kids);
	free(n->nets);
	free(n->desc);
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

void
pol_authz_free(struct pol_authz **ap)
{
	struct pol_authz *a = *ap;
	if (a == NULL)
		return;
	pol_az_node_fini(&a->root);
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
	if (a->cur->kind == POL_AZ_NONE || a->cur->kind == POL_AZ_ALL) {
		int positive = 0;
		for (size_t i = 0; i < a->cur->nkids; i++)
			positive |= !a->cur->kids[i]->negate && a->cur->kids[i]->kind != POL_AZ_NONE;
		if (a->cur->kind == POL_AZ_ALL && !positive) {
			*err = "<RequireAll> holds only negative rules: it can never grant";
			return -1;
		}
	}
	a->cur = a->cur->parent;
	a->depth--;
	return 0;
}

int
pol_authz_require(struct pol_authz *a, char *const *args, size_t nargs, const char *where,
                  const char **err)
{
	int negate = 0;
	enum pol_az_kind k;
	if (nargs > 0 && strcasecmp(args[0], "not") == 0) {
		negate = 1;
		args++;
		nargs--;
	}
	if (nargs == 0) {
		*err = "missing provider (ip, local, all, valid-user, user)";
		return -1;
	}
	const char *p = args[0];
	if (strcasecmp(p, "ip") == 0)
		k = POL_AZ_IP;
	else if (strcasecmp(p, "local") == 0)
		k = POL_AZ_LOCAL;
	else if (strcasecmp(p, "all") == 0) {
		if (nargs != 2 || (strcasecmp(args[1], "granted") && strcasecmp(args[1], "denied"))) {
			*err = "expected \"all granted\" or \"all denied\"";
			return -1;
		}
		k = strcasecmp(args[1], "granted") == 0 ? POL_AZ_GRANTED : POL_AZ_DENIED;
		if (negate) {
			*err = "\"Require not all\" is not supported";
			return -1;
		}
	} else if (strcasecmp(p, "valid-user") == 0)
		k = POL_AZ_VALID_USER;
	else if (strcasecmp(p, "user") == 0)
		k = POL_AZ_USER;
	else if (strcasecmp(p, "host") == 0) {
		*err = "\"Require host\" is not supported here (use Require ip)";
		return -1;
	} else {
		snprintf(a->errbuf, sizeof(a->errbuf), "unsupported provider \"%.100s\" (supported: "
		         "ip, local, all, valid-user, user)", p);
		*err = a->errbuf;
		return -1;
	}
	if (negate && a->cur->kind == POL_AZ_ANY) {
		*err = "a negative Require has no effect in <RequireAny> (or outside any container): "
		       "put it in <RequireAll> or <RequireNone>";
		return -1;
	}
	if ((k == POL_AZ_IP || k == POL_AZ_USER) && nargs < 2) {
		*err = k == POL_AZ_IP ? "\"ip\" needs at least one address or subnet"
		                      : "\"user\" needs at least one user name";
		return -1;
	}
	if ((k == POL_AZ_LOCAL || k == POL_AZ_VALID_USER) && nargs != 1) {
		*err = "this provider takes no arguments";
		return -1;
	}
	struct pol_net *nets = NULL;
	char **users = NULL;
	size_t n = nargs - 1;
	if (k == POL_AZ_IP) {
		nets = calloc(n, sizeof(*nets));
		if (nets == NULL)
			goto nomem;
		for (size_t i = 0; i < n; i++) {
			const char *why;
			if (pol_net_parse(args[i + 1], &nets[i], &why) != 0) {
				snprintf(a->errbuf, sizeof(a->errbuf), "bad address \"%.100s\": %s",
				         args[i + 1], why);
				*err = a->errbuf;
				free(nets);
				return -1;
			}
		}
	} else if (k == POL_AZ_USER) {
		users = calloc(n, sizeof(*users));
		if (users == NULL)
			goto nomem;
		for (size_t i = 0; i < n; i++)
			if ((users[i] = strdup(args[i + 1])) == NULL) {
				for (size_t j = 0; j < i; j++)
					free(users[j]);
				free(users);
				goto nomem;
			}
	}
	struct pol_az_node *node = pol_az_add(a->cur, k);
	if (node == NULL) {
		free(nets);
		if (users)
			for (size_t i = 0; i < n; i++)
				free(users[i]);
		free(users);
		goto nomem;
	}
	node->negate = negate;
	node->nets = nets;
	node->users = users;
	if (k == POL_AZ_IP)
		node->nnets = n;
	if (k == POL_AZ_USER)
		node->nusers = n;
	if (k == POL_AZ_USER || k == POL_AZ_VALID_USER)
		a->has_user = 1;
	/* "Require [not] WORDS (WHERE)", words clipped */
	char text[300];
	size_t off = (size_t)snprintf(text, sizeof(text), "Require%s", negate ? " not" : "");
	for (size_t i = 0; i < nargs && off < sizeof(text) - 1; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off, " %s", args[i]);
	size_t dl = strlen(text) + (where ? strlen(where) : 0) + 4;
	node->desc = malloc(dl);
	if (node->desc == NULL)
		goto nomem;
	if (where && *where)
		snprintf(node->desc, dl, "%s (%s)", text, where);
	else
		snprintf(node->desc, dl, "%s", text);
	return 0;
nomem:
	*err = "out of memory";
	return -1;
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
	return a != NULL && a->has_user;
}

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

static enum pol_authz_res
pol_az_eval(const struct pol_az_node *n, const struct sockaddr *client, const char *user,
            const char **rule)
{
	enum pol_authz_res r = POL_AUTHZ_NEUTRAL;
	switch (n->kind) {
	case POL_AZ_IP:
		r = POL_AUTHZ_DENIED;
		for (size_t i = 0; i < n->nnets; i++)
			if (pol_net_match(&n->nets[i], client))
				r = POL_AUTHZ_GRANTED;
		break;
	case POL_AZ_LOCAL:
		r = pol_az_loopback(client) ? POL_AUTHZ_GRANTED : POL_AUTHZ_DENIED;
		break;
	case POL_AZ_GRANTED:
		r = POL_AUTHZ_GRANTED;
		break;
	case POL_AZ_DENIED:
		r = POL_AUTHZ_DENIED;
		break;
	case POL_AZ_VALID_USER:
		r = user ? POL_AUTHZ_GRANTED : POL_AUTHZ_NO_USER;
		break;
	case POL_AZ_USER:
		if (user == NULL) {
			r = POL_AUTHZ_NO_USER;
			break;
		}
		r = POL_AUTHZ_DENIED;
		for (size_t i = 0; i < n->nusers; i++)
			if (strcmp(n->users[i], user) == 0)
				r = POL_AUTHZ_GRANTED;
		break;
	case POL_AZ_ANY:
	case POL_AZ_ALL:
	case POL_AZ_NONE: {
		int any_g = 0, any_d = 0, any_nu = 0;
		const char *rg = NULL, *rd = NULL, *rnu = NULL;
		for (size_t i = 0; i < n->nkids; i++) {
			const char *cr = NULL;
			enum pol_authz_res k = pol_az_eval(n->kids[i], client, user, &cr);
			if (n->kind == POL_AZ_NONE && k == POL_AUTHZ_GRANTED) {
				*rule = cr;
				return POL_AUTHZ_DENIED;
			}
			if (n->kind == POL_AZ_ANY && k == POL_AUTHZ_GRANTED) {
				*rule = cr;
				return POL_AUTHZ_GRANTED;
			}
			if (n->kind == POL_AZ_ALL && k == POL_AUTHZ_DENIED) {
				*rule = cr;
				return POL_AUTHZ_DENIED;
			}
			if (k == POL_AUTHZ_GRANTED && !any_g++)
				rg = cr;
			if (k == POL_AUTHZ_DENIED && !any_d++)
				rd = cr;
			if (k == POL_AUTHZ_NO_USER && !any_nu++)
				rnu = cr;
		}
		if (any_nu) {
			*rule = rnu;
			return POL_AUTHZ_NO_USER;
		}
		if (n->kind == POL_AZ_ANY && any_d) {
			*rule = rd;
			return POL_AUTHZ_DENIED;
		}
		if (n->kind == POL_AZ_ALL && any_g) {
			*rule = rg;
			return POL_AUTHZ_GRANTED;
		}
		*rule = n->kids ? n->kids[0]->desc : NULL;
		return POL_AUTHZ_NEUTRAL;
	}
	}
	*rule = n->desc;
	if (n->negate) {
		if (r == POL_AUTHZ_GRANTED)
			return POL_AUTHZ_DENIED;
		if (r == POL_AUTHZ_DENIED)
			return POL_AUTHZ_NEUTRAL;
	}
	return r;
}

enum pol_authz_res
pol_authz_check(const struct pol_authz *a, const struct sockaddr *client, const char *user,
                const char **rule)
{
	const char *r = NULL;
	enum pol_authz_res res = pol_az_eval(&a->root, client, user, &r);
	*rule = r ? r : "no Require rule granted access";
	return res;
}
