-- Schema 3's code: sessions from before the queue are still there; every queued item
-- has the payload shape NextWork expects.
SELECT count(*) >= 1 FROM sessions;
SELECT NOT EXISTS (SELECT 1 FROM work_items WHERE NOT (payload ? 'job'));
