#!/usr/bin/env bash
# The PostgreSQL engine on this machine, in one run (issue 14), as a Markdown
# report (also written to bench/out/):
#   1. PostgreSQL's own ceiling: the same rows pdk-load sends, appended
#      through the engine's sink in transactions of 1,000 (pdk-store-ceiling
#      --db), no HTTP;
#   2. durable ingest at 64 connections (pdk-load) into SQLite, into one
#      serve node on PostgreSQL, and into two serve nodes on one PostgreSQL
#      database (32 connections each, run at the same time, summed);
#   3. `pdk-archive copy` of a COPY_COUNT-event SQLite archive to PostgreSQL;
#   4. optionally (QUERIES=1) bench/query_run.sh against that copy.
# PostgreSQL is a throwaway cluster with fsync on (scripts/pg_cluster.sh
# --durable) in TMPDIR, sharing the 2 cores with the nodes and pdk-load.
#
#   bench/pg_run.sh                          # ≈ 5 minutes after the build
#   DURATION=5 WARMUP=1 COPY_COUNT=100000 bench/pg_run.sh
#
# Environment: BUILD_DIR (default build-bench), DURATION and WARMUP (s per
# run, 10 and 2), CEILING_ROWS (200000), COPY_COUNT (1000000), QUERIES=1,
# OUT_DIR (bench/out), KEEP=1 keeps the work dir.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build-bench}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CEILING_ROWS=${CEILING_ROWS:-200000}
COPY_COUNT=${COPY_COUNT:-1000000}
OUT_DIR=${OUT_DIR:-$ROOT/bench/out}
SECRET="pg-bench-$$"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)

log() { echo "[$(date +%T)] $*" >&2; }
value() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pdk-pg-bench.XXXXXX")
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  "$ROOT/scripts/pg_cluster.sh" stop "$WORK/pg" || true
  if [[ "${KEEP:-0}" == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

log "building into $BUILD (Release)"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >"$WORK/cmake.log" 2>&1 ||
  { cat "$WORK/cmake.log" >&2; exit 1; }
ninja -C "$BUILD" -j2 pdk-load pdk-store-ceiling pdk-archive pdk-make-events >&2
LOAD="$BUILD/bench/pdk-load"
CEILING="$BUILD/bench/pdk-store-ceiling"
ARCHIVE="$BUILD/cli/pdk-archive"

log "starting a durable PostgreSQL cluster in $WORK/pg"
BASE=$("$ROOT/scripts/pg_cluster.sh" start "$WORK/pg" --durable)
# uri DBNAME: a new database on the cluster.
uri() {
  psql -q "$BASE" -c "CREATE DATABASE $1" >/dev/null
  echo "${BASE%/postgres}/$1"
}

# start NAME DB: pdk-archive serve on DB; appends its pid to PIDS and sets
# PORT to its HTTP port.
start() {
  local name=$1 db=$2
  "$ARCHIVE" serve --db "$db" --http-listen 127.0.0.1:0 --grpc-listen 127.0.0.1:0 \
    --secret "$SECRET" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS+=($!)
  for _ in $(seq 200); do
    PORT=$(sed -n 's/^http listening on .*:\([0-9]*\)$/\1/p' "$WORK/$name.out")
    [[ -n "$PORT" ]] && return 0
    sleep 0.1
  done
  cat "$WORK/$name.err" >&2
  exit 1
}

# load NAME PORT CONNS SEED: pdk-load; prints its RESULT line.
load() {
  "$LOAD" --port "$2" --secret "$SECRET" --connections "$3" --seed "$4" --duration "$DURATION" \
    --warmup "$WARMUP" --label "$1" >"$WORK/load-$1.txt" 2>&1 || true
  grep '^RESULT' "$WORK/load-$1.txt" || { cat "$WORK/load-$1.txt" >&2; echo "RESULT label=$1"; }
}

stop_all() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}

mkdir -p "$OUT_DIR"
REPORT="$OUT_DIR/pg-$STAMP.md"
exec > >(tee "$REPORT")
echo "# pdk-archive on PostgreSQL, $STAMP"
echo
echo "Machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1);"
echo "PostgreSQL $(psql -tA "$BASE" -c 'SHOW server_version'), fsync on, synchronous_commit on;"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)."
echo

