"""
test_cache_collapse.py - collapsed forwarding: concurrent misses for one URL on one worker
wait on the first request's fill and stream from it as its chunks are stored, so the origin
sees one request. Collapsing is per worker (clients are spread over workers by SO_REUSEPORT),
so these tests run with Workers 1.
"""

import hashlib
import os
import threading
import uuid

import ghtest
from origin import body_bytes


def url(ctx, query):
    return "http://origin.test:%d/cache?%s" % (ctx.origin_port, query)


def run_clients(port, u, n=20):
    out = [None] * n

    def one(i):
        try:
            out[i] = ghtest.get(port, u, timeout=60)
        except Exception as e:  # reported by the assertions below
            out[i] = e

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(90)
    return out


def start(start_daemon, ctx):
    root = os.path.join(ctx.workdir, "cache-cf-" + uuid.uuid4().hex[:8])
    return start_daemon("cachecf", workers=1,
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
