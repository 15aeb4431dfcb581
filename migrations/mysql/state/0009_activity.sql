-- What operators did through hr-bridge (a lockout lifted, deletions approved, a
-- console sign-in): who, through which channel, when, on what. Written by the
-- command line and the web console alike; read by both.
CREATE TABLE activity (
    id      BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at      BIGINT NOT NULL,         -- unix milliseconds
    actor   VARCHAR(255) NOT NULL,   -- the operator's name ($SUDO_USER/$USER, or the console user)
    channel VARCHAR(16) NOT NULL,    -- cli | console
    action  VARCHAR(64) NOT NULL,    -- unlock | approve_deletions | console_sign_in | console_sign_out
    subject VARCHAR(1024) NOT NULL,  -- what it acted on (a username, an approval id), or ''
    detail  TEXT NOT NULL,           -- free text, or ''
    INDEX activity_at_idx (at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
