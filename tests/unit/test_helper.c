/*
 * test_helper.c - daemon/helper.c (issue 14): pools of Squid helpers on a real event loop with
 * real children. Squid's own basic_ncsa_auth against an htpasswd file made with htpasswd(1),
 * and small /bin/sh helpers in the test's directory for the failure modes: a helper that exits
 * after N answers, one that never answers, one that answers garbage or an extra line, one that
 * answers with channel IDs out of order, one that answers a line longer than 64 KiB. Then the
 * pure parts: hreply_parse (both of Negotiate's forms, quoting, %-decoding, malformed lines)
 * and hreq_basic_line.
 *
 * helper.c is included so that the idle period of a set (a static) can be shortened. Every
 * loop run is bounded (t_run's deadline); assertions are about behaviour, not speed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/helper.c"

#define T_NCSA "/usr/lib/squid/basic_ncsa_auth"
#define T_MAX 16

struct t_ans {
	int called;
	enum hp_status st;
	char line[256];
	size_t len;
	uint32_t child;
	int in_submit;               /* the callback ran inside hpool_submit (a defect) */
};

static struct ev_loop *t_loop;
static char t_dir[64];
static int t_submitting;
static struct t_ans t_ans[T_MAX];

static void
t_cb(void *arg, const struct hpool_reply *r)
{
	struct t_ans *a = arg;

	a->called++;
	a->st = r->status;
	a->len = r->len;
	snprintf(a->line, sizeof(a->line), "%s", r->line);
	a->child = r->child;
	a->in_submit = t_submitting;
}

static struct hreq *
t_submit(struct hpool *p, uint32_t child, const char *line, struct t_ans *a)
{
	struct hreq *r;

	memset(a, 0, sizeof(*a));
	t_submitting = 1;
	r = hpool_submit(p, child, line, strlen(line), t_cb, a);
	t_submitting = 0;
	assert_non_null(r);
	return r;
}

/* ---- running the loop until something holds ---- */

struct t_wait {
	int (*pred)(void *);
	void *arg;
	uint64_t deadline;
	int met;
	struct ev_timer tm;
};

static void
t_wait_cb(struct ev_timer *t)
{
	struct t_wait *w = t->arg;

	if (w->pred && w->pred(w->arg)) {
		w->met = 1;
		ev_loop_break(t_loop);
	} else if (ev_now(t_loop) >= w->deadline) {
		ev_loop_break(t_loop);
	} else {
		ev_timer_start(t_loop, t, 5);
	}
}

/* Run the loop until pred(arg) holds (1) or ms have passed (0). pred NULL: run ms. */
static int
t_run(int (*pred)(void *), void *arg, unsigned ms)
{
	struct t_wait w = { pred, arg, ev_now_update(t_loop) + ms, 0, { 0 } };

	ev_timer_init(&w.tm, t_wait_cb, &w);
	ev_timer_start(t_loop, &w.tm, 0);
	assert_int_equal(ev_loop_run(t_loop), 0);
	ev_timer_stop(&w.tm);
	return w.met;
}

static int
t_called(void *arg)
{
	return ((struct t_ans *)arg)->called > 0;
}

/* Submit "x" to p and wait for its answer: HP_DIED, the pool counting one death. Returns the
 * pool's stats then. */
static struct hpool_stats
t_dies_on(struct hpool *p)
{
	struct hpool_stats st;

	t_submit(p, HPOOL_ANY, "x", &t_ans[0]);
	assert_true(t_run(t_called, &t_ans[0], 10000));
	assert_int_equal(t_ans[0].st, HP_DIED);
	hpool_get_stats(p, &st);
	assert_int_equal(st.deaths, 1);
	return st;
}

static int
t_all_called(void *arg)
{
	size_t n = (size_t)arg;

	for (size_t i = 0; i < n; i++)
		if (!t_ans[i].called)
			return 0;
	return 1;
}

struct t_statw {
	struct hpool *p;
	uint64_t deaths, restarts;
	unsigned up;
};

static int
t_stats_reach(void *arg)
{
	struct t_statw *w = arg;
	struct hpool_stats st;

	hpool_get_stats(w->p, &st);
	return st.deaths >= w->deaths && st.restarts >= w->restarts && st.children_up >= w->up;
}

static int
t_down(void *arg)
{
	struct hpool_stats st;

	hpool_get_stats(arg, &st);
	return st.deaths >= 1 && st.children_up == 0;
}

/* ---- fixtures ---- */

static char *
t_script(const char *name, const char *body)
{
	static char path[T_MAX][128];
	static unsigned n;
	char *p = path[n++ % T_MAX];
	FILE *f;

	snprintf(p, 128, "%s/%s", t_dir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	fclose(f);
	assert_int_equal(chmod(p, 0755), 0);
	return p;
}

static struct hpool *
t_pool(const char *cmd, unsigned children, unsigned conc, unsigned timeout_ms, unsigned qmax)
{
	struct hpool_cfg cfg = { cmd, children, conc, timeout_ms, qmax };
	struct hpool *p = NULL;
	char err[256] = "";

	if (hpool_new(t_loop, &cfg, &p, err, sizeof(err)) != 0)
		fail_msg("hpool_new(%s): %s", cmd, err);
	return p;
}

static pid_t
t_pid(struct hpool *p, unsigned slot)
{
	return p->kids[slot].pid;
}

static int
setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN); /* as the daemon does (main.c): a dead child's pipe is EPIPE */
	snprintf(t_dir, sizeof(t_dir), "/tmp/gh-helper-XXXXXX");
	if (mkdtemp(t_dir) == NULL)
		return -1;
	memset(t_ans, 0, sizeof(t_ans));
	return ev_loop_new(&t_loop) == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	ev_loop_free(&t_loop);
	(void)hp_orphans_reap();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", t_dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- pools with real children ---- */

