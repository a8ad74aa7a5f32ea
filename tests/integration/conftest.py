"""
conftest.py - fixtures of the Gatehouse integration suite.

Session-wide: dnsmasq answering the *.test names, the test origin (127.0.0.1 and ::1, one
port), a TCP echo server for CONNECT, a refused port, and one shared daemon (`proxy`) with the
default test config. Tests that need another config use `start_daemon(...)`, which stops its
daemons at teardown. A daemon that died or printed a sanitizer report during a test fails that
test; the tail of every daemon's stderr written during a failing test is attached to the report.

Tests that need the daemon use the `gh_bin` fixture (directly or through `proxy` /
`start_daemon`): when the binary is missing they fail, they are not skipped. They also carry the
`daemon` marker, so `-m "not daemon"` runs the harness self-tests alone.
"""

import os
import shutil
import signal
import tempfile
import types

import pytest

import ghtest
from origin import EchoServer, Origin

_RUNNING = []  # Daemon objects alive now, for failure reports and health checks
_SERIAL = [0]  # daemon names are unique in a session: their stderr files never mix


# Set by a service manager for ITS service: a test run started from one (a CI runner under
# systemd) must not pass them on to every daemon it starts, which would notify that manager,
# or arm a watchdog. Tests that want them set them (test_reload.py, test_service.py).
SERVICE_MANAGER_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS",
                        "LISTEN_PID", "LISTEN_FDNAMES")


