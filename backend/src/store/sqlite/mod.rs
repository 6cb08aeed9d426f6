//! The embedded SQLite store (WAL mode, one connection, queries run off the async runtime).

use std::path::Path;
use std::sync::{Arc, Mutex};

use apiary_proto::device_api::{HostFacts, Level, Report};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::checkin_cache::{CheckinCache, CheckinState, RecordedCheckin};
use super::*;

mod alerts;
mod fleet_view;
mod migrations;
mod monitoring;
mod operators;

/// [`Store`] on an SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    checkins: Arc<CheckinCache>,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(Box::new(e))
    }
}

impl SqliteStore {
    /// Opens (creating if `create`) the database and brings its schema up to date.
    pub fn open(path: &Path, create: bool) -> Result<Self, StoreError> {
        use rusqlite::OpenFlags;
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let conn = Connection::open_with_flags(path, flags).map_err(|e| StoreError::Open {
            path: path.to_path_buf(),
            source: Box::new(e),
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // 64 MiB of page cache (the default is 2 MiB): the once-a-second write of idle
        // check-in times touches rows all over the devices table.
        conn.pragma_update(None, "cache_size", -65536)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrations::apply(&conn, path)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            checkins: Arc::default(),
        })
    }

    async fn with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| {
                StoreError::Worker("an earlier query panicked holding the connection".into())
            })?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Worker(Box::new(e)))?
    }
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("store values serialise infallibly")
}

fn parse_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what: what.to_string(),
        source: Box::new(e),
    })
}

/// Columns read by [`report_row`], in order.
const REPORT_COLUMNS: &str =
    "seq, time, received_at, level, policy, item, message, output, bundle_serial";

fn report_row(r: &Row<'_>) -> rusqlite::Result<StoredReport> {
    let level: String = r.get(3)?;
    Ok(StoredReport {
        seq: r.get::<_, i64>(0)? as u64,
        time: r.get::<_, i64>(1)? as u64,
        received_at: r.get(2)?,
        level: Level::parse(&level).unwrap_or(Level::Error),
        policy: r.get(4)?,
        item: r.get(5)?,
        message: r.get(6)?,
        output: r.get(7)?,
        bundle_serial: r.get::<_, Option<i64>>(8)?.map(|s| s as u64),
    })
}

const DEVICE_COLUMNS: &str = "id, name, status, group_path, facts, remote_ip, requested_at, approved_at, \
     last_checkin, agent_version, applied_hash, applied_serial, applied_commit, public_key, cert_pem, cert_fingerprint, \
     clock_skew";

fn device_row(row: &Row<'_>) -> rusqlite::Result<(Device, String)> {
    let status: String = row.get(2)?;
    let facts: String = row.get(4)?;
    Ok((
        Device {
            id: row.get(0)?,
            name: row.get(1)?,
            status: DeviceStatus::parse(&status).unwrap_or(DeviceStatus::Pending),
            group: row.get(3)?,
            facts: HostFacts::default(),
            remote_ip: row.get(5)?,
            requested_at: row.get(6)?,
            approved_at: row.get(7)?,
            last_checkin: row.get(8)?,
            agent_version: row.get(9)?,
            clock_skew: row.get(16)?,
            applied_hash: row.get(10)?,
            applied_serial: row.get::<_, Option<i64>>(11)?.map(|s| s as u64),
            applied_commit: row.get(12)?,
            public_key: row.get(13)?,
            cert_pem: row.get(14)?,
            cert_fingerprint: row.get(15)?,
        },
        facts,
    ))
}

fn finish_device((mut device, facts): (Device, String)) -> Result<Device, StoreError> {
    device.facts = parse_json(&facts, "device facts")?;
    Ok(device)
}

fn key_row(row: &Row<'_>) -> rusqlite::Result<BootstrapKey> {
    Ok(BootstrapKey {
        id: row.get(0)?,
        group: row.get(1)?,
        auto_accept: row.get(2)?,
        created_at: row.get(3)?,
        created_by: row.get(4)?,
        revoked_at: row.get(5)?,
    })
}

const KEY_COLUMNS: &str = "id, group_path, auto_accept, created_at, created_by, revoked_at";

fn bundle_row(row: &Row<'_>) -> rusqlite::Result<StoredBundle> {
    Ok(StoredBundle {
        device_id: row.get(0)?,
        serial: row.get::<_, i64>(1)? as u64,
        commit_id: row.get(2)?,
        hash: row.get(3)?,
        content_hash: row.get(4)?,
        envelope: row.get(5)?,
        created_at: row.get(6)?,
        files: Vec::new(),
    })
}

fn commit_row(row: &Row<'_>) -> rusqlite::Result<(Commit, String)> {
    Ok((
        Commit {
            id: row.get(0)?,
            author: row.get(1)?,
            message: row.get(2)?,
            created_at: row.get(3)?,
            changes: Vec::new(),
        },
        row.get(4)?,
    ))
}

