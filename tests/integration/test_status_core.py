"""
test_status_core.py - the status page's core (issue 11): served from a <Location> with
SetHandler gatehouse-status to requests addressed to the proxy itself (origin-form, or
absolute-form naming the proxy's own listener), never for a forwarded URL; the Location's
Require rules (another loopback address as a client gets 403); the security headers on every
response (pages, errors, assets); the method rules (405), POST bodies (413 over 64 KiB,
chunked bodies read, pipelined requests after them answered); the access log line; and
config errors naming FILE:LINE.
"""

import os
import subprocess

import pytest

import ghtest

SECURITY = {
    "content-security-policy": "default-src 'self'",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
    "referrer-policy": "same-origin",
}

LOCATION = ("<Location /gatehouse/>\n    SetHandler gatehouse-status\n"
            "    Require ip 127.0.0.1 ::1\n</Location>")


def start(start_daemon, location=LOCATION, **kw):
    log = kw.pop("access_log", None)
    return start_daemon("status", extra=[location], access_log=log, **kw)


def fetch(port, path, method="GET", headers=(), body=None, source=None, host=None,
          addr="127.0.0.1"):
    """A request sent to the proxy itself (origin-form unless path is absolute)."""
    lines = ["%s %s HTTP/1.1" % (method, path),
             "Host: %s" % (host or "%s:%d" % (addr, port))]
    lines += ["%s: %s" % kv for kv in headers]
    if body is not None and not any(k.lower() in ("content-length", "transfer-encoding")
                                    for k, _ in headers):
        lines.append("Content-Length: %d" % len(body))
    lines.append("Connection: close")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if body is not None:
        data += body if isinstance(body, bytes) else body.encode("latin-1")
    c = ghtest.Conn(addr, port, source=source)
    try:
        c.send(data)
        return c.read_response(method)
    finally:
        c.close()


def assert_secure(r):
    for k, v in SECURITY.items():
        assert r.header(k) == v, (k, r.status, r.headers if hasattr(r, "headers") else r)


def test_page_is_served_to_loopback_with_frame_and_security_headers(start_daemon):
    d = start(start_daemon)
    r = fetch(d.port, "/gatehouse/")
    assert r.status == 200
    assert r.header("content-type") == "text/html; charset=utf-8"
    assert_secure(r)
    t = r.text()
    assert t.startswith("<!DOCTYPE html>")
    for nav in ("overview", "charts", "top", "cache", "explain", "recent"):
        assert 'href="/gatehouse/%s"' % ("" if nav == "overview" else nav) in t, nav
    assert 'href="/gatehouse/static/ui.css"' in t and 'src="/gatehouse/static/ui.js"' in t
    # nothing from outside, no inline script (CSP default-src 'self')
    assert "http://" not in t.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script>" not in t


def test_assets_have_their_types_and_no_store(start_daemon):
    d = start(start_daemon)
    for name, ctype, start_bytes in (("ui.css", "text/css; charset=utf-8", b"/*"),
                                     ("ui.js", "text/javascript; charset=utf-8", b"/*"),
                                     ("icon.svg", "image/svg+xml", b"<svg")):
        r = fetch(d.port, "/gatehouse/static/" + name)
        assert r.status == 200, name
        assert r.header("content-type") == ctype
        assert r.body.startswith(start_bytes)
        src = open(os.path.join(ghtest.REPO, "webui", "assets", name), "rb").read()
        assert r.body == src, "the embedded copy differs from webui/assets/%s" % name
        assert_secure(r)
    r = fetch(d.port, "/gatehouse/static/nothere.css")
    assert r.status == 404
    assert_secure(r)


def test_another_client_address_gets_403(start_daemon):
    d = start(start_daemon, proxy_section="<Proxy *>\n    Require ip 127.0.0.0/8\n</Proxy>")
    r = fetch(d.port, "/gatehouse/", source="127.0.0.2")
    assert r.status == 403
    assert_secure(r)
    assert b"Overview" not in r.body
    # the same client may still use the proxy: <Proxy> rules are not the page's
    ok = fetch(d.port, "/gatehouse/", source="127.0.0.1")
    assert ok.status == 200


