"""
test_auth_core.py - proxy authentication's core path (issue 14, daemon/pauth.c and proxy.c):
Basic with AuthUserFile through curl --proxy-user: 407 with Proxy-Authenticate naming the
realm, 200 with the right password, the user in the access log, Proxy-Authorization not sent
upstream, the 407 keeping a keep-alive connection open, 429 once the failure limit is reached,
the PAC file exempt, and Auth* config errors naming FILE:LINE (gatehouse -t). a5 writes the
thorough client tests (test_auth_basic.py ...); this is the smoke test of the core.
"""

import os
import re
import shutil
import subprocess
import time

import pytest

import ghtest

# htpasswd -nbB -C 5 alice "open sesame" (apache2-utils, Debian 12)
H_ALICE = "alice:$2y$05$2RoqHU7dunI3bx9UK4yM3.hJuY1bR7NIv6WqxYG02t.Ke.fhQeybG"
P_ALICE = "open sesame"


def users_file(tmp_path):
    p = tmp_path / "users.htpasswd"
    lines = [H_ALICE]
    if shutil.which("htpasswd"):
        out = subprocess.run(["htpasswd", "-nbB", "-C", "5", "bob", "b0b pass"],
                             capture_output=True, timeout=30, check=True).stdout.decode()
        lines.append(out.strip())
    p.write_text("\n".join(lines) + "\n")
    g = tmp_path / "groups"
    g.write_text("hr: alice\nit: bob\n")
    return str(p), str(g)


def auth_section(users, groups, extra=""):
    return ("<Proxy *>\n    AuthType Basic\n    AuthName \"Office proxy\"\n"
            "    AuthBasicProvider file\n    AuthUserFile %s\n    AuthGroupFile %s\n"
            "    <RequireAll>\n        Require ip 127.0.0.1 ::1\n        Require valid-user\n"
            "    </RequireAll>\n%s</Proxy>" % (users, groups, extra))


def curl(port, url, *args, timeout=30):
    p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-D", "-", "-w", "%{http_code}",
                        "--proxy", "http://127.0.0.1:%d" % port, "--max-time", "20",
                        "--noproxy", ""] + list(args) + [url],
                       capture_output=True, timeout=timeout, env=ghtest.clean_env())
    out = p.stdout.decode("latin-1")
    return int(out[-3:]), out[:-3]


def url(ctx, path):
    return "http://origin.test:%d%s" % (ctx.origin_port, path)


def test_curl_gets_407_then_200_and_user_is_logged(start_daemon, ctx, tmp_path):
    users, groups = users_file(tmp_path)
    log = str(tmp_path / "access.log")
    d = start_daemon(access_log=log, proxy_section=auth_section(users, groups))
    code, head = curl(d.port, url(ctx, "/size/10"))
    assert code == 407, head
    assert 'Proxy-Authenticate: Basic realm="Office proxy", charset="UTF-8"' in head, head
    code, head = curl(d.port, url(ctx, "/size/10"), "--proxy-user", "alice:wrong")
    assert code == 407, head
    code, head = curl(d.port, url(ctx, "/size/10"), "--proxy-user", "nobody:" + P_ALICE)
    assert code == 407, head
    code, head = curl(d.port, url(ctx, "/size/11"), "--proxy-user", "alice:" + P_ALICE)
    assert code == 200, head
    # the user in the access log (Squid's user field), "-" for the refused ones
    lines = ghtest.poll_lines(log, lambda ln: "/size/11" in ln)
    assert " alice " in lines[-1], lines
    text = open(log).read()
    assert "/size/10" in text and "TCP_DENIED/407" in text, text
    # the failures are notice lines for fail2ban, never with the password
    err = d.stderr_text()
    assert 'proxy authentication failed for user "alice" from 127.0.0.1: wrong password' in err
    assert 'proxy authentication failed for user "nobody" from 127.0.0.1: unknown user' in err
    assert P_ALICE not in err and "open%20sesame" not in err


def test_proxy_authorization_is_consumed_not_forwarded(start_daemon, ctx, tmp_path):
    users, groups = users_file(tmp_path)
    d = start_daemon(proxy_section=auth_section(users, groups))
    code, _ = curl(d.port, url(ctx, "/echo?auth-consumed"), "--proxy-user",
                   "alice:" + P_ALICE)
    assert code == 200
    reqs = ctx.origin.requests_with("auth-consumed")
    assert reqs, "the origin saw no request"
    names = [k.lower() for k, _ in reqs[-1]["headers"]]
    assert "proxy-authorization" not in names, reqs[-1]["headers"]


