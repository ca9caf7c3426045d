#!/usr/bin/python3
"""What-if experiments on the archive schema: what each index and setting costs.

Not the product's code path (pdk-store-ceiling measures that): this applies
migrations/*.sql to a fresh archive with the product's pragmas (WAL,
synchronous=FULL, wal_autocheckpoint=0), then changes one thing per variant
(drops an index, a bigger page cache, a smaller page size, time-ordered
events, a bounded WAL, events stored unmerged)
and appends rows shaped like pdk-load's events in batches of --batch rows,
one transaction and one fsync each, as SqliteStore::AppendBatch does for a
batch it indexes directly: the row, and its day in both rollups. Reports
rows/s and WAL bytes per row. (The product also compresses each payload;
here it is stored as text.)

  bench/store_whatif.py [--rows 30000] [--batch 32] [--dir /tmp]

Uses Debian's /usr/bin/python3 and its sqlite3 module (the same SQLite
library the product links). Takes about a minute.
"""
import argparse
import glob
import hashlib
import os
import random
import shutil
import tempfile
import time

import sqlite3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOPICS = ["door.request.allowed"] * 52 + ["door.request.denied"] * 8 + [
    "door.request.unknown"] * 2 + ["door.input.dps.opened"] * 16 + [
    "door.input.dps.closed"] * 16 + ["door.alarm.forced"] * 2 + [
    "door.alarm.forced.cleared"] * 2 + ["door.alarm.propped.on", "door.alarm.propped.off"]
YEAR_START_MS = 1735689600000
YEAR_MS = 365 * 24 * 3600 * 1000

# name -> (description, statements run after the migrations, live times)
VARIANTS = {
    "baseline": ("schema as migrated (5 indexes + dedupe_key hash index)", [], False),
    "cache_size=64MiB": ("page cache 64 MiB instead of the default 2 MiB",
                         ["PRAGMA cache_size=-65536"], False),
    "page_size=1024": ("1 KiB pages instead of 4 KiB", ["PAGE_SIZE"], False),
    "no events_by_person": ("drop the person index", ["DROP INDEX events_by_person"], False),
    "no events_by_door": ("drop the door index", ["DROP INDEX events_by_door"], False),
    "no topic+panel": ("drop the topic and panel indexes",
                       ["DROP INDEX events_by_topic", "DROP INDEX events_by_panel"], False),
    "time + dedupe only": ("drop door, person, topic and panel indexes",
                           ["DROP INDEX events_by_door", "DROP INDEX events_by_person",
                            "DROP INDEX events_by_topic", "DROP INDEX events_by_panel"], False),
    "live times": ("baseline schema, occurred = now (time-ordered)", [], True),
    "live, page_size=1024": ("time-ordered, 1 KiB pages", ["PAGE_SIZE"], True),
    "live, no topic+panel": ("time-ordered, no topic and panel indexes",
                             ["DROP INDEX events_by_topic", "DROP INDEX events_by_panel"], True),
    "live, no door+person": ("time-ordered, no door and person indexes",
                             ["DROP INDEX events_by_door", "DROP INDEX events_by_person"], True),
    "bounded WAL": ("baseline, plus a TRUNCATE checkpoint every 64 batches", ["BOUNDED"], False),
    "deferred": ("stored unmerged (merged = 0): no index, no rollup; the merge comes later",
                 ["DEFERRED"], False),
    "no rollups": ("indexed, but neither daily rollup updated", ["NO_ROLLUPS"], False),
}


def make_rows(n, live, rng):
    """Rows as dicts of every column the schema has had; run_variant picks."""
    now_ms = int(time.time() * 1000)
    rows = []
    for i in range(n):
        topic = rng.choice(TOPICS)
        door = rng.randrange(50) + 1
        panel = str(1070000 + (door - 1) % 10)
        person = rng.randrange(2000) + 1 if topic in (
            "door.request.allowed", "door.request.denied") else None
        occurred = now_ms + i if live else YEAR_START_MS + rng.randrange(YEAR_MS)
        event_id = "%032x" % rng.getrandbits(128)
        raw = ('{"id":"%s","body":{"doorId":%d,"personId":%s},"metadata":{"occurred":%d,'
               '"doorName":"Door %d"},"panelId":"%s","topic":"%s"}' % (
                   event_id, door, person, occurred, door, panel, topic))
        # As migration 0003 stores it: a 64-bit hash, under a plain index.
        key = int.from_bytes(hashlib.sha256(f"{topic}\0{panel}\0{event_id}".encode()).digest()[:8],
                             "little", signed=True)
        rows.append(dict(event_id=event_id, topic=topic, family="panel", panel_id=panel,
                         ou_id="", door_id=door, door_name="Door %d" % door,
                         person_id=person, actor_user_id="", occur_time=occurred,
                         receive_time=now_ms, subscription="default", dedupe_key=key,
                         raw=raw))
    return rows


