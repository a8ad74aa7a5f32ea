"""
test_ftp_gateway.py - the FTP gateway (issue 12) against a real vsftpd, through the proxy, with
curl, wget and raw HTTP requests: anonymous downloads byte for byte with the synthesized fields
(Content-Length from SIZE, Last-Modified from MDTM, the ETag, Content-Type from mime.types),
HTML and JSON listings (escaped names), logins by URL and through the 401 prompt (the password
in no log line and no page), a 100 MB file through a slow reader with bounded memory, a Range
resume, the directory redirect, 550 -> 404, PUT (201 new, 200 replaced, the cached copy
invalidated), a second download from the cache with ONE RETR in vsftpd's log, concurrent misses
collapsed into one RETR, a transfer the server cuts not stored (the client's body short), a
cached listing,
revalidation by SIZE and MDTM (changed: the new bytes; unchanged: no data connection at all),
ProxyBlock of an FTP host, ProxyRemote ftp still going to the parent, an IPv6-only server
through EPSV, and the active-mode fallback (FTPActiveFallback On).

The server's protocol log (ftp_vsftpd.py) is the hard evidence of what the gateway asked for:
each test has its own vsftpd, so counting its RETR commands counts the transfers.
"""

import base64
import email.utils
import functools
import hashlib
import json
import os
import re
import socket
import subprocess
import threading
import time
import uuid

import pytest

import ghtest
import ftp_vsftpd
from ftp_vsftpd import TEST_PASSWORD, TEST_USER, Vsftpd
from origin import StubParent

T = 60  # seconds: every client timeout here (the machine is shared and loaded)
HOST = "origin.test"  # 127.0.0.1 through the session dnsmasq
DAY = 86400
MTIME = 1700000000  # 2023-11-14T22:13:20Z: old, so the Last-Modified heuristic keeps it fresh


