-- name: CreateMachine :one
INSERT INTO machines (hostname, provider, region, arch)
VALUES ($1, $2, $3, $4)
RETURNING id;

-- name: GetMachine :one
SELECT id, hostname, provider, region, arch, created_at
FROM machines
WHERE id = $1;

-- name: ListMachines :many
SELECT id, hostname, provider, region, arch
FROM machines
ORDER BY hostname;
