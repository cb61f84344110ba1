-- +goose Up
-- The cluster's registry of live extender sessions: which node holds a session of which extender, refreshed at
-- every heartbeat, so a node without a session of a prefix knows which node to relay a dial to. Rows of a node
-- that stopped answering are ignored once its heartbeat is stale and removed by the leader.
CREATE TABLE extender_links (
    link_key        TEXT PRIMARY KEY,
    extender_id     TEXT NOT NULL,
    node_id         TEXT NOT NULL,
    connected_since BIGINT NOT NULL,
    heartbeat       BIGINT NOT NULL
);
CREATE INDEX extender_links_extender ON extender_links(extender_id);
CREATE INDEX extender_links_node ON extender_links(node_id);

-- +goose Down
DROP TABLE extender_links;
