//! Committing drafts (for real or as a dry run), reverting a commit, the history with each
//! commit's rollout, and the drafts themselves. Every document leaving here is masked.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::{Failure, Kind, audit};
use crate::config::commit::{self, CommitError, CommitOutcome};
use crate::config::masking::{mask_changes, masked};
use crate::state::{AppState, now};
use crate::store::{Commit, RolloutEntry, RolloutState, StoreError};

/// Why a commit operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum CommitsError {
    #[error("a commit needs a message")]
    NoMessage,
    #[error("discarding a policy's drafts needs its node")]
    PolicyWithoutNode,
    #[error(transparent)]
    Commit(#[from] CommitError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Failure for CommitsError {
    fn kind(&self) -> Kind {
        match self {
            CommitsError::NoMessage | CommitsError::PolicyWithoutNode => Kind::Invalid,
            CommitsError::Commit(e) => e.kind(),
            CommitsError::Store(e) => e.kind(),
        }
    }
}

impl Failure for CommitError {
    fn kind(&self) -> Kind {
        match self {
            CommitError::NothingToCommit
            | CommitError::DraftsPending
            | CommitError::NodeGone { .. } => Kind::Conflict,
            CommitError::Compile { .. } => Kind::Invalid,
            CommitError::NoSuchCommit(_) => Kind::NotFound,
            CommitError::Store(e) => e.kind(),
        }
    }
}

/// A commit with where its rollout stands.
#[derive(Clone, Debug, Serialize)]
pub struct CommitDetail {
    #[serde(flatten)]
    pub commit: Commit,
    pub rollout: Rollout,
}

/// Devices per rollout state, and each device's entry.
#[derive(Clone, Debug, Serialize)]
pub struct Rollout {
    pub counts: BTreeMap<&'static str, usize>,
    pub devices: Vec<RolloutEntry>,
}

/// One uncommitted change: the drafted document (masked), or `None` for a removal.
#[derive(Clone, Debug, Serialize)]
pub struct Draft {
    pub node: String,
    pub policy: String,
    pub draft: Option<Value>,
}

/// Makes every draft active and recompiles the impacted devices' bundles; with `dry_run`,
/// says what that would change and does nothing.
pub async fn commit(
    state: &AppState,
    actor: &str,
    message: &str,
    dry_run: bool,
) -> Result<CommitOutcome, CommitsError> {
    if message.trim().is_empty() {
        return Err(CommitsError::NoMessage);
    }
    let mut outcome = commit::commit(state, actor, message, dry_run, now()).await?;
    if let Some(id) = outcome.id {
        let detail = format!(
            "{message} ({} devices impacted)",
            outcome.impacted_devices.len()
        );
        audit::record(state, actor, "commit", &id.to_string(), detail).await;
    }
    mask_changes(&mut outcome.changes);
    Ok(outcome)
}

/// Makes a new commit that restores what commit `id` changed to its state before `id`.
pub async fn revert(state: &AppState, actor: &str, id: i64) -> Result<CommitOutcome, CommitsError> {
    let mut outcome = commit::revert(state, actor, id, now()).await?;
    if let Some(new) = outcome.id {
        let detail = format!("as commit {new}");
        audit::record(state, actor, "commit.revert", &id.to_string(), detail).await;
    }
    mask_changes(&mut outcome.changes);
    Ok(outcome)
}

/// Every commit, newest first.
pub async fn list(state: &AppState) -> Result<Vec<Commit>, StoreError> {
    let mut commits = state.store.list_commits().await?;
    for c in &mut commits {
        mask_changes(&mut c.changes);
    }
    Ok(commits)
}

/// One commit: its changes and its rollout, device by device.
pub async fn show(state: &AppState, id: i64) -> Result<CommitDetail, CommitsError> {
    let mut commit = state
        .store
        .list_commits()
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or(CommitError::NoSuchCommit(id))?;
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
    Ok(CommitDetail {
        commit,
        rollout: Rollout { counts, devices },
    })
}

/// Every uncommitted change.
pub async fn drafts(state: &AppState) -> Result<Vec<Draft>, StoreError> {
    Ok(state
        .store
        .drafts()
        .await?
        .into_iter()
        .map(|(node, policy, draft)| Draft {
            draft: draft.map(|d| masked(&policy, &d)),
            node,
            policy,
        })
        .collect())
}

/// Throws drafts away: all, a node's, or one policy of a node. Returns how many.
pub async fn discard(
    state: &AppState,
    actor: &str,
    node: Option<&str>,
    policy: Option<&str>,
) -> Result<u64, CommitsError> {
    if policy.is_some() && node.is_none() {
        return Err(CommitsError::PolicyWithoutNode);
    }
    let n = state.store.discard_drafts(node, policy).await?;
    let target = format!("{} {}", node.unwrap_or("*"), policy.unwrap_or("*"));
    audit::record(
        state,
        actor,
        "drafts.discard",
        &target,
        format!("{n} draft(s)"),
    )
    .await;
    Ok(n)
}
