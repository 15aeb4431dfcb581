-- Notifications: the last announced state of each condition (`sync`, a database),
-- so that of several replicas seeing the same change exactly one announces it (a
-- compare-and-set on `state`), and a restart does not announce it again.
CREATE TABLE notify_state (
    subject    TEXT PRIMARY KEY NOT NULL,  -- sync | source_database | state_database | database
    state      TEXT NOT NULL,              -- ok | refused_guard | refused_data | up | down
    changed_at INTEGER NOT NULL            -- unix milliseconds
);
