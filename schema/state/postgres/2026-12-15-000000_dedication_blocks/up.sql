-- Dedication summed over blocks of days (docs/engine.md §7.6): per user and variant, for each
-- block of 16^level UTC days (level 0 to 3) holding a session's start, each course's sessions
-- starting there added up, so that a window adds up a few blocks instead of every session.
-- Kept and dropped follow the live rule's ignore limit the blocks were made with (live_ignore);
-- max_span, the longest session stored, bounds the search for a session crossing a window's
-- start. -1 in either: not known, the blocks are not used (the next compile pass rebuilds).
ALTER TABLE compiled_dedication_meta ADD COLUMN live_ignore BIGINT NOT NULL DEFAULT -1;
ALTER TABLE compiled_dedication_meta ADD COLUMN max_span BIGINT NOT NULL DEFAULT -1;
CREATE TABLE compiled_dedication_block (
    userid BIGINT NOT NULL,
    variant INTEGER NOT NULL,
    level INTEGER NOT NULL,
    idx BIGINT NOT NULL,
    sums BYTEA NOT NULL,
    PRIMARY KEY (userid, variant, level, idx)
);
-- A user's sessions of a day, all courses: what a block of level 0 is made from.
CREATE INDEX compiled_dedication_by_start ON compiled_dedication (userid, variant, start_time);
