"""
test_ui_screenshots.py - every page of the status page in real headless Chromium (issue 11),
after real traffic through the proxy, each checked for the figures the traffic caused and
saved as a screenshot artefact (build/test-artifacts/screenshots/page-*.png).

The daemon has a store, a ProxyBlock rule, a parent that refuses connections, and its own
dnsmasq answering a handful of office-like names (deb.debian.test, www.example.test ...) with
the loopback origin's address, so the pages read like a real office's; requests come from
several loopback clients (127.0.0.1 .. 127.0.0.4). The traffic: misses, hits (each one
confirmed by its Cache-Status), a URL stored with Vary and two variants, a blocked host and a
request routed to the dead parent (502). puppeteer-core (tests/integration/node, driving
Debian's chromium) then visits: overview, charts, top, recent (filtered), the cache browser
(a search), a cache entry (the Vary'd one), the purge-by-prefix confirmation (a real form
POST with the session's CSRF token; nothing is purged), explain for a blocked and a cached
URL. /metrics is text: checked, not photographed.

GH_README_SCREENSHOTS=1 also writes the README's set (overview, charts, top, cache, cache
entry, explain: the viewport only, 1280x800, optimised with optipng when it is installed)
to webui/screenshots/.
"""

import os
import re
import shutil
import subprocess
import time
import urllib.parse
import uuid

import pytest

import ghtest
import uibrowser

NAMES = ["deb.debian.test", "security.debian.test", "www.example.test", "intranet.corp.test",
         "fonts.cdn.test", "mirror.partner.test", "www.casino-royale.test"]
README_DIR = os.path.join(ghtest.REPO, "webui", "screenshots")
README_PAGES = ("overview", "charts", "top", "cache", "cache-entry", "explain")

CONF = """# written by tests/integration/test_ui_screenshots.py
Listen 127.0.0.1:{port}
DNSServer 127.0.0.1:@DNS@
ProxyTimeout 3
Workers 2
LogLevel info
User root
MaxConnectionsPerClient 0
AccessLog @LOG@
CacheRoot @ROOT@
CacheSize 256M
CacheEnable lmdb /
ProxyBlock casino
ProxyRemote http://mirror.partner.test:@OPORT@/ http://127.0.0.1:@DEAD@
<Proxy *>
    Require ip 127.0.0.0/8 ::1
</Proxy>
<Location /gatehouse/>
    SetHandler gatehouse-status
    Require ip 127.0.0.1 ::1
</Location>
"""


class OfficeDns(ghtest.Dnsmasq):
    RECORDS = ghtest.Dnsmasq.RECORDS + [(n, "127.0.0.1") for n in NAMES]


@pytest.fixture
def office(start_daemon, ctx):
    work = os.path.join(ctx.workdir, "shots-" + uuid.uuid4().hex[:8])
    os.makedirs(work)
    dns = OfficeDns(work).start()   # its own pid and log files, in its own directory
    try:
        dead = ghtest.refused_port()
        log = os.path.join(work, "access.log")
        text = (CONF.replace("@DNS@", str(dns.port)).replace("@LOG@", log)
                .replace("@ROOT@", os.path.join(work, "cache"))
                .replace("@OPORT@", str(ctx.origin_port)).replace("@DEAD@", str(dead)))
        d = start_daemon("shots", text=text)
        d.tpl = text
        d.access_log = log
        d.dead = "127.0.0.1:%d" % dead
        d.base = "http://127.0.0.1:%d/gatehouse/" % d.port
        yield d
    finally:
        dns.stop()
        shutil.rmtree(work, ignore_errors=True)


def line_of(d, needle):
    for i, ln in enumerate(d.tpl.splitlines(), 1):
        if ln.startswith(needle):
            return "%s:%d" % (d.conf, i)
    raise AssertionError(needle)


def fetch(d, url, client="127.0.0.1", headers=()):
    return ghtest.get(d.port, url, headers=headers, source=client)


class Traffic:
    """What the test caused, counted from the answers themselves."""

    def __init__(self):
        self.requests = self.hits = self.misses = self.blocked = self.errors = 0

    def note(self, r):
        self.requests += 1
        cs = r.header("Cache-Status") or ""
        if r.status == 403:
            self.blocked += 1
        elif r.status >= 500:
            self.errors += 1
        elif cs.startswith("Gatehouse; hit"):
            self.hits += 1
        else:
            self.misses += 1
        return r


