"""
origin.py - the test origin server for the Gatehouse integration suite, and a TCP echo server
for CONNECT tests, and a stub parent proxy (StubParent) for ProxyRemote tests.

A raw-socket, thread-per-connection HTTP/1.1 server (stdlib only) so that tests see exactly
what the proxy forwarded: every complete request is recorded (method, target, version, header
lines as received, decoded body, connection id, peer address). A request is recorded only once
its body has been read completely, so "the origin saw nothing" means no complete request.

Routes (any method unless noted; HEAD always gets the GET head without a body):
  /size/N            N bytes of deterministic content (body_bytes()), Content-Length
  /chunked/N         the same N bytes, Transfer-Encoding: chunked, uneven chunk sizes
  /close/N           "HTTP/1.0 200", no Content-Length, body ends when the server closes
  /echo              JSON: method, target, version, headers [[name, value]...], body (latin-1),
                     body_len, body_sha256, chunked (request was chunked), conn, peer
  /stall             reads the request, never answers (until the client goes or stop())
  /slow?size=N&chunk=K&delay=MS   Content-Length N, K bytes every MS milliseconds
  /status/N          status N; a short body except for 1xx/204/304
  /head              Content-Length 1234 body; for HEAD the head only
  /hop               a response carrying hop-by-hop headers (Connection-named, Keep-Alive,
                     Upgrade, Proxy-Connection) next to an end-to-end X-End header
  /via               a response that already carries "Via: 1.0 upstream-cache"
  /trunc/N           Content-Length N, N/2 bytes, then close;  /truncchunked/N likewise chunked
  /bad/KIND          a malformed response from BAD_RESPONSES, then close
  /early-hints       a 103 interim response, then 200
  /cache?...         a cacheable object for the cache tests, shaped by query parameters:
                     size=N (bytes of body_bytes, default 100), cc=Cache-Control value,
                     etag=TAG (sent quoted; If-None-Match with it -> 304), lm=SECONDS
                     (Last-Modified that long ago; If-Modified-Since not older -> 304),
                     expires=SECONDS (from now), vary=FIELDS, cookie=VALUE (Set-Cookie),
                     status=N, loc=URL (Location), age=V (an Age line; repeatable),
                     chunked=1, delay=MS (before answering),
                     off=N (content offset: a "new version"), trickle=MS (body sent 64
                     KiB every MS ms; with Content-Length, or chunk-framed with chunked=1;
                     cut=N closes the connection after N body bytes), flip=N|close (every request for the
                     same target after the first gets status N, or the connection closed
                     without an answer), text=1 (compressible text lines as text/plain
                     instead of body_bytes); any other method -> 200 "done"
                     (status= applies), so unsafe-method invalidation can be tested
  /debian/...        the same as /cache (same parameters), under Debian archive paths
                     (/debian/pool/.../x.deb, /debian/dists/.../InRelease) for the cache's
                     Debian awareness
  ?linger=MS         (any keep-alive route) close the connection MS ms after the response
Anything else is 404. Expect: 100-continue gets an interim "100 Continue" before the body.

Per-path and per-connection accounting is in Origin.requests / Origin.connections.
Run standalone for manual poking: python3 origin.py [port]
"""

import hashlib
import json
import socket
import sys
import threading
import time
import urllib.parse

PERIOD = 65521  # prime, so that misplaced 64 KiB blocks show up in the content check
_PATTERN = bytes(((i * 131) ^ (i >> 7)) & 0xFF for i in range(PERIOD))
_PATTERN2 = _PATTERN * 2


def body_bytes(n, offset=0):
    """The deterministic content of /size/N from offset, n bytes."""
    out = bytearray()
    pos = offset % PERIOD
    while n > 0:
        take = min(n, PERIOD)
        out += _PATTERN2[pos:pos + take]
        n -= take
        pos = (pos + take) % PERIOD
    return bytes(out)


