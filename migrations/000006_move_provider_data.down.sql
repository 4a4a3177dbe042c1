ALTER TABLE machines ADD COLUMN provider text;
UPDATE machines AS m
   SET provider = p.provider
  FROM provider_data AS p
 WHERE p.machine_id = m.id;
UPDATE machines SET provider = 'unknown' WHERE provider IS NULL;
ALTER TABLE machines ALTER COLUMN provider SET NOT NULL;
DROP TABLE provider_data;
