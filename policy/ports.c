/*
 * ports.c - port lists for AllowCONNECT: "443", "8000-8100", compiled into sorted, merged,
 * disjoint ranges searched by bisection.
 *
 * Invariant: r[i].lo <= r[i].hi, and r[i].hi + 1 < r[i+1].lo (ranges neither overlap nor
 * touch). Ports are 1..65535; "*" and port 0 are refused. Built by the config loader; read by
 * the request path from any thread.
 */
#include <stdlib.h>
#include <string.h>

#include "policy/pol.h"

struct pol_ports_range {
	unsigned lo, hi;
};

struct pol_ports {
	size_t n;
	struct pol_ports_range r[];
};

/* A port number 1..65535: decimal digits only, no sign, at most 5 digits. Returns it or -1. */
static long
pol_ports_number(const char *s, size_t len)
{
	long v = 0;

	if (len == 0 || len > 5)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return (v >= 1 && v <= 65535) ? v : -1;
}

static int
pol_ports_cmp(const void *a, const void *b)
{
	const struct pol_ports_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo ? 1 : 0;
}

int
pol_ports_new(struct pol_ports **pp, char *const *args, size_t nargs, const char **err)
{
	struct pol_ports *p;
	size_t n = 0;

	*pp = NULL;
	p = malloc(sizeof(*p) + (nargs ? nargs : 1) * sizeof(p->r[0]));
	if (!p) {
		*err = NULL;
		return -1;
	}
	for (size_t i = 0; i < nargs; i++) {
		const char *a = args[i], *dash = strchr(a, '-');
		long lo, hi;

		if (dash) {
			lo = pol_ports_number(a, (size_t)(dash - a));
			hi = pol_ports_number(dash + 1, strlen(dash + 1));
		} else {
			lo = hi = pol_ports_number(a, strlen(a));
		}
		if (lo < 0 || hi < 0 || lo > hi) {
			*err = a;
			free(p);
			return -1;
		}
		p->r[i].lo = (unsigned)lo;
		p->r[i].hi = (unsigned)hi;
	}
	qsort(p->r, nargs, sizeof(p->r[0]), pol_ports_cmp);
	for (size_t i = 0; i < nargs; i++) {
		if (n > 0 && p->r[i].lo <= p->r[n - 1].hi + 1) {
			if (p->r[i].hi > p->r[n - 1].hi)
				p->r[n - 1].hi = p->r[i].hi;
		} else {
			p->r[n++] = p->r[i];
		}
	}
	p->n = n;
	*pp = p;
	return 0;
}

void
pol_ports_free(struct pol_ports **pp)
{
	if (!pp || !*pp)
		return;
	free(*pp);
	*pp = NULL;
}

int
pol_ports_has(const struct pol_ports *p, unsigned port)
{
	size_t lo = 0, hi;

	if (!p)
		return 0;
	hi = p->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (port < p->r[mid].lo)
			hi = mid;
		else if (port > p->r[mid].hi)
			lo = mid + 1;
		else
			return 1;
	}
	return 0;
}
