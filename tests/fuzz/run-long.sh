#!/bin/sh
# run-long.sh - the long form of the fuzzing campaign (issue 10): every libFuzzer harness
# (build/tests/fuzz/fuzz_*) and both socket fuzzers (tests/fuzz/netfuzz.py, against the
# sanitizer build) in turns, for HOURS hours (default 4), each turn ROUND seconds (default 600).
# Run by hand from the repository root after `scons -Q -j2 sanitize=1 fuzz`:
#
#   HOURS=8 tests/fuzz/run-long.sh
#
# The libFuzzer corpora grow in a working copy (WORK, default /var/tmp/gatehouse-fuzz: kept
# between runs, seeded from tests/fuzz/corpus/NAME); the tree is not written. Crashes,
# sanitizer reports and netfuzz failures are kept in WORK/artifacts with the seed and case
# that replay them. Minimize an input before committing it as a seed (few, small, checked by
# hand):  build/tests/fuzz/fuzz_h1 -minimize_crash=1 -runs=10000 ARTIFACT
#         tests/fuzz/netfuzz.py --flavour request --seed S --case N --print
# and for a libFuzzer corpus:  fuzz_NAME -merge=1 NEWDIR WORK/corpus/NAME
# Exits non-zero when anything failed. Nothing but loopback is contacted.
set -u
cd "$(dirname "$0")/../.."
HOURS=${HOURS:-4}
ROUND=${ROUND:-600}
WORK=${WORK:-/var/tmp/gatehouse-fuzz}
BIN=${GH_BIN:-$PWD/build/san/gatehouse}
export PYTHONDONTWRITEBYTECODE=1
mkdir -p "$WORK/artifacts" "$WORK/corpus"
end=$(awk -v h="$HOURS" -v now="$(date +%s)" 'BEGIN { printf "%d", now + h * 3600 }')
fail=0
turn=0
log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$WORK/run-long.log"; }

[ -x "$BIN" ] || { echo "run-long: $BIN missing: scons -Q -j2 sanitize=1" >&2; exit 2; }
ls build/tests/fuzz/fuzz_* >/dev/null 2>&1 ||
	log "no libFuzzer harnesses (scons fuzz): socket fuzzers only"

while [ "$(date +%s)" -lt "$end" ]; do
	turn=$((turn + 1))
	for f in build/tests/fuzz/fuzz_*; do
		[ -x "$f" ] || continue
		name=$(basename "$f"); short=${name#fuzz_}
		corpus="$WORK/corpus/$short"
		if [ ! -d "$corpus" ]; then
			mkdir -p "$corpus"
			[ -d "tests/fuzz/corpus/$short" ] && cp -r "tests/fuzz/corpus/$short"/. "$corpus"/
		fi
		log "turn $turn: $name for ${ROUND}s"
		if ! "$f" -max_total_time="$ROUND" -timeout=10 -rss_limit_mb=2048 \
		     -artifact_prefix="$WORK/artifacts/$name-" -print_final_stats=1 "$corpus" \
		     >"$WORK/$name.log" 2>&1; then
			log "FAILED: $name (see $WORK/$name.log and $WORK/artifacts)"
			fail=1
		fi
		grep -E 'stat::number_of_executed_units' "$WORK/$name.log" | tail -1 | tee -a "$WORK/run-long.log"
		[ "$(date +%s)" -lt "$end" ] || break
	done
	for flavour in request response; do
		[ "$(date +%s)" -lt "$end" ] || break
		seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
		log "turn $turn: netfuzz $flavour for ${ROUND}s, seed $seed"
		if ! /usr/bin/python3 tests/fuzz/netfuzz.py --bin "$BIN" --flavour "$flavour" \
		     --seed "$seed" --seconds "$ROUND" --workdir "$WORK/net-$flavour-$seed" \
		     >"$WORK/net-$flavour.log" 2>&1; then
			cp "$WORK/net-$flavour.log" "$WORK/artifacts/netfuzz-$flavour-$seed.log"
			log "FAILED: netfuzz $flavour seed $seed (see $WORK/artifacts/netfuzz-$flavour-$seed.log)"
			fail=1
		else
			rm -rf "$WORK/net-$flavour-$seed"
		fi
		grep '^netfuzz' "$WORK/net-$flavour.log" | tee -a "$WORK/run-long.log"
	done
done
if [ "$fail" -eq 0 ]; then
	log "run-long: no failure in $turn turns"
else
	log "run-long: FAILURES, see $WORK/artifacts"
fi
exit "$fail"
