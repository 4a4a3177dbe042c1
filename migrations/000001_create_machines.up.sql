-- compat: live
-- note: Initial inventory: one row per machine.
CREATE TABLE machines (
    id         bigserial PRIMARY KEY,
    hostname   text        NOT NULL UNIQUE,
    provider   text        NOT NULL,
    region     text,
    created_at timestamptz NOT NULL DEFAULT now()
);
