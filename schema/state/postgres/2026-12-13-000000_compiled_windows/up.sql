-- The compiled store, second layout (docs/engine.md §7): segments keep their rows, so an answer
-- cuts a window's edges from the store; blocks of 16, 256, 4096 and 65536 segments are summed
-- ahead, so a window's interior costs a few dozen sums whatever its length; a census of the
-- log's ids finds deleted rows once per pass. The store is a cache: it is dropped and rebuilt
-- from the log by the next compile pass.
DROP TABLE compiled_segments;
DROP TABLE compiled_users;
DROP TABLE compiled_meta;
-- pass_from / pass_target: the id range of the pass from scratch under way (0 / 0 when none),
-- for progress reports. census_at: when the last census of the log ran; census_mark: what the
-- cheap check before a census read then (PostgreSQL: the log's deleted and updated tuples).
CREATE TABLE compiled_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    settings_key TEXT NOT NULL,
    source_key TEXT NOT NULL,
    high_water BIGINT NOT NULL,
    compiled_at BIGINT NOT NULL,
    pass_from BIGINT NOT NULL DEFAULT 0,
    pass_target BIGINT NOT NULL DEFAULT 0,
    census_at BIGINT NOT NULL DEFAULT 0,
    census_mark BIGINT NOT NULL DEFAULT -1
);
-- One row per user with log rows: the sum of their segments, the rows after the last cut, the
-- blocks being filled, and what checks that nothing changed underneath.
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
    summary BYTEA NOT NULL,
    tail BYTEA NOT NULL,
    open_blocks BYTEA NOT NULL,
    stale BOOLEAN NOT NULL DEFAULT FALSE
);
-- The rows from one cut to the next (stats::partial), numbered from 0 per user: their sum and
-- their rows (compiled::rows). login: the first row is a login.
CREATE TABLE compiled_segments (
    userid BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    first_time BIGINT NOT NULL,
    first_id BIGINT NOT NULL,
    next_time BIGINT NOT NULL,
    next_id BIGINT NOT NULL,
    login BOOLEAN NOT NULL,
    part BYTEA NOT NULL,
    row_data BYTEA NOT NULL,
    PRIMARY KEY (userid, seq)
);
CREATE INDEX compiled_segments_first ON compiled_segments (userid, first_time, first_id);
-- Sums of whole blocks of segments: level l, index i covers segments [i * 16^l, (i + 1) * 16^l).
CREATE TABLE compiled_blocks (
    userid BIGINT NOT NULL,
    level INTEGER NOT NULL,
    idx BIGINT NOT NULL,
    part BYTEA NOT NULL,
    PRIMARY KEY (userid, level, idx)
);
-- Per range of 65 536 log ids up to the high-water mark: how many rows it held when compiled,
-- and each row's id, user and time (compiled::census).
CREATE TABLE compiled_census (
    bucket BIGINT PRIMARY KEY NOT NULL,
    total BIGINT NOT NULL,
    row_data BYTEA NOT NULL
);
