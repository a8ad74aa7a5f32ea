"""
test_package.py - the Debian package, end to end, ON THIS MACHINE.

*** These tests change the system: they build the .deb (`scons deb`), install it with dpkg
*** (which creates the _gatehouse user and group and enables the unit), run, upgrade, remove and
*** purge it. They need root, carry the `system` marker (conftest.py runs them after every other
*** test; `-m "not system"` leaves them out), and put the machine back as they found it, also
*** when a test fails (the `machine` fixture, in a finally):
***  - a gatehouse package installed before is saved with dpkg-repack; the admin's
***    /etc/gatehouse, /var/cache/gatehouse and /var/log/gatehouse are renamed to
***    DIR.saved-by-gatehouse-tests-XXXX; the _gatehouse user and group (uid, gid) are noted. At the
***    end the test package is purged, the user and group are recreated with the same ids, the
***    saved package is reinstalled, and its unit's enablement and the admin's directories are
***    put back;
***  - a _gatehouse user without the package is recreated with its ids if the purge removed it;
***  - /usr/sbin/policy-rc.d (exit 101) keeps dpkg from starting or stopping the unit while the
***    tests run, where systemd runs; it is removed afterwards when the tests created it;
***  - the man-db cat directories a test creates are removed again.
*** Two runs never overlap: they take turns on an abstract socket (no lock file is left).

What they check: lintian reports no error and no warning; Debian's hardening flags reached the
binary; the package holds what it should; installing creates the user and the directories, and
/etc/gatehouse is root:_gatehouse 0750 so that a root:_gatehouse 0640 conf.d file reloads; the
unit passes `systemd-analyze verify` (where systemd-analyze exists) and keeps its security
rating; /usr/sbin/gatehouse started with the packaged configuration (port, DNS server, pid file
and log level changed for the test) runs as _gatehouse, proxies, caches in /var/cache/gatehouse
(a second GET is a hit, the origin is not asked again, the store belongs to _gatehouse and
survives a restart), tells a notify socket it is ready, reloads on SIGHUP (adding a ProxyBlock)
while a slow download completes, keeps serving after a broken reload,
refuses (and says why) a new port below 1024 after dropping root, writes new logs on SIGUSR1
after the old ones were moved and after the packaged logrotate rule ran; apt-get update and
apt-get download work through it against a loopback repository (nginx); an upgrade from a
previous version keeps the admin's changes; remove keeps configuration, cache and logs; purge
leaves nothing of the package behind: what `dpkg -L` lists, its dpkg control files, what its
maintainer scripts made (found by comparing the machine before and after each `dpkg -i`), the
user and group. What other programs write about it is theirs: man-db's cat pages (written when
`systemd-analyze verify` or an admin runs `man gatehouse.conf`) stay, and a test proves it. A
machine that had gatehouse installed, or only its user, gets them back (tested too).

No systemd runs here, so the daemon is started by hand, as root, and drops to _gatehouse itself.
Knob: GH_TEST_DEB=path uses an existing .deb instead of building one.
"""

import contextlib
import glob
import hashlib
import os
import pwd
import grp
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import types
import uuid

import pytest

import ghtest
from origin import body_bytes
from test_reload import Notify, fields

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(os.geteuid() != 0, reason="installs a package: needs root"),
    pytest.mark.skipif(ghtest.is_sanitized(ghtest.gh_binary()),
                       reason="the package is built from the sources once, in the run with the "
                              "normal build; the sanitizer run skips it"),
]

REPO = ghtest.REPO
GATEHOUSE = "/usr/sbin/gatehouse"
CONF = "/etc/gatehouse/gatehouse.conf"
CONFDIR = "/etc/gatehouse"
LOGDIR = "/var/log/gatehouse"
CACHEDIR = "/var/cache/gatehouse"
UNIT = "/lib/systemd/system/gatehouse.service"
WANTS = "/etc/systemd/system/multi-user.target.wants/gatehouse.service"
POLICY_RCD = "/usr/sbin/policy-rc.d"
# What postinst makes (and the unit's RuntimeDirectory), besides the package's files.
CREATED = [CONFDIR, CONFDIR + "/conf.d", CACHEDIR, LOGDIR, "/run/gatehouse"]
# The admin's state that a gatehouse installed before the tests has, saved and put back.
ADMIN_DIRS = [CONFDIR, CACHEDIR, LOGDIR]
# Where install could write; walked for names with "gatehouse" before and after each dpkg -i.
FOOTPRINT_ROOTS = ["/etc", "/var", "/usr", "/lib", "/run", "/opt", "/srv"]
SAVED = ".saved-by-gatehouse-tests"  # an admin's directory while the tests run: DIR.saved...-XXXX

_DAEMONS = []  # PkgDaemon objects alive, stopped at teardown


def run(cmd, timeout=120, check=True, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL, **kw)
    if check and p.returncode != 0:
        pytest.fail("%s exited %d:\n%s\n%s" % (" ".join(cmd), p.returncode, p.stdout[-4000:],
                                              p.stderr[-4000:]), pytrace=False)
    return p


def deb_version():
    return run(["dpkg-parsechangelog", "-l", os.path.join(REPO, "packaging/debian/changelog"),
                "-S", "Version"]).stdout.strip()


def installed_status():
    p = run(["dpkg-query", "-W", "-f=${Status} ${Version}", "gatehouse"], check=False)
    return p.stdout.strip() if p.returncode == 0 else ""


def is_installed(version=None):
    st = installed_status()
    return st.startswith("install ok installed") and (version is None or st.endswith(" " + version))


def is_gone():
    return installed_status() in ("", "unknown ok not-installed")


def purge():
    stop_daemons()
    run(["dpkg", "--purge", "gatehouse"], check=False, timeout=120)


def footprint():
    """Every path under FOOTPRINT_ROOTS whose name mentions gatehouse (the repository and
    temporary directories are elsewhere)."""
    found = set()
    for top in FOOTPRINT_ROOTS:
        for d, dirs, files in os.walk(top, onerror=lambda e: None):
            if d.startswith("/var/tmp") or d.startswith("/proc"):
                continue
            for n in dirs + files:
                if "gatehouse" in n:
                    found.add(os.path.join(d, n))
    return found


def dpkg_install(machine, deb):
    """dpkg -i deb; what the package and its maintainer scripts put on the machine is added to
    machine.owned: the files dpkg lists, its control files, and every path named gatehouse that
    appeared during the install."""
    before = footprint()
    p = run(["dpkg", "-i", deb], timeout=300)
    listed = run(["dpkg", "-L", "gatehouse"]).stdout.splitlines()
    control = run(["dpkg-query", "--control-path", "gatehouse"]).stdout.splitlines()
    machine.owned |= {os.path.normpath(x) for x in listed + control if x.startswith("/")}
    machine.owned |= footprint() - before
    return p


