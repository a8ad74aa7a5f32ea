/*
 * main.c - the gatehouse command: options, configuration, listeners, worker threads, signals.
 *
 * The main thread does no request work: it loads the config, takes the pid file, opens the
 * logs, binds every listener (one SO_REUSEPORT socket per worker and Listen address, so bind
 * errors surface before anything starts), drops root privileges for User/Group, starts the
 * workers, tells the service manager it is ready (sd_notify, see svc.c) and then waits for
 * signals (sigwait, or sigtimedwait when systemd's watchdog is on: see main_wd_check):
 *   SIGTERM, SIGINT  graceful stop: listeners close, in-flight requests finish within
 *                    GracefulShutdownTimeout, then exit 0 (STOPPING=1 first);
 *   SIGHUP           reload (RELOADING=1, then READY=1): a new snapshot is built and handed to
 *                    the workers, with sockets for Listen addresses that are new and the
 *                    removal of those that are gone; a bad file, or a new address that cannot
 *                    be bound, is logged and the running config stays whole;
 *   SIGUSR1          reopen the error and access logs (logrotate).
 * Once a minute the wait also wakes for tls_tick (the listener's session-ticket keys).
 *
 * TLS (issue 13): tls_global_init once, then every loaded snapshot gets its set
 * (main_tls_build): at the start, as root before the drop, a failure is fatal (and -t says
 * it); at a reload, a failure (a renewed certificate that does not match its key, say) is
 * logged and the new snapshot keeps the running set, so the listener goes on presenting the
 * old certificate; the reload counts as failed (status page, ?auto, /metrics) with that line
 * as its reason, while the rest of the new file is running. Connections keep the set they
 * started with.
 *
 * Privileges: started as root, the daemon refuses to run unless the config names a User
 * ("User root" keeps root on purpose). Everything that needs root happens before the drop:
 * the pid file, CacheRoot's directory and, for the built-in configuration, the access log's
 * (created owned by User, preflight.c), the logs (created owned by User, so that they can be
 * reopened later), the listeners (ports below 1024). The cache (CacheRoot) is opened after
 * the drop, so that its files belong to User and a later start finds them writable. Before
 * all that, preflight_check() refuses what would fail later (the same checks as -t).
 * -p PORT and -l ADDR:PORT replace the listeners for this load and every reload
 * (cfg_listen_override). After the drop a reload
 * can bind a new port below 1024 only if the process holds CAP_NET_BIND_SERVICE (the systemd
 * unit starts it as _gatehouse with that ambient capability); otherwise that needs a restart.
 *
 * `gatehouse -k reload|stop|check` (main_control) does not start a daemon: it finds the running
 * one through the configuration's PidFile, as apachectl and squid -k do.
 *
 * Descriptors: the start raises the soft RLIMIT_NOFILE to the hard limit, and MaxConnections
 * is sized against it (main_size_connections) at the start and at every reload, so that
 * client connections run out before descriptors do.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "daemon/cachecfg.h"
#include "daemon/cachereq.h"
#include "daemon/cfg.h"
#include "daemon/ftplist.h"
#include "daemon/log.h"
#include "daemon/logpipe.h"
#include "daemon/pauth.h"
#include "daemon/polres.h"
#include "daemon/preflight.h"
#include "daemon/svc.h"
#include "daemon/tls.h"
#include "daemon/worker.h"

/* Where the FTP gateway's media types come from (ftp_mime_load) */
#define MAIN_MIME_TYPES "/etc/mime.types"

static void
main_usage(FILE *f)
{
	fprintf(f,
	        "usage: gatehouse [-f FILE] [-D NAME]... [-p PORT | -l ADDR:PORT ...] [-t] [-M]\n"
	        "                 [-k reload|stop|check] [-V] [-h]\n"
	        "  -f FILE  configuration file (default: the built-in configuration)\n"
	        "  -D NAME  define NAME for <IfDefine NAME> sections (repeatable)\n"
	        "  -p PORT  listen on PORT instead, at each configured address (built-in:\n"
	        "           127.0.0.1:PORT)\n"
	        "  -l ADDR:PORT  listen here instead of the Listen lines (repeatable)\n"
	        "  -t       check the configuration and exit: \"Syntax OK\" or FILE:LINE: message\n"
	        "  -M       print the effective configuration (defaults filled in, Includes\n"
	        "           expanded, <IfModule>/<IfDefine> resolved) and exit\n"
	        "  -k VERB  control the daemon running with this configuration, found through its\n"
	        "           PidFile: reload (SIGHUP), stop (SIGTERM, and wait until it is gone),\n"
	        "           check (exit 0 and \"running (pid N)\" when it runs, else exit 1)\n"
	        "  -V       print the version and exit\n"
	        "  -h       this help\n");
}

/* Tell the service manager (when there is one); a failure is logged, never fatal. */
static void
main_notify(const char *state)
{
	const char *why = NULL;

	if (svc_notify(state, &why) < 0)
		log_warn("sd_notify to $NOTIFY_SOCKET failed: %s", why ? why : "?");
}

