"""
test_ipv6.py - IPv6 on both sides: a Listen on [::1], origins reached over IPv6 by name
(origin6.test, AAAA only) and by literal ([::1]), a dual-stack name, and fallback to the next
address of a name when the first refuses. Skipped, with the reason, when ::1 is unavailable.
"""

import json

import pytest

import ghtest
from origin import Origin, body_bytes

pytestmark = pytest.mark.skipif(not ghtest.ipv6_loopback_ok(),
                                reason="IPv6 loopback ::1 is not available on this machine")


def test_listen_on_ipv6_loopback(proxy, ctx):
    assert proxy.port6, "the shared daemon has no [::1] listener"
    with ghtest.Conn("::1", proxy.port6) as c:
        c.send(ghtest.build("http://origin.test:%d/size/100" % ctx.origin_port, close=True))
        r = c.read_response()
    assert r.status == 200 and r.body == body_bytes(100)


def test_ipv6_client_is_allowed_by_require_ip_v6(proxy, ctx):
    with ghtest.Conn("::1", proxy.port6) as c:
        c.send(ghtest.build("http://origin.test:%d/echo" % ctx.origin_port, close=True))
        r = c.read_response()
    assert r.status == 200


def test_origin_by_aaaa_only_name(proxy, ctx):
    r = ghtest.get(proxy.port, "http://origin6.test:%d/echo" % ctx.origin_port)
    assert r.status == 200, r
    assert json.loads(r.body)["peer"] == "::1"


def test_origin_by_ipv6_literal(proxy, ctx):
    r = ghtest.get(proxy.port, "http://[::1]:%d/echo" % ctx.origin_port)
    assert r.status == 200, r
    doc = json.loads(r.body)
    assert doc["peer"] == "::1"
    hosts = [v for k, v in doc["headers"] if k.lower() == "host"]
    assert hosts == ["[::1]:%d" % ctx.origin_port]


def test_dual_stack_name(proxy, ctx):
    r = ghtest.get(proxy.port, "http://dual.test:%d/echo" % ctx.origin_port)
    assert r.status == 200, r
    assert json.loads(r.body)["peer"] in ("127.0.0.1", "::1")


def test_falls_back_to_ipv6_when_ipv4_refuses(proxy, ctx):
    # fallback.test has 127.0.0.1 and ::1; this origin listens on ::1 only, so 127.0.0.1 refuses.
    o6 = Origin(v6_only=True).start()
    try:
        if ghtest.can_connect("127.0.0.1", o6.port):
            pytest.skip("127.0.0.1:%d is in use by someone else" % o6.port)
        r = ghtest.get(proxy.port, "http://fallback.test:%d/echo" % o6.port)
        assert r.status == 200, r
        assert json.loads(r.body)["peer"] == "::1"
    finally:
        o6.stop()


def test_ipv6_client_logged_with_its_address(proxy, ctx):
    import uuid
    tok = uuid.uuid4().hex
    with ghtest.Conn("::1", proxy.port6) as c:
        c.send(ghtest.build("http://origin.test:%d/size/1?v6log=%s" % (ctx.origin_port, tok),
                            close=True))
        assert c.read_response().status == 200
    lines = ghtest.poll_lines(proxy.access_log, lambda ln: tok in ln)
    assert len(lines) == 1
    m = ghtest.SQUID_RE.match(lines[0])
    assert m and m.group(3) == "::1", lines
