"""
test_apache_compat.py - Apache configurations carry over (issue 9, part 3): a typical Apache
forward-proxy configuration and every forward-proxy example of Apache's mod_proxy document
(../shared/seed/mod_proxy.txt) pass `gatehouse -t` and then work live: the daemon starts with
them, proxies to the test origin, names its ServerName in Via, caches (CacheEnable disk), and
applies their access rules. The document's reverse-proxy example is refused with FILE:LINE and
the reason. Also: -D NAME for <IfDefine>, kept across reloads, ServerName taking effect on
reload, and -M (the effective configuration) read back by -t and by -M again.

The seed's snippets are copied here as fixtures (the suite does not read files outside the
repository). The document lost the closing </Proxy> tags of its snippets: the fixtures close
them (marked "closing tag added"), and test_seed_snippet_as_printed_is_refused_unclosed shows
what the unclosed text gets.

The forward-proxy example admits "internal.example.com" by name: a dnsmasq of this module
(SeedDnsmasq) gives 127.0.0.6 that name both ways (PTR and A), so Apache's double-reverse
lookup confirms it for a client connecting from 127.0.0.6.
"""

import os
import re
import shutil
import stat
import subprocess
import tempfile
import types
import uuid

import pytest

import ghtest
from conftest import _Factory
from origin import body_bytes


class SeedDnsmasq(ghtest.Dnsmasq):
    """The session's test names plus internal.example.com <-> 127.0.0.6 (A and PTR)."""
    RECORDS = ghtest.Dnsmasq.RECORDS + [("internal.example.com", "127.0.0.6")]


@pytest.fixture(scope="module")
def seeddns(workdir):
    sub = os.path.join(workdir, "seeddns")
    os.makedirs(sub, exist_ok=True)
    d = SeedDnsmasq(sub).start()
    yield d
    d.stop()


@pytest.fixture
def start_compat_daemon(gh_bin, ctx, seeddns, request):
    """start_daemon resolving through SeedDnsmasq; factory(text=..., binary=...) also takes a
    wrapper binary (for -D)."""
    v = dict(vars(ctx))
    v.update(dns_port=seeddns.port)
    sctx = types.SimpleNamespace(**v)
    made = []

    def factory(name, text, binary=None):
        f = _Factory(binary or gh_bin, sctx, request.node)
        made.append(f)
        return f(name, text=text)

    yield factory
    problems = []
    for f in made:
        problems += f.stop_all()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def run(gh_bin, args, timeout=20):
    p = subprocess.run([gh_bin] + args, capture_output=True, timeout=timeout,
                       env=ghtest.clean_env())
    return p.returncode, p.stdout.decode("latin-1"), p.stderr.decode("latin-1")


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


# -t also refuses what a start would (issue 9, part 2): started as root, a config needs a User.
# Added at the end, so that the lines the tests name keep their numbers.
AS_ROOT = "\nUser root\n"


def tok():
    return uuid.uuid4().hex


def curl_url(ctx, query):
    return "http://origin.test:%d/cache?%s" % (ctx.origin_port, query)


# What the test environment needs and an office's Apache file would not have: the port, the
# test DNS server, and User root (the suite runs as root). Prepended to every live config.
PLUMBING = ("# test plumbing\nListen 127.0.0.1:{port}\nDNSServer 127.0.0.1:{dns_port}\n"
            "User root\nLogLevel info\nProxyTimeout 5\nWorkers 2\n")

# The configuration of the first test: a typical Apache forward proxy, with its
# LogFormat and CustomLog lines (the log in the test's work directory rather than logs/).
TYPICAL = """\
ServerName proxy.corp.example
<IfModule mod_proxy.c>
ProxyRequests On
ProxyVia On
<Proxy *>
Require ip 127.0.0.1 192.168.0.0/16
</Proxy>
</IfModule>
CacheEnable disk /
CacheRoot %(root)s
CacheDirLevels 2
CacheDirLength 1
LogFormat "%%h %%l %%u %%t \\"%%r\\" %%>s %%b \\"%%{Referer}i\\" \\"%%{User-Agent}i\\"" combined
CustomLog %(log)s combined
"""

# mod_proxy.txt, "Forward Proxy"
SEED_FORWARD = """\
ProxyRequests On
ProxyVia On

<Proxy *>
Order deny,allow
Deny from all
Allow from internal.example.com
</Proxy>
"""  # </Proxy>: closing tag added

