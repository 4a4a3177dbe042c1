-- compat: live
-- note: Sessions record who held a machine and when.
CREATE TABLE sessions (
    id         bigserial PRIMARY KEY,
    machine_id bigint      NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    user_name  text        NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    ended_at   timestamptz
);
CREATE INDEX sessions_machine_id_idx ON sessions (machine_id);
