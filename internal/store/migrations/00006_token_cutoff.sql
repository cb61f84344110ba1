-- +goose Up
-- Access tokens are stateless; tokens_after (Unix microseconds) invalidates every token of a user issued before it,
-- so disabling a user or changing their password ends their sessions for good, even if they are enabled again.
ALTER TABLE users ADD COLUMN tokens_after BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE users DROP COLUMN tokens_after;
