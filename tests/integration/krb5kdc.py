"""
krb5kdc.py - a throwaway Kerberos realm on loopback for the Negotiate tests (issue 14).

Debian's krb5-kdc runs in the foreground (`krb5kdc -n`) on a free loopback port, UDP and TCP,
with every file in the test's directory: kdc.conf (KRB5_KDC_PROFILE), krb5.conf
(KRB5_CONFIG), the database made with `kdb5_util create -s`, its stash, the KDC's log. Nothing
under /etc is read or written: every tool started here gets the environment env() returns.

- principals are added with `kadmin.local` (add_user with a password, add_service with a
  random key exported to a keytab with ktadd);
- kinit(user, password, ccache) gets a ticket into FILE:ccache, the password on stdin;
- env(ccache=...) is the environment for a client (curl) or for the daemon that runs
  negotiate_kerberos_auth: KRB5_CONFIG, KRB5_KTNAME, KRB5CCNAME, and KRB5RCACHEDIR (the
  acceptor's replay cache stays in the test's directory, not /var/tmp).

krb5.conf sets rdns = false and dns_canonicalize_hostname = false, so curl's SPN for a proxy
named "localhost" is HTTP@localhost -> HTTP/localhost@REALM, and maps localhost to the realm.
`extra_realms` adds other KDCs to the same krb5.conf (a client in another realm).

Used by test_auth_negotiate.py through its `kdc` fixture.
"""

import os
import shutil
import signal
import subprocess
import time

import ghtest

KRB5KDC = "/usr/sbin/krb5kdc"
KDB5_UTIL = "/usr/sbin/kdb5_util"
KADMIN_LOCAL = "/usr/sbin/kadmin.local"
KINIT = "/usr/bin/kinit"
KLIST = "/usr/bin/klist"
NEGOTIATE_HELPER = "/usr/lib/squid/negotiate_kerberos_auth"
MASTER_PW = "gh-kdc-master-pw"


def available():
    """None when the tools are installed, else what is missing."""
    missing = [p for p in (KRB5KDC, KDB5_UTIL, KADMIN_LOCAL, KINIT, NEGOTIATE_HELPER)
               if not os.access(p, os.X_OK)]
    return ("missing: " + " ".join(missing)) if missing else None


