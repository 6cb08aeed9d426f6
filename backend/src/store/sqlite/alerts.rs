//! [`AlertStore`] on SQLite.

use std::collections::BTreeMap;
use std::sync::Arc;

use apiary_proto::device_api::Level;
use async_trait::async_trait;
use rusqlite::{OptionalExtension, Transaction, params};

use super::{SqliteStore, json, parse_json};
use crate::alerts::rules::{RecentReport, RuleSpec};
use crate::store::alerts::{
    Alert, AlertRule, AlertStore, Delivery, DeliveryCounts, NewAlert, Webhook,
};
use crate::store::{StoreError, Timestamp};

const ALERT_COLUMNS: &str = "a.id, a.rule_id, r.name, a.device_id, d.name, a.subject, a.message,
     a.fired_at, a.resolved_at
     FROM alerts a JOIN alert_rules r ON r.id = a.rule_id JOIN devices d ON d.id = a.device_id";

fn alert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Alert> {
    Ok(Alert {
        id: r.get(0)?,
        rule_id: r.get(1)?,
        rule: r.get(2)?,
        device_id: r.get(3)?,
        device_name: r.get(4)?,
        subject: r.get(5)?,
        message: r.get(6)?,
        fired_at: r.get(7)?,
        resolved_at: r.get(8)?,
    })
}

fn webhook_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Webhook> {
    let sealed: Option<String> = r.get(2)?;
    Ok(Webhook {
        id: r.get(0)?,
        url: r.get(1)?,
        signed: sealed.is_some(),
        sealed_secret: sealed,
        created_at: r.get(3)?,
        created_by: r.get(4)?,
    })
}

fn unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

