#!/bin/bash
# tls.sh - the TLS benchmark (issue 13), in one run on 127.0.0.1:
#   hits:   a 1 KiB and a 256 KiB object served from the cache to clients speaking TLS to the
#           proxy, as a browser does with a PAC "HTTPS host:port": wrk connects with TLS to the
#           proxy's TLS port and sends absolute-form requests inside (absolute.lua,
#           "GET http://origin/obj"). Against
#             - nginx serving the same files over TLS itself (the ceiling: no proxy at all),
#             - Squid's https_port (Debian's squid-openssl; installed when missing), caching;
#           and Gatehouse's plain listener for the cost of TLS itself. Twice: on keep-alive
#           connections (handshakes do not count), and with "Connection: close" on the 1 KiB
#           object (one full handshake per request: wrk resumes no sessions). And where session
#           resumption matters: openssl s_time, one client, a connection per request for the
#           1 KiB object, with full handshakes (-new) and with resumed ones (-reuse: TLS 1.3
#           tickets), counting how many were resumed.
#   parent: uncached requests through an HTTPS parent: wrk -> Gatehouse (plain, no cache,
#           ProxyRemote * https://...) -> Gatehouse parent (Listen ... https) -> nginx, against
#           the same chain with ProxyRemote * http://... to the parent's plain listener.
# Printed: requests/s, latency, ratios to nginx-over-TLS and to Squid, the parent's TLS/plain
# ratio, each server's CPU time per request (user + system over all its processes and threads,
# from /proc around each run: the figure a loaded machine moves least), and the memory (VmHWM
# and VmRSS summed over each server's processes).
#
# Every answer is checked before measuring (status and size with curl, through the proxies over
# TLS with the test CA trusted; Gatehouse's and Squid's copies are hits, the parent chain's are
# not), and every wrk run must have no error and full bodies: otherwise the run ends with status
# 1 after the table. Not a test of speed: the figures depend on the machine and its load, and
# the target (Gatehouse's TLS hits at least nginx's requests/s) is reported, not asserted.
#
# Certificates: a test CA and an ECDSA P-256 server certificate for 127.0.0.1, made with openssl
# in the temporary directory (lib.sh bench_tls_certs); the same for every server. Every server
# must negotiate the protocol version Gatehouse does (TLS 1.3; nginx is told to offer it), or
# the run ends before measuring: handshakes of TLS 1.2 and 1.3 are not the same work.
#
# Environment: GH_BIN (default build/gatehouse), TLSBENCH_DURATION (seconds per wrk run,
# default 5), TLSBENCH_CONNS (wrk connections, default 50), TLSBENCH_THREADS (wrk threads,
# default 2), TLSBENCH_SQUID=0 (no Squid), TLSBENCH_CLOSE=0 (no "Connection: close" rows),
# TLSBENCH_PARENT=0 (no parent chain), TLSBENCH_RESUME=0 (no s_time rows), TLSBENCH_KEEP=1
# (keep the temporary directory).
# Bounded: every wait has a limit; every process started here is ended on exit.
set -euo pipefail
PY=/usr/bin/python3

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BENCH="$ROOT/tests/bench"
GH_BIN=${GH_BIN:-$ROOT/build/gatehouse}
DUR=${TLSBENCH_DURATION:-5}
CONNS=${TLSBENCH_CONNS:-50}
THREADS=${TLSBENCH_THREADS:-2}
WANT_SQUID=${TLSBENCH_SQUID:-1}
WANT_CLOSE=${TLSBENCH_CLOSE:-1}
WANT_PARENT=${TLSBENCH_PARENT:-1}
WANT_RESUME=${TLSBENCH_RESUME:-1}

for tool in nginx wrk curl openssl; do
	command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || {
		echo "tls.sh: $tool is missing (scripts/test-deps.sh installs it)" >&2; exit 1; }
