//! `settings`: how the agent itself behaves. The agent reads it rather than converging
//! anything.

use serde::{Deserialize, Serialize};

use super::{CompileError, Merge, Policy, Resolve};

/// Default seconds between check-ins when no settings policy says otherwise.
pub const DEFAULT_INTERVAL_SECONDS: u64 = 300;

/// Shortest check-in interval operators may set: a fleet on a shorter one would flood the
/// backend.
pub const MIN_INTERVAL_SECONDS: u64 = 10;
/// Longest check-in interval (a week): a device must come back in a useful time, and the
/// agent's timers stay far from overflowing.
pub const MAX_INTERVAL_SECONDS: u64 = 7 * 24 * 3600;

/// Agent behaviour, with every default filled in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Seconds between check-ins (jitter is added on the device).
    pub interval_seconds: u64,
    /// Whether policy reports are sent to the backend.
    pub reports: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            interval_seconds: DEFAULT_INTERVAL_SECONDS,
            reports: true,
        }
    }
}

/// What an operator sets: any setting left out keeps its default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsDocument {
    /// Seconds between check-ins (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<u64>,
    /// Send policy reports (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reports: Option<bool>,
}

impl Policy for Settings {
    const SUMMARY: &'static str = "How the agent itself behaves.";
    const MERGE: Merge = Merge::Whole;
    type Document = SettingsDocument;

    fn validate_document(doc: &SettingsDocument) -> Result<(), String> {
        match doc.interval_seconds {
            Some(i) if i < MIN_INTERVAL_SECONDS => Err(format!(
                "interval_seconds must be at least {MIN_INTERVAL_SECONDS}, got {i}"
            )),
            Some(i) if i > MAX_INTERVAL_SECONDS => Err(format!(
                "interval_seconds must be at most {MAX_INTERVAL_SECONDS} (a week), got {i}"
            )),
            _ => Ok(()),
        }
    }

    fn compile(doc: SettingsDocument, _: &mut dyn Resolve) -> Result<Option<Self>, CompileError> {
        let defaults = Settings::default();
        Ok(Some(Settings {
            interval_seconds: doc.interval_seconds.unwrap_or(defaults.interval_seconds),
            reports: doc.reports.unwrap_or(defaults.reports),
        }))
    }

    /// The agent needs a positive interval it can add to a clock; the backend's minimum is
    /// its own business.
    fn validate(&self) -> Result<(), String> {
        if self.interval_seconds == 0 || self.interval_seconds > MAX_INTERVAL_SECONDS {
            return Err(format!(
                "interval_seconds must be 1 to {MAX_INTERVAL_SECONDS}, got {}",
                self.interval_seconds
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_bounded_both_ways() {
        let doc = |i| SettingsDocument {
            interval_seconds: Some(i),
            reports: None,
        };
        assert!(Settings::validate_document(&doc(9)).is_err());
        assert!(Settings::validate_document(&doc(MAX_INTERVAL_SECONDS)).is_ok());
        let err = Settings::validate_document(&doc(u64::MAX)).expect_err("too long");
        assert!(err.contains("at most 604800"), "{err}");
        let huge = Settings {
            interval_seconds: u64::MAX,
            reports: true,
        };
        assert!(
            huge.validate().is_err(),
            "a bundle cannot hand the agent one either"
        );
    }
}
