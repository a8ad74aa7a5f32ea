"""
test_smuggling.py - ambiguous or malformed requests, each on a fresh connection: the proxy must
answer with an error (400, or the listed alternatives), close the connection, and forward
nothing: the origin records no complete request carrying the test's token, neither the outer
request nor the one smuggled inside it. A bare LF in chunked framing is refused (400) before a
raw backend that would end a line there, and so see a second request, reads anything whole.
"""

import json
import socket
import threading
import time
import uuid

import pytest

import ghtest


def _shapes():
    # (id, raw template, acceptable statuses). {u} is an absolute URL carrying the token,
    # {h} the origin authority, {s} a smuggled request carrying the token too.
    s = "GET {u2} HTTP/1.1\r\nHost: {h}\r\n\r\n"
    post = "POST {u} HTTP/1.1\r\nHost: {h}\r\n"
    return [
        ("cl-and-te", post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + s,
         (400,)),
        ("te-and-cl", post + "Transfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n" + s,
         (400,)),
        ("two-cl-different", post + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", (400,)),
        ("two-cl-identical", post + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", (400,)),
        ("cl-not-a-number", post + "Content-Length: 5x\r\n\r\nhello", (400,)),
        ("cl-plus-sign", post + "Content-Length: +5\r\n\r\nhello", (400,)),
        ("cl-negative", post + "Content-Length: -1\r\n\r\n", (400,)),
        ("cl-overflow", post + "Content-Length: 99999999999999999999999\r\n\r\n", (400, 413)),
        ("te-chunked-then-gzip", post + "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n" + s,
         (400,)),
        ("te-gzip-alone", post + "Transfer-Encoding: gzip\r\n\r\n" + s, (400, 501)),
        ("te-unknown", post + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + s, (400, 501)),
        ("te-in-http10", "POST {u} HTTP/1.0\r\nHost: {h}\r\nTransfer-Encoding: chunked\r\n\r\n"
         "0\r\n\r\n" + s, (400,)),
        ("obs-fold", "GET {u} HTTP/1.1\r\nHost: {h}\r\nX-Folded: a\r\n b\r\n\r\n", (400,)),
        ("obs-fold-te", post + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + s, (400,)),
        ("space-before-colon", "GET {u} HTTP/1.1\r\nHost: {h}\r\nX-Space : a\r\n\r\n", (400,)),
        ("space-before-colon-te", post + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + s,
         (400,)),
        ("bare-cr-in-header", "GET {u} HTTP/1.1\r\nHost: {h}\r\nX-Cr: a\rb\r\n\r\n", (400,)),
        ("nul-in-header", "GET {u} HTTP/1.1\r\nHost: {h}\r\nX-Nul: a\x00b\r\n\r\n", (400,)),
        ("ctl-in-target", "GET {u}\x01x HTTP/1.1\r\nHost: {h}\r\n\r\n", (400,)),
        ("space-in-target", "GET {u} x HTTP/1.1\r\nHost: {h}\r\n\r\n", (400,)),
        ("tab-in-target", "GET {u}\tx HTTP/1.1\r\nHost: {h}\r\n\r\n", (400,)),
        ("chunk-size-zz", post + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n" + s,
         (400,)),
        ("chunk-size-negative", post + "Transfer-Encoding: chunked\r\n\r\n-1\r\nhello\r\n0\r\n\r\n"
         + s, (400,)),
        ("chunk-size-17-hex-digits", post + "Transfer-Encoding: chunked\r\n\r\n"
         "fffffffffffffffff\r\nhello\r\n0\r\n\r\n" + s, (400,)),
        ("chunk-size-leading-space", post + "Transfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n"
         "0\r\n\r\n" + s, (400,)),
        ("chunk-size-0x-prefix", post + "Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n"
         "0\r\n\r\n" + s, (400,)),
        ("chunk-data-too-long", post + "Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n"
         "0\r\n\r\n" + s, (400,)),
        ("missing-host-http11", "GET {u} HTTP/1.1\r\nUser-Agent: t\r\n\r\n", (400,)),
        ("duplicate-host", "GET {u} HTTP/1.1\r\nHost: {h}\r\nHost: {h}\r\n\r\n", (400,)),
        ("empty-header-name", "GET {u} HTTP/1.1\r\nHost: {h}\r\n: x\r\n\r\n", (400,)),
        ("bad-version", "GET {u} HTTP/1.x\r\nHost: {h}\r\n\r\n", (400, 505)),
        ("http2-version", "GET {u} HTTP/2.0\r\nHost: {h}\r\n\r\n", (400, 505)),
        ("double-space-after-method", "GET  {u} HTTP/1.1\r\nHost: {h}\r\n\r\n", (400,)),
        ("fragment-in-target", "GET {u}#frag HTTP/1.1\r\nHost: {h}\r\n\r\n", (400,)),
    ]


SHAPES = _shapes()


def _send_shape(proxy, ctx, template):
    tok = uuid.uuid4().hex
    h = "origin.test:%d" % ctx.origin_port
    raw = template.format(u="http://%s/echo?smug=%s" % (h, tok),
                          u2="http://%s/echo?inner=%s" % (h, tok), h=h)
    c = ghtest.Conn("127.0.0.1", proxy.port)
    c.send(raw.encode("latin-1"))
    return tok, c


def _check_not_forwarded(ctx, tok):
    # Give a wrongly forwarded request time to complete at the origin before concluding.
    seen = ghtest.poll(lambda: ctx.origin.requests_with(tok), timeout=0.5)
    assert not seen, "forwarded to the origin: %r" % [(r["method"], r["target"]) for r in seen]


@pytest.mark.parametrize("name,template,statuses", SHAPES, ids=[s[0] for s in SHAPES])
def test_malformed_request_rejected_closed_and_not_forwarded(proxy, ctx, name, template,
                                                              statuses):
    tok, c = _send_shape(proxy, ctx, template)
    with c:
        try:
            r = c.read_response()
        except ghtest.Closed:
            pytest.fail("connection closed without an error response")
        assert r.status in statuses, r
        assert c.closed_by_peer(5), "connection left open after %d" % r.status
    _check_not_forwarded(ctx, tok)


def test_request_line_too_long_is_414(proxy, ctx):
    tok = uuid.uuid4().hex
    target = "http://origin.test:%d/echo?long=%s&pad=%s" % (ctx.origin_port, tok, "a" * 9000)
    with ghtest.Conn("127.0.0.1", proxy.port) as c:
        c.send("GET %s HTTP/1.1\r\nHost: origin.test\r\n\r\n" % target)
        r = c.read_response()
        assert r.status == 414, r
        assert c.closed_by_peer(5)
    _check_not_forwarded(ctx, tok)


def test_too_many_header_fields_is_431(proxy, ctx):
    tok = uuid.uuid4().hex
    hdrs = [("X-H%d" % i, "v") for i in range(150)]
    raw = ghtest.build("http://origin.test:%d/echo?many=%s" % (ctx.origin_port, tok), hdrs)
    with ghtest.Conn("127.0.0.1", proxy.port) as c:
        c.send(raw)
        r = c.read_response()
        assert r.status == 431, r
        assert c.closed_by_peer(5)
    _check_not_forwarded(ctx, tok)


def test_header_field_too_large_is_431(proxy, ctx):
    tok = uuid.uuid4().hex
    raw = ghtest.build("http://origin.test:%d/echo?big=%s" % (ctx.origin_port, tok),
                       [("X-Big", "b" * 9000)])
    with ghtest.Conn("127.0.0.1", proxy.port) as c:
        c.send(raw)
        r = c.read_response()
        assert r.status == 431, r
        assert c.closed_by_peer(5)
    _check_not_forwarded(ctx, tok)


def test_limits_from_config_are_applied(start_daemon, ctx):
    d = start_daemon(extra=["LimitRequestLine 200", "LimitRequestFields 5",
                            "LimitRequestFieldSize 100"])
    base = "http://origin.test:%d/size/1" % ctx.origin_port
    r = ghtest.get(d.port, base)
    assert r.status == 200
    r = ghtest.get(d.port, base + "?" + "q" * 250)
    assert r.status == 414
    r = ghtest.get(d.port, base, headers=[("X-%d" % i, "v") for i in range(8)])
    assert r.status == 431
    r = ghtest.get(d.port, base, headers=[("X-Long", "l" * 150)])
    assert r.status == 431


def test_valid_request_after_rejections_still_works(proxy, ctx):
    # The worker that rejected the shapes above is still healthy.
    r = ghtest.get(proxy.port, "http://origin.test:%d/size/11" % ctx.origin_port)
    assert r.status == 200 and len(r.body) == 11


def test_request_inside_chunked_body_is_delivered_as_body(proxy, ctx):
    tok = uuid.uuid4().hex
    inner = "GET /echo?inner=%s HTTP/1.1\r\nHost: x\r\n\r\n" % tok
    body = inner.encode()
    raw = ghtest.build("http://origin.test:%d/echo?outer=%s" % (ctx.origin_port, tok),
                       [("Transfer-Encoding", "chunked")], method="POST", close=True)
    raw += ghtest.chunk_encode(body)
    r, c = ghtest.request(proxy.port, raw)
    c.close()
    assert r.status == 200
    seen = ghtest.poll(lambda: len(ctx.origin.requests_with(tok)) > 1, timeout=0.5)
    assert not seen
    assert [x["target"] for x in ctx.origin.requests_with(tok)] == ["/echo?outer=%s" % tok]


@pytest.mark.parametrize("listed", ["Content-Length", "Transfer-Encoding", "Host"])
def test_connection_naming_framing_headers_cannot_smuggle(proxy, ctx, listed):
    # "Connection: Content-Length" (or Transfer-Encoding) must not make the proxy strip the
    # framing of a body it forwards: the body below is itself a complete request.
    tok = uuid.uuid4().hex
    h = "origin.test:%d" % ctx.origin_port
    inner = ("GET /echo?inner=%s HTTP/1.1\r\nHost: %s\r\n\r\n" % (tok, h)).encode()
    if listed == "Transfer-Encoding":
        framing = [("Transfer-Encoding", "chunked")]
        body = ghtest.chunk_encode(inner)
    else:
        framing = [("Content-Length", str(len(inner)))]
        body = inner
    raw = ghtest.build("http://%s/echo?outer=%s" % (h, tok), framing +
                       [("Connection", "keep-alive, " + listed)], method="POST") + body
    with ghtest.Conn("127.0.0.1", proxy.port) as c:
        c.send(raw)
        r = c.read_response()
    if r.status == 400:
        _check_not_forwarded(ctx, tok)
        return
    assert r.status == 200, r
    doc = json.loads(r.body)
    assert doc["body"] == inner.decode()
    time.sleep(0.3)
    assert [x["target"] for x in ctx.origin.requests_with(tok)] == ["/echo?outer=%s" % tok]


# ---- bare LF in chunked framing (issue 10 item 15)

class LfSplittingBackend:
    """A raw origin that reads HTTP the lax way: a bare LF ends a line anywhere, in heads and
    in chunked framing, so bytes behind a bare LF are the next request to it. Records every
    request it read whole (method, target), and answers each with a short 200."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(5)
        buf = [b""]

        def more():
            data = conn.recv(65536)
            if not data:
                raise EOFError()
            buf[0] += data

        def line():
            while b"\n" not in buf[0]:
                more()
            ln, buf[0] = buf[0].split(b"\n", 1)
            return ln[:-1] if ln.endswith(b"\r") else ln

        def exact(n):
            while len(buf[0]) < n:
                more()
            out, buf[0] = buf[0][:n], buf[0][n:]
            return out

        try:
            for _ in range(100):
                first = line()
                while first == b"":
                    first = line()
                fields = {}
                for _ in range(200):
                    ln = line()
                    if ln == b"":
                        break
                    name, _, value = ln.partition(b":")
                    fields[name.strip().lower()] = value.strip()
                if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
                    for _ in range(10000):
                        size = int(line().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while line() != b"":
                                pass
                            break
                        exact(size)
                        line()
                elif b"content-length" in fields:
                    exact(int(fields[b"content-length"]))
                parts = first.split(b" ")
                with self.lock:
                    self.requests.append((parts[0], parts[1] if len(parts) > 1 else b""))
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except (EOFError, OSError, ValueError):
            pass
        finally:
            conn.close()

    def with_token(self, tok):
        with self.lock:
            return [r for r in self.requests if tok.encode() in r[1]]

    def close(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


BARE_LF_BODIES = [
    # chunked bodies with a bare LF where a line ends; {s} is a request carrying the token,
    # which the lax backend would read as the next request if these bytes reached it as sent
    ("after-chunk-size", "5\nhello\r\n0\r\n\r\n{s}"),
    ("after-chunk-extension", "5;a=b\nhello\r\n0\r\n\r\n{s}"),
    ("after-chunk-data", "5\r\nhello\n0\r\n\r\n{s}"),
    ("after-last-chunk", "0\n\n{s}"),
    ("last-chunk-then-bare-lf-line", "0\r\n\n{s}"),
    ("ending-a-trailer-line", "0\r\nX-A: 1\n\r\n{s}"),
    ("trailer-then-bare-lf-line", "0\r\nX-A: 1\r\n\n{s}"),
    ("every-line", "5\nhello\n0\n\n{s}"),
]


@pytest.mark.parametrize("name,body", BARE_LF_BODIES, ids=[b[0] for b in BARE_LF_BODIES])
def test_bare_lf_in_chunked_request_is_refused_before_a_lax_backend(proxy, name, body):
    be = LfSplittingBackend()
    try:
        tok = uuid.uuid4().hex
        h = "127.0.0.1:%d" % be.port
        inner = "GET http://%s/inner?tok=%s HTTP/1.1\r\nHost: %s\r\n\r\n" % (h, tok, h)
        raw = ("POST http://%s/outer?tok=%s HTTP/1.1\r\nHost: %s\r\n"
               "Transfer-Encoding: chunked\r\n\r\n" % (h, tok, h)) + body.format(s=inner)
        with ghtest.Conn("127.0.0.1", proxy.port) as c:
            c.send(raw.encode("latin-1"))
            try:
                r = c.read_response("POST")
            except ghtest.Closed:
                pytest.fail("connection closed without an error response")
            assert r.status == 400, r
            assert b"bare LF" in r.body, r.body[:400]
            assert c.closed_by_peer(5), "connection left open after %d" % r.status
        # neither the outer request nor the one behind the bare LF reached the backend whole
        seen = ghtest.poll(lambda: be.with_token(tok), timeout=0.5)
        assert not seen, "the lax backend read: %r" % seen
    finally:
        be.close()
