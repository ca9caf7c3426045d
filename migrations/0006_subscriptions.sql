-- The PDK subscriptions the archive takes deliveries for (POST /webhooks/NAME).
--
-- Secrets are kept in clear: verifying PDK's HMAC needs them. A name belongs
-- to at most one subscription that is not deleted; deleted ones stay, so
-- their events keep a known origin.
CREATE TABLE subscriptions (
  id                INTEGER PRIMARY KEY,
  name              TEXT    NOT NULL,
  family            TEXT    NOT NULL CHECK (family IN ('org', 'panel')),
  api               INTEGER NOT NULL CHECK (api IN (1, 2)),
  pdk_id            TEXT    NOT NULL DEFAULT '',
  secret            TEXT    NOT NULL,
  previous_secret   TEXT    NOT NULL DEFAULT '',
  previous_until_ms INTEGER,
  basic_auth        TEXT    NOT NULL DEFAULT '',
  odometer_baseline INTEGER,
  created_ms        INTEGER NOT NULL,
  deleted_ms        INTEGER
);
CREATE UNIQUE INDEX subscriptions_live_name ON subscriptions(name) WHERE deleted_ms IS NULL;
