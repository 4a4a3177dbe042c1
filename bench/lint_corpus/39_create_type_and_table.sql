-- Expected: none
CREATE TYPE rack_kind AS ENUM ('open', 'closed');
CREATE TABLE racks (id bigserial PRIMARY KEY, kind rack_kind NOT NULL DEFAULT 'open');
ALTER TABLE racks ALTER COLUMN kind TYPE text;
DROP TABLE racks;
DROP TYPE rack_kind;
