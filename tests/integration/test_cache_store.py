"""
test_cache_store.py - the cache store under the daemon: entries survive a restart, a kill -9
in the middle of a fill leaves only complete entries (the interrupted object is fetched
again, intact), and eviction keeps the LMDB files within CacheSize while twice that passes
through; Cache-Status says "stored" only of what is stored (the access log has the final
word), and a full cache disk is logged once a minute at most.
"""

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest

import ghtest
from origin import body_bytes


def url(ctx, query):
    return "http://origin.test:%d/cache?%s" % (ctx.origin_port, query)


def dir_bytes(root):
    return sum(os.path.getsize(os.path.join(root, f)) for f in os.listdir(root))


def start(start_daemon, ctx, root, size="64M", name="cstore"):
    return start_daemon(name, extra=["CacheRoot %s" % root, "CacheSize %s" % size,
                                     "CacheEnable lmdb /"])


def test_entries_survive_a_restart(start_daemon, ctx):
    root = os.path.join(ctx.workdir, "cache-restart-" + uuid.uuid4().hex[:8])
    t = uuid.uuid4().hex
    u = url(ctx, "t=%s&cc=max-age=600&size=600000" % t)
    d = start(start_daemon, ctx, root)
    assert ghtest.get(d.port, u).status == 200
    assert d.stop() == 0
    d2 = start(start_daemon, ctx, root)
    r = ghtest.get(d2.port, u)
    assert r.status == 200 and r.body == body_bytes(600000)
    assert r.header("Cache-Status").startswith("Gatehouse; hit")
    assert len(ctx.origin.requests_with(t)) == 1


def test_kill_9_during_a_fill_serves_only_complete_entries(start_daemon, ctx):
    root = os.path.join(ctx.workdir, "cache-kill-" + uuid.uuid4().hex[:8])
    d = start(start_daemon, ctx, root)
    done = uuid.uuid4().hex
    ud = url(ctx, "t=%s&cc=max-age=600&size=300000" % done)
    assert ghtest.get(d.port, ud).status == 200
    t = uuid.uuid4().hex
    n = 4 * 1024 * 1024
    u = url(ctx, "t=%s&cc=max-age=600&size=%d&trickle=20" % (t, n))
    c = ghtest.Conn("127.0.0.1", d.port, timeout=30)
    c.send(ghtest.build(u))
    c.read_until(b"\r\n\r\n")
    c.read_exact(1024 * 1024)  # a megabyte into the fill: some chunks are written
    os.kill(d.pid, signal.SIGKILL)
    d.proc.wait(10)
    c.close()
    d2 = start(start_daemon, ctx, root)
    r = ghtest.get(d2.port, ud)
    assert r.header("Cache-Status").startswith("Gatehouse; hit") and r.body == body_bytes(300000)
    r = ghtest.get(d2.port, url(ctx, "t=%s&cc=max-age=600&size=%d" % (t, n)), timeout=60)
    assert "fwd=uri-miss" in r.header("Cache-Status")
    assert hashlib.sha256(r.body).hexdigest() == hashlib.sha256(body_bytes(n)).hexdigest()


def test_eviction_keeps_the_store_under_cache_size(start_daemon, ctx):
    root = os.path.join(ctx.workdir, "cache-evict-" + uuid.uuid4().hex[:8])
    size = 8 * 1024 * 1024
    d = start(start_daemon, ctx, root, size="8M")
    t = uuid.uuid4().hex
    each = 256 * 1024
    count = 2 * size // each
    for i in range(count):
        r = ghtest.get(d.port, url(ctx, "t=%s&i=%d&cc=max-age=600&size=%d" % (t, i, each)))
        assert r.status == 200 and len(r.body) == each
        assert dir_bytes(root) <= size + 64 * 1024, i
    # the newest objects are still there, the oldest were evicted
    time.sleep(1.5)
    r = ghtest.get(d.port, url(ctx, "t=%s&i=%d&cc=max-age=600&size=%d" % (t, count - 1, each)))
    assert r.header("Cache-Status").startswith("Gatehouse; hit")
    r = ghtest.get(d.port, url(ctx, "t=%s&i=0&cc=max-age=600&size=%d" % (t, each)))
    assert "fwd=uri-miss" in r.header("Cache-Status")
    assert dir_bytes(root) <= size + 64 * 1024


