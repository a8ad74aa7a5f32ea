#!/bin/bash
# hitcost.sh - instructions per cache hit, counted by valgrind's callgrind: a figure that does not
# depend on the machine's load, for comparing two builds when wall-clock benchmarks cannot be
# trusted (a shared machine). Not a test: nothing is asserted but that every hit was a hit.
#
# Builds nothing: measures GH_BIN (default build/gatehouse). nginx on 127.0.0.1 serves a 1 KiB
# and a 64 KiB file dated a year back (heuristically fresh); the daemon runs under
#   valgrind --tool=callgrind
# with Workers 1, LogLevel warn, a Squid-format AccessLog and CacheEnable lmdb / in a fresh
# CacheRoot. Every daemon run is started, warmed (one miss of each object, stored, then one hit
# of each that must say "hit"), given its hits on one keep-alive connection by a small Python
# client, then stopped with SIGTERM; callgrind's total Ir covers the whole process (all threads).
# A round is three runs: N hits of 1 KiB, N hits of 64 KiB, 0 hits, and
#   instructions per hit = (Ir of the run with N hits - Ir of the run with 0 hits) / N
# The 0-hit run idles as long as the longer hit run took, so that what the daemon does once a
# second (the cache maintenance pass, timers) cancels out rather than counting as hit cost.
# Every round is printed; the figure is the median round's.
#
# Environment: GH_BIN, HITCOST_N (hits per size, default 2000), HITCOST_ROUNDS (default 3),
# HITCOST_KEEP=1 (keep the
# temporary directory with the callgrind.out.* files, for callgrind_annotate),
# HITCOST_ORIGIN_PORT (default 47811: the same URLs in every run; another port if taken),
# HITCOST_LOGCONF (default "AccessLog @LOG@ squid": the access-log lines of the config, @LOG@
# standing for the file, which must get one line per request; e.g. "CustomLog @LOG@ combined"),
# HITCOST_PROFILE=PREFIX (write PREFIX.1k and PREFIX.64k: each function's own instructions per
# hit, "Ir<TAB>function [object]", most first), HITCOST_AUTH=1 (issue 14: the <Proxy *> section
# asks for Basic credentials, AuthUserFile with one bcrypt user, and the client sends them on
# every request: the cost of proxy authentication per hit with the result cache warm, the
# figure tests/bench/auth.sh cannot give on a loaded machine).
#   hitcost.sh --diff OLD.1k NEW.1k
# compares two such profiles (of two builds): the functions whose cost per hit changed most.
# Bounded: every wait has a limit; every process started here is ended on exit.
set -euo pipefail
PY=/usr/bin/python3

