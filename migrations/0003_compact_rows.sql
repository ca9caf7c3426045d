-- Smaller rows, measured in bench/QUERY_RESULTS.md:
--
-- * Dedupe by a 64-bit hash of the key under a plain index instead of the
--   16-byte key under a UNIQUE one. The store finds the events with an equal
--   hash and compares what the key was made from (topic, panel and event id;
--   or the raw body), so a hash collision can never drop an event.
-- * Panel ids, door names and subscriptions, which repeat on nearly every
--   row, are kept once in `names` and referred to by number; so is the panel
--   in events_by_panel. The view events_with_names shows rows with the text
--   back in place, for reading the archive with the sqlite3 shell.
--
-- SQLite cannot drop a UNIQUE column, so the table is rebuilt; sequences,
-- and the AUTOINCREMENT high-water mark, stay as they were.
CREATE TABLE names (
  name_id INTEGER PRIMARY KEY,
  value   TEXT NOT NULL UNIQUE
);

INSERT INTO names (value)
SELECT panel_id FROM events UNION SELECT door_name FROM events
UNION SELECT subscription FROM events;

CREATE TABLE events_v3 (
  sequence         INTEGER PRIMARY KEY AUTOINCREMENT,
  topic_id         INTEGER NOT NULL,
  occur_time       INTEGER NOT NULL,
  receive_time     INTEGER NOT NULL,
  panel_ref        INTEGER NOT NULL,  -- names.name_id of the panel id
  door_id          INTEGER,
  person_id        INTEGER,
  ou_id            TEXT    NOT NULL,
  door_name_ref    INTEGER NOT NULL,  -- names.name_id of the door name
  actor_user_id    TEXT    NOT NULL,
  event_id         BLOB    NOT NULL,  -- 16 bytes for a canonical UUID, else TEXT
  subscription_ref INTEGER NOT NULL,  -- names.name_id of the subscription
  dedupe_key       INTEGER NOT NULL,  -- dedupe_hash(key), store/sqlite_util.h
  raw              BLOB    NOT NULL   -- TEXT verbatim, or BLOB, see store/raw_codec.h
);

INSERT INTO events_v3 (sequence, topic_id, occur_time, receive_time, panel_ref, door_id,
                       person_id, ou_id, door_name_ref, actor_user_id, event_id,
                       subscription_ref, dedupe_key, raw)
SELECT sequence, topic_id, occur_time, receive_time,
       (SELECT name_id FROM names WHERE value = panel_id), door_id, person_id, ou_id,
       (SELECT name_id FROM names WHERE value = door_name), actor_user_id, event_id,
       (SELECT name_id FROM names WHERE value = subscription), dedupe_hash(dedupe_key), raw
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

CREATE INDEX events_by_time       ON events(occur_time);
CREATE INDEX events_by_door       ON events(door_id, occur_time) WHERE door_id IS NOT NULL;
CREATE INDEX events_by_person     ON events(person_id, occur_time) WHERE person_id IS NOT NULL;
CREATE INDEX events_by_topic      ON events(topic_id, occur_time);
CREATE INDEX events_by_panel      ON events(panel_ref, occur_time);
CREATE INDEX events_by_dedupe_key ON events(dedupe_key);

CREATE VIEW events_with_names AS
SELECT e.sequence, t.name AS topic, t.family, p.value AS panel_id, e.ou_id, e.door_id,
       d.value AS door_name, e.person_id, e.actor_user_id, e.occur_time, e.receive_time,
       s.value AS subscription, e.event_id, e.raw
FROM events AS e
JOIN topics AS t USING (topic_id)
JOIN names AS p ON p.name_id = e.panel_ref
JOIN names AS d ON d.name_id = e.door_name_ref
JOIN names AS s ON s.name_id = e.subscription_ref;
