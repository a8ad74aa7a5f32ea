"""
test_tls_upstream.py - TLS towards upstreams (issue 13): https:// absolute URLs fetched over TLS
from a real nginx origin (tests/integration/nginx_tls.py) with the test certificates
(tlsca.py), verified, cached under keys distinct from http://, refused with a 502 naming the
certificate problem; a client certificate; connection reuse; the policy (ProxyBlock,
ProxyRemote for the scheme https); and HTTPS parents: a second Gatehouse with a TLS listener
(`Listen PORT https`) carrying GET and CONNECT, each bad parent certificate marking the parent
down with the reason and failing over to the next one.

curl and wget use CONNECT for https:// URLs through a proxy, so the requests here are raw
absolute-form requests (`GET https://... HTTP/1.1`, ghtest.get) sent to the proxy.
"""

import os
import socket

import pytest

import ghtest
from nginx_tls import nginx_tls  # noqa: F401  (fixture)
from tlsca import tlsca  # noqa: F401  (fixture)

BODY = b"tls upstream body\n" * 20

REASONS = {
    "expired": "certificate has expired",
    "selfsigned": "self-signed certificate",
    # the name check: whatever the words, they name the name the certificate is for
    "wrongname": "www.example.net",
}


def _tok():
    return os.urandom(6).hex()


def _cache_lines(workdir, name, prefix="https://"):
    root = os.path.join(workdir, "%s-%s" % (name, _tok()))
    return ["CacheRoot %s" % root, "CacheSize 64M", "CacheEnable lmdb %s" % prefix]


def _front(start_daemon, tlsca, extra=(), ca=True, name="tlsup", **kw):
    lines = []
    if ca:
        lines.append("SSLProxyCACertificateFile %s" % tlsca.ca_pem)
    return start_daemon(name, extra=lines + list(extra), **kw)


def _access_log(ctx, name):
    return os.path.join(ctx.workdir, "%s-%s.access.log" % (name, _tok()))


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


# ---- https:// URLs direct to the origin ----

def test_https_url_fetched_over_tls_then_served_from_the_cache(start_daemon, ctx, tlsca,
                                                               nginx_tls):
    n = nginx_tls(tlsca.good_pem, tlsca.good_key, name="good", max_age=300)
    url = n.put("c/a.txt", BODY)
    d = _front(start_daemon, tlsca, _cache_lines(ctx.workdir, "tlscache"))
    r1 = ghtest.get(d.port, url)
    assert r1.status == 200, r1
    assert r1.body == BODY
    assert "stored" in (r1.header("Cache-Status") or ""), r1
    r2 = ghtest.get(d.port, url)
    assert r2.status == 200 and r2.body == BODY, r2
    assert (r2.header("Cache-Status") or "").startswith("Gatehouse; hit"), r2
    entries = n.wait_entries(1)
    assert len([e for e in entries if e["request"] == "GET /c/a.txt HTTP/1.1"]) == 1, entries
    assert entries[0]["protocol"] in ("TLSv1.2", "TLSv1.3"), entries
    # The same host, port and path over http:// is another cache key: not this entry (it
    # reaches the TLS port in clear, and nginx refuses it).
    r3 = ghtest.get(d.port, url.replace("https://", "http://"))
    assert not (r3.header("Cache-Status") or "").startswith("Gatehouse; hit"), r3
    assert r3.body != BODY, r3


def test_https_url_cached_with_cacheenable_slash(start_daemon, ctx, tlsca, nginx_tls):
    n = nginx_tls(tlsca.good_pem, tlsca.good_key, name="good", max_age=300)
    url = n.put("slash.txt", BODY)
    d = _front(start_daemon, tlsca, _cache_lines(ctx.workdir, "tlsslash", "/"))
    assert ghtest.get(d.port, url).status == 200
    r = ghtest.get(d.port, url)
    assert r.status == 200 and (r.header("Cache-Status") or "").startswith("Gatehouse; hit"), r
    assert len(n.wait_entries(1)) == 1


