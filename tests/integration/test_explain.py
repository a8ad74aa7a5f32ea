"""
test_explain.py - the status page's "Explain this URL" (issue 11, page 5) against a real
daemon, the policy dnsmasq and the test origin: api/explain names the deciding rule and its
FILE:LINE for a URL blocked by name and by resolved address, a NoProxy URL, a parent-routed
URL (failover order, a parent marked down by a real failure), a denied client, a CONNECT to a
port AllowCONNECT refuses, and the cache (a miss, then a hit after a fill through the proxy,
then stale after max-age), with a Cache-Status that agrees with what the proxy then really
sends. Also the HTML page (escaped) and the 400s for bad input.
"""

import json
import os
import re
import time
import urllib.parse
import uuid

import pytest

import ghtest
from origin import StubParent

CONF = """# written by tests/integration/test_explain.py
Listen 127.0.0.1:{port}
DNSServer 127.0.0.1:{dns_port}
ProxyTimeout 3
Workers 2
LogLevel info
User root
MaxConnectionsPerClient 0
AllowCONNECT 443 {echo_port}
CacheRoot @ROOT@
CacheSize 64M
CacheEnable lmdb http://origin.test:@OPORT@/cache
CacheDisable http://origin.test:@OPORT@/cache?private
ProxyBlock casino blocked.test
NoProxy .intranet.test origin.test
ProxyRemote * http://127.0.0.1:@P1@
ProxyRemote * http://127.0.0.1:@P2@
<Proxy *>
    Require ip 127.0.0.1 ::1
</Proxy>
<Proxy http://www.intranet.test/byname/>
    Require host client3.test
</Proxy>
<Location /gatehouse/>
    SetHandler gatehouse-status
    Require ip 127.0.0.1 ::1
</Location>
"""


def line_of(text, needle):
    """The 1-based line of the first line of text containing needle."""
    for i, ln in enumerate(text.splitlines(), 1):
        if needle in ln:
            return i
    raise AssertionError("%r not in the config" % needle)


@pytest.fixture
def env(start_policy_daemon, pctx):
    dead = ghtest.refused_port()
    stub = StubParent().start()
    root = os.path.join(pctx.workdir, "explain-" + uuid.uuid4().hex[:8])
    text = (CONF.replace("@ROOT@", root).replace("@OPORT@", str(pctx.origin_port))
            .replace("@P1@", str(dead)).replace("@P2@", str(stub.port)))
    d = start_policy_daemon("explain", text=text)
    d.tpl = text
    d.dead = dead
    d.stub = stub
    d.name_conf = os.path.basename(d.conf)
    yield d
    stub.stop()


def where(d, needle):
    return "%s:%d" % (d.conf, line_of(d.tpl, needle))


def api(d, url, client=None, method=None, path="api/explain"):
    q = {"url": url}
    if client is not None:
        q["client"] = client
    if method is not None:
        q["method"] = method
    target = "/gatehouse/%s?%s" % (path, urllib.parse.urlencode(q))
    raw = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n"
           % (target, d.port)).encode()
    r, c = ghtest.request(d.port, raw, timeout=20)
    c.close()
    return r


def explain(d, url, client=None, method=None, ready=True):
    """The JSON walk; waits (bounded) while the ProxyBlock names' first answers are pending."""
    for _ in range(50):
        r = api(d, url, client, method)
        assert r.status == 200, (r.status, r.body)
        assert r.header("Content-Type").startswith("application/json")
        j = json.loads(r.body)
        if not ready or not any(s["verdict"] == "not ready" for s in j["steps"]):
            return j
        time.sleep(0.2)
    raise AssertionError("the policy never became ready: %s" % j)


def step(j, name):
    s = [s for s in j["steps"] if s["name"] == name]
    assert s, "no step %r in %s" % (name, [x["name"] for x in j["steps"]])
    return s[-1]


def test_blocked_by_name_names_the_proxyblock_line(env):
    j = explain(env, "http://www.casino-royale.outside.test/x")
    s = step(j, "ProxyBlock")
    assert s["verdict"] == "blocked"
    assert "casino" in s["detail"] and "by name" in s["detail"]
    assert s["where"] == where(env, "ProxyBlock casino")
    assert j["outcome"].startswith("403")
    # the proxy agrees
    r = ghtest.get(env.port, "http://www.casino-royale.outside.test/x")
    assert r.status == 403


