"""
test_auth_chromium.py - a real browser through the authenticating proxy (issue 14): headless
Chromium (Debian `chromium`, driven by puppeteer-core from tests/integration/node, no browser
download) with --proxy-server pointing at Gatehouse, which asks for Basic credentials.

With the right user and password offered through page.authenticate() (Chromium's own
proxy-credentials path, as when a user types them into its dialog) the page loads through
the proxy: the origin's /echo shows the proxy's Via and no Proxy-Authorization, and the access
log has the 407 that asked and then the request with the user. With a wrong password, or with
none, the page does not load: the origin never sees it and the access log has only 407s.

An https:// page goes through a CONNECT tunnel, which the proxy asks credentials for in the
same way: with them the page (from a loopback nginx with the test CA's certificate; the
browser is told to accept it, the certificate is not what is tested) loads and the access
log's CONNECT line has the user; without them the tunnel is never opened.

Chromium bypasses proxies for loopback names, so the pages are on www.outside.test, which
only the policy dnsmasq (the proxy's resolver) knows; --host-resolver-rules keep the browser
from resolving anything itself.
"""

import json
import os
import uuid

import pytest

import authfix
import ghtest
import uibrowser
from nginx_tls import nginx_tls  # noqa: F401  (fixture)
from tlsca import tlsca  # noqa: F401  (fixture)

RULES = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
SCRIPT = os.path.join(uibrowser.NODE_DIR, "proxy_auth.js")
USERS = {"alice": "Wonderland-42"}


def browse(tmp_path, port, urls, auth, ignore_cert_errors=False):
    """Run node/proxy_auth.js; returns its loads."""
    uibrowser.node_ready()
    run = tmp_path / ("pa-" + uuid.uuid4().hex[:8])
    (run / "profile").mkdir(parents=True)
    spec = {"executable": uibrowser.chromium_path(), "profile": str(run / "profile"),
            "timeout_ms": uibrowser.BROWSER_TIMEOUT * 1000 // 2,
            "proxy": "http://127.0.0.1:%d" % port, "resolver_rules": RULES, "urls": urls,
            "auth": {"username": auth[0], "password": auth[1]} if auth else None,
            "ignore_cert_errors": ignore_cert_errors}
    (run / "spec.json").write_text(json.dumps(spec))
    rc, out, err = uibrowser.run_group(["node", SCRIPT, str(run / "spec.json")],
                                       ghtest.clean_env(HOME=str(run)),
                                       uibrowser.BROWSER_TIMEOUT, "node proxy_auth.js")
    try:
        res = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        pytest.fail("proxy_auth.js printed no JSON (exit %s):\n%s\n%s" % (rc, out[-2000:],
                                                                         err[-3000:]))
    assert res.get("ok"), "proxy_auth.js failed: %s\n%s" % (res.get("error"), err[-3000:])
    return res["loads"]


@pytest.fixture
def authd(start_policy_daemon, pctx, tmp_path):
    users = authfix.write_htpasswd(tmp_path / "users.htpasswd", USERS)
    log = str(tmp_path / "chromium-auth.log")
    d = start_policy_daemon(access_log=log, proxy_section=authfix.section(users))
    d.access_log = log
    return d


def page_url(pctx, t):
    return "http://www.outside.test:%d/echo?t=%s" % (pctx.origin_port, t)


def log_lines(d, t):
    with open(d.access_log, errors="replace") as f:
        return [ghtest.SQUID_RE.match(ln.rstrip("\n")) for ln in f if t in ln]


