//! Persistence behind one trait, so SQLite (embedded, default) and PostgreSQL (replicas) can
//! serve the same backend. Everything the backend remembers goes through [`Store`].

use std::path::PathBuf;

use apiary_proto::device_api::{HostFacts, Level, Report};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub mod alerts;
pub mod checkin_cache;
pub mod fleet_view;
pub mod monitoring;
pub mod operators;

pub use checkin_cache::{CheckinState, RecordedCheckin};
pub mod sqlite;

/// Unix seconds.
pub type Timestamp = i64;

/// A database driver's error, kept whole so callers and logs can walk its chain.
pub type DriverError = Box<dyn std::error::Error + Send + Sync>;

/// Why a store operation failed. Callers branch on `Conflict` and `NotFound`; the others
/// carry what failed and the driver's own error as their source.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A query failed.
    #[error("database error: {0}")]
    Database(#[source] DriverError),
    /// The database could not be opened.
    #[error("database error: cannot open {path}: {source}")]
    Open { path: PathBuf, source: DriverError },
    /// The database's schema is newer than this backend.
    #[error(
        "stored data is corrupt: {path} has schema version {found}; this backend understands up to {supported}"
    )]
    Schema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    /// A stored value does not parse as what it should be.
    #[error("stored data is corrupt: {what}: {source}")]
    Corrupt { what: String, source: DriverError },
    /// The task running the query died, so the connection is in an unknown state.
    #[error("database error: the store's worker failed: {0}")]
    Worker(#[source] DriverError),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
}

/// A device's enrolment state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceStatus {
    Pending,
    Approved,
    Rejected,
}

impl DeviceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Pending => "pending",
            DeviceStatus::Approved => "approved",
            DeviceStatus::Rejected => "rejected",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => DeviceStatus::Pending,
            "approved" => DeviceStatus::Approved,
            "rejected" => DeviceStatus::Rejected,
            _ => return None,
        })
    }
}

/// A group of the device tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupInfo {
    pub path: String,
    /// Devices directly in this group (not in subgroups).
    pub devices: u64,
}

/// An operator-issued bootstrap key (its secret is stored only as a hash).
#[derive(Clone, Debug, Serialize)]
pub struct BootstrapKey {
    pub id: i64,
    /// Group new devices land in; `None` is "unassigned".
    pub group: Option<String>,
    pub auto_accept: bool,
    pub created_at: Timestamp,
    pub created_by: String,
    pub revoked_at: Option<Timestamp>,
}

/// A device as the enrolment endpoint records it.
#[derive(Clone, Debug)]
pub struct NewDevice {
    pub id: String,
    pub name: String,
    pub public_key: String,
    pub group: Option<String>,
    pub facts: HostFacts,
    pub remote_ip: String,
    pub requested_at: Timestamp,
    pub bootstrap_key_id: i64,
    /// Pending requests one bootstrap key may hold; a new device past it is refused.
    pub max_pending_per_key: u64,
    /// Pending requests made before this have expired and are dropped.
    pub pending_since: Timestamp,
}

/// What an enrolment request came to.
#[derive(Clone, Debug)]
pub enum Enrolment {
    /// The device as recorded: new and pending, or as it already was.
    Recorded(Box<Device>),
    /// A new device, refused: its bootstrap key already holds this many pending requests.
    KeyFull { pending: u64 },
}

/// Everything known about a device.
#[derive(Clone, Debug, Serialize)]
pub struct Device {
    pub id: String,
    pub name: String,
    pub status: DeviceStatus,
    /// `None` is "unassigned".
    pub group: Option<String>,
    pub facts: HostFacts,
    /// The address of the enrolment request, then of the last check-in.
    pub remote_ip: String,
    pub requested_at: Timestamp,
    pub approved_at: Option<Timestamp>,
    pub last_checkin: Option<Timestamp>,
    pub agent_version: Option<String>,
    /// The device's clock minus the backend's, in seconds, when last measured.
    pub clock_skew: Option<i64>,
    /// The bundle the device last reported as applied.
    pub applied_hash: Option<String>,
    pub applied_serial: Option<u64>,
    pub applied_commit: Option<i64>,
    #[serde(skip)]
    pub public_key: String,
    #[serde(skip)]
    pub cert_pem: Option<String>,
    #[serde(skip)]
    pub cert_fingerprint: Option<String>,
}

