-- Expected: none
ALTER TABLE machines ADD COLUMN rack text NOT NULL DEFAULT 'unassigned';
