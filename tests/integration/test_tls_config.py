"""
test_tls_config.py - the TLS directives' errors (issue 13): every mistake an admin can make with
the SSL* lines, `Listen ... https` and FTPTLS is reported as FILE:LINE: message by `gatehouse -t`,
and a start with the same file refuses with the same message (exit status 1, nothing listening).
Parse errors come from cfg.c; what needs the files read (missing, not PEM, a key that is not the
certificate's, a cipher list OpenSSL refuses) from tls_set_build, with the directive's line. A
private key never appears in a message. Certificates come from tlsca.py (openssl CLI).
"""

import os
import re
import shutil
import subprocess
import time

import pytest

import ghtest
from tlsca import tlsca  # noqa: F401

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


def write_conf(tmp_path, name, lines):
    """A minimal configuration: Listen, User root (the suite may run as root), then lines.
    Returns (path, {directive line text: line number})."""
    port = ghtest.free_port()
    text = ["Listen 127.0.0.1:%d" % port, "User root", "LogLevel info"] + list(lines)
    path = tmp_path / name
    path.write_text("\n".join(text) + "\n")
    return str(path), port


def check(gh_bin, conf):
    p = subprocess.run([gh_bin, "-t", "-f", conf], capture_output=True, text=True, timeout=30,
                       env=ghtest.clean_env())
    return p.returncode, p.stdout + p.stderr


def start_refuses(gh_bin, conf, port):
    """Start the daemon for real: it must exit 1 by itself, saying why, having never listened."""
    p = subprocess.run([gh_bin, "-f", conf], capture_output=True, text=True, timeout=30,
                       env=ghtest.clean_env(), stdin=subprocess.DEVNULL)
    assert not ghtest.can_connect("127.0.0.1", port)
    return p.returncode, p.stdout + p.stderr


def line_of(conf, prefix):
    with open(conf) as f:
        for i, ln in enumerate(f.read().splitlines(), 1):
            if ln.startswith(prefix):
                return i
    raise AssertionError("%s not in %s" % (prefix, conf))


def refused_everywhere(gh_bin, conf, port, pattern):
    """-t and a start both fail (1) with a message matching pattern (a regex)."""
    rc, out = check(gh_bin, conf)
    assert rc == 1 and re.search(pattern, out), out
    assert "Syntax OK" not in out
    rc, out2 = start_refuses(gh_bin, conf, port)
    assert rc == 1 and re.search(pattern, out2), out2
    return out


def test_good_tls_configuration_is_syntax_ok(gh_bin, tlsca, tmp_path):  # noqa: F811
    conf, _ = write_conf(tmp_path, "good.conf", [
        "Listen 127.0.0.1:%d https" % ghtest.free_port(),
        "SSLCertificateFile %s" % tlsca.good_pem, "SSLCertificateKeyFile %s" % tlsca.good_key,
        "SSLCertificateChainFile %s" % tlsca.ca_pem, "SSLProtocol all -SSLv3 -TLSv1 -TLSv1.1",
        "SSLProxyCACertificateFile %s" % tlsca.ca_pem, "SSLProxyVerify require",
        "SSLProxyMachineCertificateFile %s" % tlsca.client_pem, "FTPTLS Try"])
    rc, out = check(gh_bin, conf)
    assert rc == 0 and out.endswith("Syntax OK\n"), out


def test_missing_certificate_file_names_the_line(gh_bin, tlsca, tmp_path):  # noqa: F811
    missing = str(tmp_path / "no-such-cert.pem")
    conf, port = write_conf(tmp_path, "missing.conf", [
        "Listen 127.0.0.1:%d https" % ghtest.free_port(),
        "SSLCertificateFile %s" % missing, "SSLCertificateKeyFile %s" % tlsca.good_key])
    n = line_of(conf, "SSLCertificateFile")
    out = refused_everywhere(gh_bin, conf, port, r"%s:%d: SSLCertificateFile" % (re.escape(conf), n))
    assert missing in out and re.search(r"no such file", out, re.I), out


def test_key_that_does_not_match_the_certificate(gh_bin, tlsca, tmp_path):  # noqa: F811
    conf, port = write_conf(tmp_path, "mismatch.conf", [
        "Listen 127.0.0.1:%d https" % ghtest.free_port(),
        "SSLCertificateFile %s" % tlsca.good_pem, "SSLCertificateKeyFile %s" % tlsca.renewed_key])
    lines = (line_of(conf, "SSLCertificateFile"), line_of(conf, "SSLCertificateKeyFile"))
    out = refused_everywhere(gh_bin, conf, port, r"%s:(%d|%d): SSLCertificate" % (
        (re.escape(conf),) + lines))
    assert re.search(r"match", out, re.I), out
    # the key itself is never shown
    with open(tlsca.renewed_key) as f:
        body = f.read().splitlines()[1]
    assert body not in out and "PRIVATE KEY" not in out, out


