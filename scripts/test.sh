#!/bin/sh
# One command: install everything the build and the tests need, build the normal and the
# sanitizer flavours, and run every test (unit, fuzz, integration). Exit status is the verdict.
set -eu
cd "$(dirname "$0")/.."
scripts/build-deps.sh
scripts/test-deps.sh
scons -Q -j"$(nproc)" test
