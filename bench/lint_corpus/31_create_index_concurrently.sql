-- Expected: none
CREATE INDEX CONCURRENTLY machines_region_idx ON machines (region);
