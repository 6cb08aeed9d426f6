-- Schema version 3: dashboard operators and their browser sessions.
CREATE TABLE operators (
    username TEXT PRIMARY KEY,
    -- Argon2id PHC string.
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    created_at INTEGER NOT NULL
);
CREATE TABLE sessions (
    -- SHA-256 of the cookie value; the value itself is never stored.
    token_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES operators(username) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_expiry ON sessions(expires_at);
