-- Expected: drop-column
ALTER TABLE IF EXISTS machines DROP COLUMN IF EXISTS region CASCADE;
