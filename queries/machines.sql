-- name: CreateMachine :one
INSERT INTO machines (hostname, region, arch)
VALUES ($1, $2, $3)
RETURNING id;

-- name: SetProviderData :exec
INSERT INTO provider_data (machine_id, provider, details)
VALUES ($1, $2, $3)
ON CONFLICT (machine_id)
DO UPDATE SET provider = EXCLUDED.provider, details = EXCLUDED.details;

-- name: GetMachine :one
SELECT m.id, m.hostname, p.provider, m.region, m.arch, m.created_at
FROM machines AS m
LEFT JOIN provider_data AS p ON p.machine_id = m.id
WHERE m.id = $1;

-- name: ListMachines :many
SELECT m.id, m.hostname, p.provider, m.region, m.arch
FROM machines AS m
LEFT JOIN provider_data AS p ON p.machine_id = m.id
ORDER BY m.hostname;
