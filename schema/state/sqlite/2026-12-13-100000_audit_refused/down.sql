DROP TABLE audit_refused;
