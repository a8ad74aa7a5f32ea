#!/bin/sh
# One command: install build dependencies, build, and run the proxy in the foreground on
# 127.0.0.1:3128 with the built-in default configuration (or pass -f FILE and other options).
set -eu
cd "$(dirname "$0")/.."
scripts/build-deps.sh
scons -Q -j"$(nproc)"
exec build/gatehouse "$@"
