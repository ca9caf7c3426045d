-- Bearer tokens for the query API and the log of every query call.
--
-- A token is kept only as the SHA-256 of its text. A name belongs to at most
-- one live (not revoked) token; revoked tokens stay listed.
CREATE TABLE access_tokens (
  id           INTEGER PRIMARY KEY,
  name         TEXT    NOT NULL,
  hash         BLOB    NOT NULL,
  created_ms   INTEGER NOT NULL,
  last_used_ms INTEGER,
  revoked_ms   INTEGER
);
CREATE UNIQUE INDEX access_tokens_live_name ON access_tokens(name) WHERE revoked_ms IS NULL;

-- One row per query call, accepted or refused.
CREATE TABLE access_log (
  id             INTEGER PRIMARY KEY,
  time_ms        INTEGER NOT NULL,
  token          TEXT    NOT NULL,
  peer           TEXT    NOT NULL,
  method         TEXT    NOT NULL,
  filter         TEXT    NOT NULL,
  rows_returned  INTEGER NOT NULL,
  bytes_returned INTEGER NOT NULL,
  status_code    INTEGER NOT NULL,
  status_message TEXT    NOT NULL
);
CREATE INDEX access_log_by_time  ON access_log(time_ms);
CREATE INDEX access_log_by_token ON access_log(token, time_ms);
