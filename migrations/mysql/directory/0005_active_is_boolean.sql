-- BOOLEAN is TINYINT here, so `active = 2` was accepted (and counted as true). From
-- now on the database refuses anything but TRUE/FALSE (1/0). Existing non-zero
-- values become 1: /sync already served those rows as active, so nothing OMFLOW
-- sees changes, and the constraint can be added.
UPDATE employees SET active = 1 WHERE active NOT IN (0, 1);
UPDATE departments SET active = 1 WHERE active NOT IN (0, 1);
ALTER TABLE employees ADD CONSTRAINT employees_active_is_boolean CHECK (active IN (0, 1));
ALTER TABLE departments ADD CONSTRAINT departments_active_is_boolean CHECK (active IN (0, 1));
