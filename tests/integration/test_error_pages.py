"""
test_error_pages.py - error pages for users, details for admins (issue 9, part 4): the 403
pages of ProxyBlock and of the <Proxy> access rules show the rule's words but never the config
file's name or line; the error log has that FILE:LINE on a line carrying the same request id as
the page (Gatehouse-Request-Id and the page body) and the access log line (its last field, in
both the squid and combined formats); Cache-Status on every page the proxy answers itself
(400, 403 block, 403 deny, 502, 504, the ProxyDomain 301); ErrorDocument as a message, as a
template file (placeholders HTML-escaped: a hostile URL stays text), as a redirect to a URL
(values percent-encoded), re-read on reload, and its configuration errors as FILE:LINE.

The daemons log to standard error at LogLevel info (ghtest.conf_text), which is where refusals
and their rule's FILE:LINE are written.
"""

import os
import re
import subprocess
import urllib.parse
import uuid

import ghtest

ID_RE = re.compile(r"^[0-9A-Z]{12}$")


def conf_line(d, prefix):
    """'CONF:LINE' of the first config line starting with prefix (leading blanks ignored)."""
    for i, ln in enumerate(d.text.split("\n"), 1):
        if ln.strip().startswith(prefix):
            return "%s:%d" % (d.conf, i)
    raise AssertionError("no line %r in\n%s" % (prefix, d.text))


def access_log(ctx, tag):
    return os.path.join(ctx.workdir, "%s-%s.log" % (tag, uuid.uuid4().hex[:8]))


def request_id(r):
    rid = r.header("Gatehouse-Request-Id")
    assert rid and ID_RE.match(rid), r
    return rid


def error_log_line(d, rid):
    """The error-log line about request rid (polled: written when the page is)."""
    found = []

    def look():
        found[:] = [ln for ln in d.stderr_text().splitlines() if "[id %s]" % rid in ln]
        return found
    assert ghtest.poll(look), "no error-log line with [id %s]:\n%s" % (rid, d.stderr_tail())
    return found


def access_line(log, token):
    lines = ghtest.poll_lines(log, lambda ln: token in ln)
    assert len(lines) == 1, lines
    m = ghtest.SQUID_RE.match(lines[0])
    assert m, lines[0]
    return m


def test_block_page_has_the_rule_words_and_the_error_log_its_file_line_and_id(start_daemon, ctx):
    log = access_log(ctx, "eblock")
    d = start_daemon(access_log=log, extra=["ProxyBlock casino"])
    where = conf_line(d, "ProxyBlock casino")
    t = uuid.uuid4().hex
    r = ghtest.get(d.port, "http://www.casino.test/?t=" + t)
    assert r.status == 403, r
    body = r.text()
    assert "www.casino.test is blocked by ProxyBlock casino" in body, body
    assert d.conf not in body and where not in body and ".conf:" not in body, body
    rid = request_id(r)
    assert rid in body, body
    assert r.header("Cache-Status") == "Gatehouse; detail=denied", r
    # the access log line carries the same id, as its last field
    m = access_line(log, t)
    assert (m.group(4), m.group(5), m.group(13)) == ("TCP_DENIED", "403", rid), m.group(0)
    # the error log has the rule with its FILE:LINE, on the line of this request id
    lines = error_log_line(d, rid)
    assert len(lines) == 1 and "[info]" in lines[0], lines
    assert "ProxyBlock casino (%s)" % where in lines[0], lines


