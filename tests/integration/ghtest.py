"""
ghtest.py - helpers for the Gatehouse integration suite: free ports, a strict raw-socket HTTP/1.1
client, the dnsmasq and gatehouse process wrappers, config text, access-log polling,
process-tree memory sampling and SIGHUP-and-wait. Used by conftest.py and the test_*.py files;
stdlib only.

Invariants: every socket has a timeout, every wait has a deadline, every process started here
is killed by its stop() (and conftest's teardown calls stop()).
"""

import contextlib
import errno
import http.client
import os
import re
import signal
import socket
import subprocess
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DNSMASQ = "/usr/sbin/dnsmasq"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "ERROR: ThreadSanitizer", "AddressSanitizer:DEADLYSIGNAL")


def gh_binary():
    """The daemon under test: $GH_BIN, else build/gatehouse in the repository."""
    return os.environ.get("GH_BIN") or os.path.join(REPO, "build", "gatehouse")


def is_sanitized(path):
    """Was the binary built with ASan? (it is much bigger in memory)"""
    if "/san/" in path:
        return True
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def clean_env(**extra):
    """The environment for child processes: no proxy variables leaking in from outside."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(extra)
    return env


# ---------------------------------------------------------------- ports

# Ports this test process has handed out.  The kernel may hand the same ephemeral port out
# again once it is closed, so a port given to one fixture could come back as another's listener
# (CI once saw a test's "dead parent" port become the daemon's own listener).  Remembering them
# makes every port unique within a run.
_handed_out = set()

# Sockets bound, never listening, that hold the refused ports for the life of the process: a
# connect() to them is refused, and nothing else can bind them meanwhile.
_refusers = []


def _fresh(port):
    if port in _handed_out:
        return False
    if len(_handed_out) > 16000:       # a very long run: forget the oldest half of the range
        _handed_out.clear()
    _handed_out.add(port)
    return True


def free_port(family=socket.AF_INET, host="127.0.0.1", udp_too=False):
    """A port the kernel just handed out (free for TCP, and for UDP when udp_too), never one
    this process handed out before."""
    for _ in range(200):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, 0))
        port = s.getsockname()[1]
        ok = port not in _handed_out
        if ok and udp_too:
            u = socket.socket(family, socket.SOCK_DGRAM)
            try:
                u.bind((host, port))
            except OSError:
                ok = False
            u.close()
        s.close()
        if ok and _fresh(port):
            return port
    raise RuntimeError("no free port")


def refused_port():
    """A port where nobody listens: a socket stays bound to it without listen() for the rest of
    the process, so connections are refused and no later listener can take the port over."""
    for _ in range(200):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        if _fresh(port):
            _refusers.append(s)
            if len(_refusers) > 400:
                _refusers.pop(0).close()
            return port
        s.close()
    raise RuntimeError("no free port")


def revive_port(port):
    """Let go of a port refused_port() holds, for a test that brings a dead peer back to life
    on it."""
    for s in list(_refusers):
        if s.getsockname()[1] == port:
            _refusers.remove(s)
            s.close()


def ipv6_loopback_ok():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def can_connect(host, port, timeout=0.5):
    """One connect() attempt."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def wait_listening(host, port, deadline, proc=None):
    """Poll connect() until it succeeds; False at the deadline or when proc has exited."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(0.5)
        try:
            s.connect((host, port))
            return True
        except OSError:
            time.sleep(0.05)
        finally:
            s.close()
    return False


# ---------------------------------------------------------------- HTTP client

class Response:
    def __init__(self):
        self.version = None
        self.status = None
        self.reason = ""
        self.headers = []     # [name, value] in order
        self.body = b""
        self.chunked = False
        self.interim = []     # statuses of 1xx responses seen before this one
        self.head_raw = b""

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def headers_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def text(self):
        return self.body.decode("latin-1")

    def __repr__(self):
        return "<Response %s %s %r body=%d bytes: %r>" % (
            self.status, self.reason, self.headers, len(self.body), self.body[:300])


class Closed(Exception):
    """The peer closed (or reset) the connection before a complete message arrived."""


class Conn:
    """A client connection with a read buffer and a per-operation deadline."""

    def __init__(self, host, port, source=None, timeout=10.0, family=None):
        family = family or (socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.timeout = timeout
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("deadline passed")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(262144)
        except ConnectionResetError:
            raise Closed("connection reset")
        if not data:
            raise Closed("EOF")
        self.buf += data

    def read_until(self, sep, timeout=None, limit=1 << 20):
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out, self.buf = self.buf[:i + len(sep)], self.buf[i + len(sep):]
                return out
            if len(self.buf) > limit:
                raise ValueError("no %r within %d bytes" % (sep, limit))
            self._fill(deadline)

    def read_exact(self, n, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_to_eof(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            try:
                self._fill(deadline)
            except Closed:
                out, self.buf = self.buf, b""
                return out

    def closed_by_peer(self, wait=5.0):
        """True when the peer closes (EOF or reset) within wait seconds, with nothing more sent.
        Bytes that arrive instead are kept and make the answer False."""
        deadline = time.monotonic() + wait
        if self.buf:
            return False
        try:
            self._fill(deadline)
        except Closed:
            return True
        except (socket.timeout, TimeoutError):
            return False
        return False

    def read_response(self, method="GET", timeout=None, allow_interim=True):
        """Read one response; 1xx interim responses are collected into .interim."""
        for _ in range(10):
            r = self._read_one(method, timeout)
            if 100 <= r.status < 200 and r.status != 101 and allow_interim:
                interim = getattr(self, "_interim", [])
                interim.append(r.status)
                self._interim = interim
                continue
            r.interim = getattr(self, "_interim", [])
            self._interim = []
            return r
        raise ValueError("too many interim responses")

    def _read_one(self, method, timeout):
        r = Response()
        head = self.read_until(b"\r\n\r\n", timeout)
        r.head_raw = head
        lines = head[:-4].split(b"\r\n")
        m = re.match(rb"^(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
        if not m:
            raise ValueError("bad status line %r" % lines[0])
        r.version = m.group(1).decode()
        r.status = int(m.group(2))
        r.reason = (m.group(3) or b"").decode("latin-1")
        for ln in lines[1:]:
            name, sep, value = ln.decode("latin-1").partition(":")
            if not sep or name != name.strip() or not name:
                raise ValueError("bad header line %r" % ln)
            r.headers.append([name, value.strip(" \t")])
        if 100 <= r.status < 200 or r.status in (204, 304) or method == "HEAD":
            return r
        if method == "CONNECT" and 200 <= r.status < 300:
            return r
        te = ",".join(r.headers_all("Transfer-Encoding")).lower()
        cl = r.headers_all("Content-Length")
        if te:
            if te.replace(" ", "").split(",")[-1] != "chunked":
                raise ValueError("response transfer-coding %r" % te)
            r.chunked = True
            r.body = self._read_chunked(timeout)
        elif cl:
            if len(set(cl)) != 1 or not cl[0].isdigit():
                raise ValueError("bad response Content-Length %r" % cl)
            r.body = self.read_exact(int(cl[0]), timeout)
        else:
            r.body = self.read_to_eof(timeout)
        return r

    def _read_chunked(self, timeout):
        out = []
        for _ in range(1 << 22):
            line = self.read_until(b"\r\n", timeout, limit=4096)
            size = int(line[:-2].split(b";")[0], 16)
            if size == 0:
                for _ in range(1000):
                    if self.read_until(b"\r\n", timeout) == b"\r\n":
                        return b"".join(out)
                raise ValueError("endless trailers")
            out.append(self.read_exact(size, timeout))
            if self.read_exact(2, timeout) != b"\r\n":
                raise ValueError("chunk not followed by CRLF")
        raise ValueError("too many chunks")


def request(port, raw, method="GET", host="127.0.0.1", source=None, timeout=10.0):
    """Send raw on a fresh connection and read one response. Returns (Response, Conn); the
    caller closes the Conn (or uses it for what follows)."""
    c = Conn(host, port, source=source, timeout=timeout)
    c.send(raw)
    return c.read_response(method, timeout), c


def get(port, url, headers=(), method="GET", body=None, version="HTTP/1.1", close=True,
        source=None, host_header=True, timeout=10.0, proxy_host="127.0.0.1"):
    """A simple absolute-form request through the proxy on a fresh connection; returns the
    Response (connection closed afterwards)."""
    c = Conn(proxy_host, port, source=source, timeout=timeout)
    try:
        c.send(build(url, headers, method, body, version, close, host_header))
        return c.read_response(method, timeout)
    finally:
        c.close()


def build(url, headers=(), method="GET", body=None, version="HTTP/1.1", close=False,
          host_header=True):
    hostport = url.split("/")[2].rsplit("@", 1)[-1] if "://" in url else url
    lines = ["%s %s %s" % (method, url, version)]
    names = [h[0].lower() for h in headers]
    if host_header and "host" not in names:
        lines.append("Host: %s" % hostport)
    lines += ["%s: %s" % (k, v) for k, v in headers]
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    if close:
        lines.append("Connection: close")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if body is not None:
        data += body if isinstance(body, bytes) else body.encode("latin-1")
    return data


def status_page(port, path, timeout=10):
    """GET /gatehouse/PATH from the status pages: (status, headers by lower-case name, body)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", "/gatehouse/" + path, headers={"Host": "127.0.0.1:%d" % port})
        r = c.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        c.close()