# mod_proxy.txt, "Controlling access to your proxy"
SEED_ACCESS = """\
<Proxy *>
Order Deny,Allow
Deny from all
Allow from 192.168.0
</Proxy>
"""  # </Proxy>: closing tag added

# mod_proxy.txt, "Reverse Proxy"
SEED_REVERSE = """\
ProxyRequests Off

<Proxy *>
Order deny,allow
Allow from all
</Proxy>

ProxyPass /foo http://foo.example.com/bar
ProxyPassReverse /foo http://foo.example.com/bar
"""  # </Proxy>: closing tag added


def typical_text(ctx):
    root = os.path.join(ctx.workdir, "compat-cache-" + tok()[:8])
    return TYPICAL % {"root": root, "log": root + "-access.log"}


# ---------------------------------------------------------------- -t

def test_typical_apache_config_passes_check_with_notices(gh_bin, ctx, tmp_path):
    conf = write(str(tmp_path / "apache.conf"), typical_text(ctx) + AS_ROOT)
    rc, out, err = run(gh_bin, ["-t", "-f", conf])
    assert rc == 0, err
    assert "Syntax OK" in err
    # what is accepted without its Apache effect is said, with its place
    assert ("%s:9: CacheEnable disk: Gatehouse stores every cached object in its LMDB store "
            "(CacheRoot); treated as CacheEnable lmdb" % conf) in err, err
    assert "%s:11: CacheDirLevels: accepted for Apache compatibility, no effect" % conf in err
    assert "%s:12: CacheDirLength: accepted for Apache compatibility, no effect" % conf in err


@pytest.mark.parametrize("name,text", [("forward", SEED_FORWARD), ("access", SEED_ACCESS)])
def test_seed_forward_examples_pass_check(gh_bin, tmp_path, name, text):
    conf = write(str(tmp_path / ("seed-%s.conf" % name)), text + AS_ROOT)
    rc, out, err = run(gh_bin, ["-t", "-f", conf])
    assert rc == 0, err
    assert err.strip().endswith("Syntax OK"), err


def test_seed_reverse_example_refused_with_file_line_and_reason(gh_bin, tmp_path):
    conf = write(str(tmp_path / "seed-reverse.conf"), SEED_REVERSE)
    rc, out, err = run(gh_bin, ["-t", "-f", conf])
    assert rc == 1
    assert err.strip() == ("%s:8: ProxyPass: Gatehouse is a forward proxy only; reverse "
                           "proxying is not supported" % conf), err


def test_seed_reverse_example_keeps_daemon_from_starting(gh_bin, ctx, tmp_path):
    port = ghtest.free_port()
    conf = write(str(tmp_path / "seed-reverse-live.conf"),
                 PLUMBING.format(port=port, dns_port=ctx.dns_port) + SEED_REVERSE)
    rc, out, err = run(gh_bin, ["-f", conf])
    assert rc == 1
    assert "%s:15: ProxyPass: Gatehouse is a forward proxy only" % conf in err, err
    assert not ghtest.can_connect("127.0.0.1", port)


def test_seed_snippet_as_printed_is_refused_unclosed(gh_bin, tmp_path):
    # the document as printed, without </Proxy>
    conf = write(str(tmp_path / "seed-unclosed.conf"), SEED_FORWARD.replace("</Proxy>\n", ""))
    rc, out, err = run(gh_bin, ["-t", "-f", conf])
    assert rc == 1
    assert err.strip() == "%s:4: <Proxy> section not closed" % conf, err


def test_carried_over_directives_refused_say_why(gh_bin, tmp_path):
    cases = [("LoadModule rewrite_module modules/mod_rewrite.so",
              "2: LoadModule rewrite_module: Gatehouse has no such module"),
             ("<IfModule mod_proxy.c>\nSSLVerifyClient require\n</IfModule>",
              "3: SSLVerifyClient: not supported (Gatehouse's TLS directives are"),
             ("<VirtualHost *:3128>\n</VirtualHost>",
              "2: unknown section \"<VirtualHost>\": Gatehouse is one server")]
    for i, (text, want) in enumerate(cases):
        conf = write(str(tmp_path / ("refused-%d.conf" % i)), "Workers 2\n" + text + "\n")
        rc, out, err = run(gh_bin, ["-t", "-f", conf])
        assert rc == 1 and "%s:%s" % (conf, want) in err, err


