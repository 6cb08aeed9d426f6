//! Bootstrap keys: created (the secret shown once, stored only as a hash), listed, revoked.

use serde::Serialize;

use super::{Failure, Kind, audit};
use crate::config::node::{NodeError, normalize_group};
use crate::state::{AppState, now};
use crate::store::{BootstrapKey, StoreError};

/// Why a bootstrap-key operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Group(#[from] NodeError),
    #[error("no bootstrap key {0}")]
    NotFound(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Failure for KeyError {
    fn kind(&self) -> Kind {
        match self {
            KeyError::Group(_) => Kind::Invalid,
            KeyError::NotFound(_) => Kind::NotFound,
            KeyError::Store(e) => e.kind(),
        }
    }
}

/// A new key: the secret, shown only now, and what is stored of it.
#[derive(Clone, Debug, Serialize)]
pub struct CreatedKey {
    pub key: String,
    #[serde(flatten)]
    pub info: BootstrapKey,
}

/// Creates a key whose devices land in `group` (created if missing; `None`: unassigned),
/// approved without an operator if `auto_accept`.
pub async fn create(
    state: &AppState,
    actor: &str,
    group: Option<&str>,
    auto_accept: bool,
) -> Result<CreatedKey, KeyError> {
    let group = group.map(normalize_group).transpose()?;
    if let Some(g) = &group {
        state.store.ensure_group(g).await?;
    }
    let key = format!("apiary-bootstrap_{}", apiary_proto::hex::random(24));
    let hash = apiary_proto::digest::sha256_hex(key.as_bytes());
    let info = state
        .store
        .insert_bootstrap_key(&hash, group.as_deref(), auto_accept, actor, now())
        .await?;
    let detail = format!(
        "group={} auto_accept={auto_accept}",
        group.as_deref().unwrap_or("unassigned")
    );
    audit::record(
        state,
        actor,
        "bootstrap_key.create",
        &info.id.to_string(),
        detail,
    )
    .await;
    Ok(CreatedKey { key, info })
}

pub async fn list(state: &AppState) -> Result<Vec<BootstrapKey>, StoreError> {
    state.store.list_bootstrap_keys().await
}

/// Revokes a key: devices can no longer enrol with it.
pub async fn revoke(state: &AppState, actor: &str, id: i64) -> Result<(), KeyError> {
    if !state.store.revoke_bootstrap_key(id, now()).await? {
        return Err(KeyError::NotFound(id));
    }
    audit::record(state, actor, "bootstrap_key.revoke", &id.to_string(), "").await;
    Ok(())
}
