-- PDK API 2.0's text ids (store/event.h): the device (door), the holder
-- (person) and the holder's name, the cloud node and the system. 1.0 rows
-- leave them NULL, which the readers show as "". ADD COLUMN without a
-- default rewrites no partition.
ALTER TABLE events
  ADD COLUMN device_id     text COLLATE "C",
  ADD COLUMN holder_id     text COLLATE "C",
  ADD COLUMN holder_name   text COLLATE "C",
  ADD COLUMN cloud_node_id text COLLATE "C",
  ADD COLUMN system_id     text COLLATE "C";

-- A list by device or holder, as by door or person. Partial on NOT NULL, so
-- a 1.0 row is in neither and costs them no write.
CREATE INDEX events_by_device ON events (device_id, occur_time, sequence)
  WHERE device_id IS NOT NULL;
CREATE INDEX events_by_holder ON events (holder_id, occur_time, sequence)
  WHERE holder_id IS NOT NULL;

-- The door of a 2.0 event in the rollup is its device id: counts_daily keys
-- a row by (door_id, device_id), device_id '' for a 1.0 row (whose key is
-- its door number as before, or kNoDoor) and door_id kNoDoor for an event
-- that names its door only by device id. A constant default rewrites no row;
-- the primary key's index is built again (the rollup is small).
ALTER TABLE counts_daily ADD COLUMN device_id text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE counts_daily DROP CONSTRAINT counts_daily_pkey,
  ADD PRIMARY KEY (day, topic, family, panel_id, door_id, device_id);

CREATE OR REPLACE VIEW events_readable AS
SELECT sequence, to_timestamp(occur_time / 1000.0) AS occur_time,
       to_timestamp(receive_time / 1000.0) AS receive_time, topic, family, panel_id, ou_id,
       door_id, door_name, person_id, actor_user_id, event_id, subscription, device_id,
       holder_id, holder_name, cloud_node_id, system_id
FROM events;
