"""
test_tls_fixtures.py - self-checks of the TLS test fixtures (tlsca.py, nginx_tls.py): curl,
trusting only the test CA, gets the page from nginx serving the good certificate, and fails
with the expected curl error against the expired, wrong-name and self-signed ones, so the tests
built on them really see a good and a bad certificate of the intended kind. No daemon here.
"""

import subprocess

import pytest

import ghtest
from nginx_tls import nginx_tls  # noqa: F401  (fixture)
from tlsca import tlsca, serial, subject  # noqa: F401  (fixture)

BODY = b"tls fixture body\n"


def curl(url, *args, resolve_localhost=None):
    cmd = ["curl", "-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}"]
    if resolve_localhost:
        cmd += ["--resolve", "localhost:%d:127.0.0.1" % resolve_localhost]
    p = subprocess.run(cmd + list(args) + [url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60, env=ghtest.clean_env())
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def test_certificate_set_is_what_it_says(tlsca):
    assert serial(tlsca.good_pem) == "1001"
    assert serial(tlsca.renewed_pem) == "1002"
    assert serial(tlsca.good_pem) != serial(tlsca.renewed_pem)
    assert "Gatehouse Test CA" in subject(tlsca.ca_pem)
    assert "Gatehouse Unrelated CA" in subject(tlsca.other_ca_pem)
    with open(tlsca.client_pem) as f:
        text = f.read()
    assert "BEGIN CERTIFICATE" in text and "PRIVATE KEY" in text
    with open(tlsca.good_chain_pem) as f:
        assert f.read().count("BEGIN CERTIFICATE") == 2


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_good_certificate_verifies_with_the_test_ca(tlsca, nginx_tls, host):
    n = nginx_tls(tlsca.good_pem, tlsca.good_key, name="good", max_age=120)
    n.put("a.txt", BODY)
    rc, out, err = curl(n.url("a.txt", host=host), "--cacert", tlsca.ca_pem, "-D", "/dev/stderr",
                        resolve_localhost=n.port)
    assert rc == 0, err
    assert out == BODY + b"\n200"
    assert "cache-control: max-age=120" in err.lower()
    (e,) = n.wait_entries(1)
    assert e["status"] == "200" and e["protocol"] == "TLSv1.3"
    assert e["request"] == "GET /a.txt HTTP/1.1"
    assert e["sni"] == ("localhost" if host == "localhost" else "-")  # no SNI for an IP


def test_good_certificate_over_ipv6(tlsca, nginx_tls):
    if not ghtest.ipv6_loopback_ok():
        pytest.skip("no ::1 on this machine")
    n = nginx_tls(tlsca.good_pem, tlsca.good_key, name="good6", v6=True)
    n.put("b.txt", BODY)
    rc, out, err = curl(n.url("b.txt", host="::1"), "--cacert", tlsca.ca_pem)
    assert rc == 0, err
    assert out == BODY + b"\n200"


def test_good_certificate_fails_against_another_ca(tlsca, nginx_tls):
    n = nginx_tls(tlsca.good_pem, tlsca.good_key, name="good")
    n.put("a.txt", BODY)
    rc, out, err = curl(n.url("a.txt"), "--cacert", tlsca.other_ca_pem)
    assert rc == 60, err
    assert "unable to get local issuer certificate" in err


@pytest.mark.parametrize("kind,reason", [
    ("expired", "certificate has expired"),
    ("wrongname", "no alternative certificate subject name matches"),
    ("selfsigned", "self-signed certificate"),
])
def test_bad_certificates_fail_for_the_intended_reason(tlsca, nginx_tls, kind, reason):
    cert, key = tlsca.kinds()[kind]
    n = nginx_tls(cert, key, name=kind)
    n.put("a.txt", BODY)
    rc, out, err = curl(n.url("a.txt"), "--cacert", tlsca.ca_pem)
    assert rc == 60, err
    assert reason in err, err
    assert BODY not in out
    # The certificate itself is fine apart from that one fault: trusting it anyway works.
    rc, out, err = curl(n.url("a.txt"), "--insecure")
    assert rc == 0 and out == BODY + b"\n200", err


def test_tls12_only_and_client_certificate(tlsca, nginx_tls):
    n = nginx_tls(tlsca.good_pem, tlsca.good_key, name="mtls", tls12_only=True,
                  verify_client_ca=tlsca.ca_pem)
    n.put("a.txt", BODY)
    rc, out, err = curl(n.url("a.txt"), "--cacert", tlsca.ca_pem)
    assert rc == 0 and out.endswith(b"\n400"), (rc, out, err)   # no client certificate
    rc, out, err = curl(n.url("a.txt"), "--cacert", tlsca.ca_pem, "--cert", tlsca.client_pem)
    assert rc == 0 and out == BODY + b"\n200", err
    rc, out, err = curl(n.url("a.txt"), "--cacert", tlsca.ca_pem, "--tlsv1.3")
    assert rc != 0   # TLS 1.3 refused
    entries = n.wait_entries(2)
    assert [e["protocol"] for e in entries] == ["TLSv1.2", "TLSv1.2"]
    assert [e["client_verify"] for e in entries] == ["NONE", "SUCCESS"]


def test_two_instances_at_once_and_session_reuse(tlsca, nginx_tls):
    a = nginx_tls(tlsca.good_pem, tlsca.good_key, name="a", tls12_only=True)
    b = nginx_tls(tlsca.expired_pem, tlsca.expired_key, name="b")
    assert a.port != b.port
    a.put("x", "one")
    b.put("x", "two")
    # One curl, two transfers: "Connection: close" ends the first connection, so the second
    # transfer (after --next) opens another one and resumes the TLS 1.2 session.
    rc, out, err = curl(a.url("x"), "--cacert", tlsca.ca_pem, "-H", "Connection: close",
                        "--next", "-sS", "-o", "-", "--cacert", tlsca.ca_pem, a.url("x"))
    assert rc == 0, err
    assert out.startswith(b"one")
    entries = a.wait_entries(2)
    assert [e["reused"] for e in entries] == [".", "r"]
    assert entries[0]["connection"] != entries[1]["connection"]
    rc, out, err = curl(b.url("x"), "--insecure")
    assert out.startswith(b"two")
