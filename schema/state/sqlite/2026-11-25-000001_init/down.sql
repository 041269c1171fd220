DROP TABLE audit_log;
DROP TABLE ws_tokens;
DROP TABLE grants;
DROP TABLE own_keys;
DROP TABLE peer_services;
DROP TABLE peer_certificates;
DROP TABLE peers;
