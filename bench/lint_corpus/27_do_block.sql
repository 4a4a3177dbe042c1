-- Expected: not-analysed
DO $$
BEGIN
    EXECUTE 'ALTER TABLE machines DROP COLUMN region';
END
$$;
