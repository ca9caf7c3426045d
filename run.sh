#!/usr/bin/env bash
# Builds pdk-archive (installing its Debian packages if missing) and runs it.
#   ./run.sh serve [--db PATH] [--http-listen HOST:PORT] [--secret-file PATH] ...
#   ./run.sh events --door 3 --from 2026-01-05
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh >&2
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DPDKARCHIVE_BUILD_TESTS=OFF >&2
cmake --build build/release --target pdk-archive -j"$(nproc)" >&2
exec build/release/cli/pdk-archive "${@:-serve}"
