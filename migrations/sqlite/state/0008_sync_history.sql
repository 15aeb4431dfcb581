-- Sync history: one row per /sync call (when, who asked, what was answered, and
-- what changed against the snapshot served before), the names behind the counts
-- (capped per call), and the approvals of deletion-guard refusals, each bound to
-- the exact set of drops an operator reviewed.
CREATE TABLE sync_history (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_ms    INTEGER NOT NULL,  -- unix milliseconds
    client_addr    TEXT NULL,
    request_id     TEXT NULL,
    outcome        TEXT NOT NULL,     -- served | refused_data | refused_guard | unavailable | failed
    status         INTEGER NOT NULL,  -- the HTTP status answered
    duration_ms    INTEGER NOT NULL,
    bytes          INTEGER NULL,      -- JSON bytes of the payload built
    user_count     INTEGER NULL,
    group_count    INTEGER NULL,
    digest         TEXT NULL,         -- the payload's digest
    base_digest    TEXT NULL,         -- the snapshot it was compared with
    users_added    INTEGER NULL,      -- NULL: not known (no payload, or not compared)
    users_changed  INTEGER NULL,
    users_dropped  INTEGER NULL,
    groups_added   INTEGER NULL,
    groups_changed INTEGER NULL,
    groups_dropped INTEGER NULL,
    names          TEXT NOT NULL,     -- none | pending | kept | same_as | skipped | failed
    names_of       INTEGER NULL,      -- with same_as: the earlier call holding these names
    approval_id    INTEGER NULL,      -- the approval this call created (refusal) or consumed (served)
    detail         TEXT NULL          -- why it was refused
);
CREATE INDEX sync_history_occurred_idx ON sync_history (occurred_ms);

CREATE TABLE sync_history_names (
    call_id INTEGER NOT NULL,
    kind    TEXT NOT NULL,            -- u: user, g: department
    event   TEXT NOT NULL,            -- a: added, c: changed, d: dropped
    name    TEXT NOT NULL,
    fields  TEXT NULL,                -- with c: the changed fields, comma-separated
    PRIMARY KEY (call_id, kind, event, name)
) WITHOUT ROWID;
CREATE INDEX sync_history_names_name_idx ON sync_history_names (name, call_id);

CREATE TABLE sync_approvals (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    created_ms         INTEGER NOT NULL,
    last_refused_ms    INTEGER NOT NULL,
    refusals           INTEGER NOT NULL,
    status             TEXT NOT NULL,     -- pending | approved | consumed | superseded
    pending_slot       INTEGER NULL UNIQUE, -- 1 while pending: one pending set at a time
    set_digest         TEXT NOT NULL,     -- the drop set and the base snapshot together
    base_digest        TEXT NOT NULL,
    payload_digest     TEXT NOT NULL,
    users_dropped      INTEGER NOT NULL,
    groups_dropped     INTEGER NOT NULL,
    previous_total     INTEGER NOT NULL,
    previous_groups    INTEGER NOT NULL,
    max_deletions      INTEGER NOT NULL,
    max_deletion_ratio REAL NOT NULL,
    guard_min_objects  INTEGER NOT NULL,
    reasons            TEXT NOT NULL,
    approved_by        TEXT NULL,
    approved_ms        INTEGER NULL,
    reason             TEXT NULL,
    consumed_ms        INTEGER NULL
);
CREATE INDEX sync_approvals_set_idx ON sync_approvals (set_digest);

CREATE TABLE sync_approval_drops (
    approval_id INTEGER NOT NULL,
    kind        TEXT NOT NULL,            -- u: user, g: department
    name        TEXT NOT NULL,
    PRIMARY KEY (approval_id, kind, name)
) WITHOUT ROWID;
