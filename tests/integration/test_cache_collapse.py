"""
test_cache_collapse.py - collapsed forwarding: concurrent misses for one URL, on any worker,
wait on the first request's fill and stream from it as its chunks are stored, so the origin
sees one request: with Content-Length, chunked (no length) and Vary'd responses, with several
workers (SO_REUSEPORT spreads the clients), when the first client goes away in the middle
(the fill goes on), and when the origin truncates (every client sees a failure).
"""

import hashlib
import os
import socket
import struct
import threading
import time
import uuid

import pytest

import ghtest
from origin import body_bytes


def url(ctx, query):
    return "http://origin.test:%d/cache?%s" % (ctx.origin_port, query)


def run_clients(port, u, n=20, headers=(), version=lambda i: "HTTP/1.1"):
    out = [None] * n

    def one(i):
        try:
            out[i] = ghtest.get(port, u, headers=headers, version=version(i), timeout=60)
        except Exception as e:  # reported by the assertions below
            out[i] = e

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(90)
    return out


def start(start_daemon, ctx, workers=1):
    root = os.path.join(ctx.workdir, "cache-cf-" + uuid.uuid4().hex[:8])
    return start_daemon("cachecf%d" % workers, workers=workers,
                        extra=["CacheRoot %s" % root, "CacheSize 64M", "CacheEnable lmdb /"])


def test_twenty_concurrent_misses_make_one_origin_request(start_daemon, ctx):
    d = start(start_daemon, ctx)
    t = uuid.uuid4().hex
    n = 2 * 1024 * 1024 + 999
    u = url(ctx, "t=%s&cc=max-age=600&size=%d&delay=300&trickle=5" % (t, n))
    want = hashlib.sha256(body_bytes(n)).hexdigest()
    res = run_clients(d.port, u)
    for r in res:
        assert isinstance(r, ghtest.Response), r
        assert r.status == 200 and hashlib.sha256(r.body).hexdigest() == want
    assert len(ctx.origin.requests_with(t)) == 1
    collapsed = [r for r in res if "collapsed" in (r.header("Cache-Status") or "")]
    assert len(collapsed) == 19


def test_unstorable_answer_releases_the_waiting_requests(start_daemon, ctx):
    d = start(start_daemon, ctx)
    t = uuid.uuid4().hex
    u = url(ctx, "t=%s&cc=no-store&size=5000&delay=300" % t)
    res = run_clients(d.port, u, n=10)
    for r in res:
        assert isinstance(r, ghtest.Response), r
        assert r.status == 200 and r.body == body_bytes(5000)
    assert len(ctx.origin.requests_with(t)) == 10


def test_concurrent_misses_over_two_workers_all_get_intact_bodies(start_daemon, ctx):
    root = os.path.join(ctx.workdir, "cache-cf2-" + uuid.uuid4().hex[:8])
    d = start_daemon("cachecf2", workers=2,
                     extra=["CacheRoot %s" % root, "CacheSize 64M", "CacheEnable lmdb /"])
    t = uuid.uuid4().hex
    n = 1024 * 1024 + 7
    u = url(ctx, "t=%s&cc=max-age=600&size=%d&delay=200&trickle=5" % (t, n))
    want = hashlib.sha256(body_bytes(n)).hexdigest()
    for r in run_clients(d.port, u):
        assert isinstance(r, ghtest.Response), r
        assert r.status == 200 and hashlib.sha256(r.body).hexdigest() == want
    # one fill per URL at a time, process-wide: what is stored is whole and served
    r = ghtest.get(d.port, u)
    assert r.header("Cache-Status").startswith("Gatehouse; hit")
    assert hashlib.sha256(r.body).hexdigest() == want


def is_collapsed(r):
    return "collapsed" in (r.header("Cache-Status") or "")


