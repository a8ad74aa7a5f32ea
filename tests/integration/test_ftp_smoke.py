"""
test_ftp_smoke.py - the FTP gateway's own smoke test (issue 12): a pyftpdlib server on a free
loopback port (ftp_scripted.py without faults: anonymous read and write in pub/, a user with
every right and a read-only one in alice/), the real daemon, requests through the proxy. The real suites are test_ftp_gateway.py (vsftpd) and test_ftp_faults.py (scripted
faults); this file checks the gateway's main paths end to end: RETR byte for byte with SIZE and
MDTM validators, a listing, 404, the directory redirect, login and 401, 304, Range, PUT.
"""

import base64
import os
import shutil
import subprocess
import tempfile
import time

import pytest

import ghtest
from ftp_scripted import ScriptedFTP


class FtpServer:
    """The smoke test's files, served by ftp_scripted.py: .port, .data (pub/file.bin), .server
    (the ScriptedFTP, whose log shows the commands and logins)."""

    def __init__(self, idle_timeout=None):
        self.root = tempfile.mkdtemp(prefix="gh-ftp-")
        os.makedirs(os.path.join(self.root, "pub", "dir", "sub"))
        os.makedirs(os.path.join(self.root, "alice"))
        self.data = os.urandom(300000)
        with open(os.path.join(self.root, "pub", "file.bin"), "wb") as f:
            f.write(self.data)
        with open(os.path.join(self.root, "pub", "dir", "a <b>.txt"), "w") as f:
            f.write("hello\n")
        with open(os.path.join(self.root, "alice", "secret.txt"), "w") as f:
            f.write("alice's\n")
        args = ["--anon-home", "pub", "--anon-perm", "elrw",
                "--user", "alice:s3cret-pw:alice:elradfmwMT", "--user", "reader:r-pw:alice:elr"]
        if idle_timeout:
            # idle control connections are closed after this
            args += ["--idle-timeout", str(idle_timeout)]
        self.server = ScriptedFTP(self.root, os.path.join(self.root, "ftpd.log"), args)
        self.port = None

    def start(self):
        self.server.start()
        self.port = self.server.port
        return self

    def stop(self):
        self.server.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def ftpd():
    s = FtpServer().start()
    yield s
    s.stop()


@pytest.fixture
def gw(start_daemon):
    return start_daemon("ftp", dns=True, timeout=10)


def url(ftpd, path, login=""):
    return "ftp://%s127.0.0.1:%d%s" % (login, ftpd.port, path)


def test_anonymous_retr_is_byte_for_byte_with_validators(ftpd, gw):
    r = ghtest.get(gw.port, url(ftpd, "/file.bin"), timeout=30)
    assert r.status == 200, r
    assert r.body == ftpd.data
    assert r.header("Content-Length") == str(len(ftpd.data))
    assert r.header("ETag", ).startswith('"ftp-'), r.headers
    assert r.header("Last-Modified"), r.headers
    assert r.header("Accept-Ranges") == "bytes"


def test_listing_is_html_with_links(ftpd, gw):
    r = ghtest.get(gw.port, url(ftpd, "/dir/"), timeout=30)
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("text/html")
    text = r.body.decode()
    assert "a &lt;b&gt;.txt" in text and "<b>" not in text, text
    assert "sub" in text


def test_missing_file_is_404_quoting_the_server(ftpd, gw):
    r = ghtest.get(gw.port, url(ftpd, "/nope.bin"), timeout=30)
    assert r.status == 404, r
    assert b"The FTP server said" in r.body


def test_directory_without_slash_redirects(ftpd, gw):
    r = ghtest.get(gw.port, url(ftpd, "/dir"), timeout=30)
    assert r.status == 301, r
    assert r.header("Location") == url(ftpd, "/dir/")


