"""
test_ftp_config.py - the FTP gateway's configuration (issue 12): the FTP* directives
(FTPAnonymousPassword, FTPActiveFallback, FTPDefaultExpire, FTPListingExpire,
FTPMaxListingSize) pass `gatehouse -t`, show in -M (given or default) and are refused with
FILE:LINE and what was expected; Apache's mod_proxy_ftp directives are accepted with a notice
when their value asks for what Gatehouse does, and refused naming the Gatehouse way when not;
CacheEnable/CacheDisable take ftp:// prefixes.

The status page's explain for ftp:// URLs: a direct route is "direct (FTP gateway)" and the
cache step follows CacheEnable/CacheDisable ftp:// prefixes; the URL shown (and the cache key)
never holds the login's password.
"""

import json
import os
import re
import subprocess
import time
import urllib.parse
import uuid

import pytest

import ghtest
from ftp_scripted import ScriptedFTP

AS_ROOT = "\nUser root\n"  # -t refuses a root start without User (the suite runs as root)


def run(gh_bin, args, timeout=20):
    p = subprocess.run([gh_bin] + args, capture_output=True, timeout=timeout,
                       env=ghtest.clean_env())
    return p.returncode, p.stdout.decode("latin-1"), p.stderr.decode("latin-1")


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


GOOD = """\
Listen 127.0.0.1:3128
FTPAnonymousPassword proxy@corp.example
FTPActiveFallback On
FTPDefaultExpire 0
FTPListingExpire 60
FTPMaxListingSize 64K
ProxyFtpListOnWildcard Off
ProxyFtpEscapeWildcards On
ProxyFtpDirCharset UTF-8
CacheRoot /var/cache/gatehouse-test-unused
CacheEnable lmdb ftp://
CacheEnable lmdb ftp://mirror.example/pub/
CacheDisable ftp://mirror.example/pub/private/
"""


def test_ftp_directives_pass_check_with_notices_for_apache_ones(gh_bin, tmp_path):
    conf = write(str(tmp_path / "ftp.conf"), GOOD + AS_ROOT)
    rc, out, err = run(gh_bin, ["-t", "-f", conf])
    assert rc == 0, err
    assert err.strip().endswith("Syntax OK"), err
    assert ("%s:7: ProxyFtpListOnWildcard Off: accepted for Apache compatibility, no effect: "
            "Gatehouse never lists on a wildcard" % conf) in err, err
    assert ("%s:8: ProxyFtpEscapeWildcards On: accepted for Apache compatibility, no effect"
            % conf) in err, err
    assert ("%s:9: ProxyFtpDirCharset: accepted for Apache compatibility, no effect: FTP "
            "listings are always UTF-8" % conf) in err, err
    # the FTP* directives themselves say nothing
    assert "FTPAnonymousPassword" not in err and "FTPMaxListingSize" not in err, err


def _dump(gh_bin, conf):
    rc, out, err = run(gh_bin, ["-M", "-f", conf])
    assert rc == 0, err
    return out


def test_dump_shows_given_values_and_reads_back(gh_bin, tmp_path):
    conf = write(str(tmp_path / "ftp.conf"), GOOD + AS_ROOT)
    out = _dump(gh_bin, conf)
    for line in ("FTPAnonymousPassword proxy@corp.example", "FTPActiveFallback On",
                 "FTPDefaultExpire 0", "FTPListingExpire 60", "FTPMaxListingSize 64K",
                 "CacheEnable lmdb ftp://", "CacheEnable lmdb ftp://mirror.example/pub/",
                 "CacheDisable ftp://mirror.example/pub/private/"):
        assert re.search("^%s$" % re.escape(line), out, re.M), (line, out)
    # not given twice: a given directive has no default line
    assert len(re.findall(r"^FTPAnonymousPassword ", out, re.M)) == 1, out
    again = write(str(tmp_path / "again.conf"), out)
    rc, _, err = run(gh_bin, ["-t", "-f", again])
    assert rc == 0, err


