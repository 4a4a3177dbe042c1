-- Expected: drop-enum-value
DELETE FROM pg_enum
 WHERE enumlabel = 'failed'
   AND enumtypid = 'work_state'::regtype;
