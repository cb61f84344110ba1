-- +goose Up
-- Notification settings (webhooks and SMTP for approval and access-request events): one row, id 1. The body is
-- JSON without secrets; smtp_password is sealed with the master key, bound to this row and column.
CREATE TABLE notification_settings (
    id            INTEGER PRIMARY KEY,
    body          TEXT NOT NULL,
    smtp_password TEXT NOT NULL DEFAULT '',
    updated       BIGINT NOT NULL,
    updated_by    TEXT NOT NULL DEFAULT ''
);

-- +goose Down
DROP TABLE notification_settings;
