DROP TABLE compiled_dedication;
DROP TABLE compiled_dedication_meta;
