"""
test_policy_ftp.py - ftp:// URLs under the intranet policy (issue 3): they are routed like
http:// (ProxyBlock by name and by address, NoProxy, ProxyRemote `ftp`, `*`, URL prefixes) and go
to a parent as an HTTP proxy request in absolute form, the FTP login included. An ftp:// URL
whose route is direct is fetched by the FTP gateway (issue 12) from the server itself; the access
log never shows the FTP password.

A StubParent (origin.py) stands in for the parent, so the test sees exactly what the child sends;
ftp_scripted.py (pyftpdlib) is the FTP server of the direct routes.
"""

import os
import uuid

import pytest

import ghtest
from ftp_scripted import ScriptedFTP
from origin import StubParent

HELLO = b"hello over ftp\n"


def tok():
    return uuid.uuid4().hex


def hdr(head, name):
    return [v for k, v in head["headers"] if k.lower() == name.lower()]


@pytest.fixture
def stub():
    s = StubParent().start()
    yield s
    s.stop()


@pytest.fixture
def ftpd(tmp_path):
    """A well-behaved FTP server on loopback (www.outside.test and *.intranet.test resolve to
    127.0.0.1 in the policy DNS), serving hello.txt."""
    root = tmp_path / "ftproot"
    root.mkdir()
    (root / "hello.txt").write_bytes(HELLO)
    s = ScriptedFTP(str(root), str(tmp_path / "ftp.log")).start()
    yield s
    s.stop()


def new_log(pctx):
    return os.path.join(pctx.workdir, "ftp-%s.log" % uuid.uuid4().hex[:8])


def log_lines(path, token):
    return ghtest.poll_lines(path, lambda ln: token in ln)


@pytest.mark.parametrize("match", ["ftp", "*", "ftp://ftp.outside.test/pub/"],
                         ids=["scheme", "star", "url-prefix"])
def test_ftp_url_goes_to_the_parent_in_absolute_form(start_policy_daemon, pctx, stub, match):
    log = new_log(pctx)
    d = start_policy_daemon(access_log=log,
                            extra=["ProxyRemote %s http://127.0.0.1:%d" % (match, stub.port)])
    t = tok()
    u = "ftp://ftp.outside.test/pub/file.txt?t=" + t
    r = ghtest.get(d.port, u)
    assert r.status == 200 and r.body == stub.body, r
    heads = stub.requests_with(t)
    assert [h["line"] for h in heads] == ["GET %s HTTP/1.1" % u], stub.heads
    assert hdr(heads[0], "Host") == ["ftp.outside.test"], heads[0]
    line = log_lines(log, t)[0]
    assert "FIRSTUP_PARENT/127.0.0.1" in line and "TCP_MISS/200 " in line, line


def test_ftp_explicit_port_is_kept_in_host(start_policy_daemon, pctx, stub):
    d = start_policy_daemon(extra=["ProxyRemote ftp http://127.0.0.1:%d" % stub.port])
    t = tok()
    u = "ftp://ftp.outside.test:2121/x?t=" + t
    assert ghtest.get(d.port, u).status == 200
    heads = stub.requests_with(t)
    assert len(heads) == 1 and hdr(heads[0], "Host") == ["ftp.outside.test:2121"], stub.heads


def test_ftp_login_reaches_the_parent_but_not_the_log(start_policy_daemon, pctx, stub):
    log = new_log(pctx)
    d = start_policy_daemon(access_log=log, log_format="combined",
                            extra=["ProxyRemote ftp http://127.0.0.1:%d" % stub.port])
    t = tok()
    u = "ftp://alice:Sup3rS3cret@ftp.outside.test/home/alice/f?t=" + t
    r = ghtest.get(d.port, u)
    assert r.status == 200, r
    heads = stub.requests_with(t)
    assert [h["line"] for h in heads] == ["GET %s HTTP/1.1" % u], stub.heads
    line = log_lines(log, t)[0]
    assert "Sup3rS3cret" not in line, line
    assert "ftp://alice@ftp.outside.test/home/alice/f" in line, line


