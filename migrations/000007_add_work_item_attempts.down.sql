ALTER TABLE work_items DROP COLUMN attempts;
