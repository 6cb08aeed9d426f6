-- Schema version 5: pending enrolments counted per bootstrap key and expired by age.
CREATE INDEX devices_pending ON devices(bootstrap_key_id, requested_at) WHERE status = 'pending';
