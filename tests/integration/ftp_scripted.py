"""
ftp_scripted.py - the pyftpdlib server of the FTP gateway's tests (issues 12 and 13): well
behaved by default, misbehaving on purpose when asked. It is Debian's python3-pyftpdlib with a
handler subclass whose logins and faults the test chooses on the command line, run in its own
process (ScriptedFTP starts and stops it) on a loopback port the kernel picks, so a stuck or
hostile server never blocks the test itself. test_ftp_smoke.py, test_ftp_config.py,
test_ftp_faults.py and test_ftps.py use it.

Logins:
  (default)           anonymous, read-only, rooted at --root
  --anon-home DIR     anonymous is rooted at --root/DIR instead; --anon-perm PERM its rights
                      (pyftpdlib's letters, default "elr")
  --user U:P[:HOME[:PERM]]  a login, rooted at --root/HOME (default --root), with PERM
                      (default: every right); repeatable
  --no-anonymous      anonymous gets 530 (after --auth-delay s)
  --idle-timeout S    an idle control connection is closed after S seconds (default 120)
  --tls CERT:KEY      AUTH TLS, PBSZ and PROT (pyftpdlib's TLS_FTPHandler) with this
                      certificate; data connections after PROT P are TLS with it too

Faults (any combination):
  --refuse CMD        the command is unknown to the server (500) and not announced in FEAT:
                      MLST+MLSD (LIST is used), EPSV (PASV is used), EPSV+PASV (only active
                      EPRT/PORT works), EPRT+PORT
  --pasv-address IP   the 227 reply names IP instead of the control connection's address (a
                      bounce attempt); a decoy listens on IP at the same port, answers
                      "BOUNCED" and logs "DECOY" for every connection it gets
  --pasv-reply TEXT   the 227 reply is TEXT (a malformed one)
  --stall-after N     RETR sends N bytes, then nothing more (the data connection stays open)
  --drop-after N      RETR sends N bytes, then the server drops the data and control
                      connections without a reply
  --short-after N     RETR sends N bytes, closes the data connection and claims 226 anyway
  --endless-line AT   at AT ("greeting" or a command name) the server sends one line that never
                      ends; --endless-reply AT: a multi-line reply that never ends
  --endless-listing   LIST and MLSD send a listing that never ends; --endless-listing-line:
                      a listing whose first line never ends
  --greeting-421      the greeting is 421 and the server hangs up
  --silent-at AT      at AT ("greeting" or a command name) the server says nothing, ever
  --data-fault KIND   RETR's data connection fails before its first byte, --data-delay s
                      (default 0.5) after the 1xx reply (so a client has read the 1xx first):
                      "reset" (a TCP reset, then 426), "close" (closed, then 426), or, with
                      --tls, "cert:CERT:KEY" (its TLS handshake starts only then, presenting
                      that certificate from a context of its own, so no session resumes and
                      the client has to check it). With --tls and --data-fault, data
                      connections are TLS only from the fault on: serve RETR only.
Everything endless stops at a cap (--cap BYTES, default 256 MiB) or when the peer goes away.

The server logs, one line each, what it received ("<- RETR name", passwords masked), what it
answered ("-> 226 ..."), the logins it was asked for with the password it was given ("LOGIN
user password") and those it accepted ("LOGGED IN user"), the files it sent whole ("SENT
/path", relative to --root), the data connections ("DATA from ip:port"), the faults ("FAULT
..."), and decoy hits ("DECOY from ip:port") to --log; ScriptedFTP.commands() and .events()
read it back.
"""

import argparse
import os
import select
import socket
import struct
import subprocess
import sys
import threading
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))


# ----------------------------------------------------------------------------- the test side

