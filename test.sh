#!/usr/bin/env bash
# Builds pdk-archive with its tests (installing Debian packages if missing)
# and runs every test. Extra arguments go to ctest (e.g. -R HttpIngest).
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh --with-test-tools
cmake -S . -B build/test -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPDKARCHIVE_WERROR="${PDKARCHIVE_WERROR:-OFF}" \
  -DPDKARCHIVE_SANITIZE="${PDKARCHIVE_SANITIZE:-OFF}"
cmake --build build/test -j"$(nproc)"
cd build/test
ctest --output-on-failure -j"$(nproc)" --timeout 600 "$@"
