/*
 * test_clientlim.c - MaxConnectionsPerClient's counts (daemon/clientlim.c): which peers count as
 * one client (an IPv4 address, an IPv4-mapped peer as its IPv4 address, an IPv6 /64), the limit,
 * a slot given back being usable again, and counts kept right by two threads at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/un.h>

#include "daemon/clientlim.h"

static uint64_t
key_of(const char *addr)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (strchr(addr, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, addr, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, addr, &s4->sin_addr), 1);
	}
	uint64_t k = 0;
	assert_int_equal(clim_key(&ss, &k), 0);
	return k;
}

static void
clim_clients_are_ipv4_addresses_and_ipv6_slash_64s(void **state)
{
	(void)state;
	assert_true(key_of("192.0.2.1") != key_of("192.0.2.2"));
	assert_true(key_of("10.0.0.1") == key_of("10.0.0.1"));
	assert_true(key_of("::ffff:192.0.2.1") == key_of("192.0.2.1"));
	assert_true(key_of("2001:db8:1:2::1") == key_of("2001:db8:1:2:aaaa:bbbb:cccc:dddd"));
	assert_true(key_of("2001:db8:1:2::1") != key_of("2001:db8:1:3::1"));
	assert_true(key_of("::1") != key_of("0.0.0.1"));
	assert_true(key_of("::1") != key_of("127.0.0.1"));
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	uint64_t k;
	assert_int_equal(clim_key(&ss, &k), -1); /* the proxy's own socketpairs: not counted */
}

static void
clim_refuses_past_the_limit_and_frees_slots(void **state)
{
	(void)state;
	uint64_t a = key_of("198.51.100.7"), b = key_of("198.51.100.8");
	for (int i = 0; i < 3; i++)
		assert_int_equal(clim_take(a, 3), 1);
	assert_int_equal(clim_take(a, 3), 0);
	assert_int_equal(clim_count(a), 3);
	assert_int_equal(clim_take(b, 3), 1); /* another client is not affected */
	clim_give(a);
	assert_int_equal(clim_count(a), 2);
	assert_int_equal(clim_take(a, 3), 1); /* the freed slot is usable again */
	assert_int_equal(clim_take(a, 3), 0);
	assert_int_equal(clim_take(a, 5), 1); /* a reload that raises the limit */
	for (int i = 0; i < 4; i++)
		clim_give(a);
	clim_give(b);
	assert_int_equal(clim_count(a), 0);
	assert_int_equal(clim_count(b), 0);
	clim_give(a); /* not counted: nothing happens */
	assert_int_equal(clim_count(a), 0);
}

struct clim_worker_arg {
	uint64_t key;
	int refused;
};

static void *
clim_worker(void *p)
{
	struct clim_worker_arg *a = p;
	for (int i = 0; i < 100000; i++) {
		int r = clim_take(a->key, 1000000);
		if (r == 1)
			clim_give(a->key);
		else
			a->refused++;
	}
	return NULL;
}

static void
clim_counts_hold_across_threads(void **state)
{
	(void)state;
	struct clim_worker_arg args[2] = { { key_of("203.0.113.9"), 0 }, { key_of("203.0.113.9"), 0 } };
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, clim_worker, &args[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(args[0].refused + args[1].refused, 0);
	assert_int_equal(clim_count(args[0].key), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(clim_clients_are_ipv4_addresses_and_ipv6_slash_64s),
		cmocka_unit_test(clim_refuses_past_the_limit_and_frees_slots),
		cmocka_unit_test(clim_counts_hold_across_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
