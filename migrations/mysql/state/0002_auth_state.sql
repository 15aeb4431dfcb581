-- hr-bridge's own state for /authenticate: lockout counters shared by every
-- replica, and the audit trail of every attempt.
CREATE TABLE auth_lockouts (
    username     VARCHAR(255) NOT NULL PRIMARY KEY,
    failures     BIGINT NOT NULL,
    locked_until BIGINT NULL,      -- unix seconds
    updated_at   BIGINT NOT NULL   -- unix seconds
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE auth_audit (
    id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    occurred_at VARCHAR(32) NOT NULL,  -- RFC 3339 UTC, e.g. 2026-11-24T18:00:00.000Z
    username    VARCHAR(255) NOT NULL,
    outcome     VARCHAR(16) NOT NULL,  -- success | failure
    reason      VARCHAR(32) NOT NULL,  -- success | unknown_user | bad_password | inactive | locked | no_hash
    client_addr VARCHAR(64) NULL,
    INDEX auth_audit_occurred_at_idx (occurred_at),
    INDEX auth_audit_username_idx (username)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
