"""
test_cache_stale.py - stale content when the origin fails a revalidation: stale-if-error
(RFC 5861) on a 5xx, CacheStaleOnError (default On) for any stale entry when the origin
answers 5xx, closes without answering or refuses the connection, with a validator or without
one (then the stale entry is fetched anew, and served if that fails), and the error passed on
when neither applies; an Age list counts by its first member (RFC 9111 5.1).
"""

import os
import time
import uuid

import pytest

import ghtest
from origin import Origin, body_bytes


def url(ctx, query):
    return "http://origin.test:%d/cache?%s" % (ctx.origin_port, query)


def start(start_daemon, ctx, extra=()):
    root = os.path.join(ctx.workdir, "cache-stale-" + uuid.uuid4().hex[:8])
    log = os.path.join(ctx.workdir, "cache-stale-%s.log" % uuid.uuid4().hex[:8])
    d = start_daemon("cachestale", access_log=log,
                     extra=["CacheRoot %s" % root, "CacheSize 64M", "CacheEnable lmdb /"]
                     + list(extra))
    d.access_log = log
    return d


def test_stale_if_error_serves_the_stale_entry_on_a_5xx(start_daemon, ctx):
    d = start(start_daemon, ctx, ["CacheStaleOnError Off"])
    t = uuid.uuid4().hex
    u = url(ctx, "t=%s&cc=max-age=1,stale-if-error=600&etag=s1&size=2000&flip=503" % t)
    assert ghtest.get(d.port, u).status == 200
    time.sleep(2.2)
    r = ghtest.get(d.port, u)
    assert r.status == 200 and r.body == body_bytes(2000)
    assert "fwd-status=503" in r.header("Cache-Status")
    assert len(ctx.origin.requests_with(t)) == 2
    lines = ghtest.poll_lines(d.access_log, lambda l: t in l, count=2)
    assert any("TCP_REFRESH_FAIL_OLD/200" in l for l in lines)


def test_stale_on_error_covers_an_origin_that_closes_without_answering(start_daemon, ctx):
    d = start(start_daemon, ctx)
    t = uuid.uuid4().hex
    u = url(ctx, "t=%s&cc=max-age=1&etag=s2&size=2000&flip=close" % t)
    assert ghtest.get(d.port, u).status == 200
    time.sleep(2.2)
    r = ghtest.get(d.port, u)
    assert r.status == 200 and r.body == body_bytes(2000)
    assert len(ctx.origin.requests_with(t)) >= 2


def test_without_stale_on_error_the_error_is_passed_on(start_daemon, ctx):
    d = start(start_daemon, ctx, ["CacheStaleOnError Off"])
    t = uuid.uuid4().hex
    u = url(ctx, "t=%s&cc=max-age=1&etag=s3&size=2000&flip=503" % t)
    assert ghtest.get(d.port, u).status == 200
    time.sleep(2.2)
    r = ghtest.get(d.port, u)
    assert r.status == 503


def test_must_revalidate_is_never_served_stale(start_daemon, ctx):
    d = start(start_daemon, ctx)
    t = uuid.uuid4().hex
    u = url(ctx, "t=%s&cc=max-age=1,must-revalidate&etag=s4&size=2000&flip=503" % t)
    assert ghtest.get(d.port, u).status == 200
    time.sleep(2.2)
    r = ghtest.get(d.port, u)
    assert r.status == 503


def test_stale_while_revalidate_serves_stale_and_refreshes_in_the_background(start_daemon, ctx):
    d = start(start_daemon, ctx)
    t = uuid.uuid4().hex
    u = url(ctx, "t=%s&cc=max-age=1,stale-while-revalidate=60&etag=w1&size=3000" % t)
    assert ghtest.get(d.port, u).status == 200
    time.sleep(2.2)
    r = ghtest.get(d.port, u)
    assert r.status == 200 and r.body == body_bytes(3000)
    assert r.header("Cache-Status").startswith("Gatehouse; hit")
    assert int(r.header("Age")) >= 2
    # the refresh reaches the origin as a conditional request, without a client waiting
    assert ghtest.poll(lambda: len(ctx.origin.requests_with(t)) == 2, timeout=5)
    reqs = ctx.origin.requests_with(t)
    assert ['"w1"'] == [v for k, v in reqs[1]["headers"] if k.lower() == "if-none-match"]
    lines = ghtest.poll_lines(d.access_log, lambda l: t in l, count=3)
    assert any("TCP_REFRESH_UNMODIFIED" in l for l in lines)
    # refreshed: fresh again, with a small age
    r = ghtest.get(d.port, u)
    assert r.header("Cache-Status").startswith("Gatehouse; hit") and int(r.header("Age")) < 2
    assert len(ctx.origin.requests_with(t)) == 2


def test_an_age_list_counts_by_its_first_member(start_daemon, ctx):
    """RFC 9111 5.1: "Age: 7200, 0" (or Age: 7200 and Age: 0 on two lines) is 7200 seconds
    old, so with max-age=3600 it is stale on arrival: the next request goes to the origin.
    It used to parse as invalid, count as 0, and be served as a fresh hit."""
    d = start(start_daemon, ctx)
    for ages, fresh in (("age=7200,%200", False), ("age=7200&age=0", False),
                        ("age=10", True)):
        t = uuid.uuid4().hex
        u = url(ctx, "t=%s&cc=max-age=3600&size=500&%s" % (t, ages))
        assert ghtest.get(d.port, u).status == 200
        r = ghtest.get(d.port, u)
        assert r.status == 200 and r.body == body_bytes(500)
        cs = r.header("Cache-Status")
        assert cs.startswith("Gatehouse; hit") == fresh, (ages, cs)
        assert len(ctx.origin.requests_with(t)) == (1 if fresh else 2), ages
        if fresh:
            assert int(r.header("Age")) >= 10


