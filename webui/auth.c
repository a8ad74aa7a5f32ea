/*
 * auth.c - htpasswd files verified with crypt_rn, Basic credentials, the failed-login rate
 * limiter, the verified-credentials cache, sessions and CSRF tokens (see auth.h).
 *
 * Invariants: a loaded struct auth_htpasswd only holds hashes whose syntax is one of the
 * accepted kinds, sorted by user name for bsearch; no password is ever stored or logged
 * (the credentials cache keeps an HMAC of it, under a per-process random key).
 */
#include "webui/auth.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- htpasswd ---- */

struct auth_user {
	char *name;
	char *hash;
	unsigned line;
};

struct auth_htpasswd {
	struct auth_user *u;     /* sorted by name */
	size_t n;
};

static int
auth_is_b64crypt(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '/';
}

static int
auth_all_b64crypt(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!auth_is_b64crypt((unsigned char)s[i]))
			return 0;
	return 1;
}

/* bcrypt: $2a$ / $2b$ / $2y$, two-digit cost 04..31, '$', 22 salt + 31 hash characters. */
static int
auth_hash_bcrypt_ok(const char *h)
{
	if (strlen(h) != 60 || h[0] != '$' || h[1] != '2' || h[3] != '$' || h[6] != '$')
		return 0;
	if (h[2] != 'a' && h[2] != 'b' && h[2] != 'y')
		return 0;
	if (!isdigit((unsigned char)h[4]) || !isdigit((unsigned char)h[5]))
		return 0;
	int cost = (h[4] - '0') * 10 + (h[5] - '0');
	return cost >= 4 && cost <= 31 && auth_all_b64crypt(h + 7, 53);
}

/* SHA-crypt: $5$ or $6$, optional "rounds=N$", a salt of at most 16 characters, '$', and 43
 * (SHA-256) or 86 (SHA-512) hash characters. */
static int
auth_hash_shacrypt_ok(const char *h)
{
	if (h[0] != '$' || (h[1] != '5' && h[1] != '6') || h[2] != '$')
		return 0;
	size_t want = h[1] == '5' ? 43 : 86;
	const char *p = h + 3;
	if (strncmp(p, "rounds=", 7) == 0) {
		p += 7;
		size_t d = 0;
		while (isdigit((unsigned char)p[d]))
			d++;
		if (d == 0 || d > 9 || p[d] != '$')
			return 0;
		p += d + 1;
	}
	const char *dollar = strchr(p, '$');
	if (dollar == NULL || dollar - p > 16)
		return 0;
	for (const char *s = p; s < dollar; s++)
		if (*s == ':' || *s == '\n' || (unsigned char)*s < 0x20)
			return 0;
	p = dollar + 1;
	return strlen(p) == want && auth_all_b64crypt(p, want);
}

/* What a refused hash is, for the message; NULL when it is accepted. */
static const char *
auth_hash_refused(const char *h)
{
	if (auth_hash_bcrypt_ok(h) || auth_hash_shacrypt_ok(h))
		return NULL;
	if (h[0] == '\0')
		return "an empty hash";
	if (strncmp(h, "$apr1$", 6) == 0)
		return "an MD5 ($apr1$) hash";
	if (strncmp(h, "$1$", 3) == 0)
		return "an MD5-crypt ($1$) hash";
	if (strncmp(h, "{SHA}", 5) == 0)
		return "a SHA-1 ({SHA}) hash";
	if (strncmp(h, "$2", 2) == 0)
		return "a malformed bcrypt hash";
	if (strncmp(h, "$5$", 3) == 0 || strncmp(h, "$6$", 3) == 0)
		return "a malformed SHA-crypt hash";
	if (h[0] == '$')
		return "an unsupported crypt hash";
	if (strlen(h) == 13 && auth_all_b64crypt(h, 13))
		return "a crypt(DES) hash (or a plain-text password)";
	return "a plain-text password";
}

