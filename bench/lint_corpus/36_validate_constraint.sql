-- Expected: none
ALTER TABLE backoffs VALIDATE CONSTRAINT attempts_positive;