@pytest.mark.parametrize("workers", [2, 4])
def test_twenty_clients_over_workers_make_one_origin_request(start_daemon, ctx, workers):
    d = start(start_daemon, ctx, workers)
    t = uuid.uuid4().hex
    n = 1024 * 1024 + 4321
    u = url(ctx, "t=%s&cc=max-age=600&size=%d&delay=400&trickle=5" % (t, n))
    want = hashlib.sha256(body_bytes(n)).hexdigest()
    res = run_clients(d.port, u)
    for r in res:
        assert isinstance(r, ghtest.Response), r
        assert r.status == 200 and hashlib.sha256(r.body).hexdigest() == want
        assert r.header("Content-Length") == str(n)
    assert len(ctx.origin.requests_with(t)) == 1
    assert len([r for r in res if is_collapsed(r)]) == 19
    r = ghtest.get(d.port, u)
    assert r.header("Cache-Status").startswith("Gatehouse; hit")
    assert hashlib.sha256(r.body).hexdigest() == want


def test_chunked_response_is_collapsed_over_workers(start_daemon, ctx):
    """No Content-Length from the origin: HTTP/1.1 followers get it chunked, HTTP/1.0 ones
    to the end of the connection; all byte-exact, one origin request."""
    d = start(start_daemon, ctx, 2)
    t = uuid.uuid4().hex
    n = 900 * 1024 + 17
    u = url(ctx, "t=%s&cc=max-age=600&size=%d&delay=400&trickle=5&chunked=1" % (t, n))
    want = hashlib.sha256(body_bytes(n)).hexdigest()
    res = run_clients(d.port, u, version=lambda i: "HTTP/1.0" if i % 5 == 4 else "HTTP/1.1")
    for i, r in enumerate(res):
        assert isinstance(r, ghtest.Response), r
        assert r.status == 200 and hashlib.sha256(r.body).hexdigest() == want
        if i % 5 != 4:
            assert r.chunked and r.header("Content-Length") is None
    assert len(ctx.origin.requests_with(t)) == 1
    assert len([r for r in res if is_collapsed(r)]) == 19
    r = ghtest.get(d.port, u)
    assert r.header("Cache-Status").startswith("Gatehouse; hit")
    assert r.header("Content-Length") == str(n)


def wait_origin(ctx, t, count, timeout=10.0):
    assert ghtest.poll(lambda: len(ctx.origin.requests_with(t)) >= count, timeout=timeout)


def test_vary_followers_join_when_their_fields_match(start_daemon, ctx):
    """A Vary'd fill is followed by requests with the same Accept-Encoding; one with another
    value forwards on its own (and gets its own variant stored)."""
    d = start(start_daemon, ctx, 2)
    t = uuid.uuid4().hex
    n = 600 * 1024 + 3
    u = url(ctx, "t=%s&cc=max-age=600&size=%d&delay=500&trickle=10&vary=Accept-Encoding"
            % (t, n))
    want = hashlib.sha256(body_bytes(n)).hexdigest()
    gz = [("Accept-Encoding", "gzip")]
    first = []
    th = threading.Thread(target=lambda: first.append(ghtest.get(d.port, u, headers=gz,
                                                                 timeout=60)))
    th.start()
    wait_origin(ctx, t, 1)
    out = [None] * 20

    def one(i):
        h = [("Accept-Encoding", "br")] if i == 19 else [("Accept-Encoding", "gzip")]
        try:
            out[i] = ghtest.get(d.port, u, headers=h, timeout=60)
        except Exception as e:  # reported below
            out[i] = e
    ts = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for x in ts:
        x.start()
    for x in ts + [th]:
        x.join(90)
    assert len(first) == 1 and first[0].status == 200
    for r in out + first:
        assert isinstance(r, ghtest.Response), r
        assert r.status == 200 and hashlib.sha256(r.body).hexdigest() == want
    assert all(is_collapsed(r) for r in out[:19])
    assert not is_collapsed(out[19])
    seen = ctx.origin.requests_with(t)
    assert len(seen) == 2
    assert sorted(dict((k.lower(), v) for k, v in rq["headers"])["accept-encoding"]
                  for rq in seen) == ["br", "gzip"]


