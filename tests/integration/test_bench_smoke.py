"""
test_bench_smoke.py - the benchmark scripts of tests/bench/ run with tiny settings, so that they
cannot rot between the hand-run measurements: every part starts, every answer is checked by the
script itself (status, size, cache hits where there must be hits, none through the uncached
parent chain), and every row of the table has requests and no error. No speed is asserted.

tls.sh (issue 13): nginx over TLS, Gatehouse's TLS listener serving hits, Squid's https_port
when the installed Squid has OpenSSL (the test does not install packages), full and resumed
handshakes (openssl s_time: Gatehouse's listener must resume sessions), the chain through an
HTTPS parent and through a plain one.

auth.sh (issue 14): Gatehouse without and with Basic authentication on hits and misses, and
Squid without and with basic_ncsa_auth when installed: every pair has requests on both sides
and no error (the script itself checks 407 without credentials, 200 with them, and that every
request it sent was counted as authenticated), and the memory line is there.
"""

import os
import re
import shutil
import subprocess

import pytest

import ghtest

TLS_SH = os.path.join(ghtest.REPO, "tests", "bench", "tls.sh")
ROW = re.compile(r"^(hit|close|full|resumed|parent)\s+(\S+)\s+(\S+)\s+(\d+)\s+\S+\s+\S+\s+\S+\s+\S+"
                 r"\s+(\d+)\s+(-?\d+)(?:\s+resumed (\d+) of (\d+))?$")


def installed(tool):
    return bool(shutil.which(tool) or os.path.exists("/usr/sbin/" + tool))


def require_tools(*tools):
    """Fail, not skip, when a tool the bench needs is missing."""
    for tool in tools:
        if not installed(tool):
            pytest.fail("%s is missing: scripts/test-deps.sh installs it" % tool, pytrace=False)


def squid_has_openssl():
    squid = shutil.which("squid") or ("/usr/sbin/squid" if os.path.exists("/usr/sbin/squid") else None)
    if not squid:
        return False
    p = subprocess.run([squid, "-v"], capture_output=True, text=True, timeout=30)
    return "--with-openssl" in p.stdout


def run_tls_sh(env_extra, timeout=600):
    env = dict(os.environ)
    env.update({"GH_BIN": ghtest.gh_binary(), "TLSBENCH_DURATION": "1", "TLSBENCH_CONNS": "2",
                "TLSBENCH_THREADS": "1"})
    env.update(env_extra)
    return subprocess.run(["bash", TLS_SH], capture_output=True, text=True, timeout=timeout,
                          env=env, stdin=subprocess.DEVNULL)


@pytest.mark.daemon
@pytest.mark.slow
def test_tls_bench_runs_every_part_without_errors():
    require_tools("nginx", "wrk", "curl", "openssl")
    squid = squid_has_openssl()
    p = run_tls_sh({"TLSBENCH_SQUID": "1" if squid else "0"})
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    rows = {}
    resumed = {}
    for line in p.stdout.splitlines():
        m = ROW.match(line.strip())
        if m:
            # requests/s, errors; the CPU time per request (group 5) is only printed
            rows[(m.group(1), m.group(2), m.group(3))] = (int(m.group(4)), int(m.group(6)))
            if m.group(7):
                resumed[(m.group(1), m.group(3))] = (int(m.group(7)), int(m.group(8)))
    want = [("hit", size, t) for size in ("1k", "256k")
            for t in ("nginx-tls", "gatehouse-tls", "gatehouse-plain")]
    want += [("close", "1k", t) for t in ("nginx-tls", "gatehouse-tls", "gatehouse-plain")]
    want += [(g, "1k", t) for g in ("full", "resumed") for t in ("nginx-tls", "gatehouse-tls")]
    want += [("parent", size, t) for size in ("1k", "256k")
             for t in ("via-https-parent", "via-http-parent")]
    if squid:
        want += [("hit", "1k", "squid-tls"), ("hit", "256k", "squid-tls"),
                 ("close", "1k", "squid-tls"), ("full", "1k", "squid-tls"),
                 ("resumed", "1k", "squid-tls")]
    for key in want:
        assert key in rows, "no row %s in:\n%s" % (" ".join(key), out)
        rps, errors = rows[key]
        assert rps > 0 and errors == 0, "row %s: %s\n%s" % (" ".join(key), rows[key], out)
    # s_time -new: every handshake full; -reuse: Gatehouse's listener resumes (tickets)
    r, n = resumed[("full", "gatehouse-tls")]
    assert r == 0 and n > 0, out
    r, n = resumed[("resumed", "gatehouse-tls")]
    assert n > 0 and r >= n // 2, out
    assert re.search(r"^TLS: TLSv1\.[23] ", p.stdout, re.M), out
    assert "target, hit 1k: Gatehouse TLS hits >= nginx over TLS:" in p.stdout, out
    assert re.search(r"gatehouse child to https parent\s+peak\s+[\d.]+ MB", p.stdout), out
    assert "DIED" not in p.stdout, out


