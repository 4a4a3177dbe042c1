-- Expected: none
ALTER TABLE machines ADD COLUMN rack integer;
ALTER TABLE machines ADD CONSTRAINT machines_rack_positive CHECK (rack > 0);
