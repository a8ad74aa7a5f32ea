/*
 * pauth.c - proxy authentication (pauth.h): Basic credentials checked against an htpasswd
 * file (webui/auth.h) or a Squid Basic helper (helper.h), the group file, the process-wide
 * result cache, the failed-login limiter, the 407 challenge. Negotiate's exchange is
 * pauth_neg.c's; this file only dispatches to it.
 *
 * Invariants: no password is ever stored, logged or put in a page: the result cache and a
 * connection's memory of its last credential hold an HMAC-SHA256 (a random key made at
 * start) of the settings' id and the whole field; decoded passwords live on the stack and are
 * wiped. The cache mutex is held for a probe or an insert, never while hashing a password.
 * Passwords are hashed (bcrypt: milliseconds) on one verifier thread, never on a worker's
 * loop: the worker gets PAUTH_WAIT and its connection is woken through the loop's ev_async
 * (pauth_wk_poll), as for an external helper's answer.
 * Callers: daemon/proxy.c (conn_route), main.c (pauth_new), worker.c (pauth_wk_new).
 */
#include "daemon/pauth.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/ev.h"
#include "daemon/log.h"
#include "webui/auth.h"

/* ---- AuthGroupFile ---- */

#define PAUTH_GROUPS_MAX_LINE 65536  /* Apache's groups can be long lists */
#define PAUTH_GROUPS_MAX 10000

struct pauth_group {
	char *name;
	char **users;
	size_t n, cap;
};

struct pauth_groups {
	struct pauth_group *g;     /* file order */
	size_t n;
};

void
pauth_groups_free(struct pauth_groups **gp)
{
	struct pauth_groups *g;

	if (!gp || !*gp)
		return;
	g = *gp;
	*gp = NULL;
	for (size_t i = 0; i < g->n; i++) {
		for (size_t j = 0; j < g->g[i].n; j++)
			free(g->g[i].users[j]);
		free(g->g[i].users);
		free(g->g[i].name);
	}
	free(g->g);
	free(g);
}

static struct pauth_group *
pauth_group_get(struct pauth_groups *g, const char *name, size_t len)
{
	struct pauth_group *ng;

	for (size_t i = 0; i < g->n; i++)
		if (strlen(g->g[i].name) == len && memcmp(g->g[i].name, name, len) == 0)
			return &g->g[i];
	ng = realloc(g->g, (g->n + 1) * sizeof(*ng));
	if (!ng)
		return NULL;
	g->g = ng;
	ng = &g->g[g->n];
	memset(ng, 0, sizeof(*ng));
	ng->name = strndup(name, len);
	if (!ng->name)
		return NULL;
	g->n++;
	return ng;
}

static int
pauth_group_add(struct pauth_group *grp, const char *user, size_t len)
{
	for (size_t i = 0; i < grp->n; i++)
		if (strlen(grp->users[i]) == len && memcmp(grp->users[i], user, len) == 0)
			return 0;
	if (grp->n == grp->cap) {
		size_t cap = grp->cap ? grp->cap * 2 : 8;
		char **u = realloc(grp->users, cap * sizeof(*u));

		if (!u)
			return -1;
		grp->users = u;
		grp->cap = cap;
	}
	grp->users[grp->n] = strndup(user, len);
	if (!grp->users[grp->n])
		return -1;
	grp->n++;
	return 0;
}

/* One line of the group file (NUL-terminated, no newline). 0, or -1 with err. */
static int
pauth_groups_line(struct pauth_groups *g, char *line, const char *path, unsigned lno,
                  char *err, size_t errlen)
{
	char *p = line, *colon, *end;
	struct pauth_group *grp;
	size_t nlen;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0' || *p == '#')
		return 0;
	colon = strchr(p, ':');
	if (!colon) {
		snprintf(err, errlen, "%s:%u: expected \"GROUP: USER USER ...\" (no ':')", path, lno);
		return -1;
	}
	end = colon;
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	nlen = (size_t)(end - p);
	if (nlen == 0) {
		snprintf(err, errlen, "%s:%u: empty group name before ':'", path, lno);
		return -1;
	}
	for (size_t i = 0; i < nlen; i++) {
		if ((unsigned char)p[i] < 0x21 || p[i] == 0x7f) {
			snprintf(err, errlen, "%s:%u: a group name has no blanks or control characters",
			         path, lno);
			return -1;
		}
	}
	grp = pauth_group_get(g, p, nlen);
	if (!grp || g->n > PAUTH_GROUPS_MAX) {
		snprintf(err, errlen, "%s:%u: %s", path, lno,
		         grp ? "more than 10000 groups" : "out of memory");
		return -1;
	}
	p = colon + 1;
	for (;;) {
		size_t n;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		n = strcspn(p, " \t");
		for (size_t i = 0; i < n; i++) {
			if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f) {
				snprintf(err, errlen, "%s:%u: a control character in a user name", path,
				         lno);
				return -1;
			}
		}
		if (n > AUTH_USER_MAX) {
			snprintf(err, errlen, "%s:%u: a user name longer than %d bytes", path, lno,
			         AUTH_USER_MAX);
			return -1;
		}
		if (pauth_group_add(grp, p, n) != 0) {
			snprintf(err, errlen, "%s:%u: out of memory", path, lno);
			return -1;
		}
		p += n;
	}
	return 0;
}

