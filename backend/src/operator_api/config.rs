//! `/config`: a node's configuration, and drafting a policy document or its removal.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, Query, State};
use serde::Deserialize;

use super::auth::Actor;
use crate::error::ApiError;
use crate::service::config::{self, Drafted, NodeConfig};
use crate::state::Shared;

/// `?node=N`: a group path or a device id.
#[derive(Deserialize)]
pub struct NodeQuery {
    pub node: String,
}

/// `GET /api/v1/config?node=N`.
pub async fn show(
    State(state): State<Shared>,
    Query(q): Query<NodeQuery>,
) -> Result<Json<NodeConfig>, ApiError> {
    Ok(Json(config::show(&state, &q.node).await?))
}

/// `PUT /api/v1/config/{policy}?node=N`: drafts a policy document.
pub async fn set(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(policy): Path<String>,
    Query(q): Query<NodeQuery>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<Drafted>, ApiError> {
    let Json(body) = body.map_err(ApiError::from_json)?;
    Ok(Json(
        config::set(&state, &actor.0, &q.node, &policy, body).await?,
    ))
}

/// `DELETE /api/v1/config/{policy}?node=N`: drafts removing the node's own document.
pub async fn unset(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(policy): Path<String>,
    Query(q): Query<NodeQuery>,
) -> Result<Json<Drafted>, ApiError> {
    Ok(Json(
        config::unset(&state, &actor.0, &q.node, &policy).await?,
    ))
}
