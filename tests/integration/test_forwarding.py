"""
test_forwarding.py - what the proxy sends upstream and back: origin-form target, Host from the
URI, hop-by-hop stripping both ways, Proxy-Authorization and ProxyChainAuth, Via in its four
ProxyVia modes, Max-Forwards (answered by the proxy at 0, decremented otherwise) and
ProxyMaxForwards.
"""

import email.utils
import json
import re
import socket
import time
import uuid

import pytest

import ghtest

VIA_ON = re.compile(r"^(HTTP/)?1\.1 [^\s,()]+$")
VIA_FULL = re.compile(r"^(HTTP/)?1\.1 [^\s,()]+ \(.*\d+\.\d+.*\)$")


def url(ctx, path, host="origin.test"):
    return "http://%s:%d%s" % (host, ctx.origin_port, path)


def echo(port, ctx, headers=(), method="GET", body=None, path="/echo"):
    r = ghtest.get(port, url(ctx, path), headers=headers, method=method, body=body)
    assert r.status == 200, r
    return json.loads(r.body), r


def hvals(doc, name):
    return [v for k, v in doc["headers"] if k.lower() == name.lower()]


def via_list(values):
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def test_origin_sees_origin_form_target_and_host_from_uri(proxy, ctx):
    doc, _ = echo(proxy.port, ctx, headers=[("Host", "wrong.example:1234")],
                  path="/echo?q=1")
    assert doc["target"] == "/echo?q=1"
    assert hvals(doc, "Host") == ["origin.test:%d" % ctx.origin_port]
    assert doc["version"] == "HTTP/1.1"


def test_request_hop_by_hop_headers_are_stripped(proxy, ctx):
    hdrs = [("Connection", "keep-alive, X-Conn-Named"), ("X-Conn-Named", "secret"),
            ("Keep-Alive", "timeout=5"), ("Proxy-Connection", "keep-alive"), ("TE", "trailers"),
            ("Upgrade", "bogus/1"), ("Proxy-Authorization", "Basic dXNlcjpwYXNz"),
            ("X-End-To-End", "kept"), ("Authorization", "Basic b3JpZ2luOnB3"),
            ("Cookie", "a=b"), ("X-Multi", "1"), ("X-Multi", "2")]
    doc, _ = echo(proxy.port, ctx, headers=hdrs)
    names = [k.lower() for k, _ in doc["headers"]]
    for gone in ("x-conn-named", "keep-alive", "proxy-connection", "te", "upgrade",
                 "proxy-authorization"):
        assert gone not in names, (gone, doc["headers"])
    for v in hvals(doc, "Connection"):
        assert "x-conn-named" not in v.lower()
    assert hvals(doc, "X-End-To-End") == ["kept"]
    assert hvals(doc, "Authorization") == ["Basic b3JpZ2luOnB3"]
    assert hvals(doc, "Cookie") == ["a=b"]
    assert ",".join(hvals(doc, "X-Multi")).replace(" ", "") == "1,2"


def test_proxy_authorization_forwarded_with_proxy_chain_auth(start_daemon, ctx):
    d = start_daemon(extra=["ProxyChainAuth On"])
    doc, _ = echo(d.port, ctx, headers=[("Proxy-Authorization", "Basic dXNlcjpwYXNz")])
    assert hvals(doc, "Proxy-Authorization") == ["Basic dXNlcjpwYXNz"]


def test_response_hop_by_hop_headers_are_stripped(proxy, ctx):
    r = ghtest.get(proxy.port, url(ctx, "/hop"))
    assert r.status == 200 and r.body == b"hop\n"
    assert r.header("X-Hop-Resp") is None, r.headers
    assert r.header("Proxy-Connection") is None
    assert r.header("Upgrade") is None
    assert "timeout=99" not in (r.header("Keep-Alive") or "")
    for v in r.headers_all("Connection"):
        assert "x-hop-resp" not in v.lower()
    assert r.header("X-End") == "end-to-end"