def payload(n, seed=b"gh"):
    """n bytes that are not a repeated short pattern (a misplaced block changes the hash)."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(seed + b"%d" % i).digest()
        i += 1
    return bytes(out[:n])


def http_date(t):
    return email.utils.formatdate(t, usegmt=True)


def etag(size, mtime):
    return '"ftp-%x-%x"' % (size, mtime)


@pytest.fixture
def vsftpd(ctx):
    s = Vsftpd(ctx.workdir).start()
    yield s
    s.stop()


@pytest.fixture
def vsftpd_user(ctx):
    """A vsftpd with local logins and no anonymous one, and the test user, whose home holds
    private.txt. The session work dir is made passable (0711) for the user meanwhile."""
    with ghtest.searchable(ctx.workdir):
        s = Vsftpd(ctx.workdir, name="vsftpd-user", local_user=True, anonymous=False)
        home = os.path.join(s.dir, "home")
        with ftp_vsftpd.local_user(home) as pw:
            s.local_user = pw
            s.home = home
            s.start()
            data = payload(3000, b"private")
            p = os.path.join(home, "private.txt")
            with open(p, "wb") as f:
                f.write(data)
            os.chown(p, pw.pw_uid, pw.pw_gid)
            s.private = data
            try:
                yield s
            finally:
                s.stop()


def new_log(ctx, what="ftp"):
    return os.path.join(ctx.workdir, "%s-%s.access.log" % (what, uuid.uuid4().hex[:8]))


@pytest.fixture
def gw(start_daemon, ctx):
    """A daemon without a cache, an access log, generous timeouts."""
    log = new_log(ctx)
    d = start_daemon("ftpgw", access_log=log, timeout=T)
    d.access_log = log
    return d


@pytest.fixture
def cgw(start_daemon, ctx):
    """A daemon caching FTP responses (CacheEnable lmdb ftp://)."""
    log = new_log(ctx, "ftpcache")
    root = os.path.join(ctx.workdir, "ftpcache-" + uuid.uuid4().hex[:8])
    d = start_daemon("ftpcache", access_log=log, timeout=T,
                     extra=["CacheRoot %s" % root, "CacheSize 256M", "CacheEnable lmdb ftp://"])
    d.access_log = log
    d.cache_root = root
    return d


def furl(server, path, userinfo=""):
    return "ftp://%s%s:%d/%s" % (userinfo + "@" if userinfo else "", HOST, server.port,
                                 path.lstrip("/"))


def get(d, url, headers=(), **kw):
    return ghtest.get(d.port, url, headers=headers, timeout=T, **kw)


def curl(d, url, out, *args):
    """curl through the proxy; (exit status, response head text, stderr)."""
    head = out + ".head"
    p = subprocess.run(["curl", "-sS", "--max-time", str(T), "-x", "http://127.0.0.1:%d" % d.port,
                        "-o", out, "-D", head] + list(args) + [url],
                       capture_output=True, text=True, timeout=T + 30, env=ghtest.clean_env())
    try:
        with open(head, errors="replace") as f:
            h = f.read()
    except OSError:
        h = ""
    return p.returncode, h, p.stderr


def read(path):
    with open(path, "rb") as f:
        return f.read()


def access_lines(d, pred, count=1, timeout=10.0):
    return ghtest.poll_lines(d.access_log, pred, count=count, timeout=timeout)


def is_hit(r):
    return (r.header("Cache-Status") or "").startswith("Gatehouse; hit")


# ---------------------------------------------------------------- downloads

def test_anonymous_download_with_curl_has_the_synthesized_fields(gw, vsftpd, tmp_path):
    pdf = payload(300000, b"pdf")
    txt = b"plain text from vsftpd\n" * 100
    vsftpd.put_file("pub/manual.pdf", pdf, mtime=MTIME)
    vsftpd.put_file("pub/notes.txt", txt, mtime=MTIME + DAY)

    out = str(tmp_path / "manual.pdf")
    rc, head, err = curl(gw, furl(vsftpd, "pub/manual.pdf"), out)
    assert rc == 0, (rc, err, head)
    assert head.startswith("HTTP/1.1 200"), head
    assert read(out) == pdf  # byte for byte

    r = get(gw, furl(vsftpd, "pub/manual.pdf"))
    assert r.status == 200 and r.body == pdf, r
    assert r.header("Content-Length") == str(len(pdf)), r.headers
    assert r.header("Last-Modified") == http_date(MTIME), r.headers
    assert r.header("ETag") == etag(len(pdf), MTIME), r.headers
    assert r.header("Content-Type").split(";")[0].strip() == "application/pdf", r.headers

    r = get(gw, furl(vsftpd, "pub/notes.txt"))
    assert r.status == 200 and r.body == txt, r
    assert r.header("Content-Type").split(";")[0].strip() == "text/plain", r.headers
    assert r.header("Last-Modified") == http_date(MTIME + DAY), r.headers
    assert r.header("ETag") == etag(len(txt), MTIME + DAY), r.headers
    # SIZE and MDTM answered the fields; each GET was one RETR
    assert [a for _, a in vsftpd.wait_commands("RETR", 3)] == \
        ["manual.pdf", "manual.pdf", "notes.txt"], vsftpd.log_tail()
    line = access_lines(gw, lambda ln: "ftp://%s:%d/pub/notes.txt" % (HOST, vsftpd.port) in ln)
    assert line and "TCP_MISS/200 " in line[0], line


def test_anonymous_download_with_wget(gw, vsftpd, tmp_path):
    data = payload(1 << 20, b"wget")
    vsftpd.put_file("pub/dist/archive.tar.gz", data, mtime=MTIME)
    out = str(tmp_path / "archive.tar.gz")
    p = subprocess.run(["wget", "-q", "--tries=1", "--timeout=%d" % T, "-O", out,
                        furl(vsftpd, "pub/dist/archive.tar.gz")],
                       capture_output=True, text=True, timeout=T + 30,
                       env=ghtest.clean_env(ftp_proxy="http://127.0.0.1:%d" % gw.port))
    assert p.returncode == 0, p.stderr
    assert read(out) == data
    assert len(vsftpd.wait_commands("RETR", 1)) == 1, vsftpd.log_tail()
    # one CWD per path segment (RFC 1738), then the file
    cwds = [a for _, a in vsftpd.commands("CWD")]
    assert cwds[-2:] == ["pub", "dist"] or cwds[-3:] == ["/", "pub", "dist"], vsftpd.log_tail()


def test_head_gives_the_fields_without_a_body(gw, vsftpd):
    data = payload(4321, b"head")
    vsftpd.put_file("pub/h.txt", data, mtime=MTIME)
    r = get(gw, furl(vsftpd, "pub/h.txt"), method="HEAD")
    assert r.status == 200 and r.body == b"", r
    assert r.header("Content-Length") == "4321", r.headers
    assert r.header("Last-Modified") == http_date(MTIME), r.headers
    assert r.header("ETag") == etag(len(data), MTIME), r.headers
    # the same connection still works for a GET afterwards
    r = get(gw, furl(vsftpd, "pub/h.txt"))
    assert r.status == 200 and r.body == data, r


def test_ascii_type_is_sent_for_type_a(gw, vsftpd):
    vsftpd.put_file("pub/t.txt", b"line one\nline two\n", mtime=MTIME)
    r = get(gw, furl(vsftpd, "pub/t.txt;type=a"))
    assert r.status == 200, r
    assert r.body.replace(b"\r\n", b"\n") == b"line one\nline two\n", r
    types = [a for _, a in vsftpd.commands("TYPE")]
    assert "A" in types, vsftpd.log_tail()


# ---------------------------------------------------------------- listings

SPECIAL = 'a<b>&c".txt'


def listing_tree(server):
    server.put_file("pub/readme.txt", b"r" * 12345, mtime=MTIME)
    server.put_file("pub/" + SPECIAL, b"special", mtime=MTIME)
    server.put_file("pub/my file.bin", b"x" * 10, mtime=MTIME)
    server.mkdir("pub/subdir")
    os.utime(server.path("pub/subdir"), (MTIME, MTIME))


def test_directory_listing_is_html_with_links_sizes_and_escaped_names(gw, vsftpd):
    listing_tree(vsftpd)
    r = get(gw, furl(vsftpd, "pub/"))
    assert r.status == 200, r
    assert r.header("Content-Type").split(";")[0].strip() == "text/html", r.headers
    body = r.body.decode("utf-8")
    assert 'href="readme.txt"' in body, body
    assert 'href="subdir/"' in body, body
    assert 'href="my%20file.bin"' in body, body
    # the parent link
    assert re.search(r'href="\.\./?"', body), body
    # sizes (as digits, possibly grouped)
    assert re.search(r"12[,.\u202f ]?345", body), body
    # the HTML-special name: escaped as text, percent-encoded in its link, never raw markup
    assert "a&lt;b&gt;&amp;c" in body, body
    assert "a<b>" not in body and 'c".txt' not in body, body
    assert re.search(r'href="a%3[Cc]b%3[Ee]%26c%22\.txt"', body), body
    assert len(vsftpd.wait_commands("LIST", 1)) == 1, vsftpd.log_tail()


def test_type_d_lists_and_json_listing_parses(gw, vsftpd):
    listing_tree(vsftpd)
    r = get(gw, furl(vsftpd, "pub/"), headers=[("Accept", "application/json")])
    assert r.status == 200, r
    assert r.header("Content-Type").split(";")[0].strip() == "application/json", r.headers
    doc = json.loads(r.body)
    assert "ftp://%s:%d/pub/" % (HOST, vsftpd.port) in doc["url"], doc
    ents = {e["name"]: e for e in doc["entries"]}
    assert set(ents) == {"readme.txt", SPECIAL, "my file.bin", "subdir"}, doc
    assert ents["readme.txt"]["type"] == "file" and ents["readme.txt"]["size"] == 12345, doc
    assert ents["subdir"]["type"] == "dir", doc
    assert ents[SPECIAL]["size"] == 7, doc
    # vsftpd lists old files with the day only
    assert ents["readme.txt"]["modified"].startswith("2023-11-14"), doc
    # ;type=d on a path without the slash lists too (no redirect, no RETR)
    r = get(gw, furl(vsftpd, "pub;type=d"), headers=[("Accept", "application/json")])
    assert r.status == 200, r
    assert {e["name"] for e in json.loads(r.body)["entries"]} == set(ents), r.body
    assert vsftpd.commands("RETR") == [], vsftpd.log_tail()


def test_directory_without_slash_redirects(gw, vsftpd):
    listing_tree(vsftpd)
    r = get(gw, furl(vsftpd, "pub/subdir"))
    assert r.status == 301, r
    loc = r.header("Location")
    assert loc == furl(vsftpd, "pub/subdir/"), r.headers
    # following it gives the listing
    r2 = get(gw, loc)
    assert r2.status == 200 and b"<html" in r2.body.lower(), r2


# ---------------------------------------------------------------- errors

VSFTPD_550 = (b"Could not get file size.", b"Failed to open file.", b"Failed to change directory.")


def test_missing_file_is_404_quoting_the_server(gw, vsftpd):
    vsftpd.put_file("pub/here.txt", b"here", mtime=MTIME)
    for path in ("pub/nope.bin", "nodir/file.txt"):
        r = get(gw, furl(vsftpd, path))
        assert r.status == 404, (path, r)
        assert any(t in r.body for t in VSFTPD_550), (path, r.body)
        assert r.header("Content-Type").startswith("text/html"), r.headers
    # the connection is still good for the next request
    r = get(gw, furl(vsftpd, "pub/here.txt"))
    assert r.status == 200 and r.body == b"here", r


def test_unreadable_file_is_refused_quoting_the_server(gw, vsftpd):
    # vsftpd answers SIZE for a mode-000 file but refuses RETR with the same "550 Failed to
    # open file." it gives for other failures: the reply does not say "permission denied", so
    # 404 is as right as 403 here (the 403 mapping of a distinguishable denial is
    # test_ftp_faults.py's, with a scripted server). What matters: no content, the reply quoted.
    vsftpd.put_file("pub/locked.bin", b"locked-content", mode=0)
    r = get(gw, furl(vsftpd, "pub/locked.bin"))
    assert r.status in (403, 404), r
    assert b"Failed to open file." in r.body and b"locked-content" not in r.body, r.body


# ---------------------------------------------------------------- logins

def no_password_anywhere(d, *bodies):
    pw = TEST_PASSWORD.encode()
    with open(d.access_log, "rb") as f:
        assert pw not in f.read()
    assert TEST_PASSWORD not in d.stderr_text()
    for b in bodies:
        assert pw not in b


def test_login_with_url_credentials(start_daemon, ctx, vsftpd_user):
    log = new_log(ctx, "ftplogin")
    d = start_daemon("ftplogin", access_log=log, timeout=T, workers=1, extra=["LogLevel debug"])
    d.access_log = log
    u = furl(vsftpd_user, "private.txt", "%s:%s" % (TEST_USER, TEST_PASSWORD))
    r = get(d, u)
    assert r.status == 200 and r.body == vsftpd_user.private, r
    assert ("USER", TEST_USER) in vsftpd_user.commands("USER"), vsftpd_user.log_tail()
    # a wrong password is a 401, not a page naming it; the control connection the first
    # request logged in on is pooled, and a wrong password must not ride on that login
    bad = furl(vsftpd_user, "private.txt", "%s:%s" % (TEST_USER, "Wr0ngPassw0rd"))
    r2 = get(d, bad)
    assert r2.status == 401, ("the wrong password was served", r2)
    assert b"Wr0ngPassw0rd" not in r2.body
    lines = access_lines(d, lambda ln: "private.txt" in ln, count=2)
    assert len(lines) == 2 and TEST_USER in lines[0], lines
    # pages that show the URL (an error, a listing) show it without the password
    cred = "%s:%s" % (TEST_USER, TEST_PASSWORD)
    r4 = get(d, furl(vsftpd_user, "missing.txt", cred))
    assert r4.status == 404 and b"missing.txt" in r4.body, r4
    r5 = get(d, furl(vsftpd_user, "/", cred))
    assert r5.status == 200 and b'href="private.txt"' in r5.body, r5
    r6 = get(d, furl(vsftpd_user, "/", cred), headers=[("Accept", "application/json")])
    assert r6.status == 200 and json.loads(r6.body)["entries"], r6
    no_password_anywhere(d, r.body, r2.body, r4.body, r5.body, r6.body,
                         repr(r.headers).encode(), repr(r2.headers).encode(),
                         repr(r4.headers).encode(), repr(r5.headers).encode())
    assert "Wr0ngPassw0rd" not in d.stderr_text()


def test_login_through_the_401_prompt(start_daemon, ctx, vsftpd_user, tmp_path):
    log = new_log(ctx, "ftpprompt")
    d = start_daemon("ftpprompt", access_log=log, timeout=T, workers=1,
                     extra=["LogLevel debug"])
    d.access_log = log
    u = furl(vsftpd_user, "private.txt")
    # anonymous is refused (530): the client is asked for credentials
    r = get(d, u)
    assert r.status == 401, r
    wa = r.header("WWW-Authenticate") or ""
    assert re.match(r'Basic realm="FTP [^"]*%s' % re.escape(HOST), wa), r.headers
    # the browser's answer: Authorization: Basic (not Proxy-Authorization)
    cred = base64.b64encode(("%s:%s" % (TEST_USER, TEST_PASSWORD)).encode()).decode()
    r2 = get(d, u, headers=[("Authorization", "Basic " + cred)])
    assert r2.status == 200 and r2.body == vsftpd_user.private, (r2, vsftpd_user.log_tail())
    # vsftpd may answer 530 to a correct USER/PASS on a control connection that already had a
    # 530 (seen in 4 runs of 5 on a loaded machine): a connection whose login failed is not
    # reused for another login
    assert vsftpd_user.relogins_after_530() == [], vsftpd_user.relogins_after_530()
    # wrong credentials: asked again
    bad = base64.b64encode(("%s:nottheone" % TEST_USER).encode()).decode()
    r3 = get(d, u, headers=[("Authorization", "Basic " + bad)])
    assert r3.status == 401 and r3.header("WWW-Authenticate"), ("a pooled login served a "
                                                                 "wrong password", r3)
    # curl -u through the proxy (it sends the URL's login and Authorization: Basic)
    out = str(tmp_path / "p.txt")
    rc, head, err = curl(d, u, out, "-u", "%s:%s" % (TEST_USER, TEST_PASSWORD))
    assert rc == 0 and head.startswith("HTTP/1.1 200"), (rc, head, err)
    assert read(out) == vsftpd_user.private
    # wget with --user/--password through ftp_proxy: it asks without credentials, gets the
    # 401 challenge and answers it with Authorization: Basic
    out2 = str(tmp_path / "w.txt")
    p = subprocess.run(["wget", "-q", "--tries=1", "--timeout=%d" % T, "-O", out2,
                        "--user=" + TEST_USER, "--password=" + TEST_PASSWORD, u],
                       capture_output=True, text=True, timeout=T + 30,
                       env=ghtest.clean_env(ftp_proxy="http://127.0.0.1:%d" % d.port))
    assert p.returncode == 0, p.stderr
    assert read(out2) == vsftpd_user.private
    lines = access_lines(d, lambda ln: "/private.txt" in ln, count=6)
    codes = [ln.split()[3] for ln in lines]
    assert codes[-2:] == ["TCP_MISS/401", "TCP_MISS/200"], lines  # one worker: in order
    # a logged-in response is not for everyone
    assert "private" in (r2.header("Cache-Control") or ""), r2.headers
    no_password_anywhere(d, r.body, r2.body, r3.body, head.encode())


# ---------------------------------------------------------------- large files, ranges

@pytest.mark.slow
def test_100mb_through_a_slow_reader_keeps_memory_bounded(gw, vsftpd):
    size = 100 << 20
    chunk = payload(1 << 20, b"big")
    p = vsftpd.path("pub/big.iso")
    os.makedirs(os.path.dirname(p))
    want = hashlib.sha256()
    with open(p, "wb") as f:
        for i in range(100):
            block = chunk[i:] + chunk[:i]  # every MiB differs
            f.write(block)
            want.update(block)
    os.chmod(p, 0o644)
    try:
        base_rss, _ = gw.memory_kb()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)  # before connect: the window
        s.settimeout(T)
        s.connect(("127.0.0.1", gw.port))
        s.sendall(ghtest.build(furl(vsftpd, "pub/big.iso"), close=True))
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            assert d, buf
            buf += d
        head, rest = buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert b"\r\ncontent-length: %d" % size in head.lower(), head
        got = hashlib.sha256(rest)
        n = len(rest)
        peak = base_rss
        # slow: ~1 MB/s for 8 s while vsftpd could send at memory speed
        t_end = time.monotonic() + 8
        while time.monotonic() < t_end:
            d = s.recv(16384)
            assert d, "closed after %d bytes" % n
            got.update(d)
            n += len(d)
            time.sleep(0.016)
            peak = max(peak, gw.memory_kb()[0])
        slow_n = n
        # then fast to the end, still watching
        last = time.monotonic()
        while n < size:
            d = s.recv(1 << 20)
            assert d, "closed after %d of %d bytes" % (n, size)
            got.update(d)
            n += len(d)
            if time.monotonic() - last > 0.2:
                peak = max(peak, gw.memory_kb()[0])
                last = time.monotonic()
        s.close()
    finally:
        os.unlink(p)
    assert n == size and got.hexdigest() == want.hexdigest()
    assert slow_n < size // 2, slow_n  # the slow phase really was slow
    limit_mb = 192 if ghtest.is_sanitized(gw.binary) else 64
    growth_mb = (peak - base_rss) / 1024
    print("100 MB through a slow reader: RSS base %d kB, peak %d kB, growth %.1f MB, %d bytes "
          "in the slow phase" % (base_rss, peak, growth_mb, slow_n))
    assert growth_mb < limit_mb, "RSS grew %.1f MB (base %d kB, peak %d kB)" % (
        growth_mb, base_rss, peak)


