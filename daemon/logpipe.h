/*
 * logpipe.h - piped logs: "|program" as an AccessLog, CustomLog, TransferLog or ErrorLog
 * target, as Apache's piped logs.
 *
 * The program is started with /bin/sh -c (stdin: the read end of a pipe; stdout and stderr:
 * the daemon's), in a process group of its own, after the daemon has dropped root for User,
 * so that the first start and every restart run as the same user. One supervising thread
 * restarts a program that exits (1 s, doubling to 60 s between attempts; back to 1 s once a
 * program stayed up a minute), logging each exit and restart, and reports dropped lines.
 *
 * Writers never block: the pipe is non-blocking; what it cannot take now is kept in a
 * per-program buffer of LOGPIPE_PENDING_MAX bytes (sent by the next write or by the
 * supervisor within LOGPIPE_TICK_MS), and whole lines that do not fit are dropped and
 * counted; the error log says how many every LOGPIPE_REPORT_MS. Lines are never split: a
 * line that was half written is finished before anything else is sent.
 *
 * Thread safety: logpipe_write may be called from any thread; new/start/stop from main only.
 * SIGUSR1 (log reopening) does not touch pipes.
 */
#ifndef GH_LOGPIPE_H
#define GH_LOGPIPE_H

#include <stddef.h>
#include <stdint.h>

#define LOGPIPE_PENDING_MAX (256 * 1024)
#define LOGPIPE_TICK_MS 200
#define LOGPIPE_REPORT_MS 10000

struct logpipe;

/* Register the program of a "|command" target (cmd without the '|'); what names it in log
 * lines ("CustomLog"). Not started yet. Returns NULL when out of memory. */
struct logpipe *logpipe_new(const char *cmd, const char *what);

/* Start every registered program and the supervising thread. Returns 0, or -1 with err. */
int logpipe_start_all(char *err, size_t errlen);

/* Send n bytes of whole lines, never blocking. Returns 0 (sent or kept), 1 when the program
 * is down and the lines were dropped (counted), or -1 when the pipe has not been started or
 * was stopped. On 1 and -1 the caller may write elsewhere, as the error log does to stderr. */
int logpipe_write(struct logpipe *p, const char *data, size_t n);

/* Lines dropped so far (tests and the status page). */
uint64_t logpipe_dropped_total(const struct logpipe *p);

/* Stop the supervisor, close every pipe (after a last non-blocking attempt at what is
 * pending), wait up to LOGPIPE_STOP_WAIT_MS for the programs to exit, then SIGTERM their
 * process groups (and SIGKILL half a second later). Writes after this return -1. */
#define LOGPIPE_STOP_WAIT_MS 2000
void logpipe_stop_all(void);

/* Free every logpipe, once nothing writes to them any more (main, at exit). */
void logpipe_free_all(void);

#endif
