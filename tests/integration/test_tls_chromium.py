"""
test_tls_chromium.py - a real browser talks to the proxy over TLS (issue 13): headless Chromium
(Debian `chromium`) with a PAC saying `HTTPS 127.0.0.1:PORT` loads an http:// page through
Gatehouse's TLS listener, trusting the test CA through an NSS db in its HOME (made with
`certutil -N` and `certutil -A -t "C,," -n gh-test-ca -i ca.pem`, as an admin would for the
office's own CA).

The daemons here have the https listener only: no plain listener exists, so a page that came
through the proxy (the origin sees its Via, the access log has the request) came over TLS. The
PAC is Gatehouse's own /proxy.pac fetched over that TLS listener (`PacProxy https://...`), and,
for the counter-test, a data: PAC: without the CA in the NSS db the same page does not load
(ERR_PROXY_CERTIFICATE_INVALID) and never reaches the proxy's access log, so the positive test
can fail.

Chromium bypasses proxies for loopback hosts, so the page is on www.outside.test, which only
the policy dnsmasq (the proxy's resolver) knows; --host-resolver-rules let the browser itself
resolve nothing but 127.0.0.1 (the PAC's and the proxy's address).

With both listeners and no PacProxy, the generated PAC offers HTTPS first and PROXY second:
the access log's %p shows the TLS listener carried the page when the CA is trusted, and the
plain one (Chromium's fallback) when it is not.
"""

import base64
import os
import re
import shutil
import subprocess
import time
import uuid


import ghtest
import uibrowser
from tlsca import tlsca  # noqa: F401  (fixture)
from test_policy_chromium import echo_doc

CHROMIUM_TIMEOUT = 90
RULES = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


def nss_home(tmp_path, ca_pem=None):
    """A HOME with an empty-password NSS db in .pki/nssdb (Chromium's on Linux), holding the
    CA as a trusted TLS issuer when ca_pem is given."""
    certutil = shutil.which("certutil")
    assert certutil, "certutil is missing: scripts/test-deps.sh installs libnss3-tools"
    home = tmp_path / ("home-" + uuid.uuid4().hex[:8])
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    run = lambda *a: subprocess.run([certutil] + list(a), stdout=subprocess.PIPE,  # noqa: E731
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    timeout=60, check=True)
    run("-N", "-d", "sql:%s" % db, "--empty-password")
    if ca_pem:
        run("-A", "-d", "sql:%s" % db, "-t", "C,,", "-n", "gh-test-ca", "-i", ca_pem)
        listed = run("-L", "-d", "sql:%s" % db).stdout.decode()
        assert re.search(r"gh-test-ca\s+C,,", listed), listed
    return home


def load(home, pac_url, url):
    """Load url in headless Chromium (HOME=home, fresh profile) with the PAC; returns (exit
    status, DOM text, stderr)."""
    args = [uibrowser.chromium_path()] + uibrowser.CHROMIUM_BASE_ARGS + [
        "--user-data-dir=%s" % (home / "profile"), "--proxy-pac-url=%s" % pac_url,
        "--host-resolver-rules=%s" % RULES, "--dump-dom", url]
    return uibrowser.run_group(args, ghtest.clean_env(HOME=str(home)), CHROMIUM_TIMEOUT,
                               "chromium loading %s" % url)


def tls_only_daemon(start_policy_daemon, tlsca, log):
    """A daemon whose only listener is https (good certificate), PAC saying HTTPS."""
    text = "\n".join([
        "# written by test_tls_chromium.py",
        "Listen 127.0.0.1:{port} https",
        "SSLCertificateFile %s" % tlsca.good_pem,
        "SSLCertificateKeyFile %s" % tlsca.good_key,
        "PacProxy https://127.0.0.1:{port}",
        "DNSServer 127.0.0.1:{dns_port}",
        "ProxyTimeout 5", "Workers 2", "LogLevel info", "User root", "ProxyVia On",
        "MaxConnectionsPerClient 0",
        "AccessLog %s" % log,
        "<Proxy *>", "    Require ip 127.0.0.1 ::1", "</Proxy>"]) + "\n"
    return start_policy_daemon("tlschromium", text=text)


def curl_pac(port, ca_pem):
    p = subprocess.run(["curl", "-sS", "--max-time", "20", "--cacert", ca_pem,
                        "https://127.0.0.1:%d/proxy.pac" % port], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60, env=ghtest.clean_env())
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    return p.stdout.decode(errors="replace")