def pytest_configure(config):
    for var in SERVICE_MANAGER_VARS:
        os.environ.pop(var, None)
    config.addinivalue_line("markers", "daemon: the test runs the gatehouse daemon")
    config.addinivalue_line("markers", "slow: takes several seconds")
    config.addinivalue_line("markers", "system: changes this machine (installs a package, "
                            "creates a user); runs after every other test")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if {"gh_bin", "proxy", "start_daemon"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.daemon)
    # Tests that change the machine run last (the sort is stable: file order otherwise).
    items.sort(key=lambda it: it.get_closest_marker("system") is not None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        offsets = getattr(item, "_gh_offsets", {})
        for d in list(_RUNNING) + getattr(item, "_gh_stopped", []):
            tail = d.stderr_tail(6000, offsets.get(id(d), 0))
            if tail:
                rep.sections.append(("gatehouse %s stderr (%s)" % (d.name, d.stderr_path), tail))


@pytest.fixture(autouse=True)
def _stderr_offsets(request):
    """Remember where each running daemon's stderr stood when the test began."""
    request.node._gh_offsets = {id(d): d.stderr_size() for d in _RUNNING}
    request.node._gh_stopped = []
    yield


@pytest.fixture(scope="session")
def workdir():
    d = tempfile.mkdtemp(prefix="gh-itest-")
    yield d
    if os.environ.get("GH_KEEP_TMP"):
        print("\nintegration work dir kept: %s" % d)
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def dns(workdir):
    d = ghtest.Dnsmasq(workdir).start()
    yield d
    d.stop()


@pytest.fixture(scope="session")
def origin():
    o = Origin().start()
    yield o
    o.stop()


@pytest.fixture(scope="session")
def echo():
    e = EchoServer().start()
    yield e
    e.stop()


@pytest.fixture(scope="session")
def ctx(workdir, dns, origin, echo):
    """Everything a config or a test needs to know about the environment."""
    return types.SimpleNamespace(workdir=workdir, dns_port=dns.port, origin_port=origin.port,
                                 echo_port=echo.port, refused_port=ghtest.refused_port(),
                                 has_v6=ghtest.ipv6_loopback_ok() and origin.has_v6,
                                 origin=origin, dns=dns, echo=echo)


@pytest.fixture(scope="session")
def gh_bin():
    path = ghtest.gh_binary()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("gatehouse binary %s is missing: build it (scons) or set GH_BIN" % path,
                    pytrace=False)
    return path


class _Factory:
    def __init__(self, gh_bin, ctx, node=None):
        self.gh_bin = gh_bin
        self.ctx = ctx
        self.node = node
        self.daemons = []

    def __call__(self, name=None, v6=False, text=None, **kw):
        """Start a daemon with conf_text(ctx, port, **kw) (or the given text, in which the
        placeholders {port} and {port6} are filled) and wait for it."""
        _SERIAL[0] += 1
        name = "%s-%d" % (name or "gh", _SERIAL[0])
        for attempt in range(3):
            port = ghtest.free_port()
            port6 = ghtest.free_port(ghtest.socket.AF_INET6, "::1") if v6 else None
            if text is None:
                t = ghtest.conf_text(self.ctx, port, port6, **kw)
            else:
                t = text.format(port=port, port6=port6, dns_port=self.ctx.dns_port,
                                echo_port=self.ctx.echo_port)
            ports = [("127.0.0.1", port)] + ([("::1", port6)] if port6 else [])
            d = ghtest.Daemon(self.gh_bin, self.ctx.workdir, "%s.%d" % (name, attempt), t, ports)
            try:
                d.start()
            except RuntimeError:
                if "in use" in d.stderr_text() and attempt < 2:
                    continue
                raise
            d.port6 = port6
            self.daemons.append(d)
            _RUNNING.append(d)
            return d
        raise RuntimeError("unreachable")

    def stop_all(self):
        problems = []
        for d in self.daemons:
            was_alive = d.alive()
            rc = d.stop()
            if d in _RUNNING:
                _RUNNING.remove(d)
            if self.node is not None:
                self.node._gh_stopped.append(d)
            rep = d.sanitizer_report()
            if rep:
                problems.append("%s: sanitizer report:\n%s" % (d.name, rep))
            elif was_alive and rc != 0:
                problems.append("%s: exit status %s after SIGTERM; stderr:\n%s"
                                % (d.name, rc, d.stderr_tail(3000)))
        self.daemons = []
        return problems


@pytest.fixture
def start_daemon(gh_bin, ctx, request):
    f = _Factory(gh_bin, ctx, request.node)
    yield f
    problems = f.stop_all()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def _shared(gh_bin, ctx):
    f = _Factory(gh_bin, ctx)
    state = types.SimpleNamespace(factory=f, daemon=None, log=None, generation=0)
    yield state
    problems = f.stop_all()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def _start_shared(state, ctx):
    state.generation += 1
    state.log = os.path.join(ctx.workdir, "shared-%d.access.log" % state.generation)
    v6 = ctx.has_v6
    state.daemon = state.factory("shared", v6=v6, access_log=state.log)
    state.daemon.access_log = state.log


@pytest.fixture
def proxy(_shared, ctx, request):
    """The shared daemon (default test config, ProxyVia On, access log, IPv6 listener when
    ::1 works). Restarted when an earlier test left it dead."""
    if _shared.daemon is None or not _shared.daemon.alive():
        _start_shared(_shared, ctx)
    d = _shared.daemon
    off = request.node._gh_offsets.get(id(d), 0)
    yield d
    if not d.alive():
        pytest.fail("the shared gatehouse died during this test (exit %s); stderr:\n%s"
                    % (d.proc.returncode, d.stderr_tail(4000, off)), pytrace=False)
    rep = d.sanitizer_report(off)
    if rep:
        d.stop(signal.SIGKILL)
        pytest.fail("sanitizer report from the shared gatehouse:\n" + rep, pytrace=False)


# ---------------------------------------------------------------- intranet policy (issue 3)

class PolicyDnsmasq(ghtest.Dnsmasq):
    """A second dnsmasq for the test_policy_* files, in its own directory (the session one's
    names, PTR records and query log stay as they are). Names:
      www/notbad/www.casino-royale/evil/www.evil.outside.test, www.intranet.test, intranet.test,
      host1.intranet.test, direct.intranet.test, intranet.corp.test, www.corp.test,
      parent.test and origin.test -> 127.0.0.1 (served by the test origin);
      blocked.test and alias.test -> 127.0.0.6 (nobody listens there: a request that is not
      blocked ends in a 502, not a 403); blocked6.test and alias6.test -> ::1 only (AAAA);
      mixed.test -> 127.0.0.1 and ::1;
      every other *.test name is NXDOMAIN (e.g. bad.outside.test: dotted names the tests block
      must not resolve to the origin's address, or blocking them would block that address too;
      leading-dot entries such as .evil.outside.test are not resolved)."""

    ORIGIN_NAMES = ["www.outside.test", "notbad.outside.test", "www.casino-royale.outside.test",
                    "evil.outside.test", "www.evil.outside.test", "www.intranet.test",
                    "intranet.test", "host1.intranet.test", "direct.intranet.test",
                    "intranet.corp.test", "www.corp.test", "parent.test", "origin.test"]
    RECORDS = [(n, "127.0.0.1") for n in ORIGIN_NAMES] + [
        ("blocked.test", "127.0.0.6"), ("alias.test", "127.0.0.6"),
        ("blocked6.test", "::1"), ("alias6.test", "::1"), ("mixed.test", "127.0.0.1,::1")]
    PTRS = []


@pytest.fixture(scope="session")
def poldns(workdir):
    sub = os.path.join(workdir, "poldns")
    os.makedirs(sub, exist_ok=True)
    d = PolicyDnsmasq(sub).start()
    yield d
    d.stop()


@pytest.fixture(scope="session")
def pctx(ctx, poldns):
    """ctx with dns_port pointing at the policy dnsmasq (daemons made by start_policy_daemon
    resolve through it)."""
    v = dict(vars(ctx))
    v.update(dns_port=poldns.port, dns=poldns, main_dns_port=ctx.dns_port)
    return types.SimpleNamespace(**v)


@pytest.fixture
def start_policy_daemon(gh_bin, pctx, request):
    """start_daemon for the intranet-policy tests: the same factory, resolving through the
    policy dnsmasq (pctx.dns_port)."""
    f = _Factory(gh_bin, pctx, request.node)
    yield f
    problems = f.stop_all()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
