/*
 * svc.c - the daemon as a system service (see svc.h): sd_notify datagrams, the pid file, user
 * and group lookup, and the privilege drop.
 *
 * Why the notification datagram is written here rather than with libsystemd's sd_notify():
 * the protocol is one AF_UNIX datagram of newline-separated KEY=VALUE text sent to the socket
 * named by $NOTIFY_SOCKET (a path, or '@' for the abstract namespace), which systemd documents
 * as a stable interface (sd_notify(3), "Notes") that other service managers implement too.
 * It is twenty lines; linking libsystemd for it would add a run-time dependency and a build
 * dependency for nothing else Gatehouse uses. The credentials systemd needs to attribute the
 * message to our pid are attached by the kernel (SO_PASSCRED on the receiving socket).
 *
 * The pid file is written by root before the privilege drop (so it may live in a directory only
 * root can write, as /run) and locked for the daemon's lifetime; at exit it is removed if the
 * directory still lets the (by then unprivileged) process do so. The lock, not the file's
 * existence, says whether a daemon is running.
 *
 * Called from main.c's thread only (cfg.c's lookups run there too, at load and reload).
 */
#include "daemon/svc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SVC_PW_BUF_MAX (1024 * 1024) /* getpwnam_r buffer ceiling: a passwd line is small */

/* ---- sd_notify ---- */

int
svc_notify(const char *state, const char **err)
{
	const char *e = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	size_t n, len;
	int fd;

	if (e == NULL || e[0] == '\0')
		return 0;
	n = strlen(e);
	if ((e[0] != '/' && e[0] != '@') || n < 2) {
		*err = "NOTIFY_SOCKET is neither an absolute path nor an abstract socket name";
		return -1;
	}
	if (n >= sizeof(sun.sun_path)) {
		*err = "NOTIFY_SOCKET is too long";
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, e, n);
	if (e[0] == '@')
		sun.sun_path[0] = '\0'; /* abstract: the length below ends the name, no NUL */
	len = offsetof(struct sockaddr_un, sun_path) + n;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*err = strerror(errno);
		return -1;
	}
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (const struct sockaddr *)&sun,
	           (socklen_t)len) < 0) {
		*err = strerror(errno);
		close(fd);
		return -1;
	}
	close(fd);
	return 1;
}

uint64_t
svc_monotonic_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t
svc_watchdog_usec(void)
{
	const char *us = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	unsigned long long v = 0;
	char *end = NULL;

	if (us == NULL || us[0] < '0' || us[0] > '9')
		return 0;
	errno = 0;
	v = strtoull(us, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0)
		return 0;
	if (pid != NULL && pid[0] != '\0') {
		long p = strtol(pid, &end, 10);

		if (*end != '\0' || p != (long)getpid())
			return 0; /* meant for another process (our parent, say) */
	}
	return (uint64_t)v;
}

/* ---- pid file ---- */

/* The pid written in an open pid file, or 0 when it holds none. */
static long
svc_pidfile_holder(int fd)
{
	char buf[32];
	ssize_t r = pread(fd, buf, sizeof(buf) - 1, 0);
	long pid = 0;

	if (r <= 0)
		return 0;
	buf[r] = '\0';
	for (ssize_t i = 0; i < r && buf[i] >= '0' && buf[i] <= '9' && pid < 100000000; i++)
		pid = pid * 10 + (buf[i] - '0');
	return pid;
}

int
svc_pidfile_open(struct svc_pidfile *pf, const char *path, char *err, size_t errlen)
{
	char line[32];
	struct stat st;
	int fd, n;

	pf->fd = -1;
	pf->path = NULL;
	/* O_NOFOLLOW: a symbolic link planted in a shared directory must not redirect us. */
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0644);
	if (fd < 0) {
		snprintf(err, errlen, "PidFile %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "PidFile %s: not a regular file", path);
		goto fail;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK)
			snprintf(err, errlen, "PidFile %s is locked by process %ld: is gatehouse "
			         "already running?", path, svc_pidfile_holder(fd));
		else
			snprintf(err, errlen, "PidFile %s: lock: %s", path, strerror(errno));
		goto fail;
	}
	n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)n, 0) != n) {
		snprintf(err, errlen, "PidFile %s: write: %s", path, strerror(errno));
		goto fail;
	}
	pf->path = strdup(path);
	if (pf->path == NULL) {
		snprintf(err, errlen, "PidFile %s: out of memory", path);
		goto fail;
	}
	pf->fd = fd;
	return 0;
fail:
	close(fd);
	return -1;
}

int
svc_pidfile_held(int fd)
{
	/* A shared lock is refused while the daemon holds its exclusive one; when granted, it is
	 * given back at once. */
	if (flock(fd, LOCK_SH | LOCK_NB) != 0)
		return errno == EWOULDBLOCK ? 1 : 0;
	(void)flock(fd, LOCK_UN);
	return 0;
}

int
svc_pid_running(long pid)
{
	char path[64], buf[512];
	const char *paren;
	ssize_t n;
	int fd;

	if (pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno == ESRCH))
		return 0;
	/* /proc/PID/stat: "PID (comm) STATE ...", comm may hold spaces and parentheses. */
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : 1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 1;
	buf[n] = '\0';
	paren = strrchr(buf, ')');
	if (paren == NULL || paren[1] != ' ')
		return 1;
	return paren[2] != 'Z' && paren[2] != 'X';
}

