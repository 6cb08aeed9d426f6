//! The device tree: groups and device placement. Tree changes take effect at once: the
//! bundles of every device whose effective configuration changes are recompiled on the spot,
//! so a moved device converges at its next check-in.

use crate::config::commit::{self, CommitError};
use crate::config::node::{self, NodeError};
use crate::state::{AppState, now};
use crate::store::{Device, StoreError};

/// Why a tree change was refused.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Compile(#[from] CommitError),
}

/// Creates a group (and any missing ancestors); an existing group is a conflict.
pub async fn create_group(state: &AppState, path: &str) -> Result<String, TreeError> {
    let path = node::normalize_group(path)?;
    if state.store.group_exists(&path).await? {
        return Err(StoreError::Conflict(format!("group {path} already exists")).into());
    }
    state.store.ensure_group(&path).await?;
    Ok(path)
}

/// Renames or moves a group; returns how many devices got a new bundle.
pub async fn rename_group(state: &AppState, from: &str, to: &str) -> Result<usize, TreeError> {
    let (from, to) = (node::normalize_group(from)?, node::normalize_group(to)?);
    state.store.rename_group(&from, &to).await?;
    let moved = devices_under(state, &to).await?;
    match commit::refresh_devices(state, &moved, now()).await {
        Ok(n) => Ok(n),
        Err(e) => {
            // The new place's configuration does not compile for these devices: undo.
            state.store.rename_group(&to, &from).await?;
            Err(e.into())
        }
    }
}

/// Deletes an empty group.
pub async fn delete_group(state: &AppState, path: &str) -> Result<(), TreeError> {
    let path = node::normalize_group(path)?;
    Ok(state.store.delete_group(&path).await?)
}

/// Puts a device in `group` (`None`: unassigned); returns whether its bundle changed.
pub async fn move_device(
    state: &AppState,
    id: &str,
    group: Option<&str>,
) -> Result<bool, TreeError> {
    let group = group.map(node::normalize_group).transpose()?;
    if let Some(g) = &group
        && !state.store.group_exists(g).await?
    {
        return Err(StoreError::NotFound(format!("no group {g}")).into());
    }
    let before = state
        .store
        .device(id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no device {id}")))?;
    state.store.move_device(id, group.as_deref()).await?;
    let mut device = before.clone();
    device.group = group;
    match commit::refresh_devices(state, &[device], now()).await {
        Ok(n) => Ok(n > 0),
        Err(e) => {
            // The new group's configuration does not compile for this device: undo.
            state.store.move_device(id, before.group.as_deref()).await?;
            Err(e.into())
        }
    }
}

async fn devices_under(state: &AppState, path: &str) -> Result<Vec<Device>, StoreError> {
    let prefix = format!("{path}/");
    Ok(state
        .store
        .list_devices(None)
        .await?
        .into_iter()
        .filter(|d| {
            d.group
                .as_deref()
                .is_some_and(|g| g == path || g.starts_with(&prefix))
        })
        .collect())
}
