-- Sync history: one row per /sync call (when, who asked, what was answered, and
-- what changed against the snapshot served before), the names behind the counts
-- (capped per call), and the approvals of deletion-guard refusals, each bound to
-- the exact set of drops an operator reviewed.
CREATE TABLE sync_history (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_ms    bigint NOT NULL,   -- unix milliseconds
    client_addr    text NULL,
    request_id     text NULL,
    outcome        text NOT NULL,     -- served | refused_data | refused_guard | unavailable | failed
    status         integer NOT NULL,  -- the HTTP status answered
    duration_ms    bigint NOT NULL,
    bytes          bigint NULL,       -- JSON bytes of the payload built
    user_count     bigint NULL,
    group_count    bigint NULL,
    digest         text NULL,         -- the payload's digest
    base_digest    text NULL,         -- the snapshot it was compared with
    users_added    bigint NULL,       -- NULL: not known (no payload, or not compared)
    users_changed  bigint NULL,
    users_dropped  bigint NULL,
    groups_added   bigint NULL,
    groups_changed bigint NULL,
    groups_dropped bigint NULL,
    names          text NOT NULL,     -- none | pending | kept | same_as | skipped | failed
    names_of       bigint NULL,       -- with same_as: the earlier call holding these names
    approval_id    bigint NULL,       -- the approval this call created (refusal) or consumed (served)
    detail         text NULL          -- why it was refused
);
CREATE INDEX sync_history_occurred_idx ON sync_history (occurred_ms);

CREATE TABLE sync_history_names (
    call_id bigint NOT NULL,
    kind    char(1) NOT NULL,         -- u: user, g: department
    event   char(1) NOT NULL,         -- a: added, c: changed, d: dropped
    name    text NOT NULL,
    fields  text NULL,                -- with c: the changed fields, comma-separated
    PRIMARY KEY (call_id, kind, event, name)
);
CREATE INDEX sync_history_names_name_idx ON sync_history_names (name, call_id);

CREATE TABLE sync_approvals (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_ms         bigint NOT NULL,
    last_refused_ms    bigint NOT NULL,
    refusals           bigint NOT NULL,
    status             text NOT NULL,     -- pending | approved | consumed | superseded
    pending_slot       integer NULL UNIQUE, -- 1 while pending: one pending set at a time
    set_digest         text NOT NULL,     -- the drop set and the base snapshot together
    base_digest        text NOT NULL,
    payload_digest     text NOT NULL,
    users_dropped      bigint NOT NULL,
    groups_dropped     bigint NOT NULL,
    previous_total     bigint NOT NULL,
    previous_groups    bigint NOT NULL,
    max_deletions      bigint NOT NULL,
    max_deletion_ratio double precision NOT NULL,
    guard_min_objects  bigint NOT NULL,
    reasons            text NOT NULL,
    approved_by        text NULL,
    approved_ms        bigint NULL,
    reason             text NULL,
    consumed_ms        bigint NULL
);
CREATE INDEX sync_approvals_set_idx ON sync_approvals (set_digest);

CREATE TABLE sync_approval_drops (
    approval_id bigint NOT NULL,
    kind        char(1) NOT NULL,         -- u: user, g: department
    name        text NOT NULL,
    PRIMARY KEY (approval_id, kind, name)
);
