-- Expected: none
CREATE TABLE racks (
    id      bigserial PRIMARY KEY,
    room    text   NOT NULL,
    machine bigint NOT NULL REFERENCES machines (id)
);
CREATE INDEX racks_room_idx ON racks (room);
ALTER TABLE racks ADD CONSTRAINT racks_room_len CHECK (length(room) > 0);
