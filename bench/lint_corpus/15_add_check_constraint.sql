-- Expected: add-constraint, constraint-validates-rows
ALTER TABLE backoffs ADD CONSTRAINT attempts_positive CHECK (attempts > 0);
