"""
tlsca.py - the certificates of the TLS tests, made with the openssl CLI in one directory.

make(directory) makes (once: a stamp file says the set is complete, so a second call reuses it)
and returns a TLSCA whose attributes are the paths below; RSA 2048, SHA-256 throughout.

  ca_pem, ca_key            the test CA ("Gatehouse Test CA"), what clients trust
  good_pem, good_key        server cert signed by the CA for DNS:localhost, IP:127.0.0.1, IP:::1
  good_chain_pem            good_pem followed by ca_pem (for servers that send the chain)
  renewed_pem, renewed_key  the same names, another key and another serial (the reload test)
  expired_pem, expired_key  the same names, valid 2020-01-01 .. 2021-01-01 only (`openssl ca`:
                            openssl 3.0's x509 -req cannot back-date a certificate)
  wrongname_pem, wrongname_key   signed by the CA, for DNS:www.example.net only
  selfsigned_pem, selfsigned_key self-signed, for IP:127.0.0.1 and DNS:localhost
  client_pem                client certificate (clientAuth) signed by the CA, key appended
                            (the form SSLProxyMachineCertificateFile takes)
  client_crt, client_key    the same, certificate and key apart (curl --cert/--key)
  other_ca_pem, other_ca_key a second CA that signed nothing here (trusting it must fail)

serial(path) gives a certificate's serial ("0A1B..", upper-case hex as openssl prints it);
subject(path) its subject line. The `tlsca` session fixture makes the set once per session in
the integration work dir (a test file uses it with `from tlsca import tlsca  # noqa: F401`);
scripts such as tests/bench/tls.sh run `python3 tests/integration/tlsca.py DIR`, which makes
the set in DIR and prints name=path lines.
Stdlib only; every openssl call has a timeout; keys are written 0600.
"""

import os
import subprocess
import sys

import pytest

OPENSSL = "openssl"
STAMP = ".complete"
NAMES = "DNS:localhost,IP:127.0.0.1,IP:::1"

# Distinct fixed serials: a test can tell good from renewed by serial alone.
SERIAL_GOOD = "1001"
SERIAL_RENEWED = "1002"
SERIAL_WRONGNAME = "1003"
SERIAL_CLIENT = "1004"
SERIAL_EXPIRED = "1005"   # given to `openssl ca` through its serial file


class TLSCA:
    """Paths of one certificate set (see the module comment)."""

    def __init__(self, directory):
        self.dir = directory
        j = lambda n: os.path.join(directory, n)  # noqa: E731
        self.ca_pem, self.ca_key = j("ca.pem"), j("ca.key")
        self.good_pem, self.good_key = j("good.pem"), j("good.key")
        self.good_chain_pem = j("good-chain.pem")
        self.renewed_pem, self.renewed_key = j("renewed.pem"), j("renewed.key")
        self.expired_pem, self.expired_key = j("expired.pem"), j("expired.key")
        self.wrongname_pem, self.wrongname_key = j("wrongname.pem"), j("wrongname.key")
        self.selfsigned_pem, self.selfsigned_key = j("selfsigned.pem"), j("selfsigned.key")
        self.client_pem = j("client.pem")
        self.client_crt, self.client_key = j("client.crt"), j("client.key")
        self.other_ca_pem, self.other_ca_key = j("other-ca.pem"), j("other-ca.key")

    def kinds(self):
        """{kind: (cert, key)} of the server certificates."""
        return {"good": (self.good_pem, self.good_key),
                "renewed": (self.renewed_pem, self.renewed_key),
                "expired": (self.expired_pem, self.expired_key),
                "wrongname": (self.wrongname_pem, self.wrongname_key),
                "selfsigned": (self.selfsigned_pem, self.selfsigned_key)}

    def serial(self, path):
        return serial(path)


def _run(args, cwd):
    p = subprocess.run([OPENSSL] + args, cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed (%d): %s"
                           % (" ".join(args), p.returncode, p.stderr.decode(errors="replace")))
    return p.stdout.decode(errors="replace")


def _write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def _key(d, name):
    _run(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
          "-out", name], d)
    os.chmod(os.path.join(d, name), 0o600)


def _ca(d, stem, cn):
    _key(d, stem + ".key")
    _run(["req", "-x509", "-new", "-key", stem + ".key", "-sha256", "-days", "3650",
          "-subj", "/O=Gatehouse tests/CN=" + cn, "-out", stem + ".pem",
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign",
          "-addext", "subjectKeyIdentifier=hash"], d)


