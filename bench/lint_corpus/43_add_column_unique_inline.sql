-- Expected: constraint-validates-rows
ALTER TABLE machines ADD COLUMN serial_number text UNIQUE;
