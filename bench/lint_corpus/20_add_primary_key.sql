-- Expected: add-constraint, constraint-validates-rows
ALTER TABLE provider_data ADD PRIMARY KEY (machine_id);
