#!/usr/bin/python3
"""
netfuzz.py - grammar-aware socket fuzzers for the Gatehouse daemon (issue 10, the standing
campaign). Two flavours, both sending raw bytes over real loopback sockets:

  request   structured-but-mutated HTTP/1.1 requests towards the proxy: methods, targets in
            every form (absolute, origin, authority, asterisk) with odd URLs, versions, headers
            with obs-fold, duplicate or conflicting Content-Length / Transfer-Encoding, chunked
            bodies with odd sizes, extensions and trailers, pipelining, random splits across
            writes, slow writes and half-closes. The proxy forwards to the test origin.
  response  the proxy fetches from a raw origin (RawOrigin, here) that answers each request
            with a mutated response: status lines, headers, chunked, close-delimited and
            truncated bodies, cache headers (Age, Cache-Control, Vary, ETag, Expires).

Oracles: every connection gets well-formed HTTP responses (checked strictly: the proxy writes
them) or a close, never a hang past a generous deadline; the daemon keeps serving a control
request after each batch; the caller checks that the daemon lives and its stderr holds no
sanitizer report (check_daemon). On the response side, a 200 served from the cache carries a
body that the origin sent for that URL in a response a proxy could accept (one of its readings
of the framing: CRLF or bare LF line ends, Transfer-Encoding over Content-Length), and a
relayed body never carries bytes of another URL's response.

Everything is derived from one seed: case N of a run is generated from (seed, N) alone, so a
failure printed as "seed S case N" is replayed with `netfuzz.py --flavour F --seed S --case N`
(which prints the bytes too). Used by tests/integration/test_netfuzz.py (bounded run) and by
tests/fuzz/run-long.sh (hours); standalone it starts its own origin and daemon:

  tests/fuzz/netfuzz.py --bin build/san/gatehouse --flavour request --seconds 60 [--seed S]
  tests/fuzz/netfuzz.py --bin build/san/gatehouse --flavour response --count 2000
  tests/fuzz/netfuzz.py --flavour request --seed S --case N --print   # show one case's bytes

Interesting inputs found by a run can be saved with --save-dir (one file per failing case);
tests/fuzz/corpus/net/ holds the few minimized, hand-checked ones, replayed by every run.
Stdlib only; every socket has a timeout and every loop a bound.
"""

import argparse
import collections
import hashlib
import os
import random
import re
import select
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # the tree stays as checked out (tests/integration too)
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import ghtest  # noqa: E402
from origin import body_bytes  # noqa: E402

CORPUS_NET = os.path.join(HERE, "corpus", "net")
# The daemon's Timeout and KeepAliveTimeout in the configs made here (seconds): a case that
# leaves a request unfinished is answered (408) or closed within Timeout; the client waits
# READ_DEADLINE, far beyond, before calling it a hang.
DAEMON_TIMEOUT = 3
READ_DEADLINE = 25.0
CONTROL_SIZE = 1000
# What the oracles saw, for the run's summary line (counts only; threads add under STATS_LOCK).
STATS = collections.Counter()
STATS_LOCK = threading.Lock()


def stat(key, n=1):
    with STATS_LOCK:
        STATS[key] += n


class Malformed(Exception):
    """The proxy sent bytes that are not a well-formed HTTP/1.1 response stream."""


def case_rng(seed, flavour, case, sub=0):
    """The RNG of one case: a function of (seed, flavour, case, sub) only."""
    h = hashlib.sha256(b"%s/%d/%d/%d" % (flavour.encode(), seed, case, sub)).digest()
    return random.Random(int.from_bytes(h[:8], "big"))


# ---------------------------------------------------------------- the proxy's output, strictly

TOKEN_RE = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
STATUS_RE = re.compile(rb"^HTTP/1\.[01] ([1-9]\d\d) [\t -~\x80-\xff]*$")


class ProxyResponse:
    def __init__(self, status, headers, body, complete):
        self.status = status
        self.headers = headers
        self.body = body
        self.complete = complete

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


def _line(data, pos):
    i = data.find(b"\r\n", pos)
    if i < 0:
        return None, pos
    line = data[pos:i]
    if b"\n" in line or b"\r" in line:
        raise Malformed("bare CR or LF in %r" % line[:80])
    return line, i + 2


