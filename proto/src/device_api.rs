//! Requests and answers of the device API (`/v1/...`).

use serde::{Deserialize, Serialize};

use crate::signed::Envelope;

/// Facts a device reports about itself at enrolment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    pub hostname: String,
    pub os: String,
    pub kernel: String,
    pub arch: String,
    pub agent_version: String,
}

/// The payload of `POST /v1/bootstrap`, signed with the new device key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The operator-issued bootstrap key.
    pub bootstrap_key: String,
    /// Hex raw P-384 public key (uncompressed point) of the device.
    pub public_key: String,
    /// Name the operator sees; defaults to the hostname.
    pub device_name: String,
    pub facts: HostFacts,
}

/// The body of `POST /v1/bootstrap`: an [`EnrollRequest`] signed by the device key.
pub type SignedEnrollRequest = Envelope;

/// Where an enrolment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnrollState {
    Pending,
    Approved,
    Rejected,
}

/// Answer to `POST /v1/bootstrap` and `GET /v1/bootstrap/{device_id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollStatus {
    pub device_id: String,
    pub state: EnrollState,
    /// Present once approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
}

/// What an approved device needs for mTLS and bundle verification. All public.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// The device certificate, PEM.
    pub certificate_pem: String,
    /// The CA that signs device and server certificates, PEM; pinned from now on.
    pub ca_pem: String,
    /// Hex Ed25519 public key that signs bundles.
    pub bundle_signing_key: String,
}

/// Severity of a report, as operators filter them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warning,
    Error,
    Critical,
}

impl Level {
    /// The lowercase name used on the wire and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Critical => "critical",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "info" => Level::Info,
            "warning" => Level::Warning,
            "error" => Level::Error,
            "critical" => Level::Critical,
            _ => return None,
        })
    }
}

/// The `policy` of the report an agent makes when it refuses a bundle; its `item` is the
/// refused bundle's hash.
pub const REFUSED_BUNDLE_POLICY: &str = "bundle";

/// One status message from the agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Position in the agent's report queue; acked by the backend.
    pub seq: u64,
    /// Unix seconds on the device when it was raised.
    pub time: u64,
    pub level: Level,
    /// Policy (or agent subsystem) that raised it.
    pub policy: String,
    /// The item within the policy (a file, a user), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    pub message: String,
    /// Captured command output, truncated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Serial of the bundle being applied, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_serial: Option<u64>,
}

/// `POST /v1/checkin`: the one request of a cycle.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckinRequest {
    /// Sent on an agent process's first check-in (it cannot change within a process); the
    /// backend keeps the last one it received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
    /// Payload hash of the bundle in force, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_hash: Option<String>,
    /// Identifies the report queue; a fresh queue (tmpfs wiped by a reboot) restarts `seq`.
    /// Sent only with reports.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub queue_id: String,
    /// Unacked reports, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reports: Vec<Report>,
}

/// Answer to a check-in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckinResponse {
    /// The device's bundle, only when its hash differs from the request's `bundle_hash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<Envelope>,
    /// Every report of `queue_id` with `seq <= ack_seq` is stored; the agent may drop them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_seq: Option<u64>,
}

/// Error body of every device-API and operator-API failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}