/* Squid's basic_ncsa_auth answers OK for the right password, ERR for a wrong one or an
 * unknown user; a password with a blank and a '%' arrives whole through hreq_basic_line. */
static void
ncsa_helper_checks_passwords(void **state)
{
	char cmd[512], pw[128], line[256];

	(void)state;
	if (access(T_NCSA, X_OK) != 0 || system("command -v htpasswd >/dev/null") != 0)
		skip();
	snprintf(pw, sizeof(pw), "%s/users", t_dir);
	snprintf(cmd, sizeof(cmd), "htpasswd -b -c -m %s alice right 2>/dev/null && "
	         "htpasswd -b -m %s bob 'pa ss%%20x' 2>/dev/null", pw, pw);
	assert_int_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s %s", T_NCSA, pw);
	struct hpool *p = t_pool(cmd, 2, 0, 5000, 10);

	assert_true(hreq_basic_line("alice", "right", line, sizeof(line)) > 0);
	t_submit(p, HPOOL_ANY, line, &t_ans[0]);
	assert_true(hreq_basic_line("alice", "wrong", line, sizeof(line)) > 0);
	t_submit(p, HPOOL_ANY, line, &t_ans[1]);
	assert_true(hreq_basic_line("mallory", "right", line, sizeof(line)) > 0);
	t_submit(p, HPOOL_ANY, line, &t_ans[2]);
	assert_true(hreq_basic_line("bob", "pa ss%20x", line, sizeof(line)) > 0);
	t_submit(p, HPOOL_ANY, line, &t_ans[3]);
	assert_true(hreq_basic_line("bob", "pa ss x", line, sizeof(line)) > 0);
	t_submit(p, HPOOL_ANY, line, &t_ans[4]);
	/* nothing answers inside hpool_submit */
	for (int i = 0; i < 5; i++)
		assert_int_equal(t_ans[i].called, 0);
	assert_true(t_run(t_all_called, (void *)(size_t)5, 10000));
	const char *want[] = { "OK", "ERR", "ERR", "OK", "ERR" };
	for (int i = 0; i < 5; i++) {
		struct hreply hr;

		assert_int_equal(t_ans[i].called, 1);
		assert_int_equal(t_ans[i].st, HP_OK);
		assert_int_equal(t_ans[i].in_submit, 0);
		assert_int_equal(strncmp(t_ans[i].line, want[i], strlen(want[i])), 0);
		assert_int_equal(hreply_parse(t_ans[i].line, t_ans[i].len, &hr), 0);
		assert_int_equal(hr.code, want[i][0] == 'O' ? HR_OK : HR_ERR);
	}
	struct hpool_stats st;
	hpool_get_stats(p, &st);
	assert_int_equal(st.requests, 5);
	assert_int_equal(st.replies, 5);
	assert_int_equal(st.children_up, 2);
	assert_int_equal(st.deaths, 0);
	assert_int_equal(st.busy, 0);
	hpool_free(&p);
	assert_null(p);
}

/* With concurrency, the helper may answer in any order: each answer reaches the request with
 * its channel ID. The helper sees "ID LINE". */
static void
channel_ids_match_answers_out_of_order(void **state)
{
	(void)state;
	const char *cmd = t_script("rev.sh",
	        "while read -r a1 r1 && read -r a2 r2 && read -r a3 r3; do\n"
	        "  echo \"$a3 OK user=$r3\"; echo \"$a2 OK user=$r2\"; echo \"$a1 OK user=$r1\"\n"
	        "done");
	struct hpool *p = t_pool(cmd, 1, 3, 5000, 10);

	t_submit(p, HPOOL_ANY, "one", &t_ans[0]);
	t_submit(p, HPOOL_ANY, "two", &t_ans[1]);
	t_submit(p, HPOOL_ANY, "three", &t_ans[2]);
	assert_true(t_run(t_all_called, (void *)(size_t)3, 10000));
	assert_string_equal(t_ans[0].line, "OK user=one");
	assert_string_equal(t_ans[1].line, "OK user=two");
	assert_string_equal(t_ans[2].line, "OK user=three");
	/* a fourth waits for a free channel and is still answered in its batch */
	t_submit(p, HPOOL_ANY, "four", &t_ans[3]);
	t_submit(p, HPOOL_ANY, "five", &t_ans[4]);
	t_submit(p, HPOOL_ANY, "six", &t_ans[5]);
	t_submit(p, HPOOL_ANY, "seven", &t_ans[6]);
	struct hpool_stats st;
	hpool_get_stats(p, &st);
	assert_int_equal(st.queued, 1);
	assert_int_equal(st.busy, 1);
	assert_false(t_run(t_all_called, (void *)(size_t)7, 300)); /* seven needs two more */
	t_submit(p, HPOOL_ANY, "eight", &t_ans[7]);
	t_submit(p, HPOOL_ANY, "nine", &t_ans[8]);
	assert_true(t_run(t_all_called, (void *)(size_t)9, 10000));
	assert_string_equal(t_ans[6].line, "OK user=seven");
	assert_string_equal(t_ans[8].line, "OK user=nine");
	hpool_get_stats(p, &st);
	assert_int_equal(st.deaths, 0);
	assert_int_equal(st.replies, 9);
	hpool_free(&p);
}

