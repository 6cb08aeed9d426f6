//! The operator REST API (`/api/v1`): bearer-token auth, JSON in and out. Each handler
//! parses its request, calls one operation of `service`, and answers with its result.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post, put};

use crate::state::Shared;

mod alerts;
pub mod auth;
mod bootstrap_keys;
mod commits;
pub mod config;
mod devices;
mod files;
mod groups;
mod monitoring;
mod parameters;

/// The operator API router (everything under `/api/v1` requires a token).
pub fn router(state: Shared) -> Router {
    let api = Router::new()
        .route(
            "/bootstrap-keys",
            get(bootstrap_keys::list).post(bootstrap_keys::create),
        )
        .route(
            "/bootstrap-keys/{id}",
            axum::routing::delete(bootstrap_keys::revoke),
        )
        .route("/devices", get(devices::list))
        .route("/devices/{id}", get(devices::show).delete(devices::delete))
        .route("/devices/{id}/approve", post(devices::approve))
        .route("/devices/{id}/reject", post(devices::reject))
        .route("/devices/{id}/move", post(groups::move_device))
        .route("/devices/{id}/offline-bundle", get(devices::offline_bundle))
        .route("/devices/{id}/inventory", get(monitoring::all))
        .route("/devices/{id}/inventory/{kind}", get(monitoring::one))
        .route("/devices/{id}/metrics", get(monitoring::metrics))
        .route("/inventory/search", get(monitoring::search))
        .route("/alerts", get(alerts::list))
        .route("/alert-rules", get(alerts::rules).post(alerts::add_rule))
        .route(
            "/alert-rules/{id}",
            axum::routing::delete(alerts::delete_rule),
        )
        .route("/webhooks", get(alerts::webhooks).post(alerts::add_webhook))
        .route(
            "/webhooks/{id}",
            axum::routing::delete(alerts::delete_webhook),
        )
        .route(
            "/groups",
            get(groups::list)
                .post(groups::create)
                .delete(groups::delete),
        )
        .route("/groups/rename", post(groups::rename))
        .route("/files", get(files::list))
        .route(
            "/files/{*path}",
            put(files::upload).layer(DefaultBodyLimit::max(
                crate::service::files::MAX_UPLOAD_BYTES as usize,
            )),
        )
        .route("/config", get(config::show))
        .route("/parameters", get(parameters::show))
        .route(
            "/parameters/{key}",
            put(parameters::set).delete(parameters::unset),
        )
        .route("/config/{policy}", put(config::set).delete(config::unset))
        .route("/commits", get(commits::list).post(commits::create))
        .route("/commits/{id}", get(commits::show))
        .route("/commits/{id}/revert", post(commits::revert))
        .route("/drafts", get(commits::drafts).delete(commits::discard))
        .route("/audit", get(commits::audit))
        .route("/ca", get(bootstrap_keys::ca))
        .fallback(|| async { crate::error::ApiError::not_found("no such API endpoint") })
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .with_state(state);
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(|| async { "ok\n" }))
}
