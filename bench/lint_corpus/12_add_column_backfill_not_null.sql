-- Expected: set-not-null
-- The usual backfill: old code still inserts without rack, so this is not live.
ALTER TABLE machines ADD COLUMN rack text;
UPDATE machines SET rack = 'r1' WHERE rack IS NULL;
ALTER TABLE machines ALTER COLUMN rack SET NOT NULL;
