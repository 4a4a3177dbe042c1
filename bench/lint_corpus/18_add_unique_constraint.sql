-- Expected: add-constraint, constraint-validates-rows
ALTER TABLE sessions ADD CONSTRAINT one_session_per_user UNIQUE (machine_id, user_name);
