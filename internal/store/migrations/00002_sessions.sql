-- +goose Up
-- API sessions of the proxy: one per credential and client address. Counters are flushed in batches, never per
-- request; trail_head and trail_records seal the session's recording so a trail cut short is detected.
CREATE TABLE api_sessions (
    id                 TEXT PRIMARY KEY,
    session_key        TEXT NOT NULL,
    user_id            TEXT NOT NULL DEFAULT '',
    user_name          TEXT NOT NULL DEFAULT '',
    target_id          TEXT NOT NULL DEFAULT '',
    target_name        TEXT NOT NULL DEFAULT '',
    credential_id      TEXT NOT NULL DEFAULT '',
    credential_name    TEXT NOT NULL DEFAULT '',
    client_address     TEXT NOT NULL,
    status             TEXT NOT NULL,
    termination_reason TEXT NOT NULL DEFAULT '',
    connected          BIGINT NOT NULL,
    disconnected       BIGINT NOT NULL DEFAULT 0,
    last_activity      BIGINT NOT NULL,
    requests           BIGINT NOT NULL DEFAULT 0,
    bytes_in           BIGINT NOT NULL DEFAULT 0,
    bytes_out          BIGINT NOT NULL DEFAULT 0,
    audit_enabled      BOOLEAN NOT NULL,
    trail_head         TEXT NOT NULL DEFAULT '',
    trail_records      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX api_sessions_status ON api_sessions(status);
CREATE INDEX api_sessions_user ON api_sessions(user_id);
CREATE INDEX api_sessions_connected ON api_sessions(connected);

-- +goose Down
DROP TABLE api_sessions;