def parse_proxy_stream(data, methods, eof):
    """Split what the proxy sent on one connection into responses, strictly (CRLF only, no
    obs-fold, one framing). methods[i] is the method of the i-th request sent (HEAD answers
    have no body; a 2xx to CONNECT ends the HTTP stream). Returns the responses: the last one
    may be incomplete (complete=False) when the connection ended inside its body.
    Raises Malformed."""
    out = []
    pos = 0
    final = 0
    for _ in range(10000):
        if pos >= len(data):
            return out
        line, npos = _line(data, pos)
        if line is None:
            if eof:
                raise Malformed("connection closed inside a status line: %r" % data[pos:pos + 80])
            return out
        m = STATUS_RE.match(line)
        if not m:
            raise Malformed("bad status line %r" % line[:100])
        status = int(m.group(1))
        headers = []
        pos = npos
        for _ in range(1000):
            line, npos = _line(data, pos)
            if line is None:
                raise Malformed("connection closed inside a response head")
            pos = npos
            if line == b"":
                break
            name, sep, value = line.partition(b":")
            if not sep or not TOKEN_RE.match(name):
                raise Malformed("bad header line %r" % line[:100])
            v = value.strip(b" \t")
            if any(c < 0x20 and c != 9 or c == 0x7f for c in v):
                raise Malformed("control byte in header %r" % line[:100])
            headers.append((name.decode("latin-1"), v.decode("latin-1")))
        else:
            raise Malformed("more than 1000 header lines")
        r = ProxyResponse(status, headers, b"", True)
        out.append(r)
        if status < 200:
            if status == 101:
                return out
            continue
        method = methods[final] if final < len(methods) else "GET"
        final += 1
        te = [v for k, v in headers if k.lower() == "transfer-encoding"]
        cl = [v for k, v in headers if k.lower() == "content-length"]
        if te and cl:
            raise Malformed("both Transfer-Encoding and Content-Length")
        if len(cl) > 1:
            raise Malformed("several Content-Length fields %r" % cl)
        if method == "CONNECT" and 200 <= status < 300:
            return out  # a tunnel follows
        if method == "HEAD" and len(cl) == 1 and status >= 400 and eof and \
                "close" in (r.header("Connection") or "").lower() and \
                cl[0].isdigit() and len(data) - pos == int(cl[0]):
            # An error page for a request whose head did not parse: the proxy cannot trust
            # the method it read, sends the page and closes (no framing left to confuse).
            r.body = data[pos:]
            return out
        if method == "HEAD" or status in (204, 304):
            continue
        if te:
            if ",".join(te).replace(" ", "").lower().split(",")[-1] != "chunked":
                raise Malformed("response Transfer-Encoding %r" % te)
            body = bytearray()
            for _ in range(1 << 20):
                line, npos = _line(data, pos)
                if line is None:
                    r.complete = False
                    r.body = bytes(body)
                    return out
                size_s = line.split(b";")[0]
                if not re.match(rb"^[0-9A-Fa-f]{1,15}$", size_s):
                    raise Malformed("bad chunk size line %r" % line[:80])
                size = int(size_s, 16)
                pos = npos
                if size == 0:
                    for _ in range(1000):
                        line, npos = _line(data, pos)
                        if line is None:
                            r.complete = False
                            r.body = bytes(body)
                            return out
                        pos = npos
                        if line == b"":
                            break
                    break
                if len(data) < pos + size + 2:
                    body += data[pos:pos + size]
                    r.complete = False
                    r.body = bytes(body)
                    return out
                body += data[pos:pos + size]
                if data[pos + size:pos + size + 2] != b"\r\n":
                    raise Malformed("chunk data not followed by CRLF")
                pos += size + 2
            r.body = bytes(body)
        elif cl:
            if not re.match(r"^\d{1,15}$", cl[0]):
                raise Malformed("bad Content-Length %r" % cl[0])
            n = int(cl[0])
            r.body = data[pos:pos + n]
            if len(r.body) < n:
                r.complete = False
                return out
            pos += n
        else:
            r.body = data[pos:]
            r.complete = eof
            return out
    raise Malformed("more than 10000 responses on one connection")


# ---------------------------------------------------------------- request flavour

METHODS = ["GET"] * 12 + ["HEAD"] * 2 + ["POST"] * 3 + [
    "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH", "PURGE", "CONNECT", "get", "GET ", "XYZZY",
    "M" * 300, "G\x00T", "", "BREW", "PRI"]
VERSIONS = ["HTTP/1.1"] * 14 + ["HTTP/1.0"] * 3 + [
    "HTTP/0.9", "HTTP/2.0", "HTTP/1.10", "http/1.1", "HTTP/01.1", "HTTP/1", "HTTP/3", "",
    "HTTP/1.1\x00", "HTTP/1.1 ", "HTTP/9.9", "HTTP/1.2"]
PATHS = ["/cache?t={tok}&cc=max-age=300&size={n}", "/size/{n}", "/chunked/{n}", "/echo",
         "/status/{st}", "/head", "/close/{n}", "/cache?t={tok}&cc=max-age=300&vary=X-Fz",
         "/cache?t={tok}&etag=e{n}&cc=no-cache", "/", "/nothing/here",
         "/slow?size=300&chunk=100&delay=5"]
CL_FORMS = ["{n}", "{n}", "{n}", "0{n}", "+{n}", "-1", "{n}, {n}", "{n},{m}", "0x{n}", " {n}",
            "{n} ", "99999999999999999999", "{m}", "", "1e3", "{n}\x00"]
TE_FORMS = ["chunked", "chunked", "chunked", "Chunked", "chunked, chunked", "gzip, chunked",
            "chunked, gzip", "identity", " chunked", "chunked\x0b", "x-chunked", "chunked;q=1",
            "identity, chunked", "\tchunked", "chunk", "chunked,"]
CHUNK_SIZES = ["{x}", "{x}", "{x}", "{X}", "00{x}", "{x};ext=1", "{x} ; e=\"q\"", "{x}\t",
               "-1", "fffffffffffffffffff", "0x{x}", "{x};" + "e" * 300, " {x}", "{x}\x00"]