def deb_paths(deb):
    """The paths a .deb holds ("drwxr-xr-x root/root 0 2026-01-01 00:00 ./etc/gatehouse/")."""
    out = []
    for ln in run(["dpkg-deb", "-c", deb]).stdout.splitlines():
        name = re.split(r" \d{4}-\d\d-\d\d \d\d:\d\d ", ln, maxsplit=1)[-1].split(" -> ")[0]
        out.append(name.lstrip(".").rstrip("/") or "/")
    return out


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


MAN_CACHE = "/var/cache/man"
CAT_PAGES = [MAN_CACHE + "/cat5/gatehouse.conf.5.gz", MAN_CACHE + "/cat8/gatehouse.8.gz"]


@contextlib.contextmanager
def cat_pages_restored(make_dirs=False):
    """man-db writes formatted pages of the package's man pages into /var/cache/man/catN/
    (when those directories exist) whenever man shows them, `systemd-analyze verify` included.
    Those that were not there before are removed afterwards, and so are the directories when
    make_dirs had to create them. With make_dirs, cat pages already there are moved aside
    meanwhile (so that man writes new ones) and put back."""
    made, had = [], {c for c in CAT_PAGES if os.path.lexists(c)}
    aside = tempfile.mkdtemp(prefix="gh-catpages-")
    try:
        if make_dirs:
            for c in had:
                shutil.move(c, os.path.join(aside, os.path.basename(c)))
            for d in (MAN_CACHE, MAN_CACHE + "/cat5", MAN_CACHE + "/cat8"):
                if not os.path.isdir(d):
                    os.mkdir(d, 0o755)
                    made.append(d)
                    if user_exists("man") and group_exists("man"):
                        os.chown(d, pwd.getpwnam("man").pw_uid, grp.getgrnam("man").gr_gid)
        yield
    finally:
        for c in CAT_PAGES:
            kept = os.path.join(aside, os.path.basename(c))
            if os.path.lexists(kept):
                shutil.move(kept, c)
            elif c not in had and os.path.lexists(c):
                os.unlink(c)
        for d in reversed(made):
            shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(aside, ignore_errors=True)


# ---------------------------------------------------------------- the machine as it was

def save_machine(where):
    """What a gatehouse on this machine before the tests consists of: the installed package
    (dpkg-repack, into where), the admin's directories (renamed to DIR + SAVED-XXXX, so that owners,
    modes and a cache of any size stay as they are), the _gatehouse user and group, the unit's
    enablement."""
    st = types.SimpleNamespace(status=installed_status(), deb=None, dirs=[], user=None,
                               group=None, enabled=os.path.lexists(WANTS))
    if st.status.startswith("install ok installed"):
        run(["dpkg-repack", "gatehouse"], cwd=where, timeout=300)
        debs = glob.glob(os.path.join(where, "gatehouse_*.deb"))
        assert len(debs) == 1, debs
        st.deb = debs[0]
    try:
        st.user = tuple(pwd.getpwnam("_gatehouse"))
    except KeyError:
        pass
    try:
        st.group = tuple(grp.getgrnam("_gatehouse"))
    except KeyError:
        pass
    st.suffix = SAVED + "-" + uuid.uuid4().hex[:8]
    try:
        for d in ADMIN_DIRS:
            if os.path.lexists(d):
                os.rename(d, d + st.suffix)
                st.dirs.append(d)
    except BaseException:
        for d in st.dirs:  # nothing is changed when saving fails
            os.rename(d + st.suffix, d)
        raise
    return st


def restore_machine(st):
    """Purge the tests' package and put back what save_machine saved. Raises on failure."""
    purge()
    assert is_gone(), installed_status()
    for d in ADMIN_DIRS + ["/run/gatehouse"]:
        shutil.rmtree(d, ignore_errors=True)
    if st.group and not group_exists("_gatehouse"):
        run(["groupadd", "--system", "-g", str(st.group[2]), "_gatehouse"])
    if st.user and not user_exists("_gatehouse"):
        name, _, uid, gid, gecos, home, shell = st.user
        run(["useradd", "--system", "-u", str(uid), "-g", str(gid), "-c", gecos, "-d", home,
             "-M", "-s", shell, name])
    if st.group and st.group[3]:
        run(["gpasswd", "-M", ",".join(st.group[3]), "_gatehouse"])
    if st.deb:
        run(["dpkg", "-i", st.deb], timeout=300)
    elif st.status.startswith("deinstall ok config-files"):
        # Only its conffiles were left (removed, not purged): the same state, from our package.
        deb = os.environ.get("GH_TEST_DEB") or glob.glob(os.path.join(
            REPO, "build", "deb", "gatehouse_*.deb"))[0]
        run(["dpkg", "-i", deb], timeout=300)
        run(["dpkg", "-r", "gatehouse"], timeout=300)
    if (st.deb or st.status.startswith("deinstall")) and shutil.which("deb-systemd-helper") \
            and os.path.lexists(WANTS) != st.enabled:
        run(["deb-systemd-helper", "enable" if st.enabled else "disable", "gatehouse.service"],
            env=dict(os.environ, DPKG_MAINTSCRIPT_PACKAGE="gatehouse"))  # it wants dpkg's call
    for d in st.dirs:
        shutil.rmtree(d, ignore_errors=True)
        os.rename(d + st.suffix, d)


@pytest.fixture(scope="module")
def machine_lock():
    """These tests own the machine's gatehouse package: two test runs at once (two checkouts,
    or two people in one) take turns here instead of installing over each other. The lock is an
    abstract socket name, so nothing is left in /tmp and a killed run releases it."""
    s = ghtest.package_tests_lock(wait=1800)
    if s is None:
        pytest.fail("another test run held the package tests' lock (@%s) for 30 minutes"
                    % ghtest.PACKAGE_TESTS_LOCK[1:], pytrace=False)
    yield
    s.close()


@pytest.fixture(scope="module")
def deb(machine_lock):
    """The package built from this tree (scons deb), or $GH_TEST_DEB."""
    path = os.environ.get("GH_TEST_DEB")
    if not path:
        arch = run(["dpkg", "--print-architecture"]).stdout.strip()
        run(["scons", "-Q", "deb"], cwd=REPO, timeout=1800, env=ghtest.clean_env())
        path = os.path.join(REPO, "build", "deb", "gatehouse_%s_%s.deb" % (deb_version(), arch))
    assert os.path.isfile(path), path
    return path