done
[ -x "$GH_BIN" ] || { echo "tls.sh: $GH_BIN is missing: build it with scons" >&2; exit 1; }
for v in DUR CONNS THREADS; do
	[[ "${!v}" =~ ^[1-9][0-9]{0,3}$ ]] || { echo "tls.sh: $v must be 1 to 9999" >&2; exit 1; }
done
[ "$THREADS" -le "$CONNS" ] || { echo "tls.sh: more threads than connections" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

DIR=$(mktemp -d /tmp/gh-tlsbench.XXXXXX)
. "$BENCH/lib.sh"
PIDS=()
cleanup() {
	bench_stop_pids 50 "${PIDS[@]}" # up to 5 s for a graceful exit
	if [ -z "${TLSBENCH_KEEP:-}" ]; then
		rm -rf "$DIR"
	else
		echo "kept $DIR" >&2
	fi
}
trap cleanup EXIT INT TERM

# ---- files (dated a year back: heuristically fresh for Gatehouse and Squid) and certificates
chmod 0755 "$DIR" # mktemp makes it 0700: nginx's and Squid's unprivileged processes read here
mkdir -p "$DIR/www"
head -c 1024 /dev/urandom >"$DIR/www/1k.bin"
head -c 262144 /dev/urandom >"$DIR/www/256k.bin"
touch -d '1 year ago' "$DIR/www/1k.bin" "$DIR/www/256k.bin"
declare -A SIZE=([1k]=1024 [256k]=262144)
bench_tls_certs "$DIR" || { echo "tls.sh: openssl failed:" >&2; cat "$DIR/openssl.log" >&2; exit 1; }
CA="$DIR/ca.pem"

# ---- nginx: the origin (plain) and the ceiling (the same files over TLS)
NGX_PORT=$(bench_free_port)
NGX_TLS=$(bench_free_port)
bench_fill "$BENCH/nginx.conf.in" "$DIR/nginx.conf" DIR="$DIR" ROOT="$DIR/www" PORT="$NGX_PORT"
# ssl_protocols: Debian's nginx 1.22 speaks TLS 1.2 at most unless told (its default list ends
# there), and a TLS 1.2 handshake is another workload: a resumed one has no key exchange at all
# (a TLS 1.3 resumption has one), a full one a fifth fewer instructions. Like with like.
sed -i "s|^\(\t*\)listen 127.0.0.1:$NGX_PORT;|&\n\1listen 127.0.0.1:$NGX_TLS ssl;\n\1ssl_protocols TLSv1.2 TLSv1.3;\n\1ssl_certificate $DIR/server.pem;\n\1ssl_certificate_key $DIR/server.key;|" \
	"$DIR/nginx.conf"
grep -q "ssl_certificate " "$DIR/nginx.conf" || { echo "tls.sh: nginx.conf.in has no listen line" >&2; exit 1; }
"$NGINX" -c "$DIR/nginx.conf" -p "$DIR" >"$DIR/nginx.out" 2>&1 &
NGX_PID=$!
PIDS+=("$NGX_PID")
bench_wait_started "$NGX_PID" "$NGX_TLS" 60 || {
	echo "nginx did not start:" >&2; cat "$DIR/nginx.out" "$DIR/nginx-error.log" >&2; exit 1; }
ORIGIN="http://127.0.0.1:$NGX_PORT"

# ---- gatehouse instances from gatehouse.conf.in: gh_start NAME PORT EXTRA (EXTRA goes where
# the template's @CACHE@ is: more Listen lines, SSL*, cache and ProxyRemote directives)
declare -A GH_PID
gh_start() {
	mkdir -p "$DIR/$1"
	bench_fill "$BENCH/gatehouse.conf.in" "$DIR/$1/gatehouse.conf" PORT="$2" ACCESSLOG="" CACHE="$3"
	"$GH_BIN" -f "$DIR/$1/gatehouse.conf" >"$DIR/$1/out" 2>&1 &
	GH_PID[$1]=$!
	PIDS+=("$!")
	bench_wait_started "${GH_PID[$1]}" "$2" 60 || { echo "tls.sh: gatehouse $1 did not start:" >&2; cat "$DIR/$1/out" >&2; exit 1; }
}
TLSCONF="SSLCertificateFile $DIR/server.pem
SSLCertificateKeyFile $DIR/server.key"

# fetch URL [curl options...]: "CODE SIZE" of one fetch, then the response's head lines
fetch() {
	local url=$1
	shift
	timeout 60 curl -sS -o /dev/null -D "$DIR/head" --max-time 30 "$@" \
		-w '%{response_code} %{size_download}\n' "$url" || echo "000 0"
}
# check WHAT SIZE URL [curl options...]: the fetch answers 200 with SIZE bytes, or the run ends
check() {
	local what=$1 size=$2 code got
	shift 2
	read -r code got <<<"$(fetch "$@")"
	[ "$code" = 200 ] && [ "$got" = "$size" ] && return 0
	echo "tls.sh: $what: status $code, $got bytes (want 200, $size)" >&2
	cat "$DIR/head" >&2 2>/dev/null || true
	exit 1
}
# warm WHAT HEADER PATTERN SIZE URL [curl options...]: fetch until the response's HEADER matches
# PATTERN (a cache hit), at most 50 times
warm() {
	local what=$1 hdr=$2 pat=$3 size=$4 url=$5 i v
	shift 5
	for ((i = 0; i < 50; i++)); do
		check "$what" "$size" "$url" "$@"
		v=$(tr -d '\r' <"$DIR/head" | awk -v h="$hdr:" 'tolower($1) == tolower(h) {print}')
		case "$v" in *$pat*) return 0 ;; esac
		sleep 0.2
	done
	echo "tls.sh: $what: never a cache hit (last $hdr: ${v:-none})" >&2
	exit 1
}

