-- Expected: none
CREATE TABLE scratch (id bigint);
INSERT INTO scratch SELECT id FROM machines;
DROP TABLE scratch;
