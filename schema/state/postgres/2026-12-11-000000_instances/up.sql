-- Several instances on one state (docs/instances.md). Our key pairs live here when the state
-- is shared, so every instance signs and opens with the same ones; the private key is sealed
-- under a key-encryption key that never enters the database.
CREATE TABLE shared_keys (
    fingerprint TEXT PRIMARY KEY NOT NULL,   -- SHA-1 of the certificate (DER), hex
    is_current BOOLEAN NOT NULL DEFAULT FALSE,
    not_before BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    cert_pem TEXT NOT NULL,
    key_sealed BYTEA NOT NULL,               -- AES-256-GCM: nonce (12) | ciphertext | tag (16)
    kek_id TEXT NOT NULL,                    -- which key-encryption key sealed it
    created_at BIGINT NOT NULL,
    archived_at BIGINT
);
-- At most one current key pair, whatever two instances race to write.
CREATE UNIQUE INDEX shared_keys_one_current ON shared_keys (is_current) WHERE is_current;

-- Every running instance writes its row every few seconds, so operators (doctor, /metrics)
-- see who serves this state, with which version and which key.
CREATE TABLE instances (
    id TEXT PRIMARY KEY NOT NULL,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    version TEXT NOT NULL,
    listen TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    seen_at BIGINT NOT NULL
);
CREATE INDEX instances_seen_at ON instances (seen_at);
