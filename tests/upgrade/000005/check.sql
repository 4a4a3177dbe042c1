-- GetMachine reads arch: machines written before it existed got the default.
SELECT count(*) FILTER (WHERE arch = 'x86_64') >= 1 FROM machines;
SELECT NOT EXISTS (SELECT 1 FROM machines WHERE arch NOT IN ('x86_64', 'arm64'));
-- After a rollback from schema 6, every machine has its provider back.
SELECT NOT EXISTS (SELECT 1 FROM machines WHERE provider IS NULL OR provider = '');
