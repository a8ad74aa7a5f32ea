"""
ldapfix.py - a throwaway LDAP directory (Debian's slapd) for the proxy-authentication tests
(issue 14): the directory an office's basic_ldap_auth would ask.

slapd runs in the foreground as the current user on a free loopback port
(ldap://127.0.0.1:PORT/), from a slapd.conf in the test's directory (under the session work
dir, so GH_KEEP_TMP keeps it): the mdb backend in that directory, suffix dc=corp,dc=example,
a rootdn with its password, Debian's schema files read from /etc/ldap/schema (nothing under
/etc is written), anonymous search allowed (basic_ldap_auth -f searches anonymously before it
binds as the user) and userPassword readable by nobody, usable only to bind.

Seeded with ldapadd: ou=people with alice and bob (userPassword hashed {SSHA} by slappasswd,
so the directory never holds a clear password), ou=groups with staff (alice, bob) and hr
(alice). slapd logs at "stats" level into slapd.log: `binds("alice")` counts the BINDs made
as that user, which is how a test proves whether a request reached the directory.

Used by test_auth_ldap.py through its `slapd` fixture.
"""

import os
import shutil
import signal
import subprocess
import time

import ghtest

SLAPD = "/usr/sbin/slapd"
SLAPPASSWD = "/usr/sbin/slappasswd"
LDAPADD = "/usr/bin/ldapadd"
LDAPSEARCH = "/usr/bin/ldapsearch"
SCHEMA_DIR = "/etc/ldap/schema"
MODULE_DIR = "/usr/lib/ldap"

SUFFIX = "dc=corp,dc=example"
ROOTDN = "cn=admin," + SUFFIX
ROOTPW = "Root-Pw-4k8Qz"
USERS = {"alice": "Alice-Pw-7x2", "bob": "Bob pw with blanks & %"}
GROUPS = {"staff": ["alice", "bob"], "hr": ["alice"]}


def available():
    """Are slapd, its mdb module and the LDAP tools installed?"""
    return (all(os.access(p, os.X_OK) for p in (SLAPD, SLAPPASSWD, LDAPADD, LDAPSEARCH)) and
            os.path.exists(os.path.join(MODULE_DIR, "back_mdb.so")) and
            os.path.exists(os.path.join(SCHEMA_DIR, "inetorgperson.schema")))


def user_dn(uid):
    return "uid=%s,ou=people,%s" % (uid, SUFFIX)


