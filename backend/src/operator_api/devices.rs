//! `/devices`: list, show, approve, reject.

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use serde::Deserialize;

use super::auth::Actor;
use crate::error::ApiError;
use crate::service::devices::{self, DeviceDetail};
use crate::state::Shared;
use crate::store::{Device, DeviceStatus};

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
}

/// `GET /api/v1/devices[?status=pending]`.
pub async fn list(
    State(state): State<Shared>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<Device>>, ApiError> {
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
    Ok(Json(devices::list(&state, status).await?))
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