log "1. PostgreSQL's ceiling ($CEILING_ROWS rows, batches of 1000)"
ceiling=$("$CEILING" --db "$(uri ceiling)" --rows "$CEILING_ROWS" --batch 1000 --label pg-ceiling |
  grep '^RESULT')
CEILING_RATE=$(value rows_per_s "$ceiling")

log "2a. SQLite, 64 connections"
start sqlite "$WORK/sqlite.db"
sqlite_result=$(load sqlite "$PORT" 64 1)
stop_all

log "2b. PostgreSQL, one node, 64 connections"
DB1=$(uri one_node)
start one "$DB1"
one_result=$(load one-node "$PORT" 64 2)
stop_all

log "2c. PostgreSQL, two nodes, 32 connections each"
DB2=$(uri two_nodes)
start a "$DB2"
PORT_A=$PORT
start b "$DB2"
PORT_B=$PORT
load node-a "$PORT_A" 32 3 >"$WORK/a.result" &
LA=$!
load node-b "$PORT_B" 32 4 >"$WORK/b.result" &
LB=$!
wait $LA $LB
stop_all
a_result=$(cat "$WORK/a.result")
b_result=$(cat "$WORK/b.result")
TWO_RATE=$(calc %.1f "$(value events_per_s "$a_result") + $(value events_per_s "$b_result")")
ONE_RATE=$(value events_per_s "$one_result")

echo "## Durable ingest, 64 connections"
echo
echo "| target | events/s | p50 ms | p99 ms | errors |"
echo "|---|---:|---:|---:|---:|"
for r in "$sqlite_result" "$one_result" "$a_result" "$b_result"; do
  echo "| $(value label "$r") | $(value events_per_s "$r") | $(value p50_ms "$r") |" \
    "$(value p99_ms "$r") | $(value errors "$r") |"
done
echo "| two nodes together | $TWO_RATE | | | |"
echo "| PostgreSQL ceiling (no HTTP, 1,000-row transactions) | $CEILING_RATE | | | |"
echo
echo "One node: $(calc %.0f "100 * $ONE_RATE / $CEILING_RATE")% of the ceiling;" \
  "two nodes: $(calc %.0f "100 * $TWO_RATE / $CEILING_RATE")%;" \
  "two nodes / one node: $(calc %.2f "$TWO_RATE / $ONE_RATE")."
echo

log "3. copy of a $COPY_COUNT-event SQLite archive to PostgreSQL"
"$BUILD/bench/pdk-make-events" --count "$COPY_COUNT" --out "$WORK/events.jsonl"
"$ARCHIVE" import --db "$WORK/source.db" "$WORK/events.jsonl" >"$WORK/import.out"
rm -f "$WORK/events.jsonl"
DB3=$(uri copied)
start_s=$(date +%s.%N)
"$ARCHIVE" copy --from "$WORK/source.db" --to "$DB3" >"$WORK/copy.out"
end_s=$(date +%s.%N)
echo "## copy"
echo
echo "\`pdk-archive copy --from SQLITE --to POSTGRESQL\` of $COPY_COUNT events:" \
  "$(cat "$WORK/copy.out") Wall time $(calc %.1f "$end_s - $start_s") s."
echo "Size on PostgreSQL: $(psql -tA "$DB3" -c "SELECT pg_size_pretty(pg_database_size(current_database()))")" \
  "($(psql -tA "$DB3" -c "SELECT pg_database_size(current_database()) / count(*) FROM events") bytes per event, indexes and rollups included)."
echo

if [[ "${QUERIES:-0}" == 1 ]]; then
  log "4. the query bench on the copy"
  ARCHIVE="$DB3" BUILD_DIR="$BUILD" WATCH=0 OUT_DIR="$WORK" "$ROOT/bench/query_run.sh" |
    sed -n '/^## /,$p'
fi
echo "Load average after: $(cut -d' ' -f1-3 /proc/loadavg)."
log "report: $REPORT"
