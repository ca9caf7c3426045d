-- The archive: one row per distinct PDK webhook delivery.
-- Times are milliseconds since the Unix epoch, UTC.

-- Each (topic, family) pair once; events refer to it by number, which keeps
-- rows and the topic index small. family is 'org', 'panel' or 'unknown'.
CREATE TABLE topics (
  topic_id INTEGER PRIMARY KEY,
  name     TEXT NOT NULL,
  family   TEXT NOT NULL,
  UNIQUE (name, family)
);

-- AUTOINCREMENT so a sequence is never reused, even after retention deletes the
-- newest rows: watchers and page tokens rely on sequences only ever growing.
CREATE TABLE events (
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
  dedupe_key    BLOB    NOT NULL UNIQUE,  -- 16 bytes, see ingest/normalizer.h
  raw           BLOB    NOT NULL   -- TEXT verbatim, or BLOB, see store/raw_codec.h
);

-- Time-range questions, alone or narrowed by door, person, panel or topic.
-- Every index ends in occur_time so a range scan comes out in report order;
-- the implicit rowid (sequence) breaks ties.
CREATE INDEX events_by_time   ON events(occur_time);
CREATE INDEX events_by_door   ON events(door_id, occur_time) WHERE door_id IS NOT NULL;
CREATE INDEX events_by_person ON events(person_id, occur_time) WHERE person_id IS NOT NULL;
CREATE INDEX events_by_topic  ON events(topic_id, occur_time);
CREATE INDEX events_by_panel  ON events(panel_id, occur_time);

-- Archive-wide settings, such as the key that signs page tokens.
CREATE TABLE archive_meta (
  name  TEXT PRIMARY KEY,
  value BLOB NOT NULL
) WITHOUT ROWID;
