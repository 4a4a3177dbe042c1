-- Expected: none
COMMENT ON COLUMN machines.region IS 'cloud region';
GRANT SELECT ON machines TO reporting;
