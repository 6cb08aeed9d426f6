//! `/devices`: list, show, approve, reject, delete.

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::Actor;
use crate::error::ApiError;
use crate::service::devices::{self, DeviceDetail};
use crate::state::Shared;
use crate::store::fleet_view::DeviceQuery;
use crate::store::{Device, DeviceStatus};

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    /// A page of at most this many devices (by name), with `X-Total-Count` the number
    /// that match; the pending list is always paged.
    limit: Option<u64>,
    #[serde(default)]
    offset: u64,
}

/// Devices a page holds at most; and the pending list's page when none is asked for.
const MAX_PAGE: u64 = 1000;
const PENDING_PAGE: u64 = 100;

/// `GET /api/v1/devices[?status=pending][&limit=N&offset=M]`.
pub async fn list(
    State(state): State<Shared>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let status = q
        .status
        .as_deref()
        .map(|s| {
            DeviceStatus::parse(s).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unknown status {s:?}; use pending, approved or rejected"
                ))
            })
        })
        .transpose()?;
    let limit = match (q.limit, status) {
        (Some(limit), _) => limit.clamp(1, MAX_PAGE),
        (None, Some(DeviceStatus::Pending)) => PENDING_PAGE,
        (None, _) => return Ok(Json(devices::list(&state, status).await?).into_response()),
    };
    let query = DeviceQuery {
        status,
        offset: q.offset,
        limit,
        ..DeviceQuery::default()
    };
    let (page, total) = state.store.device_page(query).await?;
    Ok(([("x-total-count", total.to_string())], Json(page)).into_response())
}

/// `GET /api/v1/devices/{id}`.
pub async fn show(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<DeviceDetail>, ApiError> {
    Ok(Json(devices::show(&state, &id).await?))
}

/// `POST /api/v1/devices/{id}/approve`.
pub async fn approve(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<Device>, ApiError> {
    Ok(Json(devices::approve(&state, &actor.0, &id).await?))
}

/// `POST /api/v1/devices/{id}/reject`.
pub async fn reject(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<Device>, ApiError> {
    Ok(Json(devices::reject(&state, &actor.0, &id).await?))
}

/// `DELETE /api/v1/devices/{id}`: forget the device (see `service::devices::delete`).
pub async fn delete(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<Device>, ApiError> {
    Ok(Json(devices::delete(&state, &actor.0, &id).await?))
}

/// `GET /api/v1/devices/{id}/offline-bundle`: the signed bundle and its files as one
/// archive (`application/x-tar`), for `apiary-agent apply` on a device with no network.
pub async fn offline_bundle(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let archive = crate::service::offline::export(&state, &actor.0, &id).await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-tar")],
        archive,
    )
        .into_response())
}
