-- name: EnqueueWork :one
INSERT INTO work_items (session_id, payload)
VALUES ($1, $2)
RETURNING id;

-- name: NextWork :one
UPDATE work_items SET state = 'running'
WHERE id = (
    SELECT id FROM work_items
    WHERE state = 'queued'
    ORDER BY created_at
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
RETURNING id, session_id, payload;

-- name: FinishWork :exec
UPDATE work_items
SET state = $2,
    attempts = attempts + CASE WHEN $2 = 'failed'::work_state THEN 1 ELSE 0 END
WHERE id = $1;