# ---- gatehouse serving hits: a plain listener and a TLS one, one cache
GH_PLAIN=$(bench_free_port)
GH_TLS=$(bench_free_port)
gh_start hits "$GH_PLAIN" "Listen 127.0.0.1:$GH_TLS https
$TLSCONF
CacheRoot $DIR/hits/cache
CacheSize 256M
CacheEnable lmdb /"
bench_wait_started "${GH_PID[hits]}" "$GH_TLS" 60 || { echo "tls.sh: no TLS listener:" >&2; cat "$DIR/hits/out" >&2; exit 1; }

for f in 1k 256k; do
	check "nginx over TLS, $f" "${SIZE[$f]}" "https://127.0.0.1:$NGX_TLS/$f.bin" --cacert "$CA"
	warm "gatehouse over TLS, $f" cache-status '; hit' "${SIZE[$f]}" "$ORIGIN/$f.bin" \
		--proxy "https://127.0.0.1:$GH_TLS" --proxy-cacert "$CA"
	warm "gatehouse plain, $f" cache-status '; hit' "${SIZE[$f]}" "$ORIGIN/$f.bin" \
		--proxy "http://127.0.0.1:$GH_PLAIN"
done

# ---- squid with an https_port, caching
SQ_TLS=""
if [ "$WANT_SQUID" != 0 ]; then
	bench_squid_install squid-openssl "$DIR/apt.log" || {
		echo "tls.sh: could not install squid-openssl (see $DIR/apt.log)" >&2; TLSBENCH_KEEP=1; exit 1; }
	squid -v | grep -q -- '--with-openssl' || {
		echo "tls.sh: this squid has no OpenSSL (squid-openssl has)" >&2; exit 1; }
	SQ_PORT=$(bench_free_port)
	SQ_TLS=$(bench_free_port)
	chmod 0777 "$DIR"
	bench_fill "$BENCH/squid.conf.in" "$DIR/squid.conf" DIR="$DIR" PORT="$SQ_PORT"
	bench_squid_caching "$DIR/squid.conf" "$DIR"
	echo "https_port 127.0.0.1:$SQ_TLS tls-cert=$DIR/server.pem tls-key=$DIR/server.key" \
		>>"$DIR/squid.conf"
	squid -N -f "$DIR/squid.conf" >"$DIR/squid.out" 2>&1 &
	SQ_PID=$!
	PIDS+=("$SQ_PID")
	bench_wait_started "$SQ_PID" "$SQ_TLS" 60 || {
		echo "tls.sh: squid did not start:" >&2; cat "$DIR/squid.out" "$DIR/squid-cache.log" >&2; exit 1; }
	for f in 1k 256k; do
		warm "squid over TLS, $f" x-cache 'HIT' "${SIZE[$f]}" "$ORIGIN/$f.bin" \
			--proxy "https://127.0.0.1:$SQ_TLS" --proxy-cacert "$CA"
	done