def test_not_a_pem_file(gh_bin, tlsca, tmp_path):  # noqa: F811
    junk = tmp_path / "junk.pem"
    junk.write_text("this is not a certificate\n")
    conf, port = write_conf(tmp_path, "junk.conf", [
        "Listen 127.0.0.1:%d https" % ghtest.free_port(),
        "SSLCertificateFile %s" % junk, "SSLCertificateKeyFile %s" % tlsca.good_key])
    n = line_of(conf, "SSLCertificateFile")
    out = refused_everywhere(gh_bin, conf, port, r"%s:%d: SSLCertificateFile" % (re.escape(conf), n))
    assert "certificate" in out.lower(), out


def test_key_file_that_is_not_a_key(gh_bin, tlsca, tmp_path):  # noqa: F811
    conf, port = write_conf(tmp_path, "notkey.conf", [
        "Listen 127.0.0.1:%d https" % ghtest.free_port(),
        "SSLCertificateFile %s" % tlsca.good_pem, "SSLCertificateKeyFile %s" % tlsca.ca_pem])
    n = line_of(conf, "SSLCertificateKeyFile")
    refused_everywhere(gh_bin, conf, port, r"%s:%d: SSLCertificateKeyFile" % (re.escape(conf), n))


@pytest.mark.parametrize("line,message", [
    ("SSLProtocol TLSv1.4", 'SSLProtocol: unknown protocol "TLSv1.4"'),
    ("SSLProtocol +SSLv3", "SSLProtocol: SSLv3 is not supported: Gatehouse speaks TLSv1.2 and "
     "TLSv1.3 only"),
    ("SSLProtocol TLSv1.1", "SSLProtocol: TLSv1.1 is not supported"),
    ("SSLProtocol all -TLSv1.2 -TLSv1.3", "SSLProtocol: no protocol left"),
    ("SSLProxyProtocol SSLv3", "SSLProxyProtocol: SSLv3 is not supported"),
    ("SSLProxyVerify optional", 'SSLProxyVerify: expected require or none, got "optional"'),
    ("FTPTLS Sometimes", 'FTPTLS: expected Off, Try or Require, got "Sometimes"'),
    ("Listen 127.0.0.1:1 tls", 'Listen: expected http or https after the address, got "tls"'),
    ("SSLVerifyClient require", "SSLVerifyClient: not supported (Gatehouse's TLS directives"),
])
def test_bad_values_are_file_line_errors(gh_bin, tmp_path, line, message):
    conf, port = write_conf(tmp_path, "bad.conf", [line])
    n = line_of(conf, line)
    refused_everywhere(gh_bin, conf, port, re.escape("%s:%d: %s" % (conf, n, message)))


def test_https_listen_without_certificate_names_the_listen_line(gh_bin, tmp_path):
    tport = ghtest.free_port()
    conf, port = write_conf(tmp_path, "nocert.conf", ["ProxyVia On",
                                                       "Listen 127.0.0.1:%d https" % tport])
    n = line_of(conf, "Listen 127.0.0.1:%d https" % tport)
    out = refused_everywhere(gh_bin, conf, port, re.escape(
        "%s:%d: Listen 127.0.0.1:%d https: SSLCertificateFile is missing" % (conf, n, tport)))
    assert not ghtest.can_connect("127.0.0.1", tport), out


def test_cipher_list_openssl_refuses(gh_bin, tlsca, tmp_path):  # noqa: F811
    conf, port = write_conf(tmp_path, "cipher.conf", [
        "Listen 127.0.0.1:%d https" % ghtest.free_port(),
        "SSLCertificateFile %s" % tlsca.good_pem, "SSLCertificateKeyFile %s" % tlsca.good_key,
        "SSLCipherSuite NO-SUCH-CIPHER"])
    n = line_of(conf, "SSLCipherSuite")
    refused_everywhere(gh_bin, conf, port, r"%s:%d: SSLCipherSuite" % (re.escape(conf), n))