/* Descriptors that are not client connections': stdio, the logs, the cache's files, the pid
 * file, and per worker its epoll and wake-up descriptors, resolver sockets and one listening
 * socket per Listen. Generous: what is left over serves the connections. */
#define MAIN_FD_RESERVE 32
#define MAIN_FD_RESERVE_PER_WORKER 8
/* A client connection's descriptors: its socket and its upstream's, plus, when MaxConnections
 * is not set, one spare for what comes and goes beside them (pooled idle upstreams, connects
 * in progress, a stale-while-revalidate refresh). */
#define MAIN_FDS_PER_CONN 2
#define MAIN_FDS_PER_CONN_AUTO 3
#define MAIN_MAX_CONNECTIONS 1048576 /* MaxConnections' own upper bound (cfg.c) */

static uint64_t main_nofile; /* the soft RLIMIT_NOFILE after main_nofile_raise */

/* Raise the soft RLIMIT_NOFILE to the hard limit (with no hard limit, to the kernel's
 * fs.nr_open, the most setrlimit takes). A failure leaves the soft limit, and says so. */
static void
main_nofile_raise(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_warn("cannot read the file limit (RLIMIT_NOFILE): %s", strerror(errno));
		main_nofile = 1024;
		return;
	}
	main_nofile = rl.rlim_cur;
	if (rl.rlim_cur == rl.rlim_max)
		return;
	rlim_t want = rl.rlim_max;
	if (want == RLIM_INFINITY) {
		FILE *f = fopen("/proc/sys/fs/nr_open", "r");
		unsigned long long v = 0;

		if (f == NULL || fscanf(f, "%llu", &v) != 1 || v == 0)
			v = 1048576; /* the kernel's default nr_open */
		if (f != NULL)
			fclose(f);
		want = (rlim_t)v;
	}
	if (want <= rl.rlim_cur)
		return;
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_warn("cannot raise the file limit (RLIMIT_NOFILE) from %llu to %llu: %s",
		         (unsigned long long)main_nofile, (unsigned long long)want,
		         strerror(errno));
		return;
	}
	main_nofile = want;
}

/* Size MaxConnections against the file limit, before c is handed to the workers. Not set
 * (0): what the limit leaves after the reserve, MAIN_FDS_PER_CONN_AUTO per connection. Set by
 * the admin: kept when each connection can have its upstream too (MAIN_FDS_PER_CONN); kept
 * with a warning up to one descriptor per connection, since a load of cache hits needs no
 * upstream (an upstream connect that then finds no descriptor is a 503 that blames nobody
 * else, proxy.c); lowered, with a warning, past that: those clients could not even be
 * accepted, and accept would fail with "Too many open files". */
static void
main_size_connections(struct cfg *c, unsigned nw)
{
	uint64_t reserve = MAIN_FD_RESERVE +
	                   (uint64_t)nw * (MAIN_FD_RESERVE_PER_WORKER + c->nlisten);
	uint64_t room = main_nofile > reserve ? main_nofile - reserve : 0;
	uint64_t fit = room / MAIN_FDS_PER_CONN;

	if (fit < 1)
		fit = 1;
	if (c->max_connections == 0) {
		uint64_t n = room / MAIN_FDS_PER_CONN_AUTO;

		c->max_connections = n < 1 ? 1 : n > MAIN_MAX_CONNECTIONS ? MAIN_MAX_CONNECTIONS :
		                     (unsigned)n;
		return;
	}
	if (c->max_connections <= fit)
		return;
	if (c->max_connections <= room) {
		log_warn("%s: MaxConnections %u leaves fewer than %u descriptors per connection under "
		         "the file limit of %llu (%llu kept for listeners, logs and the cache): cache "
		         "hits are fine, but past %llu connections with upstreams some will get 503 "
		         "\"out of file descriptors\"; raise the limit (LimitNOFILE= in the systemd "
		         "unit, ulimit -n)", c->path, c->max_connections, MAIN_FDS_PER_CONN,
		         (unsigned long long)main_nofile, (unsigned long long)reserve,
		         (unsigned long long)fit);
		return;
	}
	if (room < 1)
		room = 1;
	log_warn("%s: MaxConnections %u does not fit the file limit of %llu descriptors (%llu kept "
	         "for listeners, logs and the cache): using %llu; raise the limit (LimitNOFILE= in "
	         "the systemd unit, ulimit -n) to allow more", c->path, c->max_connections,
	         (unsigned long long)main_nofile, (unsigned long long)reserve,
	         (unsigned long long)room);
	c->max_connections = (unsigned)room;
}

/* Apache directives accepted without their Apache effect (issue 9): say so in the log. */
static void
main_log_notices(const struct cfg *c)
{
	const char *p = c->notices;

	while (p && *p) {
		const char *nl = strchr(p, '\n');
		int n = nl ? (int)(nl - p) : (int)strlen(p);

		log_warn("%.*s", n, p);
		p += n + (nl != NULL);
	}
}

