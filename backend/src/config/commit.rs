//! Commits: drafts become active at once, and every device whose bundle changes gets a new
//! signed one in the same transaction.

use std::collections::BTreeMap;

use serde::Serialize;

use super::compile::{self, CompileError};
use super::effective::ConfigTree;
use crate::state::AppState;
use crate::store::{
    Commit, ConfigChange, Device, DeviceStatus, FileEntry, StoreError, StoredBundle, Timestamp,
};

/// Why a commit did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("nothing to commit: no drafts, and no device's bundle would change")]
    NothingToCommit,
    #[error("device {device}: {source}")]
    Compile {
        device: String,
        source: CompileError,
    },
    #[error("there are uncommitted drafts; commit or discard them before reverting")]
    DraftsPending,
    #[error("no commit {0}")]
    NoSuchCommit(i64),
    #[error("commit {commit} changed {node}, which no longer exists")]
    NodeGone { commit: i64, node: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a commit did (or, dry-run, would do).
#[derive(Debug, Serialize)]
pub struct CommitOutcome {
    /// `None` for a dry run.
    pub id: Option<i64>,
    pub message: String,
    pub changes: Vec<ConfigChange>,
    /// Devices whose bundle changes.
    pub impacted_devices: Vec<String>,
    /// For each of those devices, which policies change.
    pub impacted: Vec<Impact>,
}

/// How one device's bundle changes.
#[derive(Debug, Serialize)]
pub struct Impact {
    pub device: String,
    pub name: String,
    pub policies: Vec<String>,
}

/// Applies all drafts (or with `dry_run`, only reports what would change).
pub async fn commit(
    state: &AppState,
    author: &str,
    message: &str,
    dry_run: bool,
    now: Timestamp,
) -> Result<CommitOutcome, CommitError> {
    // One commit at a time: ids and bundle serials are assigned from the current state.
    let _guard = state.commit_lock.lock().await;
    let store = &state.store;
    let mut tree = ConfigTree::new(store.active_config().await?);
    let mut changes = Vec::new();
    for (node, policy, body) in store.drafts().await? {
        let before = tree.get(&node, &policy).cloned();
        if before != body {
            changes.push(ConfigChange {
                node: node.clone(),
                policy: policy.clone(),
                before,
                after: body.clone(),
            });
        }
        tree.set(&node, &policy, body);
    }

    let id = store.next_commit_id().await?;
    let (bundles, impacted) = compile_all(state, &tree, id, now).await?;
    if changes.is_empty() && bundles.is_empty() {
        return Err(CommitError::NothingToCommit);
    }
    let impacted_devices = bundles.iter().map(|b| b.device_id.clone()).collect();
    if dry_run {
        return Ok(CommitOutcome {
            id: None,
            message: message.to_string(),
            changes,
            impacted_devices,
            impacted,
        });
    }
    store
        .apply_commit(
            Commit {
                id,
                author: author.to_string(),
                message: message.to_string(),
                created_at: now,
                changes: changes.clone(),
            },
            bundles,
        )
        .await?;
    Ok(CommitOutcome {
        id: Some(id),
        message: message.to_string(),
        changes,
        impacted_devices,
        impacted,
    })
}

/// Makes a new commit that restores every policy commit `id` changed to what it was before.
///
/// Later commits to the same node and policy are overwritten too: the result is the state
/// just before `id`, for what `id` touched.
pub async fn revert(
    state: &AppState,
    author: &str,
    id: i64,
    now: Timestamp,
) -> Result<CommitOutcome, CommitError> {
    let store = &state.store;
    let target = store
        .list_commits()
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or(CommitError::NoSuchCommit(id))?;
    if !store.drafts().await?.is_empty() {
        return Err(CommitError::DraftsPending);
    }
    for change in &target.changes {
        let exists = if change.node.starts_with('/') {
            store.group_exists(&change.node).await?
        } else {
            store.device(&change.node).await?.is_some()
        };
        if !exists {
            return Err(CommitError::NodeGone {
                commit: id,
                node: change.node.clone(),
            });
        }
    }
    for change in &target.changes {
        store
            .set_draft(&change.node, &change.policy, change.before.clone())
            .await?;
    }
    let message = format!("Revert commit {id}: {}", target.message);
    let outcome = commit(state, author, &message, false, now).await;
    if outcome.is_err() {
        // Leave no half-made revert behind as drafts.
        store.discard_drafts(None, None).await?;
    }
    outcome
}

/// Recompiles the given devices' bundles from the active configuration, storing those whose
/// content changed (or that have none yet). Used on approval and when the tree changes.
pub async fn refresh_devices(
    state: &AppState,
    devices: &[Device],
    now: Timestamp,
) -> Result<usize, CommitError> {
    let _guard = state.commit_lock.lock().await;
    let tree = ConfigTree::new(state.store.active_config().await?);
    let files = file_index(state).await?;
    let commit_id = state.store.latest_commit_id().await?;
    let mut bundles = Vec::new();
    for device in devices
        .iter()
        .filter(|d| d.status == DeviceStatus::Approved)
    {
        if let Some((bundle, _)) = bundle_for(state, &tree, &files, device, commit_id, now).await? {
            bundles.push(bundle);
        }
    }
    let changed = bundles.len();
    if changed > 0 {
        state.store.insert_bundles(bundles).await?;
    }
    Ok(changed)
}

async fn compile_all(
    state: &AppState,
    tree: &ConfigTree,
    commit_id: i64,
    now: Timestamp,
) -> Result<(Vec<StoredBundle>, Vec<Impact>), CommitError> {
    let files = file_index(state).await?;
    let (mut bundles, mut impacts) = (Vec::new(), Vec::new());
    for device in state
        .store
        .list_devices(Some(DeviceStatus::Approved))
        .await?
    {
        if let Some((bundle, policies)) =
            bundle_for(state, tree, &files, &device, commit_id, now).await?
        {
            bundles.push(bundle);
            impacts.push(Impact {
                device: device.id.clone(),
                name: device.name.clone(),
                policies,
            });
        }
    }
    Ok((bundles, impacts))
}

/// A device's new bundle, if its content changes, with the names of the changed policies.
async fn bundle_for(
    state: &AppState,
    tree: &ConfigTree,
    files: &BTreeMap<String, FileEntry>,
    device: &Device,
    commit_id: i64,
    now: Timestamp,
) -> Result<Option<(StoredBundle, Vec<String>)>, CommitError> {
    let effective = tree.effective_for_device(&device.id, device.group.as_deref());
    let compiled = compile::compile(&effective, files, &state.secrets).map_err(|source| {
        CommitError::Compile {
            device: device.id.clone(),
            source,
        }
    })?;
    let current = state.store.current_bundle(&device.id).await?;
    let changed = compile::changed_policies(current.as_ref(), &compiled.policies, &state.secrets);
    Ok(compile::next_bundle(
        &device.id,
        compiled,
        current.as_ref(),
        commit_id,
        now,
        &state.signer,
        &state.secrets,
    )
    .map(|b| (b, changed)))
}

async fn file_index(state: &AppState) -> Result<BTreeMap<String, FileEntry>, StoreError> {
    Ok(state
        .store
        .list_files()
        .await?
        .into_iter()
        .map(|f| (f.path.clone(), f))
        .collect())
}
