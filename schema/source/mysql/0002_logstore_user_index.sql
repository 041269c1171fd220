-- The per-user scan reads one user's window ordered by (timecreated, id); this index serves it
-- without a sort. MariaDB takes IF NOT EXISTS here; MySQL 8 does not, and a real Moodle database
-- is never migrated by usestats anyway.
CREATE INDEX IF NOT EXISTS {prefix}logsstanlog_usetimid_ix ON {prefix}logstore_standard_log (userid, timecreated, id);