static int
main_streq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Same listening address (family, address, port)? */
static int
main_listen_same(const struct cfg_listen *a, const struct cfg_listen *b)
{
	/* http <-> https on one address is a new listener (SO_REUSEPORT binds it beside the
	 * old one, which then closes): a listener's protocol never changes under it. */
	if (a->addr.ss_family != b->addr.ss_family || a->https != b->https)
		return 0;
	if (a->addr.ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)&a->addr, *y = (const void *)&b->addr;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->addr.ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)&a->addr, *y = (const void *)&b->addr;

		return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return 0;
}

/* Does c have a "Listen ... https"? */
static int
main_has_https(const struct cfg *c)
{
	for (size_t i = 0; i < c->nlisten; i++)
		if (c->listen[i].https)
			return 1;
	return 0;
}

/*
 * Give c its TLS set (tls_set_build). old NULL: the start, where a failure is an error (-1,
 * err). old given: a reload; a failure keeps old's set in c (logged with the reason, the
 * same line in kept, for the status page: the reload did not fully succeed) unless old's
 * set cannot serve c's https listeners, which fails the reload (-1). kept is "" otherwise.
 */
static int
main_tls_build(struct cfg *c, const struct cfg *old, char *err, size_t errlen, char *kept,
               size_t keptlen)
{
	char why[1024];

	if (keptlen > 0)
		kept[0] = '\0';
	c->tls = tls_set_build(c, why, sizeof(why));
	if (c->tls != NULL)
		return 0;
	if (old == NULL || old->tls == NULL ||
	    (main_has_https(c) && !tls_set_has_server(old->tls))) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	tls_set_ref(old->tls);
	c->tls = old->tls;
	snprintf(kept, keptlen, "TLS: %s; keeping the certificates and settings in use", why);
	log_error("%s", kept);
	return 0;
}

/*
 * SIGHUP. fds holds, per worker, CFG_MAX_LISTEN slots: slot j is the worker's socket for
 * (*cfgp)->listen[j]. The new file is loaded and validated; sockets are opened for addresses
 * that are new (all of them before anything changes, so a bind failure leaves everything as
 * it was); then each worker is told which sockets to close and which to add, the snapshot is
 * swapped, and fds is rewritten in the new config's order.
 */
static void
main_reload(const char *path, struct cfg **cfgp, struct worker *workers, unsigned nw, int *fds)
{
	struct cfg *cur = *cfgp, *n = NULL;
	int kept[CFG_MAX_LISTEN];      /* new listen index -> old index, or -1: new address */
	int wanted[CFG_MAX_LISTEN];    /* old listen index still in the new config */
	char err[1024], state[128];
	char tls_kept[1200] = "";      /* main_tls_build: the TLS settings were kept, and why */
	size_t total = (size_t)nw * CFG_MAX_LISTEN;
	int *nfds = NULL;

	snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
	         (unsigned long long)svc_monotonic_usec());
	main_notify(state);
	if (cfg_load(path, &n, err, sizeof(err)) < 0)
		goto refuse;
	if (main_tls_build(n, cur, err, sizeof(err), tls_kept, sizeof(tls_kept)) < 0) {
		cfg_unref(&n);
		goto refuse;
	}
	main_size_connections(n, nw);
	nfds = malloc(total * sizeof(*nfds));
	if (nfds == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		goto refuse;
	}
	for (size_t k = 0; k < total; k++)
		nfds[k] = -1;
	memset(wanted, 0, sizeof(wanted));
	for (size_t j = 0; j < n->nlisten; j++) {
		kept[j] = -1;
		for (size_t i = 0; i < cur->nlisten; i++) {
			if (!wanted[i] && main_listen_same(&cur->listen[i], &n->listen[j])) {
				kept[j] = (int)i;
				wanted[i] = 1;
				break;
			}
		}
		for (unsigned w = 0; w < nw && kept[j] >= 0; w++)
			nfds[w * CFG_MAX_LISTEN + j] = fds[w * CFG_MAX_LISTEN + kept[j]];
	}
	for (size_t j = 0; j < n->nlisten; j++) {
		if (kept[j] >= 0)
			continue;
		for (unsigned w = 0; w < nw; w++) {
			const char *lerr = NULL;
			int fd = worker_listen_open(&n->listen[j], &lerr);

			if (fd < 0) {
				int priv = strcmp(lerr, strerror(EACCES)) == 0;

				snprintf(err, sizeof(err), "cannot listen on %s: %s%s", n->listen[j].text,
				         lerr, priv ? " (a port below 1024 needs CAP_NET_BIND_SERVICE, "
				         "which the daemon gave up with root: restart it, or run it from "
				         "its systemd unit)" : "");
				goto undo;
			}
			nfds[w * CFG_MAX_LISTEN + j] = fd;
		}
	}

	/* Committed: nothing below fails the reload. Removals are posted before additions, and
	 * the snapshot before the additions (an added https listener uses its TLS set). */
	for (size_t i = 0; i < cur->nlisten; i++) {
		if (wanted[i])
			continue;
		for (unsigned w = 0; w < nw; w++)
			if (worker_listen_remove(&workers[w], fds[w * CFG_MAX_LISTEN + i]) < 0)
				log_error("worker %u: out of memory: still listening on %s", w,
				          cur->listen[i].text);
		log_notice("no longer listening on %s%s", cur->listen[i].text,
		           cur->listen[i].https ? " (https)" : "");
	}
	for (unsigned w = 0; w < nw; w++)
		worker_set_cfg(&workers[w], n);
	for (size_t j = 0; j < n->nlisten; j++) {
		if (kept[j] >= 0)
			continue;
		for (unsigned w = 0; w < nw; w++)
			if (worker_listen_add(&workers[w], nfds[w * CFG_MAX_LISTEN + j],
			                      n->listen[j].https) < 0)
				log_error("worker %u: out of memory: not listening on %s", w,
				          n->listen[j].text);
		log_notice("now listening on %s%s", n->listen[j].text,
		           n->listen[j].https ? " (https)" : "");
	}
	polres_set_cfg(gh.polres, n);
	pauth_set_limit(gh.pauth, n->auth_fail_burst, n->auth_fail_refill_s);
	memcpy(fds, nfds, total * sizeof(*fds));
	free(nfds);
	if (!main_streq(cur->user, n->user) || !main_streq(cur->group, n->group) ||
	    !main_streq(cur->pid_file, n->pid_file))
		log_warn("User, Group and PidFile changes take effect at the next start");
	if (!alog_cfg_same(cur, n))
		log_warn("AccessLog, CustomLog, TransferLog, LogFormat and ErrorLog changes take "
		         "effect at the next start");
	log_set_level(n->log_level);
	main_log_notices(n);
	cfg_unref(&cur);
	*cfgp = n;
	log_notice("configuration reloaded from %s", n->path);
	stats_reload_note(tls_kept[0] != '\0' ? tls_kept : NULL, 1);
	main_notify(tls_kept[0] != '\0' ? "READY=1\nSTATUS=configuration reloaded, but the TLS "
	            "certificates and settings in use were kept (see the log)"
	            : "READY=1\nSTATUS=configuration reloaded");
	return;

