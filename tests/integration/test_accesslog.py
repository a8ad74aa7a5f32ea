"""
test_accesslog.py - the access log: one line per request, Squid native format by default
(time.msec elapsed client action/status bytes method URL - hierarchy/peer type), TCP_DENIED and
HIER_NONE for denied requests, TCP_TUNNEL and host:port for CONNECT; Apache combined format with
`AccessLog FILE combined`. The log may be flushed late: every read polls with a deadline.
"""

import os
import re
import socket
import time
import uuid

import ghtest


def test_squid_format_line_per_request(start_daemon, ctx):
    log = os.path.join(ctx.workdir, "squid-%s.log" % uuid.uuid4().hex[:8])
    d = start_daemon(access_log=log)
    tok = uuid.uuid4().hex
    u = "http://origin.test:%d/size/1234?log=%s" % (ctx.origin_port, tok)
    t0 = time.time()
    r = ghtest.get(d.port, u)
    assert r.status == 200
    lines = ghtest.poll_lines(log, lambda ln: tok in ln)
    assert len(lines) == 1, lines
    m = ghtest.SQUID_RE.match(lines[0])
    assert m, "not Squid native format: %r" % lines[0]
    (ts, elapsed, client, action, status, nbytes, method, logged_url, ident, hier, peer, ctype,
     req_id) = m.groups()
    assert abs(float(ts) - t0) < 10
    assert 0 <= int(elapsed) < 5000
    assert client == "127.0.0.1"
    assert action == "TCP_MISS" and status == "200"
    assert int(nbytes) >= 1234  # body plus head as sent to the client
    assert method == "GET" and logged_url == u
    assert ident == "-"
    assert hier == "HIER_DIRECT" and peer == "127.0.0.1"
    assert ctype == "application/octet-stream"
    assert re.match(r"^[0-9A-Z]{12}$", req_id)  # the request id, a trailing field (issue 9)


def test_denied_and_tunnel_and_error_lines(start_daemon, ctx):
    log = os.path.join(ctx.workdir, "squid-%s.log" % uuid.uuid4().hex[:8])
    d = start_daemon(access_log=log)
    tok = uuid.uuid4().hex
    denied_url = "http://origin.test:%d/size/1?denied=%s" % (ctx.origin_port, tok)
    assert ghtest.get(d.port, denied_url, source="127.0.0.2").status == 403
    c = ghtest.Conn("127.0.0.1", d.port)
    with c:
        c.send("CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n"
               % (ctx.echo_port, ctx.echo_port))
        assert c.read_response("CONNECT").status == 200
        c.send(b"0123456789")
        assert c.read_exact(10) == b"0123456789"
        c.sock.shutdown(socket.SHUT_WR)
        c.read_to_eof()
    nx_url = "http://nosuch.test/?nx=%s" % tok
    assert ghtest.get(d.port, nx_url).status == 502

    lines = ghtest.poll_lines(log, lambda ln: True, count=3)
    assert len(lines) == 3, lines
    parsed = [ghtest.SQUID_RE.match(ln) for ln in lines]
    assert all(parsed), lines
    by_method = {}
    for m in parsed:
        by_method.setdefault(m.group(7), []).append(m.groups())
    # denied: TCP_DENIED/403, no upstream
    g = [x for x in by_method["GET"] if x[7] == denied_url]
    assert len(g) == 1, lines
    assert g[0][2] == "127.0.0.2" and g[0][3] == "TCP_DENIED" and g[0][4] == "403"
    assert (g[0][9], g[0][10]) == ("HIER_NONE", "-")
    # tunnel: TCP_TUNNEL/200, URL is host:port
    t = by_method["CONNECT"][0]
    assert t[3] == "TCP_TUNNEL" and t[4] == "200", t
    assert t[7] == "127.0.0.1:%d" % ctx.echo_port
    assert int(t[5]) >= 10
    # DNS failure: a 502 with no upstream contacted
    e = [x for x in by_method["GET"] if x[7] == nx_url]
    assert len(e) == 1 and e[0][4] == "502", lines
    assert e[0][9] == "HIER_NONE"


def test_combined_format(start_daemon, ctx):
    log = os.path.join(ctx.workdir, "combined-%s.log" % uuid.uuid4().hex[:8])
    d = start_daemon(access_log=log, log_format="combined")
    tok = uuid.uuid4().hex
    u = "http://origin.test:%d/size/777?c=%s" % (ctx.origin_port, tok)
    r = ghtest.get(d.port, u, headers=[("User-Agent", "itest-agent/1.0"),
                                       ("Referer", "http://referrer.test/")])
    assert r.status == 200
    lines = ghtest.poll_lines(log, lambda ln: tok in ln)
    assert len(lines) == 1, lines
    m = ghtest.COMBINED_RE.match(lines[0])
    assert m, "not combined format: %r" % lines[0]
    host, ident, user, stamp, reqline, status, nbytes, referer, agent, req_id = m.groups()
    assert re.match(r"^[0-9A-Z]{12}$", req_id), lines[0]  # the request id, a trailing field
    assert host == "127.0.0.1" and ident == "-" and user == "-"
    assert reqline == "GET %s HTTP/1.1" % u
    assert status == "200"
    assert nbytes == "777"  # Apache %b: response body bytes
    assert referer == "http://referrer.test/" and agent == "itest-agent/1.0"


def test_one_line_per_request_on_keepalive_connection(start_daemon, ctx):
    log = os.path.join(ctx.workdir, "ka-%s.log" % uuid.uuid4().hex[:8])
    d = start_daemon(access_log=log)
    tok = uuid.uuid4().hex
    with ghtest.Conn("127.0.0.1", d.port) as c:
        for i in range(5):
            c.send(ghtest.build("http://origin.test:%d/size/%d?ka=%s" % (ctx.origin_port, i, tok)))
            assert c.read_response().status == 200
    lines = ghtest.poll_lines(log, lambda ln: tok in ln, count=5)
    assert len(lines) == 5, lines
    assert all(ghtest.SQUID_RE.match(ln) for ln in lines)


def test_shared_daemon_logs_too(proxy, ctx):
    tok = uuid.uuid4().hex
    assert ghtest.get(proxy.port, "http://origin.test:%d/status/404?s=%s"
                      % (ctx.origin_port, tok)).status == 404
    lines = ghtest.poll_lines(proxy.access_log, lambda ln: tok in ln)
    assert len(lines) == 1
    m = ghtest.SQUID_RE.match(lines[0])
    assert m and m.group(5) == "404" and m.group(12) == "text/plain", lines
