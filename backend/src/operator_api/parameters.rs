//! `/parameters`: one key at a time (see `service::parameters`).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Actor;
use super::config::NodeQuery;
use crate::error::ApiError;
use crate::service::parameters::{self, NodeParameters, ParameterSet};
use crate::state::Shared;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetParameter {
    value: String,
    /// Store sealed; never shown again, never reported by agents.
    #[serde(default)]
    secret: bool,
}

/// `PUT /api/v1/parameters/{key}?node=N` `{"value": "...", "secret": false}`.
pub async fn set(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(key): Path<String>,
    Query(q): Query<NodeQuery>,
    body: Result<Json<SetParameter>, JsonRejection>,
) -> Result<Json<ParameterSet>, ApiError> {
    let Json(req) = body.map_err(ApiError::from_json)?;
    let set = parameters::set(&state, &actor.0, &q.node, &key, &req.value, req.secret).await?;
    Ok(Json(set))
}

/// `DELETE /api/v1/parameters/{key}?node=N`.
pub async fn unset(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(key): Path<String>,
    Query(q): Query<NodeQuery>,
) -> Result<Json<Value>, ApiError> {
    let node = parameters::unset(&state, &actor.0, &q.node, &key).await?;
    Ok(Json(json!({"node": node, "key": key, "unset": true})))
}

/// `GET /api/v1/parameters?node=N`: the node's own (as drafted) and what is in force.
pub async fn show(
    State(state): State<Shared>,
    Query(q): Query<NodeQuery>,
) -> Result<Json<NodeParameters>, ApiError> {
    Ok(Json(parameters::show(&state, &q.node).await?))
}
