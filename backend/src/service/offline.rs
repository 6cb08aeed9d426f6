//! Offline bundles: a device's current signed bundle and every file it references, as one
//! archive (`apiary_proto::offline`) an operator carries to a device with no network to the
//! backend. Nothing is signed here: the bundle is the one the backend compiled and signed
//! for that device, so the device checks it exactly as if it had come in a check-in.

use std::collections::BTreeMap;

use apiary_proto::bundle::Bundle;
use apiary_proto::offline;
use apiary_proto::signed::Envelope;

use super::{Failure, Kind, audit};
use crate::state::AppState;
use crate::store::StoreError;

/// Largest archive built (it is built in memory).
pub const MAX_EXPORT_BYTES: u64 = 1024 * 1024 * 1024;

/// Why an export was refused.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("no device {0}")]
    NotFound(String),
    #[error("device {0} has no bundle yet (it is not approved, or nothing was committed)")]
    NoBundle(String),
    #[error("the bundle of {device} references {sha256}, which the file manager no longer holds")]
    MissingFile { device: String, sha256: String },
    #[error("the offline bundle of {0} would exceed {MAX_EXPORT_BYTES} bytes")]
    TooLarge(String),
    #[error("cannot build the offline bundle of {device}: {message}")]
    Internal { device: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Failure for ExportError {
    fn kind(&self) -> Kind {
        match self {
            ExportError::NotFound(_) | ExportError::NoBundle(_) => Kind::NotFound,
            ExportError::MissingFile { .. } => Kind::Conflict,
            ExportError::TooLarge(_) => Kind::Invalid,
            ExportError::Internal { .. } => Kind::Internal,
            ExportError::Store(e) => e.kind(),
        }
    }
}

/// The offline bundle of device `id`, as the archive's bytes.
pub async fn export(state: &AppState, actor: &str, id: &str) -> Result<Vec<u8>, ExportError> {
    if state.store.device(id).await?.is_none() {
        return Err(ExportError::NotFound(id.to_string()));
    }
    let stored = state
        .store
        .current_bundle(id)
        .await?
        .ok_or_else(|| ExportError::NoBundle(id.to_string()))?;
    let internal = |message: String| ExportError::Internal {
        device: id.to_string(),
        message,
    };
    let envelope_json = state
        .secrets
        .load_envelope(&stored.envelope)
        .map_err(|e| internal(e.to_string()))?
        .into_owned();
    let envelope: Envelope =
        serde_json::from_str(&envelope_json).map_err(|e| internal(e.to_string()))?;
    let bundle: Bundle = envelope
        .parse_payload()
        .map_err(|e| internal(e.to_string()))?;
    let files = referenced_files(&bundle);
    let mut total = envelope_json.len() as u64;
    let mut paths = Vec::new();
    for (sha256, size) in &files {
        let path = state
            .blobs
            .path(sha256)
            .filter(|p| p.is_file())
            .ok_or_else(|| ExportError::MissingFile {
                device: id.to_string(),
                sha256: sha256.clone(),
            })?;
        total += size + 1024;
        paths.push((sha256.clone(), *size, path));
    }
    if total > MAX_EXPORT_BYTES {
        return Err(ExportError::TooLarge(id.to_string()));
    }
    let device = id.to_string();
    let archive = tokio::task::spawn_blocking(move || {
        let mut out = Vec::with_capacity(total as usize);
        offline::write_member(&mut out, offline::BUNDLE_MEMBER, envelope_json.as_bytes())?;
        for (sha256, size, path) in paths {
            let mut file = std::fs::File::open(&path)?;
            let name = format!("{}{sha256}", offline::FILES_DIR);
            offline::write_member_from(&mut out, &name, size, &mut file)?;
        }
        offline::finish(&mut out)?;
        Ok::<_, std::io::Error>(out)
    })
    .await
    .map_err(|e| internal(e.to_string()))?
    .map_err(|e| internal(e.to_string()))?;
    audit::record(
        state,
        actor,
        "bundle.export",
        &device,
        format!("serial {}, {} file(s)", bundle.serial, files.len()),
    )
    .await;
    Ok(archive)
}

/// Every file content the bundle names (plain files and template sources), by SHA-256.
fn referenced_files(bundle: &Bundle) -> BTreeMap<String, u64> {
    let mut files = BTreeMap::new();
    if let Some(fd) = &bundle.policies.file_distribution {
        for set in &fd.sets {
            for file in &set.files {
                files.insert(file.sha256.clone(), file.size);
            }
        }
    }
    files
}
