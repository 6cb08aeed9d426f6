-- Schema version 6: the overview's counts without scans (measured with
-- scripts/bench/dashboard.py at 100,000 devices and 10 million reports).
-- Reports per hour and level, kept by triggers as reports are stored and deleted, so every
-- way a report comes or goes keeps them true.
CREATE TABLE report_counts (
    hour INTEGER NOT NULL,
    level TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (hour, level)
) WITHOUT ROWID;
INSERT INTO report_counts (hour, level, n)
    SELECT received_at / 3600, level, COUNT(*) FROM reports GROUP BY 1, 2;
CREATE TRIGGER reports_counted AFTER INSERT ON reports BEGIN
    INSERT INTO report_counts (hour, level, n) VALUES (NEW.received_at / 3600, NEW.level, 1)
        ON CONFLICT (hour, level) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER reports_uncounted AFTER DELETE ON reports BEGIN
    UPDATE report_counts SET n = n - 1 WHERE hour = OLD.received_at / 3600 AND level = OLD.level;
END;
-- Devices online (approved and seen since a time) counted from an index, not the table.
CREATE INDEX devices_seen ON devices(status, last_checkin);
DROP INDEX devices_status;