/// A signed bundle compiled for one device.
#[derive(Clone, Debug, Serialize)]
pub struct StoredBundle {
    pub device_id: String,
    pub serial: u64,
    pub commit_id: i64,
    /// SHA-256 of the signed payload: the name agents use.
    pub hash: String,
    /// SHA-256 of the compiled policies alone, to tell whether a recompile changed anything.
    pub content_hash: String,
    /// The signed envelope, JSON.
    #[serde(skip)]
    pub envelope: String,
    pub created_at: Timestamp,
    /// SHA-256 of every file the bundle references (what the device may download).
    #[serde(skip)]
    pub files: Vec<String>,
}

/// Where one device stands in one commit's rollout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RolloutState {
    /// The bundle is waiting for the device's next check-in.
    Pending,
    /// The device applied the bundle without policy errors.
    Converged,
    /// The device applied the bundle but policies reported errors, or refused the bundle.
    Failed,
    /// A newer bundle replaced this one before the device applied it.
    Superseded,
}

impl RolloutState {
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutState::Pending => "pending",
            RolloutState::Converged => "converged",
            RolloutState::Failed => "failed",
            RolloutState::Superseded => "superseded",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => RolloutState::Pending,
            "converged" => RolloutState::Converged,
            "failed" => RolloutState::Failed,
            "superseded" => RolloutState::Superseded,
            _ => return None,
        })
    }
}

/// One device in a commit's rollout.
#[derive(Clone, Debug, Serialize)]
pub struct RolloutEntry {
    pub device_id: String,
    pub device_name: String,
    pub serial: u64,
    pub state: RolloutState,
    /// Policies that reported errors for this bundle (`bundle` when it was refused).
    pub failed_policies: Vec<String>,
    pub updated_at: Timestamp,
}

/// What a check-in changes in the device's record.
#[derive(Clone, Debug, Default)]
pub struct CheckinRecord {
    /// Sent on an agent process's first check-in; `None` keeps the stored one.
    pub agent_version: Option<String>,
    /// The bundle in force on the device.
    pub applied_hash: Option<String>,
    /// The address the check-in came from.
    pub remote_ip: String,
    /// New network interfaces; `None` keeps the stored ones.
    pub network: Option<Vec<apiary_proto::device_api::NetInterface>>,
    /// The clock skew measured in this check-in; `None` keeps the stored one.
    pub clock_skew: Option<i64>,
    pub outcome: CheckinOutcome,
}

/// What a check-in says about how bundles went, for rollout tracking.
#[derive(Clone, Debug, Default)]
pub struct CheckinOutcome {
    /// `(bundle serial, policy)` of every error or critical report in the check-in.
    pub errors: Vec<(u64, String)>,
    /// Hashes of bundles the device refused.
    pub refused: Vec<String>,
}

/// A report as stored.
#[derive(Clone, Debug, Serialize)]
pub struct StoredReport {
    pub seq: u64,
    pub time: u64,
    pub received_at: Timestamp,
    pub level: Level,
    pub policy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle_serial: Option<u64>,
}

/// One policy's configuration on one node.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConfigEntry {
    pub node: String,
    pub policy: String,
    pub body: serde_json::Value,
}

/// A change a commit made (or a draft proposes): `None` means unset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigChange {
    pub node: String,
    pub policy: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// A committed configuration change set.
#[derive(Clone, Debug, Serialize)]
pub struct Commit {
    pub id: i64,
    pub author: String,
    pub message: String,
    pub created_at: Timestamp,
    pub changes: Vec<ConfigChange>,
}

