/*
 * helper.c - pools of Squid helper processes on a worker's loop (see helper.h).
 *
 * A pool owns its children (struct hp_child, one slot each) and three request lists: the queue
 * (waiting for a child with room), each child's in-flight list (in the order sent) and the done
 * list (failed inside hpool_submit, delivered by the pool's posted event so that the callback
 * always runs on a later turn). A request is on exactly one of them; its callback runs once and
 * the request is freed right after it.
 *
 * Invariants:
 *   - A child with pid > 0 has both pipes open and its ev_io registered; pid == 0: down, fds -1,
 *     nothing in flight. Its id (slot | generation << 16) changes on every restart, so a pinned
 *     request (Negotiate) never reaches the successor of the child that began the exchange.
 *   - Nothing here writes to a pipe from inside hpool_submit's caller-visible failure paths or
 *     takes a child down there: a callback may submit, and the read loop that called it must
 *     find its child and its buffer as it left them. Only the pool's own I/O and timer
 *     callbacks take children down.
 *   - Our children are reaped with waitpid(pid, WNOHANG) on their own pids only: the daemon
 *     leaves SIGCHLD at its default and other modules (logpipe.c) reap theirs the same way.
 *     A child killed but not yet reaped waits on the pool's reap list, or, once its pool is
 *     gone, on a process-wide orphan list that any pool's timer empties.
 *   - One timer per pool, armed at the earliest of: a request's deadline (submitted +
 *     timeout), an in-flight request's kill deadline (sent + timeout), a down child's restart
 *     time, the next reap attempt.
 *   - Memory: a reply line is bounded (HP_LINE_MAX; longer kills the child), the queue by
 *     queue_max, the in-flight lists by children x concurrency.
 *
 * Callers: daemon/pauth.c (Basic external provider), daemon/pauth_neg.c (Negotiate), each
 * through the worker's hpool_set; tests/unit/test_helper.c.
 */
#include "daemon/helper.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/ev.h"
#include "daemon/log.h"
#include "daemon/spawn.h"

#define HP_MAGIC 0x4e19e11bu
#define HQ_MAGIC 0x4e19e0aau
#define HS_MAGIC 0x4e195e7au
#define HP_LINE_MAX (64u * 1024u)   /* a reply line longer than this kills the child */
#define HP_RBUF_MIN 1024u
#define HP_RESTART_MS 1000u         /* a slot starts a child at most once a second... */
#define HP_BACKOFF_MAX_MS 60000u    /* ...or less often while its children keep failing */
#define HP_QUICK_MS 10000u          /* a child gone this soon without an answer failed */
#define HP_CRASH_MS 2000u           /* gone this soon: the pool is failing (see failing) */
#define HP_REAP_MS 100u             /* a killed child is looked for this often */
#define HP_CHILDREN_MAX 1024u
#define HP_ARGS_MAX 64u

/* A pool nobody asked for during this long is freed when idle. A variable so that the unit
 * test (which includes this file) can shorten it. */
static uint64_t hp_idle_ms = 60000;

enum hq_where { HQ_QUEUED, HQ_INFLIGHT, HQ_DONE, HQ_CALLING };

struct hreq {
	unsigned magic;
	struct hreq *prev, *next;
	struct hpool *pool;
	struct hp_child *child;       /* HQ_INFLIGHT: the child that has it */
	enum hq_where where;
	uint32_t want;                /* HPOOL_ANY or a child id */
	unsigned channel;             /* concurrency > 0: the channel ID it was sent with */
	uint64_t submit_ms, sent_ms;
	hpool_cb *cb;                 /* NULL: cancelled, or its callback ran already */
	void *arg;
	enum hp_status status;        /* HQ_DONE: what to deliver */
	size_t len;
	char line[];
};

struct hq_list {
	struct hreq *head, *tail;
	unsigned n;
};

struct hp_child {
	struct hpool *pool;
	unsigned slot;
	uint16_t gen;
	pid_t pid;                    /* 0: down */
	int wfd, rfd;                 /* the child's stdin (we write), its stdout (we read) */
	struct ev_io wio, rio;
	char *wbuf;                   /* bytes not yet written, wbuf[0..wlen) */
	size_t wlen, wcap;
	char *rbuf;                   /* a reply line being assembled, rbuf[0..rlen) */
	size_t rlen, rcap;
	struct hq_list inflight;
	struct hreq **chan;           /* concurrency > 0: the request on each channel */
	uint64_t started_ms, restart_at_ms;
	unsigned backoff_ms;          /* the least time between two starts of this slot */
	int started_once;
	int answered;                 /* the child answered a line since it started */
};

struct hpool {
	unsigned magic;
	struct ev_loop *loop;
	struct hpool_cfg cfg;         /* cfg.cmd owned */
	char *name;                   /* the program's base name, for the logs */
	char *argbuf;                 /* argv's strings */
	char *argv[HP_ARGS_MAX + 1];
	unsigned conc;                /* requests a child takes at once (>= 1) */
	struct hp_child *kids;
	unsigned nkids;
	struct hq_list queue, done;
	struct ev_timer tick;
	struct ev_post post;
	pid_t *reap;                  /* killed, not reaped yet */
	size_t nreap, capreap;
	int failing;                  /* the last start of a child failed, or a child died right
	                               * after its start without answering (a crash loop: wrong
	                               * arguments, a missing library); with no child up, requests
	                               * fail at once instead of waiting for the timeout. Cleared
	                               * by the next answer. */
	int closing;                  /* inside hpool_free */
	uint64_t requests, replies, timeouts, deaths, restarts, overloads;
	/* membership of a struct hpool_set */
	struct hpool *set_next;
	uint64_t last_used_ms;
	int named;                    /* the config in force names it (hpool_set_start): it is
	                               * kept however long it goes unused */
};

struct hpool_set {
	unsigned magic;
	struct ev_loop *loop;
	struct hpool *pools;
	struct ev_timer idle;
};

/* ---- children killed after their pool was freed ---- */

static pthread_mutex_t hp_orphan_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t *hp_orphans;
static size_t hp_norphans, hp_caporphans;