def text_bytes(n):
    """n bytes of compressible text: numbered lines, as a log or a Packages file."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += b"Package: gatehouse-test-%d\nVersion: 1.%d\nDescription: line %d\n" % (i, i % 7, i)
        i += 1
    return bytes(out[:n])


def body_sha256(n):
    """sha256 hex digest of the first n bytes of the content, computed without holding it all."""
    h = hashlib.sha256()
    full, rest = divmod(n, PERIOD)
    for _ in range(full):
        h.update(_PATTERN)
    h.update(_PATTERN[:rest])
    return h.hexdigest()


# Malformed or ambiguous responses, sent verbatim, then the origin closes the connection.
BAD_RESPONSES = {
    "cl-te": b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"5\r\nhello\r\n0\r\n\r\n",
    "two-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "bad-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello",
    "space-colon": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Bad : 1\r\n"
                   b"X-After: 2\r\nConnection: close\r\n\r\nrest",
    "bad-status": b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    "http09": b"hello there, no status line\r\n",
    "huge-head": b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-Fill-%d: %s\r\n" % (i, b"f" * 500)
                                                    for i in range(200)) + b"Content-Length: 0\r\n\r\n",
    "obs-fold": b"HTTP/1.1 200 OK\r\nX-Fold: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
    "empty": b"",
    # Connection names a framing header: stripping it must not change how the body is read.
    "conn-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: Content-Length\r\n\r\n"
               b"helloEXTRA",
}


class _ClientGone(Exception):
    pass


class _Conn:
    """Buffered reader over one accepted socket."""

    def __init__(self, sock, stop):
        self.sock = sock
        self.buf = b""
        self.stop = stop

    def _fill(self):
        while True:
            if self.stop.is_set():
                raise _ClientGone()
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                raise _ClientGone()
            if not data:
                raise _ClientGone()
            self.buf += data
            return

    def read_until(self, sep, limit=1 << 20):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out = self.buf[:i + len(sep)]
                self.buf = self.buf[i + len(sep):]
                return out
            if len(self.buf) > limit:
                raise _ClientGone()
            self._fill()

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out = self.buf[:n]
        self.buf = self.buf[n:]
        return out


class Origin:
    """The test origin. start() binds 127.0.0.1 and, when available, ::1 on the same port."""

    def __init__(self, host4="127.0.0.1", host6="::1", port=0, v6_only=False):
        self.host4 = host4
        self.host6 = host6
        self.want_port = port
        self.v6_only = v6_only  # listen on ::1 only (for address-fallback tests)
        self.port = None
        self.has_v6 = False
        self.lock = threading.Lock()
        self.requests = []      # dicts, in completion order
        self.connections = []   # dicts: id, peer, family
        self.path_counts = {}
        self.stop_event = threading.Event()
        self.listeners = []
        self.threads = []
        self._next_conn = 0

    # ---- lifecycle ----

    def start(self):
        v6_usable = _ipv6_loopback_ok()
        socks = []
        for attempt in range(20):
            socks = []
            if self.v6_only:
                s6 = _bind(socket.AF_INET6, self.host6, self.want_port)
                socks, self.port, self.has_v6 = [s6], s6.getsockname()[1], True
                break
            s4 = _bind(socket.AF_INET, self.host4, self.want_port)
            port = s4.getsockname()[1]
            socks = [s4]
            if not v6_usable:
                self.port, self.has_v6 = port, False
                break
            try:
                socks.append(_bind(socket.AF_INET6, self.host6, port))
                self.port, self.has_v6 = port, True
                break
            except OSError:
                s4.close()
                if attempt == 19 or self.want_port:
                    raise
        for s in socks:
            s.listen(128)
            s.settimeout(0.2)
            self.listeners.append(s)
            t = threading.Thread(target=self._accept_loop, args=(s,), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self):
        self.stop_event.set()
        for s in self.listeners:
            try:
                s.close()
            except OSError:
                pass
        for t in self.threads:
            t.join(timeout=5)

    # ---- accounting ----

    def reset(self):
        with self.lock:
            self.requests.clear()
            self.path_counts.clear()

    def requests_with(self, token):
        """Complete requests whose target contains token."""
        with self.lock:
            return [r for r in self.requests if token in r["target"]]

    def conn_count(self):
        with self.lock:
            return len(self.connections)

    # ---- serving ----

    def _accept_loop(self, lsock):
        while not self.stop_event.is_set():
            try:
                sock, peer = lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self._next_conn += 1
                cid = self._next_conn
                self.connections.append({"id": cid, "peer": peer[0], "family": lsock.family})
            t = threading.Thread(target=self._serve, args=(sock, cid, peer), daemon=True)
            t.start()

    def _serve(self, sock, cid, peer):
        sock.settimeout(0.5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Conn(sock, self.stop_event)
        try:
            for _ in range(100000):
                if not self._one_request(conn, cid, peer):
                    break
        except (_ClientGone, OSError):
            pass
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def _one_request(self, conn, cid, peer):
        head = conn.read_until(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        while lines and lines[0] == b"":
            lines.pop(0)
        if not lines:
            return False
        parts = lines[0].decode("latin-1").split(" ")
        if len(parts) != 3:
            self._send(conn, 400, [], b"bad request line\n", "GET", close=True)
            return False
        method, target, version = parts
        headers = []
        for ln in lines[1:]:
            name, _, value = ln.decode("latin-1").partition(":")
            headers.append([name, value.strip(" \t")])
        hget = lambda n: [v for k, v in headers if k.lower() == n]
        te = ",".join(hget("transfer-encoding")).lower()
        chunked = "chunked" in te
        expect = ",".join(hget("expect")).lower()
        body = b""
        if expect == "100-continue" and version == "HTTP/1.1":
            conn.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if chunked:
            body = self._read_chunked(conn)
        elif hget("content-length"):
            body = conn.read_exact(int(hget("content-length")[0]))
        path = urllib.parse.urlsplit(target).path if target.startswith("/") else target
        rec = {"method": method, "target": target, "version": version, "headers": headers,
               "body": body, "chunked": chunked, "conn": cid, "peer": peer[0], "time": time.time()}
        with self.lock:
            self.requests.append(rec)
            self.path_counts[path] = self.path_counts.get(path, 0) + 1
        conn_hdr = ",".join(hget("connection")).lower()
        close = "close" in conn_hdr or (version == "HTTP/1.0" and "keep-alive" not in conn_hdr)
        keep = self._route(conn, rec, path, close)
        linger = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query).get("linger")
        if keep and linger:
            # Keep-alive was promised, but the connection dies after linger ms of idleness:
            # what a pooled upstream connection looks like when the server times it out.
            self.stop_event.wait(int(linger[0]) / 1000.0)
            return False
        return keep

    def _read_chunked(self, conn):
        body = b""
        for _ in range(1 << 20):
            line = conn.read_until(b"\r\n", limit=4096)
            size = int(line[:-2].split(b";")[0].strip(), 16)
            if size == 0:
                for _ in range(1000):  # trailers
                    if conn.read_until(b"\r\n", limit=65536) == b"\r\n":
                        return body
                raise _ClientGone()
            body += conn.read_exact(size)
            conn.read_exact(2)
        raise _ClientGone()

    def _send(self, conn, status, headers, body, method, close=False, reason=None, version="HTTP/1.1",
              length=True):
        reason = reason or {200: "OK", 204: "No Content", 304: "Not Modified", 404: "Not Found",
                            400: "Bad Request"}.get(status, "Status")
        out = ["%s %d %s" % (version, status, reason)]
        out += ["%s: %s" % (k, v) for k, v in headers]
        bodiless = status in (204, 304) or 100 <= status < 200
        if length and not bodiless:
            out.append("Content-Length: %d" % len(body))
        if close:
            out.append("Connection: close")
        data = ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")
        if method != "HEAD" and not bodiless:
            data += body
        conn.sock.sendall(data)
        return not close

    def _route(self, conn, rec, path, close):
        method = rec["method"]
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(rec["target"]).query)
        seg = path.split("/")
        ctype = [("Content-Type", "application/octet-stream")]
        if path == "/echo":
            doc = {k: rec[k] for k in ("method", "target", "version", "headers", "chunked", "conn",
                                       "peer")}
            doc["body"] = rec["body"].decode("latin-1")
            doc["body_len"] = len(rec["body"])
            doc["body_sha256"] = hashlib.sha256(rec["body"]).hexdigest()
            return self._send(conn, 200, [("Content-Type", "application/json")],
                              json.dumps(doc).encode(), method, close)
        if len(seg) == 3 and seg[1] == "size" and seg[2].isdigit():
            n = int(seg[2])
            hdr = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n" \
                  "Content-Length: %d\r\n%s\r\n" % (n, "Connection: close\r\n" if close else "")
            conn.sock.sendall(hdr.encode())
            if method != "HEAD":
                self._stream(conn.sock, n)
            return not close
        if len(seg) == 3 and seg[1] == "chunked" and seg[2].isdigit():
            n = int(seg[2])
            hdr = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n" \
                  "Transfer-Encoding: chunked\r\n%s\r\n" % ("Connection: close\r\n" if close else "")
            conn.sock.sendall(hdr.encode())
            if method != "HEAD":
                sizes = (1000, 7, 4096, 1, 65536, 333)
                off = 0
                i = 0
                while off < n:
                    k = min(sizes[i % len(sizes)], n - off)
                    conn.sock.sendall(b"%x\r\n" % k + body_bytes(k, off) + b"\r\n")
                    off += k
                    i += 1
                conn.sock.sendall(b"0\r\n\r\n")
            return not close
        if len(seg) == 3 and seg[1] == "close" and seg[2].isdigit():
            n = int(seg[2])
            conn.sock.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
            if method != "HEAD":
                self._stream(conn.sock, n)
            return False
        if path == "/stall":
            for _ in range(1200):  # at most 60 s, then give up on the client
                if self.stop_event.wait(0.05):
                    break
                try:
                    if conn.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                        break
                except (BlockingIOError, socket.timeout):
                    pass
                except OSError:
                    break
            return False
        if path == "/slow":
            n = int(q.get("size", ["100000"])[0])
            k = max(1, int(q.get("chunk", ["10000"])[0]))
            delay = int(q.get("delay", ["100"])[0]) / 1000.0
            hdr = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n" \
                  "Content-Length: %d\r\n\r\n" % n
            conn.sock.sendall(hdr.encode())
            if method == "HEAD":
                return not close
            off = 0
            while off < n:
                if self.stop_event.wait(delay):
                    return False
                m = min(k, n - off)
                conn.sock.sendall(body_bytes(m, off))
                off += m
            return not close
        if len(seg) == 3 and seg[1] == "status" and seg[2].isdigit():
            st = int(seg[2])
            return self._send(conn, st, [("Content-Type", "text/plain")],
                              b"status %d\n" % st, method, close)
        if path == "/head":
            return self._send(conn, 200, ctype, body_bytes(1234), method, close)
        if path == "/hop":
            hdrs = [("Content-Type", "text/plain"), ("Connection", "X-Hop-Resp"),
                    ("X-Hop-Resp", "must-not-pass"), ("Keep-Alive", "timeout=99"),
                    ("Proxy-Connection", "keep-alive"), ("Upgrade", "bogus/9"),
                    ("X-End", "end-to-end")]
            return self._send(conn, 200, hdrs, b"hop\n", method, close)
        if len(seg) == 3 and seg[1] == "trunc" and seg[2].isdigit():
            n = int(seg[2])
            conn.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n
                              + body_bytes(n // 2))
            return False
        if len(seg) == 3 and seg[1] == "truncchunked" and seg[2].isdigit():
            n = int(seg[2])
            conn.sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                              + b"%x\r\n" % (n // 2) + body_bytes(n // 2) + b"\r\n")
            return False
        if len(seg) == 3 and seg[1] == "bad" and seg[2] in BAD_RESPONSES:
            conn.sock.sendall(BAD_RESPONSES[seg[2]])
            return False
        if path == "/early-hints":
            conn.sock.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </x.css>; rel=preload\r\n\r\n")
            return self._send(conn, 200, [("Content-Type", "text/plain")], b"after hints\n", method,
                              close)
        if path == "/cache" or path.startswith("/debian/"):
            return self._cache(conn, rec, q, close)
        if path == "/via":
            hdrs = [("Content-Type", "text/plain"), ("Via", "1.0 upstream-cache")]
            return self._send(conn, 200, hdrs, b"via\n", method, close)
        return self._send(conn, 404, [("Content-Type", "text/plain")], b"no route\n", method, close)

    def _cache(self, conn, rec, q, close):
        import email.utils
        method = rec["method"]
        one = lambda k, d=None: q[k][0] if k in q else d
        if one("patient"):  # large bodies to a slow (sanitizer) build: wait longer on sends
            conn.sock.settimeout(float(one("patient")))
        if one("delay"):
            self.stop_event.wait(int(one("delay")) / 1000.0)
        status = int(one("status", "200"))
        if one("flip"):
            with self.lock:
                seen = sum(1 for r in self.requests if r["target"] == rec["target"])
            if seen > 1 and one("flip") == "close":
                return False
            if seen > 1:
                status = int(one("flip"))
        now = time.time()
        hdrs = [("Date", email.utils.formatdate(now, usegmt=True)),
                ("Content-Type", "text/plain" if one("text") else "application/octet-stream")]
        if method not in ("GET", "HEAD"):
            if one("loc"):
                hdrs.append(("Location", one("loc")))
            return self._send(conn, status, hdrs, b"done\n", method, close)
        if one("cc"):
            hdrs.append(("Cache-Control", one("cc")))
        if one("etag"):
            hdrs.append(("ETag", '"%s"' % one("etag")))
        if one("lm"):
            hdrs.append(("Last-Modified", email.utils.formatdate(now - int(one("lm")), usegmt=True)))
        if one("expires"):
            hdrs.append(("Expires", email.utils.formatdate(now + int(one("expires")), usegmt=True)))
        if one("vary"):
            hdrs.append(("Vary", one("vary")))
        if one("cookie"):
            hdrs.append(("Set-Cookie", one("cookie")))
        for a in q.get("age", []):  # each age=V is one Age line, sent as is
            hdrs.append(("Age", a))
        if one("loc"):
            hdrs.append(("Location", one("loc")))
        hget = lambda n: [v for k, v in rec["headers"] if k.lower() == n]
        inm = hget("if-none-match")
        ims = hget("if-modified-since")
        not_mod = False
        if inm and one("etag"):
            not_mod = ('"%s"' % one("etag")) in inm[0] or inm[0].strip() == "*"
        elif ims and one("lm"):
            t = email.utils.parsedate_to_datetime(ims[0]).timestamp()
            not_mod = t >= int(now - int(one("lm")))
        if one("badetag") and (inm or ims) and status == 200:
            # a 304 whose validator matches nothing the cache stored (RFC 9111 4.3.4 case)
            return self._send(conn, 304, hdrs[:1] + [("ETag", '"%s"' % one("badetag"))], b"",
                              method, close)
        if not_mod and status == 200:
            return self._send(conn, 304, hdrs[:1] + hdrs[2:], b"", method, close)
        if one("text"):
            body = text_bytes(int(one("size", "100")))
        else:
            off = int(one("off", "0"))
            if one("bump"):  # a new body on every request: offset + bump * (requests - 1)
                with self.lock:
                    seen = sum(1 for r in self.requests if r["target"] == rec["target"])
                off += int(one("bump")) * (seen - 1)
            body = body_bytes(int(one("size", "100")), off)
        if one("trickle") and method == "GET":
            # 64 KiB every trickle ms; chunked=1: chunk-framed; cut=N: the connection is
            # closed after N body bytes (a truncated response)
            chunked = one("chunked") == "1"
            cut = int(one("cut", "-1"))
            out = ["HTTP/1.1 %d OK" % status] + ["%s: %s" % h for h in hdrs]
            out.append("Transfer-Encoding: chunked" if chunked else
                       "Content-Length: %d" % len(body))
            conn.sock.sendall(("\r\n".join(out) + "\r\n\r\n").encode("latin-1"))
            for i in range(0, len(body), 65536):
                if self.stop_event.wait(int(one("trickle")) / 1000.0):
                    raise _ClientGone()
                part = body[i:i + 65536]
                if 0 <= cut < i + len(part):
                    part = part[:cut - i]
                if chunked and part:
                    part = b"%x\r\n" % len(part) + part + b"\r\n"
                conn.sock.sendall(part)
                if 0 <= cut <= i + 65536:
                    raise _ClientGone()
            if chunked:
                conn.sock.sendall(b"0\r\n\r\n")
            return not close
        if one("chunked") == "1":
            out = ["HTTP/1.1 %d OK" % status] + ["%s: %s" % h for h in hdrs]
            out.append("Transfer-Encoding: chunked")
            data = ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")
            if method != "HEAD":
                for i in range(0, len(body), 100000):
                    part = body[i:i + 100000]
                    data += b"%x\r\n" % len(part) + part + b"\r\n"
                data += b"0\r\n\r\n"
            conn.sock.sendall(data)
            return not close
        return self._send(conn, status, hdrs, body, method, close)

    def _stream(self, sock, n):
        off = 0
        step = PERIOD * 4
        while off < n:
            if self.stop_event.is_set():
                raise _ClientGone()
            m = min(step, n - off)
            # The pattern is periodic: slicing the doubled pattern avoids rebuilding buffers.
            chunk = body_bytes(m, off)
            sock.sendall(chunk)
            off += m


class EchoServer:
    """TCP echo on 127.0.0.1 for CONNECT: echoes everything; on EOF from the client it shuts
    down its write side after echoing what it had, so half-close can be observed."""

    def __init__(self, host="127.0.0.1"):
        self.host = host
        self.port = None
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.sessions = []  # dicts: received (bytes), saw_eof (bool)

    def start(self):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((self.host, 0))
        self.lsock.listen(64)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.stop_event.set()
        self.lsock.close()
        self.thread.join(timeout=5)

    def _loop(self):
        while not self.stop_event.is_set():
            try:
                sock, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            sess = {"received": b"", "saw_eof": False}
            with self.lock:
                self.sessions.append(sess)
            threading.Thread(target=self._serve, args=(sock, sess), daemon=True).start()

    def _serve(self, sock, sess):
        sock.settimeout(0.5)
        try:
            for _ in range(1 << 20):
                if self.stop_event.is_set():
                    return
                try:
                    data = sock.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    sess["saw_eof"] = True
                    sock.shutdown(socket.SHUT_WR)
                    # let the proxy read our FIN before the socket goes
                    time.sleep(0.2)
                    return
                sess["received"] += data
                sock.sendall(data)
        except OSError:
            pass
        finally:
            sock.close()


class StubParent:
    """A fake parent proxy for ProxyRemote tests: records every request head it gets (request
    line and header lines as received) and every connection, forwards nothing, answers each
    request with `status` and the fixed `body` (keep-alive unless the request said close), and
    answers CONNECT with 200 and then echoes the tunnel bytes until EOF. `port` may name a port
    to bind (e.g. one that was dead a moment ago)."""

    def __init__(self, host="127.0.0.1", port=0, body=b"stub parent answer\n", status=200):
        self.host = host
        self.want_port = port
        self.port = None
        self.body = body
        self.status = status
        self.lock = threading.Lock()
        self.heads = []        # dicts: line, method, target, version, headers, conn
        self.connections = 0
        self.tunnels = []      # dicts: target, received (bytes echoed)
        self.stop_event = threading.Event()
        self.lsock = None
        self.thread = None

    def start(self):
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self.lsock = _bind(family, self.host, self.want_port)
        self.lsock.listen(64)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.stop_event.set()
        try:
            self.lsock.close()
        except OSError:
            pass
        self.thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()

    @property
    def hostport(self):
        return "%s:%d" % (self.host, self.port)

    def requests_with(self, token):
        with self.lock:
            return [h for h in self.heads if token in h["target"]]

    def conn_count(self):
        with self.lock:
            return self.connections

    def _loop(self):
        while not self.stop_event.is_set():
            try:
                sock, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.connections += 1
                cid = self.connections
            threading.Thread(target=self._serve, args=(sock, cid), daemon=True).start()

    def _serve(self, sock, cid):
        sock.settimeout(0.5)
        conn = _Conn(sock, self.stop_event)
        try:
            for _ in range(10000):
                head = conn.read_until(b"\r\n\r\n")
                lines = head[:-4].decode("latin-1").split("\r\n")
                parts = lines[0].split(" ")
                headers = []
                for ln in lines[1:]:
                    name, _, value = ln.partition(":")
                    headers.append([name, value.strip(" \t")])
                rec = {"line": lines[0], "method": parts[0],
                       "target": parts[1] if len(parts) > 1 else "",
                       "version": parts[2] if len(parts) > 2 else "", "headers": headers,
                       "conn": cid}
                with self.lock:
                    self.heads.append(rec)
                if rec["method"] == "CONNECT":
                    self._tunnel(conn, rec)
                    return
                cl = [v for k, v in headers if k.lower() == "content-length"]
                if cl and cl[0].isdigit():
                    conn.read_exact(int(cl[0]))
                close = any(k.lower() in ("connection", "proxy-connection") and
                            "close" in v.lower() for k, v in headers)
                out = "HTTP/1.1 %d Stub\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n" \
                      "X-Stub-Parent: %d\r\n%s\r\n" % (self.status, len(self.body), self.port,
                                                      "Connection: close\r\n" if close else "")
                sock.sendall(out.encode("latin-1") + (b"" if rec["method"] == "HEAD"
                                                      else self.body))
                if close:
                    return
        except (_ClientGone, OSError):
            pass
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def _tunnel(self, conn, rec):
        t = {"target": rec["target"], "received": b""}
        with self.lock:
            self.tunnels.append(t)
        conn.sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if conn.buf:
            t["received"] += conn.buf
            conn.sock.sendall(conn.buf)
            conn.buf = b""
        for _ in range(1 << 20):
            try:
                conn._fill()
            except _ClientGone:
                return
            data, conn.buf = conn.buf, b""
            t["received"] += data
            conn.sock.sendall(data)


def _bind(family, host, port):
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, port))
    except OSError:
        s.close()
        raise
    return s


def _ipv6_loopback_ok():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


if __name__ == "__main__":
    o = Origin(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0).start()
    print("origin on port %d (v6: %s)" % (o.port, o.has_v6), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        o.stop()