if [ "${1:-}" = "--diff" ]; then
	[ $# -eq 3 ] || { echo "usage: hitcost.sh --diff OLD_PROFILE NEW_PROFILE" >&2; exit 2; }
	$PY - "$2" "$3" <<'EOF'
import signal, sys
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
def load(path):
    d = {}
    for line in open(path):
        ir, fn = line.rstrip("\n").split("\t", 1)
        d[fn] = d.get(fn, 0.0) + float(ir)
    return d
old, new = load(sys.argv[1]), load(sys.argv[2])
to, tn = sum(old.values()), sum(new.values())
print("per hit: %.0f -> %.0f Ir (%+.0f, %+.2f%%)" % (to, tn, tn - to, 100.0 * (tn - to) / to))
rows = sorted(set(old) | set(new), key=lambda f: -abs(new.get(f, 0) - old.get(f, 0)))
print("%10s %10s %9s  function [object]" % ("old", "new", "change"))
for f in rows[:25]:
    o, n = old.get(f, 0), new.get(f, 0)
    if abs(n - o) < 1:
        break
    print("%10.0f %10.0f %+9.0f  %s" % (o, n, n - o, f))
EOF
	exit 0
fi

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BENCH="$ROOT/tests/bench"
GH_BIN=${GH_BIN:-$ROOT/build/gatehouse}
N=${HITCOST_N:-2000}
REPEAT=${HITCOST_ROUNDS:-3}
LOGCONF=${HITCOST_LOGCONF:-AccessLog @LOG@ squid}
CLIENT_TIMEOUT=900 # seconds for one client run (N hits under callgrind take some 10-60 s)

command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || {
	echo "hitcost.sh: nginx is missing (scripts/test-deps.sh installs it)" >&2; exit 1; }
command -v valgrind >/dev/null || {
	echo "hitcost.sh: valgrind is missing: apt-get install valgrind" >&2; exit 1; }
[ -x "$GH_BIN" ] || { echo "hitcost.sh: $GH_BIN is missing: build it with scons" >&2; exit 1; }
[[ "$N" =~ ^[1-9][0-9]*$ ]] || {
	echo "hitcost.sh: HITCOST_N must be a positive integer" >&2; exit 1; }
[[ "$REPEAT" =~ ^[1-9]$ ]] || { echo "hitcost.sh: HITCOST_ROUNDS must be 1 to 9" >&2; exit 1; }
[[ "$LOGCONF" == *@LOG@* ]] || {
	echo "hitcost.sh: HITCOST_LOGCONF must name the log file as @LOG@" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

DIR=$(mktemp -d /tmp/gh-hitcost.XXXXXX)
. "$(dirname "$0")/lib.sh"
PIDS=()
cleanup() {
	bench_stop_pids 100 "${PIDS[@]}" # up to 10 s for a graceful exit
	if [ -z "${HITCOST_KEEP:-}" ]; then
		rm -rf "$DIR"
	else
		echo "kept $DIR" >&2
	fi
}
trap cleanup EXIT INT TERM

free_port() {
	$PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() { # port seconds [pid: give up when it is gone]
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null && return 1
		if $PY -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),0.5)' \
			"$1" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

fg() { # command...: run it in the background and wait, so that a signal stops this script at once
	local p
	"$@" &
	p=$!
	PIDS+=("$p")
	wait "$p"
}

fill() { # template output, then KEY=VALUE...
	local tpl=$1 out=$2 text kv
	shift 2
	text=$(cat "$tpl")
	for kv in "$@"; do
		text=${text//@${kv%%=*}@/${kv#*=}}
	done
	printf '%s\n' "$text" >"$out"
}

# ---- origin: nginx with two heuristically fresh files
mkdir -p "$DIR/www"
chmod 0755 "$DIR" # mktemp makes it 0700: nginx's unprivileged workers could not read the files
head -c 1024 /dev/urandom >"$DIR/www/1k.bin"
head -c 65536 /dev/urandom >"$DIR/www/64k.bin"
touch -d '1 year ago' "$DIR/www/1k.bin" "$DIR/www/64k.bin"
# A fixed port when it is free: the URLs, so the cache keys, are then the same in every run,
# and so is the work of finding them (with another port the figure moves by some 100 Ir)
NGX_PORT=${HITCOST_ORIGIN_PORT:-47811}
if ! $PY -c 'import socket,sys; socket.socket().bind(("127.0.0.1",int(sys.argv[1])))' \
	"$NGX_PORT" 2>/dev/null; then
	echo "hitcost.sh: port $NGX_PORT is taken: the origin gets another one;" \
		"the figures may move by some 100 Ir" >&2
	NGX_PORT=$(free_port)
fi
fill "$BENCH/nginx.conf.in" "$DIR/nginx.conf" DIR="$DIR" ROOT="$DIR/www" PORT="$NGX_PORT"
"$NGINX" -c "$DIR/nginx.conf" -p "$DIR" >"$DIR/nginx.out" 2>&1 &
PIDS+=($!)
disown
wait_port "$NGX_PORT" 10 || {
	echo "nginx did not start:"; cat "$DIR/nginx.out" "$DIR/nginx-error.log"; exit 1; }
ORIGIN="http://127.0.0.1:$NGX_PORT"
AUTHCONF=""
export HC_AUTH=""
if [ -n "${HITCOST_AUTH:-}" ]; then
	command -v htpasswd >/dev/null || {
		echo "hitcost.sh: htpasswd is missing (apache2-utils)" >&2; exit 1; }
	htpasswd -c -b -B -C 10 "$DIR/users.htpasswd" hcuser 'hc pass' 2>/dev/null
	HC_AUTH="Basic $(printf 'hcuser:hc pass' | base64 -w0)"
	AUTHCONF="<Proxy *>
    AuthType Basic
    AuthBasicProvider file
    AuthUserFile $DIR/users.htpasswd
    <RequireAll>
        Require ip 127.0.0.1
        Require valid-user
    </RequireAll>
</Proxy>"
fi

# ---- the client: warm-up, or N hits on one keep-alive connection; every answer checked
cat >"$DIR/client.py" <<'EOF'
import http.client, os, sys, time
port, origin, mode, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
sizes = {"1k": 1024, "64k": 65536}
hdrs = {"Proxy-Authorization": os.environ["HC_AUTH"]} if os.environ.get("HC_AUTH") else {}

def get(conn, name):
    conn.request("GET", origin + "/" + name + ".bin", headers=hdrs)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200 or len(body) != sizes[name]:
        sys.exit("hitcost client: %s: status %d, %d bytes" % (name, r.status, len(body)))
    return r.getheader("Cache-Status") or ""

conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
if mode == "warm":
    for name in sizes:  # misses: fetched and stored
        get(conn, name)
    for name in sizes:  # one hit each, waiting (bounded) for the store to be readable
        for attempt in range(50):
            if "; hit" in get(conn, name):
                break
            time.sleep(0.2)
        else:
            sys.exit("hitcost client: %s is never a cache hit" % name)
else:
    t0 = time.monotonic()
    for i in range(n):
        cs = get(conn, mode)
        if "; hit" not in cs:
            sys.exit("hitcost client: %s request %d is not a hit: Cache-Status %r" % (mode, i, cs))
    print("%.1f" % (time.monotonic() - t0))
conn.close()
EOF

# ---- one daemon run under callgrind: run NAME HITS SIZE|idle-seconds; its total Ir goes to
# $DIR/NAME/ir (not printed: run in a $(...) subshell, its daemon would escape cleanup)
run() {
	local name=$1 hits=$2 what=$3 port pid i
	port=$(free_port)
	mkdir -p "$DIR/$name/cache"
	fill "$BENCH/gatehouse.conf.in" "$DIR/$name/gatehouse.conf" PORT="$port" \
		ACCESSLOG="${LOGCONF//@LOG@/$DIR/$name/access.log}" \
		CACHE="CacheRoot $DIR/$name/cache
CacheSize 64M
CacheEnable lmdb /"
	sed -i 's/^Workers .*/Workers 1/' "$DIR/$name/gatehouse.conf"
	if [ -n "$AUTHCONF" ]; then # the template's <Proxy *> gives way to the authenticated one
		sed -i '/^<Proxy \*>$/,/^<\/Proxy>$/d' "$DIR/$name/gatehouse.conf"
		printf '%s\n' "$AUTHCONF" >>"$DIR/$name/gatehouse.conf"
	fi
	valgrind --tool=callgrind --callgrind-out-file="$DIR/callgrind.out.$name" \
		"$GH_BIN" -f "$DIR/$name/gatehouse.conf" >"$DIR/$name/stdout" 2>"$DIR/$name/stderr" &
	pid=$!
	PIDS+=("$pid")
	wait_port "$port" 120 "$pid" || {
		echo "gatehouse did not start:" >&2; cat "$DIR/$name/stderr" >&2; exit 1; }
	fg timeout 120 $PY "$DIR/client.py" "$port" "$ORIGIN" warm 0 >&2
	if [ "$hits" -gt 0 ]; then
		fg timeout "$CLIENT_TIMEOUT" $PY "$DIR/client.py" "$port" "$ORIGIN" "$what" "$hits" \
			>"$DIR/$name/secs"
	else
		fg sleep "$what"
	fi
	kill -TERM "$pid"
	for ((i = 0; i < 600; i++)); do # up to 60 s: callgrind writes its file on exit
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "gatehouse ($name) did not stop within 60 s" >&2
		exit 1
	fi
	wait "$pid" 2>/dev/null || true
	# lines in the access log: 4 of the warm-up, then the hits
	local lines
	lines=$(wc -l <"$DIR/$name/access.log")
	[ "$lines" -eq $((4 + hits)) ] || {
		echo "$name: $lines access log lines, $((4 + hits)) expected" >&2; exit 1; }
	awk '/^(summary|totals):/ {print $2; exit}' "$DIR/callgrind.out.$name" >"$DIR/$name/ir"
	[ -s "$DIR/$name/ir" ] || { echo "$name: no total in callgrind.out.$name" >&2; exit 1; }
}

echo "hitcost: $GH_BIN, $N hits per size, $REPEAT rounds, $LOGCONF,${HC_AUTH:+ Basic auth,}" \
	"valgrind $(valgrind --version | sed 's/valgrind-//')" >&2
: >"$DIR/rounds"
for ((r = 1; r <= REPEAT; r++)); do
	run "hit1k.$r" "$N" 1k
	run "hit64k.$r" "$N" 64k
	S_1K=$(cat "$DIR/hit1k.$r/secs")
	S_64K=$(cat "$DIR/hit64k.$r/secs")
	IDLE=$(awk -v a="$S_1K" -v b="$S_64K" 'BEGIN { printf "%.0f", (a > b ? a : b) + 0.5 }')
	run "idle.$r" 0 "$IDLE"
	read -r IR_1K <"$DIR/hit1k.$r/ir"
	read -r IR_64K <"$DIR/hit64k.$r/ir"
	read -r IR_0 <"$DIR/idle.$r/ir"
	echo "  round $r: Ir $IR_1K (1 KiB hits, ${S_1K} s), $IR_64K (64 KiB hits, ${S_64K} s)," \
		"$IR_0 (0 hits, idle ${IDLE} s)" >&2
	awk -v r="$r" -v n="$N" -v z="$IR_0" -v a="$IR_1K" -v b="$IR_64K" \
		'BEGIN { printf "%d %.0f %.0f\n", r, (a - z) / n, (b - z) / n }' >>"$DIR/rounds"
done

# the median round by the 1 KiB figure (malloc's state after start-up differs now and then,
# which moves a round by up to some 200 Ir); its profiles are the ones written
sort -k2,2n "$DIR/rounds" >"$DIR/rounds.sorted"
MED=$(awk -v m=$(((REPEAT + 1) / 2)) 'NR == m {print $1}' "$DIR/rounds.sorted")
awk -v n="$N" -v bin="$GH_BIN" -v med="$MED" '
	{ a[NR] = $2; b[NR] = $3; r[NR] = $1 }
	END {
		printf "%s: instructions per hit (callgrind Ir, (Ir(N hits) - Ir(0 hits)) / %d)\n", bin, n
		s1 = ""; s2 = ""
		for (i = 1; i <= NR; i++) { s1 = s1 " " a[i]; s2 = s2 " " b[i] }
		for (i = 1; i <= NR; i++) if (r[i] == med) { m1 = a[i]; m2 = b[i] }
		printf "  1 KiB:  %d   (rounds:%s)\n", m1, s1
		printf "  64 KiB: %d   (rounds:%s)\n", m2, s2
	}' "$DIR/rounds"

# ---- each function's own Ir per hit: (its Ir in the hit run - its Ir in the idle run) / N
if [ -n "${HITCOST_PROFILE:-}" ]; then
	for size in 1k 64k; do
		$PY - "$DIR/callgrind.out.hit$size.$MED" "$DIR/callgrind.out.idle.$MED" "$N" \
			>"$HITCOST_PROFILE.$size" <<'EOF'
import os, re, subprocess, sys
def self_ir(path):
    out = subprocess.run(["callgrind_annotate", "--threshold=100", "--inclusive=no",
                          "--auto=no", path], check=True, capture_output=True, text=True).stdout
    d = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(.*)$", line)
        if not m or m.group(2) == "PROGRAM TOTALS":
            continue
        where = m.group(2)
        obj = re.search(r" \[(.*)\]$", where)
        fn = where[:obj.start()] if obj else where
        fn = fn.split(":", 1)[1] if ":" in fn and not fn.startswith("???:") else fn
        # the key leaves out the source path, which differs between checkouts
        key = "%s [%s]" % (fn, os.path.basename(obj.group(1)) if obj else "?")
        d[key] = d.get(key, 0) + int(m.group(1).replace(",", ""))
    return d
hit, idle, n = self_ir(sys.argv[1]), self_ir(sys.argv[2]), int(sys.argv[3])
rows = [((hit.get(k, 0) - idle.get(k, 0)) / n, k) for k in set(hit) | set(idle)]
for ir, k in sorted(rows, reverse=True):
    if abs(ir) >= 0.5:
        print("%.1f\t%s" % (ir, k))
EOF
	done
	echo "profiles: $HITCOST_PROFILE.1k $HITCOST_PROFILE.64k" >&2
fi
