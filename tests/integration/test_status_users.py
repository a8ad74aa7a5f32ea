"""
test_status_users.py - who is browsing, on the status page (issue 14): a real daemon with
proxy authentication (AuthUserFile, bcrypt, made by htpasswd -B) and the status page.

Two users make requests through the proxy (alice three, bob one, each on a fresh connection),
while other requests fail: no credentials, a wrong password for bob, and an unknown user whose
name carries HTML. Then every view must tell who browsed and no more: the top users (api/top
and the page) list exactly alice and bob with their counts, never a name that was not
verified; the recent requests carry the user (null / "-" for the refused ones), and the user
filter keeps only that user's requests; the authentication counters moved (?auto,
api/overview, the overview page, /metrics, which promtool accepts). A user name with markup
is shown escaped on every page. With an external helper (Squid's basic_ncsa_auth, a real
child process), the helper pool's figures show on the overview and in /metrics.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import time
import uuid

import pytest

import ghtest

LOCATION = ("<Location /gatehouse/>\n    SetHandler gatehouse-status\n"
            "    Require ip 127.0.0.1 ::1\n</Location>")
NCSA = "/usr/lib/squid/basic_ncsa_auth"
EVE = "<i>eve</i>&x"


def api(port, path):
    st, _, body = ghtest.status_page(port, path)
    assert st == 200, (path, body[:500])
    return json.loads(body)


def auto(port):
    st, _, body = ghtest.status_page(port, "?auto")
    assert st == 200, body
    out = {}
    for line in body.decode().splitlines():
        k, _, v = line.partition(": ")
        out[k] = v
    return out


def wait_for(fn, pred, timeout=15.0):
    """fn() once pred holds (a request is counted when its log line is written, just after
    the answer; helper figures are copied once a second); the last reading otherwise."""
    deadline = time.monotonic() + timeout
    v = fn()
    while not pred(v) and time.monotonic() < deadline:
        time.sleep(0.1)
        v = fn()
    return v


def cred(user, password):
    return ("Proxy-Authorization",
            "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode())


def htpasswd(path, users):
    tool = shutil.which("htpasswd")
    assert tool, "htpasswd is missing: scripts/test-deps.sh installs apache2-utils"
    first = True
    for user, password in users:
        subprocess.run([tool, "-b", "-B", "-C", "5"] + (["-c"] if first else []) +
                       [path, user, password], check=True, capture_output=True, timeout=60)
        first = False
    os.chmod(path, 0o644)


def auth_section(lines):
    return ("<Proxy *>\n    AuthType Basic\n    AuthName \"Status users test\"\n" +
            "".join("    %s\n" % ln for ln in lines) +
            "    <RequireAll>\n        Require ip 127.0.0.1 ::1\n"
            "        Require valid-user\n    </RequireAll>\n</Proxy>")


@pytest.fixture
def users_file(ctx):
    path = os.path.join(ctx.workdir, "users-%s.htpasswd" % uuid.uuid4().hex[:8])
    htpasswd(path, [("alice", "alice pw 1"), ("bob", "bob-pw-2"), (EVE, "eve pw")])
    yield path
    os.unlink(path)


@pytest.fixture
def auth_daemon(start_daemon, users_file):
    return start_daemon("users", extra=[LOCATION], proxy_section=auth_section(
        ["AuthBasicProvider file", "AuthUserFile %s" % users_file]))


def fetch(d, ctx, tag, i, headers=()):
    url = "http://origin.test:%d/cache?t=%s&i=%d&size=300" % (ctx.origin_port, tag, i)
    return ghtest.get(d.port, url, headers=list(headers))


def top_items(top, kind):
    return {it["key"]: it["count"] for it in top[kind]["items"]}


def test_top_users_recent_requests_and_counters_show_verified_users_only(auth_daemon, ctx):
    d = auth_daemon
    before = auto(d.port)
    for k in ("AuthOK", "AuthFailed", "AuthChallenged", "AuthCacheHits", "AuthVerifications",
              "HelperChildren"):
        assert k in before, "no %s in ?auto: %s" % (k, before)
    assert before["AuthSections"] == "1"
    t = uuid.uuid4().hex
    for i in range(3):
        r = fetch(d, ctx, t, i, [cred("alice", "alice pw 1")])
        assert r.status == 200, r
    r = fetch(d, ctx, t, 3, [cred("bob", "bob-pw-2")])
    assert r.status == 200, r
    r = fetch(d, ctx, t, 4)
    assert r.status == 407 and "Basic" in (r.header("Proxy-Authenticate") or ""), r
    r = fetch(d, ctx, t, 5, [cred("bob", "not bob's")])
    assert r.status == 407, r
    r = fetch(d, ctx, t, 6, [cred("<b>mallory</b>", "guess")])
    assert r.status == 407, r
    assert len(ctx.origin.requests_with(t)) == 4   # the refused ones never reached it

    # the seven requests are counted (recent holds their log entries)
    def ours():
        return [e for e in api(d.port, "api/recent")["entries"] if t in e["url"]]
    entries = wait_for(ours, lambda v: len(v) >= 7)
    assert len(entries) == 7, entries
    by_i = {int(re.search(r"i=(\d)", e["url"]).group(1)): e for e in entries}
    for i in range(3):
        assert by_i[i]["user"] == "alice" and by_i[i]["status"] == 200, by_i[i]
    assert by_i[3]["user"] == "bob", by_i[3]
    for i in (4, 5, 6):  # refused: no user, whatever name was sent
        assert by_i[i]["status"] == 407 and by_i[i]["user"] is None, by_i[i]
    only_alice = [e for e in api(d.port, "api/recent?user=alice")["entries"] if t in e["url"]]
    assert len(only_alice) == 3 and all(e["user"] == "alice" for e in only_alice), only_alice

    # top users: exactly the verified ones, with their counts; their total is theirs only
    top = api(d.port, "api/top?n=50")
    users = top_items(top, "users_by_requests")
    assert users == {"alice": 3, "bob": 1}, top["users_by_requests"]
    assert top["users_by_requests"]["total"] == 4
    ub = top_items(top, "users_by_bytes")
    assert set(ub) == {"alice", "bob"} and ub["alice"] > ub["bob"] > 0, ub
    assert top_items(top, "clients_by_requests")["127.0.0.1"] >= 7

    # the pages
    st, _, body = ghtest.status_page(d.port, "top")
    html = body.decode()
    assert st == 200
    sect = html[html.index('id="top-users_by_requests"'):]
    sect = sect[:sect.index("</table>")]
    assert ">alice<" in sect and ">bob<" in sect, sect
    assert "mallory" not in html
    st, _, body = ghtest.status_page(d.port, "recent?user=bob")
    html = body.decode()
    assert st == 200 and "<th>user</th>" in html
    assert '<td class="user">bob</td>' in html
    assert '<td class="user">alice</td>' not in html
    assert "mallory" not in html

    # counters: every view
    a = wait_for(lambda: auto(d.port),
                 lambda v: int(v["AuthOK"]) - int(before["AuthOK"]) >= 4)
    assert int(a["AuthOK"]) - int(before["AuthOK"]) >= 4, a
    assert int(a["AuthFailed"]) - int(before["AuthFailed"]) >= 2, a
    assert int(a["AuthChallenged"]) - int(before["AuthChallenged"]) >= 1, a
    # alice's second and third requests came on new connections: the result cache answered
    assert int(a["AuthCacheHits"]) - int(before["AuthCacheHits"]) >= 2, a
    assert int(a["AuthVerifications"]) >= 3, a       # alice, bob, bob's wrong password
    ov = api(d.port, "api/overview")
    assert ov["auth"]["sections"] == 1
    assert ov["auth"]["ok"] >= int(a["AuthOK"])
    assert ov["auth"]["failed"] >= int(a["AuthFailed"])
    assert ov["display"]["auth_ok"] == str(ov["auth"]["ok"])
    st, _, body = ghtest.status_page(d.port, "")
    html = body.decode()
    assert 'id="ov-auth"' in html
    assert re.search(r'<span data-ov="auth_ok">(\d+)</span>', html), html[-3000:]
    assert int(re.search(r'<span data-ov="auth_ok">(\d+)</span>', html).group(1)) >= 4

    st, hdrs, body = ghtest.status_page(d.port, "metrics")
    assert st == 200
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/test-deps.sh installs Debian's prometheus"
    p = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                       timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    m = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            m[k] = float(v)
    assert m["gatehouse_auth_sections"] == 1
    assert m['gatehouse_auth_requests_total{result="ok"}'] >= 4
    assert m['gatehouse_auth_requests_total{result="failed"}'] >= 2
    assert m['gatehouse_auth_cache_lookups_total{answer="result"}'] >= 2
    assert 'gatehouse_auth_helper_children{state="up"}' in m


def test_user_names_are_escaped_on_every_page(auth_daemon, ctx):
    d = auth_daemon
    t = uuid.uuid4().hex
    r = fetch(d, ctx, t, 0, [cred(EVE, "eve pw")])
    assert r.status == 200, r
    entries = wait_for(
        lambda: [e for e in api(d.port, "api/recent")["entries"] if t in e["url"]],
        lambda v: len(v) >= 1)
    assert [e["user"] for e in entries] == [EVE]        # JSON: the name as it is
    assert top_items(api(d.port, "api/top"), "users_by_requests") == {EVE: 1}
    escaped = "&lt;i&gt;eve&lt;/i&gt;&amp;x"
    for path in ("top", "recent", "top?part=1", "recent?part=1"):
        st, _, body = ghtest.status_page(d.port, path)
        html = body.decode()
        assert st == 200
        assert "<i>eve" not in html, path
        assert escaped in html, (path, html[-2000:])


@pytest.mark.skipif(not os.access(NCSA, os.X_OK), reason="squid's basic_ncsa_auth not installed")
def test_helper_pool_figures_on_the_overview_and_metrics(start_daemon, users_file, ctx):
    d = start_daemon("users-ext", extra=[LOCATION], workers=2, proxy_section=auth_section(
        ["AuthBasicProvider external",
         "AuthExternal \"%s %s\"" % (NCSA, users_file),
         "AuthExternalChildren 2"]))
    t = uuid.uuid4().hex
    # a worker makes its pool (its share of the children: one each here) on first use
    for i in range(4):
        r = fetch(d, ctx, t, i, [cred("alice", "alice pw 1")])
        assert r.status == 200, r
    r = fetch(d, ctx, t, 9, [cred("alice", "wrong")])
    assert r.status == 407, r
    # copied to the page by each worker once a second
    a = wait_for(lambda: auto(d.port),
                 lambda v: int(v["HelperReplies"]) >= 2 and int(v["HelperChildren"]) >= 1)
    assert 1 <= int(a["HelperChildren"]) <= 2, a
    assert int(a["HelperRequests"]) >= 2 and int(a["HelperReplies"]) >= 2, a
    assert a["HelperTimeouts"] == "0" and a["HelperQueued"] == "0", a
    assert a["HelperBusy"] == "0", a
    assert int(a["AuthOK"]) >= 4 and int(a["AuthFailed"]) >= 1, a
    up = int(a["HelperChildren"])
    ov = api(d.port, "api/overview")
    assert ov["auth"]["helpers"]["children_up"] == up
    assert ov["auth"]["helpers"]["replies"] >= 2
    assert ov["display"]["helpers"].startswith("%d running" % up), ov["display"]
    st, _, body = ghtest.status_page(d.port, "metrics")
    assert st == 200
    p = subprocess.run([shutil.which("promtool"), "check", "metrics"], input=body,
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert re.search(rb'^gatehouse_auth_helper_children\{state="up"\} %d$' % up, body, re.M), body
    assert top_items(api(d.port, "api/top"), "users_by_requests") == {"alice": 4}
