"""
test_auth_config.py - proxy authentication in the config file (issue 14), the access-rule part:
Apache 2.4's <RequireAll>, <RequireAny> and <RequireNone> inside <Proxy>, <ProxyMatch>, <Limit>
and <LimitExcept>, and Require valid-user / user / group there. `gatehouse -t` refuses a bad
container or a user term with no authentication in force as "FILE:LINE: message" (exit 1) and
accepts the rest ("Syntax OK"); `gatehouse -M` prints the containers back so that they parse
again; a running daemon applies a container to real requests (a veto inside <RequireAll>), and
a SIGHUP with a broken container keeps the rules in force.

(The Auth* directives' own errors join this file with their part of the issue.)
"""

import base64
import json
import signal
import subprocess
import urllib.parse
import time
import uuid

import pytest

import ghtest


def run(gh_bin, args):
    p = subprocess.run([gh_bin] + args, capture_output=True, timeout=20, env=ghtest.clean_env())
    return p.returncode, p.stdout.decode("latin-1"), p.stderr.decode("latin-1")


def write_conf(tmp_path, lines, name="auth.conf"):
    p = tmp_path / name
    p.write_text("\n".join(["Listen 127.0.0.1:3128", "User root"] + lines) + "\n")
    return str(p)


def line_of(path, text, nth=1):
    """The line number of the nth line whose stripped text is text."""
    seen = 0
    with open(path) as f:
        for i, ln in enumerate(f, 1):
            if ln.strip() == text:
                seen += 1
                if seen == nth:
                    return i
    raise AssertionError("%r not in %s" % (text, path))


# (config lines, the line at fault as its stripped text, the message after "FILE:LINE: ")
BAD = [
    (["<Proxy *>", "    Require valid-user", "</Proxy>"],
     "Require valid-user",
     "Require valid-user needs AuthType in this or an enclosing <Proxy *> section"),
    (["<Proxy *>", "    Require ip 10.0.0.0/8", "</Proxy>",
      "<Proxy http://payroll.corp.example/>", "    Require group hr", "</Proxy>"],
     "Require group hr",
     "Require group hr needs AuthType in this or an enclosing <Proxy *> section"),
    (["<ProxyMatch ^http://intranet>", "    <RequireAll>", "        Require ip 10.0.0.0/8",
      "        Require user alice bob", "    </RequireAll>", "</ProxyMatch>"],
     "Require user alice bob",
     "Require user alice bob needs AuthType in this or an enclosing <Proxy *> section"),
    (["<Proxy *>", "    <LimitExcept GET HEAD>", "        Require valid-user",
      "    </LimitExcept>", "</Proxy>"],
     "Require valid-user",
     "Require valid-user needs AuthType in this or an enclosing <Proxy *> section"),
    (["<Proxy *>", "    <RequireAny>", "        Require ip 10.0.0.0/8",
      "        Require not ip 10.6.0.0/16", "    </RequireAny>", "</Proxy>"],
     "Require not ip 10.6.0.0/16",
     "Require: a negative Require has no effect in <RequireAny> (or outside any container): "
     "put it in <RequireAll> or <RequireNone>"),
    (["<Proxy *>", "    <RequireAll>", "        Require all granted", "        <RequireNone>",
      "            Require not ip 10.6.0.0/16", "        </RequireNone>", "    </RequireAll>",
      "</Proxy>"],
     "Require not ip 10.6.0.0/16",
     "Require: a negative Require has no effect in <RequireNone>: it could never grant "
     "(write the positive rule there)"),
    (["<Proxy *>", "    <RequireAll>", "        Require not ip 10.6.0.0/16", "    </RequireAll>",
      "</Proxy>"],
     "</RequireAll>",
     "</RequireAll>: <RequireAll> holds only negative rules: it can never grant"),
    (["<Proxy *>", "    <RequireAny>", "    </RequireAny>", "</Proxy>"],
     "</RequireAny>", "</RequireAny>: the container holds no Require directive"),
    (["<Proxy *>", "    <RequireAll>", "        Require ip 10.0.0.0/8", "</Proxy>"],
     "</Proxy>", "expected </RequireAll> but saw </Proxy>"),
    (["<Proxy *>", "    <RequireAll>", "        Require ip 10.0.0.0/8", "    </RequireAll>"],
     "<Proxy *>", "<Proxy> section not closed"),
    (["<Proxy *>", "    <RequireAll>", "        <Limit POST>", "        </Limit>",
      "    </RequireAll>", "</Proxy>"],
     "<Limit POST>", "<Limit> not allowed in <RequireAll>"),
    (["<RequireAll>", "    Require ip 10.0.0.0/8", "</RequireAll>"],
     "<RequireAll>",
     "<RequireAll> is only allowed inside <Proxy>, <ProxyMatch>, <Limit>, <LimitExcept> or "
     "<Location>"),
    (["<Proxy *>", "    Order deny,allow", "    <RequireAny>", "        Require ip 10.0.0.0/8",
      "    </RequireAny>", "</Proxy>"],
     "<RequireAny>",
     "<RequireAny>: cannot mix Require with Order/Allow/Deny in one section"),
    (["<Proxy *>", "    Require host 10.1.2.3", "</Proxy>"],
     "Require host 10.1.2.3", "Require: \"10.1.2.3\" is an address: use Require ip"),
    (["<Proxy *>", "    Require group", "</Proxy>"],
     "Require group", "Require: \"group\" needs at least one group name"),
    (["<Proxy *>", "    Require kerberos-user x", "</Proxy>"],
     "Require kerberos-user x",
     "Require: unsupported provider \"kerberos-user\" (supported: ip, host, all, local, "
     "valid-user, user, group)"),
]


