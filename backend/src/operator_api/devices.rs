//! Devices: list, show, approve, reject.

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use serde::{Deserialize, Serialize};

use super::auth::Actor;
use crate::error::ApiError;
use crate::state::{Shared, now};
use crate::store::{Device, DeviceStatus, StoredBundle, StoredReport};

/// Reports shown with a device.
const RECENT_REPORTS: u32 = 100;

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
    Ok(Json(state.store.list_devices(status).await?))
}

#[derive(Serialize)]
pub struct DeviceDetail {
    #[serde(flatten)]
    device: Device,
    /// The bundle the backend holds for the device (which it may not have applied yet).
    current_bundle: Option<StoredBundle>,
    /// Newest first.
    reports: Vec<StoredReport>,
}

/// `GET /api/v1/devices/{id}`.
pub async fn show(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<DeviceDetail>, ApiError> {
    let device = find(&state, &id).await?;
    Ok(Json(DeviceDetail {
        current_bundle: state.store.current_bundle(&device.id).await?,
        reports: state
            .store
            .recent_reports(&device.id, RECENT_REPORTS)
            .await?,
        device,
    }))
}

/// `POST /api/v1/devices/{id}/approve`.
pub async fn approve_handler(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<Device>, ApiError> {
    let device = find(&state, &id).await?;
    match device.status {
        DeviceStatus::Pending => Ok(Json(approve(&state, &device, &actor.0).await?)),
        DeviceStatus::Approved => Err(ApiError::conflict(format!(
            "device {id} is already approved"
        ))),
        DeviceStatus::Rejected => Err(ApiError::conflict(format!(
            "device {id} was rejected; it becomes pending again when it runs bootstrap again"
        ))),
    }
}

/// Issues the device's certificate and its first bundle.
pub async fn approve(state: &Shared, device: &Device, actor: &str) -> Result<Device, ApiError> {
    let public_key = apiary_proto::hex::decode(&device.public_key).ok_or_else(|| {
        ApiError::internal(format!("stored public key of {} is corrupt", device.id))
    })?;
    let cert = state
        .authority
        .issue_device(&device.id, &public_key)
        .map_err(|e| {
            ApiError::internal(format!("cannot issue a certificate for {}: {e}", device.id))
        })?;
    let fingerprint =
        crate::pki::pem_fingerprint(&cert).map_err(|e| ApiError::internal(e.to_string()))?;
    state
        .store
        .approve_device(&device.id, &cert, &fingerprint, now())
        .await?;
    let device = find(state, &device.id).await?;
    crate::config::commit::refresh_devices(state, std::slice::from_ref(&device), now())
        .await
        .map_err(|e| {
            ApiError::internal(format!(
                "approved, but its bundle could not be compiled: {e}"
            ))
        })?;
    super::audit(
        state,
        actor,
        "device.approve",
        &device.id,
        format!("name={}", device.name),
    )
    .await;
    Ok(device)
}

/// `POST /api/v1/devices/{id}/reject`.
pub async fn reject(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<Device>, ApiError> {
    let device = find(&state, &id).await?;
    state.store.reject_device(&device.id).await?;
    super::audit(
        &state,
        &actor.0,
        "device.reject",
        &device.id,
        format!("name={}", device.name),
    )
    .await;
    Ok(Json(find(&state, &id).await?))
}

async fn find(state: &Shared, id: &str) -> Result<Device, ApiError> {
    state
        .store
        .device(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no device {id}")))
}