#[async_trait]
impl AlertStore for SqliteStore {
    async fn insert_rule(
        &self,
        name: &str,
        spec: &RuleSpec,
        scope: Option<&str>,
        actor: &str,
        now: Timestamp,
    ) -> Result<AlertRule, StoreError> {
        let rule = AlertRule {
            id: 0,
            name: name.to_string(),
            spec: spec.clone(),
            scope: scope.map(str::to_string),
            created_at: now,
            created_by: actor.to_string(),
        };
        self.with(move |c| {
            let inserted = c.execute(
                "INSERT INTO alert_rules (name, spec, scope, created_at, created_by)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    rule.name,
                    json(&rule.spec),
                    rule.scope,
                    rule.created_at,
                    rule.created_by
                ],
            );
            match inserted {
                Ok(_) => Ok(AlertRule {
                    id: c.last_insert_rowid(),
                    ..rule
                }),
                Err(e) if unique_violation(&e) => Err(StoreError::Conflict(format!(
                    "an alert rule named {} exists",
                    rule.name
                ))),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn rules(&self) -> Result<Vec<AlertRule>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, name, spec, scope, created_at, created_by FROM alert_rules ORDER BY name",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, name, spec, scope, created_at, created_by) = row?;
                out.push(AlertRule {
                    spec: parse_json(&spec, &format!("alert rule {name}"))?,
                    id,
                    name,
                    scope,
                    created_at,
                    created_by,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn delete_rule(&self, id: i64) -> Result<bool, StoreError> {
        self.with(move |c| Ok(c.execute("DELETE FROM alert_rules WHERE id = ?1", [id])? > 0))
            .await
    }

    async fn alerts(&self, open_only: bool, limit: u32) -> Result<Vec<Alert>, StoreError> {
        self.with(move |c| {
            let filter = if open_only {
                "WHERE a.resolved_at IS NULL"
            } else {
                ""
            };
            let mut stmt = c.prepare(&format!(
                "SELECT {ALERT_COLUMNS} {filter} ORDER BY a.fired_at DESC, a.id DESC LIMIT ?1"
            ))?;
            let rows = stmt.query_map([limit], alert_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn apply_alerts(
        &self,
        opened: Vec<NewAlert>,
        resolved: Vec<i64>,
        now: Timestamp,
        body: for<'x> fn(&'x Alert, bool) -> String,
    ) -> Result<(), StoreError> {
        self.with(move |c| {
            let tx = c.transaction()?;
            let hooks: Vec<i64> = {
                let mut stmt = tx.prepare("SELECT id FROM webhooks")?;
                stmt.query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?
            };
            let mut changed = Vec::new();
            for a in opened {
                tx.execute(
                    "INSERT OR IGNORE INTO alerts (rule_id, device_id, subject, message, fired_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![a.rule_id, a.device_id, a.subject, a.message, now],
                )?;
                if tx.changes() > 0 {
                    changed.push((tx.last_insert_rowid(), true));
                }
            }
            for id in resolved {
                if tx.execute(
                    "UPDATE alerts SET resolved_at = ?2 WHERE id = ?1 AND resolved_at IS NULL",
                    params![id, now],
                )? > 0
                {
                    changed.push((id, false));
                }
            }
            for (id, fired) in changed {
                let alert = load_alert(&tx, id)?;
                let text = body(&alert, fired);
                for hook in &hooks {
                    tx.execute(
                        "INSERT INTO webhook_deliveries (webhook_id, body, next_attempt_at)
                         VALUES (?1, ?2, ?3)",
                        params![hook, text, now],
                    )?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn reports_since(
        &self,
        since: Timestamp,
        min_level: Level,
        limit: u32,
    ) -> Result<Vec<RecentReport>, StoreError> {
        let levels: Vec<&'static str> =
            [Level::Info, Level::Warning, Level::Error, Level::Critical]
                .into_iter()
                .filter(|l| *l >= min_level)
                .map(Level::as_str)
                .collect();
        self.with(move |c| {
            let list = levels
                .iter()
                .map(|l| format!("'{l}'"))
                .collect::<Vec<_>>()
                .join(",");
            let mut stmt = c.prepare(&format!(
                "SELECT device_id, received_at, level, policy, item, message FROM reports
                 WHERE received_at >= ?1 AND level IN ({list}) ORDER BY id LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![since, limit], |r| {
                let level: String = r.get(2)?;
                Ok(RecentReport {
                    device_id: r.get(0)?,
                    time: r.get(1)?,
                    level: Level::parse(&level).unwrap_or(Level::Info),
                    policy: r.get(3)?,
                    item: r.get(4)?,
                    message: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn samples_since(
        &self,
        since: Timestamp,
    ) -> Result<Vec<(String, Timestamp, Arc<Vec<String>>, Vec<u8>)>, StoreError> {
        self.with(move |c| {
            let mut names: BTreeMap<i64, Arc<Vec<String>>> = BTreeMap::new();
            let mut stmt = c.prepare(
                "SELECT s.device_id, s.time, s.names_id, s.vals, n.names FROM metric_samples s
                 JOIN metric_names n ON n.id = s.names_id
                 WHERE s.time >= ?1 ORDER BY s.device_id, s.time",
            )?;
            let rows = stmt.query_map([since], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (device, time, nid, vals, text) = row?;
                let list = match names.get(&nid) {
                    Some(l) => l.clone(),
                    None => {
                        let l = Arc::new(parse_json::<Vec<String>>(&text, "metric names")?);
                        names.insert(nid, l.clone());
                        l
                    }
                };
                out.push((device, time, list, vals));
            }
            Ok(out)
        })
        .await
    }

    async fn insert_webhook(
        &self,
        url: &str,
        sealed_secret: Option<&str>,
        actor: &str,
        now: Timestamp,
    ) -> Result<Webhook, StoreError> {
        let (url, secret, actor) = (
            url.to_string(),
            sealed_secret.map(str::to_string),
            actor.to_string(),
        );
        self.with(move |c| {
            let inserted = c.execute(
                "INSERT INTO webhooks (url, secret, created_at, created_by) VALUES (?1, ?2, ?3, ?4)",
                params![url, secret, now, actor],
            );
            match inserted {
                Ok(_) => Ok(Webhook {
                    id: c.last_insert_rowid(),
                    signed: secret.is_some(),
                    url,
                    sealed_secret: secret,
                    created_at: now,
                    created_by: actor,
                }),
                Err(e) if unique_violation(&e) => {
                    Err(StoreError::Conflict(format!("a webhook for {url} exists")))
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, url, secret, created_at, created_by FROM webhooks ORDER BY id",
            )?;
            let rows = stmt.query_map([], webhook_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn delete_webhook(&self, id: i64) -> Result<bool, StoreError> {
        self.with(move |c| Ok(c.execute("DELETE FROM webhooks WHERE id = ?1", [id])? > 0))
            .await
    }

    async fn due_deliveries(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare(
                "SELECT w.id, w.url, w.secret, w.created_at, w.created_by, d.id, d.body, d.attempts
                 FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
                 WHERE d.delivered_at IS NULL AND d.failed_at IS NULL AND d.next_attempt_at <= ?1
                 ORDER BY d.id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![now, limit], |r| {
                Ok(Delivery {
                    webhook: webhook_row(r)?,
                    id: r.get(5)?,
                    body: r.get(6)?,
                    attempts: r.get(7)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn record_delivery(
        &self,
        id: i64,
        now: Timestamp,
        error: Option<String>,
        retry_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        self.with(move |c| {
            match (&error, retry_at) {
                (None, _) => c.execute(
                    "UPDATE webhook_deliveries SET attempts = attempts + 1, delivered_at = ?2,
                     last_error = NULL WHERE id = ?1",
                    params![id, now],
                )?,
                (Some(e), Some(at)) => c.execute(
                    "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ?2,
                     last_error = ?3 WHERE id = ?1",
                    params![id, at, e],
                )?,
                (Some(e), None) => c.execute(
                    "UPDATE webhook_deliveries SET attempts = attempts + 1, failed_at = ?2,
                     last_error = ?3 WHERE id = ?1",
                    params![id, now, e],
                )?,
            };
            Ok(())
        })
        .await
    }

    async fn delivery_counts(&self) -> Result<DeliveryCounts, StoreError> {
        self.with(|c| {
            let (pending, delivered, failed): (i64, i64, i64) = c.query_row(
                "SELECT
                   COALESCE(SUM(delivered_at IS NULL AND failed_at IS NULL), 0),
                   COALESCE(SUM(delivered_at IS NOT NULL), 0),
                   COALESCE(SUM(failed_at IS NOT NULL), 0)
                 FROM webhook_deliveries",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let last_error = c
                .query_row(
                    "SELECT last_error FROM webhook_deliveries
                     WHERE last_error IS NOT NULL AND delivered_at IS NULL ORDER BY id DESC LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(DeliveryCounts {
                pending: pending as u64,
                delivered: delivered as u64,
                failed: failed as u64,
                last_error,
            })
        })
        .await
    }
}

fn load_alert(tx: &Transaction<'_>, id: i64) -> rusqlite::Result<Alert> {
    tx.query_row(
        &format!("SELECT {ALERT_COLUMNS} WHERE a.id = ?1"),
        [id],
        alert_row,
    )
}
