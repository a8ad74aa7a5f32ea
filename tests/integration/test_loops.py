"""
test_loops.py - forwarding loops and configurations that would silently lose everything
(issue 10, items 12 and 13).

Loops: every request sent to a parent carries this process's pseudonym in a CDN-Loop field
(RFC 8586), whatever ProxyVia says; a request that arrives with it is answered 508 instead of
being forwarded again. A ProxyRemote naming one of the proxy's own listeners by address or as
localhost is a configuration error. A connect that fails because this process is out of file
descriptors is answered 503 and never marks the parent down.

Truncated configurations: a file with no Listen and no <Proxy> section (an editor's save caught
half-way by SIGHUP) is refused by -t, at start and on reload, naming the file.
"""

import os
import subprocess
import time
import uuid

import pytest

import ghtest
from origin import StubParent


def loop_conf(pctx, parent, via="Off", log=None, extra=()):
    """A policy-daemon config (placeholders filled by the factory) whose parent is `parent`."""
    lines = ["Listen 127.0.0.1:{port}", "DNSServer 127.0.0.1:{dns_port}", "ProxyTimeout 5",
             "Workers 2", "User root", "LogLevel info", "ProxyVia %s" % via,
             "ProxyRemote * %s" % parent]
    if log:
        lines.append("AccessLog %s" % log)
    lines += list(extra)
    lines += ["<Proxy *>", "    Require ip 127.0.0.1 ::1", "</Proxy>"]
    return "\n".join(lines) + "\n"


def access_lines(path, token):
    try:
        with open(path) as f:
            return [ln for ln in f if token in ln]
    except OSError:
        return []


@pytest.mark.parametrize("via", ["Off", "On", "Block"])
def test_parent_that_is_this_proxy_by_name_is_a_508_not_a_loop(start_policy_daemon, pctx, via):
    # parent.test resolves to 127.0.0.1, so the config check cannot see it: the request comes
    # back once, is recognised by its CDN-Loop field and answered 508, which the first pass
    # relays. Before the fix, with ProxyVia Off it looped until descriptors ran out.
    log = os.path.join(pctx.workdir, "loop-%s.log" % uuid.uuid4().hex[:8])
    d = start_policy_daemon(text=loop_conf(pctx, "http://parent.test:{port}", via=via, log=log))
    t = uuid.uuid4().hex
    r = ghtest.get(d.port, "http://www.outside.test:%d/echo?t=%s" % (pctx.origin_port, t),
                   timeout=20)
    assert r.status == 508, r
    assert "forwarding loop" in r.text(), r.text()
    assert ghtest.poll(lambda: len(access_lines(log, t)) >= 2, timeout=5), access_lines(log, t)
    time.sleep(0.3)
    assert len(access_lines(log, t)) == 2, access_lines(log, t)  # two passes, not hundreds
    # The loop is not the parent's fault: the next request is tried the same way (no
    # "marked down"), and the daemon is still healthy.
    assert "marked down" not in d.stderr_text()
    r = ghtest.get(d.port, "http://www.outside.test:%d/echo?t=%s2" % (pctx.origin_port, t),
                   timeout=20)
    assert r.status == 508, r


def test_two_proxies_naming_each_other_as_parents_stop_at_508(start_policy_daemon, pctx,
                                                               gh_bin):
    # A -> B -> A: B forwards A's CDN-Loop member (and adds its own); A recognises its own.
    bport = ghtest.free_port()
    alog = os.path.join(pctx.workdir, "loopa-%s.log" % uuid.uuid4().hex[:8])
    a = start_policy_daemon(text=loop_conf(pctx, "http://127.0.0.1:%d" % bport, log=alog))
    btext = loop_conf(pctx, "http://127.0.0.1:%d" % a.port).format(port=bport,
                                                                   dns_port=pctx.dns_port)
    b = ghtest.Daemon(gh_bin, pctx.workdir, "loopb-%s" % uuid.uuid4().hex[:6], btext,
                      [("127.0.0.1", bport)])
    try:
        b.start()
        t = uuid.uuid4().hex
        r = ghtest.get(a.port, "http://www.outside.test:%d/echo?t=%s" % (pctx.origin_port, t),
                       timeout=20)
        assert r.status == 508, r
        assert ghtest.poll(lambda: len(access_lines(alog, t)) >= 2, timeout=5)
        time.sleep(0.3)
        assert len(access_lines(alog, t)) == 2, access_lines(alog, t)
        assert b.alive() and a.alive()
    finally:
        b.stop()
        rep = b.sanitizer_report()
        assert rep is None, rep


