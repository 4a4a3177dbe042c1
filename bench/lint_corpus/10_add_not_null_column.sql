-- Expected: add-not-null-column
ALTER TABLE machines ADD COLUMN rack text NOT NULL;
