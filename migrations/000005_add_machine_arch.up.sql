-- compat: live
-- note: machines.arch, defaulting to x86_64; old code that omits it keeps inserting.
ALTER TABLE machines ADD COLUMN arch text NOT NULL DEFAULT 'x86_64';