/* A helper that exits after two answers: the request in flight fails with HP_DIED (or is
 * answered by the successor), the child is reaped and started again, later requests work. */
static void
dead_child_restarted_and_next_request_works(void **state)
{
	(void)state;
	const char *cmd = t_script("two.sh",
	        "n=0; while read -r l; do echo \"OK $l\"; n=$((n+1)); [ $n -ge 2 ] && exit 3; done");
	struct hpool *p = t_pool(cmd, 1, 0, 5000, 10);
	pid_t first = t_pid(p, 0);

	t_submit(p, HPOOL_ANY, "a", &t_ans[0]);
	assert_true(t_run(t_called, &t_ans[0], 10000));
	t_submit(p, HPOOL_ANY, "b", &t_ans[1]);
	assert_true(t_run(t_called, &t_ans[1], 10000));
	assert_int_equal(t_ans[1].st, HP_OK);
	/* it exits now: seen, reaped (no zombie left with its pid), restarted within a second */
	struct t_statw w = { p, 1, 1, 1 };
	assert_true(t_run(t_stats_reach, &w, 10000));
	assert_int_not_equal(t_pid(p, 0), first);
	assert_true(waitpid(first, NULL, WNOHANG) < 0); /* reaped already: not our child now */
	t_submit(p, HPOOL_ANY, "c", &t_ans[2]);
	assert_true(t_run(t_called, &t_ans[2], 10000));
	assert_int_equal(t_ans[2].st, HP_OK);
	assert_string_equal(t_ans[2].line, "OK c");
	hpool_free(&p);
}

/* A child dying with a request in flight: HP_DIED, not a stall. */
static void
request_in_flight_fails_when_child_dies(void **state)
{
	(void)state;
	const char *cmd = t_script("die.sh", "read -r l; exit 1");
	struct hpool *p = t_pool(cmd, 1, 0, 30000, 10);

	t_dies_on(p);
	hpool_free(&p);
}

/* A helper that never answers: HP_TIMEOUT after timeout_ms, the hung child is killed (it is
 * gone: kill(pid, 0) fails once reaped) and replaced; a queued request also times out. */
static void
hung_child_times_out_and_is_replaced(void **state)
{
	(void)state;
	const char *cmd = t_script("mute.sh", "while read -r l; do :; done");
	struct hpool *p = t_pool(cmd, 1, 0, 300, 10);
	pid_t first = t_pid(p, 0);

	t_submit(p, HPOOL_ANY, "x", &t_ans[0]);
	t_submit(p, HPOOL_ANY, "y", &t_ans[1]);
	assert_true(t_run(t_all_called, (void *)(size_t)2, 10000));
	assert_int_equal(t_ans[0].st, HP_TIMEOUT);
	assert_int_equal(t_ans[1].st, HP_TIMEOUT);
	struct t_statw w = { p, 1, 1, 1 };
	assert_true(t_run(t_stats_reach, &w, 10000));
	assert_int_not_equal(t_pid(p, 0), first);
	/* reaped on the pool's timer */
	for (int i = 0; i < 100 && p->nreap > 0; i++)
		t_run(NULL, NULL, 20);
	assert_int_equal(p->nreap, 0);
	assert_true(kill(first, 0) < 0);
	struct hpool_stats st;
	hpool_get_stats(p, &st);
	assert_int_equal(st.timeouts, 2);
	hpool_free(&p);
}

/* Many requests in flight and queued time out together: every caller hears HP_TIMEOUT once
 * (more than one batch of the expiry's 64). */
static void
many_requests_time_out_together(void **state)
{
	static struct t_ans many[150];

	(void)state;
	const char *cmd = t_script("mute3.sh", "while read -r l; do :; done");
	struct hpool *p = t_pool(cmd, 1, 100, 300, 200);
	for (int i = 0; i < 150; i++) {
		memset(&many[i], 0, sizeof(many[i]));
		assert_non_null(hpool_submit(p, HPOOL_ANY, "x", 1, t_cb, &many[i]));
	}
	struct hpool_stats st;
	hpool_get_stats(p, &st);
	assert_int_equal(st.queued, 50);
	for (int k = 0; k < 1000; k++) {
		int all = 1;

		for (int i = 0; i < 150; i++)
			all &= many[i].called > 0;
		if (all)
			break;
		t_run(NULL, NULL, 10);
	}
	for (int i = 0; i < 150; i++) {
		assert_int_equal(many[i].called, 1);
		assert_int_equal(many[i].st, HP_TIMEOUT);
	}
	hpool_get_stats(p, &st);
	assert_int_equal(st.timeouts, 150);
	hpool_free(&p);
}

