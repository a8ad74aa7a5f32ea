"""
test_policy_config.py - the intranet-policy directives in the config file (issue 3): `gatehouse
-t` prints policy conflicts as warnings, one per line as "FILE:LINE: message", then "Syntax OK"
with exit status 0; malformed ProxyRemote / ProxyDomain / fallback / PAC lines are errors
("FILE:LINE: ...", exit 1); a SIGHUP reload replaces the live policy.
"""

import re
import subprocess

import pytest

import ghtest


def run_t(gh_bin, path):
    p = subprocess.run([gh_bin, "-t", "-f", path], capture_output=True, timeout=20,
                       env=ghtest.clean_env())
    return p.returncode, (p.stdout + p.stderr).decode("latin-1")


def write_conf(tmp_path, lines):
    p = tmp_path / "policy.conf"
    p.write_text("\n".join(["Listen 127.0.0.1:3128", "User root"] + lines) + "\n")
    return str(p)


def line_no(path, prefix):
    with open(path) as f:
        for i, ln in enumerate(f, 1):
            if ln.startswith(prefix):
                return i
    raise AssertionError(prefix)


def warnings_of(out):
    """The lines -t printed before "Syntax OK", without the daemon's own log lines."""
    lines = out.split("\n")
    assert "Syntax OK" in lines, out
    return [ln for ln in lines[:lines.index("Syntax OK")]
            if ln.strip() and not re.match(r"^\d{4}-\d\d-\d\d ", ln)]


def test_clean_policy_has_no_warnings(gh_bin, tmp_path):
    conf = write_conf(tmp_path, [
        "ProxyDomain .corp.test", "NoProxy .corp.test 10.0.0.0/8",
        "ProxyRemote * http://fw.corp.test:3128", "ProxyBlock casino .ads.example",
        "PacProxy proxy.corp.test:3128", "PacFallback direct"])
    rc, out = run_t(gh_bin, conf)
    assert rc == 0, out
    assert warnings_of(out) == [], out


def test_noproxy_shadowed_by_proxyblock_is_a_file_line_warning(gh_bin, tmp_path):
    conf = write_conf(tmp_path, [
        "ProxyRemote * http://fw.corp.test:3128",
        "NoProxy .partner.test",
        "ProxyBlock partner.test"])
    rc, out = run_t(gh_bin, conf)
    assert rc == 0, out
    w = warnings_of(out)
    n = line_no(conf, "NoProxy")
    hits = [ln for ln in w if ln.startswith("%s:%d: " % (conf, n))]
    assert len(hits) == 1, w
    assert "NoProxy" in hits[0] and ".partner.test" in hits[0], hits
    assert "ProxyBlock" in hits[0] and "partner.test" in hits[0], hits
    assert out.rstrip().endswith("Syntax OK"), out


# (config lines, the line at fault: the warning starts with its FILE:LINE, a line the warning
# must name somewhere (conflicts between several lines may name them in the text))
@pytest.mark.parametrize("lines,at,names", [
    (["ProxyBlock casino", "ProxyBlock casino"], 4, None),
    (["ProxyBlock 10.0.0.0/8", "ProxyBlock 10.1.0.0/16"], 4, None),
    (["NoProxy .corp.test"], 3, None),
    (["ProxyRemoteFallback direct"], 3, None),
    (["ProxyBlock *", "ProxyBlock casino"], None, 3),
    (["ProxyDomain .corp.test", "ProxyRemote * http://fw:3128"], None, 3),
], ids=["duplicate-word", "subnet-inside-subnet", "noproxy-without-remote",
        "fallback-without-remote", "star-with-others", "proxydomain-not-in-noproxy"])
def test_each_conflict_warning_is_one_line_naming_file_and_line(gh_bin, tmp_path, lines, at,
                                                                names):
    conf = write_conf(tmp_path, lines)
    rc, out = run_t(gh_bin, conf)
    assert rc == 0, out
    w = warnings_of(out)
    assert w, "no warning for %r:\n%s" % (lines, out)
    for ln in w:
        assert re.search(re.escape(conf) + r":\d+", ln), \
            "warning names no FILE:LINE of the config: %r" % ln
    if at is not None:
        assert any(ln.startswith("%s:%d: " % (conf, at)) for ln in w), \
            "no warning of the form %s:%d: message in %r" % (conf, at, w)
    if names is not None:
        assert any("%s:%d" % (conf, names) in ln for ln in w), (names, w)


@pytest.mark.parametrize("line,word", [
    ("ProxyRemote * https://fw.corp.test:0", "ProxyRemote"),
    ("ProxyRemote * ftp://fw.corp.test:21", "ProxyRemote"),
    ("ProxyRemote * http://fw.corp.test:99999", "ProxyRemote"),
    ("ProxyRemote * http://u:p@fw.corp.test:3128 other:creds", "ProxyRemote"),
    ("ProxyRemote *", "ProxyRemote"),
    ('ProxyRemoteMatch "(unclosed" http://fw.corp.test:3128', "ProxyRemoteMatch"),
    ("ProxyDomain corp.test", "ProxyDomain"),
    ("ProxyRemoteFallback sometimes", "ProxyRemoteFallback"),
    ("PacFallback maybe", "PacFallback"),
    ("PacProxy proxy.corp.test", "PacProxy"),
    ("ProxyBlock 10.0.0.0/33", "ProxyBlock"),
])
def test_malformed_policy_line_is_a_file_line_error(gh_bin, tmp_path, line, word):
    conf = write_conf(tmp_path, ["# policy", line])
    rc, out = run_t(gh_bin, conf)
    assert rc == 1, out
    assert re.search(re.escape(conf) + r":4: ", out), out
    assert word in out, out
    assert "Syntax OK" not in out


def test_pacfile_that_does_not_exist_is_an_error(gh_bin, tmp_path):
    conf = write_conf(tmp_path, ["PacFile %s" % (tmp_path / "missing.pac")])
    rc, out = run_t(gh_bin, conf)
    assert rc == 1, out
    assert re.search(re.escape(conf) + r":3: ", out), out


def test_reload_replaces_the_live_policy(start_policy_daemon, pctx):
    d = start_policy_daemon()
    u = "http://www.outside.test:%d/size/3" % pctx.origin_port
    assert ghtest.get(d.port, u).status == 200
    with open(d.conf) as f:
        text = f.read()
    text = text.replace("<Proxy *>", "ProxyBlock www.outside.test blocked.test\n<Proxy *>", 1)
    with open(d.conf, "w") as f:
        f.write(text)
    ghtest.sighup_and_wait(d)
    r = ghtest.get(d.port, u)
    assert r.status == 403 and b"ProxyBlock" in r.body, r
    # the names of the new policy are resolved as well
    def refused():
        return ghtest.get(d.port, "http://alias.test:%d/x" % pctx.origin_port).status == 403
    assert ghtest.poll(refused, timeout=6, interval=0.2), "alias.test not refused after reload"
