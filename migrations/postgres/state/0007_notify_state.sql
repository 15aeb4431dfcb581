-- Notifications: the last announced state of each condition (`sync`, a database),
-- so that of several replicas seeing the same change exactly one announces it (a
-- compare-and-set on `state`), and a restart does not announce it again.
CREATE TABLE notify_state (
    subject    text PRIMARY KEY,   -- sync | source_database | state_database | database
    state      text NOT NULL,      -- ok | refused_guard | refused_data | up | down
    changed_at bigint NOT NULL     -- unix milliseconds
);
