#!/bin/bash
# ftp.sh - the FTP gateway's benchmark (issue 12), in one run on 127.0.0.1:
#   hits:   a 4 MiB file served from Gatehouse's cache, fetched as ftp:// (stored by the FTP
#           gateway from vsftpd) against the same file fetched as http:// (stored from nginx):
#           wrk with absolute-form requests (absolute.lua), requests/s and latency, in pairs of
#           runs (one per scheme, in alternating order); the ratio FTP/HTTP requests/s, the
#           median of the pairs', has the target >= 0.95 (an FTP hit is an HTTP hit: same store,
#           same body pump).
#   misses: the 4 MiB file under a CacheDisable prefix, so that every request goes to vsftpd,
#           fetched through Gatehouse (curl -x) against curl fetching it straight from vsftpd;
#           N sequential fetches each, interleaved (one direct, one through the proxy, ...) so
#           that the machine's load falls on both alike; the ratio direct time / proxy time
#           (= proxy requests/s over direct requests/s) has the target >= 0.9.
# Every answer is checked (status, size; hits say "hit" in Cache-Status), and vsftpd's transfer
# log must show exactly one RETR of the cached file (the warm-up's: hits never reach vsftpd) and
# one per miss. Not a test: the targets are reported, not asserted (the figures depend on the
# machine and its load), but a wrong answer or a miss among the hits ends the run with status 1.
#
# vsftpd runs from a config in the temporary directory: anonymous only, read-only, on a free
# port, passive ports in a free range, listening on 127.0.0.1 only. The files are dated a year
# back, so MDTM and Last-Modified make both copies heuristically fresh (a day, CacheMaxExpire).
#
# Environment: GH_BIN (default build/gatehouse), FTPBENCH_DURATION (seconds per wrk run,
# default 4), FTPBENCH_ROUNDS (pairs of wrk runs, one per scheme, in alternating order, default
# 6; the ratio is the median of the pairs' ratios), FTPBENCH_CONNS (wrk connections, default 4), FTPBENCH_N (sequential misses per side,
# default 50), FTPBENCH_ONLY=direct|http (only the parts that need no FTP gateway: curl straight
# from vsftpd, and the HTTP hits), FTPBENCH_ACCESSLOG=1 (Gatehouse writes a Squid-format access
# log, and the outcomes of the hits are counted from it), FTPBENCH_CALLGRIND=1 (also the
# instructions per hit under valgrind's callgrind, FTPBENCH_CG_N hits per scheme, default 100),
# FTPBENCH_KEEP=1 (keep the temporary directory).
# Bounded: every wait has a limit; every process started here is ended on exit.
set -euo pipefail
PY=/usr/bin/python3

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BENCH="$ROOT/tests/bench"
GH_BIN=${GH_BIN:-$ROOT/build/gatehouse}
DUR=${FTPBENCH_DURATION:-4}
ROUNDS=${FTPBENCH_ROUNDS:-6}
CONNS=${FTPBENCH_CONNS:-4}
N=${FTPBENCH_N:-50}
ONLY=${FTPBENCH_ONLY:-}
SIZE=4194304

for tool in nginx vsftpd wrk curl; do
	command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || {
		echo "ftp.sh: $tool is missing (scripts/test-deps.sh installs it)" >&2; exit 1; }
done
[ -x "$GH_BIN" ] || { echo "ftp.sh: $GH_BIN is missing: build it with scons" >&2; exit 1; }
for v in DUR ROUNDS CONNS N; do
	[[ "${!v}" =~ ^[1-9][0-9]{0,3}$ ]] || { echo "ftp.sh: $v must be 1 to 9999" >&2; exit 1; }
done
case "$ONLY" in "" | direct | http) ;; *) echo "ftp.sh: FTPBENCH_ONLY=direct|http" >&2; exit 1 ;; esac
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
VSFTPD=$(command -v vsftpd || echo /usr/sbin/vsftpd)