def test_login_from_url_and_basic_and_401(ftpd, gw):
    r = ghtest.get(gw.port, url(ftpd, "/secret.txt", "alice:s3cret-pw@"), timeout=30)
    assert r.status == 200 and r.body == b"alice's\n", r
    assert "private" in (r.header("Cache-Control") or "")
    r = ghtest.get(gw.port, url(ftpd, "/secret.txt", "alice:wrong@"), timeout=30)
    assert r.status == 401, r
    assert r.header("WWW-Authenticate") == 'Basic realm="FTP 127.0.0.1"'
    assert b"wrong" not in r.body
    auth = base64.b64encode(b"alice:s3cret-pw").decode()
    r = ghtest.get(gw.port, url(ftpd, "/secret.txt"), timeout=30,
                   headers=[("Authorization", "Basic " + auth)])
    assert r.status == 200 and r.body == b"alice's\n", r


def test_conditional_request_gets_304_without_retr(ftpd, gw):
    r = ghtest.get(gw.port, url(ftpd, "/file.bin"), timeout=30)
    etag = r.header("ETag")
    r2 = ghtest.get(gw.port, url(ftpd, "/file.bin"), timeout=30,
                    headers=[("If-None-Match", etag)])
    assert r2.status == 304, r2
    assert r2.header("ETag") == etag


def test_single_range_uses_rest(ftpd, gw):
    r = ghtest.get(gw.port, url(ftpd, "/file.bin"), timeout=30,
                   headers=[("Range", "bytes=1000-1999")])
    assert r.status == 206, r
    assert r.body == ftpd.data[1000:2000]
    assert r.header("Content-Range") == "bytes 1000-1999/%d" % len(ftpd.data)
    r = ghtest.get(gw.port, url(ftpd, "/file.bin"), timeout=30,
                   headers=[("Range", "bytes=299000-")])
    assert r.status == 206 and r.body == ftpd.data[299000:], r


def test_put_creates_then_replaces(ftpd, gw):
    u = url(ftpd, "/up.txt", "alice:s3cret-pw@")
    r = ghtest.get(gw.port, u, method="PUT", body=b"first\n", timeout=30)
    assert r.status == 201, r
    r = ghtest.get(gw.port, u, method="PUT", body=b"second\n", timeout=30)
    assert r.status == 200, r
    with open(os.path.join(ftpd.root, "alice", "up.txt"), "rb") as f:
        assert f.read() == b"second\n"


def test_ascii_type_is_chunked_and_converted(ftpd, gw):
    with open(os.path.join(ftpd.root, "pub", "text.txt"), "wb") as f:
        f.write(b"one\ntwo\n")
    r = ghtest.get(gw.port, url(ftpd, "/text.txt;type=a"), timeout=30)
    assert r.status == 200, r
    assert r.header("Content-Length") is None and r.header("Transfer-Encoding") == "chunked"
    assert r.body.replace(b"\r\n", b"\n") == b"one\ntwo\n", r.body


def test_cached_then_revalidated_after_change(ftpd, start_daemon, ctx):
    root = os.path.join(ctx.workdir, "ftpcache-%d" % time.time_ns())
    d = start_daemon("ftpc", timeout=10,
                     extra=["CacheRoot %s" % root, "CacheSize 64M", "CacheEnable lmdb /"])
    u = url(ftpd, "/file.bin")
    p = os.path.join(ftpd.root, "pub", "file.bin")
    os.utime(p, (time.time() - 86400, time.time() - 86400))  # heuristic freshness: 2.4 h
    r1 = ghtest.get(d.port, u, timeout=30)
    assert r1.status == 200 and r1.body == ftpd.data, r1
    assert "stored" in r1.header("Cache-Status"), r1.headers
    r2 = ghtest.get(d.port, u, timeout=30)
    assert r2.status == 200 and r2.body == ftpd.data
    assert r2.header("Cache-Status").startswith("Gatehouse; hit"), r2.headers
    # a revalidation of the unchanged file: 304 from SIZE and MDTM, the stored body served
    r2 = ghtest.get(d.port, u, timeout=30, headers=[("Cache-Control", "no-cache")])
    assert r2.status == 200 and r2.body == ftpd.data
    assert "fwd-status=304" in r2.header("Cache-Status"), r2.headers
    # changed on the server (new size and mtime): a forced revalidation gets the new bytes
    new = os.urandom(1234)
    with open(p, "wb") as f:
        f.write(new)
    os.utime(p, (time.time() + 5, time.time() + 5))
    r3 = ghtest.get(d.port, u, timeout=30, headers=[("Cache-Control", "no-cache")])
    assert r3.status == 200 and r3.body == new, r3