def test_https_url_not_cached_without_a_matching_cacheenable(start_daemon, ctx, tlsca,
                                                             nginx_tls):
    n = nginx_tls(tlsca.good_pem, tlsca.good_key, name="good", max_age=300)
    url = n.put("nc.txt", BODY)
    d = _front(start_daemon, tlsca, _cache_lines(ctx.workdir, "tlsnc", "http://"))
    for _ in range(2):
        r = ghtest.get(d.port, url)
        assert r.status == 200 and r.body == BODY, r
    assert len(n.wait_entries(2)) == 2


@pytest.mark.parametrize("kind", ["expired", "wrongname", "selfsigned"])
def test_bad_origin_certificate_is_502_naming_the_reason(start_daemon, ctx, tlsca, nginx_tls,
                                                         kind):
    cert, key = tlsca.kinds()[kind]
    n = nginx_tls(cert, key, name=kind)
    url = n.put("x.txt", BODY)
    log = _access_log(ctx, "tlsbad")
    d = _front(start_daemon, tlsca, access_log=log)
    r = ghtest.get(d.port, url)
    assert r.status == 502, r
    text = r.body.decode(errors="replace")
    assert "TLS handshake with 127.0.0.1:%d failed" % n.port in text, text
    assert REASONS[kind] in text, text
    assert BODY not in r.body
    assert n.log_entries() == []  # no request crossed the failed handshake
    assert ghtest.poll(lambda: "/x.txt" in _read(log), timeout=10)
    line = [ln for ln in _read(log).splitlines() if "/x.txt" in ln][-1]
    assert "/502 " in line and url in line, line


def test_proxy_cipher_lists_for_tls12_and_tls13_combine(start_daemon, ctx, tlsca, nginx_tls):
    # SSLProxyCipherSuite keeps one list per protocol (Apache 2.4): the TLS 1.3 line must not
    # replace the TLS 1.2 one. Two TLS 1.2 origins, each with one suite: only the one the
    # TLS 1.2 list allows is reached, the other fails with the reason.
    n_ok = nginx_tls(tlsca.good_pem, tlsca.good_key, name="c256", tls12_only=True,
                     ciphers="ECDHE-RSA-AES256-GCM-SHA384")
    n_no = nginx_tls(tlsca.good_pem, tlsca.good_key, name="c128", tls12_only=True,
                     ciphers="ECDHE-RSA-AES128-GCM-SHA256")
    ok_url, no_url = n_ok.put("ok.txt", BODY), n_no.put("no.txt", BODY)
    d = _front(start_daemon, tlsca, ["SSLProxyCipherSuite ECDHE-RSA-AES256-GCM-SHA384",
                                     "SSLProxyCipherSuite TLSv1.3 TLS_AES_256_GCM_SHA384"])
    r = ghtest.get(d.port, ok_url)
    assert r.status == 200 and r.body == BODY, r
    r = ghtest.get(d.port, no_url)
    assert r.status == 502, r
    assert "TLS handshake with 127.0.0.1:%d failed" % n_no.port in r.body.decode(), r
    assert n_no.log_entries() == []


def test_verify_none_accepts_a_self_signed_origin(start_daemon, ctx, tlsca, nginx_tls):
    n = nginx_tls(tlsca.selfsigned_pem, tlsca.selfsigned_key, name="selfsigned")
    url = n.put("s.txt", BODY)
    d = _front(start_daemon, tlsca, ["SSLProxyVerify none"], ca=False)
    r = ghtest.get(d.port, url)
    assert r.status == 200 and r.body == BODY, r


def test_the_test_ca_must_be_configured(start_daemon, ctx, tlsca, nginx_tls):
    n = nginx_tls(tlsca.good_pem, tlsca.good_key, name="good")
    url = n.put("g.txt", BODY)
    d = _front(start_daemon, tlsca, ca=False)  # the system store does not know the test CA
    r = ghtest.get(d.port, url)
    assert r.status == 502, r
    assert b"unable to get local issuer certificate" in r.body, r
    d2 = _front(start_daemon, tlsca, ["SSLProxyCACertificateFile %s" % tlsca.other_ca_pem],
                ca=False)
    r = ghtest.get(d2.port, url)
    assert r.status == 502 and b"unable to get local issuer certificate" in r.body, r


