//! The device tree: groups and moving devices between them.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Actor;
use crate::config::tree::{self, TreeError};
use crate::error::ApiError;
use crate::state::Shared;
use crate::store::GroupInfo;

impl From<TreeError> for ApiError {
    fn from(e: TreeError) -> Self {
        match e {
            TreeError::Node(n) => ApiError::bad_request(n.to_string()),
            TreeError::Store(s) => s.into(),
            TreeError::Compile(c) => ApiError::bad_request(c.to_string()),
        }
    }
}

/// `GET /api/v1/groups`.
pub async fn list(State(state): State<Shared>) -> Result<Json<Vec<GroupInfo>>, ApiError> {
    Ok(Json(state.store.list_groups().await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    pub(crate) path: String,
}

/// `POST /api/v1/groups` `{"path": "/prod/oslo"}`.
pub async fn create(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    body: Result<Json<CreateGroup>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(req) = body.map_err(ApiError::from_json)?;
    let path = tree::create_group(&state, &req.path).await?;
    super::audit(&state, &actor.0, "group.create", &path, "").await;
    Ok(Json(json!({"path": path})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameGroup {
    pub(crate) from: String,
    pub(crate) to: String,
}

/// `POST /api/v1/groups/rename` `{"from": "/a/b", "to": "/c/b"}`: rename or move a subtree.
pub async fn rename(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    body: Result<Json<RenameGroup>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(req) = body.map_err(ApiError::from_json)?;
    let changed = tree::rename_group(&state, &req.from, &req.to).await?;
    super::audit(
        &state,
        &actor.0,
        "group.rename",
        &req.from,
        format!("to {} ({changed} device bundle(s) changed)", req.to),
    )
    .await;
    Ok(Json(
        json!({"from": req.from, "to": req.to, "devices_with_new_bundle": changed}),
    ))
}

#[derive(Deserialize)]
pub struct PathQuery {
    pub(crate) path: String,
}

/// `DELETE /api/v1/groups?path=/a`: only empty groups.
pub async fn delete(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Query(q): Query<PathQuery>,
) -> Result<Json<Value>, ApiError> {
    tree::delete_group(&state, &q.path).await?;
    super::audit(&state, &actor.0, "group.delete", &q.path, "").await;
    Ok(Json(json!({"deleted": q.path})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveDevice {
    /// Target group; `null` puts the device in "unassigned".
    pub(crate) group: Option<String>,
}

/// `POST /api/v1/devices/{id}/move` `{"group": "/prod"}`.
pub async fn move_device(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    body: Result<Json<MoveDevice>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(req) = body.map_err(ApiError::from_json)?;
    let changed = tree::move_device(&state, &id, req.group.as_deref()).await?;
    let to = req.group.as_deref().unwrap_or("unassigned");
    super::audit(&state, &actor.0, "device.move", &id, format!("to {to}")).await;
    Ok(Json(
        json!({"device": id, "group": req.group, "new_bundle": changed}),
    ))
}
