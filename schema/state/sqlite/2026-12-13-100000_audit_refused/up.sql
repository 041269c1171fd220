-- Requests refused before they were authenticated (a host we do not know, a call that is not
-- encrypted, a signature that does not verify, a keyswap, a made-up web-service token): anyone
-- can send them, so they are counted per (minute, source address, channel, reason) instead of
-- stored one row each (decisions: "Exposure and what strangers may store"). The first few of
-- each count are kept as samples, every field escaped. Verified calls keep their audit_log rows.
CREATE TABLE audit_refused (
    minute BIGINT NOT NULL,                  -- the minute's start, unix time
    remote_addr TEXT NOT NULL,
    channel TEXT NOT NULL,                   -- mnet | ws
    reason TEXT NOT NULL,                    -- the answer's status: `fault 7020`, `ok` (a keyswap), `exception invalidtoken`…
    calls BIGINT NOT NULL,
    bytes_in BIGINT NOT NULL,
    first_time BIGINT NOT NULL,
    last_time BIGINT NOT NULL,
    samples TEXT NOT NULL,                   -- one request a line, its fields escaped
    sampled BIGINT NOT NULL,                 -- lines in samples
    PRIMARY KEY (minute, remote_addr, channel, reason)
);
CREATE INDEX audit_refused_minute ON audit_refused (minute);