undo:
	for (size_t j = 0; j < n->nlisten; j++)
		for (unsigned w = 0; w < nw && kept[j] < 0; w++)
			if (nfds[w * CFG_MAX_LISTEN + j] >= 0)
				close(nfds[w * CFG_MAX_LISTEN + j]);
	free(nfds);
	cfg_unref(&n);
refuse:
	log_error("reload failed, keeping the running configuration: %s", err);
	stats_reload_note(err, 0);
	snprintf(state, sizeof(state), "READY=1\nSTATUS=reload failed, running the previous "
	         "configuration");
	main_notify(state);
}

/*
 * The systemd watchdog (WatchdogSec= in the unit: $WATCHDOG_USEC). The main thread wakes every
 * half interval; WATCHDOG=1 goes out only when every worker's event loop answered the ping
 * posted at the previous wake-up (worker_wd_ping), so it proves that every worker is turning,
 * not just this thread. A worker stuck in a callback, or stopped, never answers: the
 * notifications stop and the service manager restarts the daemon.
 */
struct main_wd {
	uint64_t period_us;            /* half of WATCHDOG_USEC; 0: no watchdog */
	uint64_t next_us;              /* CLOCK_MONOTONIC of the next check */
	unsigned seq;                  /* the ping posted last */
	unsigned missed;               /* checks in a row some worker failed */
	int notify_failed;             /* WATCHDOG=1 could not be sent (logged once) */
};

static void
main_wd_start(struct main_wd *wd, struct worker *workers, unsigned nw)
{
	uint64_t us = svc_watchdog_usec();

	memset(wd, 0, sizeof(*wd));
	if (us == 0)
		return;
	wd->period_us = us / 2 > 0 ? us / 2 : 1;
	wd->seq = 1;
	for (unsigned i = 0; i < nw; i++)
		worker_wd_ping(&workers[i], wd->seq);
	wd->next_us = svc_monotonic_usec() + wd->period_us;
	log_info("systemd watchdog: WATCHDOG=1 every %llu ms while every worker answers",
	         (unsigned long long)(wd->period_us / 1000));
}

static void
main_wd_check(struct main_wd *wd, struct worker *workers, unsigned nw)
{
	unsigned late = nw;

	for (unsigned i = 0; i < nw && late == nw; i++)
		if (!worker_wd_answered(&workers[i], wd->seq))
			late = i;
	if (late == nw) {
		if (wd->missed > 0)
			log_notice("watchdog: every worker answers again");
		wd->missed = 0;
		const char *why = NULL;
		if (svc_notify("WATCHDOG=1", &why) < 0 && !wd->notify_failed) {
			log_warn("sd_notify WATCHDOG=1 to $NOTIFY_SOCKET failed: %s "
			         "(not logged again)", why ? why : "?");
			wd->notify_failed = 1;
		}
	} else if (wd->missed++ == 0) {
		log_error("watchdog: worker %u has not turned its event loop for %llu ms: holding "
		          "back WATCHDOG=1", late, (unsigned long long)(wd->period_us / 1000));
	}
	wd->seq++;
	for (unsigned i = 0; i < nw; i++)
		worker_wd_ping(&workers[i], wd->seq);
	wd->next_us = svc_monotonic_usec() + wd->period_us;
}

