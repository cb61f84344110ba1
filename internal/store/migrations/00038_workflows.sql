-- +goose Up
-- Just-in-time roles (PrivX's workflow engine). A workflow's definition and a request's steps and decisions are
-- JSON documents (body) in the shapes of internal/workflow; the columns beside them are what queries select on.
CREATE TABLE workflows (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    body       TEXT NOT NULL,
    created    BIGINT NOT NULL,
    author     TEXT NOT NULL DEFAULT '',
    updated    BIGINT NOT NULL,
    updated_by TEXT NOT NULL DEFAULT ''
);

-- A request keeps the workflow's steps as they were when it was made, so it outlives a change to (or the deletion
-- of) its workflow. due is the next time the request changes by itself (a window starts or ends), 0 for never.
CREATE TABLE workflow_requests (
    id             TEXT PRIMARY KEY,
    workflow_id    TEXT NOT NULL,
    requester_id   TEXT NOT NULL,
    target_user_id TEXT NOT NULL,
    role_id        TEXT NOT NULL,
    status         TEXT NOT NULL,
    due            BIGINT NOT NULL DEFAULT 0,
    body           TEXT NOT NULL,
    created        BIGINT NOT NULL,
    updated        BIGINT NOT NULL
);
CREATE INDEX workflow_requests_status ON workflow_requests(status, due);
CREATE INDEX workflow_requests_target ON workflow_requests(target_user_id);

-- Roles held now through an approved request: a row exists exactly while the request's window is open. They are
-- kept apart from user_roles so that the end of a window never takes away an explicit grant.
CREATE TABLE user_workflow_roles (
    request_id TEXT PRIMARY KEY REFERENCES workflow_requests(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role_id    TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE
);
CREATE INDEX user_workflow_roles_user ON user_workflow_roles(user_id);
CREATE INDEX user_workflow_roles_role ON user_workflow_roles(role_id);

-- +goose Down
DROP TABLE user_workflow_roles;
DROP TABLE workflow_requests;
DROP TABLE workflows;
