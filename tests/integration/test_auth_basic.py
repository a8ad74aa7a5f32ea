"""
test_auth_basic.py - proxy authentication with the Basic scheme and the file provider (issue
14), from real clients: curl --proxy-user and raw sockets.

A <Proxy *> section with AuthType Basic, AuthUserFile (made by htpasswd -B and openssl passwd)
and Require valid-user: no credentials -> 407 with "Proxy-Authenticate: Basic realm=...", and
the origin sees nothing; good ones -> 200 with the user in the squid and combined access logs
and in %u; a wrong password and an unknown user -> the same 407 page (no user enumeration);
malformed Proxy-Authorization values -> 407, never 400/500; bcrypt, SHA-256 and SHA-512 crypt
entries; CONNECT with and without credentials; per-URL group rules (<Proxy *> valid-user and a
later <Proxy http://intranet.corp.test:PORT/> "Require group hr"); <RequireAll> and
<RequireAny> mixing ip and valid-user; Proxy-Authorization consumed (not forwarded) unless
ProxyChainAuth On; the PAC and WPAD files reachable without credentials; a 407 keeps the
connection open for the retry; a reload with a changed htpasswd takes effect at once (the
result cache is keyed by the settings' id, so old results do not outlive their config).
"""

import json
import os
import re
import subprocess
import urllib.parse
import uuid

import pytest

import authfix
import ghtest

PW = {"alice": "Wonderland-42", "bob": "Builder:with:colons", "carol": "s3cret sha256",
      "dave": "s3cret sha512"}


@pytest.fixture
def files(tmp_path):
    users = authfix.write_htpasswd(tmp_path / "users.htpasswd", {
        "alice": PW["alice"], "bob": PW["bob"],
        "carol": (PW["carol"], "sha256"), "dave": (PW["dave"], "sha512")})
    groups = authfix.write_groups(tmp_path / "groups", {"hr": ["alice"],
                                                         "staff": ["alice", "bob"]})
    return users, groups


def start(start_daemon, files, require=("Require valid-user",), after="", **kw):
    users, groups = files
    return start_daemon(proxy_section=authfix.section(users, groups, require, after=after), **kw)


def url(ctx, token=None, host="origin.test", path="/echo"):
    return "http://%s:%d%s?t=%s" % (host, ctx.origin_port, path, token or uuid.uuid4().hex)


def get(d, u, cred=None, source=None, headers=()):
    hs = list(headers)
    if cred is not None:
        hs.append(("Proxy-Authorization", cred))
    return ghtest.get(d.port, u, headers=hs, source=source)


def good(user):
    return authfix.basic(user, PW[user])


def hvals(doc, name):
    return [v for k, v in doc["headers"] if k.lower() == name.lower()]


def assert_challenge(r):
    assert r.status == 407, r
    assert authfix.challenge_realm(r) == authfix.REALM, r.headers
    assert "html" in (r.header("Content-Type") or ""), r


def normalized_page(r, names):
    """The 407 page with what may differ between two requests taken out: the request id and
    the user names tried."""
    body = r.body.decode("utf-8", "replace")
    rid = r.header("Gatehouse-Request-Id")
    if rid:
        body = body.replace(rid, "ID")
    for n in names:
        body = body.replace(n, "USER")
    return body


# ---------------------------------------------------------------- the challenge

def test_no_credentials_is_407_with_a_basic_challenge_and_nothing_reaches_the_origin(
        start_daemon, ctx, files):
    d = start(start_daemon, files)
    t = uuid.uuid4().hex
    r = get(d, url(ctx, t))
    assert_challenge(r)
    assert ctx.origin.requests_with(t) == []
    # the page says what is needed, and is the proxy's own
    assert b"authentication" in r.body.lower(), r.body[:500]


def test_curl_without_proxy_user_gets_407(start_daemon, ctx, files):
    d = start(start_daemon, files)
    rc, status, heads, body, err = authfix.curl(d.port, url(ctx))
    assert status == 407, (rc, heads, err)
    assert re.search(r'(?im)^Proxy-Authenticate: Basic realm="%s"' % re.escape(authfix.REALM),
                     heads), heads