class PolicyRcd:
    """/usr/sbin/policy-rc.d answering 101 ("action forbidden"): where systemd runs, dpkg -i
    would otherwise start the packaged unit on port 3128 and purge would stop it. Created only
    when there is none, removed afterwards."""

    def __init__(self):
        self.made = False
        if not os.path.lexists(POLICY_RCD):
            with open(POLICY_RCD, "w") as f:
                f.write("#!/bin/sh\n# written by gatehouse's tests/integration/test_package.py\n"
                        "exit 101\n")
            os.chmod(POLICY_RCD, 0o755)
            self.made = True

    def remove(self):
        if self.made:
            os.unlink(POLICY_RCD)
            self.made = False


@pytest.fixture(scope="module")
def machine(deb):
    """The machine for the package tests: whatever gatehouse was installed is saved and
    purged, the tests run, then the tests' package is purged and what was there is put back
    (also when a test failed)."""
    where = tempfile.mkdtemp(prefix="gh-pkg-saved-")  # mode 0700: the repacked conffiles
    policy = None
    saved = None
    try:
        policy = PolicyRcd()
        saved = save_machine(where)
        purge()
        assert is_gone(), "cannot purge the gatehouse that was installed: %s" % installed_status()
        contents = deb_paths(deb)
        state = types.SimpleNamespace(
            deb=deb, version=deb_version(), saved=saved, owned=set(CREATED),
            preexisting={x for x in contents + CREATED if os.path.lexists(x)},
            had_user=user_exists("_gatehouse"))
        yield state
    finally:
        try:
            if saved is not None:
                restore_machine(saved)
            else:
                purge()
        finally:
            if policy is not None:
                policy.remove()
            shutil.rmtree(where, ignore_errors=True)


def ensure_installed(machine):
    if not is_installed(machine.version):
        p = dpkg_install(machine, machine.deb)
        assert "Setting up gatehouse (%s)" % machine.version in p.stdout, p.stdout


@pytest.fixture
def installed(machine):
    ensure_installed(machine)
    yield machine
    stop_daemons()


# ---------------------------------------------------------------- the packaged daemon

def gatehouse_ids():
    pw = pwd.getpwnam("_gatehouse")
    return pw.pw_uid, pw.pw_gid


class PkgDaemon:
    """/usr/sbin/gatehouse with the packaged configuration, changed for the test: listen on a
    loopback port, use the test DNS server, log at info, keep a pid file in a directory owned
    by _gatehouse (as systemd's RuntimeDirectory would be). Its config lives in a world-readable
    directory, so that the daemon can read it again after dropping root. Readiness comes from
    its READY=1 on a notify socket."""

    def __init__(self, ctx, extra=""):
        self.ctx = ctx
        self.dir = tempfile.mkdtemp(prefix="gh-pkg-")
        os.chmod(self.dir, 0o755)
        self.rundir = os.path.join(self.dir, "run")
        os.mkdir(self.rundir, 0o755)
        os.chown(self.rundir, *gatehouse_ids())
        self.pidfile = os.path.join(self.rundir, "gatehouse.pid")
        self.conf = os.path.join(self.dir, "gatehouse.conf")
        self.stderr_path = os.path.join(self.dir, "stderr")
        self.port = ghtest.free_port()
        self.text = self.packaged_text(extra)
        self.notify = Notify()
        self.proc = None

    def packaged_text(self, extra=""):
        with open(CONF) as f:
            t = f.read()
        for old, new in (("\nListen 3128\n", "\nListen 127.0.0.1:%d\n" % self.port),
                         ("\nLogLevel notice\n", "\nLogLevel info\n")):
            assert old in t, "the packaged config no longer has %r" % old.strip()
            t = t.replace(old, new)
        t += ("\n# ---- added by test_package.py\nDNSServer 127.0.0.1:%d\nWorkers 2\n"
              "PidFile %s\n" % (self.ctx.dns_port, self.pidfile))
        return t + extra

    def write(self, text):
        with open(self.conf, "w") as f:
            f.write(text)
        os.chmod(self.conf, 0o644)

    def start(self):
        self.write(self.text)
        err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen([GATEHOUSE, "-f", self.conf], stdout=err, stderr=err,
                                     stdin=subprocess.DEVNULL, cwd="/",
                                     env=ghtest.clean_env(NOTIFY_SOCKET=self.notify.name))
        err.close()
        _DAEMONS.append(self)
        ready = self.notify.wait(lambda m: "READY=1" in m, timeout=10)
        if not ready:
            rc = self.proc.poll()
            self.stop()
            pytest.fail("packaged gatehouse sent no READY=1 within 10 s (exit %s); stderr:\n%s"
                        % (rc, self.stderr()), pytrace=False)
        assert ghtest.can_connect("127.0.0.1", self.port)
        return self

    def stderr(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def hup(self, text, ok=True):
        """Write text as the config and send SIGHUP; wait for RELOADING=1 then READY=1; return
        the READY message's STATUS."""
        self.write(text)
        self.proc.send_signal(signal.SIGHUP)
        assert self.notify.wait(lambda m: "RELOADING=1" in m), "no RELOADING=1"
        ready = self.notify.wait(lambda m: "READY=1" in m)
        assert ready, "no READY=1 after the reload"
        status = fields(ready).get("STATUS", "")
        assert ("failed" not in status) == ok, status
        return status

    def stop(self, sig=signal.SIGTERM):
        rc = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                rc = self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        elif self.proc is not None:
            rc = self.proc.returncode
        if self in _DAEMONS:
            _DAEMONS.remove(self)
            self.notify.close()
            shutil.rmtree(self.dir, ignore_errors=True)
        return rc


def stop_daemons():
    for d in list(_DAEMONS):
        d.stop()


@pytest.fixture
def daemon(installed, ctx):
    """Start a PkgDaemon (extra config text optional); all are stopped at teardown."""
    def start(extra=""):
        return PkgDaemon(ctx, extra).start()
    yield start
    stop_daemons()


def error_log_lines(pred, timeout=5.0):
    return ghtest.poll_lines(os.path.join(LOGDIR, "error.log"), pred, timeout=timeout)


# ---------------------------------------------------------------- the .deb itself

def test_lintian_reports_no_errors_or_warnings(deb):
    p = run(["lintian", "--fail-on", "error,warning", "--no-tag-display-limit",
             "--show-overrides", deb], check=False, timeout=600)
    tags = [ln for ln in p.stdout.splitlines() if re.match(r"^[EW]: ", ln)]
    assert p.returncode == 0 and not tags, "lintian:\n%s\n%s" % (p.stdout, p.stderr)
    # Each override is used (an unused one would be reported as an info tag).
    assert "unused-override" not in p.stdout, p.stdout


def test_binary_carries_debians_hardening_flags(deb, tmp_path):
    run(["dpkg-deb", "-x", deb, str(tmp_path)])
    binary = str(tmp_path / "usr/sbin/gatehouse")
    dyn = run(["readelf", "-dW", binary]).stdout
    assert re.search(r"\(FLAGS\).*BIND_NOW", dyn), "not linked with -z now:\n" + dyn
    assert re.search(r"\(FLAGS_1\).*PIE", dyn), "not a PIE:\n" + dyn
    assert "TEXTREL" not in dyn
    assert "GNU_RELRO" in run(["readelf", "-lW", binary]).stdout, "no RELRO segment"
    syms = run(["readelf", "--dyn-syms", "-W", binary]).stdout
    assert "__stack_chk_fail" in syms, "no stack protector"
    assert re.search(r"__\w+_chk\b", syms.replace("__stack_chk_fail", "")), \
        "no _FORTIFY_SOURCE checked functions"
    # --as-needed: only the libraries the daemon uses are NEEDED.
    needed = re.findall(r"\(NEEDED\).*\[(.*)\]", dyn)
    assert any(n.startswith("libcares") for n in needed), needed


def test_package_holds_the_daemon_config_unit_and_docs(deb):
    names = {ln.split()[-1].lstrip(".") for ln in run(["dpkg-deb", "-c", deb]).stdout.splitlines()}
    for path in (GATEHOUSE, CONF, "/etc/gatehouse/conf.d/", UNIT, "/etc/logrotate.d/gatehouse",
                 "/usr/share/man/man8/gatehouse.8.gz", "/usr/share/man/man5/gatehouse.conf.5.gz",
                 "/usr/share/doc/gatehouse/copyright", "/usr/share/doc/gatehouse/changelog.gz",
                 "/etc/fail2ban/filter.d/gatehouse-auth.conf",
                 "/etc/fail2ban/jail.d/gatehouse-auth.conf"):
        assert path in names, "%s missing from the package" % path
    # Cache and log directories belong to _gatehouse: postinst makes them, the .deb does not.
    assert not any(n.startswith(CACHEDIR) or n.startswith(LOGDIR) for n in names)
    conffiles = run(["dpkg-deb", "-I", deb, "conffiles"]).stdout.split()
    assert CONF in conffiles and "/etc/logrotate.d/gatehouse" in conffiles, conffiles
    depends = run(["dpkg-deb", "-f", deb, "Depends"]).stdout
    assert "adduser" in depends and "libc-ares" in depends, depends


def test_install_creates_the_user_and_its_directories(installed):
    pw = pwd.getpwnam("_gatehouse")
    assert pw.pw_uid < 1000, "not a system user: uid %d" % pw.pw_uid
    assert pw.pw_shell in ("/usr/sbin/nologin", "/bin/false"), pw.pw_shell
    assert pw.pw_dir == "/nonexistent" and not os.path.exists(pw.pw_dir)
    assert grp.getgrgid(pw.pw_gid).gr_name == "_gatehouse"
    for d in (LOGDIR, CACHEDIR):
        st = os.stat(d)
        assert (st.st_uid, st.st_gid) == (pw.pw_uid, pw.pw_gid), d
        assert st.st_mode & 0o777 == 0o750, "%s mode %o" % (d, st.st_mode & 0o777)
    assert os.path.isdir("/etc/gatehouse/conf.d")
    # The configuration: root's, readable by the daemon's group (it re-reads it on reload).
    for d in (CONFDIR, CONFDIR + "/conf.d"):
        st = os.stat(d)
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, pw.pw_gid, 0o750), \
            "%s: %d:%d %o" % (d, st.st_uid, st.st_gid, st.st_mode & 0o777)
    st = os.stat(CONF)
    assert st.st_uid == 0 and st.st_mode & 0o040, "%s: mode %o" % (CONF, st.st_mode & 0o777)
    p = run([GATEHOUSE, "-t", "-f", CONF])
    assert "Syntax OK" in p.stderr
    assert run([GATEHOUSE, "-V"]).stdout.strip() == "gatehouse %s" % installed.version.split("-")[0]
    # the unit is enabled for when systemd runs
    assert os.path.islink("/etc/systemd/system/multi-user.target.wants/gatehouse.service")


