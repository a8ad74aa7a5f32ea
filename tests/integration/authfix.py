"""
authfix.py - fixtures for the proxy authentication tests (issue 14): htpasswd files made by
the real tools (`htpasswd -B` of apache2-utils for bcrypt, `openssl passwd -5/-6` for SHA-256
and SHA-512 crypt), Apache group files, Basic credentials, the <Proxy *> section that asks for
them, and curl through the proxy with --proxy-user.

Used by test_auth_basic.py, test_auth_abuse.py, test_auth_fail2ban.py and
test_auth_chromium.py. Every child process has a timeout; files go where the caller says (the
test's tmp_path), never into /etc.
"""

import base64
import os
import re
import subprocess

import ghtest

REALM = "Gatehouse test"


def _run(args, input=""):
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=True,
                          input=input, env=ghtest.clean_env())


def crypt_line(user, password, algo="bcrypt"):
    """One htpasswd line "user:hash": bcrypt through htpasswd -B (cost 5, its default),
    sha256/sha512 crypt through openssl passwd -5/-6."""
    if algo == "bcrypt":
        out = _run(["htpasswd", "-n", "-B", "-b", user, password]).stdout.strip()
        assert out.startswith(user + ":$2y$"), out
        return out
    flag = {"sha256": "-5", "sha512": "-6"}[algo]
    out = _run(["openssl", "passwd", flag, "-stdin"], input=password + "\n").stdout.strip()
    assert out.startswith({"sha256": "$5$", "sha512": "$6$"}[algo]), out
    return "%s:%s" % (user, out)


def write_htpasswd(path, users):
    """users: {name: password} (bcrypt) or {name: (password, algo)}. Returns path."""
    lines = []
    for name, v in users.items():
        pw, algo = v if isinstance(v, tuple) else (v, "bcrypt")
        lines.append(crypt_line(name, pw, algo))
    tmp = "%s.new" % path
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)   # a reload never reads half a file
    return str(path)


def write_groups(path, groups):
    """groups: {group: [user, ...]} in Apache's "group: user user" lines. Returns path."""
    with open(path, "w") as f:
        f.write("# written by tests/integration/authfix.py\n")
        for g, users in groups.items():
            f.write("%s: %s\n" % (g, " ".join(users)))
    return str(path)


def basic(user, password):
    """The Proxy-Authorization value for Basic credentials."""
    raw = ("%s:%s" % (user, password)).encode("utf-8")
    return "Basic " + base64.b64encode(raw).decode("ascii")


def auth_lines(users_file, groups_file=None, realm=REALM, provider="file"):
    """The Auth* lines of a section (indented)."""
    out = ["    AuthType Basic", '    AuthName "%s"' % realm,
           "    AuthBasicProvider %s" % provider, "    AuthUserFile %s" % users_file]
    if groups_file:
        out.append("    AuthGroupFile %s" % groups_file)
    return out


def section(users_file, groups_file=None, require=("Require valid-user",), realm=REALM,
            after=""):
    """<Proxy *> asking for Basic credentials with the given rule lines, then `after` (more
    sections, e.g. a <Proxy http://payroll/> with "Require group hr")."""
    lines = ["<Proxy *>"] + auth_lines(users_file, groups_file, realm)
    lines += ["    " + r for r in require] + ["</Proxy>"]
    return "\n".join(lines) + ("\n" + after if after else "")


def challenge_realm(resp):
    """The realm of the Basic challenge among the response's Proxy-Authenticate fields, or
    None."""
    for v in resp.headers_all("Proxy-Authenticate"):
        m = re.match(r'(?i)^basic\s+realm="([^"]*)"', v)
        if m:
            return m.group(1)
    return None


def curl(port, url, user=None, extra=(), timeout=30):
    """curl through the proxy at 127.0.0.1:port with --proxy-user user ("name:password").
    Returns (exit status, HTTP status of the final response or 0, the header blocks' text,
    body bytes, stderr text)."""
    args = ["curl", "-sS", "--max-time", str(timeout), "-x", "http://127.0.0.1:%d" % port,
            "-D", "-", "-o", "/dev/stdout", "-w", "\n@@STATUS %{http_code}"]
    if user is not None:
        args += ["--proxy-user", user]
    args += list(extra) + [url]
    p = subprocess.run(args, capture_output=True, timeout=timeout + 15,
                       stdin=subprocess.DEVNULL, env=ghtest.clean_env())
    out = p.stdout
    i = out.rfind(b"\n@@STATUS ")
    status = int(out[i + 10:].strip() or 0) if i >= 0 else 0
    out = out[:i] if i >= 0 else out
    # the header blocks (a CONNECT's 200, a 407 then the final one), then the body
    heads, body = [], out
    for _ in range(10):
        m = re.match(rb"^(HTTP/\d(?:\.\d)? \d{3}[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n)", body)
        if not m:
            break
        heads.append(m.group(1).decode("latin-1"))
        body = body[m.end():]
    return p.returncode, status, "".join(heads), body, p.stderr.decode("latin-1")
