-- The console's CSRF token is now derived from the session token the browser
-- holds (HMAC-SHA256 with a fixed tag), never stored: a reader of this table can
-- no more forge a form than sign in. Sessions live on; a form shown before the
-- upgrade carries the old token and is refused once (reload the page).
ALTER TABLE console_sessions DROP COLUMN csrf_token;
-- A one-time message for the session's next page ("Unlocked carol"), set by the
-- action and cleared when shown, so that no link can make a page claim one.
ALTER TABLE console_sessions ADD COLUMN flash TEXT;
