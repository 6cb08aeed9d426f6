//! Alerts for operators: the alerts themselves, the rules that raise them and the webhooks
//! they go to. Changes to rules and webhooks are audited.

use super::{Failure, Kind, audit};
use crate::alerts::rules::RuleSpec;
use crate::alerts::webhooks;
use crate::config::node;
use crate::state::{AppState, now};
use crate::store::StoreError;
use crate::store::alerts::{Alert, AlertRule, DeliveryCounts, Webhook};

/// Why an alert operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("{0}")]
    Invalid(String),
    #[error("no {0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Failure for AlertError {
    fn kind(&self) -> Kind {
        match self {
            AlertError::Invalid(_) => Kind::Invalid,
            AlertError::NotFound(_) => Kind::NotFound,
            AlertError::Store(e) => e.kind(),
        }
    }
}

/// Alerts shown at most.
pub const MAX_LISTED: u32 = 1000;

/// Open alerts, or all (newest first).
pub async fn alerts(state: &AppState, open_only: bool) -> Result<Vec<Alert>, AlertError> {
    Ok(state.store.alerts(open_only, MAX_LISTED).await?)
}

pub async fn rules(state: &AppState) -> Result<Vec<AlertRule>, AlertError> {
    Ok(state.store.rules().await?)
}

/// Adds a rule named `name` watching `scope` (a group path; the fleet when `None`).
pub async fn add_rule(
    state: &AppState,
    actor: &str,
    name: &str,
    spec: RuleSpec,
    scope: Option<&str>,
) -> Result<AlertRule, AlertError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return Err(AlertError::Invalid(
            "a rule's name must be 1 to 64 characters".into(),
        ));
    }
    spec.validate().map_err(AlertError::Invalid)?;
    let scope = match scope {
        Some(s) => {
            let path = node::normalize_group(s).map_err(|e| AlertError::Invalid(e.to_string()))?;
            if !state.store.group_exists(&path).await? {
                return Err(AlertError::NotFound(format!("group {path}")));
            }
            Some(path)
        }
        None => None,
    };
    let rule = state
        .store
        .insert_rule(name, &spec, scope.as_deref(), actor, now())
        .await?;
    let detail = serde_json::to_string(&spec).expect("rules serialise");
    audit::record(state, actor, "alert_rule.add", name, detail).await;
    Ok(rule)
}

pub async fn delete_rule(state: &AppState, actor: &str, id: i64) -> Result<(), AlertError> {
    if !state.store.delete_rule(id).await? {
        return Err(AlertError::NotFound(format!("alert rule {id}")));
    }
    audit::record(state, actor, "alert_rule.delete", &id.to_string(), "").await;
    Ok(())
}

/// The webhooks, and how their deliveries stand.
pub async fn webhooks(state: &AppState) -> Result<(Vec<Webhook>, DeliveryCounts), AlertError> {
    Ok((
        state.store.webhooks().await?,
        state.store.delivery_counts().await?,
    ))
}

/// Adds a webhook; with `secret`, deliveries carry `X-Apiary-Signature`. The secret is
/// sealed at rest and never shown again.
pub async fn add_webhook(
    state: &AppState,
    actor: &str,
    url: &str,
    secret: Option<&str>,
) -> Result<Webhook, AlertError> {
    webhooks::validate_url(url).map_err(AlertError::Invalid)?;
    if secret.is_some_and(|s| s.len() < 16 || s.len() > 256) {
        return Err(AlertError::Invalid(
            "a webhook secret must be 16 to 256 characters".into(),
        ));
    }
    let sealed = secret.map(|s| state.secrets.seal("webhook", s));
    let hook = state
        .store
        .insert_webhook(url, sealed.as_deref(), actor, now())
        .await?;
    let detail = if hook.signed { "signed" } else { "unsigned" };
    audit::record(state, actor, "webhook.add", url, detail).await;
    Ok(hook)
}

pub async fn delete_webhook(state: &AppState, actor: &str, id: i64) -> Result<(), AlertError> {
    if !state.store.delete_webhook(id).await? {
        return Err(AlertError::NotFound(format!("webhook {id}")));
    }
    audit::record(state, actor, "webhook.delete", &id.to_string(), "").await;
    Ok(())
}
