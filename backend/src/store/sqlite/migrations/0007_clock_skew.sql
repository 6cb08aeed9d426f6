-- Schema version 7: each device's clock skew (its clock minus the backend's, in seconds), as
-- its agent last reported its time (on a process's first check-in and then daily).
ALTER TABLE devices ADD COLUMN clock_skew INTEGER;