/* A helper that dies right after its start (wrong arguments, say) fails requests at once
 * instead of after the timeout, and is restarted less and less often. */
static void
crash_loop_fails_fast_and_backs_off(void **state)
{
	(void)state;
	const char *cmd = t_script("crash.sh", "exit 1");
	struct hpool *p = t_pool(cmd, 1, 0, 30000, 10);
	struct hpool_stats st;

	/* down, waiting for its restart (a second or more after its start) */
	assert_true(t_run(t_down, p, 10000));
	t_submit(p, HPOOL_ANY, "x", &t_ans[0]);
	assert_true(t_run(t_called, &t_ans[0], 5000)); /* not the 30 s timeout */
	assert_int_equal(t_ans[0].st, HP_DIED);
	/* restarts after 1 s, then 2 s more, then 4 s more: two at most in 4 s (one a second
	 * without the backoff would be four) */
	t_run(NULL, NULL, 4000);
	hpool_get_stats(p, &st);
	assert_true(st.restarts >= 1);
	assert_true(st.restarts <= 2);
	hpool_free(&p);
}

/* A stopped (SIGSTOP) child is a hung one too; the stop does not keep it from dying. */
static void
stopped_child_is_killed_on_timeout(void **state)
{
	(void)state;
	const char *cmd = t_script("echo.sh", "while read -r l; do echo \"OK $l\"; done");
	struct hpool *p = t_pool(cmd, 1, 0, 300, 10);
	pid_t first = t_pid(p, 0);

	assert_int_equal(kill(first, SIGSTOP), 0);
	t_submit(p, HPOOL_ANY, "x", &t_ans[0]);
	assert_true(t_run(t_called, &t_ans[0], 10000));
	assert_int_equal(t_ans[0].st, HP_TIMEOUT);
	struct t_statw w = { p, 1, 1, 1 };
	assert_true(t_run(t_stats_reach, &w, 10000));
	t_submit(p, HPOOL_ANY, "y", &t_ans[1]);
	assert_true(t_run(t_called, &t_ans[1], 10000));
	assert_int_equal(t_ans[1].st, HP_OK);
	assert_string_equal(t_ans[1].line, "OK y");
	for (int i = 0; i < 100 && p->nreap > 0; i++)
		t_run(NULL, NULL, 20);
	assert_true(kill(first, 0) < 0);
	hpool_free(&p);
}

/* Garbage without a channel ID (concurrency on) puts the child out of step: killed, the
 * request fails. Without concurrency the line is the answer (hreply_parse refuses it), and an
 * extra line with nothing asked puts the child out of step. */
static void
garbage_and_extra_lines_put_a_child_out_of_step(void **state)
{
	struct hreply hr;

	(void)state;
	const char *cmd = t_script("junk.sh", "while read -r l; do echo 'garbage here'; done");
	struct hpool *p = t_pool(cmd, 1, 2, 5000, 10);
	t_dies_on(p);
	hpool_free(&p);

	p = t_pool(cmd, 1, 0, 5000, 10);
	t_submit(p, HPOOL_ANY, "x", &t_ans[1]);
	assert_true(t_run(t_called, &t_ans[1], 10000));
	assert_int_equal(t_ans[1].st, HP_OK);
	assert_string_equal(t_ans[1].line, "garbage here");
	assert_int_equal(hreply_parse(t_ans[1].line, t_ans[1].len, &hr), -1);
	assert_int_equal(hr.code, HR_UNKNOWN);
	hpool_free(&p);

	cmd = t_script("twice.sh", "while read -r l; do echo OK; echo OK; done");
	p = t_pool(cmd, 1, 0, 5000, 10);
	t_submit(p, HPOOL_ANY, "x", &t_ans[2]);
	assert_true(t_run(t_called, &t_ans[2], 10000));
	assert_int_equal(t_ans[2].st, HP_OK);
	struct t_statw w = { p, 1, 0, 0 };
	assert_true(t_run(t_stats_reach, &w, 10000));
	hpool_free(&p);
}

/* A helper that closes its stdin but keeps running (stdout open) is taken down: epoll's error
 * on our write end is noticed (it would otherwise be reported on every loop turn). */
static void
closed_stdin_takes_the_child_down(void **state)
{
	(void)state;
	const char *cmd = t_script("nostdin.sh", "exec 0<&-\nexec sleep 30");
	struct hpool *p = t_pool(cmd, 1, 0, 60000, 10);
	pid_t first = t_pid(p, 0);
	struct t_statw w = { p, 1, 0, 0 };

	assert_true(t_run(t_stats_reach, &w, 10000));
	for (int i = 0; i < 100 && p->nreap > 0; i++)
		t_run(NULL, NULL, 20);
	assert_true(kill(first, 0) < 0); /* killed and reaped, not left sleeping */
	hpool_free(&p);
}

