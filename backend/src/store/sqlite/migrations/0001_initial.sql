-- Apiary SQLite schema, version 1. Times are unix seconds.
CREATE TABLE groups (
    path TEXT PRIMARY KEY
);
INSERT INTO groups (path) VALUES ('/');

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE bootstrap_keys (
    id INTEGER PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    group_path TEXT REFERENCES groups(path),
    auto_accept INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    public_key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    group_path TEXT REFERENCES groups(path),
    facts TEXT NOT NULL,
    remote_ip TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    bootstrap_key_id INTEGER REFERENCES bootstrap_keys(id),
    approved_at INTEGER,
    cert_pem TEXT,
    cert_fingerprint TEXT,
    last_checkin INTEGER,
    agent_version TEXT,
    applied_hash TEXT,
    applied_serial INTEGER,
    applied_commit INTEGER
);
CREATE INDEX devices_status ON devices(status);

CREATE TABLE bundles (
    device_id TEXT NOT NULL REFERENCES devices(id),
    serial INTEGER NOT NULL,
    commit_id INTEGER NOT NULL,
    hash TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    envelope TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, serial)
);
CREATE INDEX bundles_hash ON bundles(device_id, hash);

-- Files referenced by each device's current bundle: what it may download.
CREATE TABLE bundle_files (
    device_id TEXT NOT NULL REFERENCES devices(id),
    sha256 TEXT NOT NULL,
    PRIMARY KEY (device_id, sha256)
);

CREATE TABLE reports (
    id INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices(id),
    queue_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    time INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    level TEXT NOT NULL,
    policy TEXT NOT NULL,
    item TEXT,
    message TEXT NOT NULL,
    output TEXT,
    bundle_serial INTEGER,
    UNIQUE (device_id, queue_id, seq)
);
CREATE INDEX reports_device ON reports(device_id, id);

CREATE TABLE config (
    node TEXT NOT NULL,
    policy TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (node, policy)
);

-- A draft with a NULL body unsets the policy when committed.
CREATE TABLE config_drafts (
    node TEXT NOT NULL,
    policy TEXT NOT NULL,
    body TEXT,
    PRIMARY KEY (node, policy)
);

CREATE TABLE commits (
    id INTEGER PRIMARY KEY,
    author TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    changes TEXT NOT NULL
);

CREATE TABLE files (
    path TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    uploaded_at INTEGER NOT NULL,
    uploaded_by TEXT NOT NULL
);

CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    time INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
