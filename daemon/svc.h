/*
 * svc.h - the daemon as a system service: readiness notification to the service manager
 * (sd_notify protocol), the pid file, user and group lookup, and dropping root privileges.
 *
 * Called by main.c (start-up, reload, stop) and by cfg.c (User and Group are resolved when the
 * configuration is loaded, so `gatehouse -t` reports an unknown user with its FILE:LINE).
 * Nothing here is used by the workers; none of it is thread-safe beyond what libc gives.
 */
#ifndef GH_SVC_H
#define GH_SVC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Send one notification (newline-separated KEY=VALUE assignments, e.g. "READY=1\nSTATUS=ok")
 * to the socket named by $NOTIFY_SOCKET: a path, or '@' and a name in the abstract namespace.
 * Returns 1 when sent, 0 when NOTIFY_SOCKET is not set (not run by a service manager), or -1
 * with *err set to a static reason. */
int svc_notify(const char *state, const char **err);

/* CLOCK_MONOTONIC in microseconds, for MONOTONIC_USEC= next to RELOADING=1. */
uint64_t svc_monotonic_usec(void);

/* The service manager's watchdog interval: $WATCHDOG_USEC in microseconds when it is set to a
 * positive number and $WATCHDOG_PID is unset or names this process (sd_watchdog_enabled(3));
 * 0 when there is no watchdog. The daemon must then send "WATCHDOG=1" more often than that. */
uint64_t svc_watchdog_usec(void);

/* The pid file: created (mode 0644) or reused, locked with flock(2) for as long as the daemon
 * runs, and filled with our pid. A second daemon with the same PidFile therefore refuses to
 * start, while a stale file left by a crash is simply reused. */
struct svc_pidfile {
	int fd;                    /* -1 when closed */
	char *path;
};

/* Open, lock and write path. Returns 0, or -1 with a message in err ("... is locked by
 * process N: is gatehouse already running?" or the system error). pf is closed on failure. */
int svc_pidfile_open(struct svc_pidfile *pf, const char *path, char *err, size_t errlen);

/* Remove the file (when the directory still lets us, which it may not after the privilege
 * drop) and release the lock. Returns 0 when the file was removed, -1 with errno otherwise.
 * Safe to call on a closed pf. */
int svc_pidfile_close(struct svc_pidfile *pf);

/* For `gatehouse -k`: is a daemon holding the lock of the pid file at path? Returns 1 when one
 * is: *pid is the number in the file and *fd an open descriptor of the file, to watch the lock
 * with svc_pidfile_held (the caller closes it). Returns 0 when none is (no file, or nobody
 * holds its lock) and -1 on other errors, both with the reason in err. Never takes the lock
 * for longer than the test itself. */
int svc_pidfile_probe(const char *path, long *pid, int *fd, char *err, size_t errlen);

/* 1 while another process still holds the lock of the pid file open as fd, 0 once it is free
 * (the daemon has exited: its descriptors are closed even before it is reaped). */
int svc_pidfile_held(int fd);

/* 1 while process pid exists and is not a zombie (exited, waiting for its parent), else 0. */
int svc_pid_running(long pid);

/* Resolve "NAME" or "#UID" (Apache's notation). On success returns 0 and fills uid and the
 * user's primary gid; otherwise -1 with *why static ("no such user", or the lookup error). */
int svc_user_lookup(const char *name, uid_t *uid, gid_t *gid, const char **why);

/* Resolve "NAME" or "#GID". Returns 0, or -1 with *why static. */
int svc_group_lookup(const char *name, gid_t *gid, const char **why);

/* Create path as an empty file owned by uid:gid with mode 0640 if it does not exist (never
 * following a symbolic link, never touching an existing file), so that a log opened as root
 * can still be reopened after the privilege drop. Returns 1 when created, 0 when the file
 * already existed, -1 with errno on other errors. */
int svc_file_precreate(const char *path, uid_t uid, gid_t gid);

/* Become uid:gid for good: supplementary groups of user (or none when user is NULL), then the
 * group, then the user (real, effective and saved IDs), then a check that root cannot be
 * regained. The caller must be root and no other thread may exist yet. Returns 0, or -1 with a
 * message in err. */
int svc_drop(const char *user, uid_t uid, gid_t gid, char *err, size_t errlen);

#endif
