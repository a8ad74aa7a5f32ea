#!/bin/bash
# fair.sh - fairness of large transfers (issue 10 item 10): wrk --latency with 64 connections
# (BENCH_CONNS) fetching one 4 MiB object (BENCH_SIZE_KB), straight from nginx and as a cache
# hit through gatehouse. Prints requests/s, MB/s, p50, p90, p99 and max latency per target and
# gatehouse's p99 over nginx's. A proxy that lets one connection stream its whole object while
# the others wait shows a p99 far above its p50 at the same throughput. Not a test: nothing is
# asserted, and the figures depend on the machine's load (wrk, nginx and the proxy share the
# cores), so run it on a quiet machine and compare builds within one run of the script.
#
# Environment: GH_BIN (default build/gatehouse; GH_BIN2 adds a second build as another row,
# e.g. the one before a change), BENCH_DURATION (seconds per run, default 10), BENCH_CONNS
# (default 64), BENCH_THREADS (default 2), BENCH_SIZE_KB (default 4096), BENCH_ROUNDS (runs of
# each target, interleaved, default 1), BENCH_KEEP=1 (keep the temporary directory).
# Bounded: every wait has a limit; every process started here is ended on exit.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BENCH="$ROOT/tests/bench"
GH_BIN=${GH_BIN:-$ROOT/build/gatehouse}
GH_BIN2=${GH_BIN2:-}
DUR=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNS:-64}
THREADS=${BENCH_THREADS:-2}
SIZE_KB=${BENCH_SIZE_KB:-4096}
ROUNDS=${BENCH_ROUNDS:-1}
WRK_TIMEOUT=$((DUR + 30))

for tool in nginx wrk curl; do
	command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || {
		echo "fair.sh: $tool is missing (scripts/test-deps.sh installs it)" >&2; exit 1; }
