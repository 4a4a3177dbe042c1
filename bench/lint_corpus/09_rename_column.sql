-- Expected: rename-column
ALTER TABLE machines RENAME COLUMN hostname TO host_name;
