/*
 * test_svc.c - daemon/svc.c and the lifecycle directives in daemon/cfg.c: sd_notify datagrams
 * to a path and to an abstract socket (received and compared byte for byte), the pid file
 * (content, lock against a second daemon, stale file reuse, symlink refusal, removal), user and
 * group lookup (names and #IDs), log pre-creation, the privilege drop (in a child process, when
 * run as root), and User/Group/PidFile in the config loader; for `gatehouse -k`, the probe of a
 * pid file's lock and whether a process still runs; the watchdog interval from WATCHDOG_USEC
 * and WATCHDOG_PID.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pwd.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/cfg.h"
#include "daemon/svc.h"

static char tdir[64];

static int
setup_dir(void **state)
{
	(void)state;
	umask(022);
	snprintf(tdir, sizeof(tdir), "/tmp/gh-test-svc-XXXXXX");
	if (!mkdtemp(tdir))
		return -1;
	return 0;
}

static int
teardown_dir(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
tpath(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tdir, name);
}

/* A datagram socket bound to addr (len bytes), with a receive timeout. */
static int
dgram_bound(const struct sockaddr_un *addr, socklen_t len)
{
	struct timeval tv = { 2, 0 };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (const struct sockaddr *)addr, len), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* ---- sd_notify ---- */

static void
test_notify_without_socket_is_a_no_op(void **state)
{
	const char *why = NULL;

	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(svc_notify("READY=1", &why), 0);
	setenv("NOTIFY_SOCKET", "", 1);
	assert_int_equal(svc_notify("READY=1", &why), 0);
	unsetenv("NOTIFY_SOCKET");
}

static void
test_notify_sends_the_state_to_a_path_socket(void **state)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const char *why = NULL;
	char buf[256];
	int fd;
	ssize_t n;

	(void)state;
	tpath(sun.sun_path, sizeof(sun.sun_path), "notify");
	fd = dgram_bound(&sun, sizeof(sun));
	setenv("NOTIFY_SOCKET", sun.sun_path, 1);
	assert_int_equal(svc_notify("READY=1\nSTATUS=listening on 127.0.0.1:3128", &why), 1);
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "READY=1\nSTATUS=listening on 127.0.0.1:3128");
	unsetenv("NOTIFY_SOCKET");
	close(fd);
}

static void
test_notify_sends_to_an_abstract_socket(void **state)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char env[100], buf[256];
	const char *why = NULL;
	socklen_t len;
	ssize_t n;
	int fd;

	(void)state;
	snprintf(env, sizeof(env), "@gh-test-svc-%ld", (long)getpid());
	/* The abstract name is the bytes after the leading NUL, without a terminator. */
	memcpy(sun.sun_path, env, strlen(env));
	sun.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(env));
	fd = dgram_bound(&sun, len);
	setenv("NOTIFY_SOCKET", env, 1);
	assert_int_equal(svc_notify("STOPPING=1", &why), 1);
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	assert_int_equal(n, 10);
	buf[n] = '\0';
	assert_string_equal(buf, "STOPPING=1");
	unsetenv("NOTIFY_SOCKET");
	close(fd);
}

static void
test_notify_reports_bad_or_missing_sockets(void **state)
{
	char missing[200], longname[200];
	const char *why = NULL;

	(void)state;
	setenv("NOTIFY_SOCKET", "relative/socket", 1);
	assert_int_equal(svc_notify("READY=1", &why), -1);
	assert_non_null(strstr(why, "absolute path"));
	memset(longname, 'x', sizeof(longname) - 1);
	longname[0] = '/';
	longname[sizeof(longname) - 1] = '\0';
	setenv("NOTIFY_SOCKET", longname, 1);
	why = NULL;
	assert_int_equal(svc_notify("READY=1", &why), -1);
	assert_non_null(strstr(why, "too long"));
	tpath(missing, sizeof(missing), "nobody-listens-here");
	setenv("NOTIFY_SOCKET", missing, 1);
	why = NULL;
	assert_int_equal(svc_notify("READY=1", &why), -1);
	assert_string_equal(why, strerror(ENOENT));
	unsetenv("NOTIFY_SOCKET");
}

