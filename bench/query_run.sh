#!/usr/bin/env bash
# Archive size and query speed at scale (issue 5, parts 3 and 4); the write-up
# is bench/QUERY_RESULTS.md.
#
#   bench/query_run.sh                   # 10M events: ≈ 35–45 min on 2 shared cores
#                                        #   (the import is ≈ 26 min of it)
#   COUNT=1000000 bench/query_run.sh     # 1M events: ≈ 4 min
#   ARCHIVE=/tmp/a10m.db bench/query_run.sh   # skip generate+import, query an archive
#
# Steps: build pdk-archive, pdk-make-events and pdk-query-bench (Release);
# write COUNT events of 2025 as JSON lines; load them with
# `pdk-archive import FILE --db PATH` (events/s, WAL high-water mark); run
# PRAGMA wal_checkpoint(TRUNCATE) and report bytes on disk per event with a
# per-table/index breakdown (dbstat); delete the JSON lines; start
# `pdk-archive serve` on the archive and run pdk-query-bench against it
# (ListEvents shapes, deep paging, CountEvents, ExportEvents with the
# server's VmHWM, then WatchEvents under HTTP ingest, filtered and not).
#
# Environment:
#   COUNT           events to generate (default 10000000)
#   BUILD_DIR       build tree (default build-bench5)
#   TMPDIR          where the JSON lines and archive go (~2.2 GB + ~3.3 GB at 10M)
#   CHECKPOINT_LOOP 0 (default): import exactly as shipped (since fe62f29 and
#                   6381b05 the import bounds its own WAL); 1: also checkpoint
#                   from a second connection every 2 s (PASSIVE, then RESTART),
#                   as needed to build archives with binaries older than those
#                   (whose WAL grew by ≈ 3.8 GB per million events).
#   ITERATIONS      ListEvents calls per shape (default 200)
#   COUNT_ITERATIONS CountEvents calls per question (default 30)
#   DEEP_PAGES      page reached by deep paging (default 1000)
#   EXPORT_ROWS     rows per export (default 1000000, capped at COUNT/10*3 for small runs)
#   WATCH_RATE, WATCH_SECONDS  webhooks/s posted and for how long (3000, 20)
#   ARCHIVE         an existing archive to query instead of building one
#   KEEP=1          keep the work dir (archive included)
#   SERVE_BIN       the pdk-archive that serves the queries (default: the one
#                   built here), to compare binaries on one archive
#   WATCH=0         skip the watch-under-ingest part (it adds events)
#   OUT_DIR         where the report goes (default bench/out)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build-bench5}
COUNT=${COUNT:-10000000}
CHECKPOINT_LOOP=${CHECKPOINT_LOOP:-0}
ITERATIONS=${ITERATIONS:-200}
COUNT_ITERATIONS=${COUNT_ITERATIONS:-30}
DEEP_PAGES=${DEEP_PAGES:-1000}
EXPORT_ROWS=${EXPORT_ROWS:-$((COUNT < 3333333 ? COUNT * 3 / 10 : 1000000))}
WATCH_RATE=${WATCH_RATE:-3000}
WATCH_SECONDS=${WATCH_SECONDS:-20}
OUT_DIR=${OUT_DIR:-$ROOT/bench/out}
SECRET="query-bench-$$"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)

