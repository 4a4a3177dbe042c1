-- Expected: drop-enum-value
ALTER TYPE work_state RENAME VALUE 'failed' TO 'errored';
