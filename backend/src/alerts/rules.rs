//! Alert rules: what operators ask to be told about, one kind per variant, checked when a
//! rule is made and evaluated against a [`Snapshot`] of the fleet (a pure function, so the
//! rules are tested without a clock or a database).

use std::collections::BTreeMap;
use std::sync::Arc;

use apiary_proto::device_api::Level;
use apiary_proto::metrics;
use apiary_proto::policy::metrics_monitor::{Limit, Threshold};
use serde::{Deserialize, Serialize};

use crate::store::Timestamp;

/// Longest wait a rule may ask for: a week.
pub const MAX_FOR_SECONDS: u64 = 7 * 86400;
/// A metric rule with no wait looks at the latest sample of this last stretch.
pub const LATEST_WITHIN: u64 = 3600;

/// What a rule watches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum RuleSpec {
    /// A device that has not checked in for `for_seconds`.
    Offline { for_seconds: u64 },
    /// A series past a limit in every sample of the last `for_seconds` (the latest sample
    /// when 0), evaluated on the backend from the stored samples.
    Metric {
        /// A series, or a metric with instances for each of them (as `metrics_monitor`).
        metric: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        above: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        below: Option<f64>,
        #[serde(default)]
        for_seconds: u64,
    },
    /// A device report at `min_level` or above, of `policy` if given, whose message
    /// contains `text` if given; resolved after `quiet_seconds` without another.
    Report {
        min_level: Level,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        policy: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default = "hour")]
        quiet_seconds: u64,
    },
}

fn hour() -> u64 {
    3600
}

impl RuleSpec {
    /// The checks a new rule passes, with a message naming the field.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            RuleSpec::Offline { for_seconds } => {
                if !(60..=MAX_FOR_SECONDS).contains(for_seconds) {
                    return Err(format!(
                        "for_seconds must be 60 to {MAX_FOR_SECONDS} (a week), got {for_seconds}"
                    ));
                }
            }
            RuleSpec::Metric { for_seconds, .. } => {
                let t = self.threshold().expect("a metric rule");
                apiary_proto::policy::metrics_monitor::MetricsMonitor { items: vec![t] }
                    .validate_thresholds()?;
                if *for_seconds > MAX_FOR_SECONDS {
                    return Err(format!("for_seconds must be at most {MAX_FOR_SECONDS}"));
                }
            }
            RuleSpec::Report {
                policy,
                text,
                quiet_seconds,
                ..
            } => {
                if policy
                    .as_deref()
                    .is_some_and(|p| p.is_empty() || p.len() > 64)
                {
                    return Err("policy must be 1 to 64 characters".into());
                }
                if text
                    .as_deref()
                    .is_some_and(|t| t.is_empty() || t.len() > 256)
                {
                    return Err("text must be 1 to 256 characters".into());
                }
                if !(60..=MAX_FOR_SECONDS).contains(quiet_seconds) {
                    return Err(format!("quiet_seconds must be 60 to {MAX_FOR_SECONDS}"));
                }
            }
        }
        Ok(())
    }

    /// The rule in words, for the dashboard: "offline for 10 min".
    pub fn describe(&self) -> String {
        let span = |s: u64| match s {
            s if s % 3600 == 0 && s > 0 => format!("{} h", s / 3600),
            s if s % 60 == 0 => format!("{} min", s / 60),
            s => format!("{s} s"),
        };
        match self {
            RuleSpec::Offline { for_seconds } => format!("offline for {}", span(*for_seconds)),
            RuleSpec::Metric {
                metric,
                above,
                below,
                for_seconds,
            } => {
                let mut out = metric.clone();
                if let Some(a) = above {
                    out.push_str(&format!(" above {a}"));
                }
                if let Some(b) = below {
                    out.push_str(&format!(" below {b}"));
                }
                if *for_seconds > 0 {
                    out.push_str(&format!(" for {}", span(*for_seconds)));
                }
                out
            }
            RuleSpec::Report {
                min_level,
                policy,
                text,
                quiet_seconds,
            } => {
                let mut out = format!("a report at {} or above", min_level.as_str());
                if let Some(p) = policy {
                    out.push_str(&format!(" from {p}"));
                }
                if let Some(t) = text {
                    out.push_str(&format!(" containing {t:?}"));
                }
                out.push_str(&format!("; resolved after {} quiet", span(*quiet_seconds)));
                out
            }
        }
    }

    /// A metric rule as the threshold it shares with `metrics_monitor`.
    fn threshold(&self) -> Option<Threshold> {
        match self {
            RuleSpec::Metric {
                metric,
                above,
                below,
                ..
            } => Some(Threshold {
                metric: metric.clone(),
                above: above.map(Limit),
                below: below.map(Limit),
                level: Level::Warning,
                cycles: 1,
            }),
            _ => None,
        }
    }

    /// How far back a snapshot's samples must reach for this rule.
    pub fn lookback(&self) -> u64 {
        match self {
            RuleSpec::Metric { for_seconds, .. } => (*for_seconds).max(LATEST_WITHIN),
            RuleSpec::Report { quiet_seconds, .. } => *quiet_seconds,
            RuleSpec::Offline { .. } => 0,
        }
    }
}

