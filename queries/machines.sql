-- name: CreateMachine :one
INSERT INTO machines (hostname, provider, region)
VALUES ($1, $2, $3)
RETURNING id;

-- name: GetMachine :one
SELECT id, hostname, provider, region, created_at
FROM machines
WHERE id = $1;

-- name: ListMachines :many
SELECT id, hostname, provider, region
FROM machines
ORDER BY hostname;
