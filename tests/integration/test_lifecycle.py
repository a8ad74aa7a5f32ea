"""
test_lifecycle.py - process behaviour: a 200 MB download through a rate-limited reader with the
daemon's resident memory sampled (it must stream, not buffer), graceful stop on SIGTERM and
SIGINT (in-flight download completes, new connections refused, exit status 0), and a slow
client that never reads does not grow the daemon's memory either.
"""

import hashlib
import os
import signal
import socket
import threading
import time

import pytest

import ghtest
from origin import body_bytes, body_sha256

MB = 1024 * 1024


def rss_limit_mb(binary):
    env = os.environ.get("GH_RSS_LIMIT_MB")
    if env:
        return int(env)
    return 200 if ghtest.is_sanitized(binary) else 64


class Sampler(threading.Thread):
    """Samples the daemon tree's VmRSS every 50 ms until stopped."""

    def __init__(self, daemon):
        super().__init__(daemon=True)
        self.d = daemon
        self.stop_event = threading.Event()
        self.peak_rss = 0

    def run(self):
        while not self.stop_event.wait(0.05):
            rss, _ = self.d.memory_kb()
            self.peak_rss = max(self.peak_rss, rss)

    def finish(self):
        self.stop_event.set()
        self.join(timeout=5)
        return self.peak_rss


