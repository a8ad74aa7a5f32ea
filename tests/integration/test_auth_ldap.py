"""
test_auth_ldap.py - proxy authentication against a real LDAP directory (issue 14): Gatehouse
with AuthBasicProvider external runs Squid's own basic_ldap_auth (Debian's squid package) as
a pool of helper processes (daemon/helper.c), and the helper asks a throwaway slapd seeded by
the test (ldapfix.py). Real client: curl --proxy-user.

- the right password: 200, the user in the access log; a wrong password and an unknown user:
  407 (basic_ldap_auth answers those "BH Success", which Squid also reads as failed
  credentials); a password with blanks, '&' and '%' arrives whole (%-encoded on the helper's
  line, decoded by the helper);
- the result cache: the same credentials again on new connections do not reach the
  directory (slapd's BIND count stays), and no password is in the daemon's log;
- the helper killed (SIGKILL on the daemon's child) mid-run: a new one is started and the
  next request that needs it works;
- the helper killed while it holds the request (stopped first, the request line seen in its
  stdin pipe, then SIGKILL): that request gets 503 at once (not after the 60 s timeout), the
  next one works;
- the helper hung (SIGSTOP): the request gets 503 naming the helper (never a stalled
  connection) about AuthExternalTimeout later, the hung child is replaced (killed even
  stopped), and the next request works; the stopped process is continued at cleanup.
"""

import os
import signal
import subprocess
import time

import pytest

import ghtest
import ldapfix

HELPER = "/usr/lib/squid/basic_ldap_auth"

pytestmark = pytest.mark.skipif(not (ldapfix.available() and os.access(HELPER, os.X_OK)),
                                reason="slapd, ldap-utils or squid's basic_ldap_auth missing "
                                       "(scripts/test-deps.sh installs them)")


@pytest.fixture(scope="module")
def slapd(workdir):
    s = ldapfix.Slapd(workdir).start()
    yield s
    s.cleanup()


def ldap_section(slapd, timeout=5, children=2, extra=""):
    cmd = "%s -b %s -f uid=%%s -h 127.0.0.1 -p %d -v 3" % (HELPER, ldapfix.SUFFIX, slapd.port)
    return ("<Proxy *>\n    AuthType Basic\n    AuthName \"Office LDAP\"\n"
            "    AuthBasicProvider external\n    AuthExternal \"%s\"\n"
            "    AuthExternalChildren %d\n    AuthExternalTimeout %d\n%s"
            "    <RequireAll>\n        Require ip 127.0.0.1 ::1\n        Require valid-user\n"
            "    </RequireAll>\n</Proxy>" % (cmd, children, timeout, extra))


def curl(port, url, *args, timeout=60):
    """(status, head and body text, seconds taken)."""
    t0 = time.monotonic()
    p = subprocess.run(["curl", "-sS", "-D", "-", "-w", "\n%{http_code}",
                        "--proxy", "http://127.0.0.1:%d" % port, "--max-time", "30",
                        "--noproxy", ""] + list(args) + [url],
                       capture_output=True, timeout=timeout, env=ghtest.clean_env())
    out = p.stdout.decode("latin-1")
    return int(out[-3:]), out[:-3], time.monotonic() - t0


def url(ctx, path):
    return "http://origin.test:%d%s" % (ctx.origin_port, path)


def helper_pids(d):
    """The daemon's basic_ldap_auth children."""
    out = []
    for pid in ghtest.children(d.pid):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv0 = f.read().split(b"\0")[0]
        except OSError:
            continue
        if argv0 == HELPER.encode():
            out.append(pid)
    return sorted(out)