# ---------------------------------------------------------------- good credentials, the logs

def test_curl_proxy_user_gets_200_and_the_user_is_in_every_access_log(start_daemon, ctx, files,
                                                                      tmp_path):
    squid = str(tmp_path / "squid.log")
    combined = str(tmp_path / "combined.log")
    ulog = str(tmp_path / "u.log")
    d = start(start_daemon, files, access_log=squid, extra=[
        'LogFormat "%u|%>s|%r" ulog',
        "CustomLog %s combined" % combined,
        "CustomLog %s ulog" % ulog])
    t = uuid.uuid4().hex
    u = url(ctx, t)
    rc, status, heads, body, err = authfix.curl(d.port, u, "alice:" + PW["alice"])
    assert rc == 0 and status == 200, (rc, status, heads, err)
    doc = json.loads(body)
    assert doc["target"] == "/echo?t=" + t
    assert hvals(doc, "Proxy-Authorization") == [], "the credentials went to the origin"

    lines = ghtest.poll_lines(squid, lambda ln: t in ln)
    assert len(lines) == 1, lines
    m = ghtest.SQUID_RE.match(lines[0])
    assert m and m.group(5) == "200" and m.group(9) == "alice", lines[0]
    lines = ghtest.poll_lines(combined, lambda ln: t in ln)
    assert len(lines) == 1, lines
    m = ghtest.APACHE_COMBINED_RE.match(lines[0])
    assert m and m.group(3) == "alice" and m.group(6) == "200", lines[0]
    lines = ghtest.poll_lines(ulog, lambda ln: t in ln)
    assert lines == ["alice|200|GET %s HTTP/1.1" % u], lines
    # the password is in none of them, nor in the error log
    for path in (squid, combined, ulog, d.stderr_path):
        with open(path, errors="replace") as f:
            assert PW["alice"] not in f.read(), path


def test_accesslog_combined_format_carries_the_user(start_daemon, ctx, files, tmp_path):
    log = str(tmp_path / "combined-own.log")
    d = start(start_daemon, files, access_log=log, log_format="combined")
    t = uuid.uuid4().hex
    r = get(d, url(ctx, t), good("bob"))
    assert r.status == 200, r
    lines = ghtest.poll_lines(log, lambda ln: t in ln)
    assert len(lines) == 1, lines
    m = ghtest.COMBINED_RE.match(lines[0])
    assert m and m.group(3) == "bob", lines[0]


def test_unauthenticated_requests_log_no_user(start_daemon, ctx, files, tmp_path):
    # <RequireAny> lets 127.0.0.2 in by address: no credentials asked, the user field is "-".
    log = str(tmp_path / "anon.log")
    d = start(start_daemon, files, access_log=log,
              require=("<RequireAny>", "    Require ip 127.0.0.2", "    Require valid-user",
                       "</RequireAny>"))
    t = uuid.uuid4().hex
    r = get(d, url(ctx, t), source="127.0.0.2")
    assert r.status == 200, r
    m = ghtest.SQUID_RE.match(ghtest.poll_lines(log, lambda ln: t in ln)[0])
    assert m and m.group(9) == "-", m


def test_a_user_name_with_blanks_and_quotes_stays_one_log_field(start_daemon, ctx, tmp_path):
    # The user name is the client's text: in the Squid and combined lines it must stay one
    # field (escaped), or a report tool reads the wrong columns.
    name = 'mary "mj" o\'neil 100%'
    users = authfix.write_htpasswd(tmp_path / "odd.htpasswd", {name: ("pw-odd", "sha512")})
    squid, combined = str(tmp_path / "odd-squid.log"), str(tmp_path / "odd-combined.log")
    d = start_daemon(proxy_section=authfix.section(users), access_log=squid,
                     extra=["CustomLog %s combined" % combined])
    t = uuid.uuid4().hex
    assert get(d, url(ctx, t), authfix.basic(name, "pw-odd")).status == 200
    m = ghtest.SQUID_RE.match(ghtest.poll_lines(squid, lambda ln: t in ln)[0])
    assert m, "the squid line does not parse"
    m2 = ghtest.APACHE_COMBINED_RE.match(ghtest.poll_lines(combined, lambda ln: t in ln)[0])
    assert m2, "the combined line does not parse"
    for field in (m.group(9), m2.group(3)):
        assert " " not in field and '"' not in field, field
        assert urllib.parse.unquote(field) == name, field


