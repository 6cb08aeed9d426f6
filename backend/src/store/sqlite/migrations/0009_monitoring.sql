-- Inventory: the latest of each kind per device, with the hash the agent gave it, when it
-- last changed and when it last arrived; packages and ports again as rows, for fleet-wide
-- searches.
CREATE TABLE inventory (
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    hash TEXT NOT NULL,
    data TEXT NOT NULL,
    changed_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, kind)
) WITHOUT ROWID;

CREATE TABLE inventory_packages (
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    manager TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    arch TEXT NOT NULL,
    source TEXT
);
CREATE INDEX inventory_packages_by_name ON inventory_packages (name);
CREATE INDEX inventory_packages_by_device ON inventory_packages (device_id);

CREATE TABLE inventory_ports (
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    protocol TEXT NOT NULL,
    address TEXT NOT NULL,
    port INTEGER NOT NULL,
    process TEXT
);
CREATE INDEX inventory_ports_by_port ON inventory_ports (port);
CREATE INDEX inventory_ports_by_device ON inventory_ports (device_id);

-- Metrics: each distinct list of series names a device reported, and its samples as rows of
-- little-endian f32 values in that list's order (NaN for none), raw and per hour.
CREATE TABLE metric_names (
    id INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    names TEXT NOT NULL,
    UNIQUE (device_id, names)
);

CREATE TABLE metric_samples (
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    time INTEGER NOT NULL,
    names_id INTEGER NOT NULL REFERENCES metric_names(id) ON DELETE CASCADE,
    vals BLOB NOT NULL,
    PRIMARY KEY (device_id, time)
) WITHOUT ROWID;
CREATE INDEX metric_samples_by_time ON metric_samples (time);

CREATE TABLE metric_hourly (
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    hour INTEGER NOT NULL,
    names_id INTEGER NOT NULL REFERENCES metric_names(id) ON DELETE CASCADE,
    agg BLOB NOT NULL,
    PRIMARY KEY (device_id, hour, names_id)
) WITHOUT ROWID;
CREATE INDEX metric_hourly_by_hour ON metric_hourly (hour);

-- The names list the device's samples come in now.
ALTER TABLE devices ADD COLUMN metric_names_id INTEGER;
