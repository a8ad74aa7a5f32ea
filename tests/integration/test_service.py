"""
test_service.py - service conventions (issue 9, part 5): the systemd watchdog and
`gatehouse -k reload|stop|check`.

Watchdog: with NOTIFY_SOCKET and WATCHDOG_USEC set, as systemd sets them for a unit with
WatchdogSec=, the daemon sends WATCHDOG=1 every WATCHDOG_USEC/2, but only while every worker
thread's event loop answers the main thread's pings. The test stops ONE worker thread (ptrace
PTRACE_SEIZE + PTRACE_INTERRUPT on its tid, found by its name gh-worker-N in /proc/PID/task), sees
the notifications stop, detaches, and sees them come back. WATCHDOG_PID naming another process
turns the watchdog off, as sd_watchdog_enabled(3) says.

-k: the daemon is found through the PidFile of the configuration (-f FILE); check prints
"running (pid N)" (exit 0) or says why not (exit 1), reload sends SIGHUP, stop sends SIGTERM and
returns when the process is gone (bounded by GracefulShutdownTimeout + 5 s); without PidFile it
says that -k needs one.
"""

import ctypes
import fcntl
import os
import signal
import subprocess
import time

import pytest

import ghtest
from test_reload import Notify, fields

PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
WALL = 0x40000000  # __WALL: wait for a thread (clone child) too


@pytest.fixture
def watchdog(monkeypatch):
    """A notify socket, and WATCHDOG_USEC=400000 (WATCHDOG=1 every 200 ms) for daemons started
    in the test."""
    n = Notify()
    monkeypatch.setenv("NOTIFY_SOCKET", n.name)
    monkeypatch.setenv("WATCHDOG_USEC", "400000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield n
    n.close()


def drain(n, seconds):
    """Every datagram that arrives within seconds."""
    got, deadline = list(n.messages), time.monotonic() + seconds
    n.messages.clear()
    while True:
        m = n.wait(lambda _m: True, timeout=max(0.0, deadline - time.monotonic()))
        if m is None:
            return got
        got.append(m)


def pings(msgs):
    return sum(1 for m in msgs if fields(m).get("WATCHDOG") == "1")


def worker_tids(pid):
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
            out[f.read().strip()] = int(tid)
    return out


class Ptrace:
    """Stops one thread (not its process) with PTRACE_SEIZE + PTRACE_INTERRUPT."""

    def __init__(self, tid):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p,
                                     ctypes.c_void_p]
        self.libc.ptrace.restype = ctypes.c_long
        self.tid = tid
        self.attached = False

    def call(self, req):
        if self.libc.ptrace(req, self.tid, None, None) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "ptrace(%#x, %d): %s" % (req, self.tid, os.strerror(e)))

    def stop(self):
        self.call(PTRACE_SEIZE)
        self.attached = True
        self.call(PTRACE_INTERRUPT)
        _, status = os.waitpid(self.tid, WALL)
        assert os.WIFSTOPPED(status), "thread %d not stopped: status %#x" % (self.tid, status)
        with open("/proc/%d/status" % self.tid) as f:
            state = [ln for ln in f if ln.startswith("State:")][0]
        assert "t (tracing stop)" in state, state

    def detach(self):
        if self.attached:
            self.attached = False
            self.call(PTRACE_DETACH)


def test_watchdog_pings_only_while_every_worker_loop_turns(start_daemon, watchdog):
    d = start_daemon()
    assert watchdog.wait(lambda m: "READY=1" in m), "no READY=1"
    assert pings(drain(watchdog, 1.5)) >= 4, "WATCHDOG=1 does not arrive every 200 ms"

    tids = worker_tids(d.pid)
    assert {"gh-worker-0", "gh-worker-1"} <= set(tids), "worker threads are not named: %s" % tids
    t = Ptrace(tids["gh-worker-1"])
    try:
        t.stop()
        # The answer to a ping sent just before the stop may still count once.
        drain(watchdog, 0.5)
        stuck = drain(watchdog, 1.5)
        assert pings(stuck) == 0, "WATCHDOG=1 sent while worker 1 was stopped: %s" % stuck
        assert d.alive()
        assert "watchdog: worker 1 has not turned its event loop" in d.stderr_text()
    finally:
        t.detach()
    assert pings(drain(watchdog, 1.5)) >= 3, "WATCHDOG=1 did not resume after the worker did"
    assert "every worker answers again" in d.stderr_text()


def test_watchdog_for_another_pid_is_not_ours(start_daemon, watchdog, monkeypatch):
    monkeypatch.setenv("WATCHDOG_PID", "1")
    start_daemon()
    assert watchdog.wait(lambda m: "READY=1" in m), "no READY=1"
    assert pings(drain(watchdog, 1.0)) == 0, "WATCHDOG_PID=1 is not this daemon"


def test_no_watchdog_without_watchdog_usec(start_daemon, watchdog, monkeypatch):
    monkeypatch.delenv("WATCHDOG_USEC")
    start_daemon()
    assert watchdog.wait(lambda m: "READY=1" in m), "no READY=1"
    assert pings(drain(watchdog, 1.0)) == 0


# ---------------------------------------------------------------- gatehouse -k

def ctl(gh_bin, verb, conf=None, timeout=30):
    args = [gh_bin, "-k", verb] + (["-f", conf] if conf else [])
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                       env=ghtest.clean_env(), stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout + p.stderr


def pid_conf(ctx, tmp_path, extra=()):
    pidfile = str(tmp_path / "gh.pid")
    text = ghtest.conf_text(ctx, 0, extra=["PidFile %s" % pidfile,
                                           "GracefulShutdownTimeout 1"] + list(extra))
    return text.replace("Listen 127.0.0.1:0\n", "Listen 127.0.0.1:{port}\n"), pidfile


