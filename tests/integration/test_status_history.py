"""
test_status_history.py - the status page's history (issue 11): charts, top lists and recent
requests, and their JSON (api/series, api/top, api/recent), against the real daemon with a
real store. Every test starts its own daemon, so the figures it reads are the traffic it made:
- the requests made show up in "recent", newest first, and the client/host/status filter
  keeps exactly the matching ones (an attacker-chosen URL is shown escaped);
- the top lists name the test's hosts in order and the blocked host with its ProxyBlock rule
  (FILE:LINE included);
- api/series totals equal the traffic: requests, hits, bytes to clients (the access log's
  byte counts) and upstream errors, the status page's own requests left out; the charts
  page draws a non-flat line;
- in real headless Chromium, ui.js refreshes the recent table with requests made after the
  page loaded;
- bad parameters get 400 with a JSON error on the API.
"""

import json
import os
import re
import uuid

import pytest

import ghtest
import uibrowser

LOCATION = ["<Location /gatehouse/>", "    SetHandler gatehouse-status",
            "    Require ip 127.0.0.1 ::1", "</Location>"]


@pytest.fixture
def hproxy(start_daemon, ctx):
    root = os.path.join(ctx.workdir, "hist-cache-" + uuid.uuid4().hex[:8])
    log = os.path.join(ctx.workdir, "hist-%s.access.log" % uuid.uuid4().hex[:8])
    extra = ["CacheRoot %s" % root, "CacheSize 64M", "CacheEnable lmdb /",
             "ProxyBlock forbiddenword"] + LOCATION
    d = start_daemon("hist", extra=extra, access_log=log)
    d.access_log = log
    return d


def status(d, path):
    """GET /gatehouse/PATH addressed to the proxy itself (origin-form)."""
    raw = ("GET /gatehouse/%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n"
           % (path, d.port)).encode()
    r, c = ghtest.request(d.port, raw)
    c.close()
    return r


def api(d, path):
    r = status(d, path)
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("application/json"), r
    return json.loads(r.body)


def origin_url(ctx, host, query):
    return "http://%s:%d/cache?%s" % (host, ctx.origin_port, query)


def logged(d, count):
    """Wait (bounded) until count proxied requests are in the access log (workers log at the
    end of each request) and return their lines."""
    def proxied(line):
        return "/gatehouse/" not in line and line.strip()
    return ghtest.poll_lines(d.access_log, proxied, count=count, timeout=10)


def test_recent_lists_requests_and_filters(hproxy, ctx):
    t = uuid.uuid4().hex
    ok = origin_url(ctx, "origin.test", "t=%s&n=1" % t)
    assert ghtest.get(hproxy.port, ok).status == 200
    bad = "http://127.0.0.1:%d/gone?t=%s" % (ctx.refused_port, t)
    assert ghtest.get(hproxy.port, bad).status == 502
    evil = origin_url(ctx, "proxy.test", "t=%s&x=<script>alert(1)</script>" % t)
    ghtest.get(hproxy.port, evil)
    logged(hproxy, 3)

    page = status(hproxy, "recent")
    assert page.status == 200, page
    html = page.text()
    assert "t=%s&amp;n=1" % t in html
    assert "/gone?t=%s" % t in html
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # newest first: the 502 came after the 200
    assert html.index("/gone?t=%s" % t) < html.index("t=%s&amp;n=1" % t)
    assert "style=" not in html     # CSP default-src 'self': no style attributes

    only_502 = status(hproxy, "recent?status=502").text()
    assert "/gone?t=%s" % t in only_502 and "t=%s&amp;n=1" % t not in only_502
    by_class = status(hproxy, "recent?status=5xx").text()
    assert "/gone?t=%s" % t in by_class and "t=%s&amp;n=1" % t not in by_class
    by_host = status(hproxy, "recent?host=origin.test").text()
    assert "t=%s&amp;n=1" % t in by_host and "/gone?" not in by_host
    # the filter is kept in the form and in the refresh URL
    assert 'value="origin.test"' in by_host
    assert 'data-gh-refresh="/gatehouse/recent?part=1&amp;host=origin.test"' in by_host
    other = status(hproxy, "recent?client=10.9.9.9").text()
    assert "no request matches" in other and t not in other
    mine = status(hproxy, "recent?client=127.0.0.1").text()
    assert "t=%s&amp;n=1" % t in mine

    j = api(hproxy, "api/recent?host=origin.test")
    urls = [e["url"] for e in j["entries"]]
    assert ok in urls and bad not in urls
    e = j["entries"][urls.index(ok)]
    assert e["status"] == 200 and e["method"] == "GET" and e["client"] == "127.0.0.1"
    assert e["host"] == "origin.test" and e["action"] == "TCP_MISS" and e["bytes"] > 0
    j = api(hproxy, "api/recent?status=502")
    assert [x["url"] for x in j["entries"]] == [bad]

    r = status(hproxy, "recent?status=abc")
    assert r.status == 400 and b"status must be" in r.body
    r = status(hproxy, "api/recent?status=99")
    assert r.status == 400 and "error" in json.loads(r.body)


