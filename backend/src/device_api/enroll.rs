//! Enrolment: a device proves possession of its new key and presents a bootstrap key.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, State};

use apiary_proto::device_api::{Credentials, EnrollRequest, EnrollState, EnrollStatus};
use apiary_proto::signed::{self, Envelope};
use apiary_proto::{digest, hex};

use crate::error::ApiError;
use crate::state::{Shared, now};
use crate::store::{Device, DeviceStatus, NewDevice};
use crate::tls_server::ConnInfo;

const MAX_FIELD: usize = 256;

/// `POST /v1/bootstrap`.
pub async fn bootstrap(
    State(state): State<Shared>,
    Extension(conn): Extension<ConnInfo>,
    body: Result<Json<Envelope>, JsonRejection>,
) -> Result<Json<EnrollStatus>, ApiError> {
    let Json(envelope) = body.map_err(ApiError::from_json)?;
    let request: EnrollRequest = envelope
        .parse_payload()
        .map_err(|e| ApiError::bad_request(format!("enrolment request: {e}")))?;
    let public_key = hex::decode(&request.public_key)
        .ok_or_else(|| ApiError::bad_request("public_key is not hex"))?;
    // Proof of possession: the request is signed by the key it enrols.
    signed::verify_ecdsa_p384(&envelope, &request.public_key)
        .map_err(|e| ApiError::bad_request(format!("enrolment signature: {e}")))?;
    for (name, value) in [
        ("device_name", &request.device_name),
        ("hostname", &request.facts.hostname),
        ("os", &request.facts.os),
        ("kernel", &request.facts.kernel),
        ("arch", &request.facts.arch),
        ("agent_version", &request.facts.agent_version),
    ] {
        if value.len() > MAX_FIELD || value.chars().any(char::is_control) {
            return Err(ApiError::bad_request(format!(
                "{name} is longer than {MAX_FIELD} bytes or has control characters"
            )));
        }
    }
    apiary_proto::device_api::NetInterface::validate_list(&request.facts.network)
        .map_err(|e| ApiError::bad_request(format!("network facts: {e}")))?;

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
    let device = state
        .store
        .enroll_device(NewDevice {
            id: device_id.clone(),
            name,
            public_key: request.public_key.clone(),
            group: key.group.clone(),
            facts: request.facts,
            remote_ip: conn.remote.ip().to_string(),
            requested_at: now(),
            bootstrap_key_id: key.id,
        })
        .await?;
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
