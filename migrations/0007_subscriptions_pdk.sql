-- Subscriptions made at PDK from pdk-archive (issue 16, PDK API half):
-- PDK API 2.0's families (system, cloudnode) join org and panel, and each
-- subscription keeps what `subscriptions update`, `check` and `show` need.
--
-- SQLite cannot change a CHECK in place: the table is rebuilt, keeping its
-- rows, ids and the partial unique index on live names.
--   events             JSON array of the topics sent to PDK ('' = added by hand)
--   scope              the scope sent to PDK ('' = added by hand)
--   public_url         the public URL PDK was given (delivering to PUBLIC_URL/webhooks/NAME)
--   secrecy_level      the secrecyLevel sent to PDK (NULL = PDK's default)
--   expires_at         the expiresAt sent to PDK, ISO 8601 ('' = never)
--   pdk_active         PDK's `active` as last seen (1/0; NULL = unknown)
--   baseline_sequence  the archive's highest sequence at registration: events
--                      archived for the subscription since have higher ones
--   last_check_*       the figures of the last `subscriptions check`
CREATE TABLE subscriptions_v7 (
  id                INTEGER PRIMARY KEY,
  name              TEXT    NOT NULL,
  family            TEXT    NOT NULL CHECK (family IN ('org', 'panel', 'system', 'cloudnode')),
  api               INTEGER NOT NULL CHECK (api IN (1, 2)),
  pdk_id            TEXT    NOT NULL DEFAULT '',
  secret            TEXT    NOT NULL,
  previous_secret   TEXT    NOT NULL DEFAULT '',
  previous_until_ms INTEGER,
  basic_auth        TEXT    NOT NULL DEFAULT '',
  odometer_baseline INTEGER,
  created_ms        INTEGER NOT NULL,
  deleted_ms        INTEGER,
  events            TEXT    NOT NULL DEFAULT '',
  scope             TEXT    NOT NULL DEFAULT '',
  public_url        TEXT    NOT NULL DEFAULT '',
  secrecy_level     INTEGER,
  expires_at        TEXT    NOT NULL DEFAULT '',
  pdk_active        INTEGER,
  baseline_sequence INTEGER,
  last_check_ms       INTEGER,
  last_check_pdk      INTEGER,
  last_check_archived INTEGER,
  last_check_missing  INTEGER
);
INSERT INTO subscriptions_v7 (id, name, family, api, pdk_id, secret, previous_secret,
                              previous_until_ms, basic_auth, odometer_baseline, created_ms,
                              deleted_ms)
SELECT id, name, family, api, pdk_id, secret, previous_secret, previous_until_ms, basic_auth,
       odometer_baseline, created_ms, deleted_ms
FROM subscriptions ORDER BY id;
DROP TABLE subscriptions;
ALTER TABLE subscriptions_v7 RENAME TO subscriptions;
CREATE UNIQUE INDEX subscriptions_live_name ON subscriptions(name) WHERE deleted_ms IS NULL;
