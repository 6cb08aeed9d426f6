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

/// Default hours between two collections of the software inventory.
pub const DEFAULT_SOFTWARE_INVENTORY_HOURS: u64 = 6;
/// Shortest finer metrics interval: sampling more often costs the device more than it tells.
pub const MIN_METRICS_INTERVAL_SECONDS: u64 = 10;

/// Agent behaviour, with every default filled in. Fields added after the first release
/// default when absent, so a bundle kept from an older backend still loads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Seconds between check-ins (jitter is added on the device).
    pub interval_seconds: u64,
    /// Whether policy reports are sent to the backend.
    pub reports: bool,
    /// Whether metrics are sampled and sent.
    #[serde(default = "yes")]
    pub metrics: bool,
    /// Seconds between metric samples within an interval, when finer than once per cycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_interval_seconds: Option<u64>,
    /// Whether the process inventory is collected (and, changing every cycle, sent).
    #[serde(default)]
    pub process_inventory: bool,
    /// Hours between two collections of the software inventory.
    #[serde(default = "software_hours")]
    pub software_inventory_hours: u64,
}

fn yes() -> bool {
    true
}

fn software_hours() -> u64 {
    DEFAULT_SOFTWARE_INVENTORY_HOURS
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            interval_seconds: DEFAULT_INTERVAL_SECONDS,
            reports: true,
            metrics: true,
            metrics_interval_seconds: None,
            process_inventory: false,
            software_inventory_hours: DEFAULT_SOFTWARE_INVENTORY_HOURS,
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
    /// Sample and send metrics (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<bool>,
    /// Seconds between metric samples, when finer than the check-in interval (default: one
    /// sample per cycle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_interval_seconds: Option<u64>,
    /// Collect the process inventory (default false: it is sent every cycle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_inventory: Option<bool>,
    /// Hours between software inventories (default 6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_inventory_hours: Option<u64>,
}

impl Policy for Settings {
    const SUMMARY: &'static str = "How the agent itself behaves.";
    const MERGE: Merge = Merge::Whole;
    type Document = SettingsDocument;

    fn validate_document(doc: &SettingsDocument) -> Result<(), String> {
        match doc.interval_seconds {
            Some(i) if i < MIN_INTERVAL_SECONDS => {
                return Err(format!(
                    "interval_seconds must be at least {MIN_INTERVAL_SECONDS}, got {i}"
                ));
            }
            Some(i) if i > MAX_INTERVAL_SECONDS => {
                return Err(format!(
                    "interval_seconds must be at most {MAX_INTERVAL_SECONDS} (a week), got {i}"
                ));
            }
            _ => {}
        }
        let interval = doc.interval_seconds.unwrap_or(DEFAULT_INTERVAL_SECONDS);
        if let Some(m) = doc.metrics_interval_seconds
            && !(MIN_METRICS_INTERVAL_SECONDS..interval).contains(&m)
        {
            return Err(format!(
                "metrics_interval_seconds must be at least {MIN_METRICS_INTERVAL_SECONDS} and below the check-in interval ({interval}), got {m}"
            ));
        }
        match doc.software_inventory_hours {
            Some(h) if h == 0 || h > 24 * 30 => Err(format!(
                "software_inventory_hours must be 1 to 720 (30 days), got {h}"
            )),
            _ => Ok(()),
        }
    }

    fn compile(doc: SettingsDocument, _: &mut dyn Resolve) -> Result<Option<Self>, CompileError> {
        let defaults = Settings::default();
        Ok(Some(Settings {
            interval_seconds: doc.interval_seconds.unwrap_or(defaults.interval_seconds),
            reports: doc.reports.unwrap_or(defaults.reports),
            metrics: doc.metrics.unwrap_or(defaults.metrics),
            metrics_interval_seconds: doc.metrics_interval_seconds,
            process_inventory: doc.process_inventory.unwrap_or(defaults.process_inventory),
            software_inventory_hours: doc
                .software_inventory_hours
                .unwrap_or(defaults.software_inventory_hours),
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
        if self.metrics_interval_seconds == Some(0) || self.software_inventory_hours == 0 {
            return Err(
                "metrics_interval_seconds and software_inventory_hours must be positive".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blank() -> SettingsDocument {
        SettingsDocument {
            interval_seconds: None,
            reports: None,
            metrics: None,
            metrics_interval_seconds: None,
            process_inventory: None,
            software_inventory_hours: None,
        }
    }

    #[test]
    fn finer_metrics_stay_below_the_interval() {
        let doc = |m| SettingsDocument {
            interval_seconds: Some(300),
            metrics_interval_seconds: Some(m),
            ..blank()
        };
        assert!(Settings::validate_document(&doc(60)).is_ok());
        let err = Settings::validate_document(&doc(300)).expect_err("not finer");
        assert!(err.contains("below the check-in interval (300)"), "{err}");
        assert!(Settings::validate_document(&doc(5)).is_err());
        let hours = SettingsDocument {
            software_inventory_hours: Some(0),
            ..blank()
        };
        assert!(Settings::validate_document(&hours).is_err());
    }

    #[test]
    fn a_bundle_from_before_the_monitoring_settings_still_loads() {
        let old: Settings =
            serde_json::from_str(r#"{"interval_seconds":60,"reports":false}"#).expect("loads");
        assert!(old.metrics && !old.process_inventory);
        assert_eq!(
            old.software_inventory_hours,
            DEFAULT_SOFTWARE_INVENTORY_HOURS
        );
    }

    #[test]
    fn intervals_are_bounded_both_ways() {
        let doc = |i| SettingsDocument {
            interval_seconds: Some(i),
            ..blank()
        };
        assert!(Settings::validate_document(&doc(9)).is_err());
        assert!(Settings::validate_document(&doc(MAX_INTERVAL_SECONDS)).is_ok());
        let err = Settings::validate_document(&doc(u64::MAX)).expect_err("too long");
        assert!(err.contains("at most 604800"), "{err}");
        let huge = Settings {
            interval_seconds: u64::MAX,
            ..Settings::default()
        };
        assert!(
            huge.validate().is_err(),
            "a bundle cannot hand the agent one either"
        );
    }
}
