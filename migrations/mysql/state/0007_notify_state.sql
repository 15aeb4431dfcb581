-- Notifications: the last announced state of each condition (`sync`, a database),
-- so that of several replicas seeing the same change exactly one announces it (a
-- compare-and-set on `state`), and a restart does not announce it again.
CREATE TABLE notify_state (
    subject    VARCHAR(64) NOT NULL PRIMARY KEY,  -- sync | source_database | state_database | database
    state      VARCHAR(32) NOT NULL,              -- ok | refused_guard | refused_data | up | down
    changed_at BIGINT NOT NULL                    -- unix milliseconds
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
