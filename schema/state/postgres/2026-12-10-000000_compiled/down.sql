DROP TABLE compiled_segments;
DROP TABLE compiled_users;
DROP TABLE compiled_meta;