def test_chromium_loads_a_page_through_the_proxy_with_credentials(authd, pctx, tmp_path):
    t1, t2 = uuid.uuid4().hex, uuid.uuid4().hex
    loads = browse(tmp_path, authd.port, [page_url(pctx, t1), page_url(pctx, t2)],
                   ("alice", USERS["alice"]))
    for load, t in zip(loads, (t1, t2)):
        assert load["error"] is None and load["status"] == 200, load
        doc = json.loads(load["text"])
        assert doc["target"] == "/echo?t=" + t, doc
        names = [k.lower() for k, _ in doc["headers"]]
        assert "via" in names, doc["headers"]
        assert "proxy-authorization" not in names, doc["headers"]
    lines = ghtest.poll(lambda: [m for m in log_lines(authd, t1) if m and m.group(5) == "200"])
    assert lines and lines[0].group(9) == "alice", log_lines(authd, t1)
    # the proxy asked first (Chromium sends no credentials until challenged) ...
    assert any(m and m.group(5) == "407" for m in log_lines(authd, t1)), log_lines(authd, t1)
    # ... and the second page went with them at once
    ok2 = ghtest.poll(lambda: [m for m in log_lines(authd, t2) if m and m.group(5) == "200"])
    assert ok2 and ok2[0].group(9) == "alice"
    assert len(pctx.origin.requests_with(t1)) == 1 and len(pctx.origin.requests_with(t2)) == 1


@pytest.mark.parametrize("auth", [("alice", "not-her-password"), None],
                         ids=["wrong-password", "no-credentials"])
def test_chromium_without_the_right_credentials_gets_no_page(authd, pctx, tmp_path, auth):
    t = uuid.uuid4().hex
    loads = browse(tmp_path, authd.port, [page_url(pctx, t)], auth)
    load = loads[0]
    assert load["status"] != 200, load
    assert load["status"] == 407 or load["error"], load
    if load["status"] == 407:       # the proxy's own page, shown after the credentials failed
        assert "Proxy Authentication Required" in load["text"], load
    assert pctx.origin.requests_with(t) == [], "the page reached the origin"
    lines = ghtest.poll(lambda: log_lines(authd, t))
    assert lines and all(m and m.group(5) == "407" for m in lines), lines


@pytest.fixture
def tls_origin(nginx_tls, tlsca):
    n = nginx_tls(tlsca.good_pem, tlsca.good_key, name="auth-chromium")
    n.put("hello.html", b"<html><body><p id=x>through the tunnel</p></body></html>")
    return n


@pytest.mark.parametrize("auth", [("alice", USERS["alice"]), None],
                         ids=["credentials", "no-credentials"])
def test_chromium_https_page_through_an_authenticated_connect(start_policy_daemon, pctx,
                                                              tmp_path, tls_origin, auth):
    users = authfix.write_htpasswd(tmp_path / "users.htpasswd", USERS)
    log = str(tmp_path / "chromium-connect.log")
    d = start_policy_daemon(access_log=log, proxy_section=authfix.section(users),
                            allow_connect="443 %d" % tls_origin.port)
    d.access_log = log
    before = len(tls_origin.log_entries())
    u = "https://www.outside.test:%d/hello.html" % tls_origin.port
    load = browse(tmp_path, d.port, [u], auth, ignore_cert_errors=True)[0]

    def connects():
        with open(log, errors="replace") as f:
            return [m for m in (ghtest.SQUID_RE.match(ln.rstrip("\n")) for ln in f)
                    if m and m.group(7) == "CONNECT"]
    if auth:
        assert load["error"] is None and load["status"] == 200, load
        assert "through the tunnel" in load["text"], load
        ok = ghtest.poll(lambda: [m for m in connects() if m.group(5) == "200"])
        assert ok and ok[0].group(9) == "alice", connects()
        assert any(m.group(5) == "407" for m in connects()), "the proxy never asked"
        assert len(tls_origin.log_entries()) > before
    else:
        assert load["status"] != 200 and "through the tunnel" not in load["text"], load
        assert ghtest.poll(lambda: connects())
        assert all(m.group(5) == "407" for m in connects()), [m.group(0) for m in connects()]
        assert len(tls_origin.log_entries()) == before, "the tunnel reached the origin"
