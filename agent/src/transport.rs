//! HTTPS to the device API: one ureq agent per run, so a cycle's requests share a connection.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use apiary_proto::device_api::ErrorBody;
use serde::{Serialize, de::DeserializeOwned};

use crate::policies::DownloadSink;
use ureq::config::AutoHeaderValue;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};

/// Largest JSON answer accepted (a bundle with many files stays far below this).
const MAX_JSON_BYTES: u64 = 16 * 1024 * 1024;

/// Why a request failed. Callers that retry ask [`TransportError::is_transient`].
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("invalid TLS material: {0}")]
    Tls(String),
    /// No answer: the connection failed, was cut, or timed out.
    #[error("request to {url} failed: {source}")]
    Request { url: String, source: ureq::Error },
    /// The backend answered with an error status.
    #[error("{url} answered {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    /// The answer stopped arriving part way.
    #[error("reading the answer of {url} failed: {message}")]
    Body { url: String, message: String },
    /// The answer arrived but is not what was asked for (malformed JSON, another range).
    #[error("the answer of {url} is unusable: {message}")]
    Unusable { url: String, message: String },
    /// A download arrived but could not be stored here.
    #[error("storing the download of {url} failed: {source}")]
    Sink { url: String, source: std::io::Error },
}

impl TransportError {
    /// True when the same request may succeed if made again soon: the connection failed or
    /// was cut, or the backend had a passing problem (5xx, 408, 429). A refusal (403, 404),
    /// an unusable answer or a local failure gets the same result again.
    pub fn is_transient(&self) -> bool {
        match self {
            TransportError::Request { source, .. } => matches!(
                source,
                ureq::Error::Io(_)
                    | ureq::Error::Timeout(_)
                    | ureq::Error::HostNotFound
                    | ureq::Error::ConnectionFailed
                    | ureq::Error::Protocol(_)
            ),
            TransportError::Status { status, .. } => *status >= 500 || matches!(status, 408 | 429),
            TransportError::Body { .. } => true,
            TransportError::Tls(_)
            | TransportError::Unusable { .. }
            | TransportError::Sink { .. } => false,
        }
    }
}

/// A client for one backend.
pub struct Transport {
    agent: ureq::Agent,
    base: String,
}

impl Transport {
    /// A client without a client certificate, trusting `roots` (PEM), for enrolment.
    pub fn anonymous(base: &str, roots_pem: &[u8]) -> Result<Self, TransportError> {
        Self::build(base, roots_pem, None)
    }

