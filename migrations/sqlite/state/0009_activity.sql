-- What operators did through hr-bridge (a lockout lifted, deletions approved, a
-- console sign-in): who, through which channel, when, on what. Written by the
-- command line and the web console alike; read by both.
CREATE TABLE activity (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,  -- unix milliseconds
    actor   TEXT NOT NULL,     -- the operator's name ($SUDO_USER/$USER, or the console user)
    channel TEXT NOT NULL,     -- cli | console
    action  TEXT NOT NULL,     -- unlock | approve_deletions | console_sign_in | console_sign_out
    subject TEXT NOT NULL,     -- what it acted on (a username, an approval id), or ''
    detail  TEXT NOT NULL      -- free text, or ''
);
CREATE INDEX activity_at_idx ON activity (at);
