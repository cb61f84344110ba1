-- +goose Up
-- SQLite's text index of the trail index, third form: one document per block of up to 16 consecutive rows instead
-- of one per row. Exchanges recorded together mostly share their trigrams (the same API, its JSON keys, the same
-- request lines), so the union of a block's distinct trigrams is a fraction of the per-row documents' sum, and
-- writing it was most of the trail index's cost per exchange. A document's rowid names its rows: first id * 16 +
-- (count - 1). A search finds the blocks holding every trigram of the needle and checks the needle against each
-- of their rows' stored texts, so results stay exact. Rows indexed before are given blocks when the store opens.
-- +sqlite
DROP TRIGGER trail_index_terms_ad;
DROP TABLE trail_index_terms;
CREATE VIRTUAL TABLE trail_index_blocks USING fts5(terms, content='', contentless_delete=1, tokenize='ascii', detail=none);
UPDATE trail_index SET terms_indexed = FALSE;
-- A block goes when the last of its rows does: the trigger finds the one block covering old.id (its first id is
-- at most 15 below) and deletes it if none of its rows is left.
-- +goose StatementBegin
CREATE TRIGGER trail_index_blocks_ad AFTER DELETE ON trail_index BEGIN
    DELETE FROM trail_index_blocks WHERE rowid IN (
        SELECT b.rowid FROM trail_index_blocks b
        WHERE b.rowid BETWEEN (old.id - 15) * 16 AND old.id * 16 + 15 AND b.rowid / 16 + b.rowid % 16 >= old.id
          AND NOT EXISTS (SELECT 1 FROM trail_index t WHERE t.id BETWEEN b.rowid / 16 AND b.rowid / 16 + b.rowid % 16));
END;
-- +goose StatementEnd
-- +end
-- +postgres
-- PostgreSQL keeps its pg_trgm indexes (00020).
SELECT 1;
-- +end

-- +goose Down
-- +sqlite
DROP TRIGGER trail_index_blocks_ad;
DROP TABLE trail_index_blocks;
CREATE VIRTUAL TABLE trail_index_terms USING fts5(terms, content='', contentless_delete=1, tokenize='ascii', detail=none);
UPDATE trail_index SET terms_indexed = FALSE;
-- +goose StatementBegin
CREATE TRIGGER trail_index_terms_ad AFTER DELETE ON trail_index BEGIN
    DELETE FROM trail_index_terms WHERE rowid = old.id;
END;
-- +goose StatementEnd
-- +end
-- +postgres
SELECT 1;
-- +end