def test_purges_while_clients_read_leave_the_daemon_healthy(start_daemon, ctx):
    """Purges under busy readers: every response is complete and byte-exact (a reader's body
    outlives its entry), and the daemon stays healthy."""
    root = os.path.join(ctx.workdir, "cache-purgeload-" + uuid.uuid4().hex[:8])
    d = start(start_daemon, ctx, root)
    t = uuid.uuid4().hex
    n = 2 * 1024 * 1024
    u = url(ctx, "t=%s&cc=max-age=600&size=%d" % (t, n))
    data = body_bytes(n)
    stop = time.monotonic() + 3
    stats = {"complete": 0, "cut": 0, "wrong": 0}
    lock = threading.Lock()

    def reader():
        while time.monotonic() < stop:
            try:
                r = ghtest.get(d.port, u, timeout=20)
                ok = r.status == 200 and r.body == data
                key = "complete" if ok else "wrong"
            except Exception:  # cut short: the connection closed mid-body
                key = "cut"
            with lock:
                stats[key] += 1

    def purger():
        while time.monotonic() < stop:
            ghtest.get(d.port, u, method="PURGE")
            time.sleep(0.05)

    ts = [threading.Thread(target=reader) for _ in range(8)] + [threading.Thread(target=purger)]
    for th in ts:
        th.start()
    for th in ts:
        th.join(60)
    assert stats["wrong"] == 0, stats
    assert stats["cut"] == 0, stats
    assert stats["complete"] > 0, stats
    assert d.alive()
    r = ghtest.get(d.port, u)
    assert r.status == 200 and r.body == data


def _slow_hit(d, u):
    """Start streaming a hit of u and stop reading after its head and 256 KiB: the daemon
    still has most of the body to send."""
    c = ghtest.Conn("127.0.0.1", d.port, timeout=60)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    c.send(ghtest.build(u))
    head = c.read_until(b"\r\n\r\n")
    assert b"Cache-Status: Gatehouse; hit" in head, head
    first = c.read_exact(256 * 1024)
    return c, first


def _finish(c, first, n):
    rest = c.read_exact(n - len(first), timeout=60)
    c.close()
    return first + rest


