//! The SQLite schema, as numbered migrations applied in order when the store opens.
//! Migration `n` (1-based, `migrations/000n_*.sql`) brings the database to version `n`,
//! kept in SQLite's `user_version`.

use std::path::Path;

use rusqlite::Connection;

use crate::store::StoreError;

/// Schema migrations in order.
pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_rollouts.sql"),
    include_str!("migrations/0003_operators.sql"),
    include_str!("migrations/0004_fleet_indexes.sql"),
    include_str!("migrations/0005_pending_per_key.sql"),
    include_str!("migrations/0006_fleet_counts.sql"),
    include_str!("migrations/0007_clock_skew.sql"),
    include_str!("migrations/0008_cert_renewal.sql"),
    include_str!("migrations/0009_monitoring.sql"),
    include_str!("migrations/0010_alerts.sql"),
];

/// The version this backend brings databases to.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database at `path` up to [`SCHEMA_VERSION`]; refuses a newer one.
pub fn apply(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if !(0..=SCHEMA_VERSION).contains(&version) {
        return Err(StoreError::Schema {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    // Each migration and its version bump commit together, so a crash leaves a version
    // that matches the tables.
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        conn.execute_batch(&format!(
            "BEGIN; {migration} PRAGMA user_version = {}; COMMIT;",
            i + 1
        ))?;
    }
    Ok(())
}
