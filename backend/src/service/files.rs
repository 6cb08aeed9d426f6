//! The file manager: uploads streamed into the content-addressed blob store, and the list.

use apiary_proto::policy::file_distribution::validate_file_manager_path;

use super::{Failure, Kind, audit};
use crate::blobs::{PutError, bytes_like::Bytes};
use crate::state::{AppState, now};
use crate::store::{FileEntry, StoreError};

/// Largest file-manager upload.
pub const MAX_UPLOAD_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{0}")]
    Path(String),
    #[error(transparent)]
    Put(#[from] PutError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Failure for FileError {
    fn kind(&self) -> Kind {
        match self {
            FileError::Path(_) => Kind::Invalid,
            FileError::Put(PutError::Io(_)) => Kind::Internal,
            FileError::Put(_) => Kind::Invalid,
            FileError::Store(e) => e.kind(),
        }
    }
}

/// Stores `content` under the file-manager `path` (`/configs/app.conf`), replacing what
/// was there; bundles pick the new content up at the next commit.
pub async fn upload<S, E>(
    state: &AppState,
    actor: &str,
    path: &str,
    content: S,
) -> Result<FileEntry, FileError>
where
    S: futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    validate_file_manager_path(path).map_err(FileError::Path)?;
    let blob = state.blobs.put(content, MAX_UPLOAD_BYTES).await?;
    let entry = FileEntry {
        path: path.to_string(),
        sha256: blob.sha256,
        size: blob.size,
        uploaded_at: now(),
        uploaded_by: actor.to_string(),
    };
    state.store.put_file(entry.clone()).await?;
    let detail = format!("sha256={} size={}", entry.sha256, entry.size);
    audit::record(state, actor, "file.upload", path, detail).await;
    Ok(entry)
}

pub async fn list(state: &AppState) -> Result<Vec<FileEntry>, StoreError> {
    state.store.list_files().await
}
