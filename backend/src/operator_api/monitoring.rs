//! `/devices/{id}/inventory`, `/devices/{id}/metrics` and `/inventory/search`.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use apiary_proto::inventory::Kind;

use crate::error::ApiError;
use crate::metrics::{Resolution, SeriesSet};
use crate::service::monitoring::{self, InventoryView, Search};
use crate::state::{Shared, now};
use crate::store::monitoring::Found;

/// `GET /api/v1/devices/{id}/inventory`: every kind.
pub async fn all(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Vec<InventoryView>>, ApiError> {
    Ok(Json(monitoring::inventory(&state, &id, None).await?))
}

/// `GET /api/v1/devices/{id}/inventory/{kind}`: one kind (404 until the device sent it).
pub async fn one(
    State(state): State<Shared>,
    Path((id, kind)): Path<(String, String)>,
) -> Result<Json<InventoryView>, ApiError> {
    let parsed = Kind::parse(&kind).ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown inventory kind {kind:?}; use system, software, users, ports or processes"
        ))
    })?;
    monitoring::inventory(&state, &id, Some(parsed))
        .await?
        .pop()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("device {id} has sent no {kind} inventory yet")))
}

#[derive(Deserialize)]
pub struct MetricsQuery {
    /// Unix seconds; default a day before `to`.
    from: Option<i64>,
    /// Unix seconds; default now.
    to: Option<i64>,
    /// `raw` or `hourly`; chosen from the range by default.
    resolution: Option<String>,
    /// Comma-separated series names; all by default.
    series: Option<String>,
}

/// `GET /api/v1/devices/{id}/metrics?from=&to=&resolution=&series=`.
pub async fn metrics(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(q): Query<MetricsQuery>,
) -> Result<Json<SeriesSet>, ApiError> {
    let to = q.to.unwrap_or_else(|| now() + 1);
    let from = q.from.unwrap_or(to - 86400);
    let resolution = match q.resolution.as_deref() {
        None | Some("") | Some("auto") => None,
        Some("raw") => Some(Resolution::Raw),
        Some("hourly") => Some(Resolution::Hourly),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown resolution {other:?}; use raw, hourly or auto"
            )));
        }
    };
    let only: Vec<String> = q
        .series
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    Ok(Json(
        monitoring::series(&state, &id, (from, to), resolution, &only).await?,
    ))
}

#[derive(Deserialize)]
pub struct SearchQuery {
    package: Option<String>,
    port: Option<u16>,
}

/// `GET /api/v1/inventory/search?package=TEXT` or `?port=N`: devices that have it.
pub async fn search(
    State(state): State<Shared>,
    Query(q): Query<SearchQuery>,
) -> Result<Json<Vec<Found>>, ApiError> {
    let search = match (q.package, q.port) {
        (Some(text), None) => Search::Package(text),
        (None, Some(port)) => Search::Port(port),
        _ => {
            return Err(ApiError::bad_request(
                "search for one of package=TEXT or port=N",
            ));
        }
    };
    Ok(Json(monitoring::search(&state, search).await?))
}
