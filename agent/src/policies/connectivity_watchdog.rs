//! `connectivity_watchdog`: after N consecutive failed check-ins, run an action (default
//! `reboot`), at most once per period. It works from the bundle in force, which is exactly
//! the situation it exists for: the backend is unreachable.
//!
//! The failure count lives in the volatile state dir. The last action is recorded in the
//! persistent config dir *before* it runs, because the action usually reboots: the record
//! keeps the period across the reboot and is reported at the next successful check-in.
//! If the clock is behind the record (a board without RTC after a reboot), the period is
//! taken as elapsed: an unreliable clock must not disable the watchdog.

use std::path::PathBuf;
use std::time::Duration;

use apiary_proto::policy::InBundle;
use apiary_proto::policy::connectivity_watchdog::ConnectivityWatchdog;
use serde::{Deserialize, Serialize};

use super::Outcome;
use crate::command;
use crate::config::Dirs;
use crate::expand::Vars;
use crate::safe_fs;

const NAME: &str = ConnectivityWatchdog::NAME;
const ITEM: &str = "action";
/// Bound on the action; a reboot command returns (or the device goes down) well before.
const TIMEOUT: Duration = Duration::from_secs(300);

/// The last action, as recorded before it ran.
#[derive(Debug, Serialize, Deserialize)]
struct LastAction {
    at: u64,
    failures: u32,
    action: String,
    /// How it ended, when the agent saw it end.
    result: Option<String>,
    reported: bool,
}

/// The watchdog's state files.
pub struct Watchdog {
    failures_path: PathBuf,
    last_path: PathBuf,
}

impl Watchdog {
    pub fn new(dirs: &Dirs) -> Self {
        Self {
            failures_path: dirs.state.join("watchdog-failures"),
            last_path: dirs.config.join("watchdog-last-action.json"),
        }
    }

    /// The backend answered: the count starts over, and an unreported action is reported.
    pub fn online(&self) -> Option<Outcome> {
        let _ = safe_fs::remove_file(&self.failures_path);
        let mut last = self.last()?;
        if last.reported {
            return None;
        }
        last.reported = true;
        self.save_last(&last);
        let result = last
            .result
            .as_deref()
            .unwrap_or("no result: the device restarted or the agent was stopped before it ended");
        let mut o = Outcome::changed(
            NAME,
            ITEM.into(),
            true,
            format!(
                "after {} consecutive failed check-ins, ran `{}` at {} (unix time); {result}",
                last.failures, last.action, last.at
            ),
        );
        o.level = apiary_proto::device_api::Level::Critical;
        Some(o)
    }

    /// A check-in failed: counts it, and runs the action when due.
    pub fn failed_checkin(&self, spec: &ConnectivityWatchdog, vars: &Vars, now: u64) {
        let failures = self.failures().saturating_add(1);
        if let Err(e) =
            safe_fs::write_atomic(&self.failures_path, failures.to_string().as_bytes(), 0o600)
        {
            eprintln!("warning: cannot record the failed check-in count: {e}");
        }
        if failures < spec.failed_checkins {
            eprintln!(
                "connectivity watchdog: {failures} of {} failed check-ins",
                spec.failed_checkins
            );
            return;
        }
        if let Some(last) = self.last()
            && now >= last.at
            && now - last.at < spec.min_interval_seconds
        {
            eprintln!(
                "connectivity watchdog: {failures} failed check-ins, but the action ran {} s ago (at most once per {} s)",
                now - last.at,
                spec.min_interval_seconds
            );
            return;
        }
        let mut record = LastAction {
            at: now,
            failures,
            action: spec.action.clone(),
            result: None,
            reported: false,
        };
        self.save_last(&record);
        let _ = safe_fs::remove_file(&self.failures_path);
        eprintln!(
            "critical: connectivity watchdog: {failures} consecutive failed check-ins; running `{}`",
            vars.redact(&spec.action)
        );
        let result = match command::run_with_values(&spec.action, vars, TIMEOUT) {
            Ok(r) if r.success() => "it exited with status 0".to_string(),
            Ok(r) => format!("it {}: {}", r.describe_failure(TIMEOUT), r.output.trim()),
            Err(e) => format!("it could not start: {e}"),
        };
        // The output is redacted already; the rest (the action's own text) may hold a secret.
        let result = vars.redact(&result);
        eprintln!("connectivity watchdog: {result}");
        record.result = Some(result);
        self.save_last(&record);
    }

    fn failures(&self) -> u32 {
        safe_fs::read_text(&self.failures_path, 64)
            .ok()
            .flatten()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    fn last(&self) -> Option<LastAction> {
        let bytes = safe_fs::read(&self.last_path, safe_fs::STATE_FILE_LIMIT).ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    fn save_last(&self, last: &LastAction) {
        let bytes = serde_json::to_vec(last).expect("record serialises infallibly");
        if let Err(e) = safe_fs::write_atomic(&self.last_path, &bytes, 0o600) {
            eprintln!("warning: cannot record the watchdog action: {e}");
        }
    }
}