def test_407_keeps_the_keepalive_connection_for_the_retry(start_daemon, ctx, tmp_path):
    users, groups = users_file(tmp_path)
    d = start_daemon(proxy_section=auth_section(users, groups))
    import base64
    cred = base64.b64encode(("alice:" + P_ALICE).encode()).decode()
    c = ghtest.Conn("127.0.0.1", d.port)
    try:
        c.send(ghtest.build(url(ctx, "/size/5")))
        r = c.read_response()
        assert r.status == 407
        assert r.header("Proxy-Authenticate").startswith("Basic realm=")
        assert (r.header("Connection") or "").lower() != "close"
        assert b"proxy authentication required" in r.body, r.body
        c.send(ghtest.build(url(ctx, "/size/5"), headers=[("Proxy-Authorization",
                                                              "Basic " + cred)]))
        r = c.read_response()
        assert r.status == 200 and r.body == ghtest_body(5)
    finally:
        c.close()


def test_connect_needs_credentials_too(start_daemon, ctx, tmp_path):
    users, groups = users_file(tmp_path)
    d = start_daemon(proxy_section=auth_section(users, groups))
    import base64
    target = "127.0.0.1:%d" % ctx.echo_port
    raw = "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)
    r, c = ghtest.request(d.port, raw.encode(), method="CONNECT")
    c.close()
    assert r.status == 407, r.status
    assert r.header("Proxy-Authenticate").startswith('Basic realm="Office proxy"')
    bad = base64.b64encode(b"alice:nope").decode()
    r, c = ghtest.request(d.port, ("CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: "
                                   "Basic %s\r\n\r\n" % (target, target, bad)).encode(),
                          method="CONNECT")
    c.close()
    assert r.status == 407
    good = base64.b64encode(("alice:" + P_ALICE).encode()).decode()
    r, c = ghtest.request(d.port, ("CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: "
                                   "Basic %s\r\n\r\n" % (target, target, good)).encode(),
                          method="CONNECT")
    try:
        assert r.status == 200, r.status
        c.send(b"ping through the tunnel\n")
        assert c.read_until(b"\n") == b"ping through the tunnel\n"
    finally:
        c.close()


def ghtest_body(n):
    import origin
    return origin.body_bytes(n)


def test_failure_limit_answers_429_with_retry_after(start_daemon, ctx, tmp_path):
    users, groups = users_file(tmp_path)
    d = start_daemon(extra=["AuthFailureLimit 3 60"], proxy_section=auth_section(users, groups))
    codes = []
    for i in range(5):
        code, head = curl(d.port, url(ctx, "/size/3"), "--proxy-user", "alice:bad%d" % i)
        codes.append(code)
    assert codes[:2] == [407, 407], codes
    assert codes[2:] == [429, 429, 429], codes
    assert "Retry-After:" in head, head
    # even the right password waits (no hashing for a blocked address)...
    code, head = curl(d.port, url(ctx, "/size/3"), "--proxy-user", "alice:" + P_ALICE)
    assert code == 429, head
    assert re.search(r"proxy authentication blocked for 127\.0\.0\.1: 3 failures, retry in "
                     r"\d+ s", d.stderr_text()), d.stderr_tail()


def test_pac_file_is_exempt(start_daemon, ctx, tmp_path):
    users, groups = users_file(tmp_path)
    d = start_daemon(proxy_section=auth_section(users, groups))
    r = ghtest.get(d.port, "/proxy.pac", headers=[("Host", "127.0.0.1:%d" % d.port)])
    assert r.status == 200, (r.status, r.body[:200])
    assert b"FindProxyForURL" in r.body


def test_group_rule_for_a_url(start_daemon, ctx, tmp_path):
    users, groups = users_file(tmp_path)
    if "bob:" not in open(users).read():
        pytest.skip("htpasswd (apache2-utils) not installed: only one user")
    section = auth_section(users, groups) + (
        "\n<Proxy http://origin.test:%d/size/>\n    Require group hr\n</Proxy>" % ctx.origin_port)
    d = start_daemon(proxy_section=section)
    code, _ = curl(d.port, url(ctx, "/size/7"), "--proxy-user", "alice:" + P_ALICE)
    assert code == 200
    code, head = curl(d.port, url(ctx, "/size/7"), "--proxy-user", "bob:b0b pass")
    assert code == 403, head
    code, _ = curl(d.port, url(ctx, "/echo"), "--proxy-user", "bob:b0b pass")
    assert code == 200