def make_traffic(d, ctx):
    t = Traffic()
    tag = uuid.uuid4().hex[:6]
    op = ctx.origin_port
    deb = "http://deb.debian.test:%d/debian/pool/main/" % op
    cached = [
        deb + "h/hello/hello_2.10-3_amd64.deb?v=%s&cc=max-age=86400&size=53000" % tag,
        deb + "c/curl/curl_7.88.1-10_amd64.deb?v=%s&cc=max-age=86400&size=31000" % tag,
        deb + "o/openssl/libssl3_3.0.11-1_amd64.deb?v=%s&cc=max-age=86400&size=88000" % tag,
        "http://security.debian.test:%d/debian/dists/bookworm/InRelease?v=%s&cc=max-age=600"
        "&size=4000&text=1" % (op, tag),
        "http://www.example.test:%d/cache?page=news&v=%s&cc=max-age=300&size=12000" % (op, tag),
    ]
    vary = ("http://fonts.cdn.test:%d/cache?font=sans.woff2&v=%s&cc=max-age=3600&size=20000"
            "&vary=Accept-Language" % (op, tag))
    clients = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
    for i, u in enumerate(cached):
        r = t.note(fetch(d, u, clients[i % 4]))
        assert r.status == 200 and "fwd=uri-miss" in r.header("Cache-Status"), r
    # hits: the store is readable once the fill committed; every answer is counted as what
    # its Cache-Status says it was
    for i, u in enumerate(cached[:3] * 2):
        for _ in range(50):
            r = t.note(fetch(d, u, clients[(i + 1) % 4]))
            assert r.status == 200, r
            if r.header("Cache-Status").startswith("Gatehouse; hit"):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("never a hit: %s" % u)
    for i, lang in enumerate(("de", "fr")):
        r = t.note(fetch(d, vary, "127.0.0.2", [("Accept-Language", lang)]))
        assert r.status == 200, r
        # the next variant only once this one is stored (a fill commits after the answer)
        want = ['"kind":"vary"', '"kind":"variant"'][:i + 1] if i else ['"url"']
        q = urllib.parse.urlencode({"url": vary})
        for _ in range(100):
            e = ghtest.get(d.port, d.base + "api/cache/entry?" + q)
            if e.status == 200 and all(w in e.text() for w in want):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("variant %s never stored: %r" % (lang, e))
    for i in range(4):   # never stored: misses
        r = t.note(fetch(d, "http://intranet.corp.test:%d/cache?wiki=%d&cc=no-store&size=3000"
                         % (op, i), clients[i % 4]))
        assert r.status == 200, r
    for client in ("127.0.0.3", "127.0.0.3", "127.0.0.4"):
        r = t.note(fetch(d, "http://www.casino-royale.test/poker", client))
        assert r.status == 403 and b"ProxyBlock" in r.body, r
    assert t.blocked == 3 and t.hits >= 6, vars(t)
    t.cached, t.vary, t.deb = cached, vary, deb
    return t


def poke_dead_parent(d, ctx, t):
    """A request routed to the parent that refuses: 502 (it is tried, or it is still down)."""
    r = t.note(fetch(d, "http://mirror.partner.test:%d/cache?iso=1" % ctx.origin_port,
                     "127.0.0.2"))
    assert r.status == 502, r


def auto(d):
    r = ghtest.get(d.port, d.base + "?auto")
    assert r.status == 200, r
    return dict(ln.split(": ", 1) for ln in r.text().splitlines() if ": " in ln
                and not ln.startswith("Parent:"))


def settle(d, t):
    """Workers count a request when its log line is written (just after the client has its
    answer); the DNS figures are published once a second. Wait, bounded, until the counters
    hold the traffic, then check them."""
    want = lambda a: (int(a["ReqHit"]) == t.hits and int(a["ReqMiss"]) == t.misses
                      and int(a["ReqBlocked"]) == t.blocked and int(a["ReqError"]) == t.errors
                      and int(a["DNSLookups"]) >= 1)
    a = auto(d)
    deadline = time.monotonic() + 20
    while not want(a) and time.monotonic() < deadline:
        time.sleep(0.2)
        a = auto(d)
    assert want(a), (a, vars(t))
    return a


def ready_to_explain(d, url):
    """ProxyBlock's names are resolved at start; explain says "not ready" until then."""
    q = urllib.parse.urlencode({"url": url})
    for _ in range(100):
        r = ghtest.get(d.port, d.base + "api/explain?" + q, timeout=20)
        assert r.status == 200, r
        if b'"not ready"' not in r.body:
            return
        time.sleep(0.2)
    raise AssertionError("explain never ready: %r" % r.body[:2000])


def url(d, rel, **q):
    return d.base + rel + (("?" + urllib.parse.urlencode(q)) if q else "")


def shot(name):
    return {"screenshot": uibrowser.screenshot_path("page-" + name)}


