"""
uibrowser.py - real-browser helpers for the status page tests (issue 11): Debian's headless
chromium for --dump-dom and screenshots, puppeteer-core (npm, in tests/integration/node/,
driving the same Debian chromium binary: no browser download) for form flows, and promtool
(Debian's prometheus package) for the metrics exposition.

- dump_dom(tmp_path, url) -> DOM text of url as chromium rendered it.
- screenshot(tmp_path, url, name) -> build/test-artifacts/screenshots/NAME.png (kept after the
  run: the test artefacts the README's screenshots come from).
- flow(tmp_path, steps, auth=None) -> the JSON of node/flow.js: pages visited through
  goto/fill/submit steps, each with status, url, title, text and html.
- promtool_check(text) -> (exit status, findings): `promtool check metrics` on text.

Every browser gets a fresh profile and HOME under tmp_path and runs in its own process group,
killed afterwards (chromium leaves zygote and renderer helpers); every wait has a deadline.
Loopback only: the browser is started with --no-proxy-server and the tests hand it
127.0.0.1 URLs.
"""

import json
import os
import shutil
import signal
import subprocess
import uuid

import pytest

import ghtest

BROWSER_TIMEOUT = 90          # seconds: the machine may be loaded
HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, "node")
SCREENSHOT_DIR = os.path.join(ghtest.REPO, "build", "test-artifacts", "screenshots")
# Every test's headless Chromium starts with these (the one place they are written); the
# caller adds how it reaches the network (--no-proxy-server, a PAC, a proxy).
CHROMIUM_BASE_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                      "--no-first-run", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--disable-extensions",
                      "--no-default-browser-check"]
CHROMIUM_ARGS = CHROMIUM_BASE_ARGS + ["--no-proxy-server", "--hide-scrollbars"]


def chromium_path():
    for name in ("chromium", "chromium-browser"):
        p = shutil.which(name)
        if p:
            return p
    pytest.skip("chromium is not installed (scripts/test-deps.sh installs Debian's chromium)")


def run_group(args, env, timeout, what):
    """Run args in a new process group; kill the whole group afterwards. Returns (rc, stdout,
    stderr) as text."""
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate(timeout=10)
        pytest.fail("%s did not finish within %d s; stderr:\n%s"
                    % (what, timeout, err.decode("latin-1")[-3000:]), pytrace=False)
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
    return p.returncode, out.decode("utf-8", "replace"), err.decode("latin-1")


def _fresh_run_dir(tmp_path, kind):
    run = os.path.join(str(tmp_path), "%s-%s" % (kind, uuid.uuid4().hex[:8]))
    os.makedirs(os.path.join(run, "profile"))
    return run


def dump_dom(tmp_path, url, extra_args=()):
    """The DOM of url after chromium loaded it (scripts ran). Fails the test when chromium
    exits non-zero."""
    run = _fresh_run_dir(tmp_path, "chromium")
    args = [chromium_path()] + CHROMIUM_ARGS + list(extra_args) + [
        "--user-data-dir=%s" % os.path.join(run, "profile"), "--dump-dom", url]
    rc, out, err = run_group(args, ghtest.clean_env(HOME=run), BROWSER_TIMEOUT,
                              "chromium --dump-dom %s" % url)
    assert rc == 0, "chromium --dump-dom %s: exit %s\n%s" % (url, rc, err[-3000:])
    return out


def screenshot_path(name):
    """Where the artefact NAME.png goes (the directory is made)."""
    assert name and "/" not in name and not name.startswith("."), name
    os.makedirs(SCREENSHOT_DIR, exist_ok=True)
    return os.path.join(SCREENSHOT_DIR, name + ".png")


def check_png(path):
    """Assert that path is a PNG of some substance; returns (width, height)."""
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "%s is not a PNG" % path
    assert os.path.getsize(path) > 2000, "%s is suspiciously small" % path
    w = int.from_bytes(head[16:20], "big")
    h = int.from_bytes(head[20:24], "big")
    return w, h


def screenshot(tmp_path, url, name, size=(1280, 900)):
    """A PNG of url (no credentials: for a page that needs them use flow() with a
    {"screenshot": screenshot_path(NAME)} step). Returns the artefact's path."""
    path = screenshot_path(name)
    if os.path.exists(path):
        os.unlink(path)   # a stale file from an earlier run must not pass the check
    run = _fresh_run_dir(tmp_path, "chromium")
    args = [chromium_path()] + CHROMIUM_ARGS + [
        "--user-data-dir=%s" % os.path.join(run, "profile"),
        "--window-size=%d,%d" % size, "--screenshot=%s" % path, url]
    rc, _, err = run_group(args, ghtest.clean_env(HOME=run), BROWSER_TIMEOUT,
                            "chromium --screenshot %s" % url)
    assert rc == 0 and os.path.exists(path), \
        "chromium --screenshot %s: exit %s\n%s" % (url, rc, err[-3000:])
    check_png(path)
    return path


def node_ready():
    """Skip (with the fix) when node or the project's puppeteer-core is missing."""
    if not shutil.which("node"):
        pytest.skip("node is not installed (scripts/test-deps.sh installs nodejs)")
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "puppeteer-core")):
        pytest.skip("puppeteer-core is not installed: run scripts/test-deps.sh (npm ci in "
                    "tests/integration/node)")


def flow(tmp_path, steps, auth=None, viewport=(1280, 900)):
    """Run node/flow.js with steps (see there) in a fresh profile; returns its JSON. Fails
    the test when the flow fails (an element missing, a timeout), with the error."""
    node_ready()
    run = _fresh_run_dir(tmp_path, "puppeteer")
    spec = {"executable": chromium_path(), "profile": os.path.join(run, "profile"),
            "timeout_ms": BROWSER_TIMEOUT * 1000 // 2, "viewport": list(viewport),
            "steps": steps}
    if auth:
        spec["auth"] = {"username": auth[0], "password": auth[1]}
    spec_path = os.path.join(run, "spec.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    rc, out, err = run_group(["node", os.path.join(NODE_DIR, "flow.js"), spec_path],
                              ghtest.clean_env(HOME=run), BROWSER_TIMEOUT, "node flow.js")
    try:
        res = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        pytest.fail("flow.js printed no JSON (exit %s):\n%s\n%s" % (rc, out[-2000:],
                                                                   err[-3000:]), pytrace=False)
    assert rc == 0 and res.get("ok"), "flow failed: %s\n%s" % (res.get("error"), err[-2000:])
    return res


def promtool_path():
    p = shutil.which("promtool")
    if not p:
        pytest.skip("promtool is not installed (scripts/test-deps.sh installs Debian's "
                    "prometheus)")
    return p


def promtool_check(text):
    """`promtool check metrics` on text (the Prometheus text exposition). Returns (exit
    status, findings): findings is the list of lines promtool printed (lint problems such as
    "counter metrics should have \"_total\" suffix", or a parse error); exit status 0 and no
    findings means clean."""
    p = subprocess.run([promtool_path(), "check", "metrics"], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
                       env=ghtest.clean_env())
    lines = [ln for ln in p.stdout.decode("utf-8", "replace").splitlines() if ln.strip()]
    return p.returncode, lines
