DROP TABLE work_items;
DROP TYPE work_state;