def test_range_resume_uses_rest(gw, vsftpd, tmp_path):
    data = payload(500000, b"range")
    vsftpd.put_file("pub/part.bin", data, mtime=MTIME)
    r = get(gw, furl(vsftpd, "pub/part.bin"), headers=[("Range", "bytes=123456-")])
    assert r.status == 206, r
    assert r.header("Content-Range") == "bytes 123456-%d/%d" % (len(data) - 1, len(data)), \
        r.headers
    assert r.body == data[123456:]
    assert ("REST", "123456") in vsftpd.wait_commands("REST", 1), vsftpd.log_tail()
    # curl -C - resumes a partial download
    out = str(tmp_path / "part.bin")
    with open(out, "wb") as f:
        f.write(data[:200000])
    rc, head, err = curl(gw, furl(vsftpd, "pub/part.bin"), out, "-C", "-")
    assert rc == 0 and head.startswith("HTTP/1.1 206"), (rc, head, err)
    assert read(out) == data
    assert ("REST", "200000") in vsftpd.wait_commands("REST", 2), vsftpd.log_tail()


def test_suffix_range_is_the_last_bytes(gw, vsftpd):
    data = payload(300000, b"suffix")
    vsftpd.put_file("pub/tail.bin", data, mtime=MTIME)
    r = get(gw, furl(vsftpd, "pub/tail.bin"), headers=[("Range", "bytes=-1000")])
    assert r.status == 206, r
    assert r.header("Content-Range") == "bytes %d-%d/%d" % (len(data) - 1000, len(data) - 1,
                                                           len(data)), r.headers
    assert r.body == data[-1000:]
    assert ("REST", str(len(data) - 1000)) in vsftpd.wait_commands("REST", 1), \
        vsftpd.log_tail()
    # a suffix longer than the file is the whole file, as a 206
    r = get(gw, furl(vsftpd, "pub/tail.bin"), headers=[("Range", "bytes=-999999")])
    assert r.status == 206 and r.body == data, r
    assert r.header("Content-Range") == "bytes 0-%d/%d" % (len(data) - 1, len(data))
    # a zero-length suffix cannot be satisfied
    r = get(gw, furl(vsftpd, "pub/tail.bin"), headers=[("Range", "bytes=-0")])
    assert r.status == 416 and r.header("Content-Range") == "bytes */%d" % len(data), r


