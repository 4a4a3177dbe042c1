-- Expected: drop-table
-- Old code still queries sessions.
DROP TABLE sessions;
