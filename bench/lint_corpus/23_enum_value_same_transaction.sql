-- Expected: enum-value-same-transaction
ALTER TYPE work_state ADD VALUE 'paused' AFTER 'running';
UPDATE work_items SET state = 'paused' WHERE state = 'queued' AND attempts > 3;