DIR=$(mktemp -d /tmp/gh-ftpbench.XXXXXX)
. "$BENCH/lib.sh"
PIDS=()
cleanup() {
	bench_stop_pids 50 "${PIDS[@]}" # up to 5 s for a graceful exit
	if [ -z "${FTPBENCH_KEEP:-}" ]; then
		rm -rf "$DIR"
	else
		echo "kept $DIR" >&2
	fi
}
trap cleanup EXIT INT TERM

fg() { # command...: run it in the background and wait, so that a signal stops this script at once
	local p
	"$@" &
	p=$!
	PIDS+=("$p")
	wait "$p"
}

# ---- the file: the same bytes and date for nginx and vsftpd
chmod 0755 "$DIR" # mktemp makes it 0700: nginx's and vsftpd's unprivileged processes read here
mkdir -p "$DIR/www" "$DIR/ftp/pub" "$DIR/ftp/nocache" "$DIR/empty"
head -c "$SIZE" /dev/urandom >"$DIR/www/4m.bin"
cp "$DIR/www/4m.bin" "$DIR/ftp/pub/4m.bin"
cp "$DIR/www/4m.bin" "$DIR/ftp/nocache/4m.bin"
touch -d '1 year ago' "$DIR/www/4m.bin" "$DIR/ftp/pub/4m.bin" "$DIR/ftp/nocache/4m.bin"
chmod -R a+rX "$DIR/www" "$DIR/ftp"

# ---- nginx
NGX_PORT=$(bench_free_port)
bench_fill "$BENCH/nginx.conf.in" "$DIR/nginx.conf" DIR="$DIR" ROOT="$DIR/www" PORT="$NGX_PORT"
"$NGINX" -c "$DIR/nginx.conf" -p "$DIR" >"$DIR/nginx.out" 2>&1 &
PIDS+=($!)
bench_wait_port "$NGX_PORT" 10 || {
	echo "nginx did not start:" >&2; cat "$DIR/nginx.out" "$DIR/nginx-error.log" >&2; exit 1; }

# ---- vsftpd: a control port and 32 passive ports, all free now
read -r FTP_PORT PASV_MIN <<<"$($PY - <<'EOF'
import random, socket
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()
s = socket.socket(); s.bind(("127.0.0.1", 0)); ctl = s.getsockname()[1]; s.close()
for _ in range(200):
    base = random.randrange(20000, 60000 - 32)
    if all(free(p) for p in range(base, base + 32)) and not base <= ctl < base + 32:
        print(ctl, base)
        break
else:
    raise SystemExit("no free range of 32 ports")
EOF
)"
cat >"$DIR/vsftpd.conf" <<EOF
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$FTP_PORT
background=NO
anonymous_enable=YES
anon_root=$DIR/ftp
no_anon_password=YES
local_enable=NO
write_enable=NO
pasv_enable=YES
pasv_min_port=$PASV_MIN
pasv_max_port=$((PASV_MIN + 31))
port_enable=NO
secure_chroot_dir=$DIR/empty
seccomp_sandbox=NO
max_clients=0
max_per_ip=0
xferlog_enable=YES
xferlog_std_format=NO
vsftpd_log_file=$DIR/vsftpd.log
dual_log_enable=NO
use_localtime=NO
EOF
"$VSFTPD" "$DIR/vsftpd.conf" >"$DIR/vsftpd.out" 2>&1 &
PIDS+=($!)
bench_wait_port "$FTP_PORT" 10 || { echo "vsftpd did not start:" >&2; cat "$DIR/vsftpd.out" >&2; exit 1; }
FTP="ftp://127.0.0.1:$FTP_PORT"
HTTP="http://127.0.0.1:$NGX_PORT"

# retr_count PATH: vsftpd's completed downloads of PATH so far ("OK DOWNLOAD: ... "/PATH", ...")
retr_count() {
	grep -c "OK DOWNLOAD: .*\"$1\"" "$DIR/vsftpd.log" 2>/dev/null || true
}

