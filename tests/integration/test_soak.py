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


RATCHET = ("issue 10 item 11, not fixed on this branch: under glibc malloc (the normal build) "
           "RssAnon settles higher after every burst of connections. The 10-minute soak on "
           "2026-12-04: 2.5 MB at the start, then 15, 25, 31, 37, 43 MB after the first five "
           "bursts of 1,000, 71 MB at 2.5 min, 91 MB from 7 min on (verdict FAIL: level 90.0 "
           "against 70.9 MB, limit 83.9); a 60-second run may stay under the bound. "
           "ASan's allocator does not show it (its 10-minute run: level 62.5 -> 64.2 MB)")


def test_soak_60s_mixed_load_keeps_rss_flat_and_reports_nothing(gh_bin, ctx):
    # The ratchet of item 11 lives in glibc's malloc arenas, which the sanitizer build
    # replaces: only the normal build can show it. Until its fix is merged, the normal build's
    # RSS verdict is reported and turned into an xfail below, while everything else (client
    # errors, exit status) is judged as on the sanitizer build. Drop ratchet_known then.
    ratchet_known = not ghtest.is_sanitized(gh_bin)
    work = os.path.join(ctx.workdir, "soak")
    curve = os.path.join(ctx.workdir, "soak-rss.csv")
    duration = 60
    p = subprocess.Popen([sys.executable, SOAK, "--binary", gh_bin, "--duration", str(duration),
                          "--csv", curve, "--workdir", work] +
                         (["--rss-report-only"] if ratchet_known else []), stdout=subprocess.PIPE,
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
    if ratchet_known and not summary["rss_flat"]:
        pytest.xfail("%s; this run: level %.1f -> %.1f MB, limit %.1f MB" % (
            RATCHET, summary["first_half_level_anon_mb"], summary["second_half_level_anon_mb"],
            summary["level_limit_mb"]))
    assert summary["rss_flat"], summary
