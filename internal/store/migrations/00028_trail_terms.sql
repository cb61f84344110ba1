-- +goose Up
-- SQLite's text index of the trail index, second form. The FTS5 trigram table (00020) tokenized every occurrence
-- of every trigram of every body: 64 KiB of recorded body cost milliseconds of CPU per exchange. The index now
-- holds each distinct (ASCII-folded) trigram of a text once, as a word naming the column and the trigram
-- ("r" + hex for response_text, "q" request_text, "l" request_line), computed by the store in Go. A search finds
-- the rows holding every trigram of the needle, then checks the needle against the stored text itself, so results
-- are exact. Rows indexed before this migration are given their terms when the store opens (terms_indexed).
-- +sqlite
DROP TRIGGER trail_index_ai;
DROP TRIGGER trail_index_ad;
DROP TABLE trail_index_text;
CREATE VIRTUAL TABLE trail_index_terms USING fts5(terms, content='', contentless_delete=1, tokenize='ascii', detail=none);
ALTER TABLE trail_index ADD COLUMN terms_indexed BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX trail_index_unindexed ON trail_index(id) WHERE NOT terms_indexed;
-- +goose StatementBegin
CREATE TRIGGER trail_index_terms_ad AFTER DELETE ON trail_index BEGIN
    DELETE FROM trail_index_terms WHERE rowid = old.id;
END;
-- +goose StatementEnd
-- +end
-- +postgres
-- PostgreSQL keeps its pg_trgm indexes (00020).
SELECT 1;
-- +end

-- +goose Down
-- +sqlite
DROP TRIGGER trail_index_terms_ad;
DROP INDEX trail_index_unindexed;
ALTER TABLE trail_index DROP COLUMN terms_indexed;
DROP TABLE trail_index_terms;
CREATE VIRTUAL TABLE trail_index_text USING fts5(request_line, request_text, response_text, content='trail_index', content_rowid='id', tokenize='trigram');
INSERT INTO trail_index_text(trail_index_text) VALUES ('rebuild');
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
SELECT 1;
-- +end
