"""
test_logformat.py - Apache's log configuration (issue 9): LogFormat and CustomLog with
mod_log_config's format language, checked field by field against a real request through the
daemon to the test origin; the nicknames common, combined and squid next to AccessLog; FILE:LINE
errors from -t; ErrorLog syslog:FACILITY and CustomLog "|/usr/bin/logger ..." received by a real
datagram socket mounted over /dev/log in a private mount namespace (the machine's /dev is not
touched); piped logs with real programs: run as User, restarted with backoff when they die, left
alone by SIGUSR1, and a program that never reads does not slow requests (lines are dropped and
counted instead); a reload that changes the logs warns.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid

import pytest

import ghtest


# Every directive, separated by "|" so that the line splits into known fields.
EVERY = ("%h|%a|%{c}a|%A|%l|%u|%t|%r|%s|%>s|%b|%B|%O|%m|%U|%q|%H|%v|%p|%{remote}p|%P|"
         "%D|%T|%{ms}T|%{X-Tok}i|%{ETag}o|%{s}C|%L|%X|%k|%%|%{%Y-%m-%d}t|%{sec}t|"
         "%{msec_frac}t|%{Content-Type}o|%404{X-Tok}i|%!404{X-Tok}i|%{X-Absent}i")


def test_every_directive_matches_the_request(start_daemon, ctx):
    log = os.path.join(ctx.workdir, "every-%s.log" % uuid.uuid4().hex[:8])
    d = start_daemon(extra=['LogFormat "%s" every' % EVERY.replace('"', '\\"'),
                            "CustomLog %s every" % log])
    tok = uuid.uuid4().hex
    url = "http://origin.test:%d/cache?t=%s&size=777&etag=%s&cc=no-store" % (ctx.origin_port,
                                                                           tok, tok)
    c = ghtest.Conn("127.0.0.1", d.port)
    with c:
        my_port = c.sock.getsockname()[1]
        t0 = time.time()
        c.send(ghtest.build(url, [("X-Tok", tok), ("Cookie", "a=1; s=sess%s" % tok[:6])],
                            close=True))
        r = c.read_response()
    assert r.status == 200 and len(r.body) == 777
    lines = ghtest.poll_lines(log, lambda ln: tok in ln)
    assert len(lines) == 1, lines
    f = lines[0].split("|")
    names = EVERY.split("|")
    assert len(f) == len(names), (lines[0], names)
    v = dict(zip(names, f))
    assert v["%h"] == v["%a"] == v["%{c}a"] == "127.0.0.1"
    assert v["%A"] == "127.0.0.1"
    assert v["%l"] == "-" and v["%u"] == "-"
    assert re.match(r"^\[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\]$", v["%t"]), v["%t"]
    assert v["%r"] == "GET %s HTTP/1.1" % url
    assert v["%s"] == v["%>s"] == "200"
    assert v["%b"] == v["%B"] == "777"
    assert int(v["%O"]) > 777  # the head too
    assert v["%m"] == "GET"
    assert v["%U"] == url.split("?")[0]
    assert v["%q"] == "?" + url.split("?")[1]
    assert v["%H"] == "HTTP/1.1"
    assert v["%v"] and v["%v"] != "-"
    assert v["%p"] == str(d.port)
    assert v["%{remote}p"] == str(my_port)
    assert v["%P"] == str(d.pid)
    assert 0 < int(v["%D"]) < 5000000
    assert int(v["%T"]) < 5 and int(v["%{ms}T"]) < 5000
    assert int(v["%{ms}T"]) == int(v["%D"]) // 1000
    assert v["%{X-Tok}i"] == tok
    assert v["%{ETag}o"] == '\\"%s\\"' % tok  # Apache escapes the quotes
    assert v["%{s}C"] == "sess" + tok[:6]
    assert re.match(r"^[0-9A-Z]{12}$", v["%L"]), v["%L"]  # the request id of the pages
    assert v["%X"] == "-"  # Connection: close was asked
    assert v["%k"] == "0"
    assert v["%%"] == "%"
    assert v["%{%Y-%m-%d}t"] == time.strftime("%Y-%m-%d", time.localtime(int(v["%{sec}t"])))
    assert abs(int(v["%{sec}t"]) - t0) < 10
    assert re.match(r"^\d{3}$", v["%{msec_frac}t"])
    assert v["%{Content-Type}o"] == "application/octet-stream"
    assert v["%404{X-Tok}i"] == "-" and v["%!404{X-Tok}i"] == tok
    assert v["%{X-Absent}i"] == "-"


def test_keepalive_count_status_and_escaping(start_daemon, ctx):
    log = os.path.join(ctx.workdir, "ka-%s.log" % uuid.uuid4().hex[:8])
    d = start_daemon(extra=['CustomLog %s "%%k %%X %%>s %%b \\"%%{User-Agent}i\\" %%U"' % log])
    tok = uuid.uuid4().hex
    c = ghtest.Conn("127.0.0.1", d.port)
    with c:
        for i in range(3):
            c.send(ghtest.build("http://origin.test:%d/status/404?%s=%d" % (ctx.origin_port,
                                                                           tok, i),
                                [("User-Agent", 'say "hi"\\%s' % i)]))
            assert c.read_response().status == 404
    lines = ghtest.poll_lines(log, lambda ln: "/status/404" in ln, count=3)
    assert [ln.split(" ")[0] for ln in lines] == ["0", "1", "2"], lines
    for i, ln in enumerate(lines):
        k, x, status, nbytes, rest = ln.split(" ", 4)
        assert x == "+" and status == "404"
        assert nbytes != "-" and int(nbytes) > 0
        assert rest == '"say \\"hi\\"\\\\%d" http://origin.test:%d/status/404' % (
            i, ctx.origin_port), rest


COMMON_RE = re.compile(r'^(\S+) (\S+) (\S+) \[[^\]]+\] "([^"]*)" (\d{3}) (\d+|-)$')


def test_nicknames_and_access_log_coexist(start_daemon, ctx):
    base = os.path.join(ctx.workdir, "nick-%s" % uuid.uuid4().hex[:8])
    d = start_daemon(access_log=base + ".access", extra=[
        "CustomLog %s.common common" % base,
        "CustomLog %s.combined combined" % base,
        "CustomLog %s.squid squid" % base,
        'LogFormat "%h %>s mine" mine',
        "CustomLog %s.mine mine" % base])
    tok = uuid.uuid4().hex
    url = "http://origin.test:%d/size/321?n=%s" % (ctx.origin_port, tok)
    r = ghtest.get(d.port, url, headers=[("Referer", "http://ref.test/" + tok),
                                         ("User-Agent", "agent-" + tok)])
    assert r.status == 200
    common = ghtest.poll_lines(base + ".common", lambda ln: tok in ln)
    m = COMMON_RE.match(common[0]) if common else None
    assert m, common
    assert m.group(4) == "GET %s HTTP/1.1" % url and m.group(5) == "200" and m.group(6) == "321"
    comb = ghtest.poll_lines(base + ".combined", lambda ln: tok in ln)
    m = ghtest.APACHE_COMBINED_RE.match(comb[0]) if comb else None
    assert m, comb
    assert m.group(8) == "http://ref.test/" + tok and m.group(9) == "agent-" + tok
    sq = ghtest.poll_lines(base + ".squid", lambda ln: tok in ln)
    m = ghtest.SQUID_RE.match(sq[0]) if sq else None
    assert m, sq
    assert m.group(4) == "TCP_MISS" and m.group(8) == url
    acc = ghtest.poll_lines(base + ".access", lambda ln: tok in ln)
    assert acc and ghtest.SQUID_RE.match(acc[0]), acc
    mine = ghtest.poll_lines(base + ".mine", lambda ln: ln.endswith(" 200 mine"))
    assert mine == ["127.0.0.1 200 mine"], mine


@pytest.mark.parametrize("lines,want", [
    (['LogFormat "%h %{HOME}e" x'], ":%d: LogFormat: %%e (environment variables)"),
    (['CustomLog /tmp/x.log "%h %Q"'], ":%d: CustomLog: unknown directive %%Q"),
    (["CustomLog /tmp/x.log nosuch"], ':%d: CustomLog: unknown format nickname "nosuch"'),
    (['CustomLog /tmp/x.log "%I"'], ":%d: CustomLog: %%I (bytes received"),
    (["CustomLog /tmp/x.log common env=!quiet"], ":%d: CustomLog: conditional logging"),
    (["ErrorLog syslog:nosuch"], ":%d: ErrorLog: unknown syslog facility"),
    (['ErrorLog "||/bin/cat"'], ':%d: ErrorLog: "||program"'),
])
def test_errors_name_file_line_and_directive(gh_bin, tmp_path, lines, want):
    conf = tmp_path / "bad.conf"
    conf.write_text("Listen 127.0.0.1:1\n# two\n" + "\n".join(lines) + "\n")
    p = subprocess.run([gh_bin, "-t", "-f", str(conf)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode != 0
    assert (str(conf) + want % 3) in p.stderr, p.stderr


def test_apache_log_lines_pass_the_check(gh_bin, tmp_path):
    conf = tmp_path / "apache.conf"
    conf.write_text(
        "Listen 127.0.0.1:1\nUser root\n"
        'LogFormat "%h %l %u %t \\"%r\\" %>s %b \\"%{Referer}i\\" \\"%{User-Agent}i\\"" '
        "combined\n"
        'LogFormat "%h %l %u %t \\"%r\\" %>s %b" common\n'
        "CustomLog ACCESS combined\n"
        'CustomLog "|/usr/bin/logger -t gatehouse" common\n'
        "ErrorLog syslog:local1\n".replace("ACCESS", str(tmp_path / "access.log")))
    p = subprocess.run([gh_bin, "-t", "-f", str(conf)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0 and "Syntax OK" in p.stderr, p.stderr


# ---- syslog ----

def _unshare_ok():
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _unshare_ok(), reason="needs root and unshare -m (a mount namespace)")
def test_error_log_to_syslog_facility(start_daemon, gh_bin, ctx):
    """The daemon runs in a private mount namespace whose /dev is a directory of ours holding
    the real null/zero/urandom devices and our datagram socket as /dev/log."""
    top = os.path.join(ctx.workdir, "syslog-%s" % uuid.uuid4().hex[:8])
    dev = os.path.join(top, "dev")
    os.makedirs(dev)
    for name in ("null", "zero", "urandom", "random"):
        open(os.path.join(dev, name), "w").close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(os.path.join(dev, "log"))
    sock.settimeout(0.2)
    wrapper = os.path.join(top, "gh-ns.sh")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\n"
                "exec unshare -m --propagation private sh -c '"
                "for n in null zero urandom random; do mount --bind /dev/$n %s/$n || exit 1; "
                "done; mount --bind %s /dev || exit 1; exec \"$0\" \"$@\"' %s \"$@\"\n"
                % (dev, dev, gh_bin))
    os.chmod(wrapper, 0o755)
    f = start_daemon.__class__(wrapper, ctx)
    try:
        d = f(extra=["ErrorLog syslog:local1",
                     'CustomLog "|/usr/bin/logger -t gh-access -p local2.info" combined'])
        tok = uuid.uuid4().hex
        # a 502 is logged at info (LogLevel info in the test config)
        assert ghtest.get(d.port, "http://nosuch.test/%s" % tok).status == 502
        got = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and \
                len([g for g in got if tok in g]) < 2:
            try:
                got.append(sock.recv(65536).decode("latin-1"))
            except socket.timeout:
                pass
        # the access line through logger(1): local2.info = <150>, combined format
        acc = [g for g in got if "gh-access" in g and tok in g]
        assert acc and acc[0].startswith("<150>"), got
        assert re.search(r'gh-access(\[\d+\])?: 127\.0\.0\.1 - - \[[^\]]+\] "GET '
                         r'http://nosuch\.test/%s HTTP/1\.1" 502 \d+ "-" "-"' % tok, acc[0]), acc
        # local1 = 17: <17*8 + severity>; notice 5, info 6
        start = [g for g in got if "listening on" in g]
        assert start and start[0].startswith("<141>"), got
        assert re.search(r"gatehouse\[\d+\]: \[notice\] gatehouse .* listening on", start[0]), \
            start[0]
        line = [g for g in got if tok in g and "gh-access" not in g]
        assert line and line[0].startswith("<142>") and "[info]" in line[0], got
        # the request's lines went to syslog, not to standard error (which gets only the
        # start line, for whoever started the daemon)
        assert tok not in d.stderr_text()
    finally:
        problems = f.stop_all()
        sock.close()
    assert not problems, problems


# ---- piped logs ----

def test_piped_custom_log_error_log_and_access_log(start_daemon, ctx):
    base = os.path.join(ctx.workdir, "pipe-%s" % uuid.uuid4().hex[:8])
    d = start_daemon(extra=[
        'CustomLog "|exec cat >> %s.custom" "%%m %%U %%>s"' % base,
        'AccessLog "|exec cat >> %s.access"' % base,
        'ErrorLog "|exec cat >> %s.error"' % base])
    tok = uuid.uuid4().hex
    url = "http://origin.test:%d/size/10?p=%s" % (ctx.origin_port, tok)
    assert ghtest.get(d.port, url).status == 200
    assert ghtest.poll_lines(base + ".custom", lambda ln: ln == "GET %s 200" % url.split("?")[0])
    acc = ghtest.poll_lines(base + ".access", lambda ln: tok in ln)
    assert acc and ghtest.SQUID_RE.match(acc[0]), acc
    assert ghtest.poll_lines(base + ".error", lambda ln: "listening on" in ln)
    # three programs, children of the daemon, running as the daemon's user
    kids = ghtest.children(d.pid)
    assert len(kids) == 3, kids

    # SIGUSR1 reopens files and leaves the pipes alone
    os.kill(d.pid, signal.SIGUSR1)
    assert ghtest.poll_lines(base + ".error", lambda ln: "logs reopened" in ln)
    assert sorted(ghtest.children(d.pid)) == sorted(kids)

    # kill the CustomLog's program: the daemon says so, restarts it, lines flow again
    victim = None
    for k in kids:
        try:
            # exec cat >> FILE: the shell became cat; find it by its stdout
            if os.readlink("/proc/%d/fd/1" % k) == base + ".custom":
                victim = k
        except OSError:
            pass
    assert victim, kids
    os.kill(victim, signal.SIGKILL)
    assert ghtest.poll_lines(base + ".error", lambda ln: "exited" in ln or "killed" in ln,
                             timeout=5), open(base + ".error").read()
    assert ghtest.poll_lines(base + ".error", lambda ln: "restarted" in ln, timeout=10), \
        open(base + ".error").read()
    tok2 = uuid.uuid4().hex
    url2 = "http://origin.test:%d/size/11?q=%s" % (ctx.origin_port, tok2)
    assert ghtest.get(d.port, url2).status == 200
    assert ghtest.poll_lines(base + ".custom", lambda ln: ln == "GET %s 200" % url2.split("?")[0], count=2, timeout=5)
    assert victim not in ghtest.children(d.pid) and len(ghtest.children(d.pid)) == 3
    # the restarted program holds nothing of the daemon's: only stdin, stdout, stderr
    for k in ghtest.children(d.pid):
        assert set(os.listdir("/proc/%d/fd" % k)) <= {"0", "1", "2"}, \
            (k, os.listdir("/proc/%d/fd" % k))
    # shutdown closes the pipes and the programs exit with the daemon
    kids = ghtest.children(d.pid)
    assert d.stop() == 0
    for k in kids:
        assert not os.path.exists("/proc/%d" % k) or \
            open("/proc/%d/stat" % k).read().split()[2] == "Z"
    assert ghtest.poll_lines(base + ".error", lambda ln: "stopped" in ln or "shutting" in ln)


def test_stuck_pipe_program_never_delays_requests(start_daemon, ctx):
    pad = "x" * 6000
    d = start_daemon(extra=['CustomLog "|exec sleep 1000" "%r %{X-Pad}i"'])
    url = "http://origin.test:%d/size/10" % ctx.origin_port
    worst = 0.0
    # 64 KiB of pipe plus 256 KiB kept: about 55 lines of 6 KB; send far more
    for i in range(300):
        t = time.monotonic()
        assert ghtest.get(d.port, url + "?i=%d" % i, headers=[("X-Pad", pad)]).status == 200
        worst = max(worst, time.monotonic() - t)
    assert worst < 1.0, worst
    # the error log reports the dropped lines (every 10 s)
    assert ghtest.poll(lambda: re.search(r"CustomLog: (\d+) lines dropped: the piped log "
                                         r"program \"exec sleep 1000\" does not read",
                                         d.stderr_text()), timeout=15), d.stderr_tail()
    n = int(re.search(r"CustomLog: (\d+) lines dropped", d.stderr_text()).group(1))
    assert 100 < n <= 300, n
    # shutdown does not hang on a program that never reads: it is terminated
    kids = ghtest.children(d.pid)
    assert len(kids) == 1
    t = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - t < 8
    assert not os.path.exists("/proc/%d" % kids[0]) or \
        open("/proc/%d/stat" % kids[0]).read().split()[2] == "Z"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs a root start to drop privileges")
def test_piped_program_runs_as_user_after_the_drop(start_daemon, ctx):
    import pwd
    nobody = pwd.getpwnam("nobody")
    # nobody must be able to read the config again on reload (a start checks it)
    with ghtest.searchable(ctx.workdir):
        d = start_daemon(extra=['CustomLog "|exec cat > /dev/null" common', "User nobody"])
        kids = ghtest.poll(lambda: ghtest.children(d.pid))
        assert len(kids) == 1, kids
        with open("/proc/%d/status" % kids[0]) as f:
            uids = [ln.split()[1:] for ln in f if ln.startswith("Uid:")][0]
        assert uids == [str(nobody.pw_uid)] * 4, uids


def test_reload_that_changes_logs_warns(start_daemon, ctx):
    log = os.path.join(ctx.workdir, "rl-%s.log" % uuid.uuid4().hex[:8])
    d = start_daemon(extra=["CustomLog %s common" % log])
    with open(d.conf) as f:
        text = f.read()
    with open(d.conf, "w") as f:
        f.write(text.replace("CustomLog %s common" % log, "CustomLog %s combined" % log))
    off = d.stderr_size()
    os.kill(d.pid, signal.SIGHUP)
    assert ghtest.poll(lambda: "configuration reloaded" in d.stderr_text(off)), d.stderr_tail()
    assert "CustomLog, TransferLog, LogFormat and ErrorLog changes take effect at the next " \
        "start" in d.stderr_text(off)
    # the running log keeps its format
    tok = uuid.uuid4().hex
    assert ghtest.get(d.port, "http://origin.test:%d/size/5?%s" % (ctx.origin_port, tok),
                      headers=[("User-Agent", "ua-" + tok)]).status == 200
    lines = ghtest.poll_lines(log, lambda ln: tok in ln)
    assert lines and COMMON_RE.match(lines[0]) and "ua-" not in lines[0], lines


def test_response_headers_of_a_cache_hit_and_a_local_page(start_daemon, ctx):
    root = os.path.join(ctx.workdir, "lfcache-%s" % uuid.uuid4().hex[:8])
    log = root + ".log"
    d = start_daemon(extra=["CacheRoot %s" % root, "CacheSize 64M", "CacheEnable lmdb /",
                            'CustomLog %s "%%>s %%{Cache-Status}o|%%{Content-Type}o|%%U"' % log])
    tok = uuid.uuid4().hex
    url = "http://origin.test:%d/cache?size=100&cc=max-age%%3D600&t=%s" % (ctx.origin_port, tok)
    for _ in range(2):
        assert ghtest.get(d.port, url).status == 200
    assert ghtest.get(d.port, "http://origin.test:%d/cache?t=%s" % (ctx.origin_port, tok),
                      source="127.0.0.2").status == 403
    lines = ghtest.poll_lines(log, lambda ln: ln.startswith("200 ") or ln.startswith("403 "),
                              count=3)
    assert len(lines) == 3, lines
    # each worker writes its lines once per loop turn: lines of requests on different
    # connections (workers) may come in either order
    miss = [ln for ln in lines if ln.startswith("200 Gatehouse; fwd=uri-miss;")]
    hit = [ln for ln in lines if ln.startswith("200 Gatehouse; hit")]
    local = [ln for ln in lines if ln.startswith("403 ")]
    assert len(miss) == len(hit) == len(local) == 1, lines
    assert "; stored|" in miss[0], lines
    assert miss[0].endswith("|application/octet-stream|" + url.split("?")[0]), lines
    assert hit[0].endswith("|application/octet-stream|" + url.split("?")[0]), lines
    assert "|text/html" in local[0], lines


def test_a_program_that_keeps_exiting_is_restarted_with_backoff(start_daemon, ctx):
    d = start_daemon(extra=['CustomLog "|exit 3" common'])
    want = [r'CustomLog: piped log program "exit 3" exited with status 3; restarting it in 1 s',
            r'CustomLog: piped log program "exit 3" exited with status 3; restarting it in 2 s',
            r'CustomLog: piped log program "exit 3" exited with status 3; restarting it in 4 s']
    assert ghtest.poll(lambda: all(w in d.stderr_text() for w in want), timeout=12), \
        d.stderr_tail()
    assert d.stderr_text().count('CustomLog: piped log program "exit 3" restarted') >= 2
    # requests are served all the while, and their lines are counted as dropped
    assert ghtest.get(d.port, "http://origin.test:%d/size/3" % ctx.origin_port).status == 200
    t = d.stderr_text()
    assert t.index(want[0]) < t.index(want[1]) < t.index(want[2])