/// A device as rules see it.
#[derive(Clone, Debug)]
pub struct DeviceState {
    pub id: String,
    pub name: String,
    pub group: Option<String>,
    /// The last check-in, or the approval for a device that never checked in.
    pub last_seen: Timestamp,
}

/// A report as rules see it.
#[derive(Clone, Debug)]
pub struct RecentReport {
    pub device_id: String,
    pub time: Timestamp,
    pub level: Level,
    pub policy: String,
    pub item: Option<String>,
    pub message: String,
}

/// One stored sample as rules read it: time, the names list, a value per name.
pub type SampleRow = (Timestamp, Arc<Vec<String>>, Vec<Option<f32>>);

/// What the rules are evaluated against.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub now: Timestamp,
    /// Approved devices.
    pub devices: Vec<DeviceState>,
    /// Raw samples per device, in time order: time, names list, values.
    pub samples: BTreeMap<String, Vec<SampleRow>>,
    /// Reports since the longest lookback, oldest first.
    pub reports: Vec<RecentReport>,
}

/// What a rule says of one (device, subject).
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Fires, with what to say.
    Firing(String),
    /// Does not fire.
    Clear,
    /// Cannot tell (no samples): an open alert stays as it is.
    Unknown,
}

/// Whether `scope` (a group path, `None` for all) holds a device in `group`.
pub fn in_scope(scope: Option<&str>, group: Option<&str>) -> bool {
    match (scope, group) {
        (None, _) | (Some("/"), _) => true,
        (Some(s), Some(g)) => g == s || g.strip_prefix(s).is_some_and(|rest| rest.starts_with('/')),
        (Some(_), None) => false,
    }
}

/// The verdict on every (device, subject) the rule has something to say about. Pairs left
/// out are clear.
pub fn evaluate(
    spec: &RuleSpec,
    scope: Option<&str>,
    snapshot: &Snapshot,
) -> Vec<(String, String, Verdict)> {
    let devices = snapshot
        .devices
        .iter()
        .filter(|d| in_scope(scope, d.group.as_deref()));
    match spec {
        RuleSpec::Offline { for_seconds } => devices
            .filter(|d| snapshot.now - d.last_seen > *for_seconds as i64)
            .map(|d| {
                let minutes = (snapshot.now - d.last_seen) / 60;
                let message = format!("{} has not checked in for {minutes} min", d.name);
                (d.id.clone(), String::new(), Verdict::Firing(message))
            })
            .collect(),
        RuleSpec::Metric { for_seconds, .. } => {
            let t = spec.threshold().expect("a metric rule");
            let mut out = Vec::new();
            for d in devices {
                let Some(rows) = snapshot.samples.get(&d.id) else {
                    continue;
                };
                out.extend(
                    metric_verdicts(&t, *for_seconds, rows, snapshot.now, &d.name)
                        .into_iter()
                        .map(|(subject, v)| (d.id.clone(), subject, v)),
                );
            }
            out
        }
        RuleSpec::Report {
            min_level,
            policy,
            text,
            quiet_seconds,
        } => {
            let ids: Vec<&str> = devices.map(|d| d.id.as_str()).collect();
            let mut latest: BTreeMap<(String, String), String> = BTreeMap::new();
            for r in &snapshot.reports {
                let matches = r.level >= *min_level
                    && snapshot.now - r.time <= *quiet_seconds as i64
                    && policy.as_deref().is_none_or(|p| p == r.policy)
                    && text.as_deref().is_none_or(|t| r.message.contains(t))
                    && ids.contains(&r.device_id.as_str());
                if matches {
                    let subject = match &r.item {
                        Some(item) => format!("{}: {item}", r.policy),
                        None => r.policy.clone(),
                    };
                    let message = format!("{}: {}", r.level.as_str(), r.message);
                    latest.insert((r.device_id.clone(), subject), message);
                }
            }
            latest
                .into_iter()
                .map(|((device, subject), m)| (device, subject, Verdict::Firing(m)))
                .collect()
        }
    }
}

