#!/usr/bin/python3
"""
uipurge.py - does a big purge by prefix hold the worker? (issue 11, the cache browser)

Fills a store with N entries directly through cache/ (build/bench/uirender_fill), starts the
real daemon on it with Workers 1 and the status page on loopback, starts a purge of all N
entries through api/purge (session cookie + CSRF token, confirm=1) and, while it runs, times
requests to the same (only) worker in a loop: api/cache/count of an empty prefix (a page
that touches the store) over a fresh connection each. Prints the purge's duration and the
median / p99 / maximum latency of those requests during the purge (and of 200 before it,
idle), in milliseconds. With
the purge run in one call (before), a request arriving during it waited for the whole purge.

usage: tests/bench/uipurge.py [N]       (N=100000; GH_BIN=build/gatehouse)
Bounded: every wait has a deadline; the daemon is stopped and the store removed at the end.
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("GH_BIN", os.path.join(REPO, "build", "gatehouse"))
FILL = os.environ.get("FILL", os.path.join(REPO, "build", "bench", "uirender_fill"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Page:
    def __init__(self, port):
        self.port, self.cookie = port, None

    def req(self, method, path, form=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        h = {"Host": "127.0.0.1:%d" % self.port, "Connection": "close"}
        if self.cookie:
            h["Cookie"] = self.cookie
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            h["Content-Type"] = "application/x-www-form-urlencoded"
        c.request(method, "/gatehouse/" + path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        sc = r.getheader("Set-Cookie")
        if sc:
            self.cookie = sc.split(";", 1)[0]
        c.close()
        return r.status, data


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    d = tempfile.mkdtemp(prefix="gh-uipurge-")
    proc = None
    try:
        t0 = time.monotonic()
        subprocess.run([FILL, d + "/cache", str(n), str(8 << 30)], check=True, timeout=1800,
                       stdout=subprocess.DEVNULL)
        print("filled %d entries in %.1f s" % (n, time.monotonic() - t0))
        port = free_port()
        with open(d + "/gatehouse.conf", "w") as f:
            f.write("Listen 127.0.0.1:%d\nUser root\nWorkers 1\nLogLevel warn\n"
                    "CacheRoot %s/cache\nCacheSize 8G\nCacheEnable lmdb /\n"
                    "<Location /gatehouse/>\n    SetHandler gatehouse-status\n"
                    "    Require ip 127.0.0.1\n</Location>\n" % (port, d))
        err = open(d + "/stderr", "wb")
        proc = subprocess.Popen([BIN, "-f", d + "/gatehouse.conf"], stdout=err, stderr=err)
        deadline = time.monotonic() + 600
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("the daemon did not start")
                time.sleep(0.2)
        p = Page(port)
        st, body = p.req("GET", "api/cache")
        token = json.loads(body)["csrf"]
        st, body = p.req("GET", "api/cache/count?prefix=http%3A%2F%2Fhost")
        print("count before: %s" % body.decode().strip())
        base = []
        q0 = Page(port)
        for _ in range(200):
            a = time.monotonic()
            q0.req("GET", "api/cache/count?prefix=http%3A%2F%2Fnone.test%2F")
            base.append((time.monotonic() - a) * 1000)
        base.sort()
        print("idle: median %.1f ms, p99 %.1f ms, max %.1f ms" % (base[100], base[198], base[-1]))
        lat, stop = [], threading.Event()

        def probe():
            q = Page(port)
            while not stop.is_set():
                a = time.monotonic()
                s2, _ = q.req("GET", "api/cache/count?prefix=http%3A%2F%2Fnone.test%2F")
                assert s2 == 200
                lat.append((time.monotonic() - a) * 1000)

        answer = {}

        def purge():
            a = time.monotonic()
            answer["r"] = p.req("POST", "api/purge",
                                {"prefix": "http://host", "confirm": "1", "csrf": token})
            answer["t"] = time.monotonic() - a

        th = threading.Thread(target=probe)
        tp = threading.Thread(target=purge)
        start = time.monotonic()
        tp.start()
        time.sleep(0.05)
        th.start()
        tp.join(600)
        r = json.loads(answer["r"][1])
        if not r.get("finished"):
            for _ in range(6000):
                _, body = Page(port).req("GET", "api/purges")
                r = json.loads(body)["purges"][0]
                if r["finished"]:
                    break
                time.sleep(0.1)
        took = time.monotonic() - start
        stop.set()
        th.join(120)
        lat.sort()
        print("purge: %s records removed, answer %d after %.2f s, done after %.2f s" % (
            r["purged"], answer["r"][0], answer["t"], took))
        if lat:
            print("%d requests to the same worker during the purge: median %.1f ms, p99 %.1f ms,"
                  " max %.1f ms" % (len(lat), lat[len(lat) // 2],
                                    lat[min(len(lat) - 1, int(len(lat) * 0.99))], lat[-1]))
    finally:
        if proc:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