@pytest.mark.parametrize("lines,at,msg", BAD, ids=[
    "valid-user-without-authtype", "group-in-later-section-without-authtype",
    "user-in-proxymatch-container", "valid-user-in-limitexcept", "not-in-requireany",
    "not-in-requirenone", "requireall-only-negative", "empty-container",
    "proxy-closed-inside-container", "container-not-closed", "limit-inside-container",
    "container-at-top-level", "container-in-22-section", "host-given-an-address",
    "group-without-names", "unknown-provider"])
def test_bad_rules_are_refused_naming_file_and_line(gh_bin, tmp_path, lines, at, msg):
    conf = write_conf(tmp_path, lines)
    rc, out, err = run(gh_bin, ["-t", "-f", conf])
    assert rc == 1, (out, err)
    want = "%s:%d: %s" % (conf, line_of(conf, at), msg)
    assert want in err, err
    assert "Syntax OK" not in out + err
    # the old refusal of every user term is gone
    assert "there is no authentication" not in err


GOOD = [
    "<Proxy *>",
    "    <RequireAll>",
    "        Require ip 127.0.0.0/8 10.0.0.0/8",
    "        <RequireAny>",
    "            Require local",
    "            Require host corp.example",
    "        </RequireAny>",
    "        <RequireNone>",
    "            Require ip 10.6.0.0/16",
    "            Require host .guest.corp.example",
    "        </RequireNone>",
    "    </RequireAll>",
    "    Require not ip 127.0.0.9",
    "    <Limit PURGE>",
    "        <RequireAny>",
    "            Require local",
    "        </RequireAny>",
    "    </Limit>",
    "</Proxy>",
]


def test_containers_without_users_are_accepted(gh_bin, tmp_path):
    conf = write_conf(tmp_path, GOOD)
    rc, out, err = run(gh_bin, ["-t", "-f", conf])
    assert rc == 0, err
    assert "Syntax OK" in out + err