#define MAIN_TLS_TICK_US (60u * 1000000u) /* tls_tick: once a minute */

/* Wait for one of sigs and return it; meanwhile keep the watchdog and call tls_tick once a
 * minute (*tick_us: CLOCK_MONOTONIC of the next one). 0 on an unexpected error. */
static int
main_wait_signal(const sigset_t *sigs, struct main_wd *wd, struct worker *workers, unsigned nw,
                 uint64_t *tick_us)
{
	int sig = 0;

	for (;;) {
		uint64_t now = svc_monotonic_usec(), next;
		struct timespec ts;

		if (now >= *tick_us) {
			tls_tick(time(NULL));
			*tick_us = now + MAIN_TLS_TICK_US;
			continue;
		}
		if (wd->period_us != 0 && now >= wd->next_us) {
			main_wd_check(wd, workers, nw);
			continue;
		}
		next = *tick_us;
		if (wd->period_us != 0 && wd->next_us < next)
			next = wd->next_us;
		ts.tv_sec = (time_t)((next - now) / 1000000u);
		ts.tv_nsec = (long)((next - now) % 1000000u) * 1000;
		sig = sigtimedwait(sigs, NULL, &ts);
		if (sig > 0)
			return sig;
		if (errno != EAGAIN && errno != EINTR)
			return 0;
	}
}

#define MAIN_STOP_GRACE_MS 5000    /* -k stop waits GracefulShutdownTimeout plus this */
#define MAIN_STOP_POLL_MS 50

/*
 * gatehouse -k reload|stop|check: load the configuration (-f or the built-in), find the daemon
 * through its PidFile (the process holding the file's lock) and signal it. stop waits until
 * the lock is free, i.e. the process is gone, for at most GracefulShutdownTimeout + 5 s.
 * Exit status: 0 done (check: running), 1 not running or failed, 2 unknown verb.
 */
