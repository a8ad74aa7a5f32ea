/*
 * ev.c - epoll event loop with a binary min-heap of timers, deferred calls and an eventfd
 * wake-up. See ev.h for the contract.
 *
 * One turn: run the before-sleep hooks, take the events posted so far as this turn's batch,
 * compute the sleep from the earliest timer (none when the batch has events), epoll_wait,
 * refresh the clock, dispatch I/O (re-checking each watcher's magic and interest, so a
 * watcher stopped earlier in the batch is skipped), run expired timers, run the posted batch,
 * then run deferred calls. What is posted during a turn waits for the next one, so that a
 * connection driven by I/O in this turn and posted again is not driven twice.
 */
#include "daemon/ev.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define EV_LOOP_MAGIC 0xe7100b00u
#define EV_BATCH 256

struct ev_defer_item {
	ev_hook_f *fn;
	void *arg;
};

struct ev_loop {
	unsigned magic;
	int epfd;
	int stop;
	uint64_t now_ms;
	uint64_t wall_us;

	struct ev_timer **heap; /* 1-based */
	size_t nheap, capheap;

	struct ev_defer_item *defer;
	size_t ndefer, capdefer;

	struct ev_post posted;  /* sentinel of a circular list: the events posted for next turn */
	struct ev_post batch;   /* sentinel: this turn's posted events, run after its I/O */

	struct {
		ev_hook_f *fn;
		void *arg;
	} hooks[EV_MAX_HOOKS];
	size_t nhooks;

	int async_fd;
	struct ev_io async_io;
	ev_hook_f *async_cb;
	void *async_arg;
};

static void ev_defer_run(struct ev_loop *l);

static void
ev_clock_refresh(struct ev_loop *l)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	l->now_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
	clock_gettime(CLOCK_REALTIME, &ts);
	l->wall_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int
ev_loop_new(struct ev_loop **loopp)
{
	struct ev_loop *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return -ENOMEM;
	l->magic = EV_LOOP_MAGIC;
	l->async_fd = -1;
	l->posted.next = l->posted.prev = &l->posted;
	l->batch.next = l->batch.prev = &l->batch;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int e = errno;
		free(l);
		return -e;
	}
	ev_clock_refresh(l);
	*loopp = l;
	return 0;
}

void
ev_loop_free(struct ev_loop **loopp)
{
	struct ev_loop *l = *loopp;
	if (l == NULL)
		return;
	assert(l->magic == EV_LOOP_MAGIC);
	ev_defer_run(l); /* deferred frees still pending (e.g. from res_free) */
	if (l->async_fd >= 0) {
		ev_io_stop(&l->async_io);
		close(l->async_fd);
	}
	close(l->epfd);
	free(l->heap);
	free(l->defer);
	l->magic = 0;
	free(l);
	*loopp = NULL;
}

uint64_t
ev_now(const struct ev_loop *l)
{
	return l->now_ms;
}

uint64_t
ev_now_update(struct ev_loop *l)
{
	ev_clock_refresh(l);
	return l->now_ms;
}

uint64_t
ev_wall_us(const struct ev_loop *l)
{
	return l->wall_us;
}

/* ---- I/O ---- */

void
ev_io_init(struct ev_io *io, int fd, ev_io_f *cb, void *arg)
{
	memset(io, 0, sizeof(*io));
	io->magic = EV_IO_MAGIC;
	io->fd = fd;
	io->cb = cb;
	io->arg = arg;
}

static uint32_t
ev_epoll_bits(unsigned events)
{
	uint32_t e = 0;
	if (events & EV_READ)
		e |= EPOLLIN | EPOLLRDHUP;
	if (events & EV_WRITE)
		e |= EPOLLOUT;
	return e;
}

int
ev_io_set(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	assert(io->magic == EV_IO_MAGIC);
	events &= EV_READ | EV_WRITE;
	if (io->registered && io->events == events)
		return 0;
	struct epoll_event ee = {.events = ev_epoll_bits(events), .data.ptr = io};
	int op = io->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(l->epfd, op, io->fd, &ee) < 0)
		return -errno;
	io->registered = 1;
	io->events = events;
	io->loop = l;
	return 0;
}

