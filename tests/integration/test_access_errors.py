"""
test_access_errors.py - access control (<Proxy> Require ip, Order/Allow/Deny, URL-prefix and
<ProxyMatch> sections, ProxyRequests Off) and the error pages: DNS failure, refused and stalled
upstreams, DNS server that never answers, origin-form requests to the proxy itself.
"""

import socket
import time
import uuid

import pytest

import ghtest


def url(ctx, path, host="origin.test"):
    return "http://%s:%d%s" % (host, ctx.origin_port, path)


def is_html(r):
    return (r.header("Content-Type") or "").lower().startswith("text/html")


def test_client_from_127_0_0_2_is_denied(proxy, ctx):
    tok = uuid.uuid4().hex
    r = ghtest.get(proxy.port, url(ctx, "/echo?acl=" + tok), source="127.0.0.2")
    assert r.status == 403, r
    assert is_html(r)
    assert ctx.origin.requests_with(tok) == []


def test_client_from_127_0_0_1_is_allowed(proxy, ctx):
    r = ghtest.get(proxy.port, url(ctx, "/size/5"), source="127.0.0.1")
    assert r.status == 200 and len(r.body) == 5


def test_curl_from_denied_interface_gets_403(proxy, ctx):
    import subprocess
    p = subprocess.run(["curl", "-sS", "--max-time", "10", "--interface", "127.0.0.2", "-x",
                        "http://127.0.0.1:%d" % proxy.port, "-o", "/dev/null", "-w", "%{http_code}",
                        url(ctx, "/size/5")], capture_output=True, timeout=20,
                       env=ghtest.clean_env())
    assert p.stdout == b"403", (p.stdout, p.stderr)


def test_denied_client_cannot_connect_either(proxy, ctx):
    c = ghtest.Conn("127.0.0.1", proxy.port, source="127.0.0.2")
    with c:
        c.send("CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n\r\n" % ctx.echo_port)
        r = c.read_response("CONNECT")
        assert r.status == 403


def test_proxy_requests_off_is_403(start_daemon, ctx):
    tok = uuid.uuid4().hex
    d = start_daemon(extra=["ProxyRequests Off"])
    r = ghtest.get(d.port, url(ctx, "/echo?off=" + tok))
    assert r.status == 403, r
    assert ctx.origin.requests_with(tok) == []


def test_require_all_denied(start_daemon, ctx):
    d = start_daemon(proxy_section="<Proxy *>\n    Require all denied\n</Proxy>")
    r = ghtest.get(d.port, url(ctx, "/size/1"))
    assert r.status == 403


def test_order_deny_allow_legacy_syntax(start_daemon, ctx):
    d = start_daemon(proxy_section="<Proxy *>\n    Order deny,allow\n    Deny from all\n"
                                   "    Allow from 127.0.0.1\n</Proxy>")
    assert ghtest.get(d.port, url(ctx, "/size/1")).status == 200
    assert ghtest.get(d.port, url(ctx, "/size/1"), source="127.0.0.2").status == 403


def test_url_prefix_section_overrides_wildcard(start_daemon, ctx):
    section = ("<Proxy *>\n    Require ip 127.0.0.1\n</Proxy>\n"
               "<Proxy http://origin.test:%d/private>\n    Require all denied\n</Proxy>"
               % ctx.origin_port)
    d = start_daemon(proxy_section=section)
    assert ghtest.get(d.port, url(ctx, "/size/2")).status == 200
    assert ghtest.get(d.port, url(ctx, "/private/x")).status == 403


def test_proxymatch_regex_section(start_daemon, ctx):
    section = ('<Proxy *>\n    Require ip 127.0.0.1\n</Proxy>\n'
               '<ProxyMatch "secret[0-9]+">\n    Require all denied\n</ProxyMatch>')
    d = start_daemon(proxy_section=section)
    assert ghtest.get(d.port, url(ctx, "/echo?secretx")).status == 200
    assert ghtest.get(d.port, url(ctx, "/echo?secret12")).status == 403


@pytest.mark.parametrize("name,source,status", [
    ("test", "127.0.0.3", 200),             # PTR client3.test, which resolves back: allowed
    ("client3.test", "127.0.0.3", 200),     # the full name
    ("allowed.example", "127.0.0.3", 403),  # confirmed name, but not this one
    ("test", "127.0.0.4", 403),             # PTR liar.test resolves to 127.0.0.5: unconfirmed
    ("lient3.test", "127.0.0.3", 403),      # suffixes match at dots only
])
def test_require_host_uses_double_reverse_lookup(start_daemon, ctx, name, source, status):
    # The names come from the test DNS (not /etc/hosts, which these addresses are not in).
    d = start_daemon(proxy_section="<Proxy *>\n    Require host %s\n</Proxy>" % name)
    assert ghtest.get(d.port, url(ctx, "/size/1"), source=source).status == status


def test_nxdomain_is_502_naming_host_and_cause(proxy, ctx):
    r = ghtest.get(proxy.port, "http://nosuch.test:%d/x" % ctx.origin_port)
    assert r.status == 502, r
    assert is_html(r)
    assert b"DNS lookup for nosuch.test failed" in r.body
    assert b"NXDOMAIN" in r.body


def test_refused_upstream_is_502(proxy, ctx):
    r = ghtest.get(proxy.port, "http://origin.test:%d/x" % ctx.refused_port)
    assert r.status == 502, r
    assert b"refused" in r.body.lower()


