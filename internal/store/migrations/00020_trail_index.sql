-- +goose Up
-- The trail index: one row per recorded exchange, written asynchronously after the exchange is in its trail, for
-- search across sessions. Texts are the redacted bodies as recorded (valid UTF-8 only), so the index holds nothing
-- the trail does not. request_line is "METHOD host path?query", searched with the bodies.
CREATE TABLE trail_index (
    id             {{autoid}},
    session_id     TEXT NOT NULL,
    seq            BIGINT NOT NULL,
    request_id     TEXT NOT NULL DEFAULT '',
    started        BIGINT NOT NULL,
    duration_ms    DOUBLE PRECISION NOT NULL DEFAULT 0,
    user_id        TEXT NOT NULL DEFAULT '',
    user_name      TEXT NOT NULL DEFAULT '',
    target_id      TEXT NOT NULL DEFAULT '',
    target_name    TEXT NOT NULL DEFAULT '',
    client_address TEXT NOT NULL DEFAULT '',
    method         TEXT NOT NULL DEFAULT '',
    scheme         TEXT NOT NULL DEFAULT '',
    host           TEXT NOT NULL DEFAULT '',
    path           TEXT NOT NULL DEFAULT '',
    query          TEXT NOT NULL DEFAULT '',
    status         INTEGER NOT NULL DEFAULT 0,
    decision       TEXT NOT NULL DEFAULT '',
    proto          TEXT NOT NULL DEFAULT '',
    websocket      BOOLEAN NOT NULL DEFAULT FALSE,
    request_line   TEXT NOT NULL DEFAULT '',
    request_text   TEXT NOT NULL DEFAULT '',
    response_text  TEXT NOT NULL DEFAULT '',
    UNIQUE (session_id, seq)
);
CREATE INDEX trail_index_started ON trail_index(started);
CREATE INDEX trail_index_method_started ON trail_index(method, started);
CREATE INDEX trail_index_user_started ON trail_index(user_name, started);
CREATE INDEX trail_index_target_started ON trail_index(target_name, started);

-- Sessions remember the connection policy that admitted them (for retention and download auditing) and whether
-- they are under a legal hold, which retention never deletes.
ALTER TABLE api_sessions ADD COLUMN connection_policy TEXT NOT NULL DEFAULT '';
ALTER TABLE api_sessions ADD COLUMN legal_hold BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE api_sessions ADD COLUMN legal_hold_reason TEXT NOT NULL DEFAULT '';

-- +sqlite
-- "Every DELETE under this path": method, then the path as a byte range (the search's prefix condition), then time.
CREATE INDEX trail_index_method_path ON trail_index(method, path, started);
-- Substring search in SQLite: an FTS5 table with the trigram tokenizer over the searchable texts, kept in step by
-- triggers (external content: the texts are stored once, in trail_index).
CREATE VIRTUAL TABLE trail_index_text USING fts5(request_line, request_text, response_text, content='trail_index', content_rowid='id', tokenize='trigram');
-- +goose StatementBegin
CREATE TRIGGER trail_index_ai AFTER INSERT ON trail_index BEGIN
    INSERT INTO trail_index_text(rowid, request_line, request_text, response_text) VALUES (new.id, new.request_line, new.request_text, new.response_text);
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER trail_index_ad AFTER DELETE ON trail_index BEGIN
    INSERT INTO trail_index_text(trail_index_text, rowid, request_line, request_text, response_text) VALUES ('delete', old.id, old.request_line, old.request_text, old.response_text);
END;
-- +goose StatementEnd
-- +end
-- +postgres
-- "Every DELETE under this path": method, then the path for LIKE 'prefix/%' (pattern ops ignore the collation).
CREATE INDEX trail_index_method_path ON trail_index(method, path text_pattern_ops, started);
-- Substring search in PostgreSQL: trigram GIN indexes (pg_trgm) serve ILIKE '%text%'. Where the extension cannot be
-- created (no privilege), search still works, by scanning.
-- +goose StatementBegin
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'pg_trgm is not available; trail text search will scan';
END
$$;
-- +goose StatementEnd
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE INDEX trail_index_line_trgm ON trail_index USING gin (request_line gin_trgm_ops);
        CREATE INDEX trail_index_request_trgm ON trail_index USING gin (request_text gin_trgm_ops);
        CREATE INDEX trail_index_response_trgm ON trail_index USING gin (response_text gin_trgm_ops);
    END IF;
END
$$;
-- +goose StatementEnd
-- +end

-- +goose Down
-- +sqlite
DROP TRIGGER trail_index_ad;
DROP TRIGGER trail_index_ai;
DROP TABLE trail_index_text;
-- +end
ALTER TABLE api_sessions DROP COLUMN legal_hold_reason;
ALTER TABLE api_sessions DROP COLUMN legal_hold;
ALTER TABLE api_sessions DROP COLUMN connection_policy;
DROP TABLE trail_index;