def test_blocked_by_resolved_address(env):
    # alias.test resolves to 127.0.0.6, the address of the listed blocked.test
    j = explain(env, "http://alias.test/")
    dns = step(j, "DNS")
    assert dns["verdict"] == "resolved" and "127.0.0.6" in dns["detail"]
    assert step(j, "ProxyBlock")["verdict"] == "no name match"
    s = step(j, "ProxyBlock by address")
    assert s["verdict"] == "blocked" and "address" in s["detail"], s
    assert "blocked.test" in s["detail"]
    assert s["where"] == where(env, "ProxyBlock casino blocked.test")
    assert ghtest.get(env.port, "http://alias.test/").status == 403


def test_noproxy_url_goes_direct_with_its_line(env, pctx):
    url = "http://www.intranet.test:%d/echo" % pctx.origin_port
    j = explain(env, url)
    s = step(j, "NoProxy")
    assert s["verdict"] == "direct"
    assert ".intranet.test" in s["detail"]
    assert s["where"] == where(env, "NoProxy .intranet.test")
    assert j["outcome"].startswith("sent direct")
    assert step(j, "<Proxy> access")["verdict"] == "allowed"
    acc = step(j, "<Proxy> access")
    assert acc["detail"] == "Require ip 127.0.0.1", acc  # the argument that matched
    assert acc["where"] == "%s in <Proxy *> at %s" % (where(env, "    Require ip 127.0.0.1 ::1"), where(env, "<Proxy *>")), acc


def test_parent_route_in_failover_order_with_health(env):
    url = "http://www.elsewhere.test/" + uuid.uuid4().hex
    j = explain(env, url)
    s = step(j, "ProxyRemote")
    assert s["verdict"] == "parents" and "2 parents" in s["detail"], s
    assert s["where"] == where(env, "ProxyRemote * http://127.0.0.1:%d" % env.dead)
    p1, p2 = step(j, "parent 1"), step(j, "parent 2")
    assert p1["detail"].startswith("127.0.0.1:%d" % env.dead)
    assert p2["detail"].startswith("127.0.0.1:%d" % env.stub.port)
    assert p1["where"] == where(env, "http://127.0.0.1:%d" % env.dead)
    assert p2["where"] == where(env, "http://127.0.0.1:%d" % env.stub.port)
    assert p1["verdict"] == "up: tried first" and p2["verdict"] == "up"
    # a real request: the first parent refuses, is marked down, the second one answers
    r = ghtest.get(env.port, url)
    assert r.status == 200 and b"stub parent" in r.body
    j = explain(env, url)
    p1, p2 = step(j, "parent 1"), step(j, "parent 2")
    assert p1["verdict"] == "down", p1
    assert "backoff" in p1["detail"] and "s left" in p1["detail"]
    assert "last:" in p1["detail"]
    assert p2["verdict"] == "up: tried first"
    assert j["outcome"] == "forwarded through parent 127.0.0.1:%d" % env.stub.port


def test_denied_client_names_the_require_line(env):
    j = explain(env, "http://www.intranet.test/", client="10.1.2.3")
    s = step(j, "<Proxy> access")
    assert s["verdict"] == "denied"
    # no Require line grants 10.1.2.3: the section that decided is named, with its line
    assert s["detail"] == "no Require matched"
    assert s["where"] == "<Proxy *> at %s" % where(env, "<Proxy *>")
    assert j["outcome"].startswith("403")
    assert j["client"] == "10.1.2.3"
    # the admin's own address is the default client
    j = explain(env, "http://www.intranet.test/")
    assert j["client"] == "127.0.0.1" and step(j, "<Proxy> access")["verdict"] == "allowed"


