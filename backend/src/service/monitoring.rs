//! Monitoring for operators: a device's inventory kinds and metric series, and fleet-wide
//! searches for a package or an open port.

use apiary_proto::inventory::{Inventory, Kind as InventoryKind};
use serde::Serialize;

use super::{Failure, Kind};
use crate::metrics::{self, Resolution, SeriesSet};
use crate::state::AppState;
use crate::store::monitoring::Found;
use crate::store::{StoreError, Timestamp};

/// Matches a fleet search returns at most.
pub const SEARCH_LIMIT: u32 = 1000;

/// Why a monitoring query was refused.
#[derive(Debug, thiserror::Error)]
pub enum MonitoringError {
    #[error("no device {0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Failure for MonitoringError {
    fn kind(&self) -> Kind {
        match self {
            MonitoringError::NotFound(_) => Kind::NotFound,
            MonitoringError::Invalid(_) => Kind::Invalid,
            MonitoringError::Store(e) => e.kind(),
        }
    }
}

/// One inventory kind of a device, as shown.
#[derive(Clone, Debug, Serialize)]
pub struct InventoryView {
    pub kind: InventoryKind,
    pub changed_at: Timestamp,
    pub received_at: Timestamp,
    pub hash: String,
    /// The kind's content (the system object, or the list of entries).
    pub data: serde_json::Value,
}

async fn existing(state: &AppState, id: &str) -> Result<(), MonitoringError> {
    match state.store.device(id).await? {
        Some(_) => Ok(()),
        None => Err(MonitoringError::NotFound(id.to_string())),
    }
}

/// One inventory kind of a device, parsed.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub kind: InventoryKind,
    pub changed_at: Timestamp,
    pub received_at: Timestamp,
    pub hash: String,
    pub data: Inventory,
}

/// Every inventory kind the device has sent, parsed, in kind order.
pub async fn inventory_parsed(state: &AppState, id: &str) -> Result<Vec<Parsed>, MonitoringError> {
    existing(state, id).await?;
    let mut out = Vec::new();
    for stored in state.store.inventory(id).await? {
        let data = serde_json::from_str(&stored.data).map_err(|e| StoreError::Corrupt {
            what: format!("{} inventory of {id}", stored.kind.as_str()),
            source: Box::new(e),
        })?;
        out.push(Parsed {
            kind: stored.kind,
            changed_at: stored.changed_at,
            received_at: stored.received_at,
            hash: stored.hash,
            data,
        });
    }
    Ok(out)
}

/// Every inventory kind the device has sent, or only `kind`.
pub async fn inventory(
    state: &AppState,
    id: &str,
    kind: Option<InventoryKind>,
) -> Result<Vec<InventoryView>, MonitoringError> {
    let parsed = inventory_parsed(state, id).await?;
    Ok(parsed
        .into_iter()
        .filter(|p| kind.is_none_or(|k| k == p.kind))
        .map(|p| InventoryView {
            kind: p.kind,
            changed_at: p.changed_at,
            received_at: p.received_at,
            data: match p.data {
                Inventory::System(s) => serde_json::to_value(s),
                Inventory::Software(l) => serde_json::to_value(l),
                Inventory::Users(l) => serde_json::to_value(l),
                Inventory::Ports(l) => serde_json::to_value(l),
                Inventory::Processes(l) => serde_json::to_value(l),
            }
            .expect("inventory serialises"),
            hash: p.hash,
        })
        .collect())
}

/// The device's series from `from` to `to` (see [`metrics::query`]).
pub async fn series(
    state: &AppState,
    id: &str,
    (from, to): (Timestamp, Timestamp),
    resolution: Option<Resolution>,
    only: &[String],
) -> Result<SeriesSet, MonitoringError> {
    existing(state, id).await?;
    if from >= to {
        return Err(MonitoringError::Invalid(format!(
            "the range must start before it ends (from {from}, to {to})"
        )));
    }
    Ok(metrics::query(
        state.store.as_ref(),
        id,
        (from, to),
        resolution,
        state.retention,
        only,
    )
    .await?)
}

/// What to search the fleet for.
#[derive(Clone, Debug)]
pub enum Search {
    /// Packages whose name contains this.
    Package(String),
    /// Sockets listening on this port.
    Port(u16),
}

/// Devices matching `search`.
pub async fn search(state: &AppState, search: Search) -> Result<Vec<Found>, MonitoringError> {
    Ok(match search {
        Search::Package(text) => {
            let text = text.trim();
            if text.is_empty() || text.len() > 128 {
                return Err(MonitoringError::Invalid(
                    "a package search needs 1 to 128 characters".into(),
                ));
            }
            state.store.find_package(text, SEARCH_LIMIT).await?
        }
        Search::Port(port) => state.store.find_port(port, SEARCH_LIMIT).await?,
    })
}
