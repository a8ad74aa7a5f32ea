/*
 * ev.h - the per-thread event loop: epoll readiness, millisecond timers, deferred work and a
 * cross-thread wake-up.
 *
 * One loop per worker thread; nothing here is thread-safe except ev_async_send(). Interest is
 * level-triggered: a callback that leaves data unread is called again on the next turn.
 *
 * Stale events: an ev_io stopped during a dispatch batch is not called for the rest of that
 * batch (ev_io_stop clears its interest and the loop re-checks before each call). Objects that
 * own an ev_io must not be freed inside a callback of the same batch: free them with ev_defer(),
 * which runs after the batch, before the loop sleeps.
 *
 * Posted events: a callback that stops with work left over (a fairness cap, a step guard) and
 * no readiness to come back for (its input is already buffered, its output socket has room)
 * posts itself with ev_post_start. The loop then does not sleep: it polls epoll, dispatches
 * what is ready, and runs the posted callbacks once each, in the order posted, so that one
 * busy connection takes its turn with the others instead of all the thread (nginx's posted
 * events, Redis's before-sleep).
 */
#ifndef GH_EV_H
#define GH_EV_H

#include <stddef.h>
#include <stdint.h>

#define EV_READ  0x1u
#define EV_WRITE 0x2u
#define EV_ERROR 0x4u /* reported only: EPOLLERR/EPOLLHUP; interest is implied */

struct ev_loop;
struct ev_io;
struct ev_timer;
struct ev_post;

/* Called with the subset of the io's interest that is ready (EV_ERROR may be added). */
typedef void ev_io_f(struct ev_io *io, unsigned revents);
typedef void ev_timer_f(struct ev_timer *t);
typedef void ev_hook_f(struct ev_loop *loop, void *arg);
typedef void ev_post_f(struct ev_post *p);

#define EV_IO_MAGIC    0x1e0a1e0au
#define EV_TIMER_MAGIC 0x7133e7a3u
#define EV_POST_MAGIC  0x9057e7e0u

struct ev_io {
	unsigned magic;
	int fd;
	unsigned events;   /* current interest, EV_READ|EV_WRITE */
	int registered;    /* known to epoll */
	ev_io_f *cb;
	void *arg;
	struct ev_loop *loop;
};

struct ev_timer {
	unsigned magic;
	uint64_t when;     /* absolute, ev_now() units (ms) */
	size_t heap_idx;   /* 0 = not armed; heap is 1-based */
	ev_timer_f *cb;
	void *arg;
	struct ev_loop *loop;
};

struct ev_post {
	unsigned magic;
	struct ev_post *next, *prev; /* on the loop's posted list; NULL when not posted */
	ev_post_f *cb;
	void *arg;
};

/* Loop lifetime. ev_loop_new returns 0 or -errno. */
int ev_loop_new(struct ev_loop **loopp);
/* Runs deferred calls still pending, then frees the loop. */
void ev_loop_free(struct ev_loop **loopp);

/* Runs until ev_loop_break(). Returns 0, or -errno if epoll_wait failed fatally. */
int ev_loop_run(struct ev_loop *loop);
void ev_loop_break(struct ev_loop *loop);

/* Cached monotonic clock in milliseconds, refreshed once per loop turn and by ev_now_update. */
uint64_t ev_now(const struct ev_loop *loop);
uint64_t ev_now_update(struct ev_loop *loop);
/* Wall clock in microseconds since the epoch, refreshed with ev_now (for logs). */
uint64_t ev_wall_us(const struct ev_loop *loop);

/* I/O watchers. ev_io_init does not touch the loop. ev_io_set changes interest (0 keeps the fd
 * registered with no interest); it registers on first use. ev_io_stop unregisters; call it
 * before close(fd). Return 0 or -errno. */
void ev_io_init(struct ev_io *io, int fd, ev_io_f *cb, void *arg);
int ev_io_set(struct ev_loop *loop, struct ev_io *io, unsigned events);
void ev_io_stop(struct ev_io *io);

/* Timers: one-shot, re-arm from the callback if needed. Starting an armed timer re-arms it. */
void ev_timer_init(struct ev_timer *t, ev_timer_f *cb, void *arg);
void ev_timer_start(struct ev_loop *loop, struct ev_timer *t, uint64_t after_ms);
void ev_timer_stop(struct ev_timer *t);
static inline int
ev_timer_active(const struct ev_timer *t)
{
	return t->heap_idx != 0;
}

/* Posted events. ev_post_init does not touch the loop. ev_post_start queues p to run once on
 * the next loop turn, after that turn's I/O and timers (a no-op when p is already queued):
 * whatever posts it, an I/O callback, a timer or a posted callback, p runs in the turn after,
 * so a callback that re-posts itself goes to the back of the line. The loop does not sleep
 * while anything is posted. ev_post_stop dequeues p (also from the turn being run); call it
 * before freeing p's owner. Both are O(1) and allocate nothing. */
void ev_post_init(struct ev_post *p, ev_post_f *cb, void *arg);
void ev_post_start(struct ev_loop *loop, struct ev_post *p);
void ev_post_stop(struct ev_post *p);
static inline int
ev_post_active(const struct ev_post *p)
{
	return p->next != NULL;
}

/* Runs fn(loop, arg) once, after the current dispatch batch (or before the next sleep when
 * called outside one). Used to free objects whose watchers may still be in the batch.
 * Returns 0 or -ENOMEM. */
int ev_defer(struct ev_loop *loop, ev_hook_f *fn, void *arg);

/* Hooks called on every turn just before the loop sleeps (e.g. flush buffered log lines).
 * At most EV_MAX_HOOKS. Returns 0 or -ENOSPC. */
#define EV_MAX_HOOKS 8
int ev_hook_add(struct ev_loop *loop, ev_hook_f *fn, void *arg);

/* Cross-thread wake-up: ev_async_send() from any thread makes cb run on the loop's thread.
 * Several sends before the loop wakes are folded into one call. */
int ev_async_start(struct ev_loop *loop, ev_hook_f *cb, void *arg);
void ev_async_send(struct ev_loop *loop);

#endif
