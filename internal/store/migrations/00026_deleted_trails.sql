-- +goose Up
-- Sessions deleted by retention, kept a while so that every node of a cluster can delete its own local copy of
-- their trails. A node deletes a local trail only when it is listed here, never merely because the database lacks
-- its session (a restored backup or a wrong --db would otherwise wipe evidence).
CREATE TABLE deleted_trails (
    session_id TEXT PRIMARY KEY,
    deleted    BIGINT NOT NULL
);
CREATE INDEX deleted_trails_deleted ON deleted_trails(deleted);

-- +goose Down
DROP TABLE deleted_trails;
