-- Expected: none
ALTER TABLE sessions ADD CONSTRAINT sessions_user_key UNIQUE USING INDEX sessions_user_idx;
