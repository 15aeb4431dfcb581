-- Lockout counters match usernames byte for byte: under utf8mb4_unicode_ci,
-- attempts as `ALICE`, `alice ` or full-width `ａｌｉｃｅ` counted against (and
-- locked) `alice`. VARBINARY compares bytes and, unlike utf8mb4_bin on MariaDB,
-- does not ignore trailing spaces. 1020 bytes hold 255 utf8mb4 characters.
ALTER TABLE auth_lockouts MODIFY username VARBINARY(1020) NOT NULL;
