//! The device tree: groups, and putting devices in them. Tree changes take effect at once
//! (see `config::tree`); here they are audited.

use super::{Failure, Kind, audit};
use crate::config::tree::{self, TreeError};
use crate::state::AppState;
use crate::store::{GroupInfo, StoreError};

impl Failure for TreeError {
    fn kind(&self) -> Kind {
        match self {
            TreeError::Store(e) => e.kind(),
            // A tree change whose new place does not compile is undone: the input is wrong.
            TreeError::Node(_) | TreeError::Compile(_) => Kind::Invalid,
        }
    }
}

/// Every group, root first, with the number of devices directly in it.
pub async fn list(state: &AppState) -> Result<Vec<GroupInfo>, StoreError> {
    state.store.list_groups().await
}

/// Creates a group and any missing ancestors; returns its normalised path.
pub async fn create(state: &AppState, actor: &str, path: &str) -> Result<String, TreeError> {
    let path = tree::create_group(state, path).await?;
    audit::record(state, actor, "group.create", &path, "").await;
    Ok(path)
}

/// Renames or moves a group and everything under it; returns how many devices got a new
/// bundle.
pub async fn rename(
    state: &AppState,
    actor: &str,
    from: &str,
    to: &str,
) -> Result<usize, TreeError> {
    let changed = tree::rename_group(state, from, to).await?;
    let detail = format!("to {to} ({changed} device bundle(s) changed)");
    audit::record(state, actor, "group.rename", from, detail).await;
    Ok(changed)
}

/// Deletes an empty group.
pub async fn delete(state: &AppState, actor: &str, path: &str) -> Result<(), TreeError> {
    tree::delete_group(state, path).await?;
    audit::record(state, actor, "group.delete", path, "").await;
    Ok(())
}

/// Puts a device in `group` (`None`: unassigned); returns whether its bundle changed.
pub async fn move_device(
    state: &AppState,
    actor: &str,
    device: &str,
    group: Option<&str>,
) -> Result<bool, TreeError> {
    let changed = tree::move_device(state, device, group).await?;
    let to = group.unwrap_or("unassigned");
    audit::record(state, actor, "device.move", device, format!("to {to}")).await;
    Ok(changed)
}
