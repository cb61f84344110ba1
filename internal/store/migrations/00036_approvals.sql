-- +goose Up
-- Approval requests of four-eyes authorization (access_control of connection policies): one row per API session
-- that waited for an authorizer. state moves once from pending to approved, rejected or expired; rules is the JSON
-- list of the authorizing rules that applied when the session asked, so a later configuration change does not
-- change who may decide. node is the cluster node holding the session's first request.
CREATE TABLE approval_requests (
    id              TEXT PRIMARY KEY,
    session_id      TEXT NOT NULL UNIQUE,
    policy_key      TEXT NOT NULL,
    policy_name     TEXT NOT NULL DEFAULT '',
    requester_id    TEXT NOT NULL,
    requester       TEXT NOT NULL,
    client_address  TEXT NOT NULL,
    target_id       TEXT NOT NULL,
    target          TEXT NOT NULL,
    request_line    TEXT NOT NULL,
    node            TEXT NOT NULL DEFAULT '',
    state           TEXT NOT NULL,
    rules           TEXT NOT NULL,
    decider_id      TEXT NOT NULL DEFAULT '',
    decider         TEXT NOT NULL DEFAULT '',
    decider_address TEXT NOT NULL DEFAULT '',
    comment         TEXT NOT NULL DEFAULT '',
    created         BIGINT NOT NULL,
    expires         BIGINT NOT NULL,
    decided         BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX approval_requests_state ON approval_requests(state, created);

-- +goose Down
DROP TABLE approval_requests;
