-- Expected: rename-table
ALTER TABLE machines RENAME TO hosts;
