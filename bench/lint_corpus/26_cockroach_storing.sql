-- Expected: not-analysed
CREATE INDEX machines_region_idx ON machines (region) STORING (hostname);