def test_dump_shows_the_defaults(gh_bin, tmp_path):
    conf = write(str(tmp_path / "plain.conf"), "Listen 127.0.0.1:3128\n" + AS_ROOT)
    out = _dump(gh_bin, conf)
    for line in ("FTPAnonymousPassword gatehouse@", "FTPActiveFallback Off",
                 "FTPDefaultExpire 3600", "FTPListingExpire 300", "FTPMaxListingSize 16M"):
        assert re.search("^%s$" % re.escape(line), out, re.M), (line, out)
    # the Apache directives have no default to print
    assert "ProxyFtp" not in out, out


BAD = [
    ('FTPAnonymousPassword "two words"', 'FTPAnonymousPassword: expected one word of printable '
     'ASCII without spaces, 1 to 128 bytes (an e-mail address such as gatehouse@), got '
     '"two words"'),
    ('FTPAnonymousPassword ""', 'FTPAnonymousPassword: expected one word of printable ASCII'),
    ('FTPAnonymousPassword ' + "a" * 129, 'FTPAnonymousPassword: expected one word'),
    ('FTPAnonymousPassword "caf\u00e9@x"', 'FTPAnonymousPassword: expected one word'),
    ('FTPAnonymousPassword a b', 'FTPAnonymousPassword: expected 1 argument, got 2'),
    ("FTPActiveFallback maybe", 'FTPActiveFallback: expected On or Off, got "maybe"'),
    ("FTPDefaultExpire -1", 'FTPDefaultExpire: expected seconds from 0 to 315360000, got "-1"'),
    ("FTPDefaultExpire 1h", 'FTPDefaultExpire: expected seconds from 0 to 315360000, got "1h"'),
    ("FTPListingExpire 315360001", "FTPListingExpire: expected seconds from 0 to 315360000"),
    ("FTPMaxListingSize 1K", 'FTPMaxListingSize: expected a size from 4K to 1G (K, M, G '
     'suffixes), got "1K"'),
    ("FTPMaxListingSize 2G", 'FTPMaxListingSize: expected a size from 4K to 1G'),
    ("FTPMaxListingSize lots", 'FTPMaxListingSize: expected a size from 4K to 1G'),
    ("FTPMaxListingSize", "FTPMaxListingSize: expected 1 argument, got 0"),
    ("ProxyFtpListOnWildcard On", 'ProxyFtpListOnWildcard On: Gatehouse does not turn a '
     'wildcard into a listing ("*" in an ftp:// path is part of a file name); ask for the '
     'directory (a trailing "/" or ";type=d") and give Off or remove the line'),
    ("ProxyFtpEscapeWildcards Off", "ProxyFtpEscapeWildcards Off: Gatehouse never passes a "
     "wildcard to the FTP server as a pattern"),
    ("ProxyFtpEscapeWildcards perhaps", 'ProxyFtpEscapeWildcards: expected On or Off, got '
     '"perhaps"'),
    ("ProxyFtpDirCharset ISO-8859-1", "ProxyFtpDirCharset ISO-8859-1: Gatehouse's FTP listings "
     "are UTF-8 pages"),
    ("CacheEnable lmdb ftp//mirror.example/", 'CacheEnable: expected "/" or a URL prefix'),
]


@pytest.mark.parametrize("line,want", BAD, ids=[b[0][:40] for b in BAD])
def test_bad_values_are_refused_with_file_and_line(gh_bin, tmp_path, line, want):
    conf = write(str(tmp_path / "bad.conf"), "Listen 127.0.0.1:3128\nWorkers 2\n%s\n" % line
                 + AS_ROOT)
    rc, out, err = run(gh_bin, ["-t", "-f", conf])
    assert rc == 1, err
    assert err.strip().startswith("%s:3: %s" % (conf, want)), err


def test_ftp_directives_belong_to_the_server_config(gh_bin, tmp_path):
    conf = write(str(tmp_path / "sec.conf"), "Listen 127.0.0.1:3128\n<Proxy *>\n"
                 "FTPAnonymousPassword x@y\n</Proxy>\n" + AS_ROOT)
    rc, out, err = run(gh_bin, ["-t", "-f", conf])
    assert rc == 1
    assert err.strip() == "%s:3: FTPAnonymousPassword not allowed in <Proxy>" % conf, err