def test_conditional_section_closed_by_wrong_tag_names_file_and_line(gh_bin, tmp_path):
    conf = write(str(tmp_path / "wrong.conf"),
                 "<IfModule mod_proxy.c>\n<Proxy *>\nRequire all granted\n</IfModule>\n")
    rc, out, err = run(gh_bin, ["-t", "-f", conf])
    assert rc == 1
    assert err.strip() == "%s:4: expected </Proxy> but saw </IfModule>" % conf, err
    conf = write(str(tmp_path / "open.conf"), "Workers 2\n<IfDefine CACHE>\nWorkers 3\n")
    rc, out, err = run(gh_bin, ["-t", "-f", conf])
    assert rc == 1
    assert err.strip() == "%s:2: <IfDefine> section not closed" % conf, err


# ---------------------------------------------------------------- live

def test_typical_apache_config_live_via_and_cache(start_compat_daemon, ctx):
    text = typical_text(ctx)
    log = re.search(r"^CustomLog (\S+) combined$", text, re.M).group(1)
    # (the factory fills {port} placeholders: the format's own braces are doubled)
    d = start_compat_daemon("typical", PLUMBING + text.replace("{", "{{").replace("}", "}}"))
    # the notices are logged at start
    assert "CacheEnable disk: Gatehouse stores every cached object" in d.stderr_text()
    t = tok()
    u = curl_url(ctx, "t=%s&cc=max-age=300&size=3000" % t)
    r1 = ghtest.get(d.port, u)
    assert r1.status == 200 and r1.body == body_bytes(3000), r1
    assert r1.header("Via") == "1.1 proxy.corp.example", r1
    assert "stored" in r1.header("Cache-Status"), r1
    r2 = ghtest.get(d.port, u)
    assert r2.status == 200 and r2.body == body_bytes(3000), r2
    assert r2.header("Cache-Status").startswith("Gatehouse; hit"), r2
    assert r2.header("Via") == "1.1 proxy.corp.example", r2
    assert len(ctx.origin.requests_with(t)) == 1
    # the origin saw the ServerName in Via too
    rec = ctx.origin.requests_with(t)[0]
    vias = [v for k, v in rec["headers"] if k.lower() == "via"]
    assert vias == ["1.1 proxy.corp.example"], rec
    # the proxy's own pages carry it
    r3 = ghtest.get(d.port, "http://nosuch.test:%d/x" % ctx.origin_port)
    assert r3.status == 502 and b"at proxy.corp.example</address>" in r3.body, r3
    # its LogFormat/CustomLog lines write Apache's combined format
    lines = ghtest.poll_lines(log, lambda ln: t in ln, count=2)
    assert len(lines) == 2, lines
    for ln in lines:
        m = ghtest.APACHE_COMBINED_RE.match(ln)
        assert m, ln
        assert m.group(1) == "127.0.0.1" and m.group(5) == "GET %s HTTP/1.1" % u, ln
        assert m.group(6) == "200" and m.group(7) == "3000", ln


def test_seed_forward_example_live_admits_internal_example_com_only(start_compat_daemon, ctx):
    d = start_compat_daemon("seedfwd", PLUMBING + SEED_FORWARD)
    u = "http://origin.test:%d/size/7" % ctx.origin_port
    r = ghtest.get(d.port, u, source="127.0.0.6")  # PTR internal.example.com, confirmed
    assert r.status == 200 and r.header("Via") is not None, r
    assert r.header("Via").startswith("1.1 "), r
    r = ghtest.get(d.port, u, source="127.0.0.1")  # no name: "Deny from all"
    assert r.status == 403, r


def test_seed_access_example_live_denies_outside_192_168_0(start_compat_daemon, ctx):
    d = start_compat_daemon("seedacl", PLUMBING + SEED_ACCESS)
    # Without the section loopback would be served: the 403 is the example's rule at work.
    r = ghtest.get(d.port, "http://origin.test:%d/size/7" % ctx.origin_port)
    assert r.status == 403, r
    # the same file with the office's network swapped for loopback serves loopback
    d2 = start_compat_daemon("seedacl2", PLUMBING + SEED_ACCESS.replace("192.168.0", "127.0.0"))
    r = ghtest.get(d2.port, "http://origin.test:%d/size/7" % ctx.origin_port)
    assert r.status == 200, r


def _wrapper(tmp_path, gh_bin, *args):
    """An executable that runs gatehouse with extra options (exec: same pid)."""
    path = str(tmp_path / ("gh-%s.sh" % tok()[:6]))
    write(path, "#!/bin/sh\nexec %s %s \"$@\"\n" % (gh_bin, " ".join(args)))
    os.chmod(path, stat.S_IRWXU)
    return path


