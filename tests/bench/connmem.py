#!/usr/bin/python3
"""
connmem.py - connection memory of the daemon (issue 10, items 11 and 14). Not a test: it prints
figures for comparing two builds; tests/integration/test_memory.py holds the regression test.

  tests/bench/connmem.py bursts [CONNS [BURSTS]]   (default 10000 4)
      BURSTS bursts of CONNS concurrent keep-alive connections, 3 cache hits of 1 KiB each,
      all closed after each burst; prints RssAnon 3 s after each burst and the peak (VmHWM).
  tests/bench/connmem.py misses [N [SIZE]]         (default 1000 102400)
      N concurrent misses of SIZE bytes, each on its own connection, that the origin answers
      after MISSMEM_DELAY ms (default 3000): RssAnon while all of them wait, malloc's in-use
      bytes then (only with gdb installed: malloc_stats() called in the daemon), and the peak
      over the whole run, per miss. The responses are read one connection after the other,
      so the later ones wait with full buffers (the peak is the buffers' caps at work).

GH_BIN (default build/gatehouse) is the daemon; the test origin is tests/integration/origin.py
on loopback; RLIMIT_NOFILE is raised to its hard limit (the daemon inherits it). Everything
started here is stopped on exit; every wait is bounded.
"""

import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import ghtest  # noqa: E402
from origin import Origin  # noqa: E402
from test_memory import keepalive_burst  # noqa: E402


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith(key + ":"):
                return int(ln.split()[1])
    return 0


def start(binary, origin, wd, has_limit):
    port = ghtest.free_port()
    ctx = types.SimpleNamespace(dns_port=1, echo_port=origin.port)
    text = ghtest.conf_text(ctx, port, dns=False, timeout=60, extra=[
        "CacheRoot %s/cache" % wd, "CacheSize 1G", "CacheEnable lmdb /",
        "MaxConnections 100000", "KeepAliveTimeout 60", "Timeout 60", "LogLevel warn"])
    if not has_limit:  # a build from before MaxConnectionsPerClient
        text = text.replace("MaxConnectionsPerClient 0\n", "")
    return ghtest.Daemon(binary, wd, "connmem", text, [("127.0.0.1", port)]).start()


def malloc_in_use(d):
    """malloc's in-use bytes in the daemon (all arenas), through gdb; None without gdb."""
    if not os.path.exists("/usr/bin/gdb"):
        return None
    off = d.stderr_size()
    subprocess.run(["/usr/bin/gdb", "-p", str(d.pid), "-batch", "-ex",
                    "call (void)malloc_stats()"], capture_output=True, timeout=60)
    time.sleep(0.3)
    m = re.findall(r"Total \(incl\. mmap\):\s*\nsystem bytes\s+=\s+\d+\s*\nin use bytes\s+=\s+(\d+)",
                   d.stderr_text(off))
    return int(m[-1]) if m else None


def bursts(d, origin, conns, n):
    target = "http://127.0.0.1:%d/cache?size=1024&cc=max-age%%3D3600&k=connmem" % origin.port
    ghtest.get(d.port, target)
    r = ghtest.get(d.port, target)
    assert "hit" in (r.header("Cache-Status") or ""), r.headers
    print("idle: RssAnon %d kB" % status_kb(d.pid, "RssAnon"))
    for b in range(n):
        t = time.monotonic()
        answered, bad, failed = keepalive_burst(d.port, target, conns, 3)
        took = time.monotonic() - t
        time.sleep(3)
        print("burst %d: %d connections, %d answers (%d not 200, %d connections failed) in %.1f s;"
              " RssAnon %d kB 3 s later, VmHWM %d kB" % (b + 1, conns, answered, len(bad), failed,
                                                         took, status_kb(d.pid, "RssAnon"),
                                                         status_kb(d.pid, "VmHWM")))


def misses(d, origin, n, size):
    import socket
    delay = int(os.environ.get("MISSMEM_DELAY", "3000"))
    idle = status_kb(d.pid, "RssAnon")
    tag = os.urandom(4).hex()
    socks = []
    t0 = time.monotonic()
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=60)
        s.sendall(("GET http://127.0.0.1:%d/cache?size=%d&cc=max-age%%3D600&delay=%d&k=%s%d "
                   "HTTP/1.1\r\nHost: x\r\n\r\n" % (origin.port, size, delay, tag, i)).encode())
        socks.append(s)
    sent = time.monotonic() - t0
    if sent > delay / 1000.0 - 1:
        print("warning: sending took %.1f s of the origin's %d ms delay: raise MISSMEM_DELAY"
              % (sent, delay))
    time.sleep(0.5)
    waiting = status_kb(d.pid, "RssAnon")
    inuse = malloc_in_use(d)
    complete = 0
    for s in socks:
        buf = b""
        try:
            while True:
                i = buf.find(b"\r\n\r\n")
                m = re.search(rb"Content-Length: (\d+)", buf[:i]) if i >= 0 else None
                if m and len(buf) >= i + 4 + int(m.group(1)):
                    complete += 1
                    break
                data = s.recv(1 << 20)
                if not data:
                    break
                buf += data
        except OSError:
            pass
        s.close()
    hwm = status_kb(d.pid, "VmHWM")
    print("%d misses of %d bytes (%d complete): RssAnon idle %d kB, while they wait %d kB "
          "(%.1f kB a miss)%s; peak VmHWM %d kB (%.1f kB a miss)"
          % (n, size, complete, idle, waiting, (waiting - idle) / n,
             "" if inuse is None else ", malloc in use %.1f kB a miss" % (inuse / 1024.0 / n),
             hwm, (hwm - idle) / n))


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "bursts"
    args = [int(a) for a in sys.argv[2:]]
    binary = os.environ.get("GH_BIN") or os.path.join(REPO, "build", "gatehouse")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with open(binary, "rb") as f:
        has_limit = b"MaxConnectionsPerClient" in f.read()
    origin = Origin().start()
    wd = tempfile.mkdtemp(prefix="connmem-")
    d = None
    try:
        d = start(binary, origin, wd, has_limit)
        print("%s (%s)" % (binary, mode))
        if mode == "bursts":
            bursts(d, origin, *(args + [10000, 4][len(args):]))
        elif mode == "misses":
            misses(d, origin, *(args + [1000, 102400][len(args):]))
        else:
            sys.exit("usage: connmem.py bursts [CONNS [BURSTS]] | misses [N [SIZE]]")
    finally:
        if d is not None:
            d.stop()
        origin.stop()
        subprocess.run(["rm", "-rf", wd])


if __name__ == "__main__":
    main()
