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

# The packages among the arguments that are not installed, each after a space ("" when none).
missing_of() {
	m=""
	for p in "$@"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
			m="$m $p"
		fi
	done
	printf '%s' "$m"
}

# shellcheck disable=SC2086
missing="$(missing_of $PKGS)"
if [ -z "$missing" ]; then
	echo "test-deps: all packages installed"
else
	echo "test-deps: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# shellcheck disable=SC2086
	apt-get install -y --no-install-recommends $missing
fi

# Servers the proxy-authentication tests (issue 14) start themselves, on loopback, from files
# in the test's temporary directory: squid-openssl for Squid's authentication helpers
# (/usr/lib/squid/basic_ldap_auth, negotiate_kerberos_auth), slapd + ldap-utils for the LDAP
# directory, krb5-kdc + krb5-admin-server + krb5-user for a throwaway Kerberos realm, and
# fail2ban for fail2ban-regex (the packaged filter's test). Their packages would start system
# services (Squid on port 3128, slapd, the KDC, fail2ban) that nothing here uses: a
# policy-rc.d that refuses every start is in place while they install, and removed after.
SVC_PKGS="squid-openssl slapd ldap-utils krb5-kdc krb5-admin-server krb5-user fail2ban"
# shellcheck disable=SC2086
svc_missing="$(missing_of $SVC_PKGS)"
if [ -n "$svc_missing" ]; then
	echo "test-deps: installing (services not started):$svc_missing"
	rcd=/usr/sbin/policy-rc.d
	made_rcd=0
	if [ ! -e "$rcd" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$rcd"
		chmod 755 "$rcd"
		made_rcd=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	[ -n "$missing" ] || apt-get update -q
	rc=0
	# shellcheck disable=SC2086
	apt-get install -y --no-install-recommends $svc_missing || rc=$?
	[ "$made_rcd" = 1 ] && rm -f "$rcd"
	[ "$rc" = 0 ] || exit "$rc"
fi
# A squid the package started before this script guarded it (an older checkout) would hold
# port 3128, the proxy's default: stop it.
if pgrep -x squid >/dev/null 2>&1; then
	(systemctl stop squid || service squid stop) >/dev/null 2>&1 || true
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