static void
test_monotonic_usec_advances(void **state)
{
	uint64_t a, b;

	(void)state;
	a = svc_monotonic_usec();
	usleep(2000);
	b = svc_monotonic_usec();
	assert_true(a > 0);
	assert_true(b >= a + 1000);
}

/* ---- pid file ---- */

static void
read_file(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static void
test_pidfile_holds_our_pid_and_locks_out_a_second_daemon(void **state)
{
	struct svc_pidfile a, b;
	char path[300], want[32], got[64], err[512];

	(void)state;
	tpath(path, sizeof(path), "gh.pid");
	assert_int_equal(svc_pidfile_open(&a, path, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%ld\n", (long)getpid());
	read_file(path, got, sizeof(got));
	assert_string_equal(got, want);

	/* A second open file description cannot take the lock, even in this process. */
	err[0] = '\0';
	assert_int_equal(svc_pidfile_open(&b, path, err, sizeof(err)), -1);
	assert_int_equal(b.fd, -1);
	snprintf(want, sizeof(want), "locked by process %ld", (long)getpid());
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, "already running"));
	read_file(path, got, sizeof(got)); /* the loser did not truncate it */
	snprintf(want, sizeof(want), "%ld\n", (long)getpid());
	assert_string_equal(got, want);

	assert_int_equal(svc_pidfile_close(&a), 0);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(svc_pidfile_close(&a), 0); /* closing twice is harmless */
}

static void
test_pidfile_reuses_a_stale_file(void **state)
{
	struct svc_pidfile a;
	char path[300], want[32], got[64], err[512];
	FILE *f;

	(void)state;
	tpath(path, sizeof(path), "stale.pid");
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("1234567890123\n", f); /* longer than any pid: must be truncated */
	fclose(f);
	assert_int_equal(svc_pidfile_open(&a, path, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%ld\n", (long)getpid());
	read_file(path, got, sizeof(got));
	assert_string_equal(got, want);
	assert_int_equal(svc_pidfile_close(&a), 0);
}

static void
test_pidfile_refuses_symlinks_and_missing_directories(void **state)
{
	struct svc_pidfile a;
	char path[300], target[300], err[512];

	(void)state;
	tpath(target, sizeof(target), "target");
	tpath(path, sizeof(path), "link.pid");
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(svc_pidfile_open(&a, path, err, sizeof(err)), -1);
	assert_int_equal(access(target, F_OK), -1); /* the link was not followed */
	assert_non_null(strstr(err, path));

	tpath(path, sizeof(path), "no/such/dir/gh.pid");
	assert_int_equal(svc_pidfile_open(&a, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, strerror(ENOENT)));
}

static void
test_pidfile_probe_finds_the_holder_and_only_it(void **state)
{
	struct svc_pidfile a;
	char path[300], err[512];
	long pid = -1;
	int fd = -1;
	FILE *f;

	(void)state;
	tpath(path, sizeof(path), "probe.pid");
	assert_int_equal(svc_pidfile_probe(path, &pid, &fd, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "does not exist"));
	assert_int_equal(fd, -1);

	f = fopen(path, "w"); /* a stale file: a pid, but nobody holds the lock */
	assert_non_null(f);
	fputs("1\n", f);
	fclose(f);
	assert_int_equal(svc_pidfile_probe(path, &pid, &fd, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "not locked"));
	assert_int_equal(fd, -1);

	assert_int_equal(svc_pidfile_open(&a, path, err, sizeof(err)), 0);
	assert_int_equal(svc_pidfile_probe(path, &pid, &fd, err, sizeof(err)), 1);
	assert_int_equal(pid, (long)getpid());
	assert_true(fd >= 0);
	assert_int_equal(svc_pidfile_held(fd), 1);
	/* the probe took nothing: the holder still holds it, and another daemon is still refused */
	struct svc_pidfile b;
	assert_int_equal(svc_pidfile_open(&b, path, err, sizeof(err)), -1);
	assert_int_equal(svc_pidfile_close(&a), 0); /* the daemon exits */
	assert_int_equal(svc_pidfile_held(fd), 0);
	close(fd);
}

static void
test_pid_running_is_false_for_zombies_and_the_gone(void **state)
{
	pid_t child;
	int status;

	(void)state;
	assert_int_equal(svc_pid_running((long)getpid()), 1);
	child = fork();
	assert_true(child >= 0);
	if (child == 0)
		_exit(0);
	/* exited, not reaped yet: a zombie counts as gone (it is for `gatehouse -k stop`) */
	for (int i = 0; i < 200 && svc_pid_running((long)child); i++)
		usleep(10000);
	assert_int_equal(svc_pid_running((long)child), 0);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_int_equal(svc_pid_running((long)child), 0);
	assert_int_equal(svc_pid_running(0), 0);
}

static void
test_watchdog_usec_from_the_environment(void **state)
{
	char me[32];

	(void)state;
	unsetenv("WATCHDOG_PID");
	unsetenv("WATCHDOG_USEC");
	assert_int_equal(svc_watchdog_usec(), 0);
	setenv("WATCHDOG_USEC", "30000000", 1);
	assert_int_equal(svc_watchdog_usec(), 30000000);
	snprintf(me, sizeof(me), "%ld", (long)getpid());
	setenv("WATCHDOG_PID", me, 1);
	assert_int_equal(svc_watchdog_usec(), 30000000);
	setenv("WATCHDOG_PID", "1", 1); /* meant for another process */
	assert_int_equal(svc_watchdog_usec(), 0);
	unsetenv("WATCHDOG_PID");
	for (const char *bad = "0\0-5\0""12x\0\0"; *bad; bad += strlen(bad) + 1) {
		setenv("WATCHDOG_USEC", bad, 1);
		assert_int_equal(svc_watchdog_usec(), 0);
	}
	setenv("WATCHDOG_USEC", "", 1);
	assert_int_equal(svc_watchdog_usec(), 0);
	unsetenv("WATCHDOG_USEC");
}

/* ---- users, groups, files ---- */

static void
test_user_lookup_by_name_and_number(void **state)
{
	const char *why = NULL;
	uid_t uid = 1;
	gid_t gid = 1;

	(void)state;
	assert_int_equal(svc_user_lookup("root", &uid, &gid, &why), 0);
	assert_int_equal(uid, 0);
	assert_int_equal(gid, 0);
	uid = 1;
	gid = 1;
	assert_int_equal(svc_user_lookup("#0", &uid, &gid, &why), 0);
	assert_int_equal(uid, 0);
	assert_int_equal(gid, 0);
	assert_int_equal(svc_user_lookup("gh-no-such-user-x", &uid, &gid, &why), -1);
	assert_string_equal(why, "no such user");
	assert_int_equal(svc_user_lookup("#2147483000", &uid, &gid, &why), -1);
	assert_string_equal(why, "no user has this uid");
	assert_int_equal(svc_user_lookup("#12a", &uid, &gid, &why), -1);
	assert_int_equal(svc_user_lookup("#99999999999", &uid, &gid, &why), -1);
	assert_int_equal(svc_user_lookup("#", &uid, &gid, &why), -1);
	assert_int_equal(svc_user_lookup("", &uid, &gid, &why), -1);
}

static void
test_group_lookup_by_name_and_number(void **state)
{
	const char *why = NULL;
	gid_t gid = 1;

	(void)state;
	assert_int_equal(svc_group_lookup("root", &gid, &why), 0);
	assert_int_equal(gid, 0);
	assert_int_equal(svc_group_lookup("#4321", &gid, &why), 0);
	assert_int_equal(gid, 4321);
	assert_int_equal(svc_group_lookup("gh-no-such-group-x", &gid, &why), -1);
	assert_string_equal(why, "no such group");
	assert_int_equal(svc_group_lookup("#-1", &gid, &why), -1);
	assert_int_equal(svc_group_lookup("", &gid, &why), -1);
}

static void
test_precreate_makes_an_owned_file_once_and_never_follows_links(void **state)
{
	char path[300], link[300], target[300];
	uid_t uid = geteuid() == 0 ? 65534 : geteuid();
	gid_t gid = geteuid() == 0 ? 65534 : getegid();
	struct stat st;
	FILE *f;

	(void)state;
	tpath(path, sizeof(path), "access.log");
	assert_int_equal(svc_file_precreate(path, uid, gid), 1);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, uid);
	assert_int_equal(st.st_gid, gid);
	assert_int_equal(st.st_mode & 0777, 0640);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("kept\n", f);
	fclose(f);
	assert_int_equal(svc_file_precreate(path, uid, gid), 0); /* exists: untouched */
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 5);

	tpath(target, sizeof(target), "elsewhere");
	tpath(link, sizeof(link), "error.log");
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(svc_file_precreate(link, uid, gid), 0);
	assert_int_equal(access(target, F_OK), -1);

	tpath(path, sizeof(path), "missing-dir/x.log");
	assert_int_equal(svc_file_precreate(path, uid, gid), -1);
	assert_int_equal(errno, ENOENT);
}

/* In a child: drop to nobody and report what the kernel says about our ids. */
static void
test_drop_changes_every_id_for_good(void **state)
{
	char err[256];
	int status;
	pid_t pid;

	(void)state;
	if (geteuid() != 0)
		skip();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		uid_t r, e, s;
		gid_t gr, ge, gs, groups[8];
		int ng;

		if (svc_drop("nobody", 65534, 65534, err, sizeof(err)) != 0)
			_exit(10);
		if (getresuid(&r, &e, &s) != 0 || r != 65534 || e != 65534 || s != 65534)
			_exit(11);
		if (getresgid(&gr, &ge, &gs) != 0 || gr != 65534 || ge != 65534 || gs != 65534)
			_exit(12);
		ng = getgroups(8, groups);
		for (int i = 0; i < ng; i++)
			if (groups[i] == 0)
				_exit(13);
		if (setuid(0) == 0 || seteuid(0) == 0)
			_exit(14);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	/* A numeric user has no supplementary groups at all. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (svc_drop("#65534", 65534, 65534, err, sizeof(err)) != 0)
			_exit(20);
		if (getgroups(0, NULL) != 0)
			_exit(21);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- the directives ---- */

static struct cfg *
load_ok(const char *text)
{
	struct cfg *c = NULL;
	char err[512];

	if (cfg_load_string("t.conf", text, &c, err, sizeof(err)) != 0)
		fail_msg("refused: %s\n--- config:\n%s", err, text);
	return c;
}

static void
load_bad(const char *text, const char *want)
{
	struct cfg *c = NULL;
	char err[512];

	if (cfg_load_string("t.conf", text, &c, err, sizeof(err)) == 0)
		fail_msg("accepted:\n%s", text);
	assert_null(c);
	assert_string_equal(err, want);
}

static void
test_cfg_user_group_and_pidfile(void **state)
{
	char cwd[4096], want[4200];
	struct cfg *c;

	(void)state;
	c = load_ok("Listen 127.0.0.1:3128\n");
	assert_null(c->user);
	assert_null(c->group);
	assert_null(c->pid_file);
	cfg_unref(&c);

	c = load_ok("User root\n");
	assert_string_equal(c->user, "root");
	assert_int_equal(c->uid, 0);
	assert_int_equal(c->gid, 0); /* root's primary group */
	assert_null(c->group);
	cfg_unref(&c);

	/* Group wins over the user's primary group, whichever comes first. */
	c = load_ok("User nobody\nGroup #4321\n");
	assert_int_equal(c->uid, 65534);
	assert_int_equal(c->gid, 4321);
	assert_string_equal(c->group, "#4321");
	cfg_unref(&c);
	c = load_ok("Group root\nUser nobody\n");
	assert_int_equal(c->uid, 65534);
	assert_int_equal(c->gid, 0);
	cfg_unref(&c);

	c = load_ok("PidFile /run/gatehouse/gatehouse.pid\n");
	assert_string_equal(c->pid_file, "/run/gatehouse/gatehouse.pid");
	cfg_unref(&c);
	/* Relative paths are relative to the config's directory: here, the current one. */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	snprintf(want, sizeof(want), "%s/run/g.pid", cwd);
	c = load_ok("PidFile run/g.pid\n");
	assert_string_equal(c->pid_file, want);
	cfg_unref(&c);

	load_bad("Listen 3128\nUser gh-no-such-user-x\n",
	         "t.conf:2: User: \"gh-no-such-user-x\": no such user: create it (adduser "
	         "--system --group gh-no-such-user-x), or name another User");
	load_bad("Group gh-no-such-group-x\n",
	         "t.conf:1: Group: \"gh-no-such-group-x\": no such group: create it (addgroup "
	         "--system gh-no-such-group-x), or name another Group");
	load_bad("User #12x\n", "t.conf:1: User: \"#12x\": expected a user name or #UID");
	load_bad("User a b\n", "t.conf:1: User: expected 1 argument, got 2");
	load_bad("PidFile -\n", "t.conf:1: PidFile: expected a file name");
	load_bad("<Proxy *>\n  User root\n</Proxy>\n", "t.conf:2: User not allowed in <Proxy>");
}

static void
test_builtin_default_names_an_unprivileged_user(void **state)
{
	struct cfg *c = NULL;
	char err[512];

	(void)state;
	assert_non_null(strstr(cfg_default_text, "\nUser nobody\n"));
	assert_int_equal(cfg_load(NULL, &c, err, sizeof(err)), 0);
	/* as root, the package's account when it exists (it owns /var/cache/gatehouse then) */
	assert_string_equal(c->user, geteuid() == 0 && getpwnam("_gatehouse") ? "_gatehouse" :
	                    "nobody");
	assert_true(c->uid != 0);
	cfg_unref(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_notify_without_socket_is_a_no_op),
		cmocka_unit_test(test_notify_sends_the_state_to_a_path_socket),
		cmocka_unit_test(test_notify_sends_to_an_abstract_socket),
		cmocka_unit_test(test_notify_reports_bad_or_missing_sockets),
		cmocka_unit_test(test_monotonic_usec_advances),
		cmocka_unit_test(test_pidfile_holds_our_pid_and_locks_out_a_second_daemon),
		cmocka_unit_test(test_pidfile_reuses_a_stale_file),
		cmocka_unit_test(test_pidfile_refuses_symlinks_and_missing_directories),
		cmocka_unit_test(test_pidfile_probe_finds_the_holder_and_only_it),
		cmocka_unit_test(test_pid_running_is_false_for_zombies_and_the_gone),
		cmocka_unit_test(test_watchdog_usec_from_the_environment),
		cmocka_unit_test(test_user_lookup_by_name_and_number),
		cmocka_unit_test(test_group_lookup_by_name_and_number),
		cmocka_unit_test(test_precreate_makes_an_owned_file_once_and_never_follows_links),
		cmocka_unit_test(test_drop_changes_every_id_for_good),
		cmocka_unit_test(test_cfg_user_group_and_pidfile),
		cmocka_unit_test(test_builtin_default_names_an_unprivileged_user),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
