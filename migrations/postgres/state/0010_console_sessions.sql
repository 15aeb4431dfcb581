-- The web console's sessions, shared by every replica. `id` is the SHA-256 (hex)
-- of the random 256-bit token the browser holds: a copy of this table signs no one in.
CREATE TABLE console_sessions (
    id         text PRIMARY KEY,
    username   text NOT NULL,
    csrf_token text NOT NULL,
    created_at bigint NOT NULL,    -- unix milliseconds
    last_seen  bigint NOT NULL     -- unix milliseconds
);
CREATE INDEX console_sessions_last_seen_idx ON console_sessions (last_seen);
-- Which door a login came through: OMFLOW's /authenticate or the console's sign-in.
ALTER TABLE auth_audit ADD COLUMN channel text NOT NULL DEFAULT 'omflow';