def open_leader(port, u):
    """A client that sends its request and reads only the response head."""
    c = ghtest.Conn("127.0.0.1", port, timeout=30)
    c.send(ghtest.build(u, close=True))
    c.read_until(b"\r\n\r\n")
    return c


def reset_close(c):
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()


def test_fill_outlives_its_client_when_others_follow(start_daemon, ctx):
    d = start(start_daemon, ctx, 2)
    t = uuid.uuid4().hex
    n = 6 * 1024 * 1024 + 5
    u = url(ctx, "t=%s&cc=max-age=600&size=%d&trickle=30" % (t, n))
    want = hashlib.sha256(body_bytes(n)).hexdigest()
    lead = open_leader(d.port, u)
    res = [None] * 8

    def one(i):
        try:
            res[i] = ghtest.get(d.port, u, timeout=60)
        except Exception as e:  # reported below
            res[i] = e
    ts = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for x in ts:
        x.start()
    time.sleep(1.0)  # the followers join (the body takes about 3 s)
    reset_close(lead)  # the first client goes away, megabytes before the end
    for x in ts:
        x.join(90)
    for r in res:
        assert isinstance(r, ghtest.Response), r
        assert r.status == 200 and hashlib.sha256(r.body).hexdigest() == want
        assert is_collapsed(r)
    assert len(ctx.origin.requests_with(t)) == 1
    r = ghtest.get(d.port, u)
    assert r.header("Cache-Status").startswith("Gatehouse; hit")
    assert hashlib.sha256(r.body).hexdigest() == want
    assert len(ctx.origin.requests_with(t)) == 1


def test_fill_outlives_its_client_for_a_small_rest_only(start_daemon, ctx):
    """Nobody follows: a rest of at most 1 MiB is read on and stored; a large rest is not."""
    d = start(start_daemon, ctx, 1)
    t1, t2 = uuid.uuid4().hex, uuid.uuid4().hex
    small = url(ctx, "t=%s&cc=max-age=600&size=%d&trickle=30" % (t1, 900 * 1024))
    big = url(ctx, "t=%s&cc=max-age=600&size=%d&trickle=30" % (t2, 4 * 1024 * 1024))
    for u in (small, big):
        c = open_leader(d.port, u)
        time.sleep(0.1)
        reset_close(c)
    # the small rest arrives in about 0.5 s; until it is stored a request follows the fill
    # (no origin request either way)
    assert ghtest.poll(lambda: ghtest.get(d.port, small).header("Cache-Status")
                       .startswith("Gatehouse; hit"), timeout=10)
    r = ghtest.get(d.port, small)
    assert r.body == body_bytes(900 * 1024)
    assert len(ctx.origin.requests_with(t1)) == 1
    r = ghtest.get(d.port, big, timeout=30)
    assert not r.header("Cache-Status").startswith("Gatehouse; hit")
    assert r.body == body_bytes(4 * 1024 * 1024)
    assert len(ctx.origin.requests_with(t2)) == 2


@pytest.mark.parametrize("chunked", [0, 1])
def test_origin_truncation_is_a_visible_failure_for_followers(start_daemon, ctx, chunked):
    """The origin closes after 700 KB of a 2 MB body: no client gets a response that looks
    complete (short of its Content-Length, or no last chunk), and nothing is stored."""
    d = start(start_daemon, ctx, 2)
    t = uuid.uuid4().hex
    n = 2 * 1024 * 1024
    u = url(ctx, "t=%s&cc=max-age=600&size=%d&delay=300&trickle=10&cut=700000&chunked=%d"
            % (t, n, chunked))
    res = run_clients(d.port, u)
    for r in res:
        assert isinstance(r, ghtest.Closed), r
    # followers that had not started their response went to the origin on their own (and
    # met the same truncation); those streaming from the fill failed with it
    assert 1 <= len(ctx.origin.requests_with(t)) <= 20
    before = len(ctx.origin.requests_with(t))
    with pytest.raises(ghtest.Closed):
        ghtest.get(d.port, u, timeout=30)
    assert len(ctx.origin.requests_with(t)) == before + 1
