//! `/groups` and `/devices/{id}/move`: the device tree.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Actor;
use crate::error::ApiError;
use crate::service::groups;
use crate::state::Shared;
use crate::store::GroupInfo;

/// `GET /api/v1/groups`.
pub async fn list(State(state): State<Shared>) -> Result<Json<Vec<GroupInfo>>, ApiError> {
    Ok(Json(groups::list(&state).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    path: String,
}

/// `POST /api/v1/groups` `{"path": "/prod/oslo"}`.
pub async fn create(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    body: Result<Json<CreateGroup>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(req) = body.map_err(ApiError::from_json)?;
    let path = groups::create(&state, &actor.0, &req.path).await?;
    Ok(Json(json!({"path": path})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameGroup {
    from: String,
    to: String,
}

/// `POST /api/v1/groups/rename` `{"from": "/a/b", "to": "/c/b"}`: rename or move a subtree.
pub async fn rename(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    body: Result<Json<RenameGroup>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(req) = body.map_err(ApiError::from_json)?;
    let changed = groups::rename(&state, &actor.0, &req.from, &req.to).await?;
    Ok(Json(
        json!({"from": req.from, "to": req.to, "devices_with_new_bundle": changed}),
    ))
}

#[derive(Deserialize)]
pub struct PathQuery {
    path: String,
}

/// `DELETE /api/v1/groups?path=/a`: only empty groups.
pub async fn delete(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Query(q): Query<PathQuery>,
) -> Result<Json<Value>, ApiError> {
    groups::delete(&state, &actor.0, &q.path).await?;
    Ok(Json(json!({"deleted": q.path})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveDevice {
    /// Target group; `null` puts the device in "unassigned".
    group: Option<String>,
}

/// `POST /api/v1/devices/{id}/move` `{"group": "/prod"}`.
pub async fn move_device(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    body: Result<Json<MoveDevice>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(req) = body.map_err(ApiError::from_json)?;
    let changed = groups::move_device(&state, &actor.0, &id, req.group.as_deref()).await?;
    Ok(Json(
        json!({"device": id, "group": req.group, "new_bundle": changed}),
    ))
}
