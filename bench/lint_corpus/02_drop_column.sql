-- Expected: drop-column
ALTER TABLE machines DROP COLUMN region;