/// Per watched series of one device: firing when every sample in the window is past the
/// limit; unknown when the window holds none.
fn metric_verdicts(
    t: &Threshold,
    for_seconds: u64,
    rows: &[SampleRow],
    now: Timestamp,
    device: &str,
) -> Vec<(String, Verdict)> {
    let window = if for_seconds == 0 {
        LATEST_WITHIN
    } else {
        for_seconds
    } as i64;
    let recent: Vec<_> = rows.iter().filter(|r| now - r.0 <= window).collect();
    let mut series: Vec<&String> = Vec::new();
    for (_, names, _) in &recent {
        for n in names.iter().filter(|n| t.watches(n)) {
            if !series.contains(&n) {
                series.push(n);
            }
        }
    }
    series
        .into_iter()
        .map(|name| {
            let values: Vec<f64> = recent
                .iter()
                .filter_map(|(_, names, vals)| {
                    let i = names.iter().position(|n| n == name)?;
                    vals.get(i).copied().flatten().map(f64::from)
                })
                .collect();
            let judged: &[f64] = if for_seconds == 0 {
                values.last().map(std::slice::from_ref).unwrap_or(&[])
            } else {
                &values
            };
            let verdict = match judged.last() {
                None => Verdict::Unknown,
                Some(last) if judged.iter().all(|v| t.crossed_by(*v)) => {
                    let unit = metrics::definition(name).map_or("", |d| d.unit);
                    Verdict::Firing(format!("{device}: {name} is {last:.1} {unit}"))
                }
                Some(_) => Verdict::Clear,
            };
            (name.clone(), verdict)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_as_words() {
        assert_eq!(
            RuleSpec::Offline { for_seconds: 600 }.describe(),
            "offline for 10 min"
        );
        let metric = RuleSpec::Metric {
            metric: "fs.used:/".into(),
            above: Some(90.0),
            below: None,
            for_seconds: 7200,
        };
        assert_eq!(metric.describe(), "fs.used:/ above 90 for 2 h");
        let report = RuleSpec::Report {
            min_level: Level::Error,
            policy: Some("services".into()),
            text: None,
            quiet_seconds: 90,
        };
        assert_eq!(
            report.describe(),
            "a report at error or above from services; resolved after 90 s quiet"
        );
    }

    fn device(id: &str, group: &str, last_seen: Timestamp) -> DeviceState {
        DeviceState {
            id: id.into(),
            name: format!("{id}-name"),
            group: Some(group.into()),
            last_seen,
        }
    }

    #[test]
    fn scopes_are_subtrees() {
        assert!(in_scope(None, None));
        assert!(in_scope(Some("/plant"), Some("/plant/oslo")));
        assert!(in_scope(Some("/plant"), Some("/plant")));
        assert!(!in_scope(Some("/plant"), Some("/plantation")));
        assert!(!in_scope(Some("/plant"), None));
    }

    #[test]
    fn offline_devices_fire_after_their_wait() {
        let snap = Snapshot {
            now: 10_000,
            devices: vec![device("a", "/x", 9_000), device("b", "/x", 9_990)],
            ..Snapshot::default()
        };
        let out = evaluate(&RuleSpec::Offline { for_seconds: 600 }, None, &snap);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, "a");
        assert!(matches!(&out[0].2, Verdict::Firing(m) if m.contains("16 min")));
    }

    #[test]
    fn metrics_fire_when_every_sample_of_the_wait_is_past_the_limit() {
        let names = Arc::new(vec!["fs.used:/".to_string(), "fs.used:/data".to_string()]);
        let rows = |values: &[(Timestamp, f32, f32)]| {
            values
                .iter()
                .map(|(t, a, b)| (*t, names.clone(), vec![Some(*a), Some(*b)]))
                .collect::<Vec<_>>()
        };
        let spec = RuleSpec::Metric {
            metric: "fs.used".into(),
            above: Some(90.0),
            below: None,
            for_seconds: 600,
        };
        let mut snap = Snapshot {
            now: 10_000,
            devices: vec![device("a", "/x", 10_000)],
            ..Snapshot::default()
        };
        snap.samples.insert(
            "a".into(),
            rows(&[
                (9_000, 99.0, 10.0),
                (9_500, 95.0, 10.0),
                (9_800, 96.0, 91.0),
            ]),
        );
        let out = evaluate(&spec, None, &snap);
        let of = |s: &str| out.iter().find(|o| o.1 == s).map(|o| o.2.clone());
        assert!(matches!(of("fs.used:/"), Some(Verdict::Firing(m)) if m.contains("96.0 %")));
        assert_eq!(
            of("fs.used:/data"),
            Some(Verdict::Clear),
            "one sample of two past it"
        );
        snap.now = 100_000;
        let stale = evaluate(&spec, None, &snap);
        assert!(stale.is_empty(), "no samples in the window: {stale:?}");
    }

    #[test]
    fn reports_match_by_level_policy_and_text() {
        let report = |device: &str, time, level, policy: &str, message: &str| RecentReport {
            device_id: device.into(),
            time,
            level,
            policy: policy.into(),
            item: Some("/etc/app.conf".into()),
            message: message.into(),
        };
        let snap = Snapshot {
            now: 10_000,
            devices: vec![device("a", "/x", 10_000), device("b", "/y", 10_000)],
            reports: vec![
                report(
                    "a",
                    9_000,
                    Level::Error,
                    "file_distribution",
                    "checksum mismatch",
                ),
                report("a", 5_000, Level::Error, "file_distribution", "old news"),
                report(
                    "b",
                    9_500,
                    Level::Warning,
                    "file_distribution",
                    "drift restored",
                ),
            ],
            ..Snapshot::default()
        };
        let spec = RuleSpec::Report {
            min_level: Level::Error,
            policy: Some("file_distribution".into()),
            text: Some("checksum".into()),
            quiet_seconds: 3600,
        };
        let out = evaluate(&spec, None, &snap);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(
            (out[0].0.as_str(), out[0].1.as_str()),
            ("a", "file_distribution: /etc/app.conf")
        );
        assert!(evaluate(&spec, Some("/y"), &snap).is_empty());
    }

    #[test]
    fn rules_are_checked() {
        assert!(RuleSpec::Offline { for_seconds: 10 }.validate().is_err());
        let metric = |m: &str, above| RuleSpec::Metric {
            metric: m.into(),
            above,
            below: None,
            for_seconds: 300,
        };
        assert!(metric("memory.used", Some(90.0)).validate().is_ok());
        assert!(metric("memory.used", None).validate().is_err());
        assert!(metric("nonsense", Some(1.0)).validate().is_err());
        let json = r#"{"kind": "offline", "for_seconds": 900, "extra": 1}"#;
        assert!(
            serde_json::from_str::<RuleSpec>(json).is_err(),
            "unknown fields refused"
        );
    }
}
