# Sourced (not executed: mode 0644, so docker_process_sql is defined) by the mariadb
# image's entrypoint on its first start (examples/compose.yaml): an account that can only
# SELECT from Moodle's database, for usestats' [source].
docker_process_sql --database=mysql <<SQL
CREATE USER IF NOT EXISTS 'usestats_ro'@'%' IDENTIFIED BY '${USESTATS_RO_PASSWORD}';
GRANT SELECT ON \`${MARIADB_DATABASE}\`.* TO 'usestats_ro'@'%';
SQL
