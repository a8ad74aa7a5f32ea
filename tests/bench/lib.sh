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
