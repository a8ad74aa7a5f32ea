"""
test_policy_domain.py - ProxyDomain (issue 3, policy/pol.h): a GET for an unqualified host is
answered with a 301 to the same URL with the intranet domain appended (port, path and query
kept); dotted hosts, localhost, address literals, other methods and CONNECT are left alone; the
redirect comes before ProxyBlock and ProxyRemote in the decision order.
"""

import uuid

import ghtest
from origin import StubParent


def tok():
    return uuid.uuid4().hex


def test_unqualified_host_is_redirected_into_the_domain(start_policy_daemon, pctx):
    d = start_policy_daemon(extra=["ProxyDomain .corp.test"])
    t = tok()
    r = ghtest.get(d.port, "http://intranet:%d/x?y=%s" % (pctx.origin_port, t))
    assert r.status == 301, r
    assert r.header("Location") == "http://intranet.corp.test:%d/x?y=%s" % (pctx.origin_port, t)
    assert pctx.origin.requests_with(t) == []
    # the new URL is served (intranet.corp.test resolves to the origin)
    r = ghtest.get(d.port, r.header("Location").replace("/x?", "/echo?"))
    assert r.status == 200 and len(pctx.origin.requests_with(t)) == 1, r


def test_redirect_keeps_path_and_query_and_works_without_a_port(start_policy_daemon, pctx):
    d = start_policy_daemon(extra=["ProxyDomain .corp.test"])
    r = ghtest.get(d.port, "http://wiki/a/b%20c/d.html?q=1&r=two")
    assert r.status == 301, r
    assert r.header("Location") == "http://wiki.corp.test/a/b%20c/d.html?q=1&r=two", r
    r = ghtest.get(d.port, "http://wiki/")
    assert r.status == 301 and r.header("Location") == "http://wiki.corp.test/", r


def test_redirect_on_a_kept_alive_connection(start_policy_daemon, pctx):
    d = start_policy_daemon(extra=["ProxyDomain .corp.test"])
    with ghtest.Conn("127.0.0.1", d.port) as c:
        c.send(ghtest.build("http://intranet:%d/one" % pctx.origin_port))
        r = c.read_response()
        assert r.status == 301, r
        if "close" in (r.header("Connection") or "").lower():
            return
        c.send(ghtest.build("http://www.outside.test:%d/size/5" % pctx.origin_port, close=True))
        r = c.read_response()
        assert r.status == 200 and len(r.body) == 5, r


def test_no_redirect_for_dotted_hosts_localhost_literals_and_other_methods(start_policy_daemon,
                                                                          pctx):
    d = start_policy_daemon(extra=["ProxyDomain .corp.test"])
    o = pctx.origin_port
    # dotted names and literals are served as they are
    for u in ("http://www.outside.test:%d/echo?t=%s", "http://127.0.0.1:%d/echo?t=%s"):
        t = tok()
        r = ghtest.get(d.port, u % (o, t))
        assert r.status == 200 and len(pctx.origin.requests_with(t)) == 1, (u, r)
    for u in ("http://localhost:%d/x" % o, "http://[::1]:%d/x" % o,
              "http://LOCALHOST:%d/x" % o):
        r = ghtest.get(d.port, u)
        assert r.status != 301, (u, r)
        assert r.header("Location") is None, (u, r)
    # only GET is redirected: a POST for the plain name is attempted as it is ('intranet' does
    # not resolve in the test DNS: 502)
    r = ghtest.get(d.port, "http://intranet:%d/form" % o, method="POST", body=b"a=1")
    assert r.status != 301 and r.header("Location") is None, r
    c = ghtest.Conn("127.0.0.1", d.port)
    with c:
        c.send("CONNECT intranet:443 HTTP/1.1\r\nHost: intranet:443\r\n\r\n")
        r = c.read_response("CONNECT")
        assert r.status != 301 and r.header("Location") is None, r


def test_redirect_comes_before_proxyblock(start_policy_daemon, pctx):
    # ProxyBlock's word 'intranet' matches both the short and the long name: the short one is
    # redirected first (decision order ACL -> ProxyDomain -> ProxyBlock), the long one refused.
    d = start_policy_daemon(extra=["ProxyDomain .corp.test", "ProxyBlock intranet"])
    r = ghtest.get(d.port, "http://intranet:%d/x" % pctx.origin_port)
    assert r.status == 301, r
    r = ghtest.get(d.port, r.header("Location"))
    assert r.status == 403 and b"ProxyBlock" in r.body, r


def test_redirect_is_answered_by_the_child_not_the_parent(start_policy_daemon, pctx):
    with StubParent().start() as stub:
        d = start_policy_daemon(extra=["ProxyDomain .corp.test",
                                       "ProxyRemote * http://127.0.0.1:%d" % stub.port])
        r = ghtest.get(d.port, "http://intranet:%d/x" % pctx.origin_port)
        assert r.status == 301, r
        assert stub.conn_count() == 0


def test_redirect_applies_only_to_admitted_clients(start_policy_daemon, pctx):
    # The client ACL is first: a denied client gets 403, not a redirect.
    d = start_policy_daemon(extra=["ProxyDomain .corp.test"])
    r = ghtest.get(d.port, "http://intranet:%d/x" % pctx.origin_port, source="127.0.0.2")
    assert r.status == 403, r