static void
hp_orphans_add(pid_t pid)
{
	pthread_mutex_lock(&hp_orphan_lock);
	if (hp_norphans == hp_caporphans) {
		size_t cap = hp_caporphans ? hp_caporphans * 2 : 16;
		pid_t *n = realloc(hp_orphans, cap * sizeof(*n));

		if (n == NULL) {
			/* a zombie until the daemon exits: not worth more than this */
			pthread_mutex_unlock(&hp_orphan_lock);
			return;
		}
		hp_orphans = n;
		hp_caporphans = cap;
	}
	hp_orphans[hp_norphans++] = pid;
	pthread_mutex_unlock(&hp_orphan_lock);
}

/* Reap what has exited. Returns how many are left. */
static size_t
hp_orphans_reap(void)
{
	size_t left;

	pthread_mutex_lock(&hp_orphan_lock);
	for (size_t i = 0; i < hp_norphans;) {
		pid_t r = waitpid(hp_orphans[i], NULL, WNOHANG);

		if (r == hp_orphans[i] || (r < 0 && errno == ECHILD))
			hp_orphans[i] = hp_orphans[--hp_norphans];
		else
			i++;
	}
	left = hp_norphans;
	if (left == 0) {
		free(hp_orphans);
		hp_orphans = NULL;
		hp_caporphans = 0;
	}
	pthread_mutex_unlock(&hp_orphan_lock);
	return left;
}

/* ---- lists ---- */

static void
hq_append(struct hq_list *l, struct hreq *r)
{
	r->next = NULL;
	r->prev = l->tail;
	if (l->tail)
		l->tail->next = r;
	else
		l->head = r;
	l->tail = r;
	l->n++;
}

static void
hq_remove(struct hq_list *l, struct hreq *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		l->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		l->tail = r->prev;
	r->next = r->prev = NULL;
	l->n--;
}

static uint32_t
hp_child_id(const struct hp_child *c)
{
	return (uint32_t)c->gen << 16 | c->slot;
}

static void hp_arm(struct hpool *p);
static void hp_dispatch(struct hpool *p);

/* Run r's callback (unless cancelled) and free r. r is on no list. */
static void
hp_finish(struct hreq *r, enum hp_status st, const char *line, size_t len, uint32_t child)
{
	hpool_cb *cb = r->cb;
	struct hpool_reply rep = { st, line ? line : "", line ? len : 0, child };

	assert(r->magic == HQ_MAGIC);
	r->cb = NULL;
	r->where = HQ_CALLING;
	if (cb)
		cb(r->arg, &rep);
	r->magic = 0;
	free(r);
}

/* Fail r on a later turn (it failed inside hpool_submit). */
static void
hp_fail_later(struct hpool *p, struct hreq *r, enum hp_status st)
{
	r->where = HQ_DONE;
	r->status = st;
	hq_append(&p->done, r);
	ev_post_start(p->loop, &p->post);
}

static void
hp_post_cb(struct ev_post *ep)
{
	struct hpool *p = ep->arg;
	struct hq_list l = p->done;

	assert(p->magic == HP_MAGIC);
	memset(&p->done, 0, sizeof(p->done));
	while (l.head) {
		struct hreq *r = l.head;

		hq_remove(&l, r);
		hp_finish(r, r->status, NULL, 0, HPOOL_ANY);
	}
	hp_arm(p);
}

/* ---- the command line ---- */

/* Split cmd into p->argv: words on blanks, "..." and '...' group, a backslash outside single
 * quotes takes the next byte as it is. */
static int
hp_argv_split(struct hpool *p, const char *cmd, char *err, size_t errlen)
{
	size_t n = strlen(cmd);
	char *o = malloc(n + 1);
	const char *s = cmd;
	unsigned argc = 0;

	if (o == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	p->argbuf = o;
	while (*s) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0')
			break;
		if (argc == HP_ARGS_MAX) {
			snprintf(err, errlen, "helper command has more than %u words", HP_ARGS_MAX);
			return -1;
		}
		p->argv[argc++] = o;
		char q = 0;
		while (*s && (q || (*s != ' ' && *s != '\t'))) {
			if (q && *s == q) {
				q = 0;
				s++;
			} else if (!q && (*s == '"' || *s == '\'')) {
				q = *s++;
			} else if (*s == '\\' && q != '\'' && s[1]) {
				*o++ = s[1];
				s += 2;
			} else {
				*o++ = *s++;
			}
		}
		if (q) {
			snprintf(err, errlen, "helper command \"%s\": unterminated %c quote", cmd, q);
			return -1;
		}
		*o++ = '\0';
	}
	p->argv[argc] = NULL;
	if (argc == 0) {
		snprintf(err, errlen, "empty helper command");
		return -1;
	}
	if (p->argv[0][0] != '/') {
		snprintf(err, errlen, "helper command \"%s\": the program must be an absolute path",
		         cmd);
		return -1;
	}
	if (access(p->argv[0], X_OK) != 0) {
		snprintf(err, errlen, "helper %s: %s", p->argv[0], strerror(errno));
		return -1;
	}
	const char *base = strrchr(p->argv[0], '/');
	p->name = strdup(base + 1);
	if (p->name == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* ---- children ---- */

static void hp_child_rcb(struct ev_io *io, unsigned revents);
static void hp_child_wcb(struct ev_io *io, unsigned revents);

/* Start c's process. 0, or -1 with err. */
static int
hp_child_start(struct hp_child *c, char *err, size_t errlen)
{
	struct hpool *p = c->pool;
	int in[2] = { -1, -1 }, out[2] = { -1, -1 };
	pid_t pid;
	int rc;

	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "helper %s: pipe: %s", p->name, strerror(errno));
		if (in[0] >= 0) {
			close(in[0]);
			close(in[1]);
		}
		return -1;
	}
	(void)fcntl(in[1], F_SETFL, O_NONBLOCK);
	(void)fcntl(out[0], F_SETFL, O_NONBLOCK);
	rc = spawn_child(&pid, p->argv[0], p->argv, in[0], out[1]);
	close(in[0]);
	close(out[1]);
	if (rc != 0) {
		close(in[1]);
		close(out[0]);
		snprintf(err, errlen, "cannot start helper %s: %s", p->argv[0], strerror(rc));
		p->failing = 1;
		return -1;
	}
	c->pid = pid;
	c->wfd = in[1];
	c->rfd = out[0];
	c->wlen = 0;
	c->rlen = 0;
	c->started_ms = ev_now(p->loop);
	c->answered = 0;
	ev_io_init(&c->wio, c->wfd, hp_child_wcb, c);
	ev_io_init(&c->rio, c->rfd, hp_child_rcb, c);
	if (ev_io_set(p->loop, &c->rio, EV_READ) < 0 || ev_io_set(p->loop, &c->wio, 0) < 0) {
		snprintf(err, errlen, "helper %s: cannot watch its pipes", p->name);
		ev_io_stop(&c->rio);
		ev_io_stop(&c->wio);
		close(c->wfd);
		close(c->rfd);
		c->wfd = c->rfd = -1;
		kill(pid, SIGKILL);
		if (waitpid(pid, NULL, WNOHANG) != pid)
			hp_orphans_add(pid);
		c->pid = 0;
		return -1;
	}
	if (c->started_once)
		p->restarts++;
	c->started_once = 1;
	log_info("helper %s: child %u started (pid %ld)", p->name, c->slot, (long)pid);
	return 0;
}