def test_client_certificate_presented_to_an_origin_that_requires_one(start_daemon, ctx, tlsca,
                                                                     nginx_tls):
    n = nginx_tls(tlsca.good_pem, tlsca.good_key, name="mtls", verify_client_ca=tlsca.ca_pem)
    url = n.put("m.txt", BODY)
    d = _front(start_daemon, tlsca, ["SSLProxyMachineCertificateFile %s" % tlsca.client_pem])
    r = ghtest.get(d.port, url)
    assert r.status == 200 and r.body == BODY, r
    (e,) = n.wait_entries(1)
    assert e["client_verify"] == "SUCCESS", e
    # without it nginx refuses the request (400: no required SSL certificate was sent)
    d2 = _front(start_daemon, tlsca)
    r = ghtest.get(d2.port, url)
    assert r.status == 400 and BODY not in r.body, r


def test_tls_connection_to_the_origin_is_reused(start_daemon, ctx, tlsca, nginx_tls):
    n = nginx_tls(tlsca.good_pem, tlsca.good_key, name="reuse")
    urls = [n.put("r%d.txt" % i, BODY) for i in range(3)]
    d = _front(start_daemon, tlsca, workers=1)
    for u in urls:
        r = ghtest.get(d.port, u)
        assert r.status == 200 and r.body == BODY, r
    entries = n.wait_entries(3)
    assert len({e["connection"] for e in entries}) == 1, entries
    assert [e["requests"] for e in entries] == ["1", "2", "3"], entries


def test_https_and_http_to_the_same_port_are_not_pooled_together(start_daemon, ctx, tlsca,
                                                                  nginx_tls):
    n = nginx_tls(tlsca.good_pem, tlsca.good_key, name="pool")
    url = n.put("p.txt", BODY)
    d = _front(start_daemon, tlsca, workers=1)
    assert ghtest.get(d.port, url).status == 200
    # plain HTTP to the TLS port: a fresh TCP connection (nginx: 400), never the TLS one
    r = ghtest.get(d.port, url.replace("https://", "http://"))
    assert r.status == 400, r
    r = ghtest.get(d.port, url)
    assert r.status == 200 and r.body == BODY, r


def test_proxyblock_applies_to_https_urls(start_daemon, ctx, tlsca, nginx_tls):
    n = nginx_tls(tlsca.good_pem, tlsca.good_key, name="block")
    url = n.put("b.txt", BODY)
    d = _front(start_daemon, tlsca, ["ProxyBlock 127.0.0.1"])
    r = ghtest.get(d.port, url)
    assert r.status == 403 and b"blocked" in r.body, r
    assert n.log_entries() == []


def test_proxyremote_for_the_https_scheme_sends_the_absolute_url_to_the_parent(
        start_daemon, ctx, tlsca, nginx_tls):
    n = nginx_tls(tlsca.good_pem, tlsca.good_key, name="viaparent")
    url = n.put("v.txt", BODY)
    plog = _access_log(ctx, "plainparent")
    parent = _front(start_daemon, tlsca, name="plainparent", access_log=plog)
    # the front knows no CA: only the parent checks the origin's certificate
    front = _front(start_daemon, tlsca, ["ProxyRemote https http://127.0.0.1:%d" % parent.port],
                   ca=False)
    r = ghtest.get(front.port, url)
    assert r.status == 200 and r.body == BODY, r
    assert ghtest.poll(lambda: url in _read(plog), timeout=10), _read(plog)
    # http:// URLs are not the "https" scheme: they go direct
    t = _tok()
    r = ghtest.get(front.port, "http://127.0.0.1:%d/size/10?t=%s" % (ctx.origin_port, t))
    assert r.status == 200, r
    assert t not in _read(plog)


def test_explain_shows_the_tls_route(start_daemon, ctx, tlsca, nginx_tls):
    n = nginx_tls(tlsca.good_pem, tlsca.good_key, name="explain")
    d = _front(start_daemon, tlsca, proxy_section=(
        "<Proxy *>\n    Require ip 127.0.0.1 ::1\n</Proxy>\n<Location /gatehouse/>\n"
        "    SetHandler gatehouse-status\n    Require ip 127.0.0.1 ::1\n</Location>"))
    import json
    import urllib.parse
    q = urllib.parse.urlencode({"url": n.url("e.txt"), "client": "127.0.0.1"})
    raw = ("GET /gatehouse/api/explain?%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
           "Connection: close\r\n\r\n" % (q, d.port)).encode()
    r, c = ghtest.request(d.port, raw, timeout=20)
    c.close()
    assert r.status == 200, r
    j = json.loads(r.body)
    assert any(s.get("verdict") == "direct (TLS to origin)" for s in j["steps"]), j
    assert "over TLS" in j["outcome"], j


