#!/bin/sh
# Runs every test: unit tests (normal and ASan+UBSan builds), each libFuzzer harness for a
# bounded time over its seed corpus, and the pytest integration suite against the real daemon
# (normal build, then the sanitizer build). Called by `scons test`; exits non-zero on failure.
set -eu
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
# pytest would write __pycache__/ folders into tests/integration: the tree stays as checked out.
export PYTHONDONTWRITEBYTECODE=1
fail=0
step() { printf '\n==== %s\n' "$*"; }

for flavour in build build/san; do
    for t in "$flavour"/tests/unit/test_*; do
        [ -x "$t" ] || continue
        step "unit: $t"
        if ! "$t"; then echo "FAILED: $t"; fail=1; fi
    done
done

for f in build/tests/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f"); corpus="tests/fuzz/corpus/${name#fuzz_}"
    work=$(mktemp -d)
    [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
    step "fuzz: $name for ${FUZZ_SECONDS}s"
    if ! "$f" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
         -artifact_prefix="$work/" -print_final_stats=0 "$work" >"$work.log" 2>&1; then
        tail -50 "$work.log"; echo "FAILED: $name (artifacts in $work)"; fail=1
    else
        grep -E '^#[0-9]+.*DONE|Done [0-9]+ runs' "$work.log" | tail -1 || true
        rm -rf "$work" "$work.log"
    fi
done

for bin in build/gatehouse build/san/gatehouse; do
    step "integration: GH_BIN=$bin"
    if ! GH_BIN="$PWD/$bin" /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration; then
        echo "FAILED: integration with $bin"; fail=1
    fi
done

[ "$fail" -eq 0 ] && step "all tests passed" || step "SOME TESTS FAILED"
exit "$fail"