static void
hp_reap_add(struct hpool *p, pid_t pid)
{
	if (p->nreap == p->capreap) {
		size_t cap = p->capreap ? p->capreap * 2 : 8;
		pid_t *n = realloc(p->reap, cap * sizeof(*n));

		if (n == NULL) {
			hp_orphans_add(pid);
			return;
		}
		p->reap = n;
		p->capreap = cap;
	}
	p->reap[p->nreap++] = pid;
}

static void
hp_reap(struct hpool *p)
{
	for (size_t i = 0; i < p->nreap;) {
		pid_t r = waitpid(p->reap[i], NULL, WNOHANG);

		if (r == p->reap[i] || (r < 0 && errno == ECHILD))
			p->reap[i] = p->reap[--p->nreap];
		else
			i++;
	}
}

/* Stop watching and close c's pipes; its process is reaped now or later (killed when it has
 * not exited: it closed its stdout but still runs, or it hangs). Returns how it ended, for the
 * log. Does not touch the in-flight list. */
static void
hp_child_close(struct hp_child *c, int kill_it, char *how, size_t howlen)
{
	struct hpool *p = c->pool;
	int status;

	ev_io_stop(&c->rio);
	ev_io_stop(&c->wio);
	if (c->wfd >= 0)
		close(c->wfd);
	if (c->rfd >= 0)
		close(c->rfd);
	c->wfd = c->rfd = -1;
	c->wlen = c->rlen = 0;
	free(c->wbuf);
	free(c->rbuf);
	c->wbuf = c->rbuf = NULL;
	c->wcap = c->rcap = 0;
	if (c->pid > 0) {
		pid_t r = kill_it ? 0 : waitpid(c->pid, &status, WNOHANG);

		if (r == c->pid) {
			if (WIFSIGNALED(status))
				snprintf(how, howlen, "was killed by signal %d", WTERMSIG(status));
			else
				snprintf(how, howlen, "exited with status %d", WEXITSTATUS(status));
		} else {
			/* still running (or not quite gone): it is not reaped before it is dead */
			snprintf(how, howlen, "sent SIGKILL");
			kill(c->pid, SIGKILL);
			if (p->closing)
				hp_orphans_add(c->pid);
			else
				hp_reap_add(p, c->pid);
		}
	} else {
		snprintf(how, howlen, "is down");
	}
	c->pid = 0;
	c->gen++;
}

/* Start c again; when that fails, try again after its backoff. */
static void
hp_child_restart(struct hp_child *c, uint64_t now)
{
	char err[256];

	if (hp_child_start(c, err, sizeof(err)) < 0) {
		log_warn("%s; trying again in %u s", err, c->backoff_ms / 1000u);
		c->restart_at_ms = now + c->backoff_ms;
		c->backoff_ms = c->backoff_ms * 2 > HP_BACKOFF_MAX_MS ? HP_BACKOFF_MAX_MS :
		                c->backoff_ms * 2;
	}
}

/* c is lost (why says how, for the log). Its in-flight requests fail with st, except those
 * whose callback ran already. A new child starts on the timer: at once, or once its backoff
 * (a second at first) has passed since the last start. Only from the pool's own callbacks;
 * the caller re-arms the timer (hp_arm). */
static void
hp_child_down(struct hp_child *c, const char *why, int kill_it, enum hp_status st)
{
	struct hpool *p = c->pool;
	struct hq_list l = c->inflight;
	char how[64];
	long pid = (long)c->pid;
	uint64_t now = ev_now(p->loop);

	hp_child_close(c, kill_it, how, sizeof(how));
	memset(&c->inflight, 0, sizeof(c->inflight));
	if (c->chan)
		memset(c->chan, 0, p->conc * sizeof(*c->chan));
	p->deaths++;
	c->restart_at_ms = c->started_ms + c->backoff_ms > now ? c->started_ms + c->backoff_ms : now;
	if (!c->answered && now - c->started_ms < HP_CRASH_MS)
		p->failing = 1;
	/* a child that keeps failing soon after its start waits longer each time */
	if (!c->answered && now - c->started_ms < HP_QUICK_MS)
		c->backoff_ms = c->backoff_ms * 2 > HP_BACKOFF_MAX_MS ? HP_BACKOFF_MAX_MS :
		                c->backoff_ms * 2;
	else
		c->backoff_ms = HP_RESTART_MS;
	log_warn("helper %s: child %u (pid %ld) %s: %s; %u request%s in flight failed; restarting "
	         "it in %llu ms", p->name, c->slot, pid, why, how, l.n, l.n == 1 ? "" : "s",
	         (unsigned long long)(c->restart_at_ms - now));
	/* the new child starts on the pool's timer, never here: inside an I/O batch, the old
	 * pipes' pending events (EPOLLERR, EPOLLHUP) would reach the new child's watchers */
	while (l.head) {
		struct hreq *r = l.head;

		hq_remove(&l, r);
		r->child = NULL;
		hp_finish(r, st, NULL, 0, HPOOL_ANY);
	}
	hp_dispatch(p);
}

/* Write what c's stdin takes now; arm the write watcher for the rest. Errors are the write
 * callback's to handle (it may take the child down, which no caller of hpool_submit may see). */
static void
hp_child_flush(struct hp_child *c)
{
	ssize_t w = write(c->wfd, c->wbuf, c->wlen);

	if (w > 0) {
		memmove(c->wbuf, c->wbuf + w, c->wlen - (size_t)w);
		c->wlen -= (size_t)w;
	}
	if (c->wlen > 0)
		(void)ev_io_set(c->pool->loop, &c->wio, EV_WRITE);
}

