/*
 * policy_bench.c - benchmark of policy/: loads 100,000 generated ProxyBlock domains (a public
 * blocklist's size) plus an office policy (NoProxy, ProxyRemote, ProxyDomain, a few words),
 * and reports the startup cost (builder calls + pol_compile, target < 1 s), the cost of
 * building an address set of the names' resolved addresses, and decisions per second on one
 * core (target >= 1,000,000/s) over a mix of blocked, unblocked, NoProxy and parent requests.
 *
 * The names are pseudo-random but deterministic (fixed seed), so runs compare. The decisions
 * are checked against what each request was built to get (the program fails on a wrong
 * decision); timings are only printed. Usage: policy_bench [NAMES [SECONDS]].
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/pol.h"

#define BENCH_REQS 65536

static uint64_t bench_rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t
bench_rng(void)
{
	uint64_t x = bench_rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	bench_rng_state = x;
	return x * 0x2545f4914f6cdd1dull;
}

static unsigned
bench_pick(unsigned n)
{
	return (unsigned)(bench_rng() % n);
}

static double
bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A realistic registrable domain: 2-4 syllables, sometimes digits or a hyphen, a TLD. */
static void
bench_domain(char *out, size_t len, int tag)
{
	static const char *const syl[] = {
		"ad", "ban", "click", "track", "stat", "pix", "med", "ia", "net", "cloud", "go",
		"fast", "cdn", "serv", "data", "lo", "ka", "mo", "ri", "zen", "tra", "vel", "shop",
		"max", "ly", "on", "ex", "pro", "meta", "sync", "tag", "buzz", "ro", "ta", "qu",
		"ick", "pop", "up", "win", "bet", "game", "news", "feed", "hub", "ya", "ko", "na",
		"mi",
	};
	static const char *const tld[] = {
		"com", "com", "com", "net", "org", "info", "ru", "de", "io", "xyz", "top", "biz",
		"co.uk", "com.br", "fr", "pl", "cn", "online", "site", "club",
	};
	const unsigned nsyl = sizeof(syl) / sizeof(syl[0]), ntld = sizeof(tld) / sizeof(tld[0]);
	size_t o = 0;
	unsigned n = 2 + bench_pick(3);

	for (unsigned i = 0; i < n; i++) {
		o += (size_t)snprintf(out + o, len - o, "%s", syl[bench_pick(nsyl)]);
		if (i + 1 < n && bench_pick(10) == 0)
			o += (size_t)snprintf(out + o, len - o, "-");
	}
	if (bench_pick(5) == 0)
		o += (size_t)snprintf(out + o, len - o, "%u", bench_pick(1000));
	/* tag keeps the listed and the unlisted populations apart. */
	snprintf(out + o, len - o, "%s.%s", tag ? "" : "q", tld[bench_pick(ntld)]);
}

struct bench_req {
	struct pol_req r;
	char host[256];
	char url[320];
	struct sockaddr_storage addrs[2];
	enum pol_action expect;
};

static void
bench_v4(struct sockaddr_storage *ss, uint32_t a)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	s4->sin_family = AF_INET;
	s4->sin_addr.s_addr = htonl(a);
}

static void
bench_v6(struct sockaddr_storage *ss, uint32_t a)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	s6->sin6_family = AF_INET6;
	s6->sin6_addr.s6_addr[0] = 0x2a;
	s6->sin6_addr.s6_addr[1] = 0x02;
	memcpy(&s6->sin6_addr.s6_addr[12], &a, 4);
}

/* Public-looking address for name index i (never in 10/8 or 192.168/16). */
static uint32_t
bench_addr_of(unsigned i)
{
	return 0x2d000000u + i * 7u;   /* 45.0.0.0 and up */
}

