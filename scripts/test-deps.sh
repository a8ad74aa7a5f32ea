#!/bin/sh
# test-deps.sh - install the Debian packages the build and the tests need (idempotent: apt-get
# runs only when something is missing). Run as root. squid is not listed: tests/bench/run.sh
# installs it itself when BENCH_SQUID=1. apache2-utils gives htpasswd (the auth tests' hashes),
# prometheus gives promtool (the metrics test), nodejs + chromium the browser tests; vsftpd and
# python3-pyftpdlib are the FTP servers of the gateway's tests, media-types its /etc/mime.types;
# libnss3-tools gives certutil (the test CA in chromium's NSS db), sslscan the TLS listener's scan.
set -eu
PKGS="scons pkg-config gcc clang libc-ares-dev libssl-dev zlib1g-dev liblmdb-dev libcrypt-dev libcmocka-dev
python3 python3-pytest curl wget dnsmasq-base nginx-light wrk procps nodejs chromium
dpkg-dev debhelper lintian apt-utils logrotate dpkg-repack slowhttptest
apache2-utils prometheus
vsftpd python3-pyftpdlib media-types
libnss3-tools sslscan"
missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	echo "test-deps: all packages installed"
else
	echo "test-deps: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# shellcheck disable=SC2086
	apt-get install -y --no-install-recommends $missing
fi

# puppeteer-core (npm) for the status page's browser flows, in tests/integration/node/ (never
# a global install; it drives Debian's chromium, so no browser is downloaded). npm ci runs
# only when node_modules is missing or older than package-lock.json.
node_dir="$(dirname "$0")/../tests/integration/node"
stamp="$node_dir/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$node_dir/package-lock.json" -nt "$stamp" ]; then
	echo "test-deps: npm ci in tests/integration/node"
	(cd "$node_dir" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts)
else
	echo "test-deps: puppeteer-core installed"
fi
