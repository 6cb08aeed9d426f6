//! `/files`: the file manager.

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, State};

use super::auth::Actor;
use crate::error::ApiError;
use crate::service::files;
use crate::state::Shared;
use crate::store::FileEntry;

/// `PUT /api/v1/files/{*path}` with the raw content as body.
pub async fn upload(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(path): Path<String>,
    body: Body,
) -> Result<Json<FileEntry>, ApiError> {
    let path = format!("/{}", path.trim_start_matches('/'));
    let entry = files::upload(&state, &actor.0, &path, body.into_data_stream()).await?;
    Ok(Json(entry))
}

/// `GET /api/v1/files`.
pub async fn list(State(state): State<Shared>) -> Result<Json<Vec<FileEntry>>, ApiError> {
    Ok(Json(files::list(&state).await?))
}
