#!/bin/bash
# run.sh - foundation benchmark: wrk against nginx directly and through gatehouse (and Squid when
# BENCH_SQUID=1), for a 1 KiB and a 256 KiB static file. Prints requests/s, p99 latency and the
# ratio to nginx direct, then the proxy's peak RSS. Everything runs on 127.0.0.1 from a temporary
# directory; every process started here is killed on exit. Not a test: nothing is asserted.
#
# Environment: GH_BIN (default build/gatehouse), BENCH_DURATION (seconds per run, default 10),
# BENCH_CONNS (default 50), BENCH_THREADS (default 2), BENCH_SQUID=1, BENCH_ACCESSLOG=1
# (gatehouse writes a Squid-format access log), BENCH_KEEP=1 (keep the temporary directory),
# BENCH_CACHE=1 (gatehouse caches: CacheRoot in the temporary directory, files dated a year
# back so they are heuristically fresh; every request after the first is a cache hit),
# BENCH_MANY=1 (also 10,000 distinct 4 KiB files requested at random, many.lua, after a
# warm-up run through each proxy).
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BENCH="$ROOT/tests/bench"
GH_BIN=${GH_BIN:-$ROOT/build/gatehouse}
DUR=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNS:-50}
THREADS=${BENCH_THREADS:-2}
WRK_TIMEOUT=$((DUR + 20))

for tool in nginx wrk curl python3; do
	command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || {
		echo "run.sh: $tool is missing (scripts/test-deps.sh installs it)" >&2; exit 1; }
