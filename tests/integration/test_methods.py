"""
test_methods.py - plain proxying: GET/HEAD/POST through curl, wget and raw sockets; request
bodies with Content-Length and chunked, with and without Expect: 100-continue; responses with
Content-Length, chunked and close-delimited bodies; bodiless 204/304/HEAD responses.
"""

import hashlib
import json
import os
import subprocess
import uuid

import pytest

import ghtest
from origin import body_bytes, body_sha256


def url(ctx, path, host="origin.test"):
    return "http://%s:%d%s" % (host, ctx.origin_port, path)


def curl(proxy, args, timeout=30):
    cmd = ["curl", "-sS", "--max-time", str(timeout - 5), "-x", "http://127.0.0.1:%d" % proxy.port]
    return subprocess.run(cmd + args, capture_output=True, timeout=timeout, env=ghtest.clean_env())


def test_curl_get_content_length_body(proxy, ctx, tmp_path):
    out = tmp_path / "body"
    p = curl(proxy, ["-o", str(out), "-w", "%{http_code}", url(ctx, "/size/300000")])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"200"
    assert out.read_bytes() == body_bytes(300000)


def test_curl_get_chunked_body(proxy, ctx, tmp_path):
    out = tmp_path / "body"
    p = curl(proxy, ["-o", str(out), "-w", "%{http_code}", url(ctx, "/chunked/200001")])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"200"
    assert out.read_bytes() == body_bytes(200001)


def test_curl_get_close_delimited_body(proxy, ctx, tmp_path):
    out = tmp_path / "body"
    p = curl(proxy, ["-o", str(out), "-w", "%{http_code}", url(ctx, "/close/150000")])
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"200"
    assert out.read_bytes() == body_bytes(150000)


def test_wget_get_through_proxy(proxy, ctx, tmp_path):
    out = tmp_path / "wget.out"
    p = subprocess.run(["wget", "-q", "-O", str(out), "-e", "use_proxy=on", "-e",
                        "http_proxy=http://127.0.0.1:%d" % proxy.port, "--tries=1", "--timeout=20",
                        url(ctx, "/size/70000")], capture_output=True, timeout=30,
                       env=ghtest.clean_env())
    assert p.returncode == 0, p.stderr
    assert out.read_bytes() == body_bytes(70000)


def test_curl_post_large_body_with_expect_continue(proxy, ctx, tmp_path):
    data = os.urandom(3 * 1024 * 1024)
    src = tmp_path / "post.bin"
    src.write_bytes(data)
    # curl 7.88 sends Expect: 100-continue for bodies over 1 MiB; make it explicit anyway.
    p = curl(proxy, ["-H", "Expect: 100-continue", "--data-binary", "@" + str(src),
                     "-H", "Content-Type: application/octet-stream",
                     url(ctx, "/echo?t=%s" % uuid.uuid4().hex)])
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["method"] == "POST"
    assert doc["body_len"] == len(data)
    assert doc["body_sha256"] == hashlib.sha256(data).hexdigest()


def test_curl_post_chunked_body(proxy, ctx, tmp_path):
    data = os.urandom(200000)
    src = tmp_path / "post.bin"
    src.write_bytes(data)
    p = curl(proxy, ["-H", "Transfer-Encoding: chunked", "-H", "Expect:", "--data-binary",
                     "@" + str(src), url(ctx, "/echo")])
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["body_sha256"] == hashlib.sha256(data).hexdigest()


def test_raw_post_content_length_body_without_expect(proxy, ctx):
    body = bytes(range(256)) * 40
    r = ghtest.get(proxy.port, url(ctx, "/echo"), method="POST", body=body,
                   headers=[("Content-Type", "application/x-test")])
    assert r.status == 200
    doc = json.loads(r.body)
    assert doc["method"] == "POST" and doc["body"] == body.decode("latin-1")
    assert ["Content-Type", "application/x-test"] in doc["headers"]


def test_raw_post_chunked_body_arrives_intact(proxy, ctx):
    body = os.urandom(50000)
    raw = ghtest.build(url(ctx, "/echo"), [("Transfer-Encoding", "chunked")], method="POST",
                       close=True) + ghtest.chunk_encode(body)
    r, c = ghtest.request(proxy.port, raw)
    c.close()
    assert r.status == 200
    doc = json.loads(r.body)
    assert doc["body_len"] == len(body)
    assert doc["body_sha256"] == hashlib.sha256(body).hexdigest()
    # The proxy may forward the body chunked or re-framed, but never both framings at once.
    names = [h[0].lower() for h in doc["headers"]]
    assert not ("content-length" in names and "transfer-encoding" in names)


