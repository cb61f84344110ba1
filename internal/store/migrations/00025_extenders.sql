-- +goose Up
-- Extenders: agents inside network segments the gateway cannot route to. token_index is the keyed hash of the
-- enrolment token (the token itself is never stored); the status columns are what the gateway last saw of the
-- agent's connection, so any reader of the store can show it.
CREATE TABLE extenders (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    routing_prefix  TEXT NOT NULL,
    enabled         BOOLEAN NOT NULL,
    token_index     TEXT NOT NULL UNIQUE,
    connected_since BIGINT NOT NULL DEFAULT 0,
    address         TEXT NOT NULL DEFAULT '',
    version         TEXT NOT NULL DEFAULT '',
    last_heartbeat  BIGINT NOT NULL DEFAULT 0,
    created         BIGINT NOT NULL,
    author          TEXT NOT NULL DEFAULT '',
    updated         BIGINT NOT NULL,
    updated_by      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX extenders_prefix ON extenders(routing_prefix);

-- +goose Down
DROP TABLE extenders;