# ---------------------------------------------------------------- upload

def test_put_creates_201_and_replaces_200(gw, vsftpd):
    u = furl(vsftpd, "incoming/upload.bin")
    first = payload(70000, b"put1")
    r = get(gw, u, method="PUT", body=first)
    assert r.status == 201, r
    assert read(vsftpd.path("incoming/upload.bin")) == first
    second = payload(1000, b"put2")
    r = get(gw, u, method="PUT", body=second)
    assert r.status == 200, r
    assert read(vsftpd.path("incoming/upload.bin")) == second
    assert [a for _, a in vsftpd.wait_commands("STOR", 2)] == ["upload.bin"] * 2, \
        vsftpd.log_tail()
    # a chunked body is stored the same way
    third = payload(50000, b"put3")
    c = ghtest.Conn("127.0.0.1", gw.port, timeout=T)
    try:
        c.send(ghtest.build(u, [("Transfer-Encoding", "chunked")], method="PUT", close=True)
               + ghtest.chunk_encode(third))
        r = c.read_response("PUT", T)
    finally:
        c.close()
    assert r.status == 200, r
    assert read(vsftpd.path("incoming/upload.bin")) == third


def test_curl_upload_through_the_proxy(gw, vsftpd, tmp_path):
    # curl -T with an HTTP proxy sends PUT ftp://... with Expect: 100-continue
    data = payload(300000, b"curl-T")
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    out = str(tmp_path / "resp")
    rc, head, err = curl(gw, furl(vsftpd, "incoming/curl.bin"), out, "-T", str(src))
    assert rc == 0 and "HTTP/1.1 201" in head, (rc, head, err)  # after a 100, if any
    assert read(vsftpd.path("incoming/curl.bin")) == data


