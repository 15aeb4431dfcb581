-- SQLite has no boolean type: `active = 'true'` (text) or `2` used to be stored as
-- given, and text counts as false, so the employee silently vanished from /sync and
-- OMFLOW deleted them. From now on the database refuses anything but TRUE/FALSE
-- (1/0; '1' and 1.0 are stored as 1 by the column's numeric affinity).
--
-- Triggers rather than a rebuilt table with a CHECK: rebuilding employees and
-- departments needs foreign keys off (outside a transaction) and would drop any
-- column, index or trigger an operator added to these HR tables. Rows that already
-- hold another value are kept as they are; /sync and `hr-bridge check` report them
-- until HR sets them to TRUE or FALSE (which the triggers allow).
CREATE TRIGGER employees_active_is_boolean_insert
BEFORE INSERT ON employees
WHEN NEW.active NOT IN (0, 1)
BEGIN
    SELECT RAISE(ABORT, 'employees.active must be TRUE or FALSE (1 or 0)');
END;

CREATE TRIGGER employees_active_is_boolean_update
BEFORE UPDATE OF active ON employees
WHEN NEW.active NOT IN (0, 1)
BEGIN
    SELECT RAISE(ABORT, 'employees.active must be TRUE or FALSE (1 or 0)');
END;

CREATE TRIGGER departments_active_is_boolean_insert
BEFORE INSERT ON departments
WHEN NEW.active NOT IN (0, 1)
BEGIN
    SELECT RAISE(ABORT, 'departments.active must be TRUE or FALSE (1 or 0)');
END;

CREATE TRIGGER departments_active_is_boolean_update
BEFORE UPDATE OF active ON departments
WHEN NEW.active NOT IN (0, 1)
BEGIN
    SELECT RAISE(ABORT, 'departments.active must be TRUE or FALSE (1 or 0)');
END;
