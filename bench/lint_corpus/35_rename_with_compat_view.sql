-- Expected: none
-- Rename, and keep the old name as an updatable view for old code.
ALTER TABLE machines RENAME TO hosts;
CREATE VIEW machines AS SELECT * FROM hosts;
