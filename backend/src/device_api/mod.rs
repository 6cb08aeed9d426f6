//! The device API (`/v1`): enrolment, the check-in, and file downloads.

use axum::Router;
use axum::routing::{get, post};

use crate::state::Shared;

mod body;
mod checkin;
mod enroll;
mod files;
mod monitoring;
mod renew;

/// The device API router.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route(apiary_proto::paths::BOOTSTRAP, post(enroll::bootstrap))
        .route("/v1/bootstrap/{device_id}", get(enroll::status))
        .route(apiary_proto::paths::CHECKIN, post(checkin::checkin))
        .route(apiary_proto::paths::RENEW, post(renew::renew))
        .route("/v1/files/{sha256}", get(files::download))
        .fallback(|| async { crate::error::ApiError::not_found("no such device API endpoint") })
        .with_state(state)
}

/// An approved device, identified by its current certificate.
pub(crate) struct AuthenticatedDevice {
    pub id: String,
    pub state: crate::store::CheckinState,
}

/// The approved device behind a connection's client certificate.
pub(crate) async fn authenticated_device(
    state: &Shared,
    conn: &crate::tls_server::ConnInfo,
) -> Result<AuthenticatedDevice, crate::error::ApiError> {
    use crate::error::ApiError;
    let peer = conn
        .peer
        .as_ref()
        .ok_or_else(|| ApiError::unauthorized("a device certificate is required"))?;
    // Only the certificate issued at approval or the last renewal counts (and, until the
    // device first presents that one, the one it replaced): a rejected device's is dead.
    if let Some(current) = state.store.checkin_state(&peer.device_id).await? {
        let previous = current.previous_cert.as_deref() == Some(peer.fingerprint.as_str());
        if current.cert_fingerprint == peer.fingerprint || previous {
            if current.previous_cert.is_some() && !previous {
                state
                    .store
                    .forget_previous_certificate(&peer.device_id)
                    .await?;
            }
            return Ok(AuthenticatedDevice {
                id: peer.device_id.clone(),
                state: current,
            });
        }
    }
    // Refused: one more query, for a message that says why.
    let device =
        state.store.device(&peer.device_id).await?.ok_or_else(|| {
            ApiError::forbidden(format!("device {} is not enrolled", peer.device_id))
        })?;
    Err(ApiError::forbidden(format!(
        "device {} is {} or presents a superseded certificate",
        device.id,
        device.status.as_str()
    )))
}
