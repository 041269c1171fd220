-- Moodle's indexes on logstore_standard_log (the 4.1+ log store: three indexes of its own and one
-- per foreign key), and the removal of the (userid, timecreated, id) index that earlier copies of
-- this schema added and Moodle does not have. Written so that it can run again: the demo loader
-- drops these indexes before a bulk load and runs this file after it.
DROP INDEX IF EXISTS {prefix}logsstanlog_usetimid_ix{on_log};
CREATE INDEX IF NOT EXISTS {ix:logsstanlog_tim} ON {prefix}logstore_standard_log (timecreated);
CREATE INDEX IF NOT EXISTS {ix:logsstanlog_couanotim} ON {prefix}logstore_standard_log (courseid, anonymous, timecreated);
CREATE INDEX IF NOT EXISTS {ix:logsstanlog_useconconcruedutim} ON {prefix}logstore_standard_log (userid, contextlevel, contextinstanceid, crud, edulevel, timecreated);
CREATE INDEX IF NOT EXISTS {ix:logsstanlog_con} ON {prefix}logstore_standard_log (contextid);
CREATE INDEX IF NOT EXISTS {ix:logsstanlog_use} ON {prefix}logstore_standard_log (userid);
CREATE INDEX IF NOT EXISTS {ix:logsstanlog_cou} ON {prefix}logstore_standard_log (courseid);
CREATE INDEX IF NOT EXISTS {ix:logsstanlog_rea} ON {prefix}logstore_standard_log (realuserid);
CREATE INDEX IF NOT EXISTS {ix:logsstanlog_rel} ON {prefix}logstore_standard_log (relateduserid);
