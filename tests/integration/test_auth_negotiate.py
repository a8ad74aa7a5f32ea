"""
test_auth_negotiate.py - proxy authentication with Negotiate (Kerberos / SPNEGO) through
Squid's negotiate_kerberos_auth (issue 14), against a throwaway KDC on loopback (krb5kdc.py).

The realm GATEHOUSE.TEST has alice (a password) and HTTP/localhost (its key in a keytab the
helper reads through KRB5_KTNAME). curl --proxy-negotiate with alice's ticket in a file ccache
asks for HTTP@localhost, because the proxy is addressed as "localhost".
"""

import os
import re
import signal
import socket
import time
import uuid
import subprocess
import threading

import pytest

import ghtest
import krb5kdc

pytestmark = pytest.mark.skipif(krb5kdc.available() is not None,
                                reason=str(krb5kdc.available()))

ALICE_PW = "Alice-Krb-pw-41"


@pytest.fixture(scope="module")
def kdc(workdir):
    k = krb5kdc.Kdc(workdir).start()
    try:
        k.alice = k.add_user("alice", ALICE_PW)
        k.add_service("HTTP/localhost")
        k.alice_cc = k.kinit("alice", ALICE_PW, os.path.join(k.dir, "alice.cc"))
        yield k
    finally:
        k.stop()


class _Capture(threading.Thread):
    """A one-connection server that answers 407 "Proxy-Authenticate: Negotiate" to every
    request and keeps the Negotiate token curl sends (the fixture's self-test)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(20)
        self.port = self.sock.getsockname()[1]
        self.tokens = []

    def run(self):
        try:
            c, _ = self.sock.accept()
        except OSError:
            return
        c.settimeout(10)
        buf = b""
        try:
            for _ in range(8):
                head, buf = ghtest.recv_head(c, buf)
                if head is None:
                    return
                for line in head.split(b"\r\n"):
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"proxy-authorization":
                        self.tokens.append(v.strip().decode())
                c.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                          b"Proxy-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n")
        except OSError:
            pass
        finally:
            c.close()
            self.sock.close()


def curl_negotiate(kdc, port, url, ccache=None, extra=(), timeout=30, env=None):
    """curl --proxy-negotiate through localhost:port with the ticket cache ccache (None: an
    empty one). Returns (exit code, final status or None, everything curl printed: the heads
    of every response with -D -, then the body)."""
    argv = ["curl", "-sS", "--max-time", str(timeout), "-D", "-", "--proxy-negotiate", "-U",
            ":", "--proxy", "http://localhost:%d" % port] + list(extra) + [url]
    e = env or kdc.env(ccache or os.path.join(kdc.dir, "no-such-ccache"))
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e,
                       timeout=timeout + 10)
    out = r.stdout.decode("latin-1")
    codes = re.findall(r"^HTTP/1\.[01] (\d{3})", out, re.M)
    return r.returncode, (int(codes[-1]) if codes else None), out


def test_kdc_fixture_issues_tickets_the_squid_helper_accepts(kdc, tmp_path):
    """The fixture on its own: alice's TGT, curl's SPNEGO token for HTTP/localhost, and
    negotiate_kerberos_auth (the helper Gatehouse runs) answering it with alice's name."""
    assert "alice@GATEHOUSE.TEST" in kdc.klist(kdc.alice_cc)
    cap = _Capture()
    cap.start()
    curl_negotiate(kdc, cap.port, "http://www.example.test/", kdc.alice_cc)
    cap.join(30)
    assert cap.tokens and cap.tokens[0].startswith("Negotiate "), cap.tokens
    token = cap.tokens[0].split(" ", 1)[1]
    r = subprocess.run([krb5kdc.NEGOTIATE_HELPER, "-s", "HTTP/localhost@GATEHOUSE.TEST"],
                       input=("YR %s\n" % token).encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=kdc.env(), timeout=30)
    first = r.stdout.decode().splitlines()[0]
    assert first.startswith("OK ") or first.startswith("AF "), (first, r.stderr)
    assert "alice@GATEHOUSE.TEST" in first
    # A token the realm never issued is refused, not accepted.
    r = subprocess.run([krb5kdc.NEGOTIATE_HELPER, "-s", "HTTP/localhost@GATEHOUSE.TEST"],
                       input=b"YR YIIBAAAAAAAAAAAAAAAA\n", stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=kdc.env(), timeout=30)
    assert not r.stdout.decode().startswith(("OK", "AF")), r.stdout