def test_slow_reader_of_a_large_hit_gets_the_whole_old_body(start_daemon, ctx):
    """A client slowly streaming a 20 MB hit receives the complete old body, byte-exact,
    while (a) a PURGE removes it, (b) a refresh replaces it with a different body, (c) 100 MB
    of other objects pass through a 64 MB store (eviction). Afterwards the old chunks are
    deleted: a kill -9 and restart finds no orphan chunk to sweep."""
    root = os.path.join(ctx.workdir, "cache-pin-" + uuid.uuid4().hex[:8])
    d = start(start_daemon, ctx, root)
    n = 20 * 1024 * 1024
    old = body_bytes(n)
    slow = "&patient=30"
    digest = hashlib.sha256(old).hexdigest()

    # (a) purge
    t = uuid.uuid4().hex
    u = url(ctx, "t=%s&cc=max-age=600&size=%d%s" % (t, n, slow))
    assert ghtest.get(d.port, u, timeout=60).status == 200
    c, first = _slow_hit(d, u)
    r = ghtest.get(d.port, u, method="PURGE")
    assert r.status == 200
    time.sleep(1.5)  # maintenance runs: the pinned body must survive it
    assert hashlib.sha256(_finish(c, first, n)).hexdigest() == digest

    # (b) a refresh that stores a different body under the same URL
    t = uuid.uuid4().hex
    u = url(ctx, "t=%s&cc=max-age=600&size=%d&bump=1000%s" % (t, n, slow))
    assert ghtest.get(d.port, u, timeout=60).status == 200
    c, first = _slow_hit(d, u)
    r = ghtest.get(d.port, u, headers=[("Cache-Control", "no-cache")], timeout=60)
    assert r.status == 200 and r.body == body_bytes(n, 1000)
    r = ghtest.get(d.port, u, timeout=60)
    assert r.header("Cache-Status").startswith("Gatehouse; hit")
    assert r.body == body_bytes(n, 1000)  # the new version is what is stored now
    time.sleep(1.5)
    assert hashlib.sha256(_finish(c, first, n)).hexdigest() == digest
    assert len(ctx.origin.requests_with(t)) == 2

    # (c) eviction pressure
    t = uuid.uuid4().hex
    u = url(ctx, "t=%s&cc=max-age=600&size=%d%s" % (t, n, slow))
    assert ghtest.get(d.port, u, timeout=60).status == 200
    c, first = _slow_hit(d, u)
    each = 4 * 1024 * 1024
    for i in range(25):
        r = ghtest.get(d.port, url(ctx, "t=%s&i=%d&cc=max-age=600&size=%d%s" % (t, i, each,
                                                                    slow)), timeout=60)
        assert r.status == 200 and len(r.body) == each
        assert dir_bytes(root) <= 64 * 1024 * 1024 + 64 * 1024, i
    r = ghtest.get(d.port, u, timeout=60)  # evicted: fetched again
    assert "fwd=uri-miss" in r.header("Cache-Status")
    assert hashlib.sha256(_finish(c, first, n)).hexdigest() == digest
    assert d.alive()

    # the old bodies' chunks go once their readers are done (maintenance, every second)
    time.sleep(2.5)
    os.kill(d.pid, signal.SIGKILL)
    d.proc.wait(10)
    d2 = start(start_daemon, ctx, root, name="cstore2")
    deadline = time.monotonic() + 10
    while "orphan chunks swept" not in d2.stderr_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert " 0 orphan chunks swept" in d2.stderr_text(), d2.stderr_tail()


# ---- Cache-Status "stored" tells the truth ----
# The head says "stored" only when the whole object is known to fit (Content-Length within
# CacheMaxFileSize and the store's object limit) and storing has begun; the access log, written
# at the end, records whether the entry really got committed (LogFormat %{Cache-Status}o).

def _stored_daemon(start_daemon, ctx, extra=(), size="64M", root=None):
    root = root or os.path.join(ctx.workdir, "cache-stored-" + uuid.uuid4().hex[:8])
    log = os.path.join(ctx.workdir, "cache-stored-%s.log" % uuid.uuid4().hex[:8])
    d = start_daemon("cstored", extra=["CacheRoot %s" % root, "CacheSize %s" % size,
                                       "CacheEnable lmdb /",
                                       'CustomLog %s "%%{Cache-Status}o %%q"' % log]
                     + list(extra))
    d.cs_log = log
    return d


def _logged_status(d, t, count=1):
    """The Cache-Status values logged for the requests whose query holds t."""
    lines = ghtest.poll_lines(d.cs_log, lambda l: t in l, count=count, timeout=10)
    assert len(lines) >= count, lines
    return [l.rsplit(" ", 1)[0] for l in lines]


def test_stored_is_said_of_a_whole_object_that_fits(start_daemon, ctx):
    d = _stored_daemon(start_daemon, ctx)
    t = uuid.uuid4().hex
    u = url(ctx, "t=%s&cc=max-age=600&size=5000" % t)
    r = ghtest.get(d.port, u)
    assert r.status == 200 and r.header("Cache-Status").endswith("; stored")
    assert _logged_status(d, t)[0].endswith("; stored")
    assert ghtest.get(d.port, u).header("Cache-Status").startswith("Gatehouse; hit")
    assert len(ctx.origin.requests_with(t)) == 1


