//! Requests and answers of the device API (`/v1/...`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::inventory::{InventoryUpload, Kind};
use crate::metrics::MetricsUpload;
use crate::signed::Envelope;

/// Facts a device reports about itself at enrolment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    pub hostname: String,
    pub os: String,
    pub kernel: String,
    pub arch: String,
    pub agent_version: String,
    /// Network interfaces; kept up to date by check-ins (see [`CheckinRequest::network`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network: Vec<NetInterface>,
}

/// Room a check-in keeps for everything but reports, inventory and metrics (network facts
/// are at most [`MAX_INTERFACES`] × [`MAX_ADDRESSES`] short strings, well under this).
pub const CHECKIN_OVERHEAD_BYTES: usize = 256 * 1024;
/// Bytes of serialised reports the agent puts in one check-in.
pub const REPORT_BATCH_BYTES: usize = 2 * 1024 * 1024 - CHECKIN_OVERHEAD_BYTES;
/// Bytes of serialised metric samples the agent puts in one check-in.
pub const METRICS_BATCH_BYTES: usize = 256 * 1024;
/// Largest check-in body the backend reads, the sum of its parts' batches so they cannot
/// drift apart; a larger one is answered 413.
pub const MAX_CHECKIN_BODY_BYTES: usize = CHECKIN_OVERHEAD_BYTES
    + REPORT_BATCH_BYTES
    + METRICS_BATCH_BYTES
    + crate::inventory::INVENTORY_BATCH_BYTES;

/// Largest enrolment body the backend reads: a signed request whose network facts are at
/// most [`MAX_INTERFACES`] × [`MAX_ADDRESSES`] addresses, with room to spare.
pub const MAX_ENROLL_BODY_BYTES: usize = 256 * 1024;

/// Interfaces a device may report; more are cut (bridges and VLANs add up, but not to this).
pub const MAX_INTERFACES: usize = 64;
/// Addresses per interface a device may report.
pub const MAX_ADDRESSES: usize = 32;

/// A network interface of the device (loopback left out).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetInterface {
    pub name: String,
    /// Hardware address, like `52:54:00:12:34:56`, when the interface has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Administratively up.
    #[serde(default)]
    pub up: bool,
    /// Addresses with their prefix length: `192.0.2.10/24`, `fe80::1/64`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
}

impl NetInterface {
    /// Checks what a device sent: bounded counts, interface names as the kernel allows
    /// them, MACs as hex pairs, and addresses that parse as `IP/prefix`.
    pub fn validate_list(list: &[NetInterface]) -> Result<(), String> {
        if list.len() > MAX_INTERFACES {
            return Err(format!("more than {MAX_INTERFACES} interfaces"));
        }
        for i in list {
            // IFNAMSIZ is 16 with the NUL; no '/' or whitespace, as the kernel refuses them.
            let name_ok = !i.name.is_empty()
                && i.name.len() < 16
                && i.name.bytes().all(|c| c.is_ascii_graphic() && c != b'/');
            if !name_ok {
                return Err(format!("interface name {:?} is not valid", i.name));
            }
            if let Some(mac) = &i.mac {
                let ok = mac.len() <= 64
                    && mac
                        .split(':')
                        .all(|p| p.len() == 2 && p.bytes().all(|c| c.is_ascii_hexdigit()));
                if !ok {
                    return Err(format!("{}: hardware address {mac:?} is not valid", i.name));
                }
            }
            if i.addresses.len() > MAX_ADDRESSES {
                return Err(format!("{}: more than {MAX_ADDRESSES} addresses", i.name));
            }
            for a in &i.addresses {
                let parsed = a.split_once('/').and_then(|(ip, prefix)| {
                    let ip: std::net::IpAddr = ip.parse().ok()?;
                    let prefix: u8 = prefix.parse().ok()?;
                    (prefix <= if ip.is_ipv4() { 32 } else { 128 }).then_some(())
                });
                if parsed.is_none() {
                    return Err(format!("{}: address {a:?} is not IP/prefix", i.name));
                }
            }
        }
        Ok(())
    }
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

/// Longest text field of an enrolment request (names and facts).
pub const MAX_ENROLL_FIELD: usize = 256;

impl EnrollRequest {
    /// The checks the backend makes of a request's own fields (the signature and the key are
    /// checked apart): bounded text without control characters, and sane network facts.
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("device_name", &self.device_name),
            ("hostname", &self.facts.hostname),
            ("os", &self.facts.os),
            ("kernel", &self.facts.kernel),
            ("arch", &self.facts.arch),
            ("agent_version", &self.facts.agent_version),
        ] {
            if value.len() > MAX_ENROLL_FIELD || value.chars().any(char::is_control) {
                return Err(format!(
                    "{name} is longer than {MAX_ENROLL_FIELD} bytes or has control characters"
                ));
            }
        }
        if crate::hex::decode(&self.public_key).is_none() {
            return Err("public_key is not hex".into());
        }
        NetInterface::validate_list(&self.facts.network).map_err(|e| format!("network facts: {e}"))
    }
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
    /// The device's network interfaces, sent only when they changed since the backend last
    /// acknowledged them (and on the first check-in after a reboot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Vec<NetInterface>>,
    /// The device's clock (Unix seconds), sent on a process's first check-in and then once a
    /// day, so the backend can tell the device's clock skew and answer with its own time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<u64>,
    /// SHA-256 (hex) of the CA certificates the agent trusts (its `ca.crt`), sent with
    /// `time`: the backend answers with its own set when they differ (a CA rotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// Inventory kinds whose hash differs from the one the backend last acknowledged, at
    /// most [`INVENTORY_BATCH_BYTES`](crate::inventory::INVENTORY_BATCH_BYTES) of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inventory: Vec<InventoryUpload>,
    /// The hash of every inventory kind the agent collects, sent with `time`: the backend
    /// answers `want_inventory` with the kinds it holds otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory_hashes: Option<BTreeMap<Kind, String>>,
    /// Unacknowledged metric samples, oldest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsUpload>,
}

