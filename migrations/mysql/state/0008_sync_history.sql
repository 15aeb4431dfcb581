-- Sync history: one row per /sync call (when, who asked, what was answered, and
-- what changed against the snapshot served before), the names behind the counts
-- (capped per call), and the approvals of deletion-guard refusals, each bound to
-- the exact set of drops an operator reviewed. Names are VARBINARY: they compare
-- byte for byte, as usernames do everywhere else (3000 bytes keep the primary
-- keys within InnoDB's 3072).
CREATE TABLE sync_history (
    id             BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    occurred_ms    BIGINT NOT NULL,       -- unix milliseconds
    client_addr    VARCHAR(64) NULL,
    request_id     VARCHAR(128) NULL,
    outcome        VARCHAR(16) NOT NULL,  -- served | refused_data | refused_guard | unavailable | failed
    status         INT NOT NULL,          -- the HTTP status answered
    duration_ms    BIGINT NOT NULL,
    bytes          BIGINT NULL,           -- JSON bytes of the payload built
    user_count     BIGINT NULL,
    group_count    BIGINT NULL,
    digest         VARCHAR(64) NULL,      -- the payload's digest
    base_digest    VARCHAR(64) NULL,      -- the snapshot it was compared with
    users_added    BIGINT NULL,           -- NULL: not known (no payload, or not compared)
    users_changed  BIGINT NULL,
    users_dropped  BIGINT NULL,
    groups_added   BIGINT NULL,
    groups_changed BIGINT NULL,
    groups_dropped BIGINT NULL,
    names          VARCHAR(16) NOT NULL,  -- none | pending | kept | same_as | skipped | failed
    names_of       BIGINT NULL,           -- with same_as: the earlier call holding these names
    approval_id    BIGINT NULL,           -- the approval this call created (refusal) or consumed (served)
    detail         TEXT NULL,             -- why it was refused
    INDEX sync_history_occurred_idx (occurred_ms)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE sync_history_names (
    call_id BIGINT NOT NULL,
    kind    CHAR(1) CHARACTER SET ascii NOT NULL,  -- u: user, g: department
    event   CHAR(1) CHARACTER SET ascii NOT NULL,  -- a: added, c: changed, d: dropped
    name    VARBINARY(3000) NOT NULL,
    fields  TEXT NULL,                             -- with c: the changed fields, comma-separated
    PRIMARY KEY (call_id, kind, event, name),
    INDEX sync_history_names_name_idx (name(255), call_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE sync_approvals (
    id                 BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    created_ms         BIGINT NOT NULL,
    last_refused_ms    BIGINT NOT NULL,
    refusals           BIGINT NOT NULL,
    status             VARCHAR(16) NOT NULL,  -- pending | approved | consumed | superseded
    pending_slot       INT NULL UNIQUE,       -- 1 while pending: one pending set at a time
    set_digest         VARCHAR(64) NOT NULL,  -- the drop set and the base snapshot together
    base_digest        VARCHAR(64) NOT NULL,
    payload_digest     VARCHAR(64) NOT NULL,
    users_dropped      BIGINT NOT NULL,
    groups_dropped     BIGINT NOT NULL,
    previous_total     BIGINT NOT NULL,
    previous_groups    BIGINT NOT NULL,
    max_deletions      BIGINT NOT NULL,
    max_deletion_ratio DOUBLE NOT NULL,
    guard_min_objects  BIGINT NOT NULL,
    reasons            TEXT NOT NULL,
    approved_by        VARCHAR(255) NULL,
    approved_ms        BIGINT NULL,
    reason             TEXT NULL,
    consumed_ms        BIGINT NULL,
    INDEX sync_approvals_set_idx (set_digest)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE sync_approval_drops (
    approval_id BIGINT NOT NULL,
    kind        CHAR(1) CHARACTER SET ascii NOT NULL,  -- u: user, g: department
    name        VARBINARY(3000) NOT NULL,
    PRIMARY KEY (approval_id, kind, name)
) ENGINE = InnoDB;
