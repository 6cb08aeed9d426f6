//! Certificate renewal: a device asked to renew (`renew` in a check-in answer) sends a
//! request signed with its current key, over a connection authenticated with its current
//! certificate, and gets a new certificate for the same key. The old one stays accepted
//! until the device first presents the new one (see `authenticated_device`).

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;

use apiary_proto::device_api::{MAX_RENEW_BODY_BYTES, RenewRequest, RenewResponse};
use apiary_proto::{hex, signed};

use crate::error::ApiError;
use crate::state::Shared;
use crate::tls_server::ConnInfo;

/// `POST /v1/renew` (mTLS).
pub async fn renew(
    State(state): State<Shared>,
    Extension(conn): Extension<ConnInfo>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<RenewResponse>, ApiError> {
    let device = super::authenticated_device(&state, &conn).await?;
    let envelope: signed::Envelope =
        super::body::read_json(&headers, body, MAX_RENEW_BODY_BYTES).await?;
    let request: RenewRequest = envelope
        .parse_payload()
        .map_err(|e| ApiError::bad_request(format!("renewal request: {e}")))?;
    if request.device_id != device.id {
        return Err(ApiError::forbidden(format!(
            "renewal request for {} on the connection of {}",
            request.device_id, device.id
        )));
    }
    let stored = state
        .store
        .device(&device.id)
        .await?
        .ok_or_else(|| ApiError::forbidden(format!("device {} is not enrolled", device.id)))?;
    signed::verify_device_signature(&envelope, &stored.public_key)
        .map_err(|e| ApiError::forbidden(format!("renewal signature of {}: {e}", device.id)))?;
    let key = hex::decode(&stored.public_key).ok_or_else(|| {
        ApiError::internal(format!("stored public key of {} is corrupt", device.id))
    })?;
    let cert_pem = state
        .authority
        .issue_device(&device.id, &key)
        .map_err(|e| {
            ApiError::internal(format!("renewing the certificate of {}: {e}", device.id))
        })?;
    let fingerprint = crate::pki::pem_fingerprint(&cert_pem)
        .map_err(|e| ApiError::internal(format!("renewed certificate of {}: {e}", device.id)))?;
    if !state
        .store
        .renew_certificate(&device.id, &cert_pem, &fingerprint)
        .await?
    {
        return Err(ApiError::forbidden(format!(
            "device {} is no longer approved",
            device.id
        )));
    }
    tracing::info!("device {}: certificate renewed", device.id);
    Ok(Json(RenewResponse {
        certificate_pem: cert_pem,
    }))
}
