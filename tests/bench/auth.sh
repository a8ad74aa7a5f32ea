#!/bin/bash
# auth.sh - what proxy authentication costs (issue 14): requests/s through Gatehouse without
# authentication against Gatehouse with Basic authentication (AuthUserFile, bcrypt), in one run,
# on cache hits and on misses to a loopback nginx; the daemons' memory; and, when Squid is
# installed, the same for Squid with basic_ncsa_auth on misses (Squid here does not cache).
#
# The goal of the issue: with the result cache warm, authentication costs under 5 %. wrk keeps
# its connections alive and sends one Proxy-Authorization value (-H) on every request, as a
# browser does once it has the credentials: after the first request of a connection the
# daemon's per-connection memory of the last accepted credential answers (one MAC compare),
# and a new connection finds the result cache warm. The bcrypt hash itself is paid once per
# credential per AuthCacheTTL, never per request.
#
# Method (as statscost.sh, for the same reason: on a shared, loaded machine, runs one after
# the other disagree by more than the effect measured): four daemons run side by side, each
# with Workers 1: hit-plain, hit-auth (CacheEnable, the file dated a year back so it is
# heuristically fresh, warmed until it is a hit) and miss-plain, miss-auth (no cache: every
# request goes to nginx). A round runs two wrk at once (-t1 -c$CONNS -d${DUR}s, keep-alive,
# absolute-form requests through absolute.lua), one against each daemon of a pair, the one
# started first swapped every round. Per round: ratio = rps(auth) / rps(plain); the figure is
# the median round's ratio, with the spread of the rounds. A second figure does without the
# wall clock: each daemon's CPU time (user + system) per request over all rounds.
# Checks that make the figures mean something: the auth daemons answer 407 without
# credentials and 200 with them before the runs; after them, their ?auto counts at least one
# authenticated request per request sent (AuthOK), and no wrk run had an error or a non-2xx
# answer.
#
# Output: the rounds on stderr; on stdout, per scenario one line
#   AUTHBENCH scenario=hit plain_rps=... auth_rps=... ratio=... min=... max=... cpu_plain_us=...
#             cpu_auth_us=... cpu_ratio=... rounds=... errors=0
# then "AUTHBENCH memory ..." (VmRSS / VmHWM of each daemon, kB) and, with Squid,
#   AUTHBENCH scenario=squid-miss plain_rps=... auth_rps=... ratio=... errors=0
#
# Environment: GH_BIN (default build/gatehouse), AUTHBENCH_ROUNDS (default 5), AUTHBENCH_DUR
# (seconds per run, default 5), AUTHBENCH_CONNS (default 32), AUTHBENCH_SQUID (1: with Squid
# when installed, the default; 0: without). Bounded: every wait has a limit, wrk runs under
# timeout; every process started here is ended on exit.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BENCH="$ROOT/tests/bench"
GH_BIN=${GH_BIN:-$ROOT/build/gatehouse}
ROUNDS=${AUTHBENCH_ROUNDS:-5}
DUR=${AUTHBENCH_DUR:-5}
CONNS=${AUTHBENCH_CONNS:-32}
WITH_SQUID=${AUTHBENCH_SQUID:-1}
BUSER=benchuser
BPASS='bench pass: 1'

for tool in wrk curl htpasswd; do
	command -v "$tool" >/dev/null || {
		echo "auth.sh: $tool is missing (scripts/test-deps.sh installs it)" >&2; exit 1; }
done
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || {
	echo "auth.sh: nginx is missing (scripts/test-deps.sh installs it)" >&2; exit 1; }