# ---------------------------------------------------------------- through Gatehouse

HELPER_ARGS = "-s HTTP/localhost@GATEHOUSE.TEST"


def section(basic_file=None, children=2, require="Require valid-user", group_file=None,
            extra=()):
    lines = ["<Proxy *>",
             "    AuthType Negotiate",
             '    AuthName "Gatehouse Kerberos test"',
             '    AuthNegotiateExternal "%s %s"' % (krb5kdc.NEGOTIATE_HELPER, HELPER_ARGS),
             "    AuthNegotiateChildren %d" % children]
    if basic_file:
        lines += ["    AuthBasicProvider file", "    AuthUserFile %s" % basic_file]
    if group_file:
        lines.append("    AuthGroupFile %s" % group_file)
    lines += ["    " + x for x in extra]
    lines += ["    " + require, "</Proxy>"]
    return "\n".join(lines)


@pytest.fixture
def negd(kdc, start_daemon, ctx, monkeypatch):
    """Start a daemon whose helper children find the realm's keytab and krb5.conf (the
    daemon's environment, which its children inherit; restored after the test)."""
    for k, v in kdc.env().items():
        if k.startswith("KRB5") and k != "KRB5CCNAME":
            monkeypatch.setenv(k, v)
    monkeypatch.delenv("KRB5CCNAME", raising=False)

    def start(**kw):
        log = os.path.join(ctx.workdir, "neg-%s.access.log" % uuid.uuid4().hex[:8])
        kw.setdefault("proxy_section", section())
        d = start_daemon(access_log=log, **kw)
        d.access_log = log
        return d
    return start


def log_users(d, token):
    """The user field of the Squid-format access log lines whose URL contains token."""
    lines = ghtest.poll_lines(d.access_log, lambda ln: token in ln, timeout=10)
    out = []
    for ln in lines:
        m = ghtest.SQUID_RE.match(ln)
        assert m, ln
        out.append((m.group(5), m.group(9)))
    return out


def helper_pids(d):
    """The daemon's live negotiate_kerberos_auth children (a killed one not reaped yet is a
    zombie for a moment: not counted)."""
    return [p for p in d.tree_pids() if _comm(p) == "negotiate_kerb" and not _zombie(p)]


def _state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read()[:80]
    except OSError:
        return "gone"


def _zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
        return st[st.rindex(")") + 2] in "ZX"
    except (OSError, ValueError, IndexError):
        return True


def _comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()[:14]
    except OSError:
        return ""


def test_ticket_gets_200_and_the_user_in_the_access_log(negd, kdc, ctx):
    d = negd()
    tok = uuid.uuid4().hex
    url = "http://origin.test:%d/size/100?neg=%s" % (ctx.origin_port, tok)
    rc, status, out = curl_negotiate(kdc, d.port, url, kdc.alice_cc)
    assert status == 200, out[:2000]
    users = log_users(d, tok)
    # curl sends its token with the first request (--proxy-negotiate is pre-emptive);
    # negotiate_kerberos_auth reports the whole principal (no -r option given).
    assert users == [("200", "alice@GATEHOUSE.TEST")], users


def test_no_ticket_gets_407_with_a_negotiate_challenge(negd, kdc, ctx):
    d = negd()
    rc, status, out = curl_negotiate(kdc, d.port, "http://origin.test:%d/size/10"
                                     % ctx.origin_port, None)
    assert status == 407, out[:2000]
    r = ghtest.get(d.port, "http://origin.test:%d/size/10" % ctx.origin_port)
    assert r.status == 407
    assert r.headers_all("Proxy-Authenticate") == ["Negotiate"], r.headers_all(
        "Proxy-Authenticate")


def test_malformed_token_gets_407_and_never_reaches_the_helper(negd, kdc, ctx):
    d = negd()
    for bad in ("!!notbase64!!", "YII= x", "A"):
        r = ghtest.get(d.port, "http://origin.test:%d/size/10" % ctx.origin_port,
                       headers=[("Proxy-Authorization", "Negotiate " + bad)])
        assert r.status == 407, (bad, r.status)
        assert "Negotiate" in r.headers_all("Proxy-Authenticate")
    assert "malformed Negotiate token" in d.stderr_text()


