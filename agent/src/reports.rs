//! The report queue: status messages waiting for the backend's ack, kept in the state dir.
//!
//! Reports carry a sequence number; the backend acks the highest one it stored and only then
//! are they dropped, so an outage loses nothing (up to the queue bound).

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};

use apiary_proto::device_api::{Level, REPORT_BATCH_BYTES, Report};
use serde::{Deserialize, Serialize};

use crate::safe_fs;

/// Reports kept while the backend is unreachable; older ones are dropped first.
pub const MAX_QUEUED: usize = 1000;
/// The file beside the queue recording the next sequence number (see `record_high_water`).
const SEQ_FILE: &str = "reports.seq";
/// Digits of the recorded number, and the line's length with the 16-character queue id.
const SEQ_DIGITS: usize = 20;
const SEQ_WIDTH: usize = 16 + 1 + SEQ_DIGITS + 1;

/// Reports sent in one check-in; the rest follow in later ones.
pub const MAX_PER_CHECKIN: usize = 200;

/// A new report, before it gets its sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewReport {
    pub level: Level,
    pub policy: String,
    pub item: Option<String>,
    pub message: String,
    pub output: Option<String>,
    pub bundle_serial: Option<u64>,
}

/// The persisted queue.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReportQueue {
    /// Random id of this queue; a new queue (after a reboot wiped tmpfs) restarts `seq` safely.
    queue_id: String,
    next_seq: u64,
    /// Reports dropped because the queue was full, not yet told to the backend.
    dropped: u64,
    reports: VecDeque<Report>,
    #[serde(skip)]
    dirty: bool,
    /// A save failed in this process (and was reported).
    #[serde(skip)]
    save_failed: bool,
    #[serde(skip)]
    path: PathBuf,
}

impl ReportQueue {
    /// Loads the queue from `state_dir`, or starts a new one if there is none or it is unreadable.
    pub fn load(state_dir: &Path) -> Self {
        let path = state_dir.join("reports.json");
        let loaded = safe_fs::read(&path, safe_fs::STATE_FILE_LIMIT)
            .ok()
            .flatten()
            .and_then(
                |bytes| match serde_json::from_slice::<ReportQueue>(&bytes) {
                    Ok(q) => Some(q),
                    Err(e) => {
                        eprintln!(
                            "warning: discarding unreadable report queue {}: {e}",
                            path.display()
                        );
                        None
                    }
                },
            );
        let mut queue = loaded.unwrap_or_else(|| ReportQueue {
            queue_id: apiary_proto::hex::random(8),
            next_seq: 1,
            dropped: 0,
            reports: VecDeque::new(),
            dirty: true,
            save_failed: false,
            path: PathBuf::new(),
        });
        // Numbers handed out after the last full save (a full state dir) are on record here.
        let high_water = safe_fs::read_text(&state_dir.join(SEQ_FILE), SEQ_WIDTH as u64 + 1)
            .ok()
            .flatten()
            .and_then(|text| {
                let (id, next) = text.trim().split_once(' ')?;
                (id == queue.queue_id).then(|| next.parse::<u64>().ok())?
            });
        if let Some(next) = high_water.filter(|&n| n > queue.next_seq) {
            queue.next_seq = next;
            queue.dirty = true;
        }
        queue.path = path;
        queue
    }

    /// Records `next_seq` where a full state dir cannot stop it: a fixed-size file made
    /// while there was room, then overwritten in place.
    fn record_high_water(&self) -> io::Result<()> {
        let path = self.path.with_file_name(SEQ_FILE);
        let line = format!(
            "{} {:0width$}\n",
            self.queue_id,
            self.next_seq,
            width = SEQ_DIGITS
        );
        match safe_fs::overwrite_in_place(&path, line.as_bytes()) {
            Ok(()) => Ok(()),
            Err(_) => safe_fs::write_atomic(&path, line.as_bytes(), 0o600).map_err(io::Error::from),
        }
    }

    /// The queue's id, sent with every check-in.
    pub fn id(&self) -> &str {
        &self.queue_id
    }

