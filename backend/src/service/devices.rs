//! Devices: the fleet, one device with its bundle and reports, and deciding on enrolments.
//! Approving issues the device's certificate and compiles its first bundle. A rejection
//! holds whatever the device does, until an operator approves it or deletes it; deleting
//! forgets the device, so it may enrol afresh.

use serde::Serialize;

use super::{Failure, Kind, audit};
use crate::config::commit::{self, CommitError};
use crate::state::{AppState, now};
use crate::store::{Device, DeviceStatus, StoreError, StoredBundle, StoredReport};

/// Reports shown with a device.
const RECENT_REPORTS: u32 = 100;

/// Why a device operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("no device {0}")]
    NotFound(String),
    #[error("device {0} is already approved")]
    AlreadyApproved(String),
    #[error("stored public key of {0} is corrupt")]
    CorruptKey(String),
    #[error("cannot issue a certificate for {device}: {message}")]
    Certificate { device: String, message: String },
    #[error("approved, but its bundle could not be compiled: {0}")]
    Bundle(CommitError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Failure for DeviceError {
    fn kind(&self) -> Kind {
        match self {
            DeviceError::NotFound(_) => Kind::NotFound,
            DeviceError::AlreadyApproved(_) => Kind::Conflict,
            DeviceError::CorruptKey(_)
            | DeviceError::Certificate { .. }
            | DeviceError::Bundle(_) => Kind::Internal,
            DeviceError::Store(e) => e.kind(),
        }
    }
}

/// A device with the bundle the backend holds for it and its latest reports.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceDetail {
    #[serde(flatten)]
    pub device: Device,
    /// The bundle the backend holds for the device (which it may not have applied yet).
    pub current_bundle: Option<StoredBundle>,
    /// Newest first.
    pub reports: Vec<StoredReport>,
    /// The certificate the device authenticates with, when it has one.
    pub certificate: Option<CertificateInfo>,
}

/// What an operator sees of a device certificate.
#[derive(Clone, Debug, Serialize)]
pub struct CertificateInfo {
    /// SHA-256 of the certificate (DER), hex.
    pub fingerprint: String,
    /// The end of its validity (Unix seconds); the agent renews it before.
    pub not_after: i64,
}

/// Every device, or those in `status`.
pub async fn list(
    state: &AppState,
    status: Option<DeviceStatus>,
) -> Result<Vec<Device>, StoreError> {
    state.store.list_devices(status).await
}

pub async fn show(state: &AppState, id: &str) -> Result<DeviceDetail, DeviceError> {
    let device = find(state, id).await?;
    Ok(DeviceDetail {
        certificate: certificate(&device),
        current_bundle: state.store.current_bundle(&device.id).await?,
        reports: state
            .store
            .recent_reports(&device.id, RECENT_REPORTS)
            .await?,
        device,
    })
}

/// The device's current certificate as operators see it.
pub fn certificate(device: &Device) -> Option<CertificateInfo> {
    let der = pem_der(device.cert_pem.as_deref()?)?;
    let peer = crate::pki::PeerCertificate::from_der(&der).ok()?;
    Some(CertificateInfo {
        fingerprint: peer.fingerprint,
        not_after: peer.not_after,
    })
}

fn pem_der(pem: &str) -> Option<Vec<u8>> {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    CertificateDer::from_pem_slice(pem.as_bytes())
        .ok()
        .map(|d| d.to_vec())
}

/// Approves a pending device, or reverses a rejection (with a new certificate).
pub async fn approve(state: &AppState, actor: &str, id: &str) -> Result<Device, DeviceError> {
    let device = find(state, id).await?;
    match device.status {
        DeviceStatus::Pending | DeviceStatus::Rejected => {
            approve_pending(state, actor, &device).await
        }
        DeviceStatus::Approved => Err(DeviceError::AlreadyApproved(id.to_string())),
    }
}

/// Issues a pending (or rejected) device's certificate and its first bundle. Also how a bootstrap key
/// that auto-accepts approves, with the key as the actor.
pub async fn approve_pending(
    state: &AppState,
    actor: &str,
    device: &Device,
) -> Result<Device, DeviceError> {
    let public_key = apiary_proto::hex::decode(&device.public_key)
        .ok_or_else(|| DeviceError::CorruptKey(device.id.clone()))?;
    let certificate = |message: String| DeviceError::Certificate {
        device: device.id.clone(),
        message,
    };
    let cert = state
        .authority
        .issue_device(&device.id, &public_key)
        .map_err(|e| certificate(e.to_string()))?;
    let fingerprint = crate::pki::pem_fingerprint(&cert).map_err(|e| certificate(e.to_string()))?;
    state
        .store
        .approve_device(&device.id, &cert, &fingerprint, now())
        .await?;
    let device = find(state, &device.id).await?;
    commit::refresh_devices(state, std::slice::from_ref(&device), now())
        .await
        .map_err(DeviceError::Bundle)?;
    let detail = format!("name={}", device.name);
    audit::record(state, actor, "device.approve", &device.id, detail).await;
    Ok(device)
}

/// Rejects a device: its certificate stops working at once, and it stays rejected when it
/// enrols again, even with an auto-accepting key.
pub async fn reject(state: &AppState, actor: &str, id: &str) -> Result<Device, DeviceError> {
    let device = find(state, id).await?;
    state.store.reject_device(&device.id).await?;
    let detail = format!("name={}", device.name);
    audit::record(state, actor, "device.reject", &device.id, detail).await;
    find(state, id).await
}

/// Deletes a device with its bundles and reports (decommissioning). Its certificate stops
/// working; if it enrols again it is a new request, which an auto-accepting key approves.
pub async fn delete(state: &AppState, actor: &str, id: &str) -> Result<Device, DeviceError> {
    let device = find(state, id).await?;
    if !state.store.delete_device(&device.id).await? {
        return Err(DeviceError::NotFound(id.to_string()));
    }
    let detail = format!("name={} status={}", device.name, device.status.as_str());
    audit::record(state, actor, "device.delete", &device.id, detail).await;
    Ok(device)
}

async fn find(state: &AppState, id: &str) -> Result<Device, DeviceError> {
    state
        .store
        .device(id)
        .await?
        .ok_or_else(|| DeviceError::NotFound(id.to_string()))
}
