"""
test_ftps.py - FTP over TLS in the FTP gateway (issue 13): AUTH TLS, PBSZ 0, PROT P, data
connections reusing the control connection's TLS session, FTPTLS Off|Try|Require, and the
server's certificate checked as an origin's is (SSLProxyVerify, SSLProxyCACertificateFile).

The server is a real vsftpd with ssl_enable=YES (ftp_vsftpd.py, `tls=(cert, key)`) that forces
logins and data onto TLS (force_anon_*_ssl=YES) and requires the data connections to resume the
control connection's session (require_ssl_reuse=YES); its certificates come from tlsca.py. The
evidence that bytes were encrypted is vsftpd's own log: with debug_ssl=YES it writes one "SSL
version: ..." line per TLS handshake, marked "reused" for a data connection that resumed the
control session, and a plain command from a client that skipped AUTH TLS is refused there.

A data connection whose TLS fails after the 1xx reply (a certificate of its own, or closed
during the handshake) comes from ftp_scripted.py (pyftpdlib's TLS handler, --data-fault): vsftpd
cannot be made to do that.

URLs name 127.0.0.1, which the test certificates carry (origin.test, which the other FTP tests
use, is not in them).
"""

import os
import re
import socket
import threading
import time
import uuid

import pytest

import ghtest
from ftp_scripted import ScriptedFTP
from ftp_vsftpd import Vsftpd
from test_ftp_gateway import payload as gateway_payload
from tlsca import tlsca  # noqa: F401

T = 60  # seconds: every client timeout here (the machine is shared and loaded)
MTIME = 1700000000


def payload(n, seed=b"ftps"):
    """n bytes that are not a repeated short pattern (test_ftp_gateway's, another seed)."""
    return gateway_payload(n, seed)


def furl(server, path):
    return "ftp://127.0.0.1:%d/%s" % (server.port, path.lstrip("/"))


def get(d, url, headers=(), **kw):
    return ghtest.get(d.port, url, headers=headers, timeout=T, **kw)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def body_text(r):
    return r.body.decode("utf-8", "replace")


def ssl_handshakes(server, since=0):
    """vsftpd's debug_ssl lines for completed handshakes: [(version, reused)]."""
    out = []
    for ln in server.ssl_log_lines(since):
        m = re.search(r'SSL version: (TLSv[0-9.]+), SSL cipher: [^,]*, (reused|not reused)', ln)
        if m:
            out.append((m.group(1), m.group(2) == "reused"))
    return out


def wait_handshakes(server, count, since=0):
    return ghtest.poll(lambda: len(ssl_handshakes(server, since)) >= count and
                       ssl_handshakes(server, since), timeout=10.0) or \
        ssl_handshakes(server, since)


@pytest.fixture
def ftps(ctx, tlsca):  # noqa: F811
    """vsftpd over TLS with the good certificate (127.0.0.1, signed by the test CA), logins and
    data forced onto TLS."""
    s = Vsftpd(ctx.workdir, name="vsftpd-tls", tls=(tlsca.good_pem, tlsca.good_key)).start()
    yield s
    s.stop()


@pytest.fixture
def plain_ftp(ctx):
    s = Vsftpd(ctx.workdir, name="vsftpd-plain").start()
    yield s
    s.stop()


def daemon(start_daemon, ctx, tlsca, *lines, cache=False, workers=None):  # noqa: F811
    """A gatehouse trusting the test CA for origins (and FTP servers), plus lines; workers=1
    when a test counts pooled connections (each worker has its own pool)."""
    extra = ["SSLProxyCACertificateFile %s" % tlsca.ca_pem] + list(lines)
    if cache:
        root = os.path.join(ctx.workdir, "ftpscache-" + uuid.uuid4().hex[:8])
        extra += ["CacheRoot %s" % root, "CacheSize 64M", "CacheEnable lmdb ftp://"]
    log = os.path.join(ctx.workdir, "ftps-%s.access.log" % uuid.uuid4().hex[:8])
    kw = {"workers": workers} if workers else {}
    d = start_daemon("ftps", access_log=log, timeout=T, extra=extra, **kw)
    d.access_log = log
    return d


# ---------------------------------------------------------------- FTPS works

