//! The file manager: upload (streamed to the blob store) and list.

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, State};

use super::auth::Actor;
use crate::blobs::PutError;
use crate::error::ApiError;
use crate::state::{Shared, now};
use crate::store::FileEntry;
use apiary_proto::policy::file_distribution::validate_file_manager_path;

/// `PUT /api/v1/files/{*path}` with the raw content as body.
pub async fn upload(
    State(state): State<Shared>,
    Extension(actor): Extension<Actor>,
    Path(path): Path<String>,
    body: Body,
) -> Result<Json<FileEntry>, ApiError> {
    let path = format!("/{}", path.trim_start_matches('/'));
    validate_file_manager_path(&path).map_err(ApiError::bad_request)?;
    let blob = state
        .blobs
        .put(body.into_data_stream(), super::MAX_UPLOAD_BYTES)
        .await
        .map_err(|e| match e {
            PutError::Io(_) => ApiError::internal(e.to_string()),
            _ => ApiError::bad_request(e.to_string()),
        })?;
    let entry = FileEntry {
        path: path.clone(),
        sha256: blob.sha256,
        size: blob.size,
        uploaded_at: now(),
        uploaded_by: actor.0.clone(),
    };
    state.store.put_file(entry.clone()).await?;
    super::audit(
        &state,
        &actor.0,
        "file.upload",
        &path,
        format!("sha256={} size={}", entry.sha256, entry.size),
    )
    .await;
    Ok(Json(entry))
}

/// `GET /api/v1/files`.
pub async fn list(State(state): State<Shared>) -> Result<Json<Vec<FileEntry>>, ApiError> {
    Ok(Json(state.store.list_files().await?))
}
