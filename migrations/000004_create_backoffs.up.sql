-- compat: live
-- note: Backoffs keep a failing machine out of rotation until a deadline.
CREATE TABLE backoffs (
    machine_id bigint      PRIMARY KEY REFERENCES machines (id) ON DELETE CASCADE,
    until      timestamptz NOT NULL,
    reason     text        NOT NULL,
    attempts   integer     NOT NULL DEFAULT 1
);
