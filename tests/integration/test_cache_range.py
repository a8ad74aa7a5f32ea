"""
test_cache_range.py - Range and If-Range answered from a complete stored entry: a single
range (206 with Content-Range, across a chunk boundary), several ranges as
multipart/byteranges, an unsatisfiable range (416), an If-Range that does not match (the
whole 200), all without contacting the origin again.
"""

import os
import uuid

import pytest

import ghtest
from origin import body_bytes

SIZE = 600000


def url(ctx, query):
    return "http://origin.test:%d/cache?%s" % (ctx.origin_port, query)


@pytest.fixture
def stored(start_daemon, ctx):
    root = os.path.join(ctx.workdir, "cache-range-" + uuid.uuid4().hex[:8])
    d = start_daemon("cacherange", extra=["CacheRoot %s" % root, "CacheSize 64M",
                                          "CacheEnable lmdb /"])
    t = uuid.uuid4().hex
    u = url(ctx, "t=%s&cc=max-age=600&etag=r1&lm=3600&size=%d" % (t, SIZE))
    assert ghtest.get(d.port, u).status == 200
    yield d, u
    assert len(ctx.origin.requests_with(t)) == 1


def test_single_range_across_a_chunk_boundary(stored):
    d, u = stored
    r = ghtest.get(d.port, u, headers=[("Range", "bytes=262000-262300")])
    assert r.status == 206
    assert r.header("Content-Range") == "bytes 262000-262300/%d" % SIZE
    assert r.body == body_bytes(SIZE)[262000:262301]
    assert r.header("Cache-Status").startswith("Gatehouse; hit")


def test_suffix_range(stored):
    d, u = stored
    r = ghtest.get(d.port, u, headers=[("Range", "bytes=-100")])
    assert r.status == 206 and r.body == body_bytes(SIZE)[-100:]


def test_several_ranges_are_multipart_byteranges(stored):
    d, u = stored
    r = ghtest.get(d.port, u, headers=[("Range", "bytes=0-9,300000-300019")])
    assert r.status == 206
    ct = r.header("Content-Type")
    assert ct.startswith("multipart/byteranges; boundary=")
    b = ct.split("boundary=")[1].encode()
    data = body_bytes(SIZE)
    assert int(r.header("Content-Length")) == len(r.body)
    assert (b"--" + b + b"\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 0-9/%d"
            b"\r\n\r\n" % SIZE + data[0:10]) in r.body
    assert (b"Content-Range: bytes 300000-300019/%d\r\n\r\n" % SIZE + data[300000:300020]) in r.body
    assert r.body.endswith(b"\r\n--" + b + b"--\r\n")


def test_unsatisfiable_range_is_416(stored):
    d, u = stored
    r = ghtest.get(d.port, u, headers=[("Range", "bytes=%d-" % (SIZE + 10))])
    assert r.status == 416
    assert r.header("Content-Range") == "bytes */%d" % SIZE


def test_if_range_with_another_etag_gets_the_whole_body(stored):
    d, u = stored
    r = ghtest.get(d.port, u, headers=[("Range", "bytes=0-9"), ("If-Range", '"other"')])
    assert r.status == 200 and len(r.body) == SIZE
    r = ghtest.get(d.port, u, headers=[("Range", "bytes=0-9"), ("If-Range", '"r1"')])
    assert r.status == 206 and r.body == body_bytes(10)
