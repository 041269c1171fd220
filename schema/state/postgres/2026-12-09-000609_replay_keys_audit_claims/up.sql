-- Replay keys outlive a restart and the timestamp window (the timestamp is not signed and
-- RC4 lets anyone rewrite it): a short hash of (peer, signature, wrapped session key).
CREATE TABLE replay_keys (
    key_hash TEXT PRIMARY KEY NOT NULL,      -- hex of the first 16 bytes of a SHA-256
    seen_at BIGINT NOT NULL
);
CREATE INDEX replay_keys_seen_at ON replay_keys (seen_at);

-- Whether the peer, caller and target of an audit row were proven (signature verified, or
-- a valid web-service token) or only claimed. Rows written before this column cannot say,
-- so they count as unverified.
ALTER TABLE audit_log ADD COLUMN verified BOOLEAN NOT NULL DEFAULT FALSE;

-- Peers registered by a stranger's keyswap (mnet.auto_register), counted against
-- limits.auto_register_max_peers.
ALTER TABLE peers ADD COLUMN auto_registered BOOLEAN NOT NULL DEFAULT FALSE;