    /// Appends a report, dropping the oldest when full.
    pub fn push(&mut self, report: NewReport, now: u64) {
        if self.reports.len() >= MAX_QUEUED {
            self.reports.pop_front();
            self.dropped += 1;
        }
        self.reports.push_back(Report {
            seq: self.next_seq,
            time: now,
            level: report.level,
            policy: report.policy,
            item: report.item,
            message: report.message,
            output: report.output,
            bundle_serial: report.bundle_serial,
        });
        self.next_seq += 1;
        self.dirty = true;
    }

    /// The oldest unacked reports for one check-in: at most `count` of them and
    /// [`REPORT_BATCH_BYTES`] serialised, but always the oldest one. The queue is saved first,
    /// so an agent killed after sending never numbers new reports with sequence numbers the
    /// backend already holds (it would drop them as duplicates). A queue that cannot be saved
    /// (a full state dir) is still sent, its next number recorded in place in `reports.seq`.
    pub fn outgoing(&mut self, count: usize) -> Vec<Report> {
        if let Err(e) = self.save() {
            eprintln!("warning: cannot save the report queue before sending: {e}");
            if !std::mem::replace(&mut self.save_failed, true) {
                // Told with this very check-in: the backend learns of a full state dir
                // while it lasts, and the agent goes on converging.
                let message = format!(
                    "cannot save the report queue: {e}; reports are sent from memory and lost if the agent stops before it can save"
                );
                self.push(
                    NewReport {
                        level: Level::Error,
                        policy: "agent".into(),
                        item: Some("state".into()),
                        message,
                        output: None,
                        bundle_serial: None,
                    },
                    crate::cycle::now(),
                );
            }
            // Whatever the queue file says, no number handed out so far may come again.
            if let Err(e) = self.record_high_water() {
                eprintln!("warning: cannot record the report sequence number: {e}");
            }
        }
        let mut bytes = 0;
        let mut batch = Vec::new();
        for report in self.reports.iter().take(count.max(1)) {
            bytes += serde_json::to_vec(report).map_or(0, |b| b.len()) + 1;
            if !batch.is_empty() && bytes > REPORT_BATCH_BYTES {
                break;
            }
            batch.push(report.clone());
        }
        batch
    }

    /// Number of unacked reports.
    pub fn len(&self) -> usize {
        self.reports.len()
    }

    /// True when every report has been acked.
    pub fn is_empty(&self) -> bool {
        self.reports.is_empty()
    }

    /// Drops every report up to and including `seq`; tells of earlier drops once delivery works.
    pub fn ack(&mut self, seq: u64, now: u64) {
        let before = self.reports.len();
        while self.reports.front().is_some_and(|r| r.seq <= seq) {
            self.reports.pop_front();
        }
        if self.reports.len() != before {
            self.dirty = true;
        }
        if self.dropped > 0 {
            let dropped = std::mem::take(&mut self.dropped);
            self.push(
                NewReport {
                    level: Level::Warning,
                    policy: "agent".into(),
                    item: None,
                    message: format!(
                        "{dropped} reports were dropped because the queue of {MAX_QUEUED} was full while the backend was unreachable"
                    ),
                    output: None,
                    bundle_serial: None,
                },
                now,
            );
        }
    }

    /// Writes the queue to the state dir if it changed, and the sequence number beside it.
    pub fn save(&mut self) -> io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let bytes = serde_json::to_vec(self).expect("queue serialises infallibly");
        safe_fs::write_atomic(&self.path, &bytes, 0o600)?;
        self.dirty = false;
        // Made (or kept current) while there is room, for the day there is none.
        self.record_high_water()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(msg: &str) -> NewReport {
        NewReport {
            level: Level::Info,
            policy: "p".into(),
            item: None,
            message: msg.into(),
            output: None,
            bundle_serial: None,
        }
    }

