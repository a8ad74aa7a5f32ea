"""
test_out_of_the_box.py - issue 9, part 2: what a new user gets without writing a file.

- The built-in configuration caches and writes an access log: as a normal user in that user's
  own directories ($XDG_CACHE_HOME, else ~/.cache; $XDG_STATE_HOME, else ~/.local/state), as
  root in /var/cache/gatehouse and /var/log/gatehouse, created owned by User before the drop;
  the first line says where it listens, caches and logs.
- -p PORT and -l ADDR:PORT replace the listeners, at start-up and on every reload; bad values
  are a command-line error (exit 2). ListenReset in a conf.d file narrows the main file's
  Listen list.
- At the shipped LogLevel notice the error log has the start line, reloads, the stop, and the
  cache report with its hit ratio (CacheReportInterval), and nothing per request.
- -t (and a start) refuse what a start would fail on later: a User that does not exist (with
  what to do), config files or Include directories User cannot read, a CacheRoot User cannot
  write, each naming the user.

The tests that switch users need root; they create a throwaway system user (gh-ootb-test) and
remove it at the end of the module, and keep every file in temporary directories, except the
root run of the built-in configuration, which removes /var/cache/gatehouse and
/var/log/gatehouse again (it is skipped when either existed before).
"""

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

import ghtest

IS_ROOT = os.geteuid() == 0
TEST_USER = "gh-ootb-test"
VERSION_RE = r"gatehouse \d+\.\d+\.\d+"


def tok():
    return uuid.uuid4().hex


def cache_url(ctx, t):
    # a literal address: the built-in configuration resolves with /etc/resolv.conf
    return "http://127.0.0.1:%d/cache?t=%s&cc=max-age=300&size=3000" % (ctx.origin_port, t)