def test_raw_post_with_expect_continue_gets_interim_100_before_body(proxy, ctx):
    body = b"x" * 10000
    with ghtest.Conn("127.0.0.1", proxy.port) as c:
        c.send(ghtest.build(url(ctx, "/echo"), [("Expect", "100-continue"),
                                                ("Content-Length", str(len(body)))],
                            method="POST", close=True))
        head = c.read_until(b"\r\n\r\n", timeout=5)
        assert head.startswith(b"HTTP/1.1 100"), head
        c.send(body)
        r = c.read_response()
    assert r.status == 200
    assert json.loads(r.body)["body_len"] == len(body)


def test_raw_post_with_expect_continue_sent_without_waiting(proxy, ctx):
    # A client that does not wait for 100 Continue: the body follows the head at once.
    body = b"y" * 5000
    raw = ghtest.build(url(ctx, "/echo"), [("Expect", "100-continue")], method="POST",
                       body=body, close=True)
    r, c = ghtest.request(proxy.port, raw)
    c.close()
    assert r.status == 200
    assert json.loads(r.body)["body_len"] == len(body)


def test_head_has_no_body_and_connection_stays_usable(proxy, ctx):
    with ghtest.Conn("127.0.0.1", proxy.port) as c:
        c.send(ghtest.build(url(ctx, "/head"), method="HEAD"))
        r = c.read_response("HEAD")
        assert r.status == 200 and r.header("Content-Length") == "1234"
        # If the proxy had sent body bytes after the HEAD head, this response would be garbage.
        c.send(ghtest.build(url(ctx, "/size/10"), close=True))
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == body_bytes(10)
        assert c.closed_by_peer(5)


@pytest.mark.parametrize("status", [204, 304])
def test_bodiless_status_then_next_request_on_same_connection(proxy, ctx, status):
    with ghtest.Conn("127.0.0.1", proxy.port) as c:
        c.send(ghtest.build(url(ctx, "/status/%d" % status)))
        r = c.read_response()
        assert r.status == status and r.body == b""
        c.send(ghtest.build(url(ctx, "/size/33"), close=True))
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == body_bytes(33)


def test_status_codes_pass_through(proxy, ctx):
    for st in (201, 404, 418, 500, 503):
        r = ghtest.get(proxy.port, url(ctx, "/status/%d" % st))
        assert r.status == st, r
        assert r.body == b"status %d\n" % st


def test_close_delimited_response_to_http11_client_keeps_body_intact(proxy, ctx):
    with ghtest.Conn("127.0.0.1", proxy.port) as c:
        c.send(ghtest.build(url(ctx, "/close/123457")))
        r = c.read_response()
        assert r.status == 200 and r.body == body_bytes(123457)
        if r.chunked or r.header("Content-Length"):
            # Re-framed: the client connection may stay open; if it does, it must work.
            c.send(ghtest.build(url(ctx, "/size/5"), close=True))
            try:
                r2 = c.read_response()
            except ghtest.Closed:
                return
            assert r2.body == body_bytes(5)


def test_close_delimited_response_to_http10_client(proxy, ctx):
    r = ghtest.get(proxy.port, url(ctx, "/close/40000"), version="HTTP/1.0", close=False)
    assert r.status == 200 and r.body == body_bytes(40000)
    assert not r.chunked  # never chunked to an HTTP/1.0 client


def test_chunked_response_to_http10_client_is_not_chunked(proxy, ctx):
    r = ghtest.get(proxy.port, url(ctx, "/chunked/30000"), version="HTTP/1.0", close=False)
    assert r.status == 200 and not r.chunked
    assert r.body == body_bytes(30000)


def test_query_string_and_encoded_path_are_forwarded_verbatim(proxy, ctx):
    target = "/echo?a=1&b=%20x&c=%2F%3F"
    r = ghtest.get(proxy.port, url(ctx, target))
    assert json.loads(r.body)["target"] == target


def test_many_sizes_round_trip(proxy, ctx):
    for n in (0, 1, 2, 1023, 1024, 1025, 16383, 16384, 16385, 65535, 65536, 1048577):
        r = ghtest.get(proxy.port, url(ctx, "/size/%d" % n))
        assert r.status == 200 and len(r.body) == n, n
        assert r.body == body_bytes(n), n


def test_post_without_body_gets_forwarded_with_zero_length(proxy, ctx):
    r = ghtest.get(proxy.port, url(ctx, "/echo"), method="POST", body=b"")
    doc = json.loads(r.body)
    assert doc["method"] == "POST" and doc["body_len"] == 0


