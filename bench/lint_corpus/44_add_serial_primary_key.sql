-- Expected: add-column-rewrites-table, constraint-validates-rows
ALTER TABLE provider_data ADD COLUMN id SERIAL PRIMARY KEY;
