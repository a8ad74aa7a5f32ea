"""
ftp_vsftpd.py - a real vsftpd (Debian's) for the FTP gateway tests (issue 12).

Vsftpd runs in the foreground on a free loopback port with its own config file in the test's
directory (under the session work dir, so GH_KEEP_TMP keeps it with the rest):
- an anonymous root (owned by root, mode 0755, as vsftpd wants it) holding the test files, with
  an "incoming" directory the anonymous user may write and overwrite in (PUT tests);
- a log of the FTP protocol (log_ftp_protocol), so a test counts the RETR, SIZE and MDTM
  commands the gateway sent: `server.commands("RETR")`;
- passive ports in a range of free ports picked at start;
- optionally a local user (a throwaway system user with a password, home in the test's
  directory) for the login tests: `local_user()` creates it, and deletes it at teardown even
  when the test fails (and a leftover of an interrupted run before creating it again);
- optionally FTPS (issue 13): `tls=(cert, key)` turns on ssl_enable=YES with that certificate,
  anonymous logins over TLS allowed, logins and data forced onto TLS (force=False leaves them
  optional), require_ssl_reuse=YES (data connections must resume the control connection's
  session) and debug_ssl=YES, so the log shows each TLS handshake (`ssl_log_lines()`). Off by
  default: without it the server is the plain one every FTP test had.

Used by test_ftp_gateway.py through the `vsftpd` and `vsftpd_user` fixtures there.
"""

import contextlib
import os
import pwd
import re
import shutil
import subprocess
import time

import ghtest

VSFTPD = "/usr/sbin/vsftpd"
SECURE_CHROOT = "/var/run/vsftpd/empty"
TEST_USER = "gh-ftp-test"
# A password with characters that need percent-encoding in a URL (':' '@' '%' are not here:
# the tests encode what they use); long enough to be unmistakable in a log.
TEST_PASSWORD = "Ftp-Pw-7q3Zx9"

_CMD_RE = re.compile(r'FTP command: Client "[^"]*", "([A-Z]+)(?: ([^"]*))?"')
_SESSION_RE = re.compile(r'\[pid (\d+)\] (?:\[[^\]]*\] )?FTP (command|response): Client "[^"]*", '
                         r'"(.*)"$', re.M)