int
main(int argc, char **argv)
{
	unsigned nnames = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 100000;
	double secs = argc > 2 ? strtod(argv[2], NULL) : 2.0;
	char **names = calloc(nnames ? nnames : 1, sizeof(*names));
	struct bench_req *reqs = calloc(BENCH_REQS, sizeof(*reqs));
	static char warn[1 << 16];
	char where[64], buf[96];
	const char *err = NULL;
	struct pol *p = NULL;
	double t0, t1, t2;

	if (!names || !reqs || nnames == 0 || secs <= 0) {
		fprintf(stderr, "usage: policy_bench [NAMES [SECONDS]]\n");
		return 2;
	}
	for (unsigned i = 0; i < nnames; i++) {
		static const char *const sub[] = { "ads.", "track.", "cdn.", "pixel.", "metrics.",
		                                   "www." };

		bench_domain(buf, sizeof(buf), 1);
		if (bench_pick(10) < 3) {
			char full[200];

			snprintf(full, sizeof(full), "%s%s", sub[bench_pick(6)], buf);
			names[i] = strdup(full);
		} else {
			names[i] = strdup(buf);
		}
		if (!names[i])
			return 2;
	}

	/* Startup: one builder call per entry, as the config loader does, then compile. */
	t0 = bench_now();
	if (pol_new(&p) != 0)
		return 2;
	for (unsigned i = 0; i < nnames; i++) {
		snprintf(where, sizeof(where), "blocklist.conf:%u", i + 1);
		if (pol_block_add(p, names[i], where, &err) != 0) {
			fprintf(stderr, "ProxyBlock %s: %s\n", names[i], err);
			return 1;
		}
	}
	static const char *const words[] = { "casino", "porn", "warez", "torrent", "crack",
	                                     "keygen", "phish", "malware", "xxx", "betting" };
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		pol_block_add(p, words[i], "gatehouse.conf:20", &err);
	pol_block_add(p, "198.18.0.0/15", "gatehouse.conf:21", &err);
	static const char *const np[] = { ".corp.example", "10.0.0.0/8", "192.168.0.0/16",
	                                  "fd00::/8", "wiki.intranet" };
	for (size_t i = 0; i < sizeof(np) / sizeof(np[0]); i++)
		pol_noproxy_add(p, np[i], "gatehouse.conf:22", &err);
	pol_remote_add(p, "ftp", "http://ftpgw.corp.example:3128", NULL, "gatehouse.conf:23", &err);
	pol_remote_add(p, "*", "http://fw1.corp.example:3128", "user:secret", "gatehouse.conf:24",
	               &err);
	pol_remote_add(p, "*", "http://fw2.corp.example:3128", "user:secret", "gatehouse.conf:25",
	               &err);
	pol_domain_set(p, ".corp.example", "gatehouse.conf:26", &err);
	int nwarn = pol_compile(p, warn, sizeof(warn));
	t1 = bench_now();
	if (nwarn < 0) {
		fprintf(stderr, "pol_compile failed\n");
		return 1;
	}
	size_t nres = 0;
	while (pol_block_name(p, nres))
		nres++;

	/* The background resolver's answers: one or two addresses per listed name. */
	struct pol_addrset_builder *b = NULL;
	struct pol_addrset *blocked = NULL;
	if (pol_addrset_builder_new(&b) != 0)
		return 2;
	for (size_t i = 0; i < nres; i++) {
		struct sockaddr_storage ss[2];

		bench_v4(&ss[0], bench_addr_of((unsigned)i));
		bench_v6(&ss[1], (uint32_t)i);
		if (pol_addrset_builder_set(b, pol_block_name(p, i), ss, 1 + i % 2) != 0)
			return 2;
	}
	t2 = bench_now();
	blocked = pol_addrset_build(b);
	double t3 = bench_now();
	if (!blocked)
		return 2;
	/* Every name has its first answer: the steady state the daemon reaches (pol.h). */
	pol_block_ready_mark(p);

	/* The request mix. */
	unsigned mix[6] = { 0 };
	for (unsigned i = 0; i < BENCH_REQS; i++) {
		struct bench_req *q = &reqs[i];
		unsigned kind = bench_pick(100);

		q->r.method = "GET";
		q->r.scheme = "http";
		q->r.port = 80;
		if (kind < 25) {            /* a listed name or a name below it */
			unsigned n = bench_pick(nnames);

			snprintf(q->host, sizeof(q->host), "%s%s", bench_pick(2) ? "www." : "",
			         names[n]);
			q->expect = POL_BLOCK;
			mix[0]++;
		} else if (kind < 50) {     /* unlisted, resolved: through the parents */
			bench_domain(buf, sizeof(buf), 0);
			snprintf(q->host, sizeof(q->host), "www.%s", buf);
			bench_v4(&q->addrs[0], 0x5db8d822u + i);
			q->r.resolved = 1;
			q->r.naddrs = 1;
			q->expect = POL_PARENTS;
			mix[1]++;
		} else if (kind < 65) {     /* unlisted, not resolved yet: need_addrs */
			bench_domain(buf, sizeof(buf), 0);
			snprintf(q->host, sizeof(q->host), "%s", buf);
			q->expect = POL_PARENTS;
			mix[2]++;
		} else if (kind < 85) {     /* NoProxy domain */
			snprintf(q->host, sizeof(q->host), "app%u.corp.example", bench_pick(500));
			q->expect = POL_DIRECT;
			mix[3]++;
		} else if (kind < 95) {     /* literals: intranet, or a blocked name's address */
			if (bench_pick(2)) {
				snprintf(q->host, sizeof(q->host), "10.%u.%u.%u", bench_pick(256),
				         bench_pick(256), 1 + bench_pick(254));
				q->expect = POL_DIRECT;
			} else {
				uint32_t a = bench_addr_of(bench_pick((unsigned)nres));

				snprintf(q->host, sizeof(q->host), "%u.%u.%u.%u", a >> 24,
				         (a >> 16) & 255, (a >> 8) & 255, a & 255);
				q->expect = POL_BLOCK;
			}
			mix[4]++;
		} else {                    /* CONNECT to an unlisted name */
			bench_domain(buf, sizeof(buf), 0);
			snprintf(q->host, sizeof(q->host), "secure.%s", buf);
			q->r.method = "CONNECT";
			q->r.scheme = NULL;
			q->r.port = 443;
			bench_v4(&q->addrs[0], 0x5db8d822u + i);
			q->r.resolved = 1;
			q->r.naddrs = 1;
			q->expect = POL_PARENTS;
			mix[5]++;
		}
		snprintf(q->url, sizeof(q->url), "http://%s/index.html?q=%u", q->host, i);
		q->r.host = q->host;
		q->r.url = q->url;
		q->r.addrs = q->addrs;
	}

	/* Correctness of the mix first (also warms the caches). */
	unsigned wrong = 0;
	for (unsigned i = 0; i < BENCH_REQS; i++) {
		struct pol_decision d;
		char loc[512];

		pol_decide(p, &reqs[i].r, blocked, NULL, loc, sizeof(loc), &d);
		if (d.action != reqs[i].expect) {
			if (wrong++ < 5)
				fprintf(stderr, "wrong decision for %s %s: %d (%s), expected %d\n",
				        reqs[i].r.method, reqs[i].host, d.action, d.rule,
				        reqs[i].expect);
		}
	}

	/* Decisions per second on this thread. */
	uint64_t done = 0;
	unsigned sink = 0;
	double start = bench_now(), now = start;
	for (unsigned round = 0; round < 100000 && now - start < secs; round++) {
		for (unsigned i = 0; i < BENCH_REQS; i++) {
			struct pol_decision d;
			char loc[512];

			sink += (unsigned)pol_decide(p, &reqs[i].r, blocked, NULL, loc, sizeof(loc),
			                             &d);
		}
		done += BENCH_REQS;
		now = bench_now();
	}
	double rate = (double)done / (now - start);

	printf("policy_bench: %u ProxyBlock names (%zu to resolve), %d compile warnings\n", nnames,
	       nres, nwarn);
	printf("  startup (builder calls + pol_compile): %.3f s   [target < 1 s]\n", t1 - t0);
	printf("  address set of %zu addresses: builder %.3f s, pol_addrset_build %.3f s\n",
	       pol_addrset_count(blocked), t2 - t1, t3 - t2);
	printf("  request mix: %u blocked names, %u parent (resolved), %u parent (unresolved),\n"
	       "               %u NoProxy, %u literals, %u CONNECT\n", mix[0], mix[1], mix[2],
	       mix[3], mix[4], mix[5]);
	printf("  decisions: %.0f/s on one core (%.0f ns each)   [target >= 1,000,000/s]\n", rate,
	       1e9 / rate);
	printf("  wrong decisions: %u (checksum %u)\n", wrong, sink);

	pol_addrset_free(&blocked);
	pol_addrset_builder_free(&b);
	pol_free(&p);
	for (unsigned i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	free(reqs);
	return wrong ? 1 : 0;
}