def text_of(res, i):
    pg = res["pages"][i]
    assert pg["status"] == 200, (pg["url"], pg["status"], pg["text"][:2000])
    return pg["text"], pg["html"]


def test_every_page_shows_the_traffic_in_chromium(office, ctx, tmp_path):
    d = office
    t = make_traffic(d, ctx)
    a = settle(d, t)
    blocked_url = "http://www.casino-royale.test/poker"
    ready_to_explain(d, blocked_url)
    purge_prefix = t.deb

    # overview, with the dead parent down: it is down for 5 s after a failure (then 10, 20,
    # 40 s after the next ones), which a loaded machine's browser start may outlast; so the
    # parent is failed again just before the page is loaded, as often as needed (each real
    # failure doubles its backoff), and the counts are those of all the traffic so far
    for attempt in range(5):
        poke_dead_parent(d, ctx, t)
        a = settle(d, t)
        res = uibrowser.flow(tmp_path, [{"goto": url(d, "")}, shot("overview")])
        txt, html = text_of(res, 0)
        row = re.search(r'<tr data-parent="%s">(.*?)</tr>' % re.escape(d.dead), html, re.S)
        assert row and "refused" in row.group(1), html[-4000:]
        if ">down<" in row.group(1):
            break
    assert ">down<" in row.group(1), row.group(1)
    assert "<h1>Overview</h1>" in html
    for key, n in (("req_hit", t.hits), ("req_miss", t.misses), ("req_blocked", t.blocked),
                   ("req_error", t.errors)):
        m = re.search(r'<span data-ov="%s">([^<]*)</span>' % key, html)
        assert m and m.group(1) == str(n), (key, n, m and m.group(0))
    assert int(a["BlockedLastHour"]) == t.blocked
    m = re.search(r'<span data-ov="blocked_1h">([^<]*)</span>', html)
    assert m and m.group(1) == str(t.blocked), m and m.group(0)

    steps = [
        {"goto": url(d, "charts")}, shot("charts"),
        {"goto": url(d, "top")}, shot("top"),
        {"goto": url(d, "recent", host="casino")}, shot("recent"),
        {"goto": url(d, "cache", q="_amd64.deb")}, shot("cache"),
        {"goto": url(d, "cache/entry", url=t.vary)}, shot("cache-entry"),
        # the purge-by-prefix form under a prefix search; its first POST is the confirmation
        {"goto": url(d, "cache", prefix=purge_prefix)},
        {"submit": "form.purge button"}, shot("purge-confirm"),
        {"goto": url(d, "explain", url=blocked_url)}, shot("explain-blocked"),
        {"goto": url(d, "explain", url=t.cached[0])}, shot("explain-cached"),
    ]
    res = uibrowser.flow(tmp_path, steps)
    names = ["charts", "top", "recent", "cache", "cache-entry", "cache-prefix",
             "purge-confirm", "explain-blocked", "explain-cached"]
    assert len(res["pages"]) == len(names), [p["url"] for p in res["pages"]]
    pages = dict(zip(names, range(len(names))))

    # charts: the hour's requests total is what went through the proxy
    txt, html = text_of(res, pages["charts"])
    assert html.count("<svg") == 8, html[:2000]
    m = re.search(r'data-gh-metric="requests">(\d+)<', html)
    assert m and int(m.group(1)) == t.requests, (m and m.group(0), t.requests)
    hour = html[:html.index('id="charts-day"')]
    m = re.search(r'<h2>Hit ratio</h2><div class="big">[^<]*</div><div class="mute">(\d+) hits<',
                  hour)
    assert m and int(m.group(1)) == t.hits, m and m.group(0)
    m = re.search(r'<h2>Upstream errors</h2><div class="big[^"]*">(\d+)<', hour)
    assert m and int(m.group(1)) == t.errors, m and m.group(0)

    # top: the hosts, the clients, the blocked host with its rule and FILE:LINE
    txt, html = text_of(res, pages["top"])
    hosts = html[html.index('id="top-hosts_by_requests"'):]
    for h in ("deb.debian.test", "intranet.corp.test", "fonts.cdn.test"):
        assert h in hosts, h
    blocked = html[html.index('id="top-blocked_hosts"'):]
    blocked = blocked[:blocked.index("</table>")]
    assert "www.casino-royale.test" in blocked and "casino" in blocked, blocked
    assert line_of(d, "ProxyBlock casino") in blocked, blocked
    clients = html[html.index('id="top-clients_by_requests"'):]
    for c in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
        assert c in clients, c

    # recent, filtered by host: the blocked requests and nothing else
    txt, html = text_of(res, pages["recent"])
    table = html[html.index('id="recent-table"'):]
    assert table.count("www.casino-royale.test/poker") == t.blocked, table[:3000]
    assert "deb.debian.test" not in table and "intranet.corp.test" not in table
    assert 'value="casino"' in html

    # cache browser, searching "_amd64.deb": the three packages, not the others
    txt, html = text_of(res, pages["cache"])
    for u in t.cached[:3]:
        assert u in txt, u
    assert "InRelease" not in txt and "fonts.cdn.test" not in txt

    # the Vary'd entry: the Vary field and both variants
    txt, html = text_of(res, pages["cache-entry"])
    assert t.vary in txt
    assert "varies on accept-language" in txt.lower(), txt[:3000]
    assert len(re.findall(r"<h2>Variant ", html)) == 2, html[:4000]

    # the purge confirmation: the count of what it would remove, and nothing removed yet
    txt, html = text_of(res, pages["purge-confirm"])
    assert "This removes 3 records" in txt, txt[:3000]
    r = ghtest.get(d.port, url(d, "api/cache", prefix=purge_prefix))
    assert r.status == 200 and r.text().count('"url"') == 3, r.text()[:2000]

    # explain: the blocking rule with its line; the cached URL a hit
    txt, html = text_of(res, pages["explain-blocked"])
    assert line_of(d, "ProxyBlock casino") in txt, txt[:3000]
    assert re.search(r"Outcome:\s*403", txt), txt[:3000]
    txt, html = text_of(res, pages["explain-cached"])
    assert re.search(r"Outcome:\s*served from the cache", txt), txt[:3000]
    assert line_of(d, "CacheEnable lmdb") in txt
    assert "Gatehouse; hit" in txt

    for n in names + ["overview"]:
        if n != "cache-prefix":
            w, h = uibrowser.check_png(uibrowser.screenshot_path("page-" + n))
            assert w == 1280 and h >= 400, (n, w, h)

    # metrics: text, with the same figures
    r = ghtest.get(d.port, d.base + "metrics")
    assert r.status == 200
    assert 'gatehouse_requests_total{outcome="hit"} %d\n' % t.hits in r.text()
    assert 'gatehouse_requests_total{outcome="error"} %d\n' % t.errors in r.text()
    # up again once its backoff is over; its consecutive failures stay until a success
    m = re.search(r'^gatehouse_parent_failures\{parent="%s"\} (\d+)$' % re.escape(d.dead),
                  r.text(), re.M)
    assert m and int(m.group(1)) >= 1, r.text()[-2000:]

    if os.environ.get("GH_README_SCREENSHOTS") == "1":
        readme_screenshots(d, t, tmp_path)


