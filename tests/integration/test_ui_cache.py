"""
test_ui_cache.py - the status page's cache browser (issue 11) against the real daemon with a
real store: entries filled through the proxy from the loopback origin are listed with their
status, size and hits; the entry page shows the details; a cached URL or stored header
carrying <script> renders escaped; a purge by prefix goes through the form flow (the
confirmation page with the count, then the POST with the session's CSRF token) and really
removes those entries (the origin is asked again); a POST without a valid token gets 403 and
purges nothing; GET never purges.

The status page is reached in origin form on the proxy's own listener, with the session
cookie and the CSRF token taken from the pages as a browser would (http.client, no JS).
"""

import html
import http.client
import json
import os
import re
import socket
import time
import types
import urllib.parse
import uuid

import pytest

import ghtest

LOC = "/gatehouse/"


def status_conf(ctx):
    root = os.path.join(ctx.workdir, "uicache-" + uuid.uuid4().hex[:8])
    return ["CacheRoot %s" % root, "CacheSize 64M", "CacheEnable lmdb /",
            "<Location %s>" % LOC, "    SetHandler gatehouse-status",
            "    Require ip 127.0.0.1 ::1", "</Location>"]


@pytest.fixture
def uproxy(start_daemon, ctx):
    return start_daemon("uicache", extra=status_conf(ctx))