def test_bad_ftp_directive_keeps_the_daemon_from_starting(gh_bin, ctx, tmp_path):
    port = ghtest.free_port()
    conf = write(str(tmp_path / "live-bad.conf"), ghtest.conf_text(ctx, port) +
                 "FTPMaxListingSize 0\n")
    rc, out, err = run(gh_bin, ["-f", conf])
    assert rc == 1
    assert re.search(r"%s:\d+: FTPMaxListingSize: expected a size" % re.escape(conf), err), err
    assert not ghtest.can_connect("127.0.0.1", port)


# ---------------------------------------------------------------- explain (status page)

EXPLAIN_CONF = """# written by tests/integration/test_ftp_config.py
Listen 127.0.0.1:{port}
DNSServer 127.0.0.1:{dns_port}
ProxyTimeout 3
Workers 2
LogLevel info
User root
MaxConnectionsPerClient 0
CacheRoot @ROOT@
CacheSize 64M
CacheEnable lmdb ftp://
CacheDisable FTP://WWW.Outside.Test:21/private/
ProxyBlock casino
ProxyRemote ftp://www.corp.test/ http://127.0.0.1:@DEAD@
<Proxy *>
    Require ip 127.0.0.1 ::1
</Proxy>
<Location /gatehouse/>
    SetHandler gatehouse-status
    Require ip 127.0.0.1 ::1
</Location>
"""


@pytest.fixture
def xenv(start_policy_daemon, pctx):
    root = os.path.join(pctx.workdir, "ftpx-" + uuid.uuid4().hex[:8])
    text = (EXPLAIN_CONF.replace("@ROOT@", root)
            .replace("@DEAD@", str(ghtest.refused_port())))
    d = start_policy_daemon("ftpexplain", text=text)
    d.tpl = text
    return d


def _where(d, needle):
    for i, ln in enumerate(d.tpl.splitlines(), 1):
        if needle in ln:
            return "%s:%d" % (d.conf, i)
    raise AssertionError(needle)


def _explain(d, url, method=None):
    """api/explain's JSON walk (as test_explain.py), waiting while the ProxyBlock names' first
    answers are pending."""
    q = {"url": url}
    if method is not None:
        q["method"] = method
    raw = ("GET /gatehouse/api/explain?%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
           "Connection: close\r\n\r\n" % (urllib.parse.urlencode(q), d.port)).encode()
    for _ in range(50):
        r, c = ghtest.request(d.port, raw, timeout=20)
        c.close()
        assert r.status == 200, (r.status, r.body)
        j = json.loads(r.body)
        if not any(s["verdict"] == "not ready" for s in j["steps"]):
            return j
        time.sleep(0.2)
    raise AssertionError("the policy never became ready: %s" % j)


def _step(j, name):
    s = [s for s in j["steps"] if s["name"] == name]
    assert s, "no step %r in %s" % (name, [x["name"] for x in j["steps"]])
    return s[-1]


def test_explain_direct_ftp_goes_to_the_gateway_and_is_cacheable(xenv):
    j = _explain(xenv, "ftp://www.outside.test/pub/file.iso")
    assert _step(j, "ProxyRemote")["verdict"] == "direct (FTP gateway)", j
    assert j["outcome"] == "fetched by the FTP gateway from www.outside.test port 21", j
    s = _step(j, "CacheEnable")
    assert s["verdict"] == "enabled" and s["detail"] == "CacheEnable lmdb ftp://", s
    assert s["where"] == _where(xenv, "CacheEnable lmdb ftp://"), s
    k = _step(j, "cache key")
    assert k["verdict"] == "not stored" and k["detail"] == "ftp://www.outside.test/pub/file.iso"
    assert "501" not in json.dumps(j)


def test_explain_ftp_cache_disable_and_parent(xenv):
    j = _explain(xenv, "ftp://www.outside.test/private/x")
    s = _step(j, "CacheEnable")
    # the prefix is normalised as keys are (scheme and host case, the default port 21)
    assert s["verdict"] == "disabled", s
    assert s["detail"] == "CacheDisable ftp://www.outside.test/private/", s
    assert s["where"] == _where(xenv, "CacheDisable FTP://WWW.Outside.Test:21/private/"), s
    # a ProxyRemote for an ftp prefix still sends it to the parent, not to the gateway
    j = _explain(xenv, "ftp://www.corp.test/pub/f")
    assert _step(j, "ProxyRemote")["verdict"] == "parents", j
    assert "FTP gateway" not in j["outcome"], j
    # and ProxyBlock still applies to ftp:// URLs
    j = _explain(xenv, "ftp://www.casino-royale.outside.test/f")
    assert j["outcome"].startswith("403"), j


