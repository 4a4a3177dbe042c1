-- AvailableMachines on old data: machines without a backoff are available.
SELECT count(*) >= 1
FROM machines AS m
LEFT JOIN backoffs AS b ON b.machine_id = m.id AND b.until > now()
WHERE b.machine_id IS NULL;
SELECT NOT EXISTS (SELECT 1 FROM backoffs WHERE attempts < 1);
