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

-- The UTC days (as counts_daily's day) holding a merged event with a
-- device id. counts_daily keys doors by 1.0's number and counts such an
-- event under "no door"; a count grouped by door over a range that holds
-- one of these days is answered from the events instead
-- (store/sqlite/count_plan.h).
CREATE TABLE device_days (
  day INTEGER PRIMARY KEY
);

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
