#!/bin/sh
# One command: install build dependencies, build, and run the proxy in the foreground on
# 127.0.0.1:3128 with the built-in default configuration, which caches and writes an access
# log (its first line says where); pass -p PORT for another port, or -f FILE and other options.
set -eu
cd "$(dirname "$0")/.."
scripts/build-deps.sh
scons -Q -j"$(nproc)"
exec build/gatehouse "$@"