/* A user name as it may appear in a log line: printable ASCII, clipped. */
static void
auth_clip(const char *s, char *out, size_t cap)
{
	size_t j = 0;
	for (size_t i = 0; s[i] != '\0' && j + 1 < cap; i++) {
		if (i == 64) {
			if (j + 4 < cap) {
				memcpy(out + j, "...", 3);
				j += 3;
			}
			break;
		}
		unsigned char c = (unsigned char)s[i];
		out[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	out[j] = '\0';
}

static int
auth_user_cmp(const void *a, const void *b)
{
	const struct auth_user *x = a, *y = b;
	int r = strcmp(x->name, y->name);
	if (r != 0)
		return r;
	return (x->line > y->line) - (x->line < y->line);
}

static void
auth_users_free(struct auth_user *u, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(u[i].name);
		if (u[i].hash != NULL)
			OPENSSL_cleanse(u[i].hash, strlen(u[i].hash));
		free(u[i].hash);
	}
	free(u);
}

int
auth_htpasswd_load(const char *path, struct auth_htpasswd **out, char *err, size_t errlen)
{
	*out = NULL;
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	struct auth_user *u = NULL;
	size_t n = 0, cap = 0;
	char buf[AUTH_HTPASSWD_MAX_LINE + 2];
	char who[80];
	unsigned line = 0;
	int ret = -1;
	while (fgets(buf, sizeof(buf), f) != NULL) {
		line++;
		size_t len = strlen(buf);
		if (len > 0 && buf[len - 1] == '\n')
			buf[--len] = '\0';
		else if (!feof(f)) {
			snprintf(err, errlen, "%s:%u: line longer than %u bytes", path, line,
			         AUTH_HTPASSWD_MAX_LINE);
			goto out;
		}
		if (len > 0 && buf[len - 1] == '\r')
			buf[--len] = '\0';
		const char *p = buf;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '#')
			continue;
		char *colon = strchr(buf, ':');
		if (colon == NULL) {
			snprintf(err, errlen, "%s:%u: no ':' between the user and the hash; create "
			         "the entry with htpasswd -B", path, line);
			goto out;
		}
		*colon = '\0';
		const char *hash = colon + 1;
		if (buf[0] == '\0' || colon - buf > AUTH_USER_MAX) {
			snprintf(err, errlen, "%s:%u: %s user name", path, line,
			         buf[0] == '\0' ? "empty" : "overlong");
			goto out;
		}
		const char *why = auth_hash_refused(hash);
		if (why != NULL) {
			auth_clip(buf, who, sizeof(who));
			snprintf(err, errlen, "%s:%u: user %s: %s is not accepted (only "
			         "bcrypt, SHA-256 and SHA-512 crypt are); create the entry with "
			         "htpasswd -B", path, line, who, why);
			goto out;
		}
		if (n == AUTH_HTPASSWD_MAX_USERS) {
			snprintf(err, errlen, "%s:%u: more than %u users", path, line,
			         AUTH_HTPASSWD_MAX_USERS);
			goto out;
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct auth_user *nu = realloc(u, nc * sizeof(*nu));
			if (nu == NULL)
				goto oom;
			u = nu;
			cap = nc;
		}
		u[n].name = strdup(buf);
		u[n].hash = strdup(hash);
		u[n].line = line;
		n++;
		if (u[n - 1].name == NULL || u[n - 1].hash == NULL)
			goto oom;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		goto out;
	}
	if (n > 1)
		qsort(u, n, sizeof(*u), auth_user_cmp);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(u[i - 1].name, u[i].name) == 0) {
			auth_clip(u[i].name, who, sizeof(who));
			snprintf(err, errlen, "%s:%u: user %s is listed again (first on line %u); "
			         "remove one of the lines", path, u[i].line, who, u[i - 1].line);
			goto out;
		}
	}
	struct auth_htpasswd *h = calloc(1, sizeof(*h));
	if (h == NULL)
		goto oom;
	h->u = u;
	h->n = n;
	u = NULL;
	n = 0;
	*out = h;
	ret = 0;
	goto out;
oom:
	snprintf(err, errlen, "%s: out of memory", path);
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	auth_users_free(u, n);
	fclose(f);
	return ret;
}

