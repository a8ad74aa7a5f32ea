"""
test_policy_block.py - ProxyBlock (issue 3, policy/pol.h "intranet policy"): every entry form
(`*`, word, host name, leading-dot domain, IPv4 and IPv6 literals, CIDR and netmask and partial
subnets), case-insensitivity and trailing dots, the 403 page naming the rule (its FILE:LINE only
in the error log, see test_error_pages.py),
the TCP_DENIED access-log line, block-by-address through the names' resolved addresses (which
arrive in the background after startup), CONNECT, and the address check for requests that go
through a ProxyRemote parent.

The daemons resolve through the policy dnsmasq (conftest.PolicyDnsmasq): blocked names are
NXDOMAIN there or resolve to addresses nobody listens on, so a request that should have been
blocked and was not ends in a 502, never in a 403.
"""

import os
import time
import uuid

import pytest

import ghtest
from origin import StubParent


def conf_line(d, prefix):
    """'CONF:LINE' of the first config line starting with prefix."""
    for i, ln in enumerate(d.text.split("\n"), 1):
        if ln.startswith(prefix):
            return "%s:%d" % (d.conf, i)
    raise AssertionError("no line %r in\n%s" % (prefix, d.text))


def url_for(pctx, host, path="/echo"):
    """A URL on the origin's port for host (an IPv6 literal gets brackets)."""
    if ":" in host and not host.startswith("["):
        host = "[%s]" % host
    return "http://%s:%d%s" % (host, pctx.origin_port, path)


def tok_url(pctx, host):
    t = uuid.uuid4().hex
    return url_for(pctx, host, "/echo?t=" + t), t