done
[ -x "$GH_BIN" ] || { echo "run.sh: $GH_BIN is missing: build it with scons" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

DIR=$(mktemp -d /tmp/gh-bench.XXXXXX)
. "$(dirname "$0")/lib.sh"
PIDS=()
cleanup() {
	bench_stop_pids 50 "${PIDS[@]}" # up to 5 s for a graceful exit
	if [ -z "${BENCH_KEEP:-}" ]; then
		rm -rf "$DIR"
	else
		echo "kept $DIR"
	fi
}
trap cleanup EXIT INT TERM

fill() { # template output, then KEY=VALUE...
	local tpl=$1 out=$2 text
	shift 2
	text=$(cat "$tpl")
	local kv
	for kv in "$@"; do
		text=${text//@${kv%%=*}@/${kv#*=}}
	done
	printf '%s\n' "$text" >"$out"
}

# ---- files and nginx
mkdir -p "$DIR/www"
chmod 0755 "$DIR" # mktemp makes it 0700: nginx's unprivileged workers could not read the files
head -c 1024 /dev/urandom >"$DIR/www/1k.bin"
head -c 262144 /dev/urandom >"$DIR/www/256k.bin"
if [ -n "${BENCH_MANY:-}" ]; then
	mkdir -p "$DIR/www/many"
	/usr/bin/python3 -c 'import os, sys
for i in range(10000):
    open(os.path.join(sys.argv[1], "f%d.bin" % i), "wb").write(os.urandom(4096))' "$DIR/www/many"
fi
if [ -n "${BENCH_CACHE:-}" ]; then
	touch -d '1 year ago' "$DIR/www/1k.bin" "$DIR/www/256k.bin"
	[ -d "$DIR/www/many" ] && find "$DIR/www/many" -type f -exec touch -d '1 year ago' {} +
fi
NGX_PORT=$(bench_free_port)
fill "$BENCH/nginx.conf.in" "$DIR/nginx.conf" DIR="$DIR" ROOT="$DIR/www" PORT="$NGX_PORT"
"$NGINX" -c "$DIR/nginx.conf" -p "$DIR" >"$DIR/nginx.out" 2>&1 &
PIDS+=($!)
disown
bench_wait_port "$NGX_PORT" 10 || { echo "nginx did not start:"; cat "$DIR/nginx.out" "$DIR/nginx-error.log"; exit 1; }

# ---- gatehouse
GH_PORT=$(bench_free_port)
ACCESSLOG=""
[ -n "${BENCH_ACCESSLOG:-}" ] && ACCESSLOG="AccessLog $DIR/access.log"
CACHE=""
[ -n "${BENCH_CACHE:-}" ] && CACHE="CacheRoot $DIR/cache
CacheSize 1G
CacheEnable lmdb /"
fill "$BENCH/gatehouse.conf.in" "$DIR/gatehouse.conf" PORT="$GH_PORT" ACCESSLOG="$ACCESSLOG" \
	CACHE="$CACHE"
"$GH_BIN" -f "$DIR/gatehouse.conf" 2>"$DIR/gatehouse.stderr" &
GH_PID=$!
PIDS+=($GH_PID)
disown
bench_wait_port "$GH_PORT" 10 || { echo "gatehouse did not start:"; cat "$DIR/gatehouse.stderr"; exit 1; }
curl -sS --max-time 5 -x "http://127.0.0.1:$GH_PORT" -o /dev/null "http://127.0.0.1:$NGX_PORT/1k.bin" || {
	echo "gatehouse does not proxy:"; cat "$DIR/gatehouse.stderr"; exit 1; }
if [ -n "${BENCH_CACHE:-}" ]; then # store both files before measuring hits
	curl -sS --max-time 5 -x "http://127.0.0.1:$GH_PORT" -o /dev/null "http://127.0.0.1:$NGX_PORT/256k.bin"
fi

# ---- squid, on request
SQ_PORT=""
if [ -n "${BENCH_SQUID:-}" ]; then
	bench_squid_install squid "$DIR/apt.log" || {
		echo "could not install squid (see $DIR/apt.log)"; BENCH_KEEP=1; exit 1; }
	SQ_PORT=$(bench_free_port)
	chmod 0777 "$DIR"
	fill "$BENCH/squid.conf.in" "$DIR/squid.conf" DIR="$DIR" PORT="$SQ_PORT"
	if [ -n "${BENCH_CACHE:-}" ]; then # a caching Squid: memory and disk cache
		bench_squid_caching "$DIR/squid.conf" "$DIR"
	fi
	squid -N -f "$DIR/squid.conf" >"$DIR/squid.out" 2>&1 &
	PIDS+=($!)
	disown
	bench_wait_port "$SQ_PORT" 20 || { echo "squid did not start:"; cat "$DIR/squid.out" "$DIR/squid-cache.log"; exit 1; }
	if [ -n "${BENCH_CACHE:-}" ]; then
		for f in 1k 256k; do
			curl -sS --max-time 5 -x "http://127.0.0.1:$SQ_PORT" -o /dev/null "http://127.0.0.1:$NGX_PORT/$f.bin"
		done
	fi
fi

# ---- peak RSS of the gatehouse process tree, sampled in the background: VmRSS = RssAnon
# (heap, stacks, buffers) + RssFile (mapped file pages: the binary, libraries and the pages of
# the LMDB map the process touched) + RssShmem; the split is kept at the peak
tree_rss_kb() { # prints "total anon file"
	local t=0 a=0 f=0 p v
	for p in $GH_PID $(pgrep -P "$GH_PID" || true); do
		v=$(awk '/^VmRSS:/ {t=$2} /^RssAnon:/ {a=$2} /^RssFile:/ {f=$2}
			END {print t+0, a+0, f+0}' "/proc/$p/status" 2>/dev/null || echo "0 0 0")
		set -- $v
		t=$((t + $1)) a=$((a + $2)) f=$((f + $3))
	done
	echo "$t $a $f"
}
(
	peak=0
	for ((i = 0; i < 20 * 60 * 5; i++)); do
		kill -0 "$GH_PID" 2>/dev/null || break
		r=$(tree_rss_kb)
		[ "${r%% *}" -gt "$peak" ] && peak=${r%% *} && echo "$r" >"$DIR/peak_rss"
		sleep 0.2
	done
) &
PIDS+=($!)
disown

# ---- runs
run_wrk() { # label url [target]
	local out
	out=$(timeout "$WRK_TIMEOUT" wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" --timeout 10s \
		-s "$BENCH/absolute.lua" "$2" ${3:+-- "$3"} 2>&1) || true
	echo "$out" >>"$DIR/wrk.log"
	local line
	line=$(echo "$out" | grep '^BENCH ' || echo "BENCH rps=0 p50_us=0 p99_us=0 errors=-1")
	echo "$1 $line"
}

RESULTS="$DIR/results"
: >"$RESULTS"
for f in 1k 256k; do
	echo "running $f: nginx direct ..." >&2
	run_wrk "$f nginx" "http://127.0.0.1:$NGX_PORT/$f.bin" >>"$RESULTS"
	echo "running $f: through gatehouse ..." >&2
	run_wrk "$f gatehouse" "http://127.0.0.1:$GH_PORT/" "http://127.0.0.1:$NGX_PORT/$f.bin" >>"$RESULTS"
	if [ -n "$SQ_PORT" ]; then
		echo "running $f: through squid ..." >&2
		run_wrk "$f squid" "http://127.0.0.1:$SQ_PORT/" "http://127.0.0.1:$NGX_PORT/$f.bin" >>"$RESULTS"
	fi
done

if [ -n "${BENCH_MANY:-}" ]; then
	run_many() { # label proxy-url|"" (direct)
		local out
		if [ -n "$2" ]; then
			out=$(timeout "$WRK_TIMEOUT" wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" --timeout 10s \
				-s "$BENCH/many.lua" "$2" -- "http://127.0.0.1:$NGX_PORT/many/" 2>&1) || true
		else
			out=$(timeout "$WRK_TIMEOUT" wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" --timeout 10s \
				-s "$BENCH/many.lua" "http://127.0.0.1:$NGX_PORT/" -- direct /many/ 2>&1) || true
		fi
		echo "$out" >>"$DIR/wrk.log"
		echo "$1 $(echo "$out" | grep '^BENCH ' || echo "BENCH rps=0 p50_us=0 p99_us=0 errors=-1")"
	}
	echo "running 10k x 4k: nginx direct ..." >&2
	run_many "10kx4k nginx" "" >>"$RESULTS"
	echo "running 10k x 4k: through gatehouse (warm-up, then measured) ..." >&2
	run_many "warm gatehouse" "http://127.0.0.1:$GH_PORT/" >/dev/null
	run_many "10kx4k gatehouse" "http://127.0.0.1:$GH_PORT/" >>"$RESULTS"
	if [ -n "$SQ_PORT" ]; then
		echo "running 10k x 4k: through squid (warm-up, then measured) ..." >&2
		run_many "warm squid" "http://127.0.0.1:$SQ_PORT/" >/dev/null
		run_many "10kx4k squid" "http://127.0.0.1:$SQ_PORT/" >>"$RESULTS"
	fi
fi

# ---- table
echo
printf 'wrk -t%s -c%s -d%ss, Workers 2, %s cores%s\n' "$THREADS" "$CONNS" "$DUR" "$(nproc)" \
	"${BENCH_CACHE:+, gatehouse serving cache hits}"
awk '
	{
		delete v
		for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		size[NR] = $1; tgt[NR] = $2; rps[NR] = v["rps"]; p50[NR] = v["p50_us"]
		p99[NR] = v["p99_us"]; err[NR] = v["errors"]; by[$1 " " $2] = v["rps"]
	}
	END {
		printf "%-6s %-10s %12s %10s %10s %9s %9s %8s\n", "size", "target", "requests/s",
			"p50 ms", "p99 ms", "x nginx", "gh/squid", "errors"
		for (i = 1; i <= NR; i++) {
			n = by[size[i] " nginx"]; q = by[size[i] " squid"]
			rn = n > 0 ? sprintf("%.2f", rps[i] / n) : "-"
			rq = (tgt[i] == "gatehouse" && q > 0) ? sprintf("%.2f", rps[i] / q) : "-"
			printf "%-6s %-10s %12.0f %10.2f %10.2f %9s %9s %8d\n", size[i], tgt[i], rps[i],
				p50[i] / 1000.0, p99[i] / 1000.0, rn, rq, err[i]
		}
	}' "$RESULTS"
read -r peak peak_anon peak_file <"$DIR/peak_rss" 2>/dev/null || peak=0 peak_anon=0 peak_file=0
hwm=0
for p in $GH_PID $(pgrep -P "$GH_PID" || true); do
	kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
	hwm=$((hwm + ${kb:-0}))
done
awk -v p="$peak" -v a="$peak_anon" -v f="$peak_file" -v h="$hwm" 'BEGIN {
	printf "gatehouse peak RSS: %.1f MB sampled every 0.2 s (RssAnon %.1f MB + RssFile %.1f MB at that sample), VmHWM %.1f MB\n", p / 1024, a / 1024, f / 1024, h / 1024 }'
# resident now, split: anonymous memory vs file-backed pages (binary, libraries, LMDB map pages)
awk '/^RssAnon:|^RssFile:/ { printf "%s %.1f MB  ", $1, $2 / 1024 } END { print "(now)" }' \
	"/proc/$GH_PID/status" 2>/dev/null || true
if ! kill -0 "$GH_PID" 2>/dev/null; then
	echo "gatehouse DIED during the benchmark; stderr:"
	tail -20 "$DIR/gatehouse.stderr"
fi
