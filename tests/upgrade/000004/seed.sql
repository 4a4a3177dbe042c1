-- Schema 4's code: everything before, plus SetBackoff.
INSERT INTO machines (hostname, provider, region)
SELECT 'host-' || (count(*) + 1), 'gcp', 'europe-west4' FROM machines;
INSERT INTO sessions (machine_id, user_name) SELECT max(id), 'dave' FROM machines;
INSERT INTO work_items (session_id, payload) SELECT max(id), '{"job": "deploy"}' FROM sessions;

INSERT INTO backoffs (machine_id, until, reason)
SELECT max(id), now() + interval '1 hour', 'disk full' FROM machines
ON CONFLICT (machine_id)
DO UPDATE SET until = EXCLUDED.until,
              reason = EXCLUDED.reason,
              attempts = backoffs.attempts + 1;