def test_put_and_delete_methods_forwarded(proxy, ctx):
    for m in ("PUT", "DELETE", "PATCH"):
        r = ghtest.get(proxy.port, url(ctx, "/echo"), method=m, body=b"m=" + m.encode())
        doc = json.loads(r.body)
        assert doc["method"] == m and doc["body"] == "m=" + m


def test_body_sha_of_large_chunked_download(proxy, ctx):
    n = 5 * 1024 * 1024 + 3
    r = ghtest.get(proxy.port, url(ctx, "/chunked/%d" % n), timeout=30)
    assert hashlib.sha256(r.body).hexdigest() == body_sha256(n)


def test_uppercase_scheme_and_host_work(proxy, ctx):
    r = ghtest.get(proxy.port, "HTTP://ORIGIN.TEST:%d/size/12" % ctx.origin_port)
    assert r.status == 200 and r.body == body_bytes(12)


def test_http10_request_with_body(proxy, ctx):
    r = ghtest.get(proxy.port, url(ctx, "/echo"), method="POST", body=b"ten bytes!",
                   version="HTTP/1.0", close=False)
    assert r.status == 200
    assert json.loads(r.body)["body"] == "ten bytes!"


def test_head_of_chunked_resource_then_next_request(proxy, ctx):
    with ghtest.Conn("127.0.0.1", proxy.port) as c:
        c.send(ghtest.build(url(ctx, "/chunked/5000"), method="HEAD"))
        r = c.read_response("HEAD")
        assert r.status == 200 and r.body == b""
        c.send(ghtest.build(url(ctx, "/size/8"), close=True))
        assert c.read_response().body == body_bytes(8)


def test_pipelined_post_bodies_keep_their_boundaries(proxy, ctx):
    bodies = [b"a" * 10, b"", b"c" * 70000]
    raw = b"".join(ghtest.build(url(ctx, "/echo?i=%d" % i), method="POST", body=b)
                   for i, b in enumerate(bodies))
    raw += ghtest.build(url(ctx, "/echo?i=chunked"), [("Transfer-Encoding", "chunked")],
                        method="POST", close=True) + ghtest.chunk_encode(b"zz" * 500)
    with ghtest.Conn("127.0.0.1", proxy.port) as c:
        c.send(raw)
        for i, b in enumerate(bodies):
            doc = json.loads(c.read_response().body)
            assert doc["target"] == "/echo?i=%d" % i and doc["body_len"] == len(b)
        doc = json.loads(c.read_response().body)
        assert doc["body"] == "zz" * 500


def test_transfer_encoding_is_case_insensitive(proxy, ctx):
    raw = ghtest.build(url(ctx, "/echo"), [("Transfer-Encoding", "Chunked")], method="POST",
                       close=True) + ghtest.chunk_encode(b"case" * 100)
    r, c = ghtest.request(proxy.port, raw)
    c.close()
    assert r.status == 200 and json.loads(r.body)["body"] == "case" * 100


def test_http10_client_never_gets_1xx(proxy, ctx):
    # RFC 9110 15.2: no 1xx to an HTTP/1.0 client; its Expect: 100-continue is ignored.
    with ghtest.Conn("127.0.0.1", proxy.port) as c:
        c.send(ghtest.build(url(ctx, "/echo"), [("Expect", "100-continue")], method="POST",
                            body=b"0123456789", version="HTTP/1.0"))
        r = c.read_response()
    assert r.status == 200 and r.interim == [], r.interim
    assert json.loads(r.body)["body"] == "0123456789"
    with ghtest.Conn("127.0.0.1", proxy.port) as c:
        c.send(ghtest.build(url(ctx, "/early-hints"), version="HTTP/1.0"))
        r = c.read_response()
    assert r.status == 200 and r.interim == [], r.interim


def test_header_count_at_the_limit_is_accepted(proxy, ctx):
    hdrs = [("X-F%d" % i, "v") for i in range(98)]  # + Host + Connection = 100 fields
    r = ghtest.get(proxy.port, url(ctx, "/echo"), headers=hdrs)
    assert r.status == 200, r
    names = [k for k, _ in json.loads(r.body)["headers"]]
    assert all("X-F%d" % i in names for i in range(98))


def test_long_header_value_below_the_limit_is_forwarded(proxy, ctx):
    v = "v" * 8000
    r = ghtest.get(proxy.port, url(ctx, "/echo"), headers=[("X-Long", v)])
    assert r.status == 200, r
    assert ["X-Long", v] in json.loads(r.body)["headers"]
