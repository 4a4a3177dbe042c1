-- Expected: index-not-concurrent
CREATE INDEX machines_region_idx ON machines (region);