def test_put_where_the_server_refuses_is_an_error(gw, vsftpd):
    # the anonymous root is not writable: vsftpd says 553
    r = get(gw, furl(vsftpd, "pub/nothere.bin"), method="PUT", body=b"data")
    assert r.status in (403, 404, 409), r
    assert not os.path.exists(vsftpd.path("pub/nothere.bin"))


# ---------------------------------------------------------------- the cache

def test_second_download_is_a_cache_hit_with_one_retr(cgw, vsftpd):
    data = payload(200000, b"cache")
    vsftpd.put_file("pub/cached.bin", data, mtime=MTIME)
    u = furl(vsftpd, "pub/cached.bin")
    r1 = get(cgw, u)
    assert r1.status == 200 and r1.body == data, r1
    assert "stored" in (r1.header("Cache-Status") or ""), r1.headers
    r2 = get(cgw, u)
    assert r2.status == 200 and r2.body == data, r2
    assert is_hit(r2), r2.headers
    assert r2.header("ETag") == etag(len(data), MTIME), r2.headers
    # a client's validator is answered from the cache
    r3 = get(cgw, u, headers=[("If-None-Match", r1.header("ETag"))])
    assert r3.status == 304, r3
    lines = access_lines(cgw, lambda ln: "/pub/cached.bin" in ln, count=3)
    codes = [ln.split()[3] for ln in lines]
    assert "TCP_MISS/200" in codes, lines
    assert any(re.match(r"TCP_(MEM_)?HIT/200", c) for c in codes), lines
    time.sleep(0.5)  # vsftpd logs from the session process
    assert len(vsftpd.commands("RETR")) == 1, vsftpd.log_tail()