def test_systemd_unit_verifies_and_keeps_its_security_rating(installed):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed here")
    with cat_pages_restored():
        p = run(["systemd-analyze", "verify", UNIT], check=False, timeout=60)
    assert p.returncode == 0 and "gatehouse" not in p.stdout + p.stderr, p.stdout + p.stderr
    p = run(["systemd-analyze", "security", "--offline=true", "--no-pager", UNIT],
            check=False, timeout=60)
    m = re.search(r"Overall exposure level for gatehouse.service: (\d+\.\d+) (\w+)", p.stdout)
    if m is None:
        pytest.skip("systemd-analyze security --offline is not supported here: %s"
                    % (p.stderr.strip()[:200]))
    exposure = float(m.group(1))
    print("systemd-analyze security: %s %s" % (m.group(1), m.group(2)))
    assert exposure <= 2.0, "exposure %.1f %s; README.md reports 1.4 OK" % (exposure, m.group(2))


# ---------------------------------------------------------------- the packaged daemon at work

def thread_ids(pid):
    out = []
    for tid in os.listdir("/proc/%d/task" % pid):
        info = {}
        with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
            for ln in f:
                k, _, v = ln.partition(":")
                if k in ("Uid", "Gid", "Groups"):
                    info[k] = v.split()
                elif k in ("CapEff", "CapPrm"):
                    info[k] = int(v, 16)
        out.append(info)
    return out


def test_packaged_daemon_runs_as_gatehouse_and_proxies(daemon, ctx):
    d = daemon()
    uid, gid = gatehouse_ids()
    threads = thread_ids(d.proc.pid)
    assert len(threads) >= 3  # main and two workers
    for th in threads:
        assert th["Uid"] == [str(uid)] * 4 and th["Gid"] == [str(gid)] * 4, th
        assert th["Groups"] == [str(gid)], th
        assert th["CapEff"] == 0 and th["CapPrm"] == 0, th
    with open(d.pidfile) as f:
        assert f.read() == "%d\n" % d.proc.pid

    tok = uuid.uuid4().hex
    r = ghtest.get(d.port, "http://origin.test:%d/echo?%s" % (ctx.origin_port, tok))
    assert r.status == 200
    seen = ctx.origin.requests_with(tok)
    assert len(seen) == 1
    via = [v for k, v in seen[0]["headers"] if k.lower() == "via"]
    assert via and via[0].startswith("1.1 "), "the packaged ProxyVia On sends Via: %r" % via
    alog = os.path.join(LOGDIR, "access.log")
    lines = ghtest.poll_lines(alog, lambda ln: tok in ln)
    assert len(lines) == 1 and " TCP_MISS/200 " in lines[0], lines
    for name in ("access.log", "error.log"):
        st = os.stat(os.path.join(LOGDIR, name))
        assert (st.st_uid, st.st_gid) == (uid, gid), name

    d.proc.send_signal(signal.SIGTERM)
    assert d.notify.wait(lambda m: "STOPPING=1" in m), "no STOPPING=1 on SIGTERM"
    assert d.proc.wait(timeout=15) == 0
    # Written by root before the drop, removed by _gatehouse: its directory belongs to it.
    assert not os.path.exists(d.pidfile), "pid file left behind"


