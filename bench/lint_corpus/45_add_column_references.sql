-- Expected: constraint-validates-rows
ALTER TABLE work_items ADD COLUMN machine_id bigint REFERENCES machines (id);
