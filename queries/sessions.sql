-- name: StartSession :one
INSERT INTO sessions (machine_id, user_name)
VALUES ($1, $2)
RETURNING id, started_at;

-- name: EndSession :exec
UPDATE sessions SET ended_at = now()
WHERE id = $1 AND ended_at IS NULL;

-- name: OpenSessions :many
SELECT s.id, m.hostname, s.user_name, s.started_at
FROM sessions AS s
JOIN machines AS m ON m.id = s.machine_id
WHERE s.ended_at IS NULL;