log() { echo "[$(date +%T)] $*" >&2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pdk-query.XXXXXX")
SERVER_PID=""
IMPORT_PID=""
cleanup() {
  for pid in $SERVER_PID $IMPORT_PID; do
    if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  if [[ "${KEEP:-0}" == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

mkdir -p "$OUT_DIR"
REPORT="$OUT_DIR/query-$STAMP.md"
exec > >(tee "$REPORT")

log "building into $BUILD (Release)"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPDKARCHIVE_BUILD_TESTS=OFF \
  >"$WORK/cmake.log" 2>&1 || { cat "$WORK/cmake.log" >&2; exit 1; }
ninja -C "$BUILD" -j2 pdk-archive pdk-make-events pdk-query-bench >"$WORK/build.log" 2>&1 ||
  { tail -50 "$WORK/build.log" >&2; exit 1; }
ARCHIVE_BIN="$BUILD/cli/pdk-archive"
command -v sqlite3 >/dev/null || { echo "needs the sqlite3 CLI (apt-get install -y sqlite3)" >&2; exit 1; }

echo "# pdk-archive query benchmark, $STAMP"
echo
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'),"
echo "$(free -g | awk '/Mem:/{print $2}') GiB RAM; load average before: $(cut -d' ' -f1-3 /proc/loadavg)."
echo

if [[ -n "${ARCHIVE:-}" ]]; then
  DB="$ARCHIVE"
  log "using the existing archive $DB"
else
  DB="$WORK/archive.db"
  EVENTS="$WORK/events.jsonl"
  log "generating $COUNT events"
  t0=$(date +%s.%N)
  "$BUILD/bench/pdk-make-events" --count "$COUNT" --out "$EVENTS"
  t1=$(date +%s.%N)
  echo "## Archive size ($COUNT events)"
  echo
  echo "pdk-make-events --count $COUNT: $(stat -c %s "$EVENTS") bytes of JSON lines in" \
    "$(echo "$t1 - $t0" | bc) s."
  log "importing (checkpoint loop: $CHECKPOINT_LOOP)"
  "$ARCHIVE_BIN" import "$EVENTS" --db "$DB" >"$WORK/import.out" 2>"$WORK/import.err" &
  IMPORT_PID=$!
  wal_max=0
  while kill -0 "$IMPORT_PID" 2>/dev/null; do
    if [[ "$CHECKPOINT_LOOP" == 1 && -f "$DB-wal" ]]; then
      sqlite3 -cmd ".timeout 5000" "$DB" \
        "PRAGMA wal_checkpoint(PASSIVE); PRAGMA wal_checkpoint(RESTART);" >/dev/null 2>&1 || true
    fi
    w=$(stat -c %s "$DB-wal" 2>/dev/null || echo 0)
    ((w > wal_max)) && wal_max=$w
    sleep 2
  done
  wait "$IMPORT_PID" || { cat "$WORK/import.err" >&2; exit 1; }
  IMPORT_PID=""
  echo "pdk-archive import: $(cat "$WORK/import.out")"
  echo "WAL high-water mark during the import: $((wal_max / 1048576)) MiB" \
    "(checkpoint loop: $CHECKPOINT_LOOP)."
  rm -f "$EVENTS"
  sqlite3 "$DB" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
  bytes=$(stat -c %s "$DB")
  events=$(sqlite3 "$DB" "SELECT COUNT(*) FROM events;")
  echo "Archive after PRAGMA wal_checkpoint(TRUNCATE): $bytes bytes, $events events," \
    "$(echo "scale=1; $bytes / $events" | bc) bytes per event."
  echo
  echo "| table or index | MiB | bytes/event | share |"
  echo "|---|---:|---:|---:|"
  sqlite3 -separator ' ' "$DB" \
    "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC;" |
    while read -r name size; do
      echo "| $name | $(echo "scale=1; $size / 1048576" | bc) |" \
        "$(echo "scale=1; $size / $events" | bc) | $(echo "scale=1; 100 * $size / $bytes" | bc)% |"
    done
  echo
fi

log "starting pdk-archive serve"
"${SERVE_BIN:-$ARCHIVE_BIN}" serve --db "$DB" --http-listen 127.0.0.1:0 --grpc-listen 127.0.0.1:0 \
  --max-count-groups 10000000 \
  --secret "$SECRET" >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVER_PID=$!
for _ in $(seq 100); do
  grep -q "grpc listening" "$WORK/serve.out" 2>/dev/null && break
  sleep 0.1
done
GRPC=$(awk '/grpc listening/{print $4}' "$WORK/serve.out")
HTTP=$(awk '/http listening/{print $4}' "$WORK/serve.out")
[[ -n "$GRPC" && -n "$HTTP" ]] || { cat "$WORK/serve.err" >&2; exit 1; }
echo "Server: pdk-archive serve --db ARCHIVE --max-count-groups 10000000 --secret S (pid $SERVER_PID), gRPC $GRPC, HTTP $HTTP."

log "queries"
"$BUILD/bench/pdk-query-bench" --server "$GRPC" --server-pid "$SERVER_PID" \
  --iterations "$ITERATIONS" --count-iterations "$COUNT_ITERATIONS" \
  --deep-pages "$DEEP_PAGES" --export-rows "$EXPORT_ROWS" --only list,deep,count,export
log "watch under ingest"
[[ "${WATCH:-1}" == 0 ]] && WATCH_TOPICS=() || WATCH_TOPICS=("door.request.*" "")
for topic in "${WATCH_TOPICS[@]}"; do
  "$BUILD/bench/pdk-query-bench" --server "$GRPC" --server-pid "$SERVER_PID" --only watch \
    --http "$HTTP" --secret "$SECRET" --watch-rate "$WATCH_RATE" \
    --watch-seconds "$WATCH_SECONDS" --watch-topic "$topic" || true
done
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || true
SERVER_PID=""
echo
echo "Load average after: $(cut -d' ' -f1-3 /proc/loadavg)."
log "report: $REPORT"