HEADER_POOL = [
    "User-Agent: netfuzz", "Accept: */*", "Connection: keep-alive", "Connection: close",
    "Connection: close, TE", "Connection: Upgrade", "Upgrade: h2c", "Proxy-Connection: keep-alive",
    "Keep-Alive: timeout=5", "TE: trailers", "Expect: 100-continue", "Expect: nonsense",
    "Range: bytes=0-10", "Range: bytes=-5", "Range: bytes=5-1", "Range: bytes=0-0,5-6,1-",
    "Range: garbage", "Cache-Control: no-cache", "Cache-Control: max-age=0",
    "Cache-Control: only-if-cached", "Cache-Control: max-stale", "Pragma: no-cache",
    "If-None-Match: \"e1\"", "If-None-Match: *", "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT",
    "If-Modified-Since: yesterday", "Authorization: Basic Zm9vOmJhcg==", "Max-Forwards: 0",
    "Max-Forwards: -1", "Via: 1.1 gatehouse", "X-Forwarded-For: 10.0.0.1", "X-Fz: a",
    "X-Fz: b", "Cookie: a=b", "Accept-Encoding: gzip", "Content-Type: text/plain",
    "X-Long: " + "L" * 9000, "X-Empty:", ": no-name", "X Bad: space in name",
    "X-Bad : space before colon", "NoColonHere", "X-Fold: a\r\n folded", "X-Fold2: a\r\n\tfolded",
    "X-Nul: a\x00b", "X-Cr: a\rb", "X-Hi: \xff\xfe", "Host: other.test", "Host:",
    "Trailer: X-T", "Forwarded: for=1.2.3.4", "Proxy-Authorization: Basic eDp5",
]
INTERESTING = b"\r\n\x00 \t:;,\"\x7f\xff0-/%?#@[]"


def gen_target(rng, oport, tok):
    n = rng.choice([0, 1, 10, 100, 1000, 5000, 70000])
    path = rng.choice(PATHS).format(tok=tok, n=n, st=rng.choice([200, 204, 304, 404, 500, 503]))
    host = "127.0.0.1:%d" % oport
    k = rng.random()
    if k < 0.55:
        return "http://%s%s" % (host, path), host
    weird = [
        "HTTP://%s%s" % (host, path), "http://127.0.0.1.:%d%s" % (oport, path),
        "http://%s/%%2e%%2e/%%73ize/10" % host, "http://%s//size/10" % host,
        "http://%s/./size/10" % host, "http://%s/a/../size/10" % host,
        "http://user:pw@%s%s" % (host, path), "http://127.0.0.1:0%d%s" % (oport, path),
        "http://127.0.0.1:%d%s" % (oport + 65536, path), "http://127.0.0.1:%s" % ("9" * 30),
        "http://[::1]:%d%s" % (oport, path), "http://[::1%s" % path, "http:///size/10",
        "http://", "http://%s%s#frag" % (host, path), "http://%s/a b" % host,
        "http://%s/\x01\x7f" % host, "http://%s/%s" % (host, "p" * rng.choice([8000, 70000])),
        "http://%%31%%32%%37.0.0.1:%d/size/10" % oport, "http://127.0.0.1%%2f:%d/" % oport,
        "http://127.0.0.1\x00.evil:%d/" % oport, "http://%s\\size\\10" % host,
        "http://%s?%s" % (host, "q" * 100), "ftp://127.0.0.1:%d/" % oport,
        "https://127.0.0.1:%d/" % oport, "*", "/proxy.pac", "/wpad.dat", "/", "/%00",
        "127.0.0.1:443", "127.0.0.1:%d" % oport, "[::1]:443", "localhost:99999",
        "http://0x7f000001:%d/size/10" % oport, "http://2130706433:%d/size/10" % oport,
        "http://127.1:%d/size/10" % oport, "http://%s:%d:%d/" % ("127.0.0.1", oport, oport),
        "\xc3\xa9", "//%s%s" % (host, path), "http:/%s%s" % (host, path),
    ]
    return rng.choice(weird), host


def gen_chunked(rng, body):
    out = b""
    off = 0
    for _ in range(50):
        if off >= len(body):
            break
        k = min(rng.choice([1, 2, 7, 16, 100, 4096, 70000]), len(body) - off)
        form = rng.choice(CHUNK_SIZES) if rng.random() < 0.3 else "{x}"
        line = form.format(x="%x" % k, X="%X" % k).encode("latin-1")
        eol = b"\n" if rng.random() < 0.05 else b"\r\n"
        out += line + eol + body[off:off + k]
        off += k
        out += b"" if rng.random() < 0.03 else (b"\n" if rng.random() < 0.03 else b"\r\n")
    last = rng.random()
    if last < 0.7:
        out += b"0\r\n\r\n"
    elif last < 0.8:
        out += b"0\r\nX-T: 1\r\nX-U: 2\r\n\r\n"
    elif last < 0.85:
        out += b"0;ext\r\nX-T: 1\r\n folded\r\n\r\n"
    elif last < 0.9:
        out += b"0\r\n\r"   # cut inside the last CRLF (issue 10, item 4)
    elif last < 0.95:
        out += b"0\r\nX-T: 1"  # cut inside a trailer line
    else:
        out += b"000\n\n"
    return out


