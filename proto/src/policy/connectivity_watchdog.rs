//! `connectivity_watchdog`: act when the backend has been unreachable for too long. The
//! document is the bundle's form as it is.

use serde::{Deserialize, Serialize};

use super::{CompileError, Merge, Policy, Resolve};

/// Default action of the connectivity watchdog.
pub const DEFAULT_WATCHDOG_ACTION: &str = "reboot";
/// Default shortest time between two watchdog actions.
pub const DEFAULT_WATCHDOG_PERIOD_SECONDS: u64 = 3600;
/// Shortest period the backend accepts: a device must get the chance to come back.
pub const MIN_WATCHDOG_PERIOD_SECONDS: u64 = 60;

/// When to act, and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectivityWatchdog {
    /// Consecutive failed check-ins before acting.
    pub failed_checkins: u32,
    /// Shell command run then.
    #[serde(default = "default_action")]
    pub action: String,
    /// The action runs at most once per this many seconds.
    #[serde(default = "default_period")]
    pub min_interval_seconds: u64,
}

fn default_action() -> String {
    DEFAULT_WATCHDOG_ACTION.to_string()
}

fn default_period() -> u64 {
    DEFAULT_WATCHDOG_PERIOD_SECONDS
}

impl Policy for ConnectivityWatchdog {
    const SUMMARY: &'static str =
        "What the device does after failing to reach the backend too often.";
    const MERGE: Merge = Merge::Whole;
    type Document = ConnectivityWatchdog;

    fn validate_document(doc: &ConnectivityWatchdog) -> Result<(), String> {
        doc.validate()
    }

    fn compile(
        doc: ConnectivityWatchdog,
        _: &mut dyn Resolve,
    ) -> Result<Option<Self>, CompileError> {
        Ok(Some(doc))
    }

    /// A positive threshold, a command, and a period long enough to come back online.
    fn validate(&self) -> Result<(), String> {
        if self.failed_checkins == 0 {
            return Err("failed_checkins must be at least 1".into());
        }
        if self.action.trim().is_empty() {
            return Err("action must not be empty".into());
        }
        if self.min_interval_seconds < MIN_WATCHDOG_PERIOD_SECONDS {
            return Err(format!(
                "min_interval_seconds must be at least {MIN_WATCHDOG_PERIOD_SECONDS}"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let w: ConnectivityWatchdog = serde_json::from_str(r#"{"failed_checkins": 3}"#).unwrap();
        assert_eq!(w.action, "reboot");
        assert_eq!(w.min_interval_seconds, 3600);
        assert!(w.validate().is_ok());
    }
}