def test_require_host_does_the_reverse_lookup(env):
    # 127.0.0.3 has no PTR record with the policy dnsmasq: no confirmed name, nothing granted
    url = "http://www.intranet.test/byname/x"
    j = explain(env, url, client="127.0.0.3")
    n = step(j, "client name")
    assert n["verdict"] == "none" and "no confirmed name" in n["detail"], n
    s = step(j, "<Proxy> access")
    assert s["verdict"] == "denied"
    assert s["where"] == "<Proxy http://www.intranet.test/byname/> at %s" % where(
        env, "<Proxy http://www.intranet.test/byname/>")
    r = ghtest.get(env.port, url, source="127.0.0.3")
    assert r.status == 403
    # other URLs need no name: no lookup step
    j = explain(env, "http://www.intranet.test/other", client="127.0.0.3")
    assert not [x for x in j["steps"] if x["name"] == "client name"]


def test_client_gone_during_the_lookup_cancels_it(start_policy_daemon, pctx):
    """A DNS server that never answers: the walk waits for its lookup; the admin's connection
    closes meanwhile (the daemon cancels the walk); a later walk ends with the DNS timeout."""
    import socket
    hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    hole.bind(("127.0.0.1", 0))
    try:
        text = CONF.replace("DNSServer 127.0.0.1:{dns_port}",
                            "DNSServer 127.0.0.1:%d\nDNSTimeout 1000" % hole.getsockname()[1])
        text = (text.replace("CacheRoot @ROOT@\n", "").replace("CacheSize 64M\n", "")
                .replace("CacheEnable lmdb http://origin.test:@OPORT@/cache\n", "")
                .replace("CacheDisable http://origin.test:@OPORT@/cache?private\n", "")
                .replace("ProxyBlock casino blocked.test", "ProxyBlock casino")
                .replace("NoProxy .intranet.test origin.test", "NoProxy .intranet.test")
                .replace("@P1@", "1").replace("@P2@", "2"))
        d = start_policy_daemon("explain-gone", text=text)
        for i in range(5):
            c = ghtest.Conn("127.0.0.1", d.port)
            c.send(("GET /gatehouse/api/explain?url=http%%3A%%2F%%2Fslow%d.intranet.test%%2F "
                    "HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % i).encode())
            time.sleep(0.1)
            c.close()
        r = api(d, "http://slow.intranet.test/")
        assert r.status == 200, r.body
        j = json.loads(r.body)
        assert step(j, "DNS")["verdict"] == "failed", j
        assert d.alive()
    finally:
        hole.close()


def test_connect_to_a_port_allowconnect_refuses(env, pctx):
    j = explain(env, "origin.test:25", method="CONNECT")
    s = step(j, "AllowCONNECT")
    assert s["verdict"] == "denied" and "port 25" in s["detail"]
    assert s["where"] == where(env, "AllowCONNECT")
    assert j["outcome"].startswith("403")
    c = ghtest.Conn("127.0.0.1", env.port)
    c.send(b"CONNECT origin.test:25 HTTP/1.1\r\nHost: origin.test:25\r\n\r\n")
    assert c.read_response("CONNECT").status == 403
    c.close()
    j = explain(env, "origin.test:%d" % pctx.echo_port, method="CONNECT")
    assert step(j, "AllowCONNECT")["verdict"] == "allowed"
    assert step(j, "cache")["verdict"] == "not consulted"


def values_agree(explained, sent):
    """The proxy's Cache-Status is the explained one, plus what the origin's answer adds
    (fwd-status, stored); a ttl may have moved by a second between the two."""
    def parts(v):
        return [p.strip() for p in v.split(";")]
    e, s = parts(explained), parts(sent)
    s = [p for p in s if not p.startswith("fwd-status=") and p != "stored"]
    assert len(e) == len(s), (explained, sent)
    for a, b in zip(e, s):
        if a.startswith("ttl=") and b.startswith("ttl="):
            assert abs(int(a[4:]) - int(b[4:])) <= 2, (explained, sent)
        else:
            assert a == b, (explained, sent)


def test_cache_miss_then_hit(env, pctx):
    t = uuid.uuid4().hex
    url = "http://origin.test:%d/cache?t=%s&cc=max-age=600&size=300" % (pctx.origin_port, t)
    j = explain(env, url)
    en = step(j, "CacheEnable")
    assert en["verdict"] == "enabled" and en["where"] == where(env, "CacheEnable lmdb")
    assert step(j, "cache key")["verdict"] == "not stored"
    assert step(j, "cache decision")["verdict"] == "miss"
    miss_cs = j["cache_status"]
    assert "fwd=uri-miss" in miss_cs
    r = ghtest.get(env.port, url)
    assert r.status == 200
    values_agree(miss_cs, r.header("Cache-Status"))
    # stored now: a hit
    j = explain(env, url)
    assert step(j, "cache key")["verdict"] == "stored"
    assert step(j, "cache key")["detail"].startswith("http://origin.test:%d/cache?" %
                                                     pctx.origin_port)
    assert step(j, "cache decision")["verdict"] == "hit"
    assert step(j, "Vary")["verdict"] == "none"
    assert j["outcome"].startswith("served from the cache")
    hit_cs = j["cache_status"]
    assert "hit" in hit_cs
    r = ghtest.get(env.port, url)
    assert r.status == 200
    values_agree(hit_cs, r.header("Cache-Status"))


def test_cache_stale_after_max_age(env, pctx):
    t = uuid.uuid4().hex
    url = "http://origin.test:%d/cache?t=%s&cc=max-age=1&size=300" % (pctx.origin_port, t)
    assert ghtest.get(env.port, url).status == 200
    time.sleep(2.5)
    j = explain(env, url)
    d = step(j, "cache decision")
    assert d["verdict"] == "stale: refetch", d  # no validator: fetched anew
    assert "stale" in d["detail"]
    stale_cs = j["cache_status"]
    assert "fwd=stale" in stale_cs
    r = ghtest.get(env.port, url)
    assert r.status == 200
    values_agree(stale_cs, r.header("Cache-Status"))


def test_cache_stale_with_a_validator_is_revalidated(env, pctx):
    t = uuid.uuid4().hex
    url = "http://origin.test:%d/cache?t=%s&cc=max-age=1&etag=v%s&size=300" % (
        pctx.origin_port, t, t[:6])
    assert ghtest.get(env.port, url).status == 200
    time.sleep(2.5)
    j = explain(env, url)
    d = step(j, "cache decision")
    assert d["verdict"] == "stale: revalidate", d
    assert "ETag" in d["detail"]
    assert "fwd=stale" in j["cache_status"]


def test_cache_vary(env, pctx):
    """Explain asks as a request without header fields: a variant stored for no
    Accept-Language is a hit showing the Vary spec; one stored only for "de" is no variant."""
    t = uuid.uuid4().hex
    url = "http://origin.test:%d/cache?t=%s&cc=max-age=600&vary=Accept-Language" % (
        pctx.origin_port, t)
    r = ghtest.get(env.port, url, headers=[("Accept-Language", "de")])
    assert r.status == 200
    j = explain(env, url)
    assert step(j, "cache key")["verdict"] == "stored"
    assert step(j, "Vary")["verdict"] == "no variant"
    assert step(j, "cache decision")["verdict"] == "miss"
    values_agree(j["cache_status"], ghtest.get(env.port, url).header("Cache-Status"))
    j = explain(env, url)  # the request without the field stored its own variant
    v = step(j, "Vary")
    assert v["verdict"] == "varies" and v["detail"] == "accept-language", v
    assert step(j, "cache decision")["verdict"] == "hit"


def test_cache_disable_names_its_line(env, pctx):
    url = "http://origin.test:%d/cache?private=1" % pctx.origin_port
    j = explain(env, url)
    s = step(j, "CacheEnable")
    assert s["verdict"] == "disabled" and s["where"] == where(env, "CacheDisable")
    assert j["cache_status"] == ""


@pytest.mark.parametrize("q,cause", [
    ({"url": "not a url"}, "bad URL"),
    ({"url": "http://h.test/", "client": "10.1.2"}, "bad client address"),
    ({"url": "http://h.test/", "client": "<script>"}, "bad client address"),
    ({"url": "http://h.test/", "method": "BREW"}, "unknown method"),
    ({"url": "h.test", "method": "CONNECT"}, "bad CONNECT target"),
    ({"url": "gopher://h.test/"}, "bad URL"),
    ({}, "url"),
])
def test_bad_input_is_a_400_naming_the_cause(env, q, cause):
    target = "/gatehouse/api/explain?" + urllib.parse.urlencode(q)
    raw = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % target).encode()
    r, c = ghtest.request(env.port, raw)
    c.close()
    assert r.status == 400, (r.status, r.body)
    assert cause in json.loads(r.body)["error"]
    assert b"<script>" not in r.body
    target = "/gatehouse/explain?" + urllib.parse.urlencode(q)
    raw = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % target).encode()
    r, c = ghtest.request(env.port, raw)
    c.close()
    if q:
        assert r.status == 400 and b"<script>" not in r.body
    else:
        assert r.status == 200 and b'name="url"' in r.body  # the empty form


