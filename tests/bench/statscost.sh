#!/bin/bash
# statscost.sh - what the status page's counters cost on the cache-hit path (issue 11): cache-hit
# requests/s of the normal build (counters compiled in) against a build without them
# (`scons stats=0`: GH_NO_STATS, build/nostats/gatehouse), in one run.
#
# Builds nothing: measures GH_BIN (default build/gatehouse) against GH_NOSTATS_BIN (default
# build/nostats/gatehouse). nginx on 127.0.0.1 serves a 1 KiB file dated a year back
# (heuristically fresh). Both daemons run side by side (Workers 1, LogLevel warn, no access log
# so that the counting is the larger part of what changes, CacheEnable lmdb / in fresh
# CacheRoots), each warmed until the URL is a hit. Then ROUNDS rounds; a round runs two wrk
# (-t1 -c$CONNS -d${DUR}s each, keep-alive, absolute-form through absolute.lua) at once, one
# against each daemon, the one started first swapped every round: on a shared machine,
# whatever else loads it at that moment loads both, and the scheduler shares the cores between
# two equally busy daemons, so each one's requests/s follow its cost per hit. (Runs one after
# the other were tried first: with the load average at 7-13 on 2 cores, the same binary
# against itself gave round ratios from 0.81 to 1.07.) Per round: ratio = rps(with counters)
# / rps(without). The figure is the median round's ratio; the spread of the rounds (min-max)
# says how noisy the machine was. GH_NOSTATS_BIN=build/gatehouse measures the method's own
# bias (the same binary on both sides should give 1). A second figure does without the wall
# clock: each daemon's CPU time (user + system, /proc/PID/stat) per request over all rounds,
# and their ratio, hits per CPU-second with counters / without.
# After the runs, the counting build's own ?auto must show every wrk request as a hit (so
# the figure is about hits and the counters counted them).
#
# Environment: GH_BIN, GH_NOSTATS_BIN, STATSCOST_ROUNDS (default 6), STATSCOST_DUR (seconds per
# run, default 5), STATSCOST_CONNS (default 32). Bounded: every wait has a limit, wrk runs under
# timeout; every process started here is ended on exit.
set -euo pipefail
PY=/usr/bin/python3

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BENCH="$ROOT/tests/bench"
GH_BIN=${GH_BIN:-$ROOT/build/gatehouse}
GH_NOSTATS_BIN=${GH_NOSTATS_BIN:-$ROOT/build/nostats/gatehouse}
ROUNDS=${STATSCOST_ROUNDS:-6}
DUR=${STATSCOST_DUR:-5}
CONNS=${STATSCOST_CONNS:-32}

for tool in wrk curl; do
	command -v "$tool" >/dev/null || {
		echo "statscost.sh: $tool is missing (scripts/test-deps.sh installs it)" >&2; exit 1; }
done
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || {
	echo "statscost.sh: nginx is missing (scripts/test-deps.sh installs it)" >&2; exit 1; }
[ -x "$GH_BIN" ] || { echo "statscost.sh: $GH_BIN is missing: build it with scons" >&2; exit 1; }
[ -x "$GH_NOSTATS_BIN" ] || {
	echo "statscost.sh: $GH_NOSTATS_BIN is missing: build it with scons stats=0" >&2; exit 1; }
