-- PDK API 2.0's text ids (store/event.h): the device (door), the holder
-- (person) and the holder's name, the cloud node and the system. 1.0 rows
-- leave them NULL, which the readers show as "". ADD COLUMN with no default
-- rewrites no row: existing rows read NULL for them.
ALTER TABLE events ADD COLUMN device_id TEXT;
ALTER TABLE events ADD COLUMN holder_id TEXT;
ALTER TABLE events ADD COLUMN holder_name TEXT;
ALTER TABLE events ADD COLUMN cloud_node_id TEXT;
ALTER TABLE events ADD COLUMN system_id TEXT;

-- A list by device or holder, as by door or person. Partial on NOT NULL, so
-- a 1.0 row is in neither and costs them no write.
CREATE INDEX events_by_device ON events(device_id, occur_time)
  WHERE device_id IS NOT NULL AND merged = 1;
CREATE INDEX events_by_holder ON events(holder_id, occur_time)
  WHERE holder_id IS NOT NULL AND merged = 1;

-- The door of an event with a device id is that id. counts_daily keys doors
-- by 1.0's number and counts such an event under its door number or under
-- "no door" (-9223372036854775808) like any other; this rollup counts those
-- same events again by device id, so a count grouped by door moves them
-- from the number's group to the device's (store/sqlite/count_plan.h).
-- Like counts_daily it holds merged events only, kept current by the writer
-- in the same transaction. Only events with a device id are in it.
CREATE TABLE counts_daily_device (
  day       INTEGER NOT NULL,
  topic_id  INTEGER NOT NULL,
  panel_id  TEXT    NOT NULL,
  door_id   INTEGER NOT NULL,
  device_id TEXT    NOT NULL,
  n         INTEGER NOT NULL,
  PRIMARY KEY (day, topic_id, panel_id, door_id, device_id)
) WITHOUT ROWID;

DROP VIEW events_with_names;
CREATE VIEW events_with_names AS
SELECT e.sequence, t.name AS topic, t.family, p.value AS panel_id, e.ou_id, e.door_id,
       d.value AS door_name, e.person_id, e.actor_user_id, e.occur_time, e.receive_time,
       s.value AS subscription, e.event_id, e.raw, e.device_id, e.holder_id, e.holder_name,
       e.cloud_node_id, e.system_id
FROM events AS e
JOIN topics AS t USING (topic_id)
JOIN names AS p ON p.name_id = e.panel_ref
JOIN names AS d ON d.name_id = e.door_name_ref
JOIN names AS s ON s.name_id = e.subscription_ref;
