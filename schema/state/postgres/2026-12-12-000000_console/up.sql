-- The console (docs/console.md): people who may log in, and their sessions. Kept in the state
-- database so that several instances share them.
CREATE TABLE console_users (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,             -- argon2id, PHC string
    created_at BIGINT NOT NULL,
    last_login_at BIGINT
);
CREATE TABLE console_sessions (
    token_hash TEXT PRIMARY KEY NOT NULL,    -- SHA-256 of the cookie's token, hex
    user_id BIGINT NOT NULL REFERENCES console_users (id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,                      -- the forms' token of this session
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