# ---- gatehouse: everything cached but the nocache/ directory
GH_PORT=$(bench_free_port)
mkdir -p "$DIR/cache"
ACCESSLOG=""
[ -n "${FTPBENCH_ACCESSLOG:-}" ] && ACCESSLOG="AccessLog $DIR/access.log squid"
bench_fill "$BENCH/gatehouse.conf.in" "$DIR/gatehouse.conf" PORT="$GH_PORT" ACCESSLOG="$ACCESSLOG" \
	CACHE="CacheRoot $DIR/cache
CacheSize 256M
CacheEnable lmdb /
CacheDisable $FTP/nocache/"
"$GH_BIN" -f "$DIR/gatehouse.conf" >"$DIR/gatehouse.out" 2>&1 &
GH_PID=$!
PIDS+=("$GH_PID")
bench_wait_port "$GH_PORT" 10 || {
	echo "gatehouse did not start:" >&2; cat "$DIR/gatehouse.out" >&2; exit 1; }
PROXY="http://127.0.0.1:$GH_PORT"

# fetch URL [curl options...]: "CODE SIZE TIME_TOTAL" of one fetch, the body discarded
fetch() {
	local url=$1
	shift
	timeout 120 curl -sS -o /dev/null --max-time 100 "$@" \
		-w '%{response_code} %{size_download} %{time_total}\n' "$url"
}

# ---- the direct part: curl straight from vsftpd works (also what the misses compare with)
read -r code size t <<<"$(fetch "$FTP/nocache/4m.bin")"
[ "$code" = 226 ] && [ "$size" = "$SIZE" ] || {
	echo "ftp.sh: curl from vsftpd: code $code, $size bytes" >&2; cat "$DIR/vsftpd.log" >&2; exit 1; }

# warm SCHEME_URL: one fetch through the proxy (stored), then up to 50 until one is a hit
warm() {
	local url=$1 proxy=${2:-$PROXY} i cs
	read -r code size t <<<"$(fetch "$url" -x "$proxy")"
	[ "$code" = 200 ] && [ "$size" = "$SIZE" ] || {
		echo "ftp.sh: $url through gatehouse: status $code, $size bytes" >&2
		tail -20 "$DIR/gatehouse.out" >&2; exit 1; }
	for ((i = 0; i < 50; i++)); do
		cs=$(timeout 120 curl -sS -o /dev/null -D - --max-time 100 -x "$proxy" "$url" |
			tr -d '\r' | awk 'tolower($1) == "cache-status:" {print}')
		case "$cs" in *"; hit"*) return 0 ;; esac
		sleep 0.2
	done
	echo "ftp.sh: $url is never a cache hit (last Cache-Status: $cs)" >&2
	exit 1
}

# hits URL: one wrk run through the proxy (the caller does the rounds): "rps p50_us p99_us"
# gh_cpu_ticks: the daemon's CPU time so far (user + system, all threads), in clock ticks
gh_cpu_ticks() {
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$GH_PID/stat"
}
TICK=$(getconf CLK_TCK)

hits() {
	local url=$1 out c0 c1
	c0=$(gh_cpu_ticks)
	out=$(timeout $((DUR + 30)) wrk -t 2 -c "$CONNS" -d "${DUR}s" --timeout 30s \
		-s "$BENCH/absolute.lua" "$PROXY/" -- "$url" | grep '^BENCH ')
	c1=$(gh_cpu_ticks)
	case "$out" in *" errors=0 "*) ;; *) echo "ftp.sh: wrk errors: $out" >&2; exit 1 ;; esac
	# wrk counts bytes with the heads: at least SIZE per request. The last field: the
	# daemon's CPU time per request in microseconds, which the machine's other load moves
	# far less than requests/s.
	echo "$out" | awk -v size="$SIZE" -v cpu=$((c1 - c0)) -v tick="$TICK" '{
		for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		if (v["bytes"] < v["requests"] * size) { print "short bodies: " $0 > "/dev/stderr"; exit 1 }
		print v["rps"], v["p50_us"], v["p99_us"], cpu / tick * 1e6 / v["requests"] }'
}

