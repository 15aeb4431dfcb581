-- Nothing to do: PostgreSQL's boolean type already refuses anything but a boolean
-- (SQLite and MySQL/MariaDB get a constraint in this step; the three stay aligned).
SELECT 1;
