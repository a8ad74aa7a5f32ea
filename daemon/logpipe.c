/*
 * logpipe.c - piped log programs and their supervisor (see logpipe.h).
 *
 * Every logpipe is on one list owned by main. Its write state (fd, pending bytes, drop count)
 * is guarded by its own mutex, taken by writers (workers, the error log) and the supervisor;
 * nothing is logged while that mutex is held, because the error log may itself be a pipe.
 */
#include "daemon/logpipe.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/spawn.h"

#define LOGPIPE_MAGIC 0x10691e5eu
#define LOGPIPE_BACKOFF_MIN_MS 1000u
#define LOGPIPE_BACKOFF_MAX_MS 60000u
#define LOGPIPE_STABLE_MS 60000u

struct logpipe {
	unsigned magic;
	struct logpipe *next;
	char *cmd;
	char *what;
	pthread_mutex_t lock;         /* guards fd, pending, plen, dropped, started */
	int fd;                       /* write end, O_NONBLOCK; -1 while the program is down */
	int started;                  /* logpipe_start_all ran */
	char *pending;
	size_t plen;
	uint64_t dropped;             /* since the last report */
	_Atomic uint64_t dropped_total;
	/* supervisor only */
	pid_t pid;                    /* 0 while down */
	uint64_t up_since_ms, restart_at_ms;
	unsigned backoff_ms;
};

static struct logpipe *logpipe_list;
static pthread_t logpipe_thread;
static int logpipe_thread_on;
static pthread_mutex_t logpipe_stop_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t logpipe_stop_cond = PTHREAD_COND_INITIALIZER;
static int logpipe_stopping;

static uint64_t
logpipe_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct logpipe *
logpipe_new(const char *cmd, const char *what)
{
	struct logpipe *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->cmd = strdup(cmd);
	p->what = strdup(what);
	if (!p->cmd || !p->what) {
		free(p->cmd);
		free(p->what);
		free(p);
		return NULL;
	}
	p->magic = LOGPIPE_MAGIC;
	p->fd = -1;
	p->backoff_ms = LOGPIPE_BACKOFF_MIN_MS;
	pthread_mutex_init(&p->lock, NULL);
	p->next = logpipe_list;
	logpipe_list = p;
	return p;
}

