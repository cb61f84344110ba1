-- +goose Up
-- What the nodes of a cluster share besides the objects: the CA and the master key's check value (cluster_blobs),
-- cool-downs that bind a credential or a user whatever the client address, the nodes with their heartbeats, the
-- owning node of each session with any termination asked through another node, and sealed trails copied at close
-- so that they outlive the recording node's disk, and limiter counts shared by the nodes.
CREATE TABLE cluster_blobs (
    name TEXT PRIMARY KEY,
    data {{blob}} NOT NULL
);
CREATE TABLE cooldowns (
    subject     TEXT PRIMARY KEY,
    until_micro BIGINT NOT NULL
);
CREATE TABLE nodes (
    id            TEXT PRIMARY KEY,
    api_address   TEXT NOT NULL DEFAULT '',
    proxy_address TEXT NOT NULL DEFAULT '',
    started       BIGINT NOT NULL,
    heartbeat     BIGINT NOT NULL
);
ALTER TABLE api_sessions ADD COLUMN node_id TEXT NOT NULL DEFAULT '';
ALTER TABLE api_sessions ADD COLUMN terminate_request TEXT NOT NULL DEFAULT '';
CREATE INDEX api_sessions_node ON api_sessions(node_id, status);
CREATE TABLE trail_chunks (
    session_id TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    data       {{blob}} NOT NULL,
    PRIMARY KEY (session_id, seq)
);
-- Events counted across the cluster (bad proxy secrets by source), per node and time bucket, so that a limit holds
-- for the cluster as a whole.
CREATE TABLE limiter_counts (
    scope   TEXT NOT NULL,
    key     TEXT NOT NULL,
    node_id TEXT NOT NULL,
    bucket  BIGINT NOT NULL,
    n       BIGINT NOT NULL,
    PRIMARY KEY (scope, key, node_id, bucket)
);

-- +goose Down
DROP TABLE limiter_counts;
DROP TABLE trail_chunks;
DROP INDEX api_sessions_node;
ALTER TABLE api_sessions DROP COLUMN terminate_request;
ALTER TABLE api_sessions DROP COLUMN node_id;
DROP TABLE nodes;
DROP TABLE cooldowns;
DROP TABLE cluster_blobs;
