/*
 * preflight.c - the checks a start shares with `gatehouse -t`, and the directories a start
 * creates before the privilege drop (see preflight.h).
 *
 * Why a forked child for the checks: whether uid U with its groups may read a file or write a
 * directory depends on modes, ACLs, every directory above it, read-only mounts and security
 * modules. Rather than re-implementing that from stat(2), a child becomes U exactly as the
 * daemon will (svc_drop: initgroups, setresgid, setresuid) and asks the kernel with access(2)
 * (real and effective IDs are equal after the drop, so access() answers for the IDs the
 * daemon will have). It writes its findings, one line each, to a pipe, and exits.
 *
 * Called by main.c only, before the logs are open and before any thread starts.
 */
#include "daemon/preflight.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/cachecfg.h"
#include "daemon/svc.h"

#define PREFLIGHT_OUT_MAX 8192   /* bytes of findings kept (later ones are dropped) */
#define PREFLIGHT_PATH_MAX 4096

/* What cache_store_open() keeps in CacheRoot (cache/store.c; LMDB's two files). */
static const char *const preflight_store_files[] = {
	"gatehouse.lock", "data.mdb", "lock.mdb", NULL
};

/* Findings, one per line. */
struct preflight_out {
	char buf[PREFLIGHT_OUT_MAX];
	size_t len;
	unsigned n;
};

/* Who the daemon will run as. */
struct preflight_who {
	int as_root;                  /* started as root */
	int drop;                     /* ... and becomes another user (User, not root) */
	uid_t uid;
	gid_t gid;
	char name[256];               /* for messages: User as written, or the starting user */
	char group[256];              /* the group's name, for chgrp hints */
};

