-- Expected: index-not-concurrent
DROP INDEX sessions_machine_id_idx;