@pytest.mark.slow
def test_tls_bench_fails_loudly_without_a_working_proxy(tmp_path):
    """A daemon that does not start ends the run with status 1 and says so: no table of
    zeros."""
    fake = tmp_path / "gatehouse"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    p = run_tls_sh({"GH_BIN": str(fake), "TLSBENCH_SQUID": "0"}, timeout=120)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "gatehouse hits did not start" in p.stderr, p.stderr
    assert "requests/s" not in p.stdout, p.stdout


AUTH_SH = os.path.join(ghtest.REPO, "tests", "bench", "auth.sh")
AUTHBENCH = re.compile(r"^AUTHBENCH scenario=(\S+) plain_rps=(\d+) auth_rps=(\d+) ratio=([\d.]+) "
                       r".*errors=(\d+)$")


@pytest.mark.daemon
@pytest.mark.slow
def test_auth_bench_runs_every_pair_without_errors():
    require_tools("nginx", "wrk", "curl", "htpasswd")
    squid = installed("squid") and \
        os.access("/usr/lib/squid/basic_ncsa_auth", os.X_OK)
    env = dict(os.environ)
    env.update({"GH_BIN": ghtest.gh_binary(), "AUTHBENCH_DUR": "1", "AUTHBENCH_ROUNDS": "1",
                "AUTHBENCH_CONNS": "2", "AUTHBENCH_SQUID": "1" if squid else "0"})
    p = subprocess.run(["bash", AUTH_SH], capture_output=True, text=True, timeout=600, env=env,
                       stdin=subprocess.DEVNULL)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    rows = {}
    for line in p.stdout.splitlines():
        m = AUTHBENCH.match(line.strip())
        if m:
            rows[m.group(1)] = (int(m.group(2)), int(m.group(3)), float(m.group(4)),
                                int(m.group(5)))
    want = ["hit", "miss"] + (["squid-miss"] if squid else [])
    for sc in want:
        assert sc in rows, "no AUTHBENCH row %s in:\n%s" % (sc, out)
        plain, auth, ratio, errors = rows[sc]
        assert plain > 0 and auth > 0 and ratio > 0 and errors == 0, (sc, rows[sc], out)
    assert re.search(r"^AUTHBENCH memory hit-plain=\d+kB/\d+kB hit-auth=\d+kB/\d+kB ",
                     p.stdout, re.M), out


@pytest.mark.slow
def test_auth_bench_fails_loudly_without_a_working_proxy(tmp_path):
    """A daemon that does not start ends the run with status 1 and says so: no figures."""
    fake = tmp_path / "gatehouse"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    env = dict(os.environ)
    env.update({"GH_BIN": str(fake), "AUTHBENCH_SQUID": "0", "AUTHBENCH_DUR": "1",
                "AUTHBENCH_ROUNDS": "1"})
    p = subprocess.run(["bash", AUTH_SH], capture_output=True, text=True, timeout=120, env=env,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "did not start" in p.stderr, p.stderr
    assert "AUTHBENCH" not in p.stdout, p.stdout
