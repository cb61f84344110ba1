-- +goose Up
-- A user's built-in TOTP second factor: the secret sealed bound to the user's id, whether a login has confirmed it
-- (an unconfirmed enrolment can be replaced by a new one), and the last accepted time step, which only grows, so a
-- code cannot be used twice.
CREATE TABLE user_totp (
    user_id       TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret_sealed TEXT NOT NULL,
    confirmed     BOOLEAN NOT NULL DEFAULT FALSE,
    last_step     BIGINT NOT NULL DEFAULT 0,
    created       BIGINT NOT NULL
);

-- +goose Down
DROP TABLE user_totp;
