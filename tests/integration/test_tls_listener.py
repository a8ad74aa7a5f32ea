"""
test_tls_listener.py - the HTTPS proxy listener (issue 13): `Listen PORT https` with the test CA's
certificate (tlsca.py) beside a plain listener, driven by real clients:
  - curl --proxy https://... --proxy-cacert: an http:// URL from origin.py, a CONNECT tunnel to
    an nginx TLS origin (nginx_tls.py), the status page and /proxy.pac over TLS;
  - the generated PAC offers HTTPS first and PROXY as the fallback;
  - openssl s_client: TLS 1.1 refused, 1.2 and 1.3 accepted, ALPN http/1.1, a weak cipher
    refused, a session resumed ("Reused") with the ticket of a first connection;
  - plain HTTP sent to the TLS port is closed and the daemon goes on serving; a client that
    connects and says nothing is closed after Timeout;
  - SIGHUP with a renewed certificate while a download is in flight over TLS: the download
    completes byte for byte, the next connection sees the new serial; SIGHUP with a broken
    certificate: the old one is still served and the error is logged;
  - the start line names the https listener and the kernel TLS line is logged.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import uuid

import pytest

import ghtest
from nginx_tls import nginx_tls  # noqa: F401
from origin import body_bytes
from tlsca import serial, tlsca  # noqa: F401

CURL = shutil.which("curl") or "/usr/bin/curl"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"

LOCATION = ("<Location /gatehouse/>\n    SetHandler gatehouse-status\n"
            "    Require ip 127.0.0.1 ::1\n</Location>")


class TLSProxy:
    """A daemon with a plain listener (d.port) and an https one (tport), its certificate and
    key copied into a directory of its own so that a test can replace them."""

    def __init__(self, d, tport, cert, key):
        self.d, self.tport, self.cert, self.key = d, tport, cert, key

    @property
    def port(self):
        return self.d.port


@pytest.fixture
def tls_proxy(start_daemon, tlsca, tmp_path):  # noqa: F811
    def make(extra=(), **kw):
        certdir = tmp_path / ("certs-%s" % uuid.uuid4().hex[:6])
        certdir.mkdir()
        cert, key = str(certdir / "proxy.pem"), str(certdir / "proxy.key")
        shutil.copy(tlsca.good_pem, cert)
        shutil.copy(tlsca.good_key, key)
        for attempt in range(3):
            tport = ghtest.free_port()
            try:
                d = start_daemon("tls", extra=["Listen 127.0.0.1:%d https" % tport,
                                               "SSLCertificateFile %s" % cert,
                                               "SSLCertificateKeyFile %s" % key] + list(extra),
                                 **kw)
            except RuntimeError:
                if attempt < 2:
                    continue
                raise
            if ghtest.wait_listening("127.0.0.1", tport, time.monotonic() + 10, d.proc):
                return TLSProxy(d, tport, cert, key)
        raise RuntimeError("no https listener")
    return make


def curl(args, timeout=60):
    p = subprocess.run([CURL, "-sS", "--max-time", str(timeout)] + args, capture_output=True,
                       timeout=timeout + 10)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def s_client(port, args=(), data=b"", timeout=30):
    """openssl s_client to 127.0.0.1:port; returns (exit status, stdout+stderr text)."""
    p = subprocess.run([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port,
                        "-servername", "localhost"] + list(args), input=data,
                       capture_output=True, timeout=timeout)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def served_serial(port, ca):
    """The serial of the certificate the listener presents now (verified against ca)."""
    rc, out = s_client(port, ["-CAfile", ca, "-verify_return_error"])
    assert rc == 0, out
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
    assert m, out
    p = subprocess.run([OPENSSL, "x509", "-noout", "-serial"], input=m.group(0).encode(),
                       capture_output=True, timeout=30)
    return p.stdout.decode().strip().split("=", 1)[1]


# ---------------------------------------------------------------- clients through the listener

def test_curl_through_the_https_proxy_fetches_an_http_url(tls_proxy, ctx, tlsca):  # noqa: F811
    p = tls_proxy()
    url = "http://origin.test:%d/size/100000?r=%s" % (ctx.origin_port, uuid.uuid4().hex)
    rc, body, err = curl(["--proxy", "https://127.0.0.1:%d" % p.tport,
                          "--proxy-cacert", tlsca.ca_pem, url])
    assert rc == 0, err
    assert body == body_bytes(100000)
    # the proxy's certificate is checked: without the CA curl refuses it
    rc, _, err = curl(["--proxy", "https://127.0.0.1:%d" % p.tport, url])
    assert rc != 0 and "certificate" in err.lower(), err
    # the same daemon still serves its plain listener
    assert ghtest.get(p.port, url).status == 200


def test_connect_through_the_https_proxy_to_a_tls_origin(start_daemon, nginx_tls,  # noqa: F811
                                                         tlsca, tmp_path):  # noqa: F811
    n = nginx_tls(tlsca.good_pem, tlsca.good_key, name="origin")
    body = os.urandom(50000)
    url = n.put("tunnel.bin", body)
    tport = ghtest.free_port()
    d = start_daemon("tlsconnect", allow_connect="443 %d" % n.port,
                     extra=["Listen 127.0.0.1:%d https" % tport,
                            "SSLCertificateFile %s" % tlsca.good_pem,
                            "SSLCertificateKeyFile %s" % tlsca.good_key])
    assert ghtest.wait_listening("127.0.0.1", tport, time.monotonic() + 10, d.proc)
    out = tmp_path / "got.bin"
    rc, _, err = curl(["--proxy", "https://127.0.0.1:%d" % tport, "--proxy-cacert", tlsca.ca_pem,
                       "--cacert", tlsca.ca_pem, "-o", str(out), url])
    assert rc == 0, err
    assert out.read_bytes() == body
    # nginx saw a TLS client through the tunnel (TLS inside TLS, never decrypted by the proxy)
    entries = n.wait_entries(1)
    assert entries and entries[-1]["request"].startswith("GET /tunnel.bin"), entries


def tls_post_echo(port, cafile, origin_port, body):
    """POST body to origin.py's /echo through the https listener at port, all of it written
    before reading anything; the decoded JSON answer, or the failure."""
    ctx = ssl.create_default_context(cafile=cafile)
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as t:
        t.sendall(b"POST http://origin.test:%d/echo HTTP/1.1\r\nHost: origin.test\r\n"
                  b"Content-Length: %d\r\nConnection: close\r\n\r\n"
                  % (origin_port, len(body)) + body)
        got = b""
        while True:
            try:
                chunk = t.recv(65536)
            except socket.timeout:
                return "no answer after %d bytes: %r" % (len(got), got[:200])
            if not chunk:
                break
            got += chunk
    head, _, doc = got.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        return "answer: %r" % got[:300]
    return json.loads(doc)


def test_upload_whose_last_records_openssl_read_ahead_completes(tls_proxy, ctx,
                                                                tlsca):  # noqa: F811
    """OpenSSL reads ahead (tls.c): records it took from the socket while the connection's
    buffer was full are in no descriptor's readiness. A client that has sent its whole request
    and waits must still get its answer: the stream reports them pending. Sizes around the
    input buffer (96 KiB) and TLS records (16 KiB), so that some reads stop at a record's
    edge."""
    p = tls_proxy()
    for size in (96 * 1024, 96 * 1024 + 16 * 1024, 5 * 16384, 1 << 20, (1 << 20) + 7):
        body = os.urandom(size)
        doc = tls_post_echo(p.tport, tlsca.ca_pem, ctx.origin_port, body)
        assert isinstance(doc, dict), (size, doc)
        assert doc["body_len"] == size and \
            doc["body_sha256"] == hashlib.sha256(body).hexdigest(), (size, doc["body_len"])
    assert p.d.alive()


def proc_cpu_seconds(pid):
    """User and system CPU time of a process so far, all its threads."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_part_of_a_record_read_ahead_waits_for_the_rest_without_spinning(tls_proxy, ctx,
                                                                         tlsca):  # noqa: F811
    """Half a TLS record that OpenSSL read ahead is "pending" in its buffer but cannot be
    decrypted before the rest comes: the connection must wait for the socket, not read again
    and again (a busy loop). The request completes once the rest arrives."""
    p = tls_proxy()
    sctx = ssl.create_default_context(cafile=tlsca.ca_pem)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = sctx.wrap_bio(inc, out, server_hostname="127.0.0.1")
    sock = socket.create_connection(("127.0.0.1", p.tport), timeout=30)
    try:
        for _ in range(20):  # the handshake, by hand over the socket
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                sock.sendall(out.read())
                inc.write(sock.recv(65536))
        sock.sendall(out.read())
        obj.write(b"GET http://origin.test:%d/size/100 HTTP/1.1\r\nHost: origin.test\r\n"
                  b"Connection: close\r\n\r\n" % ctx.origin_port)
        record = out.read()
        assert len(record) > 40, record
        sock.sendall(record[:len(record) // 2])
        time.sleep(0.5)  # the daemon reads the half record
        cpu0 = proc_cpu_seconds(p.d.proc.pid)
        time.sleep(3)
        used = proc_cpu_seconds(p.d.proc.pid) - cpu0
        assert used < 0.5, "the daemon used %.2f s of CPU waiting for half a record" % used
        sock.sendall(record[len(record) // 2:])
        got = b""
        while True:
            try:
                data = sock.recv(65536)
            except socket.timeout:
                break
            if not data:
                break
            inc.write(data)
            try:
                for _ in range(64):
                    plain = obj.read(65536)
                    if not plain:
                        break  # close_notify
                    got += plain
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                pass
            if got.endswith(body_bytes(100)):
                break
        assert got.startswith(b"HTTP/1.1 200") and got.endswith(body_bytes(100)), got[:300]
    finally:
        sock.close()
    assert p.d.alive()


def test_listener_sends_the_chain_its_files_hold(tls_proxy, tlsca, tmp_path):  # noqa: F811
    """The chain is what SSLCertificateFile (after the leaf) and SSLCertificateChainFile
    hold, built once (tls.c sets SSL_MODE_NO_AUTO_CHAIN rather than let OpenSSL build one per
    handshake): the leaf alone, or the leaf and the CA from either place."""
    def certs_sent(port):
        rc, out = s_client(port, ["-showcerts", "-CAfile", tlsca.ca_pem,
                                  "-verify_return_error"])
        assert rc == 0, out
        return out.count("-----BEGIN CERTIFICATE-----")

    assert certs_sent(tls_proxy().tport) == 1
    full = tls_proxy()
    shutil.copy(tlsca.good_chain_pem, full.cert)
    full.d.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while certs_sent(full.tport) != 2:
        assert time.monotonic() < deadline, "the reloaded chain was never sent"
        time.sleep(0.2)
    p = tls_proxy(extra=["SSLCertificateChainFile %s" % tlsca.ca_pem])
    assert certs_sent(p.tport) == 2


def test_status_page_and_pac_over_tls(tls_proxy, tlsca):  # noqa: F811
    p = tls_proxy(extra=[LOCATION])
    base = "https://127.0.0.1:%d" % p.tport
    rc, body, err = curl(["--cacert", tlsca.ca_pem, "-H", "Accept: text/html",
                          base + "/gatehouse/"])
    assert rc == 0, err
    assert b"Gatehouse" in body and b"<html" in body.lower(), body[:300]
    rc, pac, err = curl(["--cacert", tlsca.ca_pem, base + "/proxy.pac"])
    assert rc == 0, err
    assert b"FindProxyForURL" in pac
    # fetched over the https listener: that one first, the plain one as the fallback
    assert ('"HTTPS 127.0.0.1:%d; PROXY 127.0.0.1:%d"' % (p.tport, p.port)).encode() in pac, pac
    assert b'PROXY 127.0.0.1:%d; HTTPS' % p.port not in pac, pac


def test_generated_pac_offers_https_first_from_the_plain_listener(tls_proxy):
    p = tls_proxy()
    r, c = ghtest.request(p.port, "GET /proxy.pac HTTP/1.1\r\nHost: gh.test:%d\r\n"
                          "Connection: close\r\n\r\n" % p.port)
    c.close()
    assert r.status == 200, r
    assert ('"HTTPS gh.test:%d; PROXY gh.test:%d"' % (p.tport, p.port)).encode() in r.body, r.body
    assert b"; HTTPS" not in r.body, r.body


# ---------------------------------------------------------------- what the listener speaks

def test_protocols_tls12_and_13_only(tls_proxy, tlsca):  # noqa: F811
    p = tls_proxy()
    for flag, want in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
        rc, out = s_client(p.tport, [flag, "-CAfile", tlsca.ca_pem, "-verify_return_error"])
        assert rc == 0 and re.search(r"New, %s, Cipher is" % re.escape(want), out), out
        assert "Verify return code: 0 (ok)" in out, out
    for flag in ("-tls1_1", "-tls1"):
        # SECLEVEL=0: the client offers the old protocol; the server's alert refuses it
        rc, out = s_client(p.tport, [flag, "-cipher", "DEFAULT@SECLEVEL=0"])
        assert rc != 0, out
        assert "alert protocol version" in out, out


def test_alpn_http11(tls_proxy, tlsca):  # noqa: F811
    p = tls_proxy()
    rc, out = s_client(p.tport, ["-alpn", "h2,http/1.1", "-CAfile", tlsca.ca_pem])
    assert rc == 0 and "ALPN protocol: http/1.1" in out, out


def test_weak_cipher_refused(tls_proxy):
    p = tls_proxy()
    for cipher in ("AES128-SHA", "DES-CBC3-SHA:@SECLEVEL=0", "ECDHE-RSA-AES128-SHA"):
        rc, out = s_client(p.tport, ["-tls1_2", "-cipher", cipher])
        assert rc != 0, (cipher, out)
    # ... while an intermediate one works
    rc, out = s_client(p.tport, ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"])
    assert rc == 0 and "ECDHE-RSA-AES128-GCM-SHA256" in out, out


def test_cipher_lists_for_tls12_and_tls13_combine(tls_proxy, tlsca, tmp_path):  # noqa: F811
    # Apache 2.4: one SSLCipherSuite list per protocol; the TLS 1.3 line must not undo the
    # TLS 1.2 one (it did: the last line replaced the other), a later SSL line replaces the first
    p = tls_proxy(["SSLCipherSuite ECDHE-RSA-AES128-GCM-SHA256",
                   "SSLCipherSuite TLSv1.3 TLS_CHACHA20_POLY1305_SHA256",
                   "SSLCipherSuite SSL ECDHE-RSA-AES256-GCM-SHA384"])
    for proto, offer, ok in (
            ("-tls1_2", ["-cipher", "ECDHE-RSA-AES256-GCM-SHA384"], True),
            ("-tls1_2", ["-cipher", "ECDHE-RSA-AES128-GCM-SHA256"], False),
            ("-tls1_2", ["-cipher", "ECDHE-RSA-CHACHA20-POLY1305"], False),
            ("-tls1_3", ["-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"], True),
            ("-tls1_3", ["-ciphersuites", "TLS_AES_256_GCM_SHA384"], False),
            ("-tls1_3", ["-ciphersuites", "TLS_AES_128_GCM_SHA256"], False)):
        rc, out = s_client(p.tport, [proto, "-CAfile", tlsca.ca_pem] + offer)
        if ok:
            assert rc == 0 and ("Cipher is %s" % offer[1]) in out, (proto, offer, out)
        else:
            assert rc != 0 and "Cipher is" not in out.replace("Cipher is (NONE)", ""), \
                (proto, offer, out)
    # gatehouse -M prints both lines, and what it prints loads again with the same lists
    dump = subprocess.run([p.d.binary, "-M", "-f", p.d.conf], capture_output=True, text=True,
                          timeout=30, env=ghtest.clean_env())
    assert dump.returncode == 0, dump.stderr
    assert "SSLCipherSuite TLSv1.3 TLS_CHACHA20_POLY1305_SHA256" in dump.stdout, dump.stdout
    assert "SSLCipherSuite SSL ECDHE-RSA-AES256-GCM-SHA384" in dump.stdout, dump.stdout
    again = tmp_path / "dumped.conf"
    again.write_text(dump.stdout)
    chk = subprocess.run([p.d.binary, "-t", "-f", str(again)], capture_output=True, text=True,
                         timeout=30, env=ghtest.clean_env())
    assert chk.returncode == 0 and "Syntax OK" in chk.stderr, chk.stdout + chk.stderr


def ecdsa_leaf(tlsca, d):  # noqa: F811
    """A P-256 certificate for localhost signed by the test CA, and its key, in d."""
    d.mkdir(exist_ok=True)
    key, csr, pem, ext = (str(d / n) for n in ("ec.key", "ec.csr", "ec.pem", "ec.ext"))
    (d / "ec.ext").write_text("[leaf]\nbasicConstraints=critical,CA:FALSE\n"
                              "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
                              "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for args in (["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-out", key],
                 ["req", "-new", "-key", key, "-subj", "/O=Gatehouse tests/CN=localhost",
                  "-out", csr],
                 ["x509", "-req", "-in", csr, "-CA", tlsca.ca_pem, "-CAkey", tlsca.ca_key,
                  "-set_serial", "0x4ec", "-sha256", "-days", "30", "-extfile", ext,
                  "-extensions", "leaf", "-out", pem]):
        subprocess.run([OPENSSL] + args, check=True, capture_output=True, timeout=60)
    return pem, key


def presented_key_type(port, ca, args):
    """The public key algorithm of the certificate the listener presents to s_client args."""
    rc, out = s_client(port, ["-CAfile", ca, "-verify_return_error"] + args)
    assert rc == 0, out
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
    assert m, out
    p = subprocess.run([OPENSSL, "x509", "-noout", "-text"], input=m.group(0).encode(),
                       capture_output=True, timeout=30)
    t = p.stdout.decode()
    return "ec" if "id-ecPublicKey" in t else "rsa" if "rsaEncryption" in t else t


def test_an_rsa_and_an_ecdsa_certificate_by_the_clients_signature_algorithms(
        tls_proxy, tlsca, tmp_path):  # noqa: F811
    # Apache 2.4: SSLCertificateFile repeated, one per key type, the n-th key file with the
    # n-th certificate; the client's signature algorithms pick (a second line used to replace
    # the first: only one certificate was ever presented)
    ec_pem, ec_key = ecdsa_leaf(tlsca, tmp_path / "ec")
    p = tls_proxy(["SSLCertificateFile %s" % ec_pem, "SSLCertificateKeyFile %s" % ec_key])
    for proto in ("-tls1_2", "-tls1_3"):
        assert presented_key_type(p.tport, tlsca.ca_pem,
                                  [proto, "-sigalgs", "RSA-PSS+SHA256"]) == "rsa"
        assert presented_key_type(p.tport, tlsca.ca_pem,
                                  [proto, "-sigalgs", "ECDSA+SHA256"]) == "ec"
    # a client that takes either still gets a verified certificate
    assert presented_key_type(p.tport, tlsca.ca_pem, []) in ("rsa", "ec")


@pytest.mark.parametrize("proto", ["-tls1_2", "-tls1_3"])
def test_session_resumption(tls_proxy, tlsca, tmp_path, proto):  # noqa: F811
    p = tls_proxy()
    sess = str(tmp_path / "sess.pem")
    req = b"GET /proxy.pac HTTP/1.1\r\nHost: x:1\r\nConnection: close\r\n\r\n"
    rc, out = s_client(p.tport, [proto, "-CAfile", tlsca.ca_pem, "-ign_eof", "-sess_out", sess],
                       data=req)
    assert rc == 0 and "FindProxyForURL" in out, out
    assert "New," in out, out
    rc, out = s_client(p.tport, [proto, "-CAfile", tlsca.ca_pem, "-ign_eof", "-sess_in", sess],
                       data=req)
    assert rc == 0 and "FindProxyForURL" in out, out
    assert "Reused," in out, out


# ---------------------------------------------------------------- misbehaving clients

def test_plain_http_to_the_tls_port_is_closed_and_the_daemon_goes_on(tls_proxy, ctx,
                                                                     tlsca):  # noqa: F811
    p = tls_proxy()
    s = socket.create_connection(("127.0.0.1", p.tport), timeout=10)
    try:
        s.sendall(b"GET http://origin.test:%d/size/10 HTTP/1.1\r\nHost: origin.test\r\n\r\n"
                  % ctx.origin_port)
        got = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(4096)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            got += chunk
        else:
            pytest.fail("the connection stayed open")
        assert b"HTTP/1.1 200" not in got and b"0123" not in got, got
    finally:
        s.close()
    rc, body, err = curl(["--proxy", "https://127.0.0.1:%d" % p.tport,
                          "--proxy-cacert", tlsca.ca_pem,
                          "http://origin.test:%d/size/10" % ctx.origin_port])
    assert rc == 0 and body == body_bytes(10), err
    assert p.d.alive()


def test_stalled_handshake_is_closed_after_timeout(tls_proxy, tlsca):  # noqa: F811
    p = tls_proxy(extra=["Timeout 2"])
    s = socket.create_connection(("127.0.0.1", p.tport), timeout=15)
    t0 = time.monotonic()
    try:
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
        waited = time.monotonic() - t0
    finally:
        s.close()
    assert data == b"", data
    assert 1.5 <= waited < 12, waited
    # the listener still works
    rc, out = s_client(p.tport, ["-CAfile", tlsca.ca_pem, "-verify_return_error"])
    assert rc == 0, out


# ---------------------------------------------------------------- reloads and the log

def slow_over_tls(port, ctx, ca, out, result, size):
    url = "http://origin.test:%d/slow?size=%d&chunk=10000&delay=100&t=%s" % (
        ctx.origin_port, size, uuid.uuid4().hex)
    rc, _, err = curl(["--proxy", "https://127.0.0.1:%d" % port, "--proxy-cacert", ca,
                       "-o", out, url], timeout=90)
    result["rc"], result["err"] = rc, err


@pytest.mark.slow
def test_reload_with_a_renewed_certificate_during_a_download(tls_proxy, ctx, tlsca,  # noqa: F811
                                                             tmp_path):
    p = tls_proxy()
    assert served_serial(p.tport, tlsca.ca_pem) == serial(tlsca.good_pem)
    size = 400000
    out, result = str(tmp_path / "slow.bin"), {}
    t0 = time.time()
    t = threading.Thread(target=slow_over_tls, args=(p.tport, ctx, tlsca.ca_pem, out, result,
                                                     size), daemon=True)
    t.start()
    assert ghtest.poll(lambda: [r for r in ctx.origin.requests_with("/slow")
                                if r["time"] >= t0], timeout=10), "download did not start"
    shutil.copy(tlsca.renewed_pem, p.cert)
    shutil.copy(tlsca.renewed_key, p.key)
    ghtest.sighup_and_wait(p.d)
    assert served_serial(p.tport, tlsca.ca_pem) == serial(tlsca.renewed_pem)
    assert "rc" not in result, "the download ended before the reload could matter"
    t.join(timeout=90)
    assert not t.is_alive()
    assert result["rc"] == 0, result
    with open(out, "rb") as f:
        assert f.read() == body_bytes(size)


def test_reload_with_a_broken_certificate_keeps_the_old_one(tls_proxy, ctx, tlsca):  # noqa: F811
    p = tls_proxy()
    good = serial(tlsca.good_pem)
    assert served_serial(p.tport, tlsca.ca_pem) == good
    # a renewed certificate whose key was not renewed with it
    shutil.copy(tlsca.renewed_pem, p.cert)
    off = p.d.stderr_size()
    ghtest.sighup_and_wait(p.d)
    log = p.d.stderr_text(off)
    assert re.search(r"\[error\] TLS: %s:\d+: SSLCertificate" % re.escape(p.d.conf), log), log
    assert "keeping the certificates" in log, log
    assert "PRIVATE KEY" not in log
    assert served_serial(p.tport, tlsca.ca_pem) == good
    # ... and the proxy works over it
    rc, body, err = curl(["--proxy", "https://127.0.0.1:%d" % p.tport,
                          "--proxy-cacert", tlsca.ca_pem,
                          "http://origin.test:%d/size/10" % ctx.origin_port])
    assert rc == 0 and body == body_bytes(10), err
    # garbage instead of a certificate: the same
    with open(p.cert, "w") as f:
        f.write("not a certificate\n")
    ghtest.sighup_and_wait(p.d)
    assert served_serial(p.tport, tlsca.ca_pem) == good
    # the good pair back: taken
    shutil.copy(tlsca.renewed_pem, p.cert)
    shutil.copy(tlsca.renewed_key, p.key)
    ghtest.sighup_and_wait(p.d)
    assert served_serial(p.tport, tlsca.ca_pem) == serial(tlsca.renewed_pem)


def _auto(port):
    st, _, body = ghtest.status_page(port, "?auto")
    assert st == 200, body
    return dict(ln.split(": ", 1) for ln in body.decode().splitlines() if ": " in ln)


def test_reload_that_keeps_the_old_certificate_is_reported_as_failed(tls_proxy, ctx,  # noqa: F811
                                                                     tlsca):  # noqa: F811
    p = tls_proxy(extra=[LOCATION])
    good = serial(tlsca.good_pem)
    url = "http://origin.test:%d/size/10" % ctx.origin_port
    assert ghtest.get(p.port, url).status == 200
    # a certificate whose key was not renewed with it, and a change beside it that does apply
    shutil.copy(tlsca.renewed_pem, p.cert)
    with open(p.d.conf, "a") as f:
        f.write("ProxyBlock origin.test\n")
    off = p.d.stderr_size()
    ghtest.sighup_and_wait(p.d)
    m = re.search(r"\[error\] (TLS: .*; keeping the certificates and settings in use)$",
                  p.d.stderr_text(off), re.M)
    assert m, p.d.stderr_text(off)
    logged = m.group(1)
    assert served_serial(p.tport, tlsca.ca_pem) == good
    assert ghtest.get(p.port, url).status == 403   # the rest of the new file runs
    a = _auto(p.port)
    assert a["LastReload"] != "0" and a["LastReloadOK"] == "0", a
    assert a["LastReloadError"] == logged, (a, logged)
    assert a["LastReloadApplied"] == "1", a
    st, _, body = ghtest.status_page(p.port, "api/overview")
    j = json.loads(body)
    assert j["reload_ok"] is False and j["reload_error"] == logged, j
    assert j["reload_applied"] is True, j
    st, _, body = ghtest.status_page(p.port, "metrics")
    assert "gatehouse_config_last_reload_successful 0\n" in body.decode()
    st, _, body = ghtest.status_page(p.port, "")
    html = body.decode()
    row = html[html.index('id="ov-reload"'):]
    row = row[:row.index("</tr>")]
    assert "failed" in row and "SSLCertificate" in row, row
    assert "the TLS certificates and settings of the previous one were kept" in row, row
    assert "the previous configuration keeps running" not in row, row
    # the good pair: the reload succeeds again
    shutil.copy(tlsca.renewed_key, p.key)
    ghtest.sighup_and_wait(p.d)
    assert served_serial(p.tport, tlsca.ca_pem) == serial(tlsca.renewed_pem)
    a = _auto(p.port)
    assert a["LastReloadOK"] == "1" and a["LastReloadError"] == "", a
    assert a["LastReloadApplied"] == "1", a


def test_reload_turns_a_plain_listener_into_an_https_one(tls_proxy, ctx, tlsca):  # noqa: F811
    p = tls_proxy()
    extra = ghtest.free_port()
    with open(p.d.conf) as f:
        text = f.read()
    with open(p.d.conf, "w") as f:
        f.write(text.replace("Listen 127.0.0.1:%d https\n" % p.tport,
                             "Listen 127.0.0.1:%d\nListen 127.0.0.1:%d https\n"
                             % (p.tport, extra)))
    ghtest.sighup_and_wait(p.d)
    assert "now listening on 127.0.0.1:%d (https)" % extra in p.d.stderr_text()
    url = "http://origin.test:%d/size/10" % ctx.origin_port
    # the former https port speaks plain HTTP now, the new one TLS. A connection that reached
    # the old listener's accept queue just before the swap is still served by it, with TLS,
    # so a plain request can be reset for that moment: try again until the new one answers.
    def plain_ok():
        try:
            return ghtest.get(p.tport, url).status == 200
        except OSError:
            return False
    assert ghtest.poll(plain_ok, timeout=5)
    rc, body, err = curl(["--proxy", "https://127.0.0.1:%d" % extra,
                          "--proxy-cacert", tlsca.ca_pem, url])
    assert rc == 0 and body == body_bytes(10), err


def test_start_line_names_the_https_listener_and_kernel_tls(tls_proxy):
    p = tls_proxy()
    # the start line follows the listeners' readiness (a slow sanitizer build writes it late)
    assert ghtest.poll(lambda: "127.0.0.1:%d (https)" % p.tport in p.d.stderr_text(),
                       timeout=30), p.d.stderr_text()
    log = p.d.stderr_text()
    assert "127.0.0.1:%d (https)" % p.port not in log, log
    assert re.search(r"\[notice\] TLS: .*kernel TLS (available|not available)", log), log


# ---------------------------------------------------------------- the status page counts TLS

def test_status_page_and_metrics_count_tls_handshakes(tls_proxy, nginx_tls, tlsca,  # noqa: F811
                                                      tmp_path):
    from test_status_overview import auto, metrics_map
    n = nginx_tls(tlsca.good_pem, tlsca.good_key, name="counted")
    url = n.put("counted.txt", b"counted over TLS\n")
    p = tls_proxy(extra=[LOCATION, "SSLProxyCACertificateFile %s" % tlsca.ca_pem])
    before = auto(p.port)
    # the listener: one full handshake, one resumed with its session, one refused (TLS 1.1)
    sess = str(tmp_path / "count.sess")
    req = b"GET /proxy.pac HTTP/1.1\r\nHost: x:1\r\nConnection: close\r\n\r\n"
    for args in (["-sess_out", sess], ["-sess_in", sess]):
        rc, out = s_client(p.tport, ["-tls1_2", "-CAfile", tlsca.ca_pem, "-ign_eof"] + args,
                           data=req)
        assert rc == 0 and "FindProxyForURL" in out, out
    rc, out = s_client(p.tport, ["-tls1_1"])
    assert rc != 0, out
    # the client side: an https:// URL fetched from nginx over TLS
    r = ghtest.get(p.port, url)
    assert r.status == 200 and r.body == b"counted over TLS\n", r

    def grew(a, key):
        return int(a[key]) - int(before[key])

    a = auto(p.port)
    assert grew(a, "TLSServerHandshakes") == 2, a
    assert grew(a, "TLSServerResumed") == 1, a
    assert grew(a, "TLSServerFailed") >= 1, a
    assert grew(a, "TLSClientHandshakes") == 1, a
    assert grew(a, "TLSClientFailed") == 0, a
    assert int(a["TLSKernel"]) >= 0
    # the overview page shows them, and /metrics agrees with ?auto (promtool accepts it)
    st, _, html = ghtest.status_page(p.port, "")
    assert st == 200
    html = html.decode()
    m = re.search(r'<span data-ov="tls_server">([^<]*)</span>', html)
    assert m and "(%s resumed)" % a["TLSServerResumed"] in m.group(1), html
    st, _, body = ghtest.status_page(p.port, "metrics")
    assert st == 200
    promtool = shutil.which("promtool")
    assert promtool
    pr = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                        timeout=60)
    assert pr.returncode == 0, pr.stdout + pr.stderr
    mm = metrics_map(body.decode())
    srv = 'gatehouse_tls_handshakes_total{side="server",result="%s"}'
    assert mm[srv % "resumed"] == int(a["TLSServerResumed"])
    assert mm[srv % "full"] + mm[srv % "resumed"] >= 2
    assert mm['gatehouse_tls_handshakes_total{side="client",result="full"}'] + \
        mm['gatehouse_tls_handshakes_total{side="client",result="resumed"}'] >= 1


def test_client_over_its_connection_limit_is_closed_without_a_cleartext_page(tls_proxy,
                                                                              tlsca):  # noqa: F811
    """MaxConnectionsPerClient on an https listener: the refused connection gets no plain-text
    503 (a TLS client would read it as garbage) and no handshake: it is closed, and logged."""
    import ssl
    p = tls_proxy(extra=["MaxConnectionsPerClient 2", "KeepAliveTimeout 60"])
    sctx = ssl.create_default_context(cafile=tlsca.ca_pem)
    held = []
    try:
        for _ in range(2):
            # the fixture's own readiness probe may still be counted for a moment (the
            # daemon's lingering close): a refused one is retried until that has ended
            deadline = time.monotonic() + 10
            while True:
                s = socket.create_connection(("127.0.0.1", p.tport), timeout=10)
                try:
                    held.append(sctx.wrap_socket(s, server_hostname="localhost"))
                    break
                except (ssl.SSLError, ConnectionResetError):
                    s.close()
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        raw = socket.create_connection(("127.0.0.1", p.tport), timeout=10)
        held.append(raw)
        raw.settimeout(10)
        data = b""
        try:
            while True:
                chunk = raw.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        assert b"HTTP/1.1 503" not in data and data == b"", data[:200]
        deadline = time.monotonic() + 10
        while "refusing more" not in p.d.stderr_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "MaxConnectionsPerClient 2): refusing more" in p.d.stderr_text()
        # the two it holds still work
        held[0].sendall(b"GET /proxy.pac HTTP/1.1\r\nHost: x:1\r\nConnection: close\r\n\r\n")
        got = b""
        while True:
            chunk = held[0].recv(4096)
            if not chunk:
                break
            got += chunk
        assert got.startswith(b"HTTP/1.1 200") and b"FindProxyForURL" in got, got[:200]
    finally:
        for s in held:
            s.close()
