-- Expected: none
DROP VIEW IF EXISTS busy_machines;
CREATE VIEW busy_machines AS
    SELECT machine_id FROM sessions WHERE ended_at IS NULL;