static void
hp_child_wcb(struct ev_io *io, unsigned revents)
{
	struct hp_child *c = io->arg;
	struct hpool *p = c->pool;

	assert(p->magic == HP_MAGIC);
	if ((revents & EV_ERROR) && c->wlen == 0) {
		/* the read end is gone: epoll says so even with no interest, on every turn */
		hp_child_down(c, "closed its stdin", 0, HP_DIED);
		hp_arm(p);
		return;
	}
	while (c->wlen > 0) {
		ssize_t w = write(c->wfd, c->wbuf, c->wlen);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (w <= 0) {
			hp_child_down(c, "closed its stdin", 0, HP_DIED);
			hp_arm(p);
			return;
		}
		memmove(c->wbuf, c->wbuf + w, c->wlen - (size_t)w);
		c->wlen -= (size_t)w;
	}
	(void)ev_io_set(p->loop, &c->wio, 0);
}

/* One reply line (NUL-terminated at len). Returns 0, or -1 when the child is out of step (an
 * answer nobody asked for, an unknown channel). */
static int
hp_child_line(struct hp_child *c, char *line, size_t len)
{
	struct hpool *p = c->pool;
	struct hreq *r;

	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	if (p->cfg.concurrency == 0) {
		r = c->inflight.head;
		if (r == NULL)
			return -1;
	} else {
		unsigned long ch = 0;
		size_t i = 0;

		while (i < len && i < 9 && line[i] >= '0' && line[i] <= '9')
			ch = ch * 10 + (unsigned long)(line[i++] - '0');
		if (i == 0 || (i < len && line[i] != ' ') || ch >= p->conc || !c->chan[ch])
			return -1;
		if (i < len)
			i++;
		r = c->chan[ch];
		c->chan[ch] = NULL;
		line += i;
		len -= i;
	}
	hq_remove(&c->inflight, r);
	r->child = NULL;
	p->replies++;
	c->answered = 1;
	p->failing = 0;
	hp_finish(r, HP_OK, line, len, hp_child_id(c));
	return 0;
}

static void
hp_child_rcb(struct ev_io *io, unsigned revents)
{
	struct hp_child *c = io->arg;
	struct hpool *p = c->pool;
	const char *why = NULL;

	(void)revents;
	assert(p->magic == HP_MAGIC);
	if (c->rlen == c->rcap) {
		if (c->rcap >= HP_LINE_MAX) {
			why = "answered a line longer than 64 KiB";
			goto down;
		}
		size_t cap = c->rcap ? c->rcap * 2 : HP_RBUF_MIN;
		char *b = realloc(c->rbuf, cap + 1);
		if (b == NULL) {
			why = "could not be read (out of memory)";
			goto down;
		}
		c->rbuf = b;
		c->rcap = cap;
	}
	ssize_t n = read(c->rfd, c->rbuf + c->rlen, c->rcap - c->rlen);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return; /* a stale event, or a spurious wake-up */
	if (n <= 0) {
		why = n == 0 ? "closed its stdout" : "could not be read";
		goto down;
	}
	c->rlen += (size_t)n;
	/* lines: the callbacks may submit (to this child too: its write buffer and in-flight list
	 * change) but never take a child down, so rbuf stays as it is during the loop */
	size_t off = 0;
	char *nl;
	while ((nl = memchr(c->rbuf + off, '\n', c->rlen - off)) != NULL) {
		size_t len = (size_t)(nl - (c->rbuf + off));

		*nl = '\0';
		if (hp_child_line(c, c->rbuf + off, len) < 0) {
			char clip[80];

			log_warn("helper %s: child %u answered \"%s\" out of step", p->name, c->slot,
			         log_clip(c->rbuf + off, len, clip, sizeof(clip)));
			why = "is out of step";
			goto down;
		}
		off += len + 1;
	}
	memmove(c->rbuf, c->rbuf + off, c->rlen - off);
	c->rlen -= off;
	if (off > 0)
		hp_dispatch(p); /* it has room again */
	hp_arm(p);
	return;
down:
	hp_child_down(c, why, 0, HP_DIED);
	hp_arm(p);
}

/* ---- requests ---- */

/* Hand r (on the queue) to c, which has room. */
static int
hp_send(struct hp_child *c, struct hreq *r)
{
	struct hpool *p = c->pool;
	char pre[16];
	int pl = 0;
	unsigned ch = 0;

	if (p->cfg.concurrency > 0) {
		while (ch < p->conc && c->chan[ch])
			ch++;
		assert(ch < p->conc);
		pl = snprintf(pre, sizeof(pre), "%u ", ch);
	}
	size_t need = c->wlen + (size_t)pl + r->len + 1;
	if (need > c->wcap) {
		size_t cap = c->wcap ? c->wcap : 256;

		while (cap < need)
			cap *= 2;
		char *b = realloc(c->wbuf, cap);
		if (b == NULL)
			return -1;
		c->wbuf = b;
		c->wcap = cap;
	}
	/* the line goes out whole: built behind what waits, then one write */
	size_t at = c->wlen;
	memcpy(c->wbuf + at, pre, (size_t)pl);
	memcpy(c->wbuf + at + (size_t)pl, r->line, r->len);
	c->wbuf[at + (size_t)pl + r->len] = '\n';
	c->wlen = need;
	hq_remove(&p->queue, r);
	r->where = HQ_INFLIGHT;
	r->child = c;
	r->channel = ch;
	r->sent_ms = ev_now(p->loop);
	if (p->cfg.concurrency > 0)
		c->chan[ch] = r;
	hq_append(&c->inflight, r);
	hp_child_flush(c);
	return 0;
}

/* The child r wants, when it is up and its id still matches; NULL otherwise. */
static struct hp_child *
hp_pinned(struct hpool *p, uint32_t id)
{
	unsigned slot = id & 0xffffu;

	if (slot >= p->nkids)
		return NULL;
	struct hp_child *c = &p->kids[slot];
	if (c->pid <= 0 || hp_child_id(c) != id)
		return NULL;
	return c;
}

