"""
test_netfuzz.py - the bounded form of the socket fuzzers (issue 10, the standing campaign):
tests/fuzz/netfuzz.py's request and response flavours against a daemon with the cache on, for
GH_NETFUZZ_SECONDS (default 60) each, plus a replay of the hand-checked seeds in
tests/fuzz/corpus/net. tests/fuzz/run-long.sh runs the same fuzzers for hours.

Oracles (see netfuzz.py): every connection gets well-formed responses or a close within a
generous deadline, the proxy answers a control request after every batch of 64 cases, the
daemon lives and prints no sanitizer report, and (response flavour) a cached 200 carries a body
the origin sent for that URL in a complete response.

The seed is GH_NETFUZZ_SEED, else a fixed one (20791): the test command is a gate that must
pass on any machine twice in a row, so it replays the same cases every day (as many as the
time allows); finding new ones is the long run's job (tests/fuzz/run-long.sh, a new seed
each round). A failure names the seed
and the case: `tests/fuzz/netfuzz.py --flavour F --seed S --case N [--print]` replays it.
"""

import os
import sys
import time

import pytest

import ghtest

sys.path.insert(0, os.path.join(ghtest.REPO, "tests", "fuzz"))
import netfuzz  # noqa: E402

pytestmark = pytest.mark.slow

SECONDS = float(os.environ.get("GH_NETFUZZ_SECONDS", "60"))
SEED = int(os.environ.get("GH_NETFUZZ_SEED", "20791"))


@pytest.fixture
def fuzzed(start_daemon, ctx):
    root = os.path.join(ctx.workdir, "netfuzz-cache-%d" % time.monotonic_ns())
    d = start_daemon("netfuzz", text=netfuzz.daemon_conf("{port}", root))
    offset = d.stderr_size()

    def check():
        if not d.alive():
            return "the daemon died (exit %s)" % d.proc.returncode
        return d.sanitizer_report(offset)

    d.check = check
    return d


def _report(flavour, failures):
    lines = ["netfuzz %s, seed %d: %d failing case(s)" % (flavour, SEED, len(failures))]
    for case, problem in failures[:10]:
        lines.append("case %d: %s" % (case, problem[:1500]))
        lines.append("  replay: tests/fuzz/netfuzz.py --flavour %s --seed %d --case %d --print"
                     % (flavour, SEED, case))
    return "\n".join(lines)


def test_request_fuzzer_every_connection_answered_or_closed(fuzzed, ctx):
    ran, failures = netfuzz.fuzz("request", fuzzed.port, ctx.origin_port, SEED, seconds=SECONDS,
                                 check_daemon=fuzzed.check)
    assert not failures, _report("request", failures)
    assert ran >= 64  # at least one whole batch, however loaded the machine
    assert fuzzed.check() is None


def test_response_fuzzer_cache_serves_only_what_the_origin_sent(fuzzed, ctx):
    ro = netfuzz.RawOrigin().start()
    try:
        ran, failures = netfuzz.fuzz("response", fuzzed.port, ro, SEED, seconds=SECONDS,
                                     check_daemon=fuzzed.check, control_oport=ctx.origin_port)
    finally:
        ro.stop()
    assert not failures, _report("response", failures)
    assert ran >= 64
    assert fuzzed.check() is None


@pytest.mark.parametrize("name", sorted(os.listdir(netfuzz.CORPUS_NET)))
def test_corpus_seed_answered_well_formed(fuzzed, ctx, name):
    raw, methods = netfuzz.corpus_request(name, ctx.origin_port)
    assert methods, "seed %s has no request line" % name
    for parts in ([raw], [raw[:i] for i in (len(raw) // 3,)] + [raw[len(raw) // 3:]],
                  [raw[i:i + 1] for i in range(len(raw))]):
        data, eof, err = netfuzz.exchange(fuzzed.port, [(p, 0) for p in parts], True)
        assert err is None, "%s: %s; got %r" % (name, err, data[:300])
        rs = netfuzz.parse_proxy_stream(data, methods, eof)
        assert rs, "%s: closed without any response" % name
    assert netfuzz.control_check(fuzzed.port, ctx.origin_port, SEED) is None
    assert fuzzed.check() is None


# Found by the response fuzzer (seed 20791 case 10); fixed in daemon/h1.c: 502, as nginx.
def test_unknown_transfer_coding_from_origin_is_not_served_as_plain_content(fuzzed):
    import socket
    import threading
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    ls.settimeout(20)
    oport = ls.getsockname()[1]

    def serve():
        for _ in range(4):
            try:
                s, _ = ls.accept()
            except OSError:
                return
            s.settimeout(5)
            try:
                s.recv(65536)
                s.sendall(b"HTTP/1.1 200 OK\r\nCache-Control: max-age=300\r\n"
                          b"Transfer-Encoding: gzip\r\n\r\nGZIP-CODED-BYTES")
            except OSError:
                pass
            s.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    url = "http://127.0.0.1:%d/te-gzip" % oport
    try:
        answers = []
        for _ in range(2):
            r = ghtest.get(fuzzed.port, url)
            answers.append(r)
            time.sleep(0.3)
    finally:
        ls.close()
    for r in answers:
        # either refused (502), or relayed with the coding named so the client can undo it
        te = (r.header("Transfer-Encoding") or "").lower()
        assert r.status == 502 or "gzip" in te, (r.status, r.headers)
