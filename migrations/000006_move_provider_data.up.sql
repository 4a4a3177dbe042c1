-- compat: offline
-- note: machines.provider moves to provider_data; old code still writes machines.provider, so stop every component first.
CREATE TABLE provider_data (
    machine_id bigint PRIMARY KEY REFERENCES machines (id) ON DELETE CASCADE,
    provider   text   NOT NULL,
    details    jsonb  NOT NULL DEFAULT '{}'
);
INSERT INTO provider_data (machine_id, provider)
SELECT id, provider FROM machines;
ALTER TABLE machines DROP COLUMN provider;
