//! Parameters one key at a time: set (optionally as a secret), unset, show. Each change is a
//! draft of the node's `parameters` document, committed like any other configuration.
//! Secrets are sealed before they are drafted and shown only as the mask.

use std::collections::BTreeMap;

use apiary_proto::policy::InBundle;
use apiary_proto::policy::parameters::{Parameters, validate_key};
use serde::Serialize;
use serde_json::{Value, json};

use super::config::{ConfigError, draft_of, effective_for, resolve_node};
use super::{Failure, Kind, audit};
use crate::config::masking::masked;
use crate::config::node::Node;
use crate::config::policies::{PolicyError, check_document};
use crate::secrets::MASK;
use crate::state::AppState;
use crate::store::StoreError;

const POLICY: &str = Parameters::NAME;

/// Why a parameter operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ParameterError {
    #[error("{0}")]
    Key(String),
    #[error("{node} sets no parameter {key}")]
    NotSet { node: Node, key: String },
    #[error("parameters of {0} are not an object")]
    Corrupt(Node),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Failure for ParameterError {
    fn kind(&self) -> Kind {
        match self {
            ParameterError::Key(_) | ParameterError::Policy(_) => Kind::Invalid,
            ParameterError::NotSet { .. } => Kind::NotFound,
            ParameterError::Corrupt(_) => Kind::Internal,
            ParameterError::Config(e) => e.kind(),
            ParameterError::Store(e) => e.kind(),
        }
    }
}

/// A parameter as drafted: the value, or the mask for a secret.
#[derive(Clone, Debug, Serialize)]
pub struct ParameterSet {
    pub node: String,
    pub key: String,
    pub value: String,
    pub secret: bool,
}

/// One parameter in force on a node.
#[derive(Clone, Debug, Serialize)]
pub struct EffectiveParameter {
    /// The value, or the mask for a secret.
    pub value: String,
    pub secret: bool,
    pub from: String,
}

/// A node's own parameters (as drafted) and those in force on it.
#[derive(Clone, Debug, Serialize)]
pub struct NodeParameters {
    pub node: String,
    /// The node's `parameters` document as it would be committed, masked.
    pub own: Value,
    pub effective: BTreeMap<String, EffectiveParameter>,
}

/// Drafts `key` on the node as a plain value, or sealed as a secret.
pub async fn set(
    state: &AppState,
    actor: &str,
    node: &str,
    key: &str,
    value: &str,
    secret: bool,
) -> Result<ParameterSet, ParameterError> {
    validate_key(key).map_err(ParameterError::Key)?;
    let node = resolve_node(state, node).await?;
    let mut doc = current_document(state, node.key()).await?;
    let (kind, other, stored) = if secret {
        ("secrets", "values", state.secrets.seal(key, value))
    } else {
        ("values", "secrets", value.to_string())
    };
    if let Some(o) = doc.get_mut(other).and_then(Value::as_object_mut) {
        o.remove(key);
    }
    doc.as_object_mut()
        .ok_or_else(|| ParameterError::Corrupt(node.clone()))?
        .entry(kind)
        .or_insert_with(|| json!({}))[key] = Value::String(stored);
    save_draft(state, &node, doc).await?;
    let shown = if secret { MASK } else { value };
    audit::record(
        state,
        actor,
        "parameter.set",
        &format!("{node} {key}"),
        shown,
    )
    .await;
    Ok(ParameterSet {
        node: node.key().to_string(),
        key: key.to_string(),
        value: shown.to_string(),
        secret,
    })
}

/// Drafts removing the node's own `key`; returns the node.
pub async fn unset(
    state: &AppState,
    actor: &str,
    node: &str,
    key: &str,
) -> Result<String, ParameterError> {
    let node = resolve_node(state, node).await?;
    let mut doc = current_document(state, node.key()).await?;
    let mut found = false;
    for kind in ["values", "secrets"] {
        if let Some(m) = doc.get_mut(kind).and_then(Value::as_object_mut) {
            found |= m.remove(key).is_some();
        }
    }
    if !found {
        return Err(ParameterError::NotSet {
            node,
            key: key.to_string(),
        });
    }
    save_draft(state, &node, doc).await?;
    audit::record(
        state,
        actor,
        "parameter.unset",
        &format!("{node} {key}"),
        "",
    )
    .await;
    Ok(node.key().to_string())
}

/// The node's own parameters and what is in force, with the node each key comes from.
pub async fn show(state: &AppState, node: &str) -> Result<NodeParameters, ParameterError> {
    let node = resolve_node(state, node).await?;
    let own = masked(POLICY, &current_document(state, node.key()).await?);
    let effective = effective_for(state, &node, state.store.active_config().await?).await?;
    let mut in_force = BTreeMap::new();
    if let Some(e) = effective.get(POLICY) {
        for (kind, secret) in [("values", false), ("secrets", true)] {
            for (key, value) in e
                .body
                .get(kind)
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let value = if secret {
                    MASK.to_string()
                } else {
                    value.as_str().unwrap_or_default().to_string()
                };
                let from = e.keys_from.get(key).unwrap_or(&e.from).clone();
                in_force.insert(
                    key.clone(),
                    EffectiveParameter {
                        value,
                        secret,
                        from,
                    },
                );
            }
        }
    }
    Ok(NodeParameters {
        node: node.key().to_string(),
        own,
        effective: in_force,
    })
}

/// The node's parameters document as it would be committed: its draft if it has one.
async fn current_document(state: &AppState, node: &str) -> Result<Value, StoreError> {
    if let Some(draft) = draft_of(state, node, POLICY).await? {
        return Ok(draft.unwrap_or_else(|| json!({})));
    }
    Ok(state
        .store
        .active_config()
        .await?
        .into_iter()
        .find(|e| e.node == node && e.policy == POLICY)
        .map(|e| e.body)
        .unwrap_or_else(|| json!({})))
}

/// Drafts the document, empty maps left out; a document left empty drafts a removal.
async fn save_draft(state: &AppState, node: &Node, mut doc: Value) -> Result<(), ParameterError> {
    if let Some(map) = doc.as_object_mut() {
        map.retain(|_, v| !v.as_object().is_some_and(|m| m.is_empty()));
    }
    check_document(POLICY, &doc)?;
    let body = doc
        .as_object()
        .is_some_and(|m| !m.is_empty())
        .then_some(doc);
    state.store.set_draft(node.key(), POLICY, body).await?;
    Ok(())
}
