"""
test_ui_cache_browser.py - the cache browser in real headless Chromium (Debian's chromium,
driven by puppeteer-core through h2's tests/integration/uibrowser.py; skipped until that
harness is present): a purge by prefix done by clicking through the forms (the confirmation
page with the count, then Purge) really empties those entries and the origin is asked again;
a cached URL carrying <script> is shown as text, never run as a script. Screenshots of the
listing, the confirmation and the entry page are saved as artefacts.
"""

import urllib.parse
import uuid

import pytest

import ghtest
from test_ui_cache import LOC, Browser, curl_url, fetch, status_conf

uibrowser = pytest.importorskip("uibrowser")


@pytest.fixture
def uproxy(start_daemon, ctx):
    return start_daemon("uicachebr", extra=status_conf(ctx))


def page_url(d, rel, **params):
    q = ("?" + urllib.parse.urlencode(params)) if params else ""
    return "http://127.0.0.1:%d%s%s%s" % (d.port, LOC, rel, q)


def test_purge_by_prefix_clicked_in_chromium(uproxy, ctx, tmp_path):
    tok, other = uuid.uuid4().hex, uuid.uuid4().hex
    urls = [curl_url(ctx, tok, i) for i in range(3)]
    keep = curl_url(ctx, other, 0)
    for u in urls + [keep]:
        fetch(uproxy.port, u)
    prefix = "http://origin.test:%d/cache?t=%s" % (ctx.origin_port, tok)
    res = uibrowser.flow(tmp_path, [
        {"goto": page_url(uproxy, "cache", prefix=prefix)},
        {"screenshot": uibrowser.screenshot_path("cache-browser")},
        {"submit": "form.purge button"},
        {"screenshot": uibrowser.screenshot_path("cache-purge-confirm")},
        {"submit": "form.purge button"},
    ])
    listing, confirm, done = res["pages"]  # goto and submit record a page each
    assert listing["status"] == 200
    for u in urls:
        assert u in listing["text"]
    assert confirm["status"] == 200 and "This removes 3 records" in confirm["text"]
    assert done["status"] == 200 and "3 records removed" in done["text"]
    assert Browser(uproxy.port).json("api/cache", prefix=prefix)["items"] == []
    for u in urls:
        assert "fwd=" in fetch(uproxy.port, u).header("Cache-Status")
    assert len(ctx.origin.requests_with(tok)) == 6
    assert fetch(uproxy.port, keep).header("Cache-Status").startswith("Gatehouse; hit")


def test_script_in_cached_url_is_text_in_chromium(uproxy, ctx, tmp_path):
    tok = uuid.uuid4().hex
    evil = "<script>document.title='pwned'</script>"
    u = curl_url(ctx, tok, 0, "&loc=" + urllib.parse.quote(evil, safe=""))
    r = ghtest.get(uproxy.port, u)
    assert r.status == 200, r
    res = uibrowser.flow(tmp_path, [
        {"goto": page_url(uproxy, "cache/entry", url=u)},
        {"eval": "document.querySelectorAll('script').length"},
        {"screenshot": uibrowser.screenshot_path("cache-entry")},
    ])
    pg = res["pages"][0]
    assert pg["status"] == 200
    assert "pwned" not in pg["title"]
    assert "Location: " + evil in pg["text"]   # shown as text
    assert res["evals"][-1] == 1               # ui.js only
