-- compat: live
-- note: work_items.attempts counts retries; defaults to 0 for rows old code writes.
ALTER TABLE work_items ADD COLUMN attempts integer NOT NULL DEFAULT 0;
