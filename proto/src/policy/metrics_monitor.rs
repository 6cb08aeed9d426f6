//! `metrics_monitor`: thresholds on the device's metrics. The agent reports a crossing once,
//! at the level the threshold names, and the recovery once, as info.

use serde::{Deserialize, Serialize};

use super::parts::Listed;
use super::rules::unique;
use super::{CompileError, Merge, Policy, Resolve};
use crate::device_api::Level;
use crate::metrics;

/// The thresholds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsMonitor {
    pub items: Vec<Threshold>,
}

/// A limit on a metric's value. Documents are JSON, which has no NaN, and validation
/// refuses infinities, so comparing the bits is equality.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Limit(pub f64);

impl PartialEq for Limit {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Limit {}

/// One threshold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// A series (`cpu.user`, `fs.used:/data`), or a metric that has instances (`fs.used`)
    /// for each of them.
    pub metric: String,
    /// Crossed when the value goes above this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<Limit>,
    /// Crossed when the value goes below this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<Limit>,
    /// Level of the crossing's report: warning (default), error or critical.
    #[serde(default = "warning")]
    pub level: Level,
    /// Consecutive cycles past the limit before it counts as crossed (default 1).
    #[serde(default = "one")]
    pub cycles: u32,
}

fn warning() -> Level {
    Level::Warning
}

fn one() -> u32 {
    1
}

/// Most cycles a threshold may wait for.
pub const MAX_CYCLES: u32 = 100;

impl Threshold {
    /// Whether `series` (a name as samples carry it) is one this threshold watches.
    pub fn watches(&self, series: &str) -> bool {
        series == self.metric
            || series
                .split_once(':')
                .is_some_and(|(name, _)| name == self.metric)
    }

    /// Whether `value` is past the limits.
    pub fn crossed_by(&self, value: f64) -> bool {
        self.above.is_some_and(|a| value > a.0) || self.below.is_some_and(|b| value < b.0)
    }
}

impl Policy for MetricsMonitor {
    const SUMMARY: &'static str =
        "Thresholds on metrics: a report when one is crossed, another on recovery.";
    const MERGE: Merge = Merge::List {
        items: "items",
        key: "metric",
    };
    type Document = Listed<Threshold>;

    fn validate_document(doc: &Listed<Threshold>) -> Result<(), String> {
        validate_items(&doc.items)
    }

    fn compile(doc: Listed<Threshold>, _: &mut dyn Resolve) -> Result<Option<Self>, CompileError> {
        Ok(Some(MetricsMonitor { items: doc.items }))
    }

    fn validate(&self) -> Result<(), String> {
        validate_items(&self.items)
    }
}

impl MetricsMonitor {
    /// The checks of every threshold (what a bundle's `validate` runs), for other users of
    /// [`Threshold`] such as the backend's alert rules.
    pub fn validate_thresholds(&self) -> Result<(), String> {
        validate_items(&self.items)
    }
}

fn validate_items(items: &[Threshold]) -> Result<(), String> {
    for t in items {
        let known = metrics::definition(&t.metric).is_some()
            || metrics::METRICS
                .iter()
                .any(|m| m.name == t.metric && m.instance.is_some());
        if !known || t.metric.len() > metrics::MAX_NAME {
            let names: Vec<&str> = metrics::METRICS.iter().map(|m| m.name).collect();
            return Err(format!(
                "{:?} is not a metric; use one of {} (with :instance for one filesystem, interface or zone)",
                t.metric,
                names.join(", ")
            ));
        }
        let limits = [t.above, t.below];
        if limits.iter().all(Option::is_none) {
            return Err(format!("{}: give above, below or both", t.metric));
        }
        if limits.iter().flatten().any(|l| !l.0.is_finite()) {
            return Err(format!("{}: limits must be finite numbers", t.metric));
        }
        if let (Some(a), Some(b)) = (t.above, t.below)
            && b.0 >= a.0
        {
            return Err(format!(
                "{}: below ({}) must be less than above ({})",
                t.metric, b.0, a.0
            ));
        }
        if t.level == Level::Info {
            return Err(format!(
                "{}: level must be warning, error or critical (recoveries are info)",
                t.metric
            ));
        }
        if !(1..=MAX_CYCLES).contains(&t.cycles) {
            return Err(format!("{}: cycles must be 1 to {MAX_CYCLES}", t.metric));
        }
    }
    unique("metric", items.iter().map(|t| t.metric.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threshold(metric: &str, above: Option<f64>, below: Option<f64>) -> Threshold {
        Threshold {
            metric: metric.into(),
            above: above.map(Limit),
            below: below.map(Limit),
            level: Level::Warning,
            cycles: 1,
        }
    }

    #[test]
    fn thresholds_name_metrics_and_sane_limits() {
        let ok = [
            threshold("cpu.user", Some(90.0), None),
            threshold("fs.used", Some(85.0), None),
            threshold("fs.free:/data", None, Some(1e9)),
            threshold("temp", Some(80.0), Some(-20.0)),
        ];
        assert_eq!(validate_items(&ok), Ok(()));
        for (bad, want) in [
            (threshold("cpu.steal", Some(1.0), None), "not a metric"),
            (threshold("cpu.user:0", Some(1.0), None), "not a metric"),
            (threshold("load.1", None, None), "above, below or both"),
            (threshold("temp", Some(10.0), Some(20.0)), "less than above"),
            (threshold("load.1", Some(f64::INFINITY), None), "finite"),
        ] {
            let err = validate_items(&[bad]).expect_err(want);
            assert!(err.contains(want), "{err}");
        }
        let dup = [
            threshold("load.1", Some(2.0), None),
            threshold("load.1", Some(3.0), None),
        ];
        assert!(validate_items(&dup).is_err());
    }

    #[test]
    fn a_metric_watches_its_instances() {
        let fs = threshold("fs.used", Some(90.0), None);
        assert!(fs.watches("fs.used:/") && fs.watches("fs.used:/data"));
        assert!(!fs.watches("fs.free:/") && !fs.watches("fs.usedx:/"));
        let one = threshold("fs.used:/data", Some(90.0), None);
        assert!(one.watches("fs.used:/data") && !one.watches("fs.used:/"));
        assert!(fs.crossed_by(90.5) && !fs.crossed_by(90.0));
        let band = threshold("temp", Some(80.0), Some(0.0));
        assert!(band.crossed_by(-1.0) && band.crossed_by(81.0) && !band.crossed_by(40.0));
    }
}
