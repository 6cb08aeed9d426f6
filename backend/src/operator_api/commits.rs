//! Commits (make drafts active, recompile bundles) and the audit log.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Query, State};
use serde::Deserialize;

use super::auth::Actor;
use crate::config::commit::{self, CommitError, CommitOutcome};
use crate::error::ApiError;
use crate::state::{Shared, now};
use crate::store::{AuditEntry, Commit};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCommit {
    message: String,
    #[serde(default)]
    dry_run: bool,
}

/// `POST /api/v1/commits`.
pub async fn create(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    body: Result<Json<CreateCommit>, JsonRejection>,
) -> Result<Json<CommitOutcome>, ApiError> {
    let Json(req) = body.map_err(ApiError::from_json)?;
    if req.message.trim().is_empty() {
        return Err(ApiError::bad_request("a commit needs a message"));
    }
    let outcome = commit::commit(&state, &actor.0, &req.message, req.dry_run, now())
        .await
        .map_err(|e| match e {
            CommitError::NothingToCommit => ApiError::conflict(e.to_string()),
            CommitError::Compile { .. } => ApiError::bad_request(e.to_string()),
            CommitError::Store(s) => s.into(),
        })?;
    if let Some(id) = outcome.id {
        super::audit(
            &state,
            &actor.0,
            "commit",
            &id.to_string(),
            format!(
                "{} ({} devices impacted)",
                req.message,
                outcome.impacted_devices.len()
            ),
        )
        .await;
    }
    Ok(Json(outcome))
}

/// `GET /api/v1/commits`, newest first.
pub async fn list(State(state): State<Shared>) -> Result<Json<Vec<Commit>>, ApiError> {
    Ok(Json(state.store.list_commits().await?))
}

#[derive(Deserialize)]
pub struct AuditQuery {
    limit: Option<u32>,
}

/// `GET /api/v1/audit[?limit=N]`, newest first.
pub async fn audit(
    State(state): State<Shared>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    Ok(Json(
        state
            .store
            .list_audit(q.limit.unwrap_or(100).min(10_000))
            .await?,
    ))
}
