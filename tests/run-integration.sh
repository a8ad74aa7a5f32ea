#!/bin/sh
# run-integration.sh - the pytest integration suite against the daemon (build/gatehouse, or the
# binary named by GH_BIN, e.g. GH_BIN=build/san/gatehouse for the ASan build). Extra arguments go
# to pytest (e.g. -k smuggling, -m "not slow", -m "not daemon" for the harness self-tests, -x).
# Runs from the repository root. Other knobs: GH_KEEP_TMP=1 keeps the work directory (configs,
# daemon stderr, access logs, dnsmasq query log); GH_TEST_LOGLEVEL sets the daemons' LogLevel
# (default info); GH_RSS_LIMIT_MB overrides the streaming memory limit (64, or 200 for ASan).
set -eu
cd "$(dirname "$0")/.."
if [ -n "${GH_BIN:-}" ]; then
	case "$GH_BIN" in /*) ;; *) GH_BIN="$(pwd)/$GH_BIN" ;; esac
	export GH_BIN
fi
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__/ in the source tree
exec /usr/bin/python3 -m pytest -q tests/integration "$@"