__attribute__((format(printf, 2, 3)))
static void
preflight_add(struct preflight_out *o, const char *fmt, ...)
{
	va_list ap;
	size_t room;
	int n;

	o->n++;
	if (o->len > 0 && o->len + 1 < sizeof(o->buf))
		o->buf[o->len++] = '\n';
	room = sizeof(o->buf) - o->len;
	if (room <= 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->len, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (size_t)n < room ? (size_t)n : room - 1;
}

static void
preflight_who_init(const struct cfg *c, struct preflight_who *who)
{
	struct passwd *pw;
	struct group *gr;

	memset(who, 0, sizeof(*who));
	who->as_root = geteuid() == 0;
	who->drop = who->as_root && c->user != NULL && c->uid != 0;
	if (who->drop) {
		who->uid = c->uid;
		who->gid = c->gid;
		snprintf(who->name, sizeof(who->name), "%s", c->user);
	} else {
		who->uid = geteuid();
		who->gid = getegid();
		pw = getpwuid(who->uid);
		if (pw)
			snprintf(who->name, sizeof(who->name), "%s", pw->pw_name);
		else
			snprintf(who->name, sizeof(who->name), "#%lu", (unsigned long)who->uid);
	}
	gr = getgrgid(who->gid);
	if (gr)
		snprintf(who->group, sizeof(who->group), "%s", gr->gr_name);
	else
		snprintf(who->group, sizeof(who->group), "%lu", (unsigned long)who->gid);
}

/* CacheRoot: writable when it exists (with the store's files in it); else creatable. */
static void
preflight_cache_root(const struct cfg *c, const struct preflight_who *who,
                     struct preflight_out *o)
{
	const char *root = c->cache ? c->cache->root : NULL;
	const char *where = c->cache_root_where ? c->cache_root_where : c->path;
	char anc[PREFLIGHT_PATH_MAX];
	struct stat st;

	if (!root)
		return;
	if (stat(root, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			preflight_add(o, "%s: CacheRoot %s is not a directory", where, root);
			return;
		}
		if (access(root, R_OK | W_OK | X_OK) != 0) {
			char hint[PREFLIGHT_PATH_MAX + 300];

			if (who->drop)
				snprintf(hint, sizeof(hint), "give it to that user (chown -R %s %s) or "
				         "choose another CacheRoot", who->name, root);
			else
				snprintf(hint, sizeof(hint), "choose a CacheRoot this user can write");
			preflight_add(o, "%s: CacheRoot %s: user %s cannot write it (%s; it belongs to "
			              "uid %lu, mode %04o): %s", where, root, who->name, strerror(errno),
			              (unsigned long)st.st_uid, (unsigned)(st.st_mode & 07777), hint);
			return;
		}
		/* The store's own files (an earlier start as another user leaves them behind);
		 * other files in the directory are not the store's business. */
		for (size_t i = 0; preflight_store_files[i]; i++) {
			char f[PREFLIGHT_PATH_MAX];

			if (snprintf(f, sizeof(f), "%s/%s", root, preflight_store_files[i]) >=
			    (int)sizeof(f))
				continue;
			if (stat(f, &st) == 0 && access(f, R_OK | W_OK) != 0)
				preflight_add(o, "%s: CacheRoot %s: user %s cannot write %s (%s; it "
				              "belongs to uid %lu): chown -R %s %s", where, root, who->name,
				              f, strerror(errno), (unsigned long)st.st_uid, who->name, root);
		}
		return;
	}
	if (errno != ENOENT) {
		preflight_add(o, "%s: CacheRoot %s: user %s cannot reach it (%s)", where, root,
		              who->name, strerror(errno));
		return;
	}
	/* Missing: the nearest directory that exists must let it be created, by root (then
	 * owned by the user, who only has to reach it) or by the user. */
	if (snprintf(anc, sizeof(anc), "%s", root) >= (int)sizeof(anc)) {
		preflight_add(o, "%s: CacheRoot %s: path too long", where, root);
		return;
	}
	for (;;) {
		char *slash = strrchr(anc, '/');

		if (!slash)
			return;
		if (slash == anc)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (stat(anc, &st) == 0)
			break;
		if (errno != ENOENT) {
			preflight_add(o, "%s: CacheRoot %s: user %s cannot reach %s (%s)", where, root,
			              who->name, anc, strerror(errno));
			return;
		}
		if (strcmp(anc, "/") == 0)
			return;
	}
	if (!S_ISDIR(st.st_mode)) {
		preflight_add(o, "%s: CacheRoot %s cannot be created: %s is not a directory", where,
		              root, anc);
		return;
	}
	if (access(anc, who->as_root ? X_OK : W_OK | X_OK) != 0)
		preflight_add(o, "%s: CacheRoot %s does not exist and user %s cannot %s %s (%s)",
		              where, root, who->name, who->as_root ? "reach" : "create it in", anc,
		              strerror(errno));
}

/* Everything checked as the user the daemon will be (in the child when dropping). */
static void
preflight_as_user(const struct cfg *c, const struct preflight_who *who, struct preflight_out *o)
{
	/* The files were just read by this process; only another user may fail to read them. */
	for (size_t i = 0; who->drop && i < c->nfiles; i++)
		if (access(c->files[i], R_OK) != 0)
			preflight_add(o, "%s: user %s cannot read it (%s), and the daemon reads its "
			              "configuration again as %s on every reload: let group %s read "
			              "it and its directories (chgrp %s FILE; chmod g+r FILE)",
			              c->files[i], who->name, strerror(errno), who->name, who->group,
			              who->group);
	for (size_t i = 0; who->drop && i < c->ndirs; i++)
		if (access(c->dirs[i], R_OK | X_OK) != 0 && errno != ENOENT) /* none: no match */
			preflight_add(o, "%s: user %s cannot list this Include directory (%s), so a "
			              "reload would not see the files in it: let group %s read it "
			              "(chgrp %s DIR; chmod g+rx DIR)", c->dirs[i], who->name,
			              strerror(errno), who->group, who->group);
	preflight_cache_root(c, who, o);
}

/* Run preflight_as_user in a child that became the user; its findings are added to o. */
static void
preflight_run_as(const struct cfg *c, const struct preflight_who *who, struct preflight_out *o)
{
	int p[2], status = 0;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) != 0) {
		preflight_add(o, "%s: cannot check as user %s: pipe: %s", c->path, who->name,
		              strerror(errno));
		return;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		preflight_add(o, "%s: cannot check as user %s: fork: %s", c->path, who->name,
		              strerror(errno));
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pid == 0) {
		static struct preflight_out co;
		char err[512];
		size_t off = 0;

		close(p[0]);
		if (svc_drop(c->user, who->uid, who->gid, err, sizeof(err)) < 0)
			preflight_add(&co, "%s: cannot become User %s: %s", c->path, who->name, err);
		else
			preflight_as_user(c, who, &co);
		while (off < co.len) {
			ssize_t w = write(p[1], co.buf + off, co.len - off);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		_exit(co.n ? 1 : 0);
	}
	close(p[1]);
	{
		char buf[PREFLIGHT_OUT_MAX];
		size_t len = 0;

		for (;;) {
			ssize_t r = read(p[0], buf + len, sizeof(buf) - 1 - len);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0 || (len += (size_t)r) == sizeof(buf) - 1)
				break;
		}
		buf[len] = '\0';
		close(p[0]);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (len > 0)
			preflight_add(o, "%s", buf);
		else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			preflight_add(o, "%s: the check as user %s failed (status %d)", c->path,
			              who->name, status);
	}
}

