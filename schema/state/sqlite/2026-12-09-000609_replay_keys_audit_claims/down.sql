ALTER TABLE peers DROP COLUMN auto_registered;
ALTER TABLE audit_log DROP COLUMN verified;
DROP TABLE replay_keys;
