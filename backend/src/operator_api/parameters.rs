//! Parameters one key at a time: set (optionally as a secret), unset, show. Each change is a
//! draft of the node's `parameters` document, committed like any other configuration.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, Query, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::auth::Actor;
use super::config::NodeQuery;
use crate::config::masking::masked;
use crate::config::node::Node;
use apiary_proto::policy::InBundle;
use apiary_proto::policy::parameters::{Parameters, validate_key};

use crate::config::policies::check_document;
use crate::error::ApiError;
use crate::secrets::MASK;
use crate::state::Shared;

const POLICY: &str = Parameters::NAME;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetParameter {
    value: String,
    /// Store sealed; never shown again, never reported by agents.
    #[serde(default)]
    secret: bool,
}

/// One parameter in force on a node.
#[derive(Serialize)]
pub struct EffectiveParameter {
    /// The value, or the mask for a secret.
    value: String,
    secret: bool,
    from: String,
}

/// The node's parameters document as it would be committed: its draft if it has one.
async fn current_document(state: &Shared, node: &str) -> Result<Value, ApiError> {
    if let Some((_, _, draft)) = state
        .store
        .drafts()
        .await?
        .into_iter()
        .find(|(n, p, _)| n == node && p == POLICY)
    {
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

async fn save_draft(state: &Shared, node: &Node, mut doc: Value) -> Result<(), ApiError> {
    for kind in ["values", "secrets"] {
        if doc
            .get(kind)
            .and_then(Value::as_object)
            .is_some_and(|m| m.is_empty())
        {
            doc.as_object_mut()
                .expect("the document is an object")
                .remove(kind);
        }
    }
    check_document(POLICY, &doc).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let body = doc
        .as_object()
        .is_some_and(|m| !m.is_empty())
        .then_some(doc);
    state.store.set_draft(node.key(), POLICY, body).await?;
    Ok(())
}

/// `PUT /api/v1/parameters/{key}?node=N` `{"value": "...", "secret": false}`.
pub async fn set(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(key): Path<String>,
    Query(q): Query<NodeQuery>,
    body: Result<Json<SetParameter>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(req) = body.map_err(ApiError::from_json)?;
    validate_key(&key).map_err(ApiError::bad_request)?;
    let node = super::config::resolve(&state, &q.node).await?;
    let mut doc = current_document(&state, node.key()).await?;
    let (kind, other, stored) = if req.secret {
        ("secrets", "values", state.secrets.seal(&key, &req.value))
    } else {
        ("values", "secrets", req.value.clone())
    };
    if let Some(o) = doc.get_mut(other).and_then(Value::as_object_mut) {
        o.remove(&key);
    }
    doc.as_object_mut()
        .ok_or_else(|| ApiError::internal(format!("parameters of {node} are not an object")))?
        .entry(kind)
        .or_insert_with(|| json!({}))[&key] = Value::String(stored);
    save_draft(&state, &node, doc).await?;
    let shown = if req.secret {
        MASK.to_string()
    } else {
        req.value
    };
    super::audit(
        &state,
        &actor.0,
        "parameter.set",
        &format!("{node} {key}"),
        shown.clone(),
    )
    .await;
    Ok(Json(
        json!({"node": node.key(), "key": key, "value": shown, "secret": req.secret}),
    ))
}

/// `DELETE /api/v1/parameters/{key}?node=N`.
pub async fn unset(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(key): Path<String>,
    Query(q): Query<NodeQuery>,
) -> Result<Json<Value>, ApiError> {
    let node = super::config::resolve(&state, &q.node).await?;
    let mut doc = current_document(&state, node.key()).await?;
    let mut found = false;
    for kind in ["values", "secrets"] {
        if let Some(m) = doc.get_mut(kind).and_then(Value::as_object_mut) {
            found |= m.remove(&key).is_some();
        }
    }
    if !found {
        return Err(ApiError::not_found(format!(
            "{node} sets no parameter {key}"
        )));
    }
    save_draft(&state, &node, doc).await?;
    super::audit(
        &state,
        &actor.0,
        "parameter.unset",
        &format!("{node} {key}"),
        "",
    )
    .await;
    Ok(Json(json!({"node": node.key(), "key": key, "unset": true})))
}

/// `GET /api/v1/parameters?node=N`: the node's own (as drafted) and what is in force.
pub async fn show(
    State(state): State<Shared>,
    Query(q): Query<NodeQuery>,
) -> Result<Json<Value>, ApiError> {
    let node = super::config::resolve(&state, &q.node).await?;
    let own = masked(POLICY, &current_document(&state, node.key()).await?);
    let effective =
        super::config::effective_for(&state, &node, state.store.active_config().await?).await?;
    let mut in_force: BTreeMap<String, EffectiveParameter> = BTreeMap::new();
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
                let from = e
                    .keys_from
                    .get(key)
                    .cloned()
                    .unwrap_or_else(|| e.from.clone());
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
    Ok(Json(
        json!({"node": node.key(), "own": own, "effective": in_force}),
    ))
}
