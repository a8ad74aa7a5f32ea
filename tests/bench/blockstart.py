#!/usr/bin/python3
"""
blockstart.py - how fast a long ProxyBlock list gets its first answers after start (issue 10
item 2), the time during which requests that only an address could block wait (or fail with
503 after DNSTimeout). Not a test: it prints figures and asserts nothing.

Usage: tests/bench/blockstart.py [GH_BIN [NAMES]]   (default build/gatehouse, 2000 names)

One daemon (Workers 1) lists NAMES dotted names, each resolving to a 127.0.1.x address, on
SlowDns (tests/integration/test_block_startup.py: a Python DNS server on loopback answering at
once). Printed: when the port accepted, how long the first request by IP literal for the last
name's address took and its status (403: decided with the set; 503: DNSTimeout passed first;
anything else: forwarded, i.e. not blocked), and when the last name got its first answer.
"""

import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import ghtest  # noqa: E402
from test_block_startup import SlowDns  # noqa: E402


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "build",
                                                                 "gatehouse")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    names = ["n%d.test" % i for i in range(n)]
    dns = SlowDns({x: "127.0.1.%d" % (i % 250 + 1) for i, x in enumerate(names)}).start()
    port = ghtest.free_port()
    work = os.environ.get("TMPDIR", "/tmp")
    conf = os.path.join(work, "gh-blockstart-%d.conf" % os.getpid())
    with open(conf, "w") as f:
        f.write("Listen 127.0.0.1:%d\nDNSServer 127.0.0.1:%d\nUser root\nLogLevel warn\n"
                "Workers 1\n" % (port, dns.port))
        for i in range(0, n, 50):
            f.write("ProxyBlock %s\n" % " ".join(names[i:i + 50]))
        f.write("<Proxy *>\n    Require ip 127.0.0.1\n</Proxy>\n")
    t0 = time.monotonic()
    proc = subprocess.Popen([binary, "-f", conf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        if not ghtest.wait_listening("127.0.0.1", port, time.monotonic() + 10, proc):
            print("the daemon did not listen")
            return 1
        t_listen = time.monotonic() - t0
        t1 = time.monotonic()
        r = ghtest.get(port, "http://127.0.1.%d:9/" % ((n - 1) % 250 + 1), timeout=120)
        t_req = time.monotonic() - t1
        deadline = t0 + 300
        while len(dns.sent) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        done = "%.3f s" % (max(dns.sent.values()) - t0) if len(dns.sent) == n else "not within 300 s"
        print("%d names: listening after %.3f s; first request by literal: %d after %.3f s; "
              "every name answered after %s" % (n, t_listen, r.status, t_req, done))
    finally:
        proc.terminate()
        proc.wait(10)
        dns.stop()
        os.unlink(conf)
    return 0


if __name__ == "__main__":
    sys.exit(main())
