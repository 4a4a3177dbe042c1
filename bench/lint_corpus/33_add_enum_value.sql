-- Expected: none
ALTER TYPE work_state ADD VALUE IF NOT EXISTS 'paused' AFTER 'running';
