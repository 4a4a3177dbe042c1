-- Expected: drop-enum-value
-- Remove the 'failed' state: rename the type away and re-create it.
ALTER TYPE work_state RENAME TO work_state_old;
CREATE TYPE work_state AS ENUM ('queued', 'running', 'done');
ALTER TABLE work_items
    ALTER COLUMN state TYPE work_state USING state::text::work_state;
DROP TYPE work_state_old;
