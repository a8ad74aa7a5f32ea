"""
test_block_startup.py - the blocked-address set has no gap (issue 10, item 2).

ProxyBlock names block at once by name, but the addresses they resolve to are only known once
the background resolver has its answers. Until then a request by IP literal, or through another
name for the same address, must not pass: it waits (bounded by DNSTimeout) for the first
answers of every ProxyBlock name, then is decided; when no DNS server answers in time it fails
closed with a 503 naming the cause. The same holds right after a SIGHUP that adds a name.

The daemons here resolve through SlowDns, a small DNS server on a loopback UDP socket whose
answers for some names are held back (dnsmasq cannot delay), or which answers nothing at all
("dead"). blk.test and alias.test both resolve to 127.0.0.10, where a second test origin
listens: any request that reaches it was let through by mistake, whatever it answered.
Requests are fired from the moment the listener accepts, and the tests check that they really
were sent before the held-back answer went out (else they would prove nothing).
"""

import heapq
import os
import select
import signal
import socket
import struct
import threading
import time
import uuid

import pytest

import ghtest
from origin import Origin

BLOCKED_ADDR = "127.0.0.10"


class SlowDns:
    """A UDP DNS server on 127.0.0.1: A records from `records` ({name: ipv4}), an empty answer
    (NODATA) for the other types of those names, NXDOMAIN for everything else. An answer for a
    name in `delay` ({name: seconds}) goes out that much later (others are not held up);
    while `dead` is set, nothing is answered. `sent` records when the first answer for each
    name went out (time.monotonic())."""

    def __init__(self, records):
        self.records = dict(records)
        self.delay = {}
        self.dead = False
        self.sent = {}
        self.queries = {}
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stop_event.set()
        self.thread.join(5)
        self.sock.close()

    @staticmethod
    def _parse(pkt):
        """(id, flags, name, qtype, end of question) or None."""
        if len(pkt) < 12:
            return None
        qid, flags, qd = struct.unpack(">HHH", pkt[:6])
        if qd != 1:
            return None
        i, labels = 12, []
        while i < len(pkt) and pkt[i] != 0:
            n = pkt[i]
            if n & 0xC0:
                return None
            labels.append(pkt[i + 1:i + 1 + n].decode("latin-1"))
            i += 1 + n
        if i + 5 > len(pkt):
            return None
        qtype, = struct.unpack(">H", pkt[i + 1:i + 3])
        return qid, flags, ".".join(labels).lower(), qtype, i + 5

    def _answer(self, pkt):
        p = self._parse(pkt)
        if p is None:
            return None, None
        qid, flags, name, qtype, qend = p
        addr = self.records.get(name)
        answers = b""
        rcode = 0
        if addr is None:
            rcode = 3
        elif qtype == 1:
            answers = struct.pack(">HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(addr)
        flags_out = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | rcode
        head = struct.pack(">HHHHHH", qid, flags_out, 1, 1 if answers else 0, 0, 0)
        return name, head + pkt[12:qend] + answers

    def _loop(self):
        pending = []  # (due, seq, name, reply, addr)
        seq = 0
        while not self.stop_event.is_set():
            now = time.monotonic()
            while pending and pending[0][0] <= now:
                _, _, name, reply, addr = heapq.heappop(pending)
                self._send(name, reply, addr)
            wait = 0.1 if not pending else max(0.0, min(0.1, pending[0][0] - now))
            r, _, _ = select.select([self.sock], [], [], wait)
            if not r:
                continue
            try:
                pkt, addr = self.sock.recvfrom(1500)
            except OSError:
                continue
            name, reply = self._answer(pkt)
            if reply is None:
                continue
            with self.lock:
                self.queries[name] = self.queries.get(name, 0) + 1
                dead = self.dead
                delay = self.delay.get(name, 0)
            if dead:
                continue
            if delay:
                seq += 1
                heapq.heappush(pending, (time.monotonic() + delay, seq, name, reply, addr))
            else:
                self._send(name, reply, addr)

    def _send(self, name, reply, addr):
        with self.lock:
            if self.dead:
                return
            self.sent.setdefault(name, time.monotonic())
        try:
            self.sock.sendto(reply, addr)
        except OSError:
            pass

    def reset(self):
        with self.lock:
            self.delay = {}
            self.dead = False
            self.sent = {}
            self.queries = {}


@pytest.fixture(scope="module")
def slowdns():
    d = SlowDns({"blk.test": BLOCKED_ADDR, "alias.test": BLOCKED_ADDR,
                 "ok.test": "127.0.0.1", "other.test": "127.0.0.11"}).start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def blocked_origin():
    """A test origin on the blocked address: whatever reaches it passed the block."""
    o = Origin(host4=BLOCKED_ADDR).start()
    yield o
    o.stop()


@pytest.fixture
def sdns(slowdns):
    slowdns.reset()
    yield slowdns
    slowdns.reset()


def conf(dns_port, extra, workers=2, dns_timeout=8000, allow_connect=None):
    lines = ["# written by tests/integration/test_block_startup.py", "Listen 127.0.0.1:{port}",
             "DNSServer 127.0.0.1:%d" % dns_port, "DNSTimeout %d" % dns_timeout,
             "Workers %d" % workers, "User root", "ProxyTimeout 5",
             "LogLevel %s" % os.environ.get("GH_TEST_LOGLEVEL", "info")]
    if allow_connect:
        lines.append("AllowCONNECT %d" % allow_connect)
    lines += list(extra)
    lines += ["<Proxy *>", "    Require ip 127.0.0.1 ::1", "</Proxy>"]
    return "\n".join(lines) + "\n"


def fire(port, urls, until, per_thread=25, threads=4):
    """From now until `until` (monotonic), threads x at most per_thread requests, cycling
    through urls (a URL without a scheme is a CONNECT authority); each with a fresh token.
    Returns [(sent_at, url, token, status, body)]."""
    out, lock = [], threading.Lock()

    def one(url):
        tok = uuid.uuid4().hex
        sent = time.monotonic()
        if "://" in url:
            sep = "&" if "?" in url else "?"
            r = ghtest.get(port, url + sep + "t=" + tok)
        else:
            c = ghtest.Conn("127.0.0.1", port)
            try:
                c.send("CONNECT %s HTTP/1.1\r\nHost: %s\r\nX-Token: %s\r\n\r\n" % (url, url, tok))
                r = c.read_response("CONNECT")
            finally:
                c.close()
        with lock:
            out.append((sent, url, tok, r.status, r.body))

    def loop(k):
        for i in range(per_thread):
            if time.monotonic() >= until:
                return
            one(urls[(k + i) % len(urls)])

    ts = [threading.Thread(target=loop, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    return out


def assert_all_blocked(results, origin, name="blk.test"):
    assert results, "no request was made"
    bad = [(u, s, b[:200]) for _, u, _, s, b in results if s != 403]
    assert not bad, "requests not refused: %r" % bad[:5]
    for _, url, tok, _, body in results:
        assert ("ProxyBlock " + name).encode() in body, (url, body[:300])
        assert not origin.requests_with(tok), "%s reached the blocked origin" % url


def test_blocked_addresses_hold_from_the_first_request(start_daemon, sdns, blocked_origin):
    """The answer for blk.test is held back 3 s: requests by IP literal, CONNECT by literal
    and through alias.test, fired as soon as the port accepts, all get the ProxyBlock 403 (they
    wait for the answer), none reaches the origin on the blocked address."""
    op = blocked_origin.port
    sdns.delay["blk.test"] = 3.0
    conns_before = blocked_origin.conn_count()
    d = start_daemon(text=conf(sdns.port, ["ProxyBlock blk.test"], allow_connect=op))
    started = time.monotonic()
    urls = ["http://%s:%d/echo" % (BLOCKED_ADDR, op), "http://alias.test:%d/echo" % op,
            "%s:%d" % (BLOCKED_ADDR, op)]
    results = fire(d.port, urls, until=started + 4.5)
    assert_all_blocked(results, blocked_origin)
    assert blocked_origin.conn_count() == conns_before
    # The test means something only if requests went out before the answer did.
    answered = sdns.sent.get("blk.test")
    assert answered is not None, "the daemon never got its answer for blk.test"
    early = [r for r in results if r[0] < answered]
    assert len(early) >= 2, "no request was sent before the DNS answer (%d)" % len(results)


def test_reload_adding_a_name_has_no_gap(start_daemon, sdns, blocked_origin, ctx):
    """After a SIGHUP adding `ProxyBlock blk.test` (its answer held back 3 s), requests by
    literal or alias under the new configuration wait for that answer and are refused. One
    worker, so that a word added by the same reload tells when the new configuration is in
    force."""
    op = blocked_origin.port
    d = start_daemon(text=conf(sdns.port, ["ProxyBlock other.test"], workers=1))
    lit = "http://%s:%d/echo" % (BLOCKED_ADDR, op)
    # Before: the literal is not blocked (other.test is elsewhere).
    r = ghtest.get(d.port, lit)
    assert r.status == 200, r
    sdns.delay["blk.test"] = 3.0
    text = conf(sdns.port, ["ProxyBlock other.test blk.test reloadmark"], workers=1)
    with open(d.conf, "w") as f:
        f.write(text.replace("{port}", str(d.port)))
    ok0 = d.stderr_text().count("configuration reloaded")
    d.proc.send_signal(signal.SIGHUP)
    mark = "http://reloadmark.test:%d/" % op
    assert ghtest.poll(lambda: ghtest.get(d.port, mark).status == 403, timeout=10,
                       interval=0.02), d.stderr_tail()
    # (main logs the reload after handing the configuration over: the worker may be first)
    assert ghtest.poll(lambda: d.stderr_text().count("configuration reloaded") > ok0,
                       timeout=10), d.stderr_tail()
    started = time.monotonic()
    # A reload keeping a name (other.test) and adding one used to crash the resolver thread.
    assert d.alive(), d.stderr_tail()
    results = fire(d.port, [lit, "http://alias.test:%d/echo" % op], until=started + 4.0)
    assert_all_blocked(results, blocked_origin)
    answered = sdns.sent.get("blk.test")
    assert answered is not None and any(r[0] < answered for r in results), \
        "no request was sent before the DNS answer"
    # Once the answer is in, hosts at other addresses are served again.
    assert ghtest.get(d.port, "http://ok.test:%d/echo" % ctx.origin_port).status == 200


def test_dead_dns_fails_closed_and_recovers(start_daemon, sdns, blocked_origin, ctx):
    """No DNS answer at all: requests that need the blocked set get a 503 naming the cause
    after DNSTimeout, and keep getting it after the resolver gave up on its first try (never
    forwarded); requests decided without it are served (name block, subnet block, PAC).
    When DNS answers again, the set fills and the literal is refused by the name's address."""
    op = blocked_origin.port
    sdns.dead = True
    d = start_daemon(text=conf(sdns.port, ["ProxyBlock blk.test 127.0.0.99 casino"],
                               dns_timeout=1000))
    lit = "http://%s:%d/echo" % (BLOCKED_ADDR, op)
    deadline = time.monotonic() + 7.0  # beyond c-ares' 2 tries and a first retry
    seen = 0
    while time.monotonic() < deadline:
        tok = uuid.uuid4().hex
        r = ghtest.get(d.port, lit + "?t=" + tok)
        assert r.status == 503, r
        assert b"not resolved yet" in r.body and b"DNSTimeout" in r.body, r.body[:400]
        assert r.header("Retry-After") == "5", r
        assert not blocked_origin.requests_with(tok)
        seen += 1
    assert seen >= 2
    assert sdns.queries.get("blk.test", 0) >= 2, sdns.queries
    # Decided without the set: at once, whatever DNS does.
    r = ghtest.get(d.port, "http://blk.test:%d/" % op)
    assert r.status == 403 and b"ProxyBlock blk.test" in r.body, r
    r = ghtest.get(d.port, "http://127.0.0.99:%d/" % op)
    assert r.status == 403 and b"ProxyBlock 127.0.0.99" in r.body, r
    r = ghtest.get(d.port, "http://www.casino.test:%d/" % op)
    assert r.status == 403 and b"ProxyBlock casino" in r.body, r
    r, c = ghtest.request(d.port, "GET /proxy.pac HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                          "Connection: close\r\n\r\n" % d.port)
    c.close()
    assert r.status == 200, r
    # DNS back: the retry (1 s, doubling) fills the set, and the literal is blocked by it.
    sdns.dead = False

    def blocked():
        r = ghtest.get(d.port, lit)
        assert r.status in (403, 503), r
        return r.status == 403 and b"ProxyBlock blk.test" in r.body
    assert ghtest.poll(blocked, timeout=40, interval=0.5), d.stderr_tail()


def test_requests_never_wait_without_names_to_resolve(start_daemon, sdns, blocked_origin, ctx):
    """Only subnets and words listed, DNS dead, a long DNSTimeout: requests by literal are
    served at once (nothing to wait for)."""
    op = blocked_origin.port
    sdns.dead = True
    d = start_daemon(text=conf(sdns.port, ["ProxyBlock 127.0.0.99 casino"], dns_timeout=30000))
    r = ghtest.get(d.port, "http://%s:%d/echo" % (BLOCKED_ADDR, op))
    assert r.status == 200, r
    r = ghtest.get(d.port, "http://127.0.0.99:%d/" % op)
    assert r.status == 403, r