# ---- AuthType None (Apache: authentication switched off in a section) ----

def none_section(ctx, body):
    return "\n<Proxy http://origin.test:%d/size/>\n    AuthType None\n%s</Proxy>" % (
        ctx.origin_port, body)


def test_authtype_none_switches_off_the_login_of_an_earlier_section(start_daemon, ctx,
                                                                       tmp_path):
    """<Proxy *> asks for a login; a later section with AuthType None and Require all granted
    needs none, and there the user a client still sends is not taken (Apache sets no user
    under AuthType None): the access log says "-" even on a connection that proved alice."""
    users, groups = users_file(tmp_path)
    log = str(tmp_path / "access.log")
    d = start_daemon(access_log=log, proxy_section=auth_section(users, groups) + none_section(
        ctx, "    Require all granted\n"))
    code, head = curl(d.port, url(ctx, "/size/21"))
    assert code == 200, head
    code, head = curl(d.port, url(ctx, "/echo?none-1"))
    assert code == 407, head
    # one connection: alice proved on /echo, then /size/ under AuthType None
    p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-o", "/dev/null", "-w",
                        "%{http_code} %{num_connects}\n", "--proxy",
                        "http://127.0.0.1:%d" % d.port, "--max-time", "20", "--noproxy", "",
                        "--proxy-user", "alice:" + P_ALICE, url(ctx, "/echo?none-2"),
                        url(ctx, "/size/22")], capture_output=True, timeout=30,
                       env=ghtest.clean_env())
    out = p.stdout.decode().split()
    assert out == ["200", "1", "200", "0"], (out, p.stderr)
    lines = ghtest.poll_lines(log, lambda ln: "/size/22" in ln or "none-2" in ln, count=2)
    assert len(lines) == 2, lines
    assert " alice " in [ln for ln in lines if "none-2" in ln][0], lines
    size = [ln for ln in lines if "/size/22" in ln][0]
    assert " alice " not in size and " - " in size, size


def test_authtype_none_with_an_inherited_user_rule_is_403_not_407(start_daemon, ctx, tmp_path):
    """AuthType None alone: the rules are still <Proxy *>'s (Require valid-user), but nobody
    may be asked for a password there: 403 naming the rule and AuthType None, never 407."""
    users, groups = users_file(tmp_path)
    d = start_daemon(proxy_section=auth_section(users, groups) + none_section(ctx, ""))
    code, head = curl(d.port, url(ctx, "/size/23"))
    assert code == 403, head
    assert "Proxy-Authenticate" not in head, head
    r = ghtest.get(d.port, url(ctx, "/size/23"))
    assert r.status == 403
    assert b"Require valid-user" in r.body and b"AuthType None" in r.body, r.body[:600]
    code, head = curl(d.port, url(ctx, "/size/23"), "--proxy-user", "alice:" + P_ALICE)
    assert code == 403, head
    # elsewhere the login is still asked for
    code, head = curl(d.port, url(ctx, "/echo?none-3"))
    assert code == 407, head


def test_authtype_none_with_a_user_rule_in_the_same_section_names_file_and_line(gh_bin,
                                                                                tmp_path):
    users, groups = users_file(tmp_path)
    conf = tmp_path / "none.conf"
    conf.write_text("Listen 127.0.0.1:3128\nUser root\n" + auth_section(users, groups) +
                    "\n<Proxy http://intranet.example/>\n    AuthType None\n"
                    "    Require ip 10.0.0.0/8\n    Require valid-user\n</Proxy>\n")
    line = conf.read_text().splitlines().index("    Require valid-user", 12) + 1
    rc, out = run_t(gh_bin, str(conf))
    assert rc != 0, out
    assert "%s:%d: Require valid-user: AuthType None" % (conf, line) in out, out
    assert "switches authentication off" in out, out


# ---- config errors (gatehouse -t) ----

def run_t(gh_bin, path):
    p = subprocess.run([gh_bin, "-t", "-f", path], capture_output=True, timeout=20,
                       env=ghtest.clean_env())
    return p.returncode, (p.stdout + p.stderr).decode("latin-1")


