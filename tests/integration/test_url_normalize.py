"""
test_url_normalize.py - one normalized form of the URL for every check (issue 10 item 1,
daemon/url.h): a <Proxy> section that denies, a ProxyBlock, a NoProxy and a ProxyRemote prefix
each catch every spelling of the URL they name, the origin and the parent receive the
normalized URL, two spellings are one cache entry, and what cannot be normalized safely is a
400.

Spellings (the issue's list): the host with a trailing dot, percent-encoded, in another case;
the port with leading zeros, and the default port written or left out (both ways); the path as
"//x", "/./x", "/a/../x", "/%65cho" (percent-encoded letters); and mixes of them.

The daemons resolve through the policy dnsmasq (conftest.PolicyDnsmasq): origin.test is the
test origin's address, bad.outside.test does not resolve, so a spelling that slips past a rule
shows as a 200 from the origin (or the stub parent) or a 502, never as the rule's answer.
Nothing listens on port 80 of 127.0.0.1 in the test set-up: requests written for the default
port only ever reach a rule, or fail.
"""

import html
import os
import subprocess
import uuid

import pytest

import ghtest
from origin import StubParent


def tok():
    return uuid.uuid4().hex


def spellings(host, port, path):
    """Every way of writing http://HOST:PORT/PATH (path without its leading '/') that must mean
    the same URL. port None: the default port, written (":80", ":0080") or not."""
    ports = [":%d" % port, ":0%d" % port, ":000%d" % port] if port else ["", ":80", ":0080"]
    enc = "".join("%%%02X" % ord(ch) for ch in host[:2]) + host[2:]
    hosts = [host, host + ".", enc, host.upper(), host.title() + ".",
             enc.lower().replace(".", "%2e", 1)]
    paths = ["/" + path, "//" + path, "/./" + path, "/a/../" + path, "/x//..//./" + path,
             "/%%%02x%s" % (ord(path[0]), path[1:]), "/%%%02X%s" % (ord(path[0]), path[1:])]
    out = []
    for h in hosts:
        for p in ports:
            out.append("http://%s%s/%s" % (h, p, path))
    for p in paths:
        out.append("http://%s%s%s" % (host, ports[0], p))
    out.append("HTTP://%s.%s%s" % (host.upper(), ports[-1], paths[3]))
    return out


def with_token(url):
    t = tok()
    return url + "?t=" + t, t


@pytest.fixture
def stub():
    s = StubParent().start()
    yield s
    s.stop()


# ---------------------------------------------------------------- <Proxy> sections

def acl_section(pctx):
    return ("<Proxy *>\n    Require ip 127.0.0.1 ::1\n</Proxy>\n"
            "<Proxy http://origin.test:%d/echo>\n    Require all denied\n</Proxy>\n"
            "<Proxy http://Origin.Test./secret>\n    Require all denied\n</Proxy>\n"
            "<Proxy http://origin.test:80/private>\n    Require all denied\n</Proxy>"
            % pctx.origin_port)


@pytest.mark.parametrize("which", ["port", "default-port-absent", "default-port-written"])
def test_denying_proxy_section_catches_every_spelling(start_policy_daemon, pctx, which):
    d = start_policy_daemon(proxy_section=acl_section(pctx))
    urls = {"port": spellings("origin.test", pctx.origin_port, "echo"),
            "default-port-absent": spellings("origin.test", None, "secret"),
            "default-port-written": spellings("origin.test", None, "private")}[which]
    for u in urls:
        u, t = with_token(u)
        r = ghtest.get(d.port, u)
        assert r.status == 403, (u, r)
        assert b"denied" in r.body, (u, r)
        assert pctx.origin.requests_with(t) == [], u


