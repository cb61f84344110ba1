-- +goose Up
-- Extenders may authenticate with a client certificate from the gateway's extender CA instead of an enrolment
-- token. Only the certificate's fingerprint, serial and expiry are kept (its key is shown once, never stored); a
-- reissue replaces the fingerprint, which revokes the old certificate.
ALTER TABLE extenders ADD COLUMN authentication TEXT NOT NULL DEFAULT 'token';
ALTER TABLE extenders ADD COLUMN cert_fingerprint TEXT NOT NULL DEFAULT '';
ALTER TABLE extenders ADD COLUMN cert_serial TEXT NOT NULL DEFAULT '';
ALTER TABLE extenders ADD COLUMN cert_not_after BIGINT NOT NULL DEFAULT 0;
CREATE INDEX extenders_cert ON extenders(cert_fingerprint);

-- +goose Down
DROP INDEX extenders_cert;
ALTER TABLE extenders DROP COLUMN cert_not_after;
ALTER TABLE extenders DROP COLUMN cert_serial;
ALTER TABLE extenders DROP COLUMN cert_fingerprint;
ALTER TABLE extenders DROP COLUMN authentication;