def test_concurrent_misses_collapse_into_one_retr(cgw, ctx):
    # vsftpd sends at 1 MB/s: the 3 MB transfer lasts long enough for every client to arrive
    s = Vsftpd(ctx.workdir, name="vsftpd-slow", extra=["anon_max_rate=1000000"]).start()
    try:
        data = payload(3 << 20, b"collapse")
        s.put_file("pub/popular.iso", data, mtime=MTIME)
        u = furl(s, "pub/popular.iso")
        out = [None] * 6

        def one(i):
            try:
                out[i] = get(cgw, u)
            except Exception as e:  # reported by the assertions below
                out[i] = e
        ts = [threading.Thread(target=one, args=(i,)) for i in range(len(out))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(T + 30)
        for r in out:
            assert isinstance(r, ghtest.Response), r
            assert r.status == 200 and r.body == data, r
        time.sleep(0.5)
        assert len(s.commands("RETR")) == 1, s.log_tail()
        assert sum("collapsed" in (r.header("Cache-Status") or "") for r in out) == 5, \
            [r.header("Cache-Status") for r in out]
    finally:
        s.stop()


def test_a_transfer_cut_by_the_server_is_short_and_not_stored(cgw, ctx):
    s = Vsftpd(ctx.workdir, name="vsftpd-cut", extra=["anon_max_rate=500000"]).start()
    try:
        data = payload(3 << 20, b"cut")
        s.put_file("pub/cut.iso", data, mtime=MTIME)
        u = furl(s, "pub/cut.iso")
        c = socket.create_connection(("127.0.0.1", cgw.port), timeout=T)
        c.sendall(ghtest.build(u, close=True))
        buf = b""
        while b"\r\n\r\n" not in buf or len(buf) < 200000:
            d = c.recv(65536)
            assert d, buf[:300]
            buf += d
        head, body = buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: %d" % len(data) in head
        # the server dies mid-transfer: every vsftpd session process
        for pid in ghtest.children(s.proc.pid):
            for k in ghtest.children(pid) + [pid]:
                try:
                    os.kill(k, 9)
                except OSError:
                    pass
        deadline = time.monotonic() + T
        while time.monotonic() < deadline:
            d = c.recv(65536)
            if not d:
                break
            body += d
        c.close()
        # the client sees the body cut short (connection closed), never a complete-looking one
        assert len(body) < len(data) and body == data[:len(body)], len(body)
        # and nothing was stored: the next request goes to the server again
        r = get(cgw, u)
        assert r.status == 200 and r.body == data, r
        assert not is_hit(r), r.headers
        assert len(s.wait_commands("RETR", 2)) == 2, s.log_tail()
    finally:
        s.stop()


def test_listing_is_cached_for_the_listing_expiry(cgw, vsftpd):
    listing_tree(vsftpd)
    u = furl(vsftpd, "pub/")
    r1 = get(cgw, u)
    assert r1.status == 200 and b"readme.txt" in r1.body, r1
    assert "max-age=300" in (r1.header("Cache-Control") or ""), r1.headers  # FTPListingExpire
    r2 = get(cgw, u)
    assert r2.status == 200 and r2.body == r1.body and is_hit(r2), r2.headers
    time.sleep(0.5)
    assert len(vsftpd.commands("LIST")) == 1, vsftpd.log_tail()


def test_put_invalidates_the_cached_copy(cgw, vsftpd):
    old = payload(4000, b"old")
    p = vsftpd.put_file("incoming/doc.txt", old, mtime=MTIME)
    ftp = ftp_vsftpd.pwd.getpwnam("ftp")
    os.chown(p, ftp.pw_uid, ftp.pw_gid)  # anonymous may overwrite it
    u = furl(vsftpd, "incoming/doc.txt")
    assert get(cgw, u).body == old
    r = get(cgw, u)
    assert is_hit(r) and r.body == old, r
    new = payload(5000, b"new")
    r = get(cgw, u, method="PUT", body=new)
    assert r.status == 200, r
    assert read(p) == new
    r = get(cgw, u)
    assert r.status == 200 and r.body == new, r
    assert not is_hit(r), r.headers
    assert len(vsftpd.wait_commands("RETR", 2)) == 2, vsftpd.log_tail()


def test_revalidation_fetches_a_changed_file(cgw, vsftpd):
    old = payload(10000, b"v1")
    p = vsftpd.put_file("pub/changing.bin", old, mtime=MTIME)
    u = furl(vsftpd, "pub/changing.bin")
    assert get(cgw, u).body == old
    assert is_hit(get(cgw, u))
    new = payload(12345, b"v2")
    with open(p, "wb") as f:
        f.write(new)
    os.utime(p, (MTIME + DAY, MTIME + DAY))
    r = get(cgw, u, headers=[("Cache-Control", "no-cache")])
    assert r.status == 200 and r.body == new, r
    assert r.header("ETag") == etag(len(new), MTIME + DAY), r.headers
    assert r.header("Last-Modified") == http_date(MTIME + DAY), r.headers
    assert len(vsftpd.wait_commands("RETR", 2)) == 2, vsftpd.log_tail()
    lines = access_lines(cgw, lambda ln: "/pub/changing.bin" in ln, count=3)
    assert any("TCP_REFRESH_MODIFIED/200" in ln for ln in lines), lines
    # and the new copy is what the cache serves next
    r = get(cgw, u)
    assert is_hit(r) and r.body == new, r
    time.sleep(0.5)
    assert len(vsftpd.commands("RETR")) == 2, vsftpd.log_tail()


def test_revalidation_of_an_unchanged_file_transfers_nothing(cgw, vsftpd):
    data = payload(10000, b"same")
    vsftpd.put_file("pub/same.bin", data, mtime=MTIME)
    u = furl(vsftpd, "pub/same.bin")
    assert get(cgw, u).body == data
    time.sleep(0.5)
    mark = vsftpd.log_mark()
    r = get(cgw, u, headers=[("Cache-Control", "no-cache")])
    assert r.status == 200 and r.body == data, r
    checks = ghtest.poll(lambda: vsftpd.commands("SIZE", mark) + vsftpd.commands("MDTM", mark),
                         timeout=5)
    assert checks, "no SIZE/MDTM after the mark:\n" + vsftpd.log_tail()
    time.sleep(0.5)
    assert vsftpd.commands("RETR", mark) == [], vsftpd.log_tail()
    assert len(vsftpd.commands("RETR")) == 1, vsftpd.log_tail()
    # no data connection at all: the SIZE/MDTM check is all it took
    verbs = {v for v, _ in vsftpd.commands(since=mark)}
    assert not verbs & {"EPSV", "PASV", "EPRT", "PORT", "RETR", "LIST"}, vsftpd.log_tail()
    assert "fwd-status=304" in (r.header("Cache-Status") or ""), r.headers
    lines = access_lines(cgw, lambda ln: "/pub/same.bin" in ln, count=2)
    assert any("TCP_REFRESH_UNMODIFIED/200" in ln for ln in lines), lines


# ---------------------------------------------------------------- policy

def test_proxyblock_refuses_an_ftp_host_by_name(start_daemon, ctx, vsftpd):
    vsftpd.put_file("pub/f.txt", b"blocked content", mtime=MTIME)
    d = start_daemon("ftpblock", timeout=T, extra=["ProxyBlock proxy.test"])
    mark = vsftpd.log_mark()
    r = get(d, "ftp://proxy.test:%d/pub/f.txt" % vsftpd.port)
    assert r.status == 403 and b"ProxyBlock" in r.body, r
    assert b"blocked content" not in r.body
    time.sleep(0.5)
    assert "CONNECT" not in vsftpd.log_text()[mark:], vsftpd.log_tail()


def test_proxyremote_ftp_still_goes_to_the_parent(start_daemon, ctx, vsftpd):
    vsftpd.put_file("pub/f.txt", b"from vsftpd", mtime=MTIME)
    stub = StubParent().start()
    try:
        d = start_daemon("ftpparent", timeout=T,
                         extra=["ProxyRemote ftp http://127.0.0.1:%d" % stub.port])
        mark = vsftpd.log_mark()
        u = furl(vsftpd, "pub/f.txt") + "?t=" + uuid.uuid4().hex
        r = get(d, u)
        assert r.status == 200 and r.body == stub.body, r
        assert [h["line"] for h in stub.heads] == ["GET %s HTTP/1.1" % u], stub.heads
        time.sleep(0.5)
        assert "CONNECT" not in vsftpd.log_text()[mark:], vsftpd.log_tail()
    finally:
        stub.stop()


# ---------------------------------------------------------------- the fixture itself

def test_fixture_vsftpd_serves_directly_and_logs_commands(vsftpd_user, tmp_path):
    # no proxy: curl talks FTP to vsftpd, so a gateway failure above is not the harness's
    out = str(tmp_path / "direct.txt")
    p = subprocess.run(["curl", "-sS", "--max-time", str(T), "-o", out, "-u",
                        "%s:%s" % (TEST_USER, TEST_PASSWORD),
                        "ftp://127.0.0.1:%d/private.txt" % vsftpd_user.port],
                       capture_output=True, text=True, timeout=T + 30, env=ghtest.clean_env())
    assert p.returncode == 0, p.stderr
    assert read(out) == vsftpd_user.private
    assert vsftpd_user.wait_commands("RETR", 1) == [("RETR", "private.txt")], \
        vsftpd_user.log_tail()
    # anonymous is off on this one
    p = subprocess.run(["curl", "-sS", "--max-time", str(T), "-o", out,
                        "ftp://127.0.0.1:%d/" % vsftpd_user.port],
                       capture_output=True, text=True, timeout=T + 30, env=ghtest.clean_env())
    assert p.returncode == 67, (p.returncode, p.stderr)  # curl: login denied


# ---------------------------------------------------------------- data connections

@pytest.mark.skipif(not ghtest.ipv6_loopback_ok(), reason="no IPv6 loopback")
def test_ipv6_server_through_epsv(gw, ctx):
    s = Vsftpd(ctx.workdir, name="vsftpd6", v6=True).start()
    try:
        data = payload(100000, b"v6")
        s.put_file("pub/v6.bin", data, mtime=MTIME)
        s.put_file("pub/other.txt", b"other", mtime=MTIME)
        r = get(gw, "ftp://origin6.test:%d/pub/v6.bin" % s.port)
        assert r.status == 200 and r.body == data, r
        r = get(gw, "ftp://[::1]:%d/pub/" % s.port, headers=[("Accept", "application/json")])
        assert r.status == 200, r
        assert {e["name"] for e in json.loads(r.body)["entries"]} == {"v6.bin", "other.txt"}
        assert len(s.wait_commands("EPSV", 2)) >= 2, s.log_tail()
        assert s.commands("PASV") == [], s.log_tail()
    finally:
        s.stop()


def gh_accepts(gh_bin, ctx, line):
    conf = os.path.join(ctx.workdir, "probe-%s.conf" % uuid.uuid4().hex[:8])
    with open(conf, "w") as f:
        f.write("Listen 127.0.0.1:%d\nUser root\n%s\n" % (ghtest.free_port(), line))
    p = subprocess.run([gh_bin, "-t", "-f", conf], capture_output=True, timeout=30,
                       env=ghtest.clean_env())
    return p.returncode == 0


def test_active_fallback_when_the_server_has_no_passive_mode(start_daemon, gh_bin, ctx):
    if not gh_accepts(gh_bin, ctx, "FTPActiveFallback On"):
        pytest.skip("this build does not parse FTPActiveFallback yet (config parsing is h4's)")
    s = Vsftpd(ctx.workdir, name="vsftpd-active", extra=["pasv_enable=NO"]).start()
    try:
        data = payload(200000, b"active")
        s.put_file("pub/a.bin", data, mtime=MTIME)
        d = start_daemon("ftpactive", timeout=T, extra=["FTPActiveFallback On"])
        r = get(d, furl(s, "pub/a.bin"))
        assert r.status == 200 and r.body == data, r
        used = {v for v, _ in s.commands()}
        assert used & {"EPRT", "PORT"}, s.log_tail()
        # and without the fallback the same server is an error, not a hang
        d2 = start_daemon("ftpnoactive", timeout=T, extra=["FTPActiveFallback Off"])
        r = get(d2, furl(s, "pub/a.bin"))
        assert r.status in (502, 503), r
    finally:
        s.stop()


# ---------------------------------------------------------------- failure reports

def _with_server_log(fn):
    """A failing test's message ends with the tail of its vsftpd's protocol log (the
    fixture's), so a failure shows what the gateway said to the server."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except AssertionError as e:
            servers = [v for v in kwargs.values() if isinstance(v, Vsftpd)]
            if not servers:
                raise
            tails = "".join("\n--- %s ---\n%s" % (s.log, s.log_tail(4000)) for s in servers)
            raise AssertionError("%s%s" % (e, tails)) from e
    return wrapper


for _name, _fn in list(globals().items()):
    if _name.startswith("test_") and callable(_fn):
        globals()[_name] = _with_server_log(_fn)


STATUS_LOCATION = ["<Location /gatehouse/>", "    SetHandler gatehouse-status",
                   "    Require ip 127.0.0.1 ::1", "</Location>"]


def status_get(d, path):
    """GET /gatehouse/PATH addressed to the proxy itself (origin-form)."""
    raw = ("GET /gatehouse/%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n"
           % (path, d.port)).encode()
    r, c = ghtest.request(d.port, raw)
    c.close()
    assert r.status == 200, r
    return r


def test_status_page_counts_ftp_requests(start_daemon, ctx, vsftpd):
    """FTP requests are counted on the status page like the others (a miss, a hit), and its
    recent requests show their URLs without a password."""
    log = new_log(ctx, "ftpstatus")
    root = os.path.join(ctx.workdir, "ftpstatus-" + uuid.uuid4().hex[:8])
    d = start_daemon("ftpstatus", access_log=log, timeout=T,
                     extra=["CacheRoot %s" % root, "CacheSize 64M", "CacheEnable lmdb ftp://"]
                     + STATUS_LOCATION)
    d.access_log = log
    data = payload(50000, b"status")
    vsftpd.put_file("pub/counted.bin", data, mtime=MTIME)
    u = furl(vsftpd, "pub/counted.bin")
    assert get(d, u).status == 200
    r2 = get(d, u)
    assert r2.status == 200 and r2.body == data and is_hit(r2), r2.headers
    # vsftpd takes any password for anonymous: this one must show nowhere
    secret = furl(vsftpd, "pub/counted.bin", "anonymous:S3cr3tPassw0rd")
    assert get(d, secret).status == 200
    access_lines(d, lambda ln: "/pub/counted.bin" in ln, count=3)

    def counted():
        a = dict(line.split(": ", 1) for line in
                 status_get(d, "?auto").text().splitlines() if ": " in line)
        return a if int(a["ReqHit"]) >= 1 and int(a["ReqMiss"]) >= 2 else None
    a = ghtest.poll(counted, timeout=10)
    assert a, status_get(d, "?auto").text()
    recent = status_get(d, "api/recent")
    assert b"S3cr3tPassw0rd" not in recent.body
    entries = [e for e in json.loads(recent.body)["entries"] if e["url"].startswith("ftp://")]
    assert len(entries) == 3, entries
    assert all(e["status"] == 200 and e["method"] == "GET" for e in entries), entries
    assert any(re.match(r"TCP_(MEM_)?HIT", e["action"]) for e in entries), entries
    assert any(e["action"] == "TCP_MISS" for e in entries), entries
    assert "ftp://anonymous@%s:%d/pub/counted.bin" % (HOST, vsftpd.port) in \
        [e["url"] for e in entries], entries
    page = status_get(d, "recent").text()
    assert "/pub/counted.bin" in page and "S3cr3tPassw0rd" not in page