def test_packaged_daemon_serves_the_status_page_to_loopback_only(daemon, ctx):
    """The packaged configuration enables the status page (issue 11) for the machine itself:
    /gatehouse/ answers a loopback client with the overview and the security headers, the
    metrics are there, and another client address is refused."""
    d = daemon()
    raw = ("GET /gatehouse/ HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n"
           % d.port).encode()
    r, c = ghtest.request(d.port, raw)
    c.close()
    assert r.status == 200, r
    assert r.header("Content-Security-Policy") == "default-src 'self'"
    assert r.header("Cache-Control") == "no-store"
    assert b"data-ov=" in r.body
    raw = ("GET /gatehouse/metrics HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close"
           "\r\n\r\n" % d.port).encode()
    r, c = ghtest.request(d.port, raw)
    c.close()
    assert r.status == 200 and b"gatehouse_requests_total" in r.body, r
    # 127.0.0.2 is loopback too, but not in the packaged "Require ip 127.0.0.1 ::1"
    with ghtest.Conn("127.0.0.1", d.port, source="127.0.0.2") as c2:
        c2.send(raw)
        assert c2.read_response(timeout=30).status == 403


@pytest.mark.slow
def test_packaged_daemon_reloads_while_a_slow_download_completes(daemon, ctx):
    d = daemon()
    url = "http://origin.test:%d/size/64?%s" % (ctx.origin_port, uuid.uuid4().hex)
    assert ghtest.get(d.port, url).status == 200
    result = {}

    def download():
        try:
            with ghtest.Conn("127.0.0.1", d.port, timeout=30) as c:
                c.send(ghtest.build("http://origin.test:%d/slow?size=300000&chunk=10000&delay=100"
                                    "&p=%s" % (ctx.origin_port, uuid.uuid4().hex), close=True))
                r = c.read_response(timeout=30)
                result.update(status=r.status, body=r.body, done=time.monotonic())
        except Exception as e:
            result["error"] = repr(e)

    t0 = time.time()
    t = threading.Thread(target=download, daemon=True)
    t.start()
    assert ghtest.poll(lambda: [r for r in ctx.origin.requests_with("/slow") if r["time"] >= t0])
    time.sleep(0.5)
    # The reload blocks the very host the download in flight comes from.
    t_hup = time.monotonic()
    d.hup(d.text + "ProxyBlock origin.test\n")
    r = ghtest.poll(lambda: (lambda x: x if x.status == 403 else None)(ghtest.get(d.port, url)),
                    timeout=3)
    assert r, "the reloaded ProxyBlock does not apply"
    # (the URL was cached before the reload: a blocked URL is not served from the cache)
    assert "blocked by ProxyBlock origin.test" in r.text(), r.text()
    assert error_log_lines(lambda ln: "configuration reloaded from %s" % d.conf in ln)
    t.join(timeout=30)
    assert "error" not in result, result["error"]
    assert result["status"] == 200 and result["body"] == body_bytes(300000)
    assert result["done"] > t_hup + 0.5, "the download did not span the reload"
    assert d.proc.poll() is None


def test_packaged_daemon_caches_in_var_cache_gatehouse(daemon, ctx):
    with open(CONF) as f:
        active = [ln for ln in f.read().splitlines() if ln.startswith("Cache")]
    for want in ("CacheRoot /var/cache/gatehouse", "CacheSize 1G", "CacheEnable lmdb /"):
        assert want in active, "the packaged config does not say %r: %s" % (want, active)
    d = daemon()
    uid, gid = gatehouse_ids()
    tok = uuid.uuid4().hex
    url = "http://origin.test:%d/cache?t=%s&cc=max-age=300&size=20000" % (ctx.origin_port, tok)
    r1 = ghtest.get(d.port, url)
    assert r1.status == 200 and r1.body == body_bytes(20000)
    assert "fwd=uri-miss" in r1.header("Cache-Status") and "stored" in r1.header("Cache-Status")
    time.sleep(0.5)
    for _ in range(3):  # whichever of the two workers takes it
        r = ghtest.get(d.port, url)
        assert r.status == 200 and r.body == body_bytes(20000)
        assert r.header("Cache-Status").startswith("Gatehouse; hit"), r.header("Cache-Status")
    assert len(ctx.origin.requests_with(tok)) == 1, "the origin was asked again"
    lines = ghtest.poll_lines(os.path.join(LOGDIR, "access.log"), lambda ln: tok in ln, count=4)
    assert sum(" TCP_HIT/200 " in ln for ln in lines) == 3, lines
    # The store is in the package's directory, made by postinst, written by _gatehouse.
    st = os.stat(CACHEDIR)
    assert (st.st_uid, st.st_gid) == (uid, gid) and st.st_mode & 0o777 == 0o750
    files = os.listdir(CACHEDIR)
    assert files, "nothing in %s" % CACHEDIR
    for n in files:
        st = os.stat(os.path.join(CACHEDIR, n))
        assert (st.st_uid, st.st_gid) == (uid, gid), "%s is not _gatehouse's" % n
    # and it survives a restart: a new daemon answers from it without the origin
    assert d.stop() == 0
    d2 = daemon()
    r = ghtest.get(d2.port, url)
    assert r.header("Cache-Status").startswith("Gatehouse; hit"), r.header("Cache-Status")
    assert len(ctx.origin.requests_with(tok)) == 1
    # The packaged <Limit PURGE> lets the machine itself empty the entry.
    assert ghtest.get(d2.port, url, method="PURGE").status == 200
    r = ghtest.get(d2.port, url)
    assert "fwd=uri-miss" in r.header("Cache-Status"), r.header("Cache-Status")
    assert len(ctx.origin.requests_with(tok)) == 2


def test_root_gatehouse_0640_conf_d_file_reloads(daemon, ctx):
    """A conf.d file with secrets, root:_gatehouse 0640, is read again by the daemon (running as
    _gatehouse) on reload; root-only 0600 would make the reload fail, naming the file."""
    d = daemon()
    _, gid = gatehouse_ids()
    secret = os.path.join(CONFDIR, "conf.d", "zz-secret.conf")
    url = "http://www.ghsecretword.test/"
    assert ghtest.get(d.port, url).status != 403
    try:
        with open(secret, "w") as f:
            f.write("# parent proxy credentials would be here\nProxyBlock ghsecretword\n")
        os.chown(secret, 0, gid)
        os.chmod(secret, 0o640)
        d.hup(d.text)
        r = ghtest.get(d.port, url)
        assert r.status == 403 and "ProxyBlock ghsecretword" in r.text(), r.status
        # root only: the daemon cannot read it on reload, says which file, keeps running
        os.chmod(secret, 0o600)
        d.hup(d.text, ok=False)
        assert error_log_lines(lambda ln: "reload failed" in ln and secret in ln), \
            "the failed reload does not name %s" % secret
        assert ghtest.get(d.port, url).status == 403  # the running configuration stays
    finally:
        if os.path.exists(secret):
            os.unlink(secret)


