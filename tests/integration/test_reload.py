"""
test_reload.py - the daemon's service lifecycle: SIGHUP reloads (a new access rule applies to
new requests while a download in flight completes; a broken file is logged as FILE:LINE and the
running configuration stays; Listen addresses are added and removed, and a reload whose new
address cannot be bound changes nothing), SIGUSR1 reopens moved logs, sd_notify readiness
(READY, RELOADING with MONOTONIC_USEC, STOPPING) on an abstract socket, the pid file (written,
locked against a second daemon, removed at exit), the refusal to run as root without User, and
the drop to User when started as root, and DNS* directives on reload (new lookups use the new
servers at once, a lookup in flight finishes on the old ones).

The daemons here come from the `start_daemon` fixture (GH_BIN), so these run for both build
flavours; the packaged daemon is tested in test_package.py.
"""

import os
import pwd
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

import ghtest
from origin import body_bytes

IS_ROOT = os.geteuid() == 0


def rewrite(d, text):
    with open(d.conf, "w") as f:
        f.write(text)


def slow_download(port, ctx, result, size=300000):
    """/slow through the proxy (size bytes, 10 kB every 100 ms); result gets status and body."""
    try:
        with ghtest.Conn("127.0.0.1", port, timeout=30) as c:
            c.send(ghtest.build("http://origin.test:%d/slow?size=%d&chunk=10000&delay=100&t=%s"
                                % (ctx.origin_port, size, uuid.uuid4().hex), close=True))
            r = c.read_response(timeout=30)
            result["status"] = r.status
            result["body"] = r.body
    except Exception as e:  # reported by the test
        result["error"] = repr(e)


def start_slow(port, ctx, size=300000):
    result = {}
    t0 = time.time()
    t = threading.Thread(target=slow_download, args=(port, ctx, result, size), daemon=True)
    t.start()
    assert ghtest.poll(lambda: [r for r in ctx.origin.requests_with("/slow")
                                if r["time"] >= t0], timeout=5), "download did not start"
    return t, result


def finish_slow(t, result, size=300000):
    t.join(timeout=30)
    assert not t.is_alive()
    assert "error" not in result, result.get("error")
    assert result["status"] == 200
    assert result["body"] == body_bytes(size)


@pytest.mark.slow
def test_reload_applies_a_new_access_rule_while_a_download_in_flight_completes(start_daemon, ctx):
    d = start_daemon()
    url = "http://origin.test:%d/size/100?r=%s" % (ctx.origin_port, uuid.uuid4().hex)
    assert ghtest.get(d.port, url).status == 200
    t, result = start_slow(d.port, ctx)
    time.sleep(0.5)
    deny = "<Proxy http://origin.test:%d/size/>\n    Require all denied\n</Proxy>\n" % ctx.origin_port
    rewrite(d, d.text + deny)
    ghtest.sighup_and_wait(d)
    r = ghtest.poll(lambda: (lambda x: x if x.status == 403 else None)(ghtest.get(d.port, url)),
                    timeout=3)
    assert r and r.status == 403, "the new rule did not apply"
    assert "Require all denied" in r.text()
    assert ghtest.get(d.port, "http://origin.test:%d/status/204" % ctx.origin_port).status == 204
    assert result.get("status") is None, "download ended before the reload could matter"
    finish_slow(t, result)


def test_reload_with_a_broken_file_keeps_the_running_configuration(start_daemon, ctx):
    d = start_daemon()
    url = "http://origin.test:%d/size/10" % ctx.origin_port
    rewrite(d, d.text + "ProxyTimeout 5\nNoSuchDirective on\n")
    ghtest.sighup_and_wait(d, expect_ok=False)
    line = len(d.text.splitlines()) + 2
    assert "%s:%d: unknown directive \"NoSuchDirective\"" % (d.conf, line) in d.stderr_text()
    assert "keeping the running configuration" in d.stderr_text()
    assert d.alive()
    assert ghtest.get(d.port, url).status == 200
    # and a good file afterwards is taken
    rewrite(d, d.text)
    ghtest.sighup_and_wait(d)
    assert ghtest.get(d.port, url).status == 200


