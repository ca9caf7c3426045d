-- The PostgreSQL archive: one row per distinct PDK webhook delivery, shared by
-- any number of `pdk-archive serve` nodes. Times are milliseconds since the
-- Unix epoch, UTC (the view events_readable shows them as timestamps).
-- Text that is compared or sorted is COLLATE "C": byte order, as the query API
-- promises, and whatever the cluster's locale.

-- Archive-wide settings, such as the key that signs page tokens (written by
-- the engine when it first opens the archive).
CREATE TABLE archive_meta (
  name  text PRIMARY KEY,
  value bytea NOT NULL
);

-- The newest sequence handed out. Every append transaction locks this one row
-- first (UPDATE ... RETURNING) and holds it until it commits, so appends from
-- all nodes commit one after another and sequences rise in commit order with
-- no gaps (store/postgres/pg_store.h says why nextval() alone would not do).
CREATE TABLE archive_state (
  id            integer PRIMARY KEY CHECK (id = 1),
  last_sequence bigint  NOT NULL
);
INSERT INTO archive_state (id, last_sequence) VALUES (1, 0);

-- Range-partitioned by month of occur_time (partitions events_yYYYYmMM, made
-- ahead of time and on demand by the engine), so retention can drop a month
-- instead of deleting rows. Times outside the years 1970-2199 go to
-- events_outside. Partitioned tables cannot have a UNIQUE index without the
-- partition key, so uniqueness lives in event_keys below.
CREATE TABLE events (
  sequence      bigint NOT NULL,
  occur_time    bigint NOT NULL,
  receive_time  bigint NOT NULL,
  topic         text COLLATE "C" NOT NULL,
  family        text COLLATE "C" NOT NULL,   -- 'org', 'panel' or 'unknown'
  panel_id      text COLLATE "C" NOT NULL,
  ou_id         text COLLATE "C" NOT NULL,
  door_id       bigint,
  door_name     text COLLATE "C" NOT NULL,
  person_id     bigint,
  actor_user_id text COLLATE "C" NOT NULL,
  event_id      text COLLATE "C" NOT NULL,
  subscription  text COLLATE "C" NOT NULL,
  raw           bytea  NOT NULL             -- the payload exactly as received
) PARTITION BY RANGE (occur_time);

CREATE TABLE events_outside PARTITION OF events DEFAULT;

-- The list shapes of the query API: a time range alone or narrowed by door,
-- person, topic or panel, in (occur_time, sequence) order; and sequence order
-- for GetEvent and the live watch's catch-up.
CREATE INDEX events_by_time     ON events (occur_time, sequence);
CREATE INDEX events_by_sequence ON events (sequence);
CREATE INDEX events_by_door     ON events (door_id, occur_time, sequence) WHERE door_id IS NOT NULL;
CREATE INDEX events_by_person   ON events (person_id, occur_time, sequence) WHERE person_id IS NOT NULL;
CREATE INDEX events_by_topic    ON events (topic, occur_time, sequence);
CREATE INDEX events_by_panel    ON events (panel_id, occur_time, sequence);

-- Dedupe: the normalizer's 16-byte key of every stored event, unique across
-- the archive and every node writing to it. A redelivery finds its original
-- sequence here.
CREATE TABLE event_keys (
  dedupe_key bytea  PRIMARY KEY,
  sequence   bigint NOT NULL
);

-- Rollups that answer CountEvents without scanning events: counts per UTC day
-- (days since 1970-01-01) by topic, panel and door, and per day by topic
-- alone. Kept current by the writer in the same transaction as the events.
-- door_id -9223372036854775808 stands for "the event names no door"
-- (store::kNoDoor).
CREATE TABLE counts_daily (
  day      integer NOT NULL,
  topic    text COLLATE "C" NOT NULL,
  family   text COLLATE "C" NOT NULL,
  panel_id text COLLATE "C" NOT NULL,
  door_id  bigint  NOT NULL,
  n        bigint  NOT NULL,
  PRIMARY KEY (day, topic, family, panel_id, door_id)
);

CREATE TABLE counts_daily_topic (
  day    integer NOT NULL,
  topic  text COLLATE "C" NOT NULL,
  family text COLLATE "C" NOT NULL,
  n      bigint  NOT NULL,
  PRIMARY KEY (day, topic, family)
);
-- The stored topics in order, for the reader to resolve a "prefix.*" filter
-- into the exact topics it matches (a skip over this index, a few rows read
-- per topic), so that a list walks each topic's index range in order.
CREATE INDEX counts_daily_topic_by_topic ON counts_daily_topic (topic);

-- For people reading the archive with psql. The payload is left out: it is
-- kept byte for byte, which may not be valid UTF-8; convert_from(raw, 'UTF8')
-- shows one that is.
CREATE VIEW events_readable AS
SELECT sequence, to_timestamp(occur_time / 1000.0) AS occur_time,
       to_timestamp(receive_time / 1000.0) AS receive_time, topic, family, panel_id, ou_id,
       door_id, door_name, person_id, actor_user_id, event_id, subscription
FROM events;