/* The least busy child with room, or NULL. */
static struct hp_child *
hp_free_child(struct hpool *p)
{
	struct hp_child *best = NULL;

	for (unsigned i = 0; i < p->nkids; i++) {
		struct hp_child *c = &p->kids[i];

		if (c->pid > 0 && c->inflight.n < p->conc &&
		    (best == NULL || c->inflight.n < best->inflight.n))
			best = c;
	}
	return best;
}

/* Send what the queue holds to children with room, in order. A pinned request whose child is
 * gone fails; one whose child is busy waits without holding up the others. */
static void
hp_dispatch(struct hpool *p)
{
	struct hreq *r = p->queue.head;

	while (r) {
		struct hreq *next = r->next;
		struct hp_child *c;

		if (r->want != HPOOL_ANY) {
			c = hp_pinned(p, r->want);
			if (c == NULL) {
				hq_remove(&p->queue, r);
				hp_fail_later(p, r, HP_DIED);
			} else if (c->inflight.n < p->conc && hp_send(c, r) < 0) {
				hq_remove(&p->queue, r);
				hp_fail_later(p, r, HP_DIED);
			}
		} else {
			c = hp_free_child(p);
			if (c != NULL && hp_send(c, r) < 0) {
				hq_remove(&p->queue, r);
				hp_fail_later(p, r, HP_DIED);
			}
		}
		r = next;
	}
}

static int
hp_any_up(const struct hpool *p)
{
	for (unsigned i = 0; i < p->nkids; i++)
		if (p->kids[i].pid > 0)
			return 1;
	return 0;
}

struct hreq *
hpool_submit(struct hpool *p, uint32_t child, const char *line, size_t len, hpool_cb *cb,
             void *arg)
{
	assert(p->magic == HP_MAGIC);
	if (p->closing)
		return NULL;
	struct hreq *r = malloc(sizeof(*r) + len + 1);
	if (r == NULL)
		return NULL;
	memset(r, 0, sizeof(*r));
	r->magic = HQ_MAGIC;
	r->pool = p;
	r->want = child;
	r->cb = cb;
	r->arg = arg;
	r->len = len;
	memcpy(r->line, line, len);
	r->line[len] = '\0';
	r->submit_ms = ev_now(p->loop);
	p->requests++;
	if (memchr(line, '\n', len) || memchr(line, '\r', len) || memchr(line, '\0', len)) {
		/* it would be two requests to the helper: never sent */
		log_warn("helper %s: a request with a line break or NUL refused", p->name);
		hp_fail_later(p, r, HP_DIED);
		return r;
	}
	/* the child to send r to now; NULL: r waits in the queue */
	struct hp_child *c;
	if (child != HPOOL_ANY) {
		c = hp_pinned(p, child);
		if (c == NULL) {
			hp_fail_later(p, r, HP_DIED);
			return r;
		}
		if (c->inflight.n >= p->conc)
			c = NULL;
	} else {
		c = hp_free_child(p);
		if (c == NULL && !hp_any_up(p) && p->failing) {
			hp_fail_later(p, r, HP_DIED);
			return r;
		}
	}
	r->where = HQ_QUEUED;
	hq_append(&p->queue, r);
	if (c != NULL && child == HPOOL_ANY) {
		/* in queue order: pinned requests waiting for their busy children stay ahead */
		hp_dispatch(p);
	} else if (c != NULL) {
		if (hp_send(c, r) < 0) {
			hq_remove(&p->queue, r);
			hp_fail_later(p, r, HP_DIED);
			return r;
		}
	} else if (p->queue.n > p->cfg.queue_max) {
		hq_remove(&p->queue, r);
		p->overloads++;
		hp_fail_later(p, r, HP_OVERLOAD);
		return r;
	}
	hp_arm(p);
	return r;
}

void
hpool_cancel(struct hreq *r)
{
	if (r == NULL)
		return;
	assert(r->magic == HQ_MAGIC);
	switch (r->where) {
	case HQ_QUEUED:
		hq_remove(&r->pool->queue, r);
		r->magic = 0;
		free(r);
		break;
	case HQ_INFLIGHT:   /* the answer, when it comes, is read and dropped */
	case HQ_DONE:       /* freed by the posted delivery */
	case HQ_CALLING:    /* cancelled from its own callback: freed after it */
		r->cb = NULL;
		break;
	}
}

/* ---- the timer ---- */

static void
hp_arm(struct hpool *p)
{
	uint64_t now = ev_now(p->loop), next = UINT64_MAX, t = p->cfg.timeout_ms;

	if (p->closing)
		return;
	if (p->queue.head)
		next = p->queue.head->submit_ms + t;
	for (unsigned i = 0; i < p->nkids; i++) {
		struct hp_child *c = &p->kids[i];

		if (c->pid <= 0) {
			if (c->restart_at_ms < next)
				next = c->restart_at_ms;
			continue;
		}
		for (struct hreq *r = c->inflight.head; r; r = r->next) {
			if (r->cb && r->submit_ms + t < next)
				next = r->submit_ms + t;
			if (r->sent_ms + t < next)
				next = r->sent_ms + t;
		}
	}
	if (p->nreap > 0 && now + HP_REAP_MS < next)
		next = now + HP_REAP_MS;
	if (next == UINT64_MAX) {
		ev_timer_stop(&p->tick);
		return;
	}
	ev_timer_start(p->loop, &p->tick, next > now ? next - now : 0);
}

/* Deliver HP_TIMEOUT to the requests whose deadline passed: queued ones leave the queue (it
 * is in submit order); those in flight stay there, cancelled, until answered or until their
 * child is judged by when it got them. Callbacks run after their requests are marked, in
 * batches, so that a callback that submits or cancels never meets a half-walked list. */
static void
hp_expire(struct hpool *p, uint64_t now)
{
	uint64_t t = p->cfg.timeout_ms;

	while (p->queue.head && p->queue.head->submit_ms + t <= now) {
		struct hreq *r = p->queue.head;

		hq_remove(&p->queue, r);
		p->timeouts++;
		hp_finish(r, HP_TIMEOUT, NULL, 0, HPOOL_ANY);
	}
	for (;;) {
		struct {
			hpool_cb *cb;
			void *arg;
			uint32_t child;
		} due[64];
		size_t n = 0;

		for (unsigned i = 0; i < p->nkids && n < 64; i++) {
			for (struct hreq *r = p->kids[i].inflight.head; r && n < 64; r = r->next) {
				if (r->cb && r->submit_ms + t <= now) {
					due[n].cb = r->cb;
					due[n].arg = r->arg;
					due[n].child = hp_child_id(&p->kids[i]);
					n++;
					r->cb = NULL;
					p->timeouts++;
				}
			}
		}
		for (size_t k = 0; k < n; k++) {
			struct hpool_reply rep = { HP_TIMEOUT, "", 0, due[k].child };

			due[k].cb(due[k].arg, &rep);
		}
		if (n < 64)
			break;
	}
}

