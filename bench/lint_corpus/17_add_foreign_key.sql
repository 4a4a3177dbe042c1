-- Expected: add-constraint, constraint-validates-rows
ALTER TABLE work_items
    ADD CONSTRAINT work_items_session_fk FOREIGN KEY (session_id) REFERENCES sessions (id);
