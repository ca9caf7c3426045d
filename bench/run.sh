#!/usr/bin/env bash
# Measures ingest against its ceilings on this machine, in one go, and prints
# a Markdown report (also written to bench/out/). See bench/README.md.
#
#   bench/run.sh                 # about 2.5 minutes after the build
#   DURATION=5 WARMUP=1 bench/run.sh
#
# Environment: BUILD_DIR (default build-bench), DURATION and WARMUP (seconds
# per level), LEVELS ("1 16 64 256"; must include 64), RATE_TARGET
# (5000), OCCURRED (year|live), OUT_DIR (bench/out), KEEP=1 keeps the
# temp dir, TMPDIR picks where archives are written (the disk measured).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build-bench}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
LEVELS=${LEVELS:-1 16 64 256}
RATE_TARGET=${RATE_TARGET:-5000}
OCCURRED=${OCCURRED:-year}
OUT_DIR=${OUT_DIR:-$ROOT/bench/out}
NULL_CONNS=64
SECRET="bench-secret-$$"

log() { echo "[$(date +%T)] $*" >&2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pdk-bench.XXXXXX")
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ "${KEEP:-0}" == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# --- build ----------------------------------------------------------------
log "building into $BUILD (Release)"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >"$WORK/cmake.log" 2>&1 ||
  { cat "$WORK/cmake.log" >&2; exit 1; }
ninja -C "$BUILD" -j"${JOBS:-2}" pdk-load pdk-store-ceiling pdk-null-server pdk-archive >&2
LOAD="$BUILD/bench/pdk-load"
CEILING="$BUILD/bench/pdk-store-ceiling"
NULL_SERVER="$BUILD/bench/pdk-null-server"
ARCHIVE="$BUILD/cli/pdk-archive"
STARTED=$(date +%s)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RAW="$OUT_DIR/$STAMP"
mkdir -p "$RAW"

# --- helpers --------------------------------------------------------------
# value KEY LINE: the value of KEY=... in a RESULT line.
value() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
# calc EXPR: floating-point arithmetic, printed with the given format.
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

# start_server NAME CMD...: runs CMD in the background, waits for its
# "http listening on" line; sets SERVER_PID, SERVER_PORT and GRPC_PORT.
start_server() {
  local name=$1
  shift
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  SERVER_PID=$!
  for _ in $(seq 150); do
    if grep -q '^http listening on' "$WORK/$name.out" 2>/dev/null; then
      SERVER_PORT=$(sed -n 's/^http listening on .*:\([0-9]*\)$/\1/p' "$WORK/$name.out")
      GRPC_PORT=$(sed -n 's/^grpc listening on .*:\([0-9]*\)$/\1/p' "$WORK/$name.out")
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  log "$name did not start:"
  cat "$WORK/$name.err" >&2
  exit 1
}

# stop_server: SIGTERM and wait; sets STOP_RC to the exit code.
stop_server() {
  STOP_RC=0
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || STOP_RC=$?
  SERVER_PID=""
}

# run_load NAME ARGS...: pdk-load against SERVER_PORT; keeps its output in
# RAW and sets RESULT to its RESULT line plus " exit=RC".
run_load() {
  local name=$1
  shift
  local rc=0
  "$LOAD" --port "$SERVER_PORT" --secret "$SECRET" --occurred "$OCCURRED" \
    --warmup "$WARMUP" --server-pid "$SERVER_PID" --label "$name" "$@" \
    >"$RAW/load-$name.txt" 2>&1 || rc=$?
  RESULT="$(grep '^RESULT' "$RAW/load-$name.txt" || echo "RESULT label=$name") exit=$rc"
}

# fsync_ms WRITES: ms per synced 4 KiB write, over WRITES dd writes.
dd_seconds() { sed -n 's/.* copied, \([0-9.e+-]*\) s,.*/\1/p' | tail -1; }
fsync_ms() {
  local seconds
  seconds=$(dd if=/dev/zero of="$WORK/fsync.dat" bs=4k count="$1" oflag=dsync 2>&1 | dd_seconds)
  rm -f "$WORK/fsync.dat"
  calc %.3f "1000 * $seconds / $1"
}

# serve_level NAME ARGS...: a fresh archive, pdk-archive serve with its
# defaults, one pdk-load run; sets RESULT to pdk-load's RESULT line plus the
# disk's fsync latency just before, the rows stored, the WAL size and serve's
# exit code.
serve_level() {
  local name=$1
  shift
  local db="$WORK/$name.db"
  local fsync
  fsync=$(fsync_ms 200)
  start_server "serve-$name" "$ARCHIVE" serve --db "$db" --http-listen 127.0.0.1:0 \
    --grpc-listen 127.0.0.1:0 --secret "$SECRET"
  run_load "$name" --metrics "$@"
  local rows wal
  rows=$("$ARCHIVE" count --server "127.0.0.1:$GRPC_PORT" 2>/dev/null | tail -1) || rows="?"
  wal=$(stat -c %s "$db-wal" 2>/dev/null) || wal=0
  stop_server
  rm -f "$db" "$db-wal" "$db-shm"
  RESULT="$RESULT fsync_ms=$fsync rows=$rows wal_mb=$(calc %.0f "$wal / 1e6") serve_exit=$STOP_RC"
}

# --- machine --------------------------------------------------------------
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
FS=$(df -T "$WORK" | awk 'NR == 2 { print $2 " on " $1 }')
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "disk: fsync latency and synced bandwidth in $WORK ($FS)"
FSYNC_MS=$(fsync_ms 1000)
SYNC_BW_S=$(dd if=/dev/zero of="$WORK/bw.dat" bs=1M count=64 oflag=dsync 2>&1 | dd_seconds)
SYNC_BW=$(calc %.0f "64 * 1.048576 / $SYNC_BW_S")
rm -f "$WORK/fsync.dat" "$WORK/bw.dat"

# --- HTTP ceiling ---------------------------------------------------------
log "HTTP ceiling: pdk-null-server at $NULL_CONNS connections"
start_server null "$NULL_SERVER" --listen 127.0.0.1:0
run_load null --connections "$NULL_CONNS" --duration "$DURATION"
NULL=$RESULT
# The latency floor at the fixed rate: what the load generator, loopback TCP
# and the scheduler of this shared machine add with no work behind them.
log "HTTP floor: pdk-null-server at a fixed $RATE_TARGET requests/s"
run_load null-rate --connections "$NULL_CONNS" --duration "$DURATION" --rate "$RATE_TARGET"
NULL_RATE=$RESULT
stop_server
NULL_RPS=$(value events_per_s "$NULL")

# --- ingest ---------------------------------------------------------------
declare -A LEVEL
for c in $LEVELS; do
  log "ingest: pdk-archive serve, $c connections, closed loop"
  serve_level "c$c" --connections "$c" --duration "$DURATION"
  LEVEL[$c]=$RESULT
done
MAX64=$(value events_per_s "${LEVEL[64]:-}")

# --- store ceiling --------------------------------------------------------
# The store slows as the archive grows, so it is measured on as many rows as
# the 64-connection level stored, into an empty archive: at batches of 1000
# (the ceiling) and at the mean batch serve reached (what the store alone
# does at serve's batching).
CEILING_ROWS=$(value rows "${LEVEL[64]:-}")
if ! [[ "$CEILING_ROWS" =~ ^[0-9]+$ ]] || ((CEILING_ROWS < 10000)); then CEILING_ROWS=100000; fi
store_ceiling() {  # store_ceiling NAME BATCH
  log "store: $CEILING_ROWS rows through SqliteStore::AppendBatch, batches of $2"
  "$CEILING" --rows "$CEILING_ROWS" --batch "$2" --occurred "$OCCURRED" --dir "$WORK" \
    --label "$1" >"$RAW/$1.txt" 2>&1
  RESULT=$(grep '^RESULT' "$RAW/$1.txt")
}
store_ceiling store-ceiling 1000
STORE=$RESULT
STORE_RPS=$(value rows_per_s "$STORE")
BATCH64=$(value batch_mean "${LEVEL[64]:-}")
STORE_B="RESULT label=store-batch"
if [[ -n "$BATCH64" ]]; then
  BATCH64=$(calc %.0f "$BATCH64")
  if ((BATCH64 < 1)); then BATCH64=1; fi
  store_ceiling store-batch "$BATCH64"
  STORE_B=$RESULT
fi

RATES="$RATE_TARGET"
if [[ -n "$MAX64" ]]; then
  HALF=$(calc %.0f "$MAX64 / 2")
  if [[ "$HALF" != "$RATE_TARGET" && "$HALF" -gt 0 ]]; then RATES="$RATES $HALF"; fi
fi
declare -A FIXED
for r in $RATES; do
  log "ingest: pdk-archive serve, 64 connections, fixed $r events/s"
  serve_level "r$r" --connections 64 --duration "$DURATION" --rate "$r"
  FIXED[$r]=$RESULT
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
FSYNC_MS_AFTER=$(fsync_ms 1000)
ELAPSED=$(($(date +%s) - STARTED))

# --- report ---------------------------------------------------------------
row() {  # row LABEL RESULT
  local r=$2
  local eps status=ok expected
  eps=$(value events_per_s "$r")
  if [[ "$(value exit "$r")" != 0 ]]; then status="pdk-load exit $(value exit "$r")"; fi
  if [[ "$(value non200 "$r")" != 0 || "$(value errors "$r")" != 0 ]]; then
    status="non-200 $(value non200 "$r"), errors $(value errors "$r")"
  fi
  if [[ "$(value reused "$r")" != 0 ]]; then status="$status; $(value reused "$r") re-sent"; fi
  expected=$(($(value ok "$r") - $(value duplicates "$r")))
  if [[ "$(value rows "$r")" != "$expected" ]]; then
    status="$status; rows $(value rows "$r") != 200s $expected"
  fi
  if [[ "$(value serve_exit "$r")" != 0 ]]; then status="$status; serve exit $(value serve_exit "$r")"; fi
  printf '| %s | %.0f | %s | %s | %s | %s | %.1f | %.2f | %s%% | %.0f%% | %.0f%% | %s MB | %s | %s |\n' \
    "$1" "$eps" "$(value p50_ms "$r")" "$(value p90_ms "$r")" "$(value p99_ms "$r")" \
    "$(value max_ms "$r")" "$(value batch_mean "$r")" "$(value commit_ms_mean "$r")" \
    "$(value server_cpu_pct "$r")" "$(calc %f "100 * $eps / $STORE_RPS")" \
    "$(calc %f "100 * $eps / $NULL_RPS")" "$(value wal_mb "$r")" "$(value fsync_ms "$r")" "$status"
}

verdict() { if awk "BEGIN { exit !($1) }"; then echo met; else echo "**missed**"; fi; }

REPORT="$OUT_DIR/results-$STAMP.md"
{
  echo "# pdk-archive ingest benchmark, $STAMP"
  echo
  echo "- machine: $(nproc) CPUs, $CPU_MODEL, kernel $(uname -r), archives on $FS"
  echo "- disk: 4 KiB O_DSYNC write (fsync latency) $FSYNC_MS ms at the start, $FSYNC_MS_AFTER ms at the end (dd, 1000 writes each); 1 MiB O_DSYNC writes $SYNC_BW MB/s"
  echo "- load average before $LOAD_BEFORE, after $LOAD_AFTER (other work on the machine skews results)"
  echo "- commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' + local changes'); ${DURATION} s per level after ${WARMUP} s warm-up; occurred times: $OCCURRED; fresh archive per level; $ELAPSED s in all"
  echo
  echo "## Ceilings"
  echo
  echo "| ceiling | throughput | latency |"
  echo "| --- | --- | --- |"
  printf '| store: SqliteStore::AppendBatch, %s rows in batches of 1000, empty archive | %.0f rows/s | batch p50 %s ms, p99 %s ms |\n' \
    "$CEILING_ROWS" "$STORE_RPS" "$(value batch_ms_p50 "$STORE")" "$(value batch_ms_p99 "$STORE")"
  printf '| (store at serve'"'"'s mean batch at 64 connections: %s rows in batches of %s) | %.0f rows/s | batch p50 %s ms, p99 %s ms |\n' \
    "$CEILING_ROWS" "$BATCH64" "$(value rows_per_s "$STORE_B")" "$(value batch_ms_p50 "$STORE_B")" "$(value batch_ms_p99 "$STORE_B")"
  printf '| HTTP: pdk-null-server (Pistache, 2 threads), %s connections | %.0f requests/s | p50 %s ms, p99 %s ms |\n' \
    "$NULL_CONNS" "$NULL_RPS" "$(value p50_ms "$NULL")" "$(value p99_ms "$NULL")"
  printf '| HTTP floor: pdk-null-server at a fixed %s/s, %s connections | %.0f requests/s | p50 %s ms, p90 %s ms, p99 %s ms, max %s ms |\n' \
    "$RATE_TARGET" "$NULL_CONNS" "$(value events_per_s "$NULL_RATE")" "$(value p50_ms "$NULL_RATE")" \
    "$(value p90_ms "$NULL_RATE")" "$(value p99_ms "$NULL_RATE")" "$(value max_ms "$NULL_RATE")"
  printf '| per event, one thread: signature check %s µs, normalize %s µs | | |\n' \
    "$(value verify_us "$STORE")" "$(value normalize_us "$STORE")"
  echo
  echo "The store slows as the archive grows: rows/s by quarter of the batch-1000 run were"
  echo "$(value quarters "$STORE" | sed 's/,/, /g'), with $(value wal_mb "$STORE") MB of WAL at the end."
  echo
  echo "## Ingest: pdk-archive serve (defaults: WAL, synchronous=FULL, ack after commit)"
  echo
  echo "| load | events/s | p50 ms | p90 ms | p99 ms | max ms | mean batch | mean commit ms | server CPU | of store ceiling | of HTTP ceiling | WAL at end | fsync ms before | check |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  for c in $LEVELS; do row "$c conns, closed loop" "${LEVEL[$c]}"; done
  for r in $RATES; do row "64 conns, fixed $r/s" "${FIXED[$r]}"; done
  echo
  echo "Latency is per request, from send (closed loop) or from the scheduled send time"
  echo "(fixed rate) to the 200. Mean batch and commit time come from GET /metrics"
  echo "(pdkarchive_commit_batch_size and _latency_seconds, _sum/_count diffed over the"
  echo "measured window). \"fsync ms before\": a 200-write dd probe just before the level (the"
  echo "disk is shared; this moves). \"check\": every 200 is a row in the archive (pdk-archive count)."
  echo
  echo "## Targets (issue 5)"
  echo
  if [[ -n "$MAX64" ]]; then
    echo "- ingest at 64 connections ≥ 70% of the store ceiling: $(calc %.0f "100 * $MAX64 / $STORE_RPS")% — $(verdict "$MAX64 >= 0.7 * $STORE_RPS")"
    echo "- ≥ 10,000 events/s at 64 connections: $(calc %.0f "$MAX64") — $(verdict "$MAX64 >= 10000")"
  fi
  P99T=$(value p99_ms "${FIXED[$RATE_TARGET]}")
  EPST=$(value events_per_s "${FIXED[$RATE_TARGET]}")
  echo "- p99 ≤ 20 ms at $RATE_TARGET events/s: p99 $P99T ms at $(calc %.0f "$EPST") events/s achieved — $(verdict "$P99T <= 20 && $EPST >= 0.98 * $RATE_TARGET") (a do-nothing handler at the same rate: p99 $(value p99_ms "$NULL_RATE") ms)"
  echo
  echo "Raw outputs: ${RAW#"$ROOT"/}/"
} | tee "$REPORT"
cp "$REPORT" "$OUT_DIR/latest.md"
cp "$WORK"/serve-*.err "$RAW/" 2>/dev/null || true
log "report: $REPORT ($ELAPSED s)"
