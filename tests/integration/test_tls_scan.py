"""
test_tls_scan.py - what the TLS listener offers, as a scanner sees it: `sslscan` (Debian's,
on the system OpenSSL 3) against `Listen PORT https` with the test CA's good certificate.

By default only TLS 1.2 and 1.3 are enabled and every accepted suite is one of the Mozilla
"intermediate" profile (AEAD with forward secrecy: no CBC, no static RSA key exchange, no
3DES/RC4/NULL/anonymous); `SSLProtocol -all +TLSv1.3` leaves TLS 1.3 alone; an SSLCipherSuite of
one TLS 1.2 suite leaves that suite alone for 1.2.

The first test is the control: the same scan against nginx deliberately configured weak (TLS 1.0
to 1.2, every cipher) must report TLS 1.0/1.1 and CBC / static-RSA suites, so "disabled" and
"not listed" below are the server's answer and not the scanner's blind spot. (This sslscan
cannot offer SSLv2/SSLv3, 3DES, RC4 or NULL at all: for those "disabled" is only the client's
limit; the listener's own test_tls_listener.py checks the protocol floor with s_client.)
"""

import re
import shutil
import subprocess

import pytest

from nginx_tls import nginx_tls  # noqa: F401  (fixture)
from tlsca import tlsca  # noqa: F401  (fixture)

# Mozilla server-side TLS "intermediate" (v5.7), OpenSSL names.
MOZILLA_INTERMEDIATE_TLS12 = {
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-CHACHA20-POLY1305"}
MOZILLA_INTERMEDIATE_TLS13 = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                              "TLS_CHACHA20_POLY1305_SHA256"}

PROTO_RE = re.compile(r"^(SSLv2|SSLv3|TLSv1\.[0-3])\s+(enabled|disabled)\s*$")
CIPHER_RE = re.compile(r"^(?:Preferred|Accepted)\s+(SSLv[23]|TLSv1\.[0-3])\s+\d+ bits\s+(\S+)")


def sslscan(port):
    """{protocol: enabled?}, {protocol: set of accepted suites}, the raw text."""
    exe = shutil.which("sslscan")
    assert exe, "sslscan is missing: scripts/test-deps.sh installs it"
    p = subprocess.run([exe, "--no-colour", "127.0.0.1:%d" % port], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=300)
    text = p.stdout.decode(errors="replace")
    assert p.returncode == 0, text[-3000:]
    protos, ciphers = {}, {}
    for line in text.splitlines():
        m = PROTO_RE.match(line)
        if m:
            protos[m.group(1)] = m.group(2) == "enabled"
        m = CIPHER_RE.match(line)
        if m:
            ciphers.setdefault(m.group(1), set()).add(m.group(2))
    assert set(protos) >= {"SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"}, text[-3000:]
    return protos, ciphers, text


def weak(suite):
    """Why a TLS 1.2 suite is outside the intermediate profile ('' when it is not weak by
    name)."""
    if not ("GCM" in suite or "CHACHA20" in suite):
        return "not AEAD (CBC/CCM or worse)"
    if not suite.startswith(("ECDHE-", "DHE-")):
        return "no forward secrecy (static RSA or anonymous key exchange)"
    if any(w in suite for w in ("NULL", "RC4", "DES", "EXPORT", "MD5", "ADH", "AECDH")):
        return "broken primitive"
    return ""


def listener_conf(tlsca, extra=()):
    lines = ["# written by test_tls_scan.py",
             "Listen 127.0.0.1:{port} https",
             "SSLCertificateFile %s" % tlsca.good_pem,
             "SSLCertificateKeyFile %s" % tlsca.good_key,
             "DNSServer 127.0.0.1:{dns_port}",
             "ProxyTimeout 5", "Workers 1", "LogLevel info", "User root",
             "MaxConnectionsPerClient 0"] + list(extra) + [
             "<Proxy *>", "    Require ip 127.0.0.1 ::1", "</Proxy>"]
    return "\n".join(lines) + "\n"


def test_scanner_sees_old_protocols_and_weak_suites_where_they_are(tlsca, nginx_tls):
    n = nginx_tls(tlsca.good_pem, tlsca.good_key, name="weak",
                  protocols="TLSv1 TLSv1.1 TLSv1.2", ciphers="ALL:@SECLEVEL=0")
    protos, ciphers, text = sslscan(n.port)
    assert protos["TLSv1.0"] and protos["TLSv1.1"] and protos["TLSv1.2"], text
    assert not protos["TLSv1.3"], text
    assert [s for s in ciphers["TLSv1.2"] if weak(s)], text
    assert "AES128-SHA" in ciphers["TLSv1.0"], text   # static RSA, CBC


@pytest.mark.slow
def test_listener_offers_tls12_and_13_with_intermediate_suites_only(tlsca, start_daemon):
    d = start_daemon("scan", text=listener_conf(tlsca))
    protos, ciphers, text = sslscan(d.port)
    assert not protos["SSLv2"] and not protos["SSLv3"], text
    assert not protos["TLSv1.0"] and not protos["TLSv1.1"], text
    assert protos["TLSv1.2"] and protos["TLSv1.3"], text
    assert set(ciphers) == {"TLSv1.2", "TLSv1.3"}, text
    bad = {s: weak(s) for s in ciphers["TLSv1.2"] if weak(s)}
    assert not bad, "%s\n%s" % (bad, text)
    assert ciphers["TLSv1.2"] <= MOZILLA_INTERMEDIATE_TLS12, text
    assert ciphers["TLSv1.3"] <= MOZILLA_INTERMEDIATE_TLS13, text
    # An RSA certificate: the ECDHE-RSA AEAD suites of the profile are all there.
    assert {"ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
            "ECDHE-RSA-CHACHA20-POLY1305"} <= ciphers["TLSv1.2"], text
    assert "TLS_AES_128_GCM_SHA256" in ciphers["TLSv1.3"], text


@pytest.mark.slow
def test_sslprotocol_tls13_only(tlsca, start_daemon):
    d = start_daemon("scan13", text=listener_conf(tlsca, ["SSLProtocol -all +TLSv1.3"]))
    protos, ciphers, text = sslscan(d.port)
    assert [p for p, on in protos.items() if on] == ["TLSv1.3"], text
    assert set(ciphers) == {"TLSv1.3"}, text


@pytest.mark.slow
def test_sslciphersuite_limits_tls12_to_one_suite(tlsca, start_daemon):
    d = start_daemon("scan1", text=listener_conf(
        tlsca, ["SSLCipherSuite ECDHE-RSA-AES256-GCM-SHA384"]))
    protos, ciphers, text = sslscan(d.port)
    assert protos["TLSv1.2"], text
    assert ciphers["TLSv1.2"] == {"ECDHE-RSA-AES256-GCM-SHA384"}, text
    assert not protos["TLSv1.0"] and not protos["TLSv1.1"], text