def test_a_body_without_length_is_not_promised_but_logged_as_stored(start_daemon, ctx):
    d = _stored_daemon(start_daemon, ctx)
    t = uuid.uuid4().hex
    u = url(ctx, "t=%s&cc=max-age=600&size=300000&chunked=1" % t)
    r = ghtest.get(d.port, u)
    assert r.status == 200 and r.body == body_bytes(300000)
    assert "stored" not in r.header("Cache-Status")  # its size was not known yet
    assert _logged_status(d, t)[0].endswith("; stored")  # it was stored all the same
    assert ghtest.get(d.port, u).header("Cache-Status").startswith("Gatehouse; hit")
    assert len(ctx.origin.requests_with(t)) == 1


def test_objects_too_large_are_never_said_stored(start_daemon, ctx):
    """Over CacheMaxFileSize with a Content-Length, over it without one (chunked: the fill
    begins and is dropped at the limit), and over the store's own object limit (half its
    budget: 3 MiB of an 8 MiB store)."""
    d = _stored_daemon(start_daemon, ctx, ["CacheMaxFileSize 100K"], size="8M")
    t = uuid.uuid4().hex
    for q, n in (("size=200000", 200000), ("size=200000&chunked=1", 200000)):
        u = url(ctx, "t=%s&cc=max-age=600&%s" % (t, q))
        for _ in range(2):
            r = ghtest.get(d.port, u, timeout=30)
            assert r.status == 200 and r.body == body_bytes(n)
            assert "stored" not in r.header("Cache-Status"), (q, r.header("Cache-Status"))
            assert "fwd=uri-miss" in r.header("Cache-Status")
        assert len(ctx.origin.requests_with("%s&cc=max-age=600&%s" % (t, q))) == 2, q
    d2 = _stored_daemon(start_daemon, ctx, size="8M")
    t = uuid.uuid4().hex
    n = 4 * 1024 * 1024
    u = url(ctx, "t=%s&cc=max-age=600&size=%d" % (t, n))
    for _ in range(2):
        r = ghtest.get(d2.port, u, timeout=60)
        assert r.status == 200 and len(r.body) == n
        assert "stored" not in r.header("Cache-Status"), r.header("Cache-Status")
    assert len(ctx.origin.requests_with(t)) == 2
    for cs in _logged_status(d, "chunked", count=2) + _logged_status(d2, t, count=2):
        assert "stored" not in cs, cs


def test_a_truncated_fill_is_logged_as_not_stored(start_daemon, ctx):
    """The origin closes in the middle of a body with a Content-Length: the head had said
    "stored" (the object fitted), but nothing was stored, and the log says so; the next
    request goes to the origin again."""
    d = _stored_daemon(start_daemon, ctx)
    t = uuid.uuid4().hex
    n = 300000
    u = url(ctx, "t=%s&cc=max-age=600&size=%d&trickle=10&cut=100000" % (t, n))
    for i in range(2):
        c = ghtest.Conn("127.0.0.1", d.port, timeout=30)
        c.send(ghtest.build(u, close=True))
        head = c.read_until(b"\r\n\r\n").decode("latin-1")
        assert "fwd=uri-miss" in head, head  # not a hit: nothing was stored the first time
        rest = c.read_to_eof(timeout=30)
        c.close()
        assert len(rest) < n  # cut short
    assert len(ctx.origin.requests_with(t)) == 2
    for cs in _logged_status(d, t, count=2):
        assert "stored" not in cs, cs
        assert "fwd-status=200" in cs, cs


