//! Enrolment: a device proves possession of its new key and presents a bootstrap key.

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};

use apiary_proto::device_api::{
    Credentials, EnrollRequest, EnrollState, EnrollStatus, MAX_ENROLL_BODY_BYTES,
};
use apiary_proto::signed::{self, Envelope};
use apiary_proto::{digest, hex};

use crate::error::ApiError;
use crate::state::{Shared, now};
use crate::store::{Device, DeviceStatus, Enrolment, NewDevice};
use crate::tls_server::ConnInfo;

/// Devices one bootstrap key may have waiting for an operator: a leaked key cannot bury the
/// pending list, and a factory batch still fits.
pub const MAX_PENDING_PER_KEY: u64 = 1000;
/// A request no operator decided on within this many seconds (a week) is dropped; the
/// device asks again on its own.
pub const PENDING_TTL_SECONDS: i64 = 7 * 24 * 3600;

/// `POST /v1/bootstrap`.
pub async fn bootstrap(
    State(state): State<Shared>,
    Extension(conn): Extension<ConnInfo>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<EnrollStatus>, ApiError> {
    let envelope: Envelope = super::body::read_json(&headers, body, MAX_ENROLL_BODY_BYTES).await?;
    let request: EnrollRequest = envelope
        .parse_payload()
        .map_err(|e| ApiError::bad_request(format!("enrolment request: {e}")))?;
    request
        .validate()
        .map_err(|e| ApiError::bad_request(format!("enrolment request: {e}")))?;
    let public_key = hex::decode(&request.public_key)
        .ok_or_else(|| ApiError::bad_request("public_key is not hex"))?;
    // Proof of possession: the request is signed by the key it enrols.
    signed::verify_device_signature(&envelope, &request.public_key)
        .map_err(|e| ApiError::bad_request(format!("enrolment signature: {e}")))?;

    let key_hash = digest::sha256_hex(request.bootstrap_key.as_bytes());
    let key = match state.store.bootstrap_key_by_hash(&key_hash).await? {
        Some(k) if k.revoked_at.is_none() => k,
        _ => return Err(ApiError::forbidden("bootstrap key is unknown or revoked")),
    };
    let device_id = digest::device_id(&public_key);
    let name = if request.device_name.is_empty() {
        request.facts.hostname.clone()
    } else {
        request.device_name.clone()
    };
    let now = now();
    let enrolment = state
        .store
        .enroll_device(NewDevice {
            id: device_id.clone(),
            name,
            public_key: request.public_key.clone(),
            group: key.group.clone(),
            facts: request.facts,
            remote_ip: conn.remote.ip().to_string(),
            requested_at: now,
            bootstrap_key_id: key.id,
            max_pending_per_key: MAX_PENDING_PER_KEY,
            pending_since: now - PENDING_TTL_SECONDS,
        })
        .await?;
    let device = match enrolment {
        Enrolment::Recorded(device) => *device,
        Enrolment::KeyFull { pending } => {
            tracing::warn!(device = %device_id, key = key.id, "enrolment refused: {pending} requests pending");
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "bootstrap key {} already has {pending} devices waiting for approval; \
                     an operator must approve or reject some first",
                    key.id
                ),
            ));
        }
    };
    tracing::info!(device = %device_id, auto_accept = key.auto_accept, "enrolment request");
    let device = if key.auto_accept && device.status == DeviceStatus::Pending {
        crate::service::devices::approve_pending(
            &state,
            &format!("bootstrap-key:{}", key.id),
            &device,
        )
        .await?
    } else {
        device
    };
    Ok(Json(status_of(&state, &device)))
}

/// `GET /v1/bootstrap/{device_id}`: public, since certificates and keys it returns are public.
pub async fn status(
    State(state): State<Shared>,
    Path(device_id): Path<String>,
) -> Result<Json<EnrollStatus>, ApiError> {
    let device = state
        .store
        .device(&device_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no enrolment for device {device_id}")))?;
    Ok(Json(status_of(&state, &device)))
}

fn status_of(state: &Shared, device: &Device) -> EnrollStatus {
    let (state_, credentials) = match device.status {
        DeviceStatus::Pending => (EnrollState::Pending, None),
        DeviceStatus::Rejected => (EnrollState::Rejected, None),
        DeviceStatus::Approved => (
            EnrollState::Approved,
            device.cert_pem.clone().map(|certificate_pem| Credentials {
                certificate_pem,
                ca_pem: state.authority.cert_pem.clone(),
                bundle_signing_key: state.signer.public_key_hex(),
            }),
        ),
    };
    EnrollStatus {
        device_id: device.id.clone(),
        state: state_,
        credentials,
    }
}