def test_ticket_of_another_realm_gets_407(negd, kdc, ctx, workdir):
    """bob@OTHER.TEST gets a real ticket for HTTP/localhost@OTHER.TEST; the helper has no key
    for it: refused, 407, counted as a failure."""
    other = krb5kdc.Kdc(workdir, realm="OTHER.TEST", name="kdc-other").start()
    try:
        other.add_user("bob", "Bob-pw-77")
        other.add_service("HTTP/localhost", keytab=os.path.join(other.dir, "other.keytab"))
        cc = other.kinit("bob", "Bob-pw-77", os.path.join(other.dir, "bob.cc"))
        d = negd()
        off = d.stderr_size()
        rc, status, out = curl_negotiate(kdc, d.port, "http://origin.test:%d/size/10"
                                         % ctx.origin_port, env=other.env(cc))
        assert status == 407, out[:2000]
        # The token did reach the helper and was refused there (not merely absent).
        assert ghtest.poll(lambda: "Negotiate refused" in d.stderr_text(off), timeout=10), \
            d.stderr_tail(3000, off)
    finally:
        other.stop()


def test_expired_ticket_gets_407(negd, kdc, ctx, tmp_path):
    """A TGT that has expired cannot get a service ticket: curl sends nothing usable."""
    cc = kdc.kinit("alice", ALICE_PW, str(tmp_path / "short.cc"), lifetime="2s")
    time.sleep(3)
    d = negd()
    rc, status, out = curl_negotiate(kdc, d.port, "http://origin.test:%d/size/10"
                                     % ctx.origin_port, cc)
    assert status == 407, out[:2000]


def test_connect_through_negotiate(negd, kdc, ctx):
    d = negd(allow_connect="443 %d" % ctx.origin_port)
    tok = uuid.uuid4().hex
    rc, status, out = curl_negotiate(kdc, d.port, "http://origin.test:%d/size/100?t=%s"
                                     % (ctx.origin_port, tok), kdc.alice_cc,
                                     extra=["--proxytunnel"])
    assert status == 200, out[:2000]
    assert re.search(r"^HTTP/1\.[01] 200", out, re.M)
    users = [u for _, u in log_users(d, "origin.test:%d" % ctx.origin_port)]
    assert "alice@GATEHOUSE.TEST" in users, users


