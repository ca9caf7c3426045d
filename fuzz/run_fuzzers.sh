#!/usr/bin/env bash
# Builds the libFuzzer binaries with clang and runs each fuzz target for a
# bounded time over its seeds and saved regressions; stops at the first
# failure, naming the input that caused it. Usage:
#   fuzz/run_fuzzers.sh [SECONDS_PER_TARGET] [TARGET...]
# SECONDS_PER_TARGET defaults to 60; targets default to all five. The build
# tree is build/fuzz (PDKARCHIVE_FUZZ_BUILD_DIR overrides it).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(normalizer webhook_handler page_token csv_writer http_framer)
build="${PDKARCHIVE_FUZZ_BUILD_DIR:-build/fuzz}"

clang="$(command -v clang++-14 || command -v clang++ || true)"
if [ -z "$clang" ]; then
  echo "needs clang: apt-get install clang-14 libclang-rt-14-dev" >&2
  exit 1
fi
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="$clang" -DPDKARCHIVE_LIBFUZZER=ON -DPDKARCHIVE_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target "${targets[@]/%/_fuzzer}"

for target in "${targets[@]}"; do
  work="$build/runs/$target"
  mkdir -p "$work/corpus"
  echo "== $target: ${seconds}s" >&2
  # New inputs go to $work/corpus; the checked-in directories stay as they are.
  "$build/fuzz/${target}_fuzzer" -max_total_time="$seconds" -max_len=8192 -timeout=30 \
    -print_final_stats=1 -artifact_prefix="$work/" \
    "$work/corpus" "fuzz/corpus/$target" "fuzz/regressions/$target" 2>&1 |
    grep -E '^(INFO: seed corpus|#[0-9]+ +DONE|Done|stat::|==[0-9]+==|SUMMARY|.*FUZZ_CHECK|.*runtime error|artifact_prefix|Test unit written)' || true
  if ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* >/dev/null 2>&1; then
    echo "$target: failing input(s) in $work/ - replay with $build/fuzz/${target}_fuzzer FILE" >&2
    exit 1
  fi
done
