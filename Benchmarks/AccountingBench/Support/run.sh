#!/bin/sh
# Builds AccountingBench in release mode and runs it with the allocation
# counter preloaded. Usage: Benchmarks/AccountingBench/Support/run.sh [entries]
set -eu
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
swift build -c release --product AccountingBench
cc -O2 -shared -fPIC -o .build/release/libprivtrak_alloc_counter.so Benchmarks/AccountingBench/Support/alloc_counter.c
LD_PRELOAD="$root/.build/release/libprivtrak_alloc_counter.so" .build/release/AccountingBench "$@"
