"""
test_policy_pac.py - PAC/WPAD on the proxy's listener (issue 3): GET /proxy.pac and /wpad.dat
(origin-form, sent to the proxy itself) for every client the ACL admits, with the PAC media
type, an ETag (If-None-Match -> 304) and Cache-Control max-age; the file is generated from the
live policy and evaluated here in node (tests/pac/pac_eval.js, the standard PAC functions; DNS
functions throw) over tables of URLs: plain names, ProxyDomain and NoProxy domains and hosts
DIRECT, NoProxy subnets DIRECT for literals only, blocked names inside DIRECT domains sent to the
proxy, everything else to the PacProxy list (or, without PacProxy, to the address the client
used to fetch the file), "; DIRECT" with PacFallback direct, several PacProxy entries spread by
host with the others as failover; PacFile serves the admin's file verbatim.
"""

import json
import os
import re
import shutil
import subprocess
import uuid

import pytest

import ghtest

PAC_EVAL = os.path.join(ghtest.REPO, "tests", "pac", "pac_eval.js")
PAC_TYPE = "application/x-ns-proxy-autoconfig"


def fetch(port, path="/proxy.pac", headers=(), host=None, method="GET", source=None,
          version="HTTP/1.1", addr="127.0.0.1"):
    """An origin-form request sent to the proxy itself."""
    lines = ["%s %s %s" % (method, path, version)]
    if host is not False:
        lines.append("Host: %s" % (host or "%s:%d" % (addr if ":" not in addr
                                                      else "[%s]" % addr, port)))
    lines += ["%s: %s" % kv for kv in headers]
    lines.append("Connection: close")
    c = ghtest.Conn(addr, port, source=source)
    try:
        c.send("\r\n".join(lines) + "\r\n\r\n")
        return c.read_response(method)
    finally:
        c.close()


def node():
    path = shutil.which("node") or shutil.which("nodejs")
    if not path:
        pytest.skip("node is not installed (scripts/test-deps.sh installs nodejs)")
    return path


def evaluate(tmp_path, pac, rows):
    """Run pac_eval.js over rows [(url, host, expect)]; returns (exit status, output)."""
    name = uuid.uuid4().hex[:8]
    pac_path = tmp_path / ("%s.pac" % name)
    pac_path.write_bytes(pac)
    table = tmp_path / ("%s.json" % name)
    table.write_text(json.dumps([{"url": u, "host": h, "expect": e} for u, h, e in rows]))
    p = subprocess.run([node(), PAC_EVAL, str(pac_path), str(table)], capture_output=True,
                       timeout=60)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def assert_table(tmp_path, pac, rows):
    rc, out = evaluate(tmp_path, pac, rows)
    assert rc == 0, "PAC evaluation failed:\n%s\n--- PAC ---\n%s" % (out, pac.decode())


def answers(tmp_path, pac, hosts):
    """What FindProxyForURL returns for each host (http://HOST/ URLs)."""
    rows = [("http://%s/" % h, h, "\x00no such answer") for h in hosts]
    rc, out = evaluate(tmp_path, pac, rows)
    got = {}
    for ln in out.split("\n"):
        m = re.match(r'^MISMATCH "(.*)" host (".*"): got (".*"), expected ".*"$', ln)
        if m:
            got[json.loads(m.group(2))] = json.loads(m.group(3))
    assert len(got) == len(hosts), out
    return got


def row(host, expect, scheme="http", path="/"):
    h = host.strip("[]")
    return ("%s://%s%s" % (scheme, host, path), h, expect)


# ---------------------------------------------------------------- serving

def test_pac_is_served_on_both_paths_with_type_etag_and_max_age(start_policy_daemon, pctx):
    d = start_policy_daemon(extra=["NoProxy .intranet.test", "PacProxy proxy.corp.test:3128"])
    got = {}
    for path in ("/proxy.pac", "/wpad.dat"):
        r = fetch(d.port, path)
        assert r.status == 200, (path, r)
        ctype = (r.header("Content-Type") or "").split(";")[0].strip().lower()
        assert ctype == PAC_TYPE, (path, r)
        etag = r.header("ETag")
        assert etag and re.match(r'^(W/)?"[^"]+"$', etag), (path, r)
        cc = r.header("Cache-Control") or ""
        m = re.search(r"max-age=(\d+)", cc)
        assert m and int(m.group(1)) > 0, (path, cc)
        assert b"FindProxyForURL" in r.body
        got[path] = (etag, r.body)
    assert got["/proxy.pac"] == got["/wpad.dat"]