def test_pooled_control_connection_serves_several_requests(ftpd, gw):
    for i in range(4):
        r = ghtest.get(gw.port, url(ftpd, "/file.bin"), timeout=30,
                       headers=[("Range", "bytes=%d-%d" % (i * 10, i * 10 + 9))])
        assert r.status == 206 and r.body == ftpd.data[i * 10:i * 10 + 10], r
        r = ghtest.get(gw.port, url(ftpd, "/dir/a%20%3Cb%3E.txt"), timeout=30)
        assert r.status == 200 and r.body == b"hello\n", r
    logins = len(ftpd.server.events("LOGGED IN anonymous"))
    assert 1 <= logins <= 2, logins  # two workers may each open one


def test_listing_as_json_and_vary(ftpd, gw):
    import json
    r = ghtest.get(gw.port, url(ftpd, "/dir/"), timeout=30,
                   headers=[("Accept", "application/json")])
    assert r.status == 200, r
    assert r.header("Content-Type") == "application/json"
    assert "Accept" in r.header("Vary")
    names = {e["name"]: e["type"] for e in json.loads(r.body)["entries"]}
    assert names == {"a <b>.txt": "file", "sub": "dir"}, names
    r = ghtest.get(gw.port, url(ftpd, "/dir;type=d"), timeout=30)
    assert r.status == 200 and r.header("Content-Type").startswith("text/html"), r


def test_head_has_the_fields_without_a_transfer(ftpd, gw):
    r = ghtest.get(gw.port, url(ftpd, "/file.bin"), method="HEAD", timeout=30)
    assert r.status == 200 and r.body == b"", r
    assert r.header("Content-Length") == str(len(ftpd.data))
    assert ftpd.server.commands("SIZE"), ftpd.server.lines()  # the log does show commands
    assert not any("RETR" in ln for ln in ftpd.server.lines()), ftpd.server.lines()


def test_put_invalidates_the_cached_copy(ftpd, start_daemon, ctx):
    root = os.path.join(ctx.workdir, "ftpcache-%d" % time.time_ns())
    d = start_daemon("ftpc", timeout=10,
                     extra=["CacheRoot %s" % root, "CacheSize 64M", "CacheEnable lmdb /"])
    p = os.path.join(ftpd.root, "pub", "doc.txt")
    with open(p, "wb") as f:
        f.write(b"old\n")
    os.utime(p, (time.time() - 86400, time.time() - 86400))
    u = url(ftpd, "/doc.txt")
    r = ghtest.get(d.port, u, timeout=30)
    assert r.body == b"old\n" and "stored" in r.header("Cache-Status"), r.headers
    r = ghtest.get(d.port, u, timeout=30)
    assert r.header("Cache-Status").startswith("Gatehouse; hit"), r.headers
    r = ghtest.get(d.port, u, method="PUT", body=b"new\n", timeout=30)
    assert r.status == 200, r
    r = ghtest.get(d.port, u, timeout=30)
    assert r.status == 200 and r.body == b"new\n", r
    assert "hit" not in r.header("Cache-Status"), r.headers


