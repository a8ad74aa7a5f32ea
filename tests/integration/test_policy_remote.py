"""
test_policy_remote.py - ProxyRemote / ProxyRemoteMatch chaining (issue 3, policy/pol.h):
absolute-form requests to the parent, Proxy-Authorization from the remote URL's userinfo or the
third argument, CONNECT through the parent, two real daemons as child and parent, the ordered
failover list with health kept across requests (a dead parent is skipped during its backoff and
used again afterwards), the 502 naming every parent when all are down, ProxyRemoteFallback
direct, NoProxy (domains, the bare domain, subnets, host names), scheme / URL-prefix / regex
matches, and the access log's FIRSTUP_PARENT/HIER_DIRECT hierarchy field.

A StubParent (origin.py) stands in for the parent where the test must see exactly what the child
sends (request line, credentials, connection counts); a second gatehouse is the parent where
the whole chain to the origin matters.
"""

import base64
import json
import os
import socket
import time
import uuid

import pytest

import ghtest
from origin import StubParent, body_bytes


def basic(userpass):
    return "Basic " + base64.b64encode(userpass.encode()).decode()


def hdr(head, name):
    return [v for k, v in head["headers"] if k.lower() == name.lower()]


def url_for(pctx, host, path):
    return "http://%s:%d%s" % (host, pctx.origin_port, path)


def tok():
    return uuid.uuid4().hex


def new_log(pctx, what):
    return os.path.join(pctx.workdir, "%s-%s.log" % (what, uuid.uuid4().hex[:8]))


def log_fields(path, token, count=1, timeout=5.0):
    """The parsed Squid-format access-log lines mentioning token (waits for count of them)."""
    lines = ghtest.poll_lines(path, lambda ln: token in ln, count=count, timeout=timeout)
    parsed = [ghtest.SQUID_RE.match(ln) for ln in lines]
    assert all(parsed), lines
    return [m.groups() for m in parsed]


def hierarchy(path, token):
    f = log_fields(path, token)
    assert len(f) == 1, f
    return "%s/%s" % (f[0][9], f[0][10])