def test_packaged_daemon_keeps_serving_after_a_broken_reload(daemon, ctx):
    d = daemon()
    url = "http://origin.test:%d/size/10" % ctx.origin_port
    bad = d.text + "ProxyVia Sideways\n"
    status = d.hup(bad, ok=False)
    assert "failed" in status
    line = len(bad.splitlines())
    want = "%s:%d: ProxyVia: expected On, Off, Full or Block" % (d.conf, line)
    assert error_log_lines(lambda ln: want in ln), "no FILE:LINE message in error.log"
    assert ghtest.get(d.port, url).status == 200
    assert d.proc.poll() is None


def test_new_port_below_1024_needs_a_restart_after_the_drop(daemon, ctx):
    d = daemon()
    low = None
    for port in range(1023, 900, -1):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            low = port
            break
        except OSError:
            continue
        finally:
            s.close()
    assert low, "no free port below 1024 on 127.0.0.1"
    new = d.text.replace("\nListen 127.0.0.1:%d\n" % d.port,
                         "\nListen 127.0.0.1:%d\nListen 127.0.0.1:%d\n" % (d.port, low))
    d.hup(new, ok=False)
    assert error_log_lines(lambda ln: "cannot listen on 127.0.0.1:%d" % low in ln
                           and "CAP_NET_BIND_SERVICE" in ln and "restart" in ln)
    assert not ghtest.can_connect("127.0.0.1", low)
    assert ghtest.get(d.port, "http://origin.test:%d/size/1" % ctx.origin_port).status == 200


def test_sigusr1_after_moving_the_logs_writes_new_logs(daemon, ctx):
    d = daemon()
    uid, _ = gatehouse_ids()
    alog, elog = os.path.join(LOGDIR, "access.log"), os.path.join(LOGDIR, "error.log")
    tok1, tok2 = uuid.uuid4().hex, uuid.uuid4().hex
    assert ghtest.get(d.port, "http://origin.test:%d/size/1?%s" % (ctx.origin_port, tok1)).status == 200
    assert ghtest.poll_lines(alog, lambda ln: tok1 in ln)
    os.rename(alog, alog + ".moved")
    os.rename(elog, elog + ".moved")
    d.proc.send_signal(signal.SIGUSR1)
    assert error_log_lines(lambda ln: "logs reopened" in ln), "no new error.log"
    assert ghtest.get(d.port, "http://origin.test:%d/size/1?%s" % (ctx.origin_port, tok2)).status == 200
    assert ghtest.poll_lines(alog, lambda ln: tok2 in ln), "no line in the new access.log"
    assert os.stat(alog).st_uid == uid and os.stat(elog).st_uid == uid
    with open(alog + ".moved") as f:
        assert tok2 not in f.read()
    os.unlink(alog + ".moved")
    os.unlink(elog + ".moved")


def test_packaged_logrotate_rule_rotates_and_the_daemon_reopens(daemon, ctx, tmp_path):
    if not shutil.which("logrotate"):
        pytest.skip("logrotate is not installed here")
    d = daemon()
    alog = os.path.join(LOGDIR, "access.log")
    tok1, tok2 = uuid.uuid4().hex, uuid.uuid4().hex
    assert ghtest.get(d.port, "http://origin.test:%d/size/1?%s" % (ctx.origin_port, tok1)).status == 200
    assert ghtest.poll_lines(alog, lambda ln: tok1 in ln)
    run(["logrotate", "-f", "-s", str(tmp_path / "state"), "/etc/logrotate.d/gatehouse"])
    with open(alog + ".1") as f:
        assert tok1 in f.read()
    assert ghtest.get(d.port, "http://origin.test:%d/size/1?%s" % (ctx.origin_port, tok2)).status == 200
    assert ghtest.poll_lines(alog, lambda ln: tok2 in ln), "the daemon did not reopen access.log"
    st = os.stat(alog)
    assert st.st_uid == gatehouse_ids()[0] and st.st_mode & 0o777 == 0o640


# ---------------------------------------------------------------- apt through the proxy

NGINX_CONF = """daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {dir}/nginx-access.log;
    default_type application/octet-stream;
    client_body_temp_path {dir}/tmp-body;
    proxy_temp_path {dir}/tmp-proxy;
    fastcgi_temp_path {dir}/tmp-fastcgi;
    uwsgi_temp_path {dir}/tmp-uwsgi;
    scgi_temp_path {dir}/tmp-scgi;
    server {{
        listen 127.0.0.1:{port};
        root {dir}/repo;
    }}
}}
"""