class Slapd:
    """One slapd. `url` is its ldap:// address, `port` its port."""

    def __init__(self, workdir, name="slapd"):
        self.dir = os.path.join(workdir, "%s-%s" % (name, os.urandom(4).hex()))
        self.db = os.path.join(self.dir, "db")
        self.conf = os.path.join(self.dir, "slapd.conf")
        self.log = os.path.join(self.dir, "slapd.log")
        self.port = None
        self.url = None
        self.proc = None

    # ---------------------------------------------------------------- setup

    def _hash(self, password):
        out = subprocess.run([SLAPPASSWD, "-h", "{SSHA}", "-s", password], check=True,
                             capture_output=True, timeout=30)
        h = out.stdout.decode().strip()
        assert h.startswith("{SSHA}"), h
        return h

    def _write_conf(self):
        os.makedirs(self.db, exist_ok=True)
        schemas = ["core", "cosine", "inetorgperson", "nis"]
        lines = ["include %s/%s.schema" % (SCHEMA_DIR, s) for s in schemas]
        lines += [
            "pidfile %s" % os.path.join(self.dir, "slapd.pid"),
            "modulepath %s" % MODULE_DIR,
            "moduleload back_mdb",
            "loglevel stats",
            "database mdb",
            "maxsize 16777216",
            'suffix "%s"' % SUFFIX,
            'rootdn "%s"' % ROOTDN,
            "rootpw %s" % self._hash(ROOTPW),
            "directory %s" % self.db,
            "index uid eq",
            # the password only to bind with; the rest readable by anyone (the helper's search)
            "access to attrs=userPassword by anonymous auth by * none",
            "access to * by * read",
        ]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _seed_ldif(self):
        out = ["dn: %s" % SUFFIX, "objectClass: dcObject", "objectClass: organization",
               "dc: corp", "o: Corp", "",
               "dn: ou=people,%s" % SUFFIX, "objectClass: organizationalUnit", "ou: people", "",
               "dn: ou=groups,%s" % SUFFIX, "objectClass: organizationalUnit", "ou: groups", ""]
        for i, (uid, pw) in enumerate(sorted(USERS.items())):
            out += ["dn: %s" % user_dn(uid), "objectClass: inetOrgPerson",
                    "objectClass: posixAccount", "uid: %s" % uid, "cn: %s" % uid.title(),
                    "sn: %s" % uid.title(), "uidNumber: %d" % (20000 + i),
                    "gidNumber: 20000", "homeDirectory: /nonexistent",
                    "userPassword: %s" % self._hash(pw), ""]
        for cn, members in sorted(GROUPS.items()):
            out += ["dn: cn=%s,ou=groups,%s" % (cn, SUFFIX), "objectClass: groupOfNames",
                    "cn: %s" % cn] + ["member: %s" % user_dn(m) for m in members] + [""]
        return "\n".join(out)

    # ---------------------------------------------------------------- lifetime

    def start(self):
        self._write_conf()
        for _ in range(3):
            self.port = ghtest.free_port()
            self.url = "ldap://127.0.0.1:%d/" % self.port
            log = open(self.log, "ab")
            # -d stats: foreground, the stats log (connections, BINDs, searches) on stderr
            self.proc = subprocess.Popen([SLAPD, "-d", "stats", "-h", self.url, "-f", self.conf],
                                         stdout=log, stderr=log, stdin=subprocess.DEVNULL)
            log.close()
            if self._wait_ready(time.monotonic() + 20):
                break
            ghtest._kill(self.proc)
        else:
            raise RuntimeError("slapd did not start: %s" % self.log_text()[-2000:])
        ldif = os.path.join(self.dir, "seed.ldif")
        with open(ldif, "w") as f:
            f.write(self._seed_ldif())
        r = subprocess.run([LDAPADD, "-x", "-H", self.url, "-D", ROOTDN, "-w", ROOTPW, "-f", ldif],
                           capture_output=True, timeout=30)
        if r.returncode != 0:
            self.stop()
            raise RuntimeError("ldapadd failed: %s" % r.stderr.decode("latin-1"))
        return self

    def _wait_ready(self, deadline):
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            r = subprocess.run([LDAPSEARCH, "-x", "-H", self.url, "-s", "base", "-b", "",
                                "-o", "nettimeout=2", "namingContexts"],
                               capture_output=True, timeout=10)
            if r.returncode == 0:
                return True
            time.sleep(0.1)
        return False

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    self.proc.send_signal(signal.SIGCONT)  # a test may have stopped it
                except OSError:
                    pass
            ghtest._kill(self.proc)

    def cleanup(self):
        self.stop()
        if not os.environ.get("GH_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---------------------------------------------------------------- what it saw

    def log_text(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("latin-1", "replace")
        except OSError:
            return ""

    def binds(self, uid):
        """BIND operations made as uid so far (slapd's stats log)."""
        needle = 'BIND dn="%s"' % user_dn(uid)
        return sum(1 for ln in self.log_text().splitlines() if needle in ln)

    def check_password(self, uid, password):
        """Bind as uid with ldapsearch's simple bind: does the directory accept password?"""
        r = subprocess.run([LDAPSEARCH, "-x", "-H", self.url, "-D", user_dn(uid), "-w", password,
                            "-b", user_dn(uid), "-s", "base", "uid"],
                           capture_output=True, timeout=30)
        return r.returncode == 0
