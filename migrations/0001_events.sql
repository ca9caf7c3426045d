-- The archive: one row per distinct PDK webhook delivery.
-- Times are milliseconds since the Unix epoch, UTC.
-- AUTOINCREMENT so a sequence is never reused, even after retention deletes the
-- newest rows: watchers and page tokens rely on sequences only ever growing.
CREATE TABLE events (
  sequence      INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id      TEXT    NOT NULL,
  topic         TEXT    NOT NULL,
  family        TEXT    NOT NULL,
  panel_id      TEXT    NOT NULL,
  ou_id         TEXT    NOT NULL,
  door_id       INTEGER,
  door_name     TEXT    NOT NULL,
  person_id     INTEGER,
  actor_user_id TEXT    NOT NULL,
  occur_time    INTEGER NOT NULL,
  receive_time  INTEGER NOT NULL,
  subscription  TEXT    NOT NULL,
  dedupe_key    BLOB    NOT NULL UNIQUE,  -- 16 bytes, see ingest/normalizer.h
  raw           TEXT    NOT NULL
);

-- Time-range questions, alone or narrowed by door, person, panel or topic.
-- Every index ends in occur_time so a range scan comes out in report order;
-- the implicit rowid (sequence) breaks ties.
CREATE INDEX events_by_time   ON events(occur_time);
CREATE INDEX events_by_door   ON events(door_id, occur_time) WHERE door_id IS NOT NULL;
CREATE INDEX events_by_person ON events(person_id, occur_time) WHERE person_id IS NOT NULL;
CREATE INDEX events_by_topic  ON events(topic, occur_time);
CREATE INDEX events_by_panel  ON events(panel_id, occur_time);

-- Archive-wide settings, such as the key that signs page tokens.
CREATE TABLE archive_meta (
  name  TEXT PRIMARY KEY,
  value BLOB NOT NULL
) WITHOUT ROWID;
