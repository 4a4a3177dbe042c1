-- Expected: none
DROP INDEX CONCURRENTLY IF EXISTS sessions_machine_id_idx;
