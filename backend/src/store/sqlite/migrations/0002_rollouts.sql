-- Schema version 2: rollout tracking, one row per commit and device it gave a new bundle.
CREATE TABLE rollouts (
    commit_id INTEGER NOT NULL,
    device_id TEXT NOT NULL REFERENCES devices(id),
    serial INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'converged', 'failed', 'superseded')),
    -- JSON array of the policies that reported errors for this bundle.
    failed_policies TEXT NOT NULL DEFAULT '[]',
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (commit_id, device_id)
);
CREATE INDEX rollouts_device ON rollouts(device_id, state);