# ---------------------------------------------------------------- bad credentials

def test_wrong_password_is_407(start_daemon, ctx, files):
    d = start(start_daemon, files)
    t = uuid.uuid4().hex
    assert_challenge(get(d, url(ctx, t), authfix.basic("alice", "not-her-password")))
    rc, status, heads, body, err = authfix.curl(d.port, url(ctx, t), "alice:wrong")
    assert status == 407, (rc, heads, err)
    assert ctx.origin.requests_with(t) == []
    assert "not-her-password" not in d.stderr_text()   # no password in the error log


def test_unknown_user_gets_the_same_page_as_a_wrong_password(start_daemon, ctx, files):
    d = start(start_daemon, files)
    wrong = get(d, url(ctx), authfix.basic("alice", "nope-1"))
    unknown = get(d, url(ctx), authfix.basic("zed", "nope-1"))
    assert_challenge(wrong)
    assert_challenge(unknown)
    assert wrong.headers_all("Proxy-Authenticate") == unknown.headers_all("Proxy-Authenticate")
    assert normalized_page(wrong, ["alice"]) == normalized_page(unknown, ["zed"]), \
        (wrong.body, unknown.body)
    for r in (wrong, unknown):
        assert b"unknown" not in r.body.lower() and b"no such user" not in r.body.lower(), r.body
        assert b"nope-1" not in r.body


MALFORMED = [
    "Basic",                                          # no credentials at all
    "Basic ",                                         # empty
    "Basic !!!!not-base64!!!!",
    "Basic " + "YWxpY2U6V29uZGVybGFuZC00Mg",          # alice's, padding missing
    "Basic YWxpY2U6V29uZGVybGFuZC00Mg==junk",         # bytes after the padding
    "Basic " + authfix.basic("alice", "")[6:] + "=",  # too much padding
    "Basic bm9jb2xvbg==",                             # "nocolon": no ':' at all
    authfix.basic("\x01ctl", "x"),                    # a control byte in the user
    "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x",              # a scheme not offered
    "Digest username=\"alice\", realm=\"x\"",
    "Basic " + "QUFB" * 3000,                         # 12 kB of credentials
    "basic\t" + authfix.basic("alice", "nope")[6:],   # a tab: wrong, still no 400
]


