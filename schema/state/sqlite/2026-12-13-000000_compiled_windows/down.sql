DROP TABLE compiled_census;
DROP TABLE compiled_blocks;
DROP TABLE compiled_segments;
DROP TABLE compiled_users;
DROP TABLE compiled_meta;

CREATE TABLE compiled_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    settings_key TEXT NOT NULL,
    source_key TEXT NOT NULL,
    high_water BIGINT NOT NULL,
    compiled_at BIGINT NOT NULL
);
-- One row per user with log rows: the sum of their segments, the rows after the last cut
-- (replayed at answer time), and what checks that nothing changed underneath.
CREATE TABLE compiled_users (
    userid BIGINT PRIMARY KEY NOT NULL,
    enrolment_key TEXT NOT NULL,
    raw_rows BIGINT NOT NULL,
    min_id BIGINT,
    max_id BIGINT,
    segments BIGINT NOT NULL,
    first_time BIGINT,
    first_id BIGINT,
    tail_time BIGINT,
    tail_id BIGINT,
    summary BLOB NOT NULL,
    tail BLOB NOT NULL,
    stale BOOLEAN NOT NULL DEFAULT 0
);
-- The rows from one cut to the next, computed once (stats::partial).
CREATE TABLE compiled_segments (
    userid BIGINT NOT NULL,
    first_time BIGINT NOT NULL,
    first_id BIGINT NOT NULL,
    next_time BIGINT NOT NULL,
    next_id BIGINT NOT NULL,
    part BLOB NOT NULL,
    PRIMARY KEY (userid, first_time, first_id)
);
