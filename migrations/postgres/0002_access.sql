-- Bearer tokens for the query API and the log of every query call, shared
-- by every node of the archive.
--
-- A token is kept only as the SHA-256 of its text. A name belongs to at most
-- one live (not revoked) token; revoked tokens stay listed.
CREATE TABLE access_tokens (
  id           bigserial PRIMARY KEY,
  name         text COLLATE "C" NOT NULL,
  hash         bytea  NOT NULL,
  created_ms   bigint NOT NULL,
  last_used_ms bigint,
  revoked_ms   bigint
);
CREATE UNIQUE INDEX access_tokens_live_name ON access_tokens (name) WHERE revoked_ms IS NULL;

-- One row per query call, accepted or refused.
CREATE TABLE access_log (
  id             bigserial PRIMARY KEY,
  time_ms        bigint  NOT NULL,
  token          text COLLATE "C" NOT NULL,
  peer           text    NOT NULL,
  method         text    NOT NULL,
  filter         text    NOT NULL,
  rows_returned  bigint  NOT NULL,
  bytes_returned bigint  NOT NULL,
  status_code    integer NOT NULL,
  status_message text    NOT NULL
);
CREATE INDEX access_log_by_time  ON access_log (time_ms);
CREATE INDEX access_log_by_token ON access_log (token, time_ms);
