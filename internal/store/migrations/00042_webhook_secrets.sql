-- +goose Up
-- Per-webhook signing secrets of the notification settings: a JSON array of strings, one per webhook of the body in
-- its order ("" for an unsigned webhook), sealed with the master key as one value bound to this row and column.
ALTER TABLE notification_settings ADD COLUMN webhook_secrets TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE notification_settings DROP COLUMN webhook_secrets;