def test_denying_section_leaves_other_urls_alone(start_policy_daemon, pctx):
    d = start_policy_daemon(proxy_section=acl_section(pctx))
    # another path on the same origin
    u, t = with_token("http://origin.test:%d/cache" % pctx.origin_port)
    assert ghtest.get(d.port, u).status == 200
    assert len(pctx.origin.requests_with(t)) == 1
    # the default-port sections name port 80 only: the origin's port is another URL
    for path in ("/secret", "/private"):
        u, t = with_token("http://origin.test:%d%s" % (pctx.origin_port, path))
        assert ghtest.get(d.port, u).status == 404, u  # the origin's answer
        assert len(pctx.origin.requests_with(t)) == 1, u


def test_origin_receives_the_normalized_target(start_policy_daemon, pctx):
    d = start_policy_daemon()
    for u in spellings("origin.test", pctx.origin_port, "echo"):
        u, t = with_token(u)
        r = ghtest.get(d.port, u)
        assert r.status == 200, (u, r)
        seen = pctx.origin.requests_with(t)
        assert len(seen) == 1, u
        assert seen[0]["target"] == "/echo?t=" + t, (u, seen[0]["target"])
        hosts = [v for k, v in seen[0]["headers"] if k.lower() == "host"]
        assert hosts == ["origin.test:%d" % pctx.origin_port], (u, hosts)


# ---------------------------------------------------------------- ProxyBlock