int
svc_pidfile_probe(const char *path, long *pid, int *fd, char *err, size_t errlen)
{
	int f = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);

	*fd = -1;
	*pid = 0;
	if (f < 0) {
		int e = errno;

		if (e == ENOENT)
			snprintf(err, errlen, "PidFile %s does not exist", path);
		else
			snprintf(err, errlen, "PidFile %s: %s", path, strerror(e));
		return e == ENOENT ? 0 : -1;
	}
	if (!svc_pidfile_held(f)) {
		snprintf(err, errlen, "PidFile %s is not locked by any process", path);
		close(f);
		return 0;
	}
	*pid = svc_pidfile_holder(f);
	if (*pid <= 0) {
		snprintf(err, errlen, "PidFile %s is locked but holds no process ID", path);
		close(f);
		return -1;
	}
	*fd = f;
	return 1;
}

int
svc_pidfile_close(struct svc_pidfile *pf)
{
	int rc = 0, saved = 0;

	if (pf->fd < 0)
		return 0;
	/* Unlink while still holding the lock, so no other daemon sees an unlocked file of ours. */
	if (unlink(pf->path) != 0) {
		rc = -1;
		saved = errno;
	}
	close(pf->fd);
	pf->fd = -1;
	free(pf->path);
	pf->path = NULL;
	errno = saved;
	return rc;
}

/* ---- users and groups ---- */

/* "#123" -> 123. Returns 0, or -1 when s is not '#' and 1 to 10 digits within int range. */
static int
svc_id_number(const char *s, unsigned long *out)
{
	unsigned long v = 0;
	size_t n;

	if (s[0] != '#')
		return -1;
	s++;
	n = strlen(s);
	if (n == 0 || n > 10)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 0x7fffffffUL)
		return -1;
	*out = v;
	return 0;
}

int
svc_user_lookup(const char *name, uid_t *uid, gid_t *gid, const char **why)
{
	struct passwd pw, *res = NULL;
	unsigned long num = 0;
	int numeric = name[0] == '#';
	size_t size = 1024;
	char *buf = NULL;
	int rc = -1, e = 0;

	if (name[0] == '\0') {
		*why = "empty user name";
		return -1;
	}
	if (numeric && svc_id_number(name, &num) != 0) {
		*why = "expected a user name or #UID";
		return -1;
	}
	/* Grow the buffer on ERANGE; bounded by SVC_PW_BUF_MAX. */
	for (; size <= SVC_PW_BUF_MAX; size *= 2) {
		char *nb = realloc(buf, size);

		if (nb == NULL) {
			*why = "out of memory";
			goto out;
		}
		buf = nb;
		if (numeric)
			e = getpwuid_r((uid_t)num, &pw, buf, size, &res);
		else
			e = getpwnam_r(name, &pw, buf, size, &res);
		if (e != ERANGE)
			break;
	}
	if (e != 0) {
		*why = e == ERANGE ? "user entry too large" : strerror(e);
		goto out;
	}
	if (res == NULL) {
		*why = numeric ? "no user has this uid" : "no such user";
		goto out;
	}
	*uid = pw.pw_uid;
	*gid = pw.pw_gid;
	rc = 0;
out:
	free(buf);
	return rc;
}

int
svc_group_lookup(const char *name, gid_t *gid, const char **why)
{
	struct group gr, *res = NULL;
	unsigned long num = 0;
	size_t size = 1024;
	char *buf = NULL;
	int rc = -1, e = 0;

	if (name[0] == '\0') {
		*why = "empty group name";
		return -1;
	}
	if (name[0] == '#') {
		/* A bare number is enough for setgid(); no entry is needed. */
		if (svc_id_number(name, &num) != 0) {
			*why = "expected a group name or #GID";
			return -1;
		}
		*gid = (gid_t)num;
		return 0;
	}
	for (; size <= SVC_PW_BUF_MAX; size *= 2) {
		char *nb = realloc(buf, size);

		if (nb == NULL) {
			*why = "out of memory";
			goto out;
		}
		buf = nb;
		e = getgrnam_r(name, &gr, buf, size, &res);
		if (e != ERANGE)
			break;
	}
	if (e != 0) {
		*why = e == ERANGE ? "group entry too large" : strerror(e);
		goto out;
	}
	if (res == NULL) {
		*why = "no such group";
		goto out;
	}
	*gid = gr.gr_gid;
	rc = 0;
out:
	free(buf);
	return rc;
}

/* ---- files and privileges ---- */

int
svc_file_precreate(const char *path, uid_t uid, gid_t gid)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0640);

	if (fd < 0)
		return errno == EEXIST ? 0 : -1;
	if (fchown(fd, uid, gid) != 0) {
		int saved = errno;

		close(fd);
		unlink(path);
		errno = saved;
		return -1;
	}
	close(fd);
	return 1;
}

int
svc_drop(const char *user, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	if (user != NULL && user[0] != '#') {
		if (initgroups(user, gid) != 0) {
			snprintf(err, errlen, "initgroups(%s): %s", user, strerror(errno));
			return -1;
		}
	} else if (setgroups(0, NULL) != 0) {
		snprintf(err, errlen, "setgroups: %s", strerror(errno));
		return -1;
	}
	if (setresgid(gid, gid, gid) != 0) {
		snprintf(err, errlen, "setgid(%lu): %s", (unsigned long)gid, strerror(errno));
		return -1;
	}
	if (setresuid(uid, uid, uid) != 0) {
		snprintf(err, errlen, "setuid(%lu): %s", (unsigned long)uid, strerror(errno));
		return -1;
	}
	/* Belt and braces: with every uid changed, root must be out of reach. */
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		snprintf(err, errlen, "still able to become root after dropping to uid %lu",
		         (unsigned long)uid);
		return -1;
	}
	return 0;
}
