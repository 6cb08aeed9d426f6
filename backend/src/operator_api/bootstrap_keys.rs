//! `/bootstrap-keys` and `/ca`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, State};
use serde::Deserialize;

use super::auth::Actor;
use crate::error::ApiError;
use crate::service::bootstrap_keys::{self, CreatedKey};
use crate::state::Shared;
use crate::store::BootstrapKey;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// Group path new devices land in; absent is "unassigned".
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    auto_accept: bool,
}

/// `POST /api/v1/bootstrap-keys`.
pub async fn create(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    body: Result<Json<CreateKey>, JsonRejection>,
) -> Result<Json<CreatedKey>, ApiError> {
    let Json(req) = body.map_err(ApiError::from_json)?;
    let created =
        bootstrap_keys::create(&state, &actor.0, req.group.as_deref(), req.auto_accept).await?;
    Ok(Json(created))
}

/// `GET /api/v1/bootstrap-keys`.
pub async fn list(State(state): State<Shared>) -> Result<Json<Vec<BootstrapKey>>, ApiError> {
    Ok(Json(bootstrap_keys::list(&state).await?))
}

/// `DELETE /api/v1/bootstrap-keys/{id}`.
pub async fn revoke(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    bootstrap_keys::revoke(&state, &actor.0, id).await?;
    Ok(Json(serde_json::json!({"revoked": id})))
}

/// `GET /api/v1/ca`: the CA certificate agents pin (PEM), for `bootstrap --ca-cert`.
pub async fn ca(State(state): State<Shared>) -> String {
    state.authority.cert_pem.clone()
}