def test_proxyblock_catches_every_spelling(start_policy_daemon, pctx):
    d = start_policy_daemon(extra=["ProxyBlock bad.outside.test"])
    urls = (spellings("bad.outside.test", pctx.origin_port, "echo") +
            spellings("bad.outside.test", None, "echo"))
    for u in urls:
        u, t = with_token(u)
        r = ghtest.get(d.port, u)
        assert r.status == 403 and b"ProxyBlock" in r.body, (u, r)
    for authority in ("%62ad.outside.test:443", "BAD.outside.test.:0443",
                      "bad.outside%2Etest:00443"):
        c = ghtest.Conn("127.0.0.1", d.port)
        c.send("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (authority, authority))
        r = c.read_response("CONNECT")
        c.close()
        assert r.status == 403 and b"ProxyBlock" in r.body, (authority, r)


# ---------------------------------------------------------------- NoProxy and ProxyRemote

def test_noproxy_name_goes_direct_whatever_the_spelling(start_policy_daemon, pctx, stub):
    d = start_policy_daemon(extra=["ProxyRemote * http://127.0.0.1:%d" % stub.port,
                                   "NoProxy origin.test"])
    for u in spellings("origin.test", pctx.origin_port, "echo"):
        u, t = with_token(u)
        r = ghtest.get(d.port, u)
        assert r.status == 200, (u, r)
        assert stub.requests_with(t) == [], u
        assert len(pctx.origin.requests_with(t)) == 1, u
    # a name NoProxy does not list still goes to the parent (blocked.test: an address of its
    # own, so the NoProxy name's addresses, arriving in the background, do not cover it)
    u, t = with_token("http://blocked.test:%d/echo" % pctx.origin_port)
    assert ghtest.get(d.port, u).status == 200
    assert len(stub.requests_with(t)) == 1 and pctx.origin.requests_with(t) == []


@pytest.mark.parametrize("which", ["port", "default-port-absent", "default-port-written"])
def test_proxyremote_prefix_catches_every_spelling(start_policy_daemon, pctx, stub, which):
    parent = "http://127.0.0.1:%d" % stub.port
    d = start_policy_daemon(extra=[
        "ProxyRemote http://origin.test:%d/echo %s" % (pctx.origin_port, parent),
        "ProxyRemote HTTP://ORIGIN.test./secret %s" % parent,
        "ProxyRemote http://origin.test:080/private %s" % parent])
    urls, want = {
        "port": (spellings("origin.test", pctx.origin_port, "echo"),
                 "http://origin.test:%d/echo" % pctx.origin_port),
        "default-port-absent": (spellings("origin.test", None, "secret"),
                                "http://origin.test/secret"),
        "default-port-written": (spellings("origin.test", None, "private"),
                                 "http://origin.test/private")}[which]
    for u in urls:
        u, t = with_token(u)
        r = ghtest.get(d.port, u)
        assert r.status == 200, (u, r)
        seen = stub.requests_with(t)
        assert len(seen) == 1 and pctx.origin.requests_with(t) == [], u
        assert seen[0]["target"] == "%s?t=%s" % (want, t), (u, seen[0]["target"])
    # other URLs go direct
    u, t = with_token("http://origin.test:%d/cache" % pctx.origin_port)
    assert ghtest.get(d.port, u).status == 200
    assert stub.requests_with(t) == [] and len(pctx.origin.requests_with(t)) == 1


# ---------------------------------------------------------------- the cache

def test_two_spellings_are_one_cache_entry(start_policy_daemon, pctx):
    root = os.path.join(pctx.workdir, "cache-" + uuid.uuid4().hex[:8])
    d = start_policy_daemon(extra=["CacheRoot %s" % root, "CacheSize 16M",
                                   "CacheEnable lmdb http://Origin.Test.:0%d//cache"
                                   % pctx.origin_port])
    t = tok()
    q = "t=%s&cc=max-age=300&size=1000" % t
    first = "http://origin.test:%d/cache?%s" % (pctx.origin_port, q)
    r = ghtest.get(d.port, first)
    assert r.status == 200 and "stored" in r.header("Cache-Status"), r
    others = ["http://ORIGIN.test.:0%d//cache?%s" % (pctx.origin_port, q),
              "http://%%6Frigin.test:%d/./%%63ache?%s" % (pctx.origin_port, q),
              "http://origin.test:%d/a/../cache?%s" % (pctx.origin_port, q)]
    for u in others:
        r = ghtest.get(d.port, u)
        assert r.status == 200, (u, r)
        assert r.header("Cache-Status").startswith("Gatehouse; hit"), (u, r)
    assert len(pctx.origin.requests_with(t)) == 1


# ---------------------------------------------------------------- what cannot be normalized

@pytest.mark.parametrize("url,why", [
    ("http://origin.test%2F.evil.test:{port}/echo", "encoded '/' or NUL in host"),
    ("http://origin.test%2f.evil.test:{port}/echo", "encoded '/' or NUL in host"),
    ("http://origin.test%00.evil.test:{port}/echo", "encoded '/' or NUL in host"),
    ("http://origin%25test:{port}/echo", "not valid in a host name"),
    ("http://origin..test:{port}/echo", "empty label in host"),
    ("http://origin.test:65536/echo", "bad port"),
    ("http://origin.test:99999/echo", "bad port"),
    ("http://origin.test:0065536/echo", "bad port"),
    ("http://origin.test:{port}/100%/echo", "bad percent-encoding in path"),
    ("http://%30x7f.1:{port}/echo", "bad IPv4 address"),
])
def test_unnormalizable_target_is_400_naming_the_cause(start_policy_daemon, pctx, url, why):
    d = start_policy_daemon()
    u, t = with_token(url.format(port=pctx.origin_port))
    r = ghtest.get(d.port, u)
    assert r.status == 400, (u, r)
    assert why in html.unescape(r.text()), (u, r.body)
    assert pctx.origin.requests_with(t) == []


def test_unnormalizable_config_prefix_is_refused_naming_the_line(gh_bin, pctx, tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text(ghtest.conf_text(pctx, ghtest.free_port(), proxy_section=(
        "<Proxy http://origin.test:99999/>\n    Require all denied\n</Proxy>")))
    p = subprocess.run([gh_bin, "-t", "-f", str(conf)], capture_output=True, text=True,
                       timeout=30, env=ghtest.clean_env())
    assert p.returncode != 0, p
    assert "bad.conf:" in p.stderr and "bad port" in p.stderr, p.stderr
