//! Commits (make drafts active, recompile bundles) and the audit log.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, Query, State};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::auth::Actor;
use crate::config::commit::{self, CommitError, CommitOutcome};
use crate::config::masking::{mask_changes, masked};
use crate::error::ApiError;
use crate::state::{Shared, now};
use crate::store::{AuditEntry, AuditFilter, Commit, RolloutEntry, RolloutState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCommit {
    pub(crate) message: String,
    #[serde(default)]
    pub(crate) dry_run: bool,
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
    let outcome = commit::commit(&state, &actor.0, &req.message, req.dry_run, now()).await?;
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
    let mut outcome = outcome;
    mask_changes(&mut outcome.changes);
    Ok(Json(outcome))
}

impl From<CommitError> for ApiError {
    fn from(e: CommitError) -> Self {
        match e {
            CommitError::NothingToCommit
            | CommitError::DraftsPending
            | CommitError::NodeGone { .. } => ApiError::conflict(e.to_string()),
            CommitError::Compile { .. } => ApiError::bad_request(e.to_string()),
            CommitError::NoSuchCommit(_) => ApiError::not_found(e.to_string()),
            CommitError::Store(s) => s.into(),
        }
    }
}

/// A commit with where its rollout stands.
#[derive(Serialize)]
pub struct CommitDetail {
    #[serde(flatten)]
    commit: Commit,
    rollout: Rollout,
}

/// Devices per rollout state, and each device's entry.
#[derive(Serialize)]
pub struct Rollout {
    counts: BTreeMap<&'static str, usize>,
    devices: Vec<RolloutEntry>,
}

/// `GET /api/v1/commits/{id}`: the commit, its changes and its rollout.
pub async fn show(
    State(state): State<Shared>,
    Path(id): Path<i64>,
) -> Result<Json<CommitDetail>, ApiError> {
    let commit = state
        .store
        .list_commits()
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no commit {id}")))?;
    let mut commit = commit;
    mask_changes(&mut commit.changes);
    let devices = state.store.rollout(id).await?;
    let mut counts: BTreeMap<&'static str, usize> = [
        RolloutState::Pending,
        RolloutState::Converged,
        RolloutState::Failed,
        RolloutState::Superseded,
    ]
    .into_iter()
    .map(|s| (s.as_str(), 0))
    .collect();
    for d in &devices {
        *counts.entry(d.state.as_str()).or_default() += 1;
    }
    Ok(Json(CommitDetail {
        commit,
        rollout: Rollout { counts, devices },
    }))
}

/// `POST /api/v1/commits/{id}/revert`.
pub async fn revert(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
) -> Result<Json<CommitOutcome>, ApiError> {
    let outcome = commit::revert(&state, &actor.0, id, now()).await?;
    if let Some(new) = outcome.id {
        super::audit(
            &state,
            &actor.0,
            "commit.revert",
            &id.to_string(),
            format!("as commit {new}"),
        )
        .await;
    }
    let mut outcome = outcome;
    mask_changes(&mut outcome.changes);
    Ok(Json(outcome))
}

#[derive(Deserialize)]
pub struct DraftQuery {
    node: Option<String>,
    policy: Option<String>,
}

/// `GET /api/v1/drafts`: every uncommitted change.
pub async fn drafts(State(state): State<Shared>) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    Ok(Json(
        state
            .store
            .drafts()
            .await?
            .into_iter()
            .map(|(node, policy, draft)| {
                let draft = draft.map(|d| masked(&policy, &d));
                serde_json::json!({"node": node, "policy": policy, "draft": draft})
            })
            .collect(),
    ))
}

/// `DELETE /api/v1/drafts[?node=N[&policy=P]]`: throws drafts away.
pub async fn discard(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Query(q): Query<DraftQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if q.policy.is_some() && q.node.is_none() {
        return Err(ApiError::bad_request(
            "discarding a policy's drafts needs its node",
        ));
    }
    let n = state
        .store
        .discard_drafts(q.node.as_deref(), q.policy.as_deref())
        .await?;
    let target = format!(
        "{} {}",
        q.node.as_deref().unwrap_or("*"),
        q.policy.as_deref().unwrap_or("*")
    );
    super::audit(
        &state,
        &actor.0,
        "drafts.discard",
        &target,
        format!("{n} draft(s)"),
    )
    .await;
    Ok(Json(serde_json::json!({"discarded": n})))
}

/// `GET /api/v1/commits`, newest first.
pub async fn list(State(state): State<Shared>) -> Result<Json<Vec<Commit>>, ApiError> {
    let mut commits = state.store.list_commits().await?;
    for c in &mut commits {
        mask_changes(&mut c.changes);
    }
    Ok(Json(commits))
}

/// `GET /api/v1/audit[?actor=&action=&target=&since=&limit=]`, newest first.
pub async fn audit(
    State(state): State<Shared>,
    Query(filter): Query<AuditFilter>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    Ok(Json(state.store.list_audit(filter).await?))
}
