/*
 * clientlim.c - per-client connection counts (see clientlim.h).
 *
 * A chained hash table of CLIM_BUCKETS buckets; each node holds one client's count and is freed
 * when the count drops to 0, so the table holds only clients with open connections. Buckets
 * are guarded by CLIM_STRIPES mutexes (bucket % CLIM_STRIPES): a take or give locks one stripe
 * for a short walk, once per accepted and once per closed connection, never per request, and
 * two workers contend only when they touch the same stripe at the same moment.
 */
#include "daemon/clientlim.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CLIM_BUCKETS 4096
#define CLIM_STRIPES 64
#define CLIM_V4_TAG 0xffffffff00000000ull /* IPv4 keys: ffff:ffff::/32 is multicast in IPv6 */

struct clim_node {
	uint64_t key;
	unsigned count;
	struct clim_node *next;
};

static struct clim_node *clim_bucket[CLIM_BUCKETS];
static pthread_mutex_t clim_lock[CLIM_STRIPES] = {
#define CLIM_M4 PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, \
	PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER
#define CLIM_M16 CLIM_M4, CLIM_M4, CLIM_M4, CLIM_M4
	CLIM_M16, CLIM_M16, CLIM_M16, CLIM_M16
#undef CLIM_M16
#undef CLIM_M4
};

int
clim_key(const struct sockaddr_storage *peer, uint64_t *key)
{
	if (peer->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)peer;
		*key = CLIM_V4_TAG | ntohl(s4->sin_addr.s_addr);
		return 0;
	}
	if (peer->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)peer;
		const uint8_t *a = s6->sin6_addr.s6_addr;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			*key = CLIM_V4_TAG | (uint64_t)a[12] << 24 | (uint64_t)a[13] << 16 |
			       (uint64_t)a[14] << 8 | a[15];
			return 0;
		}
		uint64_t k = 0;
		for (int i = 0; i < 8; i++) /* the /64 */
			k = k << 8 | a[i];
		*key = k;
		return 0;
	}
	return -1;
}

static unsigned
clim_bucket_of(uint64_t key)
{
	key ^= key >> 33; /* the mixer of MurmurHash3's fmix64: every key bit moves the bucket */
	key *= 0xff51afd7ed558ccdull;
	key ^= key >> 33;
	key *= 0xc4ceb9fe1a85ec53ull;
	key ^= key >> 33;
	return (unsigned)(key % CLIM_BUCKETS);
}

int
clim_take(uint64_t key, unsigned limit)
{
	unsigned b = clim_bucket_of(key);
	pthread_mutex_t *m = &clim_lock[b % CLIM_STRIPES];
	int rc = 1;
	pthread_mutex_lock(m);
	struct clim_node *n = clim_bucket[b];
	while (n != NULL && n->key != key)
		n = n->next;
	if (n == NULL) {
		n = calloc(1, sizeof(*n));
		if (n == NULL) {
			rc = -1;
			goto out;
		}
		n->key = key;
		n->next = clim_bucket[b];
		clim_bucket[b] = n;
	}
	if (n->count >= limit)
		rc = 0;
	else
		n->count++;
out:
	pthread_mutex_unlock(m);
	return rc;
}

void
clim_give(uint64_t key)
{
	unsigned b = clim_bucket_of(key);
	pthread_mutex_t *m = &clim_lock[b % CLIM_STRIPES];
	pthread_mutex_lock(m);
	struct clim_node **pp = &clim_bucket[b];
	while (*pp != NULL && (*pp)->key != key)
		pp = &(*pp)->next;
	struct clim_node *n = *pp;
	if (n != NULL && n->count > 0 && --n->count == 0) {
		*pp = n->next;
		free(n);
	}
	pthread_mutex_unlock(m);
}

unsigned
clim_count(uint64_t key)
{
	unsigned b = clim_bucket_of(key), c = 0;
	pthread_mutex_t *m = &clim_lock[b % CLIM_STRIPES];
	pthread_mutex_lock(m);
	for (struct clim_node *n = clim_bucket[b]; n != NULL; n = n->next)
		if (n->key == key)
			c = n->count;
	pthread_mutex_unlock(m);
	return c;
}