def gen_one_request(rng, oport, tok):
    """One request: (bytes, method as written)."""
    method = rng.choice(METHODS)
    target, host = gen_target(rng, oport, tok)
    version = rng.choice(VERSIONS)
    sp1 = " " if rng.random() < 0.95 else rng.choice(["  ", "\t", ""])
    sp2 = " " if rng.random() < 0.95 else rng.choice(["  ", "\t", ""])
    line = "%s%s%s%s%s" % (method, sp1, target, sp2, version) if version else \
        "%s%s%s" % (method, sp1, target)
    headers = []
    hk = rng.random()
    if hk < 0.8:
        headers.append("Host: %s" % host)
    elif hk < 0.85:
        headers += ["Host: %s" % host, "Host: %s" % host]
    elif hk < 0.9:
        headers.append("Host: other.test:1")
    for _ in range(rng.choice([0, 0, 1, 2, 3, 5, 8])):
        headers.append(rng.choice(HEADER_POOL))
    if rng.random() < 0.02:
        headers += ["X-Many-%d: %d" % (i, i) for i in range(rng.choice([100, 300, 1000]))]
    body = b""
    bk = rng.random()
    blen = rng.choice([0, 1, 5, 100, 3000, 70000])
    payload = bytes(rng.getrandbits(8) for _ in range(min(blen, 64))) * (blen // 64 + 1)
    payload = payload[:blen]
    if bk < 0.25 or method in ("POST", "PUT", "PATCH") and bk < 0.6:
        form = rng.choice(CL_FORMS)
        delta = rng.choice([0, 0, 0, 0, -1, 1, 10])
        cl = form.format(n=max(0, blen + delta), m=blen + 7)
        headers.append("Content-Length: %s" % cl)
        body = payload
        if rng.random() < 0.1:
            headers.append("Content-Length: %s" % rng.choice(CL_FORMS).format(n=blen, m=blen + 1))
    if 0.6 <= bk < 0.8:
        te = rng.choice(TE_FORMS)
        headers.append("Transfer-Encoding: %s" % te)
        if rng.random() < 0.1:
            headers.append("Transfer-Encoding: chunked")
        if rng.random() < 0.15:
            headers.append("Content-Length: %d" % blen)
        body = gen_chunked(rng, payload)
    rng.shuffle(headers)
    eol = "\r\n" if rng.random() < 0.93 else rng.choice(["\n", "\r", "\r\r\n", "\n\r"])
    head = line + eol + "".join(h + eol for h in headers) + eol
    raw = head.encode("latin-1") + body
    return raw, method.strip().upper()


def mutate(rng, raw):
    """A few byte-level mutations: flip, insert an interesting byte, delete or repeat a span,
    truncate."""
    b = bytearray(raw)
    for _ in range(rng.choice([1, 1, 2, 3, 5])):
        if not b:
            break
        k = rng.random()
        i = rng.randrange(len(b))
        if k < 0.25:
            b[i] ^= 1 << rng.randrange(8)
        elif k < 0.5:
            b.insert(i, rng.choice(INTERESTING))
        elif k < 0.65:
            del b[i:i + rng.choice([1, 2, 5, 30])]
        elif k < 0.8:
            span = b[i:i + rng.choice([1, 4, 20, 200])]
            b[i:i] = span * rng.choice([1, 2, 10])
        elif k < 0.9:
            b[i] = rng.choice(b"0123456789abcdefABCDEF")
        else:
            del b[i:]
    return bytes(b)


def corpus_request(name, oport):
    """A seed of tests/fuzz/corpus/net (@ORIGIN@ stands for the origin's host:port): its bytes
    and the methods of the request lines in it, in order."""
    with open(os.path.join(CORPUS_NET, name), "rb") as f:
        data = f.read().replace(b"@ORIGIN@", b"127.0.0.1:%d" % oport)
    methods = [m.decode() for m in re.findall(rb"(?m)^([A-Z]+) \S+ HTTP/1\.[01]\r?$", data)]
    return data, methods


def gen_request_case(seed, case, oport):
    """(list of segments to write with their delays, methods in order, half_close) for one
    case of the request flavour: 1 to 4 pipelined requests, maybe mutated, split at random."""
    rng = case_rng(seed, "request", case)
    tok = "fz%d-%d" % (seed, case)
    if rng.random() < 0.1 and os.path.isdir(CORPUS_NET):
        seeds = sorted(f for f in os.listdir(CORPUS_NET) if f.startswith("req-"))
        if seeds:
            raw, methods = corpus_request(rng.choice(seeds), oport)
            return _split(rng, mutate(rng, raw) if rng.random() < 0.5 else raw), methods, \
                rng.random() < 0.6
    n = rng.choice([1, 1, 1, 1, 2, 2, 3, 4])
    raws, methods = [], []
    for _ in range(n):
        r, m = gen_one_request(rng, oport, tok)
        raws.append(r)
        methods.append(m)
    raw = b"".join(raws)
    if rng.random() < 0.35:
        raw = mutate(rng, raw)
    return _split(rng, raw), methods, rng.random() < 0.6


def _split(rng, raw):
    segs = []
    pos = 0
    parts = rng.choice([1, 1, 1, 2, 3, 8, 40]) if len(raw) < 200000 else 1
    cuts = sorted(rng.randrange(len(raw) + 1) for _ in range(parts - 1)) if raw else []
    for c in cuts + [len(raw)]:
        delay = rng.choice([0, 0, 0, 0.001, 0.02]) if rng.random() < 0.97 else 0.3
        segs.append((raw[pos:c], delay))
        pos = c
    return segs


def exchange(port, segs, half_close, deadline_s=READ_DEADLINE, source=None):
    """Write segs (bytes, delay before it) on a fresh connection while reading; then read to
    EOF. Returns (received bytes, eof seen, error string or None)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    got = bytearray()
    try:
        s.connect(("127.0.0.1", port))
    except OSError as e:
        s.close()
        return b"", False, "connect: %s" % e
    deadline = time.monotonic() + deadline_s
    eof = False
    try:
        s.settimeout(0.0)
        for data, delay in segs:
            if delay:
                time.sleep(delay)
            while data:
                try:
                    k = s.send(data)
                    data = data[k:]
                except BlockingIOError:
                    if _drain(s, got, 0.05):
                        eof = True
                        break
                    if time.monotonic() > deadline:
                        return bytes(got), False, "send stalled"
                except OSError:
                    eof = True  # reset: the proxy gave up on us, which is allowed
                    break
            if eof:
                break
            if _drain(s, got, 0):
                eof = True
                break
        if half_close and not eof:
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        while not eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return bytes(got), False, "no close within %.0f s" % deadline_s
            if _drain(s, got, min(left, 1.0)):
                eof = True
        return bytes(got), True, None
    finally:
        s.close()


def _drain(s, got, wait):
    """Read what is there (waiting up to wait s for the first byte); True on EOF or reset."""
    r, _, _ = select.select([s], [], [], wait)
    if not r:
        return False
    for _ in range(1000):
        try:
            data = s.recv(262144)
        except BlockingIOError:
            return False
        except OSError:
            return True
        if not data:
            return True
        got += data
        if len(got) > 64 << 20:
            return True
    return False


def control_check(port, oport, seed):
    """The control request after each batch: a cacheable GET through the proxy answered 200
    with the right body. Returns None or the problem."""
    url = "http://127.0.0.1:%d/cache?t=control-%d&cc=max-age=300&size=%d" % (oport, seed,
                                                                               CONTROL_SIZE)
    try:
        r = ghtest.get(port, url, timeout=30)
    except Exception as e:  # noqa: BLE001 - any failure is the finding
        return "control request failed: %r" % e
    if r.status != 200 or r.body != body_bytes(CONTROL_SIZE):
        return "control request answered %s (%d bytes)" % (r.status, len(r.body))
    return None


def run_request_case(seed, case, port, oport):
    segs, methods, half = gen_request_case(seed, case, oport)
    data, eof, err = exchange(port, segs, half)
    if err:
        return "%s after %d bytes: %r" % (err, len(data), data[:200])
    try:
        rs = parse_proxy_stream(data, methods, eof)
    except Malformed as e:
        return "malformed response (%s): %r" % (e, data[:300])
    stat("responses", len(rs))
    stat("closed without a response" if not rs else "answered")
    return None


# ---------------------------------------------------------------- response flavour

RESP_STATUS = [200] * 40 + [203, 301, 302, 304, 204, 404, 410, 500, 503, 206, 100, 199, 999,
                            0, 20, 2000]
RESP_VERSIONS = ["HTTP/1.1"] * 12 + ["HTTP/1.0"] * 2 + ["HTTP/1.2", "HTTP/2", "HTTP/0.9", "ICY",
                                                        "http/1.1", "HTTP/1.1 ", ""]
RESP_CC = ["max-age=300"] * 8 + ["public, max-age=300", "s-maxage=300", "max-age=0",
           "no-store", "private", "no-cache", "max-age=300, must-revalidate", "max-age=abc",
           "max-age=-1", "max-age=99999999999999999999", "max-age=300, stale-if-error=60",
           "max-age=1, stale-while-revalidate=30", "max-age=\"300\"", "max-age=300, max-age=0",
           "no-cache=\"Set-Cookie\", max-age=300", ""]
RESP_AGE = ["0", "100", "7200, 0", "abc", "-5", "99999999999", "1, 2", "", "400"]
RESP_ETAG = ['"x"', 'W/"x"', "noquotes", '"unterminated', '""', '"a", "b"']
RESP_VARY = ["*", "Accept-Encoding", "X-Fz", "", ", ,", "X-Fz, Accept", "Host"]
RESP_FRAMING = ["cl"] * 12 + ["chunked"] * 8 + ["close"] * 3 + [
    "cl_short", "cl_long", "chunked_trunc", "chunked_bad", "both", "dup_cl", "dup_cl_same",
    "cl_list", "none_keepalive"]


def resp_tag(seed, case, r):
    return b"[%x.%x:%d]" % (seed, case, r)


def gen_response(seed, case, r):
    """The origin's r-th answer for case: (bytes, close after sending)."""
    crng = case_rng(seed, "response", case)
    same = crng.random() < 0.7
    rng = case_rng(seed, "response", case, 0 if same else r)
    tag = resp_tag(seed, case, 0 if same else r)
    n = rng.choice([0, 1, 10, 100, 1000, 5000, 65536, 70000, 300000]) if rng.random() < 0.95 \
        else 0
    body = (tag * (n // len(tag) + 1))[:n]
    status = rng.choice(RESP_STATUS)
    version = rng.choice(RESP_VERSIONS)
    reason = rng.choice(["OK", "OK", "", "Whatever It Is", "\x01bad", "R" * 500])
    sl = "%s %d %s" % (version, status, reason) if rng.random() < 0.95 else "%s %d" % (version,
                                                                                      status)
    headers = ["Content-Type: application/octet-stream"]
    if rng.random() < 0.9:
        headers.append("Cache-Control: %s" % rng.choice(RESP_CC))
    if rng.random() < 0.3:
        headers.append("Age: %s" % rng.choice(RESP_AGE))
    if rng.random() < 0.3:
        headers.append("ETag: %s" % rng.choice(RESP_ETAG))
    if rng.random() < 0.2:
        headers.append("Last-Modified: %s" % rng.choice(["Sat, 01 Jan 2000 00:00:00 GMT",
                                                         "garbage", ""]))
    if rng.random() < 0.2:
        headers.append("Expires: %s" % rng.choice(["Thu, 01 Jan 2099 00:00:00 GMT", "0",
                                                   "Sat, 01 Jan 2000 00:00:00 GMT"]))
    if rng.random() < 0.15:
        headers.append("Vary: %s" % rng.choice(RESP_VARY))
    if rng.random() < 0.05:
        headers.append("Set-Cookie: s=1")
    if rng.random() < 0.05:
        headers.append("X-Fold: a\r\n continued")
    if rng.random() < 0.03:
        headers.append("X-Bad : 1")
    if rng.random() < 0.03:
        headers.append("NoColon")
    if rng.random() < 0.03:
        headers += ["X-Fill-%d: %s" % (i, "f" * 200) for i in range(rng.choice([50, 400]))]
    if status in (301, 302):
        headers.append("Location: /elsewhere")
    if status == 206:
        headers.append("Content-Range: bytes 0-%d/%d" % (max(0, n - 1), n + 10))
    framing = rng.choice(RESP_FRAMING)
    close = framing in ("close", "cl_short", "chunked_trunc") or rng.random() < 0.15
    bodybytes = body
    if framing == "cl":
        headers.append("Content-Length: %d" % n)
    elif framing == "cl_short":
        headers.append("Content-Length: %d" % (n + 10))
    elif framing == "cl_long":
        headers.append("Content-Length: %d" % max(0, n - 5))
    elif framing in ("chunked", "chunked_trunc", "chunked_bad", "both"):
        headers.append("Transfer-Encoding: %s" % (rng.choice(TE_FORMS) if rng.random() < 0.2
                                                 else "chunked"))
        if framing == "both":
            headers.append("Content-Length: %d" % n)
        bodybytes = gen_chunked(rng, body)
        if framing == "chunked_trunc":
            bodybytes = bodybytes[:rng.randrange(len(bodybytes) + 1)]
        elif framing == "chunked_bad":
            bodybytes = mutate(rng, bodybytes)
    elif framing == "dup_cl":
        headers += ["Content-Length: %d" % n, "Content-Length: %d" % (n + 1)]
    elif framing == "dup_cl_same":
        headers += ["Content-Length: %d" % n, "Content-Length: %d" % n]
    elif framing == "cl_list":
        headers.append("Content-Length: %d, %d" % (n, n))
    elif framing == "close":
        headers.append("Connection: close")
    # "none_keepalive": no framing and the connection stays open: the body has no end.
    if close and rng.random() < 0.5:
        headers.append("Connection: close")
    rng.shuffle(headers)
    eol = "\r\n" if rng.random() < 0.95 else "\n"
    head = (sl + eol + "".join(h + eol for h in headers) + eol).encode("latin-1")
    if rng.random() < 0.05:
        head = b"HTTP/1.1 100 Continue\r\n\r\n" + head
    raw = head + bodybytes
    if rng.random() < 0.12:
        raw = mutate(rng, head) + bodybytes
        close = True
    if rng.random() < 0.04:
        raw = raw[:rng.randrange(len(raw) + 1)]
        close = True
    return raw, close


def _lines(data, pos, lf_ok):
    """Next line from pos: (line, next pos) or (None, pos); lf_ok accepts a bare LF end."""
    i = data.find(b"\n", pos)
    if i < 0:
        return None, pos
    if i > pos and data[i - 1] == 0x0D:
        return data[pos:i - 1], i + 1
    if not lf_ok:
        return False, pos
    return data[pos:i], i + 1


def origin_readings(raw, closed):
    """Every body a proxy could take as a complete 200 from what the origin sent (raw, and
    whether it closed right after): the strict CRLF reading and the one tolerating a bare LF
    in the head (never in chunked framing), Transfer-Encoding over Content-Length. Empty when
    no reading gives a complete 200."""
    out = set()
    for lf_ok in (False, True):
        b = _origin_reading(raw, closed, lf_ok)
        if b is not None:
            out.add(b)
    return out


def _origin_reading(raw, closed, lf_ok):
    pos = 0
    for _ in range(5):
        line, pos = _lines(raw, pos, lf_ok)
        if not line:
            return None
        m = re.match(rb"^HTTP/1\.\d (\d\d\d)(?: |$)", line)
        if not m:
            return None
        status = int(m.group(1))
        fields = {}
        for _ in range(2000):
            line, pos = _lines(raw, pos, lf_ok)
            if line is None or line is False:
                return None
            if line == b"":
                break
            name, sep, value = line.partition(b":")
            low = line.lower()
            if b"content-length" in low or b"transfer-encoding" in low:
                if not sep or not TOKEN_RE.match(name):
                    return None  # a framing header a proxy must not half-read
            if line[:1] in (b" ", b"\t"):
                continue  # obs-fold of another field
            fields.setdefault(name.strip().lower(), []).append(value.strip(b" \t"))
        else:
            return None
        if 100 <= status < 200:
            continue
        if status != 200:
            return None
        te = fields.get(b"transfer-encoding")
        cl = fields.get(b"content-length")
        if te:
            codings = b",".join(te).replace(b" ", b"").lower().split(b",")
            if codings[-1] != b"chunked":
                # RFC 9112 6.3: a response whose last coding is not chunked ends at the close
                return raw[pos:] if closed else None
            # chunked framing is CRLF only, whatever the head's line ends (issue 10 item
            # 15: the proxy refuses a bare LF there, mid-body when the head has gone out)
            return _origin_chunked(raw, pos, False)
        if cl:
            vals = set(v.strip() for v in b",".join(cl).split(b","))
            if len(vals) != 1:
                return None
            v = vals.pop()
            if not re.match(rb"^\d{1,15}$", v):
                return None
            n = int(v)
            return raw[pos:pos + n] if len(raw) >= pos + n else None
        return raw[pos:] if closed else None
    return None


def _origin_chunked(raw, pos, lf_ok):
    body = bytearray()
    for _ in range(1 << 20):
        line, pos = _lines(raw, pos, lf_ok)
        if not line:
            return None
        m = re.match(rb"^([0-9A-Fa-f]+)(?:[ \t]*;.*)?$", line)
        if not m or len(m.group(1)) > 15:
            return None
        size = int(m.group(1), 16)
        if size == 0:
            for _ in range(1000):
                line, pos = _lines(raw, pos, lf_ok)
                if line is None or line is False:
                    return None
                if line == b"":
                    return bytes(body)
                if line[:1] in (b" ", b"\t") or b":" not in line:
                    return None  # obs-fold or junk in the trailers: a proxy may abort
            return None
        if len(raw) < pos + size:
            return None
        body += raw[pos:pos + size]
        pos += size
        line, pos = _lines(raw, pos, lf_ok)
        if line != b"":
            return None
    return None


class RawOrigin:
    """The response flavour's origin: thread per connection, answers GET /fz/SEED/CASE with
    gen_response(SEED, CASE, r) for its r-th request, records what it sent per URL path."""

    def __init__(self):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(512)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.sent = {}      # path -> [(raw, closed)]
        self.count = {}     # path -> requests seen
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stop_ev.set()
        self.thread.join(5)
        self.lsock.close()

    def readings(self, path):
        """The set of acceptable 200 bodies sent for path so far, and whether anything sent
        for it was not a clean complete message (truncation allowed downstream)."""
        with self.lock:
            sent = list(self.sent.get(path, []))
        ok = set()
        for raw, closed in sent:
            ok |= origin_readings(raw, closed)
        return ok, sent

    def _loop(self):
        while not self.stop_ev.is_set():
            try:
                s, _ = self.lsock.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        s.settimeout(0.5)
        buf = b""
        deadline = time.monotonic() + 60
        try:
            while not self.stop_ev.is_set() and time.monotonic() < deadline:
                i = buf.find(b"\r\n\r\n")
                if i < 0:
                    try:
                        d = s.recv(65536)
                    except socket.timeout:
                        continue
                    except OSError:
                        return
                    if not d:
                        return
                    buf += d
                    if len(buf) > 1 << 20:
                        return
                    continue
                head, buf = buf[:i], buf[i + 4:]
                parts = head.split(b"\r\n")[0].split(b" ")
                m = re.match(rb"^/fz/(\d+)/(\d+)", parts[1] if len(parts) > 1 else b"")
                if not m:
                    s.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    continue
                path = m.group(0).decode()
                with self.lock:
                    r = self.count.get(path, 0)
                    self.count[path] = r + 1
                raw, close = gen_response(int(m.group(1)), int(m.group(2)), r)
                with self.lock:
                    self.sent.setdefault(path, []).append((raw, close))
                try:
                    s.sendall(raw)
                except OSError:
                    return
                if close:
                    return
        finally:
            s.close()


def run_response_case(seed, case, port, ro):
    """Two or three GETs for the case's URL through the proxy, judged as the module says."""
    rng = case_rng(seed, "response-client", case)
    path = "/fz/%d/%d" % (seed, case)
    url = "http://127.0.0.1:%d%s" % (ro.port, path)
    for k in range(rng.choice([2, 2, 3])):
        hdrs = []
        if rng.random() < 0.2:
            hdrs.append(("X-Fz", rng.choice(["a", "b"])))
        raw = ghtest.build(url, hdrs, close=True)
        data, eof, err = exchange(port, [(raw, 0)], False)
        if err:
            return "request %d: %s after %d bytes: %r" % (k, err, len(data), data[:200])
        try:
            rs = parse_proxy_stream(data, ["GET"], eof)
        except Malformed as e:
            return "request %d: malformed response (%s): %r" % (k, e, data[:300])
        finals = [r for r in rs if r.status >= 200]
        if not finals:
            continue  # a close without an answer (e.g. the origin's response was unusable)
        r = finals[0]
        ok, sent = ro.readings(path)
        cs = r.header("Cache-Status") or ""
        hit = cs.startswith("Gatehouse; hit") or "; hit" in cs
        if not r.complete:
            if hit:
                return "request %d: a hit was cut short (%d bytes)" % (k, len(r.body))
            if all(origin_readings(raw, closed) for raw, closed in sent):
                return ("request %d: relayed body cut short (%d bytes) though the origin's "
                        "responses were complete" % (k, len(r.body)))
            continue
        if r.status != 200:
            continue
        stat("hits checked" if hit else "relayed 200s checked")
        if hit and r.body not in ok:
            return ("request %d: the cache served a %d-byte body that the origin never sent "
                    "as a complete 200 for this URL (Cache-Status %r; origin sent %d responses)"
                    % (k, len(r.body), cs, len(sent)))
        # A relayed body holds this URL's bytes only: no tag of another case (a tag that a
        # mutation made is in what the origin sent for this URL).
        sent_all = b"".join(raw for raw, _ in sent)
        for m in re.finditer(rb"\[([0-9a-f]+)\.([0-9a-f]+):\d+\]", r.body[:1 << 20]):
            if (int(m.group(2), 16) != case or int(m.group(1), 16) != seed) and \
                    m.group(0) not in sent_all:
                return "request %d: body carries another URL's bytes %r" % (k, m.group(0))
        if rng.random() < 0.3:
            time.sleep(rng.choice([0.05, 1.1]))
    return None


# ---------------------------------------------------------------- the driver

def fuzz(flavour, port, oport_or_origin, seed, seconds=None, count=None, batch=64,
         concurrency=8, check_daemon=None, log=print, first_case=0, control_oport=None):
    """Run cases first_case, first_case+1, ... of flavour against the proxy on port until
    seconds pass or count cases ran, in batches of batch cases on concurrency threads; after
    each batch the control request and check_daemon() (None or a problem string) must pass.
    Returns (cases run, [(case, problem)]); stops at the first batch with a problem."""
    assert seconds or count
    start = time.monotonic()
    case = first_case
    ran = 0
    failures = []
    if flavour == "request":
        oport = oport_or_origin
        run = lambda c: run_request_case(seed, c, port, oport)  # noqa: E731
    else:
        oport = None
        run = lambda c: run_response_case(seed, c, port, oport_or_origin)  # noqa: E731
    control_origin = control_oport or (oport if flavour == "request" else None)
    for _ in range(1 << 30):
        if seconds and time.monotonic() - start >= seconds:
            break
        if count and ran >= count:
            break
        n = batch if not count else min(batch, count - ran)
        cases = list(range(case, case + n))
        case += n
        results = {}
        lock = threading.Lock()

        def worker(todo):
            for c in todo:
                try:
                    p = run(c)
                except Exception as e:  # noqa: BLE001 - a harness error is reported too
                    p = "harness error: %r" % e
                with lock:
                    results[c] = p

        threads = [threading.Thread(target=worker, args=(cases[i::concurrency],), daemon=True)
                   for i in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(READ_DEADLINE * (batch // concurrency + 2) * 3)
        ran += n
        failures += [(c, p) for c, p in sorted(results.items()) if p]
        failures += [(c, "case did not finish") for c in cases if c not in results]
        problem = None
        if control_origin:
            problem = control_check(port, control_origin, seed)
        if not problem and check_daemon:
            problem = check_daemon()
        if problem:
            failures.append((cases[-1], "after the batch of cases %d..%d: %s"
                             % (cases[0], cases[-1], problem)))
        if failures:
            break
    with STATS_LOCK:
        seen = ", ".join("%s %d" % kv for kv in sorted(STATS.items()))
        STATS.clear()
    log("netfuzz %s: seed %d, %d cases in %.1f s, %d failures (%s)"
        % (flavour, seed, ran, time.monotonic() - start, len(failures), seen))
    return ran, failures


def daemon_conf(port, cache_root, extra=()):
    """A config for the fuzzed daemon: loopback only, cache on, short timeouts. port may be a
    number or a placeholder such as "{port}"."""
    return "\n".join([
        "# written by tests/fuzz/netfuzz.py", "Listen 127.0.0.1:%s" % port,
        "ProxyTimeout %d" % DAEMON_TIMEOUT, "Timeout %d" % DAEMON_TIMEOUT,
        "KeepAliveTimeout 1", "Workers 2", "LogLevel warn", "User root", "ProxyVia On",
        "AllowCONNECT 443", "CacheRoot %s" % cache_root, "CacheSize 256M",
        "CacheEnable lmdb /"] + list(extra) + [
        "<Proxy *>", "    Require ip 127.0.0.0/8 ::1",
        "    <Limit PURGE>", "        Require ip 127.0.0.1", "    </Limit>", "</Proxy>", ""])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=ghtest.gh_binary())
    ap.add_argument("--flavour", choices=("request", "response", "both"), default="both")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--count", type=int, default=None)
    ap.add_argument("--case", type=int, default=None, help="run (or --print) this case only")
    ap.add_argument("--print", action="store_true", help="print the case's bytes and exit")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    if args.print:
        if args.case is None:
            ap.error("--print needs --case")
        if args.flavour in ("request", "both"):
            segs, methods, half = gen_request_case(seed, args.case, 8080)
            print("request case %d (origin port 8080), half-close %s, %d writes:"
                  % (args.case, half, len(segs)))
            print(repr(b"".join(d for d, _ in segs)))
        if args.flavour in ("response", "both"):
            for r in range(3):
                raw, close = gen_response(seed, args.case, r)
                print("response %d (close after: %s): %r" % (r, close, raw[:2000]))
        return 0
    import shutil
    import tempfile
    from origin import Origin
    work = args.workdir or tempfile.mkdtemp(prefix="netfuzz-")
    os.makedirs(work, exist_ok=True)
    flavours = ["request", "response"] if args.flavour == "both" else [args.flavour]
    origin = Origin().start()
    ro = RawOrigin().start()
    rc = 0
    try:
        for fl in flavours:
            port = ghtest.free_port()
            text = daemon_conf(port, os.path.join(work, "cache-%s" % fl))
            d = ghtest.Daemon(os.path.abspath(args.bin), work, "netfuzz-%s" % fl, text,
                              [("127.0.0.1", port)]).start()

            def check(d=d):
                if not d.alive():
                    return "the daemon died (exit %s)" % d.proc.returncode
                return d.sanitizer_report()

            try:
                count = 1 if args.case is not None else args.count
                seconds = None if args.case is not None else (args.seconds or
                                                              (None if count else 60))
                _, failures = fuzz(fl, port, origin.port if fl == "request" else ro, seed,
                                   seconds=seconds, count=count, check_daemon=check,
                                   first_case=args.case or 0, control_oport=origin.port,
                                   batch=1 if args.case is not None else 64)
            finally:
                d.stop()
            rep = d.sanitizer_report()
            if rep:
                failures.append((-1, "sanitizer report:\n" + rep))
            for c, p in failures:
                print("FAIL %s seed %d case %d: %s" % (fl, seed, c, p))
                print("  replay: %s --flavour %s --seed %d --case %d [--print]"
                      % (sys.argv[0], fl, seed, c))
            if failures:
                rc = 1
                print("daemon stderr: %s" % d.stderr_path)
    finally:
        ro.stop()
        origin.stop()
        if rc == 0 and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