@pytest.mark.slow
def test_200mb_download_through_slow_reader_keeps_rss_bounded(start_daemon, ctx):
    d = start_daemon()
    n = 200 * MB
    rate = 20 * MB  # bytes per second the client accepts
    limit = rss_limit_mb(d.binary)
    base_rss, _ = d.memory_kb()
    sampler = Sampler(d)
    sampler.start()
    h = hashlib.sha256()
    got = 0
    t0 = time.monotonic()
    try:
        with ghtest.Conn("127.0.0.1", d.port, timeout=30) as c:
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
            c.send(ghtest.build("http://origin.test:%d/size/%d" % (ctx.origin_port, n), close=True))
            head = c.read_until(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head
            assert b"\r\ncontent-length: %d\r\n" % n in head.lower()
            h.update(c.buf)
            got = len(c.buf)
            c.buf = b""
            deadline = t0 + 40
            while got < n and time.monotonic() < deadline:
                data = c.sock.recv(min(256 * 1024, n - got))
                if not data:
                    break
                h.update(data)
                got += len(data)
                ahead = got / rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
    finally:
        peak = sampler.finish()
    _, hwm = d.memory_kb()
    elapsed = time.monotonic() - t0
    assert got == n, "received %d of %d bytes in %.1f s" % (got, n, elapsed)
    assert h.hexdigest() == body_sha256(n)
    peak_mb = max(peak, hwm) / 1024.0
    print("rss: base %.1f MB, peak %.1f MB (VmHWM sum %.1f MB), %.1f s"
          % (base_rss / 1024.0, peak / 1024.0, hwm / 1024.0, elapsed))
    assert peak_mb < limit, "daemon peak RSS %.1f MB >= %d MB while streaming %d MB" % (
        peak_mb, limit, n // MB)


@pytest.mark.slow
def test_client_that_stops_reading_does_not_grow_memory(start_daemon, ctx):
    d = start_daemon()
    limit = rss_limit_mb(d.binary)
    c = ghtest.Conn("127.0.0.1", d.port, timeout=10)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    with c:
        c.send(ghtest.build("http://origin.test:%d/size/%d" % (ctx.origin_port, 300 * MB),
                            close=True))
        assert c.read_until(b"\r\n\r\n").startswith(b"HTTP/1.1 200")
        time.sleep(2.5)  # the proxy keeps reading from the origin only if it buffers
        rss, hwm = d.memory_kb()
    assert max(rss, hwm) / 1024.0 < limit, "RSS %d kB with a stalled reader" % max(rss, hwm)


def _slow_download(port, ctx, result):
    """Reads /slow (300 kB over ~3 s) through the proxy; result gets status, body, error."""
    try:
        with ghtest.Conn("127.0.0.1", port, timeout=20) as c:
            c.send(ghtest.build("http://origin.test:%d/slow?size=300000&chunk=10000&delay=100"
                                % ctx.origin_port, close=True))
            r = c.read_response(timeout=20)
            result["status"] = r.status
            result["body"] = r.body
    except Exception as e:  # reported by the test
        result["error"] = repr(e)
    result["done"] = time.monotonic()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_stop_finishes_inflight_download(start_daemon, ctx, sig):
    d = start_daemon(extra=["GracefulShutdownTimeout 10"])
    result = {}
    t_start = time.time()
    t = threading.Thread(target=_slow_download, args=(d.port, ctx, result), daemon=True)
    t.start()
    # wait until the download is under way at the origin
    assert ghtest.poll(lambda: [r for r in ctx.origin.requests_with("/slow")
                                if r["time"] >= t_start], timeout=5)
    time.sleep(0.5)
    t_sig = time.monotonic()
    d.proc.send_signal(sig)
    # new connections are refused once the daemon has seen the signal
    refused = ghtest.poll(lambda: not ghtest.can_connect("127.0.0.1", d.port), timeout=2)
    assert refused, "still accepting connections 2 s after %s" % sig.name
    t.join(timeout=20)
    assert not t.is_alive()
    assert "error" not in result, result.get("error")
    assert result["status"] == 200
    assert result["body"] == body_bytes(300000)
    try:
        rc = d.proc.wait(timeout=10)
    except Exception:
        pytest.fail("daemon still running 10 s after the in-flight download finished")
    assert rc == 0, "exit status %s after %s" % (rc, sig.name)
    assert result["done"] - t_sig > 1.0, "download ended too early to prove the grace period"


@pytest.mark.slow
def test_graceful_timeout_bounds_the_wait(start_daemon, ctx):
    d = start_daemon(extra=["GracefulShutdownTimeout 1"])
    c = ghtest.Conn("127.0.0.1", d.port, timeout=15)
    with c:
        c.send(ghtest.build("http://origin.test:%d/slow?size=1000000&chunk=1000&delay=100"
                            % ctx.origin_port, close=True))
        assert c.read_until(b"\r\n\r\n").startswith(b"HTTP/1.1 200")
        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        rc = d.proc.wait(timeout=10)
        took = time.monotonic() - t0
    assert took < 5, "GracefulShutdownTimeout 1 but exit took %.1f s" % took
    assert rc == 0


def test_idle_keepalive_connection_closed_after_keepalive_timeout(start_daemon, ctx):
    d = start_daemon(extra=["KeepAliveTimeout 1"])
    with ghtest.Conn("127.0.0.1", d.port) as c:
        c.send(ghtest.build("http://origin.test:%d/size/1" % ctx.origin_port))
        assert c.read_response().status == 200
        t0 = time.monotonic()
        assert c.closed_by_peer(6)
        assert time.monotonic() - t0 < 4


def test_max_keepalive_requests(start_daemon, ctx):
    d = start_daemon(extra=["MaxKeepAliveRequests 2"])
    with ghtest.Conn("127.0.0.1", d.port) as c:
        for i in range(2):
            c.send(ghtest.build("http://origin.test:%d/size/1" % ctx.origin_port))
            r = c.read_response()
            assert r.status == 200
        assert "close" in (r.header("Connection") or "").lower()
        assert c.closed_by_peer(5)


def test_client_timeout_on_incomplete_head(start_daemon, ctx):
    d = start_daemon(extra=["Timeout 1"])
    with ghtest.Conn("127.0.0.1", d.port) as c:
        c.send(b"GET http://origin.test:%d/size/1 HTTP/1.1\r\nHost: x\r\n" % ctx.origin_port)
        t0 = time.monotonic()
        try:
            r = c.read_response(timeout=6)
            assert r.status == 408
        except ghtest.Closed:
            pass
        assert time.monotonic() - t0 < 5


def test_origin_stalling_mid_body_is_cut_off_after_proxy_timeout(proxy, ctx):
    # Head and first bytes arrive, then the origin goes quiet for longer than ProxyTimeout (3 s):
    # the proxy must give up and close the client connection, not wait forever.
    with ghtest.Conn("127.0.0.1", proxy.port, timeout=20) as c:
        c.send(ghtest.build("http://origin.test:%d/slow?size=1000&chunk=100&delay=8000"
                            % ctx.origin_port))
        assert c.read_until(b"\r\n\r\n").startswith(b"HTTP/1.1 200")
        t0 = time.monotonic()
        data = c.read_to_eof(timeout=15)
        took = time.monotonic() - t0
    assert len(data) < 1000
    assert 2.0 <= took <= 7.0, "closed after %.1f s with ProxyTimeout 3" % took


def test_client_stalling_mid_request_body_times_out(start_daemon, ctx):
    d = start_daemon(extra=["Timeout 1"])
    tok = "stallbody%d" % os.getpid()
    with ghtest.Conn("127.0.0.1", d.port, timeout=10) as c:
        c.send(ghtest.build("http://origin.test:%d/echo?%s" % (ctx.origin_port, tok),
                            [("Content-Length", "100")], method="POST") + b"only ten..")
        t0 = time.monotonic()
        try:
            r = c.read_response(timeout=8)
            assert r.status in (400, 408), r  # the client's fault, not the origin's (504)
        except ghtest.Closed:
            pass
        # Timeout 1 governs client I/O; ProxyTimeout (3 s) must not be what ends this.
        assert time.monotonic() - t0 < 2.8
    assert ctx.origin.requests_with(tok) == []


def test_sigterm_closes_idle_keepalive_connections_promptly(start_daemon, ctx):
    d = start_daemon(extra=["GracefulShutdownTimeout 10", "KeepAliveTimeout 30"])
    with ghtest.Conn("127.0.0.1", d.port) as c:
        c.send(ghtest.build("http://origin.test:%d/size/1" % ctx.origin_port))
        assert c.read_response().status == 200
        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        # an idle connection has nothing in flight: no reason to wait for the grace period
        assert c.closed_by_peer(5)
        rc = d.proc.wait(timeout=10)
        took = time.monotonic() - t0
    assert rc == 0
    assert took < 3, "exit took %.1f s with only an idle keep-alive connection" % took


def test_request_in_flight_at_sigterm_ends_with_connection_close(start_daemon, ctx):
    d = start_daemon(extra=["GracefulShutdownTimeout 10"])
    with ghtest.Conn("127.0.0.1", d.port, timeout=15) as c:
        c.send(ghtest.build("http://origin.test:%d/slow?size=20000&chunk=5000&delay=300"
                            % ctx.origin_port))
        c.read_until(b"HTTP/1.1 200", timeout=5)
        d.proc.send_signal(signal.SIGTERM)
        c.buf = b"HTTP/1.1 200" + c.buf
        r = c.read_response(timeout=10)
        assert r.body == body_bytes(20000)
        # keep-alive was not promised, or the connection is closed right after the response
        if "close" not in (r.header("Connection") or "").lower():
            assert c.closed_by_peer(3)
    assert d.proc.wait(timeout=10) == 0