def test_deny_page_has_the_rule_words_and_the_error_log_its_section(start_daemon, ctx):
    log = access_log(ctx, "edeny")
    private = "http://origin.test:%d/private" % ctx.origin_port
    section = ("<Proxy *>\n    Require ip 127.0.0.1\n</Proxy>\n"
               "<Proxy %s>\n    Require not ip 127.0.0.1\n    Require all granted\n</Proxy>"
               % private)
    d = start_daemon(access_log=log, proxy_section=section)
    t = uuid.uuid4().hex
    r = ghtest.get(d.port, private + "?t=" + t)
    assert r.status == 403, r
    body = r.text()
    assert "denied by Require not ip 127.0.0.1" in body, body
    assert d.conf not in body and ".conf:" not in body and "<Proxy" not in body, body
    rid = request_id(r)
    assert rid in body and r.header("Cache-Status") == "Gatehouse; detail=denied", r
    assert access_line(log, t).group(13) == rid
    where = "<Proxy %s> at %s" % (private, conf_line(d, "<Proxy %s>" % private))
    lines = error_log_line(d, rid)
    assert "Require not ip 127.0.0.1 (%s)" % where in lines[0], lines


def test_every_local_page_has_cache_status_and_a_request_id(start_daemon, ctx):
    log = access_log(ctx, "ecs")
    d = start_daemon(access_log=log, timeout=1,
                     extra=["ProxyBlock casino", "ProxyDomain .corp.test"],
                     proxy_section="<Proxy *>\n    Require ip 127.0.0.1\n</Proxy>\n"
                                   "<Proxy http://origin.test:%d/private>\n"
                                   "    Require all denied\n</Proxy>" % ctx.origin_port)
    pages = {}
    r, c = ghtest.request(d.port, b"GET http://origin.test/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    c.close()
    pages["400"] = r
    pages["403 block"] = ghtest.get(d.port, "http://www.casino.test/")
    pages["403 deny"] = ghtest.get(d.port, "http://origin.test:%d/private" % ctx.origin_port)
    pages["502"] = ghtest.get(d.port, "http://origin.test:%d/" % ghtest.refused_port())
    pages["504"] = ghtest.get(d.port, "http://origin.test:%d/stall" % ctx.origin_port)
    pages["301"] = ghtest.get(d.port, "http://intranet/x")
    pages["404"] = ghtest.get(d.port, "/no-such-page",
                              headers=[("Host", "127.0.0.1:%d" % d.port)])
    ids = set()
    for what, r in pages.items():
        assert r.status == int(what[:3]), (what, r)
        cs = r.header("Cache-Status")
        assert cs and cs.startswith("Gatehouse;"), (what, r)
        rid = request_id(r)
        assert what == "301" or rid in r.text(), (what, r.text())
        ids.add(rid)
    assert len(ids) == len(pages), ids
    assert pages["502"].header("Cache-Status") == "Gatehouse; fwd=bypass"
    assert pages["400"].header("Cache-Status") == "Gatehouse; detail=error"
    assert pages["301"].header("Location") == "http://intranet.corp.test/x"
    # each id is on one access log line, as its last field
    lines = ghtest.poll_lines(log, lambda ln: any(ln.endswith(" " + i) for i in ids),
                              count=len(ids))
    assert len(lines) == len(ids), lines
    # the 502 and 504 are in the error log with their ids
    assert "refused" in error_log_line(d, request_id(pages["502"]))[0]
    assert "timed out" in error_log_line(d, request_id(pages["504"]))[0]


def test_every_request_gets_a_distinct_id_in_both_log_formats(start_daemon, ctx):
    for fmt in (None, "combined"):
        log = access_log(ctx, "eid")
        d = start_daemon(access_log=log, log_format=fmt)
        t = uuid.uuid4().hex
        for _ in range(3):
            assert ghtest.get(d.port, "http://origin.test:%d/size/10?t=%s"
                              % (ctx.origin_port, t)).status == 200
        lines = ghtest.poll_lines(log, lambda ln: t in ln, count=3)
        rx = ghtest.COMBINED_RE if fmt else ghtest.SQUID_RE
        ids = [rx.match(ln).groups()[-1] for ln in lines]
        assert all(ID_RE.match(i) for i in ids) and len(set(ids)) == 3, lines


def test_error_document_message_replaces_the_page(start_daemon, ctx):
    log = access_log(ctx, "edmsg")
    d = start_daemon(access_log=log, extra=[
        "ProxyBlock casino", "ServerName gw.corp.test",
        'ErrorDocument 403 "<h1>Sorry</h1><p>%{STATUS} %{STATUS_TEXT}: %{REASON} '
        '[%{REQUEST_ID}] %{SERVER_NAME}</p>"'])
    t = uuid.uuid4().hex
    r = ghtest.get(d.port, "http://www.casino.test/?t=" + t)
    assert r.status == 403, r
    rid = request_id(r)
    assert r.header("Content-Type").startswith("text/html"), r
    assert r.header("Cache-Status") == "Gatehouse; detail=denied", r
    m = re.match(r"^<h1>Sorry</h1><p>403 Forbidden: www\.casino\.test is blocked by ProxyBlock "
                 r"casino \[([0-9A-Z]{12})\] (\S+)</p>$", r.text())
    assert m and m.group(1) == rid and m.group(2) == "gw.corp.test", r.text()
    assert access_line(log, t).group(13) == rid
    # other statuses keep the built-in page, which names the server by ServerName too
    r = ghtest.get(d.port, "http://origin.test:%d/" % ghtest.refused_port())
    assert r.status == 502 and "<h1>502 Bad Gateway</h1>" in r.text(), r
    assert "at gw.corp.test</address>" in r.text(), r.text()


def test_error_document_file_escapes_a_hostile_url(start_daemon, ctx):
    page = os.path.join(ctx.workdir, "ed-%s.html" % uuid.uuid4().hex[:8])
    with open(page, "w") as f:
        f.write("<html><body><p>blocked: <b>%{URL}</b> id=%{REQUEST_ID}</p>"
                "<p>100% sure</p></body></html>\n")
    d = start_daemon(extra=["ProxyBlock casino", "ErrorDocument 403 %s" % page])
    hostile = "http://www.casino.test/a?x=<script>alert('x')</script>&y=\"q\""
    r = ghtest.get(d.port, hostile)
    assert r.status == 403, r
    rid = request_id(r)
    body = r.text()
    assert "<script>" not in body and "alert('x')" not in body and '"q"' not in body, body
    assert ("<b>http://www.casino.test/a?x=&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
            "&amp;y=&quot;q&quot;</b> id=%s</p>" % rid) in body, body
    assert "<p>100% sure</p>" in body, body
    assert r.header("Cache-Status") == "Gatehouse; detail=denied", r


def test_error_document_url_redirects_with_encoded_values(start_daemon, ctx):
    log = access_log(ctx, "edurl")
    d = start_daemon(access_log=log, extra=[
        "ProxyBlock casino",
        "ErrorDocument 403 http://intranet.test/blocked.html?u=%{URL}&id=%{REQUEST_ID}"])
    t = uuid.uuid4().hex
    u = "http://www.casino.test/p?a=1&t=" + t
    r = ghtest.get(d.port, u)
    assert r.status == 302, r
    rid = request_id(r)
    assert r.header("Location") == ("http://intranet.test/blocked.html?u=%s&id=%s"
                                    % (urllib.parse.quote(u, safe=""), rid)), r
    assert r.header("Cache-Status") == "Gatehouse; detail=denied", r
    m = access_line(log, t)
    assert (m.group(4), m.group(5), m.group(13)) == ("TCP_DENIED", "302", rid), m.group(0)


def test_error_document_redirect_of_a_huge_url_is_a_whole_response(start_daemon, ctx):
    """A redirect whose Location carries a percent-encoded URL of up to LimitRequestLine bytes
    (tripled): its head and its page used to pass the connection's output buffer together, and
    the page was dropped behind a head promising it (Content-Length with no body: the next
    response on the connection would have been read as that body). Every length answers a
    whole response now; one too long for a redirect gets the built-in 403 page."""
    d = start_daemon(extra=[
        "ProxyBlock casino", "LimitRequestLine 65536",
        "ErrorDocument 403 http://intranet.test/b?u=%{URL}"])
    for n in range(54400, 54700, 10):
        try:
            r = ghtest.get(d.port, "http://www.casino.test/" + "/" * n)
        except (OSError, ValueError, ghtest.Closed) as e:
            raise AssertionError("URL of %d bytes: no whole response: %r" % (n + 23, e))
        assert r.status in (302, 403), (n, r)
        assert len(r.body) == int(r.header("Content-Length")), (n, r)
    # a URL of ordinary length is still redirected
    r = ghtest.get(d.port, "http://www.casino.test/short")
    assert r.status == 302 and r.header("Location").startswith("http://intranet.test/b?u="), r


def test_error_document_file_is_read_again_on_reload(start_daemon, ctx):
    page = os.path.join(ctx.workdir, "edr-%s.html" % uuid.uuid4().hex[:8])
    with open(page, "w") as f:
        f.write("<p>first %{STATUS}</p>")
    d = start_daemon(extra=["ProxyBlock casino", "ErrorDocument 403 %s" % page])
    assert ghtest.get(d.port, "http://www.casino.test/").text() == "<p>first 403</p>"
    with open(page, "w") as f:
        f.write("<p>second %{STATUS}</p>")
    # not re-read per request: the snapshot holds the text read at load time
    assert ghtest.get(d.port, "http://www.casino.test/").text() == "<p>first 403</p>"
    ghtest.sighup_and_wait(d)
    assert ghtest.get(d.port, "http://www.casino.test/").text() == "<p>second 403</p>"
    # a reload that cannot read the file fails with FILE:LINE and keeps the running page
    os.unlink(page)
    ghtest.sighup_and_wait(d, expect_ok=False)
    where = conf_line(d, "ErrorDocument 403")
    assert "%s: ErrorDocument: cannot read %s" % (where, page) in d.stderr_text()
    assert ghtest.get(d.port, "http://www.casino.test/").text() == "<p>second 403</p>"


def test_error_document_errors_name_file_and_line(gh_bin, ctx):
    path = os.path.join(ctx.workdir, "edbad-%s.conf" % uuid.uuid4().hex[:8])
    missing = os.path.join(ctx.workdir, "no-such-page.html")
    cases = [
        ('ErrorDocument 200 "fine"', "not an error status"),
        ('ErrorDocument 418 "teapot"', "not an error status"),
        ('ErrorDocument abc "x"', "not an error status"),
        ("ErrorDocument 404 %s" % missing, "cannot read %s" % missing),
        ('ErrorDocument 403 "oops %{NOPE} here"', 'unknown placeholder "%{NOPE}"'),
        ('ErrorDocument 403 "oops %{URL here"', 'without a closing'),
        ("ErrorDocument 403 ftp://intranet/x", "only http:// and https://"),
        ("ErrorDocument 403", "ErrorDocument"),
    ]
    for line, words in cases:
        with open(path, "w") as f:
            f.write("Listen 127.0.0.1:%d\nUser root\n%s\n" % (ghtest.free_port(), line))
        p = subprocess.run([gh_bin, "-t", "-f", path], capture_output=True, text=True,
                           env=ghtest.clean_env(), timeout=20)
        out = p.stdout + p.stderr
        assert p.returncode == 1, (line, out)
        assert "%s:3: " % path in out and words in out, (line, out)
    # and what is accepted: a message, "default", a URL, a readable file
    page = os.path.join(ctx.workdir, "edok-%s.html" % uuid.uuid4().hex[:8])
    with open(page, "w") as f:
        f.write("<p>%{REASON}</p>\n")
    with open(path, "w") as f:
        f.write("Listen 127.0.0.1:%d\nUser root\nErrorDocument 403 \"Blocked here\"\n"
                "ErrorDocument 403 default\nErrorDocument 502 https://intranet/e?c=%%{STATUS}\n"
                "ErrorDocument 504 %s\n" % (ghtest.free_port(), page))
    p = subprocess.run([gh_bin, "-t", "-f", path], capture_output=True, text=True,
                       env=ghtest.clean_env(), timeout=20)
    assert p.returncode == 0, p.stdout + p.stderr
