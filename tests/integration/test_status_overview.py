"""
test_status_overview.py - the status page's counters (issue 11) against the real daemon with a
real store: the overview, api/overview, ?auto and /metrics show the figures the test caused.

One daemon with a cache, a ProxyBlock rule, a parent that refuses connections and a parent
that works (a second gatehouse), and /gatehouse/ for loopback. The test sends N misses, M hits,
one blocked request, one request through the dead parent and one through the live one, then
reads every view of the counters: the outcomes must be exactly those (the status page's own
requests count as "local", apart), the dead parent down with its error, the live one up with
its request, the metrics accepted by promtool, and ?auto parseable. A failed reload shows its
error line; a good one clears it.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid

import pytest

import ghtest

N_MISS = 5
M_HIT = 3


def auto(port):
    st, hdrs, body = ghtest.status_page(port, "?auto")
    assert st == 200, body
    assert hdrs["content-type"].startswith("text/plain")
    out = {}
    for line in body.decode().splitlines():
        m = re.match(r"^([A-Za-z0-9]+): (.*)$", line)
        assert m, "not a Key: value line: %r" % line
        if m.group(1) == "Parent":
            out.setdefault("Parent", []).append(m.group(2))
        else:
            out[m.group(1)] = m.group(2)
    return out


def wait_auto(port, pred, timeout=10.0):
    """?auto once pred holds (workers count a request when its log line is written, which may
    come just after the client has its answer); the last reading otherwise."""
    deadline = time.monotonic() + timeout
    a = auto(port)
    while not pred(a) and time.monotonic() < deadline:
        time.sleep(0.1)
        a = auto(port)
    return a


def metrics_map(text):
    vals = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        name, _, v = line.rpartition(" ")
        vals[name] = float(v)
    return vals


LOCATION = ("<Location /gatehouse/>\n    SetHandler gatehouse-status\n"
            "    Require ip 127.0.0.1 ::1\n</Location>")


@pytest.fixture
def stats_env(start_daemon, ctx):
    parent = start_daemon("stats-parent")
    root = os.path.join(ctx.workdir, "stats-cache-" + uuid.uuid4().hex[:8])
    dead = ghtest.refused_port()
    extra = ["CacheRoot %s" % root, "CacheSize 64M", "CacheEnable lmdb /",
             "ProxyBlock blocked.test",
             "ProxyRemote http://origin.test:%d/dead http://127.0.0.1:%d"
             % (ctx.origin_port, dead),
             # proxy.test is the origin's address under another name
             "ProxyRemote http://proxy.test:%d/ http://127.0.0.1:%d"
             % (ctx.origin_port, parent.port),
             LOCATION]
    d = start_daemon("stats", extra=extra)
    d.dead_parent = "127.0.0.1:%d" % dead
    d.live_parent = "127.0.0.1:%d" % parent.port
    yield d
    shutil.rmtree(root, ignore_errors=True)


def drive(d, ctx):
    """N misses, M hits, 1 blocked, 1 via the dead parent, 1 via the live parent."""
    t = uuid.uuid4().hex
    urls = ["http://origin.test:%d/cache?t=%s&i=%d&cc=max-age=300&size=2000"
            % (ctx.origin_port, t, i) for i in range(N_MISS)]
    for u in urls:
        r = ghtest.get(d.port, u)
        assert r.status == 200 and "fwd=uri-miss" in r.header("Cache-Status"), r
    hits = 0
    for u in urls[:M_HIT]:
        for attempt in range(50):  # the store is readable once the fill committed
            r = ghtest.get(d.port, u)
            assert r.status == 200
            if r.header("Cache-Status").startswith("Gatehouse; hit"):
                hits += 1
                break
            time.sleep(0.1)
    assert hits == M_HIT
    assert len(ctx.origin.requests_with(t)) == N_MISS  # the hits never reached it
    r = ghtest.get(d.port, "http://blocked.test/x")
    assert r.status == 403
    r = ghtest.get(d.port, "http://origin.test:%d/dead?t=%s" % (ctx.origin_port, t))
    assert r.status == 502
    r = ghtest.get(d.port, "http://proxy.test:%d/cache?t=%s&cc=no-store" % (ctx.origin_port, t))
    assert r.status == 200, r
    return t


def test_overview_views_show_the_traffic(stats_env, ctx):
    d = stats_env
    a0 = auto(d.port)
    assert a0["Requests"] == "0" or int(a0["ReqLocal"]) == int(a0["Requests"])
    drive(d, ctx)
    # an unstored miss may be retried once by a waiting follower: count what reached the
    # access log rather than guess; here every request is distinct, so misses are N + routed
    a = wait_auto(d.port, lambda a: int(a["ReqHit"]) == M_HIT and int(a["ReqMiss"]) == N_MISS + 1
                  and int(a["ReqBlocked"]) == 1 and int(a["ReqError"]) == 1
                  and int(a["DNSLookups"]) >= 1)  # DNS figures: published once a second
    assert int(a["ReqHit"]) == M_HIT, a
    assert int(a["ReqMiss"]) == N_MISS + 1, a   # + the request through the live parent
    assert int(a["ReqBlocked"]) == 1 and int(a["ReqDenied"]) == 0, a
    assert int(a["ReqError"]) == 1, a            # the dead parent's 502
    assert int(a["ReqRefresh"]) == 0
    assert int(a["Requests"]) == sum(int(a[k]) for k in ("ReqHit", "ReqMiss", "ReqRefresh",
                                                          "ReqDenied", "ReqBlocked", "ReqError",
                                                          "ReqLocal"))
    assert int(a["BlockedLastHour"]) == 1 and int(a["BlockEntries"]) == 1
    assert int(a["Workers"]) == 2
    assert int(a["CacheEntries"]) >= N_MISS
    assert int(a["CacheSize"]) == 64 << 20
    assert int(a["BytesStoreOut"]) >= M_HIT * 2000
    assert int(a["BytesUpstreamIn"]) >= N_MISS * 2000
    hr = float(a["HitRatio"])
    assert abs(hr - M_HIT / (M_HIT + N_MISS + 1)) < 1e-3, a
    assert float(a["ReqPerSec1m"]) > 0
    assert int(a["DNSLookups"]) >= 1 and a["DNSServers"] == "127.0.0.1:%d" % ctx.dns_port
    parents = {p.split()[0]: dict(kv.split("=") for kv in p.split()[1:]) for p in a["Parent"]}
    assert parents[d.dead_parent]["up"] == "0" and int(parents[d.dead_parent]["fails"]) >= 1
    assert parents[d.live_parent]["up"] == "1"
    assert parents[d.live_parent]["requests"] == "1"
    assert parents[d.dead_parent]["requests"] == "0"

    # api/overview: the same figures as JSON
    st, hdrs, body = ghtest.status_page(d.port, "api/overview")
    assert st == 200 and hdrs["content-type"].startswith("application/json")
    j = json.loads(body)
    assert j["requests"]["hit"] == M_HIT and j["requests"]["blocked"] == 1
    assert j["display"]["req_hit"] == str(M_HIT)
    dead = [p for p in j["parents"] if p["name"] == d.dead_parent][0]
    assert dead["up"] is False and "refused" in dead["last_error"]
    assert j["cache"]["entries"] >= N_MISS
    assert j["reload_ok"] is None

    # the HTML page: works without JS, figures in data-ov spans
    st, hdrs, body = ghtest.status_page(d.port, "")
    html = body.decode()
    assert st == 200 and hdrs["content-type"].startswith("text/html")
    assert '<span data-ov="req_hit">%d</span>' % M_HIT in html
    assert '<span data-ov="req_blocked">1</span>' in html
    row = re.search(r'<tr data-parent="%s">(.*?)</tr>' % re.escape(d.dead_parent), html)
    assert row and ">down<" in row.group(1) and "refused" in row.group(1), html
    row = re.search(r'<tr data-parent="%s">(.*?)</tr>' % re.escape(d.live_parent), html)
    assert row and ">up<" in row.group(1)
    assert "none since start" in html

    # /metrics: promtool accepts it; the counters match
    st, hdrs, body = ghtest.status_page(d.port, "metrics")
    assert st == 200 and hdrs["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/test-deps.sh installs Debian's prometheus"
    p = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                       timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    m = metrics_map(body.decode())
    assert m['gatehouse_requests_total{outcome="hit"}'] == M_HIT
    assert m['gatehouse_requests_total{outcome="miss"}'] == N_MISS + 1
    assert m['gatehouse_requests_total{outcome="blocked"}'] == 1
    assert m['gatehouse_parent_up{parent="%s"}' % d.dead_parent] == 0
    assert m['gatehouse_parent_up{parent="%s"}' % d.live_parent] == 1
    assert m['gatehouse_parent_requests_total{parent="%s"}' % d.live_parent] == 1
    assert m["gatehouse_cache_entries"] >= N_MISS
    assert m['gatehouse_bytes_total{direction="store_out"}'] >= M_HIT * 2000
    count = m["gatehouse_request_duration_seconds_count"]
    assert m['gatehouse_request_duration_seconds_bucket{le="+Inf"}'] == count
    assert count == sum(v for k, v in m.items() if k.startswith("gatehouse_requests_total"))


def test_reload_outcome_is_shown(stats_env):
    d = stats_env
    good = open(d.conf).read()
    try:
        with open(d.conf, "w") as f:
            f.write(good + "ProxyBlock \"x<script>alert(1)</script>\"\n")
        os.kill(d.pid, signal.SIGHUP)
        a = wait_auto(d.port, lambda a: a["LastReload"] != "0")
        assert a["LastReloadOK"] == "0", a
        assert "ProxyBlock" in a["LastReloadError"] and d.conf in a["LastReloadError"]
        assert a["LastReloadApplied"] == "0", a   # the previous configuration runs
        st, _, body = ghtest.status_page(d.port, "")
        html = body.decode()
        assert "failed" in html and "ProxyBlock" in html
        assert "<script>alert" not in html and "&lt;script&gt;alert(1)" in html
        st, _, body = ghtest.status_page(d.port, "metrics")
        assert "gatehouse_config_last_reload_successful 0\n" in body.decode()
    finally:
        with open(d.conf, "w") as f:
            f.write(good)
    os.kill(d.pid, signal.SIGHUP)
    a = wait_auto(d.port, lambda a: a["LastReloadOK"] == "1")
    assert a["LastReloadOK"] == "1" and a["LastReloadError"] == "", a
    assert d.alive()


def test_connections_now_count_tunnels_and_upstreams(stats_env, ctx):
    """Connections now: an open CONNECT tunnel is a client connection and a tunnel (and its
    upstream an upstream connection) while it lasts, and none of them once it is closed."""
    d = stats_env
    c = ghtest.Conn("127.0.0.1", d.port)
    authority = "origin.test:%d" % ctx.echo_port
    with c:
        c.send("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (authority, authority))
        r = c.read_response("CONNECT")
        assert r.status == 200, r
        c.send(b"ping")
        assert c.read_exact(4) == b"ping"
        a = wait_auto(d.port, lambda a: int(a["ConnsTunnels"]) == 1)
        assert int(a["ConnsTunnels"]) == 1, a
        assert int(a["ConnsUpstreams"]) >= 1, a
        assert int(a["ConnsClients"]) >= 2, a   # the tunnel and this ?auto request
    a = wait_auto(d.port, lambda a: int(a["ConnsTunnels"]) == 0 and int(a["ReqMiss"]) == 1
                  and int(a["ConnsUpstreams"]) == 0)
    assert int(a["ConnsTunnels"]) == 0 and int(a["ConnsUpstreams"]) == 0, a
    assert int(a["ReqMiss"]) == 1, a            # the tunnel, logged when it closed
