//! [`MonitoringStore`] on SQLite.

use std::collections::BTreeMap;
use std::sync::Arc;

use apiary_proto::inventory::{Inventory, Kind};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, Transaction, params};

use super::{SqliteStore, json, parse_json};
use crate::metrics::codec;
use crate::store::monitoring::{
    Found, MetricRows, MonitoringStore, NewSamples, SamplesStored, StoredInventory,
};
use crate::store::{StoreError, Timestamp};

#[async_trait]
impl MonitoringStore for SqliteStore {
    async fn put_inventory(
        &self,
        device_id: &str,
        kinds: Vec<(String, Inventory)>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let id = device_id.to_string();
        self.with(move |c| {
            let tx = c.transaction()?;
            for (hash, data) in kinds {
                let kind = data.kind().as_str();
                let same: bool = tx
                    .query_row(
                        "SELECT hash = ?3 FROM inventory WHERE device_id = ?1 AND kind = ?2",
                        params![id, kind, hash],
                        |r| r.get(0),
                    )
                    .optional()?
                    .unwrap_or(false);
                if same {
                    // Sent again (the device lost its acknowledgement): only its arrival is news.
                    tx.execute(
                        "UPDATE inventory SET received_at = ?3 WHERE device_id = ?1 AND kind = ?2",
                        params![id, kind, now],
                    )?;
                    continue;
                }
                tx.execute(
                    "INSERT INTO inventory (device_id, kind, hash, data, changed_at, received_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                     ON CONFLICT (device_id, kind) DO UPDATE
                     SET hash = excluded.hash, data = excluded.data,
                         changed_at = excluded.changed_at, received_at = excluded.received_at",
                    params![id, kind, hash, json(&data), now],
                )?;
                index_rows(&tx, &id, &data)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn inventory_hashes(
        &self,
        device_id: &str,
    ) -> Result<BTreeMap<Kind, String>, StoreError> {
        let id = device_id.to_string();
        self.with(move |c| {
            let mut stmt =
                c.prepare_cached("SELECT kind, hash FROM inventory WHERE device_id = ?1")?;
            let rows = stmt.query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))?;
            let mut out = BTreeMap::new();
            for row in rows {
                let (kind, hash) = row?;
                if let Some(kind) = Kind::parse(&kind) {
                    out.insert(kind, hash);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn inventory(&self, device_id: &str) -> Result<Vec<StoredInventory>, StoreError> {
        let id = device_id.to_string();
        self.with(move |c| {
            let mut stmt = c.prepare(
                "SELECT kind, hash, data, changed_at, received_at FROM inventory
                 WHERE device_id = ?1",
            )?;
            let rows = stmt.query_map([&id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (kind, hash, data, changed_at, received_at) = row?;
                let Some(kind) = Kind::parse(&kind) else {
                    continue;
                };
                out.push(StoredInventory {
                    kind,
                    hash,
                    data,
                    changed_at,
                    received_at,
                });
            }
            out.sort_by_key(|i| i.kind);
            Ok(out)
        })
        .await
    }

    async fn find_package(&self, text: &str, limit: u32) -> Result<Vec<Found>, StoreError> {
        let pattern = format!(
            "%{}%",
            text.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        self.with(move |c| {
            let mut stmt = c.prepare(
                "SELECT p.device_id, d.name, p.manager || ' ' || p.name || ' ' || p.version
                 FROM inventory_packages p JOIN devices d ON d.id = p.device_id
                 WHERE p.name LIKE ?1 ESCAPE '\\'
                 ORDER BY d.name, p.name LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![pattern, limit], found_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn find_port(&self, port: u16, limit: u32) -> Result<Vec<Found>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare(
                "SELECT p.device_id, d.name,
                        p.protocol || ' ' || p.address || ':' || p.port || COALESCE(' ' || p.process, '')
                 FROM inventory_ports p JOIN devices d ON d.id = p.device_id
                 WHERE p.port = ?1 ORDER BY d.name, p.protocol LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![port, limit], found_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn put_samples(
        &self,
        device_id: &str,
        new: NewSamples,
    ) -> Result<SamplesStored, StoreError> {
        let id = device_id.to_string();
        self.with(move |c| {
            let tx = c.transaction()?;
            let names_id = match &new.names {
                Some(names) => Some(names_id(&tx, &id, names)?),
                None => current_names(&tx, &id)?,
            };
            let Some((names_id, width)) = names_id else {
                return Ok(SamplesStored::NeedNames);
            };
            if new.samples.iter().any(|s| s.values.len() != width) {
                return Ok(SamplesStored::NeedNames);
            }
            for s in &new.samples {
                let time = s.time.min(i64::MAX as u64) as i64;
                let fresh = tx.execute(
                    "INSERT OR IGNORE INTO metric_samples (device_id, time, names_id, vals)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![id, time, names_id, codec::encode(&s.values)],
                )? > 0;
                if fresh {
                    add_to_hour(&tx, &id, time - time.rem_euclid(3600), names_id, &s.values)?;
                }
            }
            tx.commit()?;
            Ok(SamplesStored::Upto(
                new.seq + new.samples.len().saturating_sub(1) as u64,
            ))
        })
        .await
    }

    async fn metric_rows(
        &self,
        device_id: &str,
        from: Timestamp,
        to: Timestamp,
        raw: bool,
    ) -> Result<MetricRows, StoreError> {
        let id = device_id.to_string();
        self.with(move |c| {
            let mut names: BTreeMap<i64, Arc<Vec<String>>> = BTreeMap::new();
            let mut stmt = c.prepare("SELECT id, names FROM metric_names WHERE device_id = ?1")?;
            for row in
                stmt.query_map([&id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
            {
                let (nid, text) = row?;
                names.insert(nid, Arc::new(parse_json(&text, "metric names")?));
            }
            let (table, time) = if raw {
                ("metric_samples", "time")
            } else {
                ("metric_hourly", "hour")
            };
            let column = if raw { "vals" } else { "agg" };
            let mut stmt = c.prepare(&format!(
                "SELECT {time}, names_id, {column} FROM {table}
                 WHERE device_id = ?1 AND {time} >= ?2 AND {time} < ?3 ORDER BY {time}"
            ))?;
            let mut rows = Vec::new();
            for row in stmt.query_map(params![id, from, to], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            })? {
                let (t, nid, blob) = row?;
                if let Some(n) = names.get(&nid) {
                    rows.push((t, n.clone(), blob));
                }
            }
            Ok(if raw {
                MetricRows {
                    raw: rows,
                    hourly: Vec::new(),
                }
            } else {
                MetricRows {
                    raw: Vec::new(),
                    hourly: rows,
                }
            })
        })
        .await
    }

    async fn prune_metrics(
        &self,
        raw_before: Timestamp,
        hourly_before: Timestamp,
    ) -> Result<u64, StoreError> {
        self.with(move |c| {
            let tx = c.transaction()?;
            let raw = tx.execute("DELETE FROM metric_samples WHERE time < ?1", [raw_before])?;
            let hourly =
                tx.execute("DELETE FROM metric_hourly WHERE hour < ?1", [hourly_before])?;
            tx.commit()?;
            Ok((raw + hourly) as u64)
        })
        .await
    }
}

fn found_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Found> {
    Ok(Found {
        device_id: r.get(0)?,
        device_name: r.get(1)?,
        detail: r.get(2)?,
    })
}

/// Rewrites the search rows of the kinds that have them.
fn index_rows(tx: &Transaction<'_>, id: &str, data: &Inventory) -> rusqlite::Result<()> {
    match data {
        Inventory::Software(lists) => {
            tx.execute("DELETE FROM inventory_packages WHERE device_id = ?1", [id])?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO inventory_packages (device_id, manager, name, version, arch, source)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for l in lists {
                for p in &l.packages {
                    insert.execute(params![id, l.manager, p.name, p.version, p.arch, p.source])?;
                }
            }
        }
        Inventory::Ports(ports) => {
            tx.execute("DELETE FROM inventory_ports WHERE device_id = ?1", [id])?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO inventory_ports (device_id, protocol, address, port, process)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for p in ports {
                insert.execute(params![id, p.protocol, p.address, p.port, p.process])?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The id of `names` for the device (made if new), now its current list.
fn names_id(tx: &Transaction<'_>, id: &str, names: &[String]) -> Result<(i64, usize), StoreError> {
    let text = json(&names);
    tx.execute(
        "INSERT OR IGNORE INTO metric_names (device_id, names) VALUES (?1, ?2)",
        params![id, text],
    )?;
    let nid: i64 = tx.query_row(
        "SELECT id FROM metric_names WHERE device_id = ?1 AND names = ?2",
        params![id, text],
        |r| r.get(0),
    )?;
    tx.execute(
        "UPDATE devices SET metric_names_id = ?2 WHERE id = ?1",
        params![id, nid],
    )?;
    Ok((nid, names.len()))
}

/// The device's current names list: its id and width.
fn current_names(tx: &Transaction<'_>, id: &str) -> Result<Option<(i64, usize)>, StoreError> {
    let row: Option<(i64, String)> = tx
        .query_row(
            "SELECT n.id, n.names FROM devices d JOIN metric_names n ON n.id = d.metric_names_id
             WHERE d.id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    row.map(|(nid, text)| Ok((nid, parse_json::<Vec<String>>(&text, "metric names")?.len())))
        .transpose()
}

fn add_to_hour(
    tx: &Transaction<'_>,
    id: &str,
    hour: i64,
    names_id: i64,
    values: &[Option<f64>],
) -> rusqlite::Result<()> {
    let before: Option<Vec<u8>> = tx
        .prepare_cached(
            "SELECT agg FROM metric_hourly WHERE device_id = ?1 AND hour = ?2 AND names_id = ?3",
        )?
        .query_row(params![id, hour, names_id], |r| r.get(0))
        .optional()?;
    let agg = codec::add_to_hour(before.as_deref().unwrap_or(&[]), values);
    tx.prepare_cached(
        "INSERT INTO metric_hourly (device_id, hour, names_id, agg) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (device_id, hour, names_id) DO UPDATE SET agg = excluded.agg",
    )?
    .execute(params![id, hour, names_id, agg])?;
    Ok(())
}
