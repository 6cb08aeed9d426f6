//! The `metrics_monitor` policy: each threshold compared with the cycle's metric sample,
//! reported only when a series crosses it (at the threshold's level) and when it recovers
//! (info). Between the two, nothing is reported, however long the crossing lasts.
//!
//! Where each series stands (within limits, past them for N cycles, crossed) is kept in the
//! converged record in the state dir, so a reboot reports a crossing that still holds once
//! more.

use apiary_proto::device_api::Level;
use apiary_proto::metrics;
use apiary_proto::policy::InBundle;
use apiary_proto::policy::metrics_monitor::{MetricsMonitor, Threshold};

use super::converged::Converged;
use super::{Context, ItemPolicy, Outcome, Status};

const CROSSED: &str = "crossed";
const WITHIN: &str = "within";

impl ItemPolicy for MetricsMonitor {
    type Item = Threshold;
    type Tools = ();

    fn items(&self) -> &[Threshold] {
        &self.items
    }

    fn item_name(t: &Threshold) -> String {
        t.metric.clone()
    }

    fn converge_item(
        &self,
        _: &(),
        t: &Threshold,
        ctx: &Context<'_>,
        record: &mut Converged,
        out: &mut Vec<Outcome>,
    ) -> Result<(), String> {
        let Some(sample) = ctx.metrics else {
            return Err("no metric sample to compare: metrics are off in settings".into());
        };
        let mut seen = false;
        for (series, value) in sample.iter().filter(|(s, _)| t.watches(s)) {
            seen = true;
            let Some(value) = *value else { continue };
            out.push(compare(t, series, value, record));
        }
        if !seen {
            out.push(Outcome::unchanged(
                Self::NAME,
                t.metric.clone(),
                format!("{}: no such series on this device", t.metric),
            ));
        }
        Ok(())
    }
}

/// Moves `series` along: within → past for k cycles → crossed (reported) → within
/// (reported as recovered).
fn compare(t: &Threshold, series: &str, value: f64, record: &mut Converged) -> Outcome {
    let key = format!("{}\0{series}", t.metric);
    let before = record.get(&key).unwrap_or(WITHIN).to_string();
    let was_crossed = before == CROSSED;
    let unit = metrics::definition(series).map_or("", |d| d.unit);
    let shown = format!("{series} is {} {unit}", round(value));
    let limits = describe(t, unit);
    let mut outcome = Outcome::unchanged(MetricsMonitor::NAME, series.to_string(), shown.clone());
    if t.crossed_by(value) {
        let past = before
            .strip_prefix("past:")
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
            + 1;
        if was_crossed {
            return outcome;
        }
        if past >= t.cycles {
            record.record(&key, CROSSED);
            outcome.status = Status::Changed;
            outcome.level = t.level;
            outcome.message = format!("{shown}, past its limit ({limits})");
        } else {
            record.record(&key, &format!("past:{past}"));
        }
    } else {
        record.record(&key, WITHIN);
        if was_crossed {
            outcome.status = Status::Changed;
            outcome.level = Level::Info;
            outcome.message = format!("{shown}, back within its limit ({limits})");
        }
    }
    outcome
}

fn describe(t: &Threshold, unit: &str) -> String {
    let mut parts = Vec::new();
    if let Some(a) = t.above {
        parts.push(format!("above {} {unit}", round(a.0)));
    }
    if let Some(b) = t.below {
        parts.push(format!("below {} {unit}", round(b.0)));
    }
    parts.join(" or ").replace(" )", ")")
}

/// Values as people read them: whole numbers bare, others with at most three decimals.
fn round(v: f64) -> String {
    let text = format!("{v:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use apiary_proto::policy::metrics_monitor::Limit;

    fn threshold(metric: &str, above: f64, cycles: u32) -> Threshold {
        Threshold {
            metric: metric.into(),
            above: Some(Limit(above)),
            below: None,
            level: Level::Error,
            cycles,
        }
    }

    fn step(t: &Threshold, value: f64, record: &mut Converged) -> (Status, Level, String) {
        let o = compare(t, "fs.used:/data", value, record);
        (o.status, o.level, o.message)
    }

    #[test]
    fn a_crossing_and_its_recovery_are_reported_once_each() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut record = Converged::load(dir.path(), "metrics_monitor");
        let t = threshold("fs.used", 90.0, 1);
        assert_eq!(step(&t, 50.0, &mut record).0, Status::Unchanged);
        let (status, level, message) = step(&t, 93.25, &mut record);
        assert_eq!((status, level), (Status::Changed, Level::Error));
        assert_eq!(
            message,
            "fs.used:/data is 93.25 %, past its limit (above 90 %)"
        );
        assert_eq!(
            step(&t, 95.0, &mut record).0,
            Status::Unchanged,
            "still crossed: quiet"
        );
        let (status, level, message) = step(&t, 70.0, &mut record);
        assert_eq!((status, level), (Status::Changed, Level::Info));
        assert!(message.contains("back within its limit"), "{message}");
        assert_eq!(step(&t, 70.0, &mut record).0, Status::Unchanged);
        assert_eq!(
            (round(0.001), round(90.0), round(-2.5)),
            ("0.001".into(), "90".into(), "-2.5".into())
        );
    }

    #[test]
    fn cycles_delay_the_crossing_and_a_dip_starts_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut record = Converged::load(dir.path(), "metrics_monitor");
        let t = threshold("fs.used", 90.0, 3);
        assert_eq!(step(&t, 95.0, &mut record).0, Status::Unchanged);
        assert_eq!(step(&t, 95.0, &mut record).0, Status::Unchanged);
        assert_eq!(
            step(&t, 80.0, &mut record).0,
            Status::Unchanged,
            "dipped: no recovery report"
        );
        assert_eq!(step(&t, 95.0, &mut record).0, Status::Unchanged);
        assert_eq!(step(&t, 95.0, &mut record).0, Status::Unchanged);
        assert_eq!(
            step(&t, 95.0, &mut record).0,
            Status::Changed,
            "third in a row"
        );
    }
}
