-- Schema 2's code: CreateMachine as before, StartSession, EndSession.
INSERT INTO machines (hostname, provider, region)
SELECT 'host-' || (count(*) + 1), 'aws', 'us-east-1' FROM machines;

INSERT INTO sessions (machine_id, user_name) SELECT max(id), 'alice' FROM machines;
INSERT INTO sessions (machine_id, user_name) SELECT min(id), 'bob' FROM machines;
UPDATE sessions SET ended_at = now() WHERE user_name = 'bob' AND ended_at IS NULL;