done
for b in "$GH_BIN" $GH_BIN2; do
	[ -x "$b" ] || { echo "fair.sh: $b is missing: build it with scons" >&2; exit 1; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

DIR=$(mktemp -d /tmp/gh-fair.XXXXXX)
. "$BENCH/lib.sh"
PIDS=()
cleanup() {
	bench_stop_pids 50 "${PIDS[@]}"
	if [ -z "${BENCH_KEEP:-}" ]; then
		rm -rf "$DIR"
	else
		echo "kept $DIR"
	fi
}
trap cleanup EXIT INT TERM

# ---- the object, dated a year back (heuristically fresh: every request after the first is a
# hit), and nginx serving it
mkdir -p "$DIR/www"
chmod 0755 "$DIR"
head -c $((SIZE_KB * 1024)) /dev/urandom >"$DIR/www/big.bin"
touch -d '1 year ago' "$DIR/www/big.bin"
NGX_PORT=$(bench_free_port)
bench_fill "$BENCH/nginx.conf.in" "$DIR/nginx.conf" DIR="$DIR" ROOT="$DIR/www" PORT="$NGX_PORT"
"$NGINX" -c "$DIR/nginx.conf" -p "$DIR" >"$DIR/nginx.out" 2>&1 &
PIDS+=($!)
disown
bench_wait_port "$NGX_PORT" 10 || {
	echo "nginx did not start:"; cat "$DIR/nginx.out" "$DIR/nginx-error.log"; exit 1; }
URL="http://127.0.0.1:$NGX_PORT/big.bin"

# ---- gatehouse (one daemon per build), caching, the object stored and checked to be a hit
TARGETS=("nginx|$URL|")
start_gatehouse() { # label binary
	local port cache
	port=$(bench_free_port)
	cache="CacheRoot $DIR/cache-$1
CacheSize 1G
CacheEnable lmdb /"
	bench_fill "$BENCH/gatehouse.conf.in" "$DIR/gatehouse-$1.conf" PORT="$port" ACCESSLOG="" \
		CACHE="$cache"
	"$2" -f "$DIR/gatehouse-$1.conf" 2>"$DIR/gatehouse-$1.stderr" &
	PIDS+=($!)
	disown
	bench_wait_port "$port" 10 || {
		echo "gatehouse ($1) did not start:"; cat "$DIR/gatehouse-$1.stderr"; exit 1; }
	curl -sS --max-time 30 -x "http://127.0.0.1:$port" -o /dev/null "$URL"
	curl -sS --max-time 30 -x "http://127.0.0.1:$port" -o /dev/null -D "$DIR/hit-$1.head" "$URL"
	grep -qi '^Cache-Status: Gatehouse; hit' "$DIR/hit-$1.head" || {
		echo "gatehouse ($1) does not serve the object as a hit:"; cat "$DIR/hit-$1.head"
		exit 1; }
	TARGETS+=("$1|http://127.0.0.1:$port/|$URL")
}
start_gatehouse gatehouse "$GH_BIN"
[ -n "$GH_BIN2" ] && start_gatehouse gatehouse2 "$GH_BIN2"

# ---- runs: wrk --latency, its percentiles parsed from the "Latency Distribution" block
to_ms() { # "12.34ms" | "1.20s" | "850.00us" -> milliseconds
	awk -v v="$1" 'BEGIN {
		if (v ~ /us$/) { sub(/us$/, "", v); printf "%.2f", v / 1000 }
		else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.2f", v }
		else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.2f", v * 60000 }
		else { sub(/s$/, "", v); printf "%.2f", v * 1000 } }'
}
RESULTS="$DIR/results"
: >"$RESULTS"
for ((r = 1; r <= ROUNDS; r++)); do
	for t in "${TARGETS[@]}"; do
		IFS='|' read -r label addr target <<<"$t"
		echo "round $r: $label ..." >&2
		out=$(timeout "$WRK_TIMEOUT" wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" --timeout 20s \
			--latency -s "$BENCH/absolute.lua" "$addr" ${target:+-- "$target"} 2>&1) || true
		echo "$out" >>"$DIR/wrk.log"
		p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
		p90=$(echo "$out" | awk '$1 == "90%" {print $2}')
		p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
		max=$(echo "$out" | awk '$1 == "Latency" && NF >= 4 {print $4; exit}')
		line=$(echo "$out" | grep '^BENCH ' || echo "BENCH rps=0 errors=-1 bytes=0")
		echo "$label $r $(to_ms "${p50:-0s}") $(to_ms "${p90:-0s}") $(to_ms "${p99:-0s}")" \
			"$(to_ms "${max:-0s}") $line" >>"$RESULTS"
	done
done

# ---- table
echo
printf 'wrk -t%s -c%s -d%ss --latency, %s KiB object (gatehouse: cache hits), Workers 2, %s cores\n' \
	"$THREADS" "$CONNS" "$DUR" "$SIZE_KB" "$(nproc)"
awk -v dur="$DUR" '
	{
		delete v
		for (i = 8; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		n++; lab[n] = $1; rnd[n] = $2; p50[n] = $3; p90[n] = $4; p99[n] = $5; mx[n] = $6
		rps[n] = v["rps"]; err[n] = v["errors"]; mbs[n] = v["bytes"] / dur / 1048576
		if ($1 == "nginx") ng[$2] = $5
	}
	END {
		printf "%-11s %5s %10s %9s %9s %9s %9s %9s %10s %7s\n", "target", "round", "req/s",
			"MB/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "p99/nginx", "errors"
		for (i = 1; i <= n; i++) {
			ratio = ng[rnd[i]] > 0 ? sprintf("%.2f", p99[i] / ng[rnd[i]]) : "-"
			printf "%-11s %5d %10.1f %9.1f %9.2f %9.2f %9.2f %9.2f %10s %7d\n", lab[i],
				rnd[i], rps[i], mbs[i], p50[i], p90[i], p99[i], mx[i], ratio, err[i]
		}
	}' "$RESULTS"