def make_repository(top):
    """A flat apt repository with one package, gh-apt-probe 1.0: returns its .deb's sha256."""
    probe = os.path.join(top, "probe")
    os.makedirs(os.path.join(probe, "DEBIAN"))
    os.makedirs(os.path.join(probe, "usr/share/doc/gh-apt-probe"))
    with open(os.path.join(probe, "DEBIAN/control"), "w") as f:
        f.write("Package: gh-apt-probe\nVersion: 1.0\nArchitecture: all\n"
                "Maintainer: Gatehouse tests <tests@example.org>\n"
                "Description: package served to apt through gatehouse by the tests\n")
    with open(os.path.join(probe, "usr/share/doc/gh-apt-probe/README"), "w") as f:
        f.write("fetched through the proxy\n" * 200)
    repo = os.path.join(top, "repo")
    os.makedirs(repo)
    deb = os.path.join(repo, "gh-apt-probe_1.0_all.deb")
    run(["dpkg-deb", "--root-owner-group", "-b", probe, deb])
    packages = run(["dpkg-scanpackages", "-m", ".", "/dev/null"], cwd=repo).stdout
    with open(os.path.join(repo, "Packages"), "w") as f:
        f.write(packages)
    run(["gzip", "-9k", os.path.join(repo, "Packages")])
    release = run(["apt-ftparchive", "release", "."], cwd=repo).stdout
    with open(os.path.join(repo, "Release"), "w") as f:
        f.write(release)
    with open(deb, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture
def nginx_repo(tmp_path):
    top = str(tmp_path)
    sha = make_repository(top)
    port = ghtest.free_port()
    conf = os.path.join(top, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(dir=top, port=port))
    out = open(os.path.join(top, "nginx.out"), "wb")
    proc = subprocess.Popen(["/usr/sbin/nginx", "-c", conf, "-p", top], stdout=out, stderr=out,
                            stdin=subprocess.DEVNULL)
    out.close()
    if not ghtest.wait_listening("127.0.0.1", port, time.monotonic() + 10, proc):
        proc.kill()
        pytest.fail("nginx did not start: %s" % open(os.path.join(top, "nginx.out")).read())
    yield types.SimpleNamespace(port=port, sha256=sha, dir=top)
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_apt_update_and_download_through_the_proxy(daemon, ctx, nginx_repo, tmp_path):
    d = daemon()
    work = tmp_path / "apt"
    for sub in ("lists/partial", "cache/archives/partial", "sources.list.d", "dl"):
        (work / sub).mkdir(parents=True)
    (work / "sources.list").write_text(
        "deb [trusted=yes] http://origin.test:%d/ ./\n" % nginx_repo.port)
    opts = ["-o", "Dir::Etc::sourcelist=%s" % (work / "sources.list"),
            "-o", "Dir::Etc::sourceparts=%s" % (work / "sources.list.d"),
            "-o", "Dir::State::lists=%s" % (work / "lists"),
            "-o", "Dir::Cache=%s" % (work / "cache"),
            "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache=",
            "-o", "APT::Sandbox::User=root",
            "-o", "Acquire::Languages=none",
            "-o", "Acquire::Retries=0",
            "-o", "Acquire::http::Proxy=http://127.0.0.1:%d/" % d.port]
    env = ghtest.clean_env(DEBIAN_FRONTEND="noninteractive")
    p = run(["apt-get", "-q"] + opts + ["update"], env=env, timeout=120)
    out = p.stdout + p.stderr
    assert "Err:" not in out and not re.search(r"^E: ", out, re.M), out
    assert "origin.test:%d" % nginx_repo.port in out
    p = run(["apt-get", "-q"] + opts + ["download", "gh-apt-probe"], env=env, timeout=120,
            cwd=str(work / "dl"))
    got = work / "dl" / "gh-apt-probe_1.0_all.deb"
    assert got.is_file(), p.stdout + p.stderr
    assert hashlib.sha256(got.read_bytes()).hexdigest() == nginx_repo.sha256
    # Both went through the proxy (apt cannot resolve origin.test itself), and it logged them.
    alog = os.path.join(LOGDIR, "access.log")
    # A flat repository: apt asks for "/./gh-apt-probe...", which the proxy normalizes
    # (dot segments resolved, issue 10) before it logs, decides and forwards.
    base = "http://origin.test:%d/" % nginx_repo.port
    assert ghtest.poll_lines(alog, lambda ln: base + "gh-apt-probe_1.0_all.deb " in ln
                             and "TCP_MISS/200" in ln), "no access log line for the .deb"
    assert ghtest.poll_lines(alog, lambda ln: re.search(re.escape(base) + r"Packages(\.\w+)? ", ln)
                             and "/200 " in ln), "no access log line for the package index"


# ---------------------------------------------------------------- lifecycle

def repack(deb, version, dest):
    """The same package under another version (a stand-in for the previous release)."""
    tree = tempfile.mkdtemp(prefix="gh-repack-")
    try:
        run(["dpkg-deb", "-R", deb, tree])
        control = os.path.join(tree, "DEBIAN", "control")
        with open(control) as f:
            text = re.sub(r"^Version: .*$", "Version: " + version, f.read(), flags=re.M)
        with open(control, "w") as f:
            f.write(text)
        run(["dpkg-deb", "--root-owner-group", "-b", tree, dest])
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def test_upgrade_from_the_previous_version_keeps_the_admins_changes(machine, tmp_path):
    previous = machine.version + "~prev1"
    assert run(["dpkg", "--compare-versions", previous, "lt", machine.version],
               check=False).returncode == 0
    old = str(tmp_path / "gatehouse_previous.deb")
    repack(machine.deb, previous, old)
    purge()
    dpkg_install(machine, old)
    assert is_installed(previous)
    uid = pwd.getpwnam("_gatehouse").pw_uid
    with open(CONF, "a") as f:
        f.write("\n# changed by the admin\nProxyTimeout 42\n")
    with open("/etc/gatehouse/conf.d/local.conf", "w") as f:
        f.write("ProxyMaxForwards 12\n")
    with open(os.path.join(CACHEDIR, "kept"), "w") as f:
        f.write("cache data\n")

    p = dpkg_install(machine, machine.deb)
    out = p.stdout + p.stderr
    assert "Unpacking gatehouse (%s) over (%s)" % (machine.version, previous) in out, out
    assert "Configuration file" not in out, "dpkg asked about a conffile:\n" + out
    assert is_installed(machine.version)
    with open(CONF) as f:
        assert "ProxyTimeout 42" in f.read(), "the admin's change to the conffile was lost"
    assert os.path.isfile("/etc/gatehouse/conf.d/local.conf")
    assert os.path.isfile(os.path.join(CACHEDIR, "kept"))
    assert pwd.getpwnam("_gatehouse").pw_uid == uid
    assert "Syntax OK" in run([GATEHOUSE, "-t", "-f", CONF]).stderr


def test_remove_keeps_configuration_cache_and_logs(machine):
    ensure_installed(machine)
    with open(os.path.join(CACHEDIR, "entry"), "w") as f:
        f.write("cached\n")
    with open(os.path.join(LOGDIR, "access.log"), "a") as f:
        f.write("an old line\n")
    run(["dpkg", "-r", "gatehouse"], timeout=120)
    assert installed_status().startswith("deinstall ok config-files"), installed_status()
    assert not os.path.exists(GATEHOUSE)
    assert os.path.isfile(CONF)
    assert os.path.isfile(os.path.join(CACHEDIR, "entry"))
    assert os.path.isfile(os.path.join(LOGDIR, "access.log"))
    assert user_exists("_gatehouse")
    # and a reinstall picks them up again
    ensure_installed(machine)
    assert os.path.isfile(os.path.join(CACHEDIR, "entry"))


def purge_and_check(machine):
    """dpkg --purge, then nothing the package owns or made is left: what dpkg -L listed and its
    control files, what appeared during its installs, the directories postinst makes (all but
    what was on the machine before), and the user and group when the machine had none."""
    run(["dpkg", "--purge", "gatehouse"], timeout=120)
    assert is_gone(), installed_status()
    assert machine.owned > set(CREATED), "no install was recorded"
    left = {x for x in machine.owned if os.path.lexists(x)} - machine.preexisting
    assert not left, "left behind after purge: %s" % sorted(left)
    for path in (CONFDIR, CACHEDIR, LOGDIR, "/run/gatehouse"):
        assert not os.path.exists(path), path
    if not machine.had_user:
        assert not user_exists("_gatehouse"), "the _gatehouse user is still there"
        assert not group_exists("_gatehouse"), "the _gatehouse group is still there"


def test_purge_leaves_nothing_behind(machine, ctx):
    ensure_installed(machine)
    d = PkgDaemon(ctx).start()  # leaves logs and a live process behind to clean up
    assert ghtest.get(d.port, "http://origin.test:%d/size/1" % ctx.origin_port).status == 200
    assert d.stop() == 0
    with open("/etc/gatehouse/conf.d/mine.conf", "w") as f:
        f.write("ProxyVia Off\n")
    purge_and_check(machine)
    # The check can fail: a directory postinst made, left behind, is found.
    ensure_installed(machine)
    os.rename(CACHEDIR, CACHEDIR + ".kept")
    try:
        run(["dpkg", "--purge", "gatehouse"], timeout=120)
        os.rename(CACHEDIR + ".kept", CACHEDIR)
        left = {x for x in machine.owned if os.path.lexists(x)} - machine.preexisting
        assert left == {CACHEDIR}, sorted(left)
    finally:
        if os.path.lexists(CACHEDIR + ".kept"):
            os.rename(CACHEDIR + ".kept", CACHEDIR)
        shutil.rmtree(CACHEDIR, ignore_errors=True)




def test_purge_passes_after_man_wrote_its_cat_pages(machine):
    """man-db writes formatted pages to /var/cache/man/catN/ when that directory exists; it
    does so for `man gatehouse.conf` and for `systemd-analyze verify`, which runs man for the
    unit's Documentation= lines. Those files are man-db's: purge is not judged by them."""
    if not shutil.which("man"):
        pytest.skip("man-db is not installed here")
    ensure_installed(machine)
    with cat_pages_restored(make_dirs=True):
        env = ghtest.clean_env(MANPAGER="cat", PAGER="cat", MANWIDTH="80")
        for page in (["gatehouse.conf"], ["8", "gatehouse"]):
            p = run(["man"] + page, env=env, timeout=60)
            assert "gatehouse" in p.stdout
        if shutil.which("systemd-analyze"):
            run(["systemd-analyze", "verify", UNIT], check=False, timeout=60)
        written = [c for c in CAT_PAGES if os.path.lexists(c)]
        assert written, "man wrote no cat page: this test no longer shows the case"
        assert not set(written) & machine.owned
        purge_and_check(machine)
        assert [c for c in CAT_PAGES if os.path.lexists(c)] == written  # still man-db's


def free_system_id():
    """A number free as a uid and as a gid, in the system range, for a stand-in _gatehouse."""
    for i in range(990, 500, -1):
        try:
            pwd.getpwuid(i)
            continue
        except KeyError:
            pass
        try:
            grp.getgrgid(i)
        except KeyError:
            return i
    pytest.fail("no free system uid/gid between 500 and 990")


def make_user(uid, gecos="stand-in"):
    run(["groupadd", "--system", "-g", str(uid), "_gatehouse"])
    run(["useradd", "--system", "-u", str(uid), "-g", str(uid), "-d", "/nonexistent", "-M",
         "-s", "/usr/sbin/nologin", "-c", gecos, "_gatehouse"])


def drop_user():
    for cmd in (["userdel", "_gatehouse"], ["groupdel", "_gatehouse"]):
        run(cmd, check=False)


def test_a_gatehouse_installed_before_the_tests_is_put_back(machine, tmp_path):
    """What the machine fixture does when gatehouse was installed before the tests: save it,
    purge it, run (here: install the tests' package, which purge removes again with its user),
    then put the admin's package, files and user back."""
    purge()
    assert not user_exists("_gatehouse") or machine.had_user
    drop_user()
    mark = machine.version + "~admin1"
    old = str(tmp_path / "gatehouse_admin.deb")
    repack(machine.deb, mark, old)
    uid = free_system_id()
    make_user(uid, "the admin's")
    where = tempfile.mkdtemp(prefix="gh-pkg-saved-")
    try:
        dpkg_install(machine, old)
        secret = os.path.join(CONFDIR, "conf.d", "parent.conf")
        with open(secret, "w") as f:
            f.write("ProxyMaxForwards 7\n")
        os.chown(secret, 0, uid)
        os.chmod(secret, 0o640)
        with open(CONF, "a") as f:
            f.write("\n# the admin was here\n")
        entry = os.path.join(CACHEDIR, "admin-entry")
        with open(entry, "w") as f:
            f.write("cached by the admin\n")
        os.chown(entry, uid, uid)

        saved = save_machine(where)
        assert saved.deb and saved.status.endswith(" " + mark), saved.status
        purge()  # the tests' cycle: the admin's package and user go ...
        assert not user_exists("_gatehouse") and not os.path.exists(CONFDIR)
        dpkg_install(machine, machine.deb)  # ... the tests' package comes ...
        assert is_installed(machine.version)
        restore_machine(saved)  # ... and the admin's state is put back

        assert is_installed(mark), installed_status()
        pw = pwd.getpwnam("_gatehouse")
        assert (pw.pw_uid, pw.pw_gid, pw.pw_gecos) == (uid, uid, "the admin's")
        st = os.stat(secret)
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, uid, 0o640)
        with open(secret) as f:
            assert f.read() == "ProxyMaxForwards 7\n"
        with open(CONF) as f:
            assert f.read().endswith("\n# the admin was here\n")
        assert os.stat(entry).st_uid == uid
        assert os.stat(CONFDIR).st_gid == uid and os.stat(CONFDIR).st_mode & 0o777 == 0o750
        assert os.path.lexists(WANTS) == saved.enabled
    finally:
        shutil.rmtree(where, ignore_errors=True)
        purge()
        drop_user()


def test_a_gatehouse_user_without_the_package_is_put_back(machine):
    """Only the user existed (an admin made it, or a package long gone): the tests' purge
    removes it with the package, the restore recreates it with its ids."""
    purge()
    drop_user()
    uid = free_system_id()
    make_user(uid)
    where = tempfile.mkdtemp(prefix="gh-pkg-saved-")
    try:
        saved = save_machine(where)
        assert saved.deb is None and saved.user[2] == uid
        dpkg_install(machine, machine.deb)
        assert pwd.getpwnam("_gatehouse").pw_uid == uid  # postinst took the existing user
        purge()
        assert not user_exists("_gatehouse")
        restore_machine(saved)
        assert is_gone()
        pw = pwd.getpwnam("_gatehouse")
        assert (pw.pw_uid, pw.pw_gid) == (uid, uid) and grp.getgrgid(uid).gr_name == "_gatehouse"
        assert not os.path.exists(CONFDIR)
    finally:
        shutil.rmtree(where, ignore_errors=True)
        purge()
        drop_user()