def test_basic_offered_beside_negotiate(negd, kdc, ctx, tmp_path):
    pw = tmp_path / "users.htpasswd"
    subprocess.run(["htpasswd", "-cbB", str(pw), "carol", "Carol-pw-9"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    d = negd(proxy_section=section(basic_file=str(pw)))
    r = ghtest.get(d.port, "http://origin.test:%d/size/10" % ctx.origin_port)
    assert r.status == 407
    ch = r.headers_all("Proxy-Authenticate")
    assert len(ch) == 2 and ch[0] == "Negotiate" and ch[1].startswith("Basic realm="), ch
    assert "Gatehouse Kerberos test" in ch[1]
    tok = uuid.uuid4().hex
    r = subprocess.run(["curl", "-sS", "--max-time", "30", "-o", "/dev/null", "-w",
                        "%{http_code}", "--proxy-user", "carol:Carol-pw-9", "--proxy",
                        "http://localhost:%d" % d.port,
                        "http://origin.test:%d/size/10?b=%s" % (ctx.origin_port, tok)],
                       stdout=subprocess.PIPE, env=ghtest.clean_env(), timeout=40)
    assert r.stdout == b"200"
    assert ("200", "carol") in log_users(d, tok)
    # Kerberos still works on the same section.
    tok = uuid.uuid4().hex
    rc, status, out = curl_negotiate(kdc, d.port, "http://origin.test:%d/size/10?k=%s"
                                     % (ctx.origin_port, tok), kdc.alice_cc)
    assert status == 200, out[:2000]
    assert ("200", "alice@GATEHOUSE.TEST") in log_users(d, tok)


def served_again(kdc, d, url, allowed=None):
    """Ask as alice every half second until a 200 (within 30 s); every answer before it is one
    of `allowed` when given."""
    got = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rc, status, out = curl_negotiate(kdc, d.port, url, kdc.alice_cc)
        got.append(status)
        if status == 200:
            break
        if allowed is not None:
            assert status in allowed, out[:2000]
        time.sleep(0.5)
    assert got[-1] == 200, got


def test_killed_helper_is_restarted(negd, kdc, ctx):
    d = negd(workers=1, proxy_section=section(children=1))
    url = "http://origin.test:%d/size/10" % ctx.origin_port
    rc, status, out = curl_negotiate(kdc, d.port, url, kdc.alice_cc)
    assert status == 200, out[:2000]
    before = helper_pids(d)
    assert before, "no negotiate_kerberos_auth child under the daemon"
    for p in before:
        os.kill(p, signal.SIGKILL)
    # The pool restarts a slot at most once a second; a request may meet the dead child
    # (503, never a hang) before the new one is up.
    served_again(kdc, d, url, allowed=(503, 407))
    assert ghtest.poll(lambda: not set(d.tree_pids()) & set(before), timeout=10), \
        [_state(p) for p in before]
    assert helper_pids(d)


def fresh_token(kdc):
    """A real SPNEGO token for HTTP/localhost from alice's ticket (curl made it)."""
    cap = _Capture()
    cap.start()
    curl_negotiate(kdc, cap.port, "http://www.example.test/", kdc.alice_cc)
    cap.join(30)
    assert cap.tokens and cap.tokens[0].startswith("Negotiate "), cap.tokens
    return cap.tokens[0].split(" ", 1)[1]


def test_identity_belongs_to_the_connection_and_tokens_are_never_reused(negd, kdc, ctx):
    d = negd()
    token = fresh_token(kdc)
    tok = uuid.uuid4().hex
    url = "http://origin.test:%d/size/10?c=%s&n=" % (ctx.origin_port, tok)
    with ghtest.Conn("127.0.0.1", d.port) as c:
        c.send(ghtest.build(url + "1", headers=[("Proxy-Authorization", "Negotiate " + token)]))
        assert c.read_response().status == 200
        # SPNEGO is connection-oriented: the next request on it needs no credentials.
        c.send(ghtest.build(url + "2"))
        assert c.read_response().status == 200
    # Another connection without credentials is nobody.
    r = ghtest.get(d.port, url + "3")
    assert r.status == 407
    # The same token again (a replay) is refused by the acceptor: Gatehouse kept no result
    # for it that would let it in without asking the helper.
    off = d.stderr_size()
    r = ghtest.get(d.port, url + "4", headers=[("Proxy-Authorization", "Negotiate " + token)])
    assert r.status == 407, r.status
    assert ghtest.poll(lambda: "Negotiate refused" in d.stderr_text(off), timeout=10), \
        d.stderr_tail(3000, off)
    users = dict((ln.split("&n=")[1].split()[0], u) for ln, u in
                 ((ln, ghtest.SQUID_RE.match(ln).group(9)) for ln in
                  ghtest.poll_lines(d.access_log, lambda ln: tok in ln, count=4, timeout=10)))
    assert users == {"1": "alice@GATEHOUSE.TEST", "2": "alice@GATEHOUSE.TEST", "3": "-",
                     "4": "-"}, users


def auto_counters(d):
    """The status page's ?auto as {key: int} (the numeric lines)."""
    status, _, body = ghtest.status_page(d.port, "?auto")
    assert status == 200, status
    out = {}
    for ln in body.decode("latin-1").splitlines():
        k, sep, v = ln.partition(": ")
        if sep and v.strip().isdigit():
            out[k.strip()] = int(v)
    return out


def settled(d, key, base, want):
    """counter key's growth since base once it has reached want (waited for: the workers
    publish their helper counters once a second) and one more publication has passed."""
    ghtest.poll(lambda: auto_counters(d)[key] - base >= want, timeout=10)
    time.sleep(2.5)
    return auto_counters(d)[key] - base


def test_the_token_that_proved_the_connection_repeated_on_it_skips_the_helper(negd, kdc, ctx):
    """curl sends its token on every request: on the connection it proved, the very same
    token is that user without a helper round trip (HelperRequests stays), counted as a
    connection hit. Another connection with it still asks the helper (which refuses the
    replay), and a different token on the proved connection asks the helper again."""
    d = negd(extra=["<Location /gatehouse/>", "    SetHandler gatehouse-status",
                    "    Require ip 127.0.0.1", "</Location>"])
    token = fresh_token(kdc)
    tok = uuid.uuid4().hex
    url = "http://origin.test:%d/size/10?r=%s&n=" % (ctx.origin_port, tok)
    before = auto_counters(d)
    with ghtest.Conn("127.0.0.1", d.port) as c:
        for i in range(1, 6):
            c.send(ghtest.build(url + str(i),
                                headers=[("Proxy-Authorization", "Negotiate " + token)]))
            r = c.read_response()
            assert r.status == 200, (i, r.status, r.body[:300])
        assert settled(d, "HelperRequests", before["HelperRequests"], 1) == 1
        assert auto_counters(d)["AuthConnHits"] - before["AuthConnHits"] >= 4
        # a different token (padding changed: still base64, not the accepted one) goes to
        # the helper, which cannot use it: the connection starts over as nobody
        other = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        c.send(ghtest.build(url + "6", headers=[("Proxy-Authorization", "Negotiate " + other)]))
        assert c.read_response().status == 407
    assert settled(d, "HelperRequests", before["HelperRequests"], 2) == 2
    # the token on another connection: the helper is asked and refuses the replay
    r = ghtest.get(d.port, url + "7", headers=[("Proxy-Authorization", "Negotiate " + token)])
    assert r.status == 407, r.status
    assert settled(d, "HelperRequests", before["HelperRequests"], 3) == 3
    users = dict((ln.split("&n=")[1].split()[0], u) for ln, u in
                 ((ln, ghtest.SQUID_RE.match(ln).group(9)) for ln in
                  ghtest.poll_lines(d.access_log, lambda ln: tok in ln, count=7, timeout=10)))
    assert users == {"1": "alice@GATEHOUSE.TEST", "2": "alice@GATEHOUSE.TEST",
                     "3": "alice@GATEHOUSE.TEST", "4": "alice@GATEHOUSE.TEST",
                     "5": "alice@GATEHOUSE.TEST", "6": "-", "7": "-"}, users


def test_groups_of_a_kerberos_user_decide_per_url(negd, kdc, ctx, tmp_path):
    """AuthGroupFile lists the principal as the helper reports it."""
    g = tmp_path / "groups"
    g.write_text("kerb: alice@GATEHOUSE.TEST\nhr: carol\n")
    sec = section(group_file=str(g)) + (
        "\n<Proxy http://origin.test:%d/size/>\n    Require group kerb\n</Proxy>"
        "\n<Proxy http://origin.test:%d/echo>\n    Require group hr\n</Proxy>"
        % (ctx.origin_port, ctx.origin_port))
    d = negd(proxy_section=sec)
    rc, status, out = curl_negotiate(kdc, d.port, "http://origin.test:%d/size/7"
                                     % ctx.origin_port, kdc.alice_cc)
    assert status == 200, out[:2000]
    rc, status, out = curl_negotiate(kdc, d.port, "http://origin.test:%d/echo"
                                     % ctx.origin_port, kdc.alice_cc)
    assert status == 403, out[:2000]


def test_hung_helper_gets_503_naming_it_then_is_replaced(negd, kdc, ctx):
    d = negd(workers=1, proxy_section=section(children=1, extra=["AuthExternalTimeout 2"]))
    url = "http://origin.test:%d/size/10" % ctx.origin_port
    rc, status, out = curl_negotiate(kdc, d.port, url, kdc.alice_cc)
    assert status == 200, out[:2000]    # the pool is made on first use
    pids = helper_pids(d)
    assert len(pids) == 1, pids
    os.kill(pids[0], signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        rc, status, out = curl_negotiate(kdc, d.port, url, kdc.alice_cc, timeout=60)
        assert status == 503, out[:2000]
        assert "negotiate_kerberos_auth timed out" in out, out[:2000]
        assert time.monotonic() - t0 < 50   # bounded by AuthExternalTimeout, not hanging
    finally:
        try:
            os.kill(pids[0], signal.SIGCONT)
        except OSError:
            pass
    served_again(kdc, d, url)
    # Reaped, not left a zombie.
    assert ghtest.poll(lambda: pids[0] not in d.tree_pids(), timeout=10), _state(pids[0])
    assert helper_pids(d)
