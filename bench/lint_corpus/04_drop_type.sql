-- Expected: drop-type
DROP TYPE work_state;