def test_dump_prints_containers_that_parse_again(gh_bin, tmp_path):
    conf = write_conf(tmp_path, GOOD)
    rc, out1, err = run(gh_bin, ["-M", "-f", conf])
    assert rc == 0, err
    body = [ln.strip() for ln in out1.split("\n") if ln.strip() and not ln.strip().startswith("#")]
    # the containers, nested as written, with their Require lines inside
    i = body.index("<RequireAll>")
    assert body[i + 1:i + 3] == ["Require ip 127.0.0.0/8 10.0.0.0/8", "<RequireAny>"], body
    assert body.index("</RequireAll>") > body.index("</RequireNone>") > body.index("<RequireNone>")
    assert body.count("<RequireAny>") == 2 and body.count("</RequireAny>") == 2, body
    dumped = tmp_path / "dumped.conf"
    dumped.write_text(out1)
    rc, out2, err = run(gh_bin, ["-M", "-f", str(dumped)])
    assert rc == 0, err
    directives = lambda t: [ln for ln in t.splitlines()
                            if ln.strip() and not ln.lstrip().startswith("#")]
    assert directives(out2) == directives(out1)


def url(ctx, path):
    return "http://origin.test:%d%s" % (ctx.origin_port, path)


VETO_SECTION = ("<Proxy *>\n"
                "    <RequireAll>\n"
                "        Require ip 127.0.0.0/8\n"
                "        <RequireNone>\n"
                "            Require ip 127.0.0.2\n"
                "        </RequireNone>\n"
                "    </RequireAll>\n"
                "</Proxy>")


def test_requirenone_inside_requireall_vetoes_one_client(start_daemon, ctx):
    d = start_daemon(proxy_section=VETO_SECTION)
    r = ghtest.get(d.port, url(ctx, "/size/3"), source="127.0.0.1")
    assert r.status == 200 and len(r.body) == 3, r
    r = ghtest.get(d.port, url(ctx, "/size/3"), source="127.0.0.3")
    assert r.status == 200, r
    tok = uuid.uuid4().hex
    r = ghtest.get(d.port, url(ctx, "/echo?veto=" + tok), source="127.0.0.2")
    assert r.status == 403, r
    # the page names the rule that refused; the origin never saw the request
    assert b"Require ip 127.0.0.2" in r.body, r.body[:2000]
    assert ctx.origin.requests_with(tok) == []


def test_requireany_of_requirealls_per_client(start_daemon, ctx):
    section = ("<Proxy *>\n"
               "    <RequireAny>\n"
               "        <RequireAll>\n"
               "            Require ip 127.0.0.0/30\n"
               "            Require not ip 127.0.0.1\n"
               "        </RequireAll>\n"
               "        Require ip 127.0.0.5\n"
               "    </RequireAny>\n"
               "</Proxy>")
    d = start_daemon(proxy_section=section)
    for src, want in (("127.0.0.2", 200), ("127.0.0.5", 200), ("127.0.0.1", 403),
                      ("127.0.0.6", 403)):
        r = ghtest.get(d.port, url(ctx, "/size/1"), source=src)
        assert r.status == want, (src, r)


def test_reload_with_a_broken_container_keeps_the_rules(start_daemon, ctx):
    d = start_daemon(proxy_section=VETO_SECTION)
    assert ghtest.get(d.port, url(ctx, "/size/1"), source="127.0.0.2").status == 403
    conf = d.conf
    text = open(conf).read()
    broken = text.replace("        <RequireNone>\n            Require ip 127.0.0.2\n"
                          "        </RequireNone>\n",
                          "        <RequireNone>\n            Require not ip 127.0.0.2\n"
                          "        </RequireNone>\n")
    assert broken != text
    with open(conf, "w") as f:
        f.write(broken)
    try:
        d.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while "no effect in <RequireNone>" not in d.stderr_text():
            assert time.monotonic() < deadline, d.stderr_tail(2000)
            time.sleep(0.1)
        # the refused reload changed nothing: 127.0.0.2 is still vetoed, 127.0.0.1 served
        assert ghtest.get(d.port, url(ctx, "/size/1"), source="127.0.0.2").status == 403
        assert ghtest.get(d.port, url(ctx, "/size/1"), source="127.0.0.1").status == 200
    finally:
        with open(conf, "w") as f:
            f.write(text)


# ---- with authentication in force (AuthType in <Proxy *>) ----

