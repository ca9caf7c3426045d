-- Dedupe by a 64-bit hash of the key instead of the 16-byte key under a
-- UNIQUE index. The store finds the events with an equal hash and compares
-- what the key was made from (topic, panel and event id; or the raw body),
-- so a collision can never drop an event, and every event is 17 bytes
-- smaller in the table and its dedupe index (bench/QUERY_RESULTS.md).
--
-- SQLite cannot drop a UNIQUE column, so the table is rebuilt; sequences,
-- and the AUTOINCREMENT high-water mark, stay as they were.
CREATE TABLE events_v3 (
  sequence      INTEGER PRIMARY KEY AUTOINCREMENT,
  topic_id      INTEGER NOT NULL,
  occur_time    INTEGER NOT NULL,
  receive_time  INTEGER NOT NULL,
  panel_id      TEXT    NOT NULL,
  door_id       INTEGER,
  person_id     INTEGER,
  ou_id         TEXT    NOT NULL,
  door_name     TEXT    NOT NULL,
  actor_user_id TEXT    NOT NULL,
  event_id      BLOB    NOT NULL,  -- 16 bytes for a canonical UUID, else TEXT
  subscription  TEXT    NOT NULL,
  dedupe_key    INTEGER NOT NULL,  -- dedupe_hash(key), store/sqlite_util.h
  raw           BLOB    NOT NULL   -- TEXT verbatim, or BLOB, see store/raw_codec.h
);

INSERT INTO events_v3 (sequence, topic_id, occur_time, receive_time, panel_id, door_id,
                       person_id, ou_id, door_name, actor_user_id, event_id, subscription,
                       dedupe_key, raw)
SELECT sequence, topic_id, occur_time, receive_time, panel_id, door_id, person_id, ou_id,
       door_name, actor_user_id, event_id, subscription, dedupe_hash(dedupe_key), raw
FROM events ORDER BY sequence;

-- sqlite_sequence has no UNIQUE name: update the copy's row, or add it.
UPDATE sqlite_sequence
SET seq = MAX(seq, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0))
WHERE name = 'events_v3';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'events_v3', seq FROM sqlite_sequence
WHERE name = 'events' AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'events_v3');

DROP TABLE events;
ALTER TABLE events_v3 RENAME TO events;

CREATE INDEX events_by_time   ON events(occur_time);
CREATE INDEX events_by_door   ON events(door_id, occur_time) WHERE door_id IS NOT NULL;
CREATE INDEX events_by_person ON events(person_id, occur_time) WHERE person_id IS NOT NULL;
CREATE INDEX events_by_topic  ON events(topic_id, occur_time);
CREATE INDEX events_by_panel  ON events(panel_id, occur_time);
CREATE INDEX events_by_dedupe_key ON events(dedupe_key);
