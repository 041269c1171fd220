-- Dedication in the compiled store (docs/engine.md §7.6): per user, estimator variant and
-- course, the sessions of the whole log under the session limit the store was compiled with,
-- each with its rows' (time, id), so an answer trims the sessions at a window's edges and
-- merges rows logged since. The store is a cache, rebuilt from the log when in doubt.
CREATE TABLE compiled_dedication_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    source_key TEXT NOT NULL,
    high_water BIGINT NOT NULL,
    live_limit BIGINT NOT NULL,
    legacy_limit BIGINT NOT NULL
);
-- variant: 0 dedication (4.x live), 1 dedication.legacy. days: distinct UTC days of its rows.
CREATE TABLE compiled_dedication (
    userid BIGINT NOT NULL,
    variant INTEGER NOT NULL,
    course BIGINT NOT NULL,
    start_time BIGINT NOT NULL,
    first_id BIGINT NOT NULL,
    end_time BIGINT NOT NULL,
    row_count BIGINT NOT NULL,
    days BIGINT NOT NULL,
    row_data BYTEA NOT NULL,
    PRIMARY KEY (userid, variant, course, start_time, first_id)
);