def htpasswd(tmp_path, users):
    """An AuthUserFile of SHA-512 crypt hashes made by openssl, and an AuthGroupFile."""
    lines = []
    for user, password in users.items():
        h = subprocess.run(["openssl", "passwd", "-6", "-salt", "a1salt" + user, password],
                           capture_output=True, timeout=30, check=True).stdout.decode().strip()
        lines.append("%s:%s" % (user, h))
    p = tmp_path / "users.htpasswd"
    p.write_text("\n".join(lines) + "\n")
    g = tmp_path / "groups"
    g.write_text("hr: alice\nstaff: alice bob\n")
    return str(p), str(g)


def auth_lines(users, groups):
    return ["    AuthType Basic", "    AuthName \"Office proxy\"", "    AuthBasicProvider file",
            "    AuthUserFile %s" % users, "    AuthGroupFile %s" % groups]


def test_issue_example_is_accepted_with_authtype_in_proxy_star(gh_bin, tmp_path):
    users, groups = htpasswd(tmp_path, {"alice": "a"})
    # the group rule's section has no Auth* lines: <Proxy *>'s are in force for it
    conf = write_conf(tmp_path, ["<Proxy http://payroll.corp.example/>",
                                 "    Require group hr", "</Proxy>", "<Proxy *>"] +
                      auth_lines(users, groups) +
                      ["    <RequireAll>", "        Require ip 10.0.0.0/8",
                       "        Require valid-user", "    </RequireAll>", "</Proxy>"])
    rc, out, err = run(gh_bin, ["-t", "-f", conf])
    assert rc == 0 and "Syntax OK" in out + err, err
    # the same rule under a section that only covers another site is refused
    conf = write_conf(tmp_path, ["<Proxy http://payroll.corp.example/>",
                                 "    Require group hr", "</Proxy>",
                                 "<Proxy http://www.corp.example/>"] +
                      auth_lines(users, groups) + ["    Require valid-user", "</Proxy>"],
                      name="other.conf")
    rc, out, err = run(gh_bin, ["-t", "-f", conf])
    assert rc == 1, (out, err)
    assert ("%s:%d: Require group hr needs AuthType in this or an enclosing <Proxy *> section"
            % (conf, line_of(conf, "Require group hr"))) in err, err


def curl(port, target, *args, source="127.0.0.1"):
    p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--proxy",
                        "http://127.0.0.1:%d" % port, "--interface", source, "--max-time", "20",
                        "--noproxy", ""] + list(args) + [target],
                       capture_output=True, timeout=30, env=ghtest.clean_env())
    return int(p.stdout.decode()[-3:] or 0)


def refused_unasked(d, target, source, rule):
    """From source: 403 naming the rule, and no challenge (no password could help)."""
    r = ghtest.get(d.port, target, source=source)
    assert r.status == 403, r
    assert r.header("Proxy-Authenticate") is None
    assert rule in r.body, r.body[:2000]


def test_address_grants_without_asking_others_must_log_in(start_daemon, ctx, tmp_path):
    # RequireAny at the top: 127.0.0.2 is served with no credentials, others get 407
    users, groups = htpasswd(tmp_path, {"alice": "pw-a"})
    section = "\n".join(["<Proxy *>"] + auth_lines(users, groups) +
                        ["    Require ip 127.0.0.2", "    Require valid-user", "</Proxy>"])
    d = start_daemon(proxy_section=section)
    target = url(ctx, "/size/4")
    assert curl(d.port, target, source="127.0.0.2") == 200
    assert curl(d.port, target, source="127.0.0.1") == 407
    assert curl(d.port, target, "--proxy-user", "alice:pw-a", source="127.0.0.1") == 200
    assert curl(d.port, target, "--proxy-user", "alice:wrong", source="127.0.0.1") == 407


