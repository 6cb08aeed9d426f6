//! The bundle in force: verified on receipt, persisted only when it changes, re-verified on load.

use std::path::Path;

use apiary_proto::bundle::{self, Bundle, BundleError};
use apiary_proto::signed::Envelope;

use crate::config::{Dirs, Identity};
use crate::safe_fs::{self, SafeFsError};

/// A verified bundle and the hash that names it.
#[derive(Clone, Debug)]
pub struct InForce {
    pub envelope: Envelope,
    pub bundle: Bundle,
    pub hash: String,
}

/// Why a received bundle did not become the bundle in force.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error(transparent)]
    Rejected(#[from] BundleError),
    #[error("cannot persist the bundle: {0}")]
    Persist(#[source] SafeFsError),
}

/// Loads the last good bundle; a file that no longer verifies is ignored with a warning.
pub fn load(dirs: &Dirs, identity: &Identity) -> Option<InForce> {
    let path = dirs.bundle();
    let bytes = safe_fs::read(&path, safe_fs::STATE_FILE_LIMIT).ok()??;
    let result = serde_json::from_slice::<Envelope>(&bytes)
        .map_err(|e| e.to_string())
        .and_then(|env| verify(identity, env, None).map_err(|e| e.to_string()));
    match result {
        Ok(in_force) => Some(in_force),
        Err(e) => {
            eprintln!("warning: ignoring stored bundle {}: {e}", path.display());
            None
        }
    }
}

/// Verifies `envelope` against the identity and the bundle in force, and persists it if new.
pub fn accept(
    dirs: &Dirs,
    identity: &Identity,
    envelope: Envelope,
    current: Option<&InForce>,
) -> Result<InForce, AcceptError> {
    let in_force = verify(identity, envelope, current)?;
    if current.map(|c| c.hash.as_str()) != Some(in_force.hash.as_str()) {
        persist(&dirs.bundle(), &in_force.envelope)?;
    }
    Ok(in_force)
}

fn verify(
    identity: &Identity,
    envelope: Envelope,
    current: Option<&InForce>,
) -> Result<InForce, BundleError> {
    let bundle = bundle::verify(
        &envelope,
        &identity.config.bundle_signing_key,
        &identity.config.device_id,
        current.map(|c| (c.bundle.serial, c.hash.as_str())),
    )?;
    let hash = envelope.payload_hash();
    Ok(InForce {
        envelope,
        bundle,
        hash,
    })
}

fn persist(path: &Path, envelope: &Envelope) -> Result<(), AcceptError> {
    let bytes = serde_json::to_vec(envelope).expect("envelope serialises infallibly");
    safe_fs::write_atomic(path, &bytes, 0o600).map_err(AcceptError::Persist)
}