static void
hp_tick_cb(struct ev_timer *tm)
{
	struct hpool *p = tm->arg;
	uint64_t now = ev_now(p->loop);

	assert(p->magic == HP_MAGIC);
	hp_reap(p);
	(void)hp_orphans_reap();
	/* first the callers, then the hung children: a caller learns HP_TIMEOUT either way */
	hp_expire(p, now);
	for (unsigned i = 0; i < p->nkids; i++) {
		struct hp_child *c = &p->kids[i];
		struct hreq *r = c->inflight.head;

		if (c->pid > 0 && r && r->sent_ms + p->cfg.timeout_ms <= now) {
			log_warn("helper %s: child %u did not answer within %u ms", p->name, c->slot,
			         p->cfg.timeout_ms);
			hp_child_down(c, "hung", 1, HP_DIED);
		}
	}
	for (unsigned i = 0; i < p->nkids; i++) {
		struct hp_child *c = &p->kids[i];

		if (c->pid <= 0 && c->restart_at_ms <= now)
			hp_child_restart(c, now);
	}
	hp_dispatch(p);
	hp_arm(p);
}

/* ---- pool lifetime ---- */

static void
hp_mem_free(struct ev_loop *loop, void *arg)
{
	struct hpool *p = arg;

	(void)loop;
	for (unsigned i = 0; i < p->nkids; i++)
		free(p->kids[i].chan);
	free(p->kids);
	free(p->reap);
	free(p->argbuf);
	free(p->name);
	free((char *)p->cfg.cmd);
	p->magic = 0;
	free(p);
}