void
auth_htpasswd_free(struct auth_htpasswd **h)
{
	if (*h == NULL)
		return;
	auth_users_free((*h)->u, (*h)->n);
	free(*h);
	*h = NULL;
}

size_t
auth_htpasswd_count(const struct auth_htpasswd *h)
{
	return h->n;
}

static const struct auth_user *
auth_htpasswd_find(const struct auth_htpasswd *h, const char *user)
{
	size_t lo = 0, hi = h->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(user, h->u[mid].name);
		if (r == 0)
			return &h->u[mid];
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

int
auth_htpasswd_has(const struct auth_htpasswd *h, const char *user)
{
	return h != NULL && user != NULL && auth_htpasswd_find(h, user) != NULL;
}

/* crypt_rn of pass with the setting (the stored hash); 1 when the result equals hash. struct
 * crypt_data is 32 KiB: on the heap, not on a worker's stack. */
static int
auth_crypt_match(const char *pass, const char *hash)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	if (cd == NULL)
		return 0;
	int ok = 0;
	const char *r = crypt_rn(pass, hash, cd, (int)sizeof(*cd));
	if (r != NULL && r[0] != '*') {
		size_t rl = strlen(r), hl = strlen(hash);
		ok = rl == hl && CRYPTO_memcmp(r, hash, hl) == 0;
	}
	OPENSSL_cleanse(cd, sizeof(*cd));
	free(cd);
	return ok;
}

int
auth_htpasswd_check(const struct auth_htpasswd *h, const char *user, const char *pass)
{
	if (h == NULL || user == NULL || pass == NULL || h->n == 0)
		return 0;
	if (strlen(pass) > AUTH_PASS_MAX)
		return 0;
	const struct auth_user *e = auth_htpasswd_find(h, user);
	if (e == NULL) {
		/* The same work as a real check, so that the time does not tell that the user
		 * does not exist; the result is thrown away. */
		(void)auth_crypt_match(pass, h->u[0].hash);
		return 0;
	}
	return auth_crypt_match(pass, e->hash);
}

/* ---- Basic ---- */

static int
auth_b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Strict base64 (RFC 4648, padded): returns the decoded length or -1. */
static long
auth_b64_decode(const char *s, size_t n, unsigned char *out, size_t cap)
{
	if (n == 0 || n % 4 != 0)
		return -1;
	size_t o = 0;
	for (size_t i = 0; i < n; i += 4) {
		int v[4], pad = 0;
		for (int k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)s[i + k];
			if (c == '=' && i + 4 == n && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad > 0)
				return -1;   /* data after padding */
			v[k] = auth_b64val(c);
			if (v[k] < 0)
				return -1;
		}
		unsigned long w = (unsigned long)v[0] << 18 | (unsigned long)v[1] << 12 |
		                  (unsigned long)v[2] << 6 | (unsigned long)v[3];
		size_t take = 3 - (size_t)pad;
		if (o + take > cap)
			return -1;
		out[o++] = (unsigned char)(w >> 16);
		if (take > 1)
			out[o++] = (unsigned char)(w >> 8);
		if (take > 2)
			out[o++] = (unsigned char)w;
	}
	return (long)o;
}

int
auth_basic_decode(const char *field, char *user, size_t ucap, char *pass, size_t pcap)
{
	if (field == NULL || ucap == 0 || pcap == 0)
		return -1;
	user[0] = pass[0] = '\0';
	while (*field == ' ' || *field == '\t')
		field++;
	if (strncasecmp(field, "Basic", 5) != 0 || (field[5] != ' ' && field[5] != '\t'))
		return -1;
	const char *b = field + 5;
	while (*b == ' ' || *b == '\t')
		b++;
	size_t n = strlen(b);
	while (n > 0 && (b[n - 1] == ' ' || b[n - 1] == '\t'))
		n--;
	unsigned char dec[AUTH_USER_MAX + AUTH_PASS_MAX + 2];
	long dl = auth_b64_decode(b, n, dec, sizeof(dec));
	if (dl < 0)
		return -1;
	unsigned char *colon = memchr(dec, ':', (size_t)dl);
	int ret = -1;
	if (colon == NULL)
		goto out;
	size_t ul = (size_t)(colon - dec), pl = (size_t)dl - ul - 1;
	if (ul == 0 || ul >= ucap || pl >= pcap)
		goto out;
	for (size_t i = 0; i < ul; i++)
		if (dec[i] < 0x20 || dec[i] == 0x7f)
			goto out;
	if (memchr(colon + 1, '\0', pl) != NULL)
		goto out;
	memcpy(user, dec, ul);
	user[ul] = '\0';
	memcpy(pass, colon + 1, pl);
	pass[pl] = '\0';
	ret = 0;
out:
	OPENSSL_cleanse(dec, sizeof(dec));
	return ret;
}