/* An answer longer than 64 KiB kills the child; memory stays bounded. */
static void
overlong_answer_kills_the_child(void **state)
{
	(void)state;
	const char *cmd = t_script("long.sh",
	        "while read -r l; do head -c 70000 /dev/zero | tr '\\0' x; echo; done");
	struct hpool *p = t_pool(cmd, 1, 0, 5000, 10);

	struct hpool_stats st = t_dies_on(p);
	assert_int_equal(st.replies, 0);
	hpool_free(&p);
}

/* More than queue_max waiting: HP_OVERLOAD, delivered on a later turn. */
static void
full_queue_overloads(void **state)
{
	(void)state;
	const char *cmd = t_script("mute2.sh", "while read -r l; do :; done");
	struct hpool *p = t_pool(cmd, 1, 0, 60000, 1);

	t_submit(p, HPOOL_ANY, "in flight", &t_ans[0]);
	t_submit(p, HPOOL_ANY, "queued", &t_ans[1]);
	t_submit(p, HPOOL_ANY, "too many", &t_ans[2]);
	assert_int_equal(t_ans[2].called, 0);
	assert_true(t_run(t_called, &t_ans[2], 10000));
	assert_int_equal(t_ans[2].st, HP_OVERLOAD);
	assert_int_equal(t_ans[2].in_submit, 0);
	assert_int_equal(t_ans[0].called + t_ans[1].called, 0);
	struct hpool_stats st;
	hpool_get_stats(p, &st);
	assert_int_equal(st.overloads, 1);
	assert_int_equal(st.queued, 1);
	assert_int_equal(st.busy, 1);
	/* freeing the pool fails the others, inside the call */
	hpool_free(&p);
	assert_int_equal(t_ans[0].called, 1);
	assert_int_equal(t_ans[0].st, HP_DIED);
	assert_int_equal(t_ans[1].called, 1);
	assert_int_equal(t_ans[1].st, HP_DIED);
}

/* Cancelled requests: no callback, queued or in flight; the late answer is dropped and the
 * child keeps in step. */
static void
cancelled_requests_get_no_callback(void **state)
{
	(void)state;
	const char *cmd = t_script("slow.sh", "while read -r l; do sleep 0.2; echo \"OK $l\"; done");
	struct hpool *p = t_pool(cmd, 1, 0, 10000, 10);

	struct hreq *a = t_submit(p, HPOOL_ANY, "a", &t_ans[0]);
	struct hreq *b = t_submit(p, HPOOL_ANY, "b", &t_ans[1]);
	t_submit(p, HPOOL_ANY, "c", &t_ans[2]);
	hpool_cancel(a); /* in flight */
	hpool_cancel(b); /* queued */
	assert_true(t_run(t_called, &t_ans[2], 10000));
	assert_int_equal(t_ans[2].st, HP_OK);
	assert_string_equal(t_ans[2].line, "OK c");
	t_run(NULL, NULL, 100);
	assert_int_equal(t_ans[0].called, 0);
	assert_int_equal(t_ans[1].called, 0);
	struct hpool_stats st;
	hpool_get_stats(p, &st);
	assert_int_equal(st.deaths, 0);
	hpool_free(&p);
}

/* A pinned request goes to the child that answered before; once that child has been
 * restarted, its old id fails with HP_DIED. */
static void
pinned_request_stays_with_its_child(void **state)
{
	(void)state;
	const char *cmd = t_script("who.sh", "while read -r l; do echo \"OK $$ $l\"; done");
	struct hpool *p = t_pool(cmd, 3, 0, 5000, 10);

	t_submit(p, HPOOL_ANY, "first", &t_ans[0]);
	assert_true(t_run(t_called, &t_ans[0], 10000));
	uint32_t id = t_ans[0].child;
	pid_t pid = (pid_t)atol(t_ans[0].line + 3);
	for (int i = 1; i <= 5; i++) {
		t_submit(p, id, "again", &t_ans[i]);
		assert_true(t_run(t_called, &t_ans[i], 10000));
		assert_int_equal(t_ans[i].st, HP_OK);
		assert_int_equal((pid_t)atol(t_ans[i].line + 3), pid);
		assert_int_equal(t_ans[i].child, id);
	}
	assert_int_equal(kill(pid, SIGKILL), 0);
	struct t_statw w = { p, 1, 0, 0 };
	assert_true(t_run(t_stats_reach, &w, 10000));
	t_submit(p, id, "gone", &t_ans[6]);
	assert_true(t_run(t_called, &t_ans[6], 10000));
	assert_int_equal(t_ans[6].st, HP_DIED);
	t_submit(p, 0xabcd0007u, "no such slot", &t_ans[7]);
	assert_true(t_run(t_called, &t_ans[7], 10000));
	assert_int_equal(t_ans[7].st, HP_DIED);
	hpool_free(&p);
}

/* Children inherit the environment and stderr but none of our other descriptors; a request
 * with a line break is never sent. */