    /// A client presenting the device certificate, trusting only the pinned CA.
    pub fn mutual(
        base: &str,
        ca_pem: &[u8],
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<Self, TransportError> {
        let chain = pem_certs(cert_pem)?;
        let key = PrivateKey::from_pem(key_pem).map_err(|e| TransportError::Tls(e.to_string()))?;
        Self::build(base, ca_pem, Some(ClientCert::new_with_certs(&chain, key)))
    }

    fn build(
        base: &str,
        roots_pem: &[u8],
        client_cert: Option<ClientCert>,
    ) -> Result<Self, TransportError> {
        let roots = pem_certs(roots_pem)?;
        if roots.is_empty() {
            return Err(TransportError::Tls("no CA certificate found".into()));
        }
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(client_provider())
            .root_certs(RootCerts::new_with_certs(&roots))
            .client_cert(client_cert)
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .https_only(true)
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .timeout_per_write(Some(Duration::from_secs(60)))
            // Every header is paid for on every check-in; the version travels in the body.
            .user_agent(AutoHeaderValue::None)
            .accept(AutoHeaderValue::None)
            .build()
            .new_agent();
        Ok(Self {
            agent,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    /// `POST`s JSON and decodes a JSON answer.
    pub fn post_json<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, TransportError> {
        let url = self.url(path);
        // Serialised up front so headers and body leave in one write (one TLS record).
        let body = serde_json::to_vec(body).expect("request types serialise infallibly");
        let response = self
            .agent
            .post(&url)
            .content_type("application/json")
            .send(&body[..])
            .map_err(|source| TransportError::Request {
                url: url.clone(),
                source,
            })?;
        decode_json(&url, response)
    }

    /// `GET`s a JSON document.
    pub fn get_json<R: DeserializeOwned>(&self, path: &str) -> Result<R, TransportError> {
        let url = self.url(path);
        let response = self
            .agent
            .get(&url)
            .call()
            .map_err(|source| TransportError::Request {
                url: url.clone(),
                source,
            })?;
        decode_json(&url, response)
    }

    /// Streams `GET path` into `sink`, from `sink.offset()` with a `Range` request when it
    /// holds a start; a server that answers with the whole content makes the sink restart.
    pub fn download(&self, path: &str, sink: &mut dyn DownloadSink) -> Result<(), TransportError> {
        let url = self.url(path);
        let offset = sink.offset();
        let mut request = self.agent.get(&url);
        if offset > 0 {
            request = request.header("range", format!("bytes={offset}-"));
        }
        let mut response = request.call().map_err(|source| TransportError::Request {
            url: url.clone(),
            source,
        })?;
        check_status(&url, &mut response)?;
        let body_err = |message: String| TransportError::Body {
            url: url.clone(),
            message,
        };
        let resumed = response.status().as_u16() == 206;
        if resumed {
            let range = response
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !range.starts_with(&format!("bytes {offset}-")) {
                return Err(TransportError::Unusable {
                    url: url.clone(),
                    message: format!("asked for bytes {offset}- and got range {range:?}"),
                });
            }
        } else if offset > 0 {
            sink.restart().map_err(|source| TransportError::Sink {
                url: url.clone(),
                source,
            })?;
        }
        let mut reader = response.body_mut().with_config().limit(u64::MAX).reader();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = reader.read(&mut buf).map_err(|e| body_err(e.to_string()))?;
            if n == 0 {
                return Ok(());
            }
            sink.write_all(&buf[..n])
                .map_err(|source| TransportError::Sink {
                    url: url.clone(),
                    source,
                })?;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

fn check_status(
    url: &str,
    response: &mut ureq::http::Response<ureq::Body>,
) -> Result<(), TransportError> {
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let text = response
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default();
    let message = serde_json::from_str::<ErrorBody>(&text)
        .map(|b| b.error)
        .unwrap_or(text);
    Err(TransportError::Status {
        url: url.to_string(),
        status,
        message,
    })
}

fn decode_json<R: DeserializeOwned>(
    url: &str,
    mut response: ureq::http::Response<ureq::Body>,
) -> Result<R, TransportError> {
    check_status(url, &mut response)?;
    response
        .body_mut()
        .with_config()
        .limit(MAX_JSON_BYTES)
        .read_json()
        .map_err(|e| match e {
            ureq::Error::Io(_) | ureq::Error::Timeout(_) => TransportError::Body {
                url: url.to_string(),
                message: e.to_string(),
            },
            _ => TransportError::Unusable {
                url: url.to_string(),
                message: e.to_string(),
            },
        })
}

/// TLS 1.3 suites only (the device API speaks nothing else), AES-128-GCM first: offering no
/// TLS 1.2 suites also drops the TLS 1.2 extensions from every ClientHello, bytes paid on
/// each check-in. ChaCha20 stays for servers that prefer it on CPUs without AES instructions.
fn client_provider() -> Arc<rustls::crypto::CryptoProvider> {
    use rustls::crypto::ring::cipher_suite::{
        TLS13_AES_128_GCM_SHA256, TLS13_CHACHA20_POLY1305_SHA256,
    };
    Arc::new(rustls::crypto::CryptoProvider {
        cipher_suites: vec![TLS13_AES_128_GCM_SHA256, TLS13_CHACHA20_POLY1305_SHA256],
        ..rustls::crypto::ring::default_provider()
    })
}

/// Parses every certificate in a PEM bundle.
pub fn pem_certs(pem: &[u8]) -> Result<Vec<Certificate<'static>>, TransportError> {
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        match item.map_err(|e| TransportError::Tls(e.to_string()))? {
            ureq::tls::PemItem::Certificate(c) => certs.push(c),
            _ => continue,
        }
    }
    Ok(certs)
}

/// Well-known locations of the system CA bundle.
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// The system CA bundle, for enrolling against a server with a publicly trusted certificate.
pub fn system_roots() -> Option<Vec<u8>> {
    SYSTEM_CA_BUNDLES
        .iter()
        .find_map(|path| std::fs::read(path).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> TransportError {
        TransportError::Status {
            url: "https://backend/v1/files/x".into(),
            status: code,
            message: String::new(),
        }
    }

    #[test]
    fn refusals_are_final_and_passing_failures_transient() {
        for code in [500, 502, 503, 504, 408, 429] {
            assert!(status(code).is_transient(), "{code}");
        }
        for code in [400, 401, 403, 404, 416] {
            assert!(!status(code).is_transient(), "{code}");
        }
        let url = String::from("https://backend/v1/checkin");
        let cut = TransportError::Request {
            url: url.clone(),
            source: ureq::Error::Io(std::io::ErrorKind::ConnectionReset.into()),
        };
        assert!(cut.is_transient());
        let partial = TransportError::Body {
            url: url.clone(),
            message: "unexpected end of file".into(),
        };
        assert!(partial.is_transient());
        let disk_full = TransportError::Sink {
            url: url.clone(),
            source: std::io::Error::other("no space left on device"),
        };
        assert!(!disk_full.is_transient());
        let garbled = TransportError::Unusable {
            url,
            message: "expected value at line 1".into(),
        };
        assert!(!garbled.is_transient());
    }
}
