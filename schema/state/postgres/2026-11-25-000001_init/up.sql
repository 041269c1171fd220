-- usestats state database (PostgreSQL). Our own tables only; Moodle's tables live in the source.
CREATE TABLE peers (
    id BIGSERIAL PRIMARY KEY,
    wwwroot TEXT NOT NULL UNIQUE,            -- normalised (D13); '' is the All Hosts row
    name TEXT NOT NULL,
    application TEXT NOT NULL DEFAULT 'moodle',
    public_key TEXT NOT NULL DEFAULT '',     -- the peer's certificate, canonical PEM
    public_key_expires BIGINT NOT NULL DEFAULT 0,
    ssl_verification INTEGER NOT NULL DEFAULT 2,
    deleted BOOLEAN NOT NULL DEFAULT FALSE,
    last_connect_time BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    last_error_time BIGINT,
    clock_offset BIGINT,
    connect_timeout_ms BIGINT,
    request_timeout_ms BIGINT,
    created_at BIGINT NOT NULL DEFAULT 0
);
INSERT INTO peers (wwwroot, name, application) VALUES ('', 'All Hosts', 'moodle');

CREATE TABLE peer_certificates (
    id BIGSERIAL PRIMARY KEY,
    peer_id BIGINT NOT NULL REFERENCES peers(id),
    public_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    expires BIGINT NOT NULL,
    retired_at BIGINT NOT NULL
);
CREATE INDEX peer_certificates_peer ON peer_certificates (peer_id, retired_at);

CREATE TABLE peer_services (
    peer_id BIGINT NOT NULL REFERENCES peers(id),
    service TEXT NOT NULL,
    publish BOOLEAN NOT NULL DEFAULT FALSE,
    subscribe BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (peer_id, service)
);

CREATE TABLE own_keys (
    fingerprint TEXT PRIMARY KEY NOT NULL,
    created_at BIGINT NOT NULL,
    expires BIGINT NOT NULL,
    archived_at BIGINT
);

CREATE TABLE grants (
    id BIGSERIAL PRIMARY KEY,
    home_wwwroot TEXT NOT NULL,
    username TEXT NOT NULL,                  -- '*' = everybody from that host
    site BOOLEAN NOT NULL DEFAULT FALSE,
    course BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    UNIQUE (home_wwwroot, username)
);

CREATE TABLE ws_tokens (
    id BIGSERIAL PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,         -- SHA-256 hex; the token itself is never stored
    token_prefix TEXT NOT NULL,              -- first characters, to tell tokens apart in listings
    grant_id BIGINT NOT NULL REFERENCES grants(id),
    label TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    allowed_ips TEXT NOT NULL DEFAULT '',    -- comma-separated CIDR ranges; empty = any
    last_used_at BIGINT,
    revoked BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    time BIGINT NOT NULL,
    channel TEXT NOT NULL,                   -- mnet | ws
    peer TEXT NOT NULL DEFAULT '',
    remote_addr TEXT NOT NULL DEFAULT '',
    method TEXT NOT NULL DEFAULT '',
    caller TEXT NOT NULL DEFAULT '',
    target TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    latency_ms BIGINT NOT NULL,
    bytes_in BIGINT NOT NULL,
    bytes_out BIGINT NOT NULL
);
CREATE INDEX audit_log_time ON audit_log (time);
CREATE INDEX audit_log_peer ON audit_log (peer, time);