def test_if_none_match_with_the_etag_is_304(start_policy_daemon, pctx):
    d = start_policy_daemon(extra=["PacProxy proxy.corp.test:3128"])
    r = fetch(d.port)
    etag = r.header("ETag")
    assert r.status == 200 and etag, r
    for inm in (etag, '"other", %s' % etag, "*"):
        r2 = fetch(d.port, headers=[("If-None-Match", inm)])
        assert r2.status == 304, (inm, r2)
        assert r2.body == b""
        assert r2.header("ETag") == etag, r2
    for path in ("/wpad.dat",):
        assert fetch(d.port, path, headers=[("If-None-Match", etag)]).status == 304
    r3 = fetch(d.port, headers=[("If-None-Match", '"not-the-etag"')])
    assert r3.status == 200 and r3.body == r.body, r3


def test_if_none_match_uses_weak_comparison(start_policy_daemon, pctx):
    # RFC 9110 13.1.2: If-None-Match compares weakly, so W/"x" matches "x" and the reverse.
    d = start_policy_daemon(extra=["PacProxy proxy.corp.test:3128"])
    etag = fetch(d.port).header("ETag")
    other = etag[2:] if etag.startswith("W/") else "W/" + etag
    r = fetch(d.port, headers=[("If-None-Match", other)])
    assert r.status == 304, (other, r)


def test_head_gives_the_head_without_the_file(start_policy_daemon, pctx):
    d = start_policy_daemon(extra=["PacProxy proxy.corp.test:3128"])
    g = fetch(d.port)
    h = fetch(d.port, method="HEAD")
    assert h.status == 200 and h.body == b"", h
    assert h.header("ETag") == g.header("ETag")
    if h.header("Content-Length") is not None:
        assert int(h.header("Content-Length")) == len(g.body)


def test_pac_follows_the_client_acl(start_policy_daemon, pctx):
    d = start_policy_daemon(extra=["PacProxy proxy.corp.test:3128"],
                            proxy_section="<Proxy *>\n    Require ip 127.0.0.1 127.0.0.3\n"
                                          "</Proxy>")
    for path in ("/proxy.pac", "/wpad.dat"):
        assert fetch(d.port, path, source="127.0.0.3").status == 200
        r = fetch(d.port, path, source="127.0.0.2")
        assert r.status == 403, (path, r)
        assert b"FindProxyForURL" not in r.body


def test_other_local_paths_are_still_not_found(start_policy_daemon, pctx):
    d = start_policy_daemon(extra=["PacProxy proxy.corp.test:3128"])
    for path in ("/", "/proxy.pac.bak", "/wpad.da", "/x/proxy.pac"):
        assert fetch(d.port, path).status == 404, path


# ---------------------------------------------------------------- the generated file

OFFICE = ["ProxyDomain .corp.test",
          "NoProxy .corp.test .intranet.test 10.0.0.0/8 192.168 fd00::/8 host1.other.test",
          "ProxyRemote * http://127.0.0.1:{dead}",
          "ProxyBlock casino secret.intranet.test",
          "PacProxy proxy-a.test:3128"]


def office(pctx, extra=()):
    return [ln.format(dead=pctx.refused_port) for ln in OFFICE] + list(extra)


def office_rows(proxy):
    P = proxy
    return [
        row("wiki", "DIRECT"), row("printer", "DIRECT", path="/status?x=1"),
        row("www.corp.test", "DIRECT"), row("corp.test", "DIRECT"),
        row("a.b.corp.test", "DIRECT"), row("www.corp.test", "DIRECT", scheme="https"),
        row("WWW.Corp.TEST", "DIRECT"), row("www.corp.test.", "DIRECT"),
        row("www.intranet.test", "DIRECT"), row("intranet.test", "DIRECT"),
        row("notintranet.test", P), row("intranet.test.outside.test", P),
        row("host1.other.test", "DIRECT"), row("x.host1.other.test", P),
        row("other.test", P),
        row("10.1.2.3", "DIRECT"), row("10.255.255.255", "DIRECT"), row("11.1.2.3", P),
        row("192.168.7.7", "DIRECT"), row("192.169.0.1", P),
        row("[fd00::1]", "DIRECT"), row("[fd12:3456::1]", "DIRECT"), row("[2001:db8::1]", P),
        row("[fe80::1]", P),
        row("www.outside.test", P), row("www.outside.test", P, scheme="https"),
        row("example.com", P),
        # blocked hosts inside DIRECT domains go to the proxy, which refuses them
        row("www.casino.intranet.test", P), row("casino", P),
        row("secret.intranet.test", P), row("a.secret.intranet.test", P),
        row("notsecret.intranet.test", "DIRECT"),
    ]


