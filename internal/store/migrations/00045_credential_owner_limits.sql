-- +goose Up
-- The restrictions an administrator left on a user's proxy credential for a target, kept apart from the credential
-- so that the user cannot shed them by deleting it and creating another: a credential the user creates for the
-- target gets them. Times are Unix microseconds; source_address is a JSON array of CIDRs.
CREATE TABLE credential_owner_limits (
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    target_id      TEXT NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
    enabled        BOOLEAN NOT NULL,
    not_before     BIGINT NOT NULL,
    not_after      BIGINT NOT NULL,
    source_address TEXT NOT NULL,
    set_by         TEXT NOT NULL DEFAULT '',
    updated        BIGINT NOT NULL,
    PRIMARY KEY (user_id, target_id)
);

-- +goose Down
DROP TABLE credential_owner_limits;
