//! Metrics: samples taken every cycle (and, with `settings.metrics_interval_seconds`,
//! between cycles), queued in the state dir (tmpfs) and sent with the check-in until the
//! backend acknowledges them.
//!
//! The queue holds the series' names once; every sample is a row of values in that order.
//! When the names change (a filesystem mounted, an interface gone) the queued rows are
//! rewritten to the new order, a series that is gone losing its unsent values, and the
//! names go up again with the next batch.

pub mod sample;

use std::collections::VecDeque;
use std::path::Path;

use apiary_proto::device_api::METRICS_BATCH_BYTES;
use apiary_proto::metrics::{MAX_SAMPLES_PER_CHECKIN, MetricsUpload, Sample};
use serde::{Deserialize, Serialize};

use crate::safe_fs;

/// State-dir file of the queue.
const QUEUE_FILE: &str = "metrics.json";
/// Samples kept while the backend is out of reach: a week at the default interval; the
/// oldest go first.
pub const MAX_QUEUED: usize = 2016;

/// The queue of samples not yet acknowledged, with the counters rates are computed from.
#[derive(Default, Serialize, Deserialize)]
pub struct Queue {
    names: Vec<String>,
    /// The backend has `names` for this device.
    names_acked: bool,
    /// Sequence number of the next sample.
    next_seq: u64,
    samples: VecDeque<Sample>,
    /// Samples dropped because the queue was full.
    dropped: u64,
    counters: sample::Counters,
    /// The last sample was taken at this uptime (seconds), so a cycle right after a finer
    /// sample does not take another.
    #[serde(default)]
    last_uptime: f64,
}

impl Queue {
    /// The queue in the state dir, or a fresh one (after a reboot, or if it does not parse).
    pub fn load(state_dir: &Path) -> Self {
        safe_fs::read(&state_dir.join(QUEUE_FILE), safe_fs::STATE_FILE_LIMIT)
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| Queue {
                next_seq: 1,
                ..Queue::default()
            })
    }

    pub fn save(&self, state_dir: &Path) {
        let json = serde_json::to_vec(self).expect("the metrics queue serialises");
        if let Err(e) = safe_fs::write_atomic(&state_dir.join(QUEUE_FILE), &json, 0o600) {
            eprintln!("warning: cannot save the metrics queue: {e}");
        }
    }

    /// Takes a sample at `time` (the agent's clock), unless one was taken less than
    /// `min_gap` seconds ago. The latest reading is returned for the metrics monitor.
    pub fn sample(&mut self, time: u64, min_gap: f64) -> Option<Vec<(String, Option<f64>)>> {
        let uptime = sample::uptime();
        if self.last_uptime > 0.0
            && uptime >= self.last_uptime
            && uptime - self.last_uptime < min_gap
        {
            return None;
        }
        self.last_uptime = uptime;
        let reading = sample::read(&mut self.counters, uptime);
        let names: Vec<String> = reading.iter().map(|(n, _)| n.clone()).collect();
        if names != self.names {
            self.rename(names);
        }
        self.samples.push_back(Sample {
            time,
            values: reading.iter().map(|(_, v)| *v).collect(),
        });
        self.next_seq += 1;
        while self.samples.len() > MAX_QUEUED {
            self.samples.pop_front();
            self.dropped += 1;
        }
        Some(reading)
    }

    /// Rewrites the queued rows to `names`' order.
    fn rename(&mut self, names: Vec<String>) {
        let map: Vec<Option<usize>> = names
            .iter()
            .map(|n| self.names.iter().position(|old| old == n))
            .collect();
        for s in &mut self.samples {
            s.values = map
                .iter()
                .map(|i| i.and_then(|i| s.values.get(i).copied().flatten()))
                .collect();
        }
        self.names = names;
        self.names_acked = false;
    }

    /// The oldest unacknowledged samples, as many as one check-in carries, with the names
    /// when the backend may not have them.
    pub fn outgoing(&self) -> Option<MetricsUpload> {
        if self.samples.is_empty() {
            return None;
        }
        // A value is at most about 16 bytes of JSON; the time and brackets, 16 more.
        let per_sample = 16 * self.names.len() + 16;
        let count = (METRICS_BATCH_BYTES / per_sample).clamp(1, MAX_SAMPLES_PER_CHECKIN);
        Some(MetricsUpload {
            names: (!self.names_acked).then(|| self.names.clone()),
            seq: self.first_seq(),
            samples: self.samples.iter().take(count).cloned().collect(),
        })
    }

    fn first_seq(&self) -> u64 {
        self.next_seq - self.samples.len() as u64
    }

    /// The backend stored the samples up to `ack` (if it said so) and, unless it asked for
    /// them, the names that went with `sent`.
    pub fn acknowledged(&mut self, sent: &MetricsUpload, ack: Option<u64>, want_names: bool) {
        if want_names {
            self.names_acked = false;
        } else if sent.names.as_ref() == Some(&self.names) {
            self.names_acked = true;
        }
        if let Some(ack) = ack {
            while !self.samples.is_empty() && self.first_seq() <= ack {
                self.samples.pop_front();
            }
        }
    }

    /// Samples dropped from a full queue since the agent started, for its log.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(names: &[&str], rows: &[&[Option<f64>]]) -> Queue {
        let mut q = Queue {
            names: names.iter().map(|n| n.to_string()).collect(),
            next_seq: 1,
            ..Queue::default()
        };
        for (i, r) in rows.iter().enumerate() {
            q.samples.push_back(Sample {
                time: i as u64,
                values: r.to_vec(),
            });
            q.next_seq += 1;
        }
        q
    }

    #[test]
    fn samples_leave_once_acknowledged_and_names_once_taken() {
        let mut q = queue(&["load.1"], &[&[Some(1.0)], &[Some(2.0)], &[Some(3.0)]]);
        let up = q.outgoing().expect("samples");
        assert_eq!((up.seq, up.samples.len()), (1, 3));
        assert!(up.names.is_some(), "names until acknowledged");
        q.acknowledged(&up, Some(2), false);
        let up = q.outgoing().expect("one left");
        assert_eq!((up.seq, up.samples[0].values[0]), (3, Some(3.0)));
        assert!(up.names.is_none());
        q.acknowledged(&up, None, true);
        assert!(
            q.outgoing().expect("kept").names.is_some(),
            "asked for again"
        );
    }

    #[test]
    fn a_new_series_rewrites_queued_rows() {
        let mut q = queue(&["load.1", "net.rx:eth0"], &[&[Some(1.0), Some(10.0)]]);
        q.names_acked = true;
        q.rename(vec!["load.1".into(), "fs.used:/".into()]);
        assert_eq!(q.samples[0].values, [Some(1.0), None]);
        assert!(!q.names_acked);
    }

    #[test]
    fn a_full_queue_drops_the_oldest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut q = Queue::load(dir.path());
        for t in 0..(MAX_QUEUED as u64 + 5) {
            q.sample(t, 0.0);
        }
        assert_eq!(q.samples.len(), MAX_QUEUED);
        assert_eq!(q.dropped(), 5);
        assert_eq!(q.samples.front().map(|s| s.time), Some(5));
        q.save(dir.path());
        let back = Queue::load(dir.path());
        assert_eq!(back.first_seq(), 6);
        assert!(q.sample(1, 3600.0).is_none(), "too soon after the last one");
    }
}
