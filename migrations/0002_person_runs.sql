-- One-person runs (`reconcile --user`): the UPN or object ID they were
-- limited to. NULL for whole-tenant runs. Only whole-tenant runs count as
-- "the previous run" for new/persisting/resolved and for the empty-source check.
ALTER TABLE runs ADD COLUMN person TEXT;
