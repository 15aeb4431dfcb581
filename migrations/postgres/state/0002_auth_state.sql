-- hr-bridge's own state for /authenticate: lockout counters shared by every
-- replica, and the audit trail of every attempt.
CREATE TABLE auth_lockouts (
    username     text PRIMARY KEY,
    failures     bigint NOT NULL,
    locked_until bigint NULL,      -- unix seconds
    updated_at   bigint NOT NULL   -- unix seconds
);

CREATE TABLE auth_audit (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at text NOT NULL,     -- RFC 3339 UTC, e.g. 2026-11-24T18:00:00.000Z
    username    text NOT NULL,
    outcome     text NOT NULL,     -- success | failure
    reason      text NOT NULL,     -- success | unknown_user | bad_password | inactive | locked | no_hash
    client_addr text NULL
);
CREATE INDEX auth_audit_occurred_at_idx ON auth_audit (occurred_at);
CREATE INDEX auth_audit_username_idx ON auth_audit (username);
