//! Metrics on the backend: how long samples are kept ([`Retention`], pruned by
//! [`prune_forever`]), and the series a graph or the CLI asks for ([`query`]), raw or by
//! hour, whatever names lists the rows were stored under.

pub mod codec;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::store::monitoring::MetricRows;
use crate::store::{Store, StoreError, Timestamp};

/// How long samples are kept, raw and by hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::Args)]
pub struct Retention {
    /// Days raw metric samples are kept
    #[arg(long = "metrics-raw-days", default_value_t = 7)]
    pub raw_days: u32,
    /// Days hourly metric aggregates are kept (13 months by default)
    #[arg(long = "metrics-hourly-days", default_value_t = 397)]
    pub hourly_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            raw_days: 7,
            hourly_days: 397,
        }
    }
}

impl Retention {
    /// The oldest raw sample and hour kept at `now`.
    pub fn cutoffs(&self, now: Timestamp) -> (Timestamp, Timestamp) {
        let days = |d: u32| now - i64::from(d) * 86400;
        (
            days(self.raw_days),
            days(self.hourly_days.max(self.raw_days)),
        )
    }
}

/// Deletes what [`Retention`] no longer keeps, every ten minutes.
pub async fn prune_forever(store: Arc<dyn Store>, retention: Retention) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        let (raw, hourly) = retention.cutoffs(crate::state::now());
        match store.prune_metrics(raw, hourly).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!("pruned {n} metric rows"),
            Err(e) => tracing::warn!("pruning metrics: {e}"),
        }
    }
}

/// Which rows a query reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    Raw,
    Hourly,
}

/// Series over a time range, columnar as chart libraries take them.
#[derive(Clone, Debug, Serialize)]
pub struct SeriesSet {
    pub resolution: Resolution,
    pub from: Timestamp,
    pub to: Timestamp,
    /// A time per point (sample time, or hour start).
    pub times: Vec<Timestamp>,
    pub series: Vec<Series>,
}

/// One series: a value per time (the hour's mean when hourly), `null` where there is none.
#[derive(Clone, Debug, Serialize)]
pub struct Series {
    pub name: String,
    pub unit: &'static str,
    pub values: Vec<Option<f32>>,
    /// Hourly only: each hour's least and greatest value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<Vec<Option<f32>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<Vec<Option<f32>>>,
}

/// The series of `device_id` from `from` to `to`: raw when the range is within raw
/// retention and a week long at most (or `resolution` says so), hourly otherwise. `only`
/// keeps the series it names (all when empty).
pub async fn query(
    store: &dyn Store,
    device_id: &str,
    (from, to): (Timestamp, Timestamp),
    resolution: Option<Resolution>,
    retention: Retention,
    only: &[String],
) -> Result<SeriesSet, StoreError> {
    let (raw_kept, _) = retention.cutoffs(crate::state::now());
    let resolution = resolution.unwrap_or(if from >= raw_kept && to - from <= 7 * 86400 {
        Resolution::Raw
    } else {
        Resolution::Hourly
    });
    let rows = store
        .metric_rows(device_id, from, to, resolution == Resolution::Raw)
        .await?;
    Ok(columns(rows, resolution, (from, to), only))
}

fn columns(
    rows: MetricRows,
    resolution: Resolution,
    (from, to): (Timestamp, Timestamp),
    only: &[String],
) -> SeriesSet {
    let hourly = resolution == Resolution::Hourly;
    let list = if hourly { rows.hourly } else { rows.raw };
    // Every name seen, in order of first appearance, filtered.
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut series: Vec<Series> = Vec::new();
    for (_, names, _) in &list {
        for n in names.iter() {
            if index.contains_key(n) || (!only.is_empty() && !only.contains(n)) {
                continue;
            }
            index.insert(n.clone(), series.len());
            series.push(Series {
                name: n.clone(),
                unit: apiary_proto::metrics::definition(n).map_or("", |d| d.unit),
                values: Vec::new(),
                min: hourly.then(Vec::new),
                max: hourly.then(Vec::new),
            });
        }
    }
    let mut times = Vec::with_capacity(list.len());
    for (point, (time, names, blob)) in list.iter().enumerate() {
        times.push(*time);
        for s in &mut series {
            s.values.push(None);
            if let Some(m) = &mut s.min {
                m.push(None);
            }
            if let Some(m) = &mut s.max {
                m.push(None);
            }
        }
        let positions = names.iter().map(|n| index.get(n).copied());
        if hourly {
            for (slot, agg) in positions.zip(codec::decode_hour(blob)) {
                if let (Some(i), Some(mean)) = (slot, agg.mean()) {
                    let s = &mut series[i];
                    s.values[point] = Some(mean);
                    s.min.as_mut().expect("hourly")[point] = Some(agg.min);
                    s.max.as_mut().expect("hourly")[point] = Some(agg.max);
                }
            }
        } else {
            for (slot, v) in positions.zip(codec::decode(blob)) {
                if let Some(i) = slot {
                    series[i].values[point] = v;
                }
            }
        }
    }
    SeriesSet {
        resolution,
        from,
        to,
        times,
        series,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_under_different_names_lists_line_up() {
        let a = Arc::new(vec!["load.1".to_string(), "fs.used:/".to_string()]);
        let b = Arc::new(vec!["fs.used:/".to_string(), "fs.used:/data".to_string()]);
        let rows = MetricRows {
            raw: vec![
                (100, a.clone(), codec::encode(&[Some(0.5), Some(40.0)])),
                (200, b.clone(), codec::encode(&[Some(41.0), Some(7.0)])),
            ],
            hourly: Vec::new(),
        };
        let set = columns(rows, Resolution::Raw, (0, 300), &[]);
        assert_eq!(set.times, [100, 200]);
        let names: Vec<&str> = set.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["load.1", "fs.used:/", "fs.used:/data"]);
        assert_eq!(set.series[0].values, [Some(0.5), None]);
        assert_eq!(set.series[1].values, [Some(40.0), Some(41.0)]);
        assert_eq!(set.series[2].values, [None, Some(7.0)]);
        assert_eq!(set.series[1].unit, "%");

        let hour = codec::add_to_hour(
            &codec::add_to_hour(&[], &[Some(1.0), Some(10.0)]),
            &[Some(3.0), None],
        );
        let rows = MetricRows {
            raw: Vec::new(),
            hourly: vec![(3600, a, hour)],
        };
        let set = columns(rows, Resolution::Hourly, (0, 7200), &["load.1".to_string()]);
        assert_eq!(set.series.len(), 1);
        assert_eq!(set.series[0].values, [Some(2.0)]);
        assert_eq!(set.series[0].max.as_deref(), Some(&[Some(3.0)][..]));
    }
}
