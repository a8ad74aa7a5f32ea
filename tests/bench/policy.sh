#!/bin/sh
# policy.sh - build and run the policy benchmark (tests/bench/policy_bench.c): startup time
# with 100,000 ProxyBlock domains (target < 1 s) and decisions per second on one core (target
# >= 1,000,000/s). Prints figures; asserts only that every decision is right.
#
# Environment: CC (default gcc), BENCH_OUT (build directory, default build/bench),
# BENCH_NAMES (default 100000), BENCH_SECONDS (default 3). Extra CFLAGS are honoured.
set -eu
cd "$(dirname "$0")/../.."
CC=${CC:-gcc}
OUT=${BENCH_OUT:-build/bench}
mkdir -p "$OUT"
# shellcheck disable=SC2086
"$CC" -std=c11 -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes \
	-Wmissing-prototypes -Wno-sign-compare -D_GNU_SOURCE -I. -O2 -g ${CFLAGS:-} \
	policy/*.c tests/bench/policy_bench.c -o "$OUT/policy_bench"
exec "$OUT/policy_bench" "${BENCH_NAMES:-100000}" "${BENCH_SECONDS:-3}"