    #[test]
    fn numbers_recorded_past_the_last_save_are_never_handed_out_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = ReportQueue::load(dir.path());
        q.push(report("a"), 1);
        q.save().unwrap();
        let seq_file = dir.path().join(SEQ_FILE);
        let line = std::fs::read_to_string(&seq_file).unwrap();
        assert_eq!(line.len(), SEQ_WIDTH, "{line:?}");
        // As if three more went out from memory while the queue could not be saved.
        let later = format!("{} {:020}\n", q.id(), 5);
        safe_fs::overwrite_in_place(&seq_file, later.as_bytes()).unwrap();
        let mut q = ReportQueue::load(dir.path());
        q.push(report("b"), 2);
        assert_eq!(q.outgoing(10).last().unwrap().seq, 5);
        // Another queue's record says nothing about this one.
        std::fs::remove_file(dir.path().join("reports.json")).unwrap();
        let fresh = ReportQueue::load(dir.path());
        assert_eq!(fresh.next_seq, 1);
    }

    #[test]
    fn unacked_reports_survive_a_reload_and_are_resent() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = ReportQueue::load(dir.path());
        q.push(report("a"), 1);
        q.push(report("b"), 2);
        q.save().unwrap();

        let mut q = ReportQueue::load(dir.path());
        let pending = q.outgoing(MAX_PER_CHECKIN);
        assert_eq!(pending.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2]);
        q.ack(1, 3);
        assert_eq!(q.outgoing(MAX_PER_CHECKIN)[0].message, "b");
        q.save().unwrap();

        let mut q2 = ReportQueue::load(dir.path());
        assert_eq!(q2.id(), q.id());
        assert_eq!(q2.outgoing(MAX_PER_CHECKIN).len(), 1);
    }

    #[test]
    fn ack_of_unknown_seq_keeps_newer_reports() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = ReportQueue::load(dir.path());
        q.push(report("a"), 1);
        q.ack(0, 1);
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn overflow_drops_oldest_and_says_so_after_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = ReportQueue::load(dir.path());
        for i in 0..MAX_QUEUED + 5 {
            q.push(report(&i.to_string()), 1);
        }
        assert_eq!(q.len(), MAX_QUEUED);
        assert_eq!(q.outgoing(MAX_PER_CHECKIN)[0].message, "5");
        assert_eq!(q.outgoing(MAX_PER_CHECKIN).len(), MAX_PER_CHECKIN);
        let last = q.reports.back().unwrap().seq;
        q.ack(last, 2);
        assert_eq!(q.len(), 1);
        assert!(
            q.outgoing(MAX_PER_CHECKIN)[0]
                .message
                .starts_with("5 reports were dropped")
        );
    }

    #[test]
    fn numbers_handed_out_are_on_disk_before_they_are_sent() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = ReportQueue::load(dir.path());
        q.push(report("a"), 1);
        let sent = q.outgoing(MAX_PER_CHECKIN);
        // Killed here, after sending: the next process must not number a report 1 again.
        let mut next = ReportQueue::load(dir.path());
        next.push(report("b"), 2);
        let seqs: Vec<u64> = next.outgoing(10).iter().map(|r| r.seq).collect();
        assert_eq!((sent[0].seq, seqs), (1, vec![1, 2]));
    }

    #[test]
    fn a_batch_fits_the_backend_s_body_limit_whatever_the_output() {
        use apiary_proto::device_api::{CheckinRequest, MAX_CHECKIN_BODY_BYTES};
        let dir = tempfile::tempdir().unwrap();
        let mut q = ReportQueue::load(dir.path());
        // Control characters are escaped six bytes each: the worst output for JSON.
        let output = "\u{1}".repeat(crate::command::OUTPUT_LIMIT);
        for i in 0..MAX_PER_CHECKIN {
            let mut r = report(&format!("report {i}"));
            r.output = Some(output.clone());
            q.push(r, 1);
        }
        let mut sent = 0;
        while !q.is_empty() {
            let batch = q.outgoing(MAX_PER_CHECKIN);
            assert!(!batch.is_empty());
            let request = CheckinRequest {
                queue_id: q.id().to_string(),
                reports: batch.clone(),
                ..CheckinRequest::default()
            };
            let body = serde_json::to_vec(&request).unwrap().len();
            assert!(body <= MAX_CHECKIN_BODY_BYTES, "{body} bytes");
            sent += batch.len();
            q.ack(batch.last().unwrap().seq, 2);
        }
        assert_eq!(
            sent, MAX_PER_CHECKIN,
            "every report went, over several check-ins"
        );
    }

    #[test]
    fn corrupt_queue_file_starts_a_fresh_queue() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("reports.json"), b"{not json").unwrap();
        let q = ReportQueue::load(dir.path());
        assert_eq!(q.len(), 0);
    }
}
