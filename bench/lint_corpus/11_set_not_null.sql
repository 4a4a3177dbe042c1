-- Expected: set-not-null
ALTER TABLE machines ALTER COLUMN region SET NOT NULL;
