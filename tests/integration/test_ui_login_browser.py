"""
test_ui_login_browser.py - logging in to the status page from a real browser (issue 11):
puppeteer-core drives Debian's chromium against a <Location> with AuthType Basic and an
AuthUserFile made by Debian's `htpasswd -B`. The right password shows the overview with the
user's name in the header (screenshot artefact); a wrong one gets the 401 page; a logged-in
browser's POST passes with the session's CSRF token and fails without it.

Helpers: uibrowser.py. Screenshots: build/test-artifacts/screenshots/.
"""

import os
import shutil
import subprocess
import uuid

import pytest

import uibrowser

USER, PASSWORD = "alice", "open sesame 7"


def htpasswd_file(workdir):
    exe = shutil.which("htpasswd")
    if not exe:
        pytest.skip("htpasswd is not installed (scripts/test-deps.sh installs apache2-utils)")
    path = os.path.join(workdir, "admins-%s.htpasswd" % uuid.uuid4().hex[:8])
    subprocess.run([exe, "-c", "-b", "-B", "-C", "5", path, USER, PASSWORD], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    subprocess.run([exe, "-b", "-5", path, "bob", "bob's password"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    return path


def start(start_daemon, ctx):
    users = htpasswd_file(ctx.workdir)
    d = start_daemon(extra=[
        "<Location /gatehouse/>",
        "    SetHandler gatehouse-status",
        "    AuthType Basic",
        '    AuthName "Gatehouse admin"',
        "    AuthUserFile %s" % users,
        "    <RequireAll>",
        "        Require ip 127.0.0.1 ::1",
        "        Require valid-user",
        "    </RequireAll>",
        "</Location>"])
    return d, "http://127.0.0.1:%d/gatehouse/" % d.port


def test_login_with_the_right_password_shows_the_overview(start_daemon, ctx, tmp_path):
    d, base = start(start_daemon, ctx)
    shot = uibrowser.screenshot_path("overview-logged-in")
    res = uibrowser.flow(tmp_path, [{"goto": base}, {"screenshot": shot}],
                         auth=(USER, PASSWORD))
    page = res["pages"][0]
    assert page["status"] == 200, page
    assert page["title"] == "Overview - Gatehouse", page
    assert '<span class="who">%s' % USER in page["html"], page["html"][:3000]
    uibrowser.check_png(shot)
    # the SHA-512 crypt user too
    res = uibrowser.flow(tmp_path, [{"goto": base}], auth=("bob", "bob's password"))
    assert res["pages"][0]["status"] == 200, res["pages"][0]


def test_wrong_or_no_password_gets_401(start_daemon, ctx, tmp_path):
    d, base = start(start_daemon, ctx)
    res = uibrowser.flow(tmp_path, [{"goto": base}], auth=(USER, PASSWORD + "x"))
    page = res["pages"][0]
    assert page["status"] == 401, page
    assert USER not in page["html"], page["html"][:3000]
    dom = uibrowser.dump_dom(tmp_path, base)
    assert "Overview - Gatehouse" not in dom and "<h1>Overview</h1>" not in dom, dom[:3000]


def test_logged_in_post_needs_the_csrf_token(start_daemon, ctx, tmp_path):
    d, base = start(start_daemon, ctx)
    post = ("(async (mode) => { const t = (await (await fetch('%sapi/csrf')).json()).csrf; "
            "const r = await fetch('%sapi/csrf', {method: 'POST', headers: {'Content-Type': "
            "'application/x-www-form-urlencoded'}, body: mode === 'right' ? 'csrf=' + t : "
            "'csrf=' + '0'.repeat(64)}); return r.status; })" % (base, base))
    res = uibrowser.flow(tmp_path, [
        {"goto": base + "api/csrf"},
        {"eval": "(%s)('right')" % post},
        {"eval": "(%s)('wrong')" % post},
    ], auth=(USER, PASSWORD))
    assert res["pages"][0]["status"] == 200, res["pages"][0]
    assert res["evals"] == [204, 403], res["evals"]