def test_chromium_loads_a_page_through_the_https_proxy_from_the_served_pac(
        start_policy_daemon, pctx, tlsca, tmp_path):
    log = os.path.join(pctx.workdir, "tlschromium-%s.log" % uuid.uuid4().hex[:8])
    d = tls_only_daemon(start_policy_daemon, tlsca, log)
    # The served PAC (over the TLS listener) names the proxy with HTTPS.
    pac = curl_pac(d.port, tlsca.ca_pem)
    assert "HTTPS 127.0.0.1:%d" % d.port in pac, pac
    assert "PROXY 127.0.0.1:%d" % d.port not in pac, pac

    home = nss_home(tmp_path, tlsca.ca_pem)
    t = uuid.uuid4().hex
    url = "http://www.outside.test:%d/echo?t=%s" % (pctx.origin_port, t)
    rc, dom, err = load(home, "https://127.0.0.1:%d/proxy.pac" % d.port, url)
    assert rc == 0, err[-3000:]
    assert "ERR_" not in dom, dom[:2000]
    doc = echo_doc(dom)
    assert doc["target"] == "/echo?t=" + t, doc
    assert [v for k, v in doc["headers"] if k.lower() == "via"], \
        "the page did not come through the proxy: %r" % doc["headers"]
    lines = ghtest.poll_lines(log, lambda ln: t in ln)
    assert len(lines) == 1, lines
    m = ghtest.SQUID_RE.match(lines[0])
    assert m and m.group(7) == "GET" and m.group(8) == url, lines[0]
    assert m.group(5) == "200", lines[0]
    # The PAC itself came over TLS from the same listener: it is in the access log too.
    assert ghtest.poll_lines(log, lambda ln: "/proxy.pac" in ln), open(log).read()[-2000:]


def test_chromium_refuses_the_https_proxy_without_the_ca(start_policy_daemon, pctx, tlsca,
                                                          tmp_path):
    log = os.path.join(pctx.workdir, "tlschromium-%s.log" % uuid.uuid4().hex[:8])
    d = tls_only_daemon(start_policy_daemon, tlsca, log)
    # A data: PAC, so the PAC fetch itself does not depend on trust (a PAC that fails to load
    # makes Chromium go direct, which would fail for another reason).
    pac = 'function FindProxyForURL(url, host) { return "HTTPS 127.0.0.1:%d"; }' % d.port
    pac_url = "data:application/x-ns-proxy-autoconfig;base64," + \
        base64.b64encode(pac.encode()).decode()

    t_bad = uuid.uuid4().hex
    url = "http://www.outside.test:%d/echo?t=%s" % (pctx.origin_port, t_bad)
    rc, dom, err = load(nss_home(tmp_path), pac_url, url)
    assert t_bad not in dom, dom[:2000]
    assert "ERR_PROXY_CERTIFICATE_INVALID" in err, err[-3000:]
    assert not pctx.origin.requests_with(t_bad)

    # The same PAC with the CA trusted loads the page: trust was the only difference.
    t_good = uuid.uuid4().hex
    url = "http://www.outside.test:%d/echo?t=%s" % (pctx.origin_port, t_good)
    rc, dom, err = load(nss_home(tmp_path, tlsca.ca_pem), pac_url, url)
    assert rc == 0, err[-3000:]
    assert echo_doc(dom)["target"] == "/echo?t=" + t_good, dom[:2000]
    assert len(ghtest.poll_lines(log, lambda ln: t_good in ln)) == 1
    with open(log, errors="replace") as f:
        assert t_bad not in f.read()


def test_generated_pac_offers_https_first_and_chromium_takes_it(start_policy_daemon, pctx,
                                                                 tlsca, tmp_path):
    """Both listeners, no PacProxy: the generated PAC says HTTPS (the TLS listener) first and
    PROXY (the plain one) as the fallback. The access log's %p (the listener's port) tells
    which one carried each page: the TLS one when the browser trusts the CA, the plain one
    when it does not (Chromium falls over to the next proxy on a bad proxy certificate)."""
    log = os.path.join(pctx.workdir, "tlschromium-%s.log" % uuid.uuid4().hex[:8])
    tls_port = ghtest.free_port()
    text = "\n".join([
        "# written by test_tls_chromium.py",
        "Listen 127.0.0.1:{port}",
        "Listen 127.0.0.1:%d https" % tls_port,
        "SSLCertificateFile %s" % tlsca.good_pem,
        "SSLCertificateKeyFile %s" % tlsca.good_key,
        "DNSServer 127.0.0.1:{dns_port}",
        "ProxyTimeout 5", "Workers 2", "LogLevel info", "User root", "ProxyVia On",
        "MaxConnectionsPerClient 0",
        'LogFormat "%p %>s %r" ports', "CustomLog %s ports" % log,
        "<Proxy *>", "    Require ip 127.0.0.1 ::1", "</Proxy>"]) + "\n"
    d = start_policy_daemon("tlspac", text=text)
    assert ghtest.wait_listening("127.0.0.1", tls_port, time.monotonic() + 10)
    pac_url = "http://127.0.0.1:%d/proxy.pac" % d.port
    r = ghtest.get(d.port, pac_url)
    assert r.status == 200, r.status
    pac = r.body.decode(errors="replace")
    https_at = pac.find("HTTPS 127.0.0.1:%d" % tls_port)
    proxy_at = pac.find("PROXY 127.0.0.1:%d" % d.port)
    assert 0 <= https_at < proxy_at, pac

    def carried_by(home):
        t = uuid.uuid4().hex
        url = "http://www.outside.test:%d/echo?t=%s" % (pctx.origin_port, t)
        rc, dom, err = load(home, pac_url, url)
        assert rc == 0, err[-3000:]
        assert echo_doc(dom)["target"] == "/echo?t=" + t, dom[:2000]
        lines = ghtest.poll_lines(log, lambda ln: t in ln)
        assert len(lines) == 1, lines
        port, status, _ = lines[0].split(" ", 2)
        assert status == "200", lines[0]
        return int(port)

    assert carried_by(nss_home(tmp_path, tlsca.ca_pem)) == tls_port
    assert carried_by(nss_home(tmp_path)) == d.port
