DROP INDEX compiled_dedication_by_start;
DROP TABLE compiled_dedication_block;
ALTER TABLE compiled_dedication_meta DROP COLUMN max_span;
ALTER TABLE compiled_dedication_meta DROP COLUMN live_ignore;
