-- Expected: not-analysed
CREATE TABLE racks (
    id   STRING PRIMARY KEY,
    room STRING NOT NULL,
    INDEX racks_room_idx (room)
);
