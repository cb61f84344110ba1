-- +goose Up
-- User sources (the reference's role-store sources): the built-in LOCAL store and directories such as LDAP and
-- Active Directory. config holds the non-secret settings as JSON; secrets_sealed holds the write-only secrets
-- (bind passwords, client secrets, cloud keys) as one sealed JSON object bound to the source's id.
CREATE TABLE sources (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    type           TEXT NOT NULL,
    enabled        BOOLEAN NOT NULL,
    ttl            BIGINT NOT NULL,
    config         TEXT NOT NULL,
    secrets_sealed TEXT NOT NULL DEFAULT '',
    status_code    TEXT NOT NULL DEFAULT '',
    status_text    TEXT NOT NULL DEFAULT '',
    last_sync      BIGINT NOT NULL DEFAULT 0,
    created        BIGINT NOT NULL,
    author         TEXT NOT NULL DEFAULT '',
    updated        BIGINT NOT NULL,
    updated_by     TEXT NOT NULL DEFAULT ''
);

-- What a directory said about a user at the last sync or login: its entry's DN, its groups and tags (JSON arrays of
-- normalized strings) and whether the last sync still found it. Role rules are evaluated over these rows.
CREATE TABLE directory_users (
    user_id     TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    source_id   TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    external_id TEXT NOT NULL,
    member_of   TEXT NOT NULL DEFAULT '[]',
    tags        TEXT NOT NULL DEFAULT '[]',
    present     BOOLEAN NOT NULL,
    synced      BIGINT NOT NULL
);
CREATE INDEX directory_users_source ON directory_users(source_id);

-- Membership rules of a role: members of a directory group in a source, or users carrying a tag (in one source, or
-- in any when source_id is empty).
CREATE TABLE role_rules (
    id        {{autoid}},
    role_id   TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    source_id TEXT NOT NULL DEFAULT '',
    group_dn  TEXT NOT NULL DEFAULT '',
    tag       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX role_rules_role ON role_rules(role_id);

-- Roles held through a rule, recomputed from directory_users and role_rules at every sync, login and rule change.
-- They are kept apart from user_roles so an explicit grant is never lost to, or mistaken for, a rule.
CREATE TABLE user_rule_roles (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    rule    TEXT NOT NULL,
    PRIMARY KEY (user_id, role_id, rule)
);
CREATE INDEX user_rule_roles_role ON user_rule_roles(role_id);

-- +goose Down
DROP TABLE user_rule_roles;
DROP TABLE role_rules;
DROP TABLE directory_users;
DROP TABLE sources;