def test_cipher_list_error_names_the_line_of_its_protocol(gh_bin, tlsca, tmp_path):  # noqa: F811
    # the bad TLS 1.3 list stays in force beside a later TLS 1.2 line: its own line is named
    for name in ("SSLCipherSuite", "SSLProxyCipherSuite"):
        conf, port = write_conf(tmp_path, "c13-%s.conf" % name, [
            "Listen 127.0.0.1:%d https" % ghtest.free_port(),
            "SSLCertificateFile %s" % tlsca.good_pem,
            "SSLCertificateKeyFile %s" % tlsca.good_key,
            "%s TLSv1.3 TLS_NO_SUCH_SUITE" % name,
            "%s ECDHE-RSA-AES128-GCM-SHA256" % name])
        n = line_of(conf, "%s TLSv1.3" % name)
        refused_everywhere(gh_bin, conf, port, r"%s:%d: %s TLSv1.3 TLS_NO_SUCH_SUITE: no usable"
                           % (re.escape(conf), n, name))


def test_second_certificate_pair_errors_name_their_lines(gh_bin, tlsca, tmp_path):  # noqa: F811
    # the second SSLCertificateFile goes with the second SSLCertificateKeyFile
    conf, port = write_conf(tmp_path, "pair2.conf", [
        "Listen 127.0.0.1:%d https" % ghtest.free_port(),
        "SSLCertificateFile %s" % tlsca.good_pem, "SSLCertificateKeyFile %s" % tlsca.good_key,
        "SSLCertificateFile %s" % tlsca.renewed_pem,
        "SSLCertificateKeyFile %s" % tlsca.wrongname_key])
    n = line_of(conf, "SSLCertificateKeyFile %s" % tlsca.wrongname_key)
    refused_everywhere(gh_bin, conf, port, r"%s:%d: SSLCertificateKeyFile .*the key does not "
                       r"match the certificate" % (re.escape(conf), n))
    # a missing second certificate names its own line
    gone = str(tmp_path / "gone.pem")
    conf, port = write_conf(tmp_path, "pair3.conf", [
        "Listen 127.0.0.1:%d https" % ghtest.free_port(),
        "SSLCertificateFile %s" % tlsca.good_pem, "SSLCertificateKeyFile %s" % tlsca.good_key,
        "SSLCertificateFile %s" % gone])
    n = line_of(conf, "SSLCertificateFile %s" % gone)
    refused_everywhere(gh_bin, conf, port, r"%s:%d: SSLCertificateFile %s: No such file"
                       % (re.escape(conf), n, re.escape(gone)))
    # one key more than certificates
    conf, port = write_conf(tmp_path, "pair4.conf", [
        "Listen 127.0.0.1:%d https" % ghtest.free_port(),
        "SSLCertificateFile %s" % tlsca.good_pem, "SSLCertificateKeyFile %s" % tlsca.good_key,
        "SSLCertificateKeyFile %s" % tlsca.renewed_key])
    n = line_of(conf, "SSLCertificateKeyFile %s" % tlsca.renewed_key)
    refused_everywhere(gh_bin, conf, port, r"%s:%d: SSLCertificateKeyFile: no "
                       r"SSLCertificateFile to go with" % (re.escape(conf), n))


def test_an_error_in_an_included_file_names_that_file(gh_bin, tlsca, tmp_path):  # noqa: F811
    inc = tmp_path / "tls.conf"
    inc.write_text("# TLS\nSSLCertificateFile %s\nSSLCertificateKeyFile %s\n"
                   % (tmp_path / "gone.pem", tlsca.good_key))
    conf, port = write_conf(tmp_path, "main.conf", [
        "Listen 127.0.0.1:%d https" % ghtest.free_port(), "Include %s" % inc])
    refused_everywhere(gh_bin, conf, port, r"%s:2: SSLCertificateFile" % re.escape(str(inc)))


def test_relative_certificate_paths_are_relative_to_the_file(gh_bin, tlsca, tmp_path):  # noqa: F811
    d = tmp_path / "etc"
    d.mkdir()
    shutil.copy(tlsca.good_pem, d / "cert.pem")
    shutil.copy(tlsca.good_key, d / "key.pem")
    port = ghtest.free_port()
    conf = d / "gatehouse.conf"
    conf.write_text("Listen 127.0.0.1:%d https\nUser root\nSSLCertificateFile cert.pem\n"
                    "SSLCertificateKeyFile key.pem\n" % port)
    p = subprocess.run([gh_bin, "-t", "-f", "gatehouse.conf"], capture_output=True, text=True,
                       timeout=30, env=ghtest.clean_env(), cwd=str(d))
    assert p.returncode == 0 and "Syntax OK" in p.stderr, p.stderr
    # ... from anywhere: -M prints them absolute
    p = subprocess.run([gh_bin, "-M", "-f", str(conf)], capture_output=True, text=True,
                       timeout=30, env=ghtest.clean_env(), cwd="/")
    assert "SSLCertificateFile %s" % (d / "cert.pem") in p.stdout, p.stdout
    os.remove(d / "key.pem")
    rc, out = check(gh_bin, str(conf))
    assert rc == 1 and "%s:4: SSLCertificateKeyFile" % conf in out, out