[[ "$ROUNDS" =~ ^[1-9][0-9]?$ ]] || { echo "statscost.sh: STATSCOST_ROUNDS: 1 to 99" >&2; exit 1; }
[[ "$DUR" =~ ^[1-9][0-9]?$ ]] || { echo "statscost.sh: STATSCOST_DUR: 1 to 99" >&2; exit 1; }
[[ "$CONNS" =~ ^[1-9][0-9]{0,2}$ ]] || { echo "statscost.sh: STATSCOST_CONNS: 1 to 999" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

DIR=$(mktemp -d /tmp/gh-statscost.XXXXXX)
. "$BENCH/lib.sh"
PIDS=()
cleanup() {
	bench_stop_pids 100 "${PIDS[@]}"
	rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

# ---- origin
bench_origin_1k

# ---- the two daemons
start_gh() { # name binary: sets GH_PORT and GH_PID (not in a $(...) subshell: the daemon
	# must be in this shell's PIDS to be ended on exit)
	local name=$1 bin=$2 port
	port=$(bench_free_port)
	mkdir -p "$DIR/$name/cache"
	bench_fill "$BENCH/gatehouse.conf.in" "$DIR/$name/gatehouse.conf" PORT="$port" \
		ACCESSLOG="" CACHE="CacheRoot $DIR/$name/cache
CacheSize 64M
CacheEnable lmdb /
<Location /gatehouse/>
    SetHandler gatehouse-status
    Require ip 127.0.0.1
</Location>"
	sed -i 's/^Workers .*/Workers 1/' "$DIR/$name/gatehouse.conf"
	"$bin" -f "$DIR/$name/gatehouse.conf" >"$DIR/$name/stderr" 2>&1 &
	GH_PID=$!
	PIDS+=("$GH_PID")
	bench_wait_port "$port" 20 || {
		echo "gatehouse ($name) did not start:" >&2; cat "$DIR/$name/stderr" >&2; exit 1; }
	# warm: a miss, then hits (bounded wait for the stored entry to be readable)
	local i cs=""
	for ((i = 0; i < 50; i++)); do
		cs=$(curl -s -o /dev/null -D - --max-time 10 -x "http://127.0.0.1:$port" "$TARGET" |
			tr -d '\r' | sed -n 's/^Cache-Status: //Ip')
		[[ "$cs" == *"; hit"* ]] && break
		sleep 0.2
	done
	[[ "$cs" == *"; hit"* ]] || { echo "gatehouse ($name): $TARGET never a hit ($cs)" >&2; exit 1; }
	GH_PORT=$port
}
start_gh stats "$GH_BIN"
PORT_ON=$GH_PORT
PID_ON=$GH_PID
start_gh nostats "$GH_NOSTATS_BIN"
PORT_OFF=$GH_PORT
PID_OFF=$GH_PID
HITS_BEFORE=$(curl -s --max-time 10 "http://127.0.0.1:$PORT_ON/gatehouse/?auto" |
	sed -n 's/^ReqHit: //p')

cpu_ticks() { # pid: user + system CPU time of the process so far, in clock ticks
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}
TCK=$(getconf CLK_TCK)

run_wrk() { # port -> "rps requests errors"
	local out line
	out=$(timeout $((DUR + 30)) wrk -t1 -c"$CONNS" -d"${DUR}s" --timeout 10s \
		-s "$BENCH/absolute.lua" "http://127.0.0.1:$1/" -- "$TARGET" 2>&1) || true
	echo "$out" >>"$DIR/wrk.$1.log"
	line=$(echo "$out" | grep '^BENCH ' || echo "BENCH rps=0 requests=0 errors=-1")
	echo "$line" | sed -E 's/.*rps=([0-9.]+).*errors=(-?[0-9]+).*requests=([0-9]+).*/\1 \3 \2/'
}

echo "statscost: $GH_BIN (counters) against $GH_NOSTATS_BIN (stats=0); 1 KiB hits," \
	"wrk -t1 -c$CONNS -d${DUR}s, $ROUNDS rounds, Workers 1, $(nproc) cores," \
	"load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
: >"$DIR/rounds"
: >"$DIR/cpu"
REQ_ON=0
for ((r = 1; r <= ROUNDS; r++)); do
	# both at once: whatever else loads the machine at that moment loads both; the one
	# started first swaps every round
	if ((r % 2)); then
		run_wrk "$PORT_ON" >"$DIR/on" &
		W1=$!
		run_wrk "$PORT_OFF" >"$DIR/off" &
		W2=$!
	else
		run_wrk "$PORT_OFF" >"$DIR/off" &
		W2=$!
		run_wrk "$PORT_ON" >"$DIR/on" &
		W1=$!
	fi
	PIDS+=("$W1" "$W2")
	C_ON=$(cpu_ticks "$PID_ON")
	C_OFF=$(cpu_ticks "$PID_OFF")
	wait "$W1" "$W2" || true
	C_ON=$(($(cpu_ticks "$PID_ON") - C_ON))
	C_OFF=$(($(cpu_ticks "$PID_OFF") - C_OFF))
	read -r RPS_ON N E_ON <"$DIR/on"
	REQ_ON=$((REQ_ON + N))
	read -r RPS_OFF N_OFF E_OFF <"$DIR/off"
	echo "$C_ON $N $C_OFF $N_OFF" >>"$DIR/cpu"
	[ "$E_ON" = 0 ] && [ "$E_OFF" = 0 ] || {
		echo "round $r: wrk errors: $E_ON (counters), $E_OFF (without)" >&2
		tail -20 "$DIR"/wrk.*.log >&2; exit 1; }
	echo "$r $RPS_ON $RPS_OFF" | awk '{ printf "%d %.1f %.1f %.4f\n", $1, $2, $3, $2 / $3 }' \
		>>"$DIR/rounds"
	tail -1 "$DIR/rounds" | awk '{ printf "  round %d: %.0f rps with counters, %.0f without: %.4f\n", $1, $2, $3, $4 }' >&2
done

# every request of the counting daemon's runs was a hit, and was counted as one
HITS_AFTER=$(curl -s --max-time 10 "http://127.0.0.1:$PORT_ON/gatehouse/?auto" |
	sed -n 's/^ReqHit: //p')
[ "$((HITS_AFTER - HITS_BEFORE))" -ge "$REQ_ON" ] || {
	echo "statscost: $REQ_ON requests sent, only $((HITS_AFTER - HITS_BEFORE)) hits counted" >&2
	exit 1
}

# CPU time per hit, from each daemon's own user + system time: what the load of the machine
# does to the wall clock does not enter it (it still moves with cache and frequency effects)
awk -v tck="$TCK" '
	{ con += $1; non += $2; coff += $3; noff += $4 }
	END {
		on = con / tck * 1e6 / non; off = coff / tck * 1e6 / noff
		printf "CPU per hit: %.2f us with counters, %.2f us without (%d and %d ticks of " \
		       "1/%d s): hits per CPU-second with / without: %.4f\n", on, off, con, coff, tck,
		       off / on
	}' "$DIR/cpu"
sort -k4,4n "$DIR/rounds" | awk -v n="$ROUNDS" -v load="$(cut -d' ' -f1-3 /proc/loadavg)" '
	{ ratio[NR] = $4; on += $2; off += $3 }
	END {
		med = (n % 2) ? ratio[(n + 1) / 2] : (ratio[n / 2] + ratio[n / 2 + 1]) / 2
		printf "hit rps with counters / without: median %.4f over %d rounds " \
		       "(rounds %.4f .. %.4f; totals %.4f); load after: %s\n",
		       med, n, ratio[1], ratio[n], on / off, load
	}'
