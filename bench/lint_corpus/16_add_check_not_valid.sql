-- Expected: add-constraint
ALTER TABLE backoffs ADD CONSTRAINT attempts_positive CHECK (attempts > 0) NOT VALID;