/* ---- failed-login limit ---- */

/* GCRA form of the token bucket: one time per client, `tat` (when its bucket is full
 * again). A failure moves tat by refill_s from max(tat, now); the client is blocked while
 * tat - now exceeds (burst - 1) * refill_s, i.e. once burst failures are unpaid. */
#define AUTH_LIMIT_PROBE 8

struct auth_limit_ent {
	unsigned char key[16];
	int64_t tat;             /* 0: empty */
};

struct auth_limit {
	pthread_mutex_t mu;
	struct auth_limit_ent *t;
	size_t mask;
	int64_t burst, refill;
};

static size_t
auth_pow2(unsigned n, unsigned min)
{
	size_t s = min;
	while (s < n && s < ((size_t)1 << 24))
		s <<= 1;
	return s;
}

/* An IPv4 address as ::ffff:a.b.c.d, an IPv6 address cut to its /64; other text hashed. */
static void
auth_addr_key(const char *addr, unsigned char key[16])
{
	memset(key, 0, 16);
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, addr, &a4) == 1) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &a4, 4);
	} else if (inet_pton(AF_INET6, addr, &a6) == 1) {
		memcpy(key, &a6, 16);
		static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		                                          0xff, 0xff };
		if (memcmp(key, mapped, 12) != 0)
			memset(key + 8, 0, 8);
	} else {
		uint64_t h = 1469598103934665603ull;
		for (const char *p = addr; *p != '\0'; p++)
			h = (h ^ (unsigned char)*p) * 1099511628211ull;
		key[0] = 0xfe;   /* not a valid IPv6 unicast prefix: no clash with real ones */
		memcpy(key + 8, &h, 8);
	}
}

static size_t
auth_key_hash(const unsigned char key[16])
{
	uint64_t h = 1469598103934665603ull;
	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 1099511628211ull;
	return (size_t)(h ^ (h >> 29));
}

int
auth_limit_new(struct auth_limit **out, unsigned slots, unsigned burst, unsigned refill_s)
{
	*out = NULL;
	struct auth_limit *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return -1;
	size_t n = auth_pow2(slots, AUTH_LIMIT_PROBE);
	l->t = calloc(n, sizeof(*l->t));
	if (l->t == NULL || pthread_mutex_init(&l->mu, NULL) != 0) {
		free(l->t);
		free(l);
		return -1;
	}
	l->mask = n - 1;
	l->burst = burst ? burst : 1;
	l->refill = refill_s ? refill_s : 1;
	*out = l;
	return 0;
}

void
auth_limit_free(struct auth_limit **l)
{
	if (*l == NULL)
		return;
	pthread_mutex_destroy(&(*l)->mu);
	free((*l)->t);
	free(*l);
	*l = NULL;
}

/* The entry of key, or NULL (create == 0), or a slot for it (create: empty, or evicted). */
static struct auth_limit_ent *
auth_limit_slot(struct auth_limit *l, const unsigned char key[16], int create)
{
	size_t h = auth_key_hash(key);
	struct auth_limit_ent *victim = NULL;
	for (size_t i = 0; i < AUTH_LIMIT_PROBE; i++) {
		struct auth_limit_ent *e = &l->t[(h + i) & l->mask];
		if (e->tat != 0 && memcmp(e->key, key, 16) == 0)
			return e;
		/* The victim is the entry nearest to a full bucket: an empty one (tat 0), or a
		 * refilled one (tat <= now), which is the same as none, before any other. */
		if (victim == NULL || e->tat < victim->tat)
			victim = e;
	}
	if (!create)
		return NULL;
	memcpy(victim->key, key, 16);
	victim->tat = 0;
	return victim;
}