@pytest.mark.parametrize("body, line, want", [
    ("AuthType Basic\n", 3, "AuthType Basic needs a provider"),
    ("AuthType Basic\nAuthBasicProvider radius\n", 4, "unknown provider"),
    ("AuthType Basic\nAuthBasicProvider external\n", 4, "needs AuthExternal"),
    ("AuthType Negotiate\n", 3, "AuthType Negotiate needs AuthNegotiateExternal"),
    ("AuthType Basic\nAuthUserFile {tmp}/missing.htpasswd\n", 4, "missing.htpasswd"),
    ("AuthType Basic\nAuthExternal /usr/lib/squid/no_such_helper\n", 4, "no such file"),
    ("AuthType Basic\nAuthBasicProvider external\nAuthExternal /bin/true\n"
     "AuthUserFile {users}\n", 6, "AuthUserFile is for AuthBasicProvider file"),
])
def test_auth_config_errors_name_file_and_line(gh_bin, tmp_path, body, line, want):
    users, _ = users_file(tmp_path)
    conf = tmp_path / "auth.conf"
    conf.write_text("Listen 127.0.0.1:3128\n<Proxy *>\n" +
                    body.format(tmp=tmp_path, users=users) +
                    "Require valid-user\n</Proxy>\n")
    rc, out = run_t(gh_bin, str(conf))
    assert rc != 0, out
    assert "%s:%d:" % (conf, line) in out, out
    assert want in out, out


def test_auth_config_ok_is_syntax_ok(gh_bin, tmp_path):
    users, groups = users_file(tmp_path)
    conf = tmp_path / "ok.conf"
    conf.write_text("Listen 127.0.0.1:3128\nUser root\nAuthFailureLimit 20 3\n" +
                    auth_section(users, groups) + "\n")
    rc, out = run_t(gh_bin, str(conf))
    assert rc == 0, out
    assert "Syntax OK" in out


# ---- the external provider (a3's helper pools) ----

NCSA = "/usr/lib/squid/basic_ncsa_auth"


def external_section(cmd, groups=None, extra=""):
    return ("<Proxy *>\n    AuthType Basic\n    AuthName \"Office proxy\"\n"
            "    AuthBasicProvider external\n    AuthExternal \"%s\"\n"
            "    AuthExternalChildren 2\n%s%s"
            "    <RequireAll>\n        Require ip 127.0.0.1 ::1\n        Require valid-user\n"
            "    </RequireAll>\n</Proxy>" % (cmd, "    AuthGroupFile %s\n" % groups if groups
                                           else "", extra))


@pytest.mark.skipif(not os.access(NCSA, os.X_OK), reason="squid's basic_ncsa_auth missing")
def test_external_basic_ncsa_auth_407_then_200_and_groups(start_daemon, ctx, tmp_path):
    users, groups = users_file(tmp_path)
    log = str(tmp_path / "access.log")
    section = external_section("%s %s" % (NCSA, users), groups) + (
        "\n<Proxy http://origin.test:%d/size/>\n    Require group hr\n</Proxy>" % ctx.origin_port)
    d = start_daemon(access_log=log, proxy_section=section)
    code, head = curl(d.port, url(ctx, "/echo"))
    assert code == 407, head
    code, head = curl(d.port, url(ctx, "/echo"), "--proxy-user", "alice:wrong")
    assert code == 407, head
    code, head = curl(d.port, url(ctx, "/size/12"), "--proxy-user", "alice:" + P_ALICE)
    assert code == 200, head
    lines = ghtest.poll_lines(log, lambda ln: "/size/12" in ln)
    assert " alice " in lines[-1], lines
    err = d.stderr_text()
    assert 'proxy authentication failed for user "alice" from 127.0.0.1: rejected by the ' \
           'helper' in err, err
    if "bob:" in open(users).read():
        # bob is in "it", not "hr": /size/ is refused to him, the rest allowed
        code, head = curl(d.port, url(ctx, "/size/7"), "--proxy-user", "bob:b0b pass")
        assert code == 403, head
        code, _ = curl(d.port, url(ctx, "/echo"), "--proxy-user", "bob:b0b pass")
        assert code == 200


def test_external_helper_that_hangs_gets_503_naming_it(start_daemon, ctx, tmp_path):
    helper = tmp_path / "hang_auth"
    helper.write_text("#!/bin/sh\nexec sleep 3600\n")
    helper.chmod(0o755)
    d = start_daemon(proxy_section=external_section(str(helper),
                                                    extra="    AuthExternalTimeout 1\n"))
    t0 = time.monotonic()
    code, head = curl(d.port, url(ctx, "/echo"), "--proxy-user", "alice:x")
    assert code == 503, head
    assert time.monotonic() - t0 < 15
    r = ghtest.get(d.port, url(ctx, "/echo"), headers=[("Proxy-Authorization",
                                                        "Basic YWxpY2U6eQ==")])
    assert r.status == 503
    assert b"hang_auth timed out" in r.body, r.body


