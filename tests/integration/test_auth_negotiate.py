"""
test_auth_negotiate.py - proxy authentication with Negotiate (Kerberos / SPNEGO) through
Squid's negotiate_kerberos_auth (issue 14), against a throwaway KDC on loopback (krb5kdc.py).

The realm GATEHOUSE.TEST has alice (a password) and HTTP/localhost (its key in a keytab the
helper reads through KRB5_KTNAME). curl --proxy-negotiate with alice's ticket in a file ccache
asks for HTTP@localhost, because the proxy is addressed as "localhost".
"""

import os
import socket
import subprocess
import threading

import pytest

import ghtest
import krb5kdc

pytestmark = pytest.mark.skipif(krb5kdc.available() is not None,
                                reason=str(krb5kdc.available()))

ALICE_PW = "Alice-Krb-pw-41"


@pytest.fixture(scope="module")
def kdc(workdir):
    k = krb5kdc.Kdc(workdir).start()
    try:
        k.alice = k.add_user("alice", ALICE_PW)
        k.add_service("HTTP/localhost")
        k.alice_cc = k.kinit("alice", ALICE_PW, os.path.join(k.dir, "alice.cc"))
        yield k
    finally:
        k.stop()


class _Capture(threading.Thread):
    """A one-connection server that answers 407 "Proxy-Authenticate: Negotiate" to every
    request and keeps the Negotiate token curl sends (the fixture's self-test)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(20)
        self.port = self.sock.getsockname()[1]
        self.tokens = []

    def run(self):
        try:
            c, _ = self.sock.accept()
        except OSError:
            return
        c.settimeout(10)
        buf = b""
        try:
            for _ in range(8):
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                for line in head.split(b"\r\n"):
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"proxy-authorization":
                        self.tokens.append(v.strip().decode())
                c.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                          b"Proxy-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n")
        except OSError:
            pass
        finally:
            c.close()
            self.sock.close()


def curl_negotiate(kdc, port, url, ccache=None, extra=(), timeout=30):
    """curl --proxy-negotiate through localhost:port; (status, headers text, body)."""
    argv = ["curl", "-sS", "--max-time", str(timeout), "-D", "-", "--proxy-negotiate", "-U",
            ":", "--proxy", "http://localhost:%d" % port] + list(extra) + [url]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=kdc.env(ccache), timeout=timeout + 10)
    out = r.stdout.decode("latin-1")
    heads = [b for b in out.split("\r\n\r\n")]
    return r.returncode, out, r.stderr.decode("latin-1", "replace")


def test_kdc_fixture_issues_tickets_the_squid_helper_accepts(kdc, tmp_path):
    """The fixture on its own: alice's TGT, curl's SPNEGO token for HTTP/localhost, and
    negotiate_kerberos_auth (the helper Gatehouse runs) answering it with alice's name."""
    assert "alice@GATEHOUSE.TEST" in kdc.klist(kdc.alice_cc)
    cap = _Capture()
    cap.start()
    curl_negotiate(kdc, cap.port, "http://www.example.test/", kdc.alice_cc)
    cap.join(30)
    assert cap.tokens and cap.tokens[0].startswith("Negotiate "), cap.tokens
    token = cap.tokens[0].split(" ", 1)[1]
    r = subprocess.run([krb5kdc.NEGOTIATE_HELPER, "-s", "HTTP/localhost@GATEHOUSE.TEST"],
                       input=("YR %s\n" % token).encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=kdc.env(), timeout=30)
    first = r.stdout.decode().splitlines()[0]
    assert first.startswith("OK ") or first.startswith("AF "), (first, r.stderr)
    assert "alice@GATEHOUSE.TEST" in first
    # A token the realm never issued is refused, not accepted.
    r = subprocess.run([krb5kdc.NEGOTIATE_HELPER, "-s", "HTTP/localhost@GATEHOUSE.TEST"],
                       input=b"YR YIIBAAAAAAAAAAAAAAAA\n", stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=kdc.env(), timeout=30)
    assert not r.stdout.decode().startswith(("OK", "AF")), r.stdout
