-- Expected: none
ALTER TABLE machines ADD COLUMN rack text;
