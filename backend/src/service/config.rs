//! A node's configuration: what it sets, what it drafts, and what is in force on it; and
//! drafting a policy document or its removal.
//!
//! Documents leave here masked, and a mask sent back keeps the stored secret. Plaintext
//! passwords are hashed before a document is checked and stored.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::{Failure, Kind, audit};
use crate::config::effective::{ConfigTree, Effective};
use crate::config::masking::{masked, restore_masked};
use crate::config::node::{Node, NodeError};
use crate::config::passwords::hash_plaintext;
use crate::config::policies::{PolicyError, check_document, definition};
use crate::state::AppState;
use crate::store::{ConfigEntry, StoreError};

/// Why a configuration operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("no such node {0}")]
    NoSuchNode(Node),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A plaintext password could not be hashed (given with its hash, empty, not text).
    #[error("{policy}: {message}")]
    Plaintext { policy: String, message: String },
    /// A mask was sent back where nothing is stored for it to keep.
    #[error("{policy} on {node}: {message}")]
    Mask {
        policy: String,
        node: Node,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Failure for ConfigError {
    fn kind(&self) -> Kind {
        match self {
            ConfigError::NoSuchNode(_) => Kind::NotFound,
            ConfigError::Store(e) => e.kind(),
            _ => Kind::Invalid,
        }
    }
}

/// A policy on one node: what is committed and what is drafted.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PolicyState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<Value>,
    /// Present when a draft exists; `None` inside means the draft unsets the policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draft: Option<Option<Value>>,
}

/// A node's configuration, every document masked.
#[derive(Clone, Debug, Serialize)]
pub struct NodeConfig {
    pub node: String,
    /// The node's own documents, by policy.
    pub policies: BTreeMap<String, PolicyState>,
    /// Every committed policy in force on the node, and the node(s) it comes from.
    pub effective: BTreeMap<String, Effective>,
}

/// A drafted change: the document as stored (masked), or `None` for a removal.
#[derive(Clone, Debug, Serialize)]
pub struct Drafted {
    pub node: String,
    pub policy: String,
    pub draft: Option<Value>,
}

/// Parses a node name and checks the group or device exists.
pub async fn resolve_node(state: &AppState, text: &str) -> Result<Node, ConfigError> {
    let node = Node::parse(text)?;
    let exists = match &node {
        Node::Group(p) => state.store.group_exists(p).await?,
        Node::Device(id) => state.store.device(id).await?.is_some(),
    };
    if !exists {
        return Err(ConfigError::NoSuchNode(node));
    }
    Ok(node)
}

/// What is in force on an existing node, from the `active` (committed) configuration.
pub async fn effective_for(
    state: &AppState,
    node: &Node,
    active: Vec<ConfigEntry>,
) -> Result<BTreeMap<String, Effective>, ConfigError> {
    let tree = ConfigTree::new(active);
    Ok(match node {
        Node::Device(id) => {
            let device = state
                .store
                .device(id)
                .await?
                .ok_or_else(|| ConfigError::NoSuchNode(node.clone()))?;
            tree.effective_for_device(id, device.group.as_deref())
        }
        Node::Group(path) => tree.effective_for_group(path),
    })
}

/// The node's own active and draft documents and what is in force on it, all masked.
pub async fn show(state: &AppState, node: &str) -> Result<NodeConfig, ConfigError> {
    let node = resolve_node(state, node).await?;
    let active = state.store.active_config().await?;
    let mut policies: BTreeMap<String, PolicyState> = BTreeMap::new();
    for e in active.iter().filter(|e| e.node == node.key()) {
        policies.entry(e.policy.clone()).or_default().active = Some(masked(&e.policy, &e.body));
    }
    for (n, policy, body) in state.store.drafts().await? {
        if n == node.key() {
            let body = body.map(|b| masked(&policy, &b));
            policies.entry(policy).or_default().draft = Some(body);
        }
    }
    let effective = effective_for(state, &node, active)
        .await?
        .into_iter()
        .map(|(policy, mut e)| {
            e.body = masked(&policy, &e.body);
            (policy, e)
        })
        .collect();
    Ok(NodeConfig {
        node: node.key().to_string(),
        policies,
        effective,
    })
}

/// Drafts `body` as the node's document for `policy`: plaintext passwords hashed, masks
/// replaced by the secrets they stand for, then checked against the policy's rules.
pub async fn set(
    state: &AppState,
    actor: &str,
    node: &str,
    policy: &str,
    body: Value,
) -> Result<Drafted, ConfigError> {
    let node = resolve_node(state, node).await?;
    let body = hash_plaintext(policy, body).map_err(|message| ConfigError::Plaintext {
        policy: policy.to_string(),
        message,
    })?;
    let body = keep_masked_values(state, &node, policy, body).await?;
    check_document(policy, &body)?;
    state
        .store
        .set_draft(node.key(), policy, Some(body.clone()))
        .await?;
    let shown = masked(policy, &body);
    let target = format!("{node} {policy}");
    audit::record(state, actor, "config.set", &target, shown.to_string()).await;
    Ok(Drafted {
        node: node.key().to_string(),
        policy: policy.to_string(),
        draft: Some(shown),
    })
}

/// Drafts removing the node's own document for `policy`: it inherits again.
pub async fn unset(
    state: &AppState,
    actor: &str,
    node: &str,
    policy: &str,
) -> Result<Drafted, ConfigError> {
    let node = resolve_node(state, node).await?;
    definition(policy)?;
    state.store.set_draft(node.key(), policy, None).await?;
    audit::record(
        state,
        actor,
        "config.unset",
        &format!("{node} {policy}"),
        "",
    )
    .await;
    Ok(Drafted {
        node: node.key().to_string(),
        policy: policy.to_string(),
        draft: None,
    })
}

/// The node's drafted document for `policy`, if it has a draft (`Some(None)`: a removal).
pub async fn draft_of(
    state: &AppState,
    node: &str,
    policy: &str,
) -> Result<Option<Option<Value>>, StoreError> {
    Ok(state
        .store
        .drafts()
        .await?
        .into_iter()
        .find(|(n, p, _)| n == node && p == policy)
        .map(|(_, _, body)| body))
}

/// Puts back the stored secrets behind masks in `body`: the node's draft, else its committed
/// document, else what it inherits (an operator breaking inheritance keeps the hashes).
async fn keep_masked_values(
    state: &AppState,
    node: &Node,
    policy: &str,
    body: Value,
) -> Result<Value, ConfigError> {
    if !body.to_string().contains(crate::secrets::MASK) {
        return Ok(body);
    }
    let draft = draft_of(state, node.key(), policy).await?.flatten();
    let active = state.store.active_config().await?;
    let own = active
        .iter()
        .find(|e| e.node == node.key() && e.policy == policy)
        .map(|e| e.body.clone());
    let inherited = effective_for(state, node, active)
        .await?
        .remove(policy)
        .map(|e| e.body);
    let stored: Vec<&Value> = [&draft, &own, &inherited].into_iter().flatten().collect();
    restore_masked(policy, body, &stored).map_err(|message| ConfigError::Mask {
        policy: policy.to_string(),
        node: node.clone(),
        message,
    })
}