def test_curl_upload_with_expect_continue(ftpd, gw, tmp_path):
    src = tmp_path / "up.bin"
    data = os.urandom(200000)
    src.write_bytes(data)
    p = subprocess.run(["curl", "-sS", "--max-time", "30", "-x", "http://127.0.0.1:%d" % gw.port,
                        "-T", str(src), "-H", "Expect: 100-continue", "-o", "/dev/null",
                        "-w", "%{http_code}", url(ftpd, "/put.bin", "alice:s3cret-pw@")],
                       capture_output=True, text=True, timeout=60, env=ghtest.clean_env())
    assert p.stdout == "201", (p.stdout, p.stderr)
    with open(os.path.join(ftpd.root, "alice", "put.bin"), "rb") as f:
        assert f.read() == data


def test_permission_refusal_is_403(ftpd, gw):
    # a read-only user's STOR: 550 "Not enough privileges." is a 403, not a 404
    r = ghtest.get(gw.port, url(ftpd, "/new.txt", "reader:r-pw@"), method="PUT", body=b"x",
                   timeout=30)
    assert r.status == 403, r
    assert b"privileges" in r.body
    assert not os.path.exists(os.path.join(ftpd.root, "alice", "new.txt"))


def test_big_put_with_another_login_than_the_pooled_one(ftpd, start_daemon):
    # one worker: the anonymous login is pooled, alice's PUT must go to a fresh connection
    # with its body whole (proxy.c replays at most 64 KiB it has sent: none is taken before)
    d = start_daemon("ftp1", timeout=10, workers=1)
    assert ghtest.get(d.port, url(ftpd, "/file.bin"), timeout=30).status == 200
    data = os.urandom(500000)
    r = ghtest.get(d.port, url(ftpd, "/big-up.bin", "alice:s3cret-pw@"), method="PUT",
                   body=data, timeout=30)
    assert r.status == 201, r
    with open(os.path.join(ftpd.root, "alice", "big-up.bin"), "rb") as f:
        assert f.read() == data
    r = ghtest.get(d.port, url(ftpd, "/file.bin"), timeout=30)
    assert r.status == 200 and r.body == ftpd.data


def close_wait_to(port):
    out = subprocess.run(["ss", "-tnH", "state", "close-wait", "dport", "= :%d" % port],
                         capture_output=True, text=True, timeout=10).stdout
    return [ln for ln in out.splitlines() if ln.strip()]


def test_idle_control_connection_closed_by_the_server_is_retired(start_daemon):
    s = FtpServer(idle_timeout=1.5).start()
    try:
        d = start_daemon("ftpidle", timeout=10, workers=1)
        u = "ftp://127.0.0.1:%d/file.bin" % s.port
        assert ghtest.get(d.port, u, timeout=30).body == s.data
        # the server closes the pooled control connection: the gateway closes its end too
        # (no socket left in CLOSE_WAIT), and the next request gets a fresh one
        deadline = time.time() + 15
        time.sleep(2)
        while close_wait_to(s.port) and time.time() < deadline:
            time.sleep(0.2)
        assert close_wait_to(s.port) == []
        r = ghtest.get(d.port, u, timeout=30)
        assert r.status == 200 and r.body == s.data, r
    finally:
        s.stop()


def test_empty_file_is_an_empty_200_binary_and_ascii(ftpd, gw):
    # no body byte ever comes: the binary one is answered at the 1xx (SIZE said 0), the ASCII
    # one (chunked, no length) once the data connection ended and the server said 226
    with open(os.path.join(ftpd.root, "pub", "empty.bin"), "wb"):
        pass
    r = ghtest.get(gw.port, url(ftpd, "/empty.bin"), timeout=30)
    assert r.status == 200 and r.body == b"", r
    assert r.header("Content-Length") == "0", r.headers
    r = ghtest.get(gw.port, url(ftpd, "/empty.bin;type=a"), timeout=30)
    assert r.status == 200 and r.body == b"", r
    assert r.header("Transfer-Encoding") == "chunked", r.headers
    assert len(ftpd.server.commands("RETR")) == 2, ftpd.server.lines()
    # the connection is still good for the next file
    r = ghtest.get(gw.port, url(ftpd, "/file.bin"), timeout=30)
    assert r.status == 200 and r.body == ftpd.data, r
