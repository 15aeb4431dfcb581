-- The web console's sessions, shared by every replica. `id` is the SHA-256 (hex)
-- of the random 256-bit token the browser holds: a copy of this table signs no one in.
-- The username is VARBINARY: it names its person byte for byte (see 0004).
CREATE TABLE console_sessions (
    id         CHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,  -- lowercase hex
    username   VARBINARY(1020) NOT NULL,
    csrf_token VARCHAR(64) NOT NULL,
    created_at BIGINT NOT NULL,    -- unix milliseconds
    last_seen  BIGINT NOT NULL,    -- unix milliseconds
    INDEX console_sessions_last_seen_idx (last_seen)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
-- Which door a login came through: OMFLOW's /authenticate or the console's sign-in.
ALTER TABLE auth_audit ADD COLUMN channel VARCHAR(16) NOT NULL DEFAULT 'omflow';
