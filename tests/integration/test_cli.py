"""
test_cli.py - the command line: -t checks a config ("Syntax OK", exit 0; "FILE:LINE: message",
exit 1), -V prints the version, -h prints usage, Include globs are followed, and a config the
daemon cannot use keeps it from starting.
"""

import os
import re
import subprocess

import pytest

import ghtest


def run(gh_bin, args, timeout=10):
    p = subprocess.run([gh_bin] + args, capture_output=True, timeout=timeout, env=ghtest.clean_env())
    return p.returncode, (p.stdout + p.stderr).decode("latin-1")


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_config_test_good_config_says_syntax_ok(gh_bin, ctx, tmp_path):
    conf = write(tmp_path, "good.conf", ghtest.conf_text(ctx, 3128, access_log=str(tmp_path / "a")))
    rc, out = run(gh_bin, ["-t", "-f", conf])
    assert rc == 0, out
    assert "Syntax OK" in out


def test_config_test_unknown_directive_names_file_line_and_directive(gh_bin, tmp_path):
    conf = write(tmp_path, "bad.conf", "Listen 127.0.0.1:3128\n# comment\n\nFrobnicate yes\n")
    rc, out = run(gh_bin, ["-t", "-f", conf])
    assert rc == 1, out
    assert "%s:4:" % conf in out, out
    assert "Frobnicate" in out
    assert "Syntax OK" not in out


@pytest.mark.parametrize("line,word", [
    ("ProxyVia Sometimes", "ProxyVia"),
    ("ProxyTimeout -3", "ProxyTimeout"),
    ("Listen 127.0.0.1:99999", "Listen"),
    ("AllowCONNECT 443-", "AllowCONNECT"),
    ("Workers many", "Workers"),
    ("ProxyRequests", "ProxyRequests"),
])
def test_config_test_bad_argument_is_reported_with_line(gh_bin, tmp_path, line, word):
    conf = write(tmp_path, "bad.conf", "Listen 127.0.0.1:3128\n%s\n" % line)
    rc, out = run(gh_bin, ["-t", "-f", conf])
    assert rc == 1, out
    assert re.search(re.escape(conf) + r":2: ", out), out


def test_config_test_unclosed_section(gh_bin, tmp_path):
    conf = write(tmp_path, "bad.conf", "Listen 127.0.0.1:3128\n<Proxy *>\n  Require all granted\n")
    rc, out = run(gh_bin, ["-t", "-f", conf])
    assert rc == 1, out
    assert conf + ":" in out


def test_config_test_missing_file(gh_bin, tmp_path):
    rc, out = run(gh_bin, ["-t", "-f", str(tmp_path / "nope.conf")])
    assert rc == 1, out
    assert "nope.conf" in out


def test_include_glob_is_followed_and_errors_name_the_included_file(gh_bin, tmp_path):
    inc = tmp_path / "conf.d"
    inc.mkdir()
    (inc / "10-ok.conf").write_text("ProxyVia On\n")
    (inc / "20-bad.conf").write_text("ProxyTimeout 5\nNoSuchThing 1\n")
    conf = write(tmp_path, "main.conf",
                 "Listen 127.0.0.1:3128\nUser root\nInclude %s/*.conf\n" % inc)
    rc, out = run(gh_bin, ["-t", "-f", conf])
    assert rc == 1, out
    assert "%s:2:" % (inc / "20-bad.conf") in out, out
    (inc / "20-bad.conf").write_text("ProxyTimeout 5\n")
    rc, out = run(gh_bin, ["-t", "-f", conf])
    assert rc == 0 and "Syntax OK" in out, out


def test_version_flag(gh_bin):
    rc, out = run(gh_bin, ["-V"])
    assert rc == 0, out
    assert re.search(r"\d+\.\d+\.\d+", out), out


def test_help_flag(gh_bin):
    rc, out = run(gh_bin, ["-h"])
    assert rc == 0, out
    assert "-f" in out and "-t" in out


def test_unknown_option_fails(gh_bin):
    rc, out = run(gh_bin, ["-Z"])
    assert rc != 0
    assert out.strip()


def test_daemon_refuses_to_start_with_bad_config(gh_bin, tmp_path):
    conf = write(tmp_path, "bad.conf", "Listen 127.0.0.1:3128\nBogus\n")
    p = subprocess.run([gh_bin, "-f", conf], capture_output=True, timeout=10, env=ghtest.clean_env())
    assert p.returncode != 0
    assert conf.encode() + b":2:" in p.stderr + p.stdout


def test_daemon_fails_cleanly_when_port_is_taken(gh_bin, ctx, tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        conf = write(tmp_path, "busy.conf", ghtest.conf_text(ctx, port))
        p = subprocess.run([gh_bin, "-f", conf], capture_output=True, timeout=10,
                           env=ghtest.clean_env())
    finally:
        s.close()
    assert p.returncode != 0
    err = (p.stderr + p.stdout).decode("latin-1")
    assert str(port) in err or "in use" in err.lower(), err


def test_config_test_of_built_in_default(gh_bin):
    rc, out = run(gh_bin, ["-t"])
    assert rc == 0, out
    assert "Syntax OK" in out


def test_error_log_directive_sends_messages_to_the_file(start_daemon, ctx):
    path = os.path.join(ctx.workdir, "error-%d.log" % os.getpid())
    d = start_daemon(extra=["ErrorLog %s" % path])
    r = ghtest.get(d.port, "http://nosuch.test/")
    assert r.status == 502
    lines = ghtest.poll_lines(path, lambda ln: "nosuch.test" in ln, timeout=5)
    assert lines, "nothing about the failed request in the ErrorLog file"
