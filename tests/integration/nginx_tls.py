"""
nginx_tls.py - nginx as a TLS origin for the TLS tests: one instance per certificate kind, each
on a free loopback port, in its own temp directory (config, pid file, error log, temp paths,
document root), started as the test user (`user root;` only when the tests run as root, so the
workers can read the temp dir) and stopped at teardown.

  n = NginxTLS(workdir, cert, key, name="good", verify_client_ca=None, tls12_only=False,
               max_age=None, v6=False).start()
  n.put("a.txt", b"body")           # a file in the document root (sub-directories made)
  n.url("a.txt") -> "https://127.0.0.1:PORT/a.txt";  n.port, n.dir, n.root, n.error_log
  n.log_entries() -> [dict(addr, request, status, bytes, protocol, reused, connection,
                           requests, sni, client_verify)]  (one per access-log line)
  n.stop()

verify_client_ca: `ssl_verify_client on` against that CA file (a request without a valid client
certificate gets 400). tls12_only: `ssl_protocols TLSv1.2`. max_age: every answer carries
`Cache-Control: max-age=N`. v6: also listen on [::1]:PORT. protocols / ciphers: nginx's
ssl_protocols / ssl_ciphers text (e.g. "TLSv1 TLSv1.1 TLSv1.2", "ALL:@SECLEVEL=0": a deliberately
weak server, the control of the scan tests). The access log line is tab-separated:
$remote_addr "$request" $status $body_bytes_sent $ssl_protocol $ssl_session_reused ("r" or ".")
$connection $connection_requests $ssl_server_name $ssl_client_verify.

The `nginx_tls` fixture is a factory: nginx_tls(cert, key, **kw) starts an instance (the
arguments of NginxTLS after workdir and the paths) and the fixture stops all of them at
teardown. Stdlib + ghtest only.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

import ghtest

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
LOG_FIELDS = ("addr", "request", "status", "bytes", "protocol", "reused", "connection",
              "requests", "sni", "client_verify")


class NginxTLS:
    def __init__(self, workdir, cert, key, name="tls", verify_client_ca=None, tls12_only=False,
                 max_age=None, v6=False, protocols=None, ciphers=None):
        self.workdir = workdir
        self.cert, self.key = cert, key
        self.name = name
        self.verify_client_ca = verify_client_ca
        self.tls12_only = tls12_only
        self.max_age = max_age
        self.v6 = v6
        self.protocols = protocols
        self.ciphers = ciphers
        self.proc = None
        self.port = None
        self.dir = None

    def _conf(self):
        d = self.dir
        extra = []
        if self.verify_client_ca:
            extra += ["ssl_client_certificate %s;" % self.verify_client_ca,
                      "ssl_verify_client on;"]
        if self.protocols:
            extra.append("ssl_protocols %s;" % self.protocols)
        elif self.tls12_only:
            extra.append("ssl_protocols TLSv1.2;")
        else:
            extra.append("ssl_protocols TLSv1.2 TLSv1.3;")
        if self.ciphers:
            extra.append("ssl_ciphers %s;" % self.ciphers)
        if self.max_age is not None:
            extra.append('add_header Cache-Control "max-age=%d" always;' % self.max_age)
        listen = ["listen 127.0.0.1:%d ssl;" % self.port]
        if self.v6:
            listen.append("listen [::1]:%d ssl;" % self.port)
        user = "user root;\n" if os.geteuid() == 0 else ""
        return """daemon off;
worker_processes 1;
%(user)spid %(d)s/nginx.pid;
error_log %(d)s/error.log info;
events { worker_connections 512; }
http {
    log_format tls '$remote_addr\\t"$request"\\t$status\\t$body_bytes_sent\\t$ssl_protocol\\t'
                   '$ssl_session_reused\\t$connection\\t$connection_requests\\t'
                   '$ssl_server_name\\t$ssl_client_verify';
    access_log %(d)s/access.log tls;
    keepalive_timeout 65;
    keepalive_requests 10000;
    default_type application/octet-stream;
    types { text/html html; text/plain txt; }
    client_body_temp_path %(d)s/cb; proxy_temp_path %(d)s/pt; fastcgi_temp_path %(d)s/ft;
    uwsgi_temp_path %(d)s/ut; scgi_temp_path %(d)s/st;
    ssl_session_cache shared:%(name)s:1m;
    ssl_session_timeout 10m;
    server {
        %(listen)s
        server_name localhost;
        ssl_certificate %(cert)s;
        ssl_certificate_key %(key)s;
        %(extra)s
        root %(d)s/www;
    }
}
""" % {"d": d, "user": user, "listen": "\n        ".join(listen), "cert": self.cert,
       "key": self.key, "extra": "\n        ".join(extra), "name": "gh" + str(self.port)}

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="nginx-tls-%s-" % self.name, dir=self.workdir)
        os.chmod(self.dir, 0o755)
        self.root = os.path.join(self.dir, "www")
        os.makedirs(self.root)
        self.error_log = os.path.join(self.dir, "error.log")
        self.access_log = os.path.join(self.dir, "access.log")
        for attempt in range(3):
            if self.v6:
                self.port = ghtest.free_port(socket.AF_INET6, "::1")
            else:
                self.port = ghtest.free_port()
            conf = os.path.join(self.dir, "nginx.conf")
            with open(conf, "w") as f:
                f.write(self._conf())
            out_path = os.path.join(self.dir, "nginx.out")
            out = open(out_path, "ab")
            self.proc = subprocess.Popen([NGINX, "-c", conf, "-p", self.dir], stdout=out,
                                         stderr=out, stdin=subprocess.DEVNULL)
            out.close()
            if ghtest.wait_listening("127.0.0.1", self.port, time.monotonic() + 15, self.proc):
                return self
            ghtest._kill(self.proc)
            text = self.output()
            if "in use" not in text or attempt == 2:
                raise RuntimeError("nginx (%s) did not start: %s" % (self.name, text))
        raise RuntimeError("unreachable")

    def output(self):
        return ghtest.tail_files((os.path.join(self.dir, "nginx.out"), self.error_log))

    def stop(self):
        if self.proc is not None:
            ghtest._kill(self.proc, wait=10.0)
            self.proc = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def put(self, path, data):
        """Write data (bytes or str) to the document root at path; returns its URL."""
        full = os.path.join(self.root, path.lstrip("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        return self.url(path)

    def url(self, path="/", host="127.0.0.1"):
        if ":" in host:
            host = "[%s]" % host
        return "https://%s:%d/%s" % (host, self.port, path.lstrip("/"))

    def log_entries(self):
        """The access log so far, one dict per line (nginx writes a line when the answer is
        done: poll for it)."""
        try:
            with open(self.access_log, errors="replace") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            parts = line.split("\t")
            if len(parts) == len(LOG_FIELDS):
                e = dict(zip(LOG_FIELDS, parts))
                e["request"] = e["request"].strip('"')
                out.append(e)
        return out

    def wait_entries(self, count, timeout=10.0):
        """Poll until the access log holds at least count lines; returns them."""
        ghtest.poll(lambda: len(self.log_entries()) >= count, timeout=timeout)
        return self.log_entries()


@pytest.fixture
def nginx_tls(workdir):
    """Factory: nginx_tls(cert, key, name=..., verify_client_ca=..., tls12_only=...,
    max_age=..., v6=...) -> a started NginxTLS; all stopped at teardown."""
    started = []

    def make(cert, key, **kw):
        n = NginxTLS(workdir, cert, key, **kw).start()
        started.append(n)
        return n

    yield make
    for n in started:
        n.stop()