/* Start p's program. Returns 0, or -1 with err. Supervisor or main only. */
static int
logpipe_spawn(struct logpipe *p, char *err, size_t errlen)
{
	int fds[2];
	char *argv[] = { "/bin/sh", "-c", p->cmd, NULL };
	pid_t pid;
	int rc;

	if (pipe2(fds, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	(void)fcntl(fds[1], F_SETFL, O_NONBLOCK);
	rc = spawn_child(&pid, "/bin/sh", argv, fds[0], -1);
	close(fds[0]);
	if (rc != 0) {
		close(fds[1]);
		snprintf(err, errlen, "cannot start /bin/sh -c \"%s\": %s", p->cmd, strerror(rc));
		return -1;
	}
	pthread_mutex_lock(&p->lock);
	p->fd = fds[1];
	p->plen = 0; /* a half-written line went to the old program: start clean */
	p->started = 1;
	pthread_mutex_unlock(&p->lock);
	p->pid = pid;
	p->up_since_ms = logpipe_now_ms();
	return 0;
}

static uint64_t
logpipe_count_lines(const char *s, size_t n)
{
	uint64_t k = 0;
	const char *e = s + n;

	while (s < e && (s = memchr(s, '\n', (size_t)(e - s))) != NULL) {
		k++;
		s++;
	}
	return k;
}

/* Send what is pending. p->lock held. Returns 1 when nothing is pending afterwards. */
static int
logpipe_drain_locked(struct logpipe *p)
{
	while (p->plen > 0 && p->fd >= 0) {
		ssize_t w = write(p->fd, p->pending, p->plen);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		memmove(p->pending, p->pending + w, p->plen - (size_t)w);
		p->plen -= (size_t)w;
	}
	return p->plen == 0;
}

/* Keep data[0..n) for later, within the bound; what does not fit is dropped whole lines. */
static void
logpipe_keep_locked(struct logpipe *p, const char *data, size_t n, size_t must)
{
	size_t keep = n;

	if (p->plen + keep > LOGPIPE_PENDING_MAX) {
		keep = must; /* the tail of a half-written line is always kept */
		if (p->plen + n <= LOGPIPE_PENDING_MAX)
			keep = n;
	}
	if (keep > 0) {
		if (!p->pending)
			p->pending = malloc(LOGPIPE_PENDING_MAX + 16384);
		if (!p->pending || p->plen + keep > LOGPIPE_PENDING_MAX + 16384)
			keep = 0;
		else {
			memcpy(p->pending + p->plen, data, keep);
			p->plen += keep;
		}
	}
	if (keep < n) {
		uint64_t k = logpipe_count_lines(data + keep, n - keep);

		p->dropped += k;
		atomic_fetch_add_explicit(&p->dropped_total, k, memory_order_relaxed);
	}
}

int
logpipe_write(struct logpipe *p, const char *data, size_t n)
{
	assert(p->magic == LOGPIPE_MAGIC);
	pthread_mutex_lock(&p->lock);
	if (!p->started) {
		pthread_mutex_unlock(&p->lock);
		return -1;
	}
	if (p->fd < 0) {
		uint64_t k = logpipe_count_lines(data, n);

		p->dropped += k;
		atomic_fetch_add_explicit(&p->dropped_total, k, memory_order_relaxed);
		pthread_mutex_unlock(&p->lock);
		return 1;
	}
	size_t off = 0;
	if (logpipe_drain_locked(p)) {
		while (off < n) {
			ssize_t w = write(p->fd, data + off, n - off);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break;
			off += (size_t)w;
		}
	}
	if (off < n) {
		/* the rest of a line cut by a partial write must follow before anything else */
		size_t must = 0;
		if (off > 0 && data[off - 1] != '\n') {
			const char *nl = memchr(data + off, '\n', n - off);
			must = nl ? (size_t)(nl - (data + off)) + 1 : n - off;
		}
		logpipe_keep_locked(p, data + off, n - off, must);
	}
	pthread_mutex_unlock(&p->lock);
	return 0;
}

uint64_t
logpipe_dropped_total(const struct logpipe *p)
{
	return atomic_load_explicit(&p->dropped_total, memory_order_relaxed);
}

/* One supervisor pass over every program. */
static void
logpipe_tick(uint64_t now, uint64_t *last_report)
{
	int report = now - *last_report >= LOGPIPE_REPORT_MS;

	if (report)
		*last_report = now;
	for (struct logpipe *p = logpipe_list; p; p = p->next) {
		int status;
		uint64_t dropped = 0;

		if (p->pid > 0 && waitpid(p->pid, &status, WNOHANG) == p->pid) {
			char how[64];

			pthread_mutex_lock(&p->lock);
			if (p->fd >= 0)
				close(p->fd);
			p->fd = -1;
			uint64_t lost = logpipe_count_lines(p->pending, p->plen);
			p->dropped += lost;
			atomic_fetch_add_explicit(&p->dropped_total, lost, memory_order_relaxed);
			p->plen = 0;
			pthread_mutex_unlock(&p->lock);
			p->pid = 0;
			if (now - p->up_since_ms >= LOGPIPE_STABLE_MS)
				p->backoff_ms = LOGPIPE_BACKOFF_MIN_MS;
			if (WIFSIGNALED(status))
				snprintf(how, sizeof(how), "was killed by signal %d", WTERMSIG(status));
			else
				snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(status));
			log_error("%s: piped log program \"%s\" %s; restarting it in %u s", p->what,
			          p->cmd, how, p->backoff_ms / 1000u);
			p->restart_at_ms = now + p->backoff_ms;
			p->backoff_ms = p->backoff_ms * 2 > LOGPIPE_BACKOFF_MAX_MS ?
			                LOGPIPE_BACKOFF_MAX_MS : p->backoff_ms * 2;
		}
		if (p->pid == 0 && now >= p->restart_at_ms) {
			char err[512];

			if (logpipe_spawn(p, err, sizeof(err)) < 0) {
				log_error("%s: %s; trying again in %u s", p->what, err, p->backoff_ms / 1000u);
				p->restart_at_ms = now + p->backoff_ms;
				p->backoff_ms = p->backoff_ms * 2 > LOGPIPE_BACKOFF_MAX_MS ?
				                LOGPIPE_BACKOFF_MAX_MS : p->backoff_ms * 2;
			} else {
				log_notice("%s: piped log program \"%s\" restarted (pid %ld)", p->what,
				           p->cmd, (long)p->pid);
			}
		}
		pthread_mutex_lock(&p->lock);
		(void)logpipe_drain_locked(p);
		if (report) {
			dropped = p->dropped;
			p->dropped = 0;
		}
		pthread_mutex_unlock(&p->lock);
		if (dropped)
			log_error("%s: %llu lines dropped: the piped log program \"%s\" %s", p->what,
			          (unsigned long long)dropped, p->cmd,
			          p->pid ? "does not read fast enough" : "is not running");
	}
}

static void *
logpipe_main(void *arg)
{
	uint64_t last_report = logpipe_now_ms();
	sigset_t all;

	(void)arg;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&logpipe_stop_lock);
	while (!logpipe_stopping) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += LOGPIPE_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&logpipe_stop_cond, &logpipe_stop_lock, &ts);
		if (logpipe_stopping)
			break;
		pthread_mutex_unlock(&logpipe_stop_lock);
		logpipe_tick(logpipe_now_ms(), &last_report);
		pthread_mutex_lock(&logpipe_stop_lock);
	}
	pthread_mutex_unlock(&logpipe_stop_lock);
	return NULL;
}