fi

# ---- the parent chain: a parent with a plain and a TLS listener, two children (no cache)
if [ "$WANT_PARENT" != 0 ]; then
	PAR_PLAIN=$(bench_free_port)
	PAR_TLS=$(bench_free_port)
	# ProxyVia Full everywhere in the chain: both proxies name themselves in the response
	gh_start parent "$PAR_PLAIN" "Listen 127.0.0.1:$PAR_TLS https
$TLSCONF
ProxyVia Full"
	bench_wait_started "${GH_PID[parent]}" "$PAR_TLS" 60 || { echo "tls.sh: parent: no TLS listener" >&2; exit 1; }
	CH_TLS=$(bench_free_port)
	gh_start child-tls "$CH_TLS" "ProxyRemote * https://127.0.0.1:$PAR_TLS
SSLProxyCACertificateFile $CA
ProxyVia Full"
	CH_PLAIN=$(bench_free_port)
	gh_start child-plain "$CH_PLAIN" "ProxyRemote * http://127.0.0.1:$PAR_PLAIN
ProxyVia Full"
	for ch in tls plain; do
		port=CH_${ch^^}
		for f in 1k 256k; do
			for i in 1 2; do # the second is not a hit either: nothing caches
				check "through the $ch parent, $f" "${SIZE[$f]}" "$ORIGIN/$f.bin" \
					--proxy "http://127.0.0.1:${!port}"
				grep -qi '^cache-status:.*; hit' "$DIR/head" && {
					echo "tls.sh: the parent chain answered from a cache" >&2; exit 1; }
				# two Via entries: the child's and the parent's (so the parent was used)
				[ "$(grep -i '^via:' "$DIR/head" | grep -o 'Gatehouse/' | wc -l)" -ge 2 ] || {
					echo "tls.sh: the $ch chain did not go through the parent:" >&2
					cat "$DIR/head" >&2; exit 1; }
			done
		done
	done
fi

# ---- every TLS server speaks what Gatehouse speaks with an unconfigured client (the figures
# compare handshakes of one protocol): "VERSION CIPHERSUITE" of one handshake
proto_of() {
	timeout 10 openssl s_client -connect "127.0.0.1:$1" -brief </dev/null 2>&1 |
		awk -F': ' '/^Protocol version/ {p = $2} /^Ciphersuite/ {c = $2} END {print p, c}'
}
GH_PROTO=$(proto_of "$GH_TLS")
for t in "nginx $NGX_TLS" ${SQ_TLS:+"squid $SQ_TLS"}; do
	read -r name port <<<"$t"
	p=$(proto_of "$port")
	[ "${p%% *}" = "${GH_PROTO%% *}" ] || {
		echo "tls.sh: $name speaks ${p:-nothing}, Gatehouse $GH_PROTO: not comparable" >&2; exit 1; }
done

