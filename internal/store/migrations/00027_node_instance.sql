-- +goose Up
-- The process that runs as a node: a random value each process draws at start. Two processes with one node id (a
-- copied data dir) would otherwise share one row, one heartbeat and each other's sessions unnoticed.
ALTER TABLE nodes ADD COLUMN instance TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE nodes DROP COLUMN instance;