def test_generated_pac_routes_an_office_table(start_policy_daemon, pctx, tmp_path):
    d = start_policy_daemon(extra=office(pctx))
    r = fetch(d.port)
    assert r.status == 200, r
    assert_table(tmp_path, r.body, office_rows("PROXY proxy-a.test:3128"))


def test_pacfallback_direct_lets_browsers_go_direct_last(start_policy_daemon, pctx, tmp_path):
    d = start_policy_daemon(extra=office(pctx, ["PacFallback direct"]))
    r = fetch(d.port)
    assert r.status == 200, r
    assert_table(tmp_path, r.body, office_rows("PROXY proxy-a.test:3128; DIRECT"))
    d2 = start_policy_daemon(extra=office(pctx, ["PacFallback none"]))
    assert_table(tmp_path, fetch(d2.port).body, office_rows("PROXY proxy-a.test:3128"))


def test_without_pacproxy_the_pac_names_the_address_the_client_used(start_policy_daemon, pctx,
                                                                     tmp_path):
    d = start_policy_daemon(v6=pctx.has_v6, extra=["NoProxy .intranet.test",
                                                   "ProxyRemote * http://127.0.0.1:%d"
                                                   % pctx.refused_port])
    r = fetch(d.port)
    assert r.status == 200, r
    me = "PROXY 127.0.0.1:%d" % d.port
    assert_table(tmp_path, r.body, [row("www.outside.test", me), row("wiki", "DIRECT"),
                                    row("www.intranet.test", "DIRECT")])
    r2 = fetch(d.port, host="proxy.test:%d" % d.port)
    assert r2.status == 200, r2
    assert_table(tmp_path, r2.body, [row("www.outside.test", "PROXY proxy.test:%d" % d.port)])
    assert r2.header("ETag") != r.header("ETag")
    # a Host without a port: the port the client reached
    r3 = fetch(d.port, host="proxy.test")
    assert_table(tmp_path, r3.body, [row("www.outside.test", "PROXY proxy.test:%d" % d.port)])
    if pctx.has_v6:
        r6 = fetch(d.port6, addr="::1")
        assert r6.status == 200, r6
        assert_table(tmp_path, r6.body,
                     [row("www.outside.test", "PROXY [::1]:%d" % d.port6)])


def test_pac_request_without_host_header_names_the_listener(start_policy_daemon, pctx, tmp_path):
    d = start_policy_daemon(extra=["NoProxy .intranet.test", "ProxyRemote * http://127.0.0.1:%d"
                                   % pctx.refused_port])
    r = fetch(d.port, host=False, version="HTTP/1.0")
    assert r.status == 200, r
    assert_table(tmp_path, r.body, [row("www.outside.test", "PROXY 127.0.0.1:%d" % d.port)])


def test_hostile_host_header_cannot_inject_into_the_pac(start_policy_daemon, pctx):
    d = start_policy_daemon(extra=["NoProxy .intranet.test"])
    for host in ('x";alert(1);"', "a b:1", "x\\y:3", "evil'):1"):
        r = fetch(d.port, host=host)
        if r.status == 200:
            assert host.encode() not in r.body, (host, r.body)
            for bad in (b"alert(1)", b"a b:1", b"x\\y", b"evil'"):
                assert bad not in r.body, (host, r.body)
        else:
            assert r.status == 400, (host, r)