def test_download_over_ftps_is_byte_for_byte_with_encrypted_data(
        start_daemon, ctx, tlsca, ftps):  # noqa: F811
    d = daemon(start_daemon, ctx, tlsca)  # FTPTLS Try: the default
    data = payload(400000, b"dl")
    ftps.put_file("pub/file.bin", data, mtime=MTIME)
    r = get(d, furl(ftps, "pub/file.bin"))
    assert r.status == 200, (r, ftps.log_tail())
    assert r.body == data
    assert r.header("Content-Length") == str(len(data))
    cmds = [c for c, _ in ftps.wait_commands("RETR", 1)]
    assert cmds == ["RETR"], ftps.log_tail()
    seq = [c for c, _ in ftps.commands()]
    # AUTH TLS first, the login after it (over TLS), PBSZ/PROT before the data connection
    assert seq.index("AUTH") < seq.index("USER") < seq.index("PBSZ") < seq.index("PROT") < \
        seq.index("RETR"), seq
    assert ("PROT", "P") in ftps.commands("PROT")
    # the control connection's handshake, then the data connection's, which resumed it
    hs = wait_handshakes(ftps, 2)
    assert len(hs) >= 2, ftps.log_tail()
    assert hs[0][1] is False and hs[1][1] is True, hs
    assert all(v in ("TLSv1.2", "TLSv1.3") for v, _ in hs), hs
    assert ghtest.poll(lambda: "OK DOWNLOAD" in ftps.log_text(), timeout=10), ftps.log_tail()


def test_listing_over_ftps(start_daemon, ctx, tlsca, ftps):  # noqa: F811
    d = daemon(start_daemon, ctx, tlsca)
    ftps.put_file("pub/alpha.txt", b"a" * 10, mtime=MTIME)
    ftps.put_file("pub/beta <b>.txt", b"b" * 20, mtime=MTIME)
    r = get(d, furl(ftps, "pub/"))
    assert r.status == 200, (r, ftps.log_tail())
    text = body_text(r)
    assert "alpha.txt" in text and "beta &lt;b&gt;.txt" in text, text
    assert ftps.commands("MLSD") or ftps.commands("LIST"), ftps.log_tail()
    assert len(wait_handshakes(ftps, 2)) >= 2, ftps.log_tail()


def test_upload_over_ftps(start_daemon, ctx, tlsca, ftps):  # noqa: F811
    d = daemon(start_daemon, ctx, tlsca)
    u = furl(ftps, "incoming/up.bin")
    data = payload(300000, b"put")
    r = get(d, u, method="PUT", body=data)
    assert r.status == 201, (r, ftps.log_tail())
    assert read(ftps.path("incoming/up.bin")) == data
    second = payload(5000, b"put2")
    r = get(d, u, method="PUT", body=second)
    assert r.status == 200, (r, ftps.log_tail())
    assert read(ftps.path("incoming/up.bin")) == second
    assert len(ftps.wait_commands("STOR", 2)) == 2


def test_range_resume_over_ftps(start_daemon, ctx, tlsca, ftps):  # noqa: F811
    d = daemon(start_daemon, ctx, tlsca)
    data = payload(300000, b"range")
    ftps.put_file("pub/part.bin", data, mtime=MTIME)
    r = get(d, furl(ftps, "pub/part.bin"), headers=[("Range", "bytes=123456-")])
    assert r.status == 206, (r, ftps.log_tail())
    assert r.header("Content-Range") == "bytes 123456-%d/%d" % (len(data) - 1, len(data))
    assert r.body == data[123456:]
    assert ("REST", "123456") in ftps.wait_commands("REST", 1), ftps.log_tail()
    # a range inside the file: the data connection is cut early, the next request still works
    r = get(d, furl(ftps, "pub/part.bin"), headers=[("Range", "bytes=10-19")])
    assert r.status == 206 and r.body == data[10:20], r
    r = get(d, furl(ftps, "pub/part.bin"))
    assert r.status == 200 and r.body == data, r


