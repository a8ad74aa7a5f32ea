/*
 * clientlim.h - MaxConnectionsPerClient: how many client connections each client holds, counted
 * across every worker (issue 10, item 14), so that one client cannot take the whole
 * MaxConnections.
 *
 * A client is an IPv4 address (an IPv4-mapped IPv6 peer counts as its IPv4 address), or an
 * IPv6 /64: a host forms as many addresses in its /64 as it likes (privacy addresses, SLAAC),
 * so counting IPv6 peers by address would not limit one host at all.
 *
 * Called by proxy.c when it accepts (clim_take) and closes (clim_give) a client connection:
 * both may be called from any worker thread. Never on the request path.
 */
#ifndef GH_CLIENTLIM_H
#define GH_CLIENTLIM_H

#include <stdint.h>
#include <sys/socket.h>

/* The client a peer address counts as; returns 0, or -1 for an address family that is not
 * counted (a socketpair of the proxy's own). */
int clim_key(const struct sockaddr_storage *peer, uint64_t *key);

/* Count one more connection of client key if it has fewer than limit: returns 1 (counted:
 * clim_give it when the connection closes), 0 (refused: the client holds limit already), or
 * -1 (not counted: out of memory; the connection is let in). */
int clim_take(uint64_t key, unsigned limit);
void clim_give(uint64_t key);

/* Connections now counted for client key (the status page, tests). */
unsigned clim_count(uint64_t key);

#endif