int
auth_limit_blocked(struct auth_limit *l, const char *addr, int64_t now)
{
	return auth_limit_wait(l, addr, now) > 0;
}

unsigned
auth_limit_wait(struct auth_limit *l, const char *addr, int64_t now)
{
	unsigned char key[16];
	auth_addr_key(addr, key);
	pthread_mutex_lock(&l->mu);
	struct auth_limit_ent *e = auth_limit_slot(l, key, 0);
	int64_t wait = e != NULL ? e->tat - now - (l->burst - 1) * l->refill : 0;
	pthread_mutex_unlock(&l->mu);
	return wait > 0 ? (unsigned)wait : 0;
}

void
auth_limit_fail(struct auth_limit *l, const char *addr, int64_t now)
{
	unsigned char key[16];
	auth_addr_key(addr, key);
	pthread_mutex_lock(&l->mu);
	struct auth_limit_ent *e = auth_limit_slot(l, key, 1);
	int64_t base = e->tat > now ? e->tat : now;
	/* Never more than the burst ahead: a blocked client that keeps trying stays blocked for
	 * one bucket at most after it stops. */
	int64_t cap = now + l->burst * l->refill;
	e->tat = base + l->refill > cap ? cap : base + l->refill;
	if (e->tat == 0)
		e->tat = 1;
	pthread_mutex_unlock(&l->mu);
}

void
auth_limit_reset(struct auth_limit *l, const char *addr)
{
	unsigned char key[16];
	auth_addr_key(addr, key);
	pthread_mutex_lock(&l->mu);
	struct auth_limit_ent *e = auth_limit_slot(l, key, 0);
	if (e != NULL)
		memset(e, 0, sizeof(*e));
	pthread_mutex_unlock(&l->mu);
}

/* ---- verified-credentials cache ---- */

struct auth_vcache_ent {
	unsigned char mac[32];
	int64_t expires;         /* 0: empty */
	int ok;
};

struct auth_vcache {
	pthread_mutex_t mu;
	struct auth_vcache_ent *t;
	size_t mask;
	unsigned ttl_ok, ttl_fail;
	unsigned char key[32];
};

int
auth_vcache_new(struct auth_vcache **out, unsigned slots, unsigned ttl_ok, unsigned ttl_fail)
{
	*out = NULL;
	struct auth_vcache *vc = calloc(1, sizeof(*vc));
	if (vc == NULL)
		return -1;
	size_t n = auth_pow2(slots, 16);
	vc->t = calloc(n, sizeof(*vc->t));
	if (vc->t == NULL || RAND_bytes(vc->key, sizeof(vc->key)) != 1 ||
	    pthread_mutex_init(&vc->mu, NULL) != 0) {
		free(vc->t);
		free(vc);
		return -1;
	}
	vc->mask = n - 1;
	vc->ttl_ok = ttl_ok;
	vc->ttl_fail = ttl_fail;
	*out = vc;
	return 0;
}

void
auth_vcache_free(struct auth_vcache **vc)
{
	if (*vc == NULL)
		return;
	pthread_mutex_destroy(&(*vc)->mu);
	OPENSSL_cleanse((*vc)->key, sizeof((*vc)->key));
	free((*vc)->t);
	free(*vc);
	*vc = NULL;
}