def test_cached_hit_over_ftps_and_pooled_login(start_daemon, ctx, tlsca, ftps):  # noqa: F811
    d = daemon(start_daemon, ctx, tlsca, cache=True, workers=1)
    data = payload(100000, b"cache")
    ftps.put_file("pub/cached.bin", data, mtime=MTIME)
    ftps.put_file("pub/other.bin", b"other\n", mtime=MTIME)
    u = furl(ftps, "pub/cached.bin")
    r1 = get(d, u)
    assert r1.status == 200 and r1.body == data, (r1, ftps.log_tail())
    r2 = get(d, u)
    assert r2.status == 200 and r2.body == data, r2
    assert (r2.header("Cache-Status") or "").startswith("Gatehouse; hit"), r2.headers
    # another file on the pooled control connection: still TLS, no second AUTH or login
    r3 = get(d, furl(ftps, "pub/other.bin"))
    assert r3.status == 200 and r3.body == b"other\n", r3
    assert len(ftps.wait_commands("RETR", 2)) == 2, ftps.log_tail()
    assert len(ftps.commands("RETR")) == 2  # the hit made no transfer
    assert len(ftps.commands("AUTH")) == 1 and len(ftps.commands("USER")) == 1, \
        ftps.commands()


# ---------------------------------------------------------------- FTPTLS modes

def test_require_against_a_server_without_tls_is_502_naming_it(
        start_daemon, ctx, tlsca, plain_ftp):  # noqa: F811
    d = daemon(start_daemon, ctx, tlsca, "FTPTLS Require")
    plain_ftp.put_file("pub/f.txt", b"secret\n", mtime=MTIME)
    r = get(d, furl(plain_ftp, "pub/f.txt"))
    assert r.status == 502, r
    assert "does not offer TLS (FTPTLS Require)" in body_text(r), body_text(r)
    assert plain_ftp.commands("AUTH"), plain_ftp.log_tail()
    # nothing in plain after the refusal: no login, no transfer
    assert not plain_ftp.commands("USER") and not plain_ftp.commands("RETR"), \
        plain_ftp.commands()


def test_try_against_a_server_without_tls_works_in_plain(start_daemon, ctx, tlsca,  # noqa: F811
                                                         plain_ftp):
    d = daemon(start_daemon, ctx, tlsca, "FTPTLS Try")
    data = payload(50000, b"try")
    plain_ftp.put_file("pub/f.bin", data, mtime=MTIME)
    r = get(d, furl(plain_ftp, "pub/f.bin"))
    assert r.status == 200 and r.body == data, r
    assert plain_ftp.commands("AUTH") and plain_ftp.wait_commands("RETR", 1), \
        plain_ftp.log_tail()
    assert not plain_ftp.commands("PROT")


def test_off_never_sends_auth_and_a_forcing_server_refuses(start_daemon, ctx, tlsca,  # noqa: F811
                                                           ftps):
    d = daemon(start_daemon, ctx, tlsca, "FTPTLS Off")
    ftps.put_file("pub/f.txt", b"x\n", mtime=MTIME)
    r = get(d, furl(ftps, "pub/f.txt"))
    # vsftpd: "530 Anonymous sessions must use encryption." -> the login page, quoting it
    assert r.status == 401, r
    assert "must use encryption" in body_text(r), body_text(r)
    assert not ftps.commands("AUTH"), ftps.commands()
    assert not ssl_handshakes(ftps)


# ---------------------------------------------------------------- certificates

@pytest.mark.parametrize("kind,words", [
    ("wrongname", ("www.example.net", "hostname", "mismatch")),
    ("selfsigned", ("self-signed", "self signed")),
    ("expired", ("expired",)),
])
def test_bad_certificate_is_502_naming_it_without_plain_fallback(
        start_daemon, ctx, tlsca, kind, words):  # noqa: F811
    cert, key = tlsca.kinds()[kind]
    s = Vsftpd(ctx.workdir, name="vsftpd-" + kind, tls=(cert, key), force=False).start()
    try:
        s.put_file("pub/f.txt", b"x\n", mtime=MTIME)
        d = daemon(start_daemon, ctx, tlsca)  # Try: a failed check is never a fallback
        r = get(d, furl(s, "pub/f.txt"))
        assert r.status == 502, r
        text = body_text(r)
        assert any(w in text for w in words), text
        assert "TLS" in text, text
        # the server offered TLS: nothing went in plain (no login) after the failure
        assert s.commands("AUTH") and not s.commands("USER"), s.commands()
    finally:
        s.stop()


