#!/bin/sh
# Installs what building Gatehouse needs from Debian 12's archive. Idempotent: apt-get runs only
# when a package is missing. Run as root.
set -eu
pkgs="scons gcc pkg-config libc-ares-dev libssl-dev zlib1g-dev liblmdb-dev libcrypt-dev"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q || true
    apt-get install -y -q --no-install-recommends $missing
fi