@pytest.mark.slow
def test_reload_adds_and_removes_listeners_without_dropping_connections(start_daemon, ctx):
    d = start_daemon()
    a = d.port
    b = ghtest.free_port()
    assert not ghtest.can_connect("127.0.0.1", b)
    # A download accepted on port a is in flight while a is removed.
    t, result = start_slow(a, ctx)
    rewrite(d, d.text.replace("Listen 127.0.0.1:%d\n" % a,
                              "Listen 127.0.0.1:%d\nListen 127.0.0.1:%d\n" % (a, b)))
    ghtest.sighup_and_wait(d)
    assert "now listening on 127.0.0.1:%d" % b in d.stderr_text()
    url = "http://origin.test:%d/size/10" % ctx.origin_port
    for port in (a, b):
        assert ghtest.get(d.port if port == a else b, url).status == 200
    rewrite(d, d.text.replace("Listen 127.0.0.1:%d\n" % a, "Listen 127.0.0.1:%d\n" % b))
    ghtest.sighup_and_wait(d)
    assert "no longer listening on 127.0.0.1:%d" % a in d.stderr_text()
    assert ghtest.poll(lambda: not ghtest.can_connect("127.0.0.1", a), timeout=3), \
        "port %d still accepts after its Listen was removed" % a
    assert ghtest.get(b, url).status == 200
    finish_slow(t, result)
    # Every worker got the new socket: many fresh connections all succeed.
    for _ in range(12):
        assert ghtest.get(b, url).status == 200
    # Re-adding the first address works too (slots are reused).
    rewrite(d, d.text.replace("Listen 127.0.0.1:%d\n" % a,
                              "Listen 127.0.0.1:%d\nListen 127.0.0.1:%d\n" % (a, b)))
    ghtest.sighup_and_wait(d)
    assert ghtest.get(a, url).status == 200
    assert ghtest.get(b, url).status == 200


def test_reload_whose_new_address_cannot_be_bound_changes_nothing(start_daemon, ctx):
    d = start_daemon()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    busy = blocker.getsockname()[1]
    try:
        url = "http://origin.test:%d/size/10" % ctx.origin_port
        deny = "<Proxy *>\n    Require all denied\n</Proxy>\n"
        rewrite(d, d.text.replace("Listen 127.0.0.1:%d\n" % d.port,
                                  "Listen 127.0.0.1:%d\nListen 127.0.0.1:%d\n" % (d.port, busy))
                + deny)
        ghtest.sighup_and_wait(d, expect_ok=False)
        assert "cannot listen on 127.0.0.1:%d" % busy in d.stderr_text()
        # The access rule of the refused file did not apply either.
        assert ghtest.get(d.port, url).status == 200
    finally:
        blocker.close()


def test_sigusr1_reopens_moved_logs(start_daemon, ctx, tmp_path):
    alog = os.path.join(ctx.workdir, "reopen-%s.access.log" % uuid.uuid4().hex[:8])
    elog = alog.replace("access", "error")
    d = start_daemon(access_log=alog, extra=["ErrorLog %s" % elog])
    tok1, tok2 = uuid.uuid4().hex, uuid.uuid4().hex
    assert ghtest.get(d.port, "http://origin.test:%d/size/1?%s" % (ctx.origin_port, tok1)).status == 200
    assert ghtest.poll_lines(alog, lambda ln: tok1 in ln)
    os.rename(alog, alog + ".1")
    os.rename(elog, elog + ".1")
    d.proc.send_signal(signal.SIGUSR1)
    assert ghtest.poll(lambda: os.path.exists(elog), timeout=5), "no new error log"
    assert ghtest.poll_lines(elog, lambda ln: "logs reopened" in ln)
    assert ghtest.get(d.port, "http://origin.test:%d/size/1?%s" % (ctx.origin_port, tok2)).status == 200
    assert ghtest.poll_lines(alog, lambda ln: tok2 in ln), "no line in the new access log"
    with open(alog + ".1") as f:
        assert tok2 not in f.read()


class Notify:
    """An abstract-namespace datagram socket standing in for systemd's notify socket."""

    def __init__(self):
        self.name = "@gh-test-notify-%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name[1:])
        self.messages = []

    def wait(self, pred, timeout=5.0):
        """Collect datagrams until one satisfies pred; return it (or None at the deadline)."""
        deadline = time.monotonic() + timeout
        for m in self.messages:
            if pred(m):
                self.messages.remove(m)
                return m
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.sock], [], [], max(0.0, deadline - time.monotonic()))
            if not r:
                break
            m = self.sock.recv(4096).decode()
            if pred(m):
                return m
            self.messages.append(m)
        return None

    def close(self):
        self.sock.close()