class Browser:
    """A cookie-keeping client of the status page (origin form, one connection a request)."""

    def __init__(self, port):
        self.port = port
        self.cookies = {}

    def request(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = {"Host": "127.0.0.1:%d" % self.port, "Connection": "close"}
        if self.cookies:
            h["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        if body is not None:
            body = urllib.parse.urlencode(body).encode()
            h["Content-Type"] = "application/x-www-form-urlencoded"
        h.update(headers or {})
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            for v in r.headers.get_all("Set-Cookie") or []:
                name, _, rest = v.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0].strip()
            return r.status, r.headers, data.decode("utf-8", "replace")
        finally:
            c.close()

    def get(self, rel, **params):
        q = ("?" + urllib.parse.urlencode(params)) if params else ""
        return self.request("GET", LOC + rel + q)

    def post(self, rel, **form):
        return self.request("POST", LOC + rel, body=form)

    def json(self, rel, **params):
        st, _, body = self.get(rel, **params)
        assert st == 200, (rel, st, body[:500])
        return json.loads(body)

    @staticmethod
    def csrf(page):
        m = re.search(r'name="csrf" value="([^"]+)"', page)
        assert m, "no CSRF field in the page: " + page[:1000]
        return html.unescape(m.group(1))


def curl_url(ctx, tok, i, extra=""):
    return "http://origin.test:%d/cache?t=%s&i=%d&cc=max-age=300&size=%d%s" % (
        ctx.origin_port, tok, i, 1000 + i, extra)


def fetch(port, u):
    r = ghtest.get(port, u)
    assert r.status == 200, r
    return r


def items_for(b, tok):
    return {it["url"]: it for it in b.json("api/cache", q=tok)["items"]}


def test_listing_shows_status_size_and_hits(uproxy, ctx):
    tok = uuid.uuid4().hex
    urls = [curl_url(ctx, tok, i) for i in range(3)]
    for u in urls:
        fetch(uproxy.port, u)
    for _ in range(2):  # two hits on the first
        r = fetch(uproxy.port, urls[0])
        assert r.header("Cache-Status").startswith("Gatehouse; hit")
    assert len(ctx.origin.requests_with(tok)) == 3
    b = Browser(uproxy.port)
    # hits are applied by the store's next write (maintenance runs about every second)
    assert ghtest.poll(lambda: items_for(b, tok).get(urls[0], {}).get("hits") == 2,
                       timeout=20), items_for(b, tok)
    items = items_for(b, tok)
    assert sorted(items) == sorted(urls)
    for i, u in enumerate(urls):
        it = items[u]
        assert it["status"] == 200
        assert it["size"] == 1000 + i
        assert it["stored"] > 0
        assert 0 < it["ttl"] <= 300
        assert it["hits"] == (2 if i == 0 else 0)
        assert (it["last_access"] > 0) == (i == 0)
    # the HTML listing: the same URLs (escaped: & is &amp;), a link to each entry
    st, hdrs, page = b.get("cache", q=tok)
    assert st == 200 and hdrs["Content-Type"].startswith("text/html")
    for u in urls:
        assert html.escape(u, quote=True) in page
        assert "cache/entry?url=" + urllib.parse.quote(u, safe="") in page
    # the entry: details and headers; typed with an upper-case host it is the same key
    typed = urls[1].replace("origin.test", "ORIGIN.TEST")
    e = b.json("api/cache/entry", url=typed)
    assert e["url"] == urls[1]
    rec = e["records"][0]
    assert rec["kind"] == "entry" and rec["status"] == 200 and rec["size"] == 1001
    assert rec["lifetime"] == 300 and 0 <= rec["age"] < 300 and rec["ttl"] == 300 - rec["age"]
    assert "max-age=300" in rec["headers"]
    st, _, page = b.get("cache/entry", url=urls[1])
    assert st == 200 and "Cache-Control: max-age=300" in page and "Purge this entry" in page
    st, _, _ = b.get("cache/entry", url=curl_url(ctx, tok, 99))
    assert st == 404
    st, _, _ = b.get("cache/entry", url="not a url")
    assert st == 400


def test_listing_is_paged_with_a_cursor(uproxy, ctx):
    tok = uuid.uuid4().hex
    urls = sorted(curl_url(ctx, tok, i) for i in range(55))
    for u in urls:
        fetch(uproxy.port, u)
    b = Browser(uproxy.port)
    prefix = "http://origin.test:%d/cache?t=%s" % (ctx.origin_port, tok)
    seen, after, pages = [], "", 0
    while pages < 10:
        j = b.json("api/cache", prefix=prefix, after=after)
        seen += [it["url"] for it in j["items"]]
        pages += 1
        if j["next"] is None:
            break
        after = j["next"]
    assert seen == urls and pages == 2
    st, _, page = b.get("cache", prefix=prefix)
    assert st == 200 and 'rel="next"' in page


def test_script_in_cached_url_and_header_renders_escaped(uproxy, ctx):
    tok = uuid.uuid4().hex
    evil = "<script>alert(1)</script>"
    u = curl_url(ctx, tok, 0, "&x=" + evil.replace(" ", "%20") + "&loc=" +
                 urllib.parse.quote(evil, safe=""))
    r = ghtest.get(uproxy.port, u)
    if r.status == 400:  # the proxy refuses a raw '<' in a target: use the escaped form
        u = curl_url(ctx, tok, 0, "&x=" + urllib.parse.quote(evil, safe="") + "&loc=" +
                     urllib.parse.quote(evil, safe=""))
        r = ghtest.get(uproxy.port, u)
    assert r.status == 200, r
    b = Browser(uproxy.port)
    items = b.json("api/cache", q=tok)["items"]
    assert len(items) == 1
    key = items[0]["url"]
    for path, params in (("cache", {"q": tok}), ("cache/entry", {"url": key})):
        st, _, page = b.get(path, **params)
        assert st == 200
        assert "<script>" not in page.lower()
        assert "alert(1)" in page  # the text is there, escaped
    st, _, page = b.get("cache/entry", url=key)
    assert "Location: &lt;script&gt;alert(1)&lt;/script&gt;" in page
    j = b.get("api/cache/entry", url=key)[2]
    assert "<script>" not in j  # JSON escapes < and > too


def test_purge_by_prefix_through_the_form(uproxy, ctx):
    tok, other = uuid.uuid4().hex, uuid.uuid4().hex
    urls = [curl_url(ctx, tok, i) for i in range(3)]
    keep = curl_url(ctx, other, 0)
    for u in urls + [keep]:
        fetch(uproxy.port, u)
    prefix = "http://origin.test:%d/cache?t=%s" % (ctx.origin_port, tok)
    b = Browser(uproxy.port)
    st, _, page = b.get("cache", prefix=prefix)
    assert st == 200 and "Purge everything under this prefix" in page
    token = Browser.csrf(page)
    # step 1: the confirmation page counts, and purges nothing
    st, _, page = b.post("cache/purge", prefix=prefix, csrf=token)
    assert st == 200, page[:500]
    assert re.search(r'id="count">3</strong>', page), page[:2000]
    assert 'name="confirm" value="1"' in page
    for u in urls:
        assert fetch(uproxy.port, u).header("Cache-Status").startswith("Gatehouse; hit")
    assert len(ctx.origin.requests_with(tok)) == 3
    # step 2: confirmed
    st, _, page = b.post("cache/purge", prefix=prefix, csrf=Browser.csrf(page), confirm="1")
    assert st == 200, page[:500]
    assert re.search(r'id="purged">3</strong>', page), page[:2000]
    assert b.json("api/cache", prefix=prefix)["items"] == []
    for u in urls:
        assert "fwd=" in fetch(uproxy.port, u).header("Cache-Status")
    assert len(ctx.origin.requests_with(tok)) == 6  # the origin was asked again
    # the other prefix stayed
    assert fetch(uproxy.port, keep).header("Cache-Status").startswith("Gatehouse; hit")
    assert len(ctx.origin.requests_with(other)) == 1


def fill_keepalive(port, urls):
    """GET each URL through the proxy on one keep-alive connection (fast: a few thousand)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for u in urls:
            c.request("GET", u, headers={"Host": urllib.parse.urlsplit(u).netloc})
            r = c.getresponse()
            r.read()
            assert r.status == 200, (u, r.status)
    finally:
        c.close()


def start_big_purge(start_daemon, ctx, name, extra, n, n_keep):
    """The set-up of a large purge by prefix: a daemon with one worker (Workers 1, so the
    purge and the requests meanwhile share its loop), n entries under a fresh prefix and n_keep
    under another filled through it, and a Browser that opened the cache page for the prefix.
    Returns a namespace: d, b (the Browser), page (that cache page, for its CSRF token), tok
    and other (the two URL tokens), urls, keep and prefix."""
    d = start_daemon(name, extra=extra, workers=1)
    tok, other = uuid.uuid4().hex, uuid.uuid4().hex
    urls = [curl_url(ctx, tok, i) for i in range(n)]
    keep = [curl_url(ctx, other, i) for i in range(n_keep)]
    fill_keepalive(d.port, urls + keep)
    prefix = "http://origin.test:%d/cache?t=%s" % (ctx.origin_port, tok)
    b = Browser(d.port)
    st, _, page = b.get("cache", prefix=prefix)
    assert st == 200
    return types.SimpleNamespace(d=d, b=b, page=page, tok=tok, other=other, urls=urls,
                                 keep=keep, prefix=prefix)


PURGE_N = 1500


def test_large_purge_by_prefix_does_not_hold_the_worker(start_daemon, ctx, monkeypatch):
    """A purge by prefix of PURGE_N entries runs in batches on the loop of the only worker
    (Workers 1): the test paces it (GATEHOUSE_TEST_PURGE_PACE: 10 URLs a batch, at least 40 ms
    between batches, so it lasts 7.5 s at least) and checks that meanwhile the same worker
    answers proxied requests and the status page, and that the purge is still running after
    they were answered. Afterwards everything under the prefix is gone, the rest is there."""
    monkeypatch.setenv("GATEHOUSE_TEST_PURGE_PACE", "10:50")
    big = start_big_purge(start_daemon, ctx, "uicachebig", status_conf(ctx), PURGE_N, 20)
    d, b, page, prefix, urls, keep = big.d, big.b, big.page, big.prefix, big.urls, big.keep
    # the confirmation step counts first
    st, _, page = b.post("cache/purge", prefix=prefix, csrf=Browser.csrf(page))
    assert st == 200 and re.search(r'id="count">%d</strong>' % PURGE_N, page), page[:2000]
    assert 'name="count" value="%d"' % PURGE_N in page
    # confirmed: the page answers after UI_CACHE_PURGE_ANSWER_MS (3 s) with the progress, as
    # the paced purge needs 7.5 s at least
    st, _, page = b.post("cache/purge", prefix=prefix, csrf=Browser.csrf(page), confirm="1",
                         count=str(PURGE_N))
    assert st == 202, page[:2000]
    m = re.search(r'id="purged">(\d+)</strong>', page)
    assert m and "still running" in page, page[:2000]
    so_far = int(m.group(1))
    assert 0 < so_far < PURGE_N
    # meanwhile the same worker serves proxied requests (hits and a miss) and the page
    for u in keep[:5]:
        r = fetch(d.port, u)
        assert r.header("Cache-Status").startswith("Gatehouse; hit"), r.header("Cache-Status")
    fetch(d.port, curl_url(ctx, big.other, 999))
    purges = b.json("api/purges")["purges"]
    assert len(purges) == 1, purges
    p = purges[0]
    assert p["prefix"] == prefix and p["estimate"] == PURGE_N
    # answered while the purge was still in progress
    assert p["finished"] is False and so_far <= p["purged"] < PURGE_N, p
    st, _, page = b.get("cache")
    assert st == 200 and 'id="purges"' in page and "running" in page
    # the purge ends on its own (nobody waits for it)
    assert ghtest.poll(lambda: b.json("api/purges")["purges"][0]["finished"], timeout=120)
    p = b.json("api/purges")["purges"][0]
    assert p["purged"] == PURGE_N and p["failed"] is False and p["urls"] == PURGE_N, p
    assert b.json("api/cache/count", prefix=prefix)["count"] == 0
    assert b.json("api/cache", prefix=prefix)["items"] == []
    for u in keep:
        assert fetch(d.port, u).header("Cache-Status").startswith("Gatehouse; hit")
    n0 = len(ctx.origin.requests_with(big.tok))
    for u in urls[::400]:
        assert "fwd=" in fetch(d.port, u).header("Cache-Status")
    assert len(ctx.origin.requests_with(big.tok)) == n0 + len(urls[::400])
    st, _, page = b.get("cache")
    assert st == 200 and "done" in page


def test_purge_goes_on_when_the_client_leaves_and_api_answers_202(start_daemon, ctx,
                                                                   monkeypatch):
    """A paced purge (1 URL a batch, 40 ms between batches: 3.2 s at least for 80 URLs) whose
    client closes the connection at once still runs to the end; one through api/purge still
    running after 3 s is answered 202 with "finished": false, and api/purges then shows both
    done with every record counted."""
    monkeypatch.setenv("GATEHOUSE_TEST_PURGE_PACE", "1:40")
    d = start_daemon("uicachegone", extra=status_conf(ctx), workers=1)
    ta, tb = uuid.uuid4().hex, uuid.uuid4().hex
    ua = [curl_url(ctx, ta, i) for i in range(80)]
    ub = [curl_url(ctx, tb, i) for i in range(80)]
    fill_keepalive(d.port, ua + ub)
    pa = "http://origin.test:%d/cache?t=%s" % (ctx.origin_port, ta)
    pb = "http://origin.test:%d/cache?t=%s" % (ctx.origin_port, tb)
    b = Browser(d.port)
    token = b.json("api/cache")["csrf"]
    body = urllib.parse.urlencode({"prefix": pa, "confirm": "1", "csrf": token}).encode()
    s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    s.sendall(b"POST /gatehouse/api/purge HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: %s\r\n"
              b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n"
              b"\r\n%s" % ("; ".join("%s=%s" % kv for kv in b.cookies.items()).encode(),
                            len(body), body))
    assert ghtest.poll(lambda: len(b.json("api/purges")["purges"]) == 1, timeout=20)
    s.close()  # the client leaves: the purge goes on
    st, _, out = b.post("api/purge", prefix=pb, csrf=token, confirm="1")
    assert st == 202, out
    r = json.loads(out)
    assert r["finished"] is False and r["prefix"] == pb and 0 <= r["purged"] < 80, r
    assert ghtest.poll(lambda: all(p["finished"] for p in b.json("api/purges")["purges"]),
                       timeout=120)
    got = {p["prefix"]: p for p in b.json("api/purges")["purges"]}
    assert got[pa]["purged"] == 80 and got[pb]["purged"] == 80, got
    assert got[pa]["id"] < got[pb]["id"]
    for p in (pa, pb):
        assert b.json("api/cache/count", prefix=p)["count"] == 0


def test_post_without_valid_csrf_is_403_and_purges_nothing(uproxy, ctx):
    tok = uuid.uuid4().hex
    u = curl_url(ctx, tok, 0)
    fetch(uproxy.port, u)
    prefix = "http://origin.test:%d/cache?t=%s" % (ctx.origin_port, tok)
    b = Browser(uproxy.port)
    st, _, page = b.get("cache", prefix=prefix)
    good = Browser.csrf(page)
    for form in ({"prefix": prefix, "confirm": "1"},
                 {"prefix": prefix, "confirm": "1", "csrf": "0" * len(good)},
                 {"url": u}, {"url": u, "csrf": good[:-1] + ("0" if good[-1] != "0" else "1")}):
        for path in ("cache/purge", "api/purge"):
            st, _, _ = b.post(path, **form)
            assert st == 403, (path, form)
    # a token from another session does not work either
    other = Browser(uproxy.port)
    other.get("cache")
    st, _, _ = other.post("cache/purge", prefix=prefix, confirm="1", csrf=good)
    assert st == 403
    # GET never purges
    st, _, _ = b.get("cache/purge", prefix=prefix, confirm="1", csrf=good)
    assert st == 405
    st, _, _ = b.get("api/purge", url=u, csrf=good)
    assert st == 405
    assert [it["url"] for it in b.json("api/cache", q=tok)["items"]] == [u]
    assert fetch(uproxy.port, u).header("Cache-Status").startswith("Gatehouse; hit")
    assert len(ctx.origin.requests_with(tok)) == 1


def test_api_purge_url_and_prefix(uproxy, ctx):
    tok = uuid.uuid4().hex
    urls = [curl_url(ctx, tok, i) for i in range(2)]
    for u in urls:
        fetch(uproxy.port, u)
    b = Browser(uproxy.port)
    token = b.json("api/cache")["csrf"]
    st, _, body = b.post("api/purge", url=urls[0].replace("http://origin.test",
                                                          "HTTP://Origin.Test"), csrf=token)
    assert st == 200 and json.loads(body)["purged"] == 1
    prefix = "http://origin.test:%d/cache?t=%s" % (ctx.origin_port, tok)
    assert b.json("api/cache/count", prefix=prefix) == {"prefix": prefix, "count": 1,
                                                         "estimate": False}
    st, _, body = b.post("api/purge", prefix=prefix, csrf=token)  # not confirmed: a count
    assert st == 200 and json.loads(body)["count"] == 1 and json.loads(body)["purged"] == 0
    assert len(b.json("api/cache", prefix=prefix)["items"]) == 1
    st, _, body = b.post("api/purge", prefix=prefix, csrf=token, confirm="1")
    assert st == 200 and json.loads(body)["purged"] == 1
    assert b.json("api/cache", prefix=prefix)["items"] == []
    st, _, _ = b.post("api/purge", csrf=token)
    assert st == 400


def test_entry_lists_vary_variants(uproxy, ctx):
    tok = uuid.uuid4().hex
    u = curl_url(ctx, tok, 0, "&vary=Accept-Encoding")
    for enc in ("gzip", "br"):
        r = ghtest.get(uproxy.port, u, headers=[("Accept-Encoding", enc)])
        assert r.status == 200
    assert len(ctx.origin.requests_with(tok)) == 2
    b = Browser(uproxy.port)
    items = b.json("api/cache", q=tok)["items"]
    assert len(items) == 1 and items[0]["vary"] is True
    recs = b.json("api/cache/entry", url=u)["records"]
    assert [r["kind"] for r in recs] == ["vary", "variant", "variant"]
    assert recs[0]["vary"] == "accept-encoding"
    assert all(len(r["variant"]) == 16 for r in recs[1:])
    assert recs[1]["variant"] != recs[2]["variant"]
    st, _, page = b.get("cache/entry", url=u)
    assert st == 200 and "Varies on" in page and page.count("<h2>Variant ") == 2
    st, _, body = b.post("api/purge", url=u, csrf=b.json("api/cache")["csrf"])
    assert st == 200 and json.loads(body)["purged"] == 3


def test_without_a_cache_the_pages_say_so(start_daemon, ctx):
    d = start_daemon("uinocache", extra=["<Location %s>" % LOC, "    SetHandler gatehouse-status",
                                         "    Require ip 127.0.0.1 ::1", "</Location>"])
    b = Browser(d.port)
    st, _, page = b.get("cache")
    assert st == 503 and "CacheRoot" in page
    st, hdrs, body = b.get("api/cache")
    assert st == 503 and "json" in hdrs["Content-Type"] and "error" in json.loads(body)


def test_purge_stopped_by_sigterm_is_resumed_at_the_next_start(start_daemon, ctx, monkeypatch):
    """A paced purge by prefix (GATEHOUSE_TEST_PURGE_PACE: 5 URLs a batch, 50 ms between
    batches) of 600 entries is recorded in the store when it starts; the daemon is
    stopped (SIGTERM) in the middle of it; at the next start on the same store the purge is
    resumed where it stopped, shown as running on the status page, and finishes: every entry
    under the prefix is gone (the origin is asked again), the others are still hits."""
    monkeypatch.setenv("GATEHOUSE_TEST_PURGE_PACE", "5:50")
    n = 600
    root = os.path.join(ctx.workdir, "uicache-resume-" + uuid.uuid4().hex[:8])
    extra = status_conf(ctx)
    extra[0] = "CacheRoot %s" % root
    big = start_big_purge(start_daemon, ctx, "uicacheresume", extra, n, 10)
    d, b, page, prefix, urls, keep = big.d, big.b, big.page, big.prefix, big.urls, big.keep
    st, _, out = b.post("api/purge", prefix=prefix, csrf=Browser.csrf(page), confirm="1",
                        count=str(n))
    assert st == 202, out  # 6 s at least: still running after 3 s
    r = json.loads(out)
    assert r["finished"] is False and 0 < r["purged"] < n, r
    assert d.stop() == 0
    # a second daemon on the same store
    d2 = start_daemon("uicacheresume2", extra=extra, workers=1)
    b2 = Browser(d2.port)
    purges = b2.json("api/purges")["purges"]
    assert len(purges) == 1, purges
    p = purges[0]
    assert p["prefix"] == prefix and p["estimate"] == n, p
    # resumed where it stopped, not from zero: 3 s of the 6 s it needs at least are left
    assert p["finished"] is False and r["purged"] <= p["purged"] < n, (r, p)
    st, _, page = b2.get("cache")
    assert st == 200 and 'id="purges"' in page and "running" in page
    assert "resumed" in d2.stderr_text()
    assert ghtest.poll(lambda: b2.json("api/purges")["purges"][0]["finished"], timeout=120)
    p = b2.json("api/purges")["purges"][0]
    assert p["purged"] == n and p["failed"] is False, p
    assert b2.json("api/cache/count", prefix=prefix)["count"] == 0
    for u in keep:
        assert fetch(d2.port, u).header("Cache-Status").startswith("Gatehouse; hit")
    n0 = len(ctx.origin.requests_with(big.tok))
    for u in urls[::100] + urls[-1:]:
        assert "fwd=" in fetch(d2.port, u).header("Cache-Status")
    assert len(ctx.origin.requests_with(big.tok)) == n0 + len(urls[::100]) + 1
    # done: nothing is resumed at a third start
    assert d2.stop() == 0
    d3 = start_daemon("uicacheresume3", extra=extra, workers=1)
    assert Browser(d3.port).json("api/purges")["purges"] == []
    assert "resumed" not in d3.stderr_text()
