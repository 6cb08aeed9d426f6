//! Inventory and metrics: a part of the store of its own, written by check-ins and read by
//! the device page, the REST API and fleet searches.
//!
//! Implementations keep, per device, the latest content of each inventory kind and the rows
//! of metric samples as [`crate::metrics::codec`] encodes them. A device's inventory and
//! metrics go when the device is deleted.

use std::collections::BTreeMap;
use std::sync::Arc;

use apiary_proto::inventory::{Inventory, Kind};
use apiary_proto::metrics::Sample;
use async_trait::async_trait;
use serde::Serialize;

use super::{StoreError, Timestamp};

/// One kind of a device's inventory as stored.
#[derive(Clone, Debug, Serialize)]
pub struct StoredInventory {
    pub kind: Kind,
    /// The agent's SHA-256 of the content.
    pub hash: String,
    /// The content as [`Inventory`] JSON.
    #[serde(skip)]
    pub data: String,
    /// When this content first arrived (the kind last changed).
    pub changed_at: Timestamp,
    /// When the device last sent it (again, if it lost the acknowledgement).
    pub received_at: Timestamp,
}

/// A device found by a fleet search.
#[derive(Clone, Debug, Serialize)]
pub struct Found {
    pub device_id: String,
    pub device_name: String,
    /// What matched: `dpkg bash 5.2.15-2+b2`, `tcp 0.0.0.0:22 sshd`.
    pub detail: String,
}

/// Samples of one check-in, checked against the names they come with.
#[derive(Clone, Debug)]
pub struct NewSamples {
    /// The names the samples' values follow; `None` means the device's current list.
    pub names: Option<Vec<String>>,
    /// Sequence number of the first sample.
    pub seq: u64,
    pub samples: Vec<Sample>,
}

/// What storing samples came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SamplesStored {
    /// Stored (or already stored: a sample is one per device and second), up to this seq.
    Upto(u64),
    /// Without names, and the device has no list these samples fit: nothing stored.
    NeedNames,
}

/// Rows of samples between two times, in time order.
#[derive(Clone, Debug, Default)]
pub struct MetricRows {
    /// Raw rows: time, the names list, values.
    pub raw: Vec<(Timestamp, Arc<Vec<String>>, Vec<u8>)>,
    /// Hourly rows: hour start, the names list, aggregates.
    pub hourly: Vec<(Timestamp, Arc<Vec<String>>, Vec<u8>)>,
}

/// Inventory and metrics of the fleet.
#[async_trait]
pub trait MonitoringStore: Send + Sync + 'static {
    /// Replaces each kind in `kinds` (hash, content) of `device_id`, content checked by the
    /// caller. A kind whose hash is the stored one only has `received_at` set to `now`;
    /// another replaces the content with `changed_at` `now`, and the package and port rows
    /// of fleet searches follow.
    async fn put_inventory(
        &self,
        device_id: &str,
        kinds: Vec<(String, Inventory)>,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// The hash of every kind stored for `device_id`.
    async fn inventory_hashes(&self, device_id: &str)
    -> Result<BTreeMap<Kind, String>, StoreError>;

    /// Every kind stored for `device_id`, content included.
    async fn inventory(&self, device_id: &str) -> Result<Vec<StoredInventory>, StoreError>;

    /// Devices with a package whose name contains `text` (case-insensitively), at most
    /// `limit` matches.
    async fn find_package(&self, text: &str, limit: u32) -> Result<Vec<Found>, StoreError>;

    /// Devices listening on `port`, at most `limit` matches.
    async fn find_port(&self, port: u16, limit: u32) -> Result<Vec<Found>, StoreError>;

    /// Stores samples: each raw, and added to its hour only the first time it is stored,
    /// so a batch sent again (its acknowledgement lost) counts once.
    async fn put_samples(
        &self,
        device_id: &str,
        samples: NewSamples,
    ) -> Result<SamplesStored, StoreError>;

    /// Raw rows with `from <= time < to`, and hourly rows with `from <= hour < to`.
    async fn metric_rows(
        &self,
        device_id: &str,
        from: Timestamp,
        to: Timestamp,
        raw: bool,
    ) -> Result<MetricRows, StoreError>;

    /// Deletes raw rows older than `raw_before` and hourly rows older than `hourly_before`;
    /// returns how many rows went.
    async fn prune_metrics(
        &self,
        raw_before: Timestamp,
        hourly_before: Timestamp,
    ) -> Result<u64, StoreError>;
}