def test_top_lists_name_hosts_and_the_blocking_rule(hproxy, ctx):
    t = uuid.uuid4().hex
    for i in range(6):
        assert ghtest.get(hproxy.port, origin_url(ctx, "origin.test",
                                                  "t=%s&i=%d&size=2000" % (t, i))).status == 200
    for i in range(2):
        assert ghtest.get(hproxy.port, origin_url(ctx, "proxy.test",
                                                  "t=%s&i=%d&size=90000" % (t, i))).status == 200
    blocked = "http://www.forbiddenword.test/page"
    for _ in range(3):
        r = ghtest.get(hproxy.port, blocked)
        assert r.status == 403 and b"ProxyBlock" in r.body, r
    logged(hproxy, 11)

    j = api(hproxy, "api/top")
    hosts = [(x["key"], x["count"]) for x in j["hosts_by_requests"]["items"]]
    assert hosts[:3] == [("origin.test", 6), ("www.forbiddenword.test", 3), ("proxy.test", 2)]
    # fewer distinct keys than a sketch holds: the counts are exact
    assert all(x["error"] == 0 for x in j["hosts_by_requests"]["items"])
    assert j["hosts_by_bytes"]["items"][0]["key"] == "proxy.test"
    assert j["clients_by_requests"]["items"][0]["key"] == "127.0.0.1"
    assert j["clients_by_requests"]["items"][0]["count"] >= 11
    bl = j["blocked_hosts"]["items"]
    assert [(x["key"], x["count"]) for x in bl] == [("www.forbiddenword.test", 3)]
    line = [i for i, ln in enumerate(hproxy.text.split("\n"), 1)
            if ln.startswith("ProxyBlock forbiddenword")][0]
    assert "forbiddenword" in bl[0]["rule"]
    assert "%s:%d" % (hproxy.conf, line) in bl[0]["rule"], bl

    html = status(hproxy, "top").text()
    assert "<h2>Blocked hosts</h2>" in html
    blocked_table = html[html.index('id="top-blocked_hosts"'):]
    assert "www.forbiddenword.test" in blocked_table and "forbiddenword" in blocked_table
    assert "origin.test" in html[html.index('id="top-hosts_by_requests"'):]
    assert "style=" not in html
    assert status(hproxy, "top?n=0").status == 400
    assert status(hproxy, "api/top?n=51").status == 400


def test_series_totals_match_the_traffic_and_charts_draw_it(hproxy, ctx):
    t = uuid.uuid4().hex
    hits = 0
    for i in range(3):
        u = origin_url(ctx, "origin.test", "t=%s&i=%d&cc=max-age=300&size=3000" % (t, i))
        for _ in range(3):
            r = ghtest.get(hproxy.port, u)
            assert r.status == 200
            hits += "hit" in (r.header("Cache-Status") or "").split(";")[1]
    assert hits >= 3          # each URL is stored by its first request, then hit
    errors = 2
    for i in range(errors):
        r = ghtest.get(hproxy.port, "http://127.0.0.1:%d/e%d" % (ctx.refused_port, i))
        assert r.status == 502
    n = 9 + errors
    lines = logged(hproxy, n)
    # Squid native: time elapsed client action/status bytes method URL ...
    sent = sum(int(ln.split()[4]) for ln in lines)

    j = api(hproxy, "api/series?span=hour")
    assert j["resolution_s"] == 10 and len(j["points"]) == 360
    tot = j["totals"]
    assert tot["requests"] == n, j["totals"]
    assert tot["hits"] == hits
    assert tot["bytes_client"] == sent
    assert 3 * 3000 <= tot["bytes_upstream"] < sent   # the misses' bodies, no hit's
    assert tot["upstream_errors"] == errors
    # the same totals per metric as the sum of the points
    for m, name in enumerate(j["metrics"]):
        assert sum(p[m] for p in j["points"]) == tot[name]
    day = api(hproxy, "api/series?span=day")
    assert day["resolution_s"] == 300 and len(day["points"]) == 288
    # the status page's own requests are not counted: watching does not change the figures
    assert day["totals"]["requests"] == n
    assert api(hproxy, "api/series?span=hour")["totals"]["requests"] == n

    page = status(hproxy, "charts")
    assert page.status == 200
    html = page.text()
    assert html.count("<svg") == 8           # 4 charts x (hour, day)
    assert "style=" not in html
    hour = html[:html.index('id="charts-day"')]
    m = re.search(r'data-gh-metric="requests">(\d+)<', hour)
    assert m and int(m.group(1)) >= n
    # the requests chart of the hour: some point above the baseline (y < 174)
    svg = hour[hour.index("<svg"):hour.index("</svg>")]
    path = re.search(r' d="([^"]*)"', svg).group(1)
    ys = [float(v) for v in re.findall(r"[ML]?[\d.]+ ([\d.]+)", path)]
    assert ys and min(ys) < 174, path
    part = status(hproxy, "charts?part=day")
    assert part.status == 200 and "<html" not in part.text() and "<svg" in part.text()
    r = status(hproxy, "api/series?span=week")
    assert r.status == 400 and "error" in json.loads(r.body)