def test_explain_never_shows_the_ftp_password(xenv):
    j = _explain(xenv, "ftp://alice:Sup3rS3cret@www.outside.test:2121/home/alice/f.txt")
    text = json.dumps(j)
    assert "Sup3rS3cret" not in text, text
    assert j["url"] == "ftp://alice@www.outside.test:2121/home/alice/f.txt", j
    assert _step(j, "cache key")["detail"] == "ftp://alice@www.outside.test:2121/home/alice/f.txt"
    assert j["outcome"] == "fetched by the FTP gateway from www.outside.test port 2121", j


# ---------------------------------------------------------------- live, through the gateway

# ftp_scripted.py (Debian's python3-pyftpdlib) without faults on a free loopback port:
# anonymous read of ROOT; its log (RECORD) has every login with the password the server got
# ("LOGIN user password") and every file sent whole ("SENT /path"), so that the tests see what
# the gateway said and how often it fetched.
class Ftpd:
    def __init__(self, workdir):
        self.root = os.path.join(workdir, "ftpcfg-" + uuid.uuid4().hex[:8])
        self.record = self.root + ".record"
        self.files = {}
        for path in ("pub/a.bin", "pub/private/b.bin", "other/c.bin"):
            full = os.path.join(self.root, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            self.files[path] = os.urandom(20000)
            with open(full, "wb") as f:
                f.write(self.files[path])
            # a year old: MDTM makes the copy heuristically fresh (a day, CacheMaxExpire)
            t = time.time() - 365 * 86400
            os.utime(full, (t, t))
        self.server = ScriptedFTP(self.root, self.record)
        self.port = None

    def start(self):
        self.server.start()
        self.port = self.server.port
        return self

    def stop(self):
        self.server.stop()

    def lines(self, prefix):
        return self.server.events(prefix)

    def sent(self, path, n):
        """How many times path was sent, once at least n were (the server notes a transfer
        after its data connection closed: the client may have the bytes before)."""
        ghtest.poll(lambda: self.lines("SENT").count("SENT /" + path) >= n, timeout=10)
        return self.lines("SENT").count("SENT /" + path)

    def url(self, path, login=""):
        return "ftp://%s127.0.0.1:%d/%s" % (login, self.port, path)


@pytest.fixture
def ftpd(workdir):
    s = Ftpd(workdir).start()
    yield s
    s.stop()


def test_anonymous_password_reaches_the_server_and_a_reload_changes_it(start_daemon, ftpd):
    d = start_daemon("ftpanon", timeout=10)
    r = ghtest.get(d.port, ftpd.url("pub/a.bin"), timeout=30)
    assert r.status == 200 and r.body == ftpd.files["pub/a.bin"], r
    assert ftpd.lines("LOGIN") == ["LOGIN anonymous gatehouse@"]  # the default
    with open(d.conf) as f:
        text = f.read()
    with open(d.conf, "w") as f:
        f.write(text.replace("<Proxy *>", "FTPAnonymousPassword audit@corp.example\n<Proxy *>"))
    ghtest.sighup_and_wait(d)
    r = ghtest.get(d.port, ftpd.url("other/c.bin"), timeout=30)
    assert r.status == 200 and r.body == ftpd.files["other/c.bin"], r
    assert ftpd.lines("LOGIN")[-1] == "LOGIN anonymous audit@corp.example", ftpd.lines("LOGIN")


def _cache_status(r):
    return r.header("Cache-Status") or ""


def test_cache_enable_and_disable_with_ftp_prefixes(start_daemon, ftpd, workdir):
    root = os.path.join(workdir, "ftpcache-" + uuid.uuid4().hex[:8])
    log = root + "-access.log"
    base = "ftp://127.0.0.1:%d" % ftpd.port
    d = start_daemon("ftpcache", timeout=10, access_log=log, extra=[
        "CacheRoot %s" % root, "CacheSize 16M",
        "CacheEnable lmdb %s/pub/" % base,
        "CacheDisable %s/pub/private/" % base,
        "<Location /gatehouse/>\n    SetHandler gatehouse-status\n"
        "    Require ip 127.0.0.1 ::1\n</Location>"])

    def twice(path, login=""):
        out = []
        for _ in range(2):
            r = ghtest.get(d.port, ftpd.url(path, login), timeout=30)
            assert r.status == 200 and r.body == ftpd.files[path.split("?")[0]], r
            out.append(r)
        return out

    # under CacheEnable ftp://host/pub/: stored, then hits, one RETR
    first = ghtest.get(d.port, ftpd.url("pub/a.bin"), timeout=30)
    assert first.status == 200 and first.body == ftpd.files["pub/a.bin"], first
    assert "fwd=uri-miss" in _cache_status(first) and "; stored" in _cache_status(first)
    hit = []
    assert ghtest.poll(lambda: hit.append(ghtest.get(d.port, ftpd.url("pub/a.bin"),
                                                     timeout=30)) or
                       "; hit" in _cache_status(hit[-1]), timeout=10), hit[-1].headers
    assert hit[-1].body == ftpd.files["pub/a.bin"]
    assert ftpd.sent("pub/a.bin", 1) == 1, ftpd.lines("SENT")
    # under CacheDisable: fetched each time
    twice("pub/private/b.bin")
    assert ftpd.sent("pub/private/b.bin", 2) == 2, ftpd.lines("SENT")
    # outside every CacheEnable prefix: fetched each time, no Cache-Status
    r1, r2 = twice("other/c.bin")
    assert not _cache_status(r2), r2.headers
    assert ftpd.sent("other/c.bin", 2) == 2, ftpd.lines("SENT")

    # explain agrees: a stored hit, by the CacheEnable line
    j = _explain(d, ftpd.url("pub/a.bin"))
    assert _step(j, "ProxyRemote")["verdict"] == "direct (FTP gateway)", j
    assert _step(j, "CacheEnable")["detail"] == "CacheEnable lmdb %s/pub/" % base, j
    assert _step(j, "cache key")["verdict"] == "stored", j
    assert _step(j, "cache decision")["verdict"] == "hit", j
    assert j["outcome"].startswith("served from the cache"), j
    j = _explain(d, ftpd.url("pub/private/b.bin"))
    assert _step(j, "CacheEnable")["verdict"] == "disabled", j


def test_ftp_cache_key_and_log_have_no_password(start_daemon, ftpd, workdir):
    root = os.path.join(workdir, "ftpkey-" + uuid.uuid4().hex[:8])
    log = root + "-access.log"
    d = start_daemon("ftpkey", timeout=10, access_log=log, extra=[
        "CacheRoot %s" % root, "CacheSize 16M", "CacheEnable lmdb ftp://",
        "<Location /gatehouse/>\n    SetHandler gatehouse-status\n"
        "    Require ip 127.0.0.1 ::1\n</Location>"])
    # an anonymous login with its password in the URL: stored under the URL without it
    u = ftpd.url("pub/a.bin", "anonymous:Pw-In-Url%40x@")
    r = ghtest.get(d.port, u, timeout=30)
    assert r.status == 200 and r.body == ftpd.files["pub/a.bin"], r
    assert ftpd.lines("LOGIN") == ["LOGIN anonymous Pw-In-Url@x"], ftpd.lines("LOGIN")
    # another password for the same user finds the same entry
    u2 = ftpd.url("pub/a.bin", "anonymous:other@")
    assert ghtest.poll(lambda: "; hit" in _cache_status(
        ghtest.get(d.port, u2, timeout=30)), timeout=10)
    assert ftpd.sent("pub/a.bin", 1) == 1, ftpd.lines("SENT")
    j = _explain(d, u2)
    key = "ftp://anonymous@127.0.0.1:%d/pub/a.bin" % ftpd.port
    assert _step(j, "cache key")["detail"] == key and j["url"] == key, j
    assert "other@" not in json.dumps(j), j
    assert ghtest.poll(lambda: os.path.exists(log) and len(open(log).readlines()) >= 2,
                       timeout=10)
    text = open(log).read()
    assert "Pw-In-Url" not in text and "other@" not in text, text
    assert key in text, text