int
preflight_check(const struct cfg *c, char *err, size_t errlen)
{
	static struct preflight_out o;
	struct preflight_who who;

	memset(&o, 0, sizeof(o));
	preflight_who_init(c, &who);
	if (who.as_root && c->user == NULL)
		preflight_add(&o, "%s: refusing to run as root: no User is named. Add \"User "
		              "_gatehouse\" (or another unprivileged account), or \"User root\" to "
		              "run as root on purpose", c->path);
	else if (who.drop)
		preflight_run_as(c, &who, &o);
	else
		preflight_as_user(c, &who, &o);
	if (errlen > 0)
		snprintf(err, errlen, "%s", o.buf);
	return o.n ? -1 : 0;
}

/* mkdir -p path: every level created gets mode (not reduced by the umask) and, when
 * give is set, uid:gid. */
static int
preflight_mkdirs(const char *what, const char *path, mode_t mode, int give, uid_t uid,
                 gid_t gid, char *err, size_t errlen)
{
	char buf[PREFLIGHT_PATH_MAX];
	struct stat st;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
		snprintf(err, errlen, "%s %s: path too long", what, path);
		return -1;
	}
	for (char *p = buf + 1;; p++) {
		char save = *p;

		if (save != '/' && save != '\0')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) == 0) {
			if (chmod(buf, mode) != 0 || (give && lchown(buf, uid, gid) != 0)) {
				snprintf(err, errlen, "%s %s: cannot set the owner or mode of %s: %s", what,
				         path, buf, strerror(errno));
				return -1;
			}
		} else {
			int e = errno;

			if (e != EEXIST && !(stat(buf, &st) == 0 && S_ISDIR(st.st_mode))) {
				snprintf(err, errlen, "%s %s: cannot create %s: %s", what, path, buf,
				         strerror(e));
				return -1;
			}
		}
		*p = save;
		if (save == '\0')
			return 0;
	}
}

int
preflight_prepare(const struct cfg *c, char *err, size_t errlen)
{
	int as_root = geteuid() == 0;
	int give = as_root && c->user != NULL && c->uid != 0;
	mode_t mode = as_root ? 0750 : 0700;

	if (c->cache && c->cache->root &&
	    preflight_mkdirs("CacheRoot", c->cache->root, mode, give, c->uid, c->gid, err,
	                     errlen) < 0)
		return -1;
	if (c->builtin && c->access_log && c->access_log[0] == '/') {
		char dir[PREFLIGHT_PATH_MAX];
		char *slash;

		snprintf(dir, sizeof(dir), "%s", c->access_log);
		slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = '\0';
			if (preflight_mkdirs("AccessLog", dir, mode, give, c->uid, c->gid, err,
			                     errlen) < 0)
				return -1;
		}
	}
	return 0;
}
