-- +goose Up
-- The id of the management API request that caused an event ('' for background work such as directory syncs), the
-- same id its access log line and its error body carry.
ALTER TABLE audit_events ADD COLUMN request_id TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE audit_events DROP COLUMN request_id;
