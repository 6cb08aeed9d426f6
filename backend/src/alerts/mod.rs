//! Alerts: rules evaluated on the backend every `--alert-interval` seconds against the
//! fleet as stored ([`evaluate_once`]), alerts opened and resolved with timestamps, and each
//! change sent to every webhook ([`webhooks`]).

pub mod rules;
pub mod webhooks;

use std::collections::BTreeMap;
use std::time::Duration;

use apiary_proto::device_api::Level;
use serde_json::json;

use crate::metrics::codec;
use crate::state::{AppState, Shared, now};
use crate::store::alerts::{Alert, NewAlert};
use crate::store::{DeviceStatus, StoreError};
use rules::{DeviceState, RuleSpec, Snapshot, Verdict};

/// Reports one evaluation reads at most.
const MAX_REPORTS: u32 = 100_000;
/// Open alerts one evaluation considers at most.
const MAX_OPEN: u32 = 1_000_000;

/// The JSON body a webhook receives for one change (documented in docs/monitoring.md).
pub fn webhook_body(alert: &Alert, fired: bool) -> String {
    json!({
        "event": if fired { "alert.fired" } else { "alert.resolved" },
        "alert": alert,
        "sent_by": format!("apiary-backend {}", apiary_proto::VERSION),
    })
    .to_string()
}

/// Evaluates every rule once: opens the alerts that fire and are not open, resolves the
/// open ones that no longer fire. Returns how many were opened and resolved.
pub async fn evaluate_once(state: &AppState) -> Result<(usize, usize), StoreError> {
    let rules = state.store.rules().await?;
    if rules.is_empty() {
        return Ok((0, 0));
    }
    let snapshot = snapshot(state, &rules.iter().map(|r| &r.spec).collect::<Vec<_>>()).await?;
    let open = state.store.alerts(true, MAX_OPEN).await?;
    let mut opened = Vec::new();
    let mut resolved = Vec::new();
    for rule in &rules {
        let verdicts: BTreeMap<(String, String), Verdict> =
            rules::evaluate(&rule.spec, rule.scope.as_deref(), &snapshot)
                .into_iter()
                .map(|(d, s, v)| ((d, s), v))
                .collect();
        let mine: Vec<&Alert> = open.iter().filter(|a| a.rule_id == rule.id).collect();
        for a in &mine {
            let key = (a.device_id.clone(), a.subject.clone());
            if matches!(verdicts.get(&key), None | Some(Verdict::Clear)) {
                resolved.push(a.id);
            }
        }
        for ((device_id, subject), verdict) in verdicts {
            let Verdict::Firing(message) = verdict else {
                continue;
            };
            if !mine
                .iter()
                .any(|a| a.device_id == device_id && a.subject == subject)
            {
                opened.push(NewAlert {
                    rule_id: rule.id,
                    device_id,
                    subject,
                    message: format!("{}: {message}", rule.name),
                });
            }
        }
    }
    let counts = (opened.len(), resolved.len());
    if counts != (0, 0) {
        state
            .store
            .apply_alerts(opened, resolved, now(), webhook_body)
            .await?;
    }
    Ok(counts)
}

/// The fleet as the rules need it: devices always, samples and reports as far back as the
/// longest rule looks.
async fn snapshot(state: &AppState, specs: &[&RuleSpec]) -> Result<Snapshot, StoreError> {
    let now = now();
    let devices = state
        .store
        .list_devices(Some(DeviceStatus::Approved))
        .await?
        .into_iter()
        .map(|d| DeviceState {
            last_seen: d.last_checkin.or(d.approved_at).unwrap_or(d.requested_at),
            id: d.id,
            name: d.name,
            group: d.group,
        })
        .collect();
    let mut snap = Snapshot {
        now,
        devices,
        ..Snapshot::default()
    };
    let lookback =
        |f: fn(&RuleSpec) -> bool| specs.iter().filter(|s| f(s)).map(|s| s.lookback()).max();
    if let Some(back) = lookback(|s| matches!(s, RuleSpec::Metric { .. })) {
        for (device, time, names, vals) in state.store.samples_since(now - back as i64).await? {
            snap.samples
                .entry(device)
                .or_default()
                .push((time, names, codec::decode(&vals)));
        }
    }
    if let Some(back) = lookback(|s| matches!(s, RuleSpec::Report { .. })) {
        let lowest = specs
            .iter()
            .filter_map(|s| match s {
                RuleSpec::Report { min_level, .. } => Some(*min_level),
                _ => None,
            })
            .min()
            .unwrap_or(Level::Error);
        snap.reports = state
            .store
            .reports_since(now - back as i64, lowest, MAX_REPORTS)
            .await?;
    }
    Ok(snap)
}

/// Evaluates the rules every `every`, for as long as the server runs.
pub async fn evaluate_forever(state: Shared, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match evaluate_once(&state).await {
            Ok((0, 0)) => {}
            Ok((opened, resolved)) => {
                tracing::info!("alerts: {opened} fired, {resolved} resolved")
            }
            Err(e) => tracing::warn!("evaluating alert rules: {e}"),
        }
    }
}