def test_verify_none_accepts_a_self_signed_server(start_daemon, ctx, tlsca):  # noqa: F811
    s = Vsftpd(ctx.workdir, name="vsftpd-self", tls=(tlsca.selfsigned_pem,
                                                     tlsca.selfsigned_key)).start()
    try:
        data = payload(20000, b"self")
        s.put_file("pub/f.bin", data, mtime=MTIME)
        d = daemon(start_daemon, ctx, tlsca, "SSLProxyVerify none")
        r = get(d, furl(s, "pub/f.bin"))
        assert r.status == 200 and r.body == data, (r, s.log_tail())
        assert len(wait_handshakes(s, 2)) >= 2, s.log_tail()
    finally:
        s.stop()


# ---------------------------------------------------------------- a server that says 234 and then

class Fake234:
    """A loopback FTP server that greets, answers AUTH TLS with 234 and then either says
    nothing (after: None) or sends bytes that are not TLS. Records the commands it got."""

    def __init__(self, after=None):
        self.after = after
        self.commands = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.5)
        conns = []
        while not self.stop_ev.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            conns.append(c)
            try:
                c.settimeout(T)
                c.sendall(b"220 fake\r\n")
                line = c.makefile("rb").readline().decode("latin-1").strip()
                self.commands.append(line)
                if line.upper().startswith("AUTH"):
                    c.sendall(b"234 go ahead\r\n")
                    if self.after is not None:
                        c.sendall(self.after)
            except OSError:
                pass
        for c in conns:
            c.close()

    def stop(self):
        self.stop_ev.set()
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.mark.parametrize("after,status,words", [
    # the gateway's page ("did not answer AUTH") or proxy.c's, whichever timer fires first
    (None, 504, ("did not answer AUTH", "timed out")),
    (b"this is not TLS at all\r\n" * 4, 502, ("TLS",)),
])
def test_234_without_a_tls_handshake_ends_within_proxy_timeout(
        start_daemon, ctx, tlsca, after, status, words):  # noqa: F811
    srv = Fake234(after)
    try:
        extra = ["SSLProxyCACertificateFile %s" % tlsca.ca_pem]
        d = start_daemon("ftps-fake", timeout=3, extra=extra)
        t0 = time.monotonic()
        r = ghtest.get(d.port, "ftp://127.0.0.1:%d/f.txt" % srv.port, timeout=30)
        took = time.monotonic() - t0
        assert r.status == status, r
        text = body_text(r)
        assert any(w in text for w in words), text
        assert took < 3 + 20, took
        assert srv.commands == ["AUTH TLS"], srv.commands  # nothing in plain after the 234
    finally:
        srv.stop()


def test_active_data_connection_over_ftps(start_daemon, ctx, tlsca):  # noqa: F811
    # no passive mode: the server connects back (EPRT/PORT), and the gateway is still the TLS
    # client on that connection, resuming the control session
    s = Vsftpd(ctx.workdir, name="vsftpd-tls-active", extra=["pasv_enable=NO"],
               tls=(tlsca.good_pem, tlsca.good_key)).start()
    try:
        data = payload(200000, b"active")
        s.put_file("pub/a.bin", data, mtime=MTIME)
        d = daemon(start_daemon, ctx, tlsca, "FTPActiveFallback On")
        r = get(d, furl(s, "pub/a.bin"))
        assert r.status == 200 and r.body == data, (r, s.log_tail())
        assert {v for v, _ in s.commands()} & {"EPRT", "PORT"}, s.log_tail()
        hs = wait_handshakes(s, 2)
        assert len(hs) >= 2 and hs[1][1] is True, (hs, s.log_tail())
    finally:
        s.stop()


