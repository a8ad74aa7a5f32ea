"""
test_connect.py - CONNECT tunnels: bytes both ways to an AllowCONNECT port, half-close in both
directions, 403 naming the port for a port not allowed, and errors for unresolvable or refused
tunnel targets.
"""

import os
import socket

import ghtest


def connect(port, authority, source=None):
    c = ghtest.Conn("127.0.0.1", port, source=source)
    c.send("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (authority, authority))
    return c, c.read_response("CONNECT")


def test_connect_tunnel_carries_bytes_both_ways(proxy, ctx):
    c, r = connect(proxy.port, "origin.test:%d" % ctx.echo_port)
    with c:
        assert r.status == 200, r
        for i in range(5):
            msg = b"hello %d " % i + os.urandom(1000)
            c.send(msg)
            assert c.read_exact(len(msg)) == msg
        big = os.urandom(2 * 1024 * 1024)
        c.send(big)
        assert c.read_exact(len(big), timeout=20) == big


def test_connect_client_half_close_still_gets_echo_and_eof(proxy, ctx):
    c, r = connect(proxy.port, "127.0.0.1:%d" % ctx.echo_port)
    with c:
        assert r.status == 200, r
        c.send(b"before-eof")
        c.sock.shutdown(socket.SHUT_WR)
        # The echo server answers only after it saw our FIN through the tunnel, then closes.
        assert c.read_to_eof(timeout=10) == b"before-eof"
    assert any(s["saw_eof"] and s["received"] == b"before-eof" for s in ctx.echo.sessions)


def test_connect_to_forbidden_port_is_403_naming_the_port(proxy, ctx):
    c, r = connect(proxy.port, "origin.test:%d" % ctx.origin_port)
    with c:
        assert r.status == 403, r
        assert str(ctx.origin_port).encode() in r.body


def test_connect_to_port_25_is_refused_by_default_policy(proxy, ctx):
    c, r = connect(proxy.port, "origin.test:25")
    c.close()
    assert r.status == 403 and b"25" in r.body


def test_connect_to_unresolvable_host_is_502(proxy, ctx):
    c, r = connect(proxy.port, "nosuch.test:%d" % ctx.echo_port)
    c.close()
    assert r.status == 502, r
    assert b"nosuch.test" in r.body


def test_connect_to_refused_port_is_502(start_daemon, ctx):
    d = start_daemon(allow_connect="443 %d" % ctx.refused_port)
    c, r = connect(d.port, "127.0.0.1:%d" % ctx.refused_port)
    c.close()
    assert r.status == 502, r
    assert b"refused" in r.body.lower()


def test_connect_with_bad_authority_is_400(proxy, ctx):
    for target in ("origin.test", "http://origin.test:443/", "origin.test:0", ":443"):
        c = ghtest.Conn("127.0.0.1", proxy.port)
        with c:
            c.send("CONNECT %s HTTP/1.1\r\nHost: x\r\n\r\n" % target)
            r = c.read_response("CONNECT")
            assert r.status == 400, (target, r)


def test_tunnel_full_duplex_bulk_transfer(proxy, ctx):
    import threading
    n = 30 * 1024 * 1024
    c, r = connect(proxy.port, "127.0.0.1:%d" % ctx.echo_port)
    assert r.status == 200
    err = []

    def writer():
        try:
            block = os.urandom(65536)
            sent = 0
            while sent < n:
                c.sock.sendall(block)
                sent += len(block)
            c.sock.shutdown(socket.SHUT_WR)
        except OSError as e:
            err.append(repr(e))

    c.sock.settimeout(20)
    t = threading.Thread(target=writer, daemon=True)
    t.start()
    got = len(c.buf)
    c.buf = b""
    for _ in range(100000):
        data = c.sock.recv(262144)
        if not data:
            break
        got += len(data)
    t.join(timeout=20)
    c.close()
    assert not err, err
    assert got == n, "echoed %d of %d bytes" % (got, n)