# ---- the runs: "GROUP SIZE TARGET BENCH rps=... p50_us=... p99_us=... errors=... requests=...
# bytes=..." per run into RESULTS; a run with errors or short bodies fails the script at the end
RESULTS="$DIR/results"
: >"$RESULTS"
FAILED=0
TICK=$(getconf CLK_TCK)
# pids_of TARGET: the processes whose CPU time a run of TARGET counts (the origin nginx is left
# out of the proxies' and the chains': it serves no hit, and the same misses in both chains)
pids_of() {
	case $1 in
	nginx-tls) echo "$NGX_PID" ;;
	gatehouse-*) echo "${GH_PID[hits]}" ;;
	squid-tls) echo "$SQ_PID" ;;
	via-https-parent) echo "${GH_PID[child-tls]} ${GH_PID[parent]}" ;;
	via-http-parent) echo "${GH_PID[child-plain]} ${GH_PID[parent]}" ;;
	esac
}
# cpu_field TICKS_BEFORE TICKS_AFTER REQUESTS: " cpu_us=N", the CPU time per request
cpu_field() {
	awk -v a="$1" -v b="$2" -v n="$3" -v t="$TICK" 'BEGIN { printf " cpu_us=%.0f", (n > 0 ? (b - a) / t * 1e6 / n : 0) }'
}
run() { # group size target url [absolute-form target] [-- more wrk options]
	local group=$1 size=$2 target=$3 url=$4 abs=${5:-} out line c0 c1
	shift 5 || shift $#
	c0=$(bench_tree_ticks $(pids_of "$target"))
	out=$(timeout $((DUR + 60)) wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" --timeout 20s "$@" \
		-s "$BENCH/absolute.lua" "$url" ${abs:+-- "$abs"} 2>&1) || true
	c1=$(bench_tree_ticks $(pids_of "$target"))
	echo "== $group $size $target: $out" >>"$DIR/wrk.log"
	line=$(echo "$out" | grep '^BENCH ' || echo "BENCH rps=0 p50_us=0 p99_us=0 errors=-1 requests=0 bytes=0")
	line="$line$(cpu_field "$c0" "$c1" "$(echo "$line" | sed -n 's/.* requests=\([0-9]*\).*/\1/p')")"
	echo "$group $size $target $line" >>"$RESULTS"
	# wrk counts the heads too: a full body is at least SIZE per request
	echo "$line" | awk -v s="${SIZE[$size]}" '{
		for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		exit !(v["errors"] == 0 && v["requests"] > 0 && v["bytes"] >= v["requests"] * s) }' || {
		echo "tls.sh: $group $size $target: errors or short bodies: $line" >&2
		FAILED=1
	}
}

echo "tls.sh: $GH_BIN; wrk -t$THREADS -c$CONNS -d${DUR}s per run; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for f in 1k 256k; do
	echo "running $f hits on keep-alive connections ..." >&2
	run hit "$f" nginx-tls "https://127.0.0.1:$NGX_TLS/$f.bin" ""
	run hit "$f" gatehouse-tls "https://127.0.0.1:$GH_TLS/" "$ORIGIN/$f.bin"
	[ -n "$SQ_TLS" ] && run hit "$f" squid-tls "https://127.0.0.1:$SQ_TLS/" "$ORIGIN/$f.bin"
	run hit "$f" gatehouse-plain "http://127.0.0.1:$GH_PLAIN/" "$ORIGIN/$f.bin"
done
if [ "$WANT_CLOSE" != 0 ]; then
	echo "running 1k hits, one connection (and TLS handshake) per request ..." >&2
	run close 1k nginx-tls "https://127.0.0.1:$NGX_TLS/1k.bin" "" -H "Connection: close"
	run close 1k gatehouse-tls "https://127.0.0.1:$GH_TLS/" "$ORIGIN/1k.bin" -H "Connection: close"
	[ -n "$SQ_TLS" ] && run close 1k squid-tls "https://127.0.0.1:$SQ_TLS/" "$ORIGIN/1k.bin" \
		-H "Connection: close"
	run close 1k gatehouse-plain "http://127.0.0.1:$GH_PLAIN/" "$ORIGIN/1k.bin" -H "Connection: close"
