//! [`FleetView`] on SQLite.

use apiary_proto::device_api::Level;
use async_trait::async_trait;
use rusqlite::params;

use super::{DEVICE_COLUMNS, REPORT_COLUMNS, SqliteStore, device_row, finish_device, report_row};
use crate::store::fleet_view::{
    DeviceCounts, DeviceQuery, FleetReport, FleetView, ReportQuery, ReportSort,
};
use crate::store::{Device, StoreError, StoredReport, Timestamp};

/// `text` with LIKE's wildcards (`%`, `_`) and the escape character escaped, so it matches
/// literally (with `ESCAPE '\'`).
fn like_literal(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// A LIKE pattern for `text` anywhere.
fn like_pattern(text: &str) -> String {
    format!("%{}%", like_literal(text))
}

#[async_trait]
impl FleetView for SqliteStore {
    async fn device_page(&self, q: DeviceQuery) -> Result<(Vec<Device>, u64), StoreError> {
        self.with(move |c| {
            let group_prefix = q.group.as_ref().map(|g| {
                if g == "/" {
                    "/%".to_string()
                } else {
                    format!("{}/%", like_literal(g))
                }
            });
            let text = q.text.as_deref().map(like_pattern);
            let id_prefix = q.text.as_deref().map(|t| format!("{}%", like_literal(t)));
            let filter = "WHERE (?1 IS NULL OR group_path = ?2 OR group_path LIKE ?1 ESCAPE '\\')
                  AND (?3 = 0 OR group_path IS NULL)
                  AND (?4 IS NULL OR status = ?4)
                  AND (?5 IS NULL OR name LIKE ?5 ESCAPE '\\' OR id LIKE ?6 ESCAPE '\\')";
            let status = q.status.map(|s| s.as_str());
            let filter_args: [&dyn rusqlite::ToSql; 6] = [
                &group_prefix,
                &q.group,
                &q.unassigned,
                &status,
                &text,
                &id_prefix,
            ];
            let total: i64 = c.query_row(
                &format!("SELECT COUNT(*) FROM devices {filter}"),
                &filter_args[..],
                |r| r.get(0),
            )?;
            let mut stmt = c.prepare(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices {filter} ORDER BY name, id LIMIT ?7 OFFSET ?8"
            ))?;
            let (limit, offset) = (q.limit as i64, q.offset as i64);
            let page_args: Vec<&dyn rusqlite::ToSql> = filter_args
                .iter()
                .copied()
                .chain([&limit as &dyn rusqlite::ToSql, &offset])
                .collect();
            let rows = stmt
                .query_map(&page_args[..], device_row)?
                .collect::<Result<Vec<_>, _>>()?;
            let devices = rows
                .into_iter()
                .map(finish_device)
                .collect::<Result<_, _>>()?;
            Ok((devices, total as u64))
        })
        .await
    }

    async fn report_level_counts(
        &self,
        since: Vec<Timestamp>,
    ) -> Result<Vec<(Level, Vec<u64>)>, StoreError> {
        if since.is_empty() {
            return Ok(Vec::new());
        }
        self.with(move |c| {
            // Whole hours from the kept counts; the part of an hour at a window's start from
            // the reports themselves (at most an hour of them, through the index).
            let mut stmt = c.prepare_cached(
                "SELECT level, SUM(n) FROM report_counts WHERE hour >= ?1 GROUP BY level
                 UNION ALL
                 SELECT level, COUNT(*) FROM reports
                 WHERE received_at >= ?2 AND received_at < ?1 * 3600 GROUP BY level",
            )?;
            let mut per_level: Vec<(Level, Vec<u64>)> = Vec::new();
            for (w, start) in since.iter().enumerate() {
                let first_hour = start.div_euclid(3600) + i64::from(start.rem_euclid(3600) != 0);
                let rows = stmt
                    .query_map(params![first_hour, start], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                for (level, n) in rows {
                    let Some(level) = Level::parse(&level) else {
                        continue;
                    };
                    let at = match per_level.iter().position(|(l, _)| *l == level) {
                        Some(at) => at,
                        None => {
                            per_level.push((level, vec![0; since.len()]));
                            per_level.len() - 1
                        }
                    };
                    per_level[at].1[w] += n.max(0) as u64;
                }
            }
            Ok(per_level)
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
            // Three range counts on the devices_seen index; no row is read.
            let count = |sql: &str, p: &[&dyn rusqlite::ToSql]| {
                c.query_row(sql, p, |r| r.get::<_, i64>(0))
                    .map(|n| n as u64)
            };
            let approved = count(
                "SELECT count(*) FROM devices WHERE status = 'approved'",
                &[],
            )?;
            let online = count(
                "SELECT count(*) FROM devices WHERE status = 'approved' AND last_checkin >= ?1",
                &[&online_since],
            )?;
            let pending = count("SELECT count(*) FROM devices WHERE status = 'pending'", &[])?;
            Ok(DeviceCounts {
                online,
                offline: approved.saturating_sub(online),
                pending,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use apiary_proto::device_api::{HostFacts, Report};

    use super::*;
    use crate::store::{DeviceStatus, NewDevice, Store};

    async fn fleet() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db"), true).unwrap();
        let key = s
            .insert_bootstrap_key("h", None, false, "t", 1)
            .await
            .unwrap()
            .id;
        s.ensure_group("/site/hall").await.unwrap();
        s.ensure_group("/site_b").await.unwrap();
        for (id, name, group) in [
            ("aa01", "pump-1", Some("/site")),
            ("aa02", "pump-2", Some("/site/hall")),
            ("bb03", "fan_100%", Some("/site_b")),
            ("cc04", "spare", None),
        ] {
            s.enroll_device(NewDevice {
                id: id.into(),
                name: name.into(),
                public_key: "00".into(),
                group: group.map(str::to_string),
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
        (dir, s)
    }

    fn names(page: &(Vec<Device>, u64)) -> Vec<&str> {
        page.0.iter().map(|d| d.name.as_str()).collect()
    }

    #[tokio::test]
    async fn pages_by_subtree_text_and_offset() {
        let (_d, s) = fleet().await;
        let q = |group: Option<&str>, text: Option<&str>| DeviceQuery {
            group: group.map(str::to_string),
            text: text.map(str::to_string),
            limit: 10,
            ..DeviceQuery::default()
        };
        let site = s.device_page(q(Some("/site"), None)).await.unwrap();
        assert_eq!(
            names(&site),
            vec!["pump-1", "pump-2"],
            "/site_b is not under /site"
        );
        assert_eq!(site.1, 2);
        assert_eq!(
            names(&s.device_page(q(None, Some("PUMP"))).await.unwrap()),
            vec!["pump-1", "pump-2"]
        );
        assert_eq!(
            names(&s.device_page(q(None, Some("_100%"))).await.unwrap()),
            vec!["fan_100%"],
            "LIKE wildcards are literal"
        );
        assert_eq!(
            names(&s.device_page(q(None, Some("%"))).await.unwrap()),
            vec!["fan_100%"]
        );
        assert_eq!(
            names(&s.device_page(q(None, Some("cc0"))).await.unwrap()),
            vec!["spare"],
            "id prefix"
        );
        let unassigned = s
            .device_page(DeviceQuery {
                unassigned: true,
                limit: 10,
                ..DeviceQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(names(&unassigned), vec!["spare"]);
        let second = s
            .device_page(DeviceQuery {
                offset: 1,
                limit: 2,
                ..DeviceQuery::default()
            })
            .await
            .unwrap();
        assert_eq!((names(&second), second.1), (vec!["pump-1", "pump-2"], 4));
        let pending = s
            .device_page(DeviceQuery {
                status: Some(DeviceStatus::Approved),
                limit: 10,
                ..DeviceQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(pending.1, 0, "none approved yet");
        assert_eq!(
            s.device_counts(0).await.unwrap(),
            DeviceCounts {
                online: 0,
                offline: 0,
                pending: 4
            }
        );
    }

    #[tokio::test]
    async fn level_counts_are_exact_at_any_window_start_and_follow_deletion() {
        let (_d, s) = fleet().await;
        let report = |seq: u64, level: Level| Report {
            seq,
            time: seq,
            level,
            policy: "ntp".into(),
            item: None,
            message: "m".into(),
            output: None,
            bundle_serial: None,
        };
        // Received in three different hours: 7199 and 7200 straddle a boundary.
        let hour = 3600;
        for (seq, at, level) in [(1, 2 * hour - 1, Level::Error), (2, 2 * hour, Level::Error)] {
            s.insert_reports("aa01", "q", vec![report(seq, level)], at)
                .await
                .unwrap();
        }
        s.insert_reports("aa02", "q", vec![report(1, Level::Info)], 3 * hour + 5)
            .await
            .unwrap();
        // A resent report is stored (and counted) once.
        s.insert_reports("aa02", "q", vec![report(1, Level::Info)], 3 * hour + 9)
            .await
            .unwrap();
        let counts = |since: Vec<Timestamp>| {
            let s = s.clone();
            async move {
                let mut c = s.report_level_counts(since).await.unwrap();
                c.sort_by_key(|(l, _)| *l);
                c
            }
        };
        assert_eq!(
            counts(vec![0, 2 * hour - 1, 2 * hour, 2 * hour + 1, 3 * hour + 6]).await,
            vec![
                (Level::Info, vec![1, 1, 1, 1, 0]),
                (Level::Error, vec![2, 2, 1, 0, 0])
            ]
        );
        assert!(s.delete_device("aa01").await.unwrap());
        assert_eq!(
            counts(vec![0]).await,
            vec![(Level::Info, vec![1]), (Level::Error, vec![0])]
        );
    }

    #[tokio::test]
    async fn device_logs_filter_search_and_sort() {
        let (_d, s) = fleet().await;
        let report = |seq: u64, level: Level, message: &str| Report {
            seq,
            time: seq,
            level,
            policy: "ntp".into(),
            item: None,
            message: message.into(),
            output: None,
            bundle_serial: None,
        };
        s.insert_reports(
            "aa01",
            "q",
            vec![
                report(1, Level::Info, "servers set"),
                report(2, Level::Error, "no time daemon found"),
                report(3, Level::Warning, "servers restored"),
            ],
            100,
        )
        .await
        .unwrap();
        let q = |levels: Vec<Level>, text: Option<&str>, sort| ReportQuery {
            levels,
            text: text.map(str::to_string),
            sort,
            limit: 10,
        };
        let messages = |r: Vec<StoredReport>| r.into_iter().map(|r| r.message).collect::<Vec<_>>();
        assert_eq!(
            messages(
                s.device_reports("aa01", q(vec![], None, ReportSort::NewestFirst))
                    .await
                    .unwrap()
            ),
            vec!["servers restored", "no time daemon found", "servers set"]
        );
        assert_eq!(
            messages(
                s.device_reports("aa01", q(vec![], None, ReportSort::LevelFirst))
                    .await
                    .unwrap()
            ),
            vec!["no time daemon found", "servers restored", "servers set"]
        );
        assert_eq!(
            messages(
                s.device_reports(
                    "aa01",
                    q(
                        vec![Level::Info, Level::Warning],
                        Some("SERVERS"),
                        ReportSort::OldestFirst
                    )
                )
                .await
                .unwrap()
            ),
            vec!["servers set", "servers restored"]
        );
        assert!(
            s.device_reports("aa02", q(vec![], None, ReportSort::NewestFirst))
                .await
                .unwrap()
                .is_empty()
        );
        let counts = s.report_level_counts(vec![0, 101]).await.unwrap();
        assert_eq!(counts.len(), 3);
        assert!(counts.iter().all(|(_, n)| n == &vec![1, 0]), "{counts:?}");
        assert!(s.report_level_counts(vec![101]).await.unwrap().is_empty());
        let errors = s
            .error_counts(vec!["aa01".into(), "aa02".into()], 0)
            .await
            .unwrap();
        assert_eq!(errors.get("aa01"), Some(&1));
        assert_eq!(errors.get("aa02"), None);
        let latest = s.latest_reports(2).await.unwrap();
        assert_eq!(latest[0].device_name, "pump-1");
        assert_eq!(latest.len(), 2);
    }
}