class ScriptedFTP:
    """Starts ftp_scripted.py in a subprocess serving root; .port, .log, .commands(),
    .stop(). Use as a context manager or call stop() (a fixture does)."""

    def __init__(self, root, log, args=()):
        self.root = root
        self.log = log
        self.args = list(args)
        self.proc = None
        self.port = None

    def start(self, timeout=20.0):
        open(self.log, "w").close()
        cmd = ["/usr/bin/python3", os.path.join(HERE, "ftp_scripted.py"), "--root", self.root,
               "--log", self.log] + self.args
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                line = self.proc.stdout.readline()
                break
            if self.proc.poll() is not None:
                break
        if not line.startswith(b"READY "):
            rest = b""
            if self.proc.poll() is not None:
                rest = self.proc.stdout.read()
            self.stop()
            raise RuntimeError("ftp_scripted did not start: %r" % (line + rest))
        self.port = int(line.split()[1])
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()

    def lines(self):
        with open(self.log, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()

    def commands(self, name=None):
        """The commands received, as (NAME, argument) in order; only NAME's when given."""
        out = []
        for ln in self.lines():
            if ln.startswith("<- "):
                parts = ln[3:].split(" ", 1)
                c = (parts[0].upper(), parts[1] if len(parts) > 1 else "")
                if name is None or c[0] == name:
                    out.append(c)
        return out

    def events(self, prefix):
        return [ln for ln in self.lines() if ln.startswith(prefix)]


# ----------------------------------------------------------------------------- the server side

def _serve(opts):
    # Imported here: the test side above needs only the standard library.
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import DTPHandler, FTPHandler, TLS_DTPHandler, TLS_FTPHandler
    from pyftpdlib.servers import FTPServer

    FTPBase = TLS_FTPHandler if opts.tls else FTPHandler
    DTPBase = TLS_DTPHandler if opts.tls else DTPHandler

    lock = threading.Lock()
    logf = open(opts.log, "a", encoding="utf-8")

    def log(s):
        with lock:
            logf.write(s.replace("\r", "\\r").replace("\n", "\\n")[:400] + "\n")
            logf.flush()

    refused = set(c.upper() for c in opts.refuse)
    cap = opts.cap

    class Endless:
        """A producer of `unit` over and over up to the cap (asynchat pulls it as the socket
        drains, so memory stays bounded)."""

        def __init__(self, unit, head=b""):
            self.unit = unit * max(1, 65536 // len(unit))
            self.head = head
            self.sent = 0

        def more(self):
            if self.head:
                h, self.head = self.head, b""
                return h
            if self.sent >= cap:
                return b""
            self.sent += len(self.unit)
            return self.unit

    class ListingProducer:
        def __init__(self):
            self.sent = 0
            self.n = 0

        def more(self):
            if self.sent >= cap:
                return b""
            out = []
            for _ in range(500):
                self.n += 1
                out.append(b"-rw-r--r--   1 ftp      ftp          1234 Jan 02  2020 "
                           b"never-ending-%09d.txt\r\n" % self.n)
            data = b"".join(out)
            self.sent += len(data)
            return data

    decoys = []

    def decoy_loop():
        while True:
            socks = list(decoys)
            if not socks:
                time.sleep(0.05)
                continue
            r, _, _ = select.select(socks, [], [], 0.1)
            for s in r:
                try:
                    c, peer = s.accept()
                except OSError:
                    continue
                log("DECOY from %s:%d" % peer[:2])
                try:
                    c.sendall(b"BOUNCED\r\n")
                finally:
                    c.close()

    def add_decoy(port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((opts.pasv_address, port))
        s.listen(8)
        decoys.append(s)
        log("DECOY listening on %s:%d" % (opts.pasv_address, port))

    if opts.pasv_address:
        threading.Thread(target=decoy_loop, daemon=True).start()

    class FaultDTP(DTPBase):
        """Data connection that cuts a RETR after opts' byte count (stall, drop, short)."""

        def __init__(self, sock, cmd_channel):
            if opts.tls and opts.data_fault:
                # no TLS yet: Handler._data_fault starts it (TLS_DTPHandler's own __init__
                # would start it now). Off the loop until then: the client's ClientHello
                # would look like a hang-up to DTPHandler.readable(), which closes
                super(TLS_DTPHandler, self).__init__(sock, cmd_channel)
                if not self._closed:
                    self.del_channel()
            else:
                super().__init__(sock, cmd_channel)
            self._stalled = False
            try:
                log("DATA from %s:%d" % sock.getpeername()[:2])
            except OSError:
                pass

        def _limit(self):
            # only a RETR hands the channel a file to send
            if self.file_obj is None or self.receive:
                return None
            for n in (opts.stall_after, opts.drop_after, opts.short_after):
                if n is not None:
                    return n
            return None

        def send(self, data):
            limit = self._limit()
            if limit is None:
                return super().send(data)
            room = limit - self.tot_bytes_sent
            if room <= 0:
                self._fault()
                return 0
            n = super().send(data[:room])
            if self.tot_bytes_sent >= limit:
                self._fault()
            return n

        def _fault(self):
            if self._stalled:
                return
            self._stalled = True
            if opts.stall_after is not None:
                log("FAULT stall after %d bytes" % self.tot_bytes_sent)
                return
            if opts.drop_after is not None:
                log("FAULT drop after %d bytes" % self.tot_bytes_sent)
                self._resp = None
                ctl = self.cmd_channel
                self.producer_fifo.clear()
                self.ac_out_buffer = b""
                self.close()
                ctl.close()
                return
            log("FAULT short 226 after %d bytes" % self.tot_bytes_sent)
            self._resp = ("226 Transfer complete.", None)
            self.producer_fifo.clear()
            self.ac_out_buffer = b""
            self.close()

        def writable(self):
            return not self._stalled and super().writable()

        def close(self):
            if self._resp and self._resp[1] is None:
                # our own reply: respond() wants a log function
                self._resp = (self._resp[0], lambda *a, **k: None)
            super().close()

    def data_context():
        from OpenSSL import SSL
        cert, key = opts.data_fault.split(":", 2)[1:]
        ctx = SSL.Context(SSL.TLS_METHOD)
        ctx.use_certificate_chain_file(cert)
        ctx.use_privatekey_file(key)
        return ctx

    proto = {k: v for k, v in FTPBase.proto_cmds.items() if k not in refused}

    class Handler(FTPBase):
        proto_cmds = proto
        dtp_handler = FaultDTP
        use_sendfile = False
        banner = "ftp_scripted ready."

        def handle(self):
            if opts.greeting_421:
                self.respond("421 Service not available, closing control connection "
                             "(scripted maintenance).")
                self.close_when_done()
                return
            if opts.silent_at == "greeting":
                self.on_connect()
                log("FAULT silent")
                return
            if opts.endless_line == "greeting" or opts.endless_reply == "greeting":
                self.on_connect()
                self._endless()
                return
            FTPBase.handle(self)

        def _endless(self):
            if opts.endless_line:
                log("FAULT endless line")
                self.push_with_producer(Endless(b"x", b"220 "))
            else:
                log("FAULT endless reply")
                self.push_with_producer(Endless(b"220-this reply never ends\r\n"))

        def pre_process_command(self, line, cmd, arg):
            log("<- %s" % (line if cmd != "PASS" else "PASS ******"))
            if opts.silent_at and cmd == opts.silent_at.upper():
                log("FAULT silent")
                return
            at = (opts.endless_line or opts.endless_reply or "").upper()
            if at and cmd == at:
                self._endless()
                return
            return FTPBase.pre_process_command(self, line, cmd, arg)

        def respond(self, resp, logfun=None):
            if opts.pasv_reply and resp.startswith("227 "):
                resp = opts.pasv_reply
            log("-> %s" % resp)
            if opts.pasv_address and resp.startswith("227 "):
                nums = resp[resp.index("(") + 1:resp.index(")")].split(",")
                port = int(nums[4]) * 256 + int(nums[5])
                add_decoy(port)
            if logfun is None:
                FTPBase.respond(self, resp)
            else:
                FTPBase.respond(self, resp, logfun)

        def on_login(self, username):
            log("LOGGED IN %s" % username)

        def on_file_sent(self, file):
            log("SENT /%s" % os.path.relpath(file, opts.root))

        def push_dtp_data(self, data, isproducer=False, file=None, cmd=None):
            if cmd != "RETR" or not opts.data_fault:
                return FTPBase.push_dtp_data(self, data, isproducer, file, cmd)
            # the 1xx now, the fault later: by then the client has read the 1xx
            self.respond("150 File status okay. About to open data connection.")
            self.ioloop.call_later(opts.data_delay, self._data_fault, data, file, 0)

        def _data_fault(self, data, file, tries):
            dc = self.data_channel
            if dc is None:
                # the client has not connected yet: wait for it (bounded)
                if tries < 200 and self.connected:
                    self.ioloop.call_later(0.05, self._data_fault, data, file, tries + 1)
                elif file is not None:
                    file.close()
                return
            kind = opts.data_fault.split(":")[0]
            log("FAULT data %s" % kind)
            dc.file_obj = file
            dc.cmd = "RETR"
            if kind in ("reset", "close"):
                if kind == "reset":
                    dc.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                         struct.pack("ii", 1, 0))
                dc._resp = ("426 Data connection %s by the script; transfer aborted." %
                            ("reset" if kind == "reset" else "closed"), None)
                dc.close()
                return
            dc.secure_connection(data_context())
            dc.push_with_producer(data)
            dc.close_when_done()

        def _endless_listing(self, cmd):
            if opts.endless_listing_line:
                log("FAULT endless listing line")
                self.push_dtp_data(Endless(b"x", b"-rw-r--r-- 1 ftp ftp 1 Jan 02 2020 "),
                                   isproducer=True, cmd=cmd)
                return True
            return False

        def ftp_LIST(self, path):
            if self._endless_listing("LIST"):
                return path
            if opts.endless_listing:
                log("FAULT endless listing")
                self.push_dtp_data(ListingProducer(), isproducer=True, cmd="LIST")
                return path
            return FTPBase.ftp_LIST(self, path)

        def ftp_MLSD(self, path):
            if self._endless_listing("MLSD"):
                return path
            if opts.endless_listing:
                log("FAULT endless listing")
                self.push_dtp_data(ListingProducer(), isproducer=True, cmd="MLSD")
                return path
            return FTPBase.ftp_MLSD(self, path)

    if opts.pasv_address:
        Handler.masquerade_address = opts.pasv_address

    class Authorizer(DummyAuthorizer):
        def validate_authentication(self, username, password, handler):
            log("LOGIN %s %s" % (username, password))
            return DummyAuthorizer.validate_authentication(self, username, password, handler)

    auth = Authorizer()
    # --anon-perm with "w" is on purpose (the PUT tests); pyftpdlib would warn on the output
    # ScriptedFTP reads its READY line from
    warnings.filterwarnings("ignore", "write permissions assigned to anonymous user")
    if not opts.no_anonymous:
        auth.add_anonymous(os.path.join(opts.root, opts.anon_home) if opts.anon_home
                           else opts.root, perm=opts.anon_perm)
    for spec in opts.user:
        parts = spec.split(":", 3)
        home = os.path.join(opts.root, parts[2]) if len(parts) > 2 else opts.root
        auth.add_user(parts[0], parts[1], home,
                      perm=parts[3] if len(parts) > 3 else "elradfmwMT")
    Handler.authorizer = auth
    Handler.timeout = opts.idle_timeout
    if opts.tls:
        Handler.certfile, Handler.keyfile = opts.tls.split(":", 1)
    # pyftpdlib waits 3 s before a 530 (vsftpd 1 s): less than the tests' ProxyTimeout
    Handler.auth_failed_timeout = opts.auth_delay
    FaultDTP.timeout = 120

    server = FTPServer(("127.0.0.1", opts.port), Handler)
    server.max_cons = 64
    port = server.socket.getsockname()[1]
    sys.stdout.write("READY %d\n" % port)
    sys.stdout.flush()
    server.serve_forever(handle_exit=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--refuse", action="append", default=[])
    ap.add_argument("--pasv-address")
    ap.add_argument("--pasv-reply")
    ap.add_argument("--stall-after", type=int)
    ap.add_argument("--drop-after", type=int)
    ap.add_argument("--short-after", type=int)
    ap.add_argument("--endless-line")
    ap.add_argument("--endless-reply")
    ap.add_argument("--endless-listing", action="store_true")
    ap.add_argument("--endless-listing-line", action="store_true")
    ap.add_argument("--greeting-421", action="store_true")
    ap.add_argument("--silent-at")
    ap.add_argument("--user", action="append", default=[])
    ap.add_argument("--no-anonymous", action="store_true")
    ap.add_argument("--anon-home", default="")
    ap.add_argument("--anon-perm", default="elr")
    ap.add_argument("--idle-timeout", type=float, default=120)
    ap.add_argument("--tls")
    ap.add_argument("--data-fault")
    ap.add_argument("--data-delay", type=float, default=0.5)
    ap.add_argument("--auth-delay", type=float, default=0.5)
    ap.add_argument("--cap", type=int, default=256 << 20)
    opts = ap.parse_args(argv)
    import logging
    logging.basicConfig(level=logging.ERROR)
    _serve(opts)


if __name__ == "__main__":
    main()
