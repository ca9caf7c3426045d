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

-- The door of an event with a device id is that id. counts_daily keys doors
-- by 1.0's number and counts such an event under its door number or under
-- "no door" (-9223372036854775808) like any other, so its key and every
-- writer's ON CONFLICT target stay as they were; this rollup counts those
-- same events again by device id, and a count grouped or filtered by door
-- moves them from the number's group to the device's
-- (store/postgres/pg_count.h). Kept current by the writer in the same
-- transaction as the events. Only events with a device id are in it.
CREATE TABLE counts_daily_device (
  day       integer NOT NULL,
  topic     text COLLATE "C" NOT NULL,
  family    text COLLATE "C" NOT NULL,
  panel_id  text COLLATE "C" NOT NULL,
  door_id   bigint  NOT NULL,
  device_id text COLLATE "C" NOT NULL,
  n         bigint  NOT NULL,
  PRIMARY KEY (day, topic, family, panel_id, door_id, device_id)
);

CREATE OR REPLACE VIEW events_readable AS
SELECT sequence, to_timestamp(occur_time / 1000.0) AS occur_time,
       to_timestamp(receive_time / 1000.0) AS receive_time, topic, family, panel_id, ou_id,
       door_id, door_name, person_id, actor_user_id, event_id, subscription, device_id,
       holder_id, holder_name, cloud_node_id, system_id
FROM events;
