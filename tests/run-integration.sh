#!/bin/sh
# run-integration.sh - the pytest integration suite against the daemon (build/gatehouse, or the
# binary named by GH_BIN, e.g. GH_BIN=build/san/gatehouse for the ASan build). Extra arguments go
# to pytest (e.g. -k smuggling, -m "not slow", -x). Runs from the repository root.
set -eu
cd "$(dirname "$0")/.."
if [ -n "${GH_BIN:-}" ]; then
	case "$GH_BIN" in /*) ;; *) GH_BIN="$(pwd)/$GH_BIN" ;; esac
	export GH_BIN
fi
exec /usr/bin/python3 -m pytest -q tests/integration "$@"