static void
children_get_environment_not_descriptors(void **state)
{
	int fds[2];

	(void)state;
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(dup2(fds[0], 40), 40); /* no O_CLOEXEC: only closefrom keeps it out */
	setenv("GH_T_ENV", "from-the-daemon", 1);
	const char *cmd = t_script("env.sh",
	        "while read -r l; do\n"
	        "  if [ -e /proc/$$/fd/40 ]; then fd=leaked; else fd=clean; fi\n"
	        "  if [ -e /proc/$$/fd/2 ]; then e=stderr; else e=nostderr; fi\n"
	        "  echo \"OK $GH_T_ENV $fd $e\"\n"
	        "done");
	struct hpool *p = t_pool(cmd, 1, 0, 5000, 10);
	t_submit(p, HPOOL_ANY, "x", &t_ans[0]);
	assert_true(t_run(t_called, &t_ans[0], 10000));
	assert_string_equal(t_ans[0].line, "OK from-the-daemon clean stderr");
	t_submit(p, HPOOL_ANY, "two\nlines", &t_ans[1]);
	assert_true(t_run(t_called, &t_ans[1], 10000));
	assert_int_equal(t_ans[1].st, HP_DIED);
	hpool_free(&p);
	unsetenv("GH_T_ENV");
	close(40);
	close(fds[0]);
	close(fds[1]);
}

/* The command: absolute, existing, executable; quoting groups words. */
static void
bad_commands_are_refused_with_a_reason(void **state)
{
	struct hpool_cfg cfg = { "/nonexistent/helper -x", 1, 0, 1000, 1 };
	struct hpool *p = (struct hpool *)1;
	char err[256];

	(void)state;
	assert_int_equal(hpool_new(t_loop, &cfg, &p, err, sizeof(err)), -1);
	assert_null(p);
	assert_non_null(strstr(err, "/nonexistent/helper"));
	cfg.cmd = "basic_ncsa_auth /etc/passwd";
	assert_int_equal(hpool_new(t_loop, &cfg, &p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "absolute"));
	cfg.cmd = "/bin/sh \"-c";
	assert_int_equal(hpool_new(t_loop, &cfg, &p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "quote"));
	cfg.cmd = "   ";
	assert_int_equal(hpool_new(t_loop, &cfg, &p, err, sizeof(err)), -1);
	/* quoted words reach the program as one argument each */
	const char *cmd = t_script("args.sh",
	        "while read -r l; do echo \"OK $# [$1] [$2]\"; done");
	char full[256];
	snprintf(full, sizeof(full), "%s \"a b\" 'c \"d\"'", cmd);
	p = t_pool(full, 1, 0, 5000, 1);
	t_submit(p, HPOOL_ANY, "x", &t_ans[0]);
	assert_true(t_run(t_called, &t_ans[0], 10000));
	assert_string_equal(t_ans[0].line, "OK 2 [a b] [c \"d\"]");
	hpool_free(&p);
}

/* A set hands out one pool per settings; a pool unused for the idle period is freed once it
 * has nothing in flight, and its children are gone. */
