-- hr-bridge's own state for /authenticate: lockout counters shared by every
-- replica, and the audit trail of every attempt.
CREATE TABLE auth_lockouts (
    username     TEXT PRIMARY KEY NOT NULL,
    failures     INTEGER NOT NULL,
    locked_until INTEGER NULL,     -- unix seconds
    updated_at   INTEGER NOT NULL  -- unix seconds
);

CREATE TABLE auth_audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at TEXT NOT NULL,     -- RFC 3339 UTC, e.g. 2026-11-24T18:00:00.000Z
    username    TEXT NOT NULL,
    outcome     TEXT NOT NULL,     -- success | failure
    reason      TEXT NOT NULL,     -- success | unknown_user | bad_password | inactive | locked | no_hash
    client_addr TEXT NULL
);
CREATE INDEX auth_audit_occurred_at_idx ON auth_audit (occurred_at);
CREATE INDEX auth_audit_username_idx ON auth_audit (username);
