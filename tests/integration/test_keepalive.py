"""
test_keepalive.py - persistent connections on both sides: several requests on one client
connection (sequential and pipelined), curl reusing its proxy connection, and the upstream pool
(the origin sees fewer connections than requests).
"""

import ctypes
import json
import os
import socket
import subprocess
import uuid

import ghtest
from origin import body_bytes

TCP_NOTSENT_LOWAT = 25  # linux/tcp.h; the socket module does not name it


def url(ctx, path):
    return "http://origin.test:%d%s" % (ctx.origin_port, path)


def test_sequential_requests_on_one_client_connection(proxy, ctx):
    tok = uuid.uuid4().hex
    with ghtest.Conn("127.0.0.1", proxy.port) as c:
        for i in range(6):
            c.send(ghtest.build(url(ctx, "/size/%d?k=%s" % (100 + i, tok))))
            r = c.read_response()
            assert r.status == 200 and r.body == body_bytes(100 + i), i
            assert "close" not in (r.header("Connection") or "").lower()
    reqs = ctx.origin.requests_with(tok)
    assert len(reqs) == 6
    conns = {r["conn"] for r in reqs}
    assert len(conns) < 6, "the proxy opened a new upstream connection for every request"


def test_pipelined_requests_answered_in_order(proxy, ctx):
    tok = uuid.uuid4().hex
    raw = b"".join(ghtest.build(url(ctx, "/echo?k=%s&i=%d" % (tok, i))) for i in range(4))
    raw += ghtest.build(url(ctx, "/size/7?k=" + tok), close=True)
    with ghtest.Conn("127.0.0.1", proxy.port) as c:
        c.send(raw)
        for i in range(4):
            r = c.read_response()
            assert r.status == 200
            assert json.loads(r.body)["target"].endswith("&i=%d" % i)
        r = c.read_response()
        assert r.body == body_bytes(7)
        assert c.closed_by_peer(5)


def test_mixed_framings_on_one_connection(proxy, ctx):
    with ghtest.Conn("127.0.0.1", proxy.port) as c:
        for path, n in (("/chunked/5000", 5000), ("/size/3000", 3000), ("/chunked/1", 1),
                        ("/status/204", 0), ("/size/0", 0), ("/chunked/0", 0)):
            c.send(ghtest.build(url(ctx, path)))
            r = c.read_response()
            assert r.body == body_bytes(n), path


def test_curl_reuses_its_proxy_connection(proxy, ctx):
    tok = uuid.uuid4().hex
    urls = [url(ctx, "/size/%d?c=%s" % (10 + i, tok)) for i in range(4)]
    p = subprocess.run(["curl", "-sS", "--max-time", "20", "-x", "http://127.0.0.1:%d" % proxy.port,
                        "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
                        "-w", "%{http_code} %{num_connects}\\n"] + urls,
                       capture_output=True, timeout=30, env=ghtest.clean_env())
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().split()
    codes, connects = lines[0::2], [int(x) for x in lines[1::2]]
    assert codes == ["200"] * 4
    assert connects[0] == 1 and sum(connects) == 1, connects
    assert len({r["conn"] for r in ctx.origin.requests_with(tok)}) < 4


def test_upstream_pool_reused_across_client_connections(proxy, ctx):
    tok = uuid.uuid4().hex
    for i in range(8):
        r = ghtest.get(proxy.port, url(ctx, "/size/50?p=%s&i=%d" % (tok, i)))
        assert r.status == 200 and r.body == body_bytes(50)
    conns = {r["conn"] for r in ctx.origin.requests_with(tok)}
    # Two workers, each may keep its own pooled connection; eight fresh connections mean no pool.
    assert len(conns) <= 4, conns


def test_http10_keepalive_request(proxy, ctx):
    with ghtest.Conn("127.0.0.1", proxy.port) as c:
        c.send(ghtest.build(url(ctx, "/size/20"), [("Connection", "keep-alive")],
                            version="HTTP/1.0"))
        r = c.read_response()
        assert r.status == 200 and r.body == body_bytes(20)
        if "keep-alive" in (r.header("Connection") or "").lower():
            c.send(ghtest.build(url(ctx, "/size/21"), version="HTTP/1.0"))
            r2 = c.read_response()
            assert r2.body == body_bytes(21)
            assert c.closed_by_peer(5)
        else:
            assert c.closed_by_peer(5)


def test_connection_close_from_client_is_honoured(proxy, ctx):
    with ghtest.Conn("127.0.0.1", proxy.port) as c:
        c.send(ghtest.build(url(ctx, "/size/9"), close=True))
        r = c.read_response()
        assert r.body == body_bytes(9)
        assert "close" in (r.header("Connection") or "").lower()
        assert c.closed_by_peer(5)


def test_upstream_connection_close_does_not_break_next_request(proxy, ctx):
    # /close/N ends its upstream connection; the next request must get a fresh one.
    with ghtest.Conn("127.0.0.1", proxy.port) as c:
        for i in range(3):
            c.send(ghtest.build(url(ctx, "/close/%d" % (1000 + i)), [("Connection", "close")]
                                if i == 2 else ()))
            r = c.read_response()
            assert r.body == body_bytes(1000 + i)
            if not (r.chunked or r.header("Content-Length")):
                break  # close-delimited to us too: the connection ends here


def test_different_origins_on_one_client_connection(proxy, ctx):
    with ghtest.Conn("127.0.0.1", proxy.port) as c:
        for host in ("origin.test", "127.0.0.1", "dual.test", "origin.test", "proxy.test"):
            c.send(ghtest.build("http://%s:%d/echo" % (host, ctx.origin_port)))
            r = c.read_response()
            assert r.status == 200, (host, r)
            hosts = [v for k, v in json.loads(r.body)["headers"] if k.lower() == "host"]
            assert hosts == ["%s:%d" % (host, ctx.origin_port)]


def _daemon_socket_for(pid, client):
    """A duplicate (pidfd_getfd) of the daemon's socket whose peer is the client socket, or None.
    Needs ptrace rights over the daemon (its parent, this test process, has them)."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        for name in os.listdir("/proc/%d/fd" % pid):
            try:
                if not os.readlink("/proc/%d/fd/%s" % (pid, name)).startswith("socket:"):
                    continue
            except OSError:
                continue
            fd = libc.syscall(438, pidfd, int(name), 0)  # SYS_pidfd_getfd
            if fd < 0:
                continue
            s = socket.socket(fileno=fd)
            try:
                if s.type == socket.SOCK_STREAM and s.getpeername() == client.getsockname():
                    return s
            except OSError:
                pass
            s.close()
    finally:
        os.close(pidfd)
    return None


def test_accepted_client_socket_has_nodelay_and_notsent_lowat(proxy, ctx):
    # worker.c sets TCP_NODELAY and TCP_NOTSENT_LOWAT on the listener only: the kernel copies
    # them to each accepted socket. Checked on the daemon's own socket for a live client.
    with ghtest.Conn("127.0.0.1", proxy.port) as c:
        c.send(ghtest.build(url(ctx, "/size/10")))
        assert c.read_response().body == body_bytes(10)
        s = _daemon_socket_for(proxy.proc.pid, c.sock)
        assert s is not None, "the daemon's socket for this client was not found"
        with s:
            assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            assert s.getsockopt(socket.IPPROTO_TCP, TCP_NOTSENT_LOWAT) == 128 * 1024