def fields(msg):
    return dict(ln.split("=", 1) for ln in msg.split("\n") if "=" in ln)


@pytest.fixture
def notify(monkeypatch):
    n = Notify()
    monkeypatch.setenv("NOTIFY_SOCKET", n.name)
    yield n
    n.close()


def test_sd_notify_ready_reloading_and_stopping(start_daemon, ctx, notify):
    d = start_daemon()
    ready = notify.wait(lambda m: "READY=1" in m)
    assert ready, "no READY=1"
    assert "listening on 127.0.0.1:%d" % d.port in fields(ready).get("STATUS", "")

    t0 = time.monotonic()
    ghtest.sighup_and_wait(d)
    rel = notify.wait(lambda m: "RELOADING=1" in m)
    assert rel, "no RELOADING=1 on SIGHUP"
    usec = int(fields(rel)["MONOTONIC_USEC"])
    assert abs(usec / 1e6 - t0) < 5, "MONOTONIC_USEC is not CLOCK_MONOTONIC"
    again = notify.wait(lambda m: "READY=1" in m)
    assert again and "reloaded" in fields(again).get("STATUS", "")

    rewrite(d, d.text + "Bogus\n")
    ghtest.sighup_and_wait(d, expect_ok=False)
    assert notify.wait(lambda m: "RELOADING=1" in m)
    after_bad = notify.wait(lambda m: "READY=1" in m)
    assert after_bad and "failed" in fields(after_bad).get("STATUS", "")

    d.proc.send_signal(signal.SIGTERM)
    assert notify.wait(lambda m: "STOPPING=1" in m), "no STOPPING=1 on SIGTERM"
    assert d.proc.wait(timeout=10) == 0


def test_pid_file_is_written_locked_and_removed(start_daemon, ctx, gh_bin, tmp_path):
    pidfile = tmp_path / "gh.pid"
    d = start_daemon(extra=["PidFile %s" % pidfile])
    assert pidfile.read_text() == "%d\n" % d.pid
    # A second daemon with the same PidFile (and another port) refuses to start.
    other = tmp_path / "other.conf"
    other.write_text(ghtest.conf_text(ctx, ghtest.free_port(), extra=["PidFile %s" % pidfile]))
    p = subprocess.run([gh_bin, "-f", str(other)], capture_output=True, timeout=10,
                       env=ghtest.clean_env())
    assert p.returncode == 1
    assert ("locked by process %d" % d.pid).encode() in p.stderr, p.stderr
    assert pidfile.read_text() == "%d\n" % d.pid
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=10) == 0
    assert not pidfile.exists()


@pytest.mark.skipif(not IS_ROOT, reason="only a root start is refused")
def test_root_start_without_user_is_refused_naming_the_fix(gh_bin, ctx, tmp_path):
    conf = tmp_path / "nouser.conf"
    conf.write_text(ghtest.conf_text(ctx, ghtest.free_port()).replace("User root\n", ""))
    p = subprocess.run([gh_bin, "-f", str(conf)], capture_output=True, timeout=10,
                       env=ghtest.clean_env())
    assert p.returncode == 1
    err = p.stderr.decode()
    assert "refusing to run as root" in err and "User _gatehouse" in err and "User root" in err
    # -t refuses it too (issue 9): it catches what a start would refuse.
    p = subprocess.run([gh_bin, "-t", "-f", str(conf)], capture_output=True, timeout=10,
                       env=ghtest.clean_env())
    assert p.returncode == 1, p.stderr
    assert b"refusing to run as root" in p.stderr and b"Syntax OK" not in p.stderr


def proc_ids(pid):
    """{"Uid": [...], "Gid": [...], "Groups": [...], "CapEff": "..."} of every thread."""
    out = []
    for tid in os.listdir("/proc/%d/task" % pid):
        info = {}
        with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
            for ln in f:
                k, _, v = ln.partition(":")
                if k in ("Uid", "Gid", "Groups"):
                    info[k] = v.split()
                elif k == "CapEff":
                    info[k] = v.strip()
        out.append(info)
    return out


