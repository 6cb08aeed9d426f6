//! `/alerts`, `/alert-rules` and `/webhooks`.

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Actor;
use crate::alerts::rules::RuleSpec;
use crate::error::ApiError;
use crate::service::alerts;
use crate::state::Shared;
use crate::store::alerts::{Alert, AlertRule, Webhook};

#[derive(Deserialize)]
pub struct AlertsQuery {
    /// `open` (default) or `all`.
    state: Option<String>,
}

/// `GET /api/v1/alerts[?state=all]`.
pub async fn list(
    State(state): State<Shared>,
    Query(q): Query<AlertsQuery>,
) -> Result<Json<Vec<Alert>>, ApiError> {
    let open_only = match q.state.as_deref() {
        None | Some("open") => true,
        Some("all") => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown state {other:?}; use open or all"
            )));
        }
    };
    Ok(Json(alerts::alerts(&state, open_only).await?))
}

/// `GET /api/v1/alert-rules`.
pub async fn rules(State(state): State<Shared>) -> Result<Json<Vec<AlertRule>>, ApiError> {
    Ok(Json(alerts::rules(&state).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRule {
    name: String,
    #[serde(default)]
    scope: Option<String>,
    rule: RuleSpec,
}

/// `POST /api/v1/alert-rules` with `{name, scope?, rule: {kind, ...}}`.
pub async fn add_rule(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Json(body): Json<NewRule>,
) -> Result<(StatusCode, Json<AlertRule>), ApiError> {
    let rule = alerts::add_rule(
        &state,
        &actor.0,
        &body.name,
        body.rule,
        body.scope.as_deref(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(rule)))
}

/// `DELETE /api/v1/alert-rules/{id}`.
pub async fn delete_rule(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    alerts::delete_rule(&state, &actor.0, id).await?;
    Ok(Json(json!({"deleted": id})))
}

/// `GET /api/v1/webhooks`: the webhooks and the deliveries' counts.
pub async fn webhooks(State(state): State<Shared>) -> Result<Json<Value>, ApiError> {
    let (hooks, counts) = alerts::webhooks(&state).await?;
    Ok(Json(json!({"webhooks": hooks, "deliveries": counts})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    url: String,
    #[serde(default)]
    secret: Option<String>,
}

/// `POST /api/v1/webhooks` with `{url, secret?}`.
pub async fn add_webhook(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Json(body): Json<NewWebhook>,
) -> Result<(StatusCode, Json<Webhook>), ApiError> {
    let hook = alerts::add_webhook(&state, &actor.0, &body.url, body.secret.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(hook)))
}

/// `DELETE /api/v1/webhooks/{id}`.
pub async fn delete_webhook(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    alerts::delete_webhook(&state, &actor.0, id).await?;
    Ok(Json(json!({"deleted": id})))
}