def test_several_pacproxies_spread_hosts_with_the_others_as_failover(start_policy_daemon, pctx,
                                                                      tmp_path):
    proxies = ["proxy-a.test:3128", "proxy-b.test:3128", "proxy-c.test:8080"]
    d = start_policy_daemon(extra=["PacProxy " + " ".join(proxies), "PacFallback direct",
                                   "NoProxy .intranet.test", "ProxyRemote * http://127.0.0.1:%d"
                                   % pctx.refused_port])
    pac = fetch(d.port).body
    hosts = ["host%d.outside.test" % i for i in range(60)] + ["www.example.com", "a.b"]
    got = answers(tmp_path, pac, hosts)
    rotations = {}
    for k in range(3):
        order = proxies[k:] + proxies[:k]
        rotations["; ".join("PROXY " + p for p in order) + "; DIRECT"] = k
    firsts = set()
    for h, a in got.items():
        assert a in rotations, "%s: %r is not the PacProxy list in failover order" % (h, a)
        firsts.add(rotations[a])
    assert len(firsts) == 3, "60 hosts all went to the same first proxies: %r" % firsts
    # stable: the same answers a second time, from a second fetch
    assert answers(tmp_path, fetch(d.port).body, hosts[:10]) == {h: got[h] for h in hosts[:10]}
    assert_table(tmp_path, pac, [row("www.intranet.test", "DIRECT")])


def test_pacproxy_https_items_are_https_proxies_in_the_pac(start_policy_daemon, pctx, tmp_path):
    # issue 13: "https://host:port" is an HTTPS proxy ("HTTPS host:port"), a plain item PROXY
    d = start_policy_daemon(extra=["PacProxy https://gh.corp.test:3129 gh.corp.test:3128",
                                   "NoProxy .intranet.test", "ProxyRemote * http://127.0.0.1:%d"
                                   % pctx.refused_port])
    pac = fetch(d.port).body
    assert b"https://" not in pac, pac
    got = answers(tmp_path, pac, ["host%d.outside.test" % i for i in range(30)])
    # HTTPS first for every host, PROXY as the fallback
    assert set(got.values()) == {"HTTPS gh.corp.test:3129; PROXY gh.corp.test:3128"}, got
    # several of each kind: each kind spread on its own, HTTPS ones always before PROXY ones
    d2 = start_policy_daemon(extra=["PacProxy a.test:1 https://b.test:2 c.test:3 https://d.test:4",
                                    "ProxyRemote * http://127.0.0.1:%d" % pctx.refused_port])
    got = answers(tmp_path, fetch(d2.port).body, ["host%d.outside.test" % i for i in range(60)])
    assert set(got.values()) == {"HTTPS b.test:2; HTTPS d.test:4; PROXY a.test:1; PROXY c.test:3",
                                 "HTTPS d.test:4; HTTPS b.test:2; PROXY c.test:3; PROXY a.test:1"
                                 }, got
    assert_table(tmp_path, pac, [row("www.intranet.test", "DIRECT")])


def test_many_noproxy_entries_still_route_correctly(start_policy_daemon, pctx, tmp_path):
    domains = [".dept%d.test" % i for i in range(40)]
    d = start_policy_daemon(extra=["NoProxy " + " ".join(domains), "NoProxy exact.host.test",
                                   "ProxyDomain .corp.test", "ProxyBlock secret.dept7.test",
                                   "ProxyRemote * http://127.0.0.1:%d" % pctx.refused_port,
                                   "PacProxy p.test:1"])
    pac = fetch(d.port).body
    rows = [row("www" + dom, "DIRECT") for dom in domains]
    rows += [row(dom[1:], "DIRECT") for dom in domains[:5]]
    rows += [row("exact.host.test", "DIRECT"), row("a.exact.host.test", "PROXY p.test:1"),
             row("www.corp.test", "DIRECT"), row("dept7x.test", "PROXY p.test:1"),
             row("secret.dept7.test", "PROXY p.test:1"),
             row("www.secret.dept7.test", "PROXY p.test:1"),
             row("www.dept40.test", "PROXY p.test:1"), row("outside.test", "PROXY p.test:1")]
    assert_table(tmp_path, pac, rows)


def test_proxyblock_star_sends_every_host_to_the_proxy(start_policy_daemon, pctx, tmp_path):
    d = start_policy_daemon(extra=["ProxyBlock *", "NoProxy .intranet.test",
                                   "PacProxy p.test:1"])
    pac = fetch(d.port).body
    assert_table(tmp_path, pac, [row("wiki", "PROXY p.test:1"),
                                 row("www.intranet.test", "PROXY p.test:1"),
                                 row("10.0.0.1", "PROXY p.test:1")])


