# lib.sh - shared by the benchmark scripts (sourced, not run).

# bench_stop_pids TENTHS PID...: SIGTERM each process, wait up to TENTHS tenths of a second for
# all of them to exit gracefully, then SIGKILL whatever is left.
bench_stop_pids() {
	local tenths=$1 p i alive
	shift
	for p in "$@"; do
		kill "$p" 2>/dev/null || true
	done
	for ((i = 0; i < tenths; i++)); do
		alive=0
		for p in "$@"; do
			kill -0 "$p" 2>/dev/null && alive=1
		done
		[ "$alive" -eq 0 ] && break
		sleep 0.1
	done
	for p in "$@"; do
		kill -9 "$p" 2>/dev/null || true
	done
}

# bench_free_port: a TCP port free on 127.0.0.1 now.
bench_free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# bench_wait_port PORT SECONDS: wait until 127.0.0.1:PORT accepts connections (status 1 if not).
bench_wait_port() {
	local i
	for ((i = 0; i < $2 * 20; i++)); do
		if /usr/bin/python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),0.5)' "$1" 2>/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# bench_origin_1k: nginx (nginx.conf.in) serving one 1 KiB file, a year old, from $DIR/www;
# sets NGX_PORT and TARGET (its URL). Run in the script's shell, not in $(...): nginx's pid
# joins PIDS, which the script's cleanup ends. Needs BENCH, DIR, NGINX and PIDS.
bench_origin_1k() {
	mkdir -p "$DIR/www"
	chmod 0755 "$DIR" # unprivileged users (nginx's, a Squid helper's) read below it
	head -c 1024 /dev/urandom >"$DIR/www/1k.bin"
	touch -d '1 year ago' "$DIR/www/1k.bin"
	NGX_PORT=$(bench_free_port)
	bench_fill "$BENCH/nginx.conf.in" "$DIR/nginx.conf" DIR="$DIR" ROOT="$DIR/www" PORT="$NGX_PORT"
	"$NGINX" -c "$DIR/nginx.conf" -p "$DIR" >"$DIR/nginx.out" 2>&1 &
	PIDS+=($!)
	bench_wait_port "$NGX_PORT" 10 || { echo "nginx did not start" >&2; cat "$DIR/nginx.out" >&2; exit 1; }
	TARGET="http://127.0.0.1:$NGX_PORT/1k.bin"
}

# bench_fill TEMPLATE OUTPUT KEY=VALUE...: the template with each @KEY@ replaced by VALUE.
bench_fill() {
	local tpl=$1 out=$2 text kv
	shift 2
	text=$(cat "$tpl")
	for kv in "$@"; do
		text=${text//@${kv%%=*}@/${kv#*=}}
	done
	printf '%s\n' "$text" >"$out"
}

# bench_squid_install [PACKAGE]: make sure a squid binary is there, installing PACKAGE (default
# squid) with apt when it is not. squid and squid-openssl conflict (both are /usr/sbin/squid);
# squid-openssl is the same Squid built with OpenSSL, so it serves every script here: when the
# TLS benchmark asks for squid-openssl and plain squid is installed, apt replaces it. The
# package's own service is stopped: the benchmarks run their own instance from a temporary
# config. Status 1 (apt's log in LOG) when the install fails.
bench_squid_install() {
	local pkg=${1:-squid} log=${2:-/dev/null}
	if command -v squid >/dev/null; then
		[ "$pkg" != squid-openssl ] && return 0
		squid -v 2>/dev/null | grep -q -- '--with-openssl' && return 0
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$pkg" >"$log" 2>&1 ||
		return 1
	systemctl stop squid 2>/dev/null || service squid stop 2>/dev/null || true
}

# bench_squid_caching CONF DIR: turn squid.conf.in's pass-through Squid (filled into CONF) into a
# caching one (memory, and a disk cache under DIR/squid-disk), and create the disk cache.
bench_squid_caching() {
	sed -i -e '/^cache deny all$/d' -e "s|^cache_mem .*|cache_mem 64 MB\nmaximum_object_size_in_memory 1 MB\ncache_dir ufs $2/squid-disk 256 16 256|" "$1"
	squid -N -z -f "$1" >>"$2/squid.out" 2>&1
}

# bench_tree_kb PID FIELD: the sum of FIELD (VmRSS, VmHWM, ...) in kB over PID and its children.
bench_tree_kb() {
	local p sum=0 kb
	for p in $1 $(pgrep -P "$1" || true); do
		kb=$(awk -v f="$2:" '$1 == f {print $2}' "/proc/$p/status" 2>/dev/null || true)
		sum=$((sum + ${kb:-0}))
	done
	echo "$sum"
}

# bench_tls_certs DIR: a test CA (DIR/ca.pem) and a server certificate for 127.0.0.1 and
# localhost signed by it (DIR/server.pem, key DIR/server.key), ECDSA P-256, valid 30 days,
# made with openssl req / openssl x509. For loopback benchmarks only.
bench_tls_certs() {
	local d=$1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
		-subj "/CN=Gatehouse bench CA" -keyout "$d/ca.key" -out "$d/ca.pem" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
		2>"$d/openssl.log" || return 1
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-subj "/CN=127.0.0.1" -keyout "$d/server.key" -out "$d/server.csr" 2>>"$d/openssl.log" ||
		return 1
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$d/server.ext"
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
		-days 30 -extfile "$d/server.ext" -out "$d/server.pem" 2>>"$d/openssl.log" || return 1
	chmod 0644 "$d/server.key" "$d/server.pem" "$d/ca.pem" # nginx's and Squid's users read them
}

# bench_wait_started PID PORT SECONDS: wait until 127.0.0.1:PORT accepts connections while PID
# runs: status 1 at once when PID has exited (a refused configuration), or after SECONDS.
bench_wait_started() {
	local i
	for ((i = 0; i < $3; i++)); do
		bench_wait_port "$2" 1 && return 0
		kill -0 "$1" 2>/dev/null || return 1
	done
	return 1
}

# bench_tree_ticks PID...: the CPU time (user + system, every thread) used so far by each PID
# and its children, summed, in clock ticks (getconf CLK_TCK). Around a run, the difference per
# request is a cost that a loaded machine moves far less than requests/s.
bench_tree_ticks() {
	local p q sum=0 t
	for p in "$@"; do
		for q in $p $(pgrep -P "$p" || true); do
			t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$q/stat" 2>/dev/null || true)
			sum=$((sum + ${t:-0}))
		done
	done
	echo "$sum"
}
