-- Schema version 4: indexes for large fleets (measured with scripts/bench/dashboard.py):
-- devices per group (group tree, moves), devices by name (paged lists), and reports by
-- receipt time (the overview's counts per level, covered by the index).
CREATE INDEX devices_group ON devices(group_path);
CREATE INDEX devices_name ON devices(name, id);
CREATE INDEX reports_received ON reports(received_at, level);
