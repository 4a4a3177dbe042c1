-- Expected: none
INSERT INTO machines (hostname, region) VALUES ('m1', 'eu');
UPDATE work_items SET attempts = 0 WHERE attempts IS NULL;
