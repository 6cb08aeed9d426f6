//! Read-only views of the fleet for the dashboard: paged device search, report counts by
//! level, and filtered device logs. Separate from [`super::Store`], which the device and
//! operator APIs write through.

use apiary_proto::device_api::Level;
use async_trait::async_trait;

use super::{Device, DeviceStatus, StoreError, StoredReport, Timestamp};

/// Which devices a page lists.
#[derive(Clone, Debug, Default)]
pub struct DeviceQuery {
    /// Devices in this group or below it.
    pub group: Option<String>,
    /// Only devices in no group.
    pub unassigned: bool,
    pub status: Option<DeviceStatus>,
    /// Case-insensitive substring of the name, or a prefix of the id.
    pub text: Option<String>,
    pub offset: u64,
    pub limit: u64,
}

/// How a device's log is listed.
#[derive(Clone, Debug)]
pub struct ReportQuery {
    /// Only these levels (all when empty).
    pub levels: Vec<Level>,
    /// Case-insensitive substring of the policy, item, message or output.
    pub text: Option<String>,
    pub sort: ReportSort,
    pub limit: u64,
}

/// Orders of a device's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportSort {
    NewestFirst,
    OldestFirst,
    /// Most severe first, newest first within a level.
    LevelFirst,
}

/// A report with the device it came from.
#[derive(Clone, Debug)]
pub struct FleetReport {
    pub device_id: String,
    pub device_name: String,
    pub report: StoredReport,
}

/// Devices by status and recency.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceCounts {
    pub online: u64,
    pub offline: u64,
    pub pending: u64,
}

#[async_trait]
pub trait FleetView: Send + Sync + 'static {
    /// One page of matching devices, by name, and how many match in all.
    async fn device_page(&self, q: DeviceQuery) -> Result<(Vec<Device>, u64), StoreError>;
    /// Reports per level received since each of `since` (one count per entry, in order).
    async fn report_level_counts(
        &self,
        since: Vec<Timestamp>,
    ) -> Result<Vec<(Level, Vec<u64>)>, StoreError>;
    /// The newest reports of the whole fleet.
    async fn latest_reports(&self, limit: u64) -> Result<Vec<FleetReport>, StoreError>;
    async fn device_reports(
        &self,
        device_id: &str,
        q: ReportQuery,
    ) -> Result<Vec<StoredReport>, StoreError>;
    /// Error and critical reports received since `since`, for each of `device_ids` that has any.
    async fn error_counts(
        &self,
        device_ids: Vec<String>,
        since: Timestamp,
    ) -> Result<std::collections::HashMap<String, u64>, StoreError>;
    /// Approved devices seen since `online_since` (online) or not (offline), and pending ones.
    async fn device_counts(&self, online_since: Timestamp) -> Result<DeviceCounts, StoreError>;
}
