-- The PDK subscriptions the archive takes deliveries for (POST /webhooks/NAME),
-- shared by every node of the archive.
--
-- Secrets are kept in clear: verifying PDK's HMAC needs them. A name belongs
-- to at most one subscription that is not deleted; deleted ones stay, so
-- their events keep a known origin.
CREATE TABLE subscriptions (
  id                bigserial PRIMARY KEY,
  name              text COLLATE "C" NOT NULL,
  family            text    NOT NULL CHECK (family IN ('org', 'panel')),
  api               integer NOT NULL CHECK (api IN (1, 2)),
  pdk_id            text    NOT NULL DEFAULT '',
  secret            text    NOT NULL,
  previous_secret   text    NOT NULL DEFAULT '',
  previous_until_ms bigint,
  basic_auth        text    NOT NULL DEFAULT '',
  odometer_baseline bigint,
  created_ms        bigint  NOT NULL,
  deleted_ms        bigint
);
CREATE UNIQUE INDEX subscriptions_live_name ON subscriptions (name) WHERE deleted_ms IS NULL;
