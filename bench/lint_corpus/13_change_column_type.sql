-- Expected: change-column-type
ALTER TABLE machines ALTER COLUMN hostname TYPE varchar(64);