# median: the middle line of numbers (of an even count, the lower middle: a value measured)
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
# median_mean: the median, of an even count the mean of the two middle values
median_mean() { sort -n | awk '{a[NR] = $1} END {m = int((NR + 1) / 2); print (NR % 2 ? a[m] : (a[m] + a[m + 1]) / 2)}'; }

echo "ftp.sh: $GH_BIN; vsftpd $FTP, nginx $HTTP, gatehouse $PROXY; 4 MiB file" >&2

# ---- hits
if [ "$ONLY" != direct ]; then
	warm "$HTTP/4m.bin"
	[ "$ONLY" = http ] || warm "$FTP/pub/4m.bin"
	RETR_BEFORE=$(retr_count /pub/4m.bin)
	: >"$DIR/hits.http"
	: >"$DIR/hits.ftp"
	for ((r = 1; r <= ROUNDS; r++)); do
		# each round is a pair, in alternating order (HTTP first, then FTP first, ...), so
		# that neither scheme always runs on the warmer or the quieter side of the pair
		if ((r % 2)) || [ "$ONLY" = http ]; then
			hits "$HTTP/4m.bin" >>"$DIR/hits.http"
			[ "$ONLY" = http ] || hits "$FTP/pub/4m.bin" >>"$DIR/hits.ftp"
		else
			hits "$FTP/pub/4m.bin" >>"$DIR/hits.ftp"
			hits "$HTTP/4m.bin" >>"$DIR/hits.http"
		fi
	done
	[ "$(retr_count /pub/4m.bin)" = "$RETR_BEFORE" ] || {
		echo "ftp.sh: FTP hits reached vsftpd: RETR count $RETR_BEFORE -> $(retr_count /pub/4m.bin)" >&2
		exit 1; }
	H_RPS=$(awk '{print $1}' "$DIR/hits.http" | median)
	echo "hits (wrk -t2 -c$CONNS, ${DUR}s x $ROUNDS rounds, median requests/s; p50/p99 latency of that round):"
	awk -v m="$H_RPS" '$1 == m && !done { printf "  HTTP hit: %.1f req/s, p50 %.1f ms, p99 %.1f ms\n", $1, $2 / 1000, $3 / 1000; done = 1 }' "$DIR/hits.http"
	echo "    rounds: $(awk '{printf "%s%.1f", (NR > 1 ? ", " : ""), $1}' "$DIR/hits.http")"
	if [ "$ONLY" != http ]; then
		F_RPS=$(awk '{print $1}' "$DIR/hits.ftp" | median)
		awk -v m="$F_RPS" '$1 == m && !done { printf "  FTP hit:  %.1f req/s, p50 %.1f ms, p99 %.1f ms\n", $1, $2 / 1000, $3 / 1000; done = 1 }' "$DIR/hits.ftp"
		echo "    rounds: $(awk '{printf "%s%.1f", (NR > 1 ? ", " : ""), $1}' "$DIR/hits.ftp")"
		echo "    vsftpd RETRs of the cached file: $RETR_BEFORE (the warm-up's), none during the hits"
		# the ratio of each pair (the load of a shared machine moves both runs of a pair
		# alike), and their median
		paste -d ' ' "$DIR/hits.ftp" "$DIR/hits.http" | awk '{ printf "%.3f\n", $1 / $5 }' \
			>"$DIR/hits.ratio"
		RATIO=$(median_mean <"$DIR/hits.ratio")
		echo "    FTP/HTTP per round: $(awk '{printf "%s%s", (NR > 1 ? ", " : ""), $1}' "$DIR/hits.ratio")"
		awk -v r="$RATIO" 'BEGIN { printf "  ratio FTP/HTTP hits (median of the rounds): %.3f (target >= 0.95: %s)\n", r, (r >= 0.95 ? "met" : "NOT met") }'
		# the daemon's CPU time per hit: HTTP's over FTP's (above 1: an FTP hit costs less)
		H_CPU=$(awk '{print $4}' "$DIR/hits.http" | median_mean)
		F_CPU=$(awk '{print $4}' "$DIR/hits.ftp" | median_mean)
		awk -v h="$H_CPU" -v f="$F_CPU" 'BEGIN { r = h / f; printf "  Gatehouse CPU per hit (median): HTTP %.0f us, FTP %.0f us; HTTP/FTP %.3f (target >= 0.95: %s)\n", h, f, r, (r >= 0.95 ? "met" : "NOT met") }'
		echo "    CPU us per FTP hit per round: $(awk '{printf "%s%.0f", (NR > 1 ? ", " : ""), $4}' "$DIR/hits.ftp")"
		echo "    CPU us per HTTP hit per round: $(awk '{printf "%s%.0f", (NR > 1 ? ", " : ""), $4}' "$DIR/hits.http")"
	fi
