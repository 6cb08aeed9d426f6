//! Content-addressed storage for the file manager: `files/ab/abcdef…`, named by SHA-256.
//!
//! Uploads stream to a temporary file while hashing and are renamed into place, so content
//! is never held in memory and a blob's name always matches its bytes.

use std::io;
use std::path::{Path, PathBuf};

use apiary_proto::digest::{Sha256, is_sha256_hex};
use tokio::io::AsyncWriteExt;

/// The blob directory.
#[derive(Clone, Debug)]
pub struct BlobStore {
    root: PathBuf,
}

/// A stored blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub sha256: String,
    pub size: u64,
}

impl BlobStore {
    /// Uses (creating if needed) `root`.
    pub fn open(root: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(root.join("tmp"))?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// Where the blob named `sha256` lives; `None` for a name that is not a digest.
    pub fn path(&self, sha256: &str) -> Option<PathBuf> {
        is_sha256_hex(sha256).then(|| self.root.join(&sha256[..2]).join(sha256))
    }

    /// Streams chunks into a new blob; fails without a trace if the stream fails or exceeds `limit`.
    pub async fn put<S, E>(&self, mut chunks: S, limit: u64) -> Result<Blob, PutError>
    where
        S: futures_util::Stream<Item = Result<bytes_like::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        use futures_util::StreamExt;
        let tmp = self.root.join("tmp").join(apiary_proto::hex::random(12));
        let mut file = tokio::fs::File::create(&tmp).await.map_err(PutError::Io)?;
        let guard = RemoveOnDrop(Some(tmp.clone()));
        let mut hash = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| PutError::Body(e.to_string()))?;
            size += chunk.len() as u64;
            if size > limit {
                return Err(PutError::TooLarge(limit));
            }
            hash.update(&chunk);
            file.write_all(&chunk).await.map_err(PutError::Io)?;
        }
        file.sync_all().await.map_err(PutError::Io)?;
        drop(file);
        let sha256 = hash.finish_hex();
        let dest = self
            .path(&sha256)
            .expect("a computed digest is a valid name");
        tokio::fs::create_dir_all(dest.parent().expect("blob paths have a parent"))
            .await
            .map_err(PutError::Io)?;
        tokio::fs::rename(&tmp, &dest).await.map_err(PutError::Io)?;
        std::mem::forget(guard);
        Ok(Blob { sha256, size })
    }
}

/// Why an upload was not stored.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    #[error("upload exceeds the limit of {0} bytes")]
    TooLarge(u64),
    #[error("upload interrupted: {0}")]
    Body(String),
    #[error("cannot store upload: {0}")]
    Io(io::Error),
}

/// The byte type axum's body stream yields.
pub mod bytes_like {
    pub use axum::body::Bytes;
}

struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(
        parts: &[&'static [u8]],
    ) -> impl futures_util::Stream<Item = Result<axum::body::Bytes, String>> + Unpin {
        futures_util::stream::iter(
            parts
                .iter()
                .map(|p| Ok(axum::body::Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn stores_by_digest_and_refuses_oversize() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path()).unwrap();
        let blob = blobs.put(stream(&[b"ab", b"c"]), 10).await.unwrap();
        assert_eq!(blob.sha256, apiary_proto::digest::sha256_hex(b"abc"));
        assert_eq!(
            std::fs::read(blobs.path(&blob.sha256).unwrap()).unwrap(),
            b"abc"
        );
        assert!(matches!(
            blobs.put(stream(&[b"0123456789", b"x"]), 10).await,
            Err(PutError::TooLarge(10))
        ));
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0,
            "no leftovers"
        );
        assert_eq!(blobs.path("../../etc/passwd"), None);
    }
}