DEFINED = """\
ProxyVia On
<IfDefine CORP>
ServerName %s.corp.example
</IfDefine>
<IfDefine !CORP>
ServerName not-defined.example
</IfDefine>
<Proxy *>
Require ip 127.0.0.1
</Proxy>
"""


def test_ifdefine_follows_dash_d_and_reload_keeps_defines_and_servername(
        start_compat_daemon, gh_bin, ctx, tmp_path):
    wrapper = _wrapper(tmp_path, gh_bin, "-D", "CORP")
    d = start_compat_daemon("defined", PLUMBING + DEFINED % "first", binary=wrapper)
    u = "http://origin.test:%d/size/3" % ctx.origin_port
    assert ghtest.get(d.port, u).header("Via") == "1.1 first.corp.example"
    # a reload reads the file again with the same -D, and the new ServerName applies
    with open(d.conf) as f:
        text = f.read()
    write(d.conf, text.replace("first.corp.example", "second.corp.example"))
    ghtest.sighup_and_wait(d)
    assert ghtest.get(d.port, u).header("Via") == "1.1 second.corp.example"
    # without -D the other branch applies
    d2 = start_compat_daemon("undefined", PLUMBING + DEFINED % "first")
    assert ghtest.get(d2.port, u).header("Via") == "1.1 not-defined.example"


# ---------------------------------------------------------------- -M

def _directives(text):
    return [l for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]


def test_dump_effective_config_reads_back(gh_bin, ctx, tmp_path):
    os.makedirs(str(tmp_path / "conf.d"))
    write(str(tmp_path / "conf.d" / "10-local.conf"), "ProxyTimeout 20\nProxyBlock casino\n")
    main = write(str(tmp_path / "main.conf"),
                 typical_text(ctx) + "<IfDefine CORP>\nProxyDomain .corp.example\n"
                 "</IfDefine>\nInclude conf.d/*.conf\nAccessLog logs/access.log\n" + AS_ROOT)
    rc, out1, err = run(gh_bin, ["-M", "-D", "CORP", "-f", main])
    assert rc == 0, err
    # Includes expanded with their place; sections resolved; defaults filled in
    assert "# %s/conf.d/10-local.conf:1\nProxyTimeout 20\n" % tmp_path in out1, out1
    assert "\nProxyDomain .corp.example\n" in out1
    assert "<IfModule" not in out1 and "<IfDefine" not in out1
    assert "\nAccessLog %s/logs/access.log\n" % tmp_path in out1
    assert "\n# MaxConnections: not set (sized from the file limit)\n" in out1, out1
    assert "\nCacheSize 1G\n" in out1
    assert "\n<Proxy *>\n    # %s:6\n    Require ip 127.0.0.1 192.168.0.0/16\n</Proxy>\n" \
        % main in out1, out1
    # fed back to -t (from another directory): Syntax OK; its -M has the same directives
    other = tmp_path / "elsewhere"
    os.makedirs(str(other))
    dumped = write(str(other / "dumped.conf"), out1)
    rc, _, err = run(gh_bin, ["-t", "-f", dumped])
    assert rc == 0 and "Syntax OK" in err, err
    rc, out2, err = run(gh_bin, ["-M", "-f", dumped])
    assert rc == 0, err
    assert _directives(out2) == _directives(out1)
    # -M of a bad file prints nothing and says where
    bad = write(str(tmp_path / "bad.conf"), "ProxyVia On\n<IfModule mod_proxy.c>\n")
    rc, out, err = run(gh_bin, ["-M", "-f", bad])
    assert rc == 1 and out == "" and "%s:2: <IfModule> section not closed" % bad in err


def test_dump_of_builtin_config_checks(gh_bin, tmp_path):
    rc, out, err = run(gh_bin, ["-M"])
    assert rc == 0, err
    assert "# (built-in):" in out and "\nUser nobody\n" in out
    # where its User (nobody as root) can read it again, as -t checks (issue 9, part 2)
    top = tempfile.mkdtemp(prefix="gh-compat-")
    try:
        os.chmod(top, 0o755)
        conf = write(os.path.join(top, "builtin-dumped.conf"), out)
        rc, _, err = run(gh_bin, ["-t", "-f", conf])
    finally:
        shutil.rmtree(top, ignore_errors=True)
    assert rc == 0 and "Syntax OK" in err, err


def test_bad_dash_d_is_a_usage_error(gh_bin):
    rc, out, err = run(gh_bin, ["-t", "-D", "!X"])
    assert rc == 2 and "-D \"!X\"" in err, err
