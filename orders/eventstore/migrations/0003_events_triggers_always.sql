-- 0001's triggers were enabled the default way, which fires them only in the "origin"
-- replication role: a superuser with `SET session_replication_role = replica` (as restore and
-- replication tools do) could update, delete or truncate events. ALWAYS fires them in every
-- role. (The owner can still ALTER TABLE ... DISABLE TRIGGER: that is a deliberate schema
-- change, not an accident.)
ALTER TABLE events ENABLE ALWAYS TRIGGER events_no_update_or_delete;
ALTER TABLE events ENABLE ALWAYS TRIGGER events_no_truncate;