int
logpipe_start_all(char *err, size_t errlen)
{
	if (!logpipe_list)
		return 0;
	for (struct logpipe *p = logpipe_list; p; p = p->next) {
		if (logpipe_spawn(p, err, errlen) < 0)
			return -1;
		log_info("%s: piped log program \"%s\" started (pid %ld)", p->what, p->cmd,
		         (long)p->pid);
	}
	if (pthread_create(&logpipe_thread, NULL, logpipe_main, NULL) != 0) {
		snprintf(err, errlen, "cannot start the piped-log supervisor thread");
		return -1;
	}
	logpipe_thread_on = 1;
	return 0;
}

static int
logpipe_all_exited(void)
{
	int left = 0;

	for (struct logpipe *p = logpipe_list; p; p = p->next) {
		int status;

		if (p->pid > 0 && waitpid(p->pid, &status, WNOHANG) == p->pid)
			p->pid = 0;
		left |= p->pid > 0;
	}
	return !left;
}

static void
logpipe_wait(unsigned ms)
{
	for (unsigned t = 0; t < ms && !logpipe_all_exited(); t += 20) {
		struct timespec ts = { 0, 20 * 1000000L };

		nanosleep(&ts, NULL);
	}
}

void
logpipe_stop_all(void)
{
	if (logpipe_thread_on) {
		pthread_mutex_lock(&logpipe_stop_lock);
		logpipe_stopping = 1;
		pthread_cond_signal(&logpipe_stop_cond);
		pthread_mutex_unlock(&logpipe_stop_lock);
		pthread_join(logpipe_thread, NULL);
		logpipe_thread_on = 0;
	}
	for (struct logpipe *p = logpipe_list; p; p = p->next) {
		pthread_mutex_lock(&p->lock);
		(void)logpipe_drain_locked(p);
		if (p->fd >= 0)
			close(p->fd);
		p->fd = -1;
		p->started = 0; /* later lines (the error log's last ones) go to stderr */
		pthread_mutex_unlock(&p->lock);
	}
	logpipe_wait(LOGPIPE_STOP_WAIT_MS);
	for (struct logpipe *p = logpipe_list; p; p = p->next)
		if (p->pid > 0)
			kill(-p->pid, SIGTERM);
	logpipe_wait(500);
	for (struct logpipe *p = logpipe_list; p; p = p->next) {
		if (p->pid > 0) {
			kill(-p->pid, SIGKILL);
			(void)waitpid(p->pid, NULL, 0);
			p->pid = 0;
		}
	}
}

void
logpipe_free_all(void)
{
	while (logpipe_list) {
		struct logpipe *p = logpipe_list;

		logpipe_list = p->next;
		pthread_mutex_destroy(&p->lock);
		free(p->pending);
		free(p->cmd);
		free(p->what);
		p->magic = 0;
		free(p);
	}
}