static void
set_shares_pools_and_frees_idle_ones(void **state)
{
	struct hpool_set *s = NULL;
	char err[256];

	(void)state;
	hp_idle_ms = 300;
	const char *cmd = t_script("echo2.sh", "while read -r l; do echo \"OK $l\"; done");
	struct hpool_cfg a = { cmd, 1, 0, 5000, 10 }, b = { cmd, 2, 0, 5000, 10 };
	assert_int_equal(hpool_set_new(t_loop, &s), 0);
	struct hpool *pa = hpool_set_get(s, &a, err, sizeof(err));
	assert_non_null(pa);
	assert_ptr_equal(hpool_set_get(s, &a, err, sizeof(err)), pa);
	struct hpool *pb = hpool_set_get(s, &b, err, sizeof(err));
	assert_non_null(pb);
	assert_ptr_not_equal(pa, pb);
	struct hpool_stats st;
	hpool_set_stats(s, &st);
	assert_int_equal(st.children_up, 3);
	pid_t child_a = t_pid(pa, 0);
	struct hpool_cfg bad = { "/nonexistent/x", 1, 0, 5000, 10 };
	assert_null(hpool_set_get(s, &bad, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/x"));
	/* b stays in use, a does not */
	for (int i = 0; i < 6; i++) {
		assert_ptr_equal(hpool_set_get(s, &b, err, sizeof(err)), pb);
		t_submit(pb, HPOOL_ANY, "x", &t_ans[i]);
		assert_true(t_run(t_called, &t_ans[i], 10000));
		t_run(NULL, NULL, 100);
	}
	hpool_set_stats(s, &st);
	assert_int_equal(st.children_up, 2);
	assert_int_equal(st.replies, 6);
	for (int i = 0; i < 100 && kill(child_a, 0) == 0; i++)
		t_run(NULL, NULL, 20);
	assert_true(kill(child_a, 0) < 0);
	hpool_set_free(&s);
	assert_null(s);
	hp_idle_ms = 60000;
}

/* hpool_set_start: the pools a config names start at once and never idle out while it is in
 * force; a later config that no longer names one lets it idle out; the same settings keep
 * the same pool (and children). */
static void
set_start_keeps_named_pools(void **state)
{
	struct hpool_set *s = NULL;
	char err[256];

	(void)state;
	hp_idle_ms = 300;
	const char *cmd = t_script("echo3.sh", "while read -r l; do echo \"OK $l\"; done");
	struct hpool_cfg a = { cmd, 1, 0, 5000, 10 }, b = { cmd, 2, 0, 5000, 10 };
	const struct hpool_cfg *first[] = { &a, &b }, *second[] = { &b };
	struct hpool_stats st;

	assert_int_equal(hpool_set_new(t_loop, &s), 0);
	assert_int_equal(hpool_set_start(s, first, 2), 0);
	hpool_set_stats(s, &st);
	assert_int_equal(st.children_up, 3); /* before any request */
	struct hpool *pa = hpool_set_get(s, &a, err, sizeof(err));
	struct hpool *pb = hpool_set_get(s, &b, err, sizeof(err));
	assert_non_null(pa);
	assert_non_null(pb);
	pid_t child_a = t_pid(pa, 0), child_b = t_pid(pb, 0);
	/* unused for several idle periods: both named, both kept */
	t_run(NULL, NULL, 1000);
	hpool_set_stats(s, &st);
	assert_int_equal(st.children_up, 3);
	assert_int_equal(kill(child_a, 0), 0);
	/* a reload that names b only: b keeps its children, a idles out */
	assert_int_equal(hpool_set_start(s, second, 1), 0);
	assert_ptr_equal(hpool_set_get(s, &b, err, sizeof(err)), pb);
	assert_int_equal(t_pid(pb, 0), child_b);
	for (int i = 0; i < 100 && kill(child_a, 0) == 0; i++)
		t_run(NULL, NULL, 20);
	assert_true(kill(child_a, 0) < 0);
	hpool_set_stats(s, &st);
	assert_int_equal(st.children_up, 2);
	/* a command that cannot start is counted, the rest still start */
	struct hpool_cfg bad = { "/nonexistent/x", 1, 0, 5000, 10 };
	const struct hpool_cfg *third[] = { &bad, &b };
	assert_int_equal(hpool_set_start(s, third, 2), 1);
	hpool_set_free(&s);
	hp_idle_ms = 60000;
}

/* ---- replies ---- */

static struct hreply
t_parse(const char *s, int want_rc)
{
	static char buf[512];
	struct hreply hr;

	/* exactly len bytes and no NUL after: the parser must not touch line[len] */
	size_t n = strlen(s);
	memcpy(buf, s, n);
	buf[n] = '#';
	assert_int_equal(hreply_parse(buf, n, &hr), want_rc);
	assert_int_equal(buf[n], '#');
	return hr;
}

static void
reply_basic_forms(void **state)
{
	struct hreply hr;

	(void)state;
	hr = t_parse("OK", 0);
	assert_int_equal(hr.code, HR_OK);
	assert_null(hr.user);
	assert_null(hr.message);
	hr = t_parse("ERR", 0);
	assert_int_equal(hr.code, HR_ERR);
	hr = t_parse("ERR message=\"wrong password\"", 0);
	assert_int_equal(hr.code, HR_ERR);
	assert_string_equal(hr.message, "wrong password");
	hr = t_parse("ERR Invalid%20user", 0);
	assert_string_equal(hr.message, "Invalid%20user"); /* old free text: as it is */
	hr = t_parse("BH LDAP server unreachable", 0);
	assert_int_equal(hr.code, HR_BH);
	assert_string_equal(hr.message, "LDAP server unreachable");
	hr = t_parse("BH message=Success%20but%20no", 0);
	assert_string_equal(hr.message, "Success but no");
	hr = t_parse("OK user=alice%40CORP group=staff group=\"hr team\" log=x tag=y unknown=z", 0);
	assert_int_equal(hr.code, HR_OK);
	assert_string_equal(hr.user, "alice@CORP");
	assert_int_equal(hr.ngroups, 2);
	assert_string_equal(hr.groups[0], "staff");
	assert_string_equal(hr.groups[1], "hr team");
	hr = t_parse("OK user=\"a\\\"b\\\\c\"", 0);
	assert_string_equal(hr.user, "a\"b\\c");
	hr = t_parse("  OK   user=bob  \r\n", 0);
	assert_string_equal(hr.user, "bob");
	hr = t_parse("OK group=a%25b", 0);
	assert_string_equal(hr.groups[0], "a%b");
	hr = t_parse("OK user=x%zz", 0);
	assert_string_equal(hr.user, "x%zz"); /* not an escape: kept */
}

static void
reply_negotiate_forms(void **state)
{
	struct hreply hr;

	(void)state;
	hr = t_parse("TT YIIBzQYGKwYBBQUC==", 0);
	assert_int_equal(hr.code, HR_TT);
	assert_string_equal(hr.token, "YIIBzQYGKwYBBQUC==");
	hr = t_parse("AF oYGB+/= alice@CORP.EXAMPLE", 0);
	assert_int_equal(hr.code, HR_AF);
	assert_string_equal(hr.token, "oYGB+/=");
	assert_string_equal(hr.user, "alice@CORP.EXAMPLE");
	hr = t_parse("AF bob", 0); /* NTLM's form: a user, no token */
	assert_null(hr.token);
	assert_string_equal(hr.user, "bob");
	hr = t_parse("LD tok carol", 0);
	assert_int_equal(hr.code, HR_LD);
	assert_string_equal(hr.token, "tok");
	assert_string_equal(hr.user, "carol");
	hr = t_parse("NA oYG= user unknown to the KDC", 0);
	assert_int_equal(hr.code, HR_NA);
	assert_string_equal(hr.token, "oYG=");
	assert_string_equal(hr.message, "user unknown to the KDC");
	hr = t_parse("OK token=oYGB user=dave@CORP group=eng", 0);
	assert_int_equal(hr.code, HR_OK);
	assert_string_equal(hr.token, "oYGB");
	assert_string_equal(hr.user, "dave@CORP");
	assert_string_equal(hr.groups[0], "eng");
	hr = t_parse("TT token=abc==", 0);
	assert_string_equal(hr.token, "abc==");
	hr = t_parse("AF token=xyz user=erin", 0);
	assert_string_equal(hr.token, "xyz");
	assert_string_equal(hr.user, "erin");
	/* negotiate_kerberos_auth outside Active Directory: an empty group= (no PAC) */
	hr = t_parse("OK token=oYGB user=alice@GATEHOUSE.TEST group=", 0);
	assert_int_equal(hr.code, HR_OK);
	assert_string_equal(hr.user, "alice@GATEHOUSE.TEST");
	assert_int_equal(hr.ngroups, 0);
	hr = t_parse("KK tok2", 0);
	assert_int_equal(hr.code, HR_KK);
	assert_string_equal(hr.token, "tok2");
}

static void
reply_malformed_lines_are_refused(void **state)
{
	struct hreply hr;
	char nul[] = { 'O', 'K', ' ', 'u', 's', 'e', 'r', '=', 'a', '\0', 'b' };

	(void)state;
	hr = t_parse("", -1);
	assert_int_equal(hr.code, HR_UNKNOWN);
	t_parse("   ", -1);
	t_parse("YES", -1);
	t_parse("ok", -1);
	t_parse("OKAY", -1);
	t_parse("OK user=\"unterminated", -1);
	t_parse("OK user=a%00b", -1);        /* a NUL would cut the name */
	t_parse("OK user=a%0Ab", -1);        /* a control byte in a name */
	t_parse("OK user=", -1);
	t_parse("OK group=\"x\\ny\"", -1);
	t_parse("TT token=\"a\\r\\nInjected: 1\"", -1);
	hr = t_parse("ERR message=\"two\\nlines\"", 0);
	assert_string_equal(hr.message, "two lines");
	assert_int_equal(hreply_parse(nul, sizeof(nul), &hr), -1);
	/* more groups than kept: the first ones */
	char many[1024] = "OK";
	for (int i = 0; i < 40; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), " group=g%d", i);
	hr = t_parse(many, 0);
	assert_int_equal(hr.ngroups, HREPLY_MAX_GROUPS);
	assert_string_equal(hr.groups[HREPLY_MAX_GROUPS - 1], "g31");
}

static void
basic_request_line_escapes(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(hreq_basic_line("alice", "right", out, sizeof(out)), 11);
	assert_string_equal(out, "alice right");
	hreq_basic_line("a b", "p\nq %~._-", out, sizeof(out));
	assert_string_equal(out, "a%20b p%0Aq%20%25~._-");
	hreq_basic_line("\xc3\xa9", "", out, sizeof(out));
	assert_string_equal(out, "%C3%A9 ");
	/* exactly fitting, and one byte short */
	assert_int_equal(hreq_basic_line("ab", "cd", out, 6), 5);
	assert_int_equal(hreq_basic_line("ab", "cd", out, 5), 0);
	assert_int_equal(hreq_basic_line("a", "%", out, 5), 0);
	assert_int_equal(hreq_basic_line("a", "%", out, 6), 5);
	assert_int_equal(hreq_basic_line("a", "b", out, 0), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(ncsa_helper_checks_passwords, setup, teardown),
		cmocka_unit_test_setup_teardown(channel_ids_match_answers_out_of_order, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(dead_child_restarted_and_next_request_works, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(request_in_flight_fails_when_child_dies, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(hung_child_times_out_and_is_replaced, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(many_requests_time_out_together, setup, teardown),
		cmocka_unit_test_setup_teardown(crash_loop_fails_fast_and_backs_off, setup, teardown),
		cmocka_unit_test_setup_teardown(stopped_child_is_killed_on_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(garbage_and_extra_lines_put_a_child_out_of_step, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(closed_stdin_takes_the_child_down, setup, teardown),
		cmocka_unit_test_setup_teardown(overlong_answer_kills_the_child, setup, teardown),
		cmocka_unit_test_setup_teardown(full_queue_overloads, setup, teardown),
		cmocka_unit_test_setup_teardown(cancelled_requests_get_no_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(pinned_request_stays_with_its_child, setup, teardown),
		cmocka_unit_test_setup_teardown(children_get_environment_not_descriptors, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(bad_commands_are_refused_with_a_reason, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(set_shares_pools_and_frees_idle_ones, setup, teardown),
		cmocka_unit_test_setup_teardown(set_start_keeps_named_pools, setup, teardown),
		cmocka_unit_test(reply_basic_forms),
		cmocka_unit_test(reply_negotiate_forms),
		cmocka_unit_test(reply_malformed_lines_are_refused),
		cmocka_unit_test(basic_request_line_escapes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
