//! A node's configuration: set or unset a policy (as a draft), show active and draft.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, Query, State};
use serde::{Deserialize, Serialize};

use super::auth::Actor;
use crate::config::effective::{ConfigTree, Effective};
use crate::config::masking::{masked, restore_masked};
use crate::config::node::Node;
use crate::error::ApiError;
use crate::state::Shared;

#[derive(Deserialize)]
pub struct NodeQuery {
    pub(crate) node: String,
}

/// A policy on one node: what is committed and what is drafted.
#[derive(Serialize, Default)]
pub struct PolicyState {
    #[serde(skip_serializing_if = "Option::is_none")]
    active: Option<serde_json::Value>,
    /// Present when a draft exists; `null` inside means the draft unsets the policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    draft: Option<Option<serde_json::Value>>,
}

#[derive(Serialize)]
pub struct NodeConfig {
    node: String,
    policies: BTreeMap<String, PolicyState>,
    /// Every committed policy in force on the node, and the node(s) it comes from.
    effective: BTreeMap<String, Effective>,
}

/// Parses a node name and checks the group or device exists.
pub(crate) async fn resolve(state: &Shared, text: &str) -> Result<Node, ApiError> {
    let node = Node::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let exists = match &node {
        Node::Group(p) => state.store.group_exists(p).await?,
        Node::Device(id) => state.store.device(id).await?.is_some(),
    };
    if !exists {
        return Err(ApiError::not_found(format!("no such node {node}")));
    }
    Ok(node)
}

/// What is in force on a node, from the active (committed) configuration.
pub(crate) async fn effective_for(
    state: &Shared,
    node: &Node,
    active: Vec<crate::store::ConfigEntry>,
) -> Result<BTreeMap<String, Effective>, ApiError> {
    let tree = ConfigTree::new(active);
    Ok(match node {
        Node::Device(id) => {
            let device = state
                .store
                .device(id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("no device {id}")))?;
            tree.effective_for_device(id, device.group.as_deref())
        }
        Node::Group(path) => tree.effective_for_group(path),
    })
}

/// `GET /api/v1/config?node=N`.
pub async fn show(
    State(state): State<Shared>,
    Query(q): Query<NodeQuery>,
) -> Result<Json<NodeConfig>, ApiError> {
    let node = resolve(&state, &q.node).await?;
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
    let effective = effective_for(&state, &node, active)
        .await?
        .into_iter()
        .map(|(policy, mut e)| {
            e.body = masked(&policy, &e.body);
            (policy, e)
        })
        .collect();
    Ok(Json(NodeConfig {
        node: node.key().to_string(),
        policies,
        effective,
    }))
}

/// `PUT /api/v1/config/{policy}?node=N`: drafts a policy document.
pub async fn set(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(policy): Path<String>,
    Query(q): Query<NodeQuery>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body.map_err(ApiError::from_json)?;
    let node = resolve(&state, &q.node).await?;
    let body = crate::config::passwords::hash_plaintext(&policy, body)
        .map_err(|e| ApiError::bad_request(format!("{policy}: {e}")))?;
    let body = keep_masked_values(&state, &node, &policy, body).await?;
    crate::config::policies::check_document(&policy, &body)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    state
        .store
        .set_draft(node.key(), &policy, Some(body.clone()))
        .await?;
    let shown = masked(&policy, &body);
    super::audit(
        &state,
        &actor.0,
        "config.set",
        &format!("{node} {policy}"),
        shown.to_string(),
    )
    .await;
    Ok(Json(
        serde_json::json!({"node": node.key(), "policy": policy, "draft": shown}),
    ))
}

/// Puts back the stored secrets behind masks in `body`: the node's draft, else its committed
/// document, else what it inherits (an operator breaking inheritance keeps the hashes).
async fn keep_masked_values(
    state: &Shared,
    node: &Node,
    policy: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value, ApiError> {
    if !body.to_string().contains(crate::secrets::MASK) {
        return Ok(body);
    }
    let draft = state
        .store
        .drafts()
        .await?
        .into_iter()
        .find(|(n, p, _)| n == node.key() && p == policy)
        .and_then(|(_, _, body)| body);
    let active = state.store.active_config().await?;
    let own = active
        .iter()
        .find(|e| e.node == node.key() && e.policy == policy)
        .map(|e| e.body.clone());
    let inherited = effective_for(state, node, active)
        .await?
        .remove(policy)
        .map(|e| e.body);
    let stored: Vec<&serde_json::Value> =
        [&draft, &own, &inherited].into_iter().flatten().collect();
    restore_masked(policy, body, &stored)
        .map_err(|e| ApiError::bad_request(format!("{policy} on {node}: {e}")))
}

/// `DELETE /api/v1/config/{policy}?node=N`: drafts removing the node's own document.
pub async fn unset(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(policy): Path<String>,
    Query(q): Query<NodeQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let node = resolve(&state, &q.node).await?;
    crate::config::policies::definition(&policy)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    state.store.set_draft(node.key(), &policy, None).await?;
    super::audit(
        &state,
        &actor.0,
        "config.unset",
        &format!("{node} {policy}"),
        "",
    )
    .await;
    Ok(Json(
        serde_json::json!({"node": node.key(), "policy": policy, "draft": null}),
    ))
}
