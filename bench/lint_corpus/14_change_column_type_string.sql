-- Expected: change-column-type
-- CockroachDB spelling of text; PostgreSQL's parser reads STRING as a type name.
ALTER TABLE machines ALTER COLUMN region TYPE STRING;