void
ev_io_stop(struct ev_io *io)
{
	assert(io->magic == EV_IO_MAGIC);
	if (io->registered) {
		epoll_ctl(io->loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
		io->registered = 0;
	}
	io->events = 0;
}

/* ---- timers: binary min-heap on `when`, 1-based, heap_idx kept in each timer ---- */

void
ev_timer_init(struct ev_timer *t, ev_timer_f *cb, void *arg)
{
	memset(t, 0, sizeof(*t));
	t->magic = EV_TIMER_MAGIC;
	t->cb = cb;
	t->arg = arg;
}

static void
ev_heap_set(struct ev_loop *l, size_t i, struct ev_timer *t)
{
	l->heap[i] = t;
	t->heap_idx = i;
}

static void
ev_heap_up(struct ev_loop *l, size_t i)
{
	struct ev_timer *t = l->heap[i];
	while (i > 1 && l->heap[i / 2]->when > t->when) {
		ev_heap_set(l, i, l->heap[i / 2]);
		i /= 2;
	}
	ev_heap_set(l, i, t);
}

static void
ev_heap_down(struct ev_loop *l, size_t i)
{
	struct ev_timer *t = l->heap[i];
	for (;;) {
		size_t c = i * 2;
		if (c > l->nheap)
			break;
		if (c + 1 <= l->nheap && l->heap[c + 1]->when < l->heap[c]->when)
			c++;
		if (l->heap[c]->when >= t->when)
			break;
		ev_heap_set(l, i, l->heap[c]);
		i = c;
	}
	ev_heap_set(l, i, t);
}

void
ev_timer_stop(struct ev_timer *t)
{
	assert(t->magic == EV_TIMER_MAGIC);
	size_t i = t->heap_idx;
	if (i == 0)
		return;
	struct ev_loop *l = t->loop;
	struct ev_timer *last = l->heap[l->nheap--];
	t->heap_idx = 0;
	if (last == t)
		return;
	ev_heap_set(l, i, last);
	ev_heap_up(l, i);
	ev_heap_down(l, last->heap_idx);
}

void
ev_timer_start(struct ev_loop *l, struct ev_timer *t, uint64_t after_ms)
{
	assert(t->magic == EV_TIMER_MAGIC);
	if (t->heap_idx)
		ev_timer_stop(t);
	if (l->nheap + 1 >= l->capheap) {
		size_t cap = l->capheap ? l->capheap * 2 : 64;
		struct ev_timer **h = realloc(l->heap, cap * sizeof(*h));
		if (h == NULL)
			abort(); /* cannot keep the timer promise; out of memory is fatal here */
		l->heap = h;
		l->capheap = cap;
	}
	t->loop = l;
	t->when = l->now_ms + after_ms;
	l->nheap++;
	ev_heap_set(l, l->nheap, t);
	ev_heap_up(l, l->nheap);
}

static void
ev_timers_run(struct ev_loop *l)
{
	/* Bounded: timers re-armed by their callback for "now" would otherwise spin. */
	size_t budget = l->nheap + 16;
	while (l->nheap > 0 && l->heap[1]->when <= l->now_ms && budget-- > 0) {
		struct ev_timer *t = l->heap[1];
		ev_timer_stop(t);
		t->cb(t);
	}
}

/* ---- posted events: a circular doubly linked list through the loop's sentinel ---- */

void
ev_post_init(struct ev_post *p, ev_post_f *cb, void *arg)
{
	memset(p, 0, sizeof(*p));
	p->magic = EV_POST_MAGIC;
	p->cb = cb;
	p->arg = arg;
}

void
ev_post_start(struct ev_loop *l, struct ev_post *p)
{
	assert(p->magic == EV_POST_MAGIC);
	if (p->next != NULL)
		return;
	p->next = &l->posted;
	p->prev = l->posted.prev;
	l->posted.prev->next = p;
	l->posted.prev = p;
}

void
ev_post_stop(struct ev_post *p)
{
	assert(p->magic == EV_POST_MAGIC);
	if (p->next == NULL)
		return;
	p->prev->next = p->next;
	p->next->prev = p->prev;
	p->next = p->prev = NULL;
}

/* Start a turn: what was posted so far joins the end of this turn's batch (which is not empty
 * only after an interrupted epoll_wait). Returns whether the batch has events. */
static int
ev_posted_take(struct ev_loop *l)
{
	struct ev_post *head = &l->posted, *b = &l->batch;

	if (head->next != head) {
		head->next->prev = b->prev;
		b->prev->next = head->next;
		head->prev->next = b;
		b->prev = head->prev;
		head->next = head->prev = head;
	}
	return b->next != b;
}

/* Run this turn's batch, once each, in order. What the callbacks post (themselves included)
 * goes to l->posted, for the next turn: a connection that keeps posting itself cannot hold
 * the thread, and epoll is polled between its turns. ev_post_stop works on the batch too (it
 * only touches the neighbours): an I/O callback of this turn may take an event out. */
static void
ev_posted_run(struct ev_loop *l)
{
	struct ev_post *b = &l->batch;

	while (b->next != b) {
		struct ev_post *p = b->next;

		ev_post_stop(p);
		p->cb(p);
	}
}

/* ---- deferred calls and hooks ---- */

int
ev_defer(struct ev_loop *l, ev_hook_f *fn, void *arg)
{
	if (l->ndefer == l->capdefer) {
		size_t cap = l->capdefer ? l->capdefer * 2 : 64;
		struct ev_defer_item *d = realloc(l->defer, cap * sizeof(*d));
		if (d == NULL)
			return -ENOMEM;
		l->defer = d;
		l->capdefer = cap;
	}
	l->defer[l->ndefer].fn = fn;
	l->defer[l->ndefer].arg = arg;
	l->ndefer++;
	return 0;
}

static void
ev_defer_run(struct ev_loop *l)
{
	/* Deferred calls may defer more; run until empty, in order. */
	size_t i = 0;
	while (i < l->ndefer) {
		struct ev_defer_item d = l->defer[i++];
		d.fn(l, d.arg);
	}
	l->ndefer = 0;
}

int
ev_hook_add(struct ev_loop *l, ev_hook_f *fn, void *arg)
{
	if (l->nhooks == EV_MAX_HOOKS)
		return -ENOSPC;
	l->hooks[l->nhooks].fn = fn;
	l->hooks[l->nhooks].arg = arg;
	l->nhooks++;
	return 0;
}

/* ---- async wake-up ---- */

static void
ev_async_ready(struct ev_io *io, unsigned revents)
{
	(void)revents;
	struct ev_loop *l = io->arg;
	uint64_t v;
	while (read(l->async_fd, &v, sizeof(v)) > 0)
		;
	if (l->async_cb)
		l->async_cb(l, l->async_arg);
}

int
ev_async_start(struct ev_loop *l, ev_hook_f *cb, void *arg)
{
	if (l->async_fd < 0) {
		l->async_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (l->async_fd < 0)
			return -errno;
		ev_io_init(&l->async_io, l->async_fd, ev_async_ready, l);
		int rc = ev_io_set(l, &l->async_io, EV_READ);
		if (rc < 0)
			return rc;
	}
	l->async_cb = cb;
	l->async_arg = arg;
	return 0;
}

void
ev_async_send(struct ev_loop *l)
{
	uint64_t one = 1;
	ssize_t n = write(l->async_fd, &one, sizeof(one));
	(void)n; /* EAGAIN means a wake-up is already pending */
}

/* ---- the loop ---- */

void
ev_loop_break(struct ev_loop *l)
{
	l->stop = 1;
}

int
ev_loop_run(struct ev_loop *l)
{
	assert(l->magic == EV_LOOP_MAGIC);
	struct epoll_event evs[EV_BATCH];
	l->stop = 0;
	while (!l->stop) {
		for (size_t i = 0; i < l->nhooks; i++)
			l->hooks[i].fn(l, l->hooks[i].arg);
		if (l->ndefer) {
			ev_defer_run(l);
			continue;
		}
		if (l->stop)
			break;
		int timeout = -1;
		if (ev_posted_take(l))
			timeout = 0; /* posted work waits: only look at what is ready meanwhile */
		else if (l->nheap > 0) {
			uint64_t when = l->heap[1]->when;
			timeout = when <= l->now_ms ? 0 : (int)(when - l->now_ms > 3600000 ? 3600000 : when - l->now_ms);
		}
		int n = epoll_wait(l->epfd, evs, EV_BATCH, timeout);
		ev_clock_refresh(l);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n; i++) {
			struct ev_io *io = evs[i].data.ptr;
			/* Stale-event guard: stopped watchers are skipped. Objects are freed only
			 * through ev_defer, after this batch, so io still points at live memory. */
			if (io->magic != EV_IO_MAGIC || !io->registered)
				continue;
			uint32_t e = evs[i].events;
			unsigned rev = 0;
			if (e & (EPOLLIN | EPOLLRDHUP))
				rev |= EV_READ;
			if (e & EPOLLOUT)
				rev |= EV_WRITE;
			if (e & (EPOLLERR | EPOLLHUP))
				rev |= EV_ERROR | (io->events & (EV_READ | EV_WRITE));
			rev &= io->events | EV_ERROR;
			if (rev)
				io->cb(io, rev);
		}
		ev_timers_run(l);
		ev_posted_run(l);
		ev_defer_run(l);
	}
	return 0;
}
