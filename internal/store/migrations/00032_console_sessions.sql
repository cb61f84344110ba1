-- +goose Up
-- Console sessions now hash their ids under their own index purpose. Rows written before that were hashed as
-- configuration API sessions, so their cookie values would be found by that API's lookup: end them (their users
-- sign in again).
DELETE FROM config_sessions WHERE method = 'console';

-- +goose Down
-- Nothing to restore: the ended sessions are gone either way.
