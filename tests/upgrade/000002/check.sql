-- Schema 2's code lists machines written before sessions existed, and OpenSessions only
-- joins sessions to machines that exist.
SELECT count(*) >= 2 FROM machines;
SELECT NOT EXISTS (
    SELECT 1 FROM sessions AS s LEFT JOIN machines AS m ON m.id = s.machine_id
    WHERE m.id IS NULL
);
