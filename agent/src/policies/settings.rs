//! The `settings` policy: how often the agent checks in and whether it sends reports.
//!
//! Settings steer the agent itself, so the cycle reads them rather than converging anything.

use apiary_proto::bundle::Bundle;
use apiary_proto::policy::settings::Settings;

/// The settings in force: the bundle's, or the defaults when it has none.
pub fn effective(bundle: Option<&Bundle>) -> Settings {
    bundle
        .and_then(|b| b.policies.settings.clone())
        .unwrap_or_default()
}
