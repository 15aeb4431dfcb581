-- The web console's sessions, shared by every replica. `id` is the SHA-256 (hex)
-- of the random 256-bit token the browser holds: a copy of this table signs no one in.
CREATE TABLE console_sessions (
    id         TEXT PRIMARY KEY NOT NULL,
    username   TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,   -- unix milliseconds
    last_seen  INTEGER NOT NULL    -- unix milliseconds
);
CREATE INDEX console_sessions_last_seen_idx ON console_sessions (last_seen);
-- Which door a login came through: OMFLOW's /authenticate or the console's sign-in.
ALTER TABLE auth_audit ADD COLUMN channel TEXT NOT NULL DEFAULT 'omflow';
