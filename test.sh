#!/usr/bin/env bash
# Builds pdk-archive with its tests (installing Debian packages if missing)
# and runs every test. Extra arguments go to ctest (e.g. -R HttpIngest).
# The PostgreSQL tests run against a throwaway cluster started here in a
# temporary directory (scripts/pg_cluster.sh) and stopped on exit; its URI
# reaches the tests as PDKARCHIVE_TEST_POSTGRES (set it yourself to use
# another server).
# PDKARCHIVE_SANITIZE=ON builds and runs the same suite under ASan + UBSan
# (in build/test-sanitize); PDKARCHIVE_WERROR=ON makes warnings errors.
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh --with-test-tools
sanitize="${PDKARCHIVE_SANITIZE:-OFF}"
build_dir=build/test
[ "$sanitize" = "ON" ] && build_dir=build/test-sanitize
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPDKARCHIVE_WERROR="${PDKARCHIVE_WERROR:-OFF}" \
  -DPDKARCHIVE_SANITIZE="$sanitize"
cmake --build "$build_dir" -j"$(nproc)"
if [ -z "${PDKARCHIVE_TEST_POSTGRES:-}" ]; then
  pg_dir=$(mktemp -d /tmp/pdkarchive-pg.XXXXXX)
  root=$(pwd)
  trap '"$root/scripts/pg_cluster.sh" stop "$pg_dir"' EXIT
  PDKARCHIVE_TEST_POSTGRES=$(scripts/pg_cluster.sh start "$pg_dir")
  export PDKARCHIVE_TEST_POSTGRES
fi
cd "$build_dir"
ctest --output-on-failure -j"$(nproc)" --timeout 600 "$@"