[ -x "$GH_BIN" ] || { echo "auth.sh: $GH_BIN is missing: build it with scons" >&2; exit 1; }
[[ "$ROUNDS" =~ ^[1-9][0-9]?$ ]] || { echo "auth.sh: AUTHBENCH_ROUNDS: 1 to 99" >&2; exit 1; }
[[ "$DUR" =~ ^[1-9][0-9]?$ ]] || { echo "auth.sh: AUTHBENCH_DUR: 1 to 99" >&2; exit 1; }
[[ "$CONNS" =~ ^[1-9][0-9]{0,2}$ ]] || { echo "auth.sh: AUTHBENCH_CONNS: 1 to 999" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
SQUID=""
NCSA=/usr/lib/squid/basic_ncsa_auth
if [ "$WITH_SQUID" = 1 ] && command -v squid >/dev/null && [ -x "$NCSA" ]; then
	SQUID=$(command -v squid)
fi

DIR=$(mktemp -d /tmp/gh-authbench.XXXXXX)
. "$BENCH/lib.sh"
PIDS=()
cleanup() {
	bench_stop_pids 100 "${PIDS[@]}"
	rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

# ---- origin and credentials
bench_origin_1k
htpasswd -c -b -B -C 10 "$DIR/users.htpasswd" "$BUSER" "$BPASS" 2>"$DIR/htpasswd.out" || {
	echo "auth.sh: htpasswd failed" >&2; cat "$DIR/htpasswd.out" >&2; exit 1; }
chmod 0644 "$DIR/users.htpasswd"
CRED=$(printf '%s:%s' "$BUSER" "$BPASS" | base64 -w0)
AUTH_HDR="Proxy-Authorization: Basic $CRED"

# ---- the four daemons
AUTH_CONF="<Proxy *>
    AuthType Basic
    AuthName \"Gatehouse benchmark\"
    AuthBasicProvider file
    AuthUserFile $DIR/users.htpasswd
    <RequireAll>
        Require ip 127.0.0.1
        Require valid-user
    </RequireAll>
</Proxy>"
start_gh() { # name cache(0|1) auth(0|1): sets GH_PORT and GH_PID (not in a $(...) subshell:
	# the daemon must be in this shell's PIDS to be ended on exit)
	local name=$1 cache=$2 auth=$3 port extra=""
	port=$(bench_free_port)
	mkdir -p "$DIR/$name/cache"
	[ "$cache" = 1 ] && extra="CacheRoot $DIR/$name/cache
CacheSize 64M
CacheEnable lmdb /"
	bench_fill "$BENCH/gatehouse.conf.in" "$DIR/$name/gatehouse.conf" PORT="$port" \
		ACCESSLOG="" CACHE="$extra
<Location /gatehouse/>
    SetHandler gatehouse-status
    Require ip 127.0.0.1
</Location>"
	sed -i 's/^Workers .*/Workers 1/' "$DIR/$name/gatehouse.conf"
	if [ "$auth" = 1 ]; then # the template's <Proxy *> gives way to the authenticated one
		sed -i '/^<Proxy \*>$/,/^<\/Proxy>$/d' "$DIR/$name/gatehouse.conf"
		printf '%s\n' "$AUTH_CONF" >>"$DIR/$name/gatehouse.conf"
	fi
	"$GH_BIN" -f "$DIR/$name/gatehouse.conf" >"$DIR/$name/stderr" 2>&1 &
	GH_PID=$!
	PIDS+=("$GH_PID")
	bench_wait_started "$GH_PID" "$port" 20 || {
		echo "gatehouse ($name) did not start:" >&2; cat "$DIR/$name/stderr" >&2; exit 1; }
	local cred=()
	if [ "$auth" = 1 ]; then
		local code
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
			-x "http://127.0.0.1:$port" "$TARGET")
		[ "$code" = 407 ] || {
			echo "gatehouse ($name): $code without credentials, not 407" >&2
			cat "$DIR/$name/stderr" >&2; exit 1; }
		cred=(-H "$AUTH_HDR")
	fi
	# a miss, then (cache) hits; bounded wait for the stored entry to be readable
	local i cs="" code=""
	for ((i = 0; i < 50; i++)); do
		cs=$(curl -s -o /dev/null -D - --max-time 10 -x "http://127.0.0.1:$port" \
			"${cred[@]}" "$TARGET" | tr -d '\r')
		code=$(echo "$cs" | sed -n '1s/^HTTP\/1.1 \([0-9]*\).*/\1/p')
		[ "$code" = 200 ] || {
			echo "gatehouse ($name): $code with credentials, not 200" >&2
			cat "$DIR/$name/stderr" >&2; exit 1; }
		[ "$cache" = 0 ] && break
		[[ "$(echo "$cs" | sed -n 's/^Cache-Status: //Ip')" == *"; hit"* ]] && break
		sleep 0.2
	done
	if [ "$cache" = 1 ] && [[ "$(echo "$cs" | sed -n 's/^Cache-Status: //Ip')" != *"; hit"* ]]; then
		echo "gatehouse ($name): $TARGET never a hit" >&2; exit 1
	fi
	GH_PORT=$port
}
declare -A PORT PID
for d in hit-plain:1:0 hit-auth:1:1 miss-plain:0:0 miss-auth:0:1; do
	IFS=: read -r name cache auth <<<"$d"
	start_gh "$name" "$cache" "$auth"
	PORT[$name]=$GH_PORT
	PID[$name]=$GH_PID
done

auth_ok() { # name: the daemon's AuthOK from ?auto
	curl -s --max-time 10 "http://127.0.0.1:${PORT[$1]}/gatehouse/?auto" |
		sed -n 's/^AuthOK: //p'
}
OK_BEFORE_HIT=$(auth_ok hit-auth)
OK_BEFORE_MISS=$(auth_ok miss-auth)
[ -n "$OK_BEFORE_HIT" ] && [ -n "$OK_BEFORE_MISS" ] || {
	echo "auth.sh: the status page has no AuthOK line" >&2; exit 1; }

cpu_ticks() { # pid: user + system CPU time of the process so far, in clock ticks
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
TCK=$(getconf CLK_TCK)

run_wrk() { # port auth(0|1) -> "rps requests errors"; non-2xx answers count as errors
	local out line
	if [ "$2" = 1 ]; then
		out=$(timeout $((DUR + 30)) wrk -t1 -c"$CONNS" -d"${DUR}s" --timeout 10s \
			-H "$AUTH_HDR" -s "$BENCH/absolute.lua" "http://127.0.0.1:$1/" -- "$TARGET" 2>&1) ||
			true
	else
		out=$(timeout $((DUR + 30)) wrk -t1 -c"$CONNS" -d"${DUR}s" --timeout 10s \
			-s "$BENCH/absolute.lua" "http://127.0.0.1:$1/" -- "$TARGET" 2>&1) || true
	fi
	echo "$out" >>"$DIR/wrk.$1.log"
	line=$(echo "$out" | grep '^BENCH ' || echo "BENCH rps=0 errors=-1 requests=0")
	echo "$line" | sed -E 's/.*rps=([0-9.]+).*errors=(-?[0-9]+).*requests=([0-9]+).*/\1 \3 \2/'
}

# pair SCENARIO PLAIN_PORT AUTH_PORT PLAIN_PID AUTH_PID: ROUNDS rounds of two wrk at once;
# prints the AUTHBENCH line; the requests sent to the auth side go to $DIR/sent.SCENARIO
pair() {
	local sc=$1 pp=$2 pa=$3 dp=$4 da=$5 r w1 w2 c1 c2 rps1 n1 e1 rps2 n2 e2 sent=0
	: >"$DIR/rounds.$sc"
	: >"$DIR/cpu.$sc"
	for ((r = 1; r <= ROUNDS; r++)); do
		if ((r % 2)); then
			run_wrk "$pp" 0 >"$DIR/plain" &
			w1=$!
			run_wrk "$pa" 1 >"$DIR/auth" &
			w2=$!
		else
			run_wrk "$pa" 1 >"$DIR/auth" &
			w2=$!
			run_wrk "$pp" 0 >"$DIR/plain" &
			w1=$!
		fi
		PIDS+=("$w1" "$w2")
		c1=$(cpu_ticks "$dp")
		c2=$(cpu_ticks "$da")
		wait "$w1" "$w2" || true
		c1=$(($(cpu_ticks "$dp") - c1))
		c2=$(($(cpu_ticks "$da") - c2))
		read -r rps1 n1 e1 <"$DIR/plain"
		read -r rps2 n2 e2 <"$DIR/auth"
		sent=$((sent + n2))
		[ "$e1" = 0 ] && [ "$e2" = 0 ] || {
			echo "$sc round $r: wrk errors: $e1 (plain), $e2 (auth)" >&2
			tail -20 "$DIR"/wrk.*.log >&2; exit 1; }
		echo "$c1 $n1 $c2 $n2" >>"$DIR/cpu.$sc"
		echo "$r $rps1 $rps2" | awk '{ printf "%d %.1f %.1f %.4f\n", $1, $2, $3, $3 / $2 }' \
			>>"$DIR/rounds.$sc"
		tail -1 "$DIR/rounds.$sc" | awk -v sc="$sc" '{ printf "  %s round %d: %.0f rps " \
			"without authentication, %.0f with: %.4f\n", sc, $1, $2, $3, $4 }' >&2
	done
	echo "$sent" >"$DIR/sent.$sc"
	local cpu
	cpu=$(awk -v tck="$TCK" '{ c1 += $1; n1 += $2; c2 += $3; n2 += $4 }
		END { p = c1 / tck * 1e6 / n1; a = c2 / tck * 1e6 / n2
		      printf "cpu_plain_us=%.2f cpu_auth_us=%.2f cpu_ratio=%.4f", p, a, p / a }' \
		"$DIR/cpu.$sc")
	sort -k4,4n "$DIR/rounds.$sc" | awk -v n="$ROUNDS" -v sc="$sc" -v cpu="$cpu" '
		{ ratio[NR] = $4; p += $2; a += $3 }
		END {
			med = (n % 2) ? ratio[(n + 1) / 2] : (ratio[n / 2] + ratio[n / 2 + 1]) / 2
			printf "AUTHBENCH scenario=%s plain_rps=%.0f auth_rps=%.0f ratio=%.4f " \
			       "min=%.4f max=%.4f %s rounds=%d errors=0\n", sc, p / n, a / n, med,
			       ratio[1], ratio[n], cpu, n
		}'
}

echo "auth.sh: Basic (bcrypt AuthUserFile) against no authentication, 1 KiB, wrk -t1" \
	"-c$CONNS -d${DUR}s, $ROUNDS rounds, Workers 1, $(nproc) cores," \
	"load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
pair hit "${PORT[hit-plain]}" "${PORT[hit-auth]}" "${PID[hit-plain]}" "${PID[hit-auth]}"
pair miss "${PORT[miss-plain]}" "${PORT[miss-auth]}" "${PID[miss-plain]}" "${PID[miss-auth]}"

# every request sent to an auth daemon proved the user (AuthOK counts them all, the
# connection's remembered credential included): the figures are about authenticated requests
for sc in hit miss; do
	after=$(auth_ok "$sc-auth")
	before=$OK_BEFORE_HIT
	[ "$sc" = miss ] && before=$OK_BEFORE_MISS
	sent=$(cat "$DIR/sent.$sc")
	[ "$((after - before))" -ge "$sent" ] || {
		echo "auth.sh: $sc: $sent requests sent, only $((after - before)) authenticated" >&2
		exit 1; }
done

mem="AUTHBENCH memory"
for name in hit-plain hit-auth miss-plain miss-auth; do
	mem+=" $name=$(bench_tree_kb "${PID[$name]}" VmRSS)kB/$(bench_tree_kb "${PID[$name]}" VmHWM)kB"
done
echo "$mem (VmRSS now / VmHWM)"

# ---- Squid: misses (squid.conf.in caches nothing), plain against basic_ncsa_auth
if [ -n "$SQUID" ]; then
	chmod 0777 "$DIR" # Squid drops to its own user (proxy) for its logs and helpers
	start_squid() { # name auth(0|1): sets SQ_PORT, SQ_PID
		local name=$1 port
		port=$(bench_free_port)
		mkdir -p "$DIR/$name"
		chmod 0777 "$DIR/$name"
		bench_fill "$BENCH/squid.conf.in" "$DIR/$name/squid.conf" DIR="$DIR/$name" PORT="$port"
		if [ "$2" = 1 ]; then
			# the helper's answers are kept for credentialsttl: the cache is warm after the
			# first request, as Gatehouse's
			sed -i "s|^http_access allow localhost$|auth_param basic program $NCSA $DIR/users.htpasswd\\
auth_param basic children 5\\
auth_param basic realm Gatehouse benchmark\\
auth_param basic credentialsttl 2 hours\\
acl authed proxy_auth REQUIRED\\
http_access allow localhost authed|" "$DIR/$name/squid.conf"
		fi
		"$SQUID" -N -f "$DIR/$name/squid.conf" >"$DIR/$name/squid.out" 2>&1 &
		SQ_PID=$!
		PIDS+=("$SQ_PID")
		bench_wait_started "$SQ_PID" "$port" 30 || {
			echo "squid ($name) did not start:" >&2
			cat "$DIR/$name/squid.out" "$DIR/$name/squid-cache.log" >&2 2>/dev/null; exit 1; }
		SQ_PORT=$port
	}
	start_squid squid-plain 0
	SP_PORT=$SQ_PORT
	SP_PID=$SQ_PID
	start_squid squid-auth 1
	SA_PORT=$SQ_PORT
	SA_PID=$SQ_PID
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -x "http://127.0.0.1:$SA_PORT" \
		"$TARGET")
	[ "$code" = 407 ] || { echo "squid-auth: $code without credentials, not 407" >&2; exit 1; }
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -x "http://127.0.0.1:$SA_PORT" \
		-H "$AUTH_HDR" "$TARGET")
	[ "$code" = 200 ] || { echo "squid-auth: $code with credentials, not 200" >&2; exit 1; }
	pair squid-miss "$SP_PORT" "$SA_PORT" "$SP_PID" "$SA_PID"
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
