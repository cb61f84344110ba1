-- +goose Up
-- One schema for SQLite and PostgreSQL: {{...}} placeholders are rendered per dialect before goose reads it.
-- Times are Unix microseconds (BIGINT) so both engines sort and compare them the same way.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    email         TEXT NOT NULL DEFAULT '',
    full_name     TEXT NOT NULL DEFAULT '',
    enabled       BOOLEAN NOT NULL,
    source        TEXT NOT NULL DEFAULT 'local',
    password_hash TEXT NOT NULL DEFAULT '',
    created       BIGINT NOT NULL,
    author        TEXT NOT NULL DEFAULT '',
    updated       BIGINT NOT NULL,
    updated_by    TEXT NOT NULL DEFAULT ''
);

CREATE TABLE roles (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    comment     TEXT NOT NULL DEFAULT '',
    permissions TEXT NOT NULL,
    created     BIGINT NOT NULL,
    author      TEXT NOT NULL DEFAULT '',
    updated     BIGINT NOT NULL,
    updated_by  TEXT NOT NULL DEFAULT ''
);

CREATE TABLE user_roles (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role ON user_roles(role_id);

CREATE TABLE api_clients (
    id                         TEXT PRIMARY KEY,
    name                       TEXT NOT NULL UNIQUE,
    secret_sealed              TEXT NOT NULL,
    secret_index               TEXT NOT NULL UNIQUE,
    oauth_client_id            TEXT NOT NULL UNIQUE,
    oauth_client_secret_sealed TEXT NOT NULL,
    created                    BIGINT NOT NULL,
    author                     TEXT NOT NULL DEFAULT '',
    updated                    BIGINT NOT NULL,
    updated_by                 TEXT NOT NULL DEFAULT ''
);

CREATE TABLE api_client_roles (
    client_id TEXT NOT NULL REFERENCES api_clients(id) ON DELETE CASCADE,
    role_id   TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    PRIMARY KEY (client_id, role_id)
);

CREATE TABLE targets (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    version           BIGINT NOT NULL,
    body              TEXT NOT NULL,
    credential_sealed TEXT NOT NULL DEFAULT '',
    created           BIGINT NOT NULL,
    author            TEXT NOT NULL DEFAULT '',
    updated           BIGINT NOT NULL,
    updated_by        TEXT NOT NULL DEFAULT ''
);

CREATE TABLE target_roles (
    target_id TEXT NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
    role_id   TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    PRIMARY KEY (target_id, role_id)
);
CREATE INDEX target_roles_role ON target_roles(role_id);

CREATE TABLE proxy_credentials (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    target_id      TEXT NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    comment        TEXT NOT NULL DEFAULT '',
    not_before     BIGINT NOT NULL,
    not_after      BIGINT NOT NULL,
    source_address TEXT NOT NULL,
    enabled        BOOLEAN NOT NULL,
    secret_sealed  TEXT NOT NULL,
    secret_index   TEXT NOT NULL UNIQUE,
    last_used      BIGINT,
    created        BIGINT NOT NULL,
    author         TEXT NOT NULL DEFAULT '',
    updated        BIGINT NOT NULL,
    updated_by     TEXT NOT NULL DEFAULT '',
    UNIQUE (user_id, name)
);
CREATE INDEX proxy_credentials_target ON proxy_credentials(target_id);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE refresh_tokens (
    token_index    TEXT PRIMARY KEY,
    principal_kind TEXT NOT NULL,
    principal_id   TEXT NOT NULL,
    expires        BIGINT NOT NULL,
    created        BIGINT NOT NULL
);

CREATE TABLE audit_events (
    id             {{autoid}},
    time           BIGINT NOT NULL,
    actor          TEXT NOT NULL,
    actor_id       TEXT NOT NULL DEFAULT '',
    action         TEXT NOT NULL,
    object_type    TEXT NOT NULL,
    object_id      TEXT NOT NULL DEFAULT '',
    source_address TEXT NOT NULL DEFAULT '',
    outcome        TEXT NOT NULL,
    diff           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_time ON audit_events(time);

-- +goose Down
DROP TABLE audit_events;
DROP TABLE refresh_tokens;
DROP TABLE settings;
DROP TABLE proxy_credentials;
DROP TABLE target_roles;
DROP TABLE targets;
DROP TABLE api_client_roles;
DROP TABLE api_clients;
DROP TABLE user_roles;
DROP TABLE roles;
DROP TABLE users;