def test_location_without_require_is_served_to_loopback(start_daemon):
    # no Require: loopback clients (127.0.0.0/8, ::1) only; the tests have no other address
    d = start(start_daemon, location="<Location /gh/>\nSetHandler gatehouse-status\n"
              "</Location>")
    assert fetch(d.port, "/gh/").status == 200
    assert fetch(d.port, "/gh/", source="127.0.0.2").status == 200
    assert fetch(d.port, "/gatehouse/").status == 404  # no Location there: not the page


def test_require_all_and_not(start_daemon):
    loc = ("<Location /gatehouse/>\nSetHandler gatehouse-status\n<RequireAll>\n"
           "Require ip 127.0.0.0/8\nRequire not ip 127.0.0.3\n</RequireAll>\n</Location>")
    d = start(start_daemon, location=loc)
    assert fetch(d.port, "/gatehouse/", source="127.0.0.2").status == 200
    assert fetch(d.port, "/gatehouse/", source="127.0.0.3").status == 403


def test_absolute_form_naming_the_proxy_is_served(start_daemon):
    d = start(start_daemon)
    r = fetch(d.port, "http://127.0.0.1:%d/gatehouse/static/icon.svg" % d.port)
    assert r.status == 200
    assert r.body.startswith(b"<svg")
    assert_secure(r)


def test_forwarded_url_with_the_path_is_never_the_page(start_daemon, ctx):
    d = start(start_daemon)
    ctx.origin.reset()
    url = "http://127.0.0.1:%d/gatehouse/static/ui.css?token=fwd-%d" % (ctx.origin_port, d.port)
    r = fetch(d.port, url)
    # the origin answers 404 for this path: the proxy forwarded it
    assert r.status == 404
    assert not r.body.startswith(b"/*")
    assert r.header("content-security-policy") is None
    assert len(ctx.origin.requests_with("fwd-%d" % d.port)) == 1


def test_wrong_method_is_405_with_allow(start_daemon):
    d = start(start_daemon)
    r = fetch(d.port, "/gatehouse/static/ui.css", method="PUT", body="x")
    assert r.status == 405
    assert r.header("allow") == "GET, HEAD"
    assert_secure(r)
    r = fetch(d.port, "/gatehouse/", method="POST", body="a=b")
    assert r.status == 405


def test_unknown_page_404_and_api_errors_are_json(start_daemon):
    d = start(start_daemon)
    r = fetch(d.port, "/gatehouse/no-such-page")
    assert r.status == 404 and r.header("content-type").startswith("text/html")
    r = fetch(d.port, "/gatehouse/api/no-such-thing")
    assert r.status == 404
    assert r.header("content-type") == "application/json"
    import json
    assert json.loads(r.text())["status"] == 404
    assert_secure(r)


def test_prefix_without_slash_redirects(start_daemon):
    d = start(start_daemon)
    r = fetch(d.port, "/gatehouse")
    assert r.status == 301
    assert r.header("location") == "/gatehouse/"
    assert_secure(r)


def test_post_without_csrf_token_is_403(start_daemon):
    d = start(start_daemon)
    r = fetch(d.port, "/gatehouse/api/csrf", method="POST", body="a=b",
              headers=[("Content-Type", "application/x-www-form-urlencoded")])
    assert r.status == 403
    assert_secure(r)
    r = fetch(d.port, "/gatehouse/api/csrf", method="POST", body="csrf=00112233",
              headers=[("Content-Type", "application/x-www-form-urlencoded")])
    assert r.status == 403


