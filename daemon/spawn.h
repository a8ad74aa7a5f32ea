/*
 * spawn.h - start a child program for the daemon: helpers (helper.c) and piped logs
 * (logpipe.c) start theirs the same way.
 *
 * The child gets in_fd as its stdin and, when out_fd >= 0, out_fd as its stdout; stderr stays
 * the daemon's (its error log). Nothing else of the daemon's (client sockets, c-ares, LMDB,
 * other children's pipes) reaches it. It runs with no signal blocked (the workers block
 * every signal) and the daemon's signals at their defaults, in a process group of its own: a
 * ^C at the daemon's terminal is the daemon's to handle; the child goes when its stdin closes
 * or the daemon kills its group.
 */
#ifndef GH_SPAWN_H
#define GH_SPAWN_H

#include <sys/types.h>

/* Start path with argv (argv[0] included, NULL-terminated) and the daemon's environment.
 * The caller still owns in_fd and out_fd and closes its copies. Returns 0 with *pid, or
 * posix_spawn's error number. */
int spawn_child(pid_t *pid, const char *path, char *const argv[], int in_fd, int out_fd);

#endif
