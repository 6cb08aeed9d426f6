//! TLS for the blocking clients of Apiary's APIs, the agent and the `apiary` CLI: which CAs
//! to trust, the client certificate, and the rustls configuration over ring, built once
//! here so both speak TLS the same way.
//!
//! Only with the `tls-client` feature: the backend serves TLS and never needs this.

use std::sync::Arc;

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig, TlsProvider};

/// Well-known locations of the system CA bundle (Debian and derivatives, Fedora and RHEL,
/// Alpine and the BSDs, openSUSE), first found wins.
pub const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// Why TLS material was refused.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("CA certificate: {0}")]
    Pem(String),
    #[error("no CA certificate found")]
    NoCa,
    #[error("client key: {0}")]
    Key(String),
}

/// The cipher suites a client offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suites {
    /// ring's defaults, TLS 1.2 included: for servers behind proxies of any age.
    Default,
    /// TLS 1.3 only, AES-128-GCM first. Offering no TLS 1.2 suite also drops the TLS 1.2
    /// extensions from every ClientHello, bytes a device pays on each check-in. ChaCha20
    /// stays for servers that prefer it on CPUs without AES instructions.
    Tls13,
}

/// A client's TLS: trusting only `roots`, presenting `client` if given. Empty roots are
/// allowed here (a CLI on plain HTTP needs none); [`roots`] refuses them.
pub fn config(
    roots: &[Certificate<'static>],
    client: Option<ClientCert>,
    suites: Suites,
) -> TlsConfig {
    TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(provider(suites))
        .root_certs(RootCerts::new_with_certs(roots))
        .client_cert(client)
        .build()
}

/// The CA certificates of a PEM bundle; at least one.
pub fn roots(pem: &[u8]) -> Result<Vec<Certificate<'static>>, TlsError> {
    let certs = pem_certs(pem)?;
    if certs.is_empty() {
        return Err(TlsError::NoCa);
    }
    Ok(certs)
}

/// A client certificate chain and its private key, both PEM.
pub fn client_cert(cert_pem: &[u8], key_pem: &[u8]) -> Result<ClientCert, TlsError> {
    let chain = pem_certs(cert_pem)?;
    let key = PrivateKey::from_pem(key_pem).map_err(|e| TlsError::Key(e.to_string()))?;
    Ok(ClientCert::new_with_certs(&chain, key))
}

/// Every certificate in a PEM bundle; other items are skipped.
pub fn pem_certs(pem: &[u8]) -> Result<Vec<Certificate<'static>>, TlsError> {
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        if let PemItem::Certificate(c) = item.map_err(|e| TlsError::Pem(e.to_string()))? {
            certs.push(c);
        }
    }
    Ok(certs)
}

/// The system CA bundle, for servers with a publicly trusted certificate.
pub fn system_roots() -> Option<Vec<u8>> {
    SYSTEM_CA_BUNDLES
        .iter()
        .find_map(|path| std::fs::read(path).ok())
}

/// The ring provider with the suites `suites` offers (what [`config`] builds on; public for
/// clients that drive rustls directly, such as the device simulator).
pub fn provider(suites: Suites) -> Arc<rustls::crypto::CryptoProvider> {
    use rustls::crypto::ring::cipher_suite::{
        TLS13_AES_128_GCM_SHA256, TLS13_CHACHA20_POLY1305_SHA256,
    };
    let ring = rustls::crypto::ring::default_provider();
    Arc::new(match suites {
        Suites::Default => ring,
        Suites::Tls13 => rustls::crypto::CryptoProvider {
            cipher_suites: vec![TLS13_AES_128_GCM_SHA256, TLS13_CHACHA20_POLY1305_SHA256],
            ..ring
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_bundles_need_a_certificate() {
        assert!(matches!(roots(b""), Err(TlsError::NoCa)));
        let garbage = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(roots(garbage).is_err());
        assert!(client_cert(b"", b"not a key").is_err());
    }
}