fi

# the access log's outcomes per scheme (Squid format: 4th field CODE/STATUS, 7th the URL)
if [ -n "${FTPBENCH_ACCESSLOG:-}" ] && [ "$ONLY" != direct ]; then
	echo "  access log outcomes of the hit phase and before:"
	awk '{ split($7, u, ":"); n[u[1] " " $4]++ } END { for (k in n) print "    " k ": " n[k] }' \
		"$DIR/access.log" | sort
fi

# ---- misses (and the direct fetches they compare with), interleaved
if [ "$ONLY" != http ]; then
	RETR_BEFORE=$(retr_count /nocache/4m.bin)
	: >"$DIR/miss.direct"
	: >"$DIR/miss.proxy"
	for ((i = 1; i <= N; i++)); do
		read -r code size t <<<"$(fetch "$FTP/nocache/4m.bin")"
		[ "$code" = 226 ] && [ "$size" = "$SIZE" ] || {
			echo "ftp.sh: direct fetch $i: code $code, $size bytes" >&2; exit 1; }
		echo "$t" >>"$DIR/miss.direct"
		[ "$ONLY" = direct ] && continue
		read -r code size t <<<"$(fetch "$FTP/nocache/4m.bin" -x "$PROXY")"
		[ "$code" = 200 ] && [ "$size" = "$SIZE" ] || {
			echo "ftp.sh: fetch $i through gatehouse: status $code, $size bytes" >&2; exit 1; }
		echo "$t" >>"$DIR/miss.proxy"
	done
	SIDES=2
	[ "$ONLY" = direct ] && SIDES=1
	WANT=$((RETR_BEFORE + N * SIDES))
	[ "$(retr_count /nocache/4m.bin)" = "$WANT" ] || {
		echo "ftp.sh: vsftpd saw $(retr_count /nocache/4m.bin) RETRs of nocache/4m.bin, $WANT expected" >&2
		exit 1; }
	summary() { # file: "req/s median_ms"
		sort -n "$1" | awk '{s += $1; a[NR] = $1} END {
			printf "%.1f %.1f\n", NR / s, a[int((NR + 1) / 2)] * 1000 }'
	}
	read -r D_RPS D_MED <<<"$(summary "$DIR/miss.direct")"
	echo "misses ($N sequential fetches each, interleaved; curl's time_total, a new connection each):"
	echo "  curl from vsftpd:          $D_RPS req/s, median $D_MED ms"
	if [ "$ONLY" != direct ]; then
		read -r P_RPS P_MED <<<"$(summary "$DIR/miss.proxy")"
		echo "  FTP miss through gatehouse: $P_RPS req/s, median $P_MED ms"
		echo "    vsftpd RETRs of the file: $((WANT - RETR_BEFORE)) ($N direct + $N through gatehouse)"
		awk -v p="$P_RPS" -v d="$D_RPS" 'BEGIN { r = p / d; printf "  ratio gatehouse/direct: %.3f (target >= 0.9: %s)\n", r, (r >= 0.9 ? "met" : "NOT met") }'
	fi
fi

