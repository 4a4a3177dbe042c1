-- name: SetBackoff :exec
INSERT INTO backoffs (machine_id, until, reason)
VALUES ($1, $2, $3)
ON CONFLICT (machine_id)
DO UPDATE SET until = EXCLUDED.until,
              reason = EXCLUDED.reason,
              attempts = backoffs.attempts + 1;

-- name: AvailableMachines :many
SELECT m.id, m.hostname
FROM machines AS m
LEFT JOIN backoffs AS b ON b.machine_id = m.id AND b.until > now()
WHERE b.machine_id IS NULL
ORDER BY m.hostname;
