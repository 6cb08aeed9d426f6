//! `/commits`, `/drafts` and `/audit`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Actor;
use crate::config::commit::CommitOutcome;
use crate::error::ApiError;
use crate::service::audit;
use crate::service::commits::{self, CommitDetail, Draft};
use crate::state::Shared;
use crate::store::{AuditEntry, AuditFilter, Commit};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCommit {
    message: String,
    #[serde(default)]
    dry_run: bool,
}

/// `POST /api/v1/commits` `{"message": "...", "dry_run": false}`.
pub async fn create(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    body: Result<Json<CreateCommit>, JsonRejection>,
) -> Result<Json<CommitOutcome>, ApiError> {
    let Json(req) = body.map_err(ApiError::from_json)?;
    Ok(Json(
        commits::commit(&state, &actor.0, &req.message, req.dry_run).await?,
    ))
}

/// `GET /api/v1/commits`, newest first.
pub async fn list(State(state): State<Shared>) -> Result<Json<Vec<Commit>>, ApiError> {
    Ok(Json(commits::list(&state).await?))
}

/// `GET /api/v1/commits/{id}`: the commit, its changes and its rollout.
pub async fn show(
    State(state): State<Shared>,
    Path(id): Path<i64>,
) -> Result<Json<CommitDetail>, ApiError> {
    Ok(Json(commits::show(&state, id).await?))
}

/// `POST /api/v1/commits/{id}/revert`.
pub async fn revert(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
) -> Result<Json<CommitOutcome>, ApiError> {
    Ok(Json(commits::revert(&state, &actor.0, id).await?))
}

/// `GET /api/v1/drafts`: every uncommitted change.
pub async fn drafts(State(state): State<Shared>) -> Result<Json<Vec<Draft>>, ApiError> {
    Ok(Json(commits::drafts(&state).await?))
}

#[derive(Deserialize)]
pub struct DraftQuery {
    node: Option<String>,
    policy: Option<String>,
}

/// `DELETE /api/v1/drafts[?node=N[&policy=P]]`: throws drafts away.
pub async fn discard(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Query(q): Query<DraftQuery>,
) -> Result<Json<Value>, ApiError> {
    let n = commits::discard(&state, &actor.0, q.node.as_deref(), q.policy.as_deref()).await?;
    Ok(Json(json!({"discarded": n})))
}

/// `GET /api/v1/audit[?actor=&action=&target=&since=&limit=]`, newest first.
pub async fn audit(
    State(state): State<Shared>,
    Query(filter): Query<AuditFilter>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    Ok(Json(audit::list(&state, filter).await?))
}