def test_pac_follows_a_reload(start_policy_daemon, pctx, tmp_path):
    d = start_policy_daemon(extra=["NoProxy .intranet.test", "PacProxy p.test:1",
                                   "ProxyRemote * http://127.0.0.1:%d" % pctx.refused_port])
    r1 = fetch(d.port)
    assert_table(tmp_path, r1.body, [row("www.partner.test", "PROXY p.test:1")])
    with open(d.conf) as f:
        text = f.read()
    with open(d.conf, "w") as f:
        f.write(text.replace("NoProxy .intranet.test", "NoProxy .intranet.test .partner.test"))
    ghtest.sighup_and_wait(d)
    r2 = fetch(d.port, headers=[("If-None-Match", r1.header("ETag"))])
    assert r2.status == 200, "the old ETag still matched after the policy changed: %r" % r2
    assert r2.header("ETag") != r1.header("ETag")
    assert_table(tmp_path, r2.body, [row("www.partner.test", "DIRECT")])


def test_pacfile_is_served_verbatim(start_policy_daemon, pctx, tmp_path):
    own = (b"// the admin's own file \xc3\xa9\n"
           b"function FindProxyForURL(url, host) {\n"
           b"  if (dnsDomainIs(host, \".mine.test\")) return \"DIRECT\";\n"
           b"  return \"PROXY mine.test:3128; SOCKS other.test:1080\";\n}\n")
    path = tmp_path / "own.pac"
    path.write_bytes(own)
    d = start_policy_daemon(extra=["PacFile %s" % path, "PacProxy ignored.test:1",
                                   "NoProxy .intranet.test"])
    for p in ("/proxy.pac", "/wpad.dat"):
        r = fetch(d.port, p)
        assert r.status == 200 and r.body == own, (p, r)
        assert (r.header("Content-Type") or "").split(";")[0].strip().lower() == PAC_TYPE
        etag = r.header("ETag")
        assert etag, r
        assert fetch(d.port, p, headers=[("If-None-Match", etag)]).status == 304
    assert_table(tmp_path, own, [row("a.mine.test", "DIRECT"),
                                 row("www.intranet.test",
                                     "PROXY mine.test:3128; SOCKS other.test:1080")])


def test_same_policy_gives_the_same_file_and_etag(start_policy_daemon, pctx):
    # The file depends only on the policy and the PacProxy list: a restarted (or second)
    # appliance serves the same ETag, so browsers keep their cached copy.
    conf = ["NoProxy .intranet.test 10.0.0.0/8", "ProxyDomain .corp.test",
            "PacProxy proxy-a.test:3128 proxy-b.test:3128", "ProxyBlock casino"]
    a = fetch(start_policy_daemon(extra=conf).port)
    b = fetch(start_policy_daemon(extra=conf).port)
    assert a.status == b.status == 200
    assert a.body == b.body
    assert a.header("ETag") == b.header("ETag")



@pytest.mark.parametrize("host,cause", [
    # valid RFC 3986 reg-names the PAC cannot carry: refused where the PAC is made
    ("a=b", b"malformed Host field"), ("a=b:3128", b"malformed Host field"),
    ("a!b", b"malformed Host field"), ("x,y:8080", b"malformed Host field"),
    # not a host[:port] at all: refused with the request head
    ("proxy.test:99999", b"bad Host"), ("proxy.test:x", b"bad Host"), ("[::1", b"bad Host"),
    ("user@proxy.test", b"bad Host"), ("proxy.test/x", b"bad Host")])
def test_malformed_host_on_the_pac_is_400_naming_the_cause(start_policy_daemon, pctx, host,
                                                           cause):
    # The generated PAC names the proxy by the Host the browser sent: a Host that cannot be a
    # host[:port] there is the client's error (400, saying so), not "cannot generate" (500).
    d = start_policy_daemon(extra=["NoProxy .intranet.test"])
    r = fetch(d.port, host=host)
    assert r.status == 400, (host, r)
    assert cause in r.body, r.body
    # the same daemon still serves a well-formed request
    assert fetch(d.port).status == 200