def _mount_tmpfs(path, size):
    """Mount a tmpfs of size at path (root only); False when that is not possible here."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    os.makedirs(path, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "tmpfs",
                           path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          timeout=30).returncode == 0


def _umount(path):
    if subprocess.run(["umount", path], stderr=subprocess.DEVNULL, timeout=30).returncode:
        subprocess.run(["umount", "-l", path], stderr=subprocess.DEVNULL, timeout=30)
    os.rmdir(path)


def test_a_full_cache_disk_is_logged_once_and_responses_stay_correct(start_daemon, ctx):
    """The cache directory on a 3 MiB tmpfs with CacheSize 64M: the file system fills long
    before the store's own budget. Every response is still complete and byte-exact (from the
    origin when it cannot be stored), and the error log says so once (at most one line a
    minute), at warn level, naming the CacheRoot and CacheSize."""
    mnt = os.path.join(ctx.workdir, "cache-tmpfs-" + uuid.uuid4().hex[:8])
    if not _mount_tmpfs(mnt, "3m"):
        pytest.skip("needs root and a tmpfs mount")
    d = None
    try:
        root = os.path.join(mnt, "cache")
        d = start(start_daemon, ctx, root, size="64M", name="cfull")
        t = uuid.uuid4().hex
        each = 512 * 1024
        t0 = time.monotonic()
        for i in range(12):
            u = url(ctx, "t=%s&i=%d&cc=max-age=600&size=%d&off=%d" % (t, i, each, i))
            r = ghtest.get(d.port, u, timeout=30)
            assert r.status == 200 and r.body == body_bytes(each, i), i
        # what was stored is served intact, what was not comes from the origin again
        for i in range(12):
            u = url(ctx, "t=%s&i=%d&cc=max-age=600&size=%d&off=%d" % (t, i, each, i))
            r = ghtest.get(d.port, u, timeout=30)
            assert r.status == 200 and r.body == body_bytes(each, i), i
        full = lambda: [l for l in d.stderr_text().splitlines() if " is full: " in l]
        assert ghtest.poll(full, timeout=10), d.stderr_tail()
        time.sleep(2.5)  # more maintenance passes: no second line within the minute
        lines = full()
        # one line, and one more per minute at most should a loaded machine take that long
        assert 1 <= len(lines) <= 1 + int((time.monotonic() - t0) / 60), lines
        assert "[warn]" in lines[0] and root in lines[0], lines
        assert "CacheSize 67108864 bytes" in lines[0] and "file system out of space" in lines[0]
        assert not [l for l in d.stderr_text().splitlines() if "storing http" in l]
        assert d.alive()
        assert d.stop() == 0
    finally:
        if d is not None:
            d.stop()
        _umount(mnt)


def test_a_store_that_gives_up_for_want_of_room_promises_nothing(start_daemon, ctx):
    """The cache directory on a 1 MiB tmpfs and a 2 MiB object: evicting cannot make room, so
    the store gives the write up. The response is still served whole, its log line says it
    was not stored, the warning counts the write given up, and while the store keeps failing
    (a minute) new fills are no longer said "stored" in the head."""
    mnt = os.path.join(ctx.workdir, "cache-tmpfs-" + uuid.uuid4().hex[:8])
    if not _mount_tmpfs(mnt, "1m"):
        pytest.skip("needs root and a tmpfs mount")
    d = None
    try:
        root = os.path.join(mnt, "cache")
        d = _stored_daemon(start_daemon, ctx, root=root)
        t = uuid.uuid4().hex
        n = 2 * 1024 * 1024
        u = url(ctx, "t=%s&cc=max-age=600&size=%d" % (t, n))
        r = ghtest.get(d.port, u, timeout=30)
        assert r.status == 200 and r.body == body_bytes(n)
        assert "stored" not in _logged_status(d, t)[0]
        full = lambda: [l for l in d.stderr_text().splitlines() if " is full: " in l]
        assert ghtest.poll(full, timeout=10), d.stderr_tail()
        m = re.search(r"; (\d+) were given up even after evicting", full()[0])
        assert m and int(m.group(1)) >= 1, full()
        r = ghtest.get(d.port, u, timeout=30)
        assert r.status == 200 and r.body == body_bytes(n)
        cs = r.header("Cache-Status")
        assert "fwd=uri-miss" in cs and "stored" not in cs, cs
        assert len(ctx.origin.requests_with(t)) == 2
        assert d.alive()
        assert d.stop() == 0
    finally:
        if d is not None:
            d.stop()
        _umount(mnt)
