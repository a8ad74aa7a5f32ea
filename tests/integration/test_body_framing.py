"""
test_body_framing.py - where a chunked body ends (issue 10 items 4 and 15).

A client that closes its sending side in the middle of a chunked request body gets its
connection closed at once wherever the cut falls: in a chunk, in the last chunk's line, in a
trailer line or before the final CRLF. (The trailer section used to wait for the rest of its
line, the whole Timeout, and then answer 408.) The request is never completed upstream: the
origin records a request only once its body has been read whole, and records none here.

The same holds for an origin that closes in the trailer section of a chunked response: the
client's response is aborted at once, not after ProxyTimeout, and not ended as if whole.

A bare LF ends no line of chunked framing: a response whose chunked body uses one is a broken
upstream (the response is aborted: no terminating last-chunk reaches the client) and is not
stored. (Requests with one are refused with 400: test_smuggling.py.)
"""

import os
import socket
import threading
import time
import uuid

import pytest

import ghtest

# The daemon's Timeout and ProxyTimeout in these tests: a cut that waits for either is many
# seconds slower than one handled at once, whatever the machine's load.
LONG = 30
AT_ONCE = 10


class RawOrigin:
    """A loopback server that answers every connection with the bytes that respond(head)
    returns (after reading the request head), then closes. Records the request heads."""

    def __init__(self, respond):
        self.respond = respond
        self.heads = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            with conn:
                conn.settimeout(5)
                head = b""
                try:
                    while b"\r\n\r\n" not in head:
                        data = conn.recv(65536)
                        if not data:
                            break
                        head += data
                    with self.lock:
                        self.heads.append(head)
                    conn.sendall(self.respond(head))
                except OSError:
                    pass

    def count(self, tok):
        with self.lock:
            return sum(1 for h in self.heads if tok.encode() in h)

    def close(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def long_daemon(start_daemon):
    return start_daemon(extra=["Timeout %d" % LONG], timeout=LONG)


def _wait_end(c, deadline):
    """Read until the proxy closes; returns (everything read, seconds taken)."""
    t0 = time.monotonic()
    data = c.read_to_eof(timeout=deadline)
    return data, time.monotonic() - t0


REQUEST_CUTS = [
    # (id, body bytes sent before the client's EOF)
    ("in-chunk-size", b"5\r\nhello\r\n1"),
    ("in-chunk-data", b"5\r\nhel"),
    ("after-last-chunk-line", b"5\r\nhello\r\n0\r\n"),
    ("last-chunk-then-cr", b"5\r\nhello\r\n0\r\n\r"),
    ("in-trailer-line", b"5\r\nhello\r\n0\r\nX-Trailer: ab"),
    ("trailer-line-then-cr", b"5\r\nhello\r\n0\r\nX-Trailer: ab\r"),
    ("after-trailer-line", b"5\r\nhello\r\n0\r\nX-Trailer: ab\r\n"),
    ("second-trailer-then-cr", b"5\r\nhello\r\n0\r\nX-A: 1\r\nX-B: 2\r\n\r"),
]


@pytest.mark.parametrize("name,body", REQUEST_CUTS, ids=[x[0] for x in REQUEST_CUTS])
def test_chunked_request_body_cut_by_eof_closes_at_once(long_daemon, ctx, name, body):
    tok = uuid.uuid4().hex
    url = "http://origin.test:%d/echo?cut=%s" % (ctx.origin_port, tok)
    head = ghtest.build(url, [("Transfer-Encoding", "chunked")], method="POST")
    with ghtest.Conn("127.0.0.1", long_daemon.port, timeout=LONG + 10) as c:
        c.send(head + body)
        c.sock.shutdown(socket.SHUT_WR)
        data, took = _wait_end(c, LONG + 10)
    assert took < AT_ONCE, "%s: the connection stayed open %.1f s after the client's EOF (%r)" \
        % (name, took, data[:200])
    # Closed without an answer, as for a cut anywhere else; never the Timeout's 408.
    assert b" 408 " not in data[:20], data[:200]
    assert data == b"" or data.startswith(b"HTTP/1.1 400 "), data[:200]
    time.sleep(0.3)
    assert ctx.origin.requests_with(tok) == [], "the origin got the request as complete"


def test_whole_chunked_request_with_trailers_still_goes_through(long_daemon, ctx):
    # the control: the same body, complete, and the client's EOF right behind it
    tok = uuid.uuid4().hex
    url = "http://origin.test:%d/echo?whole=%s" % (ctx.origin_port, tok)
    head = ghtest.build(url, [("Transfer-Encoding", "chunked")], method="POST")
    with ghtest.Conn("127.0.0.1", long_daemon.port, timeout=AT_ONCE) as c:
        c.send(head + b"5\r\nhello\r\n0\r\nX-A: 1\r\nX-B: 2\r\n\r\n")
        c.sock.shutdown(socket.SHUT_WR)
        r = c.read_response("POST")
    assert r.status == 200, r
    seen = ctx.origin.requests_with(tok)
    assert len(seen) == 1 and seen[0]["body"] == b"hello", seen


RESPONSE_CUTS = [
    ("in-chunk-data", b"5\r\nhel"),
    ("after-last-chunk-line", b"5\r\nhello\r\n0\r\n"),
    ("last-chunk-then-cr", b"5\r\nhello\r\n0\r\n\r"),
    ("in-trailer-line", b"5\r\nhello\r\n0\r\nX-Trailer: ab"),
    ("trailer-line-then-cr", b"5\r\nhello\r\n0\r\nX-Trailer: ab\r"),
]


@pytest.mark.parametrize("name,body", RESPONSE_CUTS, ids=[x[0] for x in RESPONSE_CUTS])
def test_chunked_response_cut_by_origin_close_is_aborted_at_once(long_daemon, name, body):
    o = RawOrigin(lambda head: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                               b"Cache-Control: max-age=600\r\n\r\n" + body)
    try:
        url = "http://127.0.0.1:%d/cut-%s" % (o.port, uuid.uuid4().hex)
        with ghtest.Conn("127.0.0.1", long_daemon.port, timeout=LONG + 10) as c:
            c.send(ghtest.build(url))
            data, took = _wait_end(c, LONG + 10)
    finally:
        o.close()
    assert data.startswith(b"HTTP/1.1 200 "), data[:200]
    assert took < AT_ONCE, "%s: the client waited %.1f s for a response the origin cut" \
        % (name, took)
    assert not data.endswith(b"0\r\n\r\n"), "a cut response was ended as if whole: %r" % data


BARE_LF = [
    ("after-size", b"5\nhello\r\n0\r\n\r\n"),
    ("after-data", b"5\r\nhello\n0\r\n\r\n"),
    ("after-last-chunk", b"5\r\nhello\r\n0\n\r\n"),
    ("in-trailer", b"5\r\nhello\r\n0\r\nX-A: 1\n\r\n"),
    ("final-line", b"5\r\nhello\r\n0\r\n\n"),
]


@pytest.mark.parametrize("name,body", BARE_LF, ids=[x[0] for x in BARE_LF])
def test_bare_lf_in_chunked_response_is_a_broken_upstream(start_daemon, ctx, name, body):
    root = os.path.join(ctx.workdir, "cache-" + uuid.uuid4().hex[:8])
    d = start_daemon(extra=["CacheRoot %s" % root, "CacheSize 64M", "CacheEnable lmdb /"])
    o = RawOrigin(lambda head: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                               b"Cache-Control: max-age=600\r\n\r\n" + body)
    try:
        url = "http://127.0.0.1:%d/lf-%s" % (o.port, uuid.uuid4().hex)
        for attempt in range(2):
            with ghtest.Conn("127.0.0.1", d.port, timeout=AT_ONCE) as c:
                c.send(ghtest.build(url))
                data = c.read_to_eof(timeout=AT_ONCE)
            # 502 when the proxy had sent nothing yet, else the response is cut off: never
            # a response ended with a last-chunk as if the body were fine
            assert data.startswith(b"HTTP/1.1 502 ") or data.startswith(b"HTTP/1.1 200 "), \
                data[:200]
            if data.startswith(b"HTTP/1.1 200 "):
                assert b"Transfer-Encoding: chunked" in data.split(b"\r\n\r\n")[0], data[:300]
                assert not data.endswith(b"0\r\n\r\n"), "accepted as whole: %r" % data
        # not stored: the second request went to the origin again
        assert len(o.heads) == 2, o.heads
    finally:
        o.close()
