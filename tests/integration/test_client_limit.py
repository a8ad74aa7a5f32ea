"""
test_client_limit.py - MaxConnectionsPerClient (issue 10, item 14): one client cannot hold the
whole MaxConnections. Its connections past the limit get a 503 naming the cause and are closed,
other clients are still served, a slot the client frees is usable again, and the refusals are
logged at most about once a second per worker, not once per connection.

The loopback network gives the test two clients: 127.0.0.1 and 127.0.0.2 (a connection bound
to that source address), both allowed by the test's <Proxy> section.
"""

import re
import socket
import time

import ghtest

LIMIT = 5
SECTION = "<Proxy *>\n    Require ip 127.0.0.0/8\n</Proxy>"


def start(start_daemon, extra=()):
    """The daemon with LIMIT. Tests open their connections one at a time, each served before
    the next: the start-up readiness probe's connection is then surely closed and uncounted."""
    return start_daemon("clim", dns=False, proxy_section=SECTION,
                        extra=["MaxConnectionsPerClient %d" % LIMIT, "KeepAliveTimeout 60",
                               "Timeout 60"] + list(extra))


def served(conn, ctx, tag):
    """One request on an open keep-alive connection; True when it was answered 200."""
    conn.send(ghtest.build("http://127.0.0.1:%d/size/10?c=%s" % (ctx.origin_port, tag)))
    return conn.read_response().status == 200


def refused(port, source="127.0.0.1"):
    """A new connection that is refused: the 503 page (read without sending anything), then
    the close. Returns the response, or None when the connection was taken."""
    c = ghtest.Conn("127.0.0.1", port, source=source, timeout=10)
    try:
        r = c.read_response(timeout=3)
    except (socket.timeout, TimeoutError):  # nothing said: the connection was accepted
        c.close()
        return None
    except (ghtest.Closed, OSError) as e:
        c.close()
        raise AssertionError("closed without the 503 page: %s" % e)
    closed = c.closed_by_peer(5)
    c.close()
    assert closed, "a refused connection stays open"
    return r


def test_connections_past_the_per_client_limit_get_503_and_others_are_served(
        start_daemon, ctx):
    d = start(start_daemon)
    held = []
    try:
        for i in range(LIMIT):
            c = ghtest.Conn("127.0.0.1", d.port, timeout=10)
            held.append(c)
            assert served(c, ctx, "held%d" % i)
        r = refused(d.port)
        assert r is not None, "connection %d of one client was accepted" % (LIMIT + 1)
        assert r.status == 503
        assert "MaxConnectionsPerClient" in r.text() and "Too many connections" in r.text()
        assert (r.header("Connection") or "").lower() == "close"

        # Another client is served while the first holds its limit.
        with ghtest.Conn("127.0.0.1", d.port, source="127.0.0.2", timeout=10) as other:
            assert served(other, ctx, "other")

        # The held connections are still served.
        assert all(served(c, ctx, "again%d" % i) for i, c in enumerate(held))

        # A slot given back is usable again (once the daemon has seen the close).
        held.pop().close()
        fresh = []

        def reconnect():
            c = ghtest.Conn("127.0.0.1", d.port, timeout=10)
            try:
                if served(c, ctx, "fresh"):
                    fresh.append(c)
                    return True
            except (ghtest.Closed, OSError):
                pass
            c.close()
            return False
        assert ghtest.poll(reconnect, timeout=10, interval=0.2), "the freed slot was not reused"
        held += fresh
        assert refused(d.port) is not None  # and the limit holds again
    finally:
        for c in held:
            c.close()
    log = d.stderr_text()
    assert re.search(r"\[warn\] 127\.0\.0\.1 has %d connections open "
                     r"\(MaxConnectionsPerClient %d\): refusing more" % (LIMIT, LIMIT), log), log


def test_refusals_are_logged_about_once_a_second_not_per_connection(start_daemon, ctx):
    d = start(start_daemon)
    held = []
    try:
        for i in range(LIMIT):
            held.append(ghtest.Conn("127.0.0.1", d.port, timeout=10))
            assert served(held[-1], ctx, "rl%d" % i)
        before = d.stderr_text().count("MaxConnectionsPerClient %d)" % LIMIT)
        t0 = time.monotonic()
        n = 0
        for _ in range(60):
            assert refused(d.port) is not None
            n += 1
        elapsed = time.monotonic() - t0
        lines = d.stderr_text().count("MaxConnectionsPerClient %d)" % LIMIT) - before
        # at most one line a second per worker (2 workers), plus each worker's first
        assert 1 <= lines <= 2 * (int(elapsed) + 2), (lines, n, elapsed)
        assert lines < n
    finally:
        for c in held:
            c.close()


def test_zero_turns_the_limit_off(start_daemon, ctx):
    d = start_daemon("clim0", dns=False, proxy_section=SECTION,
                     extra=["MaxConnectionsPerClient 0", "KeepAliveTimeout 60"])
    held = []
    try:
        for i in range(40):
            c = ghtest.Conn("127.0.0.1", d.port, timeout=10)
            held.append(c)
            assert served(c, ctx, "off%d" % i)
    finally:
        for c in held:
            c.close()
    assert "MaxConnectionsPerClient" not in d.stderr_text()