fn file_row(row: &Row<'_>) -> rusqlite::Result<FileEntry> {
    Ok(FileEntry {
        path: row.get(0)?,
        sha256: row.get(1)?,
        size: row.get::<_, i64>(2)? as u64,
        uploaded_at: row.get(3)?,
        uploaded_by: row.get(4)?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn ensure_group(&self, path: &str) -> Result<(), StoreError> {
        let lineage = crate::config::node::lineage(path);
        self.with(move |c| {
            let tx = c.transaction()?;
            for p in lineage {
                tx.execute("INSERT OR IGNORE INTO groups (path) VALUES (?1)", [p])?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn group_exists(&self, path: &str) -> Result<bool, StoreError> {
        let path = path.to_string();
        self.with(move |c| {
            Ok(
                c.query_row("SELECT 1 FROM groups WHERE path = ?1", [path], |_| Ok(()))
                    .optional()?
                    .is_some(),
            )
        })
        .await
    }

    async fn list_groups(&self) -> Result<Vec<GroupInfo>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT g.path, (SELECT COUNT(*) FROM devices d WHERE d.group_path = g.path)
                 FROM groups g ORDER BY g.path",
            )?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(GroupInfo {
                        path: r.get(0)?,
                        devices: r.get::<_, i64>(1)? as u64,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn rename_group(&self, from: &str, to: &str) -> Result<(), StoreError> {
        let (from, to) = (from.to_string(), to.to_string());
        self.with(move |c| {
            if from == "/" {
                return Err(StoreError::Conflict(
                    "the root group / cannot be renamed or moved".into(),
                ));
            }
            if to == from || to.starts_with(&format!("{from}/")) {
                return Err(StoreError::Conflict(format!(
                    "group {from} cannot move into itself ({to})"
                )));
            }
            let tx = c.transaction()?;
            let exists = |p: &str| -> rusqlite::Result<bool> {
                Ok(tx
                    .query_row("SELECT 1 FROM groups WHERE path = ?1", [p], |_| Ok(()))
                    .optional()?
                    .is_some())
            };
            if !exists(&from)? {
                return Err(StoreError::NotFound(format!("no group {from}")));
            }
            if exists(&to)? {
                return Err(StoreError::Conflict(format!("group {to} already exists")));
            }
            let parent = crate::config::node::parent(&to);
            if !exists(&parent)? {
                return Err(StoreError::Conflict(format!(
                    "parent group {parent} of {to} does not exist"
                )));
            }
            // Parents and children change together; check references at commit, not per row.
            tx.pragma_update(None, "defer_foreign_keys", true)?;
            // Prefix tests, not LIKE: '_' in a group name is a LIKE wildcard.
            let subtree = |column: &str| {
                format!("{column} = ?1 OR substr({column}, 1, length(?1) + 1) = ?1 || '/'")
            };
            let moved = |column: &str| format!("?2 || substr({column}, length(?1) + 1)");
            for (table, column) in [
                ("groups", "path"),
                ("devices", "group_path"),
                ("bootstrap_keys", "group_path"),
                ("config", "node"),
                ("config_drafts", "node"),
            ] {
                tx.execute(
                    &format!(
                        "UPDATE {table} SET {column} = {} WHERE {}",
                        moved(column),
                        subtree(column)
                    ),
                    params![from, to],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn delete_group(&self, path: &str) -> Result<(), StoreError> {
        let path = path.to_string();
        self.with(move |c| {
            if path == "/" {
                return Err(StoreError::Conflict(
                    "the root group / cannot be deleted".into(),
                ));
            }
            let tx = c.transaction()?;
            let count =
                |sql: &str| -> rusqlite::Result<i64> { tx.query_row(sql, [&path], |r| r.get(0)) };
            if count("SELECT COUNT(*) FROM groups WHERE path = ?1")? == 0 {
                return Err(StoreError::NotFound(format!("no group {path}")));
            }
            if count(
                "SELECT COUNT(*) FROM groups WHERE substr(path, 1, length(?1) + 1) = ?1 || '/'",
            )? > 0
            {
                return Err(StoreError::Conflict(format!(
                    "group {path} has subgroups; only empty groups can be deleted"
                )));
            }
            let devices = count("SELECT COUNT(*) FROM devices WHERE group_path = ?1")?;
            if devices > 0 {
                return Err(StoreError::Conflict(format!(
                    "group {path} has {devices} device(s); only empty groups can be deleted"
                )));
            }
            let keys = count(
                "SELECT COUNT(*) FROM bootstrap_keys WHERE group_path = ?1 AND revoked_at IS NULL",
            )?;
            if keys > 0 {
                return Err(StoreError::Conflict(format!(
                    "bootstrap key(s) still enrol devices into {path}; revoke them first"
                )));
            }
            tx.execute(
                "UPDATE bootstrap_keys SET group_path = NULL WHERE group_path = ?1",
                [&path],
            )?;
            tx.execute("DELETE FROM config WHERE node = ?1", [&path])?;
            tx.execute("DELETE FROM config_drafts WHERE node = ?1", [&path])?;
            tx.execute("DELETE FROM groups WHERE path = ?1", [&path])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn move_device(&self, id: &str, group: Option<&str>) -> Result<(), StoreError> {
        let (id, group) = (id.to_string(), group.map(str::to_string));
        self.with(move |c| {
            let n = c
                .execute(
                    "UPDATE devices SET group_path = ?2 WHERE id = ?1",
                    params![id, group],
                )
                .map_err(|e| match e {
                    rusqlite::Error::SqliteFailure(f, _)
                        if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                    {
                        StoreError::NotFound(format!(
                            "no group {}",
                            group.as_deref().unwrap_or("?")
                        ))
                    }
                    other => other.into(),
                })?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("no device {id}")));
            }
            Ok(())
        })
        .await
    }

    async fn insert_token(
        &self,
        name: &str,
        hash: &str,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        let (name, hash) = (name.to_string(), hash.to_string());
        self.with(move |c| {
            c.execute(
                "INSERT INTO api_tokens (name, hash, created_at) VALUES (?1, ?2, ?3)",
                params![name, hash, now],
            )?;
            Ok(c.last_insert_rowid())
        })
        .await
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>, StoreError> {
        let hash = hash.to_string();
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT id, name FROM api_tokens WHERE hash = ?1",
                [hash],
                |r| {
                    Ok(ApiToken {
                        id: r.get(0)?,
                        name: r.get(1)?,
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    async fn insert_bootstrap_key(
        &self,
        hash: &str,
        group: Option<&str>,
        auto_accept: bool,
        created_by: &str,
        now: Timestamp,
    ) -> Result<BootstrapKey, StoreError> {
        let (hash, group, created_by) = (
            hash.to_string(),
            group.map(str::to_string),
            created_by.to_string(),
        );
        self.with(move |c| {
            c.execute(
                "INSERT INTO bootstrap_keys (hash, group_path, auto_accept, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![hash, group, auto_accept, now, created_by],
            )?;
            let id = c.last_insert_rowid();
            Ok(c.query_row(&format!("SELECT {KEY_COLUMNS} FROM bootstrap_keys WHERE id = ?1"), [id], key_row)?)
        })
        .await
    }

    async fn list_bootstrap_keys(&self) -> Result<Vec<BootstrapKey>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {KEY_COLUMNS} FROM bootstrap_keys ORDER BY id"
            ))?;
            let rows = stmt
                .query_map([], key_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn bootstrap_key_by_hash(&self, hash: &str) -> Result<Option<BootstrapKey>, StoreError> {
        let hash = hash.to_string();
        self.with(move |c| {
            Ok(c.query_row(
                &format!("SELECT {KEY_COLUMNS} FROM bootstrap_keys WHERE hash = ?1"),
                [hash],
                key_row,
            )
            .optional()?)
        })
        .await
    }

    async fn revoke_bootstrap_key(&self, id: i64, now: Timestamp) -> Result<bool, StoreError> {
        self.with(move |c| {
            let n = c.execute(
                "UPDATE bootstrap_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
                params![id, now],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn enroll_device(&self, d: NewDevice) -> Result<Enrolment, StoreError> {
        let cache = self.checkins.clone();
        self.with(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "DELETE FROM devices WHERE status = 'pending' AND requested_at < ?1",
                [d.pending_since],
            )?;
            let status: Option<String> = tx
                .query_row("SELECT status FROM devices WHERE id = ?1", [&d.id], |r| r.get(0))
                .optional()?;
            match status.as_deref() {
                None => {
                    let pending: i64 = tx.query_row(
                        "SELECT count(*) FROM devices WHERE status = 'pending' AND bootstrap_key_id = ?1",
                        [d.bootstrap_key_id],
                        |r| r.get(0),
                    )?;
                    let pending = pending as u64;
                    if pending >= d.max_pending_per_key {
                        return Ok(Enrolment::KeyFull { pending });
                    }
                    tx.execute(
                        "INSERT INTO devices (id, name, public_key, status, group_path, facts, remote_ip, requested_at, bootstrap_key_id)
                         VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?7, ?8)",
                        params![d.id, d.name, d.public_key, d.group, json(&d.facts), d.remote_ip, d.requested_at, d.bootstrap_key_id],
                    )?;
                }
                // Asking again keeps a pending request alive and its facts current.
                Some("pending") => {
                    tx.execute(
                        "UPDATE devices SET facts = ?2, remote_ip = ?3, requested_at = ?4 WHERE id = ?1",
                        params![d.id, json(&d.facts), d.remote_ip, d.requested_at],
                    )?;
                }
                Some(_) => {}
            }
            let row = tx.query_row(&format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1"), [&d.id], device_row)?;
            tx.commit()?;
            cache.invalidate(&d.id);
            finish_device(row).map(|d| Enrolment::Recorded(Box::new(d)))
        })
        .await
    }

    async fn device(&self, id: &str) -> Result<Option<Device>, StoreError> {
        let id = id.to_string();
        self.with(move |c| {
            c.query_row(
                &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1"),
                [id],
                device_row,
            )
            .optional()?
            .map(finish_device)
            .transpose()
        })
        .await
    }

    async fn list_devices(&self, status: Option<DeviceStatus>) -> Result<Vec<Device>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices WHERE ?1 IS NULL OR status = ?1 ORDER BY name, id"
            ))?;
            let rows = stmt
                .query_map([status.map(DeviceStatus::as_str)], device_row)?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(finish_device).collect()
        })
        .await
    }

    async fn approve_device(
        &self,
        id: &str,
        cert_pem: &str,
        fingerprint: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let (id, cert_pem, fingerprint) = (
            id.to_string(),
            cert_pem.to_string(),
            fingerprint.to_string(),
        );
        let cache = self.checkins.clone();
        self.with(move |c| {
            c.execute(
                "UPDATE devices SET status = 'approved', cert_pem = ?2, cert_fingerprint = ?3, approved_at = ?4 WHERE id = ?1",
                params![id, cert_pem, fingerprint, now],
            )?;
            cache.invalidate(&id);
            Ok(())
        })
        .await
    }

    async fn renew_certificate(
        &self,
        id: &str,
        cert_pem: &str,
        fingerprint: &str,
    ) -> Result<bool, StoreError> {
        let (id, cert_pem, fingerprint) = (
            id.to_string(),
            cert_pem.to_string(),
            fingerprint.to_string(),
        );
        let cache = self.checkins.clone();
        self.with(move |c| {
            // The previous one stays only if the device never used the one it replaces.
            let changed = c.execute(
                "UPDATE devices SET prev_cert_fingerprint = COALESCE(prev_cert_fingerprint, cert_fingerprint),
                     cert_pem = ?2, cert_fingerprint = ?3
                 WHERE id = ?1 AND status = 'approved'",
                params![id, cert_pem, fingerprint],
            )?;
            cache.invalidate(&id);
            Ok(changed == 1)
        })
        .await
    }

    async fn forget_previous_certificate(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_string();
        let cache = self.checkins.clone();
        self.with(move |c| {
            c.execute(
                "UPDATE devices SET prev_cert_fingerprint = NULL WHERE id = ?1",
                [&id],
            )?;
            cache.invalidate(&id);
            Ok(())
        })
        .await
    }

    async fn reject_device(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_string();
        let cache = self.checkins.clone();
        self.with(move |c| {
            c.execute(
                "UPDATE devices SET status = 'rejected', cert_pem = NULL, cert_fingerprint = NULL,
                     prev_cert_fingerprint = NULL WHERE id = ?1",
                [&id],
            )?;
            cache.invalidate(&id);
            Ok(())
        })
        .await
    }

    async fn delete_device(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        let cache = self.checkins.clone();
        self.with(move |c| {
            let tx = c.transaction()?;
            for table in ["bundle_files", "bundles", "reports", "rollouts"] {
                tx.execute(&format!("DELETE FROM {table} WHERE device_id = ?1"), [&id])?;
            }
            let deleted = tx.execute("DELETE FROM devices WHERE id = ?1", [&id])? > 0;
            tx.commit()?;
            cache.invalidate(&id);
            Ok(deleted)
        })
        .await
    }

    async fn record_checkin(
        &self,
        id: &str,
        now: Timestamp,
        checkin: CheckinRecord,
    ) -> Result<(), StoreError> {
        let id = id.to_string();
        let CheckinRecord {
            agent_version,
            applied_hash,
            remote_ip,
            network,
            clock_skew,
            outcome,
        } = checkin;
        let network = network.as_ref().map(json);
        let recorded = remote_ip.parse().ok().map(|ip| RecordedCheckin {
            applied_hash: applied_hash.clone(),
            remote_ip: ip,
            settled: outcome.errors.is_empty() && outcome.refused.is_empty(),
        });
        let cache = self.checkins.clone();
        self.with(move |c| {
            let tx = c.transaction()?;
            let applied = match &applied_hash {
                Some(h) => bundle_by_hash(&tx, &id, h)?,
                None => None,
            };
            tx.execute(
                "UPDATE devices SET last_checkin = ?2, agent_version = COALESCE(?3, agent_version),
                     applied_hash = ?4, applied_serial = ?5, applied_commit = ?6, remote_ip = ?8,
                     facts = CASE WHEN ?7 IS NULL THEN facts ELSE json_set(facts, '$.network', json(?7)) END,
                     clock_skew = COALESCE(?9, clock_skew)
                 WHERE id = ?1",
                params![
                    id,
                    now,
                    agent_version,
                    applied_hash,
                    applied.map(|a| a.0),
                    applied.map(|a| a.1),
                    network,
                    remote_ip,
                    clock_skew
                ],
            )?;
            if let Some((serial, commit_id)) = applied {
                let mut failed: Vec<&str> = outcome
                    .errors
                    .iter()
                    .filter(|(s, _)| *s as i64 == serial)
                    .map(|(_, p)| p.as_str())
                    .collect();
                failed.sort_unstable();
                failed.dedup();
                let state = if failed.is_empty() {
                    RolloutState::Converged
                } else {
                    RolloutState::Failed
                };
                set_rollout(&tx, commit_id, &id, Some(serial), state, &failed, now)?;
            }
            for hash in &outcome.refused {
                if let Some((serial, commit_id)) = refused_bundle(&tx, &id, hash)? {
                    set_rollout(
                        &tx,
                        commit_id,
                        &id,
                        Some(serial),
                        RolloutState::Failed,
                        &["bundle"],
                        now,
                    )?;
                }
            }
            tx.commit()?;
            if let Some(recorded) = recorded {
                cache.record(&id, recorded);
            }
            Ok(())
        })
        .await
    }

    async fn rollout(&self, commit_id: i64) -> Result<Vec<RolloutEntry>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare(
                "SELECT r.device_id, d.name, r.serial, r.state, r.failed_policies, r.updated_at
                 FROM rollouts r JOIN devices d ON d.id = r.device_id
                 WHERE r.commit_id = ?1 ORDER BY d.name, r.device_id",
            )?;
            let rows = stmt
                .query_map([commit_id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, i64>(5)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(
                    |(device_id, device_name, serial, state, failed, updated_at)| {
                        Ok(RolloutEntry {
                            device_id,
                            device_name,
                            serial: serial as u64,
                            state: RolloutState::parse(&state).ok_or_else(|| {
                                StoreError::Corrupt {
                                    what: "rollout state".into(),
                                    source: format!("{state:?} is not a rollout state").into(),
                                }
                            })?,
                            failed_policies: parse_json(&failed, "rollout failed policies")?,
                            updated_at,
                        })
                    },
                )
                .collect()
        })
        .await
    }

    async fn current_bundle(&self, device_id: &str) -> Result<Option<StoredBundle>, StoreError> {
        let id = device_id.to_string();
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT device_id, serial, commit_id, hash, content_hash, envelope, created_at
                 FROM bundles WHERE device_id = ?1 ORDER BY serial DESC LIMIT 1",
                [id],
                bundle_row,
            )
            .optional()?)
        })
        .await
    }

    async fn checkin_state(&self, device_id: &str) -> Result<Option<CheckinState>, StoreError> {
        if let Some(state) = self.checkins.get(device_id) {
            return Ok(Some(state));
        }
        let (id, cache) = (device_id.to_string(), self.checkins.clone());
        self.with(move |c| {
            let epoch = cache.epoch();
            let fingerprints: Option<(Option<String>, Option<String>)> = c
                .query_row(
                    "SELECT cert_fingerprint, prev_cert_fingerprint FROM devices
                     WHERE id = ?1 AND status = 'approved'",
                    [&id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((Some(cert_fingerprint), previous_cert)) = fingerprints else {
                return Ok(None);
            };
            let current_bundle = c
                .query_row(
                    "SELECT hash FROM bundles WHERE device_id = ?1 ORDER BY serial DESC LIMIT 1",
                    [&id],
                    |r| r.get(0),
                )
                .optional()?;
            let state = CheckinState {
                cert_fingerprint,
                previous_cert,
                current_bundle,
                recorded: None,
            };
            cache.insert(&id, &state, epoch);
            Ok(Some(state))
        })
        .await
    }

    fn touch_checkin(&self, device_id: &str, now: Timestamp) {
        self.checkins.touch(device_id, now);
    }

    async fn flush_checkins(&self) -> Result<usize, StoreError> {
        let touched = self.checkins.take_touched();
        if touched.is_empty() {
            return Ok(0);
        }
        let cache = self.checkins.clone();
        self.with(move |c| {
            let written = (|| {
                let tx = c.transaction()?;
                {
                    let mut stmt = tx.prepare_cached(
                        "UPDATE devices SET last_checkin = max(coalesce(last_checkin, 0), ?2) WHERE id = ?1",
                    )?;
                    // In key order, so the B-tree is walked once rather than at random.
                    let mut times: Vec<_> = touched.iter().collect();
                    times.sort_unstable();
                    for (id, time) in times {
                        stmt.execute(params![id, time])?;
                    }
                }
                tx.commit()?;
                Ok::<_, StoreError>(touched.len())
            })();
            if written.is_err() {
                // Kept for the next flush rather than lost; later touches win.
                for (id, time) in touched {
                    cache.touch_if_newer(&id, time);
                }
            }
            written
        })
        .await
    }

    async fn insert_bundles(&self, bundles: Vec<StoredBundle>) -> Result<(), StoreError> {
        let cache = self.checkins.clone();
        self.with(move |c| {
            let tx = c.transaction()?;
            insert_bundles_tx(&tx, &bundles)?;
            tx.commit()?;
            for b in &bundles {
                cache.invalidate(&b.device_id);
            }
            Ok(())
        })
        .await
    }

    async fn device_may_fetch(&self, device_id: &str, sha256: &str) -> Result<bool, StoreError> {
        let (id, sha) = (device_id.to_string(), sha256.to_string());
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT 1 FROM bundle_files WHERE device_id = ?1 AND sha256 = ?2",
                params![id, sha],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
        })
        .await
    }

    async fn insert_reports(
        &self,
        device_id: &str,
        queue_id: &str,
        reports: Vec<Report>,
        now: Timestamp,
    ) -> Result<Option<u64>, StoreError> {
        let (id, queue) = (device_id.to_string(), queue_id.to_string());
        self.with(move |c| {
            let tx = c.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT OR IGNORE INTO reports (device_id, queue_id, seq, time, received_at, level, policy, item, message, output, bundle_serial)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )?;
                for r in &reports {
                    stmt.execute(params![
                        id, queue, r.seq as i64, r.time as i64, now, r.level.as_str(), r.policy, r.item, r.message, r.output,
                        r.bundle_serial.map(|s| s as i64)
                    ])?;
                }
            }
            let max: Option<i64> = tx.query_row(
                "SELECT MAX(seq) FROM reports WHERE device_id = ?1 AND queue_id = ?2",
                params![id, queue],
                |r| r.get(0),
            )?;
            tx.commit()?;
            Ok(max.map(|m| m as u64))
        })
        .await
    }

    async fn recent_reports(
        &self,
        device_id: &str,
        limit: u32,
    ) -> Result<Vec<StoredReport>, StoreError> {
        let id = device_id.to_string();
        self.with(move |c| {
            let mut stmt = c.prepare(
                &format!("SELECT {REPORT_COLUMNS} FROM reports WHERE device_id = ?1 ORDER BY id DESC LIMIT ?2"),
            )?;
            let rows = stmt
                .query_map(params![id, limit], report_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn active_config(&self) -> Result<Vec<ConfigEntry>, StoreError> {
        self.with(|c| {
            let mut stmt =
                c.prepare("SELECT node, policy, body FROM config ORDER BY node, policy")?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(node, policy, body)| {
                    Ok(ConfigEntry {
                        body: parse_json(&body, "config body")?,
                        node,
                        policy,
                    })
                })
                .collect()
        })
        .await
    }

    async fn drafts(&self) -> Result<Vec<(String, String, Option<serde_json::Value>)>, StoreError> {
        self.with(|c| {
            let mut stmt =
                c.prepare("SELECT node, policy, body FROM config_drafts ORDER BY node, policy")?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(node, policy, body)| {
                    let body = body.map(|b| parse_json(&b, "draft body")).transpose()?;
                    Ok((node, policy, body))
                })
                .collect()
        })
        .await
    }

    async fn set_draft(
        &self,
        node: &str,
        policy: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(), StoreError> {
        let (node, policy) = (node.to_string(), policy.to_string());
        self.with(move |c| {
            c.execute(
                "INSERT INTO config_drafts (node, policy, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT (node, policy) DO UPDATE SET body = excluded.body",
                params![node, policy, body.map(|b| json(&b))],
            )?;
            Ok(())
        })
        .await
    }

    async fn next_commit_id(&self) -> Result<i64, StoreError> {
        Ok(self.latest_commit_id().await? + 1)
    }

    async fn apply_commit(
        &self,
        commit: Commit,
        bundles: Vec<StoredBundle>,
    ) -> Result<(), StoreError> {
        let cache = self.checkins.clone();
        self.with(move |c| {
            let tx = c.transaction()?;
            for change in &commit.changes {
                match &change.after {
                    Some(body) => tx.execute(
                        "INSERT INTO config (node, policy, body) VALUES (?1, ?2, ?3)
                         ON CONFLICT (node, policy) DO UPDATE SET body = excluded.body",
                        params![change.node, change.policy, json(body)],
                    )?,
                    None => tx.execute(
                        "DELETE FROM config WHERE node = ?1 AND policy = ?2",
                        params![change.node, change.policy],
                    )?,
                };
            }
            tx.execute("DELETE FROM config_drafts", [])?;
            tx.execute(
                "INSERT INTO commits (id, author, message, created_at, changes) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![commit.id, commit.author, commit.message, commit.created_at, json(&commit.changes)],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    StoreError::Conflict(format!("commit {} already exists; retry", commit.id))
                }
                other => other.into(),
            })?;
            insert_bundles_tx(&tx, &bundles)?;
            tx.commit()?;
            for b in &bundles {
                cache.invalidate(&b.device_id);
            }
            Ok(())
        })
        .await
    }

    async fn list_commits(&self) -> Result<Vec<Commit>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, author, message, created_at, changes FROM commits ORDER BY id DESC",
            )?;
            let rows = stmt
                .query_map([], commit_row)?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(mut commit, changes)| {
                    commit.changes = parse_json(&changes, "commit changes")?;
                    Ok(commit)
                })
                .collect()
        })
        .await
    }

    async fn latest_commit_id(&self) -> Result<i64, StoreError> {
        self.with(
            |c| Ok(c.query_row("SELECT COALESCE(MAX(id), 0) FROM commits", [], |r| r.get(0))?),
        )
        .await
    }

    async fn put_file(&self, e: FileEntry) -> Result<(), StoreError> {
        self.with(move |c| {
            c.execute(
                "INSERT INTO files (path, sha256, size, uploaded_at, uploaded_by) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (path) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size,
                     uploaded_at = excluded.uploaded_at, uploaded_by = excluded.uploaded_by",
                params![e.path, e.sha256, e.size as i64, e.uploaded_at, e.uploaded_by],
            )?;
            Ok(())
        })
        .await
    }

    async fn file(&self, path: &str) -> Result<Option<FileEntry>, StoreError> {
        let path = path.to_string();
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT path, sha256, size, uploaded_at, uploaded_by FROM files WHERE path = ?1",
                [path],
                file_row,
            )
            .optional()?)
        })
        .await
    }

    async fn list_files(&self) -> Result<Vec<FileEntry>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT path, sha256, size, uploaded_at, uploaded_by FROM files ORDER BY path",
            )?;
            let rows = stmt
                .query_map([], file_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn audit(&self, e: AuditEntry) -> Result<(), StoreError> {
        self.with(move |c| {
            c.execute(
                "INSERT INTO audit (time, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![e.time, e.actor, e.action, e.target, e.detail],
            )?;
            Ok(())
        })
        .await
    }

    async fn list_audit(&self, f: AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare(
                "SELECT time, actor, action, target, detail FROM audit
                 WHERE (?1 IS NULL OR actor = ?1) AND (?2 IS NULL OR action = ?2)
                   AND (?3 IS NULL OR target = ?3 OR substr(target, 1, length(?3)) = ?3)
                   AND (?4 IS NULL OR time >= ?4)
                 ORDER BY id DESC LIMIT ?5",
            )?;
            let limit = f.limit.unwrap_or(100).min(10_000);
            let rows = stmt
                .query_map(params![f.actor, f.action, f.target, f.since, limit], |r| {
                    Ok(AuditEntry {
                        time: r.get(0)?,
                        actor: r.get(1)?,
                        action: r.get(2)?,
                        target: r.get(3)?,
                        detail: r.get(4)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn discard_drafts(
        &self,
        node: Option<&str>,
        policy: Option<&str>,
    ) -> Result<u64, StoreError> {
        let (node, policy) = (node.map(str::to_string), policy.map(str::to_string));
        self.with(move |c| {
            let n = c.execute(
                "DELETE FROM config_drafts WHERE (?1 IS NULL OR node = ?1) AND (?2 IS NULL OR policy = ?2)",
                params![node, policy],
            )?;
            Ok(n as u64)
        })
        .await
    }
}

/// `(serial, commit_id)` of the device's bundle with this payload hash.
fn bundle_by_hash(
    tx: &rusqlite::Transaction<'_>,
    device_id: &str,
    hash: &str,
) -> rusqlite::Result<Option<(i64, i64)>> {
    tx.query_row(
        "SELECT serial, commit_id FROM bundles WHERE device_id = ?1 AND hash = ?2",
        params![device_id, hash],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// The bundle a device refused, by the hash of the payload it received. That is normally the
/// stored hash; if the stored envelope was altered (which is why it was refused), it is the
/// hash of the latest envelope as served.
fn refused_bundle(
    tx: &rusqlite::Transaction<'_>,
    device_id: &str,
    hash: &str,
) -> rusqlite::Result<Option<(i64, i64)>> {
    let stored = bundle_by_hash(tx, device_id, hash)?;
    if stored.is_some() {
        return Ok(stored);
    }
    let latest: Option<(i64, i64, String)> = tx
        .query_row(
            "SELECT serial, commit_id, envelope FROM bundles WHERE device_id = ?1 ORDER BY serial DESC LIMIT 1",
            [device_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    Ok(latest.and_then(|(serial, commit_id, envelope)| {
        let served = serde_json::from_str::<apiary_proto::signed::Envelope>(&envelope).ok()?;
        (served.payload_hash() == hash).then_some((serial, commit_id))
    }))
}

/// Sets a device's state in a commit's rollout, creating the row if needed; a no-op write is
/// skipped so idle check-ins do not rewrite rows.
fn set_rollout(
    tx: &rusqlite::Transaction<'_>,
    commit_id: i64,
    device_id: &str,
    serial: Option<i64>,
    state: RolloutState,
    failed: &[&str],
    now: Timestamp,
) -> rusqlite::Result<()> {
    let failed = json(&failed);
    tx.execute(
        "INSERT INTO rollouts (commit_id, device_id, serial, state, failed_policies, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (commit_id, device_id) DO UPDATE SET serial = excluded.serial, state = excluded.state,
             failed_policies = excluded.failed_policies, updated_at = excluded.updated_at
         WHERE rollouts.serial != excluded.serial OR rollouts.state != excluded.state
             OR rollouts.failed_policies != excluded.failed_policies",
        params![commit_id, device_id, serial, state.as_str(), failed, now],
    )?;
    Ok(())
}

fn insert_bundles_tx(
    tx: &rusqlite::Transaction<'_>,
    bundles: &[StoredBundle],
) -> Result<(), StoreError> {
    for b in bundles {
        tx.execute(
            "INSERT INTO bundles (device_id, serial, commit_id, hash, content_hash, envelope, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![b.device_id, b.serial as i64, b.commit_id, b.hash, b.content_hash, b.envelope, b.created_at],
        )?;
        tx.execute(
            "DELETE FROM bundle_files WHERE device_id = ?1",
            [&b.device_id],
        )?;
        // The device's bundles from earlier commits that it never applied are now moot.
        tx.execute(
            "UPDATE rollouts SET state = 'superseded', updated_at = ?3
             WHERE device_id = ?1 AND commit_id != ?2 AND state = 'pending'",
            params![b.device_id, b.commit_id, b.created_at],
        )?;
        set_rollout(
            tx,
            b.commit_id,
            &b.device_id,
            Some(b.serial as i64),
            RolloutState::Pending,
            &[],
            b.created_at,
        )?;
        for sha in &b.files {
            tx.execute(
                "INSERT OR IGNORE INTO bundle_files (device_id, sha256) VALUES (?1, ?2)",
                params![b.device_id, sha],
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::migrations::{MIGRATIONS, SCHEMA_VERSION};
    use super::*;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db"), true).unwrap();
        (dir, s)
    }

    fn report(seq: u64) -> Report {
        Report {
            seq,
            time: 1,
            level: Level::Info,
            policy: "p".into(),
            item: None,
            message: format!("m{seq}"),
            output: None,
            bundle_serial: None,
        }
    }

    async fn device(s: &SqliteStore) {
        let key = match s.bootstrap_key_by_hash("h").await.unwrap() {
            Some(k) => k.id,
            None => {
                s.insert_bootstrap_key("h", None, false, "t", 1)
                    .await
                    .unwrap()
                    .id
            }
        };
        s.enroll_device(NewDevice {
            id: "d".into(),
            name: "dev".into(),
            public_key: "00".into(),
            group: None,
            facts: HostFacts::default(),
            remote_ip: "127.0.0.1".into(),
            requested_at: 1,
            bootstrap_key_id: key,
            max_pending_per_key: 100,
            pending_since: 0,
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn resent_reports_are_stored_once_and_acked() {
        let (_d, s) = store();
        device(&s).await;
        assert_eq!(
            s.insert_reports("d", "q", vec![report(1), report(2)], 5)
                .await
                .unwrap(),
            Some(2)
        );
        assert_eq!(
            s.insert_reports("d", "q", vec![report(2), report(3)], 6)
                .await
                .unwrap(),
            Some(3)
        );
        assert_eq!(s.recent_reports("d", 10).await.unwrap().len(), 3);
        // A new queue (agent's tmpfs wiped) restarts its sequence without colliding.
        assert_eq!(
            s.insert_reports("d", "q2", vec![report(1)], 7)
                .await
                .unwrap(),
            Some(1)
        );
        assert_eq!(s.recent_reports("d", 10).await.unwrap().len(), 4);
    }

    #[tokio::test]
    async fn enrolment_is_idempotent_and_groups_have_lineage() {
        let (_d, s) = store();
        device(&s).await;
        device(&s).await;
        assert_eq!(
            s.list_devices(Some(DeviceStatus::Pending))
                .await
                .unwrap()
                .len(),
            1
        );
        s.approve_device("d", "pem", "fp", 2).await.unwrap();
        device(&s).await;
        let status = s.device("d").await.unwrap().unwrap().status;
        assert_eq!(
            status,
            DeviceStatus::Approved,
            "approval survives enrolling again"
        );
        s.reject_device("d").await.unwrap();
        device(&s).await;
        let status = s.device("d").await.unwrap().unwrap().status;
        assert_eq!(
            status,
            DeviceStatus::Rejected,
            "a rejection holds when the device enrols again"
        );
        s.ensure_group("/a/b").await.unwrap();
        assert!(s.group_exists("/a").await.unwrap());
        assert!(!s.group_exists("/b").await.unwrap());
    }

    #[tokio::test]
    async fn check_in_state_follows_approval_rejection_bundles_and_deletion() {
        let (_d, s) = store();
        let key = s
            .insert_bootstrap_key("h", None, false, "t", 1)
            .await
            .unwrap();
        let id = apiary_proto::hex::encode(&[7; 32]);
        let (fp, fp2) = (
            apiary_proto::hex::encode(&[1; 32]),
            apiary_proto::hex::encode(&[2; 32]),
        );
        s.enroll_device(request(&id, key.id, 1)).await.unwrap();
        assert_eq!(s.checkin_state(&id).await.unwrap(), None, "pending");
        s.approve_device(&id, "pem", &fp, 2).await.unwrap();
        let state = s.checkin_state(&id).await.unwrap().expect("approved");
        assert_eq!(
            (
                state.cert_fingerprint.as_str(),
                state.current_bundle.as_deref()
            ),
            (fp.as_str(), None)
        );
        assert_eq!(s.checkins.len(), 1, "cached");

        let hash = apiary_proto::hex::encode(&[3; 32]);
        s.ensure_group("/").await.ok();
        s.insert_bundles(vec![StoredBundle {
            device_id: id.clone(),
            serial: 1,
            commit_id: 1,
            hash: hash.clone(),
            content_hash: "c".into(),
            envelope: "{}".into(),
            created_at: 3,
            files: vec![],
        }])
        .await
        .unwrap();
        let state = s.checkin_state(&id).await.unwrap().expect("approved");
        assert_eq!(
            state.current_bundle.as_deref(),
            Some(hash.as_str()),
            "a new bundle is seen"
        );

        let record = |applied: Option<String>| CheckinRecord {
            applied_hash: applied,
            remote_ip: "10.1.2.3".into(),
            ..CheckinRecord::default()
        };
        s.record_checkin(&id, 4, record(Some(hash.clone())))
            .await
            .unwrap();
        let state = s.checkin_state(&id).await.unwrap().expect("approved");
        assert!(state.repeats_last(Some(&hash), "10.1.2.3".parse().unwrap()));

        s.approve_device(&id, "pem", &fp2, 5).await.unwrap();
        let state = s.checkin_state(&id).await.unwrap().expect("approved");
        assert_eq!(
            state.cert_fingerprint, fp2,
            "a new certificate replaces the old one"
        );
        assert_eq!(state.recorded, None);
        s.reject_device(&id).await.unwrap();
        assert_eq!(
            s.checkin_state(&id).await.unwrap(),
            None,
            "rejected at once"
        );
        s.approve_device(&id, "pem", &fp, 6).await.unwrap();
        assert!(s.checkin_state(&id).await.unwrap().is_some());
        s.delete_device(&id).await.unwrap();
        assert_eq!(s.checkin_state(&id).await.unwrap(), None, "deleted at once");
    }

    #[tokio::test]
    async fn idle_check_in_times_are_written_by_the_flush_and_never_go_back() {
        let (_d, s) = store();
        device(&s).await;
        s.record_checkin("d", 50, CheckinRecord::default())
            .await
            .unwrap();
        s.touch_checkin("d", 40);
        s.touch_checkin("gone", 41);
        assert_eq!(s.flush_checkins().await.unwrap(), 2);
        assert_eq!(
            s.device("d").await.unwrap().unwrap().last_checkin,
            Some(50),
            "an older time loses"
        );
        s.touch_checkin("d", 60);
        assert_eq!(
            s.device("d").await.unwrap().unwrap().last_checkin,
            Some(50),
            "not before the flush"
        );
        s.flush_checkins().await.unwrap();
        assert_eq!(s.device("d").await.unwrap().unwrap().last_checkin, Some(60));
        assert_eq!(s.flush_checkins().await.unwrap(), 0);
    }

    fn request(id: &str, key: i64, at: Timestamp) -> NewDevice {
        NewDevice {
            id: id.into(),
            name: id.into(),
            public_key: "00".into(),
            group: None,
            facts: HostFacts::default(),
            remote_ip: "127.0.0.1".into(),
            requested_at: at,
            bootstrap_key_id: key,
            max_pending_per_key: 2,
            pending_since: at - 100,
        }
    }

    fn recorded(e: Enrolment) -> Device {
        match e {
            Enrolment::Recorded(d) => *d,
            Enrolment::KeyFull { pending } => panic!("refused with {pending} pending"),
        }
    }

    #[tokio::test]
    async fn a_key_holds_a_bounded_number_of_pending_requests_which_expire() {
        let (_d, s) = store();
        let k1 = s
            .insert_bootstrap_key("h1", None, false, "t", 1)
            .await
            .unwrap()
            .id;
        let k2 = s
            .insert_bootstrap_key("h2", None, false, "t", 1)
            .await
            .unwrap()
            .id;
        recorded(s.enroll_device(request("a", k1, 1000)).await.unwrap());
        recorded(s.enroll_device(request("b", k1, 1010)).await.unwrap());
        assert!(matches!(
            s.enroll_device(request("c", k1, 1020)).await.unwrap(),
            Enrolment::KeyFull { pending: 2 }
        ));
        assert!(s.device("c").await.unwrap().is_none());
        // Another key has its own room; a device already pending may ask again.
        recorded(s.enroll_device(request("c", k2, 1020)).await.unwrap());
        let again = recorded(s.enroll_device(request("a", k1, 1050)).await.unwrap());
        assert_eq!(
            again.requested_at, 1050,
            "asking again refreshes the request"
        );
        // 100 s later b's request (1010) has expired, a's (1050) has not.
        recorded(s.enroll_device(request("d", k1, 1120)).await.unwrap());
        assert!(s.device("b").await.unwrap().is_none(), "expired");
        assert!(s.device("a").await.unwrap().is_some());
        // Approved devices do not count against the key.
        s.approve_device("a", "pem", "fp", 1121).await.unwrap();
        recorded(s.enroll_device(request("e", k1, 1122)).await.unwrap());
    }

    #[tokio::test]
    async fn a_deleted_device_leaves_nothing_behind_and_may_enrol_afresh() {
        let (_d, s) = store();
        device(&s).await;
        s.approve_device("d", "pem", "fp", 2).await.unwrap();
        s.insert_reports("d", "q", vec![report(1)], 5)
            .await
            .unwrap();
        s.reject_device("d").await.unwrap();
        assert!(s.delete_device("d").await.unwrap());
        assert!(!s.delete_device("d").await.unwrap(), "already gone");
        assert!(s.device("d").await.unwrap().is_none());
        assert!(s.recent_reports("d", 10).await.unwrap().is_empty());
        device(&s).await;
        let status = s.device("d").await.unwrap().unwrap().status;
        assert_eq!(status, DeviceStatus::Pending, "a deleted device asks anew");
    }

    #[tokio::test]
    async fn renaming_a_group_moves_its_whole_subtree_and_nothing_else() {
        let (_d, s) = store();
        device(&s).await;
        for g in ["/a_b/c", "/aXb", "/a_bc"] {
            s.ensure_group(g).await.unwrap();
        }
        s.move_device("d", Some("/a_b/c")).await.unwrap();
        let key = s
            .insert_bootstrap_key("k2", Some("/a_b"), false, "t", 1)
            .await
            .unwrap();
        s.apply_commit(
            Commit {
                id: 1,
                author: "t".into(),
                message: "m".into(),
                created_at: 1,
                changes: vec![ConfigChange {
                    node: "/a_b".into(),
                    policy: "settings".into(),
                    before: None,
                    after: Some(serde_json::json!({})),
                }],
            },
            vec![],
        )
        .await
        .unwrap();

        s.set_draft("/a_b/c", "settings", Some(serde_json::json!({})))
            .await
            .unwrap();
        s.rename_group("/a_b", "/aXb/moved").await.unwrap();
        let paths: Vec<String> = s
            .list_groups()
            .await
            .unwrap()
            .into_iter()
            .map(|g| g.path)
            .collect();
        assert_eq!(paths, ["/", "/aXb", "/aXb/moved", "/aXb/moved/c", "/a_bc"]);
        assert_eq!(
            s.device("d").await.unwrap().unwrap().group.as_deref(),
            Some("/aXb/moved/c")
        );
        assert_eq!(s.active_config().await.unwrap()[0].node, "/aXb/moved");
        assert_eq!(s.drafts().await.unwrap()[0].0, "/aXb/moved/c");
        let keys = s.list_bootstrap_keys().await.unwrap();
        assert_eq!(
            keys.iter()
                .find(|k| k.id == key.id)
                .unwrap()
                .group
                .as_deref(),
            Some("/aXb/moved")
        );

        for (from, to, want) in [
            ("/", "/x", "root group"),
            ("/aXb", "/aXb/moved/deeper", "into itself"),
            ("/aXb/moved", "/a_bc", "already exists"),
            ("/aXb/moved", "/nope/x", "parent group /nope"),
        ] {
            let err = s.rename_group(from, to).await.unwrap_err().to_string();
            assert!(err.contains(want), "{from} -> {to}: {err}");
        }
    }

    #[tokio::test]
    async fn only_empty_groups_can_be_deleted() {
        let (_d, s) = store();
        device(&s).await;
        s.ensure_group("/a/b").await.unwrap();
        s.move_device("d", Some("/a/b")).await.unwrap();
        let refused = |e: StoreError| e.to_string();
        assert!(refused(s.delete_group("/a").await.unwrap_err()).contains("subgroups"));
        assert!(refused(s.delete_group("/a/b").await.unwrap_err()).contains("1 device(s)"));
        s.move_device("d", None).await.unwrap();
        let key = s
            .insert_bootstrap_key("k3", Some("/a/b"), false, "t", 1)
            .await
            .unwrap();
        assert!(refused(s.delete_group("/a/b").await.unwrap_err()).contains("revoke them first"));
        s.revoke_bootstrap_key(key.id, 2).await.unwrap();
        s.delete_group("/a/b").await.unwrap();
        s.delete_group("/a").await.unwrap();
        assert!(matches!(
            s.delete_group("/a").await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            s.move_device("d", Some("/gone")).await,
            Err(StoreError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn an_older_database_is_migrated_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!("{} PRAGMA user_version = 1;", MIGRATIONS[0]))
            .unwrap();
        conn.execute("INSERT INTO groups (path) VALUES ('/kept')", [])
            .unwrap();
        drop(conn);
        let s = SqliteStore::open(&path, false).unwrap();
        assert!(s.group_exists("/kept").await.unwrap());
        assert_eq!(
            s.rollout(1).await.unwrap().len(),
            0,
            "the rollouts table exists"
        );
        drop(s);
        let version: i64 = Connection::open(&path)
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[tokio::test]
    async fn reports_stored_before_the_kept_counts_are_counted_after_the_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v5.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "{} PRAGMA user_version = 5;",
            MIGRATIONS[..5].join("\n")
        ))
        .unwrap();
        conn.execute_batch(
            "INSERT INTO devices (id, name, public_key, status, facts, remote_ip, requested_at)
                 VALUES ('d', 'd', '00', 'approved', '{}', '127.0.0.1', 1);
             INSERT INTO reports (device_id, queue_id, seq, time, received_at, level, policy, message)
                 VALUES ('d', 'q', 1, 1, 7300, 'error', 'p', 'm'), ('d', 'q', 2, 1, 7400, 'error', 'p', 'm');",
        )
        .unwrap();
        drop(conn);
        let s = SqliteStore::open(&path, false).unwrap();
        use crate::store::fleet_view::FleetView;
        assert_eq!(
            s.report_level_counts(vec![0]).await.unwrap(),
            vec![(Level::Error, vec![2])]
        );
    }

    /// Errors keep the driver's error as their source, not just its text.
    #[test]
    fn errors_keep_their_source() {
        use std::error::Error;
        let e = StoreError::from(rusqlite::Error::QueryReturnedNoRows);
        assert!(
            e.source()
                .and_then(|s| s.downcast_ref::<rusqlite::Error>())
                .is_some(),
            "{e:?}"
        );
        let e = parse_json::<Vec<String>>("{not json", "commit changes").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("stored data is corrupt: commit changes: "),
            "{e}"
        );
        assert!(
            e.source()
                .and_then(|s| s.downcast_ref::<serde_json::Error>())
                .is_some(),
            "{e:?}"
        );
        let dir = tempfile::tempdir().unwrap();
        let e = SqliteStore::open(&dir.path().join("missing/x.db"), true)
            .err()
            .expect("no such directory");
        assert!(matches!(&e, StoreError::Open { path, .. } if path.ends_with("missing/x.db")));
        assert!(e.source().is_some());
    }

    #[tokio::test]
    async fn reopening_keeps_data_and_refuses_unknown_schema() {
        let (dir, s) = store();
        device(&s).await;
        drop(s);
        let path = dir.path().join("t.db");
        let s = SqliteStore::open(&path, false).unwrap();
        assert!(s.device("d").await.unwrap().is_some());
        drop(s);
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        assert!(matches!(
            SqliteStore::open(&path, false),
            Err(StoreError::Schema { found: 99, .. })
        ));
    }
}