# ---- HTTPS parents: a second Gatehouse with a TLS listener ----

def _tls_parent(start_daemon, ctx, tlsca, cert, key, name="tlsparent", access_log=None,
                extra=()):
    """A Gatehouse whose proxy listener speaks TLS (`Listen PORT https`)."""
    lines = ["# written by tests/integration/test_tls_upstream.py",
             "Listen 127.0.0.1:{port} https",
             "SSLCertificateFile %s" % cert, "SSLCertificateKeyFile %s" % key,
             "SSLProxyCACertificateFile %s" % tlsca.ca_pem,
             "DNSServer 127.0.0.1:{dns_port}", "ProxyTimeout 5", "Workers 2", "User root",
             "LogLevel info", "ProxyVia On", "MaxConnectionsPerClient 0",
             "AllowCONNECT 443 {echo_port}"]
    if access_log:
        lines.append("AccessLog %s" % access_log)
    lines += list(extra)
    lines += ["<Proxy *>", "    Require ip 127.0.0.1 ::1", "</Proxy>"]
    return start_daemon(name, text="\n".join(lines) + "\n")


def test_get_through_an_https_parent(start_daemon, ctx, tlsca):
    plog = _access_log(ctx, "tlsparent")
    parent = _tls_parent(start_daemon, ctx, tlsca, tlsca.good_pem, tlsca.good_key,
                         access_log=plog)
    front = _front(start_daemon, tlsca, ["ProxyRemote * https://127.0.0.1:%d" % parent.port])
    t = _tok()
    url = "http://127.0.0.1:%d/size/1000?t=%s" % (ctx.origin_port, t)
    r = ghtest.get(front.port, url)
    assert r.status == 200 and len(r.body) == 1000, r
    assert len(ctx.origin.requests_with(t)) == 1
    assert ghtest.poll(lambda: t in _read(plog), timeout=10), _read(plog)


def test_tls_connection_to_an_https_parent_is_reused(start_daemon, ctx, tlsca):
    klog = _access_log(ctx, "tlsparentka")
    parent = _tls_parent(start_daemon, ctx, tlsca, tlsca.good_pem, tlsca.good_key,
                         extra=['CustomLog %s "%%k %%r"' % klog])
    front = _front(start_daemon, tlsca, ["ProxyRemote * https://127.0.0.1:%d" % parent.port],
                   workers=1)
    t = _tok()
    for i in range(3):
        r = ghtest.get(front.port, "http://127.0.0.1:%d/size/10?t=%s&i=%d"
                       % (ctx.origin_port, t, i))
        assert r.status == 200, r

    def counts():
        return [int(ln.split()[0]) for ln in _read(klog).splitlines() if t in ln]
    assert ghtest.poll(lambda: len(counts()) == 3, timeout=10), _read(klog)
    # %k: the requests before this one on the same connection: one TLS connection for all
    k = counts()
    assert k == [k[0], k[0] + 1, k[0] + 2], k


def test_https_url_through_an_https_parent(start_daemon, ctx, tlsca, nginx_tls):
    n = nginx_tls(tlsca.good_pem, tlsca.good_key, name="viatlsparent")
    url = n.put("hp.txt", BODY)
    parent = _tls_parent(start_daemon, ctx, tlsca, tlsca.good_pem, tlsca.good_key)
    front = _front(start_daemon, tlsca, ["ProxyRemote https https://127.0.0.1:%d" % parent.port])
    r = ghtest.get(front.port, url)
    assert r.status == 200 and r.body == BODY, r
    assert len(n.wait_entries(1)) == 1


