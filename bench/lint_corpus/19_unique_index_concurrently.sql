-- Expected: add-constraint
CREATE UNIQUE INDEX CONCURRENTLY sessions_user_idx ON sessions (user_name);