static int
main_control(const char *path, const char *verb)
{
	char err[1024];
	struct cfg *cfg = NULL;
	long pid = 0;
	int fd = -1, rc = 1;

	if (strcmp(verb, "reload") != 0 && strcmp(verb, "stop") != 0 &&
	    strcmp(verb, "check") != 0) {
		fprintf(stderr, "gatehouse: -k %s: expected reload, stop or check\n", verb);
		main_usage(stderr);
		return 2;
	}
	if (cfg_load(path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (cfg->pid_file == NULL) {
		fprintf(stderr, "gatehouse: -k needs a PidFile to find the daemon, and %s names "
		        "none (add e.g. \"PidFile /run/gatehouse/gatehouse.pid\" and restart the "
		        "daemon; under systemd use systemctl)\n",
		        path ? cfg->path : "the built-in configuration");
		goto out;
	}
	int r = svc_pidfile_probe(cfg->pid_file, &pid, &fd, err, sizeof(err));
	if (r < 0) { /* unreadable, or locked without a pid: some process may well run */
		fprintf(stderr, "gatehouse: cannot tell whether gatehouse is running (%s)\n", err);
		goto out;
	}
	if (r == 0) {
		fprintf(stderr, "gatehouse: not running (%s)\n", err);
		goto out;
	}
	if (strcmp(verb, "check") == 0) {
		printf("running (pid %ld)\n", pid);
		rc = 0;
		goto out;
	}
	int sig = strcmp(verb, "reload") == 0 ? SIGHUP : SIGTERM;
	if (kill((pid_t)pid, sig) != 0) {
		fprintf(stderr, "gatehouse: cannot send %s to pid %ld (PidFile %s): %s\n",
		        sig == SIGHUP ? "SIGHUP" : "SIGTERM", pid, cfg->pid_file, strerror(errno));
		goto out;
	}
	if (sig == SIGHUP) {
		printf("reload requested (SIGHUP sent to pid %ld)\n", pid);
		rc = 0;
		goto out;
	}
	uint64_t limit_ms = (uint64_t)cfg->graceful_timeout_ms + MAIN_STOP_GRACE_MS;
	uint64_t deadline = svc_monotonic_usec() + limit_ms * 1000u;
	/* The lock goes with the daemon's last descriptors; then the process itself. */
	while (svc_pidfile_held(fd) || svc_pid_running(pid)) {
		if (svc_monotonic_usec() >= deadline) {
			fprintf(stderr, "gatehouse: pid %ld is still running %llu s after SIGTERM\n",
			        pid, (unsigned long long)(limit_ms / 1000));
			goto out;
		}
		struct timespec ts = { 0, MAIN_STOP_POLL_MS * 1000000L };
		nanosleep(&ts, NULL);
	}
	printf("stopped (pid %ld)\n", pid);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	cfg_unref(&cfg);
	return rc;
}

/* -p PORT and -l ADDR:PORT (issue 9): the listeners for every load, reloads included. */
static int
main_listen_opts(const char *port, const char *const *addrs, size_t n)
{
	char err[512];
	unsigned long p = 0;
	char *end = NULL;

	if (port && n > 0) {
		fprintf(stderr, "gatehouse: -p and -l do not combine: give the port in each -l\n");
		return -1;
	}
	if (port) {
		errno = 0;
		p = strtoul(port, &end, 10);
		if (errno || end == port || *end || p < 1 || p > 65535) {
			fprintf(stderr, "gatehouse: -p %s: expected a port from 1 to 65535\n",
			        port);
			return -1;
		}
	}
	if (cfg_listen_override(addrs, n, (unsigned)p, err, sizeof(err)) < 0) {
		fprintf(stderr, "gatehouse: %s\n", err);
		return -1;
	}
	return 0;
}

/* "1 GiB", "512 MiB", "1500000 bytes". */
static void
main_size_text(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = { "TiB", "GiB", "MiB", "KiB" };

	for (int i = 0; i < 4; i++) {
		uint64_t u = 1ull << (10 * (4 - i));

		if (v >= u && v % u == 0) {
			snprintf(buf, len, "%llu %s", (unsigned long long)(v / u), units[i]);
			return;
		}
	}
	snprintf(buf, len, "%llu bytes", (unsigned long long)v);
}

/* The one line that says where the daemon listens, caches and logs: in the error log (at
 * notice) and on standard error when the error log is elsewhere or quieter. */
static void
main_started_line(const struct cfg *cfg, unsigned nw)
{
	char line[2048], size[64];
	size_t n;
	int to_stderr;

	n = (size_t)snprintf(line, sizeof(line), "gatehouse %s: listening on", GH_VERSION);
	for (size_t j = 0; j < cfg->nlisten && n < sizeof(line); j++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%s %s%s", j == 0 ? "" :
		                      j + 1 == cfg->nlisten ? " and" : ",", cfg->listen[j].text,
		                      cfg->listen[j].https ? " (https)" : "");
	if (n < sizeof(line) && cfg->cache->root && cfg->cache->nenable > 0) {
		main_size_text(cfg->cache->size, size, sizeof(size));
		n += (size_t)snprintf(line + n, sizeof(line) - n, ", caching in %s (%s)",
		                      cfg->cache->root, size);
	} else if (n < sizeof(line)) {
		n += (size_t)snprintf(line + n, sizeof(line) - n, ", not caching (%s)",
		                      cfg->cache->root ? "no CacheEnable" : "no CacheRoot");
	}
	if (n < sizeof(line))
		n += (size_t)snprintf(line + n, sizeof(line) - n, ", %s%s",
		                      cfg->access_log ? "access log " : "no access log",
		                      !cfg->access_log ? "" : strcmp(cfg->access_log, "-") == 0 ?
		                      "on standard error" : cfg->access_log);
	if (n < sizeof(line))
		snprintf(line + n, sizeof(line) - n,
		         " (%u workers, MaxConnections %u, file limit %llu, config %s)", nw,
		         cfg->max_connections, (unsigned long long)main_nofile, cfg->path);
	log_notice("%s", line);
	to_stderr = !log_on(CFG_LL_NOTICE) ||
	            (cfg->error_log != NULL && strcmp(cfg->error_log, "-") != 0);
	if (to_stderr)
		fprintf(stderr, "%s\n", line);
}

/* The pseudonym this process puts in CDN-Loop (worker.h): random, so two Gatehouses chained
 * through parents each see only their own; when entropy fails, the pid and the time still
 * tell this process from its neighbours. */
static void
main_hop_token_new(char *out, size_t len)
{
	uint64_t r;

	if (getentropy(&r, sizeof(r)) != 0)
		r = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
	snprintf(out, len, "gatehouse-%016" PRIx64, r);
}

static unsigned
main_ncpu(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
}

int
main(int argc, char **argv)
{
	const char *path = NULL;
	const char *control = NULL;   /* -k VERB */
	const char *port_opt = NULL;
	const char *listen_opt[CFG_MAX_LISTEN + 1];
	size_t nlisten_opt = 0;
	int test_only = 0;
	int dump = 0;
	int opt;
	while ((opt = getopt(argc, argv, "f:tVhD:Mk:p:l:")) != -1) {
		switch (opt) {
		case 'f': path = optarg; break;
		case 'p': port_opt = optarg; break;
		case 'l':
			if (nlisten_opt == CFG_MAX_LISTEN + 1)
				nlisten_opt--; /* cfg_listen_override says "more than ..." */
			listen_opt[nlisten_opt++] = optarg;
			break;
		case 't': test_only = 1; break;
		case 'D': /* <IfDefine NAME>; kept for every reload (issue 9) */
			if (cfg_define(optarg) < 0) {
				fprintf(stderr, "gatehouse: -D \"%s\": expected a name (no blanks, "
				        "not starting with '!'), at most %d of them\n", optarg,
				        CFG_MAX_DEFINES);
				return 2;
			}
			break;
		case 'M': dump = 1; break;
		case 'k': control = optarg; break;
		case 'V': printf("gatehouse %s\n", GH_VERSION); return 0;
		case 'h': main_usage(stdout); return 0;
		default: main_usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "gatehouse: unexpected argument \"%s\"\n", argv[optind]);
		main_usage(stderr);
		return 2;
	}
	if (control != NULL && (test_only || dump)) {
		fprintf(stderr, "gatehouse: -k does not go with %s\n", test_only ? "-t" : "-M");
		main_usage(stderr);
		return 2;
	}
	if (control != NULL)
		return main_control(path, control);

	if (main_listen_opts(port_opt, listen_opt, nlisten_opt) < 0)
		return 2;

	char err[8192];
	struct cfg *cfg = NULL;
	if (dump) { /* gatehouse -M (issue 9) */
		if (cfg_dump(path, stdout, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		return fflush(stdout) == 0 ? 0 : 1;
	}
	if (cfg_load(path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (cfg->pol_warnings) /* policy conflicts: worth knowing, not fatal */
		fputs(cfg->pol_warnings, stderr);
	if (test_only && cfg->notices) /* Apache directives without their Apache effect */
		fputs(cfg->notices, stderr);
	/* What a start would refuse (no User as root, files or CacheRoot the user cannot use),
	 * -t refuses too. */
	if (preflight_check(cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		cfg_unref(&cfg);
		return 1;
	}
	/* -t reads the certificates and keys too (a start does below, once its log is open). */
	if (test_only && (tls_global_init(err, sizeof(err)) < 0 ||
	                  main_tls_build(cfg, NULL, err, sizeof(err), NULL, 0) < 0)) {
		fprintf(stderr, "%s\n", err);
		cfg_unref(&cfg);
		return 1;
	}
	if (test_only) {
		fprintf(stderr, "Syntax OK\n");
		cfg_unref(&cfg);
		return 0;
	}

	/* Started as root: the workers run as someone the admin named (preflight_check). */
	int as_root = geteuid() == 0;
	int drop = as_root && cfg->uid != 0;

	struct svc_pidfile pidf = { .fd = -1, .path = NULL };
	if (cfg->pid_file && svc_pidfile_open(&pidf, cfg->pid_file, err, sizeof(err)) < 0) {
		fprintf(stderr, "gatehouse: %s\n", err);
		return 1;
	}

	/* CacheRoot (and the built-in access log's directory), owned by User, before the drop. */
	if (preflight_prepare(cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "gatehouse: %s\n", err);
		svc_pidfile_close(&pidf);
		return 1;
	}

	/* Logs are opened as root, but created owned by User so that SIGUSR1 can reopen them. */
	if (drop)
		log_precreate_all(cfg);
	if (log_open(cfg->error_log, cfg->log_level) < 0) {
		fprintf(stderr, "gatehouse: cannot open ErrorLog %s: %s\n", cfg->error_log, strerror(errno));
		svc_pidfile_close(&pidf);
		return 1;
	}
	main_log_notices(cfg);
	/* TLS: the library and kernel TLS line in the error log, then the certificates and keys,
	 * read as root (before the drop). A bad one stops the start, saying why. */
	if (tls_global_init(err, sizeof(err)) < 0 ||
	    main_tls_build(cfg, NULL, err, sizeof(err), NULL, 0) < 0) {
		log_error("%s", err);
		fprintf(stderr, "%s\n", err);
		svc_pidfile_close(&pidf);
		return 1;
	}
	if (alog_open_all(&gh.alog, cfg, err, sizeof(err)) < 0) {
		log_error("%s", err);
		fprintf(stderr, "gatehouse: %s\n", err);
		svc_pidfile_close(&pidf);
		return 1;
	}

	/* Signals are taken by sigwait() in this thread only; workers block everything. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	unsigned nw = cfg->workers ? cfg->workers : main_ncpu();
	gh.nworkers = nw;
	main_hop_token_new(gh.hop_token, sizeof(gh.hop_token));
	main_nofile_raise();
	main_size_connections(cfg, nw);
	struct worker *workers = calloc(nw, sizeof(*workers));
	/* Per worker, CFG_MAX_LISTEN slots: slot j is its socket for cfg->listen[j]. */
	int *fds = calloc((size_t)nw * CFG_MAX_LISTEN, sizeof(int));
	if (workers == NULL || fds == NULL) {
		log_error("out of memory");
		svc_pidfile_close(&pidf);
		return 1;
	}
	stats_set_workers(workers, nw);
	for (unsigned i = 0; i < nw; i++) {
		for (size_t j = 0; j < cfg->nlisten; j++) {
			const char *lerr = NULL;
			int fd = worker_listen_open(&cfg->listen[j], &lerr);
			if (fd < 0) {
				log_error("cannot listen on %s: %s", cfg->listen[j].text, lerr);
				fprintf(stderr, "gatehouse: cannot listen on %s: %s\n", cfg->listen[j].text, lerr);
				svc_pidfile_close(&pidf);
				return 1;
			}
			fds[i * CFG_MAX_LISTEN + j] = fd;
		}
	}

	if (drop) {
		if (svc_drop(cfg->user, cfg->uid, cfg->gid, err, sizeof(err)) < 0) {
			log_error("cannot run as User %s: %s", cfg->user, err);
			fprintf(stderr, "gatehouse: cannot run as User %s: %s\n", cfg->user, err);
			svc_pidfile_close(&pidf);
			return 1;
		}
		log_info("running as user %s (uid %lu, gid %lu)", cfg->user,
		         (unsigned long)cfg->uid, (unsigned long)cfg->gid);
	} else if (as_root) {
		log_warn("running as root, as the configuration says \"User root\"");
	} else if (cfg->user && geteuid() != cfg->uid) {
		log_info("not started as root: User %s does not apply", cfg->user);
	}

	/* Piped log programs run as User, the first start like every restart (logpipe.h). */
	if (logpipe_start_all(err, sizeof(err)) < 0) {
		log_error("%s", err);
		fprintf(stderr, "gatehouse: %s\n", err);
		svc_pidfile_close(&pidf);
		return 1;
	}

	/* The cache store, shared by every worker: opened once, as User. */
	if (cachereq_open(cfg, err, sizeof(err)) < 0) {
		log_error("%s", err);
		fprintf(stderr, "gatehouse: %s\n", err);
		svc_pidfile_close(&pidf);
		return 1;
	}

	/* The FTP gateway's media types (Debian's media-types package), read once: the workers
	 * share the table read-only. Without the file every FTP file is application/octet-stream. */
	{
		int loaded = 0;
		if (ftp_mime_load(MAIN_MIME_TYPES, &loaded) < 0) {
			log_error("out of memory reading %s", MAIN_MIME_TYPES);
			svc_pidfile_close(&pidf);
			return 1;
		}
		if (loaded)
			log_info("FTP media types loaded from %s", MAIN_MIME_TYPES);
		else
			log_info("FTP media types: %s not readable (%s), every FTP file is "
			         "application/octet-stream", MAIN_MIME_TYPES, strerror(errno));
	}

	/* Policy names resolve in the background; nothing waits for them. */
	if (polres_start(&gh.polres, cfg) < 0)
		return 1;
	/* Proxy authentication's result cache and failed-login limiter, shared by the workers. */
	if (pauth_new(&gh.pauth, cfg->auth_fail_burst, cfg->auth_fail_refill_s) < 0) {
		log_error("proxy authentication: out of memory");
		return 1;
	}
	for (unsigned i = 0; i < nw; i++) {
		if (worker_start(&workers[i], i, cfg, &fds[i * CFG_MAX_LISTEN], cfg->nlisten) < 0) {
			fprintf(stderr, "gatehouse: cannot start worker %u\n", i);
			return 1;
		}
	}
	main_started_line(cfg, nw);
	{
		char state[256];
		snprintf(state, sizeof(state), "READY=1\nSTATUS=listening on %s%s, %u workers",
		         cfg->listen[0].text, cfg->nlisten > 1 ? " and more" : "", nw);
		main_notify(state);
	}

	struct main_wd wd;
	uint64_t tick_us = svc_monotonic_usec() + MAIN_TLS_TICK_US;
	main_wd_start(&wd, workers, nw);
	for (;;) {
		int sig = main_wait_signal(&sigs, &wd, workers, nw, &tick_us);
		if (sig == 0)
			continue;
		if (sig == SIGTERM || sig == SIGINT) {
			log_notice("caught %s, shutting down gracefully", sig == SIGTERM ? "SIGTERM" : "SIGINT");
			main_notify("STOPPING=1\nSTATUS=stopping: finishing requests in flight");
			break;
		}
		if (sig == SIGHUP) {
			main_reload(path, &cfg, workers, nw, fds);
		} else if (sig == SIGUSR1) {
			if (log_reopen() < 0 || alog_reopen(gh.alog) < 0)
				log_error("reopening logs: %s", strerror(errno));
			else
				log_notice("logs reopened");
		}
	}
	for (unsigned i = 0; i < nw; i++)
		worker_stop(&workers[i]);
	for (unsigned i = 0; i < nw; i++)
		worker_join(&workers[i]);
	polres_stop(&gh.polres);
	pauth_free(&gh.pauth);
	cachereq_close();
	ftp_mime_free();
	alog_close(&gh.alog);
	cfg_unref(&cfg);
	free(workers);
	free(fds);
	if (pidf.fd >= 0) {
		char *pf = strdup(pidf.path);
		if (svc_pidfile_close(&pidf) < 0)
			log_info("PidFile %s left in place: %s", pf ? pf : "", strerror(errno));
		free(pf);
	}
	log_notice("stopped");
	log_shutdown();
	return 0;
}
