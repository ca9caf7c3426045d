-- Events are indexed in bulk when the writer is behind.
--
-- A commit of a few dozen events used to touch a random leaf of every
-- secondary index and of the daily rollups for each event: 8 pages an event,
-- each written to the WAL and synced. Now the events of a big enough batch
-- (store/sqlite_store.h, kDeferFromBatch) are stored with merged = 0, which
-- puts them in no secondary index (they are all partial on merged = 1); the
-- writer later adds them to the rollups and sets merged = 1 in one large
-- transaction, which indexes them. Smaller batches are stored merged. The
-- unmerged events are always after archive_meta.merged_through, and readers
-- read them by sequence (merged = 0 AND sequence > merged_through).
ALTER TABLE events ADD COLUMN merged INTEGER NOT NULL DEFAULT 1;

INSERT INTO archive_meta (name, value)
SELECT 'merged_through', COALESCE(MAX(sequence), 0) FROM events;

DROP INDEX events_by_time;
DROP INDEX events_by_door;
DROP INDEX events_by_person;
DROP INDEX events_by_topic;
DROP INDEX events_by_panel;
DROP INDEX events_by_dedupe_key;

CREATE INDEX events_by_time       ON events(occur_time) WHERE merged = 1;
CREATE INDEX events_by_door       ON events(door_id, occur_time)
  WHERE door_id IS NOT NULL AND merged = 1;
CREATE INDEX events_by_person     ON events(person_id, occur_time)
  WHERE person_id IS NOT NULL AND merged = 1;
CREATE INDEX events_by_topic      ON events(topic_id, occur_time) WHERE merged = 1;
CREATE INDEX events_by_panel      ON events(panel_ref, occur_time) WHERE merged = 1;
CREATE INDEX events_by_dedupe_key ON events(dedupe_key) WHERE merged = 1;