def test_connect_through_an_https_parent_with_half_close(start_daemon, ctx, tlsca):
    parent = _tls_parent(start_daemon, ctx, tlsca, tlsca.good_pem, tlsca.good_key)
    front = _front(start_daemon, tlsca, ["ProxyRemote * https://127.0.0.1:%d" % parent.port])
    c = ghtest.Conn("127.0.0.1", front.port, timeout=20)
    with c:
        target = "127.0.0.1:%d" % ctx.echo_port
        c.send(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
        r = c.read_response("CONNECT")
        assert r.status == 200, r
        for i in range(3):
            msg = b"tunnel %d " % i + os.urandom(3000)
            c.send(msg)
            assert c.read_exact(len(msg), timeout=20) == msg
        big = os.urandom(512 * 1024)
        c.send(big)
        assert c.read_exact(len(big), timeout=30) == big
        c.send(b"last words")
        c.sock.shutdown(socket.SHUT_WR)
        # our FIN crosses the parent's TLS (close_notify, then the parent's FIN to the echo
        # server), which then closes: the EOF comes back the same way
        assert c.read_to_eof(timeout=20) == b"last words"


@pytest.mark.parametrize("kind", ["expired", "wrongname", "selfsigned"])
def test_bad_parent_certificate_marks_it_down_and_fails_over(start_daemon, ctx, tlsca, kind):
    cert, key = tlsca.kinds()[kind]
    bad = _tls_parent(start_daemon, ctx, tlsca, cert, key, name="badparent")
    good = _tls_parent(start_daemon, ctx, tlsca, tlsca.good_pem, tlsca.good_key)
    front = _front(start_daemon, tlsca, ["ProxyRemote * https://127.0.0.1:%d" % bad.port,
                                         "ProxyRemote * https://127.0.0.1:%d" % good.port])
    off = front.stderr_size()
    t = _tok()
    r = ghtest.get(front.port, "http://127.0.0.1:%d/size/10?t=%s" % (ctx.origin_port, t))
    assert r.status == 200 and len(r.body) == 10, r
    assert len(ctx.origin.requests_with(t)) == 1

    def logged():
        return [ln for ln in front.stderr_text(off).splitlines()
                if "127.0.0.1:%d" % bad.port in ln and "marked down" in ln]
    assert ghtest.poll(lambda: logged(), timeout=10), front.stderr_tail()
    assert REASONS[kind] in logged()[0], logged()

    # alone, the bad parent gives a 502 whose page names the certificate problem
    front2 = _front(start_daemon, tlsca, ["ProxyRemote * https://127.0.0.1:%d" % bad.port])
    r = ghtest.get(front2.port, "http://127.0.0.1:%d/size/10?t=%s" % (ctx.origin_port, t))
    assert r.status == 502, r
    text = r.body.decode(errors="replace")
    assert "127.0.0.1:%d" % bad.port in text and REASONS[kind] in text, text
    assert len(ctx.origin.requests_with(t)) == 1


def test_https_parent_without_a_tls_listener_fails_over(start_daemon, ctx, tlsca):
    plain = _front(start_daemon, tlsca, name="plainnotls")  # speaks HTTP, not TLS
    good = _tls_parent(start_daemon, ctx, tlsca, tlsca.good_pem, tlsca.good_key)
    front = _front(start_daemon, tlsca, ["ProxyRemote * https://127.0.0.1:%d" % plain.port,
                                         "ProxyRemote * https://127.0.0.1:%d" % good.port])
    t = _tok()
    r = ghtest.get(front.port, "http://127.0.0.1:%d/size/10?t=%s" % (ctx.origin_port, t))
    assert r.status == 200, r
    assert ghtest.poll(lambda: "TLS handshake with 127.0.0.1:%d failed" % plain.port
                       in front.stderr_text(), timeout=10), front.stderr_tail()


STATUS_SECTION = ("<Proxy *>\n    Require ip 127.0.0.1 ::1\n</Proxy>\n<Location /gatehouse/>\n"
                  "    SetHandler gatehouse-status\n    Require ip 127.0.0.1 ::1\n</Location>")


def _parents(port):
    st, _, body = ghtest.status_page(port, "?auto")
    assert st == 200, body
    out = {}
    for ln in body.decode().splitlines():
        if ln.startswith("Parent: "):
            f = ln[len("Parent: "):].split()
            out[f[0]] = dict(kv.split("=", 1) for kv in f[1:])
    return out


def test_plain_and_tls_parent_on_one_port_have_their_own_health(start_daemon, ctx, tlsca):
    # https://P and http://P are two parents: a failed handshake marks the TLS one down, not
    # the plain one (they shared the health key "127.0.0.1:P": the failover skipped the plain
    # one as down and answered 502)
    plain = _front(start_daemon, tlsca, name="plainboth")  # speaks HTTP, not TLS
    front = _front(start_daemon, tlsca, ["ProxyRemote * https://127.0.0.1:%d" % plain.port,
                                         "ProxyRemote * http://127.0.0.1:%d" % plain.port],
                   proxy_section=STATUS_SECTION)
    t = _tok()
    r = ghtest.get(front.port, "http://127.0.0.1:%d/size/10?t=%s" % (ctx.origin_port, t))
    assert r.status == 200 and len(r.body) == 10, r
    assert len(ctx.origin.requests_with(t)) == 1
    par = _parents(front.port)
    tls_key, plain_key = "https://127.0.0.1:%d" % plain.port, "127.0.0.1:%d" % plain.port
    assert set(par) == {tls_key, plain_key}, par
    assert par[tls_key]["up"] == "0" and int(par[tls_key]["fails"]) >= 1, par
    assert par[plain_key]["up"] == "1" and par[plain_key]["fails"] == "0", par
    assert ghtest.poll(lambda: "parent proxy %s failed" % tls_key in front.stderr_text(),
                       timeout=10), front.stderr_tail()


def test_reload_from_https_to_http_parent_starts_with_a_fresh_health(start_daemon, ctx, tlsca):
    # the same host:port turned from https:// into http:// by a reload is another parent: the
    # TLS one's down state does not carry over
    plain = _front(start_daemon, tlsca, name="plainreload")
    front = _front(start_daemon, tlsca, ["ProxyRemote * https://127.0.0.1:%d" % plain.port],
                   proxy_section=STATUS_SECTION)
    url = "http://127.0.0.1:%d/size/10?t=%s" % (ctx.origin_port, _tok())
    r = ghtest.get(front.port, url)
    assert r.status == 502, r
    page502 = r.body.decode(errors="replace")
    with open(front.conf) as f:
        text = f.read()
    with open(front.conf, "w") as f:
        f.write(text.replace("https://127.0.0.1:%d" % plain.port,
                             "http://127.0.0.1:%d" % plain.port))
    ghtest.sighup_and_wait(front)
    t = _tok()
    r = ghtest.get(front.port, "http://127.0.0.1:%d/size/10?t=%s" % (ctx.origin_port, t))
    assert r.status == 200 and len(r.body) == 10, r
    assert len(ctx.origin.requests_with(t)) == 1
    par = _parents(front.port)
    assert set(par) == {"127.0.0.1:%d" % plain.port}, par
    assert par["127.0.0.1:%d" % plain.port]["up"] == "1", par
    # the 502 named the parent as the admin wrote it, scheme included
    assert "https://127.0.0.1:%d (TLS handshake" % plain.port in page502, page502


def test_ftp_url_through_an_https_parent_goes_in_absolute_form(start_daemon, ctx, tlsca):
    plog = _access_log(ctx, "tlsparentftp")
    parent = _tls_parent(start_daemon, ctx, tlsca, tlsca.good_pem, tlsca.good_key,
                         access_log=plog)
    front = _front(start_daemon, tlsca, ["ProxyRemote ftp https://127.0.0.1:%d" % parent.port])
    t = _tok()
    # nothing listens there: the parent's own FTP gateway answers, over the parent's TLS
    url = "ftp://127.0.0.1:%d/pub/%s.txt" % (ctx.refused_port, t)
    r = ghtest.get(front.port, url)
    assert r.status in (502, 504), r
    assert b"TLS handshake" not in r.body, r
    assert ghtest.poll(lambda: url in _read(plog), timeout=10), _read(plog)


def test_stalled_handshake_is_a_timeout_within_proxytimeout(start_daemon, ctx, tlsca):
    # a server that accepts TCP (the kernel's backlog) and never says a TLS word
    hole = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    hole.bind(("127.0.0.1", 0))
    hole.listen(8)
    try:
        port = hole.getsockname()[1]
        d = _front(start_daemon, tlsca, timeout=2)
        r = ghtest.get(d.port, "https://127.0.0.1:%d/x" % port, timeout=30)
        assert r.status == 504, r
        assert b"TLS handshake with 127.0.0.1:%d timed out" % port in r.body, r
        assert d.alive()
    finally:
        hole.close()
