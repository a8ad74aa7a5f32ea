"""
test_soak.py - the 60-second form of the soak (tests/soak/soak.py, issue 10's standing
campaign): hits, misses, CONNECT, POST, a slow reader, purges and connection bursts against
one daemon, its RssAnon sampled every half second. Passes when no client request failed, the
sanitizers reported nothing, the daemon exited 0, and RssAnon stayed flat after warm-up (see
soak.py for the bound). Both builds: the sanitizer build for its reports, the normal build
for glibc malloc's memory behaviour, which the sanitizer's allocator hides (the 10-minute form
is run by hand, see README "Reliability").
"""

import csv
import json
import os
import subprocess
import sys

import pytest

import ghtest

pytestmark = pytest.mark.slow

SOAK = os.path.join(ghtest.REPO, "tests", "soak", "soak.py")


def test_soak_60s_mixed_load_keeps_rss_flat_and_reports_nothing(gh_bin, ctx):
    work = os.path.join(ctx.workdir, "soak")
    curve = os.path.join(ctx.workdir, "soak-rss.csv")
    duration = 60
    p = subprocess.Popen([sys.executable, SOAK, "--binary", gh_bin, "--duration", str(duration),
                          "--csv", curve, "--workdir", work], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True,
                         env=ghtest.clean_env(PYTHONDONTWRITEBYTECODE="1"))
    try:
        out, _ = p.communicate(timeout=duration + 300)
    except subprocess.TimeoutExpired:
        p.terminate()  # soak.py stops its daemon, dnsmasq and origin on SIGTERM
        out, _ = p.communicate(timeout=60)
        pytest.fail("the soak did not end within %d s:\n%s" % (duration + 300, out[-6000:]))
    assert p.returncode == 0, out[-6000:]
    assert "soak: " in out and '"verdict": "PASS"' in out, out[-3000:]
    with open(curve) as f:
        rows = list(csv.DictReader(f))
    # the curve covers the whole run, sampled often enough to see the bursts
    assert len(rows) >= duration, len(rows)
    assert float(rows[-1]["seconds"]) >= duration
    assert all(int(r["rssanon_kb"]) > 0 for r in rows)
    assert int(rows[-1]["requests"]) > 500 and int(rows[-1]["client_errors"]) == 0, rows[-1]
    summary = json.loads([ln for ln in out.splitlines() if ln.startswith("soak: {")][0][6:])
    print(summary)
    assert summary["rss_flat"], summary