def state_of(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
        return st[st.rindex(")") + 2]
    except (OSError, ValueError):
        return None


def test_ldap_passwords_decide_and_the_user_is_logged(start_daemon, ctx, slapd, tmp_path):
    log = str(tmp_path / "access.log")
    d = start_daemon(workers=1, access_log=log, proxy_section=ldap_section(slapd))
    alice = "alice:" + ldapfix.USERS["alice"]
    code, out, _ = curl(d.port, url(ctx, "/size/10"))
    assert code == 407, out
    assert 'Proxy-Authenticate: Basic realm="Office LDAP"' in out, out
    code, out, _ = curl(d.port, url(ctx, "/size/11"), "--proxy-user", alice)
    assert code == 200, out
    # the worker's pool was made for that first request, all its children at once
    assert len(helper_pids(d)) == 2, helper_pids(d)
    code, out, _ = curl(d.port, url(ctx, "/size/12"), "--proxy-user", "alice:wrong")
    assert code == 407, out
    code, out, _ = curl(d.port, url(ctx, "/size/13"), "--proxy-user",
                        "carol:" + ldapfix.USERS["alice"])
    assert code == 407, out
    # blanks, '&' and '%' in a password: the helper's line carries it %-encoded
    code, out, _ = curl(d.port, url(ctx, "/size/14"), "--proxy-user",
                        "bob:" + ldapfix.USERS["bob"])
    assert code == 200, out
    assert slapd.binds("bob") >= 1
    lines = ghtest.poll_lines(log, lambda ln: "/size/1" in ln, count=5)
    by_path = {p: ln for ln in lines for p in ("/size/10", "/size/11", "/size/12", "/size/13",
                                               "/size/14") if p in ln}
    assert " alice " in by_path["/size/11"], lines
    assert " bob " in by_path["/size/14"], lines
    assert "TCP_DENIED/407" in by_path["/size/12"] and " alice " not in by_path["/size/12"]
    err = d.stderr_text()
    for pw in ldapfix.USERS.values():
        assert pw not in err
    assert "Alice-Pw" not in open(log).read()


def test_cached_credentials_do_not_reach_the_directory(start_daemon, ctx, slapd):
    d = start_daemon(proxy_section=ldap_section(slapd, extra="    AuthCacheTTL 300\n"))
    alice = "alice:" + ldapfix.USERS["alice"]
    before = slapd.binds("alice")
    code, out, _ = curl(d.port, url(ctx, "/size/20"), "--proxy-user", alice)
    assert code == 200, out
    first = ghtest.poll(lambda: slapd.binds("alice") > before and slapd.binds("alice"),
                        timeout=10)
    assert first, "the first request did not reach slapd"
    # new connections each (curl runs): the result cache answers, not the directory
    for i in range(4):
        code, out, _ = curl(d.port, url(ctx, "/size/%d" % (21 + i)), "--proxy-user", alice)
        assert code == 200, out
    time.sleep(0.5)  # a BIND would be logged by now (slapd logs as it answers)
    assert slapd.binds("alice") == first
    # a different password for the same user is a different credential: it is checked
    code, out, _ = curl(d.port, url(ctx, "/size/30"), "--proxy-user", "alice:not-it")
    assert code == 407, out
    assert ghtest.poll(lambda: slapd.binds("alice") > first, timeout=10)


def alice_through_one_helper(d, ctx, path):
    """alice is served through the pool's one child; returns that child's pid."""
    code, out, _ = curl(d.port, url(ctx, path), "--proxy-user", "alice:" + ldapfix.USERS["alice"])
    assert code == 200, out
    assert len(helper_pids(d)) == 1, helper_pids(d)
    return helper_pids(d)[0]


def test_killed_helper_is_restarted_and_the_next_request_works(start_daemon, ctx, slapd):
    d = start_daemon(workers=1, proxy_section=ldap_section(slapd, children=1))
    old = alice_through_one_helper(d, ctx, "/size/40")
    os.kill(old, signal.SIGKILL)
    new = ghtest.poll(lambda: [p for p in helper_pids(d) if p != old], timeout=15)
    assert new, "no new basic_ldap_auth after the old one was killed: %s" % d.stderr_tail()
    # reaped: no zombie left behind
    assert ghtest.poll(lambda: state_of(old) is None, timeout=10), state_of(old)
    # bob was never asked for: this request needs the new helper
    before = slapd.binds("bob")
    code, out, _ = curl(d.port, url(ctx, "/size/41"), "--proxy-user",
                        "bob:" + ldapfix.USERS["bob"])
    assert code == 200, out
    assert slapd.binds("bob") > before
    assert "basic_ldap_auth: child 0 (pid %d)" % old in d.stderr_text()


def test_hung_helper_gives_503_and_is_replaced(start_daemon, ctx, slapd):
    timeout = 2
    d = start_daemon(workers=1, proxy_section=ldap_section(slapd, timeout=timeout, children=1))
    old = alice_through_one_helper(d, ctx, "/size/49")
    os.kill(old, signal.SIGSTOP)
    try:
        code, out, took = curl(d.port, url(ctx, "/size/50"), "--proxy-user",
                               "bob:" + ldapfix.USERS["bob"])
        # an answer, not a stall: curl's own limit is 30 s, the helper's timeout 2 s
        assert code == 503, out
        assert "basic_ldap_auth" in out and "timed out" in out, out
        assert took < 25, took
        # the hung child was killed (a stopped process dies of SIGKILL too) and replaced
        assert ghtest.poll(lambda: state_of(old) is None, timeout=15), state_of(old)
        assert ghtest.poll(lambda: [p for p in helper_pids(d) if p != old], timeout=15)
        code, out, _ = curl(d.port, url(ctx, "/size/51"), "--proxy-user",
                            "bob:" + ldapfix.USERS["bob"])
        assert code == 200, out
        err = d.stderr_text()
        assert "did not answer within %d ms" % (timeout * 1000) in err, err[-3000:]
    finally:
        try:
            os.kill(old, signal.SIGCONT)
        except OSError:
            pass


def pipe_unread(pid):
    """Bytes written to pid's stdin (a pipe) and not read yet."""
    import fcntl
    import termios
    import array
    try:
        fd = os.open("/proc/%d/fd/0" % pid, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return 0
    try:
        buf = array.array("i", [0])
        fcntl.ioctl(fd, termios.FIONREAD, buf, True)
        return buf[0]
    finally:
        os.close(fd)


def test_helper_dying_with_the_request_in_flight_gives_503(start_daemon, ctx, slapd):
    # a long timeout: the request fails because its helper died, not because it timed out
    d = start_daemon(workers=1, proxy_section=ldap_section(slapd, timeout=60, children=1))
    code, out, _ = curl(d.port, url(ctx, "/size/60"), "--proxy-user",
                        "alice:" + ldapfix.USERS["alice"])
    assert code == 200, out
    old = helper_pids(d)[0]
    os.kill(old, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        c = subprocess.Popen(["curl", "-sS", "-D", "-", "-o", "/dev/null", "-w", "\n%{http_code}",
                              "--proxy", "http://127.0.0.1:%d" % d.port, "--max-time", "40",
                              "--noproxy", "", "--proxy-user", "bob:" + ldapfix.USERS["bob"],
                              url(ctx, "/size/61")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=ghtest.clean_env())
        # the request line sits in the stopped helper's stdin: it is in flight
        assert ghtest.poll(lambda: pipe_unread(old) > 0, timeout=15), "nothing sent to the helper"
        os.kill(old, signal.SIGKILL)
        out, err = c.communicate(timeout=60)
        took = time.monotonic() - t0
        text = out.decode("latin-1")
        assert text.endswith("503"), (text, err)
        assert took < 40, took
    finally:
        try:
            os.kill(old, signal.SIGCONT)
        except OSError:
            pass
    assert ghtest.poll(lambda: [p for p in helper_pids(d) if p != old], timeout=15)
    code, out, _ = curl(d.port, url(ctx, "/size/62"), "--proxy-user",
                        "bob:" + ldapfix.USERS["bob"])
    assert code == 200, out
    assert "was killed by signal 9" in d.stderr_text() or "sent SIGKILL" in d.stderr_text()
