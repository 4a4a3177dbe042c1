-- Expected: none
ALTER TABLE machines ADD COLUMN rack text DEFAULT 'unassigned';
ALTER TABLE machines ALTER COLUMN rack SET NOT NULL;
