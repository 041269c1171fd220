DROP TABLE instances;
DROP TABLE shared_keys;