int
auth_htpasswd_verify(const struct auth_htpasswd *h, struct auth_vcache *vc,
                     const char *user, const char *pass, int64_t now)
{
	if (vc == NULL)
		return auth_htpasswd_check(h, user, pass);
	if (h == NULL || user == NULL || pass == NULL)
		return 0;
	size_t ul = strlen(user), pl = strlen(pass);
	if (ul > AUTH_USER_MAX || pl > AUTH_PASS_MAX)
		return 0;
	const struct auth_user *e = auth_htpasswd_find(h, user);
	const char *stored = e != NULL ? e->hash : "";
	size_t sl = strlen(stored);
	/* user NUL pass NUL stored-hash: the separators keep ("a", "b:c") apart from ("a:b",
	 * "c"); the stored hash makes a changed entry miss. */
	unsigned char msg[AUTH_USER_MAX + AUTH_PASS_MAX + AUTH_HTPASSWD_MAX_LINE + 3];
	memcpy(msg, user, ul);
	msg[ul] = 0;
	memcpy(msg + ul + 1, pass, pl);
	msg[ul + 1 + pl] = 0;
	memcpy(msg + ul + 2 + pl, stored, sl);
	unsigned char mac[32];
	unsigned int maclen = 0;
	int have = HMAC(EVP_sha256(), vc->key, sizeof(vc->key), msg, ul + 2 + pl + sl, mac,
	                &maclen) != NULL && maclen == sizeof(mac);
	OPENSSL_cleanse(msg, ul + 2 + pl);
	if (!have)
		return auth_htpasswd_check(h, user, pass);
	size_t slot;
	memcpy(&slot, mac, sizeof(slot));
	struct auth_vcache_ent *ce = &vc->t[slot & vc->mask];
	int hit = -1;
	pthread_mutex_lock(&vc->mu);
	if (ce->expires > now && CRYPTO_memcmp(ce->mac, mac, sizeof(mac)) == 0)
		hit = ce->ok;
	pthread_mutex_unlock(&vc->mu);
	if (hit >= 0)
		return hit;
	int ok = auth_htpasswd_check(h, user, pass);
	unsigned ttl = ok ? vc->ttl_ok : vc->ttl_fail;
	if (ttl > 0) {
		pthread_mutex_lock(&vc->mu);
		memcpy(ce->mac, mac, sizeof(mac));
		ce->expires = now + ttl;
		ce->ok = ok;
		pthread_mutex_unlock(&vc->mu);
	}
	return ok;
}

/* ---- sessions and CSRF ---- */

static void
auth_hex(const unsigned char *b, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[b[i] >> 4];
		out[2 * i + 1] = hx[b[i] & 15];
	}
	out[2 * n] = '\0';
}

int
auth_session_new(char out[AUTH_SESSION_LEN + 1])
{
	unsigned char r[AUTH_SESSION_LEN / 2];
	out[0] = '\0';
	if (RAND_bytes(r, sizeof(r)) != 1)
		return -1;
	auth_hex(r, sizeof(r), out);
	return 0;
}

int
auth_session_valid(const char *s, size_t n)
{
	if (s == NULL || n != AUTH_SESSION_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

long
auth_cookie_get(const char *field, const char *name, char *out, size_t cap)
{
	if (field == NULL || cap == 0)
		return -1;
	size_t nl = strlen(name);
	const char *p = field;
	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		const char *end = strchr(p, ';');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
			const char *v = p + nl + 1;
			size_t vl = len - nl - 1;
			while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
				v++;
				vl -= 2;
			}
			if (vl >= cap)
				return -1;
			memcpy(out, v, vl);
			out[vl] = '\0';
			return (long)vl;
		}
		p += len;
	}
	return -1;
}

int
auth_csrf_token(const char *secret, const char *session, char out[AUTH_CSRF_LEN + 1])
{
	out[0] = '\0';
	if (secret == NULL || secret[0] == '\0' || session == NULL ||
	    !auth_session_valid(session, strlen(session)))
		return -1;
	unsigned char mac[32];
	unsigned int maclen = 0;
	if (HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)session,
	         strlen(session), mac, &maclen) == NULL || maclen != sizeof(mac))
		return -1;
	auth_hex(mac, sizeof(mac), out);
	return 0;
}

int
auth_csrf_check(const char *secret, const char *session, const char *token, size_t n)
{
	char want[AUTH_CSRF_LEN + 1];
	if (token == NULL || n != AUTH_CSRF_LEN || auth_csrf_token(secret, session, want) != 0)
		return 0;
	return CRYPTO_memcmp(want, token, AUTH_CSRF_LEN) == 0;
}