fi
# stime GROUP TARGET PORT WWW -new|-reuse: openssl s_time, one client making connections one
# after the other for DUR seconds, each a TLS handshake (full with -new, resumed with -reuse:
# the session of the previous one, a TLS 1.3 ticket) and one HTTP/1.0 request for WWW read to
# the end. Its "r" (resumed) and "*" (full) per connection are counted.
stime() {
	local group=$1 target=$2 port=$3 www=$4 mode=$5 out t0 t1 n per resumed c0 c1
	c0=$(bench_tree_ticks $(pids_of "$target"))
	t0=$(date +%s.%N)
	out=$(timeout $((DUR + 60)) openssl s_time -connect "127.0.0.1:$port" -www "$www" "$mode" \
		-time "$DUR" 2>&1) || true
	t1=$(date +%s.%N)
	c1=$(bench_tree_ticks $(pids_of "$target"))
	echo "== $group $target: $out" >>"$DIR/stime.log"
	n=$(echo "$out" | awk '/connections in .* real seconds/ {n = $1} END {print n + 0}')
	per=$(echo "$out" | awk '/bytes read per connection/ {p = $(NF - 4)} END {print p + 0}')
	resumed=$(echo "$out" | grep -E '^[r*]+$' | tr -cd r | wc -c)
	awk -v g="$group" -v t="$target" -v n="$n" -v r="$resumed" -v a="$t0" -v b="$t1" -v per="$per" \
		-v cpu="$(cpu_field "$c0" "$c1" "$n")" \
		'BEGIN { printf "%s 1k %s BENCH rps=%.1f p50_us=-1 p99_us=-1 errors=0 requests=%d bytes=%d resumed=%d%s\n",
			g, t, n / (b - a), n, n * per, r, cpu }' >>"$RESULTS"
	# a connection's bytes are the head and the 1 KiB body
	[ "$n" -gt 0 ] && [ "$per" -ge 1024 ] || {
		echo "tls.sh: s_time $mode $target: $n connections, $per bytes each" >&2; FAILED=1; }
}
if [ "$WANT_RESUME" != 0 ]; then
	echo "running 1k hits, one client, a handshake per request: full, then resumed ..." >&2
	for mode in new reuse; do
		g=$([ "$mode" = new ] && echo full || echo resumed)
		stime "$g" nginx-tls "$NGX_TLS" /1k.bin "-$mode"
		stime "$g" gatehouse-tls "$GH_TLS" "$ORIGIN/1k.bin" "-$mode"
		[ -n "$SQ_TLS" ] && stime "$g" squid-tls "$SQ_TLS" "$ORIGIN/1k.bin" "-$mode"
	done
fi
if [ "$WANT_PARENT" != 0 ]; then
	for f in 1k 256k; do
		echo "running $f uncached through the parent, TLS then plain ..." >&2
		run parent "$f" via-https-parent "http://127.0.0.1:$CH_TLS/" "$ORIGIN/$f.bin"
		run parent "$f" via-http-parent "http://127.0.0.1:$CH_PLAIN/" "$ORIGIN/$f.bin"
	done
fi

# ---- table
echo
echo "TLS: $GH_PROTO (every server: checked before the runs);" \
	"kernel TLS: $([ -e /proc/net/tls_stat ] && echo "module loaded" || echo "not in this kernel (no /proc/net/tls_stat)")"
printf 'wrk -t%s -c%s -d%ss per row, Workers 2 (Gatehouse), worker_processes 2 (nginx), %s cores\n' \
	"$THREADS" "$CONNS" "$DUR" "$(nproc)"