def test_via_on_added_to_request_and_response(proxy, ctx):
    doc, r = echo(proxy.port, ctx)
    req_via = via_list(hvals(doc, "Via"))
    assert len(req_via) == 1 and VIA_ON.match(req_via[0]), req_via
    # "1.1 <hostname>" (a port may follow the name)
    assert req_via[0].split(" ")[1].split(":")[0] == socket.gethostname(), req_via
    resp_via = via_list(r.headers_all("Via"))
    assert len(resp_via) == 1 and VIA_ON.match(resp_via[0]), r.headers


def test_via_on_appends_after_existing_via(proxy, ctx):
    doc, _ = echo(proxy.port, ctx, headers=[("Via", "1.0 client-side-cache")])
    v = via_list(hvals(doc, "Via"))
    assert len(v) == 2 and v[0] == "1.0 client-side-cache" and VIA_ON.match(v[1]), v
    r = ghtest.get(proxy.port, url(ctx, "/via"))
    v = via_list(r.headers_all("Via"))
    assert len(v) == 2 and v[0] == "1.0 upstream-cache" and VIA_ON.match(v[1]), v


def test_via_full_carries_a_comment_with_the_version(start_daemon, ctx):
    d = start_daemon(via="Full")
    doc, r = echo(d.port, ctx)
    v = via_list(hvals(doc, "Via"))
    assert len(v) == 1 and VIA_FULL.match(v[0]), v
    v = via_list(r.headers_all("Via"))
    assert len(v) == 1 and VIA_FULL.match(v[0]), v


def test_via_off_adds_nothing_and_keeps_client_via(start_daemon, ctx):
    d = start_daemon(via="Off")
    doc, _ = echo(d.port, ctx)
    assert hvals(doc, "Via") == []
    doc, _ = echo(d.port, ctx, headers=[("Via", "1.0 client-side-cache")])
    assert via_list(hvals(doc, "Via")) == ["1.0 client-side-cache"]


def test_via_block_removes_via_from_requests(start_daemon, ctx):
    d = start_daemon(via="Block")
    doc, _ = echo(d.port, ctx, headers=[("Via", "1.0 client-side-cache")])
    assert hvals(doc, "Via") == []


def test_options_with_max_forwards_zero_is_answered_by_the_proxy(proxy, ctx):
    tok = uuid.uuid4().hex
    r = ghtest.get(proxy.port, url(ctx, "/echo?mf0=" + tok), method="OPTIONS",
                   headers=[("Max-Forwards", "0")])
    assert r.status == 200, r
    assert r.header("Allow"), r.headers
    assert ctx.origin.requests_with(tok) == []


def test_local_answer_with_unread_body_says_connection_close(proxy, ctx):
    # The proxy answers OPTIONS itself without reading the declared body, so it must close the
    # connection, and its response head must announce that.
    tok = uuid.uuid4().hex
    with ghtest.Conn("127.0.0.1", proxy.port) as c:
        c.send(ghtest.build(url(ctx, "/echo?mfb=" + tok), method="OPTIONS",
                            headers=[("Max-Forwards", "0"), ("Content-Length", "100")])
               + b"only5")
        r = c.read_response()
        assert r.status == 200, r
        assert (r.header("Connection") or "").lower() == "close", r.headers
        assert c.closed_by_peer(5)
    assert ctx.origin.requests_with(tok) == []


def test_trace_with_max_forwards_zero_echoes_the_request(proxy, ctx):
    tok = uuid.uuid4().hex
    r = ghtest.get(proxy.port, url(ctx, "/echo?tr0=" + tok), method="TRACE",
                   headers=[("Max-Forwards", "0"), ("X-Trace-Probe", tok)])
    assert r.status == 200, r
    assert (r.header("Content-Type") or "").lower().startswith("message/http"), r.headers
    assert b"TRACE " in r.body and tok.encode() in r.body
    assert b"X-Trace-Probe" in r.body
    assert ctx.origin.requests_with(tok) == []