def test_requireall_outside_the_subnet_is_403_never_407(start_daemon, ctx, tmp_path):
    users, groups = htpasswd(tmp_path, {"alice": "pw-a", "bob": "pw-b"})
    section = "\n".join(["<Proxy *>"] + auth_lines(users, groups) +
                        ["    <RequireAll>", "        Require ip 127.0.0.0/30",
                         "        Require valid-user", "        <RequireNone>",
                         "            Require user bob", "        </RequireNone>",
                         "    </RequireAll>", "</Proxy>"])
    d = start_daemon(proxy_section=section)
    target = url(ctx, "/size/4")
    # outside 127.0.0.0/30 no password can help: refused without a challenge
    refused_unasked(d, target, "127.0.0.5", b"Require ip 127.0.0.0/30")
    assert curl(d.port, target, "--proxy-user", "alice:pw-a", source="127.0.0.5") == 403
    # inside: asked, then served; bob is vetoed by the RequireNone, with the rule named
    assert curl(d.port, target, source="127.0.0.1") == 407
    assert curl(d.port, target, "--proxy-user", "alice:pw-a", source="127.0.0.1") == 200
    r = ghtest.get(d.port, target, source="127.0.0.1", headers=[
        ("Proxy-Authorization", "Basic " + base64.b64encode(b"bob:pw-b").decode())])
    assert r.status == 403, r
    assert b"Require user bob" in r.body, r.body[:2000]


def test_explain_names_the_rule_that_needs_credentials(start_daemon, ctx, tmp_path):
    users, groups = htpasswd(tmp_path, {"alice": "a"})
    section = "\n".join(["<Proxy *>"] + auth_lines(users, groups) +
                        ["    Require ip 127.0.0.2", "    Require valid-user", "</Proxy>"])
    loc = ["<Location /gatehouse/>", "    SetHandler gatehouse-status",
           "    Require ip 127.0.0.1", "</Location>"]
    d = start_daemon(proxy_section=section, extra=loc)
    target = url(ctx, "/size/4")

    def explain(client):
        q = urllib.parse.urlencode({"url": target, "client": client})
        raw = ("GET /gatehouse/api/explain?%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
               "Connection: close\r\n\r\n" % (q, d.port)).encode()
        r, c = ghtest.request(d.port, raw, timeout=20)
        c.close()
        assert r.status == 200, (r.status, r.body)
        return json.loads(r.body)

    j = explain("127.0.0.9")
    acc = [s for s in j["steps"] if s["name"] == "<Proxy> access"][-1]
    assert acc["verdict"] == "needs credentials", j
    assert acc["detail"] == "needs credentials (Require valid-user)", acc
    line = line_of(d.conf, "Require valid-user")
    assert acc["where"].startswith("%s:%d in <Proxy *> at " % (d.conf, line)), acc
    assert j["outcome"].startswith("407 Proxy Authentication Required"), j
    # the address that grants needs nobody's credentials
    j = explain("127.0.0.2")
    acc = [s for s in j["steps"] if s["name"] == "<Proxy> access"][-1]
    assert acc["verdict"] == "allowed" and acc["detail"] == "Require ip 127.0.0.2", acc


def test_name_is_looked_up_before_asking_for_credentials(start_daemon, ctx, tmp_path):
    # the session dnsmasq: 127.0.0.3 is client3.test (confirmed both ways), 127.0.0.4 claims
    # liar.test, which resolves elsewhere (no confirmed name)
    users, groups = htpasswd(tmp_path, {"alice": "pw-a"})
    section = "\n".join(["<Proxy *>"] + auth_lines(users, groups) +
                        ["    <RequireAll>", "        Require host client3.test",
                         "        Require valid-user", "    </RequireAll>", "</Proxy>"])
    d = start_daemon(proxy_section=section)
    target = url(ctx, "/size/4")
    # no confirmed name: the host rule refuses, no password is asked for
    refused_unasked(d, target, "127.0.0.4", b"Require host client3.test")
    # the right name: now the user decides
    r = ghtest.get(d.port, target, source="127.0.0.3")
    assert r.status == 407, r
    assert r.header("Proxy-Authenticate").startswith("Basic realm=")
    assert curl(d.port, target, "--proxy-user", "alice:pw-a", source="127.0.0.3") == 200
