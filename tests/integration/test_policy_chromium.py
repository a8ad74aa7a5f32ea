"""
test_policy_chromium.py - a real browser uses the served PAC (issue 3): headless Chromium
(Debian `chromium`) started with --proxy-pac-url pointing at the proxy's /proxy.pac loads a page
on an outside name through the proxy (it appears in the access log, and the origin sees the
proxy's Via) and a NoProxy host directly (the page loads, the access log never mentions it, the
origin sees no Via); a ProxyBlock word sends even a NoProxy-domain host to the proxy, which
refuses it with its 403 page.

Chromium bypasses any proxy for loopback hosts, so the pages use *.test names only the policy
dnsmasq resolves, and --host-resolver-rules let the browser itself resolve nothing but the
NoProxy host (and leave 127.0.0.1, the PAC's and the proxy's address, alone). Each run gets a
fresh profile and HOME under tmp_path; the browser's process group is killed afterwards.
"""

import json
import os
import re
import uuid

import pytest

import ghtest
import uibrowser

CHROMIUM_TIMEOUT = 60


def dump_dom(tmp_path, pac_url, resolver_rules, url, proxy_server=None):
    """Load url in headless Chromium with the PAC (or a fixed proxy_server); returns (exit
    status, DOM text, stderr)."""
    browser = uibrowser.chromium_path()
    run = tmp_path / ("chromium-" + uuid.uuid4().hex[:8])
    run.mkdir()
    args = [browser] + uibrowser.CHROMIUM_BASE_ARGS + [
            "--user-data-dir=%s" % (run / "profile"),
            ("--proxy-pac-url=%s" % pac_url) if pac_url else
            ("--proxy-server=%s" % proxy_server),
            "--host-resolver-rules=%s" % resolver_rules,
            "--dump-dom", url]
    return uibrowser.run_group(args, ghtest.clean_env(HOME=str(run)), CHROMIUM_TIMEOUT,
                               "chromium loading %s" % url)


def echo_doc(dom):
    """The origin's /echo JSON as Chromium shows it (inside a <pre>)."""
    m = re.search(r"<pre[^>]*>(.*?)</pre>", dom, re.S)
    assert m, "no /echo document in the page:\n%s" % dom[:2000]
    text = m.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">") \
                     .replace("&amp;", "&")
    return json.loads(text)


@pytest.mark.parametrize("pac_path", ["/proxy.pac", "/wpad.dat"])
def test_chromium_uses_the_served_pac(start_policy_daemon, pctx, tmp_path, pac_path):
    log = os.path.join(pctx.workdir, "chromium-%s.log" % uuid.uuid4().hex[:8])
    d = start_policy_daemon(access_log=log, extra=[
        "NoProxy .intranet.test",
        "ProxyBlock casino",
        "ProxyRemote * http://127.0.0.1:%d" % pctx.refused_port,
        "ProxyRemoteFallback direct"])
    pac_url = "http://127.0.0.1:%d%s" % (d.port, pac_path)
    rules = "MAP direct.intranet.test 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
    o = pctx.origin_port

    # 1. the NoProxy host: the browser resolves it itself (its one MAP rule) and goes direct
    t_direct = uuid.uuid4().hex
    u_direct = "http://direct.intranet.test:%d/echo?t=%s" % (o, t_direct)
    rc, dom, err = dump_dom(tmp_path, pac_url, rules, u_direct)
    assert rc == 0, err[-3000:]
    doc = echo_doc(dom)
    assert doc["target"] == "/echo?t=" + t_direct, doc
    seen = pctx.origin.requests_with(t_direct)
    assert len(seen) == 1, seen
    assert not [v for k, v in seen[0]["headers"] if k.lower() == "via"], \
        "the NoProxy page came through a proxy: %r" % seen[0]["headers"]

    # 2. an outside name only the proxy's DNS knows: through the proxy
    t_proxy = uuid.uuid4().hex
    u_proxy = "http://www.outside.test:%d/echo?t=%s" % (o, t_proxy)
    rc, dom, err = dump_dom(tmp_path, pac_url, rules, u_proxy)
    assert rc == 0, err[-3000:]
    assert "ERR_" not in dom, dom[:2000]
    doc = echo_doc(dom)
    assert doc["target"] == "/echo?t=" + t_proxy, doc
    assert [v for k, v in doc["headers"] if k.lower() == "via"], \
        "the outside page did not come through the proxy: %r" % doc["headers"]
    lines = ghtest.poll_lines(log, lambda ln: t_proxy in ln)
    assert len(lines) == 1, lines
    m = ghtest.SQUID_RE.match(lines[0])
    assert m and m.group(7) == "GET" and m.group(8) == u_proxy, lines[0]
    assert m.group(4) in ("TCP_MISS", "TCP_REFRESH_MISS") and m.group(5) == "200", lines[0]

    # 3. a blocked word inside the NoProxy domain: the PAC sends it to the proxy, which refuses
    u_blocked = "http://www.casino.intranet.test:%d/echo?t=%s" % (o, uuid.uuid4().hex)
    rc, dom, err = dump_dom(tmp_path, pac_url, rules, u_blocked)
    assert rc == 0, err[-3000:]
    assert "ProxyBlock" in dom and "casino" in dom, dom[:2000]

    # the direct page never reached the proxy (its log is complete up to the later requests)
    assert ghtest.poll_lines(log, lambda ln: "www.casino.intranet.test" in ln)
    with open(log, errors="replace") as f:
        text = f.read()
    assert t_direct not in text and "direct.intranet.test" not in text, text[-3000:]


def test_chromium_with_a_fixed_proxy_server(start_policy_daemon, pctx, tmp_path):
    # The same browser with --proxy-server instead of the PAC: the proxied page and the 403
    # page of a blocked host, as a check of the browser set-up independent of PAC handling.
    log = os.path.join(pctx.workdir, "chromium-%s.log" % uuid.uuid4().hex[:8])
    d = start_policy_daemon(access_log=log, extra=["ProxyBlock casino"])
    rules = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
    server = "http://127.0.0.1:%d" % d.port
    t = uuid.uuid4().hex
    u = "http://www.outside.test:%d/echo?t=%s" % (pctx.origin_port, t)
    rc, dom, err = dump_dom(tmp_path, None, rules, u, proxy_server=server)
    assert rc == 0, err[-3000:]
    assert echo_doc(dom)["target"] == "/echo?t=" + t
    assert len(ghtest.poll_lines(log, lambda ln: t in ln)) == 1
    rc, dom, err = dump_dom(tmp_path, None, rules,
                            "http://www.casino-royale.outside.test:%d/" % pctx.origin_port,
                            proxy_server=server)
    assert rc == 0, err[-3000:]
    assert "ProxyBlock" in dom and "casino" in dom, dom[:2000]
