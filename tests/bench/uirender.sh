#!/bin/bash
# uirender.sh - how long the status page takes to render with a big store (issue 11: target
# under 10 ms with 1,000,000 entries for the overview and one page of the cache browser).
#
# Fills a store with N entries directly through cache/ (build/bench/uirender_fill: no HTTP),
# starts the real daemon on it with the status page on loopback, and times each page with
# curl over loopback (time_total: connect + request + render + transfer), R runs per page
# after one warm-up; prints the median and the maximum in milliseconds. Bounded: every wait
# has a deadline, the daemon is stopped and the store removed at the end.
#
# usage: tests/bench/uirender.sh            (N=1000000 R=21; GH_BIN=build/gatehouse)
#        N=100000 tests/bench/uirender.sh   (a quicker run)
#        STORE=/tmp/s tests/bench/uirender.sh (fill /tmp/s once, reuse it in later runs)
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh

N=${N:-1000000}
R=${R:-51}
BIN=${GH_BIN:-build/gatehouse}
FILL=${FILL:-build/bench/uirender_fill}
[ -x "$BIN" ] && [ -x "$FILL" ] || { echo "build first: scons -Q -j2 build/gatehouse build/bench" >&2; exit 2; }

dir=$(mktemp -d /tmp/gh-uirender-XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && bench_stop_pids 100 "$pid"
	rm -rf "$dir"
}
trap cleanup EXIT

store=${STORE:-$dir/cache}   # STORE=DIR: reuse a store filled before (kept afterwards)
if [ ! -e "$store/data.mdb" ]; then
	echo "filling $N entries into $store..."
	timeout 1800 "$FILL" "$store" "$N" $((8 << 30))
fi

port=$(bench_free_port)
cat >"$dir/gatehouse.conf" <<CONF
Listen 127.0.0.1:$port
User root
Workers 2
LogLevel warn
CacheRoot $store
CacheSize 8G
CacheEnable lmdb /
<Location /gatehouse/>
    SetHandler gatehouse-status
    Require ip 127.0.0.1
</Location>
<Proxy *>
    Require ip 127.0.0.1
</Proxy>
CONF
"$BIN" -f "$dir/gatehouse.conf" 2>"$dir/stderr" &
pid=$!
# the store is swept at open (every record read once): give it time
bench_wait_port "$port" 600 || { cat "$dir/stderr" >&2; exit 1; }

base="http://127.0.0.1:$port/gatehouse/"
pages=(
	""
	"cache"
	"cache?prefix=http%3A%2F%2Fhost500.bench%2F"
	"cache?prefix=http%3A%2F%2Fhost500.bench%2F&after=http%3A%2F%2Fhost500.bench%2Fdir%2F0500500%2Ffile"
	"cache?q=0777777"
	"cache/entry?url=http%3A%2F%2Fhost123.bench%2Fdir%2F0000123%2Ffile"
	"api/cache?prefix=http%3A%2F%2Fhost500.bench%2F"
)
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
# total: curl's time_total (connect + request + render + transfer over loopback);
# server: time_starttransfer - time_pretransfer (request sent -> first byte: the daemon's
# parse + render + send of the head)
printf '%-72s %6s %10s %10s %10s %7s\n' page status server_med total_med total_max bytes
for p in "${pages[@]}"; do
	curl -s -o /dev/null --max-time 30 "$base$p" || true
	totals=() servers=()
	code=0 size=0
	for ((i = 0; i < R; i++)); do
		read -r code t pre st size < <(curl -s -o /dev/null --max-time 30 \
			-w '%{http_code} %{time_total} %{time_pretransfer} %{time_starttransfer} %{size_download}\n' "$base$p")
		totals+=("$t")
		servers+=("$(echo "$st - $pre" | bc -l)")
	done
	med() { printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"; }
	tmed=$(med "${totals[@]}")
	smed=$(med "${servers[@]}")
	tmax=$(printf '%s\n' "${totals[@]}" | sort -g | tail -1)
	label="/gatehouse/$p"
	[ ${#label} -gt 72 ] && label="${label:0:69}..."
	printf '%-72s %6s %8.2fms %8.2fms %8.2fms %7s\n' "$label" "$code" \
		"$(echo "$smed * 1000" | bc -l)" "$(echo "$tmed * 1000" | bc -l)" \
		"$(echo "$tmax * 1000" | bc -l)" "$size"
done