def test_a_cdn_loop_field_from_other_proxies_is_forwarded_not_refused(start_policy_daemon, pctx):
    # Only our own pseudonym is a loop; another proxy's member, or one that merely starts
    # with ours, passes through to the parent.
    stub = StubParent().start()
    try:
        d = start_policy_daemon(text=loop_conf(pctx, "http://127.0.0.1:%d" % stub.port))
        t = uuid.uuid4().hex
        r = ghtest.get(d.port, "http://www.outside.test:%d/echo?t=%s" % (pctx.origin_port, t),
                       headers=[("CDN-Loop", "othercdn, gatehouse-0; x=1")])
        assert r.status == 200, r
        heads = stub.requests_with(t)
        assert len(heads) == 1, stub.heads
        loops = [v for k, v in heads[0]["headers"] if k.lower() == "cdn-loop"]
        assert "othercdn, gatehouse-0; x=1" in loops, loops
        ours = [v for v in loops if v.startswith("gatehouse-") and len(v) == 26]
        assert len(ours) == 1, loops
    finally:
        stub.stop()


@pytest.mark.parametrize("parent", ["http://127.0.0.1:{port}", "http://localhost:{port}",
                                    "http://[::1]:{port}"])
def test_parent_that_is_our_own_listener_is_a_config_error(gh_bin, pctx, tmp_path, parent):
    port = ghtest.free_port()
    text = loop_conf(pctx, parent).format(port=port, dns_port=pctx.dns_port)
    if "::1" in parent:
        text = text.replace("Listen 127.0.0.1:%d" % port,
                            "Listen 127.0.0.1:%d\nListen [::]:%d" % (port, port))
    conf = tmp_path / "self.conf"
    conf.write_text(text)
    line = text.splitlines().index([ln for ln in text.splitlines()
                                    if ln.startswith("ProxyRemote")][0]) + 1
    p = subprocess.run([gh_bin, "-t", "-f", str(conf)], capture_output=True, text=True,
                       timeout=30, env=ghtest.clean_env())
    assert p.returncode != 0, p
    err = p.stderr + p.stdout
    assert "%s:%d:" % (conf, line) in err, err
    assert "own listener" in err and "loop" in err, err


def test_parent_on_another_port_of_this_host_is_fine(gh_bin, pctx, tmp_path):
    port = ghtest.free_port()
    text = loop_conf(pctx, "http://127.0.0.1:%d" % (port + 1 if port < 65535 else port - 1))
    conf = tmp_path / "ok.conf"
    conf.write_text(text.format(port=port, dns_port=pctx.dns_port))
    p = subprocess.run([gh_bin, "-t", "-f", str(conf)], capture_output=True, text=True,
                       timeout=30, env=ghtest.clean_env())
    assert p.returncode == 0, p
    assert "Syntax OK" in p.stdout + p.stderr


# ---------------------------------------------------------------- empty and truncated files

@pytest.mark.parametrize("content", ["", "\n\n# nothing but comments\n", "ProxyTimeout 5\nWork"
                                                                           "ers 2\n"])
def test_t_refuses_an_empty_or_truncated_file(gh_bin, tmp_path, content):
    conf = tmp_path / "empty.conf"
    conf.write_text(content)
    p = subprocess.run([gh_bin, "-t", "-f", str(conf)], capture_output=True, text=True,
                       timeout=30, env=ghtest.clean_env())
    err = p.stdout + p.stderr
    assert p.returncode != 0, err
    assert "Syntax OK" not in err
    assert str(conf) in err and "no Listen and no <Proxy> section" in err, err