def _ext(d, name, san, usage):
    """An extension file for x509 -req / openssl ca: a leaf for san with the given EKU."""
    path = os.path.join(d, name + ".ext")
    _write(path, "[leaf]\nbasicConstraints=critical,CA:FALSE\n"
                 "keyUsage=critical,digitalSignature,keyEncipherment\n"
                 "extendedKeyUsage=%s\nsubjectAltName=%s\n"
                 "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n" % (usage, san))
    return name + ".ext"


def _leaf(d, stem, cn, san, serial_hex, usage="serverAuth", days=365):
    """A key and a certificate signed by the test CA (x509 -req)."""
    _key(d, stem + ".key")
    _run(["req", "-new", "-key", stem + ".key", "-subj", "/O=Gatehouse tests/CN=" + cn,
          "-out", stem + ".csr"], d)
    _run(["x509", "-req", "-in", stem + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
          "-set_serial", "0x" + serial_hex, "-sha256", "-days", str(days),
          "-extfile", _ext(d, stem, san, usage), "-extensions", "leaf", "-out", stem + ".pem"], d)


def _expired(d):
    """The expired leaf: `openssl ca` takes -startdate/-enddate in the past."""
    db = os.path.join(d, "cadb")
    os.makedirs(db, exist_ok=True)
    _write(os.path.join(db, "index.txt"), "")
    _write(os.path.join(db, "serial"), SERIAL_EXPIRED + "\n")
    _write(os.path.join(d, "ca.cnf"),
           "[ca]\ndefault_ca=test\n"
           "[test]\ndir=%s\ndatabase=$dir/cadb/index.txt\nserial=$dir/cadb/serial\n"
           "new_certs_dir=$dir/cadb\ncertificate=$dir/ca.pem\nprivate_key=$dir/ca.key\n"
           "default_md=sha256\npolicy=anything\nunique_subject=no\ncopy_extensions=none\n"
           "[anything]\norganizationName=optional\ncommonName=supplied\n" % d)
    _key(d, "expired.key")
    _run(["req", "-new", "-key", "expired.key", "-subj", "/O=Gatehouse tests/CN=localhost",
          "-out", "expired.csr"], d)
    _run(["ca", "-batch", "-notext", "-config", "ca.cnf", "-in", "expired.csr",
          "-startdate", "20200101000000Z", "-enddate", "20210101000000Z",
          "-extfile", _ext(d, "expired", NAMES, "serverAuth"), "-extensions", "leaf",
          "-out", "expired.pem"], d)


def make(directory):
    """Make the certificate set in directory (created if needed) unless it is complete
    already; return its TLSCA."""
    os.makedirs(directory, exist_ok=True)
    t = TLSCA(directory)
    if os.path.exists(os.path.join(directory, STAMP)):
        return t
    d = directory
    _ca(d, "ca", "Gatehouse Test CA")
    _ca(d, "other-ca", "Gatehouse Unrelated CA")
    _leaf(d, "good", "localhost", NAMES, SERIAL_GOOD)
    _leaf(d, "renewed", "localhost", NAMES, SERIAL_RENEWED)
    _leaf(d, "wrongname", "www.example.net", "DNS:www.example.net", SERIAL_WRONGNAME)
    _leaf(d, "client", "gatehouse-client", "DNS:gatehouse-client", SERIAL_CLIENT,
          usage="clientAuth")
    os.rename(os.path.join(d, "client.pem"), t.client_crt)
    _expired(d)
    _key(d, "selfsigned.key")
    _run(["req", "-x509", "-new", "-key", "selfsigned.key", "-sha256", "-days", "365",
          "-subj", "/O=Gatehouse tests/CN=127.0.0.1", "-out", "selfsigned.pem",
          "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
          "-addext", "basicConstraints=critical,CA:FALSE"], d)
    with open(t.good_pem) as a, open(t.ca_pem) as b:
        _write(t.good_chain_pem, a.read() + b.read())
    with open(t.client_crt) as a, open(t.client_key) as b:
        _write(t.client_pem, a.read() + b.read(), 0o600)
    _write(os.path.join(d, STAMP), "")
    return t


def serial(path):
    """The certificate's serial, upper-case hex without 0x (e.g. "1001")."""
    out = _run(["x509", "-noout", "-serial", "-in", os.path.abspath(path)], "/")
    return out.strip().split("=", 1)[1]


def subject(path):
    out = _run(["x509", "-noout", "-subject", "-in", os.path.abspath(path)], "/")
    return out.strip().split("=", 1)[1].strip()


@pytest.fixture(scope="session")
def tlsca(workdir):
    """The session's certificate set (made once, in the integration work dir)."""
    return make(os.path.join(workdir, "tlsca"))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: tlsca.py DIR  (makes the test certificates in DIR, prints their paths)")
    ca = make(os.path.abspath(sys.argv[1]))
    for k, v in sorted(vars(ca).items()):
        print("%s=%s" % (k, v))
