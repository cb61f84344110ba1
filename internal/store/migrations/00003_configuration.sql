-- +goose Up
-- The configuration API's committed objects: one JSON body per (type, key). Built-in defaults are not stored; they
-- live in code with negative keys, and a stored row with a negative key is an administrator's edit of a default.
CREATE TABLE config_objects (
    type    TEXT NOT NULL,
    obj_key TEXT NOT NULL,
    body    TEXT NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    PRIMARY KEY (type, obj_key)
);

-- Login sessions of the configuration API, under the keyed hash of the session id so a database reader cannot
-- replay one. Every node of an HA cluster sees the same sessions.
CREATE TABLE config_sessions (
    id_index       TEXT PRIMARY KEY,
    principal_kind TEXT NOT NULL,
    principal_id   TEXT NOT NULL,
    name           TEXT NOT NULL,
    method         TEXT NOT NULL,
    created        BIGINT NOT NULL,
    last_seen      BIGINT NOT NULL
);
CREATE INDEX config_sessions_last_seen ON config_sessions(last_seen);

-- The one open configuration transaction (the lock): which session holds it and its staged changes as JSON.
CREATE TABLE config_transaction (
    lock_name     TEXT PRIMARY KEY,
    holder_index  TEXT NOT NULL,
    holder_name   TEXT NOT NULL,
    opened        BIGINT NOT NULL,
    last_activity BIGINT NOT NULL,
    changes       TEXT NOT NULL
);

-- +goose Down
DROP TABLE config_transaction;
DROP TABLE config_sessions;
DROP TABLE config_objects;
