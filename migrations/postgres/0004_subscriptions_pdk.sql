-- Subscriptions made at PDK from pdk-archive (issue 16, PDK API half):
-- PDK API 2.0's families (system, cloudnode) join org and panel, and each
-- subscription keeps what `subscriptions update`, `check` and `show` need.
--   events             JSON array of the topics sent to PDK ('' = added by hand)
--   scope              the scope sent to PDK ('' = added by hand)
--   public_url         the public URL PDK was given (delivering to PUBLIC_URL/webhooks/NAME)
--   secrecy_level      the secrecyLevel sent to PDK (NULL = PDK's default)
--   expires_at         the expiresAt sent to PDK, ISO 8601 ('' = never)
--   pdk_active         PDK's `active` as last seen (1/0; NULL = unknown)
--   baseline_sequence  the archive's highest sequence at registration: events
--                      archived for the subscription since have higher ones
--   last_check_*       the figures of the last `subscriptions check`
ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_family_check;
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_family_check
  CHECK (family IN ('org', 'panel', 'system', 'cloudnode'));
ALTER TABLE subscriptions
  ADD COLUMN events              text    NOT NULL DEFAULT '',
  ADD COLUMN scope               text    NOT NULL DEFAULT '',
  ADD COLUMN public_url          text    NOT NULL DEFAULT '',
  ADD COLUMN secrecy_level       integer,
  ADD COLUMN expires_at          text    NOT NULL DEFAULT '',
  ADD COLUMN pdk_active          integer CHECK (pdk_active IN (0, 1)),
  ADD COLUMN baseline_sequence   bigint,
  ADD COLUMN last_check_ms       bigint,
  ADD COLUMN last_check_pdk      bigint,
  ADD COLUMN last_check_archived bigint,
  ADD COLUMN last_check_missing  bigint;
