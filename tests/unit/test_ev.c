/*
 * test_ev.c - daemon/ev.c's posted events (issue 10): a posted callback runs once on the next
 * turn, after that turn's I/O, in the order posted; posting twice runs once; a callback that
 * posts itself waits for the turn after, so ready I/O runs between its turns; what an I/O
 * callback posts runs in the next turn, not in its own; ev_post_stop takes an event out,
 * also from the batch being run; the loop does not sleep while anything is posted. Real loop,
 * real pipe; a 5 s timer fails a test whose loop went to sleep.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <unistd.h>

#include "daemon/ev.h"

#define T_MAX_LOG 64

/* What happened, in order: 'I' for an I/O callback, 'A'..'Z' for posted ones. */
struct t_run {
	struct ev_loop *loop;
	char log[T_MAX_LOG + 1];
	size_t nlog;
	int reposts;         /* how many more times post 'A' re-posts itself */
	int io_turns;        /* I/O callbacks before the loop breaks */
	struct ev_post *victim; /* stopped by the first posted callback, when set */
	struct ev_post *io_posts; /* posted by the first I/O callback, when set */
	int slept;
};

static struct t_run run;

static void
t_log(char ch)
{
	if (run.nlog < T_MAX_LOG)
		run.log[run.nlog++] = ch;
	run.log[run.nlog] = '\0';
}

static void
t_post_cb(struct ev_post *p)
{
	char name = *(const char *)p->arg;

	t_log(name);
	if (run.victim != NULL) {
		ev_post_stop(run.victim);
		run.victim = NULL;
	}
	if (name == 'A' && run.reposts > 0) {
		run.reposts--;
		ev_post_start(run.loop, p);
	}
}

static void
t_io_cb(struct ev_io *io, unsigned revents)
{
	(void)io;
	(void)revents;
	t_log('I');
	if (run.io_posts != NULL) {
		ev_post_start(run.loop, run.io_posts);
		run.io_posts = NULL;
	}
	if (--run.io_turns <= 0)
		ev_loop_break(run.loop);
}

static void
t_break_post_cb(struct ev_post *p)
{
	(void)p;
	t_log('.');
	ev_loop_break(run.loop);
}

static void
t_sleep_cb(struct ev_timer *t)
{
	(void)t;
	run.slept = 1;
	ev_loop_break(run.loop);
}

static int
setup(void **state)
{
	(void)state;
	memset(&run, 0, sizeof(run));
	return ev_loop_new(&run.loop) == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	ev_loop_free(&run.loop);
	return 0;
}

/* Posted callbacks run once each, in order; a second start of a posted event is a no-op; the
 * loop does not sleep on its far timer while something is posted. */
static void
posted_run_once_in_order_without_sleeping(void **state)
{
	static const char na = 'A', nb = 'B', nc = 'C';
	struct ev_post a, b, c, brk;
	struct ev_timer far;

	(void)state;
	ev_post_init(&a, t_post_cb, (void *)&na);
	ev_post_init(&b, t_post_cb, (void *)&nb);
	ev_post_init(&c, t_post_cb, (void *)&nc);
	ev_post_init(&brk, t_break_post_cb, NULL);
	ev_timer_init(&far, t_sleep_cb, NULL);
	ev_timer_start(run.loop, &far, 5000);
	ev_post_start(run.loop, &b);
	ev_post_start(run.loop, &a);
	ev_post_start(run.loop, &b); /* already posted: stays where it was */
	ev_post_start(run.loop, &c);
	ev_post_start(run.loop, &brk);
	assert_true(ev_post_active(&a));
	assert_int_equal(ev_loop_run(run.loop), 0);
	assert_false(run.slept);
	assert_string_equal(run.log, "BAC.");
	assert_false(ev_post_active(&a));
	assert_false(ev_post_active(&b));
	ev_timer_stop(&far);
}

/* A callback that posts itself goes to the back: ready I/O runs between its turns. */
static void
reposted_callback_waits_for_the_next_turn(void **state)
{
	static const char na = 'A';
	struct ev_post a;
	struct ev_io io;
	struct ev_timer far;
	int fds[2];

	(void)state;
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], "x", 1), 1); /* readable every turn: never consumed */
	ev_io_init(&io, fds[0], t_io_cb, NULL);
	assert_int_equal(ev_io_set(run.loop, &io, EV_READ), 0);
	ev_post_init(&a, t_post_cb, (void *)&na);
	ev_timer_init(&far, t_sleep_cb, NULL);
	ev_timer_start(run.loop, &far, 5000);
	run.reposts = 2;
	run.io_turns = 4;
	ev_post_start(run.loop, &a);
	assert_int_equal(ev_loop_run(run.loop), 0);
	assert_false(run.slept);
	/* Turn 1: I/O, then A (which re-posts); turns 2 and 3 the same; turn 4: I/O breaks. */
	assert_string_equal(run.log, "IAIAIAI");
	ev_io_stop(&io);
	ev_timer_stop(&far);
	close(fds[0]);
	close(fds[1]);
}

/* What an I/O callback posts runs after the next turn's I/O, not after its own: a connection
 * driven by I/O and posted again gets one drive per turn, like the others. */
static void
posted_from_io_runs_in_the_next_turn(void **state)
{
	static const char nb = 'B';
	struct ev_post b;
	struct ev_io io;
	struct ev_timer far;
	int fds[2];

	(void)state;
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], "x", 1), 1);
	ev_io_init(&io, fds[0], t_io_cb, NULL);
	assert_int_equal(ev_io_set(run.loop, &io, EV_READ), 0);
	ev_post_init(&b, t_post_cb, (void *)&nb);
	ev_timer_init(&far, t_sleep_cb, NULL);
	ev_timer_start(run.loop, &far, 5000);
	run.io_posts = &b;
	run.io_turns = 3;
	assert_int_equal(ev_loop_run(run.loop), 0);
	assert_false(run.slept);
	/* Turn 1: I/O posts B; turn 2: I/O, then B; turn 3: I/O breaks. */
	assert_string_equal(run.log, "IIBI");
	ev_io_stop(&io);
	ev_timer_stop(&far);
	close(fds[0]);
	close(fds[1]);
}

/* ev_post_stop takes an event out of the batch being run and out of the next one. */
static void
stopped_post_does_not_run(void **state)
{
	static const char na = 'A', nb = 'B', nc = 'C';
	struct ev_post a, b, c, brk;

	(void)state;
	ev_post_init(&a, t_post_cb, (void *)&na);
	ev_post_init(&b, t_post_cb, (void *)&nb);
	ev_post_init(&c, t_post_cb, (void *)&nc);
	ev_post_init(&brk, t_break_post_cb, NULL);
	ev_post_start(run.loop, &a);
	ev_post_start(run.loop, &b);
	ev_post_start(run.loop, &c);
	ev_post_start(run.loop, &brk);
	ev_post_stop(&c);   /* before the turn */
	run.victim = &b;    /* A stops B while the batch runs */
	ev_post_stop(&c);   /* twice is harmless */
	assert_int_equal(ev_loop_run(run.loop), 0);
	assert_string_equal(run.log, "A.");
	assert_false(ev_post_active(&b));
	assert_false(ev_post_active(&c));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(posted_run_once_in_order_without_sleeping, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(reposted_callback_waits_for_the_next_turn, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(posted_from_io_runs_in_the_next_turn, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(stopped_post_does_not_run, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
