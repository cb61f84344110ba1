-- +goose Up
-- The host store. The host document lives in body; the columns beside it exist to be searched, sorted and kept
-- unique in SQL: name_key is the lower-cased common name (host names compare without case), search_text the
-- lower-cased words a keyword or filter may hit, and host_tags the tags, so a tag search is an indexed lookup.
CREATE TABLE hosts (
    id          TEXT PRIMARY KEY,
    common_name TEXT NOT NULL,
    name_key    TEXT NOT NULL UNIQUE,
    source      TEXT NOT NULL DEFAULT 'local',
    external_id TEXT NOT NULL DEFAULT '',
    search_text TEXT NOT NULL DEFAULT '',
    body        TEXT NOT NULL,
    created     BIGINT NOT NULL,
    author      TEXT NOT NULL DEFAULT '',
    updated     BIGINT NOT NULL,
    updated_by  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX hosts_source ON hosts(source);
CREATE INDEX hosts_external_id ON hosts(external_id);

CREATE TABLE host_tags (
    host_id TEXT NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    tag     TEXT NOT NULL,
    PRIMARY KEY (host_id, tag)
);
CREATE INDEX host_tags_tag ON host_tags(tag);

-- +goose Down
DROP TABLE host_tags;
DROP TABLE hosts;