def test_external_helper_that_dies_gets_503_and_is_restarted(start_daemon, ctx, tmp_path):
    helper = tmp_path / "die_auth"
    # answers OK to "alice ..." and exits on anything else (a crash mid-request)
    helper.write_text("#!/bin/sh\nwhile read u p; do\n  if [ \"$u\" = alice ]; then "
                      "echo OK; else exit 3; fi\ndone\n")
    helper.chmod(0o755)
    d = start_daemon(proxy_section=external_section(str(helper)))
    code, head = curl(d.port, url(ctx, "/echo"), "--proxy-user", "mallory:x")
    assert code == 503, head
    # restarted (at most once a second): alice gets through within a few tries
    for _ in range(20):
        code, head = curl(d.port, url(ctx, "/echo"), "--proxy-user", "alice:any")
        if code == 200:
            break
        assert code == 503, head
        time.sleep(0.5)
    assert code == 200, head


def helper_children(d, path):
    """The daemon's live children running path (a script: /bin/sh PATH)."""
    out = []
    for pid in d.tree_pids():
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")[:2]
            with open("/proc/%d/stat" % pid) as f:
                st = f.read()
        except OSError:
            continue
        if path.encode() in argv and st[st.rindex(")") + 2] not in "ZX":
            out.append(pid)
    return sorted(out)


def test_helper_children_start_with_the_config_not_at_the_first_login(start_daemon, ctx,
                                                                       tmp_path):
    """The pool starts when the worker gets its config: the children are there before any
    request. A reload that changes the helper's settings starts the new pool at once, also
    before any request; one that keeps them keeps the very same children."""
    helper = tmp_path / "ok_auth"
    helper.write_text("#!/bin/sh\nwhile read u p; do echo OK; done\n")
    helper.chmod(0o755)
    d = start_daemon(workers=1, proxy_section=external_section(str(helper)))
    first = ghtest.poll(lambda: len(helper_children(d, str(helper))) == 2 and
                        helper_children(d, str(helper)), timeout=10)
    assert first, (helper_children(d, str(helper)), d.stderr_tail())
    # an unchanged helper line: the same children
    ghtest.sighup_and_wait(d)
    time.sleep(0.5)
    assert helper_children(d, str(helper)) == first
    # AuthExternalChildren 2 -> 3: a new pool, started by the reload itself
    text = open(d.conf).read()
    assert "AuthExternalChildren 2" in text
    with open(d.conf, "w") as f:
        f.write(text.replace("AuthExternalChildren 2", "AuthExternalChildren 3"))
    ghtest.sighup_and_wait(d)
    new = ghtest.poll(lambda: [p for p in helper_children(d, str(helper)) if p not in first],
                      timeout=10)
    assert new and len(new) == 3, (new, first, d.stderr_tail())
    code, head = curl(d.port, url(ctx, "/echo"), "--proxy-user", "alice:any")
    assert code == 200, head


def test_credentials_of_a_request_waiting_for_the_helper_are_its_own(start_daemon, ctx,
                                                                       tmp_path):
    """The Proxy-Authorization value is read in place in the request head, whose buffer goes
    back to the worker's pool while a slow helper checks it; another client's request (the
    same layout, mallory's credentials where alice's were) may get that memory meanwhile.
    The answer for alice must stay alice's, and mallory be checked on his own: 200 as
    alice, 407 for mallory (never alice's OK applied to mallory's bytes)."""
    import base64
    helper = tmp_path / "slow_auth"
    helper.write_text("#!/bin/sh\nwhile read u p; do sleep 1; if [ \"$u\" = alice ]; then "
                      "echo OK; else echo ERR; fi; done\n")
    helper.chmod(0o755)
    log = str(tmp_path / "access.log")
    d = start_daemon(workers=1, access_log=log, proxy_section=external_section(str(helper)))

    def req(n, who):
        cred = base64.b64encode(who.encode()).decode()
        return ghtest.build(url(ctx, "/echo?slow=%d" % n),
                            headers=[("Proxy-Authorization", "Basic " + cred)])

    assert len(base64.b64encode(b"alice:secret1")) == len(base64.b64encode(b"mallory:pw123"))
    a = ghtest.Conn("127.0.0.1", d.port)
    m = ghtest.Conn("127.0.0.1", d.port)
    try:
        a.send(req(1, "alice:secret1"))
        time.sleep(0.4)  # the helper is thinking about alice
        m.send(req(2, "mallory:pw123"))
        ra = a.read_response(timeout=30)
        rm = m.read_response(timeout=30)
        assert (ra.status, rm.status) == (200, 407), (ra.status, rm.status, ra.body[:300])
    finally:
        a.close()
        m.close()
    lines = ghtest.poll_lines(log, lambda ln: "slow=" in ln, count=2)
    first = [ln for ln in lines if "slow=1" in ln]
    assert first and " alice " in first[0], lines
    assert 'failed for user "mallory"' in d.stderr_text(), d.stderr_tail()