int
pauth_groups_load(const char *path, struct pauth_groups **out, char *err, size_t errlen)
{
	FILE *f;
	struct pauth_groups *g;
	char *line;
	unsigned lno = 0;
	int rc = 0;

	*out = NULL;
	f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	g = calloc(1, sizeof(*g));
	line = malloc(PAUTH_GROUPS_MAX_LINE + 2);
	if (!g || !line) {
		snprintf(err, errlen, "%s: out of memory", path);
		rc = -1;
		goto out;
	}
	while (fgets(line, PAUTH_GROUPS_MAX_LINE + 2, f)) {
		size_t n = strlen(line);

		lno++;
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		else if (!feof(f)) {
			snprintf(err, errlen, "%s:%u: line longer than %d bytes", path, lno,
			         PAUTH_GROUPS_MAX_LINE);
			rc = -1;
			goto out;
		}
		if (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		if (memchr(line, '\0', n) != NULL) {
			snprintf(err, errlen, "%s:%u: a NUL byte", path, lno);
			rc = -1;
			goto out;
		}
		if (pauth_groups_line(g, line, path, lno, err, errlen) != 0) {
			rc = -1;
			goto out;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
		rc = -1;
	}
out:
	free(line);
	fclose(f);
	if (rc != 0)
		pauth_groups_free(&g);
	*out = g;
	return rc;
}

size_t
pauth_groups_of(const struct pauth_groups *g, const char *user, const char **out, size_t cap)
{
	size_t k = 0;

	if (!g || !user)
		return 0;
	for (size_t i = 0; i < g->n && k < cap; i++) {
		for (size_t j = 0; j < g->g[i].n; j++) {
			if (strcmp(g->g[i].users[j], user) == 0) {
				out[k++] = g->g[i].name;
				break;
			}
		}
	}
	return k;
}

/* ---- settings ---- */

void
pauth_cfg_free(struct pauth_cfg *pc)
{
	if (!pc)
		return;
	free(pc->where);
	free(pc->realm);
	free(pc->user_file);
	auth_htpasswd_free(&pc->users);
	free(pc->group_file);
	pauth_groups_free(&pc->groups);
	free((char *)pc->external.cmd);
	free((char *)pc->negotiate_helper.cmd);
	memset(pc, 0, sizeof(*pc));
}

/* ---- the result cache ---- */

/* Direct-mapped with a short probe window: bounded memory (PAUTH_CACHE_SLOTS entries of a
 * fixed size, no allocation under the lock), an expired or the oldest entry of the window is
 * replaced. The user and the groups are copied in (NUL-separated in grp). */
#define PAUTH_CACHE_SLOTS 2048
#define PAUTH_CACHE_PROBE 4
#define PAUTH_CACHE_GRP 768

struct pauth_cent {
	uint8_t mac[32];
	int64_t expires_ms;        /* 0: empty */
	int64_t made_ms;
	int ok;
	char why[48];              /* a negative entry's reason, for the log */
	char user[AUTH_USER_MAX + 1];
	char grp[PAUTH_CACHE_GRP];
	uint16_t ngroups;
};

enum pauth_job_state { PJ_QUEUED, PJ_RUNNING, PJ_DONE, PJ_DELIVERED };

struct pauth_job {
	struct pauth_job *next;
	struct pauth *pa;
	struct pauth_wk *wk;
	struct pauth_conn *pc;
	const struct auth_htpasswd *users; /* the request's snapshot holds it: alive while the
	                                    * connection is (pauth_conn_fini waits for a running
	                                    * job) */
	enum pauth_job_state state;
	int cancelled;
	int ok, known;
	char user[AUTH_USER_MAX + 1];
	char pass[AUTH_PASS_MAX + 1];
};

static void pauth_job_free(struct pauth_job *j);
static void *pauth_verifier_main(void *arg);
static void pauth_mac_init(struct pauth *pa);

struct pauth {
	pthread_mutex_t mu;        /* the cache table */
	struct pauth_cent *t;
	uint8_t key[32];           /* HMAC key, random */
	SHA256_CTX mac_in, mac_out; /* HMAC-SHA256's inner and outer states with the key
	                             * absorbed: a MAC per request costs two short hashes */
	struct auth_limit *limit;
	struct auth_limit *old[8];    /* replaced by pauth_set_limit: freed at pauth_free, as a
	                               * worker may still be inside a call on one */
	unsigned nold;
	unsigned burst, refill_s;     /* the limit in force */
	/* The verifier thread: htpasswd checks off the workers' loops. mu guards the queue, the
	 * workers' done lists and every job's state; cv wakes the thread and a pauth_conn_fini
	 * waiting for a running job. */
	pthread_t verifier;
	int verifier_up, verifier_stop;
	pthread_cond_t cv;
	struct pauth_job *todo, **todo_tail;
	unsigned queued;
	struct pauth_stats st;     /* atomically updated (__atomic builtins) */
};

#define PAUTH_COUNT(pa, f) __atomic_fetch_add(&(pa)->st.f, 1, __ATOMIC_RELAXED)

int
pauth_new(struct pauth **out, unsigned fail_burst, unsigned fail_refill_s)
{
	struct pauth *pa = calloc(1, sizeof(*pa));

	*out = NULL;
	if (!pa)
		return -1;
	pa->t = calloc(PAUTH_CACHE_SLOTS, sizeof(*pa->t));
	if (!pa->t || RAND_bytes(pa->key, sizeof(pa->key)) != 1 ||
	    auth_limit_new(&pa->limit, AUTH_LIMIT_SLOTS, fail_burst ? fail_burst : AUTH_LIMIT_BURST,
	                   fail_refill_s ? fail_refill_s : AUTH_LIMIT_REFILL) != 0) {
		free(pa->t);
		free(pa);
		return -1;
	}
	pauth_mac_init(pa);
	pthread_mutex_init(&pa->mu, NULL);
	pthread_cond_init(&pa->cv, NULL);
	pa->todo_tail = &pa->todo;
	/* Without the thread (thread limits), verification is inline: slower, still correct. */
	pa->verifier_up = pthread_create(&pa->verifier, NULL, pauth_verifier_main, pa) == 0;
	if (!pa->verifier_up)
		log_warn("proxy authentication: no verifier thread: passwords are checked on the "
		         "workers' loops");
	pa->burst = fail_burst ? fail_burst : AUTH_LIMIT_BURST;
	pa->refill_s = fail_refill_s ? fail_refill_s : AUTH_LIMIT_REFILL;
	*out = pa;
	return 0;
}

void
pauth_free(struct pauth **pap)
{
	struct pauth *pa;

	if (!pap || !*pap)
		return;
	pa = *pap;
	*pap = NULL;
	if (pa->verifier_up) {
		pthread_mutex_lock(&pa->mu);
		pa->verifier_stop = 1;
		pthread_cond_broadcast(&pa->cv);
		pthread_mutex_unlock(&pa->mu);
		pthread_join(pa->verifier, NULL);
	}
	while (pa->todo) { /* none: every connection is gone before pauth_free */
		struct pauth_job *j = pa->todo;
		pa->todo = j->next;
		pauth_job_free(j);
	}
	pthread_cond_destroy(&pa->cv);
	auth_limit_free(&pa->limit);
	for (unsigned i = 0; i < pa->nold; i++)
		auth_limit_free(&pa->old[i]);
	OPENSSL_cleanse(pa->key, sizeof(pa->key));
	free(pa->t);
	pthread_mutex_destroy(&pa->mu);
	free(pa);
}

void
pauth_set_limit(struct pauth *pa, unsigned fail_burst, unsigned fail_refill_s)
{
	struct auth_limit *l = NULL;

	/* auth_limit has no setter: a new table (the failures counted so far are forgotten,
	 * which a reload that changes the limit may do). Unchanged settings keep the table. */
	if ((fail_burst ? fail_burst : AUTH_LIMIT_BURST) == pa->burst &&
	    (fail_refill_s ? fail_refill_s : AUTH_LIMIT_REFILL) == pa->refill_s)
		return;
	if (pa->nold == sizeof(pa->old) / sizeof(pa->old[0]))
		return; /* eight changes in one run: keep the last limit rather than leak */
	if (auth_limit_new(&l, AUTH_LIMIT_SLOTS, fail_burst ? fail_burst : AUTH_LIMIT_BURST,
	                   fail_refill_s ? fail_refill_s : AUTH_LIMIT_REFILL) != 0)
		return;
	pthread_mutex_lock(&pa->mu);
	struct auth_limit *old = pa->limit;
	pa->limit = l;
	pa->old[pa->nold++] = old;
	__atomic_store_n(&pa->burst, fail_burst ? fail_burst : AUTH_LIMIT_BURST, __ATOMIC_RELAXED);
	pa->refill_s = fail_refill_s ? fail_refill_s : AUTH_LIMIT_REFILL;
	pthread_mutex_unlock(&pa->mu);
}

void
pauth_get_stats(const struct pauth *pa, struct pauth_stats *out)
{
	out->ok = __atomic_load_n(&pa->st.ok, __ATOMIC_RELAXED);
	out->failed = __atomic_load_n(&pa->st.failed, __ATOMIC_RELAXED);
	out->challenged = __atomic_load_n(&pa->st.challenged, __ATOMIC_RELAXED);
	out->limited = __atomic_load_n(&pa->st.limited, __ATOMIC_RELAXED);
	out->unavailable = __atomic_load_n(&pa->st.unavailable, __ATOMIC_RELAXED);
	out->cache_hits = __atomic_load_n(&pa->st.cache_hits, __ATOMIC_RELAXED);
	out->cache_misses = __atomic_load_n(&pa->st.cache_misses, __ATOMIC_RELAXED);
	out->conn_hits = __atomic_load_n(&pa->st.conn_hits, __ATOMIC_RELAXED);
	out->verifications = __atomic_load_n(&pa->st.verifications, __ATOMIC_RELAXED);
}

static struct auth_limit *
pauth_limit(struct pauth *pa)
{
	struct auth_limit *l;

	pthread_mutex_lock(&pa->mu);
	l = pa->limit;
	pthread_mutex_unlock(&pa->mu);
	return l;
}

/* HMAC-SHA256 (RFC 2104) of the settings' id and the field under the process key, from the
 * states pauth_mac_init prepared (the one-shot HMAC API would set the key up every time, a
 * cost paid on every proxied request). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static void
pauth_mac_init(struct pauth *pa)
{
	uint8_t pad[64];

	memset(pad, 0x36, sizeof(pad));
	for (size_t i = 0; i < sizeof(pa->key); i++)
		pad[i] ^= pa->key[i];
	SHA256_Init(&pa->mac_in);
	SHA256_Update(&pa->mac_in, pad, sizeof(pad));
	memset(pad, 0x5c, sizeof(pad));
	for (size_t i = 0; i < sizeof(pa->key); i++)
		pad[i] ^= pa->key[i];
	SHA256_Init(&pa->mac_out);
	SHA256_Update(&pa->mac_out, pad, sizeof(pad));
	OPENSSL_cleanse(pad, sizeof(pad));
}

static void
pauth_mac(const struct pauth *pa, const struct pauth_cfg *cfg, const char *field, size_t len,
          uint8_t mac[32])
{
	SHA256_CTX c = pa->mac_in;
	uint8_t inner[32];

	SHA256_Update(&c, cfg->id, sizeof(cfg->id));
	SHA256_Update(&c, field, len);
	SHA256_Final(inner, &c);
	c = pa->mac_out;
	SHA256_Update(&c, inner, sizeof(inner));
	SHA256_Final(mac, &c);
	OPENSSL_cleanse(&c, sizeof(c));
}
#pragma GCC diagnostic pop

/* A positive or negative result for mac. 1 with the entry copied to *out, 0 on a miss. */
static int
pauth_cache_get(struct pauth *pa, const uint8_t mac[32], int64_t now, struct pauth_cent *out)
{
	uint32_t h;
	int hit = 0;

	memcpy(&h, mac, sizeof(h));
	pthread_mutex_lock(&pa->mu);
	for (unsigned i = 0; i < PAUTH_CACHE_PROBE; i++) {
		struct pauth_cent *e = &pa->t[(h + i) % PAUTH_CACHE_SLOTS];

		if (e->expires_ms > now && CRYPTO_memcmp(e->mac, mac, 32) == 0) {
			*out = *e;
			hit = 1;
			break;
		}
	}
	pthread_mutex_unlock(&pa->mu);
	return hit;
}

static void
pauth_cache_put(struct pauth *pa, const struct pauth_cent *ent)
{
	uint32_t h;
	struct pauth_cent *victim = NULL;

	memcpy(&h, ent->mac, sizeof(h));
	pthread_mutex_lock(&pa->mu);
	for (unsigned i = 0; i < PAUTH_CACHE_PROBE; i++) {
		struct pauth_cent *e = &pa->t[(h + i) % PAUTH_CACHE_SLOTS];

		if (memcmp(e->mac, ent->mac, 32) == 0 || e->expires_ms <= ent->made_ms) {
			victim = e;
			break;
		}
		if (!victim || e->made_ms < victim->made_ms)
			victim = e;
	}
	*victim = *ent;
	pthread_mutex_unlock(&pa->mu);
}

/* ---- a worker's part ---- */

struct pauth_wk {
	struct hpool_set *set;
	unsigned nworkers;
	struct ev_loop *loop;
	struct pauth *pa;          /* set by the first job (there is one struct pauth) */
	struct pauth_job *done;    /* finished jobs to deliver (pa->mu) */
};

/* ---- the verifier thread ---- */

#define PAUTH_QUEUE_MAX 1024  /* verifications waiting; more: 503 (a flood of new logins) */

static void
pauth_job_free(struct pauth_job *j)
{
	OPENSSL_cleanse(j->pass, sizeof(j->pass));
	free(j);
}

static void *
pauth_verifier_main(void *arg)
{
	struct pauth *pa = arg;

	pthread_mutex_lock(&pa->mu);
	for (;;) {
		while (!pa->todo && !pa->verifier_stop)
			pthread_cond_wait(&pa->cv, &pa->mu);
		if (pa->verifier_stop)
			break;
		struct pauth_job *j = pa->todo;
		pa->todo = j->next;
		if (!pa->todo)
			pa->todo_tail = &pa->todo;
		pa->queued--;
		j->next = NULL;
		j->state = PJ_RUNNING;
		pthread_mutex_unlock(&pa->mu);
		j->ok = auth_htpasswd_check(j->users, j->user, j->pass) == 1;
		j->known = j->ok || auth_htpasswd_has(j->users, j->user);
		OPENSSL_cleanse(j->pass, sizeof(j->pass));
		pthread_mutex_lock(&pa->mu);
		j->state = PJ_DONE;
		if (j->cancelled) {
			pthread_cond_broadcast(&pa->cv); /* the waiting pauth_conn_fini frees it */
			continue;
		}
		j->next = j->wk->done;
		j->wk->done = j;
		ev_async_send(j->wk->loop);
	}
	pthread_mutex_unlock(&pa->mu);
	return NULL;
}

void
pauth_wk_poll(struct pauth_wk *wk)
{
	struct pauth_job *list, *j;

	if (!wk || !wk->pa)
		return;
	pthread_mutex_lock(&wk->pa->mu);
	list = wk->done;
	wk->done = NULL;
	for (j = list; j; j = j->next)
		j->state = PJ_DELIVERED;
	pthread_mutex_unlock(&wk->pa->mu);
	while (list) {
		j = list;
		list = j->next;
		j->next = NULL;
		/* pauth_identify reads the result when the connection routes again */
		if (j->pc->wake)
			j->pc->wake(j->pc->wake_arg);
	}
}

/* pauth_conn_fini: the job goes with the connection (waiting for it if the thread is hashing
 * for it: the htpasswd it reads belongs to the connection's snapshot). */
static void
pauth_job_cancel(struct pauth_job *j)
{
	struct pauth *pa = j->pa;

	pthread_mutex_lock(&pa->mu);
	if (j->state == PJ_QUEUED) {
		struct pauth_job **pp = &pa->todo;

		while (*pp && *pp != j)
			pp = &(*pp)->next;
		if (*pp) {
			*pp = j->next;
			if (pa->todo_tail == &j->next)
				pa->todo_tail = pp;
			pa->queued--;
		}
	} else if (j->state == PJ_RUNNING) {
		j->cancelled = 1;
		while (j->state == PJ_RUNNING)
			pthread_cond_wait(&pa->cv, &pa->mu);
	} else if (j->state == PJ_DONE) {
		struct pauth_job **pp = &j->wk->done;

		while (*pp && *pp != j)
			pp = &(*pp)->next;
		if (*pp)
			*pp = j->next;
	}
	pthread_mutex_unlock(&pa->mu);
	pauth_job_free(j);
}

/* Queue a verification for pc. 0, or -1 when the queue is full or memory is short. */
static int
pauth_job_submit(struct pauth *pa, struct pauth_wk *wk, struct pauth_conn *pc,
                 const struct auth_htpasswd *users, const char *user, const char *pass)
{
	struct pauth_job *j;

	if (!pa->verifier_up || !wk || !wk->loop || pa->queued >= PAUTH_QUEUE_MAX)
		return -1;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -1;
	j->pa = pa;
	j->wk = wk;
	j->pc = pc;
	j->users = users;
	snprintf(j->user, sizeof(j->user), "%s", user);
	snprintf(j->pass, sizeof(j->pass), "%s", pass);
	pthread_mutex_lock(&pa->mu);
	wk->pa = pa;
	j->state = PJ_QUEUED;
	*pa->todo_tail = j;
	pa->todo_tail = &j->next;
	pa->queued++;
	pthread_cond_signal(&pa->cv);
	pthread_mutex_unlock(&pa->mu);
	pc->job = j;
	return 0;
}

int
pauth_wk_new(struct ev_loop *loop, unsigned nworkers, struct pauth_wk **out)
{
	struct pauth_wk *wk = calloc(1, sizeof(*wk));

	*out = NULL;
	if (!wk)
		return -1;
	wk->nworkers = nworkers ? nworkers : 1;
	wk->loop = loop;
	if (hpool_set_new(loop, &wk->set) != 0) {
		free(wk);
		return -1;
	}
	*out = wk;
	return 0;
}

void
pauth_wk_start(struct pauth_wk *wk, struct pauth_cfg *const *auths, size_t nauths)
{
	const struct hpool_cfg *hc[64];
	size_t n = 0;

	if (!wk || !wk->set)
		return;
	/* Two helpers per section at most; more sections than fit is a config nobody writes:
	 * those start at their first login, as before. */
	for (size_t i = 0; i < nauths && n + 2 <= sizeof(hc) / sizeof(hc[0]); i++) {
		const struct pauth_cfg *pc = auths[i];

		if (pc->basic && pc->provider == PAUTH_PROV_EXTERNAL && pc->external.cmd)
			hc[n++] = &pc->external;
		if (pc->negotiate && pc->negotiate_helper.cmd)
			hc[n++] = &pc->negotiate_helper;
	}
	(void)hpool_set_start(wk->set, hc, n);
}

void
pauth_wk_free(struct pauth_wk **wkp)
{
	struct pauth_wk *wk;

	if (!wkp || !*wkp)
		return;
	wk = *wkp;
	*wkp = NULL;
	hpool_set_free(&wk->set);
	free(wk);
}

void
pauth_wk_helper_stats(const struct pauth_wk *wk, struct hpool_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (wk && wk->set)
		hpool_set_stats(wk->set, out);
}

/* ---- per connection ---- */

void
pauth_conn_init(struct pauth_conn *pc)
{
	memset(pc, 0, sizeof(*pc));
	pc->neg_child = HPOOL_ANY;
}

void
pauth_conn_forget_user(struct pauth_conn *pc)
{
	free(pc->user);
	pc->user = NULL;
	for (size_t i = 0; i < pc->ngroups; i++) {
		free(pc->groups[i]);
		pc->groups[i] = NULL;
	}
	pc->ngroups = 0;
	pc->cred_expires_ms = 0;
	pc->cred_cfg = NULL;
	if (pc->neg_accepted) {
		OPENSSL_cleanse(pc->neg_accepted, pc->neg_accepted_len);
		free(pc->neg_accepted);
	}
	pc->neg_accepted = NULL;
	pc->neg_accepted_len = 0;
}

void
pauth_count_conn_hit(struct pauth *pa)
{
	PAUTH_COUNT(pa, conn_hits);
}

static void
pauth_conn_forget(struct pauth_conn *pc)
{
	pauth_conn_forget_user(pc);
	if (pc->cred) {
		OPENSSL_cleanse(pc->cred, pc->cred_len);
		free(pc->cred);
		pc->cred = NULL;
	}
	pc->cred_len = 0;
}

void
pauth_conn_fini(struct pauth_conn *pc)
{
	if (pc->pending)
		hpool_cancel(pc->pending);
	pc->pending = NULL;
	if (pc->job)
		pauth_job_cancel(pc->job);
	pc->job = NULL;
	pauth_conn_forget(pc);
	free(pc->answer);
	free(pc->neg_token);
	memset(pc, 0, sizeof(*pc));
	pc->neg_child = HPOOL_ANY;
}

/* The connection now holds user and groups (copied), remembered for its next request. */
static int
pauth_conn_set(struct pauth_conn *pc, const char *user, const char *const *groups, size_t ng)
{
	pauth_conn_forget(pc);
	pc->user = strdup(user);
	if (!pc->user)
		return -1;
	for (size_t i = 0; i < ng && i < PAUTH_MAX_GROUPS; i++) {
		pc->groups[i] = strdup(groups[i]);
		if (!pc->groups[i])
			return -1;
		pc->ngroups = i + 1;
	}
	return 0;
}

void
pauth_who_fill(const struct pauth_conn *pc, struct who *who)
{
	who->user = pc->user;
	who->groups = pc->ngroups ? (const char *const *)pc->groups : NULL;
	who->ngroups = pc->ngroups;
}

/* ---- identify ---- */

int
pauth_conn_under(const struct pauth_conn *pc, const struct pauth_cfg *cfg)
{
	return cfg != NULL && pc->cred_cfg == cfg && memcmp(pc->cred_id, cfg->id, 16) == 0;
}

/* The connection's last accepted credential, repeated (pauth_identify_one checks it too). A
 * plain memcmp: the stored value is what this same connection sent and had accepted, so its
 * timing tells the sender nothing it does not know. */
static int
pauth_conn_same(const struct pauth_conn *pc, const struct pauth_cfg *cfg, const char *f,
                size_t flen, int64_t now_ms)
{
	return !pc->pending_done && pc->pending == NULL && pc->job == NULL && pc->cred &&
	       pc->cred_len == flen && f && pc->cred_expires_ms > now_ms &&
	       (cfg == NULL || pauth_conn_under(pc, cfg)) && pc->user &&
	       memcmp(pc->cred, f, flen) == 0;
}

int
pauth_conn_repeat(struct pauth *pa, struct pauth_conn *pc, const char *field, size_t len,
                  int64_t now_ms, struct who *who)
{
	if (!pauth_conn_same(pc, NULL, field, len, now_ms))
		return 0;
	PAUTH_COUNT(pa, ok);          /* an authenticated request, as pauth_identify counts it */
	PAUTH_COUNT(pa, conn_hits);
	pauth_who_fill(pc, who);
	return 1;
}

/* A user name for a log line: quotes and backslashes escaped, clipped (hostile bytes). */
static void
pauth_log_name(const char *user, char *out, size_t cap)
{
	size_t k = 0;

	for (const char *p = user; *p && k + 5 < cap && p - user < 64; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch == '"' || ch == '\\') {
			out[k++] = '\\';
			out[k++] = (char)ch;
		} else if (ch < 0x20 || ch == 0x7f) {
			k += (size_t)snprintf(out + k, cap - k, "\\x%02x", ch);
		} else {
			out[k++] = (char)ch;
		}
	}
	out[k] = '\0';
}

/* A failed attempt: counted by the limiter, logged for fail2ban, the 407 page's words. */
enum pauth_res
pauth_fail(struct pauth *pa, struct pauth_req *r, const char *user, const char *why)
{
	struct auth_limit *l = pauth_limit(pa);
	int64_t now_s = r->now_ms / 1000;
	char name[300];

	PAUTH_COUNT(pa, failed);
	auth_limit_fail(l, r->addr_text, now_s);
	pauth_log_name(user ? user : "", name, sizeof(name));
	log_notice("proxy authentication failed for user \"%s\" from %s: %s", name, r->addr_text,
	           why);
	if (auth_limit_blocked(l, r->addr_text, now_s)) {
		unsigned w = auth_limit_wait(l, r->addr_text, now_s);

		/* The words of pauth.h: the packaged fail2ban filter matches them. */
		log_notice("proxy authentication blocked for %s: %u failures, retry in %u s",
		           r->addr_text, __atomic_load_n(&pa->burst, __ATOMIC_RELAXED), w ? w : 1);
		r->retry_s = w ? w : 1;
		snprintf(r->msg, sizeof(r->msg), "too many failed logins from %s: try again in %u s",
		         r->addr_text, r->retry_s);
		return PAUTH_LIMITED;
	}
	/* The page never tells whether the user exists. */
	snprintf(r->msg, sizeof(r->msg), "wrong user name or password");
	return PAUTH_CHALLENGE;
}

int
pauth_limit_check(struct pauth *pa, struct pauth_req *r)
{
	struct auth_limit *l = pauth_limit(pa);
	int64_t now_s = r->now_ms / 1000;

	if (!auth_limit_blocked(l, r->addr_text, now_s))
		return 0;
	r->retry_s = auth_limit_wait(l, r->addr_text, now_s);
	if (r->retry_s == 0)
		r->retry_s = 1;
	snprintf(r->msg, sizeof(r->msg), "too many failed logins from %s: try again in %u s",
	         r->addr_text, r->retry_s);
	return 1;
}

struct hpool *
pauth_wk_pool(struct pauth_wk *wk, const struct hpool_cfg *hc, char *err, size_t errlen)
{
	if (!wk || !wk->set) {
		snprintf(err, errlen, "no helper pools on this thread");
		return NULL;
	}
	return hpool_set_get(wk->set, hc, err, errlen);
}

static enum pauth_res
pauth_ok(struct pauth *pa, struct pauth_conn *pc, struct pauth_req *r, const uint8_t mac[32],
         int64_t expires_ms, struct who *who)
{
	(void)pa;
	(void)mac;
	if (pc->cred) {
		OPENSSL_cleanse(pc->cred, pc->cred_len);
		free(pc->cred);
	}
	pc->cred = NULL;
	pc->cred_len = 0;
	pc->cred_expires_ms = 0;
	if (r->field && r->field_len > 0 && (pc->cred = malloc(r->field_len)) != NULL) {
		memcpy(pc->cred, r->field, r->field_len);
		pc->cred_len = r->field_len;
		pc->cred_expires_ms = expires_ms; /* without the copy: no fast path, no harm */
	}
	pc->cred_cfg = r->cfg;
	memcpy(pc->cred_id, r->cfg->id, sizeof(pc->cred_id));
	pauth_who_fill(pc, who);
	return PAUTH_OK;
}

/* Store a result: the user and the groups (NUL-separated), never the password. */
static void
pauth_cache_store(struct pauth *pa, const struct pauth_cfg *cfg, const uint8_t mac[32],
                  int64_t now, int ok, const char *user, const char *const *groups, size_t ng,
                  const char *why)
{
	struct pauth_cent e;
	unsigned ttl = ok ? cfg->cache_ttl_s : cfg->negative_ttl_s;
	size_t k = 0;

	if (ttl == 0)
		return;
	memset(&e, 0, sizeof(e));
	memcpy(e.mac, mac, 32);
	e.made_ms = now;
	e.expires_ms = now + (int64_t)ttl * 1000;
	e.ok = ok;
	snprintf(e.why, sizeof(e.why), "%s", why ? why : "");
	snprintf(e.user, sizeof(e.user), "%s", user ? user : "");
	for (size_t i = 0; i < ng; i++) {
		size_t n = strlen(groups[i]) + 1;

		if (k + n > sizeof(e.grp))
			break;
		memcpy(e.grp + k, groups[i], n);
		k += n;
		e.ngroups++;
	}
	pauth_cache_put(pa, &e);
}

/* A cached positive entry into the connection. */
static int
pauth_conn_from_cent(struct pauth_conn *pc, const struct pauth_cent *e)
{
	const char *g[PAUTH_MAX_GROUPS];
	size_t ng = 0;
	const char *p = e->grp;

	for (unsigned i = 0; i < e->ngroups && ng < PAUTH_MAX_GROUPS; i++) {
		g[ng++] = p;
		p += strlen(p) + 1;
	}
	return pauth_conn_set(pc, e->user, g, ng);
}

static void
pauth_hp_cb(void *arg, const struct hpool_reply *rep)
{
	struct pauth_conn *pc = arg;

	pc->pending = NULL;
	pc->pending_done = 1;
	pc->answer_status = (int)rep->status;
	free(pc->answer);
	pc->answer = rep->status == HP_OK ? strndup(rep->line, rep->len) : NULL;
	if (rep->status == HP_OK && !pc->answer)
		pc->answer_status = HP_DIED; /* out of memory: as if unanswered */
	if (pc->wake)
		pc->wake(pc->wake_arg);
}

/* The base name of a helper's command, for messages ("basic_ldap_auth"). */
static void
pauth_cmd_name(const char *cmd, char *out, size_t cap)
{
	const char *p = cmd ? cmd : "helper";
	size_t n;

	while (*p == ' ' || *p == '\t' || *p == '"')
		p++;
	n = strcspn(p, " \t\"");
	for (size_t i = n; i > 0; i--) {
		if (p[i - 1] == '/') {
			n -= i;
			p += i;
			break;
		}
	}
	snprintf(out, cap, "%.*s", (int)(n > 100 ? 100 : n), p);
}

/* A helper's answer to a Basic request. */
static enum pauth_res
pauth_external_answer(struct pauth *pa, struct pauth_conn *pc, struct pauth_req *r,
                      const uint8_t mac[32], const char *user, struct who *who)
{
	const struct pauth_cfg *cfg = r->cfg;
	char name[112];
	int st = pc->answer_status;
	struct hreply rep;
	const char *g[PAUTH_MAX_GROUPS];
	size_t ng = 0;

	pc->pending_done = 0;
	pauth_cmd_name(cfg->external.cmd, name, sizeof(name));
	if (st != HP_OK) {
		free(pc->answer);
		pc->answer = NULL;
		snprintf(r->msg, sizeof(r->msg), "the authentication helper %s %s", name,
		         st == HP_TIMEOUT ? "timed out" : st == HP_OVERLOAD ? "is overloaded"
		                                                            : "died before answering");
		log_warn("proxy authentication for %s: %s", r->addr_text, r->msg);
		return PAUTH_UNAVAILABLE;
	}
	if (hreply_parse(pc->answer, strlen(pc->answer), &rep) != 0)
		rep.code = HR_UNKNOWN;
	switch (rep.code) {
	case HR_OK: {
		const char *u = rep.user && *rep.user ? rep.user : user;
		char ubuf[AUTH_USER_MAX + 1];
		enum pauth_res res;

		snprintf(ubuf, sizeof(ubuf), "%s", u);
		for (size_t i = 0; i < rep.ngroups && ng < PAUTH_MAX_GROUPS; i++)
			g[ng++] = rep.groups[i];
		if (cfg->groups)
			ng += pauth_groups_of(cfg->groups, ubuf, g + ng, PAUTH_MAX_GROUPS - ng);
		if (pauth_conn_set(pc, ubuf, g, ng) != 0) {
			free(pc->answer);
			pc->answer = NULL;
			snprintf(r->msg, sizeof(r->msg), "out of memory");
			return PAUTH_UNAVAILABLE;
		}
		pauth_cache_store(pa, cfg, mac, r->now_ms, 1, ubuf, g, ng, NULL);
		free(pc->answer);
		pc->answer = NULL;
		auth_limit_reset(pauth_limit(pa), r->addr_text);
		res = pauth_ok(pa, pc, r, mac, r->now_ms + (int64_t)cfg->cache_ttl_s * 1000, who);
		return res;
	}
	case HR_ERR:
	case HR_BH:
		/* Squid reads BH from a Basic helper as failed credentials, and Debian's
		 * basic_ldap_auth answers BH for a wrong password or an unknown user. So: a 407,
		 * counted by the limiter (the directory's only brute-force guard here), not in the
		 * negative cache (a directory outage heals), and a warning with the helper's words
		 * for the admin. */
		log_warn("proxy authentication for %s: the authentication helper %s answered BH%s%s",
		         r->addr_text, name, rep.message ? ": " : "", rep.message ? rep.message : "");
		free(pc->answer);
		pc->answer = NULL;
		return pauth_fail(pa, r, user, "rejected by the helper (BH)");
	default:
		free(pc->answer);
		pc->answer = NULL;
		snprintf(r->msg, sizeof(r->msg), "the authentication helper %s %s", name,
		         "gave an answer that is not OK, ERR or BH");
		log_warn("proxy authentication for %s: %s", r->addr_text, r->msg);
		return PAUTH_UNAVAILABLE;
	}
}

static enum pauth_res
pauth_identify_one(struct pauth *pa, struct pauth_wk *wk, struct pauth_conn *pc,
                   struct pauth_req *r, struct who *who)
{
	const struct pauth_cfg *cfg = r->cfg;
	const char *f = r->field;
	size_t flen = r->field_len;
	uint8_t mac[32];
	struct pauth_cent ce;
	char user[AUTH_USER_MAX + 1], pass[AUTH_PASS_MAX + 1];
	char fbuf[AUTH_USER_MAX + AUTH_PASS_MAX + 64];
	int64_t now_s = r->now_ms / 1000;
	enum pauth_res res;

	r->msg[0] = '\0';
	r->retry_s = 0;
	r->user_tried = NULL;
	if (pc->pending != NULL)
		return PAUTH_WAIT; /* called again before the helper answered */
	if (pc->job != NULL && pc->job->state != PJ_DELIVERED)
		return PAUTH_WAIT; /* the verifier has not answered yet */
	/* The connection's last accepted credential, repeated: one memcmp, no hashing. */
	if (pauth_conn_same(pc, cfg, f, flen, r->now_ms)) {
		PAUTH_COUNT(pa, conn_hits);
		pauth_who_fill(pc, who);
		return PAUTH_OK;
	}
	while (f && flen > 0 && (*f == ' ' || *f == '\t'))
		f++, flen--;
	if (cfg->negotiate && (!f || flen == 0))
		return pauth_negotiate(pa, wk, pc, r, NULL, 0, who);
	if (!f || flen == 0) {
		pc->pending_done = 0;
		snprintf(r->msg, sizeof(r->msg), "proxy authentication required");
		return PAUTH_CHALLENGE;
	}
	if (cfg->negotiate && flen > 10 && strncasecmp(f, "Negotiate ", 10) == 0)
		return pauth_negotiate(pa, wk, pc, r, f + 10, flen - 10, who);
	if (!cfg->basic || flen < 6 || strncasecmp(f, "Basic ", 6) != 0) {
		pc->pending_done = 0;
		snprintf(r->msg, sizeof(r->msg), "proxy authentication required (the credentials "
		         "use a scheme this proxy does not offer here)");
		return PAUTH_CHALLENGE;
	}
	pauth_mac(pa, cfg, f, flen, mac);
	if (flen >= sizeof(fbuf)) {
		pc->pending_done = 0;
		return pauth_fail(pa, r, NULL, "malformed Basic credentials");
	}
	memcpy(fbuf, f, flen);
	fbuf[flen] = '\0';
	if (auth_basic_decode(fbuf, user, sizeof(user), pass, sizeof(pass)) != 0) {
		OPENSSL_cleanse(fbuf, sizeof(fbuf));
		OPENSSL_cleanse(pass, sizeof(pass));
		if (pc->pending_done) {
			pc->pending_done = 0;
			free(pc->answer);
			pc->answer = NULL;
		}
		if (auth_limit_blocked(pauth_limit(pa), r->addr_text, now_s))
			goto limited;
		return pauth_fail(pa, r, NULL, "malformed Basic credentials");
	}
	OPENSSL_cleanse(fbuf, sizeof(fbuf));

	if (pc->pending_done) {
		/* The helper answered the request this call's earlier self made. */
		OPENSSL_cleanse(pass, sizeof(pass));
		res = pauth_external_answer(pa, pc, r, mac, user, who);
		goto out;
	}

	/* The verifier answered for this very request (same arguments): use its result. */
	if (pc->job != NULL)
		goto verify;
	/* The result cache: a known credential costs no hashing, even from a blocked address
	 * (it proves nothing new to a guesser). */
	if (pauth_cache_get(pa, mac, r->now_ms, &ce)) {
		PAUTH_COUNT(pa, cache_hits);
		if (ce.ok) {
			OPENSSL_cleanse(pass, sizeof(pass));
			if (pauth_conn_from_cent(pc, &ce) != 0) {
					snprintf(r->msg, sizeof(r->msg), "out of memory");
				return PAUTH_UNAVAILABLE;
			}
			return pauth_ok(pa, pc, r, mac, ce.expires_ms, who);
		}
		OPENSSL_cleanse(pass, sizeof(pass));
		if (auth_limit_blocked(pauth_limit(pa), r->addr_text, now_s))
			goto limited;
		res = pauth_fail(pa, r, user, ce.why);
		goto out;
	}
	PAUTH_COUNT(pa, cache_misses);

	/* A new verification: a blocked address costs no hashing and no helper request. */
	if (auth_limit_blocked(pauth_limit(pa), r->addr_text, now_s)) {
		OPENSSL_cleanse(pass, sizeof(pass));
		goto limited;
	}

verify:
	if (cfg->provider == PAUTH_PROV_EXTERNAL) {
		char line[3 * (AUTH_USER_MAX + AUTH_PASS_MAX) + 8];
		char err[256], name[112];
		struct hpool *pool = hpool_set_get(wk->set, &cfg->external, err, sizeof(err));
		size_t n;

		if (!pool) {
			OPENSSL_cleanse(pass, sizeof(pass));
			pauth_cmd_name(cfg->external.cmd, name, sizeof(name));
			snprintf(r->msg, sizeof(r->msg), "the authentication helper %s cannot be "
			         "started", name);
			log_warn("proxy authentication: %s", err);
			return PAUTH_UNAVAILABLE;
		}
		n = hreq_basic_line(user, pass, line, sizeof(line));
		OPENSSL_cleanse(pass, sizeof(pass));
		if (n == 0) {
			OPENSSL_cleanse(line, sizeof(line));
			res = pauth_fail(pa, r, user, "credentials too long");
			goto out;
		}
		PAUTH_COUNT(pa, verifications);
		pc->wake = r->wake;
		pc->wake_arg = r->wake_arg;
		pc->pending_done = 0;
		pc->pending = hpool_submit(pool, HPOOL_ANY, line, n, pauth_hp_cb, pc);
		OPENSSL_cleanse(line, sizeof(line));
		if (!pc->pending) {
			snprintf(r->msg, sizeof(r->msg), "out of memory");
			return PAUTH_UNAVAILABLE;
		}
		return PAUTH_WAIT;
	}

	if (cfg->provider == PAUTH_PROV_FILE && cfg->users) {
		int ok, known;
		const char *g[PAUTH_MAX_GROUPS];
		size_t ng;

		if (pc->job) {
			/* the verifier's answer (pauth_wk_poll delivered it) */
			ok = pc->job->ok;
			known = pc->job->known;
			OPENSSL_cleanse(pass, sizeof(pass));
			pauth_job_free(pc->job);
			pc->job = NULL;
		} else {
			PAUTH_COUNT(pa, verifications);
			if (pa->verifier_up && wk) {
				pc->wake = r->wake;
				pc->wake_arg = r->wake_arg;
				int rc = pauth_job_submit(pa, wk, pc, cfg->users, user, pass);
				OPENSSL_cleanse(pass, sizeof(pass));
				if (rc == 0)
					return PAUTH_WAIT;
				snprintf(r->msg, sizeof(r->msg), "too many logins are being verified; "
				         "try again");
				return PAUTH_UNAVAILABLE;
			}
			ok = auth_htpasswd_check(cfg->users, user, pass) == 1;
			known = ok || auth_htpasswd_has(cfg->users, user);
			OPENSSL_cleanse(pass, sizeof(pass));
		}
		if (!ok) {
			const char *why = known ? "wrong password" : "unknown user";

			pauth_cache_store(pa, cfg, mac, r->now_ms, 0, user, NULL, 0, why);
			res = pauth_fail(pa, r, user, why);
			goto out;
		}
		ng = pauth_groups_of(cfg->groups, user, g, PAUTH_MAX_GROUPS);
		if (pauth_conn_set(pc, user, g, ng) != 0) {
			snprintf(r->msg, sizeof(r->msg), "out of memory");
			return PAUTH_UNAVAILABLE;
		}
		pauth_cache_store(pa, cfg, mac, r->now_ms, 1, user, g, ng, NULL);
		auth_limit_reset(pauth_limit(pa), r->addr_text);
		return pauth_ok(pa, pc, r, mac, r->now_ms + (int64_t)cfg->cache_ttl_s * 1000, who);
	}
	OPENSSL_cleanse(pass, sizeof(pass));
	snprintf(r->msg, sizeof(r->msg), "no Basic provider is configured");
	return PAUTH_UNAVAILABLE;

limited:
	pauth_limit_check(pa, r);
	return PAUTH_LIMITED;
out:
	if (res == PAUTH_CHALLENGE) {
		/* The tried name for the access log, kept in the connection until the next call. */
		free(pc->answer);
		pc->answer = strdup(user);
		r->user_tried = pc->answer;
	}
	return res;
}

enum pauth_res
pauth_identify(struct pauth *pa, struct pauth_wk *wk, struct pauth_conn *pc,
               struct pauth_req *r, struct who *who)
{
	who->user = NULL; /* set again only by a success */
	who->groups = NULL;
	who->ngroups = 0;
	enum pauth_res res = pauth_identify_one(pa, wk, pc, r, who);

	if (pc->job != NULL && pc->job->state == PJ_DELIVERED) {
		/* an answer this call did not use (the request changed): never for another one */
		pauth_job_free(pc->job);
		pc->job = NULL;
	}
	switch (res) {
	case PAUTH_OK: PAUTH_COUNT(pa, ok); break;
	case PAUTH_CHALLENGE: PAUTH_COUNT(pa, challenged); break;
	case PAUTH_LIMITED: PAUTH_COUNT(pa, limited); break;
	case PAUTH_UNAVAILABLE: PAUTH_COUNT(pa, unavailable); break;
	case PAUTH_WAIT: break;
	}
	return res;
}

size_t
pauth_challenge(const struct pauth_cfg *cfg, const struct pauth_conn *pc, char *out, size_t cap)
{
	size_t k = 0;
	int n;

	if (cap == 0)
		return 0;
	out[0] = '\0';
	if (cfg->negotiate) {
		if (pc && pc->neg_token)
			n = snprintf(out + k, cap - k, "Proxy-Authenticate: Negotiate %s\r\n",
			             pc->neg_token);
		else
			n = snprintf(out + k, cap - k, "Proxy-Authenticate: Negotiate\r\n");
		if (n < 0 || (size_t)n >= cap - k)
			goto small;
		k += (size_t)n;
	}
	if (cfg->basic) {
		n = snprintf(out + k, cap - k, "Proxy-Authenticate: Basic realm=\"%s\", "
		             "charset=\"UTF-8\"\r\n", cfg->realm ? cfg->realm : PAUTH_REALM_DEFAULT);
		if (n < 0 || (size_t)n >= cap - k)
			goto small;
		k += (size_t)n;
	}
	return k;
small:
	out[0] = '\0';
	return 0;
}
