-- Expected: not-analysed
-- CockroachDB index hint: not PostgreSQL syntax.
DELETE FROM work_items@work_items_state_idx WHERE state = 'done';
