-- GetMachine / ListMachines join provider_data: every machine written before the move
-- kept its provider.
SELECT NOT EXISTS (
    SELECT 1 FROM machines AS m LEFT JOIN provider_data AS p ON p.machine_id = m.id
    WHERE p.machine_id IS NULL
);
SELECT count(*) FILTER (WHERE provider = 'aws') >= 1 FROM provider_data;