def tail_files(paths, n=3000):
    """The last n characters of each file that can be read, joined (for error messages)."""
    text = ""
    for p in paths:
        try:
            with open(p, errors="replace") as f:
                text += f.read()[-n:]
        except OSError:
            pass
    return text


def recv_head(sock, buf):
    """Read from sock until buf holds a whole message head: (head, what follows it), or
    (None, buf) when the peer closed first."""
    while b"\r\n\r\n" not in buf:
        d = sock.recv(65536)
        if not d:
            return None, buf
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head, rest


def chunk_encode(body, sizes=(3, 1000, 1, 4096)):
    out = b""
    off = 0
    i = 0
    while off < len(body):
        k = min(sizes[i % len(sizes)], len(body) - off)
        out += b"%x\r\n" % k + body[off:off + k] + b"\r\n"
        off += k
        i += 1
    return out + b"0\r\n\r\n"


# ---------------------------------------------------------------- processes

def _kill(proc, sig=signal.SIGTERM, wait=10.0):
    if proc is None or proc.poll() is not None:
        return proc.returncode if proc else None
    try:
        proc.send_signal(sig)
        return proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        try:
            return proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None


class Dnsmasq:
    """dnsmasq on 127.0.0.1 answering the test names; NXDOMAIN for other *.test names."""

    RECORDS = [("origin.test", "127.0.0.1"), ("origin6.test", "::1"),
               ("dual.test", "127.0.0.1,::1"), ("fallback.test", "127.0.0.1,::1"),
               ("proxy.test", "127.0.0.1"), ("client3.test", "127.0.0.3"),
               ("liar.test", "127.0.0.5")]
    # 127.0.0.4 claims (PTR) to be liar.test, which resolves elsewhere: double-reverse fails.
    PTRS = [("4.0.0.127.in-addr.arpa", "liar.test")]
    EXTRA_ARGS = ()  # subclasses add options (e.g. --addn-hosts, --local-ttl)

    def __init__(self, workdir):
        self.workdir = workdir
        self.proc = None
        self.port = None
        self.log = os.path.join(workdir, "dnsmasq.log")

    def start(self, port=None):
        """Start on a free port, or on port (e.g. the one it had before a stop(), so that the
        clients configured with it find it again)."""
        for _ in range(3):
            self.port = port or free_port(udp_too=True)
            args = [DNSMASQ, "--no-daemon", "--no-resolv", "--no-hosts", "--port=%d" % self.port,
                    "--listen-address=127.0.0.1", "--bind-interfaces", "-u", "root",
                    "--pid-file=%s" % os.path.join(self.workdir, "dnsmasq.pid"),
                    "--log-queries", "--log-facility=%s" % self.log, "--local=/test/",
                    "--cache-size=0"]
            args += ["--host-record=%s,%s" % (n, a) for n, a in self.RECORDS]
            args += ["--ptr-record=%s,%s" % (n, a) for n, a in self.PTRS]
            args += list(self.EXTRA_ARGS)
            out = open(os.path.join(self.workdir, "dnsmasq.out"), "ab")
            self.proc = subprocess.Popen(args, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
            out.close()
            if self._wait_ready(time.monotonic() + 10):
                return self
            _kill(self.proc)
        raise RuntimeError("dnsmasq did not start: %s" % self._output())

    def _output(self):
        try:
            with open(os.path.join(self.workdir, "dnsmasq.out"), "rb") as f:
                return f.read().decode("latin-1")[-2000:]
        except OSError:
            return ""

    def query(self, name, qtype=1, timeout=1.0):
        """(rcode, answer count) for name; qtype 1 = A, 28 = AAAA."""
        import struct
        pkt = struct.pack(">HHHHHH", 0x4748, 0x0100, 1, 0, 0, 0)
        pkt += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
        pkt += struct.pack(">HH", qtype, 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(timeout)
        try:
            s.sendto(pkt, ("127.0.0.1", self.port))
            r = s.recv(1500)
        finally:
            s.close()
        flags, _, an = struct.unpack(">HHH", r[2:8])
        return flags & 0xF, an

    def _wait_ready(self, deadline):
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                self.query("origin.test", timeout=0.3)
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def stop(self):
        _kill(self.proc)


def conf_text(ctx, port, port6=None, via="On", access_log=None, log_format=None, extra=(),
              proxy_section=None, timeout=3, workers=2, dns=True, allow_connect=None):
    """The test configuration. ctx carries dns_port and echo_port; extra lines go before the
    <Proxy> section; proxy_section replaces the default one (None: allow 127.0.0.1 and ::1, PURGE
    included, as the built-in default does for loopback)."""
    lines = ["# written by tests/integration", "Listen 127.0.0.1:%d" % port]
    if port6:
        lines.append("Listen [::1]:%d" % port6)
    if dns:
        lines.append("DNSServer 127.0.0.1:%d" % ctx.dns_port)
    lines += ["ProxyTimeout %d" % timeout, "Workers %d" % workers,
              "LogLevel %s" % os.environ.get("GH_TEST_LOGLEVEL", "info")]
    # The suite runs as root in CI; a root start needs an explicit User (ignored otherwise).
    lines.append("User root")
    if via is not None:
        lines.append("ProxyVia %s" % via)
    if access_log:
        lines.append("AccessLog %s%s" % (access_log, " " + log_format if log_format else ""))
    lines.append("AllowCONNECT %s" % (allow_connect or "443 %d" % ctx.echo_port))
    # Every client of the suite is one address (loopback): MaxConnectionsPerClient is off
    # unless a test sets it in extra (test_client_limit.py), so load tests see MaxConnections.
    lines.append("MaxConnectionsPerClient 0")
    lines += list(extra)
    if proxy_section is None:
        proxy_section = ("<Proxy *>\n    Require ip 127.0.0.1 ::1\n"
                         "    <Limit PURGE>\n        Require ip 127.0.0.1 ::1\n    </Limit>\n"
                         "</Proxy>")
    lines.append(proxy_section)
    return "\n".join(lines) + "\n"


def children_map():
    """{parent pid: [child pids]} of every process now, from /proc."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d))
    return children


def children(pid):
    """Direct children of pid."""
    return children_map().get(pid, [])


class Daemon:
    """One gatehouse process. start() writes the config, launches `BIN -f CONF` with stderr in
    a file, and waits (10 s at most) until every Listen port accepts connections."""

    def __init__(self, binary, workdir, name, text, ports):
        self.binary = binary
        self.workdir = workdir
        self.name = name
        self.text = text
        self.ports = ports  # [(host, port)] to poll for readiness
        self.conf = os.path.join(workdir, name + ".conf")
        self.stderr_path = os.path.join(workdir, name + ".stderr")
        self.proc = None
        self.returncode = None

    @property
    def pid(self):
        return self.proc.pid

    @property
    def port(self):
        return self.ports[0][1]

    def start(self):
        with open(self.conf, "w") as f:
            f.write(self.text)
        err = open(self.stderr_path, "ab")
        env = clean_env(ASAN_OPTIONS=os.environ.get(
            "ASAN_OPTIONS", "quarantine_size_mb=16:detect_leaks=1:abort_on_error=0"),
            UBSAN_OPTIONS=os.environ.get("UBSAN_OPTIONS", "print_stacktrace=1"))
        self.proc = subprocess.Popen([self.binary, "-f", self.conf], stdout=err, stderr=err,
                                     stdin=subprocess.DEVNULL, env=env, cwd=self.workdir)
        err.close()
        deadline = time.monotonic() + 10
        for host, port in self.ports:
            if not wait_listening(host, port, deadline, self.proc):
                rc = self.proc.poll()
                self.stop(wait=3)
                raise RuntimeError("gatehouse (%s) not listening on %s:%d within 10 s (exit %s); "
                                   "stderr:\n%s" % (self.name, host, port, rc, self.stderr_tail()))
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, wait=15.0):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.returncode = _kill(self.proc, sig, wait)
        else:
            self.returncode = self.proc.returncode
        for pid in self.tree_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        return self.returncode

    def stderr_text(self, offset=0):
        try:
            with open(self.stderr_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("latin-1", "replace")
        except OSError:
            return ""

    def stderr_size(self):
        try:
            return os.path.getsize(self.stderr_path)
        except OSError:
            return 0

    def stderr_tail(self, n=4000, offset=0):
        t = self.stderr_text(offset)
        return t[-n:]

    def sanitizer_report(self, offset=0):
        t = self.stderr_text(offset)
        for m in SANITIZER_MARKERS:
            i = t.find(m)
            if i >= 0:
                return t[max(0, i - 200):i + 3000]
        return None

    def tree_pids(self):
        """The daemon and its descendants (Workers may be processes)."""
        if self.proc is None:
            return []
        children = children_map()
        out, todo = [], [self.proc.pid]
        for _ in range(10000):
            if not todo:
                break
            p = todo.pop()
            out.append(p)
            todo += children.get(p, [])
        return [p for p in out if p != self.proc.pid or self.proc.poll() is None]

    def memory_kb(self):
        """(sum of VmRSS, sum of VmHWM) over the process tree, in kB."""
        rss = hwm = 0
        for pid in self.tree_pids():
            try:
                with open("/proc/%d/status" % pid) as f:
                    for ln in f:
                        if ln.startswith("VmRSS:"):
                            rss += int(ln.split()[1])
                        elif ln.startswith("VmHWM:"):
                            hwm += int(ln.split()[1])
            except OSError:
                pass
        return rss, hwm


# ---------------------------------------------------------------- logs

# The squid and the AccessLog combined formats end with the request id (issue 9): group 13
# (squid), group 10 (combined). Apache's own combined nickname (CustomLog FILE combined) is
# Apache's format exactly: group 10 is None there.
SQUID_RE = re.compile(r"^(\d+\.\d{3}) +(\d+) (\S+) ([A-Z_]+)/(\d{3}) (\d+) (\S+) (\S+) (\S+) "
                      r"([A-Z_]+)/(\S+) (\S+) ([0-9A-Z]{12}|-)$")
COMBINED_RE = re.compile(r'^(\S+) (\S+) (\S+) \[(\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] '
                         r'"([^"]*)" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)" ([0-9A-Z]{12}|-)$')
# Apache's own combined format (LogFormat/CustomLog), which has no request id.
APACHE_COMBINED_RE = re.compile(COMBINED_RE.pattern.replace(' ([0-9A-Z]{12}|-)$', '$'))


# The package tests own the machine's gatehouse package and its directories while they run;
# two test runs on one machine take turns on this abstract socket name (nothing is left in
# /tmp, and a killed run releases it).
PACKAGE_TESTS_LOCK = "\0gatehouse-package-tests"


def package_tests_lock(wait=0.0):
    """Take the package tests' lock, waiting up to wait seconds: the bound socket (close it to
    release), or None when another run holds it."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline = time.monotonic() + wait
    while True:
        try:
            s.bind(PACKAGE_TESTS_LOCK)
            return s
        except OSError as e:
            if e.errno != errno.EADDRINUSE or time.monotonic() >= deadline:
                s.close()
                return None
            time.sleep(1)


@contextlib.contextmanager
def searchable(path):
    """Let other users pass through directory path (mode 0711) for the duration, e.g. so
    that a daemon running as nobody can read its config there again; the mode is restored."""
    mode = os.stat(path).st_mode & 0o7777
    os.chmod(path, mode | 0o711)
    try:
        yield path
    finally:
        os.chmod(path, mode)


def poll_lines(path, pred, count=1, timeout=5.0):
    """Wait (bounded) until path has at least count lines satisfying pred; return all lines
    of the file that satisfy it."""
    deadline = time.monotonic() + timeout
    got = []
    while True:
        try:
            with open(path, "r", errors="replace") as f:
                got = [ln.rstrip("\n") for ln in f if pred(ln.rstrip("\n"))]
        except OSError:
            got = []
        if len(got) >= count or time.monotonic() >= deadline:
            return got
        time.sleep(0.05)


def poll(fn, timeout=5.0, interval=0.05):
    """Call fn until it returns something true or the timeout passes; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def sighup_and_wait(d, expect_ok=True, timeout=10.0):
    """Send SIGHUP to daemon d and wait (bounded) until it logged one more "configuration
    reloaded" (expect_ok) or one more "reload failed"; fails the test with the log's tail when
    that line does not come. d is a Daemon, or anything with .proc, .stderr_text() and
    .stderr_tail(). The counts are taken just before the signal, so an earlier reload's line
    cannot satisfy the wait."""
    ok0 = d.stderr_text().count("configuration reloaded")
    bad0 = d.stderr_text().count("reload failed")
    d.proc.send_signal(signal.SIGHUP)
    if expect_ok:
        assert poll(lambda: d.stderr_text().count("configuration reloaded") > ok0,
                    timeout=timeout), d.stderr_tail()
    else:
        assert poll(lambda: d.stderr_text().count("reload failed") > bad0,
                    timeout=timeout), d.stderr_tail()