# ---------------------------------------------------------------- -p beside an https listener

def test_dash_p_moves_the_plain_listener_and_keeps_the_https_port(gh_bin, ctx, tlsca,  # noqa: F811
                                                                  tmp_path):
    # -p is the proxy's port: it used to put the https listener on it too, where the plain
    # one (same address, same port) swallowed it
    tport, newport = ghtest.free_port(), ghtest.free_port()
    conf, port = write_conf(tmp_path, "dashp.conf", [
        "Listen 127.0.0.1:%d https" % tport,
        "SSLCertificateFile %s" % tlsca.good_pem, "SSLCertificateKeyFile %s" % tlsca.good_key,
        "DNSServer 127.0.0.1:%d" % ctx.dns_port,
        "<Proxy *>", "    Require ip 127.0.0.1", "</Proxy>"])
    dump = subprocess.run([gh_bin, "-M", "-p", str(newport), "-f", conf], capture_output=True,
                          text=True, timeout=30, env=ghtest.clean_env())
    assert dump.returncode == 0, dump.stderr
    assert dump.stdout.endswith("\nListenReset\nListen 127.0.0.1:%d\nListen 127.0.0.1:%d https\n"
                                % (newport, tport)), dump.stdout[-500:]
    err = tmp_path / "dashp.stderr"
    with open(err, "w") as ef:
        proc = subprocess.Popen([gh_bin, "-p", str(newport), "-f", conf], stdout=ef, stderr=ef,
                                stdin=subprocess.DEVNULL, env=ghtest.clean_env())
    try:
        deadline = time.monotonic() + 10
        assert ghtest.wait_listening("127.0.0.1", newport, deadline, proc), err.read_text()
        assert ghtest.wait_listening("127.0.0.1", tport, deadline, proc), err.read_text()
        assert not ghtest.can_connect("127.0.0.1", port)
        url = "http://origin.test:%d/size/10" % ctx.origin_port
        assert ghtest.get(newport, url).status == 200   # plain HTTP on -p's port
        p = subprocess.run([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % tport,
                            "-servername", "localhost", "-CAfile", tlsca.ca_pem,
                            "-verify_return_error"], input=b"", capture_output=True, timeout=30)
        assert p.returncode == 0, p.stdout + p.stderr  # TLS on the https listener's own port
    finally:
        proc.terminate()
        rc = proc.wait(timeout=30)
    text = err.read_text()
    assert rc == 0 and "Sanitizer" not in text, text
    # -p onto the https listener's port: an error naming both, before anything listens
    p = subprocess.run([gh_bin, "-t", "-p", str(tport), "-f", conf], capture_output=True,
                       text=True, timeout=30, env=ghtest.clean_env())
    assert p.returncode == 1, p.stdout + p.stderr
    assert ("-p %d: 127.0.0.1:%d https overlaps 127.0.0.1:%d" % (tport, tport, tport)
            in p.stderr), p.stderr
    assert "an https one keeps its port" in p.stderr, p.stderr


def test_dash_p_with_https_listeners_only_moves_them(gh_bin, tlsca, tmp_path):  # noqa: F811
    conf, port = write_conf(tmp_path, "dashp2.conf", [
        "SSLCertificateFile %s" % tlsca.good_pem, "SSLCertificateKeyFile %s" % tlsca.good_key])
    text = open(conf).read().replace("Listen 127.0.0.1:%d\n" % port,
                                     "Listen 127.0.0.1:%d https\n" % port)
    open(conf, "w").write(text)
    newport = ghtest.free_port()
    dump = subprocess.run([gh_bin, "-M", "-p", str(newport), "-f", conf], capture_output=True,
                          text=True, timeout=30, env=ghtest.clean_env())
    assert dump.returncode == 0, dump.stderr
    assert dump.stdout.endswith("\nListenReset\nListen 127.0.0.1:%d https\n" % newport), \
        dump.stdout[-500:]