def _free_range(n=16, tries=200):
    """n consecutive TCP ports on 127.0.0.1 that are free now (vsftpd's passive ports)."""
    import random
    rnd = random.Random()
    for _ in range(tries):
        base = rnd.randrange(30000, 60000 - n)
        ok = True
        for p in range(base, base + n):
            s = ghtest.socket.socket(ghtest.socket.AF_INET, ghtest.socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            finally:
                s.close()
            if not ok:
                break
        if ok:
            return base, base + n - 1
    raise RuntimeError("no free passive port range")


class Vsftpd:
    """One vsftpd. `root` is the anonymous root; `path(rel)` a file under it."""

    def __init__(self, workdir, name="vsftpd", local_user=None, anonymous=True, v6=False,
                 extra=(), tls=None, force=True):
        self.dir = os.path.join(workdir, "%s-%s" % (name, os.urandom(4).hex()))
        self.root = os.path.join(self.dir, "anon")
        self.log = os.path.join(self.dir, "vsftpd.log")
        self.conf = os.path.join(self.dir, "vsftpd.conf")
        self.out = os.path.join(self.dir, "vsftpd.out")
        self.local_user = local_user  # a pwd entry or None
        self.anonymous = anonymous
        self.v6 = v6  # listen on ::1 only (EPSV/EPRT are the only data commands there)
        self.host = "::1" if v6 else "127.0.0.1"
        self.extra = list(extra)
        self.tls = tls  # (cert, key) or None
        self.force = force
        self.proc = None
        self.port = None
        os.makedirs(self.root)
        # vsftpd (as root, before it drops to the ftp user) and the ftp user inside the chroot
        # both need to reach the root: the work dir above it is 0700.
        os.chmod(self.dir, 0o755)
        os.chmod(self.root, 0o755)
        inc = os.path.join(self.root, "incoming")
        os.mkdir(inc)
        ftp = pwd.getpwnam("ftp")
        os.chown(inc, ftp.pw_uid, ftp.pw_gid)
        os.chmod(inc, 0o755)

    # ---------------------------------------------------------------- files

    def path(self, rel):
        return os.path.join(self.root, rel.lstrip("/"))

    def put_file(self, rel, data, mode=0o644, mtime=None):
        p = self.path(rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, mode)
        if mtime is not None:
            os.utime(p, (mtime, mtime))
        return p

    def mkdir(self, rel, mode=0o755):
        p = self.path(rel)
        os.makedirs(p, exist_ok=True)
        os.chmod(p, mode)
        return p

    # ---------------------------------------------------------------- process

    def _conf_text(self, lo, hi):
        lines = [
            "listen=%s" % ("NO" if self.v6 else "YES"), "listen_ipv6=%s" % (
                "YES" if self.v6 else "NO"),
            "listen_address6=::1" if self.v6 else "listen_address=127.0.0.1",
            "listen_port=%d" % self.port, "background=NO", "seccomp_sandbox=NO",
            "anonymous_enable=%s" % ("YES" if self.anonymous else "NO"),
            "anon_root=%s" % self.root, "no_anon_password=YES",
            "write_enable=YES", "anon_upload_enable=YES", "anon_mkdir_write_enable=NO",
            "anon_other_write_enable=YES", "anon_umask=022",
            "local_enable=%s" % ("YES" if self.local_user else "NO"), "local_umask=022",
            "chroot_local_user=NO", "pam_service_name=vsftpd",
            "pasv_enable=YES", "pasv_min_port=%d" % lo, "pasv_max_port=%d" % hi,
            "port_enable=YES", "connect_from_port_20=NO",
            "secure_chroot_dir=%s" % SECURE_CHROOT, "use_localtime=NO", "mdtm_write=YES",
            "xferlog_enable=YES", "xferlog_std_format=NO", "log_ftp_protocol=YES",
            "vsftpd_log_file=%s" % self.log, "dual_log_enable=NO", "syslog_enable=NO",
            "max_clients=0", "max_per_ip=0", "idle_session_timeout=120",
            "data_connection_timeout=120", "dirmessage_enable=NO", "ftpd_banner=gatehouse test",
        ]
        if self.tls is not None:
            force = "YES" if self.force else "NO"
            lines += [
                "ssl_enable=YES", "rsa_cert_file=%s" % self.tls[0],
                "rsa_private_key_file=%s" % self.tls[1], "allow_anon_ssl=YES",
                "force_anon_logins_ssl=%s" % force, "force_anon_data_ssl=%s" % force,
                "force_local_logins_ssl=%s" % force, "force_local_data_ssl=%s" % force,
                "require_ssl_reuse=YES", "ssl_ciphers=HIGH", "debug_ssl=YES",
            ]
        return "\n".join(lines + self.extra) + "\n"

    def start(self):
        os.makedirs(SECURE_CHROOT, exist_ok=True)
        last = ""
        for _ in range(3):
            self.port = ghtest.free_port(ghtest.socket.AF_INET6, "::1") if self.v6 else \
                ghtest.free_port()
            lo, hi = _free_range()
            self.pasv = (lo, hi)
            with open(self.conf, "w") as f:
                f.write(self._conf_text(lo, hi))
            out = open(self.out, "ab")
            self.proc = subprocess.Popen([VSFTPD, self.conf], stdout=out, stderr=out,
                                         stdin=subprocess.DEVNULL, env=ghtest.clean_env())
            out.close()
            if ghtest.wait_listening(self.host, self.port, time.monotonic() + 10, self.proc):
                # the first connection above is logged as a CONNECT without commands
                return self
            ghtest._kill(self.proc)
            last = self.output()
        raise RuntimeError("vsftpd did not start: %s" % last)

    def output(self):
        try:
            with open(self.out, "rb") as f:
                return f.read().decode("latin-1")[-2000:]
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        # vsftpd forks a process per session: end the sessions too (they are its children).
        if self.proc is None:
            return
        kids = ghtest.children(self.proc.pid)
        ghtest._kill(self.proc)
        for pid in kids:
            for k in ghtest.children(pid) + [pid]:
                with contextlib.suppress(OSError):
                    os.kill(k, 9)

    # ---------------------------------------------------------------- the log

    def log_text(self):
        try:
            with open(self.log, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def ssl_log_lines(self, since=0):
        """The log's lines about TLS after byte offset since (debug_ssl=YES): the control and
        data connections' handshakes ("SSL version: TLSv1.3", "DEBUG: ... SSL_accept")."""
        try:
            with open(self.log, "rb") as f:
                f.seek(since)
                text = f.read().decode("latin-1")
        except OSError:
            return []
        return [ln for ln in text.splitlines() if "SSL" in ln]

    def log_tail(self, n=3000):
        return self.log_text()[-n:]

    def log_mark(self):
        """The log's size now: commands(since=mark) counts only what comes after."""
        try:
            return os.path.getsize(self.log)
        except OSError:
            return 0

    def commands(self, verb=None, since=0):
        """[(VERB, argument)] of the FTP commands the server received (after byte offset
        since), optionally only those of one verb."""
        try:
            with open(self.log, "rb") as f:
                f.seek(since)
                text = f.read().decode("latin-1")
        except OSError:
            return []
        out = []
        for m in _CMD_RE.finditer(text):
            if verb is None or m.group(1) == verb:
                out.append((m.group(1), m.group(2) or ""))
        return out

    def sessions(self):
        """{session pid: [("command"|"response", text)]} in log order: what each control
        connection carried (one vsftpd process per connection)."""
        out = {}
        for m in _SESSION_RE.finditer(self.log_text()):
            out.setdefault(int(m.group(1)), []).append((m.group(2), m.group(3)))
        return out

    def relogins_after_530(self):
        """Control connections on which a USER was sent after a 530 reply to a login (USER or
        PASS): [(pid, dialogue)]. A 530 to AUTH TLS (vsftpd without TLS: "Please login with
        USER and PASS") refuses no login."""
        bad = []
        for pid, lines in self.sessions().items():
            refused = False
            last = ""
            for kind, text in lines:
                if kind == "response" and text.startswith("530") and last in ("USER", "PASS"):
                    refused = True
                elif kind == "command":
                    last = text.split(" ", 1)[0].upper()
                    if last == "USER" and refused:
                        bad.append((pid, lines))
                        break
        return bad

    def wait_commands(self, verb, count, since=0, timeout=10.0):
        """The commands of verb once there are at least count (bounded wait: vsftpd writes its
        log from the session process, a moment after the reply)."""
        return ghtest.poll(lambda: len(self.commands(verb, since)) >= count and
                           self.commands(verb, since), timeout=timeout) or \
            self.commands(verb, since)


# ---------------------------------------------------------------- a local user

def _remove_user():
    subprocess.run(["userdel", TEST_USER], capture_output=True, timeout=30)
    subprocess.run(["groupdel", TEST_USER], capture_output=True, timeout=30)


@contextlib.contextmanager
def local_user(home):
    """A throwaway system user TEST_USER with password TEST_PASSWORD and home `home` (created,
    owned by the user), for vsftpd's local logins (PAM: its shell must be in /etc/shells).
    Removed afterwards, whatever happens."""
    if os.geteuid() != 0:
        import pytest
        pytest.skip("needs root to create a user")
    try:
        pwd.getpwnam(TEST_USER)
        _remove_user()  # a leftover of an interrupted run
    except KeyError:
        pass
    try:
        p = subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                            "--home-dir", home, "--shell", "/bin/sh", TEST_USER],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        p = subprocess.run(["chpasswd"], input="%s:%s\n" % (TEST_USER, TEST_PASSWORD),
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        pw = pwd.getpwnam(TEST_USER)
        os.makedirs(home, exist_ok=True)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        os.chmod(home, 0o755)
        yield pw
    finally:
        _remove_user()
    try:
        pwd.getpwnam(TEST_USER)
        raise AssertionError("test user %s was not removed" % TEST_USER)
    except KeyError:
        pass


def remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)