def test_a_file_with_only_listen_or_only_a_proxy_section_is_accepted(gh_bin, tmp_path):
    for name, text in (("l.conf", "User root\nListen 127.0.0.1:3999\n"),
                       ("p.conf", "User root\n<Proxy *>\n    Require ip 127.0.0.1\n</Proxy>\n")):
        conf = tmp_path / name
        conf.write_text(text)
        p = subprocess.run([gh_bin, "-t", "-f", str(conf)], capture_output=True, text=True,
                           timeout=30, env=ghtest.clean_env())
        assert p.returncode == 0, p
        assert "Syntax OK" in p.stdout + p.stderr


def test_reload_of_an_emptied_file_keeps_the_running_configuration(start_daemon, ctx):
    log = os.path.join(ctx.workdir, "trunc-%s.log" % uuid.uuid4().hex[:8])
    d = start_daemon(access_log=log)
    url = "http://origin.test:%d/size/10" % ctx.origin_port
    assert ghtest.get(d.port, url).status == 200
    with open(d.conf, "w") as f:
        f.write("# written by tests/integration\nProxyTimeout 3\n")  # a save caught half-way
    ghtest.sighup_and_wait(d, expect_ok=False)
    assert "no Listen and no <Proxy> section" in d.stderr_text()
    # Still on its own port with its own rules and log (the built-in 127.0.0.1:3128 would
    # have taken over otherwise).
    t = uuid.uuid4().hex
    assert ghtest.get(d.port, url + "?t=" + t).status == 200
    assert ghtest.poll(lambda: access_lines(log, t), timeout=5)
    with open(d.conf, "w") as f:
        f.write(d.text)


def test_start_with_an_empty_file_fails_naming_it(gh_bin, tmp_path):
    conf = tmp_path / "empty.conf"
    conf.write_text("")
    p = subprocess.run([gh_bin, "-f", str(conf)], capture_output=True, text=True, timeout=30,
                       env=ghtest.clean_env())
    assert p.returncode != 0
    assert "no Listen and no <Proxy> section" in p.stderr, p.stderr


# ---------------------------------------------------------------- local descriptors

def test_out_of_descriptors_is_a_503_and_never_marks_the_parent_down(start_policy_daemon, pctx):
    # MaxConnections is sized from the file limit at start, so that descriptors do not run
    # out; lowering the running daemon's limit (prlimit) makes them run out anyway. Keep-alive
    # clients take every free one; a request that needs a parent connection then cannot get a
    # socket. That is this proxy's shortage: a 503 naming it, and the parent stays up for the
    # next request once descriptors are free again.
    stub = StubParent().start()
    hogs = []
    try:
        text = loop_conf(pctx, "http://127.0.0.1:%d" % stub.port,
                         extra=["KeepAliveTimeout 120", "Timeout 120", "Workers 1",
                                "MaxKeepAliveRequests 0"]).replace("Workers 2\n", "")
        d = start_policy_daemon(text=text)
        c = ghtest.Conn("127.0.0.1", d.port, timeout=10)
        c.send("GET /no-such-page HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert c.read_response().status == 404  # accepted; no parent connection pooled
        nfd = len(os.listdir("/proc/%d/fd" % d.pid))
        subprocess.run(["prlimit", "--pid", str(d.pid), "--nofile=%d:%d" % (nfd + 3, nfd + 3)],
                       check=True, timeout=10)
        # Fill the table: each hog is accepted and answered (a local 404), then held open.
        for i in range(40):
            h = ghtest.Conn("127.0.0.1", d.port, timeout=1.5)
            hogs.append(h)
            try:
                h.send("GET /no-such-page-%d HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % i)
                h.read_response()
            except (OSError, ghtest.Closed):
                break
        else:
            pytest.fail("40 connections were all served with %d descriptors" % (nfd + 3))
        c.send("CONNECT www.outside.test:443 HTTP/1.1\r\nHost: www.outside.test:443\r\n\r\n")
        r = c.read_response("CONNECT")
        assert r.status == 503, r
        assert "file descriptors" in r.text(), r.text()
        assert "marked down" not in d.stderr_text(), d.stderr_tail()
        for h in hogs:
            h.close()
        hogs = []
        t = uuid.uuid4().hex
        url = "http://www.outside.test:%d/echo?t=%s" % (pctx.origin_port, t)
        r = ghtest.get(d.port, url, timeout=10)
        assert r.status == 200 and r.body == stub.body, r
    finally:
        for h in hogs:
            h.close()
        stub.stop()