def insert_statement(db, data, merged):
    """An INSERT for the events table as migrated, and the rows as tuples for it."""
    columns = [c[1] for c in db.execute("PRAGMA table_info(events)") if c[1] != "sequence"]
    if "topic_id" in columns:  # topics normalized into their own table
        ids = {}
        for topic in sorted(set(TOPICS)):
            ids[topic] = db.execute("INSERT INTO topics(name, family) VALUES (?, 'panel') "
                                    "RETURNING topic_id", (topic,)).fetchone()[0]
        for row in data:
            row["topic_id"] = ids[row["topic"]]
    if "panel_ref" in columns:  # repeated text kept once in names (migration 0003)
        names = {}
        for row in data:
            for column in ("panel_id", "door_name", "subscription"):
                value = row[column]
                if value not in names:
                    names[value] = db.execute("INSERT INTO names(value) VALUES (?) "
                                              "RETURNING name_id", (value,)).fetchone()[0]
            row["panel_ref"] = names[row["panel_id"]]
            row["door_name_ref"] = names[row["door_name"]]
            row["subscription_ref"] = names[row["subscription"]]
    for row in data:  # migration 0004: 1 = in the indexes now, 0 = merged later
        row["merged"] = merged
    missing = [c for c in columns if c not in data[0]]
    if missing:
        raise SystemExit(f"store_whatif.py does not know the columns {missing}")
    sql = "INSERT INTO events(%s) VALUES (%s)" % (
        ", ".join(columns), ", ".join("?" * len(columns)))
    return sql, [tuple(row[c] for c in columns) for row in data]


def rollup_statements(db, data):
    """The upserts AppendBatch makes per directly indexed row, and their arguments."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "counts_daily" not in tables:
        return []
    day = lambda row: row["occur_time"] // 86400000
    return [
        ("INSERT INTO counts_daily(day, topic_id, panel_id, door_id, n) VALUES (?, ?, ?, ?, 1) "
         "ON CONFLICT DO UPDATE SET n = n + 1",
         [(day(r), r["topic_id"], r["panel_id"], r["door_id"]) for r in data]),
        ("INSERT INTO counts_daily_topic(day, topic_id, n) VALUES (?, ?, 1) "
         "ON CONFLICT DO UPDATE SET n = n + 1",
         [(day(r), r["topic_id"]) for r in data]),
    ]


def run_variant(directory, statements, live, rows, batch, seed):
    path = os.path.join(directory, "whatif.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    db = sqlite3.connect(path, isolation_level=None)
    # Migration 0003 calls it on existing rows; a new archive has none.
    db.create_function("dedupe_hash", 1, lambda key: 0, deterministic=True)
    if "PAGE_SIZE" in statements:
        db.execute("PRAGMA page_size=1024")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("PRAGMA journal_size_limit=67108864")
    for migration in sorted(glob.glob(os.path.join(ROOT, "migrations", "*.sql"))):
        with open(migration) as f:
            db.executescript(f.read())
    for statement in statements:
        if statement not in ("PAGE_SIZE", "BOUNDED", "DEFERRED", "NO_ROLLUPS"):
            db.execute(statement)
    deferred = "DEFERRED" in statements
    events = make_rows(rows, live, random.Random(seed))
    insert, data = insert_statement(db, events, 0 if deferred else 1)
    rollups = ([] if deferred or "NO_ROLLUPS" in statements else
               rollup_statements(db, events))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    wal_bytes = 0
    start = time.perf_counter()
    for n, offset in enumerate(range(0, rows, batch)):
        db.execute("BEGIN IMMEDIATE")
        db.executemany(insert, data[offset:offset + batch])
        for sql, args in rollups:
            db.executemany(sql, args[offset:offset + batch])
        db.execute("COMMIT")
        if "BOUNDED" in statements and n % 64 == 63:
            wal_bytes += os.path.getsize(path + "-wal")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    elapsed = time.perf_counter() - start
    wal_bytes += os.path.getsize(path + "-wal")
    db.close()
    return rows / elapsed, wal_bytes / rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=30000)
    parser.add_argument("--batch", type=int, default=32,
                        help="rows per commit (serve's mean batch at 64 connections)")
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", action="append", default=None,
                        help="a variant name to run; repeat for several (default: all)")
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="pdk-whatif.", dir=args.dir)
    try:
        print(f"{args.rows} rows in batches of {args.batch}, SQLite {sqlite3.sqlite_version}")
        print("| variant | what | rows/s | WAL KiB per row |")
        print("| --- | --- | --- | --- |")
        for name, (what, statements, live) in VARIANTS.items():
            if args.only and name not in args.only:
                continue
            rps, wal_per_row = run_variant(directory, statements, live, args.rows, args.batch,
                                           args.seed)
            print(f"| {name} | {what} | {rps:.0f} | {wal_per_row / 1024:.1f} |", flush=True)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
