//! Certificate renewal: when a check-in answer says `renew`, the agent asks for a new
//! certificate for its key (`POST /v1/renew`, signed with that key, on the connection its
//! current certificate authenticates), checks that it matches the key, keeps it in
//! `device.crt` and uses it from the next request on. Any failure leaves the current
//! certificate in place; the backend asks again at the next check-in. During a CA rotation
//! the answer also carries the CAs to trust, kept in `ca.crt` the same way ([`trust`]).

use apiary_proto::device_api::{RenewRequest, RenewResponse};
use apiary_proto::paths;
use apiary_proto::signed::DeviceKey;
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;

use crate::config::{Dirs, Identity};
use crate::safe_fs;
use crate::transport::{Transport, TransportError};

/// Why a renewal did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RenewError {
    #[error("the device key cannot sign: {0}")]
    Key(String),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("cannot keep the new certificate: {0}")]
    Write(#[source] safe_fs::SafeFsError),
}

/// Renews the certificate of `identity` through `transport`; returns the transport that
/// presents the new one (and updates `identity`).
pub fn renew(
    dirs: &Dirs,
    identity: &mut Identity,
    transport: &Transport,
) -> Result<Transport, RenewError> {
    let der = PrivatePkcs8KeyDer::from_pem_slice(&identity.key_pem)
        .map_err(|e| RenewError::Key(e.to_string()))?;
    let key = DeviceKey::from_pkcs8(der.secret_pkcs8_der())
        .map_err(|e| RenewError::Key(e.to_string()))?;
    let request = RenewRequest {
        device_id: identity.config.device_id.clone(),
    };
    let signed = key
        .sign(&request)
        .map_err(|_| RenewError::Key("signing failed".into()))?;
    let answer: RenewResponse = transport.post_json(paths::RENEW, &signed)?;
    let cert_pem = answer.certificate_pem.into_bytes();
    // Built before anything is written: a certificate for another key is refused here.
    let renewed = Transport::mutual(
        &identity.config.server_url,
        &identity.ca_pem,
        &cert_pem,
        &identity.key_pem,
        identity.proxy.as_ref(),
    )?;
    safe_fs::write_atomic(&dirs.device_cert(), &cert_pem, 0o644).map_err(RenewError::Write)?;
    identity.cert_pem = cert_pem;
    Ok(renewed)
}

/// Takes the CA set the backend sent over a verified connection: checked to parse, kept in
/// `ca.crt`, and used by the returned transport. Returns how many CA certificates it holds.
pub fn trust(
    dirs: &Dirs,
    identity: &mut Identity,
    ca_pem: &str,
) -> Result<(Transport, usize), RenewError> {
    let count = apiary_proto::tls_client::roots(ca_pem.as_bytes())
        .map_err(TransportError::from)?
        .len();
    let transport = Transport::mutual(
        &identity.config.server_url,
        ca_pem.as_bytes(),
        &identity.cert_pem,
        &identity.key_pem,
        identity.proxy.as_ref(),
    )?;
    safe_fs::write_atomic(&dirs.ca_cert(), ca_pem.as_bytes(), 0o644).map_err(RenewError::Write)?;
    identity.ca_pem = ca_pem.as_bytes().to_vec();
    Ok((transport, count))
}