int
hpool_new(struct ev_loop *loop, const struct hpool_cfg *cfg, struct hpool **out, char *err,
          size_t errlen)
{
	struct hpool *p;

	*out = NULL;
	if (cfg->cmd == NULL || cfg->children == 0 || cfg->children > HP_CHILDREN_MAX) {
		snprintf(err, errlen, "helper: %s", cfg->cmd == NULL ? "no command" :
		         "children must be between 1 and 1024");
		return -1;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	p->magic = HP_MAGIC;
	p->loop = loop;
	p->cfg = *cfg;
	p->cfg.cmd = strdup(cfg->cmd);
	p->conc = cfg->concurrency ? cfg->concurrency : 1;
	p->nkids = cfg->children;
	p->kids = calloc(p->nkids, sizeof(*p->kids));
	ev_timer_init(&p->tick, hp_tick_cb, p);
	ev_post_init(&p->post, hp_post_cb, p);
	if (p->cfg.cmd == NULL || p->kids == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (hp_argv_split(p, cfg->cmd, err, errlen) < 0)
		goto fail;
	for (unsigned i = 0; i < p->nkids; i++) {
		struct hp_child *c = &p->kids[i];

		c->pool = p;
		c->slot = i;
		c->wfd = c->rfd = -1;
		c->backoff_ms = HP_RESTART_MS;
		if (cfg->concurrency > 0) {
			c->chan = calloc(p->conc, sizeof(*c->chan));
			if (c->chan == NULL) {
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
		}
	}
	for (unsigned i = 0; i < p->nkids; i++)
		if (hp_child_start(&p->kids[i], err, errlen) < 0)
			goto fail;
	log_info("helper %s: %u children, concurrency %u, timeout %u ms, queue %u", p->name,
	         p->nkids, cfg->concurrency, cfg->timeout_ms, cfg->queue_max);
	*out = p;
	return 0;
fail:
	p->closing = 1;
	for (unsigned i = 0; p->kids && i < p->nkids; i++) {
		char how[64];

		if (p->kids[i].pid > 0)
			hp_child_close(&p->kids[i], 1, how, sizeof(how));
	}
	hp_mem_free(loop, p);
	return -1;
}

void
hpool_free(struct hpool **pp)
{
	struct hpool *p = *pp;
	struct hq_list l = { 0 };

	if (p == NULL)
		return;
	*pp = NULL;
	assert(p->magic == HP_MAGIC);
	p->closing = 1;
	ev_timer_stop(&p->tick);
	ev_post_stop(&p->post);
	for (unsigned i = 0; i < p->nkids; i++) {
		struct hp_child *c = &p->kids[i];
		char how[64];

		if (c->pid > 0)
			hp_child_close(c, 1, how, sizeof(how));
		while (c->inflight.head) {
			struct hreq *r = c->inflight.head;

			hq_remove(&c->inflight, r);
			r->status = HP_DIED;
			hq_append(&l, r);
		}
	}
	while (p->queue.head) {
		struct hreq *r = p->queue.head;

		hq_remove(&p->queue, r);
		r->status = HP_DIED;
		hq_append(&l, r);
	}
	while (p->done.head) {
		struct hreq *r = p->done.head;

		hq_remove(&p->done, r);
		hq_append(&l, r);
	}
	for (size_t i = 0; i < p->nreap; i++)
		hp_orphans_add(p->reap[i]);
	p->nreap = 0;
	while (l.head) {
		struct hreq *r = l.head;

		hq_remove(&l, r);
		r->child = NULL;
		hp_finish(r, r->status, NULL, 0, HPOOL_ANY);
	}
	(void)hp_orphans_reap();
	/* the ev_io structs may still be in the loop's current batch */
	if (ev_defer(p->loop, hp_mem_free, p) < 0)
		hp_mem_free(p->loop, p);
}

void
hpool_get_stats(const struct hpool *p, struct hpool_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->requests = p->requests;
	out->replies = p->replies;
	out->timeouts = p->timeouts;
	out->deaths = p->deaths;
	out->restarts = p->restarts;
	out->overloads = p->overloads;
	for (unsigned i = 0; i < p->nkids; i++) {
		out->children_up += p->kids[i].pid > 0;
		out->busy += p->kids[i].inflight.n > 0;
	}
	out->queued = p->queue.n;
}

/* ---- sets ---- */

static int
hp_cfg_same(const struct hpool_cfg *a, const struct hpool_cfg *b)
{
	return strcmp(a->cmd, b->cmd) == 0 && a->children == b->children &&
	       a->concurrency == b->concurrency && a->timeout_ms == b->timeout_ms &&
	       a->queue_max == b->queue_max;
}

static int
hp_idle(const struct hpool *p)
{
	if (p->queue.n || p->done.n)
		return 0;
	for (unsigned i = 0; i < p->nkids; i++)
		if (p->kids[i].inflight.n)
			return 0;
	return 1;
}

static void
hp_set_idle_cb(struct ev_timer *t)
{
	struct hpool_set *s = t->arg;
	uint64_t now = ev_now(s->loop);

	assert(s->magic == HS_MAGIC);
	for (struct hpool **pp = &s->pools; *pp;) {
		struct hpool *p = *pp;

		if (!p->named && now - p->last_used_ms >= hp_idle_ms && hp_idle(p)) {
			*pp = p->set_next;
			log_info("helper %s: pool unused for %llu s, stopped", p->name,
			         (unsigned long long)(hp_idle_ms / 1000));
			hpool_free(&p);
		} else {
			pp = &p->set_next;
		}
	}
	(void)hp_orphans_reap();
	if (s->pools)
		ev_timer_start(s->loop, &s->idle, hp_idle_ms / 4 + 1);
}

int
hpool_set_new(struct ev_loop *loop, struct hpool_set **out)
{
	struct hpool_set *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (s == NULL)
		return -1;
	s->magic = HS_MAGIC;
	s->loop = loop;
	ev_timer_init(&s->idle, hp_set_idle_cb, s);
	*out = s;
	return 0;
}

void
hpool_set_free(struct hpool_set **sp)
{
	struct hpool_set *s = *sp;

	if (s == NULL)
		return;
	*sp = NULL;
	assert(s->magic == HS_MAGIC);
	ev_timer_stop(&s->idle);
	while (s->pools) {
		struct hpool *p = s->pools;

		s->pools = p->set_next;
		hpool_free(&p);
	}
	/* the children were sent SIGKILL: give them a moment to be reaped (bounded) */
	for (unsigned i = 0; i < 50 && hp_orphans_reap() > 0; i++) {
		struct timespec ts = { 0, 2 * 1000000L };

		nanosleep(&ts, NULL);
	}
	s->magic = 0;
	free(s);
}

struct hpool *
hpool_set_get(struct hpool_set *s, const struct hpool_cfg *cfg, char *err, size_t errlen)
{
	struct hpool *p;

	assert(s->magic == HS_MAGIC);
	if (cfg->cmd == NULL) {
		snprintf(err, errlen, "no helper command");
		return NULL;
	}
	for (p = s->pools; p; p = p->set_next) {
		if (hp_cfg_same(&p->cfg, cfg)) {
			p->last_used_ms = ev_now(s->loop);
			return p;
		}
	}
	if (hpool_new(s->loop, cfg, &p, err, errlen) < 0)
		return NULL;
	p->last_used_ms = ev_now(s->loop);
	p->set_next = s->pools;
	s->pools = p;
	if (!ev_timer_active(&s->idle))
		ev_timer_start(s->loop, &s->idle, hp_idle_ms / 4 + 1);
	return p;
}

unsigned
hpool_set_start(struct hpool_set *s, const struct hpool_cfg *const *cfgs, size_t n)
{
	unsigned failed = 0;

	assert(s->magic == HS_MAGIC);
	for (struct hpool *p = s->pools; p; p = p->set_next)
		p->named = 0;
	for (size_t i = 0; i < n; i++) {
		char err[256];
		struct hpool *p = hpool_set_get(s, cfgs[i], err, sizeof(err));

		if (p == NULL) {
			log_warn("%s; tried again at the first request", err);
			failed++;
			continue;
		}
		p->named = 1;
	}
	return failed;
}

void
hpool_set_stats(const struct hpool_set *s, struct hpool_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (const struct hpool *p = s->pools; p; p = p->set_next) {
		struct hpool_stats one;

		hpool_get_stats(p, &one);
		out->requests += one.requests;
		out->replies += one.replies;
		out->timeouts += one.timeouts;
		out->deaths += one.deaths;
		out->restarts += one.restarts;
		out->overloads += one.overloads;
		out->children_up += one.children_up;
		out->busy += one.busy;
		out->queued += one.queued;
	}
}

/* ---- replies ---- */

static const struct {
	const char *word;
	enum hr_code code;
} hr_codes[] = {
	{ "OK", HR_OK }, { "ERR", HR_ERR }, { "BH", HR_BH }, { "TT", HR_TT }, { "AF", HR_AF },
	{ "NA", HR_NA }, { "LD", HR_LD }, { "KK", HR_KK },
};

/* The keys a positional Negotiate word is told apart from ("TT token=..." is the new form;
 * a base64 token may itself end in '='). */
static const char *const hr_keys[] = { "user=", "group=", "token=", "message=", "log=", "tag=",
                                       "ttl=", "clt_conn_tag=" };

static int
hr_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

static int
hr_is_known_key(const char *s, const char *end)
{
	for (size_t i = 0; i < sizeof(hr_keys) / sizeof(hr_keys[0]); i++) {
		size_t n = strlen(hr_keys[i]);

		if ((size_t)(end - s) >= n && memcmp(s, hr_keys[i], n) == 0)
			return 1;
	}
	return 0;
}

/* Length of "key" when s starts a key=value word, else 0. */
static size_t
hr_key_len(const char *s, const char *end)
{
	const char *k = s;

	while (k < end && ((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') ||
	                   (*k >= '0' && *k <= '9') || *k == '_' || *k == '-'))
		k++;
	return k > s && k < end && *k == '=' ? (size_t)(k - s) : 0;
}

static int
hr_hex(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Copy one word from *rp (up to a blank or end) to *wp, "..." quoting with \-escapes removed,
 * NUL-terminated. *wp trails *rp (see hreply_parse). Returns the word's start, NULL when a
 * quote is not closed. */
static char *
hr_word(char **rp, char *end, char **wp)
{
	char *r = *rp, *w = *wp, *start = w;

	while (r < end && !hr_blank(*r)) {
		if (*r == '"') {
			r++;
			while (r < end && *r != '"') {
				if (*r == '\\' && r + 1 < end) {
					r++;
					*w++ = *r == 'n' ? '\n' : *r == 'r' ? '\r' : *r == 't' ? '\t' : *r;
					r++;
				} else {
					*w++ = *r++;
				}
			}
			if (r == end)
				return NULL;
			r++;
		} else {
			*w++ = *r++;
		}
	}
	*w++ = '\0';
	*rp = r;
	*wp = w;
	return start;
}

/* %-decode s in place. -1 when it decodes to a NUL. */
static int
hr_unescape(char *s)
{
	char *w = s;

	for (char *r = s; *r; r++) {
		int a, b;

		if (*r == '%' && (a = hr_hex(r[1])) >= 0 && (b = hr_hex(r[2])) >= 0) {
			if (a == 0 && b == 0)
				return -1;
			*w++ = (char)(a * 16 + b);
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
	return 0;
}

static int
hr_has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* Parse in place. Every string written goes to w, which starts at line[0] and stays behind r:
 * the code (2 or 3 bytes and a blank) is not copied, a key's "k=" pays for its value's NUL and
 * a positional word's NUL takes the blank after it, so at most one byte of that head start is
 * spent (on the last word) and line[len] is never touched. */
int
hreply_parse(char *line, size_t len, struct hreply *out)
{
	char *end, *r, *w = line, *other = NULL;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->code = HR_UNKNOWN;
	if (memchr(line, '\0', len) != NULL)
		return -1;
	while (len > 0 && (hr_blank(line[len - 1]) || line[len - 1] == '\r' ||
	                   line[len - 1] == '\n'))
		len--;
	end = line + len;
	r = line;
	while (r < end && hr_blank(*r))
		r++;
	char *cw = r;
	while (r < end && !hr_blank(*r))
		r++;
	for (i = 0; i < sizeof(hr_codes) / sizeof(hr_codes[0]); i++)
		if ((size_t)(r - cw) == strlen(hr_codes[i].word) &&
		    memcmp(cw, hr_codes[i].word, (size_t)(r - cw)) == 0)
			break;
	if (i == sizeof(hr_codes) / sizeof(hr_codes[0]))
		return -1;
	enum hr_code code = hr_codes[i].code;
	while (r < end && hr_blank(*r))
		r++;
	/* Negotiate's positional words (Squid's old protocol) */
	if (r < end && !hr_is_known_key(r, end) &&
	    (code == HR_TT || code == HR_KK || code == HR_AF || code == HR_LD || code == HR_NA)) {
		char *w1 = hr_word(&r, end, &w), *w2 = NULL;

		if (w1 == NULL)
			goto bad;
		while (r < end && hr_blank(*r))
			r++;
		if (code == HR_AF || code == HR_LD) {
			if (r < end && !hr_is_known_key(r, end)) {
				w2 = hr_word(&r, end, &w);
				if (w2 == NULL)
					goto bad;
				while (r < end && hr_blank(*r))
					r++;
			}
			/* "AF TOKEN USER"; NTLM's "AF USER" has no token */
			out->token = w2 ? w1 : NULL;
			out->user = w2 ? w2 : w1;
		} else {
			out->token = w1;
		}
		if (code == HR_NA && r < end) {
			other = r; /* the reason: text, not keys */
			r = end;
		}
	}
	/* key=value words, until one is not */
	while (r < end) {
		size_t kl = hr_key_len(r, end);

		if (kl == 0) {
			other = r;
			break;
		}
		/* which key, before its value is written over it */
		int k = kl == 4 && memcmp(r, "user", 4) == 0 ? 1 :
		        kl == 5 && memcmp(r, "group", 5) == 0 ? 2 :
		        kl == 5 && memcmp(r, "token", 5) == 0 ? 3 :
		        kl == 7 && memcmp(r, "message", 7) == 0 ? 4 : 0;
		r += kl + 1;
		char *v = hr_word(&r, end, &w);
		if (v == NULL || hr_unescape(v) < 0)
			goto bad;
		if (k == 1)
			out->user = v;
		else if (k == 2 && v[0] != '\0' && out->ngroups < HREPLY_MAX_GROUPS)
			out->groups[out->ngroups++] = v;  /* "group=": none (no PAC) */
		else if (k == 3)
			out->token = v;
		else if (k == 4)
			out->message = v;
		while (r < end && hr_blank(*r))
			r++;
	}
	if (other != NULL && out->message == NULL &&
	    (code == HR_ERR || code == HR_BH || code == HR_NA)) {
		size_t n = (size_t)(end - other);

		memmove(w, other, n);
		w[n] = '\0';
		out->message = w;
		w += n + 1;
	}
	if (out->message) {
		/* for pages and logs: no control bytes */
		for (char *m = (char *)out->message; *m; m++)
			if ((unsigned char)*m < 0x20 || *m == 0x7f)
				*m = ' ';
	}
	if ((out->user && (out->user[0] == '\0' || hr_has_ctl(out->user))) ||
	    (out->token && (out->token[0] == '\0' || hr_has_ctl(out->token))))
		goto bad;
	for (i = 0; i < out->ngroups; i++)
		if (out->groups[i][0] == '\0' || hr_has_ctl(out->groups[i]))
			goto bad;
	out->code = code;
	return 0;
bad:
	memset(out, 0, sizeof(*out));
	out->code = HR_UNKNOWN;
	return -1;
}

/* ---- requests ---- */

static size_t
hr_escape(const char *s, char *out, size_t cap, size_t at)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			if (at + 1 >= cap)
				return 0;
			out[at++] = (char)ch;
		} else {
			if (at + 3 >= cap)
				return 0;
			out[at++] = '%';
			out[at++] = hex[ch >> 4];
			out[at++] = hex[ch & 15];
		}
	}
	return at;
}

size_t
hreq_basic_line(const char *user, const char *pass, char *out, size_t cap)
{
	size_t at;

	if (cap == 0)
		return 0;
	at = hr_escape(user, out, cap, 0);
	if (at == 0 && user[0] != '\0')
		return 0;
	if (at + 1 >= cap)
		return 0;
	out[at++] = ' ';
	size_t end = hr_escape(pass, out, cap, at);
	if (end == 0 && pass[0] != '\0')
		return 0;
	if (pass[0] == '\0')
		end = at;
	out[end] = '\0';
	return end;
}
