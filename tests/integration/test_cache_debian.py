"""
test_cache_debian.py - Debian archive awareness (CacheDebianArchive, default On): files under
pool/ are immutable, so they are served from the cache even when the origin marks them
no-cache; index files (InRelease) follow their headers, so apt's "Cache-Control: max-age=0"
revalidates them; with CacheDebianArchive Off a pool file is treated like any other.
"""

import os
import time
import uuid

import ghtest
from origin import body_bytes


def start(start_daemon, ctx, extra=()):
    root = os.path.join(ctx.workdir, "cache-deb-" + uuid.uuid4().hex[:8])
    return start_daemon("cachedeb", extra=["CacheRoot %s" % root, "CacheSize 64M",
                                           "CacheEnable lmdb /"] + list(extra))


def deb_url(ctx, t, cc="no-cache"):
    return ("http://origin.test:%d/debian/pool/main/h/hello/hello_2.10-%s_amd64.deb?cc=%s&etag=d1&lm=86400&size=9000"
            % (ctx.origin_port, t, cc))


def test_pool_files_are_served_from_cache_without_revalidation(start_daemon, ctx):
    d = start(start_daemon, ctx)
    t = uuid.uuid4().hex
    for _ in range(3):
        r = ghtest.get(d.port, deb_url(ctx, t))
        assert r.status == 200 and r.body == body_bytes(9000)
    assert r.header("Cache-Status").startswith("Gatehouse; hit")
    assert len(ctx.origin.requests_with(t)) == 1


def test_index_files_follow_apts_max_age_0(start_daemon, ctx):
    d = start(start_daemon, ctx)
    t = uuid.uuid4().hex
    u = ("http://origin.test:%d/debian/dists/stable-%s/InRelease?cc=max-age=600&etag=i1&size=400"
         % (ctx.origin_port, t))
    assert ghtest.get(d.port, u).status == 200
    assert ghtest.get(d.port, u).header("Cache-Status").startswith("Gatehouse; hit")
    time.sleep(1.1)  # max-age=0 accepts an age of 0: let the entry age
    r = ghtest.get(d.port, u, headers=[("Cache-Control", "max-age=0")])
    assert r.status == 200 and r.body == body_bytes(400)
    reqs = ctx.origin.requests_with(t)
    assert len(reqs) == 2
    assert ['"i1"'] == [v for k, v in reqs[1]["headers"] if k.lower() == "if-none-match"]


def test_debian_awareness_off_revalidates_pool_files(start_daemon, ctx):
    d = start(start_daemon, ctx, ["CacheDebianArchive Off"])
    t = uuid.uuid4().hex
    for _ in range(2):
        r = ghtest.get(d.port, deb_url(ctx, t))
        assert r.status == 200 and not r.header("Cache-Status").startswith("Gatehouse; hit")
    # a no-cache response to a URL with a query is not even stored without the awareness
    assert len(ctx.origin.requests_with(t)) == 2