# ---- reload ----

@pytest.mark.skipif(not shutil.which("htpasswd"), reason="htpasswd (apache2-utils) missing")
def test_reload_reads_the_user_file_again(start_daemon, ctx, tmp_path):
    users, groups = users_file(tmp_path)
    d = start_daemon(proxy_section=auth_section(users, groups))
    code, _ = curl(d.port, url(ctx, "/echo"), "--proxy-user", "alice:" + P_ALICE)
    assert code == 200
    # alice's password changes in the file; a reload reads it (cached results are of the
    # old settings and never reused)
    subprocess.run(["htpasswd", "-bB", "-C", "5", users, "alice", "new pass"],
                   capture_output=True, timeout=30, check=True)
    ghtest.sighup_and_wait(d)
    code, _ = curl(d.port, url(ctx, "/echo"), "--proxy-user", "alice:" + P_ALICE)
    assert code == 407
    code, _ = curl(d.port, url(ctx, "/echo"), "--proxy-user", "alice:new pass")
    assert code == 200
    # a broken user file fails the reload; the running settings stay
    with open(users, "a") as f:
        f.write("mallory:plaintext\n")
    ghtest.sighup_and_wait(d, expect_ok=False)
    assert "users.htpasswd:" in d.stderr_text().split("reload failed")[-1][:600]
    code, _ = curl(d.port, url(ctx, "/echo"), "--proxy-user", "alice:new pass")
    assert code == 200


def test_external_helper_keys_rename_the_user_and_give_groups(start_daemon, ctx, tmp_path):
    helper = tmp_path / "keys_auth"
    # Squid 3.4+ reply keys: user= renames (as an LDAP helper mapping a login to an account),
    # group= (repeatable) gives the groups; ERR for "eve"
    helper.write_text("#!/bin/sh\nwhile read u p; do\n  if [ \"$u\" = eve ]; then echo ERR; "
                      "else echo \"OK user=acct-$u group=staff group=it%20ops\"; fi\ndone\n")
    helper.chmod(0o755)
    log = str(tmp_path / "access.log")
    section = external_section(str(helper)) + (
        "\n<Proxy http://origin.test:%d/size/>\n    Require group \"it ops\"\n</Proxy>"
        % ctx.origin_port)
    d = start_daemon(access_log=log, proxy_section=section)
    code, head = curl(d.port, url(ctx, "/size/9"), "--proxy-user", "carol:pw")
    assert code == 200, head
    lines = ghtest.poll_lines(log, lambda ln: "/size/9" in ln)
    assert " acct-carol " in lines[-1], lines
    code, head = curl(d.port, url(ctx, "/size/9"), "--proxy-user", "eve:pw")
    assert code == 407, head


@pytest.mark.skipif(not shutil.which("htpasswd"), reason="htpasswd (apache2-utils) missing")
def test_user_name_with_a_blank_is_one_log_field(start_daemon, ctx, tmp_path):
    users, groups = users_file(tmp_path)
    subprocess.run(["htpasswd", "-bB", "-C", "5", users, "john doe", "jd"],
                   capture_output=True, timeout=30, check=True)
    log = str(tmp_path / "access.log")
    d = start_daemon(access_log=log, proxy_section=auth_section(users, groups))
    code, head = curl(d.port, url(ctx, "/size/13"), "--proxy-user", "john doe:jd")
    assert code == 200, head
    lines = ghtest.poll_lines(log, lambda ln: "/size/13" in ln)
    assert " john%20doe " in lines[-1], lines
    assert lines[-1].split()[7] == "john%20doe", lines  # Squid's user field, one word
