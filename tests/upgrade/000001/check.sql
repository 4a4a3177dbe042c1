-- Code of schema 1 reading machines (GetMachine / ListMachines).  A check runs on the
-- data written before its version (step 5) and, after a down to it, on everything
-- written up to then (step 6), so it asserts what must hold for any such data.
SELECT count(*) >= 2 FROM machines;
SELECT NOT EXISTS (SELECT 1 FROM machines WHERE hostname = '' OR provider = '');
