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
