"""
test_auth_fail2ban.py - the packaged fail2ban filter and jail (packaging/fail2ban/) against a
real Gatehouse error log (issue 14): a daemon with proxy authentication gets real failed
logins from some loopback addresses and good ones from another; `fail2ban-regex ERRORLOG
FILTER` must find each failing address exactly as often as it failed (and the limiter's
"blocked" line), never the address of good logins, and never an address a client wrote into
its user name. The jail, shipped disabled, must pass `fail2ban-client -t` once enabled by a
.local file, as its comment tells the admin, and stay off without it. The Debian package
installs both (packaging/debian/gatehouse.install).

fail2ban reads a copy of the machine's /etc/fail2ban under tmp_path (its common.conf and
defaults), with the machine's own jails left out; nothing in /etc changes.
"""

import os
import re
import shutil
import subprocess

import pytest

import authfix
import ghtest

PKG = os.path.join(ghtest.REPO, "packaging")
FILTER = os.path.join(PKG, "fail2ban", "filter.d", "gatehouse-auth.conf")
JAIL = os.path.join(PKG, "fail2ban", "jail.d", "gatehouse-auth.conf")
F2B_ETC = "/etc/fail2ban"


def tool(name):
    path = shutil.which(name)
    if not path:
        pytest.fail("%s is missing: scripts/test-deps.sh installs fail2ban" % name,
                    pytrace=False)
    return path


def f2b_dir(tmp_path):
    """A fail2ban configuration directory: the machine's, without its jails, with ours."""
    d = tmp_path / "fail2ban"
    if not d.exists():
        assert os.path.isfile(os.path.join(F2B_ETC, "filter.d", "common.conf")), \
            "fail2ban's common.conf is missing"
        shutil.copytree(F2B_ETC, d, symlinks=True)
        for f in (d / "jail.d").iterdir():
            f.unlink()
        shutil.copy(FILTER, d / "filter.d")
        shutil.copy(JAIL, d / "jail.d")
    return d


def regex_ips(tmp_path, log):
    """fail2ban-regex -o ip over log with the shipped filter: the addresses it found, one per
    matching line."""
    flt = f2b_dir(tmp_path) / "filter.d" / "gatehouse-auth.conf"
    p = subprocess.run([tool("fail2ban-regex"), "-o", "ip", log, str(flt)], capture_output=True,
                       text=True, timeout=120, stdin=subprocess.DEVNULL, env=ghtest.clean_env())
    assert p.returncode == 0, p.stdout + p.stderr
    return [ln.strip() for ln in p.stdout.splitlines() if ln.strip()]


def fail(d, ctx, source, user="alice", password="not-the-password"):
    r = ghtest.get(d.port, "http://origin.test:%d/size/10" % ctx.origin_port,
                   headers=[("Proxy-Authorization", authfix.basic(user, password))],
                   source=source)
    return r.status


def test_filter_finds_every_failing_address_in_a_real_error_log(start_daemon, ctx, tmp_path):
    users = authfix.write_htpasswd(tmp_path / "users.htpasswd", {"alice": "Wonderland-42"})
    errlog = str(tmp_path / "error.log")
    d = start_daemon(proxy_section=authfix.section(users),
                     extra=["ErrorLog %s" % errlog, "AuthFailureLimit 5 60"])
    u = "http://origin.test:%d/size/10" % ctx.origin_port
    # 127.0.0.23: four wrong passwords (below the limit: four verifications, four lines)
    assert [fail(d, ctx, "127.0.0.23") for _ in range(4)] == [407] * 4
    # 127.0.0.24: an unknown user, twice
    assert [fail(d, ctx, "127.0.0.24", user="nobody-here") for _ in range(2)] == [407] * 2
    # 127.0.0.25: eight tries; the fifth failure empties the bucket (answered 429), the
    # three after it are blocked without a password check
    got = [fail(d, ctx, "127.0.0.25") for _ in range(8)]
    assert got == [407] * 4 + [429] * 4, got
    # 127.0.0.26: a user name that pretends another address failed
    liar = 'x" from 192.0.2.9: wrong password'
    assert fail(d, ctx, "127.0.0.26", user=liar) == 407
    # 127.0.0.27: good logins, a challenge without credentials, and an address the rules let
    # in without any: none of them is a failure
    good = authfix.basic("alice", "Wonderland-42")
    for _ in range(3):
        assert ghtest.get(d.port, u, headers=[("Proxy-Authorization", good)],
                          source="127.0.0.27").status == 200
    assert ghtest.get(d.port, u, source="127.0.0.27").status == 407

    # the lines are in the file (written before the responses went out, or soon after)
    def lines():
        with open(errlog, errors="replace") as f:
            return [ln for ln in f if "proxy authentication" in ln]
    assert ghtest.poll(lambda: len(lines()) >= 4 + 2 + 5 + 1 + 1, timeout=10), lines()
    text = open(errlog, errors="replace").read()
    assert "not-the-password" not in text and "Wonderland-42" not in text

    ips = regex_ips(tmp_path, errlog)
    count = {ip: ips.count(ip) for ip in set(ips)}
    assert count.get("127.0.0.23") == 4, count
    assert count.get("127.0.0.24") == 2, count
    # five failures, and the limiter's "blocked" line(s): at least one, at most one per 429
    assert 6 <= count.get("127.0.0.25", 0) <= 8, count
    assert count.get("127.0.0.26") == 1, count
    assert "192.0.2.9" not in count, count
    assert "127.0.0.27" not in count, count
    assert set(count) == {"127.0.0.23", "127.0.0.24", "127.0.0.25", "127.0.0.26"}, count


