//! Bearer-token authentication of operators. Tokens are stored only as SHA-256 hashes.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

use crate::error::ApiError;
use crate::state::Shared;

/// The authenticated operator, available to handlers as an extension.
#[derive(Clone, Debug)]
pub struct Actor(pub String);

/// A new random API token.
pub fn new_token() -> String {
    format!("apiary_{}", apiary_proto::hex::random(24))
}

/// How a token is stored.
pub fn token_hash(token: &str) -> String {
    apiary_proto::digest::sha256_hex(token.as_bytes())
}

/// Middleware: rejects requests without a valid `Authorization: Bearer` token.
pub async fn require_token(
    State(state): State<Shared>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::unauthorized("missing bearer token (Authorization: Bearer <token>)")
        })?;
    let found = state
        .store
        .token_by_hash(&token_hash(token))
        .await?
        .ok_or_else(|| ApiError::unauthorized("invalid API token"))?;
    req.extensions_mut().insert(Actor(found.name));
    Ok(next.run(req).await)
}
