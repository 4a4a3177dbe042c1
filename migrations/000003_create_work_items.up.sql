-- compat: live
-- note: Work items queue per session; new enum work_state.
CREATE TYPE work_state AS ENUM ('queued', 'running', 'done', 'failed');
CREATE TABLE work_items (
    id         bigserial PRIMARY KEY,
    session_id bigint REFERENCES sessions (id) ON DELETE SET NULL,
    state      work_state  NOT NULL DEFAULT 'queued',
    payload    jsonb       NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX work_items_state_idx ON work_items (state);