def test_html_page_escapes_everything(env):
    url = 'http://www.intranet.test/<script>alert("x")</script>'
    r = api(env, url, path="explain")
    assert r.status == 200
    assert r.header("Content-Type").startswith("text/html")
    body = r.body.decode()
    assert "<script>alert" not in body
    assert "&lt;script&gt;" in body or "%3Cscript%3E" in body
    assert "<table class=\"explain\">" in body
    assert where(env, "NoProxy .intranet.test") in body


def test_explain_query_never_logs_the_password(start_policy_daemon, pctx):
    """An admin explains ftp://user:secret@host/ (form-encoded, as a browser sends it, and
    raw, as curl may): no access log (squid, combined, a LogFormat with %r, %U%q and the
    Referer), no recent-requests list and no JSON answer shows the password; the user name
    is still there. A proxied URL carrying such a URL in its query is masked in the log too."""
    root = os.path.join(pctx.workdir, "explain-mask-" + uuid.uuid4().hex[:8])
    logs = [os.path.join(root, n) for n in ("squid.log", "combined.log", "custom.log")]
    os.makedirs(root)
    text = (CONF.replace("@ROOT@", os.path.join(root, "cache"))
            .replace("@OPORT@", str(pctx.origin_port)).replace("@P1@", "1").replace("@P2@", "2")
            + "AccessLog %s\nCustomLog %s combined\n"
              "CustomLog %s \"%%r|%%U%%q|%%{{Referer}}i\"\n" % tuple(logs))
    d = start_policy_daemon("explain-mask", text=text)
    secret_url = "ftp://user:secret@ftp.intranet.test/pub/"
    enc = urllib.parse.quote(secret_url, safe="")
    referer = "http://127.0.0.1:%d/gatehouse/explain?url=%s" % (d.port, enc)
    j = explain(d, secret_url)
    assert j["url"] == "ftp://user@ftp.intranet.test/pub/", j
    sent = [
        "GET /gatehouse/explain?url=%s&client=&method=GET HTTP/1.1" % enc,
        "GET /gatehouse/explain?url=%s HTTP/1.1" % secret_url,
        "GET /gatehouse/assets/ui.css HTTP/1.1",
    ]
    for line in sent:
        raw = ("%s\r\nHost: 127.0.0.1:%d\r\nReferer: %s\r\nConnection: close\r\n\r\n"
               % (line, d.port, referer)).encode()
        r, c = ghtest.request(d.port, raw, timeout=20)
        c.close()
        assert r.status in (200, 404), (line, r.status)
        assert b"secret" not in r.body
    proxied = "http://origin.test:%d/echo?next=%s" % (pctx.origin_port, enc)
    assert ghtest.get(d.port, proxied, headers=[("Referer", referer)]).status == 200
    total = len(sent) + 2
    for path in logs:
        lines = ghtest.poll_lines(path, lambda ln: True, count=total, timeout=10)
        assert len(lines) >= total, (path, lines)
        text = "\n".join(lines)
        assert "secret" not in text, text
        assert "user%40ftp.intranet.test" in text or "user@ftp.intranet.test" in text, text
    custom = open(logs[2]).read()
    assert ("GET /gatehouse/explain?url=ftp://user@ftp.intranet.test/pub/ HTTP/1.1" in custom
            ), custom
    assert "ftp%3A%2F%2Fuser%40ftp.intranet.test%2Fpub%2F" in custom, custom
    for page in ("api/recent", "recent", "api/overview", "api/explain?url=" + enc):
        raw = ("GET /gatehouse/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
               % page).encode()
        r, c = ghtest.request(d.port, raw, timeout=20)
        c.close()
        assert r.status in (200, 404), (page, r.status)
        assert b"secret" not in r.body, (page, r.body[:2000])
    raw = ("GET /gatehouse/api/recent HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
           ).encode()
    r, c = ghtest.request(d.port, raw, timeout=20)
    c.close()
    assert b"/echo?next=ftp%3A%2F%2Fuser%40ftp.intranet.test" in r.body, r.body[:2000]


