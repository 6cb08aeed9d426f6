//! What every request handler shares.

use std::sync::Arc;

use apiary_proto::signed::BundleSigner;

use crate::blobs::BlobStore;
use crate::pki::Authority;
use crate::store::Store;

/// The backend's shared state.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub signer: BundleSigner,
    pub authority: Authority,
    pub blobs: BlobStore,
    /// Seals secret parameters and bundles that carry them.
    pub secrets: crate::secrets::SecretBox,
    /// Serialises commits and bundle compilation, which assign ids and serials.
    pub commit_lock: tokio::sync::Mutex<()>,
    /// How long metric samples are kept, raw and by hour.
    pub retention: crate::metrics::Retention,
}

/// Handlers take this.
pub type Shared = Arc<AppState>;

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