/// Reports a check-in may carry; the agent sends at most `MAX_PER_CHECKIN` (200).
pub const MAX_REPORTS_PER_CHECKIN: usize = 1000;
/// Longest report queue id.
pub const MAX_QUEUE_ID: usize = 64;

impl CheckinRequest {
    /// The checks that refuse a check-in outright (anything else is cut or dropped, so a
    /// device's queue never wedges on one bad report).
    pub fn validate(&self) -> Result<(), String> {
        if (!self.reports.is_empty() && self.queue_id.is_empty())
            || self.queue_id.len() > MAX_QUEUE_ID
        {
            return Err(format!(
                "reports need a queue_id of 1 to {MAX_QUEUE_ID} characters"
            ));
        }
        if self.reports.len() > MAX_REPORTS_PER_CHECKIN {
            return Err(format!(
                "at most {MAX_REPORTS_PER_CHECKIN} reports per check-in"
            ));
        }
        if self.inventory.len() > crate::inventory::Kind::ALL.len() {
            return Err("more inventory kinds than there are".into());
        }
        Ok(())
    }
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
    /// The backend's clock (Unix seconds), when the request carried the device's: a time the
    /// agent trusts (it came over the verified TLS connection) as a floor for its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<u64>,
    /// The device certificate is due for renewal: the agent asks for a new one
    /// (`POST /v1/renew`) right after this check-in.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub renew: bool,
    /// The CA certificates the device must trust from now on (PEM), when the check-in's
    /// `ca` named another set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// Inventory kinds the backend lacks or holds otherwise than `inventory_hashes` said:
    /// the agent sends them at its next check-in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub want_inventory: Vec<Kind>,
    /// Every metric sample with `seq <= metrics_ack` is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_ack: Option<u64>,
    /// The samples came without names and the backend has none for this device: the agent
    /// sends its names with the next samples (these stay queued).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub want_metric_names: bool,
}

/// The payload of `POST /v1/renew`, signed with the device's current key and sent over a
/// connection authenticated with its current certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewRequest {
    pub device_id: String,
}

/// The answer to a renewal: the new certificate (PEM), for the same key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewResponse {
    pub certificate_pem: String,
}

/// Largest renewal request body (a signed `RenewRequest` is about 300 bytes).
pub const MAX_RENEW_BODY_BYTES: usize = 4096;

/// A device's clock skew (its clock minus the backend's, seconds) in words: "in step" within
/// a second, else its size in the largest unit that fits, "ahead" or "behind".
pub fn describe_skew(skew: i64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (365 * 86400, "years"),
        (86400, "days"),
        (3600, "h"),
        (60, "min"),
        (1, "s"),
    ];
    let size = skew.unsigned_abs();
    if size < 2 {
        return "in step".into();
    }
    let (unit, name) = UNITS
        .iter()
        .find(|(u, _)| size >= 2 * u || *u == 1)
        .copied()
        .unwrap_or((1, "s"));
    let side = if skew > 0 { "ahead" } else { "behind" };
    format!("{} {name} {side}", size / unit)
}

/// Error body of every device-API and operator-API failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skews_in_words() {
        assert_eq!(describe_skew(0), "in step");
        assert_eq!(describe_skew(-1), "in step");
        assert_eq!(describe_skew(42), "42 s ahead");
        assert_eq!(describe_skew(-150), "2 min behind");
        assert_eq!(describe_skew(3 * 3600 + 5), "3 h ahead");
        assert_eq!(describe_skew(-1_796_000_000), "56 years behind");
        assert_eq!(describe_skew(366 * 86400), "366 days ahead");
    }

    fn iface(name: &str, mac: Option<&str>, addresses: &[&str]) -> NetInterface {
        NetInterface {
            name: name.into(),
            mac: mac.map(str::to_string),
            up: true,
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn network_lists_are_checked() {
        let good = [
            iface(
                "eth0",
                Some("52:54:00:12:34:56"),
                &["192.0.2.10/24", "fe80::1/64"],
            ),
            iface("wg-office.10", None, &[]),
        ];
        assert_eq!(NetInterface::validate_list(&good), Ok(()));
        let bad = [
            (iface("", None, &[]), "interface name"),
            (iface("a/b", None, &[]), "interface name"),
            (iface("x234567890123456", None, &[]), "interface name"),
            (iface("eth0", Some("zz:00"), &[]), "hardware address"),
            (iface("eth0", None, &["192.0.2.1"]), "not IP/prefix"),
            (iface("eth0", None, &["192.0.2.1/33"]), "not IP/prefix"),
            (iface("eth0", None, &["<script>/1"]), "not IP/prefix"),
        ];
        for (i, want) in bad {
            let err = NetInterface::validate_list(std::slice::from_ref(&i)).unwrap_err();
            assert!(err.contains(want), "{i:?}: {err}");
        }
        let many = vec![iface("eth0", None, &[]); MAX_INTERFACES + 1];
        assert!(NetInterface::validate_list(&many).is_err());
    }
}