class Kdc:
    """One realm with its own KDC process. start() creates the database and waits until the
    KDC answers on its TCP port; stop() kills it."""

    def __init__(self, workdir, realm="GATEHOUSE.TEST", host_realm="localhost",
                 name="kdc"):
        self.realm = realm
        self.host_realm = host_realm  # which host names map to this realm (domain_realm)
        self.dir = os.path.join(workdir, "%s-%s" % (name, os.urandom(4).hex()))
        self.port = None
        self.proc = None
        self.krb5_conf = os.path.join(self.dir, "krb5.conf")
        self.kdc_conf = os.path.join(self.dir, "kdc.conf")
        self.log = os.path.join(self.dir, "kdc.log")
        self.out = os.path.join(self.dir, "kdc.out")
        self.rcache = os.path.join(self.dir, "rcache")
        self.keytab = os.path.join(self.dir, "http.keytab")
        self.others = []  # other Kdc objects this krb5.conf knows (see add_realm)

    # ------------------------------------------------------------ files

    def _write_krb5_conf(self):
        realms = [self] + self.others
        lines = ["[libdefaults]",
                 " default_realm = %s" % self.realm,
                 " rdns = false",
                 " dns_canonicalize_hostname = false",
                 " dns_lookup_kdc = false",
                 " dns_lookup_realm = false",
                 " udp_preference_limit = 1",   # TCP: no UDP retransmission timing
                 " ignore_acceptor_hostname = false",
                 "[realms]"]
        for k in realms:
            lines += [" %s = {" % k.realm, "  kdc = 127.0.0.1:%d" % k.port, " }"]
        lines += ["[domain_realm]", " %s = %s" % (self.host_realm, self.realm)]
        with open(self.krb5_conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _write_kdc_conf(self):
        text = """[kdcdefaults]
 kdc_ports = {port}
 kdc_tcp_ports = {port}
[realms]
 {realm} = {{
  database_name = {dir}/principal
  key_stash_file = {dir}/stash
  acl_file = {dir}/kadm5.acl
  kdc_listen = 127.0.0.1:{port}
  kdc_tcp_listen = 127.0.0.1:{port}
  max_life = 10h 0m 0s
 }}
[logging]
 kdc = FILE:{log}
""".format(port=self.port, realm=self.realm, dir=self.dir, log=self.log)
        with open(self.kdc_conf, "w") as f:
            f.write(text)

    def add_realm(self, other):
        """Let clients using this krb5.conf reach another (started) realm too."""
        self.others.append(other)
        self._write_krb5_conf()

    # ------------------------------------------------------------ process

    def env(self, ccache=None, **extra):
        """The environment for a Kerberos client or acceptor of this realm."""
        e = ghtest.clean_env(KRB5_CONFIG=self.krb5_conf, KRB5_KDC_PROFILE=self.kdc_conf,
                             KRB5_KTNAME="FILE:" + self.keytab, KRB5RCACHEDIR=self.rcache)
        if ccache:
            e["KRB5CCNAME"] = "FILE:" + ccache
        e.update(extra)
        return e

    def _run(self, argv, stdin=None, timeout=30):
        r = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=self.env(), timeout=timeout, text=True)
        if r.returncode != 0:
            raise RuntimeError("%s failed (exit %d): %s" % (" ".join(argv), r.returncode,
                                                             r.stdout[-2000:]))
        return r.stdout

    def start(self):
        os.makedirs(self.rcache, exist_ok=True)
        self.port = ghtest.free_port(udp_too=True)
        self._write_kdc_conf()
        self._write_krb5_conf()
        with open(os.path.join(self.dir, "kadm5.acl"), "w") as f:
            f.write("")
        self._run([KDB5_UTIL, "create", "-s", "-r", self.realm, "-P", MASTER_PW])
        out = open(self.out, "ab")
        self.proc = subprocess.Popen([KRB5KDC, "-n", "-r", self.realm], stdout=out,
                                     stderr=out, stdin=subprocess.DEVNULL, env=self.env(),
                                     cwd=self.dir)
        out.close()
        if not ghtest.wait_listening("127.0.0.1", self.port, time.monotonic() + 20, self.proc):
            rc = self.proc.poll()
            self.stop()
            raise RuntimeError("krb5kdc not listening on 127.0.0.1:%d (exit %s): %s"
                               % (self.port, rc, self.output()))
        return self

    def output(self):
        return ghtest.tail_files((self.out, self.log))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    # ------------------------------------------------------------ principals and tickets

    def kadmin(self, query):
        return self._run([KADMIN_LOCAL, "-r", self.realm, "-q", query])

    def add_user(self, name, password):
        self.kadmin("addprinc -pw %s %s" % (password, name))
        return "%s@%s" % (name, self.realm)

    def add_service(self, name="HTTP/localhost", keytab=None):
        """A service principal with a random key, exported to keytab (default self.keytab)."""
        keytab = keytab or self.keytab
        self.kadmin("addprinc -randkey %s" % name)
        self.kadmin("ktadd -k %s %s" % (keytab, name))
        return keytab

    def kinit(self, user, password, ccache, lifetime=None):
        """A TGT for user into FILE:ccache (the password on stdin, as a person types it)."""
        argv = [KINIT]
        if lifetime:
            argv += ["-l", lifetime]
        argv.append(user)
        r = subprocess.run(argv, input=password + "\n", stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=self.env(ccache), timeout=30,
                           text=True)
        if r.returncode != 0:
            raise RuntimeError("kinit %s failed: %s" % (user, r.stdout))
        return ccache

    def klist(self, ccache):
        r = subprocess.run([KLIST, "-c", "FILE:" + ccache], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=self.env(ccache), timeout=30,
                           text=True)
        return r.stdout

    def remove(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