def test_ip_literal_upstream_needs_no_dns(proxy, ctx):
    r = ghtest.get(proxy.port, url(ctx, "/size/4", host="127.0.0.1"))
    assert r.status == 200 and len(r.body) == 4


def test_stalled_upstream_is_504_within_proxy_timeout(proxy, ctx):
    t0 = time.monotonic()
    r = ghtest.get(proxy.port, url(ctx, "/stall"), timeout=20)
    elapsed = time.monotonic() - t0
    assert r.status == 504, r
    assert b"timed out" in r.body.lower()
    assert 2.0 <= elapsed <= 6.5, "ProxyTimeout is 3 s, took %.1f s" % elapsed


def test_silent_dns_server_gives_an_error_in_bounded_time(start_daemon, ctx):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        d = start_daemon(dns=False, extra=["DNSServer 127.0.0.1:%d" % silent.getsockname()[1],
                                           "DNSTimeout 500"])
        t0 = time.monotonic()
        r = ghtest.get(d.port, url(ctx, "/size/1"), timeout=20)
        elapsed = time.monotonic() - t0
    finally:
        silent.close()
    assert r.status in (502, 504), r
    assert b"origin.test" in r.body
    assert elapsed < 10, elapsed


def test_origin_form_request_to_the_proxy_itself_is_404(proxy, ctx):
    r, c = ghtest.request(proxy.port, "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                                      "Connection: close\r\n\r\n" % proxy.port)
    c.close()
    assert r.status == 404, r


def test_error_response_keeps_client_connection_usable_or_closes_cleanly(proxy, ctx):
    with ghtest.Conn("127.0.0.1", proxy.port) as c:
        c.send(ghtest.build("http://nosuch.test/"))
        r = c.read_response()
        assert r.status == 502
        c.send(ghtest.build(url(ctx, "/size/6"), close=True))
        try:
            r2 = c.read_response()
        except ghtest.Closed:
            # closing after an error is allowed, but then the error must have said so
            assert "close" in (r.header("Connection") or "").lower()
            return
        assert r2.status == 200 and len(r2.body) == 6


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_error_page_to_head_has_no_body(proxy, ctx, method):
    with ghtest.Conn("127.0.0.1", proxy.port) as c:
        c.send(ghtest.build("http://nosuch.test/", method=method))
        r = c.read_response(method)
        assert r.status == 502
        if method == "HEAD":
            assert r.body == b""
            # no stray body bytes: the next response parses
            c.send(ghtest.build(url(ctx, "/size/3"), close=True))
            try:
                assert c.read_response().status == 200
            except ghtest.Closed:
                pass
        else:
            assert len(r.body) > 0


def test_request_for_the_proxy_itself_by_name_does_not_loop(proxy, ctx):
    # proxy.test resolves to the proxy's own address: forwarding there must end at once (the
    # forwarded origin-form request is answered locally), not recurse.
    t0 = time.monotonic()
    r = ghtest.get(proxy.port, "http://proxy.test:%d/loop" % proxy.port, timeout=15)
    assert r.status in (403, 404, 508), r
    assert time.monotonic() - t0 < 5
    assert ghtest.get(proxy.port, url(ctx, "/size/2")).status == 200


def test_limit_and_limit_except_restrict_methods(start_daemon, ctx):
    # Everybody on 127/8 may GET and HEAD; other methods only from 127.0.0.1; CONNECT from
    # nobody but 127.0.0.3 (a <Limit> naming it wins over the <LimitExcept>, being later).
    d = start_daemon("limits", proxy_section=(
        "<Proxy *>\n  Require ip 127.0.0.0/8\n"
        "  <LimitExcept GET HEAD>\n    Require ip 127.0.0.1\n  </LimitExcept>\n"
        "  <Limit CONNECT>\n    Require ip 127.0.0.3\n  </Limit>\n</Proxy>"))
    tok = uuid.uuid4().hex
    u = url(ctx, "/echo?lim=" + tok)
    assert ghtest.get(d.port, u, source="127.0.0.2").status == 200
    assert ghtest.get(d.port, u, method="HEAD", source="127.0.0.2").status == 200
    r = ghtest.get(d.port, u, method="POST", body=b"x", source="127.0.0.2")
    # the page has the rule's words; where it is (the <LimitExcept> block, FILE:LINE) is in the
    # error log, on the line of the page's request id
    assert r.status == 403 and b"denied by no Require matched" in r.body, r
    assert b"LimitExcept" not in r.body and d.conf.encode() not in r.body, r
    rid = r.header("Gatehouse-Request-Id")
    assert ghtest.poll(lambda: any("[id %s]" % rid in ln and "(<LimitExcept GET ...> at "
                                   in ln and d.conf in ln
                                   for ln in d.stderr_text().splitlines())), d.stderr_tail()
    assert ghtest.get(d.port, u, method="POST", body=b"x", source="127.0.0.1").status == 200
    assert [q["method"] for q in ctx.origin.requests_with(tok)] == ["GET", "HEAD", "POST"]
    target = "127.0.0.1:%d" % ctx.echo_port
    for src, want in (("127.0.0.1", 403), ("127.0.0.3", 200)):
        c = ghtest.Conn("127.0.0.1", d.port, source=src)
        try:
            c.send("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target))
            assert c.read_response("CONNECT").status == want, src
        finally:
            c.close()