def test_k_check_reload_and_stop_through_the_pid_file(start_daemon, ctx, tmp_path, gh_bin):
    text, pidfile = pid_conf(ctx, tmp_path)
    d = start_daemon(text=text)
    rc, out = ctl(gh_bin, "check", d.conf)
    assert rc == 0 and out == "running (pid %d)\n" % d.pid, (rc, out)

    # reload: SIGHUP, and the new file applies
    with open(d.conf, "a") as f:
        f.write("ProxyBlock origin.test\n")
    rc, out = ctl(gh_bin, "reload", d.conf)
    assert rc == 0 and "SIGHUP sent to pid %d" % d.pid in out, (rc, out)
    assert ghtest.poll(lambda: "configuration reloaded from %s" % d.conf in d.stderr_text())
    r = ghtest.get(d.port, "http://origin.test:%d/size/1" % ctx.origin_port)
    assert r.status == 403, r.status

    # stop: returns once the process is gone (it is our child: gone but not reaped yet)
    t0 = time.monotonic()
    rc, out = ctl(gh_bin, "stop", d.conf)
    assert rc == 0 and out == "stopped (pid %d)\n" % d.pid, (rc, out)
    assert d.proc.wait(timeout=1) == 0
    assert time.monotonic() - t0 < 5
    assert not os.path.exists(pidfile)
    rc, out = ctl(gh_bin, "check", d.conf)
    assert rc == 1 and "not running" in out and "%s does not exist" % pidfile in out, (rc, out)


@pytest.mark.parametrize("verb", ["check", "stop"])
def test_k_on_a_locked_pid_file_without_a_pid_does_not_say_not_running(ctx, tmp_path, gh_bin,
                                                                      verb):
    """A process holds the pid file's lock but its pid is not written yet (a daemon between its
    flock and its write): -k cannot tell which process it is, and must not claim that none
    runs, as it did ("not running (PidFile ... is locked but holds no process ID)")."""
    text, pidfile = pid_conf(ctx, tmp_path)
    conf = tmp_path / "gh.conf"
    conf.write_text(text.format(port=ghtest.free_port()))
    with open(pidfile, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        rc, out = ctl(gh_bin, verb, str(conf))
    assert rc == 1 and "not running" not in out, (rc, out)
    assert out == ("gatehouse: cannot tell whether gatehouse is running (PidFile %s is locked "
                   "but holds no process ID)\n" % pidfile), out


@pytest.mark.parametrize("verb", ["check", "reload", "stop"])
def test_k_when_not_running_exits_1_and_says_why(ctx, tmp_path, gh_bin, verb):
    text, pidfile = pid_conf(ctx, tmp_path)
    conf = tmp_path / "gh.conf"
    conf.write_text(text.format(port=ghtest.free_port()))
    rc, out = ctl(gh_bin, verb, str(conf))
    assert rc == 1 and out == "gatehouse: not running (PidFile %s does not exist)\n" % pidfile, out
    # A stale file left by a crash: its process holds no lock; nothing is signalled.
    victim = subprocess.Popen(["sleep", "30"])
    try:
        with open(pidfile, "w") as f:
            f.write("%d\n" % victim.pid)
        rc, out = ctl(gh_bin, verb, str(conf))
        assert rc == 1 and "not running (PidFile %s is not locked" % pidfile in out, out
        time.sleep(0.2)
        assert victim.poll() is None, "a process named by a stale pid file was signalled"
    finally:
        victim.kill()
        victim.wait()


def test_k_needs_a_pid_file(ctx, tmp_path, gh_bin):
    conf = tmp_path / "nopid.conf"
    conf.write_text(ghtest.conf_text(ctx, ghtest.free_port()))
    for verb in ("check", "reload", "stop"):
        rc, out = ctl(gh_bin, verb, str(conf))
        assert rc == 1 and "-k needs a PidFile" in out and str(conf) in out, out
    rc, out = ctl(gh_bin, "check")
    assert rc == 1 and "the built-in configuration names none" in out, out


def test_k_unknown_verb_and_bad_config(ctx, tmp_path, gh_bin):
    rc, out = ctl(gh_bin, "restart")
    assert rc == 2 and "-k restart: expected reload, stop or check" in out, out
    p = subprocess.run([gh_bin, "-t", "-k", "check"], capture_output=True, text=True, timeout=10,
                       env=ghtest.clean_env())
    assert p.returncode == 2 and "-k does not go with -t" in p.stderr, p.stderr
    p = subprocess.run([gh_bin, "-M", "-k", "stop"], capture_output=True, text=True, timeout=10,
                       env=ghtest.clean_env())
    assert p.returncode == 2 and "-k does not go with -M" in p.stderr, p.stderr
    bad = tmp_path / "bad.conf"
    bad.write_text("PidFile %s\nFrobnicate 1\n" % (tmp_path / "x.pid"))
    rc, out = ctl(gh_bin, "check", str(bad))
    assert rc == 1 and "%s:2:" % bad in out, out


@pytest.mark.slow
def test_k_stop_gives_up_after_the_grace_period(start_daemon, ctx, tmp_path, gh_bin):
    text, pidfile = pid_conf(ctx, tmp_path)
    d = start_daemon(text=text)
    os.kill(d.pid, signal.SIGSTOP)  # a daemon that does not stop
    try:
        t0 = time.monotonic()
        rc, out = ctl(gh_bin, "stop", d.conf)
        took = time.monotonic() - t0
        assert rc == 1 and "pid %d is still running 6 s after SIGTERM" % d.pid in out, out
        assert 5.5 < took < 9, took
    finally:
        os.kill(d.pid, signal.SIGCONT)
    assert d.proc.wait(timeout=10) == 0  # the SIGTERM it got while stopped