def chromium_or_skip():
    import shutil
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (scripts/test-deps.sh installs it)")
    return browser


def chromium_dump(browser, tmp_path, url):
    """Load url in real headless Chromium with 60 s of virtual time (ui.js's timers run) and
    return (DOM text bytes, stderr bytes); the browser's process group is killed after."""
    import signal
    import subprocess
    run = tmp_path / ("chromium-" + uuid.uuid4().hex[:8])
    run.mkdir()
    args = [browser] + uibrowser.CHROMIUM_BASE_ARGS + [
            "--no-proxy-server", "--user-data-dir=%s" % (run / "profile"),
            "--virtual-time-budget=60000", "--dump-dom", url]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, env=ghtest.clean_env(HOME=str(run)),
                         start_new_session=True)
    try:
        return p.communicate(timeout=120)
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass


def traffic_in_background(d, ctx, t):
    """Proxy requests for distinct URLs (misses) until the returned event is set; bounded at
    6,000 requests (about 2 minutes). Returns (stop event, thread)."""
    import threading
    stop = threading.Event()

    def traffic():
        i = 0
        while not stop.is_set() and i < 6000:
            ghtest.get(d.port, origin_url(ctx, "origin.test", "t=%s-%d" % (t, i)))
            i += 1
            stop.wait(0.02)
    th = threading.Thread(target=traffic, daemon=True)
    th.start()
    return stop, th


def line_times(line):
    """(start, end) in ms of an access log line (Squid format: start time, elapsed ms)."""
    f = line.split()
    start_ms = int(round(float(f[0]) * 1000))
    return start_ms, start_ms + int(f[1])


def test_chromium_refreshes_recent_without_reload(hproxy, ctx, tmp_path):
    """Real headless Chromium (Debian's) loads the recent page while the test keeps proxying
    requests; ui.js replaces the table with a fresh fragment a few (virtual) seconds later. The
    proof is a row that cannot be in the first render: a request that started after the page's
    own request had ended (both times from the access log). The status page's own requests
    are not in the history (watching does not fill the list)."""
    browser = chromium_or_skip()
    t = uuid.uuid4().hex
    stop, th = traffic_in_background(hproxy, ctx, t)
    try:
        logged(hproxy, 1)
        out, err = chromium_dump(browser, tmp_path,
                                 "http://127.0.0.1:%d/gatehouse/recent" % hproxy.port)
    finally:
        stop.set()
        th.join(30)
    dom = out.decode("utf-8", "replace")
    assert 'id="recent-table"' in dom, err.decode("latin-1")[-2000:]
    table = dom[dom.index('id="recent-table"'):]
    assert table.count('id="recent-table"') == 1       # replaced, not nested or repeated
    assert "/gatehouse/" not in table                   # its own requests are not listed

    lines = ghtest.poll_lines(hproxy.access_log, lambda ln: ln.strip(), count=1)
    page = [ln for ln in lines if ln.split()[6].endswith("/gatehouse/recent")]
    assert page, lines[-5:]
    page_end = line_times(page[0])[1]
    later = [ln.split()[6] for ln in lines
             if ("t=%s-" % t) in ln and line_times(ln)[0] > page_end]
    shown = [u for u in later if u.replace("&", "&amp;") in table]
    print("requests made after the page loaded, shown after a refresh: %d" % len(shown))
    assert shown, "no request made after the page loaded is in the refreshed table"


def test_chromium_refreshes_the_overview_figures_without_reload(hproxy, ctx, tmp_path):
    """Real headless Chromium loads the overview while the test keeps proxying misses; ui.js
    sets every <span data-ov> from api/overview every 5 s. The proof: the misses shown after
    the refreshes are more than every miss that started before the page's own request ended
    (an upper bound of what the first render could count)."""
    browser = chromium_or_skip()
    t = uuid.uuid4().hex
    stop, th = traffic_in_background(hproxy, ctx, t)
    try:
        logged(hproxy, 1)
        out, err = chromium_dump(browser, tmp_path, "http://127.0.0.1:%d/gatehouse/" % hproxy.port)
    finally:
        stop.set()
        th.join(30)
    dom = out.decode("utf-8", "replace")
    m = re.search(r'<span data-ov="req_miss">([^<]*)</span>', dom)
    assert m, err.decode("latin-1")[-2000:]
    shown = int(m.group(1).replace(",", ""))
    lines = ghtest.poll_lines(hproxy.access_log, lambda ln: ln.strip(), count=1)
    page = [ln for ln in lines if ln.split()[6].endswith("/gatehouse/")]
    assert page, lines[-5:]
    page_end = line_times(page[0])[1]
    before = [ln for ln in lines if "/gatehouse/" not in ln and line_times(ln)[0] <= page_end]
    print("misses shown %d, at most %d when the page was rendered" % (shown, len(before)))
    assert shown > len(before), "the overview's figures were not refreshed"