class Proc:
    """gatehouse with arbitrary arguments, environment and user; stderr in a file."""

    def __init__(self, gh_bin, args, workdir, env=None, user=None, cwd=None):
        self.stderr_path = os.path.join(workdir, "stderr-%s" % uuid.uuid4().hex[:8])
        err = open(self.stderr_path, "wb")
        kw = {}
        if user is not None:
            pw = pwd.getpwnam(user)
            kw = dict(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        self.proc = subprocess.Popen([gh_bin] + list(args), stdout=err, stderr=err,
                                     stdin=subprocess.DEVNULL, cwd=cwd or workdir,
                                     env=ghtest.clean_env(**(env or {})), **kw)
        err.close()

    def wait_listening(self, port, host="127.0.0.1"):
        ok = ghtest.wait_listening(host, port, time.monotonic() + 10, self.proc)
        assert ok, "not listening on %s:%d (exit %s):\n%s" % (host, port, self.proc.poll(),
                                                              self.stderr())
        return self

    def wait_stderr(self, pattern, timeout=10):
        """Wait (bounded) until stderr matches the regular expression; return the text."""
        ghtest.poll(lambda: re.search(pattern, self.stderr()), timeout=timeout)
        return self.stderr()

    def stderr(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # What ghtest.sighup_and_wait() reads, as on ghtest.Daemon.
    def stderr_text(self):
        return self.stderr()

    def stderr_tail(self, n=4000):
        return self.stderr()[-n:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
                return None
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


@pytest.fixture
def procs():
    started = []
    yield started
    for p in started:
        p.kill()
        rep = None
        text = p.stderr()
        for m in ghtest.SANITIZER_MARKERS:
            if m in text:
                rep = text[text.index(m):][:3000]
        assert rep is None, "sanitizer report:\n%s" % rep


@pytest.fixture
def shared_dir():
    """A temporary directory every user may enter and read (pytest's tmp_path is root's)."""
    d = tempfile.mkdtemp(prefix="gh-ootb-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def test_user():
    """A throwaway system user and group, removed afterwards (root only)."""
    if not IS_ROOT:
        pytest.skip("needs root to create a user")

    def remove():
        subprocess.run(["userdel", TEST_USER], capture_output=True, timeout=30)
        subprocess.run(["groupdel", TEST_USER], capture_output=True, timeout=30)

    try:
        pwd.getpwnam(TEST_USER)
        remove()  # a leftover of an interrupted run
    except KeyError:
        pass
    p = subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", TEST_USER],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    try:
        yield pwd.getpwnam(TEST_USER)
    finally:
        remove()
    with pytest.raises(KeyError):
        pwd.getpwnam(TEST_USER)


def run_t(gh_bin, conf, env=None):
    p = subprocess.run([gh_bin, "-t", "-f", conf], capture_output=True, text=True, timeout=20,
                       env=ghtest.clean_env(**(env or {})))
    return p.returncode, p.stdout + p.stderr


def run_start(gh_bin, conf):
    """A start that is expected to be refused before it listens."""
    p = subprocess.run([gh_bin, "-f", conf], capture_output=True, text=True, timeout=20,
                       env=ghtest.clean_env())
    return p.returncode, p.stdout + p.stderr


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def three_gets(port, ctx, t):
    """Three GETs of one cacheable URL: the first a miss, the others hits."""
    statuses = []
    for _ in range(3):
        r = ghtest.get(port, cache_url(ctx, t))
        assert r.status == 200 and len(r.body) == 3000, r
        statuses.append(r.header("Cache-Status") or "")
    assert "fwd=uri-miss" in statuses[0] and "stored" in statuses[0], statuses
    assert all(s.startswith("Gatehouse; hit") for s in statuses[1:]), statuses
    assert len(ctx.origin.requests_with(t)) == 1


# ---------------------------------------------------------------- the built-in configuration

def test_builtin_config_as_a_normal_user_caches_and_logs_in_its_home(gh_bin, ctx, shared_dir,
                                                                     procs, request):
    """Started by a normal user with no file: the store in ~/.cache/gatehouse, the access log
    in ~/.local/state/gatehouse, both created (0700), three requests reach the origin once."""
    home = os.path.join(shared_dir, "home")
    os.mkdir(home, 0o700)
    user = None
    if IS_ROOT:
        u = request.getfixturevalue("test_user")
        os.chown(home, u.pw_uid, u.pw_gid)
        user = TEST_USER
    port = ghtest.free_port()
    env = {"HOME": home}
    for k in ("XDG_CACHE_HOME", "XDG_STATE_HOME"):
        env[k] = ""  # relative or empty values do not count (XDG)
    p = Proc(gh_bin, ["-p", str(port)], shared_dir, env=env, user=user, cwd=home)
    procs.append(p)
    p.wait_listening(port)
    store = os.path.join(home, ".cache", "gatehouse")
    alog = os.path.join(home, ".local", "state", "gatehouse", "access.log")
    want = ("%s: listening on 127.0.0.1:%d, caching in %s \\(1 GiB\\), access log %s"
            % (VERSION_RE, port, re.escape(store), re.escape(alog)))
    assert re.search(want, p.wait_stderr(want)), p.stderr()
    t = tok()
    three_gets(port, ctx, t)
    lines = ghtest.poll_lines(alog, lambda ln: t in ln, count=3)
    assert sorted(ln.split()[3].split("/")[0] for ln in lines) == ["TCP_HIT", "TCP_HIT",
                                                                  "TCP_MISS"], lines
    st = os.stat(store)
    assert st.st_mode & 0o777 == 0o700 and st.st_uid == os.stat(home).st_uid
    assert p.stop() == 0, p.stderr()
    err = p.stderr()
    assert "cache closing: hit ratio 66.7% (2 hits / 3 requests) since start-up" in err, err
    assert re.search(r"\[notice\] stopped", err), err


def test_builtin_config_follows_xdg_directories(gh_bin, shared_dir, procs, request):
    base = os.path.join(shared_dir, "xdg")
    os.mkdir(base, 0o700)
    user = None
    if IS_ROOT:
        u = request.getfixturevalue("test_user")
        os.chown(base, u.pw_uid, u.pw_gid)
        user = TEST_USER
    port = ghtest.free_port()
    env = {"HOME": "/nonexistent", "XDG_CACHE_HOME": base + "/c/",
           "XDG_STATE_HOME": base + "/s"}
    p = Proc(gh_bin, ["-p", str(port)], shared_dir, env=env, user=user, cwd="/")
    procs.append(p)
    p.wait_listening(port)
    want = ("caching in %s/c/gatehouse (1 GiB), access log %s/s/gatehouse/access.log"
            % (base, base))
    assert want in p.wait_stderr(re.escape(want)), p.stderr()
    assert os.path.isdir(base + "/c/gatehouse") and os.path.isdir(base + "/s/gatehouse")
    assert p.stop() == 0, p.stderr()


@pytest.mark.skipif(not IS_ROOT, reason="the root case of the built-in configuration")
def test_builtin_config_as_root_creates_its_directories_for_nobody(gh_bin, ctx, procs, request):
    """As root: /var/cache/gatehouse and /var/log/gatehouse, created owned by nobody (the
    package's _gatehouse when that account exists) before the drop; removed again."""
    dirs = ["/var/cache/gatehouse", "/var/log/gatehouse"]
    # The package tests own these paths while they run (they take this lock when run by
    # hand next to other test runs on one machine).
    lock = ghtest.package_tests_lock()
    if lock is None:
        pytest.skip("the package tests are running (@%s is taken)"
                    % ghtest.PACKAGE_TESTS_LOCK[1:])
    request.addfinalizer(lock.close)
    if any(os.path.lexists(d) for d in dirs):
        pytest.skip("%s exists already (installed package?): not touching it" % dirs)
    try:
        nobody = pwd.getpwnam("_gatehouse")
    except KeyError:
        nobody = pwd.getpwnam("nobody")
    port = ghtest.free_port()
    try:
        p = Proc(gh_bin, ["-p", str(port)], ctx.workdir, cwd="/")
        procs.append(p)
        p.wait_listening(port)
        want = ("%s: listening on 127.0.0.1:%d, caching in /var/cache/gatehouse "
                r"\(1 GiB\), access log /var/log/gatehouse/access.log" % (VERSION_RE, port))
        assert re.search(want, p.wait_stderr(want)), p.stderr()
        for d in dirs:
            st = os.stat(d)
            assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid), d
            assert st.st_mode & 0o777 == 0o750, (d, oct(st.st_mode))
        t = tok()
        three_gets(port, ctx, t)
        assert os.stat("/var/log/gatehouse/access.log").st_uid == nobody.pw_uid
        # A reload, now as nobody, loads root's built-in text again: nothing moves, so
        # nothing is said to wait for the next start.
        ghtest.sighup_and_wait(p)
        assert "take effect at the next start" not in p.stderr(), p.stderr()
        assert p.stop() == 0, p.stderr()
    finally:
        # Only what this run made (nobody's): a package installed meanwhile keeps its own.
        for d in dirs:
            if os.path.isdir(d) and os.stat(d).st_uid == nobody.pw_uid:
                shutil.rmtree(d, ignore_errors=True)
    assert not any(os.path.lexists(d) for d in dirs)


# ---------------------------------------------------------------- -p, -l, ListenReset

def listening(port):
    return ghtest.can_connect("127.0.0.1", port)


def test_port_option_keeps_the_addresses_and_survives_reloads(gh_bin, ctx, procs, tmp_path):
    a, b, newport = ghtest.free_port(), ghtest.free_port(), ghtest.free_port()
    conf = str(tmp_path / "p.conf")
    text = ghtest.conf_text(ctx, a, extra=["Listen 127.0.0.2:%d" % b])
    write(conf, text)
    p = Proc(gh_bin, ["-f", conf, "-p", str(newport)], str(tmp_path))
    procs.append(p)
    p.wait_listening(newport)
    assert ghtest.wait_listening("127.0.0.2", newport, time.monotonic() + 5)
    assert not listening(a) and not ghtest.can_connect("127.0.0.2", b)
    want = "listening on 127.0.0.1:%d and 127.0.0.2:%d" % (newport, newport)
    assert want in p.wait_stderr(re.escape(want)), p.stderr()
    # The file changes its ports; a reload keeps -p.
    write(conf, text.replace(str(a), str(ghtest.free_port())))
    ghtest.sighup_and_wait(p)
    assert listening(newport) and not listening(a)
    assert ghtest.get(newport, "http://origin.test:%d/size/10" % ctx.origin_port).status == 200
    assert p.stop() == 0, p.stderr()


def test_listen_option_replaces_the_listen_lines_and_survives_reloads(gh_bin, ctx, procs,
                                                                      tmp_path):
    x, l1, l2, y = (ghtest.free_port() for _ in range(4))
    conf = str(tmp_path / "l.conf")
    write(conf, ghtest.conf_text(ctx, x))
    p = Proc(gh_bin, ["-f", conf, "-l", "127.0.0.1:%d" % l1, "-l", "127.0.0.1:%d" % l2],
             str(tmp_path))
    procs.append(p)
    p.wait_listening(l1).wait_listening(l2)
    assert not listening(x)
    write(conf, ghtest.conf_text(ctx, y))
    ghtest.sighup_and_wait(p)
    assert listening(l1) and listening(l2) and not listening(y) and not listening(x)
    assert p.stop() == 0, p.stderr()


@pytest.mark.parametrize("args,words", [
    (["-p", "0"], "-p 0: expected a port from 1 to 65535"),
    (["-p", "70000"], "-p 70000: expected a port"),
    (["-p", "80x"], "-p 80x: expected a port"),
    (["-l", "localhost:3128"], "-l localhost:3128: expected PORT, ADDR:PORT or [ADDR]:PORT"),
    (["-l", "127.0.0.1:1", "-l", "127.0.0.1:1"], "-l 127.0.0.1:1 given twice"),
    (["-p", "1", "-l", "127.0.0.1:2"], "-p and -l do not combine"),
])
def test_bad_listen_options_are_command_line_errors(gh_bin, args, words):
    p = subprocess.run([gh_bin, "-t"] + args, capture_output=True, text=True, timeout=10,
                       env=ghtest.clean_env())
    assert p.returncode == 2, p.stderr
    assert words in p.stderr, p.stderr


def test_dump_shows_the_command_lines_listeners_as_directives(gh_bin, ctx, tmp_path):
    """-M with -p: the effective listeners, as ListenReset and Listen lines that load again."""
    conf = write(str(tmp_path / "m.conf"), ghtest.conf_text(ctx, 3128, extra=[
        "Listen 127.0.0.2:3129"]))
    p = subprocess.run([gh_bin, "-M", "-p", "8123", "-f", conf], capture_output=True, text=True,
                       timeout=20, env=ghtest.clean_env())
    assert p.returncode == 0, p.stderr
    assert p.stdout.endswith("\nListenReset\nListen 127.0.0.1:8123\nListen 127.0.0.2:8123\n"), \
        p.stdout[-300:]
    dumped = write(str(tmp_path / "dumped.conf"), p.stdout)
    rc, out = run_t(gh_bin, dumped)
    assert rc == 0 and "Syntax OK" in out, out


def test_listen_reset_in_conf_d_narrows_the_main_files_listeners(gh_bin, ctx, procs, tmp_path):
    a, b = ghtest.free_port(), ghtest.free_port()
    confd = tmp_path / "conf.d"
    confd.mkdir()
    conf = str(tmp_path / "main.conf")
    write(conf, ghtest.conf_text(ctx, a, extra=["Include %s/*.conf" % confd]))
    write(str(confd / "local.conf"), "ListenReset\nListen 127.0.0.1:%d\n" % b)
    p = Proc(gh_bin, ["-f", conf], str(tmp_path))
    procs.append(p)
    p.wait_listening(b)
    assert not listening(a)
    # Without the reset the two add up.
    write(str(confd / "local.conf"), "Listen 127.0.0.1:%d\n" % b)
    ghtest.sighup_and_wait(p)
    assert ghtest.poll(lambda: listening(a)) and listening(b)
    assert p.stop() == 0, p.stderr()


# ---------------------------------------------------------------- the error log at notice

def shipped_log_level():
    with open(os.path.join(ghtest.REPO, "packaging", "gatehouse.conf")) as f:
        m = re.search(r"^LogLevel (\S+)$", f.read(), re.M)
    assert m, "the shipped config names no LogLevel"
    return m.group(1)


def test_error_log_at_the_shipped_level_has_start_reload_stop_and_the_hit_ratio(
        gh_bin, ctx, procs, tmp_path):
    port = ghtest.free_port()
    root = str(tmp_path / "store")
    elog = str(tmp_path / "error.log")
    alog = str(tmp_path / "access.log")
    conf = write(str(tmp_path / "n.conf"), ghtest.conf_text(ctx, port, access_log=alog, extra=[
        "LogLevel %s" % shipped_log_level(), "ErrorLog %s" % elog, "CacheRoot %s" % root, "CacheSize 64M",
        "CacheEnable lmdb /", "CacheReportInterval 1"]))
    p = Proc(gh_bin, ["-f", conf], str(tmp_path))
    procs.append(p)
    p.wait_listening(port)
    start = ("%s: listening on 127.0.0.1:%d, caching in %s \\(64 MiB\\), access log %s"
             % (VERSION_RE, port, re.escape(root), re.escape(alog)))
    assert ghtest.poll_lines(elog, lambda ln: re.search(r"\[notice\] " + start, ln))
    # The error log is a file: the start line goes to standard error as well.
    assert re.search(start, p.wait_stderr(start)), p.stderr()
    t = tok()
    three_gets(port, ctx, t)
    rep = ghtest.poll_lines(elog, lambda ln: "[notice] cache report: hit ratio 66.7% (2 hits / "
                            "3 requests) since start-up" in ln, timeout=10)
    assert rep and re.search(r"since start-up \(\d+ s\), [\d.]+% \(\d hits / \d requests\) "
                             r"in the last \d+ s; \d+ entries", rep[0]), rep
    # An idle proxy reports nothing more; the next report covers the new requests only.
    n = len(ghtest.poll_lines(elog, lambda ln: "cache report:" in ln, timeout=0))
    time.sleep(2.5)
    assert len(ghtest.poll_lines(elog, lambda ln: "cache report:" in ln, timeout=0)) == n
    r = ghtest.get(port, cache_url(ctx, t))
    assert r.status == 200
    rep = ghtest.poll_lines(elog, lambda ln: "75.0% (3 hits / 4 requests) since start-up" in ln,
                            timeout=10)
    assert rep and "100.0% (1 hits / 1 requests) in the last" in rep[0], rep
    p.proc.send_signal(signal.SIGHUP)
    assert ghtest.poll_lines(elog, lambda ln: "[notice] configuration reloaded from %s" % conf
                             in ln)
    assert p.stop() == 0, p.stderr()
    text = open(elog).read()
    assert "[notice] caught SIGTERM, shutting down gracefully" in text
    assert "[notice] cache closing: hit ratio 75.0% (3 hits / 4 requests) since start-up" in text
    assert text.rstrip("\n").endswith("[notice] stopped"), text[-500:]
    # Nothing per request at notice: the URL never appears.
    assert t not in text, text


# ---------------------------------------------------------------- -t catches what a start refuses

def test_unknown_user_says_how_to_create_it(gh_bin, ctx, tmp_path):
    conf = write(str(tmp_path / "u.conf"), ghtest.conf_text(ctx, 3128, extra=[
        "User gh-no-such-user-ootb"]))
    rc, out = run_t(gh_bin, conf)
    assert rc == 1, out
    assert re.search(re.escape(conf) + r":\d+: User: \"gh-no-such-user-ootb\": no such user: "
                     r"create it \(adduser --system --group gh-no-such-user-ootb\), or name "
                     r"another User", out), out
    try:
        pwd.getpwnam("_gatehouse")
    except KeyError:
        # The shipped file on a source build: the package's user does not exist yet.
        shipped = os.path.join(ghtest.REPO, "packaging", "gatehouse.conf")
        rc, out = run_t(gh_bin, shipped)
        assert rc == 1, out
        assert "\"_gatehouse\": no such user: install the gatehouse package (which creates " \
               "it), create it (adduser --system --group _gatehouse), or name another User" \
               in out, out


def user_conf(ctx, dirpath, name, extra=()):
    """A config for the throwaway user, world-readable in a world-readable directory."""
    return write(os.path.join(dirpath, name), ghtest.conf_text(
        ctx, ghtest.free_port(), extra=["User %s" % TEST_USER] + list(extra)))


def test_config_file_the_user_cannot_read_is_refused_by_t_and_start(gh_bin, ctx, test_user,
                                                                    shared_dir):
    confd = os.path.join(shared_dir, "conf.d")
    os.mkdir(confd, 0o755)
    secret = write(os.path.join(confd, "parent.conf"),
                   "ProxyRemote * http://user:secret@127.0.0.1:1\n", mode=0o600)
    conf = user_conf(ctx, shared_dir, "main.conf", ["Include %s/*.conf" % confd])
    want = ("%s: user %s cannot read it (Permission denied), and the daemon reads its "
            "configuration again as %s on every reload: let group %s read it"
            % (secret, TEST_USER, TEST_USER, TEST_USER))
    rc, out = run_t(gh_bin, conf)
    assert rc == 1 and want in out and "Syntax OK" not in out, out
    rc, out = run_start(gh_bin, conf)
    assert rc == 1 and want in out, out
    # Readable by the daemon's group: accepted.
    os.chown(secret, 0, test_user.pw_gid)
    os.chmod(secret, 0o640)
    rc, out = run_t(gh_bin, conf)
    assert rc == 0 and "Syntax OK" in out, out
    # An Include directory the user cannot list would make a reload skip its files.
    os.chmod(confd, 0o700)
    rc, out = run_t(gh_bin, conf)
    assert rc == 1, out
    assert "%s: user %s cannot list this Include directory (Permission denied)" % (
        confd, TEST_USER) in out, out
    # The main file itself.
    os.chmod(confd, 0o755)
    os.chmod(conf, 0o600)
    rc, out = run_t(gh_bin, conf)
    assert rc == 1 and "%s: user %s cannot read it" % (conf, TEST_USER) in out, out


def test_cache_root_the_user_cannot_write_is_refused_naming_the_user(gh_bin, ctx, test_user,
                                                                     shared_dir):
    root = os.path.join(shared_dir, "rootonly")
    os.mkdir(root, 0o755)  # exists, belongs to root
    conf = user_conf(ctx, shared_dir, "c.conf", ["CacheRoot %s" % root, "CacheEnable lmdb /"])
    line = open(conf).read().splitlines().index("CacheRoot %s" % root) + 1
    want = ("%s:%d: CacheRoot %s: user %s cannot write it (Permission denied; it belongs to "
            "uid 0, mode 0755): give it to that user (chown -R %s %s)"
            % (conf, line, root, TEST_USER, TEST_USER, root))
    rc, out = run_t(gh_bin, conf)
    assert rc == 1 and want in out, out
    rc, out = run_start(gh_bin, conf)
    assert rc == 1 and want in out, out
    # Missing, under a directory the user cannot enter: it could be created, never reached.
    private = os.path.join(shared_dir, "private")
    os.mkdir(private, 0o700)
    conf = user_conf(ctx, shared_dir, "c2.conf", ["CacheRoot %s/a/b" % private,
                                                  "CacheEnable lmdb /"])
    rc, out = run_t(gh_bin, conf)
    assert rc == 1, out
    assert "CacheRoot %s/a/b: user %s cannot reach it (Permission denied)" % (
        private, TEST_USER) in out, out
    assert not os.path.exists(private + "/a")  # -t changes nothing


def test_missing_cache_root_is_created_for_the_user_before_the_drop(gh_bin, ctx, test_user,
                                                                    shared_dir, procs):
    root = os.path.join(shared_dir, "made", "by", "root")
    port = ghtest.free_port()
    conf = write(os.path.join(shared_dir, "m.conf"), ghtest.conf_text(ctx, port, extra=[
        "User %s" % TEST_USER, "CacheRoot %s" % root, "CacheEnable lmdb /"]))
    rc, out = run_t(gh_bin, conf)
    assert rc == 0 and "Syntax OK" in out, out
    assert not os.path.exists(os.path.join(shared_dir, "made"))
    p = Proc(gh_bin, ["-f", conf], shared_dir)
    procs.append(p)
    p.wait_listening(port)
    for d in (os.path.join(shared_dir, "made"), os.path.join(shared_dir, "made", "by"), root):
        st = os.stat(d)
        assert (st.st_uid, st.st_gid) == (test_user.pw_uid, test_user.pw_gid), d
        assert st.st_mode & 0o777 == 0o750, (d, oct(st.st_mode))
    t = tok()
    three_gets(port, ctx, t)
    assert os.stat(os.path.join(root, "data.mdb")).st_uid == test_user.pw_uid
    assert p.stop() == 0, p.stderr()
    # The store now belongs to the user; as root it is refused, naming the file.
    shutil.chown(os.path.join(root, "data.mdb"), "root", "root")
    os.chmod(os.path.join(root, "data.mdb"), 0o600)
    rc, out = run_t(gh_bin, conf)
    assert rc == 1 and "cannot write %s/data.mdb" % root in out, out


def test_hit_ratio_counts_client_requests_not_background_refreshes(gh_bin, ctx, procs, tmp_path):
    """A stale-while-revalidate refresh is the proxy's own internal request: the hit ratio
    counts what clients asked (a miss, a stale hit, a fresh hit: 2 of 3), not the refresh."""
    port = ghtest.free_port()
    elog = str(tmp_path / "error.log")
    conf = write(str(tmp_path / "swr.conf"), ghtest.conf_text(ctx, port, extra=[
        "LogLevel notice", "ErrorLog %s" % elog, "CacheRoot %s" % (tmp_path / "store"),
        "CacheSize 64M", "CacheEnable lmdb /"]))
    p = Proc(gh_bin, ["-f", conf], str(tmp_path))
    procs.append(p)
    p.wait_listening(port)
    t = tok()
    u = ("http://127.0.0.1:%d/cache?t=%s&cc=max-age=1,stale-while-revalidate=60&etag=w1"
         "&size=3000" % (ctx.origin_port, t))
    assert ghtest.get(port, u).status == 200
    time.sleep(2.2)
    r = ghtest.get(port, u)
    assert r.status == 200 and r.header("Cache-Status").startswith("Gatehouse; hit"), r
    # the background refresh reached the origin (a conditional request) and was answered
    assert ghtest.poll(lambda: len(ctx.origin.requests_with(t)) == 2, timeout=5)
    time.sleep(0.3)
    r = ghtest.get(port, u)
    assert r.status == 200 and r.header("Cache-Status").startswith("Gatehouse; hit"), r
    assert p.stop() == 0, p.stderr()
    text = open(elog).read()
    assert "cache closing: hit ratio 66.7% (2 hits / 3 requests) since start-up" in text, text
