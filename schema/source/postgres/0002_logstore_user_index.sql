-- The per-user scan reads one user's window ordered by (timecreated, id); this index serves it
-- without a sort. The demo generator drops it before a bulk load and runs this file again after.
CREATE INDEX IF NOT EXISTS {prefix}logsstanlog_usetimid_ix ON {prefix}logstore_standard_log (userid, timecreated, id);