@pytest.mark.skipif(not IS_ROOT, reason="needs root to change user")
def test_root_start_drops_to_user_after_binding_and_opening_logs(start_daemon, ctx):
    nobody = pwd.getpwnam("nobody")
    # The log directory belongs to the user, as the package makes /var/log/gatehouse, so that
    # new logs can be created there after logrotate moved the old ones away.
    top = tempfile.mkdtemp(prefix="gh-drop-")
    os.chmod(top, 0o755)
    os.chown(top, nobody.pw_uid, nobody.pw_gid)
    # nobody must be able to read the config again on reload (a start checks it): the
    # session's work dir is searchable for the duration of the test.
    mode = os.stat(ctx.workdir).st_mode & 0o7777
    os.chmod(ctx.workdir, 0o711)
    try:
        d = start_daemon(access_log=os.path.join(top, "access.log"),
                         extra=["User nobody", "ErrorLog %s/error.log" % top])
        # Listeners accept (into the backlog) before the drop; a served request comes after.
        assert ghtest.get(d.port, "http://origin.test:%d/size/1" % ctx.origin_port).status == 200
        for th in proc_ids(d.pid):
            assert th["Uid"] == [str(nobody.pw_uid)] * 4, th
            assert th["Gid"] == [str(nobody.pw_gid)] * 4, th
            assert "0" not in th["Groups"], th
            assert int(th["CapEff"], 16) == 0, th
        # The logs were created by root for nobody, so they can be reopened.
        for name in ("access.log", "error.log"):
            st = os.stat(os.path.join(top, name))
            assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid), name
        os.rename(os.path.join(top, "error.log"), os.path.join(top, "error.log.1"))
        d.proc.send_signal(signal.SIGUSR1)
        assert ghtest.poll_lines(os.path.join(top, "error.log"), lambda ln: "logs reopened" in ln)
        assert os.stat(os.path.join(top, "error.log")).st_uid == nobody.pw_uid
        assert d.stop() == 0
    finally:
        os.chmod(ctx.workdir, mode)
        shutil.rmtree(top, ignore_errors=True)


# ---------------------------------------------------------------- DNS* on reload

class _DnsOnly(ghtest.Dnsmasq):
    """A dnsmasq of its own (own directory), answering only the names given."""

    def __init__(self, workdir, records):
        os.makedirs(workdir, exist_ok=True)
        super().__init__(workdir)
        self.RECORDS = list(records) + [("origin.test", "127.0.0.1")]  # readiness probe

    def queried(self, name):
        try:
            with open(self.log, errors="replace") as f:
                return sum(1 for ln in f if "query[A] %s " % name in ln)
        except OSError:
            return 0


class _SlowDns:
    """A UDP DNS server on loopback that answers A queries with 127.0.0.1 after `delay`
    seconds (AAAA: no records, at once): a lookup stays in flight for that long."""

    def __init__(self, delay):
        self.delay = delay
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.asked = []
        self.stopped = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _answer(self, q, addr):
        import struct
        qid = q[:2]
        end = 12
        while q[end] != 0:
            end += q[end] + 1
        question = q[12:end + 5]
        qtype = struct.unpack(">H", q[end + 1:end + 3])[0]
        if qtype == 1:
            self.asked.append(time.monotonic())
            time.sleep(self.delay)
            ans = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
            r = qid + struct.pack(">HHHHH", 0x8580, 1, 1, 0, 0) + question + ans
        else:
            r = qid + struct.pack(">HHHHH", 0x8580, 1, 0, 0, 0) + question
        if not self.stopped:
            self.sock.sendto(r, addr)

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stopped:
            try:
                q, addr = self.sock.recvfrom(1500)
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._answer, args=(q, addr), daemon=True).start()

    def stop(self):
        self.stopped = True
        self.thread.join(timeout=2)
        self.sock.close()


def _dns_conf(d, port):
    return d.text.replace("DNSServer 127.0.0.1:%d\n" % d.ctx_dns_port,
                          "DNSServer 127.0.0.1:%d\n" % port)