# ---- instructions per hit (FTPBENCH_CALLGRIND=1): a figure the machine's load does not move.
# A second daemon (Workers 1) runs under valgrind's callgrind; after the warm-up its counters
# are zeroed, FTPBENCH_CG_N hits of one scheme are made on one keep-alive connection, and the
# counters dumped (callgrind_control -z / -d); then the same for the other scheme.
if [ -n "${FTPBENCH_CALLGRIND:-}" ] && [ -z "$ONLY" ]; then
	command -v valgrind >/dev/null || { echo "ftp.sh: valgrind is missing" >&2; exit 1; }
	CG_N=${FTPBENCH_CG_N:-100}
	CG_PORT=$(bench_free_port)
	mkdir -p "$DIR/cg/cache"
	bench_fill "$BENCH/gatehouse.conf.in" "$DIR/cg/gatehouse.conf" PORT="$CG_PORT" ACCESSLOG="" \
		CACHE="CacheRoot $DIR/cg/cache
CacheSize 256M
CacheEnable lmdb /"
	sed -i 's/^Workers .*/Workers 1/' "$DIR/cg/gatehouse.conf"
	valgrind --tool=callgrind --callgrind-out-file="$DIR/cg/callgrind.out.%p" \
		"$GH_BIN" -f "$DIR/cg/gatehouse.conf" >"$DIR/cg/out" 2>&1 &
	CG_PID=$!
	PIDS+=("$CG_PID")
	bench_wait_port "$CG_PORT" 120 || { echo "ftp.sh: gatehouse under callgrind did not start" >&2
		cat "$DIR/cg/out" >&2; exit 1; }
	warm "$HTTP/4m.bin" "http://127.0.0.1:$CG_PORT"
	warm "$FTP/pub/4m.bin" "http://127.0.0.1:$CG_PORT"
	cat >"$DIR/cg/client.py" <<'PYEOF'
import http.client, sys
port, url, n, size = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
for i in range(n):
    conn.request("GET", url)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200 or len(body) != size or "; hit" not in (r.getheader("Cache-Status") or ""):
        sys.exit("hit %d of %s: status %d, %d bytes, %r" % (i, url, r.status, len(body),
                                                              r.getheader("Cache-Status")))
PYEOF
	# cg_ir URL|idle: "Ir seconds" of the daemon for CG_N hits of URL, or for 5 s of idling
	cg_ir() {
		local f t0 t1
		timeout 60 callgrind_control -z "$CG_PID" >/dev/null 2>&1
		t0=$(date +%s.%N)
		if [ "$1" = idle ]; then
			sleep 5
		else
			timeout 600 $PY "$DIR/cg/client.py" "$CG_PORT" "$1" "$CG_N" "$SIZE"
		fi
		t1=$(date +%s.%N)
		timeout 60 callgrind_control -d "$CG_PID" >/dev/null 2>&1
		f=$(ls "$DIR"/cg/callgrind.out.* | sort -V | tail -1) # dumps are numbered .1, .2, ...
		echo "$(awk '/^(summary|totals):/ {print $2; exit}' "$f")" \
			"$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
	}
	# What the daemon does once a second (cache maintenance, the status page's history) is
	# not hit cost: its rate, measured idling, is taken off in proportion to each run's time.
	: >"$DIR/cg/runs"
	for k in 1 2 3; do
		for what in idle "$HTTP/4m.bin" "$FTP/pub/4m.bin"; do
			echo "$k ${what%%:*} $(cg_ir "$what")" >>"$DIR/cg/runs"
		done
	done
	echo "instructions per 4 MiB hit (callgrind, Workers 1, $CG_N hits on one connection, 3 rounds; idle Ir/s taken off):"
	awk -v n="$CG_N" '
		$2 == "idle" { rate[$1] = $3 / $4; next }
		{ per = ($3 - rate[$1] * $4) / n; v[$2] = v[$2] sprintf("%s%.0f", v[$2] == "" ? "" : ", ", per)
		  sum[$2] += per }
		END {
			printf "  HTTP hit: %s Ir\n  FTP hit:  %s Ir\n", v["http"], v["ftp"]
			r = sum["http"] / sum["ftp"]
			printf "  HTTP/FTP (mean of the rounds): %.3f (target >= 0.95: %s)\n", r, (r >= 0.95 ? "met" : "NOT met") }' "$DIR/cg/runs"
fi