def test_post_body_over_64k_is_413_and_closes(start_daemon):
    d = start(start_daemon)
    r = fetch(d.port, "/gatehouse/api/csrf", method="POST", body=b"a" * (65536 + 1))
    assert r.status == 413
    assert_secure(r)
    big = ghtest.chunk_encode(b"a" * 70000, sizes=(4096,))
    r = fetch(d.port, "/gatehouse/api/csrf", method="POST", body=big,
              headers=[("Transfer-Encoding", "chunked")])
    assert r.status == 413


def test_chunked_post_body_is_read_and_the_next_request_answered(start_daemon):
    d = start(start_daemon)
    c = ghtest.Conn("127.0.0.1", d.port)
    try:
        body = ghtest.chunk_encode(b"csrf=bad&x=1", sizes=(3, 4))
        c.send(b"POST /gatehouse/api/csrf HTTP/1.1\r\nHost: x\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" + body +
               b"GET /gatehouse/static/icon.svg HTTP/1.1\r\nHost: x\r\n\r\n")
        r1 = c.read_response("POST")
        r2 = c.read_response("GET")
        assert r1.status == 403  # read whole, judged: the token is wrong
        assert r2.status == 200 and r2.body.startswith(b"<svg")
    finally:
        c.close()


def test_head_gets_the_head_only(start_daemon):
    d = start(start_daemon)
    r = fetch(d.port, "/gatehouse/static/ui.css", method="HEAD")
    assert r.status == 200
    assert int(r.header("content-length")) > 100
    assert r.body == b""


def test_status_requests_are_in_the_access_log(start_daemon, ctx):
    log = os.path.join(ctx.workdir, "status-core-%d.log" % os.getpid())
    d = start(start_daemon, access_log=log)
    fetch(d.port, "/gatehouse/static/ui.js?x=logged")
    lines = ghtest.poll_lines(log, lambda l: "/gatehouse/static/ui.js?x=logged" in l)
    assert lines, "no access log line for the status page request"
    assert "/200 " in lines[0], lines[0]


def test_builtin_config_enables_the_page_for_loopback_only(gh_bin):
    out = subprocess.run([gh_bin, "-M"], capture_output=True, text=True, timeout=30,
                         env=ghtest.clean_env(HOME="/nonexistent-h1", XDG_CACHE_HOME="/tmp",
                                              XDG_STATE_HOME="/tmp"))
    text = out.stdout
    assert "<Location /gatehouse/>" in text, out.stderr
    i = text.index("<Location /gatehouse/>")
    block = text[i:text.index("</Location>", i)]
    assert "SetHandler gatehouse-status" in block
    assert "Require ip 127.0.0.1 ::1" in block


def test_packaged_config_enables_the_page_for_loopback():
    text = open(os.path.join(ghtest.REPO, "packaging", "gatehouse.conf")).read()
    i = text.index("\n<Location /gatehouse/>")
    block = text[i:text.index("</Location>", i)]
    assert "SetHandler gatehouse-status" in block
    assert "Require ip 127.0.0.1 ::1" in block
    assert "#    AuthUserFile /etc/gatehouse/admins.htpasswd" in text


@pytest.mark.parametrize("body,line,msg", [
    ("<Location /x/>\nRequire local\n</Location>\n", 1,
     'without "SetHandler gatehouse-status"'),
    ("\n\n<Location /x/>\nSetHandler gatehouse-status\nRequire bogus\n</Location>\n", 5,
     "unsupported provider"),
    ("<Location /x/>\nSetHandler gatehouse-status\nRequire valid-user\n</Location>\n", 1,
     'needs "AuthType Basic" and AuthUserFile'),
])
def test_config_errors_name_file_and_line(gh_bin, ctx, body, line, msg):
    path = os.path.join(ctx.workdir, "status-bad.conf")
    with open(path, "w") as f:
        f.write("Listen 127.0.0.1:%d\nUser root\n" % ghtest.free_port() + body)
    out = subprocess.run([gh_bin, "-t", "-f", path], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode != 0
    err = out.stderr + out.stdout
    assert "%s:%d:" % (path, line + 2) in err, err
    assert msg in err, err
