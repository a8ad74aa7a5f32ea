"""
test_cache_apt.py - apt through the caching proxy: a loopback repository (a flat repository
with a generated .deb under pool/, served by a counting HTTP server), apt-get update and
apt-get download twice through Gatehouse; the repository serves the package once, and both
downloads are identical to it.
"""

import hashlib
import http.server
import os
import shutil
import subprocess
import threading
import uuid

import pytest

import ghtest


class _Counting(http.server.SimpleHTTPRequestHandler):
    counts = None

    def log_message(self, *a):
        pass

    def do_GET(self):
        with self.server.lock:
            self.server.counts[self.path] = self.server.counts.get(self.path, 0) + 1
        return super().do_GET()


def _build_repo(root):
    pkg = os.path.join(root, "build")
    os.makedirs(os.path.join(pkg, "DEBIAN"))
    os.makedirs(os.path.join(pkg, "usr/share/gh-hello"))
    with open(os.path.join(pkg, "usr/share/gh-hello/payload"), "wb") as f:
        f.write(os.urandom(700 * 1024))  # incompressible: the .deb spans several chunks
    with open(os.path.join(pkg, "DEBIAN/control"), "w") as f:
        f.write("Package: gh-hello\nVersion: 1.0\nArchitecture: all\n"
                "Maintainer: Gatehouse tests <root@localhost>\nDescription: cache test package\n")
    pool = os.path.join(root, "www/pool/main/g/gh-hello")
    os.makedirs(pool)
    deb = os.path.join(pool, "gh-hello_1.0_all.deb")
    subprocess.run(["dpkg-deb", "-Zgzip", "--build", pkg, deb], check=True, capture_output=True)
    scan = subprocess.run(["dpkg-scanpackages", "-m", "pool"], cwd=os.path.join(root, "www"),
                          check=True, capture_output=True)
    with open(os.path.join(root, "www/Packages"), "wb") as f:
        f.write(scan.stdout)
    return deb


@pytest.mark.skipif(shutil.which("apt-get") is None or shutil.which("dpkg-scanpackages") is None,
                    reason="apt-get and dpkg-dev are needed")
def test_apt_downloads_a_package_twice_and_the_repository_serves_it_once(start_daemon, ctx):
    root = os.path.join(ctx.workdir, "apt-" + uuid.uuid4().hex[:8])
    deb = _build_repo(root)
    www = os.path.join(root, "www")
    handler = lambda *a, **k: _Counting(*a, directory=www, **k)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.counts, srv.lock = {}, threading.Lock()
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        cache = os.path.join(root, "cache")
        d = start_daemon("cacheapt", extra=["CacheRoot %s" % cache, "CacheSize 64M",
                                            "CacheEnable lmdb /"])
        for sub in ("state/lists/partial", "cache/archives/partial", "etc/sources.list.d",
                    "etc/preferences.d", "dl1", "dl2"):
            os.makedirs(os.path.join(root, sub), exist_ok=True)
        with open(os.path.join(root, "etc/sources.list"), "w") as f:
            f.write("deb [trusted=yes] http://127.0.0.1:%d/ ./\n" % srv.server_address[1])
        opts = ["-o", "Dir::State=%s/state" % root, "-o", "Dir::Cache=%s/cache" % root,
                "-o", "Dir::Etc::SourceList=%s/etc/sources.list" % root,
                "-o", "Dir::Etc::SourceParts=%s/etc/sources.list.d" % root,
                "-o", "Dir::Etc::PreferencesParts=%s/etc/preferences.d" % root,
                "-o", "Acquire::http::Proxy=http://127.0.0.1:%d" % d.port,
                "-o", "Debug::NoLocking=1", "-o", "APT::Sandbox::User=root",
                "-o", "Acquire::Languages=none"]
        env = ghtest.clean_env()
        p = subprocess.run(["apt-get", "-q"] + opts + ["update"], capture_output=True, text=True,
                           env=env, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        want = hashlib.sha256(open(deb, "rb").read()).hexdigest()
        for dl in ("dl1", "dl2"):
            p = subprocess.run(["apt-get", "-q"] + opts + ["download", "gh-hello"],
                               cwd=os.path.join(root, dl), capture_output=True, text=True,
                               env=env, timeout=60)
            assert p.returncode == 0, p.stdout + p.stderr
            got = open(os.path.join(root, dl, "gh-hello_1.0_all.deb"), "rb").read()
            assert hashlib.sha256(got).hexdigest() == want
        path = "/pool/main/g/gh-hello/gh-hello_1.0_all.deb"
        assert srv.counts.get(path) == 1, srv.counts
    finally:
        srv.shutdown()
        srv.server_close()
