-- Schema 5's code: CreateMachine now sets arch.
INSERT INTO machines (hostname, provider, region, arch)
SELECT 'host-' || (count(*) + 1), 'aws', 'us-west-2', 'arm64' FROM machines;
INSERT INTO sessions (machine_id, user_name) SELECT max(id), 'erin' FROM machines;
INSERT INTO work_items (session_id, payload) SELECT max(id), '{"job": "build"}' FROM sessions;