@pytest.mark.parametrize("value", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_proxy_authorization_is_407_not_400(start_daemon, ctx, files, value):
    d = start(start_daemon, files, extra=["LimitRequestFieldSize 16384"])
    t = uuid.uuid4().hex
    r = get(d, url(ctx, t), value)
    assert r.status == 407, r
    assert authfix.challenge_realm(r) == authfix.REALM
    assert ctx.origin.requests_with(t) == []
    # the daemon is fine and still lets the right user in
    assert get(d, url(ctx), good("alice")).status == 200


@pytest.mark.parametrize("user", ["alice", "carol", "dave"], ids=["bcrypt", "sha256", "sha512"])
def test_every_hash_kind_of_the_htpasswd_file_works(start_daemon, ctx, files, user):
    d = start(start_daemon, files)
    with open(files[0]) as f:
        entry = [ln for ln in f if ln.startswith(user + ":")][0]
    prefix = {"alice": "$2y$", "carol": "$5$", "dave": "$6$"}[user]
    assert entry.split(":", 1)[1].startswith(prefix), entry
    assert get(d, url(ctx), good(user)).status == 200
    assert get(d, url(ctx), authfix.basic(user, PW[user] + "x")).status == 407
    rc, status, _, _, err = authfix.curl(d.port, url(ctx), "%s:%s" % (user, PW[user]))
    assert status == 200, (rc, err)


def test_password_with_colons_and_utf8_user(start_daemon, ctx, tmp_path):
    # Basic splits at the first ':' only; user names are bytes (UTF-8 here).
    users = authfix.write_htpasswd(tmp_path / "u8.htpasswd", {"j\u00f6rg": "a:b:c"})
    d = start_daemon(proxy_section=authfix.section(users))
    assert get(d, url(ctx), authfix.basic("j\u00f6rg", "a:b:c")).status == 200
    assert get(d, url(ctx), authfix.basic("j\u00f6rg", "a:b")).status == 407


# ---------------------------------------------------------------- CONNECT

def connect(d, ctx, cred=None, source=None):
    c = ghtest.Conn("127.0.0.1", d.port, source=source)
    auth = "Proxy-Authorization: %s\r\n" % cred if cred else ""
    c.send("CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n"
           % (ctx.echo_port, ctx.echo_port, auth))
    return c, c.read_response("CONNECT")


def test_connect_needs_credentials_and_tunnels_with_them(start_daemon, ctx, files):
    d = start(start_daemon, files)
    sessions = len(ctx.echo.sessions)
    c, r = connect(d, ctx)
    with c:
        assert_challenge(r)
    c, r = connect(d, ctx, authfix.basic("alice", "wrong"))
    with c:
        assert_challenge(r)
    assert len(ctx.echo.sessions) == sessions, "a tunnel was opened without credentials"
    c, r = connect(d, ctx, good("bob"))
    with c:
        assert r.status == 200, r
        msg = b"through the tunnel " + os.urandom(500)
        c.send(msg)
        assert c.read_exact(len(msg)) == msg


def test_curl_proxytunnel_with_proxy_user(start_daemon, ctx, files, tmp_path):
    # curl -p: CONNECT to the origin's port, then HTTP inside the tunnel.
    log = str(tmp_path / "tunnel.log")
    d = start(start_daemon, files, access_log=log,
              allow_connect="443 %d %d" % (ctx.echo_port, ctx.origin_port))
    t = uuid.uuid4().hex
    u = url(ctx, t, host="127.0.0.1")
    rc, status, heads, body, err = authfix.curl(d.port, u, "alice:" + PW["alice"],
                                                extra=["-p"])
    assert rc == 0 and status == 200, (rc, status, heads, err)
    assert json.loads(body)["target"] == "/echo?t=" + t
    lines = ghtest.poll_lines(log, lambda ln: " CONNECT " in ln)
    assert lines and ghtest.SQUID_RE.match(lines[-1]).group(9) == "alice", lines
    rc, status, heads, body, err = authfix.curl(d.port, url(ctx, host="127.0.0.1"),
                                                "alice:wrong", extra=["-p"])
    assert rc != 0 and "407" in heads + err, (rc, heads, err)


# ---------------------------------------------------------------- groups and containers

def test_group_rule_for_one_url_prefix(start_policy_daemon, pctx, files):
    # The office of the issue: everybody with a password may browse; payroll is for hr.
    payroll = "http://intranet.corp.test:%d/" % pctx.origin_port
    after = "<Proxy %s>\n    Require group hr\n</Proxy>" % payroll
    users, groups = files
    d = start_policy_daemon(proxy_section=authfix.section(users, groups, after=after))
    pay = payroll + "echo?t=" + uuid.uuid4().hex
    other = "http://www.outside.test:%d/echo?t=%s" % (pctx.origin_port, uuid.uuid4().hex)

    assert_challenge(get(d, pay))                          # no credentials: asked for them
    assert get(d, pay, good("alice")).status == 200        # alice is in hr
    r = get(d, pay, good("bob"))                           # bob is not
    assert r.status == 403, r
    assert b"Require group hr" in r.body, r.body
    assert PW["bob"].encode() not in r.body
    assert get(d, other, good("bob")).status == 200        # elsewhere bob may browse
    assert_challenge(get(d, pay, authfix.basic("alice", "wrong")))


def test_require_user_names_the_users(start_daemon, ctx, files):
    d = start(start_daemon, files, require=("Require user bob carol",))
    assert get(d, url(ctx), good("bob")).status == 200
    assert get(d, url(ctx), good("carol")).status == 200
    r = get(d, url(ctx), good("alice"))
    assert r.status == 403 and b"Require user" in r.body, r


def test_require_all_ip_and_valid_user(start_daemon, ctx, files):
    d = start(start_daemon, files, require=(
        "<RequireAll>", "    Require ip 127.0.0.1", "    Require valid-user", "</RequireAll>"))
    assert_challenge(get(d, url(ctx)))
    assert get(d, url(ctx), good("alice")).status == 200
    # another address is refused whatever it sends, and never asked for a password
    for cred in (None, good("alice")):
        r = get(d, url(ctx), cred, source="127.0.0.2")
        assert r.status == 403, r
        assert r.header("Proxy-Authenticate") is None, r


def test_require_any_ip_or_valid_user(start_daemon, ctx, files):
    d = start(start_daemon, files, require=(
        "<RequireAny>", "    Require ip 10.0.0.0/8", "    Require valid-user", "</RequireAny>"))
    # 127.0.0.1 is not in 10/8: it needs the password
    assert_challenge(get(d, url(ctx)))
    assert get(d, url(ctx), good("alice")).status == 200
    assert_challenge(get(d, url(ctx), authfix.basic("alice", "wrong")))


def test_require_none_refuses_a_user(start_daemon, ctx, files):
    d = start(start_daemon, files, require=(
        "<RequireAll>", "    Require valid-user",
        "    <RequireNone>", "        Require user bob", "    </RequireNone>",
        "</RequireAll>"))
    assert get(d, url(ctx), good("alice")).status == 200
    assert get(d, url(ctx), good("bob")).status == 403


# ---------------------------------------------------------------- hop-by-hop

def test_proxy_authorization_is_not_forwarded(start_daemon, ctx, files):
    d = start(start_daemon, files)
    r = get(d, url(ctx), good("alice"))
    assert r.status == 200, r
    doc = json.loads(r.body)
    assert hvals(doc, "Proxy-Authorization") == [], doc["headers"]


def test_proxychainauth_on_forwards_the_credentials(start_daemon, ctx, files):
    d = start(start_daemon, files, extra=["ProxyChainAuth On"])
    cred = good("alice")
    r = get(d, url(ctx), cred)
    assert r.status == 200, r
    assert hvals(json.loads(r.body), "Proxy-Authorization") == [cred]


# ---------------------------------------------------------------- PAC and WPAD

def fetch_local(d, path):
    c = ghtest.Conn("127.0.0.1", d.port)
    try:
        c.send("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n"
               % (path, d.port))
        return c.read_response()
    finally:
        c.close()


def test_pac_and_wpad_need_no_credentials(start_daemon, ctx, files):
    d = start(start_daemon, files)
    for path in ("/proxy.pac", "/wpad.dat"):
        r = fetch_local(d, path)
        assert r.status == 200, (path, r)
        assert b"FindProxyForURL" in r.body, (path, r.body[:300])
    assert_challenge(get(d, url(ctx)))     # while everything else needs them


def test_pac_still_follows_the_address_rules(start_daemon, ctx, files):
    # exempt from the user terms, not from the ip terms
    d = start(start_daemon, files, require=(
        "<RequireAll>", "    Require ip 127.0.0.1", "    Require valid-user", "</RequireAll>"))
    assert fetch_local(d, "/proxy.pac").status == 200
    c = ghtest.Conn("127.0.0.1", d.port, source="127.0.0.2")
    with c:
        c.send("GET /proxy.pac HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert c.read_response().status == 403


# ---------------------------------------------------------------- keep-alive

def test_407_keeps_the_connection_for_the_retry(start_daemon, ctx, files):
    d = start(start_daemon, files)
    t = uuid.uuid4().hex
    with ghtest.Conn("127.0.0.1", d.port) as c:
        c.send(ghtest.build(url(ctx, t)))
        r = c.read_response()
        assert_challenge(r)
        assert "close" not in (r.header("Connection") or "").lower(), r
        c.send(ghtest.build(url(ctx, t), [("Proxy-Authorization", good("alice"))]))
        r = c.read_response()
        assert r.status == 200, r
        # the next request on the same connection needs the credentials again (as browsers
        # send them): the connection is not "logged in"
        c.send(ghtest.build(url(ctx, t)))
        assert_challenge(c.read_response())
        c.send(ghtest.build(url(ctx, t), [("Proxy-Authorization", good("alice"))]))
        assert c.read_response().status == 200
    assert len(ctx.origin.requests_with(t)) == 2


def test_407_after_a_request_body_then_the_retry(start_daemon, ctx, files):
    # A POST's body comes before the 407: the proxy either reads it and keeps the connection
    # for the retry, or says "Connection: close" and closes; never a connection left out of
    # step (the body read as the next request).
    d = start(start_daemon, files)
    t = uuid.uuid4().hex
    body = b"x" * 5000
    cred = [("Proxy-Authorization", good("alice"))]
    c = ghtest.Conn("127.0.0.1", d.port)
    try:
        c.send(ghtest.build(url(ctx, t), method="POST", body=body))
        r = c.read_response("POST")
        assert_challenge(r)
        if "close" in (r.header("Connection") or "").lower():
            assert c.closed_by_peer(), "Connection: close, but the connection stayed open"
            c.close()
            c = ghtest.Conn("127.0.0.1", d.port)
        c.send(ghtest.build(url(ctx, t), cred, method="POST", body=body))
        r = c.read_response("POST")
        assert r.status == 200, r
        assert json.loads(r.body)["body_len"] == len(body)
    finally:
        c.close()
    assert len(ctx.origin.requests_with(t)) == 1


def test_pipelined_requests_with_and_without_credentials(start_daemon, ctx, files):
    d = start(start_daemon, files)
    t = uuid.uuid4().hex
    seq = [good("alice"), None, authfix.basic("alice", "bad"), good("bob"), good("alice")]
    with ghtest.Conn("127.0.0.1", d.port) as c:
        c.send(b"".join(ghtest.build(url(ctx, "%s-%d" % (t, i)),
                                     [("Proxy-Authorization", v)] if v else [])
                        for i, v in enumerate(seq)))
        got = [c.read_response().status for _ in seq]
    assert got == [200, 407, 407, 200, 200], got


# ---------------------------------------------------------------- reload

def test_reload_with_a_user_removed_refuses_that_user_at_once(start_daemon, ctx, files):
    users, groups = files
    d = start(start_daemon, files)
    keep = ghtest.Conn("127.0.0.1", d.port)
    try:
        # warm the result cache and the connection's memory of alice's credentials
        for _ in range(3):
            assert get(d, url(ctx), good("alice")).status == 200
        keep.send(ghtest.build(url(ctx), [("Proxy-Authorization", good("alice"))]))
        assert keep.read_response().status == 200

        authfix.write_htpasswd(users, {"bob": PW["bob"]})
        ghtest.sighup_and_wait(d)

        assert_challenge(get(d, url(ctx), good("alice")))
        assert get(d, url(ctx), good("bob")).status == 200
        # a connection opened before the reload: the new settings apply to its next request
        keep.send(ghtest.build(url(ctx), [("Proxy-Authorization", good("alice"))]))
        assert_challenge(keep.read_response())
    finally:
        keep.close()


def test_reload_with_a_changed_password(start_daemon, ctx, files):
    users, groups = files
    d = start(start_daemon, files)
    assert get(d, url(ctx), good("alice")).status == 200
    authfix.write_htpasswd(users, {"alice": "new-password", "bob": PW["bob"]})
    ghtest.sighup_and_wait(d)
    assert_challenge(get(d, url(ctx), good("alice")))
    assert get(d, url(ctx), authfix.basic("alice", "new-password")).status == 200


def test_reload_with_a_changed_group_file(start_policy_daemon, pctx, files):
    users, groups = files
    payroll = "http://intranet.corp.test:%d/" % pctx.origin_port
    after = "<Proxy %s>\n    Require group hr\n</Proxy>" % payroll
    d = start_policy_daemon(proxy_section=authfix.section(users, groups, after=after))
    pay = payroll + "echo"
    assert get(d, pay, good("alice")).status == 200
    assert get(d, pay, good("bob")).status == 403
    authfix.write_groups(groups, {"hr": ["bob"]})
    ghtest.sighup_and_wait(d)
    assert get(d, pay, good("alice")).status == 403
    assert get(d, pay, good("bob")).status == 200


# ---------------------------------------------------------------- the packaged examples

SHIPPED = os.path.join(ghtest.REPO, "packaging", "gatehouse.conf")


def shipped_examples():
    """The commented-out configuration blocks of packaging/gatehouse.conf: runs of lines
    "#<...", "#    ..." (an admin removes the "#"), uncommented."""
    blocks, cur = [], []
    with open(SHIPPED) as f:
        for ln in f.read().splitlines():
            if re.match(r"^#(<|    +\S)", ln):
                cur.append(ln[1:])
            elif cur:
                blocks.append("\n".join(cur))
                cur = []
    return blocks


def example(word):
    found = [b for b in shipped_examples() if word in b]
    assert len(found) == 1, "packaging/gatehouse.conf: %d examples with %s" % (len(found), word)
    return found[0]


def gh_t(gh_bin, path):
    p = subprocess.run([gh_bin, "-t", "-f", path], capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL, env=ghtest.clean_env())
    return p.returncode, p.stdout + p.stderr


def test_packaged_htpasswd_example_works_as_documented(start_policy_daemon, pctx, files):
    # The example, as an admin would switch it on: only the file names and the payroll host
    # are this test's.
    users, groups = files
    payroll = "http://intranet.corp.test:%d/" % pctx.origin_port
    block = example("AuthBasicProvider file")
    assert "http://payroll.corp.example/" in block and "/etc/gatehouse/users.htpasswd" in block
    block = block.replace("/etc/gatehouse/users.htpasswd", users) \
                 .replace("/etc/gatehouse/groups", groups) \
                 .replace("http://payroll.corp.example/", payroll)
    d = start_policy_daemon(proxy_section=block)
    other = "http://www.outside.test:%d/echo" % pctx.origin_port
    assert authfix.challenge_realm(get(d, other)) == "Office proxy"
    assert get(d, other, good("bob")).status == 200
    assert get(d, payroll + "echo", good("alice")).status == 200
    assert get(d, payroll + "echo", good("bob")).status == 403
    assert get(d, other, good("bob"), source="127.0.0.2").status == 200   # 127/8 is listed
    assert fetch_local(d, "/proxy.pac").status == 200


def test_packaged_ldap_and_negotiate_examples_pass_gatehouse_t(gh_bin, ctx, tmp_path):
    # basic_ldap_auth and negotiate_kerberos_auth are Squid's (squid-openssl here): -t checks
    # the directives and that the helper programs exist and are executable.
    for helper in ("/usr/lib/squid/basic_ldap_auth", "/usr/lib/squid/negotiate_kerberos_auth"):
        assert os.access(helper, os.X_OK), "%s is missing: scripts/test-deps.sh installs " \
                                           "squid-openssl" % helper
    users = authfix.write_htpasswd(tmp_path / "t.htpasswd", {"alice": "x"})
    ldap = example("basic_ldap_auth")
    neg = example("AuthNegotiateExternal")
    assert not neg.lstrip().startswith("<"), neg      # lines for a section, not a section
    negotiate_section = "\n".join([
        "<Proxy *>", neg, "    AuthName \"Office proxy\"", "    AuthBasicProvider file",
        "    AuthUserFile %s" % users, "    Require valid-user", "</Proxy>"])
    for name, section in (("ldap", ldap), ("negotiate", negotiate_section)):
        conf = tmp_path / ("%s.conf" % name)
        conf.write_text(ghtest.conf_text(ctx, ghtest.free_port(), proxy_section=section))
        rc, out = gh_t(gh_bin, str(conf))
        assert rc == 0 and out.endswith("Syntax OK\n"), (name, out)
    # ... and -t does check the helper: a path that is not there is an error naming it
    conf = tmp_path / "missing.conf"
    conf.write_text(ghtest.conf_text(ctx, ghtest.free_port(), proxy_section=ldap.replace(
        "/usr/lib/squid/basic_ldap_auth", "/usr/lib/squid/no_such_auth")))
    rc, out = gh_t(gh_bin, str(conf))
    assert rc != 0 and "no_such_auth" in out, out