def test_ftp_with_a_direct_route_is_fetched_by_the_gateway(start_policy_daemon, pctx, stub, ftpd):
    # ProxyRemote for http only: ftp:// has no parent, so it goes direct, through the FTP
    # gateway to the server itself; the http request on the same connection still goes to the
    # parent.
    log = new_log(pctx)
    d = start_policy_daemon(access_log=log,
                            extra=["ProxyRemote http http://127.0.0.1:%d" % stub.port])
    t = tok()
    with ghtest.Conn("127.0.0.1", d.port, timeout=30) as c:
        c.send(ghtest.build("ftp://www.outside.test:%d/hello.txt" % ftpd.port))
        r = c.read_response(timeout=30)
        assert r.status == 200 and r.body == HELLO, r
        c.send(ghtest.build("http://www.outside.test:%d/echo?t=%s" % (pctx.origin_port, t)))
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == stub.body, r2
    assert [h["line"].split()[1][:6] for h in stub.requests_with(t)] == ["http:/"], stub.heads
    assert stub.requests_with("hello.txt") == [], stub.heads
    assert ftpd.commands("RETR") == [("RETR", "hello.txt")], ftpd.lines()
    line = log_lines(log, "ftp://www.outside.test")[0]
    assert "TCP_MISS/200 " in line and "HIER_DIRECT" in line, line


def test_ftp_without_any_parent_goes_direct(start_policy_daemon, pctx, ftpd):
    d = start_policy_daemon()
    r = ghtest.get(d.port, "ftp://www.outside.test:%d/hello.txt" % ftpd.port, timeout=30)
    assert r.status == 200 and r.body == HELLO, r
    assert len(ftpd.commands("RETR")) == 1, ftpd.lines()


def test_noproxy_sends_ftp_direct_to_the_gateway(start_policy_daemon, pctx, stub, ftpd):
    d = start_policy_daemon(extra=["ProxyRemote * http://127.0.0.1:%d" % stub.port,
                                   "NoProxy .intranet.test"])
    t = tok()
    r = ghtest.get(d.port, "ftp://www.intranet.test:%d/hello.txt" % ftpd.port, timeout=30)
    assert r.status == 200 and r.body == HELLO, r
    assert stub.heads == []
    assert len(ftpd.commands("RETR")) == 1, ftpd.lines()
    r = ghtest.get(d.port, "ftp://ftp.outside.test/pub/?t=" + t)
    assert r.status == 200 and len(stub.requests_with(t)) == 1, r
    assert len(ftpd.commands("RETR")) == 1, ftpd.lines()


@pytest.mark.parametrize("entry,host", [
    ("ftp.outside.test", "ftp.outside.test"),
    (".outside.test", "mirror.outside.test"),
    ("warez", "warez.example.test"),
], ids=["host", "domain", "word"])
def test_proxyblock_refuses_ftp_by_name_even_through_a_parent(start_policy_daemon, pctx, stub,
                                                               entry, host):
    d = start_policy_daemon(extra=["ProxyBlock %s" % entry,
                                   "ProxyRemote * http://127.0.0.1:%d" % stub.port])
    t = tok()
    r = ghtest.get(d.port, "ftp://%s/pub/?t=%s" % (host, t))
    assert r.status == 403 and b"ProxyBlock" in r.body, r
    assert stub.requests_with(t) == []


def test_proxyblock_refuses_ftp_by_address_through_a_parent(start_policy_daemon, pctx, stub):
    # blocked.test and alias.test both resolve to 127.0.0.6 in the policy DNS: once the
    # background lookup of the listed name lands, ftp://alias.test is refused by address.
    d = start_policy_daemon(extra=["ProxyBlock blocked.test",
                                   "ProxyRemote * http://127.0.0.1:%d" % stub.port])
    last = [None]

    def refused():
        last[0] = ghtest.get(d.port, "ftp://alias.test/pub/f")
        return last[0].status == 403
    assert ghtest.poll(refused, timeout=6.0, interval=0.2), last[0]
    assert b"blocked.test" in last[0].body, last[0]
    # a name that is not listed and does not share the address still reaches the parent
    t = tok()
    r = ghtest.get(d.port, "ftp://www.outside.test/pub/?t=" + t)
    assert r.status == 200 and len(stub.requests_with(t)) == 1, r


def test_other_schemes_are_still_501(start_policy_daemon, pctx, stub):
    d = start_policy_daemon(extra=["ProxyRemote * http://127.0.0.1:%d" % stub.port])
    t = tok()
    for u in ("gopher://gopher.outside.test/1?t=" + t, "wais://w.outside.test/?t=" + t):
        r = ghtest.get(d.port, u)
        assert r.status == 501, (u, r)
    assert stub.requests_with(t) == []