def test_filter_matches_the_documented_lines_and_nothing_else(tmp_path):
    # The forms pauth.h documents, through syslog too; other notices and info lines are not
    # failures. (The real daemon's lines are checked above; this pins the accepted forms.)
    log = tmp_path / "sample.log"
    log.write_text("\n".join([
        '2026-12-05 10:00:01.234 [notice] proxy authentication failed for user "alice" '
        'from 10.0.0.5: wrong password',
        '2026-12-05 10:00:02.234 [notice] proxy authentication blocked for 10.0.0.5: '
        '10 failures, retry in 6 s',
        '2026-12-05 10:00:03.234 [notice] proxy authentication failed for user "bob" '
        'from 2001:db8::7: wrong password',
        'Dec  5 10:00:04 gw gatehouse[812]: [notice] proxy authentication failed for user '
        '"carol" from 10.0.0.8: wrong password',
        '2026-12-05 10:00:05.234 [notice] configuration reloaded',
        '2026-12-05 10:00:06.234 [info] [id 0123456789AB] 10.0.0.9: 407 http://x/: proxy '
        'authentication required',
        '2026-12-05 10:00:07.234 [notice] listening on 10.0.0.10:3128',
    ]) + "\n")
    assert regex_ips(tmp_path, str(log)) == ["10.0.0.5", "10.0.0.5", "2001:db8::7", "10.0.0.8"]


def test_jail_is_shipped_disabled_and_enabled_by_a_local_file(tmp_path):
    d = f2b_dir(tmp_path)
    log = tmp_path / "error.log"
    log.write_text("")

    def dump():
        p = subprocess.run([tool("fail2ban-client"), "-c", str(d), "-d"], capture_output=True,
                           text=True, timeout=120, stdin=subprocess.DEVNULL,
                           env=ghtest.clean_env())
        assert p.returncode == 0, p.stdout + p.stderr
        return p.stdout

    assert "'gatehouse-auth'" not in dump()          # shipped: off
    (d / "jail.d" / "gatehouse-auth.local").write_text(
        "[gatehouse-auth]\nenabled = true\nlogpath = %s\n" % log)
    p = subprocess.run([tool("fail2ban-client"), "-c", str(d), "-t"], capture_output=True,
                       text=True, timeout=120, stdin=subprocess.DEVNULL, env=ghtest.clean_env())
    assert p.returncode == 0 and "OK" in p.stdout + p.stderr, p.stdout + p.stderr
    out = dump()
    assert "['add', 'gatehouse-auth'" in out, out
    assert re.search(r"'gatehouse-auth', 'maxretry', 10\]", out), out


def test_debian_package_installs_filter_and_jail():
    with open(os.path.join(PKG, "debian", "gatehouse.install")) as f:
        lines = [ln.split() for ln in f if ln.strip() and not ln.startswith("#")]
    want = {("packaging/fail2ban/filter.d/gatehouse-auth.conf", "etc/fail2ban/filter.d/"),
            ("packaging/fail2ban/jail.d/gatehouse-auth.conf", "etc/fail2ban/jail.d/")}
    assert want <= {tuple(ln) for ln in lines}, lines
    for src, _ in want:
        assert os.path.isfile(os.path.join(ghtest.REPO, src)), src
