-- Schema 3's code: machines and sessions as before, EnqueueWork, NextWork, FinishWork.
INSERT INTO machines (hostname, provider, region)
SELECT 'host-' || (count(*) + 1), 'aws', 'us-east-1' FROM machines;
INSERT INTO sessions (machine_id, user_name) SELECT max(id), 'carol' FROM machines;

INSERT INTO work_items (session_id, payload) SELECT max(id), '{"job": "build"}' FROM sessions;
INSERT INTO work_items (session_id, payload) SELECT max(id), '{"job": "test"}' FROM sessions;
UPDATE work_items SET state = 'running'
WHERE id = (SELECT id FROM work_items WHERE state = 'queued' ORDER BY created_at, id LIMIT 1);
UPDATE work_items SET state = 'done'
WHERE id = (SELECT min(id) FROM work_items WHERE state = 'running');