def connect(port, authority):
    c = ghtest.Conn("127.0.0.1", port)
    c.send("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (authority, authority))
    return c, c.read_response("CONNECT")


def assert_blocked(r, entry=None):
    assert r.status == 403, r
    assert b"ProxyBlock" in r.body, r
    if entry is not None:
        assert entry.encode().lower() in r.body.lower(), r


def wait_blocked(port, url, timeout=6.0):
    """Poll (bounded) until url is refused with a ProxyBlock 403: the resolved addresses of
    listed names arrive in the background. Returns the last response."""
    last = [None]

    def attempt():
        last[0] = ghtest.get(port, url)
        return last[0].status == 403
    ghtest.poll(attempt, timeout=timeout, interval=0.2)
    return last[0]


# (id, ProxyBlock arguments, hosts that must be refused, [(host, status when not refused)])
# 200: the host resolves to the origin; 502: it does not resolve, or nobody listens there.
FORMS = [
    ("word", "casino",
     ["www.casino-royale.outside.test", "casino", "mycasino.example.test"],
     [("www.outside.test", 200), ("notbad.outside.test", 200)]),
    ("word-any-case", "CaSiNo",
     ["WWW.CASINO-royale.outside.test", "www.Casino-Royale.outside.test"],
     [("www.outside.test", 200)]),
    ("host", "bad.outside.test",
     ["bad.outside.test", "www.bad.outside.test", "BAD.Outside.TEST", "bad.outside.test.",
      "bad.outside.test.evil.test"],
     [("notbad.outside.test", 200), ("www.outside.test", 200), ("outside.test", 502)]),
    ("host-upper-entry", "BAD.Outside.Test",
     ["bad.outside.test", "www.bad.outside.test"],
     [("notbad.outside.test", 200)]),
    ("domain", ".evil.outside.test",
     ["www.evil.outside.test", "a.b.evil.outside.test", "WWW.EVIL.OUTSIDE.TEST"],
     [("evil.outside.test", 200), ("www.outside.test", 200)]),
    ("ipv4", "127.0.0.9",
     ["127.0.0.9"],
     [("127.0.0.1", 200), ("127.0.0.10", 502)]),
    ("cidr4", "127.0.0.8/29",
     ["127.0.0.8", "127.0.0.9", "127.0.0.15"],
     [("127.0.0.1", 200), ("127.0.0.16", 502), ("127.0.0.7", 502)]),
    ("netmask4", "127.0.0.8/255.255.255.248",
     ["127.0.0.9", "127.0.0.15"],
     [("127.0.0.1", 200), ("127.0.0.16", 502)]),
    ("partial4", "127.0.1",
     ["127.0.1.5", "127.0.1.255"],
     [("127.0.0.1", 200), ("127.0.2.5", 502)]),
    # IPv6: only ::1 is ever requested (the refusal needs no IPv6 network, and no test sends a
    # packet to a non-loopback address even when the daemon fails to refuse)
    ("ipv6", "::1",
     ["[::1]", "[0:0:0:0:0:0:0:1]", "[::0:1]", "[0000::0001]"],
     [("127.0.0.1", 200)]),
    ("cidr6", "::/127",
     ["[::1]", "[0::1]"],
     [("127.0.0.1", 200)]),
    ("several-entries", "casino .evil.outside.test 127.0.0.9",
     ["www.casino-royale.outside.test", "www.evil.outside.test", "127.0.0.9"],
     [("www.outside.test", 200), ("evil.outside.test", 200)]),
]


@pytest.mark.parametrize("entries,blocked,allowed", [f[1:] for f in FORMS],
                         ids=[f[0] for f in FORMS])
def test_proxyblock_entry_form_refuses_its_hosts_and_only_them(start_policy_daemon, pctx,
                                                                 entries, blocked, allowed):
    d = start_policy_daemon(extra=["ProxyBlock " + entries])
    for host in blocked:
        u, t = tok_url(pctx, host)
        r = ghtest.get(d.port, u)
        assert_blocked(r)
        assert pctx.origin.requests_with(t) == [], host
    for host, status in allowed:
        u, t = tok_url(pctx, host)
        r = ghtest.get(d.port, u)
        assert r.status == status, (host, r)
        if status == 200:
            assert len(pctx.origin.requests_with(t)) == 1, host


def test_proxyblock_star_refuses_everything_including_connect(start_policy_daemon, pctx):
    d = start_policy_daemon(extra=["ProxyBlock *"])
    for host in ("www.outside.test", "127.0.0.1", "anything.test", "plainname"):
        u, t = tok_url(pctx, host)
        assert_blocked(ghtest.get(d.port, u), "*")
        assert pctx.origin.requests_with(t) == []
    c, r = connect(d.port, "127.0.0.1:%d" % pctx.echo_port)
    c.close()
    assert_blocked(r)


def test_ipv6_entries_that_do_not_cover_the_host_let_it_pass(start_policy_daemon, pctx):
    if not pctx.has_v6:
        pytest.skip("no IPv6 loopback (::1) here: the origin cannot be reached over IPv6")
    d = start_policy_daemon(extra=["ProxyBlock ::2/127 ::3 fd00::/8 127.0.0.1/32"])
    u, t = tok_url(pctx, "[::1]")
    assert ghtest.get(d.port, u).status == 200
    assert len(pctx.origin.requests_with(t)) == 1
    assert_blocked(ghtest.get(d.port, url_for(pctx, "127.0.0.1")))


def test_listed_name_blocks_its_ipv6_addresses(start_policy_daemon, pctx):
    """blocked6.test and alias6.test -> ::1 (AAAA only)."""
    d = start_policy_daemon(extra=["ProxyBlock blocked6.test"])
    r = wait_blocked(d.port, url_for(pctx, "[::1]"))
    assert_blocked(r, "blocked6.test")
    assert_blocked(ghtest.get(d.port, url_for(pctx, "alias6.test")), "blocked6.test")
    assert_blocked(ghtest.get(d.port, url_for(pctx, "[0:0::1]")), "blocked6.test")
    assert ghtest.get(d.port, url_for(pctx, "127.0.0.1", "/size/2")).status == 200


def test_block_page_names_the_entry_not_its_file_line_and_logs_tcp_denied(start_policy_daemon,
                                                                           pctx):
    log = os.path.join(pctx.workdir, "block-%s.log" % uuid.uuid4().hex[:8])
    d = start_policy_daemon(access_log=log,
                            extra=["ProxyBlock casino", "ProxyBlock www.bad.outside.test"])
    where = conf_line(d, "ProxyBlock www.bad.outside.test")
    u, t = tok_url(pctx, "www.bad.outside.test")
    r = ghtest.get(d.port, u)
    assert r.status == 403, r
    assert (r.header("Content-Type") or "").lower().startswith("text/html"), r
    body = r.text()
    assert "ProxyBlock" in body, body
    assert "www.bad.outside.test" in body, body
    # the rule's words, not its place: FILE:LINE is for the admin's error log
    assert "ProxyBlock www.bad.outside.test" in body, body
    assert where not in body and d.conf not in body, body
    assert pctx.origin.requests_with(t) == []
    lines = ghtest.poll_lines(log, lambda ln: t in ln)
    assert len(lines) == 1, lines
    m = ghtest.SQUID_RE.match(lines[0])
    assert m, lines[0]
    assert (m.group(4), m.group(5)) == ("TCP_DENIED", "403"), lines[0]
    assert m.group(10) == "HIER_NONE", lines[0]


def test_block_page_for_a_word_names_the_word(start_policy_daemon, pctx):
    d = start_policy_daemon(extra=["ProxyBlock casino"])
    where = conf_line(d, "ProxyBlock casino")
    r = ghtest.get(d.port, url_for(pctx, "www.casino-royale.outside.test"))
    assert_blocked(r, "casino")
    assert "ProxyBlock casino" in r.text() and where not in r.text(), r


def test_block_page_for_a_connect_names_the_rule(start_policy_daemon, pctx):
    log = os.path.join(pctx.workdir, "blockc-%s.log" % uuid.uuid4().hex[:8])
    d = start_policy_daemon(access_log=log, extra=["ProxyBlock bad.outside.test"],
                            allow_connect="443 %d" % pctx.echo_port)
    c, r = connect(d.port, "www.bad.outside.test:443")
    c.close()
    assert_blocked(r, "bad.outside.test")
    assert "ProxyBlock bad.outside.test" in r.text()
    assert conf_line(d, "ProxyBlock bad.outside.test") not in r.text()
    lines = ghtest.poll_lines(log, lambda ln: "www.bad.outside.test:443" in ln)
    assert len(lines) == 1 and " TCP_DENIED/403 " in lines[0], lines


def test_listed_name_blocks_at_once_and_its_addresses_soon_after(start_policy_daemon, pctx):
    """blocked.test and alias.test -> 127.0.0.6 in the test DNS. Nobody listens there:
    unblocked, these would be 502s."""
    t0 = time.monotonic()
    d = start_policy_daemon(extra=["ProxyBlock blocked.test"])
    # the name itself is refused from the first request on (no waiting for DNS)
    assert_blocked(ghtest.get(d.port, url_for(pctx, "blocked.test")), "blocked.test")
    assert_blocked(ghtest.get(d.port, url_for(pctx, "www.blocked.test")), "blocked.test")
    r = wait_blocked(d.port, url_for(pctx, "127.0.0.6"))
    assert r.status == 403, "127.0.0.6 (an address of blocked.test) not refused within %.1f s "\
                            "of startup: %r" % (time.monotonic() - t0, r)
    assert_blocked(r, "blocked.test")
    for host in ("alias.test", "ALIAS.TEST", "alias.test."):
        assert_blocked(ghtest.get(d.port, url_for(pctx, host)), "blocked.test")
    # other addresses and names still pass
    assert ghtest.get(d.port, url_for(pctx, "www.outside.test", "/size/2")).status == 200
    assert ghtest.get(d.port, url_for(pctx, "127.0.0.7")).status == 502


def test_listed_name_in_any_case_blocks_by_address(start_policy_daemon, pctx):
    d = start_policy_daemon(extra=["ProxyBlock BLOCKED.Test"])
    r = wait_blocked(d.port, url_for(pctx, "alias.test"))
    assert_blocked(r)


def test_without_the_entry_the_same_addresses_are_not_refused(start_policy_daemon, pctx):
    # Control for the test above: the 403s come from ProxyBlock, not from the environment.
    d = start_policy_daemon(extra=["ProxyBlock casino"])
    time.sleep(0.5)
    for host in ("127.0.0.6", "alias.test", "blocked.test"):
        r = ghtest.get(d.port, url_for(pctx, host))
        assert r.status == 502, (host, r)


def test_block_by_address_applies_to_connect(start_policy_daemon, pctx):
    d = start_policy_daemon(extra=["ProxyBlock blocked.test bad.outside.test"],
                            allow_connect="443 %d" % pctx.echo_port)
    c, r = connect(d.port, "bad.outside.test:%d" % pctx.echo_port)
    c.close()
    assert_blocked(r, "bad.outside.test")
    c, r = connect(d.port, "blocked.test:%d" % pctx.echo_port)
    c.close()
    assert_blocked(r, "blocked.test")
    assert wait_blocked(d.port, url_for(pctx, "127.0.0.6")).status == 403
    for authority in ("alias.test:%d" % pctx.echo_port, "127.0.0.6:%d" % pctx.echo_port):
        c, r = connect(d.port, authority)
        c.close()
        assert_blocked(r, "blocked.test")
    # a tunnel to an unlisted host still works
    c, r = connect(d.port, "www.outside.test:%d" % pctx.echo_port)
    with c:
        assert r.status == 200, r
        c.send(b"ping through the tunnel")
        assert c.read_exact(23) == b"ping through the tunnel"


def test_block_applies_before_any_dns_lookup_of_the_target(start_policy_daemon, pctx):
    # bad.outside.test is NXDOMAIN: a 403 (not the 502 for a failed lookup) shows the name rule
    # decided without resolving.
    d = start_policy_daemon(extra=["ProxyBlock bad.outside.test"])
    r = ghtest.get(d.port, url_for(pctx, "x.bad.outside.test"))
    assert_blocked(r, "bad.outside.test")
    assert b"NXDOMAIN" not in r.body


def test_block_by_address_also_applies_through_a_parent(start_policy_daemon, pctx):
    with StubParent().start() as stub:
        d = start_policy_daemon(extra=["ProxyBlock blocked.test 127.0.0.9",
                                       "ProxyRemote * http://127.0.0.1:%d" % stub.port])
        # an unlisted host goes through the parent (the stub answers itself)
        u, t = tok_url(pctx, "www.outside.test")
        r = ghtest.get(d.port, u)
        assert r.status == 200 and r.body == stub.body, r
        assert len(stub.requests_with(t)) == 1
        # a listed literal is refused without asking the parent
        u, t = tok_url(pctx, "127.0.0.9")
        assert_blocked(ghtest.get(d.port, u), "127.0.0.9")
        assert stub.requests_with(t) == []
        # alias.test resolves to an address of blocked.test: refused too, though the parent
        # would be the one to resolve it (Apache skips this check for proxied requests)
        r = wait_blocked(d.port, url_for(pctx, "alias.test", "/echo?first"))
        assert_blocked(r, "blocked.test")
        u, t = tok_url(pctx, "alias.test")
        assert_blocked(ghtest.get(d.port, u), "blocked.test")
        assert stub.requests_with(t) == []
        c, r = connect(d.port, "alias.test:443")
        c.close()
        assert_blocked(r, "blocked.test")
        assert not [h for h in stub.heads if h["method"] == "CONNECT"], stub.heads


class _MovingDns(ghtest.Dnsmasq):
    """dnsmasq answering from a hosts file with a 1 s TTL; SIGHUP makes it re-read the file."""
    RECORDS = [("origin.test", "127.0.0.1")]
    PTRS = []


@pytest.mark.slow
def test_block_follows_a_listed_name_to_its_new_address(start_policy_daemon, pctx, tmp_path):
    import signal
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.11 moving.test\n")
    dns = _MovingDns(str(tmp_path))
    dns.EXTRA_ARGS = ("--addn-hosts=%s" % hosts, "--local-ttl=1")
    dns.start()
    try:
        d = start_policy_daemon(dns=False, extra=["DNSServer 127.0.0.1:%d" % dns.port,
                                                  "ProxyBlock moving.test"])
        old, new = url_for(pctx, "127.0.0.11"), url_for(pctx, "127.0.0.12")
        assert_blocked(wait_blocked(d.port, old), "moving.test")
        assert ghtest.get(d.port, new).status == 502
        hosts.write_text("127.0.0.12 moving.test\n")
        dns.proc.send_signal(signal.SIGHUP)
        t0 = time.monotonic()
        r = wait_blocked(d.port, new, timeout=20)
        assert r.status == 403, "the new address of moving.test (TTL 1 s) was not refused " \
                                "within 20 s: %r" % r
        # the old address is forgotten with the old answer
        assert ghtest.poll(lambda: ghtest.get(d.port, old).status == 502, timeout=10,
                           interval=0.2), "127.0.0.11 still refused %.1f s after the move" \
            % (time.monotonic() - t0)
    finally:
        dns.stop()


@pytest.mark.slow
def test_blocked_addresses_stay_refused_across_reloads_under_load(start_policy_daemon, pctx):
    # Reloads swap the policy while workers decide: no request may slip through in between
    # (the resolved addresses are kept by name across the swap), and nothing else changes.
    import signal
    import threading
    d = start_policy_daemon(extra=["ProxyBlock blocked.test"], workers=2)
    assert wait_blocked(d.port, url_for(pctx, "127.0.0.6")).status == 403
    stats = {}
    lock = threading.Lock()
    stop = time.monotonic() + 4
    targets = [(url_for(pctx, "127.0.0.6"), 403), (url_for(pctx, "alias.test"), 403),
               (url_for(pctx, "www.outside.test", "/size/10"), 200)]

    def hammer(k):
        i = 0
        while time.monotonic() < stop and i < 100000:
            u, want = targets[(i + k) % len(targets)]
            i += 1
            try:
                got = ghtest.get(d.port, u).status
            except Exception as e:  # reported below
                got = repr(e)[:60]
            with lock:
                stats[(u, want, got)] = stats.get((u, want, got), 0) + 1
    threads = [threading.Thread(target=hammer, args=(k,), daemon=True) for k in range(4)]
    for t in threads:
        t.start()
    reloads = 0
    while time.monotonic() < stop - 0.4:
        time.sleep(0.4)
        d.proc.send_signal(signal.SIGHUP)
        reloads += 1
    for t in threads:
        t.join(timeout=20)
    wrong = {k: v for k, v in stats.items() if k[1] != k[2]}
    assert not wrong, "answers other than expected during %d reloads: %r" % (reloads, wrong)
    assert sum(stats.values()) > 100, stats
    assert ghtest.poll(lambda: d.stderr_text().count("configuration reloaded") >= reloads,
                       timeout=5), d.stderr_tail()


# ---------------------------------------------------------------- no way around a block

class _Counter:
    """A listener on a loopback address that counts connections (and closes them)."""

    def __init__(self, host):
        import socket
        import threading
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.count += 1
            c.close()

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


def test_other_spellings_of_a_blocked_address_never_reach_it(start_policy_daemon, pctx):
    cnt = _Counter("127.0.0.9")
    try:
        d = start_policy_daemon(extra=["ProxyBlock 127.0.0.9"],
                                allow_connect="443 %d" % cnt.port)
        p = cnt.port
        spellings = ["127.0.0.9", "[::ffff:127.0.0.9]", "[::ffff:7f00:9]", "2130706441",
                     "127.0.9", "127.9", "0x7f.0.0.9", "0x7f000009", "0177.0.0.9",
                     "127.0.0.011", "127.000.000.009", "127.0.0.9."]
        answers = {}
        for host in spellings:
            r = ghtest.get(d.port, "http://%s:%d/x" % (host, p))
            answers[host] = r.status
            c, r = connect(d.port, "%s:%d" % (host, p))
            c.close()
            answers[host + " CONNECT"] = r.status
        time.sleep(0.3)
        assert cnt.count == 0, "127.0.0.9 was reached %d times; answers: %r" % (cnt.count,
                                                                             answers)
        assert answers["127.0.0.9"] == 403 and answers["[::ffff:127.0.0.9]"] == 403, answers
    finally:
        cnt.close()


def test_a_host_with_a_blocked_address_among_several_is_refused(start_policy_daemon, pctx):
    # mixed.test -> 127.0.0.1 and ::1; blocked6.test -> ::1. The daemon could reach mixed.test
    # over IPv4, but one of its addresses is a blocked one.
    d = start_policy_daemon(extra=["ProxyBlock blocked6.test"])
    r = wait_blocked(d.port, url_for(pctx, "mixed.test"))
    assert_blocked(r, "blocked6.test")
    c, r = connect(d.port, "mixed.test:%d" % pctx.echo_port)
    c.close()
    assert_blocked(r, "blocked6.test")


@pytest.mark.parametrize("host", [
    "www.evil.outside.test.", "WWW.EVIL.OUTSIDE.TEST", "user@www.evil.outside.test",
    "user:pw@www.evil.outside.test", "www%2eevil.outside.test", "www.evil%2Eoutside.test",
    "www.evil.outside.test..",
])
def test_other_spellings_of_a_blocked_name_never_reach_the_origin(start_policy_daemon, pctx, host):
    # .evil.outside.test is a leading-dot entry (not resolved, so not blocked by address):
    # only the name rule stands between these URLs and the origin.
    d = start_policy_daemon(extra=["ProxyBlock .evil.outside.test"])
    t = tok_url(pctx, "x")[1]
    u = "http://%s:%d/echo?t=%s" % (host, pctx.origin_port, t)
    r = ghtest.get(d.port, u)
    assert pctx.origin.requests_with(t) == [], "%s reached the origin: %r" % (u, r)
    assert r.status in (400, 403, 502), r


def test_block_page_keeps_the_client_connection_usable(start_policy_daemon, pctx):
    d = start_policy_daemon(extra=["ProxyBlock casino"])
    with ghtest.Conn("127.0.0.1", d.port) as c:
        for method in ("GET", "HEAD", "GET"):
            c.send(ghtest.build(url_for(pctx, "www.casino-royale.outside.test"), method=method))
            r = c.read_response(method)
            assert r.status == 403, r
            assert (r.body == b"") == (method == "HEAD"), r
            if "close" in (r.header("Connection") or "").lower():
                return
        c.send(ghtest.build(url_for(pctx, "www.outside.test", "/size/7"), close=True))
        r = c.read_response()
        assert r.status == 200 and len(r.body) == 7, r
