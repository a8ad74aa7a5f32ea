#!/bin/sh
# test-deps.sh - install the Debian packages the build and the tests need (idempotent: apt-get
# runs only when something is missing). Run as root. squid is not listed: tests/bench/run.sh
# installs it itself when BENCH_SQUID=1.
set -eu
PKGS="scons pkg-config gcc clang libc-ares-dev libssl-dev zlib1g-dev liblmdb-dev libcmocka-dev
python3 python3-pytest curl wget dnsmasq-base nginx-light wrk procps nodejs chromium
dpkg-dev debhelper lintian apt-utils logrotate dpkg-repack slowhttptest prometheus"
missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	echo "test-deps: all packages installed"
	exit 0
fi
echo "test-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $missing
