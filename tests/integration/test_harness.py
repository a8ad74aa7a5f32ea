"""
test_harness.py - self-tests of the environment the daemon tests rely on, run without the daemon:
dnsmasq answers the test names, the origin serves each route with the framing the daemon tests
assume, the echo server half-closes, and the refused port refuses. If these fail, daemon test
failures mean nothing.
"""

import hashlib
import json
import socket

import pytest

import ghtest
from origin import body_bytes, body_sha256


def test_dns_answers_test_names_and_nxdomain_for_unknown(ctx):
    assert ctx.dns.query("origin.test", 1) == (0, 1)
    assert ctx.dns.query("origin6.test", 28) == (0, 1)
    assert ctx.dns.query("dual.test", 1) == (0, 1)
    assert ctx.dns.query("dual.test", 28) == (0, 1)
    assert ctx.dns.query("nosuch.test", 1)[0] == 3  # NXDOMAIN
    assert ctx.dns.query("nosuch.test", 28)[0] == 3
    assert ctx.dns.query("3.0.0.127.in-addr.arpa", 12) == (0, 1)  # PTR, for Require host
    assert ctx.dns.query("4.0.0.127.in-addr.arpa", 12) == (0, 1)
    assert ctx.dns.query("liar.test", 1) == (0, 1)


def _direct(ctx, raw, method="GET"):
    r, c = ghtest.request(ctx.origin_port, raw, method)
    c.close()
    return r


def test_origin_size_route_is_deterministic(ctx):
    r = _direct(ctx, ghtest.build("/size/100000", [("Host", "x")], close=True))
    assert r.status == 200 and r.header("Content-Length") == "100000"
    assert r.body == body_bytes(100000)
    assert hashlib.sha256(r.body).hexdigest() == body_sha256(100000)
    assert body_bytes(10, 5) == body_bytes(15)[5:]


def test_origin_chunked_and_close_routes(ctx):
    r = _direct(ctx, ghtest.build("/chunked/70000", [("Host", "x")], close=True))
    assert r.chunked and r.body == body_bytes(70000)
    r = _direct(ctx, ghtest.build("/close/5000", [("Host", "x")]))
    assert r.version == "HTTP/1.0" and r.header("Content-Length") is None
    assert r.body == body_bytes(5000)


def test_origin_echo_records_chunked_body_and_connection(ctx):
    tok = "harness-echo"
    raw = ghtest.build("/echo?t=" + tok, [("Host", "x"), ("Transfer-Encoding", "chunked"),
                                           ("X-A", "1")])
    raw += ghtest.chunk_encode(b"hello world" * 100)
    with ghtest.Conn("127.0.0.1", ctx.origin_port) as c:
        c.send(raw)
        r = c.read_response()
        c.send(ghtest.build("/echo?t=" + tok, [("Host", "x")], close=True))
        r2 = c.read_response()
    doc = json.loads(r.body)
    assert doc["chunked"] and doc["body"] == "hello world" * 100
    assert ["X-A", "1"] in doc["headers"]
    assert json.loads(r2.body)["conn"] == doc["conn"]
    assert len(ctx.origin.requests_with(tok)) == 2


def test_origin_expect_continue_and_head(ctx):
    with ghtest.Conn("127.0.0.1", ctx.origin_port) as c:
        c.send(ghtest.build("/echo", [("Host", "x"), ("Expect", "100-continue"),
                                      ("Content-Length", "3")]))
        assert c.read_until(b"\r\n\r\n").startswith(b"HTTP/1.1 100")
        c.send(b"abc")
        r = c.read_response()
        assert json.loads(r.body)["body"] == "abc"
        c.send(ghtest.build("/head", [("Host", "x")], method="HEAD"))
        r = c.read_response("HEAD")
        assert r.header("Content-Length") == "1234" and r.body == b""
        c.send(ghtest.build("/status/204", [("Host", "x")], close=True))
        assert c.read_response().status == 204


def test_echo_server_echoes_and_half_closes(ctx):
    with ghtest.Conn("127.0.0.1", ctx.echo_port) as c:
        c.send(b"ping")
        assert c.read_exact(4) == b"ping"
        c.send(b"last")
        c.sock.shutdown(socket.SHUT_WR)
        assert c.read_to_eof() == b"last"


def test_refused_port_refuses(ctx):
    s = socket.socket()
    s.settimeout(2)
    with pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", ctx.refused_port))
    s.close()


def test_origin_listens_on_ipv6_loopback_too(ctx):
    if not ctx.has_v6:
        pytest.skip("::1 is not available on this machine")
    with ghtest.Conn("::1", ctx.origin_port) as c:
        c.send(ghtest.build("/echo", [("Host", "x")], close=True))
        assert json.loads(c.read_response().body)["peer"] == "::1"


def test_origin_stall_holds_the_connection_and_slow_trickles(ctx):
    import time
    with ghtest.Conn("127.0.0.1", ctx.origin_port) as c:
        c.send(ghtest.build("/stall", [("Host", "x")]))
        assert not c.closed_by_peer(1.2)
    t0 = time.monotonic()
    r = _direct(ctx, ghtest.build("/slow?size=3000&chunk=1000&delay=200", [("Host", "x")],
                                  close=True))
    assert r.body == body_bytes(3000)
    assert time.monotonic() - t0 >= 0.5
