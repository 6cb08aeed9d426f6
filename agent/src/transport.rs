//! HTTPS to the device API: one ureq agent per run, so a cycle's requests share a connection.

use std::io::Read;
use std::time::Duration;

use apiary_proto::device_api::ErrorBody;
use apiary_proto::tls_client::TlsError;
use serde::{Serialize, de::DeserializeOwned};

use crate::policies::DownloadSink;
use crate::proxy::Proxy;
use crate::tls::TlsConnector;
use ureq::config::AutoHeaderValue;
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{ConnectProxyConnector, Connector, TcpConnector};

/// Largest JSON answer accepted (a bundle with many files stays far below this).
const MAX_JSON_BYTES: u64 = 16 * 1024 * 1024;

/// Why a request failed. Callers that retry ask [`TransportError::is_transient`].
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("invalid TLS material: {0}")]
    Tls(#[from] TlsError),
    /// No answer: the connection failed, was cut, or timed out.
    #[error("request to {url} failed: {source}")]
    Request { url: String, source: ureq::Error },
    /// The proxy did not open the tunnel to the backend.
    #[error("request to {url} failed: the proxy {proxy} {message}")]
    Proxy {
        url: String,
        proxy: String,
        /// The proxy's status, when it answered.
        status: Option<u16>,
        message: String,
    },
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
            // Refused credentials or destination get the same answer again; a proxy that did
            // not answer, or failed upstream (502, 503, 504), may do better soon.
            TransportError::Proxy { status, .. } => status.is_none_or(|s| s >= 500),
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
    /// The proxy's `host:port`, from `agent.json` or the environment.
    proxy: Option<String>,
}

impl Transport {
    /// A client without a client certificate, trusting `roots` (PEM), for enrolment.
    pub fn anonymous(
        base: &str,
        roots_pem: &[u8],
        proxy: Option<&Proxy>,
    ) -> Result<Self, TransportError> {
        Self::build(base, TlsConnector::new(roots_pem, None)?, proxy)
    }

    /// A client presenting the device certificate, trusting only the pinned CA.
    pub fn mutual(
        base: &str,
        ca_pem: &[u8],
        cert_pem: &[u8],
        key_pem: &[u8],
        proxy: Option<&Proxy>,
    ) -> Result<Self, TransportError> {
        let tls = TlsConnector::new(ca_pem, Some((cert_pem, key_pem)))?;
        Self::build(base, tls, proxy)
    }

    /// TLS comes from [`TlsConnector`] (TLS 1.3 only, the agent's trusted time) over a TCP
    /// connection or a proxy's tunnel.
    fn build(base: &str, tls: TlsConnector, proxy: Option<&Proxy>) -> Result<Self, TransportError> {
        // A configured proxy wins; without one, ureq reads HTTPS_PROXY and NO_PROXY.
        let proxy = match proxy {
            Some(p) => Some(p.for_ureq().map_err(|message| TransportError::Unusable {
                url: base.to_string(),
                message,
            })?),
            None => ureq::Proxy::try_from_env(),
        };
        let bypassed = |p: &ureq::Proxy| {
            base.parse::<ureq::http::Uri>()
                .is_ok_and(|uri| p.is_no_proxy(&uri))
        };
        let shown = proxy
            .as_ref()
            .filter(|p| !bypassed(p))
            .map(|p| format!("{}:{}", p.host(), p.port()));
        let config = ureq::Agent::config_builder()
            .proxy(proxy)
            .https_only(true)
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .timeout_per_write(Some(Duration::from_secs(60)))
            // Every header is paid for on every check-in; the version travels in the body.
            .user_agent(AutoHeaderValue::None)
            .accept(AutoHeaderValue::None)
            .build();
        let connector =
            ().chain(ConnectProxyConnector::default())
                .chain(TcpConnector::default())
                .chain(tls);
        let agent = ureq::Agent::with_parts(config, connector, DefaultResolver::default());
        Ok(Self {
            agent,
            base: base.trim_end_matches('/').to_string(),
            proxy: shown,
        })
    }

    /// A request that got no answer; a proxy that refused or did not answer is named.
    fn failed(&self, url: &str, source: ureq::Error) -> TransportError {
        let url = url.to_string();
        match (&self.proxy, source) {
            (Some(proxy), ureq::Error::ConnectProxyFailed(reason)) => {
                proxy_refusal(url, proxy.clone(), &reason)
            }
            (Some(proxy), source) if unreachable(&source) => TransportError::Proxy {
                url,
                proxy: proxy.clone(),
                status: None,
                message: format!("could not be reached: {source}"),
            },
            (_, source) => TransportError::Request { url, source },
        }
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
            .map_err(|source| self.failed(&url, source))?;
        decode_json(&url, response)
    }

    /// `GET`s a JSON document.
    pub fn get_json<R: DeserializeOwned>(&self, path: &str) -> Result<R, TransportError> {
        let url = self.url(path);
        let response = self
            .agent
            .get(&url)
            .call()
            .map_err(|source| self.failed(&url, source))?;
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
        let mut response = request.call().map_err(|source| self.failed(&url, source))?;
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

/// True for the failures of opening a connection (to the proxy, when there is one).
fn unreachable(e: &ureq::Error) -> bool {
    use std::io::ErrorKind as K;
    match e {
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => true,
        ureq::Error::Timeout(t) => matches!(t, ureq::Timeout::Connect | ureq::Timeout::Resolve),
        ureq::Error::Io(io) => matches!(
            io.kind(),
            K::ConnectionRefused | K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable
        ),
        _ => false,
    }
}

/// What a proxy's refusal of CONNECT means, from ureq's reason ("proxy server responded
/// 407/Proxy Authentication Required", "proxy server did not respond").
fn proxy_refusal(url: String, proxy: String, reason: &str) -> TransportError {
    let status = reason
        .strip_prefix("proxy server responded ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse::<u16>().ok());
    let message = match status {
        Some(407) => "refused the credentials (407): check the proxy user and its password file".to_string(),
        Some(403) => "does not allow a tunnel to this backend (403): its CONNECT allow-list must name the backend's host and port".to_string(),
        Some(code) => format!("refused the tunnel ({code}): {reason}"),
        None => format!("did not open the tunnel: {reason}"),
    };
    TransportError::Proxy {
        url,
        proxy,
        status,
        message,
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
            url: url.clone(),
            message: "expected value at line 1".into(),
        };
        assert!(!garbled.is_transient());
    }

    #[test]
    fn proxy_refusals_say_what_to_fix() {
        let refusal = |reason: &str| proxy_refusal("u".into(), "gw:3128".into(), reason);
        let auth = refusal("proxy server responded 407/Proxy Authentication Required");
        assert!(!auth.is_transient());
        assert!(
            auth.to_string()
                .contains("the proxy gw:3128 refused the credentials (407)")
        );
        let denied = refusal("proxy server responded 403/Forbidden");
        assert!(!denied.is_transient());
        assert!(
            denied.to_string().contains("CONNECT allow-list"),
            "{denied}"
        );
        assert!(refusal("proxy server responded 503/Service Unavailable").is_transient());
        assert!(refusal("proxy server did not respond").is_transient());
    }
}
