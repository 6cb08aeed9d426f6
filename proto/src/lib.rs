//! The contract between `apiary-agent` and `apiary-backend`.
//!
//! Everything that crosses the wire between a device and the backend is defined
//! here: the device API, every policy once ([`policy`]: documents, bundle form, merge
//! shape, secrets and rules), and the signing and verification of the bytes that carry
//! trust: enrolment requests (signed by the device key) and desired-state bundles (signed
//! by the backend's bundle-signing key).

pub mod bundle;
pub mod device_api;
pub mod diff;
pub mod digest;
pub mod hex;
pub mod inventory;
pub mod metrics;
pub mod offline;
pub mod pem;
pub mod policy;
pub mod range;
pub mod signed;
#[cfg(feature = "tls-client")]
pub mod tls_client;

/// Version of the agent and backend, sent in every check-in.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Paths of the device API, relative to the device URL.
pub mod paths {
    /// `POST`: enrol a device with a bootstrap key.
    pub const BOOTSTRAP: &str = "/v1/bootstrap";
    /// `GET /v1/bootstrap/{device_id}`: the outcome of an enrolment.
    pub const BOOTSTRAP_STATUS_PREFIX: &str = "/v1/bootstrap/";
    /// `POST` over mTLS: the one request of a cycle.
    pub const CHECKIN: &str = "/v1/checkin";
    /// `POST` (mTLS): a new certificate for the device's key, asked for when the check-in
    /// answer says `renew`.
    pub const RENEW: &str = "/v1/renew";
    /// `GET /v1/files/{sha256}` over mTLS, with `Range` support.
    pub const FILES_PREFIX: &str = "/v1/files/";
}