def explain_fields(d, url, fields, path="api/explain"):
    q = {"url": url, "fields": fields}
    raw = ("GET /gatehouse/%s?%s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
           % (path, urllib.parse.urlencode(q))).encode()
    r, c = ghtest.request(d.port, raw, timeout=20)
    c.close()
    return r


def variants(j):
    return [s for s in j["steps"] if s["name"].startswith("variant ")]


def test_cache_vary_with_request_fields(env, pctx):
    """A real origin answers with Vary: Accept-Language; explain with the form's request
    header fields selects the stored variant (a hit), without them or with other values it
    is no variant, and every stored variant is listed with its Vary field, its distinguishing
    fields and this request's values, marking the one this request gets."""
    t = uuid.uuid4().hex
    url = "http://origin.test:%d/cache?t=%s&cc=max-age=600&vary=Accept-Language" % (
        pctx.origin_port, t)
    assert ghtest.get(env.port, url, headers=[("Accept-Language", "de")]).status == 200
    j = explain(env, url)  # no fields: the stored "de" variant is not this request's
    assert step(j, "Vary")["verdict"] == "no variant"
    assert step(j, "cache decision")["verdict"] == "miss"
    (v,) = variants(j)
    assert v["verdict"] == "other values", v
    assert "Vary: Accept-Language" in v["detail"] and "accept-language absent" in v["detail"]
    r = explain_fields(env, url, "Accept-Language: de\r\n")
    assert r.status == 200, r.body
    j = json.loads(r.body)
    assert j["fields"] == "Accept-Language: de\r\n"
    assert step(j, "Vary")["verdict"] == "varies"
    assert step(j, "cache decision")["verdict"] == "hit"
    assert j["outcome"].startswith("served from the cache")
    (v,) = variants(j)
    assert v["verdict"] == "this request's" and 'accept-language="de"' in v["detail"], v
    # the proxy agrees: a request with the field is a hit
    r = ghtest.get(env.port, url, headers=[("Accept-Language", "de")])
    values_agree(j["cache_status"], r.header("Cache-Status"))
    # a second variant (no field); "fr" selects neither of the two
    assert ghtest.get(env.port, url).status == 200
    j = json.loads(explain_fields(env, url, "accept-language:   fr  \n\nX-Other: 1").body)
    assert step(j, "Vary")["verdict"] == "no variant"
    vs = variants(j)
    assert len(vs) == 2 and all(v["verdict"] == "other values" for v in vs), vs
    assert all('accept-language="fr"' in v["detail"] for v in vs), vs
    j = explain(env, url)
    assert step(j, "cache decision")["verdict"] == "hit"
    assert sorted(v["verdict"] for v in variants(j)) == ["other values", "this request's"]
    # the HTML page shows the fields in its form, escaped
    r = explain_fields(env, url, "Accept-Language: <b>de</b>", path="explain")
    assert r.status == 200 and b"<b>de</b>" not in r.body
    assert b"&lt;b&gt;de&lt;/b&gt;</textarea>" in r.body


@pytest.mark.parametrize("fields,cause", [
    ("Accept-Language de", "line 1: not \"Name: value\" (no colon)"),
    ("Accept: */*\n: x", "line 2: not \"Name: value\" (no field name)"),
    ("Bad Name: x", "line 1: not \"Name: value\" (bad character in the field name)"),
    (" folded: x", "line 1: a field line cannot start with white space"),
    ("Host: elsewhere.test", "line 1: Host comes from the URL"),
    ("A: x\x01y", "line 1: control character in the value of A"),
    ("\n".join("F%d: v" % i for i in range(33)), "more than 32 fields"),
    ("A: " + "x" * 5000, "longer than 4095 bytes"),
])
def test_bad_request_fields_are_a_400_naming_the_line(env, fields, cause):
    r = explain_fields(env, "http://www.intranet.test/", fields)
    assert r.status == 400, (r.status, r.body)
    assert cause in json.loads(r.body)["error"], r.body
    r = explain_fields(env, "http://www.intranet.test/", fields, path="explain")
    assert r.status == 400
