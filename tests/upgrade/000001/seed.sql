-- What the code of schema 1 writes: CreateMachine (hostname, provider, region).
-- Seeds run again on the next schema during a live step, so host names are
-- derived from the rows already there instead of being fixed.
INSERT INTO machines (hostname, provider, region)
SELECT 'host-' || (count(*) + 1), 'aws', 'eu-west-1' FROM machines;

INSERT INTO machines (hostname, provider, region)
SELECT 'host-' || (count(*) + 1), 'gcp', NULL FROM machines;