# ---- stale entries without a validator (no ETag, no Last-Modified) ----
# They cannot be revalidated, so they are fetched anew; stale-if-error needs no validator, so
# when that fetch fails the stale entry is served all the same.

def test_stale_if_error_without_a_validator_serves_the_stale_entry_on_a_5xx(start_daemon, ctx):
    d = start(start_daemon, ctx, ["CacheStaleOnError Off"])
    t = uuid.uuid4().hex
    u = url(ctx, "t=%s&cc=max-age=1,stale-if-error=600&size=2000&flip=503" % t)
    assert ghtest.get(d.port, u).status == 200
    time.sleep(2.2)
    r = ghtest.get(d.port, u)
    assert r.status == 200 and r.body == body_bytes(2000)
    cs = r.header("Cache-Status")
    assert "fwd=stale" in cs and "fwd-status=503" in cs and "stale-if-error" in cs, cs
    assert int(r.header("Age")) >= 2
    reqs = ctx.origin.requests_with(t)
    assert len(reqs) == 2
    # fetched unconditionally: there is nothing to revalidate with
    assert not [k for k, v in reqs[1]["headers"] if k.lower().startswith("if-")]
    lines = ghtest.poll_lines(d.access_log, lambda l: t in l, count=2)
    assert any("TCP_REFRESH_FAIL_OLD/200" in l for l in lines), lines


def test_stale_on_error_without_a_validator_serves_the_stale_entry_on_a_5xx(start_daemon, ctx):
    d = start(start_daemon, ctx)  # CacheStaleOnError On (the default)
    t = uuid.uuid4().hex
    u = url(ctx, "t=%s&cc=max-age=1&size=2000&flip=502" % t)
    assert ghtest.get(d.port, u).status == 200
    time.sleep(2.2)
    r = ghtest.get(d.port, u)
    assert r.status == 200 and r.body == body_bytes(2000)
    assert "fwd-status=502" in r.header("Cache-Status")
    # HEAD falls back the same way
    r = ghtest.get(d.port, u, method="HEAD")
    assert r.status == 200 and r.header("Content-Length") == "2000"
    assert len(ctx.origin.requests_with(t)) == 3


def test_stale_on_error_without_a_validator_covers_a_closed_connection(start_daemon, ctx):
    d = start(start_daemon, ctx)
    t = uuid.uuid4().hex
    u = url(ctx, "t=%s&cc=max-age=1&size=2000&flip=close" % t)
    assert ghtest.get(d.port, u).status == 200
    time.sleep(2.2)
    r = ghtest.get(d.port, u)
    assert r.status == 200 and r.body == body_bytes(2000)
    assert "fwd=stale" in r.header("Cache-Status")
    assert len(ctx.origin.requests_with(t)) >= 2
    lines = ghtest.poll_lines(d.access_log, lambda l: t in l, count=2)
    assert any("TCP_REFRESH_FAIL_OLD/200" in l for l in lines), lines


@pytest.mark.parametrize("validator", ["", "&etag=r1"], ids=["no-validator", "etag"])
def test_stale_on_error_covers_a_refused_connection(start_daemon, ctx, validator):
    """The origin is gone (its port refuses): the stale entry is served, with a validator or
    without one."""
    own = Origin().start()
    try:
        d = start(start_daemon, ctx)
        t = uuid.uuid4().hex
        u = "http://origin.test:%d/cache?t=%s&cc=max-age=1&size=2000%s" % (own.port, t, validator)
        assert ghtest.get(d.port, u).status == 200
    finally:
        own.stop()
    time.sleep(2.2)
    r = ghtest.get(d.port, u)
    assert r.status == 200 and r.body == body_bytes(2000)
    assert "fwd=stale" in r.header("Cache-Status")
    lines = ghtest.poll_lines(d.access_log, lambda l: t in l, count=2)
    assert any("TCP_REFRESH_FAIL_OLD/200" in l for l in lines), lines


def test_without_a_validator_or_stale_on_error_the_error_is_passed_on(start_daemon, ctx):
    d = start(start_daemon, ctx, ["CacheStaleOnError Off"])
    t = uuid.uuid4().hex
    u = url(ctx, "t=%s&cc=max-age=1&size=2000&flip=503" % t)
    assert ghtest.get(d.port, u).status == 200
    time.sleep(2.2)
    assert ghtest.get(d.port, u).status == 503
    # past its stale-if-error window: passed on too
    t = uuid.uuid4().hex
    u = url(ctx, "t=%s&cc=max-age=1,stale-if-error=1&size=2000&flip=503" % t)
    assert ghtest.get(d.port, u).status == 200
    time.sleep(3.5)
    assert ghtest.get(d.port, u).status == 503
    # must-revalidate: never served stale, validator or not
    d2 = start(start_daemon, ctx)
    t = uuid.uuid4().hex
    u = url(ctx, "t=%s&cc=max-age=1,must-revalidate&size=2000&flip=503" % t)
    assert ghtest.get(d2.port, u).status == 200
    time.sleep(2.2)
    assert ghtest.get(d2.port, u).status == 503
