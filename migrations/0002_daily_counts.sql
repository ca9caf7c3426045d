-- Rollups that answer CountEvents without scanning events: counts per UTC day
-- (days since 1970-01-01) by topic, panel and door, and per day by topic
-- alone. Kept current by the writer in the same transaction as the events.
-- door_id -9223372036854775808 stands for "the event names no door".
CREATE TABLE counts_daily (
  day      INTEGER NOT NULL,
  topic_id INTEGER NOT NULL,
  panel_id TEXT    NOT NULL,
  door_id  INTEGER NOT NULL,
  n        INTEGER NOT NULL,
  PRIMARY KEY (day, topic_id, panel_id, door_id)
) WITHOUT ROWID;

CREATE TABLE counts_daily_topic (
  day      INTEGER NOT NULL,
  topic_id INTEGER NOT NULL,
  n        INTEGER NOT NULL,
  PRIMARY KEY (day, topic_id)
) WITHOUT ROWID;

-- Archives created before this migration: count what they hold.
INSERT INTO counts_daily (day, topic_id, panel_id, door_id, n)
SELECT (occur_time - (((occur_time % 86400000) + 86400000) % 86400000)) / 86400000,
       topic_id, panel_id, COALESCE(door_id, -9223372036854775808), COUNT(*)
FROM events GROUP BY 1, 2, 3, 4;

INSERT INTO counts_daily_topic (day, topic_id, n)
SELECT day, topic_id, SUM(n) FROM counts_daily GROUP BY 1, 2;