awk '
	{
		delete v
		for (i = 4; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		g[NR] = $1; s[NR] = $2; t[NR] = $3; rps[NR] = v["rps"]; p50[NR] = v["p50_us"]
		p99[NR] = v["p99_us"]; err[NR] = v["errors"]; by[$1 " " $2 " " $3] = v["rps"]
		cpu[NR] = v["cpu_us"]
		res[NR] = ("resumed" in v) ? sprintf("  resumed %d of %d", v["resumed"], v["requests"]) : ""
	}
	END {
		printf "%-7s %-5s %-17s %11s %8s %8s %8s %8s %9s %6s\n", "run", "size", "target",
			"requests/s", "p50 ms", "p99 ms", "x nginx", "x squid", "cpu us/r", "errors"
		for (i = 1; i <= NR; i++) {
			n = by[g[i] " " s[i] " nginx-tls"]; q = by[g[i] " " s[i] " squid-tls"]
			if (g[i] == "parent") n = by[g[i] " " s[i] " via-http-parent"]
			rn = n > 0 ? sprintf("%.2f", rps[i] / n) : "-"
			rq = (t[i] ~ /^gatehouse/ && q > 0) ? sprintf("%.2f", rps[i] / q) : "-"
			l50 = p50[i] < 0 ? "-" : sprintf("%.2f", p50[i] / 1000.0)
			l99 = p99[i] < 0 ? "-" : sprintf("%.2f", p99[i] / 1000.0)
			printf "%-7s %-5s %-17s %11.0f %8s %8s %8s %8s %9d %6d%s\n", g[i], s[i], t[i], rps[i],
				l50, l99, rn, rq, cpu[i], err[i], res[i]
		}
		print "(hit: wrk, keep-alive; close: wrk, a new connection and a full handshake per request;"
		print " full/resumed: openssl s_time, one client, one connection per request, a full or a"
		print " resumed handshake each; parent: uncached, \"x nginx\" there is the ratio to the"
		print " chain with a plain parent; cpu us/r: the server'"'"'s CPU time per request, all its"
		print " processes and threads: for the chains both proxies, never the origin)"
		for (i = 1; i <= NR; i++) {
			if (t[i] != "gatehouse-tls") continue
			n = by[g[i] " " s[i] " nginx-tls"]
			if (n > 0)
				printf "target, %s %s: Gatehouse TLS hits >= nginx over TLS: %s (%.2f)\n",
					g[i], s[i], (rps[i] >= n ? "met" : "NOT met"), rps[i] / n
		}
	}' "$RESULTS"

mem() { # label pid
	kill -0 "$2" 2>/dev/null || { echo "  $1: DIED"; FAILED=1; return; }
	awk -v l="$1" -v h="$(bench_tree_kb "$2" VmHWM)" -v r="$(bench_tree_kb "$2" VmRSS)" 'BEGIN {
		printf "  %-32s peak %6.1f MB, now %6.1f MB\n", l, h / 1024, r / 1024 }'
}
echo "memory (VmHWM / VmRSS summed over each server's processes):"
mem "nginx (master + 2 workers)" "$NGX_PID"
mem "gatehouse (hits, plain + TLS)" "${GH_PID[hits]}"
[ -n "$SQ_TLS" ] && mem "squid (https_port, caching)" "$SQ_PID"
if [ "$WANT_PARENT" != 0 ]; then
	mem "gatehouse parent (plain + TLS)" "${GH_PID[parent]}"
	mem "gatehouse child to https parent" "${GH_PID[child-tls]}"
	mem "gatehouse child to http parent" "${GH_PID[child-plain]}"
fi
# the daemons end gracefully here, so that a sanitizer build's reports (leaks are reported at
# exit) are in their output: any report fails the run
bench_stop_pids 100 "${GH_PID[@]}"
for name in "${!GH_PID[@]}"; do
	if grep -E -q 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$DIR/$name/out"; then
		echo "tls.sh: gatehouse $name: sanitizer report:" >&2
		grep -E -A20 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$DIR/$name/out" | head -60 >&2
		FAILED=1
	fi
done
if [ "$FAILED" != 0 ]; then
	echo "tls.sh: FAILED (see above; wrk's output is in $DIR/wrk.log with TLSBENCH_KEEP=1)" >&2
	exit 1
fi
