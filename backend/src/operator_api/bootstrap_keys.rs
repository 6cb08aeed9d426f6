//! Bootstrap keys: create (the secret is shown once), list, revoke.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, State};
use serde::{Deserialize, Serialize};

use super::auth::Actor;
use crate::config::node::normalize_group;
use crate::error::ApiError;
use crate::state::{Shared, now};
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

#[derive(Serialize)]
pub struct CreatedKey {
    /// The secret; shown only now.
    key: String,
    #[serde(flatten)]
    info: BootstrapKey,
}

/// `POST /api/v1/bootstrap-keys`.
pub async fn create(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    body: Result<Json<CreateKey>, JsonRejection>,
) -> Result<Json<CreatedKey>, ApiError> {
    let Json(req) = body.map_err(ApiError::from_json)?;
    let group = req
        .group
        .as_deref()
        .map(normalize_group)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if let Some(g) = &group {
        state.store.ensure_group(g).await?;
    }
    let key = super::auth::new_token().replacen("apiary_", "apiary-bootstrap_", 1);
    let hash = apiary_proto::digest::sha256_hex(key.as_bytes());
    let info = state
        .store
        .insert_bootstrap_key(&hash, group.as_deref(), req.auto_accept, &actor.0, now())
        .await?;
    super::audit(
        &state,
        &actor.0,
        "bootstrap_key.create",
        &info.id.to_string(),
        format!(
            "group={} auto_accept={}",
            group.as_deref().unwrap_or("unassigned"),
            req.auto_accept
        ),
    )
    .await;
    Ok(Json(CreatedKey { key, info }))
}

/// `GET /api/v1/bootstrap-keys`.
pub async fn list(State(state): State<Shared>) -> Result<Json<Vec<BootstrapKey>>, ApiError> {
    Ok(Json(state.store.list_bootstrap_keys().await?))
}

/// `DELETE /api/v1/bootstrap-keys/{id}`.
pub async fn revoke(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !state.store.revoke_bootstrap_key(id, now()).await? {
        return Err(ApiError::not_found(format!("no bootstrap key {id}")));
    }
    super::audit(
        &state,
        &actor.0,
        "bootstrap_key.revoke",
        &id.to_string(),
        "",
    )
    .await;
    Ok(Json(serde_json::json!({"revoked": id})))
}

/// `GET /api/v1/ca`: the CA certificate agents pin (PEM), for `bootstrap --ca-cert`.
pub async fn ca(State(state): State<Shared>) -> String {
    state.authority.cert_pem.clone()
}
