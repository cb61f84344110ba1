-- +goose Up
-- An API client's access tokens issued before tokens_after (Unix microseconds) are dead, as a user's are: set when
-- the client loses a role, so a token does not outlive the grant it was issued under.
ALTER TABLE api_clients ADD COLUMN tokens_after BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE api_clients DROP COLUMN tokens_after;