def readme_screenshots(d, t, tmp_path):
    """The README's pictures: the viewport of each page (no credentials are needed from
    loopback), optimised."""
    os.makedirs(README_DIR, exist_ok=True)
    shots = {"overview": url(d, ""), "charts": url(d, "charts"), "top": url(d, "top"),
             "cache": url(d, "cache", q="_amd64.deb"), "cache-entry": url(d, "cache/entry", url=t.vary),
             "explain": url(d, "explain", url=t.cached[0])}
    for name in README_PAGES:
        path = uibrowser.screenshot(tmp_path, shots[name], "readme-" + name, size=(1280, 800))
        dest = os.path.join(README_DIR, name + ".png")
        shutil.copyfile(path, dest)
        if shutil.which("optipng"):
            subprocess.run(["optipng", "-quiet", "-o2", "-strip", "all", dest], check=True,
                           timeout=300)
        assert os.path.getsize(dest) < 300 * 1024, (dest, os.path.getsize(dest))
    # the JSON API's answers for the same traffic, for the README's examples
    out = os.path.join(os.path.dirname(uibrowser.SCREENSHOT_DIR), "api")
    os.makedirs(out, exist_ok=True)
    for name, rel in (("overview", "api/overview"), ("series", "api/series?span=hour"),
                      ("top", "api/top?n=3"), ("recent", "api/recent?host=casino"),
                      ("cache", "api/cache?q=_amd64.deb"),
                      ("entry", "api/cache/entry?" + urllib.parse.urlencode({"url": t.vary})),
                      ("count", "api/cache/count?" + urllib.parse.urlencode({"prefix": t.deb})),
                      ("explain", "api/explain?" + urllib.parse.urlencode(
                          {"url": "http://www.casino-royale.test/poker"})),
                      ("auto", "?auto"), ("metrics", "metrics"), ("csrf", "api/csrf")):
        r = ghtest.get(d.port, d.base + rel)
        assert r.status == 200, (rel, r)
        with open(os.path.join(out, name + ".txt"), "wb") as f:
            f.write(r.body)