def test_reload_switches_dns_servers(start_daemon, ctx, tmp_path):
    a = _DnsOnly(str(tmp_path / "a"), [("switch.test", "127.0.0.1")]).start()
    b = _DnsOnly(str(tmp_path / "b"), [("bonly.test", "127.0.0.1")]).start()
    try:
        d = start_daemon(extra=["DNSCacheTTL 60 3600", "DNSNegativeTTL 60"])
        d.ctx_dns_port = ctx.dns_port
        rewrite(d, _dns_conf(d, a.port))
        ghtest.sighup_and_wait(d)
        one = "http://switch.test:%d/size/10?%s" % (ctx.origin_port, uuid.uuid4().hex)
        two = "http://bonly.test:%d/size/10?%s" % (ctx.origin_port, uuid.uuid4().hex)
        # Under A: switch.test resolves, bonly.test does not (and both answers are cached for
        # 60 s, so only a new resolver can change them); on every worker (Workers 2).
        for _ in range(4):
            assert ghtest.get(d.port, one).status == 200
            assert ghtest.get(d.port, two).status != 200
        assert a.queried("switch.test") >= 1 and b.queried("switch.test") == 0
        rewrite(d, _dns_conf(d, b.port))
        ghtest.sighup_and_wait(d)
        # Under B: the other way round, at once (the caches went with the old resolvers).
        for _ in range(4):
            assert ghtest.get(d.port, two).status == 200, "bonly.test: the new DNSServer is unused"
            assert ghtest.get(d.port, one).status != 200, "switch.test: the old answer is still used"
        assert b.queried("bonly.test") >= 1 and b.queried("switch.test") >= 1
    finally:
        a.stop()
        b.stop()


def test_reload_lets_a_lookup_in_flight_finish_on_the_old_servers(start_daemon, ctx, tmp_path):
    slow = _SlowDns(1.0)
    b = _DnsOnly(str(tmp_path / "b"), [])
    b.start()
    try:
        d = start_daemon(extra=["DNSTimeout 5000"], timeout=10)
        d.ctx_dns_port = ctx.dns_port
        rewrite(d, _dns_conf(d, slow.port))
        ghtest.sighup_and_wait(d)
        result = {}

        def fetch():
            try:
                r = ghtest.get(d.port, "http://slowname.test:%d/size/1000" % ctx.origin_port,
                               timeout=15)
                result.update(status=r.status, body=r.body)
            except Exception as e:
                result["error"] = repr(e)

        t = threading.Thread(target=fetch, daemon=True)
        t.start()
        assert ghtest.poll(lambda: slow.asked, timeout=5), "the lookup did not start"
        rewrite(d, _dns_conf(d, b.port))
        ghtest.sighup_and_wait(d)
        assert not result, "the lookup ended before the reload: %s" % result
        t.join(timeout=15)
        assert "error" not in result, result.get("error")
        assert result["status"] == 200 and result["body"] == body_bytes(1000), result
        # new lookups ask B, which does not know the name
        assert ghtest.get(d.port, "http://slowname.test:%d/size/1" % ctx.origin_port).status != 200
        assert b.queried("slowname.test") >= 1
        assert len(slow.asked) == 1
        assert d.alive()
    finally:
        slow.stop()
        b.stop()


def test_reload_switches_the_dns_servers_of_proxyblock_lookups(start_daemon, ctx, tmp_path):
    """The background resolution of ProxyBlock names follows DNSServer too: a name only the
    new server knows gets its address blocked."""
    a = _DnsOnly(str(tmp_path / "a"), []).start()
    b = _DnsOnly(str(tmp_path / "b"), [("bonly.test", "127.0.0.1")]).start()
    try:
        d = start_daemon()
        d.ctx_dns_port = ctx.dns_port
        rewrite(d, _dns_conf(d, a.port))
        ghtest.sighup_and_wait(d)
        lit = "http://127.0.0.1:%d/size/10" % ctx.origin_port
        assert ghtest.get(d.port, lit).status == 200
        rewrite(d, _dns_conf(d, b.port) + "ProxyBlock bonly.test\n")
        ghtest.sighup_and_wait(d)
        r = ghtest.poll(lambda: (lambda x: x if x.status == 403 else None)(ghtest.get(d.port, lit)),
                        timeout=5)
        assert r, "127.0.0.1 (bonly.test at the new DNSServer) is not blocked"
        assert "bonly.test" in r.text()
        assert b.queried("bonly.test") >= 1 and a.queried("bonly.test") == 0
    finally:
        a.stop()
        b.stop()
