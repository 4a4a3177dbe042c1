-- Schema 6's code: CreateMachine without provider, then SetProviderData.
INSERT INTO machines (hostname, region, arch)
SELECT 'host-' || (count(*) + 1), 'eu-west-1', 'arm64' FROM machines;

INSERT INTO provider_data (machine_id, provider, details)
SELECT max(id), 'hetzner', '{"rack": "r1"}' FROM machines
ON CONFLICT (machine_id)
DO UPDATE SET provider = EXCLUDED.provider, details = EXCLUDED.details;

INSERT INTO sessions (machine_id, user_name) SELECT max(id), 'frank' FROM machines;
INSERT INTO work_items (session_id, payload) SELECT max(id), '{"job": "test"}' FROM sessions;
