//! [`FleetView`] on SQLite.

use apiary_proto::device_api::Level;
use async_trait::async_trait;
use rusqlite::params;

use super::{DEVICE_COLUMNS, REPORT_COLUMNS, SqliteStore, device_row, finish_device, report_row};
use crate::store::fleet_view::{
    DeviceCounts, DeviceQuery, FleetReport, FleetView, ReportQuery, ReportSort,
};
use crate::store::{Device, StoreError, StoredReport, Timestamp};

/// `%` and `_` are LIKE wildcards; searched text must match literally.
fn like_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

#[async_trait]
impl FleetView for SqliteStore {
    async fn device_page(&self, q: DeviceQuery) -> Result<(Vec<Device>, u64), StoreError> {
        self.with(move |c| {
            let group_prefix = q.group.as_ref().map(|g| {
                if g == "/" {
                    "/%".to_string()
                } else {
                    format!("{}/%", g.replace('%', "\\%").replace('_', "\\_"))
                }
            });
            let text = q.text.as_deref().map(like_pattern);
            let id_prefix = q
                .text
                .as_deref()
                .map(|t| format!("{}%", t.replace('%', "")));
            let filter = "WHERE (?1 IS NULL OR group_path = ?2 OR group_path LIKE ?1 ESCAPE '\\')
                  AND (?3 = 0 OR group_path IS NULL)
                  AND (?4 IS NULL OR status = ?4)
                  AND (?5 IS NULL OR name LIKE ?5 ESCAPE '\\' OR id LIKE ?6)";
            let args = params![
                group_prefix,
                q.group,
                q.unassigned,
                q.status.map(|s| s.as_str()),
                text,
                id_prefix
            ];
            let total: i64 = c.query_row(
                &format!("SELECT COUNT(*) FROM devices {filter}"),
                args,
                |r| r.get(0),
            )?;
            let mut stmt = c.prepare(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices {filter} ORDER BY name, id LIMIT ?7 OFFSET ?8"
            ))?;
            let rows = stmt
                .query_map(
                    params![
                        group_prefix,
                        q.group,
                        q.unassigned,
                        q.status.map(|s| s.as_str()),
                        text,
                        id_prefix,
                        q.limit as i64,
                        q.offset as i64
                    ],
                    device_row,
                )?
                .collect::<Result<Vec<_>, _>>()?;
            let devices = rows
                .into_iter()
                .map(finish_device)
                .collect::<Result<_, _>>()?;
            Ok((devices, total as u64))
        })
        .await
    }

    async fn report_level_counts(&self, since: Timestamp) -> Result<Vec<(Level, u64)>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare(
                "SELECT level, COUNT(*) FROM reports WHERE received_at >= ?1 GROUP BY level",
            )?;
            let rows = stmt
                .query_map([since], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows
                .into_iter()
                .filter_map(|(l, n)| Some((Level::parse(&l)?, n as u64)))
                .collect())
        })
        .await
    }

    async fn latest_reports(&self, limit: u64) -> Result<Vec<FleetReport>, StoreError> {
        self.with(move |c| {
            let columns = REPORT_COLUMNS
                .split(", ")
                .map(|col| format!("r.{col}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut stmt = c.prepare(&format!(
                "SELECT {columns}, d.id, d.name FROM reports r JOIN devices d ON d.id = r.device_id
                 ORDER BY r.id DESC LIMIT ?1"
            ))?;
            let rows = stmt
                .query_map([limit as i64], |r| {
                    Ok(FleetReport {
                        report: report_row(r)?,
                        device_id: r.get(9)?,
                        device_name: r.get(10)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn device_reports(
        &self,
        device_id: &str,
        q: ReportQuery,
    ) -> Result<Vec<StoredReport>, StoreError> {
        let device_id = device_id.to_string();
        self.with(move |c| {
            let levels: Vec<&str> = q.levels.iter().map(|l| l.as_str()).collect();
            let level_list = if levels.is_empty() {
                String::new()
            } else {
                // Level names are fixed identifiers, never operator text.
                format!(
                    "AND level IN ({})",
                    levels
                        .iter()
                        .map(|l| format!("'{l}'"))
                        .collect::<Vec<_>>()
                        .join(",")
                )
            };
            let order = match q.sort {
                ReportSort::NewestFirst => "id DESC",
                ReportSort::OldestFirst => "id ASC",
                ReportSort::LevelFirst => {
                    "CASE level WHEN 'critical' THEN 0 WHEN 'error' THEN 1 WHEN 'warning' THEN 2 ELSE 3 END, id DESC"
                }
            };
            let text = q.text.as_deref().map(like_pattern);
            let mut stmt = c.prepare(&format!(
                "SELECT {REPORT_COLUMNS} FROM reports WHERE device_id = ?1 {level_list}
                 AND (?2 IS NULL OR policy LIKE ?2 ESCAPE '\\' OR item LIKE ?2 ESCAPE '\\'
                      OR message LIKE ?2 ESCAPE '\\' OR output LIKE ?2 ESCAPE '\\')
                 ORDER BY {order} LIMIT ?3"
            ))?;
            let rows = stmt
                .query_map(params![device_id, text, q.limit as i64], report_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn error_counts(
        &self,
        device_ids: Vec<String>,
        since: Timestamp,
    ) -> Result<std::collections::HashMap<String, u64>, StoreError> {
        if device_ids.is_empty() {
            return Ok(Default::default());
        }
        self.with(move |c| {
            let placeholders = vec!["?"; device_ids.len()].join(",");
            let mut stmt = c.prepare(&format!(
                "SELECT device_id, COUNT(*) FROM reports
                 WHERE level IN ('error', 'critical') AND received_at >= ? AND device_id IN ({placeholders})
                 GROUP BY device_id"
            ))?;
            let mut args: Vec<rusqlite::types::Value> = vec![since.into()];
            args.extend(device_ids.into_iter().map(rusqlite::types::Value::from));
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args), |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn device_counts(&self, online_since: Timestamp) -> Result<DeviceCounts, StoreError> {
        self.with(move |c| {
            Ok(c.query_row(
                "SELECT
                   COALESCE(SUM(status = 'approved' AND last_checkin >= ?1), 0),
                   COALESCE(SUM(status = 'approved' AND (last_checkin IS NULL OR last_checkin < ?1)), 0),
                   COALESCE(SUM(status = 'pending'), 0)
                 FROM devices",
                [online_since],
                |r| {
                    Ok(DeviceCounts {
                        online: r.get::<_, i64>(0)? as u64,
                        offline: r.get::<_, i64>(1)? as u64,
                        pending: r.get::<_, i64>(2)? as u64,
                    })
                },
            )?)
        })
        .await
    }
}
