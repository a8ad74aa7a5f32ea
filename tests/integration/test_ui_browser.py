"""
test_ui_browser.py - the status page in a real browser (issue 11): Debian's headless chromium
loads the overview over loopback (the DOM shows the page frame and version; the browser
fetched the embedded stylesheet and script under the page's CSP) and saves a screenshot
artefact; puppeteer-core, driving the same chromium, walks the CSRF flow: the browser gets the
gh_session cookie (HttpOnly, SameSite=Strict, Path=/gatehouse/), a POST carrying the session's
token passes, and a POST with a wrong or missing token, or without the cookie, gets 403 -
one of them as a real form submission by the browser. And the promtool_check helper reports
what `promtool check metrics` finds.

Helpers: uibrowser.py. Screenshots: build/test-artifacts/screenshots/.
"""

import json
import os
import re
import uuid

import ghtest
import uibrowser

LOCATION = ["<Location /gatehouse/>",
            "    SetHandler gatehouse-status",
            "    Require ip 127.0.0.1 ::1",
            "</Location>"]


def start(start_daemon, ctx):
    log = os.path.join(ctx.workdir, "uibrowser-%s.log" % uuid.uuid4().hex[:8])
    d = start_daemon(access_log=log, extra=LOCATION)
    return d, log, "http://127.0.0.1:%d/gatehouse/" % d.port


def test_overview_renders_in_chromium_and_is_screenshotted(start_daemon, ctx, tmp_path):
    d, log, base = start(start_daemon, ctx)
    dom = uibrowser.dump_dom(tmp_path, base)
    assert re.search(r"<title>Overview - Gatehouse</title>", dom), dom[:3000]
    assert re.search(r"<h1>Overview</h1>", dom), dom[:3000]
    assert "<nav>" in dom and 'aria-current="page"' in dom, dom[:3000]
    # the version the daemon announced at start, shown in the page's header
    m = re.search(r"gatehouse (\d+\.\d+\.\d+\S*): listening", d.stderr_text())
    assert m, d.stderr_tail()
    assert re.search(r'<span class="who">[^<]*%s' % re.escape(m.group(1)), dom), dom[:3000]
    # the browser fetched the embedded assets (same origin: the CSP allows them)
    lines = ghtest.poll_lines(log, lambda ln: "/gatehouse/static/ui.css" in ln, timeout=20)
    assert lines and "/200 " in lines[0], lines
    assert ghtest.poll_lines(log, lambda ln: "/gatehouse/static/ui.js" in ln, timeout=20)

    path = uibrowser.screenshot(tmp_path, base, "overview")
    w, h = uibrowser.check_png(path)
    assert (w, h) == (1280, 900), (w, h)


def test_csrf_flow_in_a_real_browser(start_daemon, ctx, tmp_path):
    d, log, base = start(start_daemon, ctx)
    # POST api/csrf from the page: "right" (the session's token, read from GET api/csrf),
    # "wrong", "none" (no csrf field); creds "omit" sends no cookie
    post = ("(async (mode, creds) => { const t = (await (await fetch('%sapi/csrf')).json())"
            ".csrf; const body = mode === 'right' ? 'csrf=' + t : mode === 'wrong' ? "
            "'csrf=' + 'f'.repeat(64) : 'x=1'; const r = await fetch('%sapi/csrf', "
            "{method: 'POST', credentials: creds, headers: {'Content-Type': "
            "'application/x-www-form-urlencoded'}, body: body}); return r.status; })"
            % (base, base))
    # a real form, made in the page, submitted by the browser with a wrong token
    form = ("(() => { const f = document.createElement('form'); f.method = 'post'; "
            "f.action = '%sapi/csrf'; const i = document.createElement('input'); "
            "i.type = 'hidden'; i.name = 'csrf'; i.value = '0'.repeat(64); f.appendChild(i); "
            "const b = document.createElement('button'); b.id = 'go'; b.textContent = 'go'; "
            "f.appendChild(b); document.body.appendChild(f); return true; })()" % base)
    res = uibrowser.flow(tmp_path, [
        {"goto": base + "api/csrf"},
        {"cookies": True},
        {"goto": base},
        {"eval": "(%s)('right', 'same-origin')" % post},
        {"eval": "(%s)('wrong', 'same-origin')" % post},
        {"eval": "(%s)('none', 'same-origin')" % post},
        {"eval": "(%s)('right', 'omit')" % post},
        {"eval": form},
        {"submit": "#go"},
        {"screenshot": uibrowser.screenshot_path("csrf-refused")},
    ])
    first = res["pages"][0]
    assert first["status"] == 200, first
    token = json.loads(first["text"])["csrf"]
    assert re.fullmatch(r"[0-9a-f]{64}", token), token
    cookies = {c["name"]: c for c in res["cookies"]}
    s = cookies.get("gh_session")
    assert s is not None, res["cookies"]
    assert re.fullmatch(r"[0-9a-f]{32}", s["value"]), s
    assert s["httpOnly"] is True and s["sameSite"] == "Strict" and s["path"] == "/gatehouse/", s
    assert res["evals"] == [204, 403, 403, 403, True], res["evals"]
    refused = res["pages"][-1]
    assert refused["status"] == 403 and refused["url"] == base + "api/csrf", refused
    assert "CSRF" in refused["text"] or "token" in refused["text"].lower(), refused["text"]
    uibrowser.check_png(uibrowser.screenshot_path("csrf-refused"))

    # the same token without the browser's cookie, from another client: refused
    body = "csrf=" + token
    r = ghtest.get(d.port, base + "api/csrf", method="POST", body=body.encode(),
                   headers=[("Content-Type", "application/x-www-form-urlencoded")])
    assert r.status == 403, r
    # ... and with it: the token is bound to that session
    r = ghtest.get(d.port, base + "api/csrf", method="POST", body=body.encode(),
                   headers=[("Content-Type", "application/x-www-form-urlencoded"),
                            ("Cookie", "gh_session=" + s["value"])])
    assert r.status == 204, r
    other = "0123456789abcdef0123456789abcdef"
    r = ghtest.get(d.port, base + "api/csrf", method="POST", body=body.encode(),
                   headers=[("Content-Type", "application/x-www-form-urlencoded"),
                            ("Cookie", "gh_session=" + other)])
    assert r.status == 403, r


def test_promtool_check_reports_what_promtool_finds():
    # the helper h3's metrics test uses: a clean exposition passes, lint findings and parse
    # errors come back as lines with a non-zero status
    good = ("# HELP gatehouse_requests_total Requests answered.\n"
            "# TYPE gatehouse_requests_total counter\n"
            'gatehouse_requests_total{outcome="hit"} 3\n'
            'gatehouse_requests_total{outcome="miss"} 1\n')
    assert uibrowser.promtool_check(good) == (0, [])
    rc, findings = uibrowser.promtool_check("# HELP gatehouse_hits Hits.\n"
                                            "# TYPE gatehouse_hits counter\n"
                                            "gatehouse_hits 3\n")
    assert rc != 0 and any("_total" in f for f in findings), (rc, findings)
    rc, findings = uibrowser.promtool_check("gatehouse_requests_total{outcome=hit} 3\n")
    assert rc != 0 and findings, (rc, findings)