def test_local_login_over_ftps_keeps_the_password_out_of_logs(
        start_daemon, ctx, tlsca):  # noqa: F811
    # a local user on a server that forces TLS for local logins: USER/PASS only after AUTH TLS,
    # and a wrong password is still a 401 over TLS
    import ftp_vsftpd
    with ghtest.searchable(ctx.workdir):
        s = Vsftpd(ctx.workdir, name="vsftpd-tls-user", local_user=True, anonymous=False,
                   tls=(tlsca.good_pem, tlsca.good_key))
        home = os.path.join(s.dir, "home")
        with ftp_vsftpd.local_user(home) as pw:
            s.local_user = pw
            s.start()
            try:
                data = payload(3000, b"private")
                p = os.path.join(home, "private.txt")
                with open(p, "wb") as f:
                    f.write(data)
                os.chown(p, pw.pw_uid, pw.pw_gid)
                d = daemon(start_daemon, ctx, tlsca, "LogLevel debug", workers=1)
                u = "ftp://%s:%s@127.0.0.1:%d/private.txt" % (
                    ftp_vsftpd.TEST_USER, ftp_vsftpd.TEST_PASSWORD, s.port)
                r = get(d, u)
                assert r.status == 200 and r.body == data, (r, s.log_tail())
                seq = [c for c, _ in s.commands()]
                assert seq.index("AUTH") < seq.index("USER") < seq.index("PASS"), seq
                bad = "ftp://%s:Wr0ngPassw0rd@127.0.0.1:%d/private.txt" % (
                    ftp_vsftpd.TEST_USER, s.port)
                r2 = get(d, bad)
                assert r2.status == 401, r2
                err = d.stderr_text()
                assert ftp_vsftpd.TEST_PASSWORD not in err and "Wr0ngPassw0rd" not in err
                assert "PASS ****" in err  # the debug log shows the command, masked
                with open(d.access_log, "rb") as f:
                    assert ftp_vsftpd.TEST_PASSWORD.encode() not in f.read()
            finally:
                s.stop()


# ---------------------------------------------------------------- data connection failing after 1xx

@pytest.mark.parametrize("fault,words", [
    ("selfsigned", ("self-signed", "self signed")),
    ("wrongname", ("www.example.net",)),
    ("close", ("closed", "reset", "EOF", "eof")),
])
def test_data_tls_failing_after_the_1xx_is_502_naming_it_and_not_stored(
        start_daemon, ctx, tlsca, tmp_path, fault, words):  # noqa: F811
    # The server answers RETR with 150 and only then starts the data connection's TLS (with a
    # certificate the gateway must refuse, from a context that resumes no session) or closes
    # it: the gateway has read the 150 by then, and must still answer 502 naming the TLS
    # failure, not a 200 cut short, and store nothing.
    root = tmp_path / "root"
    root.mkdir()
    data = payload(200000, b"dtls")
    (root / "f.bin").write_bytes(data)
    os.utime(str(root / "f.bin"), (MTIME, MTIME))  # old: a whole copy is stored fresh
    tls = "%s:%s" % (tlsca.good_pem, tlsca.good_key)
    kinds = tlsca.kinds()
    kind = "close" if fault == "close" else "cert:%s:%s" % kinds[fault]
    servers = []
    try:
        for args in (["--tls", tls, "--data-fault", kind], ["--tls", tls]):
            log = str(tmp_path / ("ftp-%s.log" % uuid.uuid4().hex[:8]))
            servers.append(ScriptedFTP(str(root), log, args).start())
        bad, good = servers
        d = daemon(start_daemon, ctx, tlsca, cache=True)
        for attempt in (1, 2):
            r = get(d, furl(bad, "f.bin"))
            text = body_text(r)
            assert r.status == 502, (attempt, r.status, r.headers, text[:300], bad.lines())
            assert "TLS handshake on the data connection to 127.0.0.1:" in text, text
            assert any(w in text for w in words), text
            # the 150 was sent before the failure, and every request made its own RETR:
            # nothing was stored
            assert ghtest.poll(lambda: len(bad.commands("RETR")) >= attempt, timeout=10)
            assert bad.events("-> 150 "), bad.lines()
            assert bad.events("FAULT data"), bad.lines()
        assert len(bad.commands("RETR")) == 2, bad.lines()
        assert ("PROT", "P") in bad.commands("PROT"), bad.lines()
        # the control: the same server without the fault serves the file over TLS, stored
        for attempt in (1, 2):
            r = get(d, furl(good, "f.bin"))
            assert r.status == 200 and r.body == data, (attempt, r, good.lines())
        assert (r.header("Cache-Status") or "").startswith("Gatehouse; hit"), r.headers
        assert ("PROT", "P") in good.commands("PROT"), good.lines()
        assert len(good.commands("RETR")) == 1, good.lines()
    finally:
        for s in servers:
            s.stop()
