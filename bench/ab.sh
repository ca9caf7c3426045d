#!/usr/bin/env bash
# Old binary against new, alternating in one run on one machine: durable
# ingest of `pdk-archive serve` at 64 connections (closed loop), a fresh
# archive per run. The figure to read is the ratio of the medians; a shared
# machine drifts, and alternating spreads the drift over both.
#
#   bench/ab.sh OLD_REV [ROUNDS]        # e.g. bench/ab.sh c574858 5
#
# Environment: DURATION / WARMUP (seconds per run, default 10 / 2),
# CONNECTIONS (64), BUILD_DIR (build-bench, the current tree), TMPDIR,
# OLD_BIN (an old pdk-archive already built: OLD_REV then only names it).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OLD_REV=${1:?usage: bench/ab.sh OLD_REV [ROUNDS]}
ROUNDS=${2:-5}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-64}
BUILD=${BUILD_DIR:-$ROOT/build-bench}
SECRET="ab-secret-$$"

log() { echo "[$(date +%T)] $*" >&2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pdk-ab.XXXXXX")
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  git -C "$ROOT" worktree remove --force "$WORK/old" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

log "building the current tree into $BUILD (Release)"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >"$WORK/cmake-new.log" 2>&1 ||
  { cat "$WORK/cmake-new.log" >&2; exit 1; }
ninja -C "$BUILD" -j"${JOBS:-2}" pdk-load pdk-archive >&2
OLD_BINARY=${OLD_BIN:-}
if [[ -z "$OLD_BINARY" ]]; then
  log "building $OLD_REV (Release)"
  git -C "$ROOT" worktree add --detach "$WORK/old" "$OLD_REV" >/dev/null 2>&1
  cmake -S "$WORK/old" -B "$WORK/old/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DPDKARCHIVE_BUILD_TESTS=OFF >"$WORK/cmake-old.log" 2>&1 ||
    { cat "$WORK/cmake-old.log" >&2; exit 1; }
  ninja -C "$WORK/old/build" -j"${JOBS:-2}" pdk-archive >&2
  OLD_BINARY="$WORK/old/build/cli/pdk-archive"
fi
LOAD="$BUILD/bench/pdk-load"
declare -A BINARY=([old]="$OLD_BINARY" [new]="$BUILD/cli/pdk-archive")

# run_one WHICH: one fresh archive, one serve, one pdk-load run; prints
# "events_per_s p99_ms".
run_one() {
  local which=$1 db="$WORK/$1.db"
  rm -f "$db" "$db-wal" "$db-shm"
  "${BINARY[$which]}" serve --db "$db" --http-listen 127.0.0.1:0 --grpc-listen 127.0.0.1:0 \
    --secret "$SECRET" >"$WORK/serve.out" 2>"$WORK/serve.err" &
  SERVER_PID=$!
  local port=""
  for _ in $(seq 150); do
    port=$(sed -n 's/^http listening on .*:\([0-9]*\)$/\1/p' "$WORK/serve.out")
    [[ -n "$port" ]] && break
    sleep 0.1
  done
  [[ -n "$port" ]] || { cat "$WORK/serve.err" >&2; exit 1; }
  local result
  result=$("$LOAD" --port "$port" --secret "$SECRET" --connections "$CONNECTIONS" \
    --duration "$DURATION" --warmup "$WARMUP" --label "$which" | grep '^RESULT')
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || true
  SERVER_PID=""
  echo "$(sed -n 's/.* events_per_s=\([^ ]*\).*/\1/p' <<<"$result")" \
    "$(sed -n 's/.* p99_ms=\([^ ]*\).*/\1/p' <<<"$result")"
}

declare -A RATES P99S
echo "| round | binary | events/s | p99 ms |"
echo "| --- | --- | --- | --- |"
for round in $(seq "$ROUNDS"); do
  # Alternate which goes first, so neither always follows the other.
  order="old new"
  ((round % 2 == 0)) && order="new old"
  for which in $order; do
    log "round $round: $which"
    read -r rate p99 < <(run_one "$which")
    RATES[$which]+="$rate "
    P99S[$which]+="$p99 "
    echo "| $round | $which | $rate | $p99 |"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
old_rate=$(median <<<"${RATES[old]}")
new_rate=$(median <<<"${RATES[new]}")
echo
echo "median events/s: old ($OLD_REV) $old_rate, new $new_rate," \
  "new/old = $(awk "BEGIN { printf \"%.3f\", $new_rate / $old_rate }")"
echo "median p99 ms: old $(median <<<"${P99S[old]}"), new $(median <<<"${P99S[new]}")"