def connect(port, authority):
    c = ghtest.Conn("127.0.0.1", port)
    c.send("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (authority, authority))
    return c, c.read_response("CONNECT")


def dead_port():
    return ghtest.refused_port()


@pytest.fixture
def stub():
    s = StubParent().start()
    yield s
    s.stop()


# ---------------------------------------------------------------- what the parent receives

def test_request_reaches_the_parent_in_absolute_form(start_policy_daemon, pctx, stub):
    log = new_log(pctx, "remote")
    d = start_policy_daemon(access_log=log,
                            extra=["ProxyRemote * http://127.0.0.1:%d" % stub.port])
    t = tok()
    u = url_for(pctx, "www.outside.test", "/echo?t=" + t)
    r = ghtest.get(d.port, u)
    assert r.status == 200 and r.body == stub.body, r
    heads = stub.requests_with(t)
    assert len(heads) == 1, stub.heads
    assert heads[0]["line"] == "GET %s HTTP/1.1" % u, heads[0]
    assert hdr(heads[0], "Host") == ["www.outside.test:%d" % pctx.origin_port], heads[0]
    assert hdr(heads[0], "Proxy-Authorization") == [], heads[0]
    assert pctx.origin.requests_with(t) == []
    assert hierarchy(log, t) == "FIRSTUP_PARENT/127.0.0.1"


def test_targets_sent_to_a_parent_need_not_resolve_at_the_child(start_policy_daemon, pctx, stub):
    # Behind a firewall only the parent can resolve outside names: with no address rule in
    # the policy, an NXDOMAIN name at the child still goes to the parent.
    d = start_policy_daemon(extra=["ProxyRemote * http://127.0.0.1:%d" % stub.port])
    t = tok()
    u = "http://only-the-parent-knows.test/page?t=" + t
    r = ghtest.get(d.port, u)
    assert r.status == 200 and r.body == stub.body, r
    assert [h["line"] for h in stub.requests_with(t)] == ["GET %s HTTP/1.1" % u]


def test_post_body_reaches_the_parent(start_policy_daemon, pctx, stub):
    d = start_policy_daemon(extra=["ProxyRemote * http://127.0.0.1:%d" % stub.port])
    t = tok()
    u = url_for(pctx, "www.outside.test", "/echo?t=" + t)
    r = ghtest.get(d.port, u, method="POST", body=b"x" * 1000)
    assert r.status == 200, r
    heads = stub.requests_with(t)
    assert len(heads) == 1 and heads[0]["line"].startswith("POST http://"), stub.heads
    assert hdr(heads[0], "Content-Length") == ["1000"], heads[0]


@pytest.mark.parametrize("remote,userpass", [
    ("http://alice:s3cret@127.0.0.1:{port}", "alice:s3cret"),
    ("http://127.0.0.1:{port} bob:pa55word", "bob:pa55word"),
    ("http://al%40ice:p%3Ass@127.0.0.1:{port}/", "al@ice:p:ss"),
], ids=["userinfo", "third-argument", "percent-encoded-userinfo"])
def test_credentials_arrive_at_the_parent_as_basic_proxy_authorization(start_policy_daemon, pctx,
                                                                       stub, remote, userpass):
    d = start_policy_daemon(extra=["ProxyRemote * " + remote.format(port=stub.port)],
                            allow_connect="443 %d" % pctx.echo_port)
    t = tok()
    r = ghtest.get(d.port, url_for(pctx, "www.outside.test", "/echo?t=" + t))
    assert r.status == 200, r
    heads = stub.requests_with(t)
    assert len(heads) == 1, stub.heads
    assert hdr(heads[0], "Proxy-Authorization") == [basic(userpass)], heads[0]
    # and on a CONNECT through the same parent
    c, r = connect(d.port, "www.outside.test:443")
    c.close()
    assert r.status == 200, r
    cs = [h for h in stub.heads if h["method"] == "CONNECT"]
    assert len(cs) == 1, stub.heads
    assert hdr(cs[0], "Proxy-Authorization") == [basic(userpass)], cs[0]


def test_client_proxy_authorization_is_not_passed_to_the_parent(start_policy_daemon, pctx, stub):
    # The client's credentials were for this proxy; the parent gets the configured ones.
    d = start_policy_daemon(extra=["ProxyRemote * http://127.0.0.1:%d carol:pw" % stub.port])
    t = tok()
    r = ghtest.get(d.port, url_for(pctx, "www.outside.test", "/echo?t=" + t),
                   headers=[("Proxy-Authorization", basic("client:secret"))])
    assert r.status == 200, r
    heads = stub.requests_with(t)
    assert hdr(heads[0], "Proxy-Authorization") == [basic("carol:pw")], heads[0]


def test_connect_goes_through_the_parent_with_connect(start_policy_daemon, pctx, stub):
    log = new_log(pctx, "rconnect")
    d = start_policy_daemon(access_log=log,
                            extra=["ProxyRemote * http://127.0.0.1:%d" % stub.port],
                            allow_connect="443 %d" % pctx.echo_port)
    authority = "tunnel-%s.outside.test:443" % tok()[:8]
    c, r = connect(d.port, authority)
    with c:
        assert r.status == 200, r
        msg = os.urandom(5000)
        c.send(msg)
        assert c.read_exact(len(msg)) == msg
    cs = [h for h in stub.heads if h["method"] == "CONNECT"]
    assert [h["line"] for h in cs] == ["CONNECT %s HTTP/1.1" % authority], stub.heads
    assert stub.tunnels[0]["received"] == msg
    f = log_fields(log, authority)
    assert len(f) == 1 and f[0][3] == "TCP_TUNNEL", f
    assert (f[0][9], f[0][10]) == ("FIRSTUP_PARENT", "127.0.0.1"), f


def test_parent_error_status_is_passed_to_the_client(start_policy_daemon, pctx):
    with StubParent(status=403, body=b"parent says no\n").start() as s:
        d = start_policy_daemon(extra=["ProxyRemote * http://127.0.0.1:%d" % s.port])
        r = ghtest.get(d.port, url_for(pctx, "www.outside.test", "/x"))
        assert r.status == 403 and r.body == b"parent says no\n", r


# ---------------------------------------------------------------- two real daemons

def test_chain_child_to_parent_gatehouse_to_origin(start_policy_daemon, pctx):
    plog, clog = new_log(pctx, "parent"), new_log(pctx, "child")
    parent = start_policy_daemon(name="parent", access_log=plog)
    child = start_policy_daemon(name="child", access_log=clog,
                                extra=["ProxyRemote * http://127.0.0.1:%d" % parent.port])
    t = tok()
    u = url_for(pctx, "www.outside.test", "/size/100000?t=" + t)
    r = ghtest.get(child.port, u)
    assert r.status == 200, r
    assert r.body == body_bytes(100000)
    seen = pctx.origin.requests_with(t)
    assert len(seen) == 1, seen
    assert seen[0]["target"] == "/size/100000?t=" + t  # the parent spoke origin-form
    pf = log_fields(plog, t)
    assert len(pf) == 1, pf
    assert pf[0][7] == u and pf[0][4] == "200", pf
    assert (pf[0][9], pf[0][10]) == ("HIER_DIRECT", "127.0.0.1"), pf
    assert hierarchy(clog, t) == "FIRSTUP_PARENT/127.0.0.1"
    # both hops are in Via (ProxyVia On in both configs)
    t2 = tok()
    r = ghtest.get(child.port, url_for(pctx, "www.outside.test", "/echo?t=" + t2))
    doc = json.loads(r.body)
    via = ",".join(v for k, v in doc["headers"] if k.lower() == "via")
    assert len([x for x in via.split(",") if x.strip()]) >= 2, doc["headers"]


def test_chain_keeps_the_client_connection_alive(start_policy_daemon, pctx):
    parent = start_policy_daemon(name="parent")
    child = start_policy_daemon(name="child",
                                extra=["ProxyRemote * http://127.0.0.1:%d" % parent.port])
    with ghtest.Conn("127.0.0.1", child.port) as c:
        for i, n in enumerate((10, 70000, 3)):
            c.send(ghtest.build(url_for(pctx, "www.outside.test", "/size/%d?k=%d" % (n, i))))
            r = c.read_response()
            assert r.status == 200 and r.body == body_bytes(n), (i, r)


def test_chain_post_body_reaches_the_origin_intact(start_policy_daemon, pctx):
    parent = start_policy_daemon(name="parent")
    child = start_policy_daemon(name="child",
                                extra=["ProxyRemote * http://127.0.0.1:%d" % parent.port])
    body = os.urandom(200000)
    t = tok()
    r = ghtest.get(child.port, url_for(pctx, "www.outside.test", "/echo?t=" + t),
                   method="POST", body=body)
    assert r.status == 200, r
    doc = json.loads(r.body)
    import hashlib
    assert doc["body_len"] == len(body)
    assert doc["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert len(pctx.origin.requests_with(t)) == 1


def test_chain_credentials_stop_at_the_parent(start_policy_daemon, pctx):
    plog = new_log(pctx, "parent")
    parent = start_policy_daemon(name="parent", access_log=plog)
    child = start_policy_daemon(
        name="child", extra=["ProxyRemote * http://dave:hunter2@127.0.0.1:%d" % parent.port])
    t = tok()
    r = ghtest.get(child.port, url_for(pctx, "www.outside.test", "/echo?t=" + t))
    assert r.status == 200, r
    doc = json.loads(r.body)
    assert not [v for k, v in doc["headers"] if k.lower() == "proxy-authorization"], doc
    assert len(log_fields(plog, t)) == 1


def test_chain_connect_through_parent_gatehouse(start_policy_daemon, pctx):
    plog = new_log(pctx, "parent")
    parent = start_policy_daemon(name="parent", access_log=plog,
                                 allow_connect="443 %d" % pctx.echo_port)
    child = start_policy_daemon(name="child", allow_connect="443 %d" % pctx.echo_port,
                                extra=["ProxyRemote * http://127.0.0.1:%d" % parent.port])
    authority = "www.outside.test:%d" % pctx.echo_port
    c, r = connect(child.port, authority)
    with c:
        assert r.status == 200, r
        msg = b"through two proxies " + os.urandom(3000)
        c.send(msg)
        assert c.read_exact(len(msg)) == msg
        c.sock.shutdown(socket.SHUT_WR)
        assert c.read_to_eof(timeout=10) == b""
    f = log_fields(plog, authority)
    assert len(f) == 1 and f[0][3] == "TCP_TUNNEL" and f[0][6] == "CONNECT", f


# ---------------------------------------------------------------- failover and health

@pytest.mark.slow
def test_failover_skips_a_dead_parent_and_uses_it_again_after_the_backoff(start_policy_daemon,
                                                                          pctx):
    log = new_log(pctx, "failover")
    dead = dead_port()
    with StubParent(host="127.0.0.7").start() as second:
        d = start_policy_daemon(access_log=log, extra=[
            "ProxyRemote * http://127.0.0.1:%d" % dead,
            "ProxyRemote * http://127.0.0.7:%d" % second.port])
        t = tok()
        r = ghtest.get(d.port, url_for(pctx, "www.outside.test", "/echo?t=" + t))
        assert r.status == 200 and r.body == second.body, r
        assert len(second.requests_with(t)) == 1
        assert hierarchy(log, t) == "FIRSTUP_PARENT/127.0.0.7"
        marked = time.monotonic()
        # The first parent comes back to life. Within its backoff (5 s from the failure) it is
        # not tried: the requests keep going to the second one.
        ghtest.revive_port(dead)
        with StubParent(port=dead).start() as first:
            for i in range(3):
                t = tok()
                r = ghtest.get(d.port, url_for(pctx, "www.outside.test", "/echo?t=" + t))
                assert r.status == 200 and len(second.requests_with(t)) == 1, (i, r)
            assert time.monotonic() - marked < 4.5, "test too slow to observe the backoff"
            assert first.conn_count() == 0, "the dead parent was retried within its backoff"
            # After the backoff it is the first choice again (bounded wait).
            t_back = [None]

            def back():
                t_back[0] = tok()
                ghtest.get(d.port, url_for(pctx, "www.outside.test", "/echo?t=" + t_back[0]))
                return first.requests_with(t_back[0])
            assert ghtest.poll(back, timeout=20, interval=0.5), \
                "the first parent was not used again within 20 s of coming back"
            assert time.monotonic() - marked >= 4.5
            t = tok()
            r = ghtest.get(d.port, url_for(pctx, "www.outside.test", "/echo?t=" + t))
            assert r.status == 200 and len(first.requests_with(t)) == 1, r
            assert hierarchy(log, t) == "FIRSTUP_PARENT/127.0.0.1"


def test_parent_health_is_kept_across_a_reload(start_policy_daemon, pctx):
    # pol.h: a parent's key (host:port) keeps its health across reloads. A parent marked down
    # just before a SIGHUP is still skipped after it.
    import signal
    dead = dead_port()
    with StubParent().start() as second:
        d = start_policy_daemon(extra=["ProxyRemote * http://127.0.0.1:%d" % dead,
                                       "ProxyRemote * http://127.0.0.1:%d" % second.port])
        t = tok()
        assert ghtest.get(d.port, url_for(pctx, "www.outside.test", "/echo?t=" + t)).status == 200
        assert len(second.requests_with(t)) == 1
        marked = time.monotonic()
        ghtest.revive_port(dead)
        with StubParent(port=dead).start() as first:
            ok0 = d.stderr_text().count("configuration reloaded")
            d.proc.send_signal(signal.SIGHUP)
            assert ghtest.poll(lambda: d.stderr_text().count("configuration reloaded") > ok0,
                               timeout=3), d.stderr_tail()
            t = tok()
            r = ghtest.get(d.port, url_for(pctx, "www.outside.test", "/echo?t=" + t))
            assert time.monotonic() - marked < 4.5, "test too slow to observe the backoff"
            assert r.status == 200 and len(second.requests_with(t)) == 1, r
            assert first.conn_count() == 0, "the reload forgot that the first parent was down"


def blackhole():
    """A loopback port whose SYNs go unanswered: a listener with a full accept queue that never
    accepts. Returns (port, sockets to close)."""
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    port = ls.getsockname()[1]
    keep = [ls]
    for _ in range(4):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        keep.append(s)
    time.sleep(0.2)
    if ghtest.can_connect("127.0.0.1", port, timeout=0.5):
        for k in keep:
            k.close()
        pytest.skip("cannot make a black-hole port here (the accept queue does not fill)")
    return port, keep


@pytest.mark.slow
def test_parent_whose_connect_times_out_is_marked_down_too(start_policy_daemon, pctx, stub):
    # A firewall that drops packets: the connect never completes. The first request waits for
    # the connect timeout (ProxyTimeout 3 s here) and fails over; the next ones skip the parent.
    port, keep = blackhole()
    try:
        d = start_policy_daemon(extra=["ProxyRemote * http://127.0.0.1:%d" % port,
                                       "ProxyRemote * http://127.0.0.1:%d" % stub.port])
        t0 = time.monotonic()
        r = ghtest.get(d.port, url_for(pctx, "www.outside.test", "/echo?first"), timeout=30)
        first = time.monotonic() - t0
        assert r.status == 200 and r.body == stub.body, r
        assert first < 10, "failover took %.1f s" % first
        for i in range(3):
            t0 = time.monotonic()
            r = ghtest.get(d.port, url_for(pctx, "www.outside.test", "/echo?n=%d" % i),
                           timeout=30)
            assert r.status == 200 and r.body == stub.body, r
            assert time.monotonic() - t0 < 1.5, \
                "request %d waited %.1f s: the timed-out parent was tried again" \
                % (i, time.monotonic() - t0)
    finally:
        for k in keep:
            k.close()


def test_parent_that_does_not_resolve_is_skipped(start_policy_daemon, pctx, stub):
    d = start_policy_daemon(extra=["ProxyRemote * http://noparent.test:3128",
                                   "ProxyRemote * http://127.0.0.1:%d" % stub.port])
    t = tok()
    r = ghtest.get(d.port, url_for(pctx, "www.outside.test", "/echo?t=" + t))
    assert r.status == 200 and len(stub.requests_with(t)) == 1, r


def test_connect_fails_over_to_the_next_parent(start_policy_daemon, pctx, stub):
    d = start_policy_daemon(allow_connect="443 %d" % pctx.echo_port,
                            extra=["ProxyRemote * http://127.0.0.1:%d" % dead_port(),
                                   "ProxyRemote * http://127.0.0.1:%d" % stub.port])
    c, r = connect(d.port, "www.outside.test:443")
    with c:
        assert r.status == 200, r
        c.send(b"hello")
        assert c.read_exact(5) == b"hello"
    assert [h["line"] for h in stub.heads if h["method"] == "CONNECT"] == \
        ["CONNECT www.outside.test:443 HTTP/1.1"]


def test_fallback_direct_for_connect(start_policy_daemon, pctx):
    d = start_policy_daemon(allow_connect="443 %d" % pctx.echo_port,
                            extra=["ProxyRemote * http://127.0.0.1:%d" % dead_port(),
                                   "ProxyRemoteFallback direct"])
    c, r = connect(d.port, "www.outside.test:%d" % pctx.echo_port)
    with c:
        assert r.status == 200, r
        c.send(b"straight to the echo server")
        assert c.read_exact(27) == b"straight to the echo server"


def test_parent_closing_without_an_answer_is_a_bounded_5xx(start_policy_daemon, pctx):
    import threading
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    ls.settimeout(0.2)
    stop = threading.Event()

    def rude():
        while not stop.is_set():
            try:
                s, _ = ls.accept()
            except (socket.timeout, OSError):
                continue
            s.close()
    th = threading.Thread(target=rude, daemon=True)
    th.start()
    try:
        d = start_policy_daemon(extra=["ProxyRemote * http://127.0.0.1:%d"
                                       % ls.getsockname()[1]])
        for i in range(2):
            t0 = time.monotonic()
            r = ghtest.get(d.port, url_for(pctx, "www.outside.test", "/x%d" % i), timeout=20)
            assert 500 <= r.status < 600, r
            assert time.monotonic() - t0 < 8
    finally:
        stop.set()
        th.join(timeout=5)
        ls.close()


def test_ipv6_literal_parent(start_policy_daemon, pctx):
    if not pctx.has_v6:
        pytest.skip("no IPv6 loopback (::1) here")
    log = new_log(pctx, "v6parent")
    with StubParent(host="::1").start() as s:
        d = start_policy_daemon(access_log=log,
                                extra=["ProxyRemote * http://[::1]:%d" % s.port])
        t = tok()
        r = ghtest.get(d.port, url_for(pctx, "www.outside.test", "/echo?t=" + t))
        assert r.status == 200 and len(s.requests_with(t)) == 1, r
        h = hierarchy(log, t)
        assert h in ("FIRSTUP_PARENT/::1", "FIRSTUP_PARENT/[::1]"), h


def test_chain_chunked_upload_reaches_the_origin_intact(start_policy_daemon, pctx):
    import hashlib
    parent = start_policy_daemon(name="parent")
    child = start_policy_daemon(name="child",
                                extra=["ProxyRemote * http://127.0.0.1:%d" % parent.port])
    body = os.urandom(150000)
    t = tok()
    raw = ("POST %s HTTP/1.1\r\nHost: www.outside.test:%d\r\nTransfer-Encoding: chunked\r\n"
           "Connection: close\r\n\r\n" % (url_for(pctx, "www.outside.test", "/echo?t=" + t),
                                            pctx.origin_port)).encode() + ghtest.chunk_encode(body)
    r, c = ghtest.request(child.port, raw, method="POST")
    c.close()
    assert r.status == 200, r
    doc = json.loads(r.body)
    assert doc["body_len"] == len(body)
    assert doc["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_live_parents_are_used_in_config_order(start_policy_daemon, pctx):
    with StubParent().start() as a, StubParent().start() as b:
        d = start_policy_daemon(extra=["ProxyRemote * http://127.0.0.1:%d" % a.port,
                                       "ProxyRemote * http://127.0.0.1:%d" % b.port])
        for _ in range(4):
            r = ghtest.get(d.port, url_for(pctx, "www.outside.test", "/echo"))
            assert r.status == 200 and r.header("X-Stub-Parent") == str(a.port), r
        assert b.conn_count() == 0


def test_all_parents_down_is_502_naming_them(start_policy_daemon, pctx):
    log = new_log(pctx, "alldown")
    p1, p2 = dead_port(), dead_port()
    d = start_policy_daemon(access_log=log, extra=["ProxyRemote * http://127.0.0.1:%d" % p1,
                                                   "ProxyRemote * http://127.0.0.1:%d" % p2])
    for i in range(2):  # the second time both are already marked down
        t = tok()
        t0 = time.monotonic()
        r = ghtest.get(d.port, url_for(pctx, "www.outside.test", "/echo?t=" + t))
        assert r.status == 502, (i, r)
        assert ("127.0.0.1:%d" % p1).encode() in r.body, r
        assert ("127.0.0.1:%d" % p2).encode() in r.body, r
        assert time.monotonic() - t0 < 3
        assert pctx.origin.requests_with(t) == [], "went direct without ProxyRemoteFallback"
        f = log_fields(log, t)
        assert len(f) == 1 and f[0][4] == "502", f


def test_all_parents_down_connect_is_502(start_policy_daemon, pctx):
    p1 = dead_port()
    d = start_policy_daemon(extra=["ProxyRemote * http://127.0.0.1:%d" % p1],
                            allow_connect="443 %d" % pctx.echo_port)
    c, r = connect(d.port, "127.0.0.1:%d" % pctx.echo_port)
    c.close()
    assert r.status == 502, r
    assert ("127.0.0.1:%d" % p1).encode() in r.body, r


def test_fallback_direct_goes_direct_when_every_parent_is_down(start_policy_daemon, pctx):
    log = new_log(pctx, "fallback")
    p1, p2 = dead_port(), dead_port()
    d = start_policy_daemon(access_log=log, extra=["ProxyRemote * http://127.0.0.1:%d" % p1,
                                                   "ProxyRemote * http://127.0.0.1:%d" % p2,
                                                   "ProxyRemoteFallback direct"])
    for i in range(2):
        t = tok()
        r = ghtest.get(d.port, url_for(pctx, "www.outside.test", "/echo?t=" + t))
        assert r.status == 200, (i, r)
        assert len(pctx.origin.requests_with(t)) == 1
        assert hierarchy(log, t) == "HIER_DIRECT/127.0.0.1"


def test_fallback_none_is_the_default_and_can_be_explicit(start_policy_daemon, pctx):
    p1 = dead_port()
    d = start_policy_daemon(extra=["ProxyRemote * http://127.0.0.1:%d" % p1,
                                   "ProxyRemoteFallback none"])
    t = tok()
    r = ghtest.get(d.port, url_for(pctx, "www.outside.test", "/echo?t=" + t))
    assert r.status == 502, r
    assert pctx.origin.requests_with(t) == []


def test_named_parent_is_resolved_and_logged_by_name(start_policy_daemon, pctx, stub):
    log = new_log(pctx, "named")
    d = start_policy_daemon(access_log=log,
                            extra=["ProxyRemote * http://parent.test:%d" % stub.port])
    t = tok()
    r = ghtest.get(d.port, url_for(pctx, "www.outside.test", "/echo?t=" + t))
    assert r.status == 200 and len(stub.requests_with(t)) == 1, r
    assert hierarchy(log, t) == "FIRSTUP_PARENT/parent.test"


# ---------------------------------------------------------------- NoProxy and match forms

def test_noproxy_hosts_go_direct_and_others_via_the_parent(start_policy_daemon, pctx, stub):
    log = new_log(pctx, "noproxy")
    d = start_policy_daemon(access_log=log, extra=[
        "ProxyRemote * http://127.0.0.1:%d" % stub.port,
        "NoProxy .intranet.test"])
    # (no Hostname entry here: every test name resolves to 127.0.0.1, and a Hostname entry
    # also matches by address; see test_noproxy_host_name_matches_by_address_too)
    direct = ["www.intranet.test", "host1.intranet.test", "intranet.test",
              "WWW.Intranet.TEST", "www.intranet.test."]
    via_parent = ["www.outside.test", "intranet.corp.test", "www.intranet.test.outside.test",
                  "notintranet.test"]
    for host in direct:
        t = tok()
        r = ghtest.get(d.port, url_for(pctx, host, "/echo?t=" + t))
        assert r.status == 200 and r.body != stub.body, (host, r)
        assert len(pctx.origin.requests_with(t)) == 1, host
        assert stub.requests_with(t) == [], host
        assert hierarchy(log, t) == "HIER_DIRECT/127.0.0.1", host
    for host in via_parent:
        t = tok()
        r = ghtest.get(d.port, url_for(pctx, host, "/echo?t=" + t))
        assert r.status == 200 and r.body == stub.body, (host, r)
        assert pctx.origin.requests_with(t) == [], host
        assert len(stub.requests_with(t)) == 1, host
        assert hierarchy(log, t) == "FIRSTUP_PARENT/127.0.0.1", host


def test_noproxy_subnet_matches_literals_and_resolved_addresses(start_policy_daemon, pctx,
                                                                 stub):
    # 127.0.0.6 is alias.test's address; nobody listens there, so direct is a 502 and the
    # parent (the stub) a 200.
    d = start_policy_daemon(extra=["ProxyRemote * http://127.0.0.1:%d" % stub.port,
                                   "NoProxy 127.0.0.4/30"])
    for host in ("127.0.0.6", "127.0.0.5", "alias.test"):
        r = ghtest.get(d.port, url_for(pctx, host, "/x"))
        assert r.status == 502 and r.body != stub.body, (host, r)
    for host in ("127.0.0.8", "www.outside.test"):
        r = ghtest.get(d.port, url_for(pctx, host, "/x"))
        assert r.status == 200 and r.body == stub.body, (host, r)
    # a subnet holding the origin's address sends every name resolving there direct
    d2 = start_policy_daemon(extra=["ProxyRemote * http://127.0.0.1:%d" % stub.port,
                                    "NoProxy 127.0.0.0/255.0.0.0"])
    for host in ("127.0.0.1", "www.outside.test"):
        t = tok()
        r = ghtest.get(d2.port, url_for(pctx, host, "/echo?t=" + t))
        assert r.status == 200 and len(pctx.origin.requests_with(t)) == 1, (host, r)
        assert stub.requests_with(t) == []


def test_noproxy_applies_to_connect(start_policy_daemon, pctx, stub):
    d = start_policy_daemon(allow_connect="443 %d" % pctx.echo_port, extra=[
        "ProxyRemote * http://127.0.0.1:%d" % stub.port, "NoProxy .intranet.test"])
    n0 = len(pctx.echo.sessions)
    c, r = connect(d.port, "www.intranet.test:%d" % pctx.echo_port)
    with c:
        assert r.status == 200, r
        c.send(b"direct tunnel")
        assert c.read_exact(13) == b"direct tunnel"
    assert not [h for h in stub.heads if h["method"] == "CONNECT"], stub.heads
    assert len(pctx.echo.sessions) > n0


def test_noproxy_host_name_matches_by_address_too(start_policy_daemon, pctx, stub):
    # NoProxy alias.test (-> 127.0.0.6): blocked.test resolves to the same address, so it goes
    # direct as well (a 502: nobody listens there) once the name's addresses are known, while
    # other hosts keep going through the parent.
    d = start_policy_daemon(extra=["ProxyRemote * http://127.0.0.1:%d" % stub.port,
                                   "NoProxy alias.test"])
    r = ghtest.get(d.port, url_for(pctx, "alias.test", "/x"))
    assert r.status == 502, r  # exact name: direct at once
    # not a substring match: x.alias.test (NXDOMAIN here, so it has no address in common with
    # alias.test) goes to the parent, which is the one to resolve it
    t = tok()
    r = ghtest.get(d.port, url_for(pctx, "x.alias.test", "/x?t=" + t))
    assert r.status == 200 and len(stub.requests_with(t)) == 1, r

    def direct():
        return ghtest.get(d.port, url_for(pctx, "blocked.test", "/x")).status == 502
    assert ghtest.poll(direct, timeout=6, interval=0.2), "blocked.test still sent to the parent"
    r = ghtest.get(d.port, url_for(pctx, "www.outside.test", "/x"))
    assert r.status == 200 and r.body == stub.body, r
    t = tok()
    r = ghtest.get(d.port, url_for(pctx, "alias.test.outside.test", "/x?t=" + t))
    assert r.status == 200 and len(stub.requests_with(t)) == 1, r


@pytest.mark.parametrize("match,via,direct", [
    ("http", ["http"], ["connect"]),
    ("https", ["connect"], ["http"]),
    ("http://www.outside.test:{origin}/viaparent/", ["http-prefix"], ["http", "connect"]),
    ("HTTP://WWW.OUTSIDE.TEST:{origin}/viaparent/", ["http-prefix"], ["http"]),
], ids=["scheme-http", "scheme-https", "url-prefix", "url-prefix-authority-any-case"])
def test_proxyremote_match_forms(start_policy_daemon, pctx, stub, match, via, direct):
    d = start_policy_daemon(
        allow_connect="443 %d" % pctx.echo_port,
        extra=["ProxyRemote %s http://127.0.0.1:%d" % (match.format(origin=pctx.origin_port),
                                                       stub.port)])
    check_routes(d, pctx, stub, via, direct)


def check_routes(d, pctx, stub, via, direct):
    urls = {"http": "/echo?t=%s", "http-prefix": "/viaparent/x?t=%s"}
    for kind in via + direct:
        t = tok()
        if kind == "connect":
            n0 = len(pctx.echo.sessions)
            c0 = len([h for h in stub.heads if h["method"] == "CONNECT"])
            c, r = connect(d.port, "www.outside.test:%d" % pctx.echo_port)
            c.close()
            assert r.status == 200, r
            c1 = len([h for h in stub.heads if h["method"] == "CONNECT"])
            if kind in via:
                assert c1 == c0 + 1, ("CONNECT did not go to the parent", stub.heads)
            else:
                assert c1 == c0, ("CONNECT went to the parent", stub.heads)
                assert ghtest.poll(lambda: len(pctx.echo.sessions) > n0, timeout=3)
            continue
        r = ghtest.get(d.port, url_for(pctx, "www.outside.test", urls[kind] % t))
        if kind in via:
            assert r.status == 200 and len(stub.requests_with(t)) == 1, (kind, r)
        else:
            assert stub.requests_with(t) == [], kind
            assert len(pctx.origin.requests_with(t)) == 1, (kind, r)


def test_proxyremote_url_prefix_path_is_case_sensitive(start_policy_daemon, pctx, stub):
    d = start_policy_daemon(extra=["ProxyRemote http://www.outside.test:%d/viaparent/ "
                                   "http://127.0.0.1:%d" % (pctx.origin_port, stub.port)])
    t = tok()
    r = ghtest.get(d.port, url_for(pctx, "www.outside.test", "/VIAPARENT/x?t=" + t))
    assert stub.requests_with(t) == [], r
    assert len(pctx.origin.requests_with(t)) == 1


def test_proxyremotematch_regex_without_case(start_policy_daemon, pctx, stub):
    d = start_policy_daemon(extra=['ProxyRemoteMatch "^http://[a-z]+\\.outside\\.test:[0-9]+/ech" '
                                   "http://127.0.0.1:%d" % stub.port])
    for host, via in (("www.outside.test", True), ("WWW.OUTSIDE.TEST", True),
                      ("www.intranet.test", False), ("notbad.outside.test", True)):
        t = tok()
        r = ghtest.get(d.port, url_for(pctx, host, "/echo?t=" + t))
        assert r.status == 200, (host, r)
        assert len(stub.requests_with(t)) == (1 if via else 0), host
        assert len(pctx.origin.requests_with(t)) == (0 if via else 1), host


def test_several_matching_lines_form_one_failover_list(start_policy_daemon, pctx, stub):
    # The first line matches only /viaparent/ URLs and names a dead parent; the catch-all
    # second line names the live one. Both match a /viaparent/ URL: it fails over.
    dead = dead_port()
    d = start_policy_daemon(extra=[
        "ProxyRemote http://www.outside.test:%d/viaparent/ http://127.0.0.1:%d"
        % (pctx.origin_port, dead),
        "ProxyRemote * http://127.0.0.1:%d" % stub.port])
    t = tok()
    r = ghtest.get(d.port, url_for(pctx, "www.outside.test", "/viaparent/x?t=" + t))
    assert r.status == 200 and len(stub.requests_with(t)) == 1, r


# ---------------------------------------------------------------- mixed traffic, refusals

def test_one_client_connection_mixing_parent_direct_and_blocked(start_policy_daemon, pctx, stub):
    d = start_policy_daemon(extra=["ProxyRemote * http://127.0.0.1:%d" % stub.port,
                                   "NoProxy .intranet.test", "ProxyBlock casino"])
    plan = [("www.intranet.test", "direct"), ("www.outside.test", "parent"),
            ("www.casino-royale.outside.test", "blocked"), ("host1.intranet.test", "direct"),
            ("notbad.outside.test", "parent"), ("www.intranet.test", "direct")]
    with ghtest.Conn("127.0.0.1", d.port) as c:
        for i, (host, how) in enumerate(plan):
            t = tok()
            u = url_for(pctx, host, "/echo?t=" + t)
            c.send(ghtest.build(u))
            r = c.read_response()
            if how == "direct":
                assert r.status == 200 and json.loads(r.body)["target"] == "/echo?t=" + t, (i, r)
                assert stub.requests_with(t) == []
            elif how == "parent":
                assert r.status == 200 and r.body == stub.body, (i, r)
                assert [h["line"] for h in stub.requests_with(t)] == ["GET %s HTTP/1.1" % u]
            else:
                assert r.status == 403 and b"ProxyBlock" in r.body, (i, r)
                assert stub.requests_with(t) == [] and pctx.origin.requests_with(t) == []
            if "close" in (r.header("Connection") or "").lower():
                c.close()
                c = ghtest.Conn("127.0.0.1", d.port)


def test_parent_refusing_a_connect_is_not_a_tunnel(start_policy_daemon, pctx):
    # The parent (a real gatehouse) does not allow the echo port: its 403 must reach the
    # client as a refusal, never as a 200 followed by a dead tunnel.
    parent = start_policy_daemon(name="parent", allow_connect="443")
    child = start_policy_daemon(name="child", allow_connect="443 %d" % pctx.echo_port,
                                extra=["ProxyRemote * http://127.0.0.1:%d" % parent.port])
    n0 = len(pctx.echo.sessions)
    c, r = connect(child.port, "www.outside.test:%d" % pctx.echo_port)
    c.close()
    assert r.status in (403, 502), r
    assert len(pctx.echo.sessions) == n0


def test_all_parents_down_page_names_a_named_parent(start_policy_daemon, pctx):
    d = start_policy_daemon(extra=["ProxyRemote * http://noparent.test:3128",
                                   "ProxyRemote * http://127.0.0.1:%d" % dead_port()])
    r = ghtest.get(d.port, url_for(pctx, "www.outside.test", "/x"))
    assert r.status == 502, r
    assert b"noparent.test:3128" in r.body, r


def test_all_parents_down_page_to_head_has_no_body(start_policy_daemon, pctx):
    d = start_policy_daemon(extra=["ProxyRemote * http://127.0.0.1:%d" % dead_port()])
    with ghtest.Conn("127.0.0.1", d.port) as c:
        c.send(ghtest.build(url_for(pctx, "www.outside.test", "/x"), method="HEAD"))
        r = c.read_response("HEAD")
        assert r.status == 502 and r.body == b"", r
        if "close" in (r.header("Connection") or "").lower():
            return
        # no stray body bytes: the next answer parses
        c.send(ghtest.build(url_for(pctx, "www.outside.test", "/y"), close=True))
        assert c.read_response().status == 502


def test_noproxy_ipv6_entries(start_policy_daemon, pctx, stub):
    # Apache's NoProxy cannot do IPv6. mixed.test -> 127.0.0.1 and ::1.
    d = start_policy_daemon(extra=["ProxyRemote * http://127.0.0.1:%d" % stub.port,
                                   "NoProxy ::1/128"])
    r = ghtest.get(d.port, url_for(pctx, "[::1]", "/echo"))
    assert r.body != stub.body and r.status == (200 if pctx.has_v6 else 502), r
    r = ghtest.get(d.port, url_for(pctx, "mixed.test", "/echo"))
    assert r.status == 200 and r.body != stub.body, r
    r = ghtest.get(d.port, url_for(pctx, "www.outside.test", "/echo"))
    assert r.status == 200 and r.body == stub.body, r


def test_decision_order_acl_domain_block_noproxy_remote(start_policy_daemon, pctx, stub):
    d = start_policy_daemon(extra=["ProxyRemote * http://127.0.0.1:%d" % stub.port,
                                   "NoProxy .intranet.test", "ProxyDomain .intranet.test",
                                   "ProxyBlock secret.intranet.test casino"])
    o = pctx.origin_port
    # ACL first: a denied client gets the ACL's refusal, not ProxyBlock's
    r = ghtest.get(d.port, url_for(pctx, "www.casino-royale.outside.test", "/x"),
                   source="127.0.0.2")
    assert r.status == 403 and b"ProxyBlock" not in r.body, r
    # ProxyDomain before ProxyBlock (the plain name contains the word)
    r = ghtest.get(d.port, "http://casino:%d/x" % o)
    assert r.status == 301 and r.header("Location") == \
        "http://casino.intranet.test:%d/x" % o, r
    # ProxyBlock before NoProxy
    r = ghtest.get(d.port, url_for(pctx, "secret.intranet.test", "/x"))
    assert r.status == 403 and b"ProxyBlock" in r.body, r
    # NoProxy before ProxyRemote
    t = tok()
    r = ghtest.get(d.port, url_for(pctx, "www.intranet.test", "/echo?t=" + t))
    assert r.status == 200 and len(pctx.origin.requests_with(t)) == 1, r
    # ProxyRemote for the rest
    t = tok()
    r = ghtest.get(d.port, url_for(pctx, "www.outside.test", "/echo?t=" + t))
    assert r.status == 200 and len(stub.requests_with(t)) == 1, r
    assert stub.requests_with("secret") == [] and stub.requests_with("/x") == []
