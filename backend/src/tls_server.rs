//! Serving an axum router over rustls, attaching who connected to every request.
//!
//! The device API asks for (but does not demand) a client certificate: enrolment happens
//! before a device has one, and every other endpoint checks the [`ConnInfo`] itself.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::conn_limits::{ConnLimits, Gate, IdleTimeout};
use crate::pki::PeerCertificate;
use crate::session_cache::SessionCache;

/// Who is on the other end of a connection.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub remote: SocketAddr,
    /// The verified client certificate, if one was presented.
    pub peer: Option<PeerCertificate>,
}

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[error("TLS configuration: {0}")]
pub struct TlsConfigError(String);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs_and_key(
    cert_pem: &str,
    key_pem: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsConfigError> {
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsConfigError(format!("certificate: {e}")))?;
    if certs.is_empty() {
        return Err(TlsConfigError("no certificate in the PEM file".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| TlsConfigError(format!("private key: {e}")))?;
    Ok((certs, key))
}

/// The device listener's provider: AES-128-GCM-SHA256 first, whose 32-byte Finished messages
/// and PSK binders keep resumed handshakes small (128-bit security, matching X25519).
fn device_provider() -> Arc<rustls::crypto::CryptoProvider> {
    use rustls::crypto::ring::cipher_suite::{
        TLS13_AES_128_GCM_SHA256, TLS13_AES_256_GCM_SHA384, TLS13_CHACHA20_POLY1305_SHA256,
    };
    Arc::new(rustls::crypto::CryptoProvider {
        cipher_suites: vec![
            TLS13_AES_128_GCM_SHA256,
            TLS13_AES_256_GCM_SHA384,
            TLS13_CHACHA20_POLY1305_SHA256,
        ],
        ..rustls::crypto::ring::default_provider()
    })
}

/// TLS 1.3 for devices: the server certificate, client certificates checked against the CA.
pub fn device_config(
    cert_pem: &str,
    key_pem: &str,
    ca_pem: &str,
    sessions: usize,
) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let (certs, key) = certs_and_key(cert_pem, key_pem)?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(ca.map_err(|e| TlsConfigError(format!("CA: {e}")))?)
            .map_err(|e| TlsConfigError(format!("CA: {e}")))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsConfigError(e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(device_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsConfigError(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| TlsConfigError(e.to_string()))?;
    // Stateful resumption: a fleet's sessions stay here, so tickets sent to devices stay tiny.
    config.session_storage = Arc::new(SessionCache::new(sessions));
    // A device makes one connection per cycle and needs one ticket for the next.
    config.send_tls13_tickets = 1;
    config.ignore_client_order = true;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// TLS for the operator API when `--tls-cert`/`--tls-key` are given.
pub fn operator_config(cert_pem: &str, key_pem: &str) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let (certs, key) = certs_and_key(cert_pem, key_pem)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsConfigError(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsConfigError(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts TLS connections forever within `limits`, serving `app` with a [`ConnInfo`] on
/// each request.
pub async fn serve(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    app: Router,
    limits: ConnLimits,
) {
    let acceptor = TlsAcceptor::from(config);
    let gate = Gate::new(limits);
    loop {
        let slot = gate.connection_slot().await;
        let (tcp, remote) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(admission) = gate.admit(slot, remote.ip()) else {
            tracing::debug!(
                "{remote}: its address holds {} connections; closed",
                gate.limits.max_per_address
            );
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, app, gate) = (acceptor.clone(), app.clone(), gate.clone());
        tokio::spawn(async move {
            let _admission = admission;
            let tcp = IdleTimeout::new(tcp, gate.limits.idle_timeout);
            let handshake = async {
                let _slot = gate.handshake_slot().await;
                acceptor.accept(tcp).await
            };
            let tls = match tokio::time::timeout(gate.limits.handshake_timeout, handshake).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!("TLS handshake with {remote} failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!("TLS handshake with {remote} timed out");
                    return;
                }
            };
            let peer = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|der| PeerCertificate::from_der(der).ok());
            let lifetime = match peer {
                Some(_) => None,
                None => Some(gate.limits.unauthenticated_lifetime),
            };
            let info = ConnInfo { remote, peer };
            let service = app.map_request(
                move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(info.clone());
                    req
                },
            );
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                // Devices have clocks of their own; a Date header is bytes on every answer.
                .auto_date_header(false)
                .keep_alive(true)
                .serve_connection(TokioIo::new(tls), TowerToHyperService::new(service));
            let result = match lifetime {
                None => connection.await,
                Some(lifetime) => match tokio::time::timeout(lifetime, connection).await {
                    Ok(result) => result,
                    Err(_) => {
                        tracing::debug!(
                            "{remote}: no client certificate and open for {} s; closed",
                            lifetime.as_secs()
                        );
                        return;
                    }
                },
            };
            if let Err(e) = result {
                tracing::debug!("connection from {remote} ended: {e}");
            }
        });
    }
}
