-- Alert rules, the alerts they raise (open until resolved), webhooks, and the deliveries
-- owed to them (an outbox: written with the alert's change, sent and retried by a task).
CREATE TABLE alert_rules (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    -- The rule as JSON: its kind and conditions (see backend/src/alerts/rules.rs).
    spec TEXT NOT NULL,
    -- Devices in this group and below; NULL for the whole fleet.
    scope TEXT,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL
);

CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    rule_id INTEGER NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    -- What within the device fired: a series, a policy, or '' for the device itself.
    subject TEXT NOT NULL,
    message TEXT NOT NULL,
    fired_at INTEGER NOT NULL,
    resolved_at INTEGER
);
CREATE UNIQUE INDEX alerts_open ON alerts (rule_id, device_id, subject) WHERE resolved_at IS NULL;
CREATE INDEX alerts_by_fired ON alerts (fired_at);

CREATE TABLE webhooks (
    id INTEGER PRIMARY KEY,
    url TEXT NOT NULL UNIQUE,
    -- Sealed with the secrets key; NULL when deliveries are not signed.
    secret TEXT,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY,
    webhook_id INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at INTEGER,
    -- Set when the delivery was given up on.
    failed_at INTEGER,
    last_error TEXT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX reports_by_received ON reports (received_at);