/// A file in the file manager; its content lives in the blob store under `sha256`.
#[derive(Clone, Debug, Serialize)]
pub struct FileEntry {
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub uploaded_at: Timestamp,
    pub uploaded_by: String,
}

/// An operator API token (stored as a hash).
#[derive(Clone, Debug)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
}

/// Which audit entries to list. Text fields match exactly, except `target`, which also
/// matches as a prefix (a group path finds actions on its subtree).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    /// Unix seconds, inclusive.
    pub since: Option<Timestamp>,
    pub limit: Option<u32>,
}

/// One audited operator action.
#[derive(Clone, Debug, Serialize)]
pub struct AuditEntry {
    pub time: Timestamp,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// The backend's persistence.
#[async_trait]
pub trait Store:
    operators::OperatorStore
    + fleet_view::FleetView
    + monitoring::MonitoringStore
    + alerts::AlertStore
    + Send
    + Sync
    + 'static
{
    // Groups.
    /// Creates a group path and its ancestors if missing.
    async fn ensure_group(&self, path: &str) -> Result<(), StoreError>;
    async fn group_exists(&self, path: &str) -> Result<bool, StoreError>;
    /// Every group, root first in path order, with the number of devices directly in it.
    async fn list_groups(&self) -> Result<Vec<GroupInfo>, StoreError>;
    /// Renames (or moves) a group and everything under it: subgroups, devices, configuration,
    /// drafts and bootstrap keys follow. `to` must not exist and its parent must.
    async fn rename_group(&self, from: &str, to: &str) -> Result<(), StoreError>;
    /// Deletes a group without subgroups, devices or live bootstrap keys, with its own
    /// configuration and drafts.
    async fn delete_group(&self, path: &str) -> Result<(), StoreError>;
    /// Puts a device in a group (`None`: unassigned).
    async fn move_device(&self, id: &str, group: Option<&str>) -> Result<(), StoreError>;

    // Operator tokens.
    async fn insert_token(&self, name: &str, hash: &str, now: Timestamp)
    -> Result<i64, StoreError>;
    async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>, StoreError>;

    // Bootstrap keys.
    async fn insert_bootstrap_key(
        &self,
        hash: &str,
        group: Option<&str>,
        auto_accept: bool,
        created_by: &str,
        now: Timestamp,
    ) -> Result<BootstrapKey, StoreError>;
    async fn list_bootstrap_keys(&self) -> Result<Vec<BootstrapKey>, StoreError>;
    async fn bootstrap_key_by_hash(&self, hash: &str) -> Result<Option<BootstrapKey>, StoreError>;
    /// Revokes a key; false if no such key.
    async fn revoke_bootstrap_key(&self, id: i64, now: Timestamp) -> Result<bool, StoreError>;

    // Devices.
    /// Records an enrolment, first dropping pending requests older than `pending_since`.
    /// Idempotent: an approved or rejected device stays as it is (a rejection holds until an
    /// operator approves or deletes the device), a pending one has its request refreshed. A
    /// new device is refused when its key holds `max_pending_per_key` pending requests.
    async fn enroll_device(&self, device: NewDevice) -> Result<Enrolment, StoreError>;
    async fn device(&self, id: &str) -> Result<Option<Device>, StoreError>;
    async fn list_devices(&self, status: Option<DeviceStatus>) -> Result<Vec<Device>, StoreError>;
    async fn approve_device(
        &self,
        id: &str,
        cert_pem: &str,
        fingerprint: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Makes `cert_pem` (`fingerprint`) the approved device's certificate, keeping the one
    /// it replaces accepted until [`Store::forget_previous_certificate`]; false when the
    /// device is not approved.
    async fn renew_certificate(
        &self,
        id: &str,
        cert_pem: &str,
        fingerprint: &str,
    ) -> Result<bool, StoreError>;
    /// The device presented its renewed certificate: the one before it is refused from now.
    async fn forget_previous_certificate(&self, id: &str) -> Result<(), StoreError>;
    async fn reject_device(&self, id: &str) -> Result<(), StoreError>;
    /// Forgets a device with its bundles, reports and rollout rows (the audit log keeps
    /// its entries); false if there was none.
    async fn delete_device(&self, id: &str) -> Result<bool, StoreError>;
    /// Records a check-in, which bundle the device has applied, and so its rollout state.
    async fn record_checkin(
        &self,
        id: &str,
        now: Timestamp,
        checkin: CheckinRecord,
    ) -> Result<(), StoreError>;
    /// Every device in a commit's rollout.
    async fn rollout(&self, commit_id: i64) -> Result<Vec<RolloutEntry>, StoreError>;

    /// What an approved device's check-in needs (`None`: not enrolled, not approved, or no
    /// certificate). Served from memory after the first call; see [`checkin_cache`].
    async fn checkin_state(&self, device_id: &str) -> Result<Option<CheckinState>, StoreError>;
    /// Notes the time of an idle check-in that repeats the last recorded one; written by the
    /// next [`Store::flush_checkins`] (a crash loses at most the times since the last one).
    fn touch_checkin(&self, device_id: &str, now: Timestamp);
    /// Writes the noted check-in times; returns how many were noted.
    async fn flush_checkins(&self) -> Result<usize, StoreError>;

    // Bundles.
    async fn current_bundle(&self, device_id: &str) -> Result<Option<StoredBundle>, StoreError>;
    async fn insert_bundles(&self, bundles: Vec<StoredBundle>) -> Result<(), StoreError>;
    /// True when the device's current bundle references this content.
    async fn device_may_fetch(&self, device_id: &str, sha256: &str) -> Result<bool, StoreError>;

    // Reports.
    /// Stores reports idempotently and returns the highest seq stored for the queue.
    async fn insert_reports(
        &self,
        device_id: &str,
        queue_id: &str,
        reports: Vec<Report>,
        now: Timestamp,
    ) -> Result<Option<u64>, StoreError>;
    async fn recent_reports(
        &self,
        device_id: &str,
        limit: u32,
    ) -> Result<Vec<StoredReport>, StoreError>;

    // Configuration.
    /// Every active (committed) entry.
    async fn active_config(&self) -> Result<Vec<ConfigEntry>, StoreError>;
    /// Every draft: `body = None` is a draft that unsets the policy.
    async fn drafts(&self) -> Result<Vec<(String, String, Option<serde_json::Value>)>, StoreError>;
    async fn set_draft(
        &self,
        node: &str,
        policy: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(), StoreError>;
    /// The id the next commit will get.
    async fn next_commit_id(&self) -> Result<i64, StoreError>;
    /// Applies every draft, records the commit and stores the recompiled bundles, atomically.
    async fn apply_commit(
        &self,
        commit: Commit,
        bundles: Vec<StoredBundle>,
    ) -> Result<(), StoreError>;
    async fn list_commits(&self) -> Result<Vec<Commit>, StoreError>;
    async fn latest_commit_id(&self) -> Result<i64, StoreError>;

    // File manager.
    async fn put_file(&self, entry: FileEntry) -> Result<(), StoreError>;
    async fn file(&self, path: &str) -> Result<Option<FileEntry>, StoreError>;
    async fn list_files(&self) -> Result<Vec<FileEntry>, StoreError>;

    // Audit.
    async fn audit(&self, entry: AuditEntry) -> Result<(), StoreError>;
    /// Audit entries matching `filter`, newest first.
    async fn list_audit(&self, filter: AuditFilter) -> Result<Vec<AuditEntry>, StoreError>;
    /// Drops drafts: all, a node's, or one policy of a node. Returns how many.
    async fn discard_drafts(
        &self,
        node: Option<&str>,
        policy: Option<&str>,
    ) -> Result<u64, StoreError>;
}