def test_options_max_forwards_is_decremented(proxy, ctx):
    doc, _ = echo(proxy.port, ctx, method="OPTIONS", headers=[("Max-Forwards", "2")])
    assert doc["method"] == "OPTIONS"
    assert hvals(doc, "Max-Forwards") == ["1"]


def test_trace_max_forwards_one_reaches_origin_as_zero(proxy, ctx):
    doc, _ = echo(proxy.port, ctx, method="TRACE", headers=[("Max-Forwards", "1")])
    assert doc["method"] == "TRACE"
    assert hvals(doc, "Max-Forwards") == ["0"]


def test_bad_max_forwards_is_rejected(proxy, ctx):
    tok = uuid.uuid4().hex
    r = ghtest.get(proxy.port, url(ctx, "/echo?badmf=" + tok), method="OPTIONS",
                   headers=[("Max-Forwards", "-1")])
    assert r.status == 400
    assert ctx.origin.requests_with(tok) == []


def test_proxy_max_forwards_added_when_client_sent_none(start_daemon, ctx):
    d = start_daemon(extra=["ProxyMaxForwards 5"])
    doc, _ = echo(d.port, ctx)
    assert hvals(doc, "Max-Forwards") == ["5"]


def test_no_max_forwards_added_by_default(proxy, ctx):
    doc, _ = echo(proxy.port, ctx)
    assert hvals(doc, "Max-Forwards") == []


def test_http10_client_request_forwarded_as_http11_with_host(proxy, ctx):
    r = ghtest.get(proxy.port, url(ctx, "/echo"), version="HTTP/1.0", close=False,
                   host_header=False)
    assert r.status == 200
    doc = json.loads(r.body)
    assert doc["version"] == "HTTP/1.1"
    assert hvals(doc, "Host") == ["origin.test:%d" % ctx.origin_port]


@pytest.mark.parametrize("host", ["ORIGIN.TEST", "Origin.Test"])
def test_host_names_are_case_insensitive(proxy, ctx, host):
    r = ghtest.get(proxy.port, url(ctx, "/size/3", host=host))
    assert r.status == 200 and len(r.body) == 3


def _check_date(value):
    assert value, "no Date header"
    when = email.utils.parsedate_to_datetime(value)
    assert abs(when.timestamp() - time.time()) < 60, value
    assert value.endswith(" GMT"), value


def test_date_added_to_forwarded_response_without_one(proxy, ctx):
    # RFC 9110 6.6.1: a recipient with a clock MUST add Date to a response forwarded without
    # one (the test origin sends none).
    r = ghtest.get(proxy.port, url(ctx, "/size/3"))
    assert r.status == 200
    _check_date(r.header("Date"))


def test_error_page_has_date(proxy, ctx):
    r = ghtest.get(proxy.port, "http://nosuch.test/")
    assert r.status == 502
    _check_date(r.header("Date"))


def test_empty_path_becomes_slash(proxy, ctx):
    r = ghtest.get(proxy.port, "http://origin.test:%d" % ctx.origin_port)
    # the origin has no route for "/": its 404 proves the request reached it as "GET /"
    assert r.status == 404 and r.body == b"no route\n", r
    r = ghtest.get(proxy.port, "http://origin.test:%d?q=1" % ctx.origin_port)
    assert r.status in (400, 404), r


def test_userinfo_in_url_is_not_forwarded(proxy, ctx):
    tok = uuid.uuid4().hex
    r = ghtest.get(proxy.port, "http://user:secret@origin.test:%d/echo?ui=%s"
                   % (ctx.origin_port, tok), headers=[("Host", "origin.test")])
    if r.status == 400:
        assert ctx.origin.requests_with(tok) == []
        return
    assert r.status == 200, r
    doc = json.loads(r.body)
    assert "secret" not in json.dumps(doc["headers"])
    assert hvals(doc, "Host") == ["origin.test:%d" % ctx.origin_port]
